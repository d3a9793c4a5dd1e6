//! Multi-instance tasks (MultiInstanceSettings): one primary task and `numberOfInstances - 1`
//! subtasks, each on its own compute node, that all run the coordination command line before
//! the primary runs the task's command line (the MPI pattern).
//!
//! Shape, as Task Add takes it and Task Get echoes it:
//!
//! ```text
//! multiInstanceSettings: {numberOfInstances: 3, coordinationCommandLine: "…", commonResourceFiles: [ResourceFile]}
//! ```
//!
//! From the Batch REST specification (MultiInstanceSettings, TaskAddParameter.requiredSlots):
//! `numberOfInstances` defaults to 1 (from 2017-09-01.6.0; required before); the coordination
//! command line is required from 2017-09-01.6.0 (the version table enforces both); a
//! multi-instance task's `requiredSlots` must be 1. The pool must allow inter-node
//! communication, which the scheduler checks when it places the task (Task Add does not).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// MultiInstanceSettings: how many nodes a multi-instance task needs and how they coordinate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiInstanceSettings {
    /// Compute nodes the task needs (primary included); 1 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_instances: Option<i32>,
    /// Command line every instance runs first (in the task directory, not under a shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination_command_line: Option<String>,
    /// Resource files every instance downloads (into the task root directory, one above the
    /// working directory), kept as the ResourceFile JSON the task's `resourceFiles` use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_resource_files: Option<Vec<Value>>,
}

impl MultiInstanceSettings {
    /// Most instances openbatch takes for one task: its own bound (the specification gives
    /// none; a task needing more nodes than its pool has simply waits), refused beyond with 400
    /// `InvalidPropertyValue`.
    pub const MAX_INSTANCES: i32 = 1000;

    /// Fills in the default reported on Get: `numberOfInstances` 1.
    pub fn normalize(&mut self) {
        self.number_of_instances.get_or_insert(1);
    }

    /// The number of compute nodes the task needs (at least 1).
    pub fn instances(&self) -> u32 {
        self.number_of_instances.unwrap_or(1).max(1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_one_instance() {
        let mut m: MultiInstanceSettings = serde_json::from_value(serde_json::json!({"coordinationCommandLine": "x"})).unwrap();
        assert_eq!(m.instances(), 1);
        m.normalize();
        assert_eq!(serde_json::to_value(&m).unwrap(), serde_json::json!({"numberOfInstances": 1, "coordinationCommandLine": "x"}));
        let m: MultiInstanceSettings = serde_json::from_value(serde_json::json!({"numberOfInstances": 4})).unwrap();
        assert_eq!(m.instances(), 4);
    }
}

crate::batch_enum!(
    /// SubtaskState.
    SubtaskState { Preparing = "preparing", Running = "running", Completed = "completed" }
);

/// SubtaskInformation: one instance of a multi-instance task (List Subtasks). Instance 0 is
/// the primary, which the task itself stands for; List Subtasks shows the others.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubtaskInfo {
    pub id: i32,
    pub node_info: crate::model::task::TaskNodeInfo,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::model::time::ts_opt")]
    pub start_time: Option<crate::model::time::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::model::time::ts_opt")]
    pub end_time: Option<crate::model::time::Timestamp>,
    /// The exit code of the instance's coordination command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<crate::model::common::FailureInfo>,
    pub state: SubtaskState,
    #[serde(with = "crate::model::time::ts")]
    pub state_transition_time: crate::model::time::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<crate::model::common::ExecutionResult>,
}

/// The service's record of a multi-instance task's current attempt (never rendered as
/// such): the nodes it holds (primary first), the dispatch id its coordination commands run
/// under, how many of them have yet to succeed, and each instance's information.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiRun {
    pub coordination_dispatch: u64,
    pub nodes: Vec<String>,
    pub pending: u32,
    pub subtasks: Vec<SubtaskInfo>,
}
