//! Job: the canonical resource and the parameters of Job Add, Patch (PATCH) and Update (PUT).

use super::common::*;
use super::common::{ExecutionResult, FailureInfo};
use super::time::{ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

batch_enum!(
    /// JobState.
    JobState {
        Active = "active",
        Disabling = "disabling",
        Disabled = "disabled",
        Enabling = "enabling",
        Terminating = "terminating",
        Completed = "completed",
        Deleting = "deleting",
    }
);

batch_enum!(
    /// OnAllTasksComplete: `noaction` or `terminatejob`.
    OnAllTasksComplete { NoAction = "noaction", TerminateJob = "terminatejob" }
);

batch_enum!(
    /// OnTaskFailure: what a task failure does to its job — `noaction` (the default, echoed
    /// on Get) or `performexitoptionsjobaction` (the `jobAction` of the task's exit conditions;
    /// see [`super::exit::ResolvedExitOptions::job_action_under`]).
    OnTaskFailure { NoAction = "noaction", PerformExitOptionsJobAction = "performexitoptionsjobaction" }
);

batch_enum!(
    /// PoolLifetimeOption of an auto pool: `jobschedule` or `job`.
    PoolLifetimeOption { JobSchedule = "jobschedule", Job = "job" }
);

/// AutoPoolSpecification: the pool the service creates for a job, and how long it lives.
/// `pool` is a PoolSpecification (a pool without its id), kept as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoPoolSpecification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pool_id_prefix: Option<String>,
    pub pool_lifetime_option: PoolLifetimeOption,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Value>,
}

/// PoolInformation: the pool a job runs on (`poolId`), or the specification of an auto pool
/// the service creates for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolInformation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pool_specification: Option<AutoPoolSpecification>,
}

impl PoolInformation {
    /// True when the job's pool is an auto pool that goes with the job (lifetime `job`,
    /// `keepAlive` false); an auto pool of lifetime `jobschedule` goes with its schedule.
    pub fn auto_pool_goes_with_job(&self) -> bool {
        self.auto_pool_specification
            .as_ref()
            .is_some_and(|a| a.keep_alive != Some(true) && a.pool_lifetime_option == PoolLifetimeOption::Job)
    }
}

impl AutoPoolSpecification {
    /// A new auto pool's id, as Batch names them: `<autoPoolIdPrefix>_<GUID>` or a GUID, upper
    /// case.
    pub fn new_pool_id(&self) -> String {
        let guid = uuid::Uuid::new_v4().to_string().to_uppercase();
        match &self.auto_pool_id_prefix {
            Some(prefix) => format!("{prefix}_{guid}"),
            None => guid,
        }
    }

    /// The pool this specification describes (its `pool` as checked and normalized when the
    /// job or job schedule was added), under a new id.
    pub fn new_pool(&self, now: super::time::Timestamp) -> serde_json::Result<super::pool::Pool> {
        let mut value = self.pool.clone().unwrap_or_default();
        if let Some(o) = value.as_object_mut() {
            o.insert("id".into(), Value::String(self.new_pool_id()));
        }
        let spec: super::pool::PoolSpec = serde_json::from_value(value)?;
        Ok(super::pool::Pool::new(spec, now))
    }
}

/// The properties a caller sets on a job (JobAddParameter), normalized with defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// The job id, unique (case-insensitively) in the account.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether the job's tasks may depend on each other (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_task_dependencies: Option<bool>,
    /// Priority from -1000 to 1000 (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Whether its tasks may be preempted by higher-priority jobs' tasks (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_task_preemption: Option<bool>,
    /// Most tasks running at once (-1, the default, for no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_tasks: Option<i32>,
    /// Wall clock and the default task retry count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<JobConstraints>,
    /// The job manager task, created with the job (normalized with its defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager_task: Option<super::job_manager::JobManagerTask>,
    /// Runs on a node before the job's first task there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_preparation_task: Option<JobPreparationTask>,
    /// Runs on each node that ran the preparation task, when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_release_task: Option<JobReleaseTask>,
    /// Environment variables of every task of the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_environment_settings: Option<Vec<EnvironmentSetting>>,
    /// The pool the job runs on, or its auto pool.
    pub pool_info: PoolInformation,
    /// What happens when all tasks complete (default `noaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_all_tasks_complete: Option<OnAllTasksComplete>,
    /// What a task failure does to the job (default `noaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_task_failure: Option<OnTaskFailure>,
    /// The job's network configuration (kept and echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    /// Name-value pairs for the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<MetadataItem>>,
}

