//! The node's file service: list, stat, read and delete under the node root, each confined
//! to the directory the request names (a task directory or the node root) by
//! [`safefs`](super::safefs): `..` is refused, links are followed only while they stay below
//! that directory, and listings and deletes never follow links at all. Named pipes, sockets
//! and devices are reported, never opened.
//!
//! Reads do not travel the control WebSocket: the agent opens the file, answers
//! [`FileReply::Opened`], and streams the bytes as the body of its own HTTP request to the
//! service (`POST /agent/v1/files/<request id>`, authenticated by the one-time stream key
//! the service sent with the request) in [`CHUNK`]-sized pieces with at most
//! [`CHUNKS_IN_FLIGHT`] read ahead, so a transfer of any size holds a bounded amount of
//! memory, TCP flow control paces it to the downloading client, and the node's control
//! connection (task starts, other file requests) is never behind it.

use super::protocol::{FileEntry, FileOp, FileReply};
use super::safefs::{self, Links};
use bytes::Bytes;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Bytes read from disk per piece of a streamed read.
pub const CHUNK: usize = 256 * 1024;
/// Pieces read ahead of the network per streamed read (memory bound: `CHUNK` × this).
pub const CHUNKS_IN_FLIGHT: usize = 4;

/// What the agent does with a file request: an answer, and for a read the open file to
/// stream after answering.
pub enum Outcome {
    Reply(FileReply),
    Stream { reply: FileReply, file: File, start: u64, length: u64 },
}

fn entry(name: String, st: &libc::stat) -> FileEntry {
    let is_directory = safefs::is_type(st, libc::S_IFDIR);
    FileEntry {
        name,
        is_directory,
        size: if is_directory { 0 } else { st.st_size.max(0) as u64 },
        modified_ms: st.st_mtime * 1000 + st.st_mtime_nsec / 1_000_000,
        created_ms: st.st_ctime * 1000 + st.st_ctime_nsec / 1_000_000,
        mode: st.st_mode,
    }
}

fn not_found_or(e: io::Error) -> FileReply {
    match e.raw_os_error() {
        // Missing, a non-directory on the way, a link out of the root (EXDEV), a link loop or
        // a link refused by the fallback walk (ELOOP): all read as "no such file here".
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::EXDEV) | Some(libc::ELOOP) | Some(libc::ENAMETOOLONG) => FileReply::NotFound,
        _ => FileReply::Error { message: e.to_string() },
    }
}

/// Opens the directory a request is confined to (`root`, relative to the node root, with no
/// links at all on the way).
fn open_root(node_root: &Path, root: &str) -> io::Result<OwnedFd> {
    let node = safefs::open_dir_path(node_root)?;
    let comps = safefs::components(root).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    safefs::open_beneath(&node, &comps, libc::O_PATH | libc::O_DIRECTORY, Links::Never)
}

/// Carries out a file operation under `node_root` (blocking: run it off the async threads).
/// Never blocks on a pipe or device, and never opens one.
pub fn handle(node_root: &Path, op: &FileOp) -> Outcome {
    let (root, path) = match op {
        FileOp::List { root, path, .. }
        | FileOp::Stat { root, path }
        | FileOp::Read { root, path, .. }
        | FileOp::Delete { root, path, .. } => (root, path),
    };
    let Some(comps) = safefs::components(path) else { return Outcome::Reply(FileReply::NotFound) };
    let base = match open_root(node_root, root) {
        Ok(b) => b,
        Err(e) => return Outcome::Reply(not_found_or(e)),
    };
    let result = match op {
        FileOp::List { recursive, after, max, .. } => list(&base, &comps, *recursive, after.as_deref(), *max as usize),
        FileOp::Stat { path, .. } => stat(&base, &comps, path),
        FileOp::Read { start, end, .. } => return read(&base, &comps, *start, *end),
        FileOp::Delete { recursive, .. } => delete(&base, &comps, *recursive),
    };
    Outcome::Reply(result.unwrap_or_else(not_found_or))
}

fn stat(base: &OwnedFd, comps: &[&str], path: &str) -> io::Result<FileReply> {
    let fd = safefs::open_beneath(base, comps, libc::O_PATH, Links::Beneath)?;
    let st = safefs::fstat(&fd)?;
    if !safefs::is_type(&st, libc::S_IFREG) && !safefs::is_type(&st, libc::S_IFDIR) {
        return Ok(FileReply::NotRegular { kind: safefs::type_name(&st).into() });
    }
    Ok(FileReply::Entry { entry: entry(path.to_string(), &st) })
}

