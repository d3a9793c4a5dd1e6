//! The job manager task (JobManagerTask): a task the service creates with its job and tries
//! to run before the job's other tasks.
//!
//! Shape: `id` and `commandLine` are required; the rest is optional and, where it has a
//! default, reported on Get with it (`normalize`). The defaults come from the Batch REST
//! specification's JobManagerTask descriptions (`killJobOnCompletion`, `runExclusive` and
//! `allowLowPriorityNode` true, `requiredSlots` 1) and, for `constraints` and `userIdentity`,
//! from what the recorded service fills in for the job's other tasks (unlimited wall clock,
//! 7-day retention, the job's `maxTaskRetryCount` or 0, the pool's non-admin auto-user). None of
//! the stored recordings adds a job manager task, so these echoes are not checked against the
//! real service.

use super::common::{AuthenticationTokenSettings, EnvironmentSetting, TaskConstraints, UserIdentity};
use super::task::TaskSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// JobManagerTask, normalized with the defaults the service reports on Get.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobManagerTask {
    /// The task id within the job (a Batch id: up to 64 letters, digits, `-` and `_`).
    pub id: String,
    /// Display name (any Unicode, up to 1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The command line (not run under a shell).
    pub command_line: String,
    /// Container settings (openbatch refuses them at Job Add, as for tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<Value>,
    /// Files downloaded into the working directory first (ResourceFile JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_files: Option<Vec<Value>>,
    /// Files uploaded after the command line ran (OutputFile JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_files: Option<Vec<Value>>,
    /// Environment variables of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_settings: Option<Vec<EnvironmentSetting>>,
    /// Wall clock, retention and retries (defaults: unlimited, 7 days, the job's retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<TaskConstraints>,
    /// Scheduling slots the task occupies (2021-06-01.14.0 on; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_slots: Option<i32>,
    /// Whether the job completes when this task completes (default true; the job's
    /// `terminateReason` is then `JMComplete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_job_on_completion: Option<bool>,
    /// The user the task runs as (default: the pool's non-admin auto-user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
    /// Whether no other task may run on its node while it runs (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_exclusive: Option<bool>,
    /// Application packages deployed before it runs (ApplicationPackageReference JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_package_references: Option<Vec<Value>>,
    /// What its authentication token may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_token_settings: Option<AuthenticationTokenSettings>,
    /// Whether it may run on a low-priority (Spot) node (2017-05-01.5.0 on; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_low_priority_node: Option<bool>,
}

impl JobManagerTask {
    /// Fills in the defaults reported on Get: `killJobOnCompletion`, `runExclusive` and
    /// `allowLowPriorityNode` true, `requiredSlots` 1, the pool's non-admin auto-user, and
    /// constraints with an unlimited wall clock, 7-day retention and `maxTaskRetryCount` from
    /// the job (`job_max_retries`, else 0). Versions without a property do not show it.
    pub fn normalize(&mut self, job_max_retries: Option<i32>) {
        self.user_identity = Some(UserIdentity::normalized(self.user_identity.take()));
        let c = self.constraints.get_or_insert_with(TaskConstraints::default);
        c.max_wall_clock_time.get_or_insert_with(|| super::time::UNLIMITED_DURATION.to_string());
        c.retention_time.get_or_insert_with(|| "P7D".to_string());
        c.max_task_retry_count.get_or_insert(job_max_retries.unwrap_or(0));
        self.required_slots.get_or_insert(1);
        self.kill_job_on_completion.get_or_insert(true);
        self.run_exclusive.get_or_insert(true);
        self.allow_low_priority_node.get_or_insert(true);
    }

    /// True when the job completes as this task completes (`killJobOnCompletion`, default true).
    pub fn kills_job(&self) -> bool {
        self.kill_job_on_completion.unwrap_or(true)
    }

    /// True when the task needs its node to itself (`runExclusive`, default true).
    pub fn exclusive(&self) -> bool {
        self.run_exclusive.unwrap_or(true)
    }

    /// The task the service adds to the job for it: the same id, command line, files,
    /// environment, constraints, slots, identity, packages and token settings.
    pub fn task_spec(&self) -> TaskSpec {
        TaskSpec {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            command_line: self.command_line.clone(),
            container_settings: self.container_settings.clone(),
            exit_conditions: None,
            resource_files: self.resource_files.clone(),
            output_files: self.output_files.clone(),
            environment_settings: self.environment_settings.clone(),
            affinity_info: None,
            constraints: self.constraints.clone(),
            required_slots: self.required_slots,
            user_identity: self.user_identity.clone(),
            multi_instance_settings: None,
            depends_on: None,
            application_package_references: self.application_package_references.clone(),
            authentication_token_settings: self.authentication_token_settings.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_fills_the_documented_defaults() {
        let mut m: JobManagerTask = serde_json::from_value(json!({"id": "jm", "commandLine": "run"})).unwrap();
        m.normalize(Some(3));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({
                "id": "jm",
                "commandLine": "run",
                "constraints": {"maxWallClockTime": super::super::time::UNLIMITED_DURATION, "retentionTime": "P7D", "maxTaskRetryCount": 3},
                "requiredSlots": 1,
                "killJobOnCompletion": true,
                "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
                "runExclusive": true,
                "allowLowPriorityNode": true
            })
        );
        assert!(m.kills_job() && m.exclusive());
        let again = m.clone();
        m.normalize(Some(7));
        assert_eq!(m, again, "normalizing twice changes nothing");
        let spec = m.task_spec();
        assert_eq!((spec.id.as_str(), spec.slots()), ("jm", 1));
    }

    #[test]
    fn explicit_values_are_kept() {
        let mut m: JobManagerTask = serde_json::from_value(json!({
            "id": "jm", "commandLine": "run", "killJobOnCompletion": false, "runExclusive": false,
            "allowLowPriorityNode": false, "requiredSlots": 2, "constraints": {"maxTaskRetryCount": 1}
        }))
        .unwrap();
        m.normalize(Some(3));
        assert_eq!(m.kill_job_on_completion, Some(false));
        assert_eq!(m.run_exclusive, Some(false));
        assert_eq!(m.allow_low_priority_node, Some(false));
        assert_eq!(m.required_slots, Some(2));
        assert_eq!(m.constraints.unwrap().max_task_retry_count, Some(1));
        assert!(serde_json::from_value::<JobManagerTask>(json!({"id": "jm"})).is_err(), "commandLine is required");
    }
}
