//! Compute node operations that change what a node may run: Disable and Enable Scheduling,
//! Reboot and Reimage.
//!
//! Rules (Azure Batch, ComputeNode_DisableScheduling): a node whose scheduling is disabled
//! gets no new tasks; its running tasks are requeued (`requeue`, the default), ended
//! (`terminate`) or left to finish (`taskcompletion`); once none runs, the node is `offline`
//! ("not currently running a task, and scheduling of new tasks to the node is disabled").
//! Enable Scheduling makes it `idle` (or `running`) and schedulable again.
//!
//! Reboot and Reimage (ComputeNode_Reboot, ComputeNode_Reimage): the node is `rebooting` or
//! `reimaging` at once and gets no new tasks; its running tasks are requeued (`requeue`, the
//! default) or ended (`terminate`, `TaskEnded`), or it waits for them to finish
//! (`taskcompletion`, and `retaineddata`, which waits the same way: the task directories a
//! reboot keeps are kept, and a reimage removes every file). Then its agent process is
//! stopped and started again — for a reimage, after the node directory was emptied and its
//! user accounts dropped — and the node boots as a new one does: `lastBootTime`, the start
//! task again (`waitingForStartTask` when it must succeed), then `idle`. Job preparation
//! tasks run again before the job's next task there.

use super::{set_node_state, Backing, Effect, Event, Reactor, Records};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::node::{DisableSchedulingOption, Node, NodeState, SchedulingState};
use crate::model::node_ops::{NodeUserAdd, NodeUserUpdate, RestartKind};
use crate::model::pool::DeallocationOption;
use crate::model::task::{Task, TaskNodeInfo};
use crate::store::StoreResult;

/// A compute node operation the reactor carries out (Event::NodeOperation).
#[derive(Debug, Clone)]
pub enum NodeOp {
    /// Reboot or Reimage with its option (answers).
    Restart { kind: RestartKind, option: DeallocationOption },
    /// A node waiting to reboot or reimage has no running task left (raised by the reactor).
    RestartDue,
    /// Add User, checked by the handler (answers; 409 `NodeUserExists`).
    AddUser(NodeUserAdd),
    /// Update User of the named account (answers; 404 `NodeUserNotFound`).
    UpdateUser { name: String, update: NodeUserUpdate },
    /// Delete User of the named account (answers; 404 `NodeUserNotFound`).
    DeleteUser(String),
}

/// Why a node in `state` cannot take a reboot, a reimage or a user change (they need a
/// booted node): 409 `NodeBeingCreated`, `NodeBeingStarted`, `NodeBeingRebooted`,
/// `NodeBeingReimaged`, `NodeStateUnusable` (users only: a reboot is how an unusable node is
/// recovered) or `OperationNotValidOnNode`.
pub fn not_ready(state: NodeState, restart: bool) -> Option<BatchError> {
    let conflict = |code: &str, what: &str| Some(BatchError::conflict(code, format!("The specified node is being {what}.")));
    match state {
        NodeState::Idle | NodeState::Running | NodeState::Offline | NodeState::WaitingForStartTask | NodeState::StartTaskFailed => None,
        NodeState::Unusable if restart => None,
        NodeState::Unusable => Some(BatchError::conflict("NodeStateUnusable", "The state of the specified node is unusable.")),
        NodeState::Creating => conflict("NodeBeingCreated", "created"),
        NodeState::Starting => conflict("NodeBeingStarted", "started"),
        NodeState::Rebooting => conflict("NodeBeingRebooted", "rebooted"),
        NodeState::Reimaging => conflict("NodeBeingReimaged", "reimaged"),
        NodeState::LeavingPool | NodeState::Preempted | NodeState::Unknown => {
            Some(BatchError::conflict("OperationNotValidOnNode", "The specified operation is not valid on the node."))
        }
    }
}

