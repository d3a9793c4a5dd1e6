//! File operations on tasks and compute nodes: List, Get (with `ocp-range` or `Range`),
//! Get Properties (HEAD) and Delete. Files live on the node; the node's agent serves them
//! confined to the task or node directory (`agent::files`): a path or link that leads out
//! of it reads as missing (404 `FileNotFound`), a named pipe, socket or device is refused
//! with 409 `UnsupportedFileType`, listings come from the agent one page at a time, and a
//! Get streams the bytes from the node as they arrive (`Body::Stream`), whatever the size.

use super::{list_reply, page_params};
use crate::agent::protocol::{FileEntry, FileOp, FileReply};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{Body, Reply};
use crate::api::router::FileMethod;
use crate::api::{App, Ctx};
use crate::model::time::{format_http_date, format_timestamp};
use crate::scheduler::hub::HubError;
use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::time::Duration;

const FILE_TIMEOUT: Duration = Duration::from_secs(30);
/// A listing with a `$filter` stops scanning pages after this long and answers what it has,
/// with an `odata.nextLink` at the last entry scanned.
const LIST_SCAN_LIMIT: Duration = Duration::from_secs(10);

/// What the service percent-encodes in file URLs: everything but letters, digits and
/// `.-_~` (so `:` and `/` are encoded in `ocp-batch-file-url`, as recorded).
const URL_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_').remove(b'~');

/// Encodes each segment of a relative path, keeping `/` between them (list entry URLs).
fn encode_path(p: &str) -> String {
    p.split('/').map(|s| percent_encoding::utf8_percent_encode(s, URL_ENCODE).to_string()).collect::<Vec<_>>().join("/")
}

/// Where a task's or node's files are: the node, the directory under its root, and the URL
/// prefix of file URLs.
struct Location {
    node_id: String,
    /// Relative to the node root; `""` for the node root itself.
    dir: String,
    url: String,
}

