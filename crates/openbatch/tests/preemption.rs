//! Job priority and `allowTaskPreemption` (api-version 2022-01-01.15.0) with real processes,
//! over HTTP: a higher-priority job's task requeues a running task of a lower-priority job
//! that allows it, runs at once, and the requeued task runs again afterwards.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
/// The first version with `allowTaskPreemption`.
const PREEMPTION_VERSION: &str = "2022-01-01.15.0";
/// The low task's first run, in seconds.
const SLEEP: &str = "30.0417";

/// Whether a `sleep SLEEP` process runs on this machine.
fn first_run_alive() -> bool {
    let wanted = format!("sleep\0{SLEEP}\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| c == wanted.as_bytes())
}

#[tokio::test]
async fn a_higher_priority_task_preempts_a_lower_priority_one() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({"taskSlotsPerNode": 1})).await;
    svc.wait_pool_idle("p", 1, WAIT).await;
    let low = json!({"id": "low", "poolInfo": {"poolId": "p"}, "priority": -100, "allowTaskPreemption": true});
    svc.post("/jobs").api_version(PREEMPTION_VERSION).json(low).send().await.expect_status(201);
    let got = svc.get("/jobs/low").api_version(PREEMPTION_VERSION).send().await.json();
    assert_eq!(got["allowTaskPreemption"], true, "{got}");
    // Sleeps 30 s the first time only, so that its rerun completes; the odd duration tells
    // its process apart.
    let once = format!(
        "/bin/sh -c 'if [ -f \"$AZ_BATCH_NODE_SHARED_DIR/once\" ]; then exit 0; fi; touch \"$AZ_BATCH_NODE_SHARED_DIR/once\"; sleep {SLEEP}'"
    );
    svc.add_task("low", "l", &once, json!({"constraints": {"maxTaskRetryCount": 2}})).await;
    svc.wait_task_state("low", "l", "running", WAIT).await;
    poll("the first run's sleep", WAIT, || async { first_run_alive().then_some(()) }).await;

    let high = json!({"id": "high", "poolInfo": {"poolId": "p"}, "priority": 100});
    svc.post("/jobs").api_version(PREEMPTION_VERSION).json(high).send().await.expect_status(201);
    let added = Instant::now();
    svc.add_task("high", "h", "/bin/sh -c 'sleep 2'", json!({})).await;
    // While the high task holds the only slot, the low one is back in the queue.
    let l = poll("l requeued while h runs", WAIT, || async {
        let h = svc.get_json("/jobs/high/tasks/h").await;
        let l = svc.get_json("/jobs/low/tasks/l").await;
        (h["state"] == "running" && l["executionInfo"]["requeueCount"] == 1).then_some(l)
    })
    .await;
    assert_eq!(l["state"], "active", "{l}");
    assert_eq!(l["executionInfo"]["retryCount"], 0, "{l}");
    assert!(l["executionInfo"]["lastRequeueTime"].is_string(), "{l}");
    assert!(l["executionInfo"].get("startTime").is_none(), "{l}");
    assert!(l.get("nodeInfo").is_none(), "{l}");

    let h = svc.wait_task_completed("high", "h", WAIT).await;
    assert!(added.elapsed() < Duration::from_secs(20), "the high task did not wait for the 30 s one");
    assert_eq!(h["executionInfo"]["result"], "success", "{h}");

    let l = svc.wait_task_completed("low", "l", WAIT).await;
    assert_eq!(l["executionInfo"]["result"], "success", "{l}");
    assert_eq!(l["executionInfo"]["requeueCount"], 1, "{l}");
    assert_eq!(l["executionInfo"]["retryCount"], 0, "a preemption is no retry: {l}");
    assert!(ts(&l["executionInfo"]["startTime"]) >= ts(&h["executionInfo"]["endTime"]), "reran after h: {l} {h}");
    assert!(!first_run_alive(), "the preempted run was killed");
    let node = &svc.get_json("/pools/p/nodes").await["value"][0];
    assert_eq!(node["runningTasksCount"], 0, "{node}");
}
