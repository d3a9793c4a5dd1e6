//! Pool: the canonical resource (2022-10-01.16.0 shape) and the parameters that create and
//! change it (Pool Add, Patch, Resize).

use super::common::*;
use super::time::{ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

batch_enum!(
    /// PoolState: `active` or `deleting`.
    PoolState { Active = "active", Deleting = "deleting" }
);

batch_enum!(
    /// AllocationState: `steady`, `resizing` or `stopping`.
    AllocationState { Steady = "steady", Resizing = "resizing", Stopping = "stopping" }
);

batch_enum!(
    /// ComputeNodeFillType of `taskSchedulingPolicy.nodeFillType`: `Spread` or `Pack`.
    NodeFillType { Spread = "Spread", Pack = "Pack" }
);

batch_enum!(
    /// ComputeNodeDeallocationOption of a resize: what happens to tasks on removed nodes.
    DeallocationOption {
        Requeue = "requeue",
        Terminate = "terminate",
        TaskCompletion = "taskcompletion",
        RetainedData = "retaineddata",
    }
);

batch_enum!(
    /// BatchJobDefaultOrder (2025-06-01) of `taskSchedulingPolicy.jobDefaultOrder`: among jobs
    /// of equal priority, `none` (no order) or `creationtime` (older jobs' tasks first).
    JobDefaultOrder { None = "none", CreationTime = "creationtime" }
);

/// TaskSchedulingPolicy: how tasks are spread over nodes, and (2025-06-01) how jobs of equal
/// priority are ordered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSchedulingPolicy {
    pub node_fill_type: NodeFillType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_default_order: Option<JobDefaultOrder>,
}

/// The properties a caller sets on a pool (PoolAddParameter), normalized with the service's
/// defaults once the pool is created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub vm_size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_service_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_machine_configuration: Option<VirtualMachineConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_dedicated_nodes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_low_priority_nodes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_scale: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scale_formula: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scale_evaluation_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_inter_node_communication: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_task: Option<StartTask>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_references: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_package_references: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_licenses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_slots_per_node: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_scheduling_policy: Option<TaskSchedulingPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_accounts: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<MetadataItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_configuration: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_node_communication_mode: Option<String>,
    /// `resourceTags` (2023-11-01.18.0 to 2024-07-01.20.0): Azure resource tags, kept and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tags: Option<Value>,
    /// `upgradePolicy` (from 2024-02-01.19.0): OS upgrade policy of the pool's VMs, kept and
    /// echoed; openbatch nodes have no OS image to upgrade (see [`PoolSpec::unmet_configuration`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_policy: Option<Value>,
}

impl PoolSpec {
    /// Task slots of each node (default 1).
    pub fn slots_per_node(&self) -> u32 {
        self.task_slots_per_node.unwrap_or(1).max(1) as u32
    }

    /// The target node count (dedicated plus low-priority/Spot).
    pub fn target_nodes(&self) -> u32 {
        (self.target_dedicated_nodes.unwrap_or(0).max(0) + self.target_low_priority_nodes.unwrap_or(0).max(0)) as u32
    }
}

/// Service-owned state of a pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    pub state: PoolState,
    #[serde(with = "ts")]
    pub state_transition_time: Timestamp,
    pub allocation_state: AllocationState,
    #[serde(with = "ts")]
    pub allocation_state_transition_time: Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resize_errors: Vec<Value>,
    pub current_dedicated_nodes: i32,
    pub current_low_priority_nodes: i32,
    /// Monotonic counter naming the pool's next node (`tvm-<n>`); stored, never rendered.
    #[serde(default)]
    pub next_node_index: u64,
    /// Set when resizing must remove nodes: how their tasks end; stored, never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_deallocation: Option<DeallocationOption>,
    /// When the current resize began; stored, never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub resize_started: Option<Timestamp>,
    /// Set when a resize ended before reaching the targets (Stop Resize, its `resizeTimeout`,
    /// the node quota): no nodes are added or removed until the next resize; stored, never
    /// rendered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resize_halted: bool,
    /// The last autoscale evaluation (`autoScaleRun`), while autoscale is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scale_run: Option<super::autoscale::AutoScaleRun>,
    /// When Enable AutoScale was last accepted (they must be 30 s apart); stored, never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub auto_scale_enabled_at: Option<Timestamp>,
}

