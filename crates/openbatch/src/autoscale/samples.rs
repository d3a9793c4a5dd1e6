//! Sample histories and the sample methods of the read-only service-defined variables
//! (Batch "Obtain sample data").
//!
//! A pool's history is a list of timestamped rows, one value per [`Metric`] each, oldest
//! first. The service records a row every [`SAMPLE_PERIOD_SECS`] (the documented 30 s) and
//! one with every evaluation; rows older than [`HISTORY_KEEP_SECS`] before the newest go.
//! Samples are available to formulas as soon as they are taken (the service documents a delay
//! of about a minute; openbatch has none).
//!
//! Methods:
//! * `GetSample(count)`: the `count` most recent samples (fewer when the history is shorter),
//!   oldest first, as a doubleVec;
//! * `GetSample(start [, percent])`, `GetSample(start, end [, percent])`: the samples taken
//!   between two times, each a timestamp or a timeinterval looking back from now (`end`
//!   defaults to now), oldest first; with `percent`, the evaluation fails with
//!   `InsufficientSampleData` when fewer than that percentage of the samples the period should
//!   hold are there;
//! * `GetSamplePercent(start [, end])`: that percentage: samples in the window × 100 / the
//!   window's length in sample periods (at least 1), at most 100;
//! * `GetSamplePeriod()`: the sample period, a timeinterval; `Count()`: the samples in the
//!   history; `HistoryBeginTime()`: the oldest sample's time.

use super::types::{Metric, Metrics, Ticks, Value, TICKS_PER_SECOND};
use super::{ErrorKind, FormulaError};
use crate::model::time::Timestamp;
use std::collections::VecDeque;

/// The documented sample period: a sample is 30 seconds of metrics.
pub const SAMPLE_PERIOD_SECS: i64 = 30;
/// How much history a pool keeps: six hours (720 samples at the sample period).
pub const HISTORY_KEEP_SECS: i64 = 6 * 3600;

/// A pool's sample history, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    rows: VecDeque<(Timestamp, Metrics)>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a sample taken at `at` (not before the newest; an older one is dropped) and
    /// forgets samples more than [`HISTORY_KEEP_SECS`] older than it.
    pub fn push(&mut self, at: Timestamp, values: Metrics) {
        if self.rows.back().is_some_and(|(t, _)| *t > at) {
            return;
        }
        self.rows.push_back((at, values));
        let oldest = at - chrono::Duration::seconds(HISTORY_KEEP_SECS);
        while self.rows.front().is_some_and(|(t, _)| *t < oldest) {
            self.rows.pop_front();
        }
    }

    /// When the newest sample was taken.
    pub fn last_time(&self) -> Option<Timestamp> {
        self.rows.back().map(|(t, _)| *t)
    }

    /// The newest sample of `m`.
    pub fn latest(&self, m: Metric) -> Option<f64> {
        self.rows.back().map(|(_, v)| v.get(m))
    }

    /// The newest sample of every metric.
    pub fn latest_row(&self) -> Option<Metrics> {
        self.rows.back().map(|(_, v)| *v)
    }

    /// How many samples the history holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the history holds no sample.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn window(&self, m: Metric, lo: Timestamp, hi: Timestamp) -> Vec<f64> {
        self.rows.iter().filter(|(t, _)| *t >= lo && *t <= hi).map(|(_, v)| v.get(m)).collect()
    }

    /// The percentage of the samples the window `[lo, hi]` should hold that it holds.
    fn percent(&self, lo: Timestamp, hi: Timestamp) -> f64 {
        let expected = ((hi - lo).num_seconds() / SAMPLE_PERIOD_SECS).max(1) as f64;
        let held = self.rows.iter().filter(|(t, _)| *t >= lo && *t <= hi).count() as f64;
        (held * 100.0 / expected).min(100.0)
    }
}

/// Where a method call happens, for its errors.
pub struct Site<'a> {
    pub src: &'a str,
    pub at: usize,
    pub now: Timestamp,
}

