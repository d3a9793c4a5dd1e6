//! The hand-written part of the version table: what a property lookup cannot express —
//! renames, moved properties, enum values that changed spelling, and defaults that differ by
//! api-version. Each rule cites the release note it comes from (the seed's, or for versions
//! after 2022-10-01.16.0 the service's later notes and the wire facts in
//! `azure-batch-wire/newer/`). Versions are indexes into [`crate::api::version::PUBLISHED`].

/// The newest published version's index: rules that still hold today end here.
pub const NEWEST: u8 = (crate::api::version::PUBLISHED.len() - 1) as u8;

/// A property that an older version names differently: up to and including `last_old`, the
/// wire name is `old`; later it is `new` (the canonical name).
pub struct Rename {
    pub models: &'static [&'static str],
    pub old: &'static str,
    pub new: &'static str,
    pub last_old: u8,
    /// The old property held one element where the new one holds an array of them.
    pub singular: bool,
    /// Values (by their `code`) the old property did not cover: not shown under the old name.
    pub old_omits_codes: &'static [&'static str],
}

/// 2017-01-01.4.0 is index 5, 2018-08-01.7.0 is 10, 2020-03-01.11.0 is 14, 2022-10-01.16.0 is
/// 19, 2023-05-01.17.0 is 20, 2024-02-01.19.0 is 22, 2024-07-01.20.0 is 23, 2025-06-01 is 24.
pub const RENAMES: &[Rename] = &[
    // 2017-05-01.5.0: targetDedicated/currentDedicated → targetDedicatedNodes/currentDedicatedNodes.
    Rename {
        models: &["CloudPool", "PoolAddParameter", "PoolSpecification", "PoolResizeParameter"],
        old: "targetDedicated",
        new: "targetDedicatedNodes",
        last_old: 5,
        singular: false,
        old_omits_codes: &[],
    },
    Rename {
        models: &["CloudPool"],
        old: "currentDedicated",
        new: "currentDedicatedNodes",
        last_old: 5,
        singular: false,
        old_omits_codes: &[],
    },
    // 2017-05-01.5.0: resizeError became the collection resizeErrors.
    Rename { models: &["CloudPool"], old: "resizeError", new: "resizeErrors", last_old: 5, singular: true, old_omits_codes: &[] },
    // 2017-05-01.5.0: executionInfo.schedulingError → failureInfo, which also covers nonzero
    // exit codes: before, an exit-code failure showed only its exitCode.
    Rename {
        models: &[
            "TaskExecutionInformation",
            "StartTaskInformation",
            "SubtaskInformation",
            "JobPreparationTaskExecutionInformation",
            "JobReleaseTaskExecutionInformation",
        ],
        old: "schedulingError",
        new: "failureInfo",
        last_old: 5,
        singular: false,
        old_omits_codes: &["FailureExitCode"],
    },
    // exitConditions.schedulingError → preProcessingError.
    Rename {
        models: &["ExitConditions"],
        old: "schedulingError",
        new: "preProcessingError",
        last_old: 5,
        singular: false,
        old_omits_codes: &[],
    },
    // 2018-12-01.8.0: targetOSVersion → osVersion; ResourceFile.blobSource → httpUrl.
    Rename {
        models: &["CloudServiceConfiguration"],
        old: "targetOSVersion",
        new: "osVersion",
        last_old: 10,
        singular: false,
        old_omits_codes: &[],
    },
    Rename { models: &["ResourceFile"], old: "blobSource", new: "httpUrl", last_old: 10, singular: false, old_omits_codes: &[] },
    // 2020-09-01.12.0: maxTasksPerNode → taskSlotsPerNode.
    Rename {
        models: &["CloudPool", "PoolAddParameter", "PoolSpecification"],
        old: "maxTasksPerNode",
        new: "taskSlotsPerNode",
        last_old: 14,
        singular: false,
        old_omits_codes: &[],
    },
];

