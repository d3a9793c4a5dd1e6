//! Autoscale: evaluating pools' formulas when autoscale is enabled and then every
//! `autoScaleEvaluationInterval` of the reactor's clock, and the metric samples formulas read.
//!
//! Rules (Batch "Create a formula to automatically scale compute nodes"): an evaluation sets
//! the pool's targets (and the deallocation option of nodes it removes) and records the
//! pool's `autoScaleRun`; a failed one records the error and leaves the pool as it is.
//! Evaluate AutoScale computes a run without changing the pool. Disable AutoScale stops a
//! resize in progress: nodes still being allocated (`creating`, `starting`) are cancelled and
//! the targets become the nodes the pool keeps (as Stop Resize documents: "the pool
//! stabilizes at the number of nodes it was at").
//!
//! Samples (kept in memory, see [`crate::autoscale::samples`]): every 30 s of the reactor's
//! clock, and at every evaluation, a pool with autoscale records one row: the task counts of
//! the jobs on the pool (active = queued task instances whose dependencies are met, running,
//! pending = both; succeeded and failed = completed tasks of those jobs by result, from the
//! store), its node counts, and what its nodes' agents reported since the previous row
//! (`NodeSample`s: CPU percent of the nodes' cores, node-seconds, average memory in MB and
//! disk in GB, bytes read and written). Network traffic and disk operations are not measured:
//! those samples are 0. Histories are not stored: after a restart they start again.

use super::{Answer, Backing, Reactor, Records, Ticket};
use crate::agent::protocol::NodeSample;
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::autoscale::samples::SAMPLE_PERIOD_SECS;
use crate::autoscale::{self, Formula, History, Input, Metric, Metrics, Run};
use crate::model::autoscale::{interval_of, AutoScaleRun};
use crate::model::node::{Node, NodeState};
use crate::model::pool::{AllocationState, DeallocationOption, Pool, PoolState};
use crate::model::task::Task;
use crate::model::time::Timestamp;
use crate::store::StoreResult;
use std::collections::{BTreeMap, HashMap};

/// What the agents of one pool reported since its last sample row.
#[derive(Debug, Default, Clone)]
struct NodeReports {
    cpu_ms: u64,
    /// Core-milliseconds the reports covered.
    capacity_ms: u64,
    wall_ms: u64,
    read_bytes: u64,
    write_bytes: u64,
    /// The latest memory and disk of each node that reported.
    latest: BTreeMap<String, (u64, u64)>,
}

/// One autoscale pool's memory.
#[derive(Debug, Default, Clone)]
pub struct PoolScale {
    history: History,
    reports: NodeReports,
    /// When the formula is evaluated next.
    next: Option<Timestamp>,
}

impl Reactor {
    /// A node's agent reported a sample: it counts in its pool's next row.
    pub(super) fn autoscale_node_sample(&mut self, pool_id: &str, node_id: &str, s: &NodeSample) {
        if let Some(p) = self.autoscale.get_mut(pool_id) {
            let r = &mut p.reports;
            r.cpu_ms += s.cpu_ms;
            r.capacity_ms += s.interval_ms * u64::from(s.cores.max(1));
            r.wall_ms += s.interval_ms;
            r.read_bytes += s.read_bytes;
            r.write_bytes += s.write_bytes;
            r.latest.insert(node_id.to_string(), (s.memory_bytes, s.disk_bytes));
        }
    }

    /// Rebuilds the evaluation schedule from stored pools (at start and after a failed
    /// batch): each autoscale pool's next evaluation is its last run plus its interval. The
    /// sample histories of pools still autoscaled are kept.
    pub(super) fn restore_autoscale(&mut self, pools: &[Pool]) {
        let mut kept = std::mem::take(&mut self.autoscale);
        for p in pools.iter().filter(|p| p.spec.enable_auto_scale == Some(true) && p.status.state == PoolState::Active) {
            let mut scale = kept.remove(&p.spec.id).unwrap_or_default();
            scale.next = p.status.auto_scale_run.as_ref().map(|run| next_after(run.timestamp, p));
            self.autoscale.insert(p.spec.id.clone(), scale);
        }
    }