impl Site<'_> {
    fn error(&self, message: impl Into<String>) -> FormulaError {
        FormulaError::new(ErrorKind::Evaluation, self.src, self.at, message)
    }

    /// A time argument as a moment: a timestamp as it is, a timeinterval looking back from now.
    fn moment(&self, what: &str, v: &Value) -> Result<Timestamp, FormulaError> {
        match v {
            Value::Timestamp(t) => Ok(*t),
            Value::Interval(ticks) => {
                let back = chrono::Duration::microseconds(ticks / 10);
                self.now.checked_sub_signed(back).ok_or_else(|| self.error(format!("the {what} is out of the range of a timestamp")))
            }
            other => Err(self.error(format!("the {what} must be a timestamp or a timeinterval, not a {}", other.type_name()))),
        }
    }

    fn percent_arg(&self, v: &Value) -> Result<f64, FormulaError> {
        match v {
            Value::Double(p) if (0.0..=100.0).contains(p) => Ok(*p),
            Value::Double(p) => Err(self.error(format!("the sample percent must be from 0 to 100, not {p}"))),
            other => Err(self.error(format!("the sample percent must be a double, not a {}", other.type_name()))),
        }
    }
}

/// Calls `method` of metric `m` with `args` on `history` (see the module documentation).
///
/// Errors: `InsufficientSampleData` when `GetSample` finds fewer samples than the percentage
/// asked for; an evaluation error for arguments of the wrong type or range, and for
/// `HistoryBeginTime` on an empty history.
pub fn call(history: &History, m: Metric, method: &str, args: &[Value], site: &Site) -> Result<Value, FormulaError> {
    match method {
        "GetSamplePeriod" => Ok(Value::Interval(SAMPLE_PERIOD_SECS * TICKS_PER_SECOND as Ticks)),
        "Count" => Ok(Value::Double(history.len() as f64)),
        "HistoryBeginTime" => match history.rows.front() {
            Some((t, _)) => Ok(Value::Timestamp(*t)),
            None => Err(site.error(format!("{} has no samples yet", m.name()))),
        },
        "GetSamplePercent" => {
            let (lo, hi) = bounds(args, site)?;
            Ok(Value::Double(history.percent(lo, hi)))
        }
        "GetSample" => {
            if let [Value::Double(n)] = args {
                if n.is_nan() || *n < 0.0 {
                    return Err(site.error(format!("the sample count must be 0 or more, not {n}")));
                }
                let n = (*n as usize).min(history.len());
                let from = history.len() - n;
                return Ok(Value::Vec(history.rows.iter().skip(from).map(|(_, v)| v.get(m)).collect()));
            }
            let (times, percent) = match args {
                [a, Value::Double(_)] | [a, _, Value::Double(_)] if !matches!(a, Value::Double(_)) => {
                    (&args[..args.len() - 1], Some(site.percent_arg(&args[args.len() - 1])?))
                }
                _ => (args, None),
            };
            if times.len() > 2 || matches!(times.first(), Some(Value::Double(_))) {
                return Err(site.error("GetSample takes a count, or a start time, an optional end time and an optional sample percent"));
            }
            let (lo, hi) = bounds(times, site)?;
            if let Some(wanted) = percent {
                let got = history.percent(lo, hi);
                if got < wanted {
                    return Err(FormulaError::new(
                        ErrorKind::InsufficientSamples,
                        site.src,
                        site.at,
                        format!("Insufficient data from data set: {} wanted {}%, received {}%", m.name(), wanted, got.floor()),
                    ));
                }
            }
            Ok(Value::Vec(history.window(m, lo, hi)))
        }
        other => Err(site.error(format!("`{other}` is not a sample method"))),
    }
}

/// The window of a `(start [, end])` argument list, earliest first.
fn bounds(times: &[Value], site: &Site) -> Result<(Timestamp, Timestamp), FormulaError> {
    let start = site.moment("start time", times.first().ok_or_else(|| site.error("a start time is required"))?)?;
    let end = match times.get(1) {
        Some(v) => site.moment("end time", v)?,
        None => site.now,
    };
    Ok((start.min(end), start.max(end)))
}
