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

async fn service_rate(dir: &std::path::Path, tasks: usize, nodes: u32, slots: u32) -> anyhow::Result<(f64, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let key = crate::serve::DEFAULT_KEY;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env("OPENBATCH_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let client = Arc::new(Client::new(&format!("http://127.0.0.1:{port}"), crate::serve::DEFAULT_ACCOUNT, key)?);
    let result = async {
        let ready_by = Instant::now() + Duration::from_secs(20);
        while client.call(Method::GET, "/pools", None).await.is_err() {
            anyhow::ensure!(Instant::now() < ready_by, "the service did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
