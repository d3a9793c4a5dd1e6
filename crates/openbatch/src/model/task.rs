//! Task: the canonical resource and the parameters of Task Add, AddCollection and Update.

use super::common::*;
use super::time::{ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

batch_enum!(
    /// TaskState.
    TaskState { Active = "active", Preparing = "preparing", Running = "running", Completed = "completed" }
);

/// The properties a caller sets on a task (TaskAddParameter), normalized with defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub command_line: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_conditions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_files: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_settings: Option<Vec<EnvironmentSetting>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_info: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<TaskConstraints>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_slots: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_instance_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_package_references: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_token_settings: Option<Value>,
}

impl TaskSpec {
    /// Fills in the defaults reported on Get: auto-user identity, unlimited wall clock,
    /// 7-day retention, `maxTaskRetryCount` from the job's constraints (else 0),
    /// `requiredSlots 1`.
    pub fn normalize(&mut self, job_max_retries: Option<i32>) {
        self.user_identity = Some(UserIdentity::normalized(self.user_identity.take()));
        let c = self.constraints.get_or_insert_with(TaskConstraints::default);
        c.max_wall_clock_time.get_or_insert_with(|| super::time::UNLIMITED_DURATION.to_string());
        c.retention_time.get_or_insert_with(|| "P7D".to_string());
        c.max_task_retry_count.get_or_insert(job_max_retries.unwrap_or(0));
        self.required_slots.get_or_insert(1);
    }

    /// Slots the task occupies on a node (default 1).
    pub fn slots(&self) -> u32 {
        self.required_slots.unwrap_or(1).max(1) as u32
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
    pub spec: TaskSpec,
    pub status: TaskStatus,
    #[serde(with = "ts")]
    pub creation_time: Timestamp,
    #[serde(with = "ts")]
    pub last_modified: Timestamp,
}
