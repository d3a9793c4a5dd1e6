//! Job schedules: when a schedule creates its jobs, and its state machine (active, disabled,
//! terminating, completed, deleting).
//!
//! Rules (Azure Batch, `CloudJobSchedule` and `Schedule`): the recurrence rule is
//! [`Schedule::step`] (one active job at a time, start windows, `doNotRunUntil` /
//! `doNotRunAfter`); a job is named `<scheduleId>:job-<n>` and gets the schedule's
//! `jobSpecification`, with its job manager task and, for an auto pool, a pool of its own
//! (`poolLifetimeOption: job`) or the schedule's (`jobschedule`, created with the first job
//! and deleted when the schedule completes or goes). Disabling a schedule stops new jobs but
//! lets the active one run; Terminate ends the active job and completes the schedule once it
//! completed; Delete deletes every job of the schedule and then the schedule.
//!
//! The reactor wakes a schedule at the time [`Schedule::step`] asks for (its next due time,
//! or the end of a window it waits in), when its active job ends, and when it changes. At
//! start every unfinished schedule is evaluated once, which handles windows missed while
//! the service was down as the rule does: a recurrence whose window closed is skipped.
//!
//! [`Schedule::step`]: crate::model::job_schedule::Schedule::step

use super::{AddedTask, Backing, Event, Reactor, Records};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::job::{Job, JobState, PoolLifetimeOption};
use crate::model::job_schedule::{JobSchedule, JobScheduleState, RecentJob, Step};
use crate::model::pool::{Pool, PoolState};
use crate::store::StoreResult;

impl Reactor {
    /// Remembers when to look at a schedule again (replacing an earlier wake-up).
    fn wake_schedule(&mut self, id: &str, at: Option<crate::model::time::Timestamp>) {
        match at {
            Some(at) => self.schedule_wake.insert(id.to_string(), at),
            None => self.schedule_wake.remove(id),
        };
    }

    /// Schedules whose wake-up time has come.
    pub(super) fn due_schedules(&self, now: crate::model::time::Timestamp) -> Vec<String> {
        self.schedule_wake.iter().filter(|(_, at)| **at <= now).map(|(id, _)| id.clone()).collect()
    }

    /// Looks at a schedule now: creates the job that is due, skips recurrences whose window
    /// closed, completes it when no job will come, and finishes termination and deletion.
    pub(super) async fn evaluate_schedule<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<()> {
        self.schedule_wake.remove(id);
        let Some(mut s) = r.get::<JobSchedule>("", id).await? else { return Ok(()) };
        let now = self.now();
        match s.state {
            JobScheduleState::Completed => return Ok(()),
            JobScheduleState::Terminating => {
                if !s.job_active {
                    self.complete_schedule(r, &mut s).await?;
                    r.put(s);
                }
                return Ok(());
            }
            JobScheduleState::Deleting => {
                let jobs: Vec<Job> = r.prefixed("", &JobSchedule::job_prefix(&s.spec.id)).await?;
                if jobs.is_empty() {
                    self.release_schedule_pool(r, &mut s).await?;
                    r.remove::<JobSchedule>("", &s.spec.id);
                }
                return Ok(());
            }
            JobScheduleState::Active | JobScheduleState::Disabled => {}
        }
        let before = s.execution_info.clone();
        loop {
            let enabled = s.state == JobScheduleState::Active;
            match s.spec.schedule.step(s.execution_info.next_run_time, now, s.job_active, enabled) {
                Step::CreateJob { due, next } => {
                    self.create_scheduled_job(r, &mut s, due).await?;
                    s.execution_info.next_run_time = next;
                }
                Step::Wait { next, wake } => {
                    s.execution_info.next_run_time = next;
                    self.wake_schedule(&s.spec.id, wake);
                    break;
                }
                Step::Complete => {
                    self.complete_schedule(r, &mut s).await?;
                    break;
                }
            }
        }
        // What the service does on its own (jobs created, next run times) leaves the ETag.
        if s.execution_info != before || s.state == JobScheduleState::Completed {
            r.put(s);
        }
        Ok(())
    }

