//! Tasks: dispatch to task slots, results, retries, requeue and termination.
//!
//! Rules (Azure Batch): a failed task is retried while `constraints.maxTaskRetryCount`
//! allows (-1: without limit) and the failure is one a retry may cure; a task on a lost or
//! removed node is requeued (its `requeueCount` grows, its retries do not), and so is a
//! task preempted for a task of a higher-priority job (`allowTaskPreemption`, decided by the
//! core); Terminate Task ends a task with `TaskEnded`; the task's, its job's and the
//! account's statistics count every finished attempt.

use super::exec::{ended_by_service, ending, exec_spec, outcome, retryable, Ending, Runnable};
use super::{set_node_state, to_ts, Backing, Reactor, Records};
use crate::agent::protocol::{ExecKind, ExecResult, ExecSpec, ServiceMessage};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::common::ExecutionResult;
use crate::model::job::{Job, JobState};
use crate::model::node::{Node, NodeState, SchedulingState};
use crate::model::pool::{DeallocationOption, Pool};
use crate::model::stats::AttemptOutcome;
use crate::model::task::{Task, TaskNodeInfo, TaskState};
use crate::scheduler::core::{Decisions, Preemption};
use crate::store::StoreResult;

/// Most preemptions in one batch; the rest wait for the next batch. (Each preemption puts a
/// task where only tasks of lower priority ran, so rounds end well before; this only bounds
/// a batch should that ever not hold.)
const MAX_PREEMPTIONS_PER_BATCH: usize = 1000;

impl Reactor {
    /// Places queued tasks and sends them to their nodes (and starts the preparation tasks
    /// the placements need). A round that stops at a preemption is carried out, the
    /// preemption done, and the next round follows.
    pub(super) async fn dispatch<B: Backing>(&mut self, r: &mut Records<B>) -> StoreResult<()> {
        for _ in 0..=MAX_PREEMPTIONS_PER_BATCH {
            let mut decisions = self.core.schedule();
            let preemption = decisions.preemption.take();
            self.carry_out(r, decisions).await?;
            let Some(p) = preemption else { return Ok(()) };
            self.preempt(r, &p).await?;
        }
        tracing::warn!("preemption limit of a batch reached; the remaining tasks wait for the next batch");
        Ok(())
    }

    /// Preempts for a queued task: its victims are requeued as tasks of a lost node are
    /// (killed, back to active with their `requeueCount` grown and their retries kept), then
    /// it is placed where they ran and sent there (with the job's preparation task, when it
    /// has not run there).
    async fn preempt<B: Backing>(&mut self, r: &mut Records<B>, p: &Preemption) -> StoreResult<()> {
        for (job_id, task_id) in &p.victims {
            tracing::info!(%job_id, %task_id, node_id = %p.node_id, for_job = %p.job_id, for_task = %p.task_id, "preempting task");
            self.requeue_task(r, job_id, task_id).await?;
        }
        let decisions = self.core.place_preempting(p);
        self.carry_out(r, decisions).await
    }

    /// Starts the preparation tasks and sends the tasks a scheduling round decided.
    async fn carry_out<B: Backing>(&mut self, r: &mut Records<B>, decisions: Decisions) -> StoreResult<()> {
        for p in decisions.preparations {
            self.start_preparation(r, &p, 0).await?;
        }
        for a in decisions.assignments {
            let task = r.get::<Task>(&a.job_id, &a.task_id).await?;
            let job = r.get::<Job>("", &a.job_id).await?;
            let node = r.get::<Node>(&a.pool_id, &a.node_id).await?;
            let (Some(mut task), Some(job), Some(mut node)) = (task, job, node) else {
                self.core.finish_task(&a.job_id, &a.task_id);
                continue;
            };
            if task.status.state != TaskState::Active {
                self.core.finish_task(&a.job_id, &a.task_id);
                continue;
            }
            if !a.others.is_empty() {
                self.dispatch_multi(r, &a, task, &job).await?;
                continue;
            }
            let now = self.now();
            task.dispatch = self.dispatch_id();
            task.status.transition(TaskState::Preparing, now);
            task.status.node_info = Some(self.node_info(&a.pool_id, &a.node_id, &task));
            let spec = self.task_exec(r, &job, &task, &a.pool_id).await?;
            node.running_tasks_count += 1;
            node.running_task_slots_count += a.slots as i32;
            if node.state == NodeState::Idle {
                set_node_state(&mut node, NodeState::Running, now);
            }
            self.send(&a.node_id, ServiceMessage::Run { spec: Box::new(spec) });
            r.put(task);
            r.put(node);
        }
        Ok(())
    }

