//! Jobs: the job state machine (active, disabling, disabled, terminating, completed,
//! deleting) and what each transition does to the job's tasks and auto pool.
//!
//! Rules (Azure Batch): Terminate Job ends running tasks, runs the job release task on every
//! node that ran the preparation task, then completes; `onAllTasksComplete: terminatejob`
//! terminates a job once all its tasks completed (a job without tasks stays active); Disable
//! Job stops scheduling and requeues, terminates or waits for running tasks, and the job is
//! `disabled` once none runs; a job's auto pool goes with it unless kept alive.

use super::{Backing, Event, Reactor, Records};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::job::{DisableJobOption, Job, JobNode, JobState, OnAllTasksComplete};
use crate::model::pool::{Pool, PoolState};
use crate::model::task::{Task, TaskState};
use crate::store::StoreResult;

const RUNNING: &[&str] = &["preparing", "running"];

impl Reactor {
    /// The slots a queued task needs: a job manager task with `runExclusive` (the default)
    /// takes a whole node, every other task its `requiredSlots`.
    pub(super) fn queue_slots(&self, job: Option<&Job>, task: &Task) -> u32 {
        let exclusive_manager = job.and_then(|j| j.spec.job_manager_task.as_ref()).is_some_and(|m| m.id == task.spec.id && m.exclusive());
        match (exclusive_manager, job.and_then(|j| j.status.execution_info.pool_id.as_deref())) {
            (true, Some(pool_id)) => self.core.slots_per_node(pool_id).max(1),
            _ => task.spec.slots(),
        }
    }

    /// Queues a task (with its instances, for a multi-instance task).
    pub(super) fn enqueue(&mut self, job: Option<&Job>, task: &Task, front: bool) {
        let slots = self.queue_slots(job, task);
        self.core.enqueue_multi(&task.job_id, &task.spec.id, slots, task.spec.instances(), front);
    }

    /// Whether `task` is its job's manager task with `killJobOnCompletion` (the default):
    /// the job then terminates with `JMComplete` when the task completes.
    pub(super) fn manager_ends_job(job: &Job, task: &Task) -> bool {
        job.spec.job_manager_task.as_ref().is_some_and(|m| m.id == task.spec.id && m.kills_job())
    }

