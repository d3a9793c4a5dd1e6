//! Compute Node Upload Batch Service Logs
//! (`POST /pools/{poolId}/nodes/{nodeId}/uploadbatchservicelogs`, api-versions
//! 2018-03-01.6.1 and later): copies a node's Batch service log files to a blob container.
//!
//! A node's Batch service logs are here its node agent's log: the service starts each local
//! agent with standard output and error appended to `<data dir>/nodes/<pool>/<node>.agent.log`
//! (see [`crate::nodes::local`]), beside the node root directory, so the service process reads
//! and uploads the file(s) itself; nothing is asked of the agent. A node agent on another
//! machine would have to upload its own logs (the service would send it the container and the
//! time range over its WebSocket and answer once the agent reports the count).
//!
//! As the real service does (the recorded SDK test got 200 and `numberOfFilesUploaded: 4` for
//! a container URL that names no container), the request is answered at once with the files
//! chosen, and the upload runs in the background: a container that cannot be written (no write
//! permission, missing, unreachable, a URL naming no container) is reported in the service log
//! with the reason (`LogUploadFailed`, the container URL without its SAS), not to the caller.

use crate::api::error::{ApiResult, BatchError};
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::time::Timestamp;
use crate::storage::{blob, redact, ContainerRef};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The request body, `UploadBatchServiceLogsConfiguration`, in its canonical (newest) shape.
/// Properties the caller's api-version lacks were already refused by the version layer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadConfig {
    /// Container URL with a SAS granting write (and create) permission.
    container_url: String,
    /// ISO 8601 start of the time range (required).
    start_time: String,
    /// ISO 8601 end of the time range; without it, up to now.
    #[serde(default)]
    end_time: Option<String>,
    /// A managed identity for the container (2021-06-01.14.0+); openbatch nodes have none.
    #[serde(default)]
    identity_reference: Option<Value>,
}

/// One log file to upload: where it is and the blob name under the virtual directory.
#[derive(Debug, Clone, PartialEq)]
struct LogFile {
    path: PathBuf,
    name: String,
}

/// Compute Node Upload Batch Service Logs.
///
/// Uploads each log file of the node that holds messages from the range [`startTime`,
/// `endTime`] (a file is kept when it was last written at or after `startTime` and, with an
/// `endTime`, created at or before it: whole files are uploaded, so more than the range may be
/// sent but never less, as Batch documents) to the container as
/// `<virtualDirectoryName>/<file>` (`agent.log`), with Content-Type `text/plain`.
///
/// Answers 200 `UploadBatchServiceLogsResult`:
/// `{"odata.metadata": "<account URL>/$metadata#Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult",
///   "virtualDirectoryName": "<account>/<pool>/<node>/<request id>", "numberOfFilesUploaded": n}`;
/// the request id is the one of the answer's `request-id` header.
///
/// Errors:
/// * 404 `PoolNotFound` / `NodeNotFound`;
/// * 400 `MissingRequiredProperty` naming `containerUrl` or `startTime`;
/// * 400 `InvalidPropertyValue` naming `startTime` / `endTime` (not an ISO 8601 time, or the end
///   before the start), `containerUrl` (not an http(s) URL), or `identityReference`
///   (openbatch compute nodes have no managed identity: give a SAS in `containerUrl`).
///
/// Storage failures come after the answer and go to the service log as the error they are:
/// `ContainerAccessDenied` (no write permission, an expired or invalid SAS), `ContainerNotFound`,
/// or `LogUploadFailed` (unreachable storage, a server error), with `ContainerUrl` (without
/// its SAS) and `Reason`.
pub async fn upload(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let cfg: UploadConfig = ctx.parse("UploadBatchServiceLogsConfiguration", body)?;
    let start = parse_time("startTime", &cfg.start_time)?;
    let end = cfg.end_time.as_deref().map(|e| parse_time("endTime", e)).transpose()?;
    if let Some(end) = end.filter(|e| *e < start) {
        return Err(BatchError::invalid_property(
            "endTime",
            cfg.end_time.clone().unwrap_or_default(),
            format!(
                "endTime ({}) is before startTime ({})",
                crate::model::time::format_timestamp(&end),
                crate::model::time::format_timestamp(&start)
            ),
        ));
    }
    if cfg.identity_reference.is_some() {
        return Err(BatchError::invalid_property(
            "identityReference",
            "",
            "openbatch compute nodes have no managed identity: give a containerUrl with a SAS granting write permission instead.",
        ));
    }
    if reqwest::Url::parse(&cfg.container_url).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true) {
        return Err(BatchError::invalid_property(
            "containerUrl",
            redact(&cfg.container_url),
            "containerUrl must be an http(s) URL of a blob container.",
        ));
    }
    let node = super::nodes::load(app, pool_id, node_id).await?;
    let files = log_files(Path::new(&node.root_dir), &node.id, start, end).map_err(BatchError::internal)?;
    let dir = virtual_directory(&app.info.account_name, &node.pool_id, &node.id, &ctx.request_id);
    tokio::spawn(upload_in_background(cfg.container_url.clone(), dir.clone(), files.clone()));
    let result = json!({
        "odata.metadata": format!("{}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult", ctx.base),
        "virtualDirectoryName": dir,
        "numberOfFilesUploaded": files.len(),
    });
    Ok(Reply::json(ctx.view("UploadBatchServiceLogsResult", result)))
}

