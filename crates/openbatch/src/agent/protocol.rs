//! The node agent protocol: JSON messages over a WebSocket between the service and each
//! compute node's agent (`GET /agent/v1/connect`). The same protocol serves a node on this
//! machine and one on another machine.
//!
//! The agent opens the connection and says [`AgentMessage::Hello`] with its node id, its
//! secret token, the work it still runs and the results the service has not acknowledged.
//! The service sends work ([`ServiceMessage::Run`]), kills, file requests and shutdown;
//! the agent reports starts and completions, which the service acknowledges once they are
//! durably stored ([`ServiceMessage::Ack`]), so no result is lost when either side restarts.

use serde::{Deserialize, Serialize};

/// What an execution is: the node's start task, or a task of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ExecKind {
    /// The pool's start task, run in `startup/`.
    StartTask,
    /// A task of a job, run in `workitems/<job>/job-1/<task>/`.
    Task { job_id: String, task_id: String },
    /// A job's preparation task, run in `workitems/<job>/job-1/jobpreparation/`.
    JobPreparation { job_id: String },
    /// A job's release task, run in `workitems/<job>/job-1/jobrelease/`.
    JobRelease { job_id: String },
}

/// One execution the agent must run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecSpec {
    pub kind: ExecKind,
    /// Identifies this attempt; results carry it so stale ones are ignored.
    pub dispatch_id: u64,
    /// The command line, split into arguments by the agent (no shell).
    pub command_line: String,
    /// Environment variables beyond the `AZ_BATCH_*` ones the agent sets itself.
    pub environment: Vec<(String, String)>,
    /// Job id for `AZ_BATCH_JOB_ID` (tasks only).
    pub job_id: Option<String>,
    /// Wall-clock limit in seconds; `None` for unlimited.
    pub max_wall_clock_secs: Option<f64>,
    /// Whether the task runs elevated (admin auto-user).
    pub admin: bool,
    /// The job has a preparation task: tasks get `AZ_BATCH_JOB_PREP_DIR` and
    /// `AZ_BATCH_JOB_PREP_WORKING_DIR`.
    #[serde(default)]
    pub job_prep: bool,
    /// Files downloaded into the working directory before the command starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_files: Vec<crate::storage::ResourceFileSpec>,
    /// Files uploaded after the process ends, before the result is reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_files: Vec<crate::storage::OutputFileSpec>,
    /// Application packages (the pool's, then the task's) installed on the node before the
    /// command starts, each announced in an `AZ_BATCH_APP_PACKAGE_*` variable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_packages: Vec<AppPackageRef>,
    /// Set for the instances of a multi-instance task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_instance: Option<MultiInstanceEnv>,
}

/// What an instance of a multi-instance task learns about the others (the `AZ_BATCH_HOST_LIST`,
/// `AZ_BATCH_NODE_LIST`, `AZ_BATCH_MASTER_NODE`, `AZ_BATCH_IS_CURRENT_NODE_MASTER` and
/// `AZ_BATCH_TASK_SHARED_DIR` variables), and the common resource files it downloads into the
/// shared directory before its coordination command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MultiInstanceEnv {
    /// The IP addresses of the task's nodes, primary first.
    pub hosts: Vec<String>,
    /// `IP:port` of the primary.
    pub master: String,
    pub is_master: bool,
    /// The absolute shared directory, the same path for every instance.
    pub shared_dir: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub common_resource_files: Vec<crate::storage::ResourceFileSpec>,
}

/// An application package an execution uses: `version` `None` means the application's
/// default version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppPackageRef {
    pub application_id: String,
    pub version: Option<String>,
}

impl AppPackageRef {
    /// The references of an API `applicationPackageReferences` list.
    pub fn from_api(refs: Option<&[serde_json::Value]>) -> Vec<AppPackageRef> {
        refs.unwrap_or_default()
            .iter()
            .filter_map(|r| {
                Some(AppPackageRef {
                    application_id: r.get("applicationId")?.as_str()?.to_string(),
                    version: r.get("version").and_then(|v| v.as_str()).map(str::to_string),
                })
            })
            .collect()
    }
}

/// A certificate installed on a node: the agent downloads it from the service
/// (`GET /agent/v1/certificates/<algorithm>-<thumbprint>`) and puts it into the certificates
/// directory of each execution it is visible to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeCertificate {
    pub thumbprint_algorithm: String,
    /// Lower-case hex.
    pub thumbprint: String,
    /// `starttask`, `task`, `remoteuser` (lower case); empty: visible to every account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visibility: Vec<String>,
}

