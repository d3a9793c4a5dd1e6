//! Race-free file access below a directory, for the node's file service.
//!
//! Every path is resolved by the kernel relative to an open directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: a symbolic link is followed only while
//! it stays below that directory, absolute links and `..` out of it fail (`EXDEV`), and since
//! the kernel checks each step while it walks, a task that swaps links concurrently cannot
//! make a lookup leave the directory. Where `openat2` is missing (Linux < 5.6, or a seccomp
//! filter refusing it) the same calls walk the path one component at a time with
//! `O_NOFOLLOW`, refusing every symbolic link on the way.
//!
//! Nothing here opens a file for reading before `fstat` on an `O_PATH` descriptor has shown
//! it is a regular file (or a directory), so a named pipe, socket or device is never opened.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, Ordering};

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// Set once `openat2` turned out to be unavailable; then the component walk is used.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// How symbolic links met while resolving a path are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Followed while they resolve below the starting directory (relative links only).
    Beneath,
    /// Never followed: any link on the path fails the lookup.
    Never,
}

/// Splits a relative request path into its components: leading/trailing `/` and `.` are
/// ignored; `None` for `..` or a NUL byte (such paths are refused, not resolved).
pub fn components(rel: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c if c.contains('\0') => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens an absolute or working-directory-relative path as an `O_PATH` directory handle.
pub fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated string; the returned descriptor is owned below.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; `dir` is a descriptor the caller keeps open.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) })?;
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat2(dir: RawFd, path: &CStr, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    // openat2 refuses (EINVAL) any flag but O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC with O_PATH.
    let extra = if flags & libc::O_PATH != 0 { libc::O_CLOEXEC } else { libc::O_CLOEXEC | libc::O_NOCTTY };
    let how = OpenHow { flags: (flags | extra) as u64, mode: 0, resolve };
    let mut tries = 0;
    loop {
        // SAFETY: openat2 with a valid path, a valid `open_how` and its size.
        let r = unsafe { libc::syscall(libc::SYS_openat2, dir, path.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>()) };
        if r >= 0 {
            // SAFETY: a fresh descriptor owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename raced the `..` check; the kernel asks to retry.
        if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) && tries < 16 {
            tries += 1;
            continue;
        }
        return Err(e);
    }
}

/// Opens `comps` (from [`components`]) below `dir` with open(2) `flags`. The result is never
/// outside `dir`; a lookup that would leave it fails with `EXDEV` (or `ELOOP` on the fallback
/// walk). With no components, opens `dir` itself again with `flags`.
pub fn open_beneath(dir: &OwnedFd, comps: &[&str], flags: libc::c_int, links: Links) -> io::Result<OwnedFd> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let joined = if comps.is_empty() { ".".to_string() } else { comps.join("/") };
        let resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | if links == Links::Never { RESOLVE_NO_SYMLINKS } else { 0 };
        match openat2(dir.as_raw_fd(), &cstring(joined.as_bytes())?, flags, resolve) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                tracing::info!("openat2 unavailable ({e}); resolving file paths component by component");
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    walk(dir, comps, flags)
}

/// The fallback: one component at a time, `O_NOFOLLOW` everywhere, links refused.
fn walk(dir: &OwnedFd, comps: &[&str], flags: libc::c_int) -> io::Result<OwnedFd> {
    let mut cur = openat(dir.as_raw_fd(), c".", libc::O_PATH | libc::O_DIRECTORY)?;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let name = cstring(c.as_bytes())?;
        // O_PATH first, so nothing is opened for real before it is known not to be a link.
        let step = openat(cur.as_raw_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW)?;
        let st = fstat(&step)?;
        if is_type(&st, libc::S_IFLNK) {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        if !last && !is_type(&st, libc::S_IFDIR) {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        cur = step;
    }
    if flags & libc::O_PATH != 0 && flags & libc::O_DIRECTORY == 0 {
        return Ok(cur);
    }
    openat(cur.as_raw_fd(), c".", flags).or_else(|e| {
        // "." only works on directories; reopen a file through its O_PATH handle.
        if e.raw_os_error() == Some(libc::ENOTDIR) && flags & libc::O_DIRECTORY == 0 {
            reopen(&cur, flags)
        } else {
            Err(e)
        }
    })
}

/// `fstat(2)`.
pub fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and out pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `fstatat(2)` of `name` in `dir` without following a final symbolic link.
pub fn lstat_at(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let c = cstring(name.as_bytes())?;
    // SAFETY: see `fstat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated name and out pointer.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// True when `st` is of the file type `kind` (`S_IFREG`, `S_IFDIR`, …).
pub fn is_type(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Words for a file type that is neither a regular file nor a directory (for errors).
pub fn type_name(st: &libc::stat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => "named pipe",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFLNK => "symbolic link",
        libc::S_IFDIR => "directory",
        libc::S_IFREG => "regular file",
        _ => "special file",
    }
}

/// Opens for reading the very file an `O_PATH` handle names (through `/proc/self/fd`, which
/// names the open inode, not a path), refusing anything but a regular file. Falls back to
/// nothing else: without `/proc` the caller gets the error.
fn reopen(opath: &OwnedFd, flags: libc::c_int) -> io::Result<OwnedFd> {
    let proc = cstring(format!("/proc/self/fd/{}", opath.as_raw_fd()).as_bytes())?;
    openat(libc::AT_FDCWD, &proc, flags)
}

/// Opens a regular file for reading whose `O_PATH` handle `opath` was already checked with
/// [`fstat`] (`st`). `O_NONBLOCK` keeps even a swapped-in pipe from blocking, and the opened
/// file must be the same inode, still a regular file; otherwise `EINVAL`.
pub fn open_checked_for_read(opath: &OwnedFd, st: &libc::stat) -> io::Result<File> {
    let fd = reopen(opath, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let now = fstat(&fd)?;
    if !is_type(&now, libc::S_IFREG) || now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(File::from(fd))
}

/// The names in a directory (without `.` and `..`), unsorted.
pub fn read_names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    // A fresh descriptor: its own read position, and readable even when `dir` is O_PATH.
    let fd = openat(dir.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY)?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` is an open directory descriptor; fdopendir takes ownership of it.
    let dp = unsafe { libc::fdopendir(raw) };
    if dp.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut out = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; cleared to tell the end of the stream from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dp` is a valid DIR* until closedir below.
        let ent = unsafe { libc::readdir(dp) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error().unwrap_or(0) == 0 { Ok(()) } else { Err(e) };
        }
        // SAFETY: d_name is a NUL-terminated array inside the entry readdir returned.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            out.push(OsString::from_vec(name.to_vec()));
        }
    };
    // SAFETY: `dp` came from fdopendir and is closed once.
    unsafe { libc::closedir(dp) };
    result.map(|_| out)
}