/// Uploads the chosen log files under `dir` of the container; a failure is logged (as the
/// Batch error it would have been) and ends the upload.
async fn upload_in_background(container_url: String, dir: String, files: Vec<LogFile>) {
    let container = ContainerRef { url: container_url.clone(), account_key: None };
    let store = match blob::container_store(&container) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(container = %redact(&container_url), %dir, reason = %scrub(&why), "Batch service logs not uploaded: the containerUrl names no blob container");
            return;
        }
    };
    let attributes = object_store::Attributes::from_iter([(object_store::Attribute::ContentType, "text/plain")]);
    for f in &files {
        let name = format!("{dir}/{}", f.name);
        if let Err(why) = blob::upload(&store, &f.path, &name, attributes.clone()).await {
            let e = upload_error(&container_url, &why);
            tracing::warn!(code = %e.code, details = ?e.values, %dir, "Batch service logs not uploaded");
            return;
        }
    }
    tracing::info!(%dir, files = files.len(), "Batch service logs uploaded");
}

/// The virtual directory of one upload: `<account>/<pool>/<node>/<request id>`, shaped as the
/// real service names it (a leading segment of its own, then pool, node and a unique id).
fn virtual_directory(account: &str, pool: &str, node: &str, request_id: &str) -> String {
    format!("{account}/{pool}/{node}/{request_id}")
}

/// Reads an ISO 8601 (RFC 3339) time of the body.
/// Errors: 400 `InvalidPropertyValue` naming `property`.
fn parse_time(property: &str, value: &str) -> ApiResult<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| BatchError::invalid_property(property, value, format!("{property} must be an ISO 8601 date and time")))
}

