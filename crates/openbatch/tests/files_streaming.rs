//! Files of any size, safely: Get File streams a 1 GiB file whole and by range in bounded
//! memory (service and agent RSS sampled during the transfer); a stalled 1 GiB transfer does
//! not hold up the node (a task starts, other file requests answer); a named pipe is refused
//! at once; links out of the task directory (plain, and swapped concurrently by the task)
//! never let the file API read, list or delete outside it; 100,000 files list in pages.

mod common;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;

/// A position-sensitive checksum over a byte stream, fed in pieces of any size.
#[derive(Default)]
struct Sum {
    h: u64,
    n: u64,
    word: u64,
    fill: u32,
}

impl Sum {
    fn update(&mut self, data: &[u8]) {
        let mut rest = data;
        while self.fill != 0 && !rest.is_empty() {
            self.push_byte(rest[0]);
            rest = &rest[1..];
        }
        let mut words = rest.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().unwrap()));
        }
        self.n += (rest.len() - words.remainder().len()) as u64;
        for &b in words.remainder() {
            self.push_byte(b);
        }
    }
    fn push_byte(&mut self, b: u8) {
        self.word |= (b as u64) << (8 * self.fill);
        self.fill += 1;
        self.n += 1;
        if self.fill == 8 {
            let w = self.word;
            self.word = 0;
            self.fill = 0;
            self.mix(w);
        }
    }
    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(0x100_0000_01b3).rotate_left(29);
    }
    fn finish(&self) -> (u64, u64) {
        let mut h = self.h;
        if self.fill != 0 {
            h = (h ^ self.word ^ 0xff).wrapping_mul(0x100_0000_01b3);
        }
        (self.n, h)
    }
}

/// Checksum of bytes `[start, end)` of a file on disk.
fn disk_sum(path: &std::path::Path, start: u64, end: u64) -> ((u64, u64), f64) {
    use std::io::{Read, Seek};
    let t = Instant::now();
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(std::io::SeekFrom::Start(start)).unwrap();
    let mut f = f.take(end - start);
    let mut buf = vec![0u8; 1 << 20];
    let mut s = Sum::default();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        s.update(&buf[..n]);
    }
    (s.finish(), t.elapsed().as_secs_f64())
}

/// Resident memory of a process, KiB (0 once it is gone).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The service's child processes (its node agents).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// Samples the peak RSS of the service and of its agents until stopped.
struct RssWatch {
    stop: Arc<AtomicBool>,
    service_peak: Arc<AtomicU64>,
    agent_peak: Arc<AtomicU64>,
}