impl Reactor {
    /// Ends (`terminate`, with `TaskEnded` and `message`) or requeues the tasks running on a
    /// node.
    pub(super) async fn evict_tasks<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        terminate: bool,
        message: &str,
    ) -> StoreResult<()> {
        for (job_id, task_id) in self.core.tasks_on_node(pool_id, node_id) {
            if !terminate {
                self.requeue_task(r, &job_id, &task_id).await?;
            } else if let Some(t) = r.get::<Task>(&job_id, &task_id).await? {
                let t = self.end_task(r, t, "TaskEnded", message, true).await?;
                r.put(t);
            }
        }
        Ok(())
    }

    /// Loads a node for an operation: 404 `NodeNotFound`; 409 `OperationNotValidOnNode` for a
    /// node leaving its pool.
    pub(super) async fn node_for_operation<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
    ) -> StoreResult<ApiResult<Node>> {
        Ok(match r.get::<Node>(pool_id, node_id).await? {
            None => Err(BatchError::not_found(ResourceKind::Node)),
            Some(n) if n.state == NodeState::LeavingPool => {
                Err(BatchError::conflict("OperationNotValidOnNode", "The specified operation is not valid on the node."))
            }
            Some(n) => Ok(n),
        })
    }

    /// Disable Scheduling: see the module documentation.
    pub(super) async fn disable_node_scheduling<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
        option: DisableSchedulingOption,
    ) -> StoreResult<ApiResult<()>> {
        let mut node = match self.node_for_operation(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        node.scheduling_state = SchedulingState::Disabled;
        r.put(node);
        self.core.upsert_node(pool_id, node_id, false);
        match option {
            DisableSchedulingOption::TaskCompletion => {}
            DisableSchedulingOption::Requeue => self.evict_tasks(r, (pool_id, node_id), false, "").await?,
            DisableSchedulingOption::Terminate => {
                let message = "The task was terminated because scheduling was disabled on its node";
                self.evict_tasks(r, (pool_id, node_id), true, message).await?;
            }
        }
        if let Some(mut node) = r.get::<Node>(pool_id, node_id).await? {
            if node.running_tasks_count == 0 && matches!(node.state, NodeState::Idle | NodeState::Running) {
                set_node_state(&mut node, NodeState::Offline, self.now());
            }
            r.put(node);
        }
        self.touched_pools.insert(pool_id.to_string());
        Ok(Ok(()))
    }

    /// Enable Scheduling: the node takes tasks again (`offline` becomes `idle`).
    pub(super) async fn enable_node_scheduling<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
    ) -> StoreResult<ApiResult<()>> {
        let mut node = match self.node_for_operation(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        node.scheduling_state = SchedulingState::Enabled;
        if node.state == NodeState::Offline {
            let state = if node.running_tasks_count > 0 { NodeState::Running } else { NodeState::Idle };
            set_node_state(&mut node, state, self.now());
        }
        let connected = self.nodes.get(node_id).is_some_and(|rt| rt.connected);
        self.core.upsert_node(pool_id, node_id, connected && matches!(node.state, NodeState::Idle | NodeState::Running));
        r.put(node);
        self.touched_pools.insert(pool_id.to_string());
        Ok(Ok(()))
    }
}