impl NodeCertificate {
    /// The certificates of a node's `certificateReferences`.
    pub fn from_api(refs: &[serde_json::Value]) -> Vec<NodeCertificate> {
        crate::model::certificate::Reference::from_api(Some(refs))
            .into_iter()
            .map(|r| NodeCertificate { thumbprint_algorithm: r.thumbprint_algorithm, thumbprint: r.thumbprint, visibility: r.visibility })
            .collect()
    }

    /// Whether an execution of `kind` sees the certificate: the start task with `starttask`
    /// visibility, tasks (job preparation and release tasks too) with `task`.
    pub fn visible_to(&self, kind: &ExecKind) -> bool {
        let wanted = if matches!(kind, ExecKind::StartTask) { "starttask" } else { "task" };
        self.visibility.is_empty() || self.visibility.iter().any(|v| v == wanted)
    }

    /// The file name stem on the node: `<algorithm>-<thumbprint>` (`sha1-…`).
    pub fn stem(&self) -> String {
        format!("{}-{}", self.thumbprint_algorithm, self.thumbprint)
    }
}

/// How an execution ended, as the agent saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecResult {
    pub kind: ExecKind,
    pub dispatch_id: u64,
    /// Unix time in milliseconds when the process started (absent if it never started).
    pub started_ms: Option<i64>,
    pub ended_ms: i64,
    /// The process exit code; for a signal, 128 + the signal number as shells report it.
    pub exit_code: Option<i32>,
    /// Why the execution failed before or outside its exit code (e.g. `CommandProgramNotFound`,
    /// `TaskEnded` when killed).
    pub failure: Option<ExecFailure>,
    /// What the process used (from `wait4`), when it ran.
    #[serde(default)]
    pub usage: Option<ResourceUsage>,
}

/// Resources an execution's process used, as the kernel accounts them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUsage {
    /// User-mode CPU time, milliseconds.
    pub user_ms: u64,
    /// Kernel-mode CPU time, milliseconds.
    pub kernel_ms: u64,
    /// Block input operations (512-byte units on Linux).
    pub read_blocks: u64,
    /// Block output operations (512-byte units on Linux).
    pub write_blocks: u64,
}

/// What a compute node's processes (its agent and everything it runs) used over an
/// interval, as its agent measured them (see `agent::sample`); sent every few seconds as
/// [`AgentMessage::Sample`]. CPU time and I/O are what was used during the interval; memory
/// and disk are what was in use when the sample was taken. Every field defaults to 0, so
/// agents and services of different releases understand each other.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSample {
    /// Milliseconds since the previous sample (since the agent started, for the first).
    pub interval_ms: u64,
    /// The CPUs the agent may run its processes on.
    pub cores: u32,
    /// CPU time (user and kernel) the node's processes used in the interval, milliseconds.
    pub cpu_ms: u64,
    /// Bytes they read from storage in the interval.
    pub read_bytes: u64,
    /// Bytes they wrote to storage in the interval.
    pub write_bytes: u64,
    /// Resident memory of the node's processes at the sample, bytes.
    pub memory_bytes: u64,
    /// Disk space the node's root directory takes at the sample, bytes.
    pub disk_bytes: u64,
}

impl NodeSample {
    /// One sample covering `self` and then `later` (a sample that could not be sent is
    /// merged into the next): intervals, CPU and I/O add up; memory, disk and cores are the
    /// later sample's.
    pub fn then(self, later: NodeSample) -> NodeSample {
        NodeSample {
            interval_ms: self.interval_ms.saturating_add(later.interval_ms),
            cpu_ms: self.cpu_ms.saturating_add(later.cpu_ms),
            read_bytes: self.read_bytes.saturating_add(later.read_bytes),
            write_bytes: self.write_bytes.saturating_add(later.write_bytes),
            ..later
        }
    }
}

/// The kind of an execution failure (typed, so the service never reads message text).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// The execution could not start: its directory, resource files, application packages or
    /// launching the program failed (Batch's pre-processing error).
    PreProcessing,
    /// Output files could not be uploaded after the process ended.
    FileUpload,
    /// The wall-clock limit ended the process.
    WallClockTimeout,
    /// The service asked for the process to end.
    Killed,
    /// Anything else (e.g. the process could not be waited for).
    #[default]
    Other,
}

