//! Compute nodes: agents saying hello, start tasks, node removal and node loss.
//!
//! Rules (Azure Batch): a node boots, runs its start task (retried per its constraints;
//! with `waitForSuccess` it is `waitingForStartTask` until then, and `startTaskFailed` after
//! a final failure) and becomes `idle`; a node whose agent stays away longer than the
//! reconnect grace is lost: its tasks are requeued and it is restarted, as the service
//! recovers a failed node.

use super::exec::{exec_spec, outcome, retryable, Runnable};
use super::{set_node_state, to_ts, Backing, Effect, NodeRt, Reactor, Records};
use crate::agent::protocol::{ExecKind, ExecResult, ServiceMessage};
use crate::model::common::ExecutionResult;
use crate::model::job::JobNode;
use crate::model::node::{Node, NodeAgentInfo, NodeState, SchedulingState, StartTaskInfo, StartTaskState};
use crate::model::pool::{DeallocationOption, Pool};
use crate::model::task::{Task, TaskState};
use crate::store::StoreResult;
use std::collections::HashSet;

impl Reactor {
    /// Sends a node's start task to its agent.
    async fn run_start_task<B: Backing>(&mut self, r: &mut Records<B>, node: &Node) -> StoreResult<()> {
        let Some(st) = node.start_task.clone() else { return Ok(()) };
        let pool_refs = r.get::<Pool>("", &node.pool_id).await?.and_then(|p| p.spec.application_package_references);
        let dispatch_id = self.dispatch_id();
        let spec =
            exec_spec(ExecKind::StartTask, dispatch_id, Runnable::from(&st), None, pool_refs.as_deref(), self.info.auto_storage.as_ref());
        self.send(&node.id, ServiceMessage::Run { spec: Box::new(spec) });
        Ok(())
    }

