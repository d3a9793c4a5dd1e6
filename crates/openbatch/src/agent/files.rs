//! File operations on a node root, confined to it: paths are relative, `..` and absolute
//! paths are refused, and symbolic links that lead outside the root are not followed.

use super::protocol::{FileEntry, FileOp, FileReply};
use base64::Engine;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Largest read answered in one request (bytes); callers page with ranges beyond it.
pub const MAX_READ: u64 = 256 * 1024 * 1024;

/// Resolves `rel` under `root`, refusing anything that would leave it.
pub fn resolve(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut out = root.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    // Symlinks: the real path must stay under the real root.
    if let (Ok(real), Ok(real_root)) = (out.canonicalize(), root.canonicalize()) {
        if !real.starts_with(&real_root) {
            return None;
        }
    }
    Some(out)
}

fn entry(name: String, meta: &std::fs::Metadata) -> FileEntry {
    FileEntry {
        name,
        is_directory: meta.is_dir(),
        size: if meta.is_dir() { 0 } else { meta.len() },
        modified_ms: meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000,
        created_ms: meta.ctime() * 1000 + meta.ctime_nsec() / 1_000_000,
        mode: meta.permissions().mode(),
    }
}

fn walk(dir: &Path, prefix: &str, recursive: bool, out: &mut Vec<FileEntry>) -> std::io::Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    items.sort_by_key(|e| e.file_name());
    for item in items {
        let name = item.file_name().to_string_lossy().into_owned();
        let full = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let Ok(meta) = item.metadata() else { continue };
        out.push(entry(full.clone(), &meta));
        if recursive && meta.is_dir() {
            walk(&item.path(), &full, true, out)?;
        }
    }
    Ok(())
}

/// Carries out a file operation under `root`.
pub fn handle(root: &Path, op: &FileOp) -> FileReply {
    let path = match op {
        FileOp::List { path, .. } | FileOp::Stat { path } | FileOp::Read { path, .. } | FileOp::Delete { path, .. } => path,
    };
    let Some(full) = resolve(root, path) else { return FileReply::NotFound };
    let meta = match std::fs::metadata(&full) {
        Ok(m) => m,
        Err(_) => return FileReply::NotFound,
    };
    let result: std::io::Result<FileReply> = (|| match op {
        FileOp::List { recursive, .. } => {
            if !meta.is_dir() {
                return Ok(FileReply::NotFound);
            }
            let mut entries = Vec::new();
            walk(&full, "", *recursive, &mut entries)?;
            Ok(FileReply::Entries { entries })
        }
        FileOp::Stat { path } => Ok(FileReply::Entry { entry: entry(path.clone(), &meta) }),
        FileOp::Read { start, end, .. } => {
            if meta.is_dir() {
                return Ok(FileReply::IsDirectory);
            }
            let total = meta.len();
            let start = (*start).min(total);
            let end = end.unwrap_or(total).min(total).max(start);
            let len = (end - start).min(MAX_READ);
            let mut f = std::fs::File::open(&full)?;
            f.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::with_capacity(len as usize);
            f.take(len).read_to_end(&mut buf)?;
            Ok(FileReply::Data { data: base64::engine::general_purpose::STANDARD.encode(&buf), total_size: total })
        }
        FileOp::Delete { recursive, .. } => {
            if meta.is_dir() {
                if !*recursive {
                    return Ok(FileReply::IsDirectory);
                }
                std::fs::remove_dir_all(&full)?;
            } else {
                std::fs::remove_file(&full)?;
            }
            Ok(FileReply::Deleted)
        }
    })();
    result.unwrap_or_else(|e| FileReply::Error { message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.txt"), b"hello").unwrap();
        assert!(resolve(root, "../etc/passwd").is_none());
        assert!(resolve(root, "a/../../x").is_none());
        assert_eq!(resolve(root, "/a/b/f.txt").unwrap(), root.join("a/b/f.txt"));
        std::os::unix::fs::symlink("/etc", root.join("a/link")).unwrap();
        assert!(resolve(root, "a/link/passwd").is_none());
        assert_eq!(handle(root, &FileOp::Stat { path: "a/link/passwd".into() }), FileReply::NotFound);
    }

    #[test]
    fn list_read_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("t/wd")).unwrap();
        std::fs::write(root.join("t/stdout.txt"), b"0123456789").unwrap();
        let FileReply::Entries { entries } = handle(root, &FileOp::List { path: "t".into(), recursive: true }) else { panic!() };
        let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.is_directory)).collect();
        assert_eq!(names, vec![("stdout.txt", false), ("wd", true)]);
        let FileReply::Data { data, total_size } = handle(root, &FileOp::Read { path: "t/stdout.txt".into(), start: 2, end: Some(5) })
        else {
            panic!()
        };
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(data).unwrap(), b"234");
        assert_eq!(total_size, 10);
        assert_eq!(handle(root, &FileOp::Read { path: "t/wd".into(), start: 0, end: None }), FileReply::IsDirectory);
        assert_eq!(handle(root, &FileOp::Delete { path: "t/stdout.txt".into(), recursive: false }), FileReply::Deleted);
        assert_eq!(handle(root, &FileOp::Stat { path: "t/stdout.txt".into() }), FileReply::NotFound);
    }
}
