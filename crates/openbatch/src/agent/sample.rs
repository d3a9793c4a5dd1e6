//! Measuring what a compute node uses, for its pool's statistics: the agent takes a
//! [`NodeSample`] every [`SAMPLE_PERIOD`] (and one when it starts).
//!
//! A node's processes are the agent itself and every process group it started (each
//! execution runs in its own group, led by a child of the agent). Counters are cumulative and
//! a sample reports how much they grew since the previous one:
//!
//! * CPU time and block I/O of the agent (`getrusage(RUSAGE_SELF)`), of the executions it has
//!   reaped with everything they waited for (`RUSAGE_CHILDREN`), and of the processes still
//!   alive in its executions' groups (`/proc/<pid>/stat` user, system and waited-for children's
//!   times; `/proc/<pid>/io` `read_bytes`/`write_bytes`). The rusage counters are read first,
//!   so a process reaped meanwhile is missed once and counted by the next sample, never twice.
//!   A counter that shrank (a process left without being reaped by the agent) counts as 0.
//! * Memory: the resident set sizes of those processes at the sample, added up.
//! * Disk: the space the node's root directory takes (allocated blocks, links not followed).
//! * Cores: the CPUs the agent may run on (`sched_getaffinity`, cgroup CPU limits).
//!
//! Network traffic is not measured: nodes on one machine share its network stack, and Linux
//! keeps no per-process network counters.

use super::protocol::NodeSample;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often an agent samples its node.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(5);

/// Cumulative counters of the node's processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    cpu_ms: u64,
    read_bytes: u64,
    write_bytes: u64,
}

/// Takes a node's samples; keeps the counters of the previous one.
#[derive(Debug)]
pub struct Sampler {
    root: PathBuf,
    last_at: Instant,
    prev: Totals,
}

impl Sampler {
    /// A sampler of the node rooted at `root`, counting from now.
    pub fn new(root: &Path) -> Self {
        Sampler { root: root.to_path_buf(), last_at: Instant::now(), prev: Totals::default() }
    }

    /// Measures the node now (blocking: it reads `/proc` and walks the node directory).
    pub fn sample(&mut self) -> NodeSample {
        let now = Instant::now();
        let (totals, memory_bytes) = measure();
        let sample = NodeSample {
            interval_ms: now.duration_since(self.last_at).as_millis() as u64,
            cores: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            cpu_ms: totals.cpu_ms.saturating_sub(self.prev.cpu_ms),
            read_bytes: totals.read_bytes.saturating_sub(self.prev.read_bytes),
            write_bytes: totals.write_bytes.saturating_sub(self.prev.write_bytes),
            memory_bytes,
            disk_bytes: disk_usage(&self.root),
        };
        self.last_at = now;
        self.prev = totals;
        sample
    }
}

/// The node's cumulative counters and its resident memory now.
fn measure() -> (Totals, u64) {
    let mut t = Totals::default();
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: rusage is plain data that getrusage fills.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid `who` and a pointer to our own struct.
        if unsafe { libc::getrusage(who, &mut ru) } == 0 {
            let ms = |tv: libc::timeval| (tv.tv_sec as u64) * 1000 + (tv.tv_usec as u64) / 1000;
            t.cpu_ms += ms(ru.ru_utime) + ms(ru.ru_stime);
            t.read_bytes += ru.ru_inblock as u64 * 512;
            t.write_bytes += ru.ru_oublock as u64 * 512;
        }
    }
    // SAFETY: sysconf and getpid have no preconditions.
    let (tick, page, me) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE), libc::getpid()) };
    let (tick, page) = (tick.max(1) as u64, page.max(1) as u64);
    let procs = processes();
    // Executions are children of the agent, each leading its own process group.
    let groups: HashSet<i32> = procs.iter().filter(|p| p.ppid == me).map(|p| p.pgrp).collect();
    let mut memory = procs.iter().find(|p| p.pid == me).map(|p| p.rss_pages * page).unwrap_or(0);
    for p in procs.iter().filter(|p| groups.contains(&p.pgrp) && p.pid != me) {
        t.cpu_ms += p.ticks * 1000 / tick;
        memory += p.rss_pages * page;
        let (r, w) = process_io(p.pid);
        t.read_bytes += r;
        t.write_bytes += w;
    }
    (t, memory)
}

/// One process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    /// utime + stime + cutime + cstime, clock ticks.
    ticks: u64,
    rss_pages: u64,
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| parse_stat(pid, &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .collect()
}

/// Reads a `/proc/<pid>/stat` line (the command name may hold spaces and parentheses, so
/// fields are counted after the last `)`).
fn parse_stat(pid: i32, line: &str) -> Option<Proc> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
    // After the name: state(0) ppid(1) pgrp(2) … utime(11) stime(12) cutime(13) cstime(14) … rss(21).
    let ticks = [11, 12, 13, 14].iter().map(|i| num(*i).unwrap_or(0).max(0) as u64).sum();
    Some(Proc { pid, ppid: num(1)? as i32, pgrp: num(2)? as i32, ticks, rss_pages: num(21).unwrap_or(0).max(0) as u64 })
}

/// Bytes a process read from and wrote to storage (`/proc/<pid>/io`); 0 when unreadable.
fn process_io(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    parse_io(&text)
}

fn parse_io(text: &str) -> (u64, u64) {
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok()).unwrap_or(0);
    (field("read_bytes:"), field("write_bytes:"))
}

/// Space the files and directories under `root` take on disk (allocated 512-byte blocks),
/// without following links.
pub fn disk_usage(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total = total.saturating_add(m.blocks() * 512);
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_after_the_command_name() {
        let line =
            "4242 (a (weird) name) S 100 4242 4242 0 -1 4194560 120 0 0 0 150 25 7 3 20 0 1 0 9000 10485760 321 18446744073709551615";
        let p = parse_stat(4242, line).unwrap();
        assert_eq!((p.pid, p.ppid, p.pgrp, p.ticks, p.rss_pages), (4242, 100, 4242, 185, 321));
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn io_counters_are_read_by_name() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), (4096, 8192));
        assert_eq!(parse_io(""), (0, 0));
    }

    #[test]
    fn a_sample_sees_the_work_of_a_finished_child_and_the_node_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), vec![7u8; 64 * 1024]).unwrap();
        let mut s = Sampler::new(dir.path());
        // A child that burns CPU, reaped by this process: RUSAGE_CHILDREN counts it.
        let status =
            std::process::Command::new("/bin/sh").args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]).status().unwrap();
        assert!(status.success());
        let a = s.sample();
        assert!(a.cpu_ms > 0, "{a:?}");
        assert!(a.cores >= 1 && a.memory_bytes > 0, "{a:?}");
        assert!(a.disk_bytes >= 64 * 1024, "{a:?}");
    }
}
