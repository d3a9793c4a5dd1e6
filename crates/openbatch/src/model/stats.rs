//! Statistics: running sums of what tasks and compute nodes really used, as the kernel
//! accounted it on the node (see `agent::exec::reap` and `agent::sample`).
//!
//! * A task's [`TaskStats`] add up its attempts (TaskStatistics).
//! * A job's [`JobStats`] and the account's [`JobLifetimeStats`] add up the attempts of their
//!   tasks with one function, [`JobStats::add_attempt`] (JobStatistics).
//! * A pool's [`PoolStats`] and the account's [`PoolLifetimeStats`] add up their nodes'
//!   samples and core-time with one function, [`PoolStats::add`] (PoolStatistics).
//!
//! Times are milliseconds; block I/O is in the 512-byte units the kernel counts
//! (`ru_inblock`/`ru_oublock`); node I/O is in bytes.

use super::node::Node;
use super::time::{ts, Timestamp};
use crate::agent::protocol::{NodeSample, ResourceUsage};
use serde::{Deserialize, Serialize};

/// Bytes in a GiB.
pub const GIB: f64 = (1u64 << 30) as f64;
/// Bytes in one block of the kernel's block I/O accounting.
pub const BLOCK_BYTES: u64 = 512;

/// CPU time, wall-clock time and block I/O of task attempts, summed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsageSums {
    /// User-mode CPU time, milliseconds.
    pub user_cpu_ms: u64,
    /// Kernel-mode CPU time, milliseconds.
    pub kernel_cpu_ms: u64,
    /// Time from each attempt's start to its end, milliseconds.
    pub wall_clock_ms: u64,
    /// Blocks read (512 bytes each).
    pub read_blocks: u64,
    /// Blocks written (512 bytes each).
    pub write_blocks: u64,
}

impl UsageSums {
    fn add(&mut self, a: &Attempt) {
        self.user_cpu_ms = self.user_cpu_ms.saturating_add(a.usage.user_ms);
        self.kernel_cpu_ms = self.kernel_cpu_ms.saturating_add(a.usage.kernel_ms);
        self.wall_clock_ms = self.wall_clock_ms.saturating_add(a.wall_ms);
        self.read_blocks = self.read_blocks.saturating_add(a.usage.read_blocks);
        self.write_blocks = self.write_blocks.saturating_add(a.usage.write_blocks);
    }
}

/// How a task's attempt ended, for the counts of job statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// It failed and the task is retried.
    Retried,
    /// The task completed successfully.
    Succeeded,
    /// The task completed with a failure (retries exhausted, not retryable, or ended by the
    /// service).
    Failed,
}

/// One ended attempt of a task: what its process used, how long it ran and waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// What the process used (zero when it never ran or was killed by the service).
    pub usage: ResourceUsage,
    /// Milliseconds from the process start to its end (0 when it never started).
    pub wall_ms: u64,
    /// Milliseconds from the task's creation to this attempt's start; `None` when it never
    /// started.
    pub wait_ms: Option<u64>,
    /// Retried, or how the task completed.
    pub outcome: AttemptOutcome,
}

/// A task's statistics (TaskStatistics), summed over its attempts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    /// Start of the range covered: the task's creation.
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    /// When an attempt last ended.
    #[serde(with = "ts")]
    pub last_update_time: Timestamp,
    #[serde(flatten)]
    pub usage: UsageSums,
    /// Creation to the start of the most recent attempt, milliseconds (the API's rule for
    /// retried tasks).
    pub wait_ms: u64,
}

impl TaskStats {
    /// Empty statistics of a task created at `created`.
    pub fn new(created: Timestamp) -> Self {
        TaskStats { start_time: created, last_update_time: created, usage: UsageSums::default(), wait_ms: 0 }
    }

    /// Adds an ended attempt at `now`.
    pub fn add_attempt(&mut self, a: &Attempt, now: Timestamp) {
        self.usage.add(a);
        if let Some(w) = a.wait_ms {
            self.wait_ms = w;
        }
        self.last_update_time = now.max(self.start_time);
    }
}

/// Job statistics (JobStatistics): a job's, or every job's in the account
/// ([`JobLifetimeStats`]), summed over their tasks' attempts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobStats {
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    #[serde(with = "ts")]
    pub last_update_time: Timestamp,
    #[serde(flatten)]
    pub usage: UsageSums,
    /// Per completed task, creation to the start of its last attempt, milliseconds.
    pub wait_ms: u64,
    /// Tasks that completed successfully.
    pub succeeded: u64,
    /// Tasks that completed with a failure.
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
}