    /// Creates the schedule's next job (`<id>:job-<n>`) for the recurrence due at `due`.
    async fn create_scheduled_job<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        s: &mut JobSchedule,
        due: crate::model::time::Timestamp,
    ) -> StoreResult<()> {
        let now = self.now();
        let mut n = s.jobs_created + 1;
        while r.get::<Job>("", &s.job_id(n)).await?.is_some() {
            n += 1;
        }
        let mut spec = s.spec.job_specification.clone();
        spec.id = s.job_id(n);
        let pool_id = match spec.pool_info.auto_pool_specification.clone() {
            None => spec.pool_info.pool_id.clone(),
            Some(auto) => {
                let shared = auto.pool_lifetime_option == PoolLifetimeOption::JobSchedule;
                let existing = match (&s.auto_pool_id, shared) {
                    (Some(id), true) => r.get::<Pool>("", id).await?.filter(|p| p.status.state != PoolState::Deleting).map(|p| p.spec.id),
                    _ => None,
                };
                match existing {
                    Some(id) => Some(id),
                    None => match auto.new_pool(now) {
                        Ok(pool) => {
                            let id = pool.spec.id.clone();
                            r.put(pool);
                            self.pending.push_back(Event::PoolChanged(id.clone()));
                            if shared {
                                s.auto_pool_id = Some(id.clone());
                            }
                            Some(id)
                        }
                        Err(e) => {
                            tracing::error!(schedule = %s.spec.id, error = %e, "the job schedule's auto pool could not be created");
                            None
                        }
                    },
                }
            }
        };
        let job = Job::new(spec, pool_id, now);
        let job_id = job.spec.id.clone();
        tracing::info!(schedule = %s.spec.id, job = %job_id, due = %crate::model::time::format_timestamp(&due), "job schedule created a job");
        let manager = job.manager_task(now);
        self.upsert_job_core(&job);
        r.put(job);
        self.touched_jobs.insert(job_id.clone());
        if let Some(t) = manager {
            let added = AddedTask::from(&t);
            r.put(t);
            self.pending.push_back(Event::TasksAdded { job_id: job_id.clone(), tasks: vec![added] });
        }
        s.jobs_created = n;
        s.execution_info.recent_job = Some(RecentJob { id: job_id });
        s.last_run_due = Some(due);
        s.job_active = true;
        Ok(())
    }

    /// The schedule completes: no next run, its end time set, its auto pool deleted.
    async fn complete_schedule<B: Backing>(&mut self, r: &mut Records<B>, s: &mut JobSchedule) -> StoreResult<()> {
        let now = self.now();
        s.transition(JobScheduleState::Completed, now);
        s.execution_info.next_run_time = None;
        s.execution_info.end_time = Some(now);
        s.last_modified = now;
        self.schedule_wake.remove(&s.spec.id);
        self.release_schedule_pool(r, s).await
    }

    /// Deletes a schedule's own auto pool (`poolLifetimeOption: jobschedule`) unless kept alive.
    async fn release_schedule_pool<B: Backing>(&mut self, r: &mut Records<B>, s: &mut JobSchedule) -> StoreResult<()> {
        let keep = s.spec.job_specification.pool_info.auto_pool_specification.as_ref().is_some_and(|a| a.keep_alive == Some(true));
        if let Some(pool_id) = s.auto_pool_id.take().filter(|_| !keep) {
            self.delete_auto_pool(r, &pool_id).await?;
        }
        Ok(())
    }

    /// A job of a schedule completed or went: the schedule may go on.
    pub(super) async fn schedule_job_ended<B: Backing>(&mut self, r: &mut Records<B>, schedule_id: &str, job_id: &str) -> StoreResult<()> {
        let Some(mut s) = r.get::<JobSchedule>("", schedule_id).await? else { return Ok(()) };
        let recent = s.execution_info.recent_job.as_ref().is_some_and(|j| j.id.eq_ignore_ascii_case(job_id));
        if recent && s.job_active {
            s.job_active = false;
            r.put(s);
        }
        self.evaluate_schedule(r, schedule_id).await
    }

    /// Loads a schedule for an operation; 404 `JobScheduleNotFound`, and the 409 of
    /// [`changeable`] (only `JobScheduleBeingDeleted` unless `in_any_other_state` is false).
    async fn schedule_for_change<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        id: &str,
        in_any_other_state: bool,
    ) -> StoreResult<ApiResult<JobSchedule>> {
        Ok(match r.get::<JobSchedule>("", id).await? {
            None => Err(BatchError::not_found(ResourceKind::JobSchedule)),
            Some(s) if s.state == JobScheduleState::Deleting || !in_any_other_state => changeable(&s).map(|()| s),
            Some(s) => Ok(s),
        })
    }

    /// Terminate Job Schedule: no more jobs; the active job is terminated and the schedule
    /// completes once it has. Errors: 404 `JobScheduleNotFound`, 409 `JobScheduleBeingDeleted`,
    /// `JobScheduleCompleted`, `JobScheduleBeingTerminated`.
    pub(super) async fn terminate_schedule<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<ApiResult<()>> {
        let mut s = match self.schedule_for_change(r, id, false).await? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let now = self.now();
        s.transition(JobScheduleState::Terminating, now);
        s.execution_info.next_run_time = None;
        s.last_modified = now;
        let active = s.execution_info.recent_job.clone().filter(|_| s.job_active);
        r.put(s);
        if let Some(recent) = active {
            if let Some(mut job) = r.get::<Job>("", &recent.id).await? {
                if matches!(job.status.state, JobState::Active | JobState::Disabling | JobState::Disabled) {
                    self.finish_job(r, &mut job, "UserTerminate").await?;
                    r.put(job);
                }
            }
        }
        self.evaluate_schedule(r, id).await?;
        Ok(Ok(()))
    }

    /// Delete Job Schedule: no more jobs; every job of the schedule is deleted, then the
    /// schedule. Errors: 404 `JobScheduleNotFound`, 409 `JobScheduleBeingDeleted`.
    pub(super) async fn delete_schedule<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<ApiResult<()>> {
        let mut s = match self.schedule_for_change(r, id, true).await? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let now = self.now();
        s.transition(JobScheduleState::Deleting, now);
        s.execution_info.next_run_time = None;
        s.last_modified = now;
        let prefix = JobSchedule::job_prefix(&s.spec.id);
        r.put(s);
        for job in r.prefixed::<Job>("", &prefix).await? {
            if job.status.state != JobState::Deleting {
                // The job's own answer (it exists, it is not being deleted) needs no relaying.
                let _ = self.delete_job(r, &job.spec.id).await?;
            }
        }
        self.evaluate_schedule(r, id).await?;
        Ok(Ok(()))
    }

    /// Disable Job Schedule: no new jobs until enabled; the active job runs on. Errors: 404,
    /// 409 `JobScheduleBeingDeleted`, `JobScheduleCompleted`, `JobScheduleBeingTerminated`,
    /// `JobScheduleDisabled`.
    pub(super) async fn disable_schedule<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<ApiResult<()>> {
        self.set_schedule_enabled(r, id, false).await
    }

    /// Enable Job Schedule: a disabled schedule is active again and creates the job that is
    /// due if its window is still open (an active schedule stays as it is). Errors as
    /// [`Reactor::disable_schedule`], without `JobScheduleDisabled`.
    pub(super) async fn enable_schedule<B: Backing>(&mut self, r: &mut Records<B>, id: &str) -> StoreResult<ApiResult<()>> {
        self.set_schedule_enabled(r, id, true).await
    }

    async fn set_schedule_enabled<B: Backing>(&mut self, r: &mut Records<B>, id: &str, enable: bool) -> StoreResult<ApiResult<()>> {
        let mut s = match self.schedule_for_change(r, id, false).await? {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let target = if enable { JobScheduleState::Active } else { JobScheduleState::Disabled };
        if s.state == JobScheduleState::Disabled && !enable {
            return Ok(Err(BatchError::conflict("JobScheduleDisabled", "The specified job schedule is already disabled.")));
        }
        let now = self.now();
        if s.state != target {
            s.transition(target, now);
        }
        s.last_modified = now;
        r.put(s);
        self.evaluate_schedule(r, id).await?;
        Ok(Ok(()))
    }
}

/// Whether a caller may change a schedule in its state (Update, Patch, Disable, Enable,
/// Terminate). Errors: 409 `JobScheduleBeingDeleted`, `JobScheduleBeingTerminated`,
/// `JobScheduleCompleted`.
pub fn changeable(s: &JobSchedule) -> ApiResult<()> {
    match s.state {
        JobScheduleState::Deleting => Err(BatchError::being_deleted(ResourceKind::JobSchedule)),
        JobScheduleState::Terminating => {
            Err(BatchError::conflict("JobScheduleBeingTerminated", "The specified job schedule is being terminated."))
        }
        JobScheduleState::Completed => {
            Err(BatchError::conflict("JobScheduleCompleted", "The specified job schedule is already in a completed state."))
        }
        JobScheduleState::Active | JobScheduleState::Disabled => Ok(()),
    }
}
