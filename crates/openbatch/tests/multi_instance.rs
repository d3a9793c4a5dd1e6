//! Multi-instance tasks with real processes, over HTTP: three instances on three compute
//! nodes, the coordination command on each, the application command on the primary, the
//! instance environment (`AZ_BATCH_HOST_LIST`, `AZ_BATCH_NODE_LIST`, `AZ_BATCH_MASTER_NODE`,
//! `AZ_BATCH_IS_CURRENT_NODE_MASTER`, `AZ_BATCH_TASK_SHARED_DIR`), List Subtasks, and the
//! pool's `enableInterNodeCommunication` requirement.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_three_node_task_coordinates_and_runs_on_the_primary() {
    let svc = Service::start().await;
    svc.add_pool("mpi", 3, json!({"enableInterNodeCommunication": true, "taskSchedulingPolicy": {"nodeFillType": "pack"}})).await;
    let nodes = svc.wait_pool_idle("mpi", 3, WAIT).await;
    svc.add_job("j", "mpi", json!({})).await;
    // Each instance leaves a mark in the shared directory; the application command (on the
    // primary only) reports what it sees.
    let coordination = "/bin/sh -c 'echo $AZ_BATCH_NODE_ID $AZ_BATCH_IS_CURRENT_NODE_MASTER > $AZ_BATCH_TASK_SHARED_DIR/$AZ_BATCH_NODE_ID'";
    let app = "/bin/sh -c 'echo hosts=$AZ_BATCH_HOST_LIST; echo nodes=$AZ_BATCH_NODE_LIST; echo master=$AZ_BATCH_MASTER_NODE; \
               echo is_master=$AZ_BATCH_IS_CURRENT_NODE_MASTER; echo me=$AZ_BATCH_NODE_ID; cat $AZ_BATCH_TASK_SHARED_DIR/*'";
    let settings = json!({"multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": coordination}});
    svc.add_task("j", "mi", app, settings).await;

    let t = svc.wait_task_completed("j", "mi", WAIT).await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    assert_eq!(t["multiInstanceSettings"]["numberOfInstances"], 3, "{t}");
    let primary = t["nodeInfo"]["nodeId"].as_str().expect("the primary's node").to_string();
    let out = svc.task_file("j", "mi", "stdout.txt").await;
    let line =
        |k: &str| out.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_else(|| panic!("no {k} in {out}")).to_string();
    assert_eq!(line("is_master"), "true", "{out}");
    assert_eq!(line("me"), primary, "the application command runs on the primary: {out}");
    assert_eq!(line("hosts").split(',').count(), 3, "{out}");
    assert_eq!(line("nodes").split(';').count(), 3, "{out}");
    assert!(line("master").ends_with(":6000"), "{out}");
    // Every instance ran the coordination command on its own node, exactly one as master.
    let marks: Vec<&str> = out.lines().filter(|l| !l.contains('=')).collect();
    let ran_on: BTreeSet<&str> = marks.iter().filter_map(|l| l.split(' ').next()).collect();
    let all: BTreeSet<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
    assert_eq!(ran_on, all, "one instance per node: {out}");
    assert_eq!(marks.iter().filter(|l| l.ends_with(" true")).count(), 1, "{out}");

    let subs = svc.get_json("/jobs/j/tasks/mi/subtasksinfo").await;
    let subs = subs["value"].as_array().expect("subtasks").clone();
    assert_eq!(subs.len(), 2, "the subtasks are the instances other than the primary: {subs:?}");
    let mut sub_nodes = BTreeSet::new();
    for s in &subs {
        assert_eq!(s["state"], "completed", "{s}");
        assert_eq!(s["exitCode"], 0, "{s}");
        assert_ne!(s["nodeInfo"]["nodeId"], Value::String(primary.clone()), "{s}");
        sub_nodes.insert(s["nodeInfo"]["nodeId"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(sub_nodes.len(), 2, "{subs:?}");
    assert_eq!(subs.iter().map(|s| s["id"].as_i64().unwrap_or(-1)).collect::<Vec<_>>(), vec![1, 2]);

    // The nodes are free again: an ordinary task runs.
    svc.add_task("j", "after", "/bin/true", json!({})).await;
    svc.wait_task_completed("j", "after", WAIT).await;
}

#[tokio::test]
async fn a_failing_coordination_command_fails_the_task() {
    let svc = Service::start().await;
    svc.add_pool("mpi", 2, json!({"enableInterNodeCommunication": true})).await;
    svc.wait_pool_idle("mpi", 2, WAIT).await;
    svc.add_job("j", "mpi", json!({})).await;
    let settings = json!({"multiInstanceSettings": {"numberOfInstances": 2,
        "coordinationCommandLine": "/bin/sh -c 'test $AZ_BATCH_IS_CURRENT_NODE_MASTER = true || exit 7'"}});
    svc.add_task("j", "mi", "/bin/true", settings).await;
    let t = svc.wait_task_completed("j", "mi", WAIT).await;
    assert_eq!(t["executionInfo"]["result"], "failure", "{t}");
    assert_eq!(t["executionInfo"]["exitCode"], 7, "{t}");
}

#[tokio::test]
async fn a_pool_without_inter_node_communication_cannot_run_one() {
    let svc = Service::start().await;
    svc.add_pool("plain", 2, json!({})).await;
    svc.wait_pool_idle("plain", 2, WAIT).await;
    svc.add_job("j", "plain", json!({})).await;
    svc.add_task(
        "j",
        "mi",
        "/bin/true",
        json!({"multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": "/bin/true"}}),
    )
    .await;
    let t = svc.wait_task_completed("j", "mi", WAIT).await;
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "InterNodeCommunicationNotEnabled", "{t}");
}

