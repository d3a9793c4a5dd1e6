//! Pool usage metrics (Pool List Usage Metrics): the core-hours each pool's nodes used, summed
//! per aggregation interval of 30 minutes (`PoolUsageMetrics`: `poolId`, `startTime`,
//! `endTime`, `vmSize`, `totalCoreHours`).
//!
//! A node's time is counted in [`CoreSpan`]s (each time its agent samples it, and when it
//! leaves): cores × the span's duration, for dedicated and Spot/low-priority nodes alike, split
//! at interval boundaries ([`CoreSpan::split`]) and added to the pool's [`PoolUsage`] record of
//! each interval.

use super::time::{ts, Timestamp};
use chrono::{DurationRound, TimeDelta};
use serde::{Deserialize, Serialize};

/// The length of an aggregation interval (minutes).
pub const INTERVAL_MINUTES: i64 = 30;

/// The aggregation interval holding `t`: its start and end.
pub fn interval_of(t: Timestamp) -> (Timestamp, Timestamp) {
    let len = TimeDelta::minutes(INTERVAL_MINUTES);
    let start = t.duration_trunc(len).unwrap_or(t);
    (start, start + len)
}

/// A stretch of a node's time: from `since` to `until`, with `cores` CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreSpan {
    pub since: Timestamp,
    pub until: Timestamp,
    pub cores: u32,
    pub dedicated: bool,
}

impl CoreSpan {
    /// Cores × milliseconds of the span.
    pub fn core_ms(&self) -> u64 {
        ((self.until - self.since).num_milliseconds().max(0) as u64).saturating_mul(u64::from(self.cores))
    }

    /// Cores × milliseconds of a dedicated node (0 for a Spot/low-priority one), for the
    /// pool statistics' `dedicatedCoreTime`.
    pub fn dedicated_core_ms(&self) -> u64 {
        if self.dedicated {
            self.core_ms()
        } else {
            0
        }
    }

    /// The span cut at aggregation interval boundaries: (interval start, cores × ms in it).
    pub fn split(&self) -> Vec<(Timestamp, u64)> {
        let mut out = Vec::new();
        let mut from = self.since;
        while from < self.until {
            let (start, end) = interval_of(from);
            let to = end.min(self.until);
            out.push((start, CoreSpan { since: from, until: to, ..*self }.core_ms()));
            from = to;
        }
        out
    }
}

/// The core time one pool used in one aggregation interval (stored; id
/// `<interval start>/<pool id>`, so records sort by time).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolUsage {
    pub id: String,
    pub pool_id: String,
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    pub vm_size: String,
    /// Cores × milliseconds.
    pub core_ms: u64,
}

impl PoolUsage {
    /// The record of `pool_id` for the interval starting at `start`, before anything counted.
    pub fn new(pool_id: &str, start: Timestamp, vm_size: &str) -> PoolUsage {
        PoolUsage {
            id: Self::key(pool_id, start),
            pool_id: pool_id.to_string(),
            start_time: start,
            vm_size: vm_size.to_string(),
            core_ms: 0,
        }
    }

    /// The record id of `pool_id`'s usage in the interval starting at `start`.
    pub fn key(pool_id: &str, start: Timestamp) -> String {
        format!("{}/{pool_id}", start.format("%Y-%m-%dT%H:%M:%SZ"))
    }

    /// The interval's end.
    pub fn end_time(&self) -> Timestamp {
        self.start_time + TimeDelta::minutes(INTERVAL_MINUTES)
    }

    /// Core-hours, as `totalCoreHours` reports them.
    pub fn core_hours(&self) -> f64 {
        self.core_ms as f64 / 3_600_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(h: u32, m: u32, s: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 12, 8, h, m, s).single().unwrap()
    }

    #[test]
    fn intervals_are_half_hours() {
        assert_eq!(interval_of(t(1, 29, 59)), (t(1, 0, 0), t(1, 30, 0)));
        assert_eq!(interval_of(t(1, 30, 0)), (t(1, 30, 0), t(2, 0, 0)));
    }

    #[test]
    fn spans_split_at_interval_boundaries() {
        let span = CoreSpan { since: t(1, 20, 0), until: t(2, 10, 0), cores: 2, dedicated: false };
        assert_eq!(span.core_ms(), 2 * 50 * 60_000);
        assert_eq!(span.dedicated_core_ms(), 0);
        assert_eq!(span.split(), vec![(t(1, 0, 0), 2 * 10 * 60_000), (t(1, 30, 0), 2 * 30 * 60_000), (t(2, 0, 0), 2 * 10 * 60_000)]);
        let empty = CoreSpan { since: t(1, 0, 0), until: t(1, 0, 0), cores: 4, dedicated: true };
        assert!(empty.split().is_empty());
        let u = PoolUsage::new("p", t(1, 30, 0), "standard_d2s_v3");
        assert_eq!(u.id, "2026-12-08T01:30:00Z/p");
        assert_eq!(u.end_time(), t(2, 0, 0));
    }
}