    /// A pool was added or changed: an autoscale pool never evaluated (a new pool, an auto
    /// pool) is evaluated now; a pool no longer autoscaled is forgotten.
    pub(super) async fn autoscale_pool_changed<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str) -> StoreResult<()> {
        let Some(pool) = r.get::<Pool>("", pool_id).await? else {
            self.autoscale.remove(pool_id);
            return Ok(());
        };
        if pool.spec.enable_auto_scale != Some(true) || pool.status.state != PoolState::Active {
            self.autoscale.remove(pool_id);
            return Ok(());
        }
        if pool.status.auto_scale_run.is_none() {
            self.evaluate_and_apply(r, pool).await?;
        }
        Ok(())
    }

    /// Enable AutoScale (the handler stored the formula and interval): evaluates now and
    /// restarts the schedule from now. Answers 404 `PoolNotFound` for a pool gone meanwhile.
    pub(super) async fn enable_autoscale<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(pool) = r.get::<Pool>("", pool_id).await?.filter(|p| p.spec.enable_auto_scale == Some(true)) else {
            return Ok(Err(BatchError::not_found(ResourceKind::Pool)));
        };
        self.evaluate_and_apply(r, pool).await?;
        self.reconcile_pool(r, pool_id).await?;
        Ok(Ok(()))
    }

    /// Disable AutoScale (the handler cleared the settings): forgets the pool's samples and
    /// stops a resize in progress (see the module documentation).
    pub(super) async fn disable_autoscale<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str) -> StoreResult<ApiResult<()>> {
        self.autoscale.remove(pool_id);
        let Some(mut pool) = r.get::<Pool>("", pool_id).await? else { return Ok(Err(BatchError::not_found(ResourceKind::Pool))) };
        if pool.status.allocation_state != AllocationState::Resizing {
            return Ok(Ok(()));
        }
        let (mut dedicated, mut low_priority) = (0, 0);
        for n in r.children::<Node>(pool_id).await? {
            match n.state {
                NodeState::Creating | NodeState::Starting => self.remove_node(r, pool_id, &n.id, DeallocationOption::Requeue).await?,
                NodeState::LeavingPool => {}
                _ if n.is_dedicated => dedicated += 1,
                _ => low_priority += 1,
            }
        }
        if let Some(p) = r.get::<Pool>("", pool_id).await? {
            pool = p;
        }
        pool.spec.target_dedicated_nodes = Some(dedicated);
        pool.spec.target_low_priority_nodes = Some(low_priority);
        r.put(pool);
        self.touched_pools.insert(pool_id.to_string());
        Ok(Ok(()))
    }

    /// Evaluate AutoScale: `formula` against the pool's metrics now; the pool does not
    /// change (its sample history gets a row, as at any evaluation). Answers 404
    /// `PoolNotFound`, 409 `PoolBeingDeleted`, or 409 `OperationInvalidForCurrentState` when
    /// autoscale is off.
    pub(super) async fn evaluate_autoscale<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        formula: &Formula,
        ticket: Option<Ticket>,
    ) -> StoreResult<()> {
        let answer = match r.get::<Pool>("", pool_id).await? {
            None => Err(BatchError::not_found(ResourceKind::Pool)),
            Some(p) if p.status.state == PoolState::Deleting => Err(BatchError::being_deleted(ResourceKind::Pool)),
            Some(p) if p.spec.enable_auto_scale != Some(true) => Err(not_enabled()),
            Some(pool) => {
                let (run, now) = self.evaluate(r, &pool, formula).await?;
                Ok(AutoScaleRun::of(now, &run))
            }
        };
        self.answer(ticket, Answer::Run(answer));
        Ok(())
    }

    /// Evaluates the pools whose time has come, and takes the samples that are due.
    pub(super) async fn autoscale_tick<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        let due: Vec<String> = self.autoscale.iter().filter(|(_, s)| s.next.is_some_and(|t| t <= now)).map(|(id, _)| id.clone()).collect();
        for id in due {
            match r.get::<Pool>("", &id).await? {
                Some(pool) if pool.spec.enable_auto_scale == Some(true) => {
                    self.evaluate_and_apply(r, pool).await?;
                    self.reconcile_pool(r, &id).await?;
                }
                _ => {
                    self.autoscale.remove(&id);
                }
            }
        }
        let period = chrono::Duration::seconds(SAMPLE_PERIOD_SECS);
        let sampling: Vec<String> = self
            .autoscale
            .iter()
            .filter(|(_, s)| s.history.last_time().is_none_or(|t| now - t >= period))
            .map(|(id, _)| id.clone())
            .collect();
        for id in sampling {
            if let Some(pool) = r.get::<Pool>("", &id).await? {
                self.sample(r, &pool).await?;
            }
        }
        Ok(())
    }

    /// Records a sample row of `pool` now and returns it.
    async fn sample<B: Backing>(&mut self, r: &mut Records<B>, pool: &Pool) -> StoreResult<Metrics> {
        let now = self.now();
        let pool_id = pool.spec.id.as_str();
        let (active, running, jobs) = self.core.pool_load(pool_id);
        r.flush().await?;
        let (mut succeeded, mut failed) = (0, 0);
        for job in &jobs {
            succeeded += r.backing.count_result::<Task>(job, "completed", "success").await?;
            failed += r.backing.count_result::<Task>(job, "completed", "failure").await?;
        }
        let nodes: Vec<Node> = r.children::<Node>(pool_id).await?;
        let count = |f: &dyn Fn(&Node) -> bool| nodes.iter().filter(|n| f(n)).count() as f64;
        let reports = self.autoscale.get_mut(pool_id).map(|s| std::mem::take(&mut s.reports)).unwrap_or_default();
        let reporting = reports.latest.len().max(1) as f64;
        let mut m = Metrics::default();
        let values = [
            (Metric::CpuPercent, if reports.capacity_ms > 0 { reports.cpu_ms as f64 * 100.0 / reports.capacity_ms as f64 } else { 0.0 }),
            (Metric::WallClockSeconds, reports.wall_ms as f64 / 1000.0),
            (Metric::MemoryBytes, reports.latest.values().map(|(mem, _)| *mem as f64).sum::<f64>() / reporting / 1048576.0),
            (Metric::DiskBytes, reports.latest.values().map(|(_, disk)| *disk as f64).sum::<f64>() / reporting / 1073741824.0),
            (Metric::DiskReadBytes, reports.read_bytes as f64),
            (Metric::DiskWriteBytes, reports.write_bytes as f64),
            (Metric::SampleNodeCount, reports.latest.len() as f64),
            (Metric::ActiveTasks, active as f64),
            (Metric::RunningTasks, running as f64),
            (Metric::PendingTasks, (active + running) as f64),
            (Metric::SucceededTasks, succeeded as f64),
            (Metric::FailedTasks, failed as f64),
            (Metric::TaskSlotsPerNode, f64::from(pool.spec.slots_per_node())),
            (Metric::CurrentDedicatedNodes, count(&|n| n.is_dedicated && n.state != NodeState::LeavingPool)),
            (Metric::CurrentLowPriorityNodes, count(&|n| !n.is_dedicated && n.state != NodeState::LeavingPool)),
            (Metric::PreemptedNodeCount, count(&|n| n.state == NodeState::Preempted)),
            (Metric::UsableNodeCount, count(&|n| matches!(n.state, NodeState::Idle | NodeState::Running))),
        ];
        for (metric, v) in values {
            m.set(metric, v);
        }
        self.autoscale.entry(pool_id.to_string()).or_default().history.push(now, m);
        Ok(m)
    }

    /// Evaluates `formula` for `pool` now (a sample row is taken first).
    async fn evaluate<B: Backing>(&mut self, r: &mut Records<B>, pool: &Pool, formula: &Formula) -> StoreResult<(Run, Timestamp)> {
        let now = self.now();
        let current = self.sample(r, pool).await?;
        let history = &self.autoscale[&pool.spec.id].history;
        let input = Input {
            now,
            current,
            history,
            target_dedicated: f64::from(pool.spec.target_dedicated_nodes.unwrap_or(0)),
            target_low_priority: f64::from(pool.spec.target_low_priority_nodes.unwrap_or(0)),
            seed: rand::random(),
        };
        Ok((autoscale::evaluate(formula, &input), now))
    }

    /// Evaluates the pool's own formula, records the run, sets the targets it gave and
    /// schedules the next evaluation. The caller reconciles the pool's nodes.
    async fn evaluate_and_apply<B: Backing>(&mut self, r: &mut Records<B>, mut pool: Pool) -> StoreResult<()> {
        let now = self.now();
        let run = match autoscale::parse(pool.spec.auto_scale_formula.as_deref().unwrap_or_default()) {
            Ok(f) => self.evaluate(r, &pool, &f).await?.0,
            // Formulas are checked when they come; one stored otherwise fails every run.
            Err(e) => Run { results: String::new(), outcome: Err(e) },
        };
        pool.status.auto_scale_run = Some(AutoScaleRun::of(now, &run));
        if let Ok(t) = &run.outcome {
            let changed =
                (pool.spec.target_dedicated_nodes, pool.spec.target_low_priority_nodes) != (Some(t.dedicated), Some(t.low_priority));
            if changed {
                pool.resize_to(t.dedicated, t.low_priority, now, DeallocationOption::parse(&t.deallocation));
            }
        }
        let next = next_after(now, &pool);
        self.autoscale.entry(pool.spec.id.clone()).or_default().next = Some(next);
        r.put(pool);
        Ok(())
    }
}

/// When the evaluation after one at `at` is due.
fn next_after(at: Timestamp, pool: &Pool) -> Timestamp {
    let interval = interval_of(pool.spec.auto_scale_evaluation_interval.as_deref());
    at + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::minutes(15))
}

/// 409 `OperationInvalidForCurrentState`: Evaluate AutoScale on a pool without autoscale.
pub fn not_enabled() -> BatchError {
    BatchError::conflict(
        "OperationInvalidForCurrentState",
        "Automatic scaling is not enabled on the pool: enable it (Enable AutoScale) before evaluating a formula.",
    )
}

/// The autoscale memory of every pool, by pool id.
pub type Scales = HashMap<String, PoolScale>;
