//! Data in and out of compute nodes through Azure Blob Storage (or Azurite), as Batch moves it:
//! resource files downloaded before a command starts ([`resource_files`]) and output files
//! uploaded after it ends ([`output_files`]). Blob access goes through `object_store`'s Azure
//! client ([`blob`]); plain `httpUrl` downloads through `reqwest`.
//!
//! The service turns the API's `ResourceFile` and `OutputFile` into the wire specs below
//! (resolving `autoStorageContainerName` to the account's linked storage) and sends them with
//! the execution; the node agent carries them out.

pub mod blob;
pub mod output_files;
pub mod resource_files;

use serde::{Deserialize, Serialize};

/// A blob container as a node reaches it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRef {
    /// The container URL: `https://<account>.blob.core.windows.net/<container>` or, path-style
    /// as Azurite serves it, `http://<host>:<port>/<account>/<container>`; a SAS may follow as
    /// the query.
    pub url: String,
    /// The account key, for the account's linked auto-storage only (user containers come with
    /// a SAS in their URL or are public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key: Option<String>,
}

/// Where a resource file comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum ResourceSource {
    /// One file from any HTTP(S) URL (`httpUrl`, or `blobSource` before 2018-12-01.8.0).
    Http { url: String },
    /// Every blob of a container whose name starts with `prefix` (`storageContainerUrl` or
    /// `autoStorageContainerName`, with `blobPrefix`).
    Container { container: ContainerRef, prefix: Option<String> },
}

/// One ResourceFile of an execution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFileSpec {
    #[serde(flatten)]
    pub source: ResourceSource,
    /// Relative to the working directory: the file (for `Http`, required) or the directory the
    /// blobs go under (for `Container`, optional).
    pub file_path: Option<String>,
    /// Octal permission bits (`"0644"`); Batch's default on Linux is 0770.
    pub file_mode: Option<String>,
}

/// When an output file is uploaded (OutputFileUploadCondition).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum UploadCondition {
    /// Only after the process exited with code 0.
    TaskSuccess,
    /// Only after a failure (nonzero exit code, or the process could not run to its end).
    TaskFailure,
    /// Always.
    TaskCompletion,
}

impl UploadCondition {
    /// Reads the API's (case-insensitive) spelling.
    pub fn parse(s: &str) -> Option<UploadCondition> {
        match s.to_ascii_lowercase().as_str() {
            "tasksuccess" => Some(UploadCondition::TaskSuccess),
            "taskfailure" => Some(UploadCondition::TaskFailure),
            "taskcompletion" => Some(UploadCondition::TaskCompletion),
            _ => None,
        }
    }

    /// Whether an execution that ended this way uploads.
    pub fn applies(self, succeeded: bool) -> bool {
        match self {
            UploadCondition::TaskSuccess => succeeded,
            UploadCondition::TaskFailure => !succeeded,
            UploadCondition::TaskCompletion => true,
        }
    }
}

/// One OutputFile of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OutputFileSpec {
    /// `filePattern`, relative to the working directory (`**`, `*`, `?`, `[...]`).
    pub pattern: String,
    pub container: ContainerRef,
    /// The blob name (a pattern without wildcards) or the virtual directory prefix.
    pub path: Option<String>,
    /// `uploadHeaders` as name/value pairs (`Content-Type`, `x-ms-meta-*`, …).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub condition: UploadCondition,
    /// The destination names a managed identity (`identityReference`), which openbatch nodes
    /// do not have: the upload fails saying so.
    #[serde(default)]
    pub identity: bool,
}

/// Why moving data failed, as the task's `failureInfo` shows it (category `UserError`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferError {
    /// Whether this failed the start of an execution (resource files) or its end (output
    /// files).
    pub kind: crate::agent::protocol::FailureKind,
    /// Batch error code, e.g. `BlobNotFound`, `ResourceContainerAccessDenied`,
    /// `BlobDownloadMiscError`, `FileUploadError`.
    pub code: &'static str,
    pub message: String,
    /// Name/value details (`FilePath`, `Url` without its SAS, `Reason`).
    pub details: Vec<(String, String)>,
}

/// A URL as it may be shown: without its query, which may hold a SAS signature.
pub fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// A relative path inside a directory: no absolute path, no `..`, no empty result. Returns
/// the cleaned path (`./a//b` → `a/b`).
///
/// Errors: the reason, for a 400 `InvalidPropertyValue` or a `failureInfo`.
pub fn relative_path(p: &str) -> Result<String, String> {
    if p.starts_with('/') {
        return Err(format!("'{p}' is an absolute path; it must be relative to the task's working directory"));
    }
    let mut parts = Vec::new();
    for part in p.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(format!("'{p}' breaks out of the task's working directory ('..' is not allowed)")),
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(relative_path("a/./b//c").unwrap(), "a/b/c");
        assert_eq!(relative_path("").unwrap(), "");
        assert!(relative_path("../x").is_err());
        assert!(relative_path("a/../../x").is_err());
        assert!(relative_path("/etc/passwd").is_err());
        assert_eq!(redact("https://a.blob.core.windows.net/c/b?sv=1&sig=secret"), "https://a.blob.core.windows.net/c/b");
    }

    #[test]
    fn upload_conditions() {
        assert!(UploadCondition::parse("TaskSuccess").unwrap().applies(true));
        assert!(!UploadCondition::parse("tasksuccess").unwrap().applies(false));
        assert!(UploadCondition::parse("taskFailure").unwrap().applies(false));
        assert!(UploadCondition::parse("taskcompletion").unwrap().applies(false));
        assert!(UploadCondition::parse("sometimes").is_none());
    }
}
