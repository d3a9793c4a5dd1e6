//! File operations on tasks and compute nodes: List, Get (with `ocp-range` or `Range`),
//! Get Properties (HEAD) and Delete. Files live on the node; the node's agent serves them
//! under its root, so a path never leaves the task or node directory.

use super::{list_reply, page_params};
use crate::agent::protocol::{FileEntry, FileOp, FileReply};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{Body, Reply};
use crate::api::router::FileMethod;
use crate::api::{App, Ctx};
use crate::model::time::{format_http_date, format_timestamp};
use crate::scheduler::hub::HubError;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::time::Duration;

const FILE_TIMEOUT: Duration = Duration::from_secs(30);

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
    dir: String,
    url: String,
}

async fn task_location(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Location> {
    let t = super::tasks::load(app, job_id, task_id).await?;
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

fn join(dir: &str, rel: &str) -> String {
    let rel = rel.trim_matches('/');
    if dir.is_empty() {
        rel.to_string()
    } else if rel.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

async fn ask(app: &App, node_id: &str, op: FileOp) -> ApiResult<FileReply> {
    match app.driver.hub.file(node_id, op, FILE_TIMEOUT).await {
        Ok(FileReply::Error { message }) => Err(BatchError::internal(message)),
        Ok(r) => Ok(r),
        Err(HubError::NodeUnavailable) => {
            Err(BatchError::conflict("NodeNotReady", "The compute node that holds the file is not reachable now."))
        }
        Err(HubError::Timeout) => Err(BatchError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OperationTimedOut",
            "The compute node did not answer the file request in time.",
        )),
    }
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
    let (max, after) = page_params(ctx)?;
    let filter = super::filter_for(ctx, crate::odata::ListKind::Files)?;
    let entries = match ask(app, &loc.node_id, FileOp::List { path: loc.dir.clone(), recursive }).await? {
        FileReply::Entries { entries } => entries,
        _ => Vec::new(),
    };
    let page: Vec<(String, Value)> = entries
        .iter()
        .filter(|e| after.as_deref().is_none_or(|a| e.name.as_str() > a))
        .map(|e| (e.name.clone(), entry_json(&loc.url, e)))
        .filter(|(_, v)| filter.as_ref().is_none_or(|f| crate::odata::eval(f, v)))
        .take(max as usize)
        .collect();
    let last = (page.len() == max as usize).then(|| page.last().map(|(name, _)| name.clone())).flatten();
    let items = page.into_iter().map(|(_, v)| ctx.view("NodeFile", v)).collect();
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
    let path = join(&loc.dir, rel);
    if method == FileMethod::Delete {
        let recursive = ctx.q("recursive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        return match ask(app, &loc.node_id, FileOp::Delete { path, recursive }).await? {
            FileReply::Deleted => Ok(Reply::empty(StatusCode::OK)),
            FileReply::IsDirectory => {
                Err(BatchError::conflict("DirectoryNotEmpty", "The path names a directory; delete it with recursive=true."))
            }
            _ => Err(BatchError::not_found(ResourceKind::File)),
        };
    }
    let entry = match ask(app, &loc.node_id, FileOp::Stat { path: path.clone() }).await? {
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
    let (start, end, status) = match range {
        None => (0, None, status),
        Some(r) => match parse_range(r, entry.size) {
            Some((s, e)) => (s, Some(e), status),
            None => {
                return Err(BatchError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The range specified is invalid for the current size of the resource.",
                )
                .with("Range", r));
            }
        },
    };
    let (data, total) = match ask(app, &loc.node_id, FileOp::Read { path, start, end }).await? {
        FileReply::Data { data, total_size } => {
            (base64::engine::general_purpose::STANDARD.decode(data).map_err(BatchError::internal)?, total_size)
        }
        _ => return Err(BatchError::not_found(ResourceKind::File)),
    };
    let len = data.len() as u64;
    let mut r = headers(Reply { status, headers: Vec::new(), body: Body::Bytes { data, content_type: content_type(rel).into() } });
    if status == StatusCode::PARTIAL_CONTENT {
        r = r.header("Content-Range", format!("bytes {}-{}/{}", start, (start + len).saturating_sub(1), total));
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
