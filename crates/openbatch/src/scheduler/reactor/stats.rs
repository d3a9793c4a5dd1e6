//! Statistics: what each ended task attempt and each node sample adds to the task, job,
//! pool and account statistics (`model::stats`).
//!
//! A task's own statistics change with the task. What an attempt adds to its job (and the
//! job's schedule) and to the
//! account's lifetime job statistics, and what a node adds to its pool and to the account's
//! lifetime pool statistics, is kept until the end of the batch ([`Reactor::flush_stats`]):
//! jobs and pools are records other rules hold while they end tasks or remove nodes, and
//! adding to them then would be overwritten by the holder's copy.

use super::{Backing, Reactor, Records};
use crate::agent::protocol::{ExecResult, NodeSample};
use crate::model::job::Job;
use crate::model::job_schedule::JobSchedule;
use crate::model::node::Node;
use crate::model::pool::Pool;
use crate::model::stats::{Attempt, AttemptOutcome, JobLifetimeStats, JobStats, NodeUsage, PoolLifetimeStats, PoolStats, TaskStats};
use crate::model::task::{Task, TaskState};
use crate::model::time::Timestamp;
use crate::model::usage::{CoreSpan, PoolUsage};
use crate::store::StoreResult;

/// Statistics waiting for the end of the batch.
#[derive(Debug, Default)]
pub struct PendingStats {
    /// Ended attempts, by job id.
    attempts: Vec<(String, Attempt)>,
    /// Node usage, by pool id.
    nodes: Vec<(String, NodeUsage)>,
    /// Node core time for the usage metrics: pool id, VM size, span.
    spans: Vec<(String, String, CoreSpan)>,
}

impl PendingStats {
    /// Forgets everything (a batch that failed is applied again from its records).
    pub fn clear(&mut self) {
        self.attempts.clear();
        self.nodes.clear();
        self.spans.clear();
    }
}

/// The CPUs of this machine, for a node that has not reported its own yet.
fn host_cores() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
}

fn millis_between(from: Timestamp, to: Timestamp) -> u64 {
    (to - from).num_milliseconds().max(0) as u64
}

impl Reactor {
    /// An attempt of `task` ended with the agent's result `res` (the process started at
    /// `started`, service time): it counts in the task's statistics now, and in its job's and
    /// the account's at the end of the batch.
    pub(super) fn count_attempt(&mut self, task: &mut Task, res: &ExecResult, started: Option<Timestamp>, outcome: AttemptOutcome) {
        let attempt = Attempt {
            usage: res.usage.unwrap_or_default(),
            wall_ms: res.started_ms.map(|st| (res.ended_ms - st).max(0) as u64).unwrap_or(0),
            wait_ms: started.map(|st| millis_between(task.creation_time, st)),
            outcome,
        };
        self.count(task, attempt);
    }

    /// `task` was ended by the service (Terminate Task, Terminate Job, its node removed): it
    /// counts as failed, with the time its process had run when it was running (its usage
    /// went with the killed process).
    pub(super) fn count_ended_by_service(&mut self, task: &mut Task, now: Timestamp) {
        let start = task.status.execution_info.start_time;
        let was_running = task.status.previous_state == Some(TaskState::Running);
        let attempt = Attempt {
            usage: Default::default(),
            wall_ms: start.filter(|_| was_running).map(|st| millis_between(st, now)).unwrap_or(0),
            wait_ms: start.map(|st| millis_between(task.creation_time, st)),
            outcome: AttemptOutcome::Failed,
        };
        self.count(task, attempt);
    }

    fn count(&mut self, task: &mut Task, attempt: Attempt) {
        let now = self.now();
        task.stats.get_or_insert_with(|| TaskStats::new(task.creation_time)).add_attempt(&attempt, now);
        self.pending_stats.attempts.push((task.job_id.clone(), attempt));
    }

    /// An agent's sample of its node: the node's core-time since it was last counted and the
    /// sample count in its pool's statistics (at the end of the batch).
    pub(super) async fn node_sampled<B: Backing>(&mut self, r: &mut Records<B>, node_id: &str, sample: NodeSample) -> StoreResult<()> {
        let Some(pool_id) = self.nodes.get(node_id).map(|n| n.pool_id.clone()) else { return Ok(()) };
        let Some(mut node) = r.get::<Node>(&pool_id, node_id).await? else { return Ok(()) };
        self.autoscale_node_sample(&pool_id, node_id, &sample);
        let span = node.count_core_time(Some(sample.cores), host_cores(), self.now());
        self.pending_stats.spans.push((pool_id.clone(), node.vm_size.clone(), span));
        r.put(node);
        self.pending_stats.nodes.push((pool_id, NodeUsage { dedicated_core_ms: span.dedicated_core_ms(), sample: Some(sample) }));
        Ok(())
    }

    /// A node leaves its pool: its core-time up to now counts.
    pub(super) async fn node_leaving<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str, node_id: &str) -> StoreResult<()> {
        if let Some(mut node) = r.get::<Node>(pool_id, node_id).await? {
            let span = node.count_core_time(None, host_cores(), self.now());
            self.pending_stats.spans.push((pool_id.to_string(), node.vm_size.clone(), span));
            self.pending_stats.nodes.push((pool_id.to_string(), NodeUsage { dedicated_core_ms: span.dedicated_core_ms(), sample: None }));
        }
        Ok(())
    }

    /// Adds the batch's attempts to their jobs and to the lifetime job statistics, and its
    /// node usage to the pools and the lifetime pool statistics (a job or pool deleted in the
    /// batch counts in the lifetime statistics only).
    pub(super) async fn flush_stats<B: Backing>(&mut self, r: &mut Records<B>) -> StoreResult<()> {
        let now = self.now();
        let attempts = std::mem::take(&mut self.pending_stats.attempts);
        if !attempts.is_empty() {
            let mut life = r.get::<JobLifetimeStats>("", JobLifetimeStats::ID).await?.unwrap_or_else(|| JobLifetimeStats::new(now));
            for (job_id, a) in &attempts {
                life.0.add_attempt(a, now);
                if let Some(mut job) = r.get::<Job>("", job_id).await? {
                    job.stats.get_or_insert_with(|| JobStats::new(job.creation_time)).add_attempt(a, now);
                    if let Some(mut s) = match job.schedule_id() {
                        Some(id) => r.get::<JobSchedule>("", id).await?,
                        None => None,
                    } {
                        s.stats.get_or_insert_with(|| JobStats::new(s.creation_time)).add_attempt(a, now);
                        r.put(s);
                    }
                    r.put(job);
                }
            }
            r.put(life);
        }
        let nodes = std::mem::take(&mut self.pending_stats.nodes);
        if !nodes.is_empty() {
            let mut life = r.get::<PoolLifetimeStats>("", PoolLifetimeStats::ID).await?.unwrap_or_else(|| PoolLifetimeStats::new(now));
            for (pool_id, u) in &nodes {
                life.0.add(u, now);
                if let Some(mut pool) = r.get::<Pool>("", pool_id).await? {
                    pool.stats.get_or_insert_with(|| PoolStats::new(pool.creation_time)).add(u, now);
                    r.put(pool);
                }
            }
            r.put(life);
        }
        for (pool_id, vm_size, span) in std::mem::take(&mut self.pending_stats.spans) {
            for (start, core_ms) in span.split() {
                let key = PoolUsage::key(&pool_id, start);
                let mut u = r.get::<PoolUsage>("", &key).await?.unwrap_or_else(|| PoolUsage::new(&pool_id, start, &vm_size));
                u.core_ms += core_ms;
                r.put(u);
            }
        }
        Ok(())
    }
}
