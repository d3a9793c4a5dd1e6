//! Resizes that end short of their targets, and nodes removed by name.
//!
//! Rules (Azure Batch):
//! * **Stop Resize** (Pool_StopResize) "only stops any further changes being made, and the
//!   Pool maintains its current state": the allocation state goes `stopping`, then `steady`;
//!   targets stay as they were and each kind of node short of its target gets a
//!   `ResizeStopped` resize error. Nodes whose allocation had not finished — here, nodes whose
//!   agent never said hello (`creating`, or `starting` before their first boot) — are released,
//!   as the service gives up the VMs it was still allocating.
//!   Nodes that were leaving the pool (waiting for their tasks to complete) stay in it: "the
//!   Pool stabilizes at the number of Compute Nodes it was at when the stop operation was done".
//! * **`resizeTimeout`**: a resize still short of its targets when the timeout (15 minutes by
//!   default, at least 5) has passed ends the same way with `AllocationTimedOut` — here that
//!   is a shrink whose `taskcompletion`/`retaineddata` nodes still run tasks (local nodes that
//!   fail to start become `unusable` within seconds, and count).
//! * **Node quota**: a resize never creates more nodes than the service's configured limits
//!   ([`PoolLimits`]); the nodes it could not create are reported as the service reports an
//!   account's exhausted core quota (`AccountCoreQuotaReached`,
//!   `AccountLowPriorityCoreQuotaReached`) and the pool settles `steady` below its target.
//! * **Remove Nodes** (Pool_RemoveNodes): the named nodes leave with the request's
//!   `nodeDeallocationOption`; the targets were lowered by the handler, so no other node goes.
//!
//! A halted resize (`PoolStatus::resize_halted`) adds and removes no node until the next
//! resize begins.

use super::{set_node_state, Backing, Reactor, Records};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::node::{Node, NodeState, SchedulingState};
use crate::model::pool::{resize_error, AllocationState, DeallocationOption, Pool, PoolState};
use crate::model::time::{deadline, Timestamp};
use crate::store::StoreResult;
use std::collections::HashMap;
use std::time::Duration;

/// The service's limits on compute nodes (`serve --max-dedicated-nodes`,
/// `--max-low-priority-nodes`) and its Spot behaviour (`--spot-recovery`,
/// `--spot-preemption-rate`, `--chaos-seed`).
#[derive(Debug, Clone)]
pub struct PoolLimits {
    /// Dedicated nodes the service runs at most, over all pools.
    pub max_dedicated_nodes: u32,
    /// Spot/low-priority nodes the service runs at most, over all pools.
    pub max_low_priority_nodes: u32,
    /// How long a preempted Spot node stays `preempted` before it is restored (service clock).
    pub spot_recovery: Duration,
    /// Chance per hour (service clock) that a running Spot node is preempted; 0 disables the
    /// random preemption of chaos testing.
    pub spot_preemption_rate: f64,
    /// Seed of the random preemptions (the same seed preempts the same way).
    pub chaos_seed: u64,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            max_dedicated_nodes: 256,
            max_low_priority_nodes: 256,
            spot_recovery: Duration::from_secs(30),
            spot_preemption_rate: 0.0,
            chaos_seed: 0,
        }
    }
}

/// An operation on a pool that the reactor carries out, answering the request.
#[derive(Debug, Clone)]
pub enum PoolOp {
    /// Pool Stop Resize.
    StopResize,
    /// Pool Remove Nodes: the nodes (checked to be in the pool) and how their tasks end.
    RemoveNodes { node_ids: Vec<String>, option: DeallocationOption },
    /// Preempt a Spot/low-priority node now (`POST /openbatch/v1/pools/{pool}/nodes/{node}/preempt`).
    Preempt { node_id: String },
}