    /// Terminate Job: 409 when completed, terminating or being deleted.
    pub(super) async fn terminate_job<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str, reason: &str) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = r.get::<Job>("", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        match job.status.state {
            JobState::Completed => {
                return Ok(Err(BatchError::conflict("JobCompleted", "The specified job is already in a completed state.")))
            }
            JobState::Deleting => return Ok(Err(BatchError::being_deleted(ResourceKind::Job))),
            JobState::Terminating => return Ok(Err(BatchError::conflict("JobBeingTerminated", "The specified job is being terminated."))),
            _ => {}
        }
        self.finish_job(r, &mut job, reason).await?;
        r.put(job);
        Ok(Ok(()))
    }

    /// Ends the tasks the core placed for a job, with `message`.
    async fn end_running_tasks<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str, message: &str, counts: bool) -> StoreResult<()> {
        for task_id in self.core.placed_tasks_of_job(job_id) {
            if let Some(t) = r.get::<Task>(job_id, &task_id).await? {
                if matches!(t.status.state, TaskState::Preparing | TaskState::Running) {
                    let t = self.end_task(r, t, "TaskEnded", message, counts).await?;
                    r.put(t);
                }
            }
        }
        Ok(())
    }

    /// Active → terminating: running tasks are ended, active ones stay active but are no
    /// longer scheduled; release tasks run; the job completes after them.
    pub(super) async fn finish_job<B: Backing>(&mut self, r: &mut Records<B>, job: &mut Job, reason: &str) -> StoreResult<()> {
        let now = self.now();
        job.status.transition(JobState::Terminating, now);
        let message = match reason {
            "MaxWallClockTimeExpiry" => "The job reached its maximum wall clock time",
            "TaskFailed" => "A task of the job failed and its exit options terminate the job",
            "JMComplete" => "The job manager task completed",
            _ => "Task Was Ended by User Request",
        };
        self.end_running_tasks(r, &job.spec.id, message, true).await?;
        job.status.execution_info.terminate_reason = Some(reason.to_string());
        job.last_modified = now;
        self.upsert_job_core(job);
        // Release tasks run on every node that prepared for the job; it completes after them.
        let mut releasing = false;
        if job.spec.job_release_task.is_some() {
            for node_id in self.core.prepared_nodes(&job.spec.id) {
                releasing |= self.start_release(r, job, &node_id).await?;
            }
        }
        if releasing {
            return Ok(());
        }
        self.complete_job(r, job).await
    }

    /// Terminating → completed, and the job's auto pool goes.
    pub(super) async fn complete_job<B: Backing>(&mut self, r: &mut Records<B>, job: &mut Job) -> StoreResult<()> {
        let later = self.now();
        job.status.transition(JobState::Completed, later);
        job.status.execution_info.end_time = Some(later);
        job.last_modified = later;
        self.upsert_job_core(job);
        self.job_ended(job);
        self.release_auto_pool(r, job).await
    }

    /// Tells a job's schedule, if a schedule created it, that the job completed or went.
    fn job_ended(&mut self, job: &Job) {
        if let Some(schedule_id) = job.schedule_id() {
            self.pending.push_back(Event::ScheduleJobEnded { schedule_id: schedule_id.to_string(), job_id: job.spec.id.clone() });
        }
    }

    /// Deletes the auto pool of a job that completed or went away, unless it is kept alive
    /// or belongs to the job's schedule.
    async fn release_auto_pool<B: Backing>(&mut self, r: &mut Records<B>, job: &Job) -> StoreResult<()> {
        let Some(pool_id) = job.status.execution_info.pool_id.clone().filter(|_| job.spec.pool_info.auto_pool_goes_with_job()) else {
            return Ok(());
        };
        self.delete_auto_pool(r, &pool_id).await
    }

    /// Starts deleting an auto pool (its nodes go, then the pool).
    pub(super) async fn delete_auto_pool<B: Backing>(&mut self, r: &mut Records<B>, pool_id: &str) -> StoreResult<()> {
        let pool_id = pool_id.to_string();
        if let Some(mut pool) = r.get::<Pool>("", &pool_id).await? {
            if pool.status.state != PoolState::Deleting {
                let now = self.now();
                pool.status.state = PoolState::Deleting;
                pool.status.state_transition_time = now;
                pool.last_modified = now;
                r.put(pool);
                self.pending.push_back(Event::PoolChanged(pool_id));
            }
        }
        Ok(())
    }

    /// Delete Job: the job is `deleting`, its running tasks are ended, and its release task
    /// runs on every node that ran its preparation task and has not released yet; once none
    /// runs, the job goes ([`Reactor::purge_job`]). Errors: 404 `JobNotFound`, 409
    /// `JobBeingDeleted`.
    pub(super) async fn delete_job<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = r.get::<Job>("", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        if job.status.state == JobState::Deleting {
            return Ok(Err(BatchError::being_deleted(ResourceKind::Job)));
        }
        self.release_auto_pool(r, &job).await?;
        self.end_running_tasks(r, job_id, "The job was deleted", false).await?;
        let now = self.now();
        job.status.transition(JobState::Deleting, now);
        job.last_modified = now;
        self.upsert_job_core(&job);
        if job.spec.job_release_task.is_some() {
            for node_id in self.core.prepared_nodes(job_id) {
                let released = r.get::<JobNode>(job_id, &node_id).await?.is_some_and(|jn| jn.job_release_task_execution_info.is_some());
                if !released {
                    self.start_release(r, &job, &node_id).await?;
                }
            }
        }
        r.put(job);
        self.complete_job_if_released(r, job_id).await?;
        Ok(Ok(()))
    }

    /// A deleted job goes once no release task of it runs: its tasks, its node rows, its
    /// queue, and its directories on the nodes that ran it.
    pub(super) async fn purge_job<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str) -> StoreResult<()> {
        let mut nodes: Vec<String> = r.children::<JobNode>(job_id).await?.into_iter().map(|jn| jn.node_id).collect();
        nodes.extend(r.children::<Task>(job_id).await?.into_iter().filter_map(|t| t.status.node_info.map(|ni| ni.node_id)));
        self.remove_job_dirs(job_id, nodes);
        r.remove_children::<Task>(job_id);
        r.remove_children::<JobNode>(job_id);
        if let Some(job) = r.get::<Job>("", job_id).await? {
            self.job_ended(&job);
        }
        r.remove::<Job>("", job_id);
        self.core.remove_job(job_id);
        self.deps.remove_job(job_id);
        self.job_deadlines.remove(job_id);
        self.touched_jobs.remove(job_id);
        Ok(())
    }

    /// Disable Job: stop scheduling; running tasks are requeued, ended or left to finish.
    pub(super) async fn disable_job<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        job_id: &str,
        option: DisableJobOption,
    ) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = r.get::<Job>("", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        if job.status.state != JobState::Active {
            return Ok(Err(BatchError::conflict("JobNotActive", "The specified job is not in active state.")));
        }
        let now = self.now();
        job.status.transition(JobState::Disabling, now);
        job.last_modified = now;
        self.upsert_job_core(&job);
        match option {
            DisableJobOption::Requeue => {
                // Requeueing kills the running processes.
                for task_id in self.core.placed_tasks_of_job(job_id) {
                    self.requeue_task(r, job_id, &task_id).await?;
                }
            }
            DisableJobOption::Terminate => self.end_running_tasks(r, job_id, "Task Was Ended by User Request", true).await?,
            DisableJobOption::Wait => {}
        }
        r.put(job);
        self.touched_jobs.insert(job_id.to_string());
        Ok(Ok(()))
    }

    /// Enable Job: a disabled or disabling job becomes active again.
    pub(super) async fn enable_job<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = r.get::<Job>("", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        if !matches!(job.status.state, JobState::Disabled | JobState::Disabling) {
            return Ok(Err(BatchError::conflict("JobNotDisabled", "The specified job is not in disabled state.")));
        }
        let now = self.now();
        job.status.transition(JobState::Active, now);
        job.last_modified = now;
        self.upsert_job_core(&job);
        r.put(job);
        Ok(Ok(()))
    }

    /// Settles a job after its tasks changed: a terminating or deleting job moves on once
    /// its release tasks ended; `disabling` becomes `disabled` once nothing runs;
    /// `onAllTasksComplete: terminatejob` terminates it once no task is unfinished.
    pub(super) async fn settle_job<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str) -> StoreResult<()> {
        let Some(mut job) = r.get::<Job>("", job_id).await? else { return Ok(()) };
        if matches!(job.status.state, JobState::Terminating | JobState::Deleting) {
            // Waiting for release tasks (after a restart, too).
            return self.complete_job_if_released(r, job_id).await;
        }
        if job.status.state == JobState::Disabling {
            if self.core.placed_tasks_of_job(job_id).is_empty() {
                job.status.transition(JobState::Disabled, self.now());
                r.put(job);
            }
            return Ok(());
        }
        if job.status.state != JobState::Active || job.spec.on_all_tasks_complete != Some(OnAllTasksComplete::TerminateJob) {
            return Ok(());
        }
        // All tasks complete, and there is at least one: a job without tasks stays active.
        let unfinished = r.count::<Task>(job_id, &["active"]).await? + r.count::<Task>(job_id, RUNNING).await?;
        if unfinished > 0 || r.count::<Task>(job_id, &["completed"]).await? == 0 {
            return Ok(());
        }
        self.finish_job(r, &mut job, "AllTasksComplete").await?;
        r.put(job);
        Ok(())
    }
}
