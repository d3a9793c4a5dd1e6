//! Task dependencies and exit conditions in the reactor.
//!
//! Rules (Azure Batch): in a job with `usesTaskDependencies`, a task with `dependsOn` stays
//! `active` and is not scheduled until every task it names (by id, or by integer id range)
//! completed and its exit conditions' `dependencyAction` said `satisfy` (the default for
//! success; `block` is the default for a failure). Leading zeros are not significant in
//! integer ids (`4`, `04` and `004` are task 4). When a task completes, its exit conditions
//! also name a `jobAction`, which the job carries out (`disable` as Disable Job with
//! `requeue`, `terminate` with the reason `TaskFailed`) when its `onTaskFailure` is
//! `performexitoptionsjobaction`. The tracker itself is [`crate::scheduler::deps`].

use super::exec::Ending;
use super::{Backing, Event, Reactor, Records};
use crate::model::common::ExecutionResult;
use crate::model::job::{DisableJobOption, Job, OnTaskFailure};
use crate::model::task::{Task, TaskSpec, TaskState};
use crate::scheduler::deps::{DepOutcome, DependsOn, Readiness};
use crate::store::StoreResult;
use std::borrow::Cow;

/// What a job does after one of its tasks completed (ExitOptions.jobAction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    None,
    Disable,
    Terminate,
}

/// The id under which the dependency tracker knows a task: task ids compare without regard to
/// case, as everywhere in Batch, and an integer id loses its leading zeros (`"004"` → `"4"`).
pub fn dep_key(id: &str) -> Cow<'_, str> {
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Owned(dep_key(&id.to_ascii_lowercase()).into_owned());
    }
    let (neg, digits) = match id.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, id),
    };
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = digits.trim_start_matches('0');
        let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
        return Cow::Owned(if neg && trimmed != "0" { format!("-{trimmed}") } else { trimmed.to_string() });
    }
    Cow::Borrowed(id)
}

/// A task's `dependsOn` in the tracker's terms (ids keyed by [`dep_key`]).
pub fn depends_on(spec: &TaskSpec) -> DependsOn {
    let Some(d) = spec.depends_on.as_ref() else { return DependsOn::default() };
    DependsOn {
        task_ids: d.task_ids.iter().flatten().map(|id| dep_key(id).into_owned()).collect(),
        ranges: d.task_id_ranges.iter().flatten().map(|r| (i64::from(r.start), i64::from(r.end))).collect(),
    }
}

/// The dependency and job actions of a task that completed with `ending` (its exit
/// conditions, else the defaults: satisfy and no job action on success; block and terminate
/// on failure).
pub fn exit_actions(spec: &TaskSpec, ending: Ending) -> (DepOutcome, JobAction) {
    use crate::model::exit::{DependencyAction, JobAction as Ja, TaskOutcome};
    let outcome = match ending {
        Ending::ExitCode(c) => TaskOutcome::ExitCode(c),
        Ending::PreProcessingError => TaskOutcome::PreProcessingError,
        Ending::FileUploadError(exit_code) => TaskOutcome::FileUploadError { exit_code },
        // A task the wall clock or the service ended has no exit code of its own: it counts
        // as a failure exit (the default exit options).
        Ending::TimedOut | Ending::Killed => TaskOutcome::ExitCode(-1),
    };
    let resolved = spec.exit_conditions.clone().unwrap_or_default().options_for(outcome);
    let dep = match resolved.dependency_action {
        DependencyAction::Satisfy => DepOutcome::Satisfy,
        DependencyAction::Block => DepOutcome::Block,
    };
    let job = match resolved.job_action {
        Ja::None => JobAction::None,
        Ja::Disable => JobAction::Disable,
        Ja::Terminate => JobAction::Terminate,
    };
    (dep, job)
}

/// How a stored completed task ended, read back from its record (for recovery).
fn stored_ending(t: &Task) -> Ending {
    let exec = &t.status.execution_info;
    match (exec.result, exec.exit_code, exec.failure_info.as_ref().and_then(|f| f.code.as_deref())) {
        (Some(ExecutionResult::Success), c, _) => Ending::ExitCode(c.unwrap_or(0)),
        (_, _, Some("TaskEnded")) => Ending::Killed,
        (_, c, Some("FileUploadError")) => Ending::FileUploadError(c),
        (_, Some(c), Some("FailureExitCode")) => Ending::ExitCode(c),
        (_, Some(c), None) => Ending::ExitCode(c),
        _ => Ending::PreProcessingError,
    }
}

