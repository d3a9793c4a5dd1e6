//! Multi-instance tasks: one primary and `numberOfInstances - 1` subtasks, each on its own
//! compute node of a pool with `enableInterNodeCommunication`.
//!
//! Rules (Azure Batch, MultiInstanceSettings): all instances start together; each runs the
//! coordination command line (with the common resource files in the shared directory); once
//! every one of them succeeded, the primary runs the task's command line, whose result is the
//! task's. A failing coordination command fails the task (retried per its constraints). The
//! instances learn each other through `AZ_BATCH_HOST_LIST`, `AZ_BATCH_NODE_LIST`,
//! `AZ_BATCH_MASTER_NODE` and `AZ_BATCH_IS_CURRENT_NODE_MASTER`, and share
//! `AZ_BATCH_TASK_SHARED_DIR` (one directory on this host, the same path for every instance).

use super::exec::{exec_spec, outcome, Runnable};
use super::{set_node_state, to_ts, Backing, Reactor, Records};
use crate::agent::protocol::{ExecKind, ExecResult, MultiInstanceEnv, ServiceMessage};
use crate::model::common::{ErrorCategory, ExecutionResult, FailureInfo};
use crate::model::job::Job;
use crate::model::multi_instance::{MultiRun, SubtaskInfo, SubtaskState};
use crate::model::node::{Node, NodeState};
use crate::model::pool::Pool;
use crate::model::task::{Task, TaskState};
use crate::model::time::Timestamp;
use crate::scheduler::core::Assignment;
use crate::storage::resource_files;
use crate::store::StoreResult;

/// The port `AZ_BATCH_MASTER_NODE` names, as the service does.
const MASTER_PORT: u16 = 6000;

