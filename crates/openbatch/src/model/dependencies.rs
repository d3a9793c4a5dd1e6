//! Task dependencies (TaskDependencies, TaskIdRange): the tasks a task waits for.
//!
//! Shape (both lists optional; stored and echoed on Get as sent):
//!
//! ```text
//! dependsOn: {taskIds: ["a", "b"], taskIdRanges: [{start: 1, end: 10}]}
//! ```
//!
//! From the Batch REST specification (TaskAddParameter.dependsOn, TaskDependencies,
//! TaskIdRange): a task with `dependsOn` is added only to a job whose `usesTaskDependencies`
//! is true (else 400 `TaskDependenciesNotSpecifiedOnJob`); the ids in `taskIds` add up to at most
//! 64000 characters (else 400 `TaskDependencyListTooLong`); a range is inclusive and names the
//! tasks whose ids are the integers `start..=end` ("9" to "12" for start 9, end 12). Task ids
//! compare case-insensitively, as the service compares them.

use serde::{Deserialize, Serialize};

/// TaskIdRange: the tasks whose ids are the integers `start..=end` (both required).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskIdRange {
    /// The first task id of the range.
    pub start: i32,
    /// The last task id of the range (inclusive).
    pub end: i32,
}

impl TaskIdRange {
    /// True when `task_id` is an integer (decimal digits, an optional leading `-`) within
    /// `start..=end`. Ids such as "007" are read as the integer 7.
    pub fn contains(&self, task_id: &str) -> bool {
        let digits = task_id.strip_prefix('-').unwrap_or(task_id);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        task_id.parse::<i64>().is_ok_and(|n| i64::from(self.start) <= n && n <= i64::from(self.end))
    }
}

/// TaskDependencies: the tasks that must complete successfully (or whose exit conditions
/// `satisfy` their dependants) before this task may be scheduled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDependencies {
    /// Ids of the tasks depended on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ids: Option<Vec<String>>,
    /// Ranges of integer task ids depended on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id_ranges: Option<Vec<TaskIdRange>>,
}

impl TaskDependencies {
    /// Most characters the ids of `taskIds` may add up to (TaskDependencyListTooLong beyond).
    pub const MAX_TASK_IDS_CHARS: usize = 64000;

    /// The ids of `taskIds` (empty when absent).
    pub fn task_ids(&self) -> &[String] {
        self.task_ids.as_deref().unwrap_or_default()
    }

    /// The ranges of `taskIdRanges` (empty when absent).
    pub fn ranges(&self) -> &[TaskIdRange] {
        self.task_id_ranges.as_deref().unwrap_or_default()
    }

    /// True when neither list names a task.
    pub fn is_empty(&self) -> bool {
        self.task_ids().is_empty() && self.ranges().is_empty()
    }

    /// The characters the ids of `taskIds` add up to.
    pub fn task_ids_chars(&self) -> usize {
        self.task_ids().iter().map(|id| id.chars().count()).sum()
    }

    /// True when the task `task_id` is one of those depended on (by id, case-insensitively, or
    /// by range).
    pub fn depends_on(&self, task_id: &str) -> bool {
        self.task_ids().iter().any(|id| id.eq_ignore_ascii_case(task_id)) || self.ranges().iter().any(|r| r.contains(task_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_integer_ids_inclusively() {
        let r = TaskIdRange { start: 9, end: 12 };
        for id in ["9", "10", "11", "12", "009"] {
            assert!(r.contains(id), "{id}");
        }
        for id in ["8", "13", "x", "", "-", "+10", "1 0", "99999999999999999999"] {
            assert!(!r.contains(id), "{id}");
        }
        assert!(TaskIdRange { start: -3, end: -1 }.contains("-2"));
    }

    #[test]
    fn ids_compare_case_insensitively() {
        let d = TaskDependencies {
            task_ids: Some(vec!["Prep".into(), "b".into()]),
            task_id_ranges: Some(vec![TaskIdRange { start: 1, end: 3 }]),
        };
        assert!(d.depends_on("prep") && d.depends_on("B") && d.depends_on("2"));
        assert!(!d.depends_on("c") && !d.depends_on("4"));
        assert_eq!(d.task_ids_chars(), 5);
        assert!(!d.is_empty());
        assert!(TaskDependencies::default().is_empty());
    }

    #[test]
    fn wire_shape() {
        let d: TaskDependencies = serde_json::from_value(serde_json::json!({"taskIdRanges": [{"start": 1, "end": 2}]})).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), serde_json::json!({"taskIdRanges": [{"start": 1, "end": 2}]}));
        assert!(serde_json::from_value::<TaskDependencies>(serde_json::json!({"taskIdRanges": [{"start": 1}]})).is_err());
    }
}