/// The node's agent log files holding messages from [start, end], by name: the file
/// `<node>.agent.log` beside the node root directory `root` (and rotated `<node>.agent.log.*`
/// siblings, should there be any), uploaded as `agent.log` (`agent.log.*`). None when the
/// agent never started.
///
/// A file covers [created, last modified]; where the file system does not record the creation
/// time, the file is taken to start at the beginning of time (more is uploaded, never less).
fn log_files(root: &Path, node_id: &str, start: Timestamp, end: Option<Timestamp>) -> std::io::Result<Vec<LogFile>> {
    let Some(dir) = root.parent() else { return Ok(Vec::new()) };
    let base = format!("{node_id}.agent.log");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name != base && !file_name.starts_with(&format!("{base}.")) {
            continue;
        }
        let meta = entry.metadata()?;
        // An empty log holds no messages from any time range.
        if !meta.is_file() || meta.len() == 0 {
            continue;
        }
        let modified: Timestamp = meta.modified()?.into();
        let created: Option<Timestamp> = meta.created().ok().map(Into::into);
        let starts_in_time = match (created, end) {
            (Some(c), Some(e)) => c <= e,
            _ => true,
        };
        if modified >= start && starts_in_time {
            let name = file_name.strip_prefix(&format!("{node_id}.")).unwrap_or(&file_name).to_string();
            out.push(LogFile { path: entry.path(), name });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The Batch error for a failed write to the container (see [`upload`]), from the storage
/// client's error text; the SAS never appears in it.
fn upload_error(container_url: &str, why: &str) -> BatchError {
    let status = crate::storage::blob::http_status(why);
    let code = crate::storage::blob::storage_code(why);
    let (code_name, message) = match (status, code) {
        (Some(401 | 403), _) | (_, Some("AuthorizationPermissionMismatch" | "AuthenticationFailed" | "AuthorizationFailure")) => (
            "ContainerAccessDenied",
            "The container URL does not allow writing blobs: give a SAS granting write permission to the container.",
        ),
        (Some(404), _) | (_, Some("ContainerNotFound")) => ("ContainerNotFound", "The container given by containerUrl does not exist."),
        _ => ("LogUploadFailed", "The Batch service log files could not be uploaded to the container."),
    };
    let reason = match (status, code) {
        (Some(s), Some(c)) => format!("the storage service answered HTTP {s} {c}"),
        (Some(s), None) => format!("the storage service answered HTTP {s}"),
        (None, Some(c)) => format!("the storage service answered {c}"),
        (None, None) => scrub(why),
    };
    BatchError::new(StatusCode::CONFLICT, code_name, message).with("ContainerUrl", redact(container_url)).with("Reason", reason)
}

/// An error text without URL queries (which may hold a SAS signature).
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_query = false;
    for c in text.chars() {
        if c == '?' {
            in_query = true;
            continue;
        }
        if in_query && (c.is_whitespace() || c == '"' || c == '\'' || c == ')' || c == ',') {
            in_query = false;
        }
        if !in_query {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn picks_the_nodes_agent_logs_in_range() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("node-1");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("node-1.agent.log"), "log\n").unwrap();
        std::fs::write(dir.path().join("node-1.agent.log.1"), "old\n").unwrap();
        std::fs::write(dir.path().join("node-10.agent.log"), "other node\n").unwrap();
        let past = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        let future = chrono::Utc::now() + chrono::Duration::hours(1);
        let names = |v: Vec<LogFile>| v.into_iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(names(log_files(&root, "node-1", past, None).unwrap()), ["agent.log", "agent.log.1"]);
        assert_eq!(names(log_files(&root, "node-1", past, Some(future)).unwrap()), ["agent.log", "agent.log.1"]);
        assert!(log_files(&root, "node-1", future, None).unwrap().is_empty());
        if std::fs::metadata(dir.path().join("node-1.agent.log")).unwrap().created().is_ok() {
            // Created after the range ends.
            assert!(log_files(&root, "node-1", past, Some(past)).unwrap().is_empty());
        }
        assert!(log_files(&dir.path().join("missing/node-2"), "node-2", past, None).unwrap().is_empty());
    }

    #[test]
    fn storage_failures_become_batch_errors_without_the_sas() {
        let denied = "Error performing PUT http://127.0.0.1:1/acct/c/a?sv=1&sig=SECRET in 1ms - Server returned non-2xx status code: \
                      403 Forbidden: <?xml version=\"1.0\"?><Error><Code>AuthorizationPermissionMismatch</Code></Error>";
        let e = upload_error("http://127.0.0.1:1/acct/c?sv=1&sig=SECRET", denied);
        assert_eq!((e.status, e.code.as_str()), (StatusCode::CONFLICT, "ContainerAccessDenied"));
        assert!(!format!("{e:?}").contains("SECRET"));
        let e = upload_error("http://x/a/c", "client error with status 404 Not Found: <Code>ContainerNotFound</Code>");
        assert_eq!(e.code, "ContainerNotFound");
        let e = upload_error("http://x/a/c", "error sending request for url (http://x/a/c/f?sig=SECRET): connection refused");
        assert_eq!(e.code, "LogUploadFailed");
        assert!(!format!("{e:?}").contains("SECRET"));
        assert_eq!(crate::storage::blob::http_status("bad status 503 Service Unavailable"), Some(503));
    }

    #[test]
    fn times_and_directories() {
        assert!(parse_time("startTime", "2022-01-21T23:42:52.967674Z").is_ok());
        assert_eq!(parse_time("endTime", "yesterday").unwrap_err().values[0], ("PropertyName".into(), "endTime".into()));
        assert_eq!(virtual_directory("acct", "p", "n", "r"), "acct/p/n/r");
    }
}