impl PoolStatus {
    /// Stored fields that are the service's bookkeeping, not Batch properties.
    pub const PRIVATE: &'static [&'static str] =
        &["nextNodeIndex", "pendingDeallocation", "resizeStarted", "resizeHalted", "autoScaleEnabledAt"];

    /// Starts a resize at `now`: `resizing`, earlier resize errors cleared, nodes removed with
    /// `option` (Pool Resize, Remove Nodes, Enable AutoScale's evaluations).
    pub fn begin_resize(&mut self, now: Timestamp, option: Option<DeallocationOption>) {
        self.resize_errors.clear();
        self.resize_halted = false;
        if self.allocation_state != AllocationState::Resizing {
            self.allocation_state = AllocationState::Resizing;
            self.allocation_state_transition_time = now;
        }
        self.pending_deallocation = option;
        self.resize_started = Some(now);
    }
}

/// PoolPatchParameter: replaces only the properties given. From 2024-07-01.20.0 it also takes
/// the pool's shape (`vmSize`, `virtualMachineConfiguration`, `taskSlotsPerNode`, …), which the
/// service changes only while the pool has no compute nodes ([`PoolPatch::SHAPE`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolPatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub vm_size: Option<String>,
    #[serde(default)]
    pub virtual_machine_configuration: Option<VirtualMachineConfiguration>,
    #[serde(default)]
    pub task_slots_per_node: Option<i32>,
    #[serde(default)]
    pub task_scheduling_policy: Option<TaskSchedulingPolicy>,
    #[serde(default)]
    pub enable_inter_node_communication: Option<bool>,
    #[serde(default)]
    pub network_configuration: Option<Value>,
    #[serde(default)]
    pub mount_configuration: Option<Vec<Value>>,
    #[serde(default)]
    pub user_accounts: Option<Vec<Value>>,
    #[serde(default)]
    pub upgrade_policy: Option<Value>,
    #[serde(default)]
    pub resource_tags: Option<Value>,
    #[serde(default)]
    pub start_task: Option<StartTask>,
    #[serde(default)]
    pub certificate_references: Option<Vec<Value>>,
    #[serde(default)]
    pub application_package_references: Option<Vec<Value>>,
    #[serde(default)]
    pub metadata: Option<Vec<MetadataItem>>,
    #[serde(default)]
    pub target_node_communication_mode: Option<String>,
}

impl PoolPatch {
    /// The first property given that changes the pool's shape, which the service accepts only
    /// while the pool has no compute nodes (`None` when the patch changes none of them).
    pub fn shape_property(&self) -> Option<&'static str> {
        [
            ("displayName", self.display_name.is_some()),
            ("vmSize", self.vm_size.is_some()),
            ("virtualMachineConfiguration", self.virtual_machine_configuration.is_some()),
            ("taskSlotsPerNode", self.task_slots_per_node.is_some()),
            ("taskSchedulingPolicy", self.task_scheduling_policy.is_some()),
            ("enableInterNodeCommunication", self.enable_inter_node_communication.is_some()),
            ("networkConfiguration", self.network_configuration.is_some()),
            ("mountConfiguration", self.mount_configuration.is_some()),
            ("userAccounts", self.user_accounts.is_some()),
            ("upgradePolicy", self.upgrade_policy.is_some()),
            ("resourceTags", self.resource_tags.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(name, _)| name)
    }

    /// Replaces the properties of `spec` that the patch gives; the others stay.
    pub fn apply(self, spec: &mut PoolSpec) {
        fn set<T>(slot: &mut Option<T>, value: Option<T>) {
            if value.is_some() {
                *slot = value;
            }
        }
        set(&mut spec.display_name, self.display_name);
        if let Some(size) = self.vm_size {
            spec.vm_size = size;
        }
        set(&mut spec.virtual_machine_configuration, self.virtual_machine_configuration);
        set(&mut spec.task_slots_per_node, self.task_slots_per_node);
        set(&mut spec.task_scheduling_policy, self.task_scheduling_policy);
        set(&mut spec.enable_inter_node_communication, self.enable_inter_node_communication);
        set(&mut spec.network_configuration, self.network_configuration);
        set(&mut spec.mount_configuration, self.mount_configuration);
        set(&mut spec.user_accounts, self.user_accounts);
        set(&mut spec.upgrade_policy, self.upgrade_policy);
        set(&mut spec.resource_tags, self.resource_tags);
        set(&mut spec.start_task, self.start_task);
        set(&mut spec.certificate_references, self.certificate_references);
        set(&mut spec.application_package_references, self.application_package_references);
        set(&mut spec.metadata, self.metadata);
        set(&mut spec.target_node_communication_mode, self.target_node_communication_mode);
    }
}

