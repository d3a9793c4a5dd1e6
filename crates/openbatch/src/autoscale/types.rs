//! The values of the formula language, the service-defined variables and the `TimeInterval_*`
//! constants.
//!
//! Types (Batch "Types"): `double`, `doubleVec`, `string`, `timestamp` (members `year`,
//! `month` 1-12, `day` 1-31, `weekday` 0-6 with 1 for Monday, `hour` 0-23, `minute`, `second`)
//! and `timeinterval`. `doubleVecList` is not a value: it is the argument list of the list
//! functions (`avg(v, 7)`), any mix of doubles and doubleVecs, flattened into one doubleVec.
//! Booleans are doubles (`1` true, `0` false; any nonzero is true).

use crate::model::time::Timestamp;
use chrono::{Datelike, Timelike};
use std::fmt;

/// 100-nanosecond ticks, the unit of a `timeinterval` (as .NET's `TimeSpan`).
pub type Ticks = i64;

/// Ticks in one second.
pub const TICKS_PER_SECOND: Ticks = 10_000_000;

/// A value of the formula language.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `double`: numbers and booleans.
    Double(f64),
    /// `doubleVec`: samples and component-wise results, in the order documented per function.
    Vec(Vec<f64>),
    /// `string`: `"text"` literals and `$NodeDeallocationOption`.
    Str(String),
    /// `timestamp`: a UTC time.
    Timestamp(Timestamp),
    /// `timeinterval`: a signed span in 100 ns ticks.
    Interval(Ticks),
}

impl Value {
    /// The type's name as the documentation writes it (`double`, `doubleVec`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Double(_) => "double",
            Value::Vec(_) => "doubleVec",
            Value::Str(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::Interval(_) => "timeinterval",
        }
    }

    /// A double from a boolean (`1`/`0`).
    pub fn bool(b: bool) -> Value {
        Value::Double(if b { 1.0 } else { 0.0 })
    }
}

/// Formats a double as the results text shows numbers: integral values without a fraction
/// (`2`), others with the shortest round-trip digits (`0.5`), `NaN`, `Infinity`, `-Infinity`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if d == 0.0 {
        "0".into()
    } else {
        format!("{d}")
    }
}

/// Formats a timeinterval as .NET's `TimeSpan` constant format: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_interval(t: Ticks) -> String {
    let neg = t < 0;
    let t = t.unsigned_abs();
    let per_s = TICKS_PER_SECOND as u64;
    let (secs, frac) = (t / per_s, t % per_s);
    let (days, rem) = (secs / 86400, secs % 86400);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

impl fmt::Display for Value {
    /// The results-text form: doubles per [`format_double`], doubleVecs `[1,2,3]`, strings
    /// as they are, timestamps `2016-10-13T19:18:47.805Z` (milliseconds, as the documented
    /// results show), timeintervals per [`format_interval`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Double(d) => f.write_str(&format_double(*d)),
            Value::Vec(v) => {
                let parts: Vec<String> = v.iter().map(|d| format_double(*d)).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Value::Str(s) => f.write_str(s),
            Value::Timestamp(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            Value::Interval(t) => f.write_str(&format_interval(*t)),
        }
    }
}

/// The value of a timestamp member (`.year`, `.month`, `.day`, `.weekday`, `.hour`,
/// `.minute`, `.second`), or `None` for another name. `weekday` counts from Sunday = 0, so
/// Monday is 1 as documented.
pub fn timestamp_member(t: &Timestamp, name: &str) -> Option<f64> {
    let v = match name {
        "year" => t.year() as u32,
        "month" => t.month(),
        "day" => t.day(),
        "weekday" => t.weekday().num_days_from_sunday(),
        "hour" => t.hour(),
        "minute" => t.minute(),
        "second" => t.second(),
        _ => return None,
    };
    Some(f64::from(v))
}

/// The names of the timestamp members.
pub const TIMESTAMP_MEMBERS: &[&str] = &["year", "month", "day", "weekday", "hour", "minute", "second"];

/// The `TimeInterval_*` constants, in ticks. A year is 365 days.
pub const TIME_INTERVALS: &[(&str, Ticks)] = &[
    ("TimeInterval_Zero", 0),
    ("TimeInterval_100ns", 1),
    ("TimeInterval_Microsecond", 10),
    ("TimeInterval_Millisecond", 10_000),
    ("TimeInterval_Second", TICKS_PER_SECOND),
    ("TimeInterval_Minute", 60 * TICKS_PER_SECOND),
    ("TimeInterval_Hour", 3600 * TICKS_PER_SECOND),
    ("TimeInterval_Day", 86_400 * TICKS_PER_SECOND),
    ("TimeInterval_Week", 7 * 86_400 * TICKS_PER_SECOND),
    ("TimeInterval_Year", 365 * 86_400 * TICKS_PER_SECOND),
];