impl JobSpec {
    /// The job's `onTaskFailure` (`noaction` when unset).
    pub fn task_failure_mode(&self) -> OnTaskFailure {
        self.on_task_failure.unwrap_or(OnTaskFailure::NoAction)
    }

    /// True when the job's tasks may depend on each other (`usesTaskDependencies`).
    pub fn allows_dependencies(&self) -> bool {
        self.uses_task_dependencies == Some(true)
    }

    /// Fills in the defaults reported on Get (`priority 0`, `usesTaskDependencies false`,
    /// `allowTaskPreemption false`, `maxParallelTasks -1`, unlimited wall clock,
    /// `maxTaskRetryCount 0`, `onAllTasksComplete`/`onTaskFailure` `noaction`), and those of
    /// the job manager, preparation and release tasks.
    pub fn normalize(&mut self) {
        self.priority.get_or_insert(0);
        self.uses_task_dependencies.get_or_insert(false);
        self.allow_task_preemption.get_or_insert(false);
        self.max_parallel_tasks.get_or_insert(-1);
        let c = self.constraints.get_or_insert_with(JobConstraints::default);
        c.max_wall_clock_time.get_or_insert_with(|| super::time::UNLIMITED_DURATION.to_string());
        let c_retries = *c.max_task_retry_count.get_or_insert(0);
        self.on_all_tasks_complete.get_or_insert(OnAllTasksComplete::NoAction);
        self.on_task_failure.get_or_insert(OnTaskFailure::NoAction);
        if let Some(m) = self.job_manager_task.as_mut() {
            m.normalize(Some(c_retries));
        }
        if let Some(p) = self.job_preparation_task.as_mut() {
            p.normalize();
        }
        if let Some(r) = self.job_release_task.as_mut() {
            r.normalize();
        }
    }
}

/// JobPreparationTask: runs on a compute node before the job's first task there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobPreparationTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub command_line: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_files: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_settings: Option<Vec<EnvironmentSetting>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<TaskConstraints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_on_node_reboot_after_success: Option<bool>,
}

impl JobPreparationTask {
    /// Defaults reported on Get: id `jobpreparation`, unlimited wall clock, 7-day retention,
    /// no retries, the pool's non-admin auto-user, `waitForSuccess` and
    /// `rerunOnNodeRebootAfterSuccess` true.
    pub fn normalize(&mut self) {
        self.id.get_or_insert_with(|| "jobpreparation".into());
        let c = self.constraints.get_or_insert_with(TaskConstraints::default);
        c.max_wall_clock_time.get_or_insert_with(|| super::time::UNLIMITED_DURATION.to_string());
        c.retention_time.get_or_insert_with(|| "P7D".into());
        c.max_task_retry_count.get_or_insert(0);
        self.user_identity = Some(UserIdentity::normalized(self.user_identity.take()));
        self.wait_for_success.get_or_insert(true);
        self.rerun_on_node_reboot_after_success.get_or_insert(true);
    }
}

/// JobReleaseTask: runs on every node that ran the job's preparation task when the job ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobReleaseTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub command_line: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_files: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_settings: Option<Vec<EnvironmentSetting>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_clock_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
}

impl JobReleaseTask {
    /// Defaults reported on Get: id `jobrelease`, `maxWallClockTime` 15 minutes, 7-day
    /// retention, the pool's non-admin auto-user.
    pub fn normalize(&mut self) {
        self.id.get_or_insert_with(|| "jobrelease".into());
        self.max_wall_clock_time.get_or_insert_with(|| "PT15M".into());
        self.retention_time.get_or_insert_with(|| "P7D".into());
        self.user_identity = Some(UserIdentity::normalized(self.user_identity.take()));
    }
}

batch_enum!(
    /// JobPreparationTaskState / JobReleaseTaskState: `running` or `completed`.
    PrepTaskState { Running = "running", Completed = "completed" }
);

/// JobPreparationTaskExecutionInformation / JobReleaseTaskExecutionInformation on one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrepTaskInfo {
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub end_time: Option<Timestamp>,
    pub state: PrepTaskState,
    pub task_root_directory: String,
    pub task_root_directory_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<FailureInfo>,
    #[serde(default)]
    pub retry_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub last_retry_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExecutionResult>,
}

