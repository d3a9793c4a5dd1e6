//! Task directories on compute nodes: kept for the task's `retentionTime`, removed with the
//! task or the job.
//!
//! Rules (Azure Batch, TaskConstraints.retentionTime): "the minimum time to retain the Task
//! directory on the Compute Node where it ran, from the time it completes execution. After
//! this time, the Batch service may delete the Task directory and all its contents" (default
//! 7 days). Deleting a task deletes the files in its directory; deleting a job deletes its
//! tasks' directories. A task run again (Reactivate) before its retention passed keeps its
//! directory: the expiry is checked against the task record when it comes due.

use super::{Backing, Reactor, Records};
use crate::agent::protocol::{FileOp, ServiceMessage};
use crate::model::task::Task;
use crate::model::time::Timestamp;
use crate::store::StoreResult;

/// Where a compute node keeps the directories of a job's tasks (relative to the node root).
const WORKITEMS: &str = "workitems";

impl Reactor {
    /// Remembers a completed task whose directory is to be removed when its retention passes.
    pub(super) fn retain(&mut self, task: &Task) {
        if let Some(at) = task.files_removal_time() {
            self.retention.insert((at, task.job_id.clone(), task.spec.id.clone()));
        }
    }

    /// Removes the directories of tasks whose retention passed (called on every tick).
    pub(super) async fn expire_retention<B: Backing>(&mut self, r: &mut Records<B>, now: Timestamp) -> StoreResult<()> {
        while let Some(first) = self.retention.first().cloned() {
            if first.0 > now {
                break;
            }
            self.retention.remove(&first);
            let (_, job_id, task_id) = first;
            let Some(task) = r.get::<Task>(&job_id, &task_id).await? else { continue };
            // Run again since, or retained longer: a later completion re-registered it.
            if task.files_removal_time().is_some_and(|at| at <= now) {
                self.remove_task_dir(&task);
            }
        }
        Ok(())
    }

    /// Asks the node a task last ran on to delete the task's directory (the one its node
    /// information names; best effort: a node that is gone took its files with it).
    pub(super) fn remove_task_dir(&mut self, task: &Task) {
        let Some(ni) = &task.status.node_info else { return };
        let Some((root, dir)) = ni.task_root_directory.rsplit_once('/') else { return };
        let (node_id, root, dir) = (ni.node_id.clone(), root.to_string(), dir.to_string());
        self.delete_on_node(&node_id, root, dir);
    }

    /// Asks every node that ran one of a job's tasks (or its preparation task) to delete the
    /// job's directory.
    pub(super) fn remove_job_dirs(&mut self, job_id: &str, nodes: impl IntoIterator<Item = String>) {
        let nodes: std::collections::BTreeSet<String> = nodes.into_iter().collect();
        for node_id in nodes {
            self.delete_on_node(&node_id, WORKITEMS.into(), job_id.to_string());
        }
    }

    /// Sends a node a recursive delete of `path` under `root` whose answer nobody awaits.
    fn delete_on_node(&mut self, node_id: &str, root: String, path: String) {
        self.send(node_id, ServiceMessage::File { request_id: 0, op: FileOp::Delete { root, path, recursive: true } });
    }
}