impl JobStats {
    /// Empty statistics starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        JobStats {
            start_time: start,
            last_update_time: start,
            usage: UsageSums::default(),
            wait_ms: 0,
            succeeded: 0,
            failed: 0,
            retries: 0,
        }
    }

    /// Adds an ended attempt at `now`: its usage always; a retry is counted as such, a
    /// completion as succeeded or failed with the task's wait time.
    pub fn add_attempt(&mut self, a: &Attempt, now: Timestamp) {
        self.usage.add(a);
        match a.outcome {
            AttemptOutcome::Retried => self.retries += 1,
            AttemptOutcome::Succeeded | AttemptOutcome::Failed => {
                self.wait_ms = self.wait_ms.saturating_add(a.wait_ms.unwrap_or(0));
                if a.outcome == AttemptOutcome::Succeeded {
                    self.succeeded += 1;
                } else {
                    self.failed += 1;
                }
            }
        }
        self.last_update_time = now.max(self.start_time);
    }
}

/// Lifetime statistics of every job in the account (Get Lifetime Job Statistics): the one
/// stored row of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct JobLifetimeStats(pub JobStats);

impl JobLifetimeStats {
    /// The id of the one row that holds them.
    pub const ID: &'static str = "lifetime";

    /// Empty statistics starting now.
    pub fn new(now: Timestamp) -> Self {
        JobLifetimeStats(JobStats::new(now))
    }
}

/// Pool statistics (PoolStatistics: `usageStats` and `resourceStats`): a pool's, or every
/// pool's in the account ([`PoolLifetimeStats`]), summed over their nodes' samples.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolStats {
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    #[serde(with = "ts")]
    pub last_update_time: Timestamp,
    /// Cores × time the dedicated nodes existed, milliseconds.
    pub dedicated_core_ms: u64,
    /// Time the samples cover, summed over nodes, milliseconds.
    pub sampled_ms: u64,
    /// Cores × time the samples cover, milliseconds (the capacity `cpu_ms` is a share of).
    pub core_ms: u64,
    /// CPU time the nodes' processes used, milliseconds.
    pub cpu_ms: u64,
    /// Memory in use × time, GiB·ms.
    pub memory_gib_ms: f64,
    /// Disk in use × time, GiB·ms.
    pub disk_gib_ms: f64,
    /// Most memory one node used at a sample, bytes.
    pub peak_memory_bytes: u64,
    /// Most disk one node used at a sample, bytes.
    pub peak_disk_bytes: u64,
    /// Bytes the nodes' processes read from storage.
    pub read_bytes: u64,
    /// Bytes the nodes' processes wrote to storage.
    pub write_bytes: u64,
}

/// What one node adds to its pool's statistics: its dedicated core-time since it was last
/// counted, and the agent's sample when there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeUsage {
    /// Cores × milliseconds of a dedicated node (0 for a low-priority one).
    pub dedicated_core_ms: u64,
    /// What the node's agent measured, when this usage comes with a sample.
    pub sample: Option<NodeSample>,
}