async fn task_location(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Location> {
    let t = super::tasks::load(app, job_id, task_id).await?;
    if t.files_removal_time().is_some_and(|at| at <= chrono::Utc::now()) {
        return Err(BatchError::conflict(
            "TaskFilesUnavailable",
            "The task's files are no longer on the compute node: its retention time has passed.",
        ));
    }
    let Some(ni) = t.status.node_info else {
        return Err(BatchError::conflict(
            "TaskFilesUnavailable",
            "The task has not been scheduled to a compute node, so it has no files yet.",
        ));
    };
    Ok(Location {
        node_id: ni.node_id,
        dir: ni.task_root_directory,
        url: format!("{}/files", super::tasks::url(&ctx.base, &t.job_id, &t.spec.id)),
    })
}

async fn node_location(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Location> {
    let n = super::nodes::load(app, pool_id, node_id).await?;
    Ok(Location { node_id: n.id.clone(), dir: String::new(), url: format!("{}/files", super::nodes::url(&ctx.base, &n.pool_id, &n.id)) })
}

fn hub_error(e: HubError) -> BatchError {
    match e {
        HubError::NodeUnavailable => BatchError::conflict("NodeNotReady", "The compute node that holds the file is not reachable now."),
        HubError::Timeout => BatchError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OperationTimedOut",
            "The compute node did not answer the file request in time.",
        ),
    }
}

/// Maps the agent's answers every operation shares: `Error` → 500, `NotRegular` → 409
/// `UnsupportedFileType` naming the path and its type.
fn common(reply: FileReply, rel: &str) -> ApiResult<FileReply> {
    match reply {
        FileReply::Error { message } => Err(BatchError::internal(message)),
        FileReply::NotRegular { kind } => Err(BatchError::conflict(
            "UnsupportedFileType",
            format!("The path names a {kind}, not a regular file or directory; the file API does not open it."),
        )
        .with("FilePath", rel.trim_matches('/'))
        .with("FileType", kind)),
        r => Ok(r),
    }
}

async fn ask(app: &App, node_id: &str, op: FileOp, rel: &str) -> ApiResult<FileReply> {
    common(app.driver.hub.file(node_id, op, FILE_TIMEOUT).await.map_err(hub_error)?, rel)
}

fn ts(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if [".txt", ".log", ".out", ".err", ".csv", ".json", ".sh", ".py"].iter().any(|e| lower.ends_with(e)) {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

fn entry_json(url_prefix: &str, e: &FileEntry) -> Value {
    let mut v = json!({"name": e.name, "url": format!("{url_prefix}/{}", encode_path(&e.name)), "isDirectory": e.is_directory});
    if !e.is_directory {
        v["properties"] = json!({
            "lastModified": format_timestamp(&ts(e.modified_ms)),
            "contentLength": e.size.to_string(),
            "contentType": content_type(&e.name),
            "fileMode": format!("0o{:o}", e.mode),
        });
    }
    v
}

async fn list(app: &App, ctx: &Ctx, loc: Location) -> ApiResult<Reply> {
    let recursive = ctx.q("recursive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (max, mut after) = page_params(ctx)?;
    let filter = super::filter_for(ctx, crate::odata::ListKind::Files)?;
    let started = std::time::Instant::now();
    let mut items = Vec::new();
    // Pages of at most `max` entries come from the agent until `max` pass the filter.
    let more = loop {
        let op = FileOp::List { root: loc.dir.clone(), path: String::new(), recursive, after: after.clone(), max };
        let (entries, more) = match ask(app, &loc.node_id, op, "").await? {
            FileReply::Entries { entries, more } => (entries, more),
            _ => return Err(BatchError::not_found(ResourceKind::File)),
        };
        let mut full = false;
        for e in entries {
            after = Some(e.name.clone());
            let v = entry_json(&loc.url, &e);
            if filter.as_ref().is_none_or(|f| crate::odata::eval(f, &v)) {
                items.push(ctx.view("NodeFile", v));
                if items.len() == max as usize {
                    full = true;
                    break;
                }
            }
        }
        if full || !more || started.elapsed() > LIST_SCAN_LIMIT {
            break full || more;
        }
    };
    let last = if more { after } else { None };
    Ok(list_reply(ctx, "files", items, last.as_deref()))
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` into `[start, end)` for a file of `size`.
pub fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.saturating_add(1).min(size)),
    };
    // An empty file has no satisfiable byte range.
    (start < end && start < size).then_some((start, end))
}

async fn one(app: &App, loc: Location, ctx: &Ctx, rel: &str, method: FileMethod) -> ApiResult<Reply> {
    let path = rel.trim_matches('/').to_string();
    if method == FileMethod::Delete {
        let recursive = ctx.q("recursive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        return match ask(app, &loc.node_id, FileOp::Delete { root: loc.dir.clone(), path, recursive }, rel).await? {
            FileReply::Deleted => Ok(Reply::empty(StatusCode::OK)),
            FileReply::IsDirectory => {
                Err(BatchError::conflict("DirectoryNotEmpty", "The path names a directory; delete it with recursive=true."))
            }
            _ => Err(BatchError::not_found(ResourceKind::File)),
        };
    }
    let entry = match ask(app, &loc.node_id, FileOp::Stat { root: loc.dir.clone(), path: path.clone() }, rel).await? {
        FileReply::Entry { entry } => entry,
        _ => return Err(BatchError::not_found(ResourceKind::File)),
    };
    let encoded_url = percent_encoding::utf8_percent_encode(&format!("{}/{}", loc.url, rel.trim_matches('/')), URL_ENCODE).to_string();
    let headers = |r: Reply| {
        r.header("Last-Modified", format_http_date(&ts(entry.modified_ms)))
            .header("ocp-batch-file-isdirectory", if entry.is_directory { "True" } else { "False" })
            .header("ocp-batch-file-mode", format!("0o{:o}", entry.mode))
            .header("ocp-batch-file-url", encoded_url.clone())
    };
    if entry.is_directory {
        if method == FileMethod::Head {
            return Ok(headers(Reply::empty(StatusCode::OK)).header("Content-Length", "0"));
        }
        return Err(BatchError::conflict("OperationInvalidForCurrentState", "The path names a directory, not a file; list it instead."));
    }
    if method == FileMethod::Head {
        let r = Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Body::Bytes { data: Vec::new(), content_type: content_type(rel).into() },
        };
        return Ok(headers(r).header("Content-Length", entry.size.to_string()));
    }
    let (range, status) = match (ctx.headers.get("ocp-range"), ctx.headers.get("range")) {
        (Some(v), _) => (Some(v.to_str().unwrap_or("")), StatusCode::OK),
        (None, Some(v)) => (Some(v.to_str().unwrap_or("")), StatusCode::PARTIAL_CONTENT),
        _ => (None, StatusCode::OK),
    };
    let invalid_range = |r: &str| {
        BatchError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
        )
        .with("Range", r)
    };
    let (start, end) = match range {
        None => (0, None),
        Some(r) => parse_range(r, entry.size).map(|(s, e)| (s, Some(e))).ok_or_else(|| invalid_range(r))?,
    };
    let (reply, stream) = app.driver.hub.read(&loc.node_id, loc.dir.clone(), path, (start, end), FILE_TIMEOUT).await.map_err(hub_error)?;
    let (total, start, length) = match common(reply, rel)? {
        FileReply::Opened { total_size, start, length } => (total_size, start, length),
        FileReply::IsDirectory => {
            return Err(BatchError::conflict("OperationInvalidForCurrentState", "The path names a directory, not a file; list it instead."))
        }
        _ => return Err(BatchError::not_found(ResourceKind::File)),
    };
    let Some(stream) = stream else { return Err(BatchError::internal("the compute node opened the file but sent no stream")) };
    if range.is_some() && length == 0 {
        // The file shrank below the range since it was looked at.
        return Err(invalid_range(range.unwrap_or_default()));
    }
    let mut r = headers(Reply { status, headers: Vec::new(), body: Body::Stream { stream, content_type: content_type(rel).into() } })
        .header("Content-Length", length.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        r = r.header("Content-Range", format!("bytes {}-{}/{}", start, (start + length).saturating_sub(1), total));
    }
    Ok(r)
}

/// File List From Task (`recursive` lists the whole task directory).
pub async fn list_from_task(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Reply> {
    let loc = task_location(app, ctx, job_id, task_id).await?;
    list(app, ctx, loc).await
}

/// File Get / Get Properties / Delete From Task.
pub async fn from_task(app: &App, ctx: &Ctx, job_id: &str, task_id: &str, path: &str, method: FileMethod) -> ApiResult<Reply> {
    let loc = task_location(app, ctx, job_id, task_id).await?;
    one(app, loc, ctx, path, method).await
}

/// File List From Compute Node.
pub async fn list_from_node(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Reply> {
    let loc = node_location(app, ctx, pool_id, node_id).await?;
    list(app, ctx, loc).await
}

/// File Get / Get Properties / Delete From Compute Node.
pub async fn from_node(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, path: &str, method: FileMethod) -> ApiResult<Reply> {
    let loc = node_location(app, ctx, pool_id, node_id).await?;
    one(app, loc, ctx, path, method).await
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-3", 10), Some((0, 4)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 10)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 10)));
        assert_eq!(parse_range("bytes=2-100", 10), Some((2, 10)));
        assert_eq!(parse_range("bytes=11-12", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
        assert_eq!(parse_range("bytes=0-1", 0), None);
    }
}
