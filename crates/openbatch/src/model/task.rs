//! Task: the canonical resource and the parameters of Task Add, AddCollection and Update.

use super::common::*;
use super::dependencies::TaskDependencies;
use super::exit::{ExitConditions, ResolvedExitOptions, TaskOutcome};
use super::multi_instance::MultiInstanceSettings;
use super::time::{ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

batch_enum!(
    /// TaskState.
    TaskState { Active = "active", Preparing = "preparing", Running = "running", Completed = "completed" }
);

/// The properties a caller sets on a task (TaskAddParameter), normalized with defaults.
/// Exit conditions, dependencies, multi-instance and token settings are typed (see
/// [`super::exit`], [`super::dependencies`], [`super::multi_instance`]) and echoed on Get as
/// sent, apart from `multiInstanceSettings.numberOfInstances`, which defaults to 1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    /// The task id, unique (case-insensitively) within the job.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The command line (not run under a shell).
    pub command_line: String,
    /// Container settings (refused at Task Add: openbatch runs no containers yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<Value>,
    /// How the service responds when the task completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_conditions: Option<ExitConditions>,
    /// Files downloaded into the working directory first (ResourceFile JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_files: Option<Vec<Value>>,
    /// Files uploaded after the command line ran (OutputFile JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<Value>>,
    /// Environment variables of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_settings: Option<Vec<EnvironmentSetting>>,
    /// Where the task prefers to run (AffinityInformation JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_info: Option<Value>,
    /// Wall clock, retention and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<TaskConstraints>,
    /// Scheduling slots the task occupies (default 1; 1 for a multi-instance task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_slots: Option<i32>,
    /// The user the task runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
    /// Present for a multi-instance task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_instance_settings: Option<MultiInstanceSettings>,
    /// The tasks this one waits for (only in a job with `usesTaskDependencies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<TaskDependencies>,
    /// Application packages deployed before it runs (ApplicationPackageReference JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_package_references: Option<Vec<Value>>,
    /// What the task's authentication token may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_token_settings: Option<AuthenticationTokenSettings>,
}

impl TaskSpec {
    /// Fills in the defaults reported on Get: auto-user identity, unlimited wall clock,
    /// 7-day retention, `maxTaskRetryCount` from the job's constraints (else 0),
    /// `requiredSlots 1`, and `multiInstanceSettings.numberOfInstances 1`. Exit conditions,
    /// dependencies and token settings are kept as sent.
    pub fn normalize(&mut self, job_max_retries: Option<i32>) {
        self.user_identity = Some(UserIdentity::normalized(self.user_identity.take()));
        let c = self.constraints.get_or_insert_with(TaskConstraints::default);
        c.max_wall_clock_time.get_or_insert_with(|| super::time::UNLIMITED_DURATION.to_string());
        c.retention_time.get_or_insert_with(|| "P7D".to_string());
        c.max_task_retry_count.get_or_insert(job_max_retries.unwrap_or(0));
        self.required_slots.get_or_insert(1);
        if let Some(m) = self.multi_instance_settings.as_mut() {
            m.normalize();
        }
    }

    /// Slots the task occupies on a node (default 1).
    pub fn slots(&self) -> u32 {
        self.required_slots.unwrap_or(1).max(1) as u32
    }

    /// Compute nodes the task needs: `numberOfInstances` for a multi-instance task, else 1.
    pub fn instances(&self) -> u32 {
        self.multi_instance_settings.as_ref().map_or(1, MultiInstanceSettings::instances)
    }

    /// What `outcome` means for the job and for the tasks that depend on this one, by the
    /// task's exit conditions (the documented defaults when it has none). Combine with
    /// [`ResolvedExitOptions::job_action_under`] and the job's `onTaskFailure`.
    pub fn exit_options_for(&self, outcome: TaskOutcome) -> ResolvedExitOptions {
        ExitConditions::resolve(self.exit_conditions.as_ref(), outcome)
    }
}

/// TaskExecutionInformation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskExecutionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub end_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<FailureInfo>,
    pub retry_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub last_retry_time: Option<Timestamp>,
    pub requeue_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub last_requeue_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExecutionResult>,
}

/// ComputeNodeInformation: where the task ran (set once it is scheduled).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskNodeInfo {
    pub affinity_id: String,
    pub node_url: String,
    pub pool_id: String,
    pub node_id: String,
    pub task_root_directory: String,
    pub task_root_directory_url: String,
}

/// Service-owned state of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub state: TaskState,
    #[serde(with = "ts")]
    pub state_transition_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub previous_state_transition_time: Option<Timestamp>,
    pub execution_info: TaskExecutionInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<TaskNodeInfo>,
}

impl TaskStatus {
    /// Moves to `state` at `now`, keeping the previous state as Batch reports it.
    pub fn transition(&mut self, state: TaskState, now: Timestamp) {
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

/// TaskUpdateParameter (PUT): new constraints.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskUpdate {
    #[serde(default)]
    pub constraints: Option<TaskConstraints>,
}

/// TaskAddCollectionParameter: `{value: [TaskAddParameter…]}`, at most 100 tasks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskAddCollection {
    pub value: Vec<Value>,
}

/// A task: what the caller set, and what the service keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub job_id: String,
    /// The current attempt's dispatch id (0 when not placed); agents echo it (never rendered).
    #[serde(default)]
    pub dispatch: u64,
    /// The current attempt of a multi-instance task (never rendered; List Subtasks shows its
    /// subtasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<super::multi_instance::MultiRun>,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    #[serde(with = "ts")]
    pub creation_time: Timestamp,
    #[serde(with = "ts")]
    pub last_modified: Timestamp,
    /// The task's statistics (TaskStatistics, shown with `$expand=stats`), summed over its
    /// attempts; absent until one ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::stats::TaskStats>,
}

impl Task {
    /// Whether `dispatch_id` names one of the task's current executions: its command line,
    /// or the coordination command of a multi-instance task's instances.
    pub fn runs_dispatch(&self, dispatch_id: u64) -> bool {
        self.dispatch == dispatch_id || self.multi.as_ref().is_some_and(|m| m.coordination_dispatch == dispatch_id)
    }

    /// When the task's directory on its node may be removed: the end of its last run plus its
    /// `retentionTime` (default 7 days; TaskConstraints.retentionTime). `None` while it is not
    /// completed, never ran on a node, or is retained without limit.
    pub fn files_removal_time(&self) -> Option<Timestamp> {
        if self.status.state != TaskState::Completed || self.status.node_info.is_none() {
            return None;
        }
        let end = self.status.execution_info.end_time?;
        let keep = self.spec.constraints.as_ref().and_then(|c| c.retention_time.as_deref()).unwrap_or("P7D");
        super::time::deadline(end, keep)
    }

    /// A new active task of `job_id` (Task Add, or the task the service adds for a job
    /// manager).
    pub fn new_active(job_id: &str, spec: TaskSpec, now: Timestamp) -> Task {
        Task {
            job_id: job_id.to_string(),
            dispatch: 0,
            multi: None,
            spec,
            status: TaskStatus {
                state: TaskState::Active,
                state_transition_time: now,
                previous_state: None,
                previous_state_transition_time: None,
                execution_info: TaskExecutionInfo::default(),
                node_info: None,
            },
            creation_time: now,
            last_modified: now,
            stats: None,
        }
    }
}