impl PoolStats {
    /// Empty statistics starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        PoolStats {
            start_time: start,
            last_update_time: start,
            dedicated_core_ms: 0,
            sampled_ms: 0,
            core_ms: 0,
            cpu_ms: 0,
            memory_gib_ms: 0.0,
            disk_gib_ms: 0.0,
            peak_memory_bytes: 0,
            peak_disk_bytes: 0,
            read_bytes: 0,
            write_bytes: 0,
        }
    }

    /// Adds one node's usage at `now`.
    pub fn add(&mut self, u: &NodeUsage, now: Timestamp) {
        self.dedicated_core_ms = self.dedicated_core_ms.saturating_add(u.dedicated_core_ms);
        if let Some(s) = &u.sample {
            self.sampled_ms = self.sampled_ms.saturating_add(s.interval_ms);
            self.core_ms = self.core_ms.saturating_add(s.interval_ms.saturating_mul(u64::from(s.cores.max(1))));
            self.cpu_ms = self.cpu_ms.saturating_add(s.cpu_ms);
            self.memory_gib_ms += s.memory_bytes as f64 / GIB * s.interval_ms as f64;
            self.disk_gib_ms += s.disk_bytes as f64 / GIB * s.interval_ms as f64;
            self.peak_memory_bytes = self.peak_memory_bytes.max(s.memory_bytes);
            self.peak_disk_bytes = self.peak_disk_bytes.max(s.disk_bytes);
            self.read_bytes = self.read_bytes.saturating_add(s.read_bytes);
            self.write_bytes = self.write_bytes.saturating_add(s.write_bytes);
        }
        self.last_update_time = now.max(self.start_time);
    }

    /// Average CPU use of a node as a percentage of its cores (0 before any sample).
    pub fn avg_cpu_percentage(&self) -> f64 {
        if self.core_ms == 0 {
            0.0
        } else {
            self.cpu_ms as f64 * 100.0 / self.core_ms as f64
        }
    }

    /// Average memory a node used, GiB (time-weighted over the samples).
    pub fn avg_memory_gib(&self) -> f64 {
        per_sampled_ms(self.memory_gib_ms, self.sampled_ms)
    }

    /// Average disk a node used, GiB (time-weighted over the samples).
    pub fn avg_disk_gib(&self) -> f64 {
        per_sampled_ms(self.disk_gib_ms, self.sampled_ms)
    }
}

fn per_sampled_ms(sum: f64, ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        sum / ms as f64
    }
}

/// Lifetime statistics of every pool in the account (Get All Pool Lifetime Statistics): the
/// one stored row of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct PoolLifetimeStats(pub PoolStats);

impl PoolLifetimeStats {
    /// The id of the one row that holds them.
    pub const ID: &'static str = "lifetime";

    /// Empty statistics starting now.
    pub fn new(now: Timestamp) -> Self {
        PoolLifetimeStats(PoolStats::new(now))
    }
}

/// How far a node's core-time has been counted into its pool's statistics (stored on the
/// node, never rendered).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeMeter {
    /// The cores the node's agent last reported.
    pub cores: u32,
    /// The node's core-time is counted up to here.
    #[serde(with = "ts")]
    pub counted_until: Timestamp,
}

