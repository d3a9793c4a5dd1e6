//! Types shared by several Batch resources: environment settings, metadata, user identity,
//! constraints, start task, image references, failure information, and the macro for Batch
//! enums (camelCase on the wire, read case-insensitively as the service does).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Defines a Batch enum: each variant with its wire spelling. Serializes that spelling;
/// deserializes any ASCII-case variant of it (the service reads enums case-insensitively).
#[macro_export]
macro_rules! batch_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            /// Reads a wire value case-insensitively.
            pub fn parse(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($wire) { return Some($name::$variant); })+
                None
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| serde::de::Error::custom(format!(
                    "'{}' is not a valid {} value; expected one of: {}",
                    s, stringify!($name), [$($wire),+].join(", ")
                )))
            }
        }
    };
}

/// `{name, value}`: an environment variable for a task (EnvironmentSetting).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSetting {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `{name, value}`: a metadata item on a pool, job or schedule (MetadataItem).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataItem {
    pub name: String,
    pub value: String,
}

/// `{name, value}` pairs in failure details (NameValuePair).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NameValuePair {
    pub name: String,
    pub value: String,
}

batch_enum!(
    /// AutoUserScope: `task` (a user per task) or `pool` (one shared user per node).
    AutoUserScope { Task = "task", Pool = "pool" }
);

batch_enum!(
    /// ElevationLevel: `nonadmin` (an ordinary user) or `admin` (elevated).
    ElevationLevel { NonAdmin = "nonadmin", Admin = "admin" }
);

/// AutoUserSpecification: the auto-user a task runs as.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoUserSpecification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<AutoUserScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevation_level: Option<ElevationLevel>,
}

/// UserIdentity: a named pool user account, or an auto-user. Defaults to the pool-scoped
/// non-admin auto-user (`{autoUser: {scope: pool, elevationLevel: nonadmin}}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_user: Option<AutoUserSpecification>,
}

impl UserIdentity {
    /// Fills in the defaults the service reports on Get: with no user name, the auto-user
    /// with scope `pool` and elevation `nonadmin`.
    pub fn normalized(identity: Option<UserIdentity>) -> UserIdentity {
        let mut id = identity.unwrap_or(UserIdentity { username: None, auto_user: None });
        if id.username.is_none() {
            let auto = id.auto_user.get_or_insert(AutoUserSpecification { scope: None, elevation_level: None });
            auto.scope.get_or_insert(AutoUserScope::Pool);
            auto.elevation_level.get_or_insert(ElevationLevel::NonAdmin);
        }
        id
    }

    /// True when the task runs elevated (an admin auto-user).
    pub fn is_admin(&self) -> bool {
        self.auto_user.as_ref().and_then(|a| a.elevation_level).is_some_and(|l| l == ElevationLevel::Admin)
    }

    /// The user name tasks see in `AZ_BATCH_TASK_USER` style descriptions.
    pub fn display_user(&self) -> String {
        match (&self.username, &self.auto_user) {
            (Some(u), _) => u.clone(),
            (None, Some(a)) if a.elevation_level == Some(ElevationLevel::Admin) => "_azbatch".into(),
            _ => "_azbatch".into(),
        }
    }
}

/// TaskConstraints: `maxWallClockTime` and `retentionTime` (ISO 8601 durations) and
/// `maxTaskRetryCount` (-1 = unlimited retries).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_clock_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_retry_count: Option<i32>,
}

batch_enum!(
    /// AccessScope: what a task's authentication token grants — `job` (every operation on the
    /// task's job), the only value the service has.
    AccessScope { Job = "job" }
);

/// AuthenticationTokenSettings (2017-01-01.4.0 on): the Batch operations a task's
/// authentication token (`AZ_BATCH_AUTHENTICATION_TOKEN`) may perform. Echoed on Get as sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationTokenSettings {
    /// The scopes granted (`["job"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<AccessScope>>,
}

impl AuthenticationTokenSettings {
    /// True when the token may act on the task's job.
    pub fn grants_job(&self) -> bool {
        self.access.iter().flatten().any(|a| *a == AccessScope::Job)
    }
}

/// JobConstraints: `maxWallClockTime` (ISO 8601) and `maxTaskRetryCount` for the job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_clock_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_retry_count: Option<i32>,
}

/// StartTask: the command each compute node runs when it joins the pool or restarts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartTask {
    pub command_line: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_files: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_settings: Option<Vec<EnvironmentSetting>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_task_retry_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_success: Option<bool>,
}

impl StartTask {
    /// Fills in the defaults reported on Get: auto-user identity, `maxTaskRetryCount 0`,
    /// `waitForSuccess true` (the 2019-08-01.10.0 and later default).
    pub fn normalize(&mut self) {
        self.user_identity = Some(UserIdentity::normalized(self.user_identity.take()));
        self.max_task_retry_count.get_or_insert(0);
        self.wait_for_success.get_or_insert(true);
    }
}

/// ImageReference: a Marketplace image (`publisher`, `offer`, `sku`, `version`) or a custom
/// image by `virtualMachineImageId`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_machine_image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_version: Option<String>,
    /// 2024-07-01.20.0: an image of an Azure Compute Gallery shared with the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_gallery_image_id: Option<String>,
    /// 2024-07-01.20.0: an image of a community Azure Compute Gallery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_gallery_image_id: Option<String>,
}

/// VirtualMachineConfiguration: the image and node agent SKU of an IaaS pool; other settings
/// are kept and echoed as given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineConfiguration {
    pub image_reference: ImageReference,
    #[serde(rename = "nodeAgentSKUId")]
    pub node_agent_sku_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_disks: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_encryption_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_placement_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_disk: Option<Value>,
    /// 2023-11-01.18.0: encryption at host, trusted launch or confidential VM settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_profile: Option<Value>,
    /// 2023-11-01.18.0: the service artifact (image version) the pool's VMs are pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_artifact_reference: Option<Value>,
}

batch_enum!(
    /// ErrorCategory of a failure: `UserError` or `ServerError` (the spelling the service sends).
    ErrorCategory { UserError = "UserError", ServerError = "ServerError" }
);

/// TaskFailureInformation: why a task (or start task) failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailureInfo {
    pub category: ErrorCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<NameValuePair>>,
}

batch_enum!(
    /// TaskExecutionResult: `success` or `failure`.
    ExecutionResult { Success = "success", Failure = "failure" }
);

/// Moves a resource's `state` to `new` at `now`, keeping the state it leaves and when it
/// entered it as Batch reports them (`previousState`, `previousStateTransitionTime`). No
/// change when the state is already `new`.
pub fn transition<S: Copy + PartialEq>(
    state: &mut S,
    since: &mut super::time::Timestamp,
    previous: &mut Option<S>,
    previous_since: &mut Option<super::time::Timestamp>,
    new: S,
    now: super::time::Timestamp,
) {
    if *state != new {
        *previous = Some(*state);
        *previous_since = Some(*since);
        *state = new;
        *since = now;
    }
}
