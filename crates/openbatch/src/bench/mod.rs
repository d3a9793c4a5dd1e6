//! `openbatch bench`: task throughput through the HTTP API next to the machine's raw rate for
//! the same work, measured in the same run.
//!
//! * raw: for each task, create a directory and run `/bin/sh -c true` with stdout and stderr
//!   redirected to files in it, with as many at once as the pool has task slots;
//! * openbatch: start `openbatch serve` on a free loopback port with a fresh data directory,
//!   create a pool (`nodes` × `slots` task slots) and a job, add the tasks with Add Task
//!   Collection (100 per request, 4 requests in flight) and wait until Get Task Counts says
//!   all completed. Each task is `/bin/sh -c true` with the usual task directory, `wd/`,
//!   `stdout.txt`, `stderr.txt` and `AZ_BATCH_*` environment.
//!
//! The output is a table: tasks, seconds and tasks per second for both, and the ratio.
//!
//! `openbatch bench --files` measures instead the file API ([`run_files`]): a task writes a
//! file of random bytes (1 GiB by default), then the table compares reading it from disk
//! with Get File through the HTTP API, whole and by `ocp-range`, with the service's peak
//! memory during the transfers; `--resource-url` measures resource file downloads
//! ([`resources`]); `--deps` the scheduler's cost per task in dependency graphs of growing
//! size ([`deps`]).

pub mod deps;
pub mod resources;

