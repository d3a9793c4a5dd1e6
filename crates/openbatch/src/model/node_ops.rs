//! What compute node operations read and what a node keeps of them: the Reboot and Reimage
//! bodies, node user accounts (Add / Update / Delete User), the tasks that ran on a node most
//! recently (`recentTasks`) and a node's view of its pool's VM extensions.

use super::pool::DeallocationOption;
use super::task::{Task, TaskExecutionInfo, TaskState};
use super::time::{ts, ts_opt, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// NodeRebootParameter (the body is optional): `nodeRebootOption` — `requeue` (the default),
/// `terminate`, `taskcompletion` or `retaineddata` (ComputeNodeRebootOption, the values of
/// [`DeallocationOption`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeReboot {
    #[serde(default)]
    pub node_reboot_option: Option<DeallocationOption>,
}

/// NodeReimageParameter (the body is optional): `nodeReimageOption`, as [`NodeReboot`]'s.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeReimage {
    #[serde(default)]
    pub node_reimage_option: Option<DeallocationOption>,
}

/// ComputeNodeUser, the body of Add User: `name` is required; `expiryTime` defaults to a day
/// after the request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeUserAdd {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    #[serde(default, with = "ts_opt")]
    pub expiry_time: Option<Timestamp>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ssh_public_key: Option<String>,
}

/// NodeUpdateUserParameter, the body of Update User: it replaces every updatable property,
/// so an omitted `password` or `sshPublicKey` is removed and an omitted `expiryTime` becomes a
/// day after the request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeUserUpdate {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default, with = "ts_opt")]
    pub expiry_time: Option<Timestamp>,
    #[serde(default)]
    pub ssh_public_key: Option<String>,
}

/// A user account on a node, as the node record keeps it (never rendered: Batch has no
/// operation that reads node users back). The password itself is not kept: openbatch does
/// not create operating-system accounts for node users yet, so only whether one was set is
/// stored, and it is never logged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeUser {
    pub name: String,
    pub is_admin: bool,
    #[serde(with = "ts")]
    pub expiry_time: Timestamp,
    pub has_password: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_public_key: Option<String>,
}

/// Which kind of restart a node is waiting to do (its running tasks finish first with
/// `taskcompletion` and `retaineddata`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RestartKind {
    /// The agent process stops and starts again; the node directory is kept.
    Reboot,
    /// As a reboot, but the node directory is wiped first (a fresh operating system).
    Reimage,
}

/// TaskInformation: a task that ran on a node recently (`recentTasks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskInformation {
    pub task_url: String,
    pub job_id: String,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_id: Option<i32>,
    pub task_state: TaskState,
    pub execution_info: TaskExecutionInfo,
}

/// How many tasks `recentTasks` keeps (the API leaves the number to the service).
pub const RECENT_TASKS: usize = 10;

impl TaskInformation {
    /// The entry for `task` as it is now; `account_url` is the account's base URL.
    pub fn of(account_url: &str, task: &Task) -> Self {
        TaskInformation {
            task_url: format!("{account_url}/jobs/{}/tasks/{}", task.job_id, task.spec.id),
            job_id: task.job_id.clone(),
            task_id: task.spec.id.clone(),
            subtask_id: None,
            task_state: task.status.state,
            execution_info: task.status.execution_info.clone(),
        }
    }
}

/// What the node operations keep on a node record (flattened into it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeOpsState {
    /// User accounts added with Add User (never rendered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<NodeUser>,
    /// A reboot or reimage waiting for the node's running tasks to end (never rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_restart: Option<RestartKind>,
    /// The tasks whose state changed on this node most recently, newest first (at most
    /// [`RECENT_TASKS`]); rendered as `recentTasks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_tasks: Vec<TaskInformation>,
}

impl NodeOpsState {
    /// Records `info` as the newest of the node's recent tasks (replacing the task's older
    /// entry), keeping at most [`RECENT_TASKS`].
    pub fn note_task(&mut self, info: TaskInformation) {
        self.recent_tasks.retain(|t| !(t.job_id == info.job_id && t.task_id == info.task_id && t.subtask_id == info.subtask_id));
        self.recent_tasks.insert(0, info);
        self.recent_tasks.truncate(RECENT_TASKS);
    }

    /// The user named `name` (names compare case-insensitively, as account names do).
    pub fn user_mut(&mut self, name: &str) -> Option<&mut NodeUser> {
        self.users.iter_mut().find(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// Removes the users whose `expiryTime` is at or before `now`.
    pub fn expire_users(&mut self, now: Timestamp) {
        self.users.retain(|u| u.expiry_time > now);
    }
}

/// NodeVMExtension of a node for one of its pool's `virtualMachineConfiguration.extensions`.
/// A node here is a process, not a VM, so no extension is installed: the extension is shown
/// as failed, with the reason in its instance view (as the node's `UnsupportedNodeConfiguration`
/// error says). `protectedSettings` (a secret) is never shown.
pub fn node_extension(ext: &Value, since: &Timestamp) -> Value {
    let mut vm = ext.clone();
    if let Some(m) = vm.as_object_mut() {
        m.remove("protectedSettings");
        m.remove("protectedSettingsFromKeyVault");
    }
    let name = ext.get("name").cloned().unwrap_or(Value::Null);
    json!({
        "provisioningState": "Failed",
        "vmExtension": vm,
        "instanceView": {
            "name": name,
            "statuses": [{
                "code": "ProvisioningState/failed",
                "displayStatus": "Provisioning failed",
                "level": "Error",
                "message": "openbatch does not install VM extensions: its compute nodes are processes on the service's machine, not virtual machines.",
                "time": super::time::format_timestamp(since),
            }]
        }
    })
}
