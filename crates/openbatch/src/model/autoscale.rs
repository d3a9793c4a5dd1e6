//! A pool's autoscale settings and runs: `autoScaleRun` (AutoScaleRun, AutoScaleRunError),
//! the Enable and Evaluate AutoScale parameters, and the bounds of
//! `autoScaleEvaluationInterval`.
//!
//! Rules (Batch REST, `PoolEnableAutoScaleParameter` and `PoolAddParameter`): the interval is
//! 5 minutes to 168 hours (default 15 minutes), else 400 `InvalidPropertyValue`; the
//! development option `serve --min-autoscale-interval` lowers the minimum
//! ([`set_min_interval`]).

use super::time::{parse_duration, ts, Timestamp};
use crate::autoscale::{FormulaError, Run};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The default evaluation interval: 15 minutes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// The documented shortest evaluation interval: 5 minutes.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The longest evaluation interval: 168 hours.
pub const MAX_INTERVAL: Duration = Duration::from_secs(168 * 3600);
/// Enable AutoScale requests for one pool must be this far apart (documented: 30 seconds).
pub const ENABLE_SPACING_SECS: i64 = 30;

/// The shortest interval accepted, in milliseconds (the documented 5 minutes unless the
/// development option lowered it).
static MIN_INTERVAL_MS: AtomicU64 = AtomicU64::new(5 * 60 * 1000);

/// Sets the shortest evaluation interval accepted (`serve --min-autoscale-interval`, for
/// tests); at least one second.
pub fn set_min_interval(d: Duration) {
    MIN_INTERVAL_MS.store(d.as_millis().max(1000) as u64, Ordering::Relaxed);
}

/// The shortest evaluation interval accepted now.
pub fn min_interval() -> Duration {
    Duration::from_millis(MIN_INTERVAL_MS.load(Ordering::Relaxed))
}

/// Checks an `autoScaleEvaluationInterval`.
/// Errors: the reason, for a 400 `InvalidPropertyValue`, when it is not an ISO 8601 duration
/// or outside [`min_interval`] to [`MAX_INTERVAL`].
pub fn check_interval(s: &str) -> Result<Duration, String> {
    let Some(d) = parse_duration(s).and_then(|d| d.0) else {
        return Err("The autoscale evaluation interval is not an ISO 8601 duration of at most 168 hours.".into());
    };
    let min = min_interval();
    if d < min || d > MAX_INTERVAL {
        let shortest = if min == MIN_INTERVAL { "5 minutes".to_string() } else { format!("{} seconds", min.as_secs_f64()) };
        return Err(format!("The autoscale evaluation interval must be from {shortest} to 168 hours."));
    }
    Ok(d)
}

/// A pool's evaluation interval: its `autoScaleEvaluationInterval`, or the default.
pub fn interval_of(s: Option<&str>) -> Duration {
    s.and_then(parse_duration).and_then(|d| d.0).unwrap_or(DEFAULT_INTERVAL)
}

/// NameValuePair of an autoscale error's `values`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// AutoScaleRunError: `code`, `message`, and the `Message` detail `Line L, Col C: …`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoScaleRunError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<NameValue>,
}

impl From<&FormulaError> for AutoScaleRunError {
    fn from(e: &FormulaError) -> Self {
        AutoScaleRunError {
            code: e.code().into(),
            message: e.summary().into(),
            values: vec![NameValue { name: "Message".into(), value: e.to_string() }],
        }
    }
}

/// AutoScaleRun: when a formula was evaluated, the final values of its variables, and the
/// error that stopped it, if one did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoScaleRun {
    #[serde(with = "ts")]
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AutoScaleRunError>,
}

impl AutoScaleRun {
    /// The record of an evaluation at `at`.
    pub fn of(at: Timestamp, run: &Run) -> Self {
        AutoScaleRun { timestamp: at, results: Some(run.results.clone()), error: run.outcome.as_ref().err().map(AutoScaleRunError::from) }
    }
}

/// PoolEnableAutoScaleParameter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnableAutoScale {
    #[serde(default)]
    pub auto_scale_formula: Option<String>,
    #[serde(default)]
    pub auto_scale_evaluation_interval: Option<String>,
}

/// PoolEvaluateAutoScaleParameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvaluateAutoScale {
    pub auto_scale_formula: String,
}