    /// A start task ended: retried while it may be; then the node is idle, or
    /// `startTaskFailed` when it waits for success.
    pub(super) async fn start_task_finished<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
        res: ExecResult,
    ) -> StoreResult<()> {
        let Some(mut node) = r.get::<Node>(pool_id, node_id).await? else { return Ok(()) };
        let wait = node.start_task.as_ref().and_then(|s| s.wait_for_success).unwrap_or(true);
        let max_retries = node.start_task.as_ref().and_then(|s| s.max_task_retry_count).unwrap_or(0);
        let now = self.now();
        let (result, failure) = outcome(&res);
        let Some(info) = node.start_task_info.as_mut() else { return Ok(()) };
        if result == ExecutionResult::Failure && (max_retries < 0 || info.retry_count < max_retries) && retryable(&res) {
            info.retry_count += 1;
            info.last_retry_time = Some(now);
            self.run_start_task(r, &node).await?;
            r.put(node);
            return Ok(());
        }
        info.state = StartTaskState::Completed;
        info.end_time = Some(to_ts(res.ended_ms, now));
        info.exit_code = res.exit_code;
        info.result = Some(result);
        info.failure_info = failure;
        if let Some(s) = res.started_ms {
            info.start_time = to_ts(s, now);
        }
        if result == ExecutionResult::Failure && wait {
            set_node_state(&mut node, NodeState::StartTaskFailed, now);
            self.core.upsert_node(pool_id, node_id, false);
        } else if node.state == NodeState::WaitingForStartTask {
            let ready = ready_state(&node);
            set_node_state(&mut node, ready, now);
            self.core.upsert_node(pool_id, node_id, node.scheduling_state == SchedulingState::Enabled);
        }
        r.put(node);
        Ok(())
    }

    /// A node's agent process was started.
    pub(super) async fn node_spawned<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str, node_id: &str, pid: u32) -> StoreResult<()> {
        if let Some(rt) = self.nodes.get_mut(node_id) {
            rt.pid = Some(pid);
        }
        if let Some(mut node) = r.get::<Node>(pool_id, node_id).await? {
            node.agent_pid = Some(pid);
            if matches!(node.state, NodeState::Creating | NodeState::Unusable) {
                set_node_state(&mut node, NodeState::Starting, self.now());
            }
            r.put(node);
            self.touched_pools.insert(pool_id.to_string());
        }
        Ok(())
    }

    /// An agent said hello with its node's token: reconcile what it runs with what the
    /// records say, take its kept results, and boot the node. Returns whether the agent
    /// is accepted.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn agent_hello<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
        token: &str,
        agent_version: &str,
        running: Vec<(ExecKind, u64)>,
        finished: Vec<ExecResult>,
    ) -> StoreResult<bool> {
        let node = r.get::<Node>(pool_id, node_id).await?;
        let Some(mut node) = node.filter(|n| {
            use subtle::ConstantTimeEq;
            bool::from(n.agent_token.as_bytes().ct_eq(token.as_bytes()))
        }) else {
            return Ok(false);
        };
        let now = self.now();
        let rt = self.nodes.entry(node_id.to_string()).or_insert(NodeRt {
            pool_id: pool_id.to_string(),
            connected: true,
            since: now,
            pid: node.agent_pid,
            dedicated: node.is_dedicated,
        });
        rt.connected = true;
        rt.since = now;
        self.send(
            node_id,
            ServiceMessage::Welcome {
                account_name: self.info.account_name.clone(),
                account_url: self.info.account_url.clone(),
                pool_id: pool_id.to_string(),
                node_id: node_id.to_string(),
                is_dedicated: node.is_dedicated,
                certificates: crate::agent::protocol::NodeCertificate::from_api(&node.certificate_references),
            },
        );
        node.node_agent_info = Some(NodeAgentInfo { version: agent_version.to_string(), last_update_time: now });
        r.put(node);
        // Results the agent kept while the service was away.
        for res in finished {
            self.out.push(Effect::Ack { node_id: node_id.to_string(), dispatch_id: res.dispatch_id });
            self.finished(r, node_id, res).await?;
        }
        // Tasks the records place here but the agent no longer runs were lost with it.
        let still: HashSet<(ExecKind, u64)> = running.iter().cloned().collect();
        for (job_id, task_id) in self.core.tasks_on_node(pool_id, node_id) {
            let t = r.get::<Task>(&job_id, &task_id).await?;
            let kind = ExecKind::Task { job_id: job_id.clone(), task_id: task_id.clone() };
            if !t.is_some_and(|t| still.contains(&(kind, t.dispatch))) {
                self.requeue_task(r, &job_id, &task_id).await?;
            }
        }
        let Some(mut node) = r.get::<Node>(pool_id, node_id).await? else { return Ok(true) };
        // Work the agent runs that the records do not expect there is stopped.
        for (kind, dispatch_id) in running {
            let expected = match &kind {
                ExecKind::StartTask => node.start_task_info.as_ref().is_some_and(|i| i.state == StartTaskState::Running),
                ExecKind::Task { job_id, task_id } => r
                    .get::<Task>(job_id, task_id)
                    .await?
                    .is_some_and(|t| t.runs_dispatch(dispatch_id) && matches!(t.status.state, TaskState::Preparing | TaskState::Running)),
                ExecKind::JobPreparation { job_id } => {
                    r.get::<JobNode>(job_id, node_id).await?.is_some_and(|j| j.prep_dispatch == dispatch_id)
                }
                ExecKind::JobRelease { job_id } => {
                    r.get::<JobNode>(job_id, node_id).await?.is_some_and(|j| j.release_dispatch == dispatch_id)
                }
            };
            if !expected {
                self.send(node_id, ServiceMessage::Kill { kind, dispatch_id });
            }
        }
        // File systems a pool asks to mount cannot be mounted here: like a node whose mount
        // failed, the node is unusable and says why.
        let spec = r.get::<Pool>("", pool_id).await?.map(|p| p.spec);
        let mounts = spec.as_ref().and_then(|s| s.mount_configuration.as_ref()).is_some_and(|m| !m.is_empty());
        // What else the pool asks for and a node here cannot provide is reported on the node,
        // which still runs tasks.
        let unmet = spec.as_ref().map(|s| s.unmet_configuration()).unwrap_or_default();
        node.errors = if unmet.is_empty() { Vec::new() } else { vec![crate::model::pool::unmet_configuration_error(&unmet)] };
        if mounts {
            node.last_boot_time.get_or_insert(now);
            node.errors.insert(0, serde_json::json!({
                "code": "MountConfigurationError",
                "message": "The pool's file systems could not be mounted on the compute node.",
                "errorDetails": [{"name": "Reason", "value": "openbatch does not mount file systems (mountConfiguration) on compute nodes yet."}]
            }));
            set_node_state(&mut node, NodeState::Unusable, now);
            self.core.upsert_node(pool_id, node_id, false);
            r.put(node);
            self.touched_pools.insert(pool_id.to_string());
            return Ok(true);
        }
        if matches!(
            node.state,
            NodeState::Creating
                | NodeState::Starting
                | NodeState::Rebooting
                | NodeState::Reimaging
                | NodeState::Unusable
                | NodeState::Unknown
        ) {
            node.last_boot_time = Some(now);
            if let Some(st) = &node.start_task {
                let wait = st.wait_for_success.unwrap_or(true);
                node.start_task_info = Some(StartTaskInfo {
                    state: StartTaskState::Running,
                    start_time: now,
                    end_time: None,
                    exit_code: None,
                    failure_info: None,
                    retry_count: 0,
                    last_retry_time: None,
                    result: None,
                });
                let state = if wait { NodeState::WaitingForStartTask } else { ready_state(&node) };
                set_node_state(&mut node, state, now);
                self.run_start_task(r, &node).await?;
            } else {
                let ready = ready_state(&node);
                set_node_state(&mut node, ready, now);
            }
        }
        let schedulable = matches!(node.state, NodeState::Idle | NodeState::Running) && node.scheduling_state == SchedulingState::Enabled;
        self.core.upsert_node(pool_id, node_id, schedulable);
        r.put(node);
        self.touched_pools.insert(pool_id.to_string());
        Ok(true)
    }

    /// Takes a node out of its pool. `taskcompletion`/`retaineddata` let running tasks
    /// finish first (the node is `leavingPool` meanwhile); `requeue` puts them back in their
    /// queues; `terminate` ends them.
    pub(super) async fn remove_node<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        pool_id: &str,
        node_id: &str,
        option: DeallocationOption,
    ) -> StoreResult<()> {
        let tasks = self.core.tasks_on_node(pool_id, node_id);
        if !tasks.is_empty() && matches!(option, DeallocationOption::TaskCompletion | DeallocationOption::RetainedData) {
            if let Some(mut node) = r.get::<Node>(pool_id, node_id).await? {
                set_node_state(&mut node, NodeState::LeavingPool, self.now());
                r.put(node);
            }
            self.core.upsert_node(pool_id, node_id, false);
            return Ok(());
        }
        let message = "The task was terminated because its node was removed from the pool";
        self.evict_tasks(r, (pool_id, node_id), option == DeallocationOption::Terminate, message).await?;
        self.abandon_side_tasks(r, node_id).await?;
        self.core.remove_node(pool_id, node_id);
        self.send(node_id, ServiceMessage::Shutdown { remove_files: true });
        if let Some(rt) = self.nodes.remove(node_id) {
            if let (false, Some(pid)) = (rt.connected, rt.pid) {
                self.out.push(Effect::KillAgent { pid });
            }
        }
        self.node_leaving(r, pool_id, node_id).await?;
        r.remove::<Node>(pool_id, node_id);
        Ok(())
    }

    /// A node whose agent stayed away: its tasks are requeued and its agent restarted.
    pub(super) async fn replace_node<B: Backing>(&mut self, r: &mut Records<B>, node_id: &str) -> StoreResult<()> {
        let now = self.now();
        let Some(rt) = self.nodes.get_mut(node_id) else { return Ok(()) };
        let pool_id = rt.pool_id.clone();
        rt.since = now;
        if let Some(pid) = rt.pid.take() {
            self.out.push(Effect::KillAgent { pid });
        }
        if r.get::<Node>(&pool_id, node_id).await?.is_none() {
            self.nodes.remove(node_id);
            return Ok(());
        }
        tracing::warn!(%pool_id, %node_id, "node agent lost; requeueing its tasks and restarting the node");
        for (job_id, task_id) in self.core.tasks_on_node(&pool_id, node_id) {
            self.requeue_task(r, &job_id, &task_id).await?;
        }
        self.reset_node_work(r, node_id).await?;
        let Some(mut node) = r.get::<Node>(&pool_id, node_id).await? else { return Ok(()) };
        node.running_tasks_count = 0;
        node.running_task_slots_count = 0;
        set_node_state(&mut node, NodeState::Unusable, now);
        node.start_task_info = None;
        // A reboot or reimage it was waiting for is done by this restart.
        node.ops.pending_restart = None;
        let token = node.agent_token.clone();
        r.put(node);
        self.touched_pools.insert(pool_id.clone());
        self.out.push(Effect::SpawnAgent { pool_id, node_id: node_id.to_string(), token });
        Ok(())
    }

    /// A node starts over (restarted after loss, rebooted, reimaged): preparation tasks run
    /// again before their jobs' next tasks there; release tasks it ran are over.
    pub(super) async fn reset_node_work<B: Backing>(&mut self, r: &mut Records<B>, node_id: &str) -> StoreResult<()> {
        self.abandon_side_tasks(r, node_id).await?;
        for job_id in self.core.prepared_jobs(node_id) {
            self.core.forget_prep(&job_id, node_id);
        }
        Ok(())
    }
}

/// The state of a booted node with nothing running: `idle`, or `offline` when its scheduling
/// is disabled (a node rebooted while disabled stays so).
fn ready_state(node: &Node) -> NodeState {
    if node.scheduling_state == SchedulingState::Disabled {
        NodeState::Offline
    } else {
        NodeState::Idle
    }
}