impl Reactor {
    /// Starts a multi-instance task placed on several nodes.
    pub(super) async fn dispatch_multi<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        a: &Assignment,
        mut task: Task,
        job: &Job,
    ) -> StoreResult<()> {
        let now = self.now();
        let pool = r.get::<Pool>("", &a.pool_id).await?;
        if pool.as_ref().is_none_or(|p| p.spec.enable_inter_node_communication != Some(true)) {
            // The API requires inter-node communication for multi-instance tasks: the task
            // cannot run on this pool and fails, as a task that cannot start does.
            self.core.finish_task(&a.job_id, &a.task_id);
            let exec = &mut task.status.execution_info;
            exec.result = Some(ExecutionResult::Failure);
            exec.failure_info = Some(FailureInfo {
                category: ErrorCategory::UserError,
                code: Some("InterNodeCommunicationNotEnabled".into()),
                message: Some("A multi-instance task needs a pool with enableInterNodeCommunication set to true".into()),
                details: None,
            });
            task.status.transition(TaskState::Completed, now);
            self.task_completed(r, &task, super::exec::Ending::PreProcessingError).await?;
            self.touched_jobs.insert(task.job_id.clone());
            r.put(task);
            return Ok(());
        }
        let nodes: Vec<String> = std::iter::once(a.node_id.clone()).chain(a.others.iter().cloned()).collect();
        task.dispatch = self.dispatch_id();
        let coordination_dispatch = self.dispatch_id();
        task.status.transition(TaskState::Preparing, now);
        task.status.node_info = Some(self.node_info(&a.pool_id, &a.node_id, &task));
        let mut hosts = Vec::new();
        for node_id in &nodes {
            let Some(mut node) = r.get::<Node>(&a.pool_id, node_id).await? else { continue };
            hosts.push(node.ip_address.clone());
            node.running_tasks_count += 1;
            node.running_task_slots_count += a.slots as i32;
            if node.state == NodeState::Idle {
                set_node_state(&mut node, NodeState::Running, now);
            }
            r.put(node);
        }
        let settings = task.spec.multi_instance_settings.clone().unwrap_or_default();
        let subtasks = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| SubtaskInfo {
                id: i as i32,
                node_info: self.node_info(&a.pool_id, n, &task),
                start_time: None,
                end_time: None,
                exit_code: None,
                failure_info: None,
                state: SubtaskState::Preparing,
                state_transition_time: now,
                result: None,
            })
            .collect();
        let coordination = settings.coordination_command_line.clone().filter(|c| !c.trim().is_empty());
        task.multi = Some(MultiRun { coordination_dispatch, nodes: nodes.clone(), pending: 0, subtasks });
        match coordination {
            Some(command_line) => {
                for (i, node_id) in nodes.iter().enumerate() {
                    let kind = ExecKind::Task { job_id: task.job_id.clone(), task_id: task.spec.id.clone() };
                    let run = Runnable {
                        command_line: &command_line,
                        resource_files: None,
                        output_files: None,
                        app_packages: None,
                        ..Runnable::from(&task.spec)
                    };
                    let mut spec = exec_spec(kind, coordination_dispatch, run, Some(job), None, self.info.auto_storage.as_ref());
                    spec.max_wall_clock_secs = None;
                    spec.multi_instance = Some(self.instance_env(&a.pool_id, &task, &hosts, i == 0));
                    self.send(node_id, ServiceMessage::Run { spec: Box::new(spec) });
                }
                if let Some(m) = task.multi.as_mut() {
                    m.pending = nodes.len() as u32;
                }
            }
            None => {
                let mut spec = self.task_exec(r, job, &task, &a.pool_id).await?;
                spec.multi_instance = Some(self.instance_env(&a.pool_id, &task, &hosts, true));
                self.send(&a.node_id, ServiceMessage::Run { spec: Box::new(spec) });
            }
        }
        r.put(task);
        Ok(())
    }

    /// An instance's coordination command ended: a failure fails the task; once all
    /// succeeded, the primary runs the task's command line.
    pub(super) async fn coordination_finished<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        node_id: &str,
        mut task: Task,
        res: ExecResult,
    ) -> StoreResult<()> {
        let now = self.now();
        let (result, failure) = outcome(&res);
        let Some(m) = task.multi.as_mut() else { return Ok(()) };
        if let Some(st) = m.subtasks.iter_mut().find(|s| s.node_info.node_id == node_id) {
            if st.result.is_some() {
                return Ok(());
            }
            st.exit_code = res.exit_code;
            st.result = Some(result);
            st.failure_info = failure;
            st.start_time.get_or_insert(res.started_ms.map(|s| to_ts(s, now)).unwrap_or(now));
        }
        if result == ExecutionResult::Failure {
            // The whole task fails with the instance's result.
            self.kill_instances(&task);
            let failed = ExecResult { dispatch_id: task.dispatch, ..res };
            return self.attempt_ended(r, task, failed).await;
        }
        m.pending = m.pending.saturating_sub(1);
        if m.pending == 0 {
            let Some(job) = r.get::<Job>("", &task.job_id).await? else { return Ok(()) };
            let Some(ni) = task.status.node_info.clone() else { return Ok(()) };
            let hosts: Vec<String> = task.multi.as_ref().map(|m| m.nodes.clone()).unwrap_or_default();
            let mut spec = self.task_exec(r, &job, &task, &ni.pool_id).await?;
            let mut ips = Vec::new();
            for n in &hosts {
                ips.push(r.get::<Node>(&ni.pool_id, n).await?.map(|n| n.ip_address).unwrap_or_else(|| "127.0.0.1".into()));
            }
            spec.multi_instance = Some(self.instance_env(&ni.pool_id, &task, &ips, true));
            self.send(&ni.node_id, ServiceMessage::Run { spec: Box::new(spec) });
        }
        r.put(task);
        Ok(())
    }

    /// What an instance learns about the others: the nodes' addresses (primary first), the
    /// primary's, and the shared directory (one per task on this host).
    fn instance_env(&self, pool_id: &str, task: &Task, hosts: &[String], is_master: bool) -> MultiInstanceEnv {
        let common = task.spec.multi_instance_settings.as_ref().and_then(|s| s.common_resource_files.as_deref());
        let shared_dir = self.info.nodes_dir.join(pool_id).join("multi-instance").join(&task.job_id).join(&task.spec.id);
        MultiInstanceEnv {
            hosts: hosts.to_vec(),
            master: format!("{}:{MASTER_PORT}", hosts.first().cloned().unwrap_or_default()),
            is_master,
            shared_dir: shared_dir.display().to_string(),
            common_resource_files: resource_files::specs(common, self.info.auto_storage.as_ref()),
        }
    }

    /// Kills what a placed task runs: its command line on the primary and, for a
    /// multi-instance task, the coordination command on every instance.
    pub(super) fn kill_instances(&mut self, task: &Task) {
        let Some((_, nodes, _)) = self.core.placement_nodes(&task.job_id, &task.spec.id) else { return };
        let kind = ExecKind::Task { job_id: task.job_id.clone(), task_id: task.spec.id.clone() };
        for (i, node_id) in nodes.iter().enumerate() {
            if i == 0 && task.dispatch != 0 {
                self.send(node_id, ServiceMessage::Kill { kind: kind.clone(), dispatch_id: task.dispatch });
            }
            if let Some(m) = &task.multi {
                self.send(node_id, ServiceMessage::Kill { kind: kind.clone(), dispatch_id: m.coordination_dispatch });
            }
        }
    }

    /// A multi-instance task's attempt is over: its subtasks are completed.
    pub(super) fn close_subtasks(&self, task: &mut Task, now: Timestamp) {
        for st in task.multi.iter_mut().flat_map(|m| m.subtasks.iter_mut()) {
            if st.state != SubtaskState::Completed {
                st.state = SubtaskState::Completed;
                st.state_transition_time = now;
                st.end_time = Some(now);
            }
        }
    }
}
