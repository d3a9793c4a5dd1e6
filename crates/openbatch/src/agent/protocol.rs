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

/// A failure that is not just an exit code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecFailure {
    pub code: String,
    pub message: String,
    pub detail: String,
}

/// A file operation the service asks the agent to do under the node root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FileOp {
    /// Entries under `path` (a directory relative to the node root).
    List { path: String, recursive: bool },
    /// Size and times of `path`.
    Stat { path: String },
    /// Bytes `[start, end)` of `path` (`end` None = to the end).
    Read { path: String, start: u64, end: Option<u64> },
    /// Removes `path`; a directory only when `recursive`.
    Delete { path: String, recursive: bool },
}

/// One entry of a listing or a stat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Path relative to the directory listed (or the path asked, for a stat).
    pub name: String,
    pub is_directory: bool,
    pub size: u64,
    /// Unix milliseconds.
    pub modified_ms: i64,
    pub created_ms: i64,
    /// Unix mode bits, e.g. 0o100644.
    pub mode: u32,
}

/// The result of a [`FileOp`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum FileReply {
    Entries {
        entries: Vec<FileEntry>,
    },
    Entry {
        entry: FileEntry,
    },
    /// Base64 bytes, and the file's total size.
    Data {
        data: String,
        total_size: u64,
    },
    Deleted,
    NotFound,
    /// The path names a directory where a file was expected (or the reverse).
    IsDirectory,
    Error {
        message: String,
    },
}

/// Messages from the service to an agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServiceMessage {
    /// The connection is accepted; the account the node serves.
    Welcome { account_name: String, account_url: String, pool_id: String, node_id: String, is_dedicated: bool },
    /// Run an execution.
    Run { spec: ExecSpec },
    /// Kill an execution (its whole process group); it then reports `TaskEnded`.
    Kill { kind: ExecKind, dispatch_id: u64 },
    /// These results are stored; forget them.
    Ack { dispatch_ids: Vec<u64> },
    /// A file request, answered by [`AgentMessage::File`] with the same `request_id`.
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
}