/// PoolResizeParameter: new targets, an optional `resizeTimeout` (ISO 8601) and the
/// `nodeDeallocationOption` for nodes removed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolResize {
    #[serde(default)]
    pub target_dedicated_nodes: Option<i32>,
    #[serde(default)]
    pub target_low_priority_nodes: Option<i32>,
    #[serde(default)]
    pub resize_timeout: Option<String>,
    #[serde(default)]
    pub node_deallocation_option: Option<DeallocationOption>,
}

/// NodeRemoveParameter (Pool Remove Nodes): up to 100 node ids, an optional `resizeTimeout`
/// and the `nodeDeallocationOption` for their tasks (default `requeue`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRemove {
    pub node_list: Vec<String>,
    #[serde(default)]
    pub resize_timeout: Option<String>,
    #[serde(default)]
    pub node_deallocation_option: Option<DeallocationOption>,
}

/// PoolUpdatePropertiesParameter (Pool Update Properties): replaces every updatable property;
/// a start task or communication mode not given is removed, and the three lists are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolUpdateProperties {
    #[serde(default)]
    pub start_task: Option<StartTask>,
    pub certificate_references: Option<Vec<Value>>,
    pub application_package_references: Option<Vec<Value>>,
    pub metadata: Option<Vec<MetadataItem>>,
    #[serde(default)]
    pub target_node_communication_mode: Option<String>,
}

impl PoolUpdateProperties {
    /// The first required list the body lacks (`certificateReferences`, then
    /// `applicationPackageReferences`, then `metadata`), for a 400 `MissingRequiredProperty`.
    pub fn missing(&self) -> Option<&'static str> {
        [
            ("certificateReferences", self.certificate_references.is_none()),
            ("applicationPackageReferences", self.application_package_references.is_none()),
            ("metadata", self.metadata.is_none()),
        ]
        .into_iter()
        .find(|(_, missing)| *missing)
        .map(|(name, _)| name)
    }

    /// Replaces the updatable properties of `spec`: an absent start task and empty lists remove
    /// what was there (the service then shows `certificateReferences` as `[]` and leaves the
    /// other lists out, as recorded); an absent communication mode returns to `default`.
    pub fn apply(self, spec: &mut PoolSpec) {
        spec.start_task = self.start_task;
        spec.certificate_references = self.certificate_references;
        spec.application_package_references = self.application_package_references.filter(|l| !l.is_empty());
        spec.metadata = self.metadata.filter(|m| !m.is_empty());
        spec.target_node_communication_mode = self.target_node_communication_mode;
    }
}

/// A pool: what the caller set, and what the service keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pool {
    pub spec: PoolSpec,
    pub status: PoolStatus,
    #[serde(with = "ts")]
    pub creation_time: Timestamp,
    #[serde(with = "ts")]
    pub last_modified: Timestamp,
    /// The pool's statistics (PoolStatistics, shown with `$expand=stats`), summed over its
    /// nodes' samples and core-time; absent until the first was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::stats::PoolStats>,
}

impl Pool {
    /// A new pool from a checked, normalized spec: `active` and `resizing` toward its targets,
    /// or `steady` with an allocation error when its nodes cannot run here.
    pub fn new(spec: PoolSpec, now: Timestamp) -> Pool {
        let refusal = spec.os_refusal().filter(|_| spec.target_nodes() > 0);
        Pool {
            status: PoolStatus {
                state: PoolState::Active,
                state_transition_time: now,
                allocation_state: if refusal.is_some() { AllocationState::Steady } else { AllocationState::Resizing },
                allocation_state_transition_time: now,
                resize_errors: refusal.iter().map(|r| allocation_error(r)).collect(),
                current_dedicated_nodes: 0,
                current_low_priority_nodes: 0,
                next_node_index: 0,
                pending_deallocation: None,
                resize_started: Some(now),
                resize_halted: false,
                auto_scale_run: None,
                auto_scale_enabled_at: None,
            },
            spec,
            creation_time: now,
            last_modified: now,
            stats: None,
        }
    }
}