impl Node {
    /// Counts the node's time since it was last counted (since its allocation, the first
    /// time) up to `now` and returns its core-time in milliseconds: its cores × that time for
    /// a dedicated node, 0 for a low-priority one. `cores` is what its agent just reported;
    /// without it the last report counts, and `fallback` before any report.
    pub fn count_core_time(&mut self, cores: Option<u32>, fallback: u32, now: Timestamp) -> super::usage::CoreSpan {
        let since = self.meter.map(|m| m.counted_until).unwrap_or(self.allocation_time);
        let cores = cores.filter(|c| *c > 0).or(self.meter.map(|m| m.cores)).unwrap_or(fallback).max(1);
        let until = now.max(since);
        self.meter = Some(NodeMeter { cores, counted_until: until });
        super::usage::CoreSpan { since, until, cores, dedicated: self.is_dedicated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t(secs: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn attempt(user_ms: u64, wall_ms: u64, wait_ms: Option<u64>, outcome: AttemptOutcome) -> Attempt {
        let usage = ResourceUsage { user_ms, kernel_ms: 1, read_blocks: 8, write_blocks: 16 };
        Attempt { usage, wall_ms, wait_ms, outcome }
    }

    #[test]
    fn job_stats_count_retries_and_completions_with_their_wait() {
        let mut s = JobStats::new(t(0));
        s.add_attempt(&attempt(100, 1000, Some(50), AttemptOutcome::Retried), t(1));
        s.add_attempt(&attempt(200, 2000, Some(3000), AttemptOutcome::Succeeded), t(5));
        s.add_attempt(&attempt(0, 0, None, AttemptOutcome::Failed), t(6));
        assert_eq!((s.retries, s.succeeded, s.failed), (1, 1, 1));
        assert_eq!(s.usage, UsageSums { user_cpu_ms: 300, kernel_cpu_ms: 3, wall_clock_ms: 3000, read_blocks: 24, write_blocks: 48 });
        assert_eq!(s.wait_ms, 3000, "a retried attempt's wait does not count; a completion's does");
        assert_eq!(s.last_update_time, t(6));
    }

    #[test]
    fn task_stats_keep_the_wait_of_the_latest_attempt() {
        let mut s = TaskStats::new(t(0));
        s.add_attempt(&attempt(100, 1000, Some(50), AttemptOutcome::Retried), t(1));
        s.add_attempt(&attempt(100, 1000, Some(4000), AttemptOutcome::Succeeded), t(5));
        assert_eq!(s.wait_ms, 4000);
        assert_eq!(s.usage.user_cpu_ms, 200);
        assert_eq!(s.usage.wall_clock_ms, 2000);
        assert_eq!((s.start_time, s.last_update_time), (t(0), t(5)));
    }

    #[test]
    fn lifetime_rows_keep_their_stored_shape() {
        // A row written before per-job statistics existed reads back unchanged.
        let old = r#"{"startTime":"2024-01-01T00:00:00Z","lastUpdateTime":"2024-01-02T00:00:00Z","userCpuMs":5,"kernelCpuMs":6,
            "wallClockMs":7,"waitMs":8,"readBlocks":9,"writeBlocks":10,"succeeded":1,"failed":2,"retries":3}"#;
        let s: JobLifetimeStats = serde_json::from_str(old).unwrap();
        assert_eq!(s.0.usage.write_blocks, 10);
        assert_eq!((s.0.wait_ms, s.0.succeeded, s.0.failed, s.0.retries), (8, 1, 2, 3));
        let back: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(back["userCpuMs"], 5);
        assert_eq!(back["retries"], 3);
    }

    #[test]
    fn pool_stats_weigh_samples_by_their_interval() {
        let mut p = PoolStats::new(t(0));
        let gib = 1u64 << 30;
        let s1 = NodeSample {
            interval_ms: 1000,
            cores: 4,
            cpu_ms: 2000,
            read_bytes: 512,
            write_bytes: 1024,
            memory_bytes: gib,
            disk_bytes: 2 * gib,
        };
        let s2 = NodeSample {
            interval_ms: 3000,
            cores: 4,
            cpu_ms: 0,
            read_bytes: 0,
            write_bytes: 0,
            memory_bytes: 3 * gib,
            disk_bytes: 2 * gib,
        };
        p.add(&NodeUsage { dedicated_core_ms: 4000, sample: Some(s1) }, t(1));
        p.add(&NodeUsage { dedicated_core_ms: 12000, sample: Some(s2) }, t(4));
        p.add(&NodeUsage { dedicated_core_ms: 100, sample: None }, t(5));
        assert_eq!(p.dedicated_core_ms, 16100);
        assert!((p.avg_cpu_percentage() - 12.5).abs() < 1e-9, "2 s of CPU over 16 core-seconds");
        assert!((p.avg_memory_gib() - 2.5).abs() < 1e-9);
        assert!((p.avg_disk_gib() - 2.0).abs() < 1e-9);
        assert_eq!((p.peak_memory_bytes, p.peak_disk_bytes, p.read_bytes, p.write_bytes), (3 * gib, 2 * gib, 512, 1024));
        assert_eq!(p.last_update_time, t(5));
        assert_eq!(PoolStats::new(t(0)).avg_cpu_percentage(), 0.0);
    }

    #[test]
    fn a_node_counts_its_cores_times_its_time_once() {
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "id": "n", "poolId": "p", "state": "idle", "schedulingState": "enabled",
            "stateTransitionTime": "2023-11-14T22:13:20Z", "allocationTime": "2023-11-14T22:13:20Z",
            "ipAddress": "127.0.0.1", "vmSize": "standard_d2_v3", "totalTasksRun": 0, "totalTasksSucceeded": 0,
            "runningTasksCount": 0, "runningTaskSlotsCount": 0, "isDedicated": true, "agentToken": "x", "rootDir": "/r"
        }))
        .unwrap();
        assert_eq!(n.allocation_time, t(0));
        assert_eq!(n.count_core_time(Some(2), 8, t(10)).dedicated_core_ms(), 20_000, "2 cores for 10 s since allocation");
        assert_eq!(n.count_core_time(None, 8, t(15)).dedicated_core_ms(), 10_000, "the last reported cores count");
        assert_eq!(n.count_core_time(Some(2), 8, t(15) - Duration::seconds(1)).core_ms(), 0, "time never runs backwards");
        n.is_dedicated = false;
        let spot = n.count_core_time(Some(2), 8, t(20));
        assert_eq!((spot.dedicated_core_ms(), spot.core_ms()), (0, 10_000), "low-priority nodes have no dedicated core-time");
    }
}