/// The ticks of a `TimeInterval_*` constant.
pub fn time_interval(name: &str) -> Option<Ticks> {
    TIME_INTERVALS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The values `$NodeDeallocationOption` takes; written bare in a formula
/// (`$NodeDeallocationOption = taskcompletion;`) they are strings.
pub const DEALLOCATION_OPTIONS: &[&str] = &["requeue", "terminate", "taskcompletion", "retaineddata"];

macro_rules! metrics {
    ($( $(#[$doc:meta])* $v:ident = $name:literal ),* $(,)?) => {
        /// A read-only service-defined variable: a metric with a current value and a sample
        /// history (Batch "Read-only service-defined variables").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Metric { $( $(#[$doc])* $v ),* }

        impl Metric {
            /// Every metric, in [`Metric::index`] order.
            pub const ALL: &'static [Metric] = &[$(Metric::$v),*];

            /// The variable's name, with its `$`.
            pub fn name(self) -> &'static str {
                match self { $(Metric::$v => $name),* }
            }
        }
    };
}

metrics! {
    /// `$CPUPercent`: the average CPU usage of the nodes in the sample period, in percent.
    CpuPercent = "$CPUPercent",
    /// `$WallClockSeconds`: the node-seconds the sample period covers (nodes × seconds).
    WallClockSeconds = "$WallClockSeconds",
    /// `$MemoryBytes`: the average memory the nodes' processes use, in megabytes (as documented).
    MemoryBytes = "$MemoryBytes",
    /// `$DiskBytes`: the average space the nodes' directories take, in gigabytes (as documented).
    DiskBytes = "$DiskBytes",
    /// `$DiskReadBytes`: bytes the nodes read in the sample period.
    DiskReadBytes = "$DiskReadBytes",
    /// `$DiskWriteBytes`: bytes the nodes wrote in the sample period.
    DiskWriteBytes = "$DiskWriteBytes",
    /// `$DiskReadOps`: read operations (not measured: always 0).
    DiskReadOps = "$DiskReadOps",
    /// `$DiskWriteOps`: write operations (not measured: always 0).
    DiskWriteOps = "$DiskWriteOps",
    /// `$NetworkInBytes`: inbound bytes (not measured: always 0).
    NetworkInBytes = "$NetworkInBytes",
    /// `$NetworkOutBytes`: outbound bytes (not measured: always 0).
    NetworkOutBytes = "$NetworkOutBytes",
    /// `$SampleNodeCount`: the nodes that reported in the sample period.
    SampleNodeCount = "$SampleNodeCount",
    /// `$ActiveTasks`: tasks ready to run (dependencies met; instances of multi-instance tasks).
    ActiveTasks = "$ActiveTasks",
    /// `$RunningTasks`: tasks running.
    RunningTasks = "$RunningTasks",
    /// `$PendingTasks`: `$ActiveTasks` + `$RunningTasks`.
    PendingTasks = "$PendingTasks",
    /// `$SucceededTasks`: tasks of the pool's jobs that completed successfully.
    SucceededTasks = "$SucceededTasks",
    /// `$FailedTasks`: tasks of the pool's jobs that failed.
    FailedTasks = "$FailedTasks",
    /// `$TaskSlotsPerNode`: the pool's task slots per node.
    TaskSlotsPerNode = "$TaskSlotsPerNode",
    /// `$CurrentDedicatedNodes`: the pool's dedicated nodes.
    CurrentDedicatedNodes = "$CurrentDedicatedNodes",
    /// `$CurrentLowPriorityNodes`: the pool's Spot/low-priority nodes, preempted ones included.
    CurrentLowPriorityNodes = "$CurrentLowPriorityNodes",
    /// `$PreemptedNodeCount`: the pool's nodes in the `preempted` state.
    PreemptedNodeCount = "$PreemptedNodeCount",
    /// `$UsableNodeCount`: the pool's nodes that can run tasks.
    UsableNodeCount = "$UsableNodeCount",
}

impl Metric {
    /// The metric a variable name reads: its name, or the older `$CurrentDedicated`.
    pub fn by_name(name: &str) -> Option<Metric> {
        if name == "$CurrentDedicated" {
            return Some(Metric::CurrentDedicatedNodes);
        }
        Metric::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// The metric's position in a [`Metrics`] row.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One value per metric, in [`Metric::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics(pub [f64; 21]);

impl Metrics {
    /// The value of `m`.
    pub fn get(&self, m: Metric) -> f64 {
        self.0[m.index()]
    }

    /// Sets the value of `m`.
    pub fn set(&mut self, m: Metric, v: f64) {
        self.0[m.index()] = v;
    }
}

/// The variables a formula sets (Batch "Read-write service-defined variables").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `$TargetDedicatedNodes` (alias `$TargetDedicated`).
    Dedicated,
    /// `$TargetLowPriorityNodes` (alias `$TargetLowPriority`).
    LowPriority,
    /// `$NodeDeallocationOption`.
    Deallocation,
}

impl Target {
    /// The target a name sets, and whether the name is the alias.
    pub fn by_name(name: &str) -> Option<(Target, bool)> {
        Some(match name {
            "$TargetDedicatedNodes" => (Target::Dedicated, false),
            "$TargetDedicated" => (Target::Dedicated, true),
            "$TargetLowPriorityNodes" => (Target::LowPriority, false),
            "$TargetLowPriority" => (Target::LowPriority, true),
            "$NodeDeallocationOption" => (Target::Deallocation, false),
            _ => return None,
        })
    }

    /// The full name, as the results text shows it.
    pub fn name(self) -> &'static str {
        match self {
            Target::Dedicated => "$TargetDedicatedNodes",
            Target::LowPriority => "$TargetLowPriorityNodes",
            Target::Deallocation => "$NodeDeallocationOption",
        }
    }
}