    /// Where a task runs on a node: its directory and URLs (ComputeNodeInformation).
    pub(super) fn node_info(&self, pool_id: &str, node_id: &str, task: &Task) -> TaskNodeInfo {
        let dir = format!("workitems/{}/job-1/{}", task.job_id, task.spec.id);
        let node_url = format!("{}/pools/{}/nodes/{}", self.info.account_url, pool_id, node_id);
        TaskNodeInfo {
            affinity_id: format!("TVM:{node_id}"),
            node_url: node_url.clone(),
            pool_id: pool_id.to_string(),
            node_id: node_id.to_string(),
            task_root_directory: dir.clone(),
            task_root_directory_url: format!("{node_url}/files/{dir}"),
        }
    }

    /// What the agent runs for a task's command line; a task with job access gets a token for
    /// its job (`AZ_BATCH_AUTHENTICATION_TOKEN`).
    pub(super) async fn task_exec<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        job: &Job,
        task: &Task,
        pool_id: &str,
    ) -> StoreResult<ExecSpec> {
        let pool_refs = r.get::<Pool>("", pool_id).await?.and_then(|p| p.spec.application_package_references);
        let kind = ExecKind::Task { job_id: job.spec.id.clone(), task_id: task.spec.id.clone() };
        let auto = self.info.auto_storage.as_ref();
        let mut spec = exec_spec(kind, task.dispatch, Runnable::from(&task.spec), Some(job), pool_refs.as_deref(), auto);
        let grants_job = task.spec.authentication_token_settings.as_ref().is_some_and(|a| a.grants_job());
        if let (Some(tokens), true) = (&self.info.task_tokens, grants_job) {
            spec.environment.push((crate::api::task_token::ENV_VAR.to_string(), tokens.issue(&job.spec.id, &task.spec.id, self.now())));
        }
        Ok(spec)
    }

    /// An agent started a task's process (or an instance's coordination command): preparing
    /// → running.
    pub(super) async fn task_started<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        node_id: &str,
        (job_id, task_id): (&str, &str),
        dispatch_id: u64,
        started_ms: i64,
    ) -> StoreResult<()> {
        if let Some(mut t) = r.get::<Task>(job_id, task_id).await? {
            let at = to_ts(started_ms, self.now());
            let mut changed = false;
            // An instance's coordination command started: its subtask runs.
            if let Some(m) = t.multi.as_mut().filter(|m| m.coordination_dispatch == dispatch_id) {
                if let Some(st) = m.subtasks.iter_mut().find(|s| s.node_info.node_id == node_id) {
                    st.start_time = Some(at);
                    st.state = crate::model::multi_instance::SubtaskState::Running;
                    st.state_transition_time = at;
                    changed = true;
                }
            }
            if t.runs_dispatch(dispatch_id) && t.status.state == TaskState::Preparing {
                t.status.transition(TaskState::Running, at);
                t.status.execution_info.start_time = Some(at);
                changed = true;
            }
            if changed {
                self.note_recent_task(r, t.status.node_info.clone().as_ref(), &t).await?;
                r.put(t);
            }
        }
        Ok(())
    }

    /// An execution ended on a node.
    pub(super) async fn finished<B: Backing>(&mut self, r: &mut Records<B>, node_id: &str, res: ExecResult) -> StoreResult<()> {
        let Some(pool_id) = self.nodes.get(node_id).map(|n| n.pool_id.clone()) else { return Ok(()) };
        match res.kind.clone() {
            ExecKind::JobPreparation { job_id } => self.preparation_finished(r, &pool_id, node_id, &job_id, res).await,
            ExecKind::JobRelease { job_id } => self.release_finished(r, node_id, &job_id, res).await,
            ExecKind::StartTask => self.start_task_finished(r, &pool_id, node_id, res).await,
            ExecKind::Task { job_id, task_id } => self.task_finished(r, node_id, &job_id, &task_id, res).await,
        }
    }

    async fn task_finished<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        node_id: &str,
        job_id: &str,
        task_id: &str,
        res: ExecResult,
    ) -> StoreResult<()> {
        let Some(task) = r.get::<Task>(job_id, task_id).await? else { return Ok(()) };
        if matches!(task.status.state, TaskState::Active | TaskState::Completed) {
            return Ok(());
        }
        if task.multi.as_ref().is_some_and(|m| m.coordination_dispatch == res.dispatch_id) {
            return self.coordination_finished(r, node_id, task, res).await;
        }
        if task.dispatch != res.dispatch_id {
            return Ok(());
        }
        self.attempt_ended(r, task, res).await
    }

    /// A task's attempt ended with `res`: it is retried, or completes.
    pub(super) async fn attempt_ended<B: Backing>(&mut self, r: &mut Records<B>, mut task: Task, res: ExecResult) -> StoreResult<()> {
        let job_id = task.job_id.clone();
        let job_id = job_id.as_str();
        let now = self.now();
        let (result, failure) = outcome(&res);
        let ran_on = task.status.node_info.clone();
        let freed = self.release_placement(r, &task, Some(result)).await?;
        self.close_subtasks(&mut task, now);
        self.touched_jobs.insert(job_id.to_string());
        let max_retries = task.spec.constraints.as_ref().and_then(|c| c.max_task_retry_count).unwrap_or(0);
        let retry = result == ExecutionResult::Failure
            && retryable(&res)
            && (max_retries < 0 || task.status.execution_info.retry_count < max_retries);
        let started = res.started_ms.map(|s| to_ts(s, now));
        let counted = match (retry, result) {
            (true, _) => AttemptOutcome::Retried,
            (false, ExecutionResult::Success) => AttemptOutcome::Succeeded,
            (false, _) => AttemptOutcome::Failed,
        };
        self.count_attempt(&mut task, &res, started, counted);
        let exec = &mut task.status.execution_info;
        if retry {
            exec.retry_count += 1;
            exec.last_retry_time = Some(now);
            exec.end_time = None;
            exec.exit_code = None;
            exec.failure_info = None;
            exec.result = None;
            task.status.transition(TaskState::Active, now);
            task.status.node_info = None;
            let job = r.get::<Job>("", job_id).await?;
            task.multi = None;
            self.enqueue(job.as_ref(), &task, true);
        } else {
            // A launch failure (no process) still went through running, as the service
            // reports it: start and end at the moment of the attempt.
            let ended = to_ts(res.ended_ms, now);
            let start = *exec.start_time.get_or_insert(started.unwrap_or(ended));
            exec.end_time = Some(ended.max(start));
            exec.exit_code = res.exit_code;
            exec.result = Some(result);
            exec.failure_info = failure;
            if task.status.state == TaskState::Preparing {
                task.status.transition(TaskState::Running, start);
            }
            task.status.transition(TaskState::Completed, now);
            self.task_completed(r, &task, ending(&res)).await?;
            self.retain(&task);
        }
        self.note_recent_task(r, ran_on.as_ref(), &task).await?;
        r.put(task);
        // Nodes leaving their pool once their tasks finish go now.
        for (pool_id, node_id) in freed {
            let leaving =
                r.get::<Node>(&pool_id, &node_id).await?.is_some_and(|n| n.state == NodeState::LeavingPool && n.running_tasks_count == 0);
            if leaving {
                self.remove_node(r, &pool_id, &node_id, DeallocationOption::Requeue).await?;
                self.touched_pools.insert(pool_id);
            }
        }
        Ok(())
    }

    /// Gives back the slots a placed task holds on each of its nodes (one, or every node of a
    /// multi-instance task) and takes it out of the core; `counted`: the attempt ended with
    /// this result and counts in the primary node's totals. Returns the nodes.
    pub(super) async fn release_placement<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        task: &Task,
        counted: Option<ExecutionResult>,
    ) -> StoreResult<Vec<(String, String)>> {
        let (job_id, task_id) = (task.job_id.as_str(), task.spec.id.as_str());
        let Some((pool_id, nodes, slots)) = self.core.placement_nodes(job_id, task_id) else { return Ok(Vec::new()) };
        self.core.finish_task(job_id, task_id);
        let now = self.now();
        for (i, node_id) in nodes.iter().enumerate() {
            if let Some(mut node) = r.get::<Node>(&pool_id, node_id).await? {
                release_slots(&mut node, slots, now);
                if let (0, Some(result)) = (i, counted) {
                    node.total_tasks_run += 1;
                    node.total_tasks_succeeded += i32::from(result == ExecutionResult::Success);
                }
                // A node waiting to reboot or reimage goes once its last task ended.
                self.restart_if_due(&node);
                r.put(node);
            }
        }
        Ok(nodes.into_iter().map(|n| (pool_id.clone(), n)).collect())
    }

    /// Puts a task placed on a node back in its job's queue (node lost or removed, job
    /// disabled with `requeue`).
    pub(super) async fn requeue_task<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str, task_id: &str) -> StoreResult<()> {
        let Some(mut task) = r.get::<Task>(job_id, task_id).await? else {
            self.core.finish_task(job_id, task_id);
            return Ok(());
        };
        if !matches!(task.status.state, TaskState::Preparing | TaskState::Running) {
            self.core.finish_task(job_id, task_id);
            return Ok(());
        }
        let now = self.now();
        self.kill_instances(&task);
        self.release_placement(r, &task, None).await?;
        let ran_on = task.status.node_info.take();
        task.multi = None;
        task.status.execution_info.requeue_count += 1;
        task.status.execution_info.last_requeue_time = Some(now);
        task.status.execution_info.start_time = None;
        task.dispatch = 0;
        task.status.transition(TaskState::Active, now);
        self.note_recent_task(r, ran_on.as_ref(), &task).await?;
        let job = r.get::<Job>("", job_id).await?;
        // Disabled and terminating jobs keep their queue; the core does not schedule from it.
        if let Some(job) = job.filter(|j| !matches!(j.status.state, JobState::Completed | JobState::Deleting)) {
            self.enqueue(Some(&job), &task, true);
        }
        r.put(task);
        self.touched_jobs.insert(job_id.to_string());
        Ok(())
    }

    /// Ends a task that is placed or queued, as Terminate Task does: its process is killed,
    /// it completes as failed with `code`/`message`. `counts_as_failed`: the lifetime
    /// statistics count it (a task being deleted is not counted).
    pub(super) async fn end_task<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        mut task: Task,
        code: &str,
        message: &str,
        counts_as_failed: bool,
    ) -> StoreResult<Task> {
        let now = self.now();
        let job_id = task.job_id.clone();
        let task_id = task.spec.id.clone();
        if self.core.placement(&job_id, &task_id).is_some() {
            self.kill_instances(&task);
            self.release_placement(r, &task, Some(ExecutionResult::Failure)).await?;
            self.close_subtasks(&mut task, now);
        } else {
            self.core.dequeue_task(&job_id, &task_id);
        }
        let exec = &mut task.status.execution_info;
        if exec.start_time.is_some() {
            exec.end_time = Some(now);
        }
        exec.result = Some(ExecutionResult::Failure);
        exec.failure_info = Some(ended_by_service(code, message));
        task.dispatch = 0;
        task.status.transition(TaskState::Completed, now);
        task.last_modified = now;
        self.note_recent_task(r, task.status.node_info.clone().as_ref(), &task).await?;
        self.retain(&task);
        if counts_as_failed {
            self.task_completed(r, &task, Ending::Killed).await?;
        }
        self.touched_jobs.insert(job_id);
        if counts_as_failed {
            self.count_ended_by_service(&mut task, now);
        }
        Ok(task)
    }

    /// Terminate Task: 409 `TaskCompleted` when it already completed.
    pub(super) async fn terminate_task<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        job_id: &str,
        task_id: &str,
    ) -> StoreResult<ApiResult<()>> {
        let Some(task) = r.get::<Task>(job_id, task_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Task)));
        };
        if task.status.state == TaskState::Completed {
            return Ok(Err(BatchError::conflict("TaskCompleted", "The specified task is already in a completed state.")));
        }
        let task = self.end_task(r, task, "TaskEnded", "Task Was Ended by User Request", true).await?;
        r.put(task);
        Ok(Ok(()))
    }

    /// Task Reactivate: a task that completed with a failure becomes active again with its
    /// retry count, exit code and failure information cleared (Task_Reactivate). 409 for a
    /// task not completed or completed successfully, and for a job that is over.
    pub(super) async fn reactivate_task<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        job_id: &str,
        task_id: &str,
    ) -> StoreResult<ApiResult<()>> {
        let Some(mut task) = r.get::<Task>(job_id, task_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Task)));
        };
        let Some(job) = r.get::<Job>("", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        match job.status.state {
            JobState::Completed => {
                return Ok(Err(BatchError::conflict("JobCompleted", "The specified job is already in a completed state.")))
            }
            JobState::Terminating => return Ok(Err(BatchError::conflict("JobBeingTerminated", "The specified job is being terminated."))),
            JobState::Deleting => return Ok(Err(BatchError::being_deleted(ResourceKind::Job))),
            _ => {}
        }
        if task.status.state != TaskState::Completed {
            return Ok(Err(BatchError::conflict(
                "TaskNotCompleted",
                "The specified task is not in a completed state; only a failed task can be reactivated.",
            )));
        }
        if task.status.execution_info.result == Some(ExecutionResult::Success) {
            return Ok(Err(BatchError::conflict(
                "TaskCompletedSuccessfully",
                "The specified task completed successfully; only a failed task can be reactivated.",
            )));
        }
        let now = self.now();
        let exec = &mut task.status.execution_info;
        exec.retry_count = 0;
        exec.last_retry_time = None;
        exec.start_time = None;
        exec.end_time = None;
        exec.exit_code = None;
        exec.failure_info = None;
        exec.result = None;
        task.status.node_info = None;
        task.dispatch = 0;
        task.status.transition(TaskState::Active, now);
        task.last_modified = now;
        task.multi = None;
        self.enqueue(Some(&job), &task, false);
        self.deps.reactivated(job_id, &super::dependencies::dep_key(task_id));
        r.put(task);
        Ok(Ok(()))
    }

    /// Delete Task: a running task is ended first; the files in its directory on the node
    /// go with it.
    pub(super) async fn delete_task<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str, task_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(mut task) = r.get::<Task>(job_id, task_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Task)));
        };
        if task.status.state != TaskState::Completed {
            task = self.end_task(r, task, "TaskEnded", "The task was deleted", false).await?;
        }
        self.remove_task_dir(&task);
        r.remove::<Task>(job_id, task_id);
        self.deps.removed(job_id, &super::dependencies::dep_key(task_id));
        Ok(Ok(()))
    }
}

/// Gives back a task's slots on its node; a node left without tasks becomes idle.
fn release_slots(node: &mut Node, slots: u32, now: crate::model::time::Timestamp) {
    node.running_tasks_count = (node.running_tasks_count - 1).max(0);
    node.running_task_slots_count = (node.running_task_slots_count - slots as i32).max(0);
    if node.state == NodeState::Running && node.running_tasks_count == 0 {
        // A node whose scheduling is disabled is `offline` once nothing runs on it.
        let state = if node.scheduling_state == SchedulingState::Disabled { NodeState::Offline } else { NodeState::Idle };
        set_node_state(node, state, now);
    }
}