fn read(base: &OwnedFd, comps: &[&str], start: u64, end: Option<u64>) -> Outcome {
    let opened = (|| -> io::Result<Outcome> {
        let fd = safefs::open_beneath(base, comps, libc::O_PATH, Links::Beneath)?;
        let st = safefs::fstat(&fd)?;
        if safefs::is_type(&st, libc::S_IFDIR) {
            return Ok(Outcome::Reply(FileReply::IsDirectory));
        }
        if !safefs::is_type(&st, libc::S_IFREG) {
            return Ok(Outcome::Reply(FileReply::NotRegular { kind: safefs::type_name(&st).into() }));
        }
        let file = match safefs::open_checked_for_read(&fd, &st) {
            Ok(f) => f,
            // Swapped for something else between the check and the open.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Ok(Outcome::Reply(FileReply::NotRegular { kind: "special file".into() }))
            }
            Err(e) => return Err(e),
        };
        let total = file.metadata()?.len();
        let start = start.min(total);
        let end = end.unwrap_or(total).min(total).max(start);
        Ok(Outcome::Stream { reply: FileReply::Opened { total_size: total, start, length: end - start }, file, start, length: end - start })
    })();
    opened.unwrap_or_else(|e| Outcome::Reply(not_found_or(e)))
}

/// Compares two relative paths component by component (the walk order of listings).
fn after_components(after: Option<&str>) -> Option<Vec<&[u8]>> {
    after.map(|a| a.split('/').filter(|c| !c.is_empty()).map(str::as_bytes).collect())
}

fn list(base: &OwnedFd, comps: &[&str], recursive: bool, after: Option<&str>, max: usize) -> io::Result<FileReply> {
    let dir = safefs::open_beneath(base, comps, libc::O_PATH | libc::O_DIRECTORY, Links::Beneath)?;
    let after = after_components(after);
    let mut entries = Vec::new();
    let more = walk(&dir, "", recursive, after.as_deref().filter(|a| !a.is_empty()), max.max(1), &mut entries)?;
    Ok(FileReply::Entries { entries, more })
}

