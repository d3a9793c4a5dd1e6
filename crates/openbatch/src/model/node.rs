//! Compute node: the canonical resource, and the node agent SKUs and images openbatch runs.

use super::common::*;
use super::time::{ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

batch_enum!(
    /// ComputeNodeState.
    NodeState {
        Idle = "idle",
        Rebooting = "rebooting",
        Reimaging = "reimaging",
        Running = "running",
        Unusable = "unusable",
        Creating = "creating",
        Starting = "starting",
        WaitingForStartTask = "waitingForStartTask",
        StartTaskFailed = "startTaskFailed",
        Unknown = "unknown",
        LeavingPool = "leavingPool",
        Offline = "offline",
        Preempted = "preempted",
    }
);

batch_enum!(
    /// SchedulingState: `enabled` or `disabled`.
    SchedulingState { Enabled = "enabled", Disabled = "disabled" }
);

batch_enum!(
    /// StartTaskState: `running` or `completed`.
    StartTaskState { Running = "running", Completed = "completed" }
);

batch_enum!(
    /// DisableComputeNodeSchedulingOption: what Disable Scheduling does to the node's running
    /// tasks — `requeue` (the default), `terminate`, or `taskcompletion` (let them finish).
    DisableSchedulingOption { Requeue = "requeue", Terminate = "terminate", TaskCompletion = "taskcompletion" }
);

/// NodeDisableSchedulingParameter (the body is optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeDisableScheduling {
    #[serde(default)]
    pub node_disable_scheduling_option: Option<DisableSchedulingOption>,
}

/// StartTaskInformation: the start task's progress on a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskInfo {
    pub state: StartTaskState,
    #[serde(with = "ts")]
    pub start_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub end_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<FailureInfo>,
    pub retry_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub last_retry_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExecutionResult>,
}

/// NodeAgentInformation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeAgentInfo {
    pub version: String,
    #[serde(with = "ts")]
    pub last_update_time: Timestamp,
}

/// A compute node of a pool, in the 2022-10-01.16.0 shape, plus the service's private
/// bookkeeping (never rendered).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    pub pool_id: String,
    pub state: NodeState,
    pub scheduling_state: SchedulingState,
    #[serde(with = "ts")]
    pub state_transition_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub last_boot_time: Option<Timestamp>,
    #[serde(with = "ts")]
    pub allocation_time: Timestamp,
    pub ip_address: String,
    pub vm_size: String,
    pub total_tasks_run: i32,
    pub total_tasks_succeeded: i32,
    pub running_tasks_count: i32,
    pub running_task_slots_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_task: Option<StartTask>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_task_info: Option<StartTaskInfo>,
    #[serde(default)]
    pub errors: Vec<Value>,
    pub is_dedicated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_agent_info: Option<NodeAgentInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_reference: Option<ImageReference>,
    /// Secret the node agent presents when it connects (never rendered).
    pub agent_token: String,
    /// Absolute path of the node's root directory on its machine (never rendered).
    pub root_dir: String,
    /// Process id of a local node's agent (never rendered).
    #[serde(default)]
    pub agent_pid: Option<u32>,
    /// The certificates installed on the node (CertificateReference values): its pool's
    /// `certificateReferences` when it was allocated; shown once the node booted.
    #[serde(default)]
    pub certificate_references: Vec<Value>,
    /// How far the node's core-time was counted into its pool's statistics (never rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<super::stats::NodeMeter>,
    /// Users, a waiting reboot or reimage, and the recent tasks (node operations).
    #[serde(flatten, default)]
    pub ops: super::node_ops::NodeOpsState,
}

/// A Linux image openbatch's nodes run, as Account List Supported Images reports it.
pub struct SupportedImage {
    pub publisher: &'static str,
    pub offer: &'static str,
    pub sku: &'static str,
    pub node_agent_sku_id: &'static str,
    pub verification: &'static str,
    pub capabilities: &'static [&'static str],
}

/// The images a pool may name. Nodes are processes on Linux machines, so every image here is
/// Linux; the entries use the publisher/offer/sku and node agent SKU ids of the real service.
pub const SUPPORTED_IMAGES: &[SupportedImage] = &[
    SupportedImage {
        publisher: "almalinux",
        offer: "almalinux",
        sku: "8_7",
        node_agent_sku_id: "batch.node.el 8",
        verification: "unverified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "almalinux",
        offer: "almalinux",
        sku: "9-gen2",
        node_agent_sku_id: "batch.node.el 9",
        verification: "unverified",
        capabilities: &["Generation2VMImage"],
    },
    SupportedImage {
        publisher: "canonical",
        offer: "0001-com-ubuntu-server-focal",
        sku: "20_04-lts",
        node_agent_sku_id: "batch.node.ubuntu 20.04",
        verification: "verified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "canonical",
        offer: "0001-com-ubuntu-server-focal",
        sku: "20_04-lts-gen2",
        node_agent_sku_id: "batch.node.ubuntu 20.04",
        verification: "verified",
        capabilities: &["Generation2VMImage"],
    },
    SupportedImage {
        publisher: "canonical",
        offer: "0001-com-ubuntu-server-jammy",
        sku: "22_04-lts",
        node_agent_sku_id: "batch.node.ubuntu 22.04",
        verification: "verified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "canonical",
        offer: "0001-com-ubuntu-server-jammy",
        sku: "22_04-lts-gen2",
        node_agent_sku_id: "batch.node.ubuntu 22.04",
        verification: "verified",
        capabilities: &["Generation2VMImage"],
    },
    SupportedImage {
        publisher: "canonical",
        offer: "ubuntuserver",
        sku: "18.04-lts",
        node_agent_sku_id: "batch.node.ubuntu 18.04",
        verification: "verified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "debian",
        offer: "debian-10",
        sku: "10",
        node_agent_sku_id: "batch.node.debian 10",
        verification: "verified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "debian",
        offer: "debian-11",
        sku: "11",
        node_agent_sku_id: "batch.node.debian 11",
        verification: "verified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "debian",
        offer: "debian-11",
        sku: "11-gen2",
        node_agent_sku_id: "batch.node.debian 11",
        verification: "verified",
        capabilities: &["Generation2VMImage"],
    },
    SupportedImage {
        publisher: "openlogic",
        offer: "centos",
        sku: "7_9",
        node_agent_sku_id: "batch.node.centos 7",
        verification: "verified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "erockyenterprisesoftwarefoundationinc1653071250513",
        offer: "rockylinux",
        sku: "free",
        node_agent_sku_id: "batch.node.el 8",
        verification: "unverified",
        capabilities: &[],
    },
    SupportedImage {
        publisher: "resf",
        offer: "rockylinux-x86_64",
        sku: "9-base",
        node_agent_sku_id: "batch.node.el 9",
        verification: "unverified",
        capabilities: &[],
    },
];

/// True when the node agent SKU id names a Linux node agent (`batch.node.<distro> <ver>`
/// other than Windows).
pub fn is_linux_node_agent(sku: &str) -> bool {
    let s = sku.to_ascii_lowercase();
    s.starts_with("batch.node.") && !s.starts_with("batch.node.windows")
}