impl Pool {
    /// Sets new targets and starts the resize toward them at `now` (Pool Resize, an autoscale
    /// evaluation): `resizing`, or `steady` with an allocation error when the pool's nodes
    /// cannot run here (Windows).
    pub fn resize_to(&mut self, dedicated: i32, low_priority: i32, now: Timestamp, option: Option<DeallocationOption>) {
        self.spec.target_dedicated_nodes = Some(dedicated);
        self.spec.target_low_priority_nodes = Some(low_priority);
        self.status.begin_resize(now, option);
        if let Some(reason) = self.spec.os_refusal().filter(|_| self.spec.target_nodes() > 0) {
            self.status.resize_errors.push(allocation_error(&reason));
            self.status.allocation_state = AllocationState::Steady;
        }
    }
}

impl PoolSpec {
    /// Why openbatch cannot allocate nodes for this pool, if it cannot: compute nodes are
    /// Linux processes, so Cloud Services pools and Windows images are refused (as an
    /// allocation error on the pool, the way the service reports failed allocations).
    pub fn os_refusal(&self) -> Option<String> {
        if self.cloud_service_configuration.is_some() {
            return Some("Cloud Services pools run Windows; openbatch runs Linux compute nodes only. Use virtualMachineConfiguration with a Linux image (see List Supported Images).".into());
        }
        let vm = self.virtual_machine_configuration.as_ref()?;
        let windows_image = [&vm.image_reference.publisher, &vm.image_reference.offer, &vm.image_reference.sku]
            .iter()
            .any(|f| f.as_deref().is_some_and(|s| s.to_ascii_lowercase().contains("windows")));
        if vm.windows_configuration.is_some() || windows_image || !super::node::is_linux_node_agent(&vm.node_agent_sku_id) {
            return Some(format!(
                "The image {}/{}/{} with node agent SKU '{}' is a Windows image; openbatch runs Linux compute nodes only (see List Supported Images).",
                vm.image_reference.publisher.as_deref().unwrap_or(""),
                vm.image_reference.offer.as_deref().unwrap_or(""),
                vm.image_reference.sku.as_deref().unwrap_or(""),
                vm.node_agent_sku_id
            ));
        }
        None
    }

    /// Fills in the defaults reported on Get (`resizeTimeout PT15M`, zero targets,
    /// `enableAutoScale false`, an autoscale pool's `autoScaleEvaluationInterval` (`PT15M`), `enableInterNodeCommunication false`, `taskSlotsPerNode 1`,
    /// `nodeFillType Spread`, image `version latest`, lower-case `vmSize`) and normalizes
    /// the start task.
    pub fn normalize(&mut self) {
        self.vm_size = self.vm_size.to_ascii_lowercase();
        self.resize_timeout.get_or_insert_with(|| "PT15M".into());
        self.target_dedicated_nodes.get_or_insert(0);
        self.target_low_priority_nodes.get_or_insert(0);
        self.enable_auto_scale.get_or_insert(false);
        if self.enable_auto_scale == Some(true) {
            let interval = super::autoscale::interval_of(self.auto_scale_evaluation_interval.as_deref());
            self.auto_scale_evaluation_interval = Some(super::time::format_duration(interval));
        }
        self.enable_inter_node_communication.get_or_insert(false);
        self.task_slots_per_node.get_or_insert(1);
        self.task_scheduling_policy.get_or_insert(TaskSchedulingPolicy { node_fill_type: NodeFillType::Spread, job_default_order: None });
        let windows = self.os_refusal().is_some();
        if let Some(vm) = self.virtual_machine_configuration.as_mut() {
            if vm.image_reference.virtual_machine_image_id.is_none() {
                vm.image_reference.version.get_or_insert_with(|| "latest".into());
            }
            // A data disk's storage account type lives in managedDisk (2025-06-01; older versions
            // show it on the disk, see the version rules); a 2025-06-01 beta client may still send
            // the old place. Standard HDD unless given.
            for disk in vm.data_disks.iter_mut().flatten().filter_map(Value::as_object_mut) {
                let old = disk.remove("storageAccountType");
                let managed = disk.entry("managedDisk").or_insert_with(|| serde_json::json!({}));
                if let Some(m) = managed.as_object_mut() {
                    let value = old.unwrap_or_else(|| Value::String("standard_lrs".into()));
                    m.entry("storageAccountType").or_insert(value);
                }
            }
        }
        if let Some(Value::Object(cs)) = self.cloud_service_configuration.as_mut() {
            cs.entry("osVersion").or_insert_with(|| Value::String("*".into()));
        }
        if let Some(Value::Object(net)) = self.network_configuration.as_mut() {
            net.entry("dynamicVNetAssignmentScope").or_insert_with(|| Value::String("none".into()));
            let pools = net.get_mut("endpointConfiguration").and_then(|e| e.get_mut("inboundNATPools")).and_then(Value::as_array_mut);
            for pool in pools.into_iter().flatten() {
                let rules = pool.get_mut("networkSecurityGroupRules").and_then(Value::as_array_mut);
                for rule in rules.into_iter().flatten().filter_map(Value::as_object_mut) {
                    rule.entry("sourcePortRanges").or_insert_with(|| serde_json::json!(["*"]));
                }
            }
        }
        for account in self.user_accounts.iter_mut().flatten().filter_map(Value::as_object_mut) {
            account.entry("elevationLevel").or_insert_with(|| Value::String("nonadmin".into()));
            if windows && self.virtual_machine_configuration.is_some() {
                let w = account.entry("windowsUserConfiguration").or_insert_with(|| serde_json::json!({}));
                if let Some(w) = w.as_object_mut() {
                    w.entry("loginMode").or_insert_with(|| Value::String("batch".into()));
                }
            }
        }
        if let Some(st) = self.start_task.as_mut() {
            st.normalize();
        }
    }

