//! Statistics from real measurements, over HTTP: a task that burns CPU and writes a file, its
//! TaskStatistics and its job's JobStatistics with `$expand=stats` (and none without), and
//! the pool's PoolStatistics and the account's lifetime pool statistics from the node
//! agent's samples.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// Node agents sample every 5 s; a few samples' time.
const SAMPLED: Duration = Duration::from_secs(30);
/// What the task writes: 4 MiB.
const WRITTEN: u64 = 4 << 20;
const GIB: f64 = (1u64 << 30) as f64;

/// An int64 sent as a JSON string, as the service writes them.
fn int64(v: &Value) -> u64 {
    v.as_str().unwrap_or_else(|| panic!("an int64 is a string: {v}")).parse().unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn float(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// Seconds of an ISO 8601 duration (`PT1M2.5S`, `P1DT2H`), as statistics write them.
fn seconds(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("a duration: {v}"));
    let (days, time) = s.trim_start_matches('P').split_once('T').unwrap_or((s.trim_start_matches('P'), ""));
    let mut total = days.trim_end_matches('D').parse::<f64>().unwrap_or(0.0) * 86400.0;
    let mut num = String::new();
    for c in time.chars() {
        match c {
            'H' => total += num.parse::<f64>().unwrap() * 3600.0,
            'M' => total += num.parse::<f64>().unwrap() * 60.0,
            'S' => total += num.parse::<f64>().unwrap(),
            _ => {
                num.push(c);
                continue;
            }
        }
        num.clear();
    }
    total
}

/// Writes to a memory file system (tmpfs) reach no block device, and the kernel counts no
/// block I/O for them.
fn block_io_counted(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statfs fills our own struct for a valid path.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut fs) } == 0;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    ok && fs.f_type as i64 != TMPFS_MAGIC
}

fn assert_task_statistics(s: &Value, task_url: &str, counted: bool) {
    assert_eq!(s["url"], format!("{task_url}/stats"), "{s}");
    assert!(seconds(&s["userCPUTime"]) > 0.0, "the busy loop used CPU in user mode: {s}");
    assert!(seconds(&s["wallClockTime"]) > 0.0, "{s}");
    assert!(seconds(&s["kernelCPUTime"]) >= 0.0 && seconds(&s["waitTime"]) >= 0.0, "{s}");
    let written = int64(&s["writeIOps"]);
    assert!((float(&s["writeIOGiB"]) - written as f64 * 512.0 / GIB).abs() < 1e-12, "GiB from the 512-byte blocks: {s}");
    if counted {
        assert!(written * 512 >= WRITTEN, "the task wrote 4 MiB: {s}");
        assert!(written * 512 < 64 * WRITTEN, "and not much more: {s}");
    }
    int64(&s["readIOps"]);
    assert!(ts(&s["lastUpdateTime"]) >= ts(&s["startTime"]), "{s}");
}