impl RssWatch {
    fn start(service_pid: u32) -> RssWatch {
        let w = RssWatch { stop: Arc::default(), service_peak: Arc::default(), agent_peak: Arc::default() };
        let (stop, sp, ap) = (w.stop.clone(), w.service_peak.clone(), w.agent_peak.clone());
        let agents = children(service_pid);
        assert!(!agents.is_empty(), "the service has no agent processes");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sp.fetch_max(rss_kib(service_pid), Ordering::Relaxed);
                for a in &agents {
                    ap.fetch_max(rss_kib(*a), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        w
    }
    /// Stops; returns the peaks (service, agent) in MiB.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        (self.service_peak.load(Ordering::Relaxed) / 1024, self.agent_peak.load(Ordering::Relaxed) / 1024)
    }
}

/// A service with one idle node, a job `j`, and the node's id and root directory.
async fn setup() -> (Service, String, PathBuf) {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    let nodes = svc.wait_pool_idle("p", 1, secs(30)).await;
    let node = nodes[0]["id"].as_str().unwrap().to_string();
    svc.add_job("j", "p", json!({})).await;
    let root = svc.dir.path().join("data/nodes/p").join(&node);
    assert!(root.is_dir(), "node root {root:?}");
    (svc, node, root)
}

/// Runs a task `/bin/sh -c <script>` to completion; asserts exit code 0.
async fn run_sh(svc: &Service, task: &str, script: &str) {
    svc.add_task("j", task, &format!("/bin/sh -c {}", shell_quote(script)), json!({})).await;
    let t = svc.wait_task_completed("j", task, secs(60)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A sparse 1 GiB `wd/big.bin` with markers at the start, middle and end (holes read as
/// zeros, so making it is instant, but every byte still crosses the file API).
const MAKE_BIG: &str = "truncate -s 1073741824 big.bin \
    && printf head | dd of=big.bin conv=notrunc status=none \
    && printf middle | dd of=big.bin bs=1 seek=536870912 conv=notrunc status=none \
    && printf tail | dd of=big.bin bs=1 seek=1073741820 conv=notrunc status=none";

/// Reads a streamed answer to the end; returns (bytes, checksum) and the seconds it took.
async fn stream_sum(r: reqwest::Response) -> ((u64, u64), f64) {
    let t = Instant::now();
    let mut s = Sum::default();
    let mut body = r.bytes_stream();
    while let Some(piece) = body.next().await {
        s.update(&piece.expect("the body streams to its end"));
    }
    (s.finish(), t.elapsed().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_file_streams_whole_and_by_range_in_bounded_memory() {
    let (svc, node, root) = setup().await;
    run_sh(&svc, "mk", MAKE_BIG).await;
    let disk = root.join("workitems/j/job-1/mk/wd/big.bin");
    let (whole_disk, disk_secs) = disk_sum(&disk, 0, GIB);
    let path = "/jobs/j/tasks/mk/files/wd%2Fbig.bin";

    let h = svc.head(path).send().await;
    h.expect_status(200);
    assert_eq!(h.header("content-length").as_deref(), Some("1073741824"));

    let watch = RssWatch::start(svc.pid());
    let r = svc.get(path).response().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(GIB));
    let (whole, api_secs) = stream_sum(r).await;
    assert_eq!(whole, whole_disk, "the whole file arrives intact");

    // The second half through the node's files, with ocp-range (200, as the service does).
    let node_path = format!("/pools/p/nodes/{node}/files/workitems%2Fj%2Fjob-1%2Fmk%2Fwd%2Fbig.bin");
    let half = GIB / 2 - 3;
    let r = svc.get(&node_path).header("ocp-range", &format!("bytes={half}-")).response().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(GIB - half));
    let (second, _) = stream_sum(r).await;
    assert_eq!(second, disk_sum(&disk, half, GIB).0, "the ranged half arrives intact");
    let (service_mib, agent_mib) = watch.stop();
    println!(
        "1 GiB: disk {:.0} MiB/s, file API {:.0} MiB/s; peak RSS service {service_mib} MiB, agent {agent_mib} MiB",
        1024.0 / disk_secs,
        1024.0 / api_secs
    );
    assert!(service_mib < 200 && agent_mib < 200, "memory stays bounded: service {service_mib} MiB, agent {agent_mib} MiB");

    // Range: a small piece across the middle marker, 206 with Content-Range.
    let r = svc.get(path).header("Range", "bytes=536870910-536870919").send().await;
    r.expect_status(206);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 536870910-536870919/1073741824"));
    assert_eq!(r.body, b"\0\0middle\0\0");
    let r = svc.get(path).header("ocp-range", "bytes=-4").send().await;
    r.expect_status(200);
    assert_eq!(r.body, b"tail");
    svc.get(path).header("ocp-range", &format!("bytes={GIB}-")).send().await.expect_error(416, "InvalidRange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_large_transfer_does_not_hold_up_the_node() {
    let (svc, _node, _root) = setup().await;
    run_sh(&svc, "mk", MAKE_BIG).await;
    let r = svc.get("/jobs/j/tasks/mk/files/wd%2Fbig.bin").response().await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    // Take a little, then stop reading: the whole pipe (service buffers, TCP, the agent's
    // read-ahead) fills and the agent's upload waits.
    let mut got = 0u64;
    while got < (1 << 20) {
        got += body.next().await.unwrap().unwrap().len() as u64;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    svc.add_task("j", "during", "/bin/sh -c 'echo started during the transfer'", json!({})).await;
    let done = svc.wait_task_completed("j", "during", secs(15)).await;
    assert_eq!(done["executionInfo"]["exitCode"], 0, "{done}");
    assert_eq!(svc.task_file("j", "during", "stdout.txt").await, "started during the transfer\n");
    svc.head("/jobs/j/tasks/mk/files/wd%2Fbig.bin").send().await.expect_status(200);
    let list = svc.get_json("/jobs/j/tasks/mk/files?recursive=true").await;
    assert!(list["value"].as_array().unwrap().iter().any(|f| f["name"] == "wd/big.bin"), "{list}");
    assert!(t.elapsed() < Duration::from_secs(15), "the node answered while the transfer was stalled");
    // The stalled transfer then finishes intact.
    while let Some(piece) = body.next().await {
        got += piece.expect("the body streams to its end").len() as u64;
    }
    assert_eq!(got, GIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_pipe_is_refused_at_once() {
    let (svc, node, _root) = setup().await;
    run_sh(&svc, "t", "mkfifo pipe && echo ok > plain.txt").await;
    for (method, path) in [
        ("GET", "/jobs/j/tasks/t/files/wd%2Fpipe".to_string()),
        ("GET", format!("/pools/p/nodes/{node}/files/workitems%2Fj%2Fjob-1%2Ft%2Fwd%2Fpipe")),
    ] {
        let t = Instant::now();
        let r = svc.get(&path).send().await;
        let v = r.expect_error(409, "UnsupportedFileType");
        assert!(v["message"]["value"].as_str().unwrap().contains("named pipe"), "{method} {v}");
        assert_eq!(r.error_value("FileType").as_deref(), Some("named pipe"));
        assert!(t.elapsed() < Duration::from_secs(2), "refused promptly");
    }
    svc.get("/jobs/j/tasks/t/files/wd%2Fpipe").header("ocp-range", "bytes=0-9").send().await.expect_error(409, "UnsupportedFileType");
    svc.head("/jobs/j/tasks/t/files/wd%2Fpipe").send().await.expect_status(409);
    // The node's file service still works, the pipe is listed, and it can be deleted.
    assert_eq!(svc.task_file("j", "t", "wd/plain.txt").await, "ok\n");
    let list = svc.get_json("/jobs/j/tasks/t/files?recursive=true").await;
    assert!(list["value"].as_array().unwrap().iter().any(|f| f["name"] == "wd/pipe"), "{list}");
    svc.delete("/jobs/j/tasks/t/files/wd%2Fpipe").send().await.expect_status(200);
    svc.get("/jobs/j/tasks/t/files/wd%2Fpipe").send().await.expect_error(404, "FileNotFound");
}

/// A directory outside every node root with a secret and a uniquely named file.
fn outside_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("secret.txt"), "OUTSIDE SECRET").unwrap();
    std::fs::write(d.path().join("outside-only.txt"), "x").unwrap();
    d
}

fn names(list: &Value) -> Vec<String> {
    list["value"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_out_of_the_task_directory_are_not_followed() {
    let (svc, node, root) = setup().await;
    let out = outside_dir();
    let o = out.path().display().to_string();
    run_sh(&svc, "other", "echo other task > mine.txt").await;
    let script = format!(
        "ln -s {o}/secret.txt abs && ln -s ../../../../../../../../../../../../{o}/secret.txt rel && ln -s {o} dir \
         && ln -s ../../other/wd/mine.txt sibling && echo inside > real.txt && ln -s real.txt near && ln -s ../stdout.txt up"
    );
    run_sh(&svc, "t", &script).await;
    for p in ["abs", "rel", "dir%2Fsecret.txt", "sibling"] {
        svc.get(&format!("/jobs/j/tasks/t/files/wd%2F{p}")).send().await.expect_error(404, "FileNotFound");
        svc.head(&format!("/jobs/j/tasks/t/files/wd%2F{p}")).send().await.expect_status(404);
    }
    // The same links seen from the node's root: still outside it, except the sibling's.
    let node_files = format!("/pools/p/nodes/{node}/files/workitems%2Fj%2Fjob-1%2Ft%2Fwd%2F");
    svc.get(&format!("{node_files}abs")).send().await.expect_error(404, "FileNotFound");
    svc.get(&format!("{node_files}dir%2Fsecret.txt")).send().await.expect_error(404, "FileNotFound");
    assert_eq!(svc.get(&format!("{node_files}sibling")).send().await.expect_status(200).text(), "other task\n");
    // Links that stay inside work.
    assert_eq!(svc.task_file("j", "t", "wd/near").await, "inside\n");
    assert!(svc.get("/jobs/j/tasks/t/files/wd%2Fup").send().await.expect_status(200).body.is_empty());
    // Listing shows the links but never walks into the linked directory.
    let list = svc.get_json("/jobs/j/tasks/t/files?recursive=true").await;
    let n = names(&list);
    assert!(n.contains(&"wd/dir".to_string()), "{list}");
    assert!(!n.iter().any(|x| x.contains("outside-only") || x.starts_with("wd/dir/")), "{list}");
    let dir = list["value"].as_array().unwrap().iter().find(|f| f["name"] == "wd/dir").unwrap();
    assert_eq!(dir["isDirectory"], false, "a link is listed as itself: {dir}");
    // Deleting through a link out fails; deleting the link removes only the link.
    svc.delete("/jobs/j/tasks/t/files/wd%2Fdir%2Fsecret.txt").send().await.expect_error(404, "FileNotFound");
    svc.delete("/jobs/j/tasks/t/files/wd%2Fdir?recursive=true").send().await.expect_status(200);
    svc.delete("/jobs/j/tasks/t/files/wd%2Fabs").send().await.expect_status(200);
    assert!(std::fs::symlink_metadata(root.join("workitems/j/job-1/t/wd/dir")).is_err());
    assert_eq!(std::fs::read_to_string(out.path().join("secret.txt")).unwrap(), "OUTSIDE SECRET");
    assert!(out.path().join("outside-only.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_swapping_links_cannot_lead_the_file_api_out() {
    let (svc, node, _root) = setup().await;
    let out = outside_dir();
    let o = out.path().display().to_string();
    // For ~12 s the task flips wd/link (atomically, by rename) between its own directory
    // `inside` and the outside directory, and wd/file between a file inside and the secret.
    let script = format!(
        "mkdir -p inside && echo inside > inside/secret.txt && end=$(($(date +%s)+12)); \
         while [ $(date +%s) -lt $end ]; do \
           ln -sfn inside l.tmp && mv -Tf l.tmp link; ln -sfn inside/secret.txt f.tmp && mv -Tf f.tmp file; \
           ln -sfn {o} l.tmp && mv -Tf l.tmp link; ln -sfn {o}/secret.txt f.tmp && mv -Tf f.tmp file; \
           [ -f inside/secret.txt ] || echo inside > inside/secret.txt; \
         done"
    );
    svc.add_task("j", "t", &format!("/bin/sh -c {}", shell_quote(&script)), json!({})).await;
    svc.wait_task_state("j", "t", "running", secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let node_link = format!("/pools/p/nodes/{node}/files/workitems%2Fj%2Fjob-1%2Ft%2Fwd%2Flink%2Fsecret.txt");
    let (mut inside_reads, mut refused) = (0, 0);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        for path in ["/jobs/j/tasks/t/files/wd%2Flink%2Fsecret.txt", "/jobs/j/tasks/t/files/wd%2Ffile", node_link.as_str()] {
            let r = svc.get(path).send().await;
            match r.status.as_u16() {
                200 => {
                    assert_eq!(r.text(), "inside\n", "{path} read outside its directory");
                    inside_reads += 1;
                }
                404 => refused += 1,
                _ => panic!("unexpected answer: {r:?}"),
            }
        }
        let list = svc.get_json("/jobs/j/tasks/t/files?recursive=true").await;
        assert!(!names(&list).iter().any(|x| x.contains("outside-only")), "listing followed a link out: {list}");
        let r = svc.delete("/jobs/j/tasks/t/files/wd%2Flink%2Fsecret.txt").send().await;
        assert!(matches!(r.status.as_u16(), 200 | 404), "{r:?}");
        assert_eq!(std::fs::read_to_string(out.path().join("secret.txt")).unwrap(), "OUTSIDE SECRET", "deleted outside");
    }
    println!("symlink race: {inside_reads} reads inside, {refused} refused");
    assert!(inside_reads > 0 && refused > 0, "both link targets were seen ({inside_reads} inside, {refused} refused)");
    assert!(out.path().join("outside-only.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_100_000_files_pages_with_maxresults() {
    let (svc, _node, _root) = setup().await;
    run_sh(&svc, "t", "mkdir many && cd many && seq -w 1 100000 | xargs touch").await;
    let t = Instant::now();
    let mut next = Some(format!("{}/jobs/j/tasks/t/files?recursive=true&maxresults=1000&api-version={API_VERSION}", svc.base));
    let (mut all, mut pages, mut biggest) = (Vec::new(), 0, 0);
    while let Some(url) = next.take() {
        let r = svc.req_url(reqwest::Method::GET, &url).send().await;
        r.expect_status(200);
        biggest = biggest.max(r.body.len());
        let v = r.json();
        let page = names(&v);
        assert!(page.len() <= 1000);
        all.extend(page);
        pages += 1;
        next = v["odata.nextLink"].as_str().map(str::to_string);
    }
    let many: Vec<&String> = all.iter().filter(|n| n.starts_with("wd/many/")).collect();
    assert_eq!(many.len(), 100_000);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len(), "no name twice");
    assert!(all.contains(&"stdout.txt".to_string()) && all.contains(&"wd/many/100000".to_string()));
    assert!(pages >= 100, "{pages} pages");
    println!("100,000 files: {pages} pages in {:.1} s, largest page {biggest} bytes", t.elapsed().as_secs_f64());
    assert!(biggest < 1 << 20, "pages stay small: {biggest} bytes");
    // A non-recursive listing of the task directory needs no second page.
    let v = svc.get_json("/jobs/j/tasks/t/files?maxresults=5").await;
    assert!(v["odata.nextLink"].is_null(), "the task directory itself has few entries: {v}");
}