impl Reactor {
    /// Carries out a [`NodeOp`] on a node.
    pub(super) async fn node_operation<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        op: NodeOp,
    ) -> StoreResult<ApiResult<()>> {
        match op {
            NodeOp::Restart { kind, option } => self.restart_node(r, (pool_id, node_id), kind, option).await,
            NodeOp::RestartDue => {
                let due = r.get::<Node>(pool_id, node_id).await?.filter(|n| n.running_tasks_count == 0).and_then(|n| n.ops.pending_restart);
                if let Some(kind) = due {
                    self.restart_now(r, (pool_id, node_id), kind).await?;
                }
                Ok(Ok(()))
            }
            NodeOp::AddUser(add) => self.add_node_user(r, (pool_id, node_id), add).await,
            NodeOp::UpdateUser { name, update } => self.update_node_user(r, (pool_id, node_id), &name, update).await,
            NodeOp::DeleteUser(name) => self.delete_node_user(r, (pool_id, node_id), &name).await,
        }
    }

    /// Reboot or Reimage: see the module documentation. 409 as [`not_ready`] says.
    async fn restart_node<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        kind: RestartKind,
        option: DeallocationOption,
    ) -> StoreResult<ApiResult<()>> {
        let mut node = match self.node_for_operation(r, pool_id, node_id).await? {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(e) = not_ready(node.state, true) {
            return Ok(Err(e));
        }
        if !self.nodes.get(node_id).is_some_and(|rt| rt.connected) {
            // Its agent is away (being restarted after a loss): it is coming up again.
            return Ok(Err(BatchError::conflict("NodeBeingStarted", "The specified node is being started.")));
        }
        let state = match kind {
            RestartKind::Reboot => NodeState::Rebooting,
            RestartKind::Reimage => NodeState::Reimaging,
        };
        set_node_state(&mut node, state, self.now());
        self.core.upsert_node(pool_id, node_id, false);
        self.touched_pools.insert(pool_id.to_string());
        let wait = matches!(option, DeallocationOption::TaskCompletion | DeallocationOption::RetainedData);
        if wait && node.running_tasks_count > 0 {
            // Restarted when its last task ends (release_placement raises RestartDue).
            node.ops.pending_restart = Some(kind);
            r.put(node);
            return Ok(Ok(()));
        }
        r.put(node);
        let message = match kind {
            RestartKind::Reboot => "The task was terminated because its node was rebooted",
            RestartKind::Reimage => "The task was terminated because its node was reimaged",
        };
        self.evict_tasks(r, (pool_id, node_id), option == DeallocationOption::Terminate, message).await?;
        self.restart_now(r, (pool_id, node_id), kind).await?;
        Ok(Ok(()))
    }

    /// Stops the node's agent and starts it again (after emptying the node directory for a
    /// reimage); the node boots when the new agent says hello.
    async fn restart_now<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        (pool_id, node_id): (&str, &str),
        kind: RestartKind,
    ) -> StoreResult<()> {
        self.reset_node_work(r, node_id).await?;
        let Some(mut node) = r.get::<Node>(pool_id, node_id).await? else { return Ok(()) };
        let now = self.now();
        node.ops.pending_restart = None;
        if kind == RestartKind::Reimage {
            // A new operating system: the accounts added on the node are gone.
            node.ops.users.clear();
        }
        // A restarted node takes what its pool asks for now (Pool Update Properties and Patch
        // change running nodes only when they reboot or are reimaged).
        if let Some(pool) = r.get::<crate::model::pool::Pool>("", pool_id).await? {
            node.start_task = pool.spec.start_task.clone().map(|mut st| {
                st.normalize();
                st
            });
            node.certificate_references = pool.spec.certificate_references.clone().unwrap_or_default();
        }
        let pid = self.nodes.get_mut(node_id).and_then(|rt| {
            rt.connected = false;
            rt.since = now;
            rt.pid.take()
        });
        let pid = pid.or(node.agent_pid.take());
        node.agent_pid = None;
        tracing::info!(%pool_id, %node_id, ?kind, "restarting the node's agent");
        self.out.push(Effect::RestartAgent {
            pool_id: pool_id.to_string(),
            node_id: node_id.to_string(),
            token: node.agent_token.clone(),
            pid,
            wipe: kind == RestartKind::Reimage,
        });
        r.put(node);
        self.touched_pools.insert(pool_id.to_string());
        Ok(())
    }

    /// Raises [`NodeOp::RestartDue`] for a node that waits to restart once nothing runs on it.
    pub(super) fn restart_if_due(&mut self, node: &Node) {
        if node.ops.pending_restart.is_some() && node.running_tasks_count == 0 {
            self.pending.push_back(Event::NodeOperation {
                pool_id: node.pool_id.clone(),
                node_id: node.id.clone(),
                op: NodeOp::RestartDue,
            });
        }
    }

    /// Records `task` as it is now among the `recentTasks` of the node it ran on (`ran_on`,
    /// its node information before a requeue or retry cleared it).
    pub(super) async fn note_recent_task<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        ran_on: Option<&TaskNodeInfo>,
        task: &Task,
    ) -> StoreResult<()> {
        let Some(ni) = ran_on else { return Ok(()) };
        if let Some(mut node) = r.get::<Node>(&ni.pool_id, &ni.node_id).await? {
            node.ops.note_task(crate::model::node_ops::TaskInformation::of(&self.info.account_url, task));
            r.put(node);
        }
        Ok(())
    }
}