#[tokio::test]
async fn more_instances_than_the_pool_can_hold_wait() {
    let svc = Service::start().await;
    svc.add_pool("mpi", 2, json!({"enableInterNodeCommunication": true})).await;
    svc.wait_pool_idle("mpi", 2, WAIT).await;
    svc.add_job("j", "mpi", json!({})).await;
    svc.add_task(
        "j",
        "mi",
        "/bin/true",
        json!({"multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "/bin/true"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(svc.get_json("/jobs/j/tasks/mi").await["state"], "active");
    // Growing the pool lets it run.
    svc.post("/pools/mpi/resize").json(json!({"targetDedicatedNodes": 3})).send().await.expect_status(202);
    let t = svc.wait_task_completed("j", "mi", WAIT).await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
}

/// A web server on a free loopback port answering every `GET /<name>` with
/// `common file <name>\n`.
async fn web_server() -> String {
    use axum::extract::Path;
    use axum::routing::get;
    let app = axum::Router::new().route("/{*name}", get(|Path(name): Path<String>| async move { format!("common file {name}\n") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn common_resource_files_are_downloaded_to_the_shared_directory() {
    let web = web_server().await;
    let svc = Service::start().await;
    svc.add_pool("mpi", 2, json!({"enableInterNodeCommunication": true})).await;
    svc.wait_pool_idle("mpi", 2, WAIT).await;
    svc.add_job("j", "mpi", json!({})).await;
    // Common resource files go to AZ_BATCH_TASK_SHARED_DIR before the coordination command
    // of every instance (not to the task's working directory); the application command reads
    // them from there.
    let coordination = "/bin/sh -c 'test -f $AZ_BATCH_TASK_SHARED_DIR/common.txt || exit 3; test ! -e common.txt || exit 4'";
    let app = "/bin/sh -c 'cat $AZ_BATCH_TASK_SHARED_DIR/common.txt'";
    let settings = json!({"multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": coordination,
        "commonResourceFiles": [{"httpUrl": format!("{web}/data/common.txt?sig=secret"), "filePath": "common.txt"}]}});
    svc.add_task("j", "mi", app, settings).await;

    let t = svc.wait_task_completed("j", "mi", WAIT).await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    assert_eq!(t["multiInstanceSettings"]["commonResourceFiles"][0]["filePath"], "common.txt", "{t}");
    assert_eq!(svc.task_file("j", "mi", "stdout.txt").await, "common file data/common.txt\n");
    // The other instance's coordination command found the file too.
    let subs = svc.get_json("/jobs/j/tasks/mi/subtasksinfo").await;
    let subs = subs["value"].as_array().expect("subtasks").clone();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["state"], "completed", "{subs:?}");
    assert_eq!(subs[0]["exitCode"], 0, "{subs:?}");
}