    /// The parts of the pool's configuration that a compute node here cannot provide, as
    /// `(property path, reason)`: openbatch nodes are processes on Linux machines, not Azure
    /// VMs, so VM security profiles, OS and data disks, disk encryption, pinned image
    /// artifacts, accelerated networking, VM extensions and automatic OS upgrades are kept and
    /// echoed but not applied. Nodes of such a pool report them in their `errors`
    /// ([`unmet_configuration_error`]) and still run tasks.
    pub fn unmet_configuration(&self) -> Vec<(&'static str, &'static str)> {
        let given = |v: Option<&Value>| v.is_some_and(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
        let listed = |v: Option<&Vec<Value>>| v.is_some_and(|a| !a.is_empty());
        let mut out = Vec::new();
        if let Some(vm) = &self.virtual_machine_configuration {
            let checks = [
                (
                    "virtualMachineConfiguration.securityProfile",
                    given(vm.security_profile.as_ref()),
                    "no encryption at host, trusted launch, confidential VM or proxy agent: compute nodes are processes, not VMs",
                ),
                (
                    "virtualMachineConfiguration.osDisk",
                    given(vm.os_disk.as_ref()),
                    "no OS disk: a compute node's files live in its node root directory on this machine",
                ),
                (
                    "virtualMachineConfiguration.dataDisks",
                    listed(vm.data_disks.as_ref()),
                    "no data disks are attached: compute nodes have no disks of their own",
                ),
                (
                    "virtualMachineConfiguration.diskEncryptionConfiguration",
                    given(vm.disk_encryption_configuration.as_ref()),
                    "no disks are encrypted: compute nodes have no disks of their own",
                ),
                (
                    "virtualMachineConfiguration.serviceArtifactReference",
                    given(vm.service_artifact_reference.as_ref()),
                    "no image versions: compute nodes run this machine's operating system",
                ),
                (
                    "virtualMachineConfiguration.extensions",
                    listed(vm.extensions.as_ref()),
                    "VM extensions are not installed: compute nodes are processes, not VMs",
                ),
            ];
            out.extend(checks.into_iter().filter(|(_, used, _)| *used).map(|(p, _, r)| (p, r)));
        }
        if self.network_configuration.as_ref().and_then(|n| n.get("enableAcceleratedNetworking")).and_then(Value::as_bool) == Some(true) {
            out.push((
                "networkConfiguration.enableAcceleratedNetworking",
                "no accelerated networking: compute nodes use this machine's network",
            ));
        }
        let upgrade = self.upgrade_policy.as_ref();
        let automatic = upgrade.and_then(|u| u.get("mode")).and_then(Value::as_str).is_some_and(|m| !m.eq_ignore_ascii_case("manual"))
            || upgrade.and_then(|u| u.pointer("/automaticOSUpgradePolicy/enableAutomaticOSUpgrade")).and_then(Value::as_bool) == Some(true);
        if automatic {
            out.push(("upgradePolicy", "no automatic OS upgrades: compute nodes run this machine's operating system"));
        }
        out
    }

    /// Checks what openbatch cannot provide for any pool, answering as the service does for
    /// resources a Batch account cannot reach: a `subnetId` (openbatch has no virtual
    /// networks) and a malformed `virtualMachineImageId`.
    /// Errors: `(property, value, reason)` for a 400 `InvalidPropertyValue`.
    pub fn check_environment(&self) -> Result<(), (&'static str, String, String)> {
        if let Some(subnet) = self.network_configuration.as_ref().and_then(|n| n.get("subnetId")).and_then(Value::as_str) {
            return Err((
                "subnetId",
                subnet.to_string(),
                "openbatch has no virtual networks: compute nodes run on this machine's network, so a subnetId cannot be used.".into(),
            ));
        }
        if let Some(id) = self.virtual_machine_configuration.as_ref().and_then(|v| v.image_reference.virtual_machine_image_id.as_deref()) {
            if !is_image_resource_id(id) {
                return Err((
                    "virtualMachineImageId",
                    id.to_string(),
                    "The specified resource id must be of the format /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/images/{imageName}, /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}, or /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}".into(),
                ));
            }
        }
        Ok(())
    }
}

/// True when `id` names a managed image or a Shared Image Gallery image (version) by its
/// Azure Resource Manager id.
fn is_image_resource_id(id: &str) -> bool {
    let p: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    let head = p.len() >= 6
        && p[0].eq_ignore_ascii_case("subscriptions")
        && p[2].eq_ignore_ascii_case("resourceGroups")
        && p[4].eq_ignore_ascii_case("providers")
        && p[5].eq_ignore_ascii_case("Microsoft.Compute");
    let named =
        |i: usize, word: &str| p.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word)) && p.get(i + 1).is_some_and(|s| !s.is_empty());
    head && match p.len() {
        8 => named(6, "images"),
        10 => named(6, "galleries") && named(8, "images"),
        12 => named(6, "galleries") && named(8, "images") && named(10, "versions"),
        _ => false,
    }
}

