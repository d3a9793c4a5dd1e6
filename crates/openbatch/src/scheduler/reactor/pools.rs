//! Pools: bringing a pool's compute nodes to its targets, and deleting it.
//!
//! Rules (Azure Batch): dedicated and low-priority (Spot) nodes count toward their own
//! targets; shrinking removes the least busy nodes first, with the resize's
//! `nodeDeallocationOption`; a pool is `resizing` until its counts reach the targets and no
//! node is still being created or leaving.

use super::{fill_of, Backing, Effect, NodeRt, Reactor, Records};
use crate::model::node::{Node, NodeState, SchedulingState};
use crate::model::pool::{AllocationState, DeallocationOption, Pool, PoolState};
use crate::store::StoreResult;

impl Reactor {
    /// Brings a pool's nodes to its targets, or removes the pool when it is being deleted.
    pub(super) async fn reconcile_pool<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str) -> StoreResult<()> {
        let Some(mut pool) = r.get::<Pool>("", pool_id).await? else { return Ok(()) };
        let nodes: Vec<Node> = r.children::<Node>(pool_id).await?;
        if pool.status.state == PoolState::Deleting {
            for n in &nodes {
                self.remove_node(r, pool_id, &n.id, DeallocationOption::Requeue).await?;
            }
            r.remove::<Pool>("", pool_id);
            self.core.remove_pool(pool_id);
            self.out.push(Effect::RemovePoolDir { pool_id: pool_id.to_string() });
            return Ok(());
        }
        self.core.upsert_pool(pool_id, pool.spec.slots_per_node(), fill_of(&pool));
        if pool.spec.os_refusal().is_some() {
            // No nodes can exist: the resize error was recorded when the target was set.
            if pool.status.allocation_state != AllocationState::Steady {
                pool.status.allocation_state = AllocationState::Steady;
                pool.status.allocation_state_transition_time = self.now();
            }
            r.put(pool);
            return Ok(());
        }
        if pool.status.resize_halted {
            // The resize ended short of its targets: nothing changes until the next one.
            r.put(pool);
            self.touched_pools.insert(pool_id.to_string());
            return Ok(());
        }
        // Dedicated and low-priority (Spot) nodes are reconciled separately: local nodes are
        // alike, but each counts toward its own target as the API reports them.
        let staying: Vec<&Node> = nodes.iter().filter(|n| n.state != NodeState::LeavingPool).collect();
        let option = pool.status.pending_deallocation.unwrap_or(DeallocationOption::Requeue);
        for (dedicated, target) in [
            (true, pool.spec.target_dedicated_nodes.unwrap_or(0).max(0) as usize),
            (false, pool.spec.target_low_priority_nodes.unwrap_or(0).max(0) as usize),
        ] {
            let have: Vec<&Node> = staying.iter().copied().filter(|n| n.is_dedicated == dedicated).collect();
            if have.len() < target {
                let allowed = (target - have.len()).min(self.quota_left(dedicated));
                for _ in 0..allowed {
                    let node = self.new_node(&mut pool, dedicated);
                    self.out.push(Effect::SpawnAgent {
                        pool_id: pool_id.to_string(),
                        node_id: node.id.clone(),
                        token: node.agent_token.clone(),
                    });
                    r.put(node);
                }
                if allowed < target - have.len() {
                    let limits = &self.info.limits;
                    let limit = if dedicated { limits.max_dedicated_nodes } else { limits.max_low_priority_nodes };
                    tracing::warn!(%pool_id, limit, dedicated, "node quota reached: the pool stays below its target");
                    pool.status.resize_errors.push(super::resize::quota_error(dedicated, limit));
                    pool.status.resize_halted = true;
                }
            } else if have.len() > target {
                // Remove the least busy nodes first.
                let mut order = have.clone();
                order.sort_by_key(|n| (n.running_tasks_count, std::cmp::Reverse(n.id.clone())));
                for n in order.into_iter().take(have.len() - target) {
                    self.remove_node(r, pool_id, &n.id, option).await?;
                }
            }
        }
        self.watch_resize(&pool);
        pool.status.pending_deallocation = None;
        r.put(pool);
        self.touched_pools.insert(pool_id.to_string());
        Ok(())
    }

    /// A new node record of `pool` (the pool's node index advances), known to the core as
    /// not yet schedulable.
    fn new_node(&mut self, pool: &mut Pool, dedicated: bool) -> Node {
        let now = self.now();
        let pool_id = pool.spec.id.clone();
        pool.status.next_node_index += 1;
        // The pool's creation time keeps node ids unique when a pool id is reused.
        let pool_key = format!("{pool_id}/{}", pool.creation_time.timestamp_micros());
        let node_id = format!("tvm-{:08x}-{}", fxhash(&pool_key), pool.status.next_node_index);
        let mut start_task = pool.spec.start_task.clone();
        if let Some(st) = start_task.as_mut() {
            st.normalize();
        }
        self.nodes.insert(node_id.clone(), NodeRt { pool_id: pool_id.clone(), connected: false, since: now, pid: None, dedicated });
        self.core.upsert_node(&pool_id, &node_id, false);
        Node {
            id: node_id.clone(),
            pool_id: pool_id.clone(),
            state: NodeState::Creating,
            scheduling_state: SchedulingState::Enabled,
            state_transition_time: now,
            last_boot_time: None,
            allocation_time: now,
            ip_address: "127.0.0.1".into(),
            vm_size: pool.spec.vm_size.clone(),
            total_tasks_run: 0,
            total_tasks_succeeded: 0,
            running_tasks_count: 0,
            running_task_slots_count: 0,
            start_task,
            start_task_info: None,
            errors: Vec::new(),
            is_dedicated: dedicated,
            node_agent_info: None,
            image_reference: pool.spec.virtual_machine_configuration.as_ref().map(|v| v.image_reference.clone()),
            agent_token: uuid::Uuid::new_v4().simple().to_string(),
            root_dir: self.info.nodes_dir.join(&pool_id).join(&node_id).display().to_string(),
            agent_pid: None,
            certificate_references: pool.spec.certificate_references.clone().unwrap_or_default(),
            meter: None,
            ops: Default::default(),
        }
    }

    /// Recomputes a pool's current node counts and allocation state (from the written
    /// records: the batch's changes were flushed before).
    pub(super) async fn refresh_pool<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str) -> StoreResult<()> {
        let Some(mut pool) = r.get::<Pool>("", pool_id).await? else { return Ok(()) };
        let (mut dedicated, mut low_priority) = (0, 0);
        let (mut settling, mut leaving) = (false, false);
        for n in r.children::<Node>(pool_id).await? {
            if n.state == NodeState::LeavingPool {
                leaving = true;
                continue;
            }
            settling |= n.state == NodeState::Creating;
            if n.is_dedicated {
                dedicated += 1;
            } else {
                low_priority += 1;
            }
        }
        let targets = (pool.spec.target_dedicated_nodes.unwrap_or(0), pool.spec.target_low_priority_nodes.unwrap_or(0));
        let reached = pool.spec.os_refusal().is_some() || (dedicated, low_priority) == targets;
        let state = if pool.status.resize_halted {
            AllocationState::Steady
        } else if leaving || settling || !reached {
            AllocationState::Resizing
        } else {
            AllocationState::Steady
        };
        let mut changed = false;
        if (pool.status.current_dedicated_nodes, pool.status.current_low_priority_nodes) != (dedicated, low_priority) {
            pool.status.current_dedicated_nodes = dedicated;
            pool.status.current_low_priority_nodes = low_priority;
            changed = true;
        }
        if pool.status.allocation_state != state && pool.status.state == PoolState::Active {
            pool.status.allocation_state = state;
            pool.status.allocation_state_transition_time = self.now();
            changed = true;
        }
        if changed {
            self.watch_resize(&pool);
            r.put(pool);
        }
        Ok(())
    }
}

/// Small stable hash for node ids (FNV-1a).
fn fxhash(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.to_ascii_lowercase().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h
}