/// A property that moved into a nested object: up to `last_old`, `old` sat on the model itself;
/// later it is `path` below it.
pub struct Move {
    pub models: &'static [&'static str],
    pub old: &'static str,
    pub path: &'static [&'static str],
    pub last_old: u8,
}

pub const MOVES: &[Move] = &[
    // 2017-05-01.5.0: sshPrivateKey moved under linuxUserConfiguration.
    Move { models: &["UserAccount"], old: "sshPrivateKey", path: &["linuxUserConfiguration", "sshPrivateKey"], last_old: 5 },
    // 2025-06-01: a data disk's storageAccountType moved under managedDisk. (Its 15.1.0b2
    // client still sends the old place too, which the table keeps at 2025-06-01.)
    Move { models: &["DataDisk"], old: "storageAccountType", path: &["managedDisk", "storageAccountType"], last_old: 23 },
];

/// Models whose `runElevated` flag (up to 2016-07-01.3.1, index 4) became `userIdentity`
/// with `autoUser.elevationLevel` (2017-01-01.4.0). From 4.0 on `runElevated` is refused.
pub const RUN_ELEVATED_MODELS: &[&str] =
    &["TaskAddParameter", "CloudTask", "StartTask", "JobManagerTask", "JobPreparationTask", "JobReleaseTask"];
pub const RUN_ELEVATED_LAST: u8 = 4;

/// An enum value spelled differently up to `last_old` (both directions), or, with
/// `downgrade_only`, a value older versions do not know and see as `old`.
pub struct EnumRename {
    pub name: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub last_old: u8,
    pub downgrade_only: bool,
    /// Properties (model, name) that hold this enum where the wire table types them as plain
    /// strings (older releases declared some enums as string constants).
    pub at: &'static [(&'static str, &'static str)],
}

pub const ENUM_RENAMES: &[EnumRename] = &[
    // 2015-11-01.2.1: the node state offline is reported as unusable to older versions.
    EnumRename { name: "ComputeNodeState", old: "unusable", new: "offline", last_old: 0, downgrade_only: true, at: &[] },
    // 2018-08-01.7.0: ContainerType docker → dockerCompatible.
    EnumRename {
        name: "ContainerType",
        old: "docker",
        new: "dockerCompatible",
        last_old: 9,
        downgrade_only: false,
        at: &[("ContainerConfiguration", "type")],
    },
    // 2024-07-01.20.0 spells the OS disk placement in lower case; 2025-06-01 the confidential VM
    // security type (values compare case-insensitively; each version sees its own spelling).
    EnumRename { name: "DiffDiskPlacement", old: "CacheDisk", new: "cachedisk", last_old: 22, downgrade_only: false, at: &[] },
    EnumRename { name: "SecurityTypes", old: "confidentialVM", new: "confidentialvm", last_old: 23, downgrade_only: false, at: &[] },
    // 2024-02-01.19.0 added the node state upgradingos, 2024-07-01.20.0 deallocating and
    // deallocated: older versions see such a node as unusable (it runs no tasks).
    EnumRename { name: "ComputeNodeState", old: "unusable", new: "upgradingos", last_old: 21, downgrade_only: true, at: &[] },
    EnumRename { name: "ComputeNodeState", old: "unusable", new: "deallocating", last_old: 22, downgrade_only: true, at: &[] },
    EnumRename { name: "ComputeNodeState", old: "unusable", new: "deallocated", last_old: 22, downgrade_only: true, at: &[] },
];

/// A default the service fills in when a request leaves `path` (below `model`) out, for
/// versions `first..=last`.
pub struct VersionDefault {
    pub model: &'static str,
    pub path: &'static [&'static str],
    pub value: DefaultValue,
    pub first: u8,
    pub last: u8,
    /// Which release note this comes from.
    pub note: &'static str,
}

