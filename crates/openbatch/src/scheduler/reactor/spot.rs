//! Spot/low-priority nodes: preemption, on purpose or at random, and restoration.
//!
//! Rules (Azure Batch, "Use Spot VMs with Batch workloads"): a preempted Spot node is
//! `preempted` — its VM is gone, so its files are lost — and the tasks that were running on it
//! are requeued and run again when a node is free; it still counts toward
//! `currentLowPriorityNodes` (and `$PreemptedNodeCount`), and Batch restores the lost capacity
//! to return to the target. Here a preempted node is restored after
//! [`PoolLimits::spot_recovery`](super::resize::PoolLimits) as a fresh node (its directory
//! wiped, its start task run again) under the same id.
//!
//! Preemption is triggered by an administrator (`openbatch preempt`, or
//! `POST /openbatch/v1/pools/{pool}/nodes/{node}/preempt`) or, for chaos testing, at random:
//! each running Spot node is preempted with [`PoolLimits::spot_preemption_rate`] per hour of
//! service time, drawn from a generator seeded with `chaos_seed`.

use super::{set_node_state, Backing, Effect, NodeRt, Reactor, Records};
use crate::agent::protocol::ServiceMessage;
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::node::{Node, NodeState};
use crate::model::time::Timestamp;
use crate::store::StoreResult;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// The reactor's Spot bookkeeping: preempted nodes waiting to be restored, and the random
/// generator of chaos preemptions.
#[derive(Debug)]
pub struct Spot {
    /// Preempted nodes by id: their pool, and when they are restored.
    pub preempted: BTreeMap<String, (String, Timestamp)>,
    rng: rand::rngs::StdRng,
    /// When chaos preemption last drew (its chances cover the time since).
    last_draw: Option<Timestamp>,
}

impl Spot {
    /// No node preempted; chaos draws seeded with `seed`.
    pub fn new(seed: u64) -> Spot {
        Spot { preempted: BTreeMap::new(), rng: rand::rngs::StdRng::seed_from_u64(seed), last_draw: None }
    }
}

impl Reactor {
    /// Preempts a Spot/low-priority node: see the module documentation. 404 `NodeNotFound`;
    /// 409 `OperationInvalidForCurrentState` for a dedicated node, or one already preempted
    /// or leaving its pool.
    pub(super) async fn preempt_node<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
    ) -> StoreResult<ApiResult<()>> {
        let Some(node) = r.get::<Node>(pool_id, node_id).await? else { return Ok(Err(BatchError::not_found(ResourceKind::Node))) };
        let refusal = if node.is_dedicated {
            Some("Only Spot/low-priority compute nodes can be preempted; this node is dedicated.")
        } else if matches!(node.state, NodeState::Preempted | NodeState::LeavingPool) {
            Some("The compute node is already preempted or leaving its pool.")
        } else {
            None
        };
        if let Some(message) = refusal {
            return Ok(Err(BatchError::conflict("OperationInvalidForCurrentState", message)));
        }
        tracing::warn!(%pool_id, %node_id, "Spot node preempted; requeueing its tasks");
        self.evict_tasks(r, (pool_id, node_id), false, "").await?;
        self.abandon_side_tasks(r, node_id).await?;
        for job_id in self.core.prepared_jobs(node_id) {
            self.core.forget_prep(&job_id, node_id);
        }
        self.core.upsert_node(pool_id, node_id, false);
        // The VM is gone: its agent stops and its files go with it.
        self.send(node_id, ServiceMessage::Shutdown { remove_files: true });
        if let Some(rt) = self.nodes.remove(node_id) {
            if let (false, Some(pid)) = (rt.connected, rt.pid) {
                self.out.push(Effect::KillAgent { pid });
            }
        }
        let now = self.now();
        let Some(mut node) = r.get::<Node>(pool_id, node_id).await? else { return Ok(Ok(())) };
        node.running_tasks_count = 0;
        node.running_task_slots_count = 0;
        node.start_task_info = None;
        node.agent_pid = None;
        set_node_state(&mut node, NodeState::Preempted, now);
        r.put(node);
        let recovery = chrono::Duration::from_std(self.info.limits.spot_recovery).unwrap_or_default();
        self.spot.preempted.insert(node_id.to_string(), (pool_id.to_string(), now + recovery));
        self.touched_pools.insert(pool_id.to_string());
        Ok(Ok(()))
    }

    /// Restores the preempted nodes whose recovery time came: each starts again as a new node
    /// (a new agent token; the agent recreates its directory and runs the start task).
    pub(super) async fn restore_preempted<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        let due: Vec<String> = self.spot.preempted.iter().filter(|(_, (_, at))| *at <= now).map(|(id, _)| id.clone()).collect();
        for node_id in due {
            let Some((pool_id, _)) = self.spot.preempted.remove(&node_id) else { continue };
            let Some(mut node) = r.get::<Node>(&pool_id, &node_id).await? else { continue };
            if node.state != NodeState::Preempted {
                continue;
            }
            node.agent_token = uuid::Uuid::new_v4().simple().to_string();
            node.last_boot_time = None;
            node.errors.clear();
            set_node_state(&mut node, NodeState::Creating, now);
            self.nodes
                .insert(node_id.clone(), NodeRt { pool_id: pool_id.clone(), connected: false, since: now, pid: None, dedicated: false });
            self.core.upsert_node(&pool_id, &node_id, false);
            self.out.push(Effect::SpawnAgent { pool_id: pool_id.clone(), node_id: node_id.clone(), token: node.agent_token.clone() });
            r.put(node);
            self.touched_pools.insert(pool_id);
        }
        Ok(())
    }

    /// Chaos testing: preempts running Spot nodes at random (see the module documentation).
    pub(super) async fn chaos_preemptions<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        let rate = self.info.limits.spot_preemption_rate;
        let since = self.spot.last_draw.replace(now);
        let (Some(since), true) = (since, rate > 0.0) else { return Ok(()) };
        let hours = (now - since).num_milliseconds().max(0) as f64 / 3_600_000.0;
        let chance = 1.0 - (-rate * hours).exp();
        let mut candidates: Vec<(String, String)> =
            self.nodes.iter().filter(|(_, rt)| !rt.dedicated && rt.connected).map(|(id, rt)| (id.clone(), rt.pool_id.clone())).collect();
        candidates.sort();
        for (node_id, pool_id) in candidates {
            if self.spot.rng.gen::<f64>() < chance {
                // A node that cannot be preempted now (leaving its pool) is simply spared.
                let _ = self.preempt_node(r, &pool_id, &node_id).await?;
            }
        }
        Ok(())
    }
}