/// Appends the entries of `dir` (names prefixed with `prefix`) after the position `after`
/// (remaining components of the last name returned) until `out` holds `max`; true when
/// entries remained. Subdirectories are opened with `O_NOFOLLOW`, so a link to a directory
/// is listed as an entry and never walked into.
fn walk(dir: &OwnedFd, prefix: &str, recursive: bool, after: Option<&[&[u8]]>, max: usize, out: &mut Vec<FileEntry>) -> io::Result<bool> {
    let mut names = safefs::read_names(dir)?;
    names.sort_unstable();
    for name in names {
        let bytes = name.as_bytes();
        let (emit, child_after) = match after {
            None => (true, None),
            Some(a) => match bytes.cmp(a[0]) {
                std::cmp::Ordering::Less => continue,
                // The last entry returned, or a directory on its way: resume inside it.
                std::cmp::Ordering::Equal => (false, Some(&a[1..])),
                std::cmp::Ordering::Greater => (true, None),
            },
        };
        let full = if prefix.is_empty() { name.to_string_lossy().into_owned() } else { format!("{prefix}/{}", name.to_string_lossy()) };
        let mut is_dir = !emit;
        if emit {
            let st = match safefs::lstat_at(dir, &name) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            if out.len() >= max {
                return Ok(true);
            }
            is_dir = safefs::is_type(&st, libc::S_IFDIR);
            out.push(entry(full.clone(), &st));
        }
        if recursive && is_dir {
            let child = match safefs::open_subdir(dir, &name) {
                Ok(c) => c,
                // Gone, or swapped for a link: nothing to walk into.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ELOOP) | Some(libc::ENOTDIR)) => continue,
                Err(e) => return Err(e),
            };
            let child_after = child_after.filter(|a| !a.is_empty());
            if walk(&child, &full, true, child_after, max, out)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn delete(base: &OwnedFd, comps: &[&str], recursive: bool) -> io::Result<FileReply> {
    let Some((last, parents)) = comps.split_last() else { return Ok(FileReply::NotFound) };
    let parent = safefs::open_beneath(base, parents, libc::O_PATH | libc::O_DIRECTORY, Links::Beneath)?;
    let name = OsStr::new(last);
    let st = safefs::lstat_at(&parent, name)?;
    if safefs::is_type(&st, libc::S_IFDIR) {
        if !recursive {
            return Ok(FileReply::IsDirectory);
        }
        safefs::remove_tree(&parent, name)?;
    } else {
        safefs::remove_file(&parent, name)?;
    }
    Ok(FileReply::Deleted)
}

/// Where a node streams file bytes: its HTTP client, the service's base URL and its node id.
#[derive(Clone)]
pub struct Uploader {
    pub client: reqwest::Client,
    pub service_url: String,
    pub node_id: String,
}

impl Uploader {
    /// A client for `service_url` (e.g. `http://127.0.0.1:10400`).
    pub fn new(service_url: &str, node_id: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10)).tcp_nodelay(true).build()?;
        Ok(Uploader { client, service_url: service_url.trim_end_matches('/').to_string(), node_id: node_id.to_string() })
    }
}

/// Answers a file request (the blocking part off the async threads); for a read, also starts
/// streaming the bytes to the service in the background.
pub async fn serve(node_root: PathBuf, request_id: u64, op: FileOp, up: Uploader) -> FileReply {
    let key = match &op {
        FileOp::Read { stream_key, .. } => Some(stream_key.clone()),
        _ => None,
    };
    let outcome = match tokio::task::spawn_blocking(move || handle(&node_root, &op)).await {
        Ok(o) => o,
        Err(e) => return FileReply::Error { message: e.to_string() },
    };
    match outcome {
        Outcome::Reply(r) => r,
        Outcome::Stream { reply, file, start, length } => {
            let key = key.unwrap_or_default();
            tokio::spawn(async move {
                if let Err(e) = upload(&up, request_id, &key, file, start, length).await {
                    tracing::warn!(request_id, error = %e, "file stream to the service ended early");
                }
            });
            reply
        }
    }
}

/// Streams `length` bytes of `file` from `start` to the service as one HTTP request body.
async fn upload(up: &Uploader, request_id: u64, key: &str, file: File, start: u64, length: u64) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let end = start + length;
        let mut off = start;
        while off < end {
            let mut buf = vec![0u8; CHUNK.min((end - off) as usize)];
            let piece = match file.read_at(&mut buf, off) {
                Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was read")),
                Ok(n) => {
                    buf.truncate(n);
                    off += n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = piece.is_err();
            // The service side went away (client gone): stop reading.
            if tx.blocking_send(piece).is_err() || failed {
                break;
            }
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let r = up
        .client
        .post(format!("{}/agent/v1/files/{request_id}", up.service_url))
        .header("x-openbatch-node", &up.node_id)
        .header("x-openbatch-stream-key", key)
        .header("content-length", length.to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "the service answered {}", r.status());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(root: &Path, op: FileOp) -> FileReply {
        match handle(root, &op) {
            Outcome::Reply(r) => r,
            Outcome::Stream { reply, .. } => reply,
        }
    }

    fn list_names(root: &Path, r: &str, after: Option<&str>, max: u32) -> (Vec<String>, bool) {
        let op = FileOp::List { root: r.into(), path: String::new(), recursive: true, after: after.map(str::to_string), max };
        let FileReply::Entries { entries, more } = reply(root, op) else { panic!() };
        (entries.into_iter().map(|e| e.name).collect(), more)
    }

    #[test]
    fn paths_never_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("t/a")).unwrap();
        std::fs::write(root.join("t/a/f.txt"), b"hello").unwrap();
        std::fs::write(root.join("other.txt"), b"node file").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("t/a/link")).unwrap();
        std::os::unix::fs::symlink("../../other.txt", root.join("t/a/up")).unwrap();
        let stat = |r: &str, p: &str| reply(root, FileOp::Stat { root: r.into(), path: p.into() });
        assert_eq!(stat("t", "../other.txt"), FileReply::NotFound);
        assert_eq!(stat("t", "a/link/passwd"), FileReply::NotFound);
        // Inside the node root, but outside the task directory.
        assert_eq!(stat("t", "a/up"), FileReply::NotFound);
        assert!(matches!(stat("", "t/a/up"), FileReply::Entry { .. }));
        assert!(matches!(stat("t", "/a/f.txt"), FileReply::Entry { .. }));
    }

    #[test]
    fn list_pages_read_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("t/wd/a")).unwrap();
        std::fs::write(root.join("t/stdout.txt"), b"0123456789").unwrap();
        std::fs::write(root.join("t/wd/a/x"), b"").unwrap();
        std::fs::write(root.join("t/wd/a-b"), b"").unwrap();
        let (all, more) = list_names(root, "t", None, 100);
        assert_eq!(all, ["stdout.txt", "wd", "wd/a", "wd/a/x", "wd/a-b"]);
        assert!(!more);
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = list_names(root, "t", after.as_deref(), 2);
            after = page.last().cloned();
            paged.extend(page);
            if !more {
                break;
            }
        }
        assert_eq!(paged, all);
        let Outcome::Stream { reply: opened, start, length, .. } =
            handle(root, &FileOp::Read { root: "t".into(), path: "stdout.txt".into(), start: 2, end: Some(5), stream_key: String::new() })
        else {
            panic!()
        };
        assert_eq!((opened, start, length), (FileReply::Opened { total_size: 10, start: 2, length: 3 }, 2, 3));
        let del = |p: &str, recursive| reply(root, FileOp::Delete { root: "t".into(), path: p.into(), recursive });
        assert_eq!(del("wd", false), FileReply::IsDirectory);
        assert_eq!(del("stdout.txt", false), FileReply::Deleted);
        assert_eq!(del("wd", true), FileReply::Deleted);
        assert_eq!(list_names(root, "t", None, 10).0, Vec::<String>::new());
    }
}