/// Opens the subdirectory `name` of `dir` without following a link (`ELOOP`/`ENOTDIR` when
/// `name` is not, or is no longer, a real directory).
pub fn open_subdir(dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    openat(dir.as_raw_fd(), &cstring(name.as_bytes())?, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
}

fn unlink_at(dir: &OwnedFd, name: &OsStr, flags: libc::c_int) -> io::Result<()> {
    let c = cstring(name.as_bytes())?;
    // SAFETY: valid descriptor and NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(|_| ())
}

/// Removes `name` from `dir`: a file or link is unlinked (a link, never what it points to);
/// a directory is emptied through descriptors opened with `O_NOFOLLOW`, so a directory
/// swapped for a link during the walk only loses the link.
pub fn remove_tree(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let st = lstat_at(dir, name)?;
    if !is_type(&st, libc::S_IFDIR) {
        return unlink_at(dir, name, 0);
    }
    match open_subdir(dir, name) {
        Ok(child) => {
            for n in read_names(&child)? {
                match remove_tree(&child, &n) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    other => other?,
                }
            }
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => return unlink_at(dir, name, 0),
        Err(e) => return Err(e),
    }
    unlink_at(dir, name, libc::AT_REMOVEDIR)
}

/// Removes the file or link `name` from `dir` (never a directory).
pub fn remove_file(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    unlink_at(dir, name, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_beneath_and_refuses_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f"), b"x").unwrap();
        std::fs::write(dir.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("f", root.join("a/in")).unwrap();
        let fd = open_dir_path(&root).unwrap();
        assert!(open_beneath(&fd, &["a", "f"], libc::O_PATH, Links::Beneath).is_ok());
        assert!(open_beneath(&fd, &["a", "in"], libc::O_PATH, Links::Beneath).is_ok());
        assert!(open_beneath(&fd, &["a", "in"], libc::O_PATH, Links::Never).is_err());
        assert!(open_beneath(&fd, &["a", "up"], libc::O_PATH, Links::Beneath).is_err());
        assert!(components("a/../b").is_none());
        assert_eq!(components("/a//./b/").unwrap(), vec!["a", "b"]);
        let fifo = cstring(root.join("a/p").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let p = open_beneath(&fd, &["a", "p"], libc::O_PATH, Links::Beneath).unwrap();
        let st = fstat(&p).unwrap();
        assert_eq!(type_name(&st), "named pipe");
        assert!(open_checked_for_read(&p, &st).is_err());
        let mut names = read_names(&open_beneath(&fd, &["a"], libc::O_PATH | libc::O_DIRECTORY, Links::Beneath).unwrap()).unwrap();
        names.sort();
        assert_eq!(names, ["f", "in", "p", "up"]);
        // The fallback walk: no links at all, pipes still not opened.
        assert!(walk(&fd, &["a", "f"], libc::O_PATH).is_ok());
        assert!(walk(&fd, &["a"], libc::O_PATH | libc::O_DIRECTORY).is_ok());
        assert_eq!(walk(&fd, &["a", "in"], libc::O_PATH).unwrap_err().raw_os_error(), Some(libc::ELOOP));
        assert!(walk(&fd, &["a", "up"], libc::O_PATH).is_err());
        assert!(walk(&fd, &["a", "f", "x"], libc::O_PATH).is_err());
        remove_tree(&fd, OsStr::new("a")).unwrap();
        assert!(!root.join("a").exists());
        assert_eq!(std::fs::read(dir.path().join("outside")).unwrap(), b"secret");
    }
}