/// The compute node error (ComputeNodeError) of a node whose pool asks for what it cannot
/// provide ([`PoolSpec::unmet_configuration`]): code `UnsupportedNodeConfiguration`, one
/// detail per property, named by its path.
pub fn unmet_configuration_error(unmet: &[(&str, &str)]) -> Value {
    let details: Vec<Value> = unmet.iter().map(|(p, r)| serde_json::json!({"name": p, "value": r})).collect();
    serde_json::json!({
        "code": "UnsupportedNodeConfiguration",
        "message": "The compute node does not provide part of the pool's configuration; it runs tasks without it.",
        "errorDetails": details
    })
}

/// A resize error (ResizeError) for the nodes of one kind a resize did not reach: `code`
/// (`ResizeStopped`, `AllocationTimedOut`, `AccountCoreQuotaReached`,
/// `AccountLowPriorityCoreQuotaReached`) with the service's message for it; `removing` when
/// the pool was shrinking (nodes could not be removed rather than allocated).
pub fn resize_error(code: &str, dedicated: bool, removing: bool, detail: Option<&str>) -> Value {
    let kind = if dedicated { "dedicated" } else { "low priority" };
    let verb = if removing { "removed" } else { "allocated" };
    let message = match code {
        "ResizeStopped" => format!("Desired number of {kind} nodes could not be {verb} due to a stop resize operation"),
        "AllocationTimedOut" => format!("Desired number of {kind} nodes could not be {verb} as the resize timeout was reached"),
        _ => format!("The specified account has reached its {kind} node quota; desired number of {kind} nodes could not be allocated"),
    };
    let mut e = serde_json::json!({"code": code, "message": message});
    if let Some(d) = detail {
        e["values"] = serde_json::json!([{"name": "Reason", "value": d}]);
    }
    e
}

/// The resize error recorded when a pool's nodes cannot be allocated.
pub fn allocation_error(reason: &str) -> Value {
    serde_json::json!({
        "code": "AllocationFailed",
        "message": "Desired number of dedicated nodes could not be allocated",
        "values": [{"name": "Reason", "value": reason}]
    })
}