use crate::client::Client;
use axum::http::Method;
use serde_json::json;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the benchmark and prints its table.
pub async fn run(tasks: usize, nodes: u32, slots: u32) -> anyhow::Result<()> {
    let concurrency = (nodes * slots).max(1) as usize;
    let dir = tempfile_dir()?;
    let raw = raw_rate(&dir.join("raw"), tasks, concurrency).await?;
    let (svc, startup) = service_rate(&dir.join("svc"), tasks, nodes, slots).await?;
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!("| measure | tasks | seconds | tasks/s |");
    println!("|---|---:|---:|---:|");
    println!("| raw spawn (mkdir + sh -c true, {concurrency} at once) | {tasks} | {:.2} | {:.0} |", raw, tasks as f64 / raw);
    println!("| openbatch via HTTP API ({nodes} nodes × {slots} slots) | {tasks} | {:.2} | {:.0} |", svc, tasks as f64 / svc);
    println!();
    println!("openbatch reaches {:.0}% of the raw rate; pool of {nodes} nodes ready in {:.2} s", 100.0 * raw / svc, startup);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("openbatch-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

async fn raw_rate(dir: &std::path::Path, tasks: usize, concurrency: usize) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let permit = sem.clone().acquire_owned().await?;
        let d = dir.join(format!("t{i}"));
        handles.push(tokio::spawn(async move {
            let _p = permit;
            std::fs::create_dir_all(d.join("wd"))?;
            let out = std::fs::File::create(d.join("stdout.txt"))?;
            let err = std::fs::File::create(d.join("stderr.txt"))?;
            tokio::process::Command::new("/bin/sh")
                .args(["-c", "true"])
                .current_dir(d.join("wd"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .status()
                .await
                .map(|_| ())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Starts `openbatch serve` on a free loopback port with its data in `dir`.
async fn start_service(dir: &std::path::Path) -> anyhow::Result<(tokio::process::Child, Arc<Client>)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let key = crate::serve::DEFAULT_KEY;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env("OPENBATCH_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let client = Arc::new(Client::new(&format!("http://127.0.0.1:{port}"), crate::serve::DEFAULT_ACCOUNT, key)?);
    let ready_by = Instant::now() + Duration::from_secs(20);
    while client.call(Method::GET, "/pools", None).await.is_err() {
        anyhow::ensure!(Instant::now() < ready_by, "the service did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, client))
}

async fn service_rate(dir: &std::path::Path, tasks: usize, nodes: u32, slots: u32) -> anyhow::Result<(f64, f64)> {
    let (mut child, client) = start_service(dir).await?;
    let result = async {
        let t0 = Instant::now();
        let (s, _) = client
            .call(Method::POST, "/pools", Some(&json!({
                "id": "bench", "vmSize": "standard_d2_v3", "targetDedicatedNodes": nodes, "taskSlotsPerNode": slots,
                "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}
            })))
            .await?;
        anyhow::ensure!(s == 201, "pool add answered {s}");
        loop {
            let (_, v) = client.call(Method::GET, "/pools/bench/nodes", None).await?;
            let idle = v["value"].as_array().map(|a| a.iter().filter(|n| n["state"] == "idle").count()).unwrap_or(0);
            if idle == nodes as usize {
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "nodes did not become idle");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let startup = t0.elapsed().as_secs_f64();
        let (s, _) = client.call(Method::POST, "/jobs", Some(&json!({"id": "bench", "poolInfo": {"poolId": "bench"}}))).await?;
        anyhow::ensure!(s == 201, "job add answered {s}");
        let start = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(4));
        let mut handles = Vec::new();
        for chunk_start in (0..tasks).step_by(100) {
            let permit = sem.clone().acquire_owned().await?;
            let c = client.clone();
            let end = (chunk_start + 100).min(tasks);
            handles.push(tokio::spawn(async move {
                let _p = permit;
                let value: Vec<_> = (chunk_start..end).map(|i| json!({"id": format!("t{i}"), "commandLine": "/bin/sh -c true"})).collect();
                let (s, _) = c.call(Method::POST, "/jobs/bench/addtaskcollection", Some(&json!({"value": value}))).await?;
                anyhow::ensure!(s == 200, "add collection answered {s}");
                Ok(())
            }));
        }
        for h in handles {
            h.await??;
        }
        loop {
            let (_, v) = client.call(Method::GET, "/jobs/bench/taskcounts", None).await?;
            let done = v["taskCounts"]["completed"].as_u64().unwrap_or(0) as usize;
            if done >= tasks {
                let failed = v["taskCounts"]["failed"].as_u64().unwrap_or(0);
                anyhow::ensure!(failed == 0, "{failed} tasks failed");
                break;
            }
            anyhow::ensure!(start.elapsed() < Duration::from_secs(600), "tasks did not complete");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok((start.elapsed().as_secs_f64(), startup))
    }
    .await;
    // Stop the service and its node agents (they run in its process group only when started
    // from a shell, so end them through the service's pool delete first).
    let _ = client.call(Method::DELETE, "/pools/bench", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill().await;
    result
}

/// `openbatch bench --files`: file API throughput for a file of `size_mib` MiB next to
/// reading it from disk, printed as a table.
pub async fn run_files(size_mib: u64) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let (mut child, client) = start_service(&dir).await?;
    let service_pid = child.id().unwrap_or(0);
    let result = files_rates(&dir, &client, service_pid, size_mib).await;
    let _ = client.call(Method::DELETE, "/pools/bench", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    let rows = result?;
    let bytes = size_mib << 20;
    println!();
    println!("| measure ({size_mib} MiB file of random bytes) | bytes | seconds | MiB/s |");
    println!("|---|---:|---:|---:|");
    for (name, n, secs) in &rows.rates {
        println!("| {name} | {n} | {secs:.2} | {:.0} |", *n as f64 / (1 << 20) as f64 / secs);
    }
    println!();
    let disk = bytes as f64 / rows.rates[0].2;
    let api = bytes as f64 / rows.rates[1].2;
    println!(
        "the file API reaches {:.0}% of the disk read rate; service peak RSS during the transfers {} MiB",
        100.0 * api / disk,
        rows.peak_rss_mib
    );
    Ok(())
}

struct FileRates {
    rates: Vec<(&'static str, u64, f64)>,
    peak_rss_mib: u64,
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn files_rates(dir: &std::path::Path, client: &Client, service_pid: u32, size_mib: u64) -> anyhow::Result<FileRates> {
    let (s, _) = client
        .call(Method::POST, "/pools", Some(&json!({
            "id": "bench", "vmSize": "standard_d2_v3", "targetDedicatedNodes": 1,
            "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}
        })))
        .await?;
    anyhow::ensure!(s == 201, "pool add answered {s}");
    let t0 = Instant::now();
    let node = loop {
        let (_, v) = client.call(Method::GET, "/pools/bench/nodes", None).await?;
        if let Some(n) = v["value"].as_array().and_then(|a| a.iter().find(|n| n["state"] == "idle")) {
            break n["id"].as_str().unwrap_or_default().to_string();
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "the node did not become idle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (s, _) = client.call(Method::POST, "/jobs", Some(&json!({"id": "bench", "poolInfo": {"poolId": "bench"}}))).await?;
    anyhow::ensure!(s == 201, "job add answered {s}");
    let cmd = format!("/bin/sh -c 'head -c {} /dev/urandom > big.bin'", size_mib << 20);
    let (s, _) = client.call(Method::POST, "/jobs/bench/tasks", Some(&json!({"id": "mk", "commandLine": cmd}))).await?;
    anyhow::ensure!(s == 201, "task add answered {s}");
    loop {
        let (_, t) = client.call(Method::GET, "/jobs/bench/tasks/mk", None).await?;
        if t["state"] == "completed" {
            anyhow::ensure!(t["executionInfo"]["exitCode"] == 0, "the task writing the file failed: {t}");
            break;
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(300), "the task writing the file did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let path = dir.join("nodes/bench").join(&node).join("workitems/bench/job-1/mk/wd/big.bin");
    let disk = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, f64)> {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        let (t, mut n) = (Instant::now(), 0u64);
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        Ok((n, t.elapsed().as_secs_f64()))
    })
    .await??;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(service_pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let file = "/jobs/bench/tasks/mk/files/wd%2Fbig.bin";
    let whole = timed_get(client, file, &[]).await;
    let half = (size_mib << 20) / 2;
    let ranged = timed_get(client, file, &[("ocp-range", format!("bytes={half}-"))]).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    let (whole, ranged) = (whole?, ranged?);
    anyhow::ensure!(whole.0 == disk.0 && ranged.0 == disk.0 - half, "the file API returned {} and {} bytes", whole.0, ranged.0);
    Ok(FileRates {
        rates: vec![
            ("read from disk (page cache, 1 MiB reads)", disk.0, disk.1),
            ("Get File via the HTTP API, whole", whole.0, whole.1),
            ("Get File via the HTTP API, ocp-range second half", ranged.0, ranged.1),
        ],
        peak_rss_mib: peak.load(std::sync::atomic::Ordering::Relaxed) / 1024,
    })
}

/// Streams one Get File answer to its end; returns (bytes, seconds).
async fn timed_get(client: &Client, path: &str, extra: &[(&'static str, String)]) -> anyhow::Result<(u64, f64)> {
    use futures::StreamExt;
    let t = Instant::now();
    let r = client.get_stream(path, extra).await?;
    anyhow::ensure!(r.status().is_success(), "Get File answered {}", r.status());
    let mut body = r.bytes_stream();
    let mut n = 0u64;
    while let Some(piece) = body.next().await {
        n += piece?.len() as u64;
    }
    Ok((n, t.elapsed().as_secs_f64()))
}
