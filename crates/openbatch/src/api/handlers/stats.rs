//! Statistics on the wire: TaskStatistics, JobStatistics and PoolStatistics (with
//! UsageStatistics and ResourceStatistics) in their 2022-10-01.16.0 shape, for `$expand=stats`
//! on Get/List of tasks, jobs and pools and for the account's lifetime statistics.
//!
//! 64-bit counters are JSON strings (as the service writes int64 values), durations ISO 8601,
//! volumes GiB as floats. I/O operations are the 512-byte blocks the kernel counts.

use crate::api::Ctx;
use crate::model::stats::{JobStats, PoolStats, TaskStats, UsageSums, BLOCK_BYTES, GIB};
use crate::model::time::{format_duration, format_timestamp};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// True when the request asks for statistics (`$expand` names `stats`).
pub fn wanted(ctx: &Ctx) -> bool {
    ctx.q("$expand").is_some_and(|e| e.split(',').any(|i| i.trim() == "stats"))
}

/// The URL of a resource's statistics: `<resource URL>/stats`.
pub fn url(resource_url: &str) -> String {
    format!("{resource_url}/stats")
}

fn dur(ms: u64) -> Value {
    Value::String(format_duration(Duration::from_millis(ms)))
}

fn blocks_gib(blocks: u64) -> f64 {
    (blocks.saturating_mul(BLOCK_BYTES)) as f64 / GIB
}

fn usage(m: &mut Map<String, Value>, u: &UsageSums) {
    m.insert("userCPUTime".into(), dur(u.user_cpu_ms));
    m.insert("kernelCPUTime".into(), dur(u.kernel_cpu_ms));
    m.insert("wallClockTime".into(), dur(u.wall_clock_ms));
    m.insert("readIOps".into(), Value::String(u.read_blocks.to_string()));
    m.insert("writeIOps".into(), Value::String(u.write_blocks.to_string()));
    m.insert("readIOGiB".into(), json!(blocks_gib(u.read_blocks)));
    m.insert("writeIOGiB".into(), json!(blocks_gib(u.write_blocks)));
}

fn range(url: String, start: &crate::model::time::Timestamp, last: &crate::model::time::Timestamp) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("url".into(), Value::String(url));
    m.insert("startTime".into(), Value::String(format_timestamp(start)));
    m.insert("lastUpdateTime".into(), Value::String(format_timestamp(last)));
    m
}

/// TaskStatistics.
pub fn task(url: String, s: &TaskStats) -> Value {
    let mut m = range(url, &s.start_time, &s.last_update_time);
    usage(&mut m, &s.usage);
    m.insert("waitTime".into(), dur(s.wait_ms));
    Value::Object(m)
}

/// JobStatistics (a job's, or the account's lifetime ones).
pub fn job(url: String, s: &JobStats) -> Value {
    let mut m = range(url, &s.start_time, &s.last_update_time);
    usage(&mut m, &s.usage);
    m.insert("numSucceededTasks".into(), Value::String(s.succeeded.to_string()));
    m.insert("numFailedTasks".into(), Value::String(s.failed.to_string()));
    m.insert("numTaskRetries".into(), Value::String(s.retries.to_string()));
    m.insert("waitTime".into(), dur(s.wait_ms));
    Value::Object(m)
}

/// PoolStatistics (a pool's, or the account's lifetime ones): `usageStats` and
/// `resourceStats` over the same range. Network traffic is not measured on openbatch nodes
/// and shows as 0.
pub fn pool(url: String, s: &PoolStats) -> Value {
    let (start, last) = (format_timestamp(&s.start_time), format_timestamp(&s.last_update_time));
    let mut m = range(url, &s.start_time, &s.last_update_time);
    m.insert("usageStats".into(), json!({"startTime": start, "lastUpdateTime": last, "dedicatedCoreTime": dur(s.dedicated_core_ms)}));
    let gib = |bytes: u64| bytes as f64 / GIB;
    m.insert(
        "resourceStats".into(),
        json!({
            "startTime": start,
            "lastUpdateTime": last,
            "avgCPUPercentage": s.avg_cpu_percentage(),
            "avgMemoryGiB": s.avg_memory_gib(),
            "peakMemoryGiB": gib(s.peak_memory_bytes),
            "avgDiskGiB": s.avg_disk_gib(),
            "peakDiskGiB": gib(s.peak_disk_bytes),
            "diskReadIOps": s.read_bytes.div_ceil(BLOCK_BYTES).to_string(),
            "diskWriteIOps": s.write_bytes.div_ceil(BLOCK_BYTES).to_string(),
            "diskReadGiB": gib(s.read_bytes),
            "diskWriteGiB": gib(s.write_bytes),
            "networkReadGiB": 0.0,
            "networkWriteGiB": 0.0,
        }),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn shapes_follow_the_specification() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut j = JobStats::new(t0);
        j.usage.user_cpu_ms = 1500;
        j.usage.write_blocks = 2 * 1024 * 1024;
        j.succeeded = 3;
        let v = job("http://x/jobs/j/stats".into(), &j);
        assert_eq!(v["userCPUTime"], "PT1.5S");
        assert_eq!(v["writeIOps"], "2097152");
        assert_eq!(v["writeIOGiB"], 1.0);
        assert_eq!(v["numSucceededTasks"], "3");
        assert_eq!(v["startTime"], "2023-11-14T22:13:20Z");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["url", "startTime", "lastUpdateTime", "kernelCPUTime", "wallClockTime", "readIOps", "readIOGiB", "waitTime"] {
            assert!(keys.contains(&k), "{k} missing: {v}");
        }
        let t = task("u".into(), &TaskStats::new(t0));
        assert_eq!(t["waitTime"], "PT0S");
        assert!(t.get("numSucceededTasks").is_none());
        let mut p = PoolStats::new(t0);
        p.write_bytes = 513;
        p.dedicated_core_ms = 60_000;
        let v = pool("u".into(), &p);
        assert_eq!(v["usageStats"]["dedicatedCoreTime"], "PT1M");
        assert_eq!(v["resourceStats"]["diskWriteIOps"], "2");
        assert_eq!(v["resourceStats"]["networkReadGiB"], 0.0);
        assert_eq!(v["resourceStats"].as_object().unwrap().len(), 13);
    }
}