#[tokio::test]
async fn statistics_come_from_what_the_task_and_the_node_really_used() {
    let svc = Service::start().await;
    let counted = block_io_counted(svc.dir.path());
    svc.add_pool("p", 1, serde_json::json!({})).await;
    svc.wait_pool_idle("p", 1, WAIT).await;
    svc.add_job("j", "p", serde_json::json!({})).await;
    let work = "/bin/sh -c \"i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; head -c 4194304 /dev/zero > out.bin\"";
    svc.add_task("j", "work", work, serde_json::json!({})).await;
    svc.wait_task_completed("j", "work", WAIT).await;
    let task_url = format!("{}/jobs/j/tasks/work", svc.base);

    // Statistics only when asked for, as the service does.
    let t = svc.get_json("/jobs/j/tasks/work").await;
    assert!(t.get("stats").is_none(), "{t}");
    let t = svc.get_json("/jobs/j/tasks/work?$expand=stats").await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    assert_task_statistics(&t["stats"], &task_url, counted);
    assert_eq!(t["stats"]["startTime"], t["creationTime"], "the range starts at the task's creation");
    let listed = svc.get_json("/jobs/j/tasks?$expand=stats").await;
    assert_task_statistics(&listed["value"][0]["stats"], &task_url, counted);
    assert!(svc.get_json("/jobs/j/tasks").await["value"][0].get("stats").is_none());
    let selected = svc.get_json("/jobs/j/tasks/work?$expand=stats&$select=id,stats").await;
    assert_eq!(selected.as_object().unwrap().len(), 3, "odata.metadata, id and stats: {selected}");

    // The job's statistics add up its task.
    let j = svc.get_json("/jobs/j?$expand=stats").await;
    let js = &j["stats"];
    assert_eq!(js["url"], format!("{}/jobs/j/stats", svc.base));
    assert_eq!((int64(&js["numSucceededTasks"]), int64(&js["numFailedTasks"]), int64(&js["numTaskRetries"])), (1, 0, 0), "{js}");
    assert_eq!(js["userCPUTime"], t["stats"]["userCPUTime"], "{js}");
    assert_eq!(js["writeIOps"], t["stats"]["writeIOps"], "{js}");
    assert!(svc.get_json("/jobs/j").await.get("stats").is_none());
    let jobs = svc.get_json("/jobs?$expand=stats").await;
    assert_eq!(jobs["value"][0]["stats"]["numSucceededTasks"], "1", "{jobs}");
    assert_eq!(svc.get_json("/lifetimejobstats").await["numSucceededTasks"], "1");

    // The pool's statistics come from the node agent's samples: core-time of the dedicated
    // node, CPU, memory, the node directory on disk (with the 4 MiB file) and its disk writes.
    let pool_stats = poll("pool statistics with the task's file", SAMPLED, || async {
        let p = svc.get_json("/pools/p?$expand=stats").await;
        let s = p["stats"].clone();
        (float(&s["resourceStats"]["peakDiskGiB"]) * GIB >= WRITTEN as f64).then_some(s)
    })
    .await;
    assert_eq!(pool_stats["url"], format!("{}/pools/p/stats", svc.base));
    assert!(seconds(&pool_stats["usageStats"]["dedicatedCoreTime"]) > 0.0, "{pool_stats}");
    let rs = &pool_stats["resourceStats"];
    assert!(float(&rs["avgCPUPercentage"]) > 0.0 && float(&rs["avgCPUPercentage"]) <= 100.0, "{rs}");
    assert!(float(&rs["avgMemoryGiB"]) > 0.0 && float(&rs["peakMemoryGiB"]) >= float(&rs["avgMemoryGiB"]), "{rs}");
    assert!(float(&rs["avgDiskGiB"]) > 0.0, "{rs}");
    if counted {
        assert!(int64(&rs["diskWriteIOps"]) * 512 >= WRITTEN, "{rs}");
        assert!(float(&rs["diskWriteGiB"]) * GIB >= WRITTEN as f64, "{rs}");
    }
    int64(&rs["diskReadIOps"]);
    assert_eq!((float(&rs["networkReadGiB"]), float(&rs["networkWriteGiB"])), (0.0, 0.0), "network is not measured: {rs}");
    assert!(svc.get_json("/pools/p").await.get("stats").is_none());
    let pools = svc.get_json("/pools?$expand=stats").await;
    assert!(pools["value"][0]["stats"]["usageStats"].is_object(), "{pools}");

    // The account's lifetime pool statistics (api-versions up to 2022-10-01.16.0).
    let life = svc.get_json("/lifetimepoolstats").await;
    assert!(life["odata.metadata"].as_str().unwrap().ends_with("#poolstats/@Element"), "{life}");
    assert_eq!(life["url"], format!("{}/lifetimepoolstats", svc.base));
    assert!(seconds(&life["usageStats"]["dedicatedCoreTime"]) >= seconds(&pool_stats["usageStats"]["dedicatedCoreTime"]), "{life}");
    assert!(float(&life["resourceStats"]["peakDiskGiB"]) * GIB >= WRITTEN as f64, "{life}");
    svc.get("/lifetimepoolstats").api_version("2023-05-01.17.0").send().await.expect_status(404);

    // Deleting the pool keeps what its node used in the account's statistics.
    let before = seconds(&svc.get_json("/lifetimepoolstats").await["usageStats"]["dedicatedCoreTime"]);
    svc.delete("/pools/p").send().await.expect_status(202);
    poll("pool deleted", WAIT, || async { (svc.get("/pools/p").send().await.status == 404).then_some(()) }).await;
    let after = svc.get_json("/lifetimepoolstats").await;
    assert!(seconds(&after["usageStats"]["dedicatedCoreTime"]) >= before, "{after}");
}

#[tokio::test]
async fn statistics_show_at_every_api_version() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, serde_json::json!({})).await;
    svc.add_job("j", "p", serde_json::json!({})).await;
    svc.add_task("j", "t", "/bin/true", serde_json::json!({})).await;
    svc.wait_task_completed("j", "t", WAIT).await;
    for v in ["2015-06-01.2.0", "2017-05-01.5.0", "2020-09-01.12.0", "2024-07-01.20.0", "2025-06-01"] {
        let t = svc.get("/jobs/j/tasks/t?$expand=stats").api_version(v).send().await;
        t.expect_status(200);
        let t = t.json();
        assert!(seconds(&t["stats"]["wallClockTime"]) >= 0.0 && t["stats"]["readIOps"].is_string(), "{v}: {t}");
        let j = svc.get("/jobs/j?$expand=stats").api_version(v).send().await.json();
        assert_eq!(j["stats"]["numSucceededTasks"], "1", "{v}: {j}");
        let p = svc.get("/pools/p?$expand=stats").api_version(v).send().await.json();
        assert!(p["stats"]["usageStats"]["dedicatedCoreTime"].is_string(), "{v}: {p}");
    }
}
