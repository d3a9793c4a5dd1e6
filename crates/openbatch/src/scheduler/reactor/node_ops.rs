//! Compute node operations that change what a node may run: Disable and Enable Scheduling.
//!
//! Rules (Azure Batch, ComputeNode_DisableScheduling): a node whose scheduling is disabled
//! gets no new tasks; its running tasks are requeued (`requeue`, the default), ended
//! (`terminate`) or left to finish (`taskcompletion`); once none runs, the node is `offline`
//! ("not currently running a task, and scheduling of new tasks to the node is disabled").
//! Enable Scheduling makes it `idle` (or `running`) and schedulable again.

use super::{set_node_state, Backing, Reactor, Records};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::node::{DisableSchedulingOption, Node, NodeState, SchedulingState};
use crate::model::task::Task;
use crate::store::StoreResult;

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
    async fn node_for_operation<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str, node_id: &str) -> StoreResult<ApiResult<Node>> {
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