/// A job's preparation and release tasks on one compute node (the rows of Job List
/// Preparation and Release Task Status), stored per (job, node).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobNode {
    pub job_id: String,
    pub pool_id: String,
    pub node_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_preparation_task_execution_info: Option<PrepTaskInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_release_task_execution_info: Option<PrepTaskInfo>,
    /// Dispatch ids of the running preparation and release tasks (never rendered).
    #[serde(default)]
    pub prep_dispatch: u64,
    #[serde(default)]
    pub release_dispatch: u64,
}

/// JobExecutionInformation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionInfo {
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub end_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_reason: Option<String>,
}

/// Service-owned state of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub state: JobState,
    #[serde(with = "ts")]
    pub state_transition_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<JobState>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub previous_state_transition_time: Option<Timestamp>,
    pub execution_info: JobExecutionInfo,
}

impl JobStatus {
    /// Moves to `state` at `now`, keeping the previous state as Batch reports it.
    pub fn transition(&mut self, state: JobState, now: Timestamp) {
        super::common::transition(
            &mut self.state,
            &mut self.state_transition_time,
            &mut self.previous_state,
            &mut self.previous_state_transition_time,
            state,
            now,
        );
    }
}

/// JobPatchParameter: replaces only the properties given.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobPatch {
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub max_parallel_tasks: Option<i32>,
    #[serde(default)]
    pub allow_task_preemption: Option<bool>,
    #[serde(default)]
    pub on_all_tasks_complete: Option<OnAllTasksComplete>,
    #[serde(default)]
    pub constraints: Option<JobConstraints>,
    #[serde(default)]
    pub pool_info: Option<PoolInformation>,
    #[serde(default)]
    pub metadata: Option<Vec<MetadataItem>>,
    /// 2024-07-01.20.0: the job's network configuration (kept and echoed, as on Job Add).
    #[serde(default)]
    pub network_configuration: Option<Value>,
}

/// JobUpdateParameter (PUT): replaces every updatable property; those not given return to
/// their defaults (`poolInfo` is required).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobUpdate {
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub max_parallel_tasks: Option<i32>,
    #[serde(default)]
    pub allow_task_preemption: Option<bool>,
    #[serde(default)]
    pub constraints: Option<JobConstraints>,
    pub pool_info: PoolInformation,
    #[serde(default)]
    pub metadata: Option<Vec<MetadataItem>>,
    #[serde(default)]
    pub on_all_tasks_complete: Option<OnAllTasksComplete>,
}

batch_enum!(
    /// DisableJobOption: what happens to a disabled job's running tasks.
    DisableJobOption { Requeue = "requeue", Terminate = "terminate", Wait = "wait" }
);

/// JobDisableParameter: `disableTasks` is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobDisable {
    pub disable_tasks: DisableJobOption,
}

/// JobTerminateParameter.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobTerminate {
    #[serde(default)]
    pub terminate_reason: Option<String>,
}

/// A job: what the caller set, and what the service keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub spec: JobSpec,
    pub status: JobStatus,
    #[serde(with = "ts")]
    pub creation_time: Timestamp,
    #[serde(with = "ts")]
    pub last_modified: Timestamp,
    /// The job's statistics (JobStatistics, shown with `$expand=stats`), summed over its
    /// tasks' attempts; absent until one ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::stats::JobStats>,
}

impl Job {
    /// A new, active job (Job Add, or the recurrence of a job schedule) running on `pool_id`.
    pub fn new(spec: JobSpec, pool_id: Option<String>, now: Timestamp) -> Job {
        Job {
            status: JobStatus {
                state: JobState::Active,
                state_transition_time: now,
                previous_state: None,
                previous_state_transition_time: None,
                execution_info: JobExecutionInfo {
                    start_time: now,
                    end_time: None,
                    pool_id,
                    scheduling_error: None,
                    terminate_reason: None,
                },
            },
            spec,
            creation_time: now,
            last_modified: now,
            stats: None,
        }
    }

    /// The job manager task, which the service adds as the job's first task (normalized with
    /// the job's default retry count).
    pub fn manager_task(&self, now: Timestamp) -> Option<super::task::Task> {
        self.spec.job_manager_task.as_ref().map(|m| {
            let mut spec = m.task_spec();
            spec.normalize(self.spec.constraints.as_ref().and_then(|c| c.max_task_retry_count));
            super::task::Task::new_active(&self.spec.id, spec, now)
        })
    }

    /// The job schedule that created this job, for ids of the form `<scheduleId>:job-<n>`
    /// (a job added by a caller has no `:` in its id).
    pub fn schedule_id(&self) -> Option<&str> {
        super::job_schedule::schedule_of_job(&self.spec.id)
    }
}

pub use super::stats::JobLifetimeStats;