impl Reactor {
    /// Carries out a [`PoolOp`]: 404 `PoolNotFound` (or `NodeNotFound`) when gone meanwhile.
    pub(super) async fn pool_op<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str, op: PoolOp) -> StoreResult<ApiResult<()>> {
        let Some(pool) = r.get::<Pool>("", pool_id).await? else { return Ok(Err(BatchError::not_found(ResourceKind::Pool))) };
        if pool.status.state == PoolState::Deleting {
            return Ok(Err(BatchError::being_deleted(ResourceKind::Pool)));
        }
        match op {
            PoolOp::StopResize => {
                if pool.status.allocation_state != AllocationState::Steady {
                    self.halt_resize(r, pool, "ResizeStopped").await?;
                }
                Ok(Ok(()))
            }
            PoolOp::RemoveNodes { node_ids, option } => {
                for node_id in &node_ids {
                    if r.get::<Node>(pool_id, node_id).await?.is_some_and(|n| n.state != NodeState::LeavingPool) {
                        self.remove_node(r, pool_id, node_id, option).await?;
                    }
                }
                self.touched_pools.insert(pool_id.to_string());
                self.reconcile_pool(r, pool_id).await?;
                Ok(Ok(()))
            }
            PoolOp::Preempt { node_id } => self.preempt_node(r, pool_id, &node_id).await,
        }
    }

    /// Ends a pool's resize short of its targets with `code` for each kind of node not
    /// reached: nodes not yet allocated are released, nodes still leaving stay in the pool,
    /// and nothing more is added or removed until the next resize.
    pub(super) async fn halt_resize<B: Backing>(&mut self, r: &mut Records<B>, mut pool: Pool, code: &str) -> StoreResult<()> {
        let pool_id = pool.spec.id.clone();
        let now = self.now();
        let mut counts = (0, 0);
        for mut n in r.children::<Node>(&pool_id).await? {
            let unallocated = matches!(n.state, NodeState::Creating | NodeState::Starting) && n.last_boot_time.is_none();
            if unallocated {
                self.remove_node(r, &pool_id, &n.id, DeallocationOption::Requeue).await?;
                continue;
            }
            if n.state == NodeState::LeavingPool {
                let state = match (n.scheduling_state, n.running_tasks_count) {
                    (SchedulingState::Disabled, 0) => NodeState::Offline,
                    (_, 0) => NodeState::Idle,
                    _ => NodeState::Running,
                };
                set_node_state(&mut n, state, now);
                let schedulable = n.scheduling_state == SchedulingState::Enabled;
                self.core.upsert_node(&pool_id, &n.id, schedulable);
                r.put(n.clone());
            }
            if n.is_dedicated {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
        let targets = (pool.spec.target_dedicated_nodes.unwrap_or(0), pool.spec.target_low_priority_nodes.unwrap_or(0));
        for (dedicated, have, want) in [(true, counts.0, targets.0), (false, counts.1, targets.1)] {
            if have != want {
                pool.status.resize_errors.push(resize_error(code, dedicated, have > want, None));
            }
        }
        pool.status.resize_halted = true;
        pool.status.pending_deallocation = None;
        if code == "ResizeStopped" && pool.status.allocation_state == AllocationState::Resizing {
            // Stop Resize shows `stopping` until the batch settles the pool `steady`.
            pool.status.allocation_state = AllocationState::Stopping;
            pool.status.allocation_state_transition_time = now;
        }
        self.resize_deadlines.remove(&pool_id);
        r.put(pool);
        self.touched_pools.insert(pool_id);
        Ok(())
    }

    /// Notes when the resize of `pool` times out (its `resizeTimeout` after it began).
    pub(super) fn watch_resize(&mut self, pool: &Pool) {
        let resizing = pool.status.allocation_state == AllocationState::Resizing && !pool.status.resize_halted;
        let until = pool.status.resize_started.zip(pool.spec.resize_timeout.as_deref()).and_then(|(at, t)| deadline(at, t));
        match (resizing, until) {
            (true, Some(at)) => self.resize_deadlines.insert(pool.spec.id.clone(), at),
            _ => self.resize_deadlines.remove(&pool.spec.id),
        };
    }

    /// Halts the resizes whose timeout passed (`AllocationTimedOut`).
    pub(super) async fn resize_timeouts<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        let due: Vec<String> = self.resize_deadlines.iter().filter(|(_, at)| **at <= now).map(|(p, _)| p.clone()).collect();
        for pool_id in due {
            self.resize_deadlines.remove(&pool_id);
            if let Some(pool) = r.get::<Pool>("", &pool_id).await? {
                if pool.status.allocation_state == AllocationState::Resizing && !pool.status.resize_halted {
                    tracing::warn!(%pool_id, "resize timed out before the pool reached its targets");
                    self.halt_resize(r, pool, "AllocationTimedOut").await?;
                }
            }
        }
        Ok(())
    }

    /// How many more nodes of a kind the service's limits allow, over all pools.
    pub(super) fn quota_left(&self, dedicated: bool) -> usize {
        let limit = if dedicated { self.info.limits.max_dedicated_nodes } else { self.info.limits.max_low_priority_nodes } as usize;
        let used = self.nodes.values().filter(|rt| rt.dedicated == dedicated).count();
        limit.saturating_sub(used)
    }
}

/// The resize error of a pool whose nodes of a kind the node quota cut short.
pub(super) fn quota_error(dedicated: bool, limit: u32) -> serde_json::Value {
    let (code, flag) = if dedicated {
        ("AccountCoreQuotaReached", "--max-dedicated-nodes")
    } else {
        ("AccountLowPriorityCoreQuotaReached", "--max-low-priority-nodes")
    };
    let detail = format!("openbatch runs at most {limit} such nodes over all pools (serve {flag}).");
    resize_error(code, dedicated, false, Some(&detail))
}

/// The resize deadlines of the pools being resized, by pool id.
pub(super) type ResizeDeadlines = HashMap<String, Timestamp>;