impl Reactor {
    /// Tasks were added to a job: each is queued, unless its dependencies hold it back.
    pub(super) async fn tasks_added<B: Backing>(
        &mut self,
        r: &mut Records<B>,
        job_id: &str,
        tasks: Vec<super::AddedTask>,
    ) -> StoreResult<()> {
        let job = r.get::<Job>("", job_id).await?;
        // The job's own event may come later in the batch (a job manager's task is added
        // with its job): the core learns of the job first.
        if let Some(j) = &job {
            self.upsert_job_core(j);
        }
        let uses_deps = job.as_ref().is_some_and(|j| j.spec.uses_task_dependencies == Some(true));
        let manager = job.as_ref().and_then(|j| j.spec.job_manager_task.as_ref()).map(|m| m.id.clone());
        for super::AddedTask { id: task_id, slots, instances } in tasks {
            if manager.as_deref() == Some(task_id.as_str()) {
                // The job manager task goes first, and may take a whole node.
                if let Some(t) = r.get::<Task>(job_id, &task_id).await? {
                    self.enqueue(job.as_ref(), &t, true);
                }
                continue;
            }
            if uses_deps {
                let Some(t) = r.get::<Task>(job_id, &task_id).await? else { continue };
                self.remember_key(job_id, &task_id);
                if self.deps.add_task(job_id, &dep_key(&task_id), &depends_on(&t.spec)) == Readiness::Waiting {
                    continue;
                }
            }
            self.core.enqueue_multi(job_id, &task_id, slots, instances, false);
        }
        Ok(())
    }

    /// A task of a job reached its final completion: its dependents learn the outcome and
    /// those now free are queued; the job carries out the exit conditions' job action.
    pub(super) async fn task_completed<B: Backing>(&mut self, r: &mut Records<B>, task: &Task, ending: Ending) -> StoreResult<()> {
        let Some(job) = r.get::<Job>("", &task.job_id).await? else { return Ok(()) };
        let (dep, action) = exit_actions(&task.spec, ending);
        if job.spec.uses_task_dependencies == Some(true) {
            for id in self.deps.completed(&task.job_id, &dep_key(&task.spec.id), dep) {
                // The tracker knows integer ids without leading zeros; the record has its own.
                if let Some(t) = self.find_dependent(r, &task.job_id, &id).await? {
                    if t.status.state == TaskState::Active {
                        self.enqueue(Some(&job), &t, false);
                    }
                }
            }
        }
        if Self::manager_ends_job(&job, task)
            && matches!(
                job.status.state,
                crate::model::job::JobState::Active | crate::model::job::JobState::Disabling | crate::model::job::JobState::Disabled
            )
        {
            self.pending.push_back(Event::TerminateJob { job_id: task.job_id.clone(), reason: "JMComplete".into() });
            return Ok(());
        }
        // onTaskFailure is about failures: a task that succeeded takes no job action.
        let failed = task.status.execution_info.result != Some(ExecutionResult::Success);
        if failed && job.spec.on_task_failure == Some(OnTaskFailure::PerformExitOptionsJobAction) {
            match action {
                JobAction::None => {}
                JobAction::Disable => {
                    self.pending.push_back(Event::DisableJob { job_id: task.job_id.clone(), option: DisableJobOption::Requeue })
                }
                JobAction::Terminate => {
                    self.pending.push_back(Event::TerminateJob { job_id: task.job_id.clone(), reason: "TaskFailed".into() })
                }
            }
        }
        Ok(())
    }

    /// The task the tracker released under `key` (its own id, or the same integer id with
    /// leading zeros, found among the job's waiting tasks).
    async fn find_dependent<B: Backing>(&mut self, r: &mut Records<B>, job_id: &str, key: &str) -> StoreResult<Option<Task>> {
        if let Some(t) = r.get::<Task>(job_id, key).await? {
            return Ok(Some(t));
        }
        let Some(id) = self.dep_ids.get(&(job_id.to_string(), key.to_string())).cloned() else { return Ok(None) };
        r.get::<Task>(job_id, &id).await
    }

    /// Rebuilds the dependency tracker from the tasks of jobs that use dependencies; returns
    /// whether each active task may be queued.
    pub(super) fn restore_dependencies(&mut self, jobs: &[Job], tasks: &[Task]) -> std::collections::HashSet<(String, String)> {
        self.deps = Default::default();
        self.dep_ids.clear();
        let with_deps: std::collections::HashSet<&str> =
            jobs.iter().filter(|j| j.spec.uses_task_dependencies == Some(true)).map(|j| j.spec.id.as_str()).collect();
        let mut held = std::collections::HashSet::new();
        for t in tasks.iter().filter(|t| with_deps.contains(t.job_id.as_str())) {
            self.remember_key(&t.job_id, &t.spec.id);
            if t.status.state == TaskState::Completed {
                let (dep, _) = exit_actions(&t.spec, stored_ending(t));
                self.deps.completed(&t.job_id, &dep_key(&t.spec.id), dep);
            }
        }
        for t in tasks.iter().filter(|t| with_deps.contains(t.job_id.as_str()) && t.status.state == TaskState::Active) {
            if self.deps.add_task(&t.job_id, &dep_key(&t.spec.id), &depends_on(&t.spec)) == Readiness::Waiting {
                held.insert((t.job_id.clone(), t.spec.id.clone()));
            }
        }
        held
    }

    /// Remembers the record id of a task whose tracker key differs (leading zeros).
    pub(super) fn remember_key(&mut self, job_id: &str, task_id: &str) {
        if let Cow::Owned(key) = dep_key(task_id) {
            self.dep_ids.insert((job_id.to_string(), key), task_id.to_string());
        }
    }
}