/// A failure that is not just an exit code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecFailure {
    /// What kind of failure this is, for retries and exit conditions.
    #[serde(default)]
    pub kind: FailureKind,
    pub code: String,
    pub message: String,
    pub detail: String,
    /// Name/value details shown in `failureInfo.details` (when empty, `detail` is shown as
    /// `Message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<(String, String)>,
}

impl From<crate::storage::TransferError> for ExecFailure {
    fn from(e: crate::storage::TransferError) -> Self {
        ExecFailure { kind: e.kind, code: e.code.to_string(), message: e.message, detail: String::new(), details: e.details }
    }
}

/// A file operation the service asks the agent to do. Every path is confined to `root` (a
/// directory relative to the node root: the task directory, or `""` for the node root);
/// `path` is relative to `root`, `..` is refused, and symbolic links are followed only
/// while they stay below `root` (see `agent::safefs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FileOp {
    /// At most `max` entries under the directory `path`, in walk order (names compared
    /// bytewise, a directory's entries right after it when `recursive`), starting after the
    /// entry named `after` (a name an earlier page returned). Links are listed, not followed.
    List { root: String, path: String, recursive: bool, after: Option<String>, max: u32 },
    /// Size and times of `path`.
    Stat { root: String, path: String },
    /// Bytes `[start, end)` of `path` (`end` None = to the end; both clamped to the size when
    /// the agent opens the file). The agent answers [`FileReply::Opened`], then streams the
    /// bytes as the body of `POST /agent/v1/files/<request_id>` with the headers
    /// `x-openbatch-node: <node id>` and `x-openbatch-stream-key: <stream_key>`.
    Read { root: String, path: String, start: u64, end: Option<u64>, stream_key: String },
    /// Removes `path` (a link itself, never its target); a directory only when `recursive`.
    Delete { root: String, path: String, recursive: bool },
}

/// One entry of a listing or a stat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Path relative to the directory listed (or the path asked, for a stat).
    pub name: String,
    pub is_directory: bool,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// Unix milliseconds.
    pub modified_ms: i64,
    pub created_ms: i64,
    /// Unix mode bits with the file type, e.g. 0o100644.
    pub mode: u32,
}

/// The result of a [`FileOp`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum FileReply {
    /// A page of a listing; `more` when entries after the last one remain.
    Entries {
        entries: Vec<FileEntry>,
        more: bool,
    },
    Entry {
        entry: FileEntry,
    },
    /// The file is open: `length` bytes from `start` follow on the stream; `total_size` is the
    /// file's size when opened.
    Opened {
        total_size: u64,
        start: u64,
        length: u64,
    },
    Deleted,
    NotFound,
    /// The path names a directory where a file was expected (or the reverse).
    IsDirectory,
    /// The path names a named pipe, socket, device or other non-regular file (`kind` says
    /// which, e.g. `named pipe`); it is never opened.
    NotRegular {
        kind: String,
    },
    Error {
        message: String,
    },
}

/// Messages from the service to an agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServiceMessage {
    /// The connection is accepted; the account the node serves and the certificates
    /// installed on the node.
    Welcome {
        account_name: String,
        account_url: String,
        pool_id: String,
        node_id: String,
        is_dedicated: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        certificates: Vec<NodeCertificate>,
    },
    /// Run an execution.
    Run { spec: Box<ExecSpec> },
    /// Kill an execution (its whole process group); it then reports `TaskEnded`.
    Kill { kind: ExecKind, dispatch_id: u64 },
    /// These results are stored; forget them.
    Ack { dispatch_ids: Vec<u64> },
    /// A file request, answered by [`AgentMessage::File`] with the same `request_id` (0: the
    /// service awaits no answer, e.g. removing a task directory whose retention passed).
    File { request_id: u64, op: FileOp },
    /// Remove the node: kill everything, optionally delete the node root, and exit.
    Shutdown { remove_files: bool },
}

/// Messages from an agent to the service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AgentMessage {
    /// First message: who the node is, what it still runs, and unacknowledged results.
    Hello {
        pool_id: String,
        node_id: String,
        token: String,
        agent_version: String,
        running: Vec<(ExecKind, u64)>,
        finished: Vec<ExecResult>,
    },
    /// An execution's process started (unix ms).
    Started { kind: ExecKind, dispatch_id: u64, started_ms: i64 },
    /// An execution ended.
    Finished { result: ExecResult },
    /// Answer to a file request.
    File { request_id: u64, reply: FileReply },
    /// What the node used lately (a service that does not know this message ignores it).
    Sample {
        #[serde(default)]
        sample: NodeSample,
    },
}