/// A JSON default value.
#[derive(Clone, Copy)]
pub enum DefaultValue {
    Bool(bool),
    Int(i64),
    Str(&'static str),
}

pub const DEFAULTS: &[VersionDefault] = &[
    VersionDefault { model: "StartTask", path: &["waitForSuccess"], value: DefaultValue::Bool(false), first: 0, last: 12, note: "StartTask.waitForSuccess defaults to false before 2019-08-01.10.0" },
    VersionDefault { model: "StartTask", path: &["waitForSuccess"], value: DefaultValue::Bool(true), first: 13, last: NEWEST, note: "StartTask.waitForSuccess defaults to true from 2019-08-01.10.0" },
    VersionDefault { model: "AutoUserSpecification", path: &["scope"], value: DefaultValue::Str("pool"), first: 0, last: NEWEST, note: "AutoUserSpecification.scope defaults to pool on Linux nodes (task on Windows before 2019-08-01.10.0; openbatch nodes are Linux)" },
    VersionDefault { model: "TaskAddParameter", path: &["constraints", "retentionTime"], value: DefaultValue::Str(crate::model::time::UNLIMITED_DURATION), first: 0, last: 10, note: "task retention is unlimited before 2018-12-01.8.0" },
    VersionDefault { model: "TaskAddParameter", path: &["constraints", "retentionTime"], value: DefaultValue::Str("P7D"), first: 11, last: NEWEST, note: "task retention defaults to 7 days from 2018-12-01.8.0" },
    VersionDefault { model: "MultiInstanceSettings", path: &["numberOfInstances"], value: DefaultValue::Int(1), first: 8, last: NEWEST, note: "numberOfInstances is optional and defaults to 1 from 2017-09-01.6.0" },
    VersionDefault { model: "DataDisk", path: &["caching"], value: DefaultValue::Str("none"), first: 0, last: 9, note: "data disk caching defaults to none before 2018-08-01.7.0" },
    VersionDefault { model: "DataDisk", path: &["caching"], value: DefaultValue::Str("readwrite"), first: 10, last: NEWEST, note: "data disk caching defaults to readwrite from 2018-08-01.7.0" },
    VersionDefault { model: "NetworkConfiguration", path: &["enableAcceleratedNetworking"], value: DefaultValue::Bool(false), first: 20, last: NEWEST, note: "2023-05-01.17.0 added enableAcceleratedNetworking, false unless set" },
];

/// A property a request must carry from version `first` on (before, it was optional).
pub struct Required {
    pub model: &'static str,
    pub name: &'static str,
    pub first: u8,
    pub note: &'static str,
}

pub const REQUIRED: &[Required] = &[Required {
    model: "MultiInstanceSettings",
    name: "coordinationCommandLine",
    first: 8,
    note: "2017-09-01.6.0: multi-instance tasks must give coordinationCommandLine",
}];

/// A request body model that a later version no longer has: from `first` on, the operation's
/// body is read as `read_as` (the resource's own model, whose writable properties are the
/// same set). Source: `azure-batch-wire/newer/diff.md`, "body model changed" for PUT
/// `/jobs/{jobId}`, `/jobschedules/{jobScheduleId}` and `/jobs/{jobId}/tasks/{taskId}`
/// (2024-07-01.20.0, the 15.x clients send the writable properties of `BatchJob`,
/// `BatchJobSchedule` and `BatchTask`).
pub struct BodyModel {
    pub model: &'static str,
    pub first: u8,
    pub read_as: &'static str,
}

pub const BODY_MODELS: &[BodyModel] = &[
    BodyModel { model: "JobUpdateParameter", first: 23, read_as: "CloudJob" },
    BodyModel { model: "JobScheduleUpdateParameter", first: 23, read_as: "CloudJobSchedule" },
    BodyModel { model: "TaskUpdateParameter", first: 23, read_as: "CloudTask" },
    BodyModel { model: "CertificateAddParameter", first: 23, read_as: "Certificate" },
];
