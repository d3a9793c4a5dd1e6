//! Compute node operations over HTTP with real node agents: Reboot (the start task runs again,
//! the node's files stay), Reimage (the node directory is wiped; refused while the api-version
//! reserves it for Cloud Services pools), the reboot options on running tasks, node users and
//! their expiry, Get Remote Login Settings and Get Remote Desktop, node VM extensions and
//! `recentTasks`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Polls a node until its state is one of `states`.
async fn wait_node(svc: &Service, pool: &str, node: &str, states: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + secs(30);
    loop {
        let n = svc.get_json(&format!("/pools/{pool}/nodes/{node}")).await;
        if states.contains(&n["state"].as_str().unwrap_or("")) {
            return n;
        }
        assert!(tokio::time::Instant::now() < deadline, "node never reached {states:?}: {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The lines the pool's start task appended to the node's shared directory.
async fn boots(svc: &Service, pool: &str, node: &str) -> usize {
    let r = svc.get(&format!("/pools/{pool}/nodes/{node}/files/shared/boots")).send().await;
    if r.status == 404 {
        return 0;
    }
    r.expect_status(200);
    r.text().lines().count()
}

/// A one-node pool whose start task counts its runs in `shared/boots`.
async fn counting_pool(svc: &Service, id: &str) -> String {
    let start = json!({"commandLine": "/bin/sh -c \"echo boot >> $AZ_BATCH_NODE_SHARED_DIR/boots\"", "waitForSuccess": true});
    svc.add_pool(id, 1, json!({"startTask": start})).await.expect_status(201);
    let nodes = svc.wait_pool_idle(id, 1, secs(30)).await;
    nodes[0]["id"].as_str().expect("node id").to_string()
}

#[tokio::test]
async fn reboot_reruns_the_start_task_keeps_files_and_requeues_the_running_task() {
    let svc = Service::start().await;
    let node = counting_pool(&svc, "p").await;
    let path = format!("/pools/p/nodes/{node}");
    assert_eq!(boots(&svc, "p", &node).await, 1);
    let before = svc.get_json(&path).await["lastBootTime"].clone();
    svc.add_job("j", "p", json!({})).await.expect_status(201);
    svc.add_task("j", "t", "/bin/sh -c \"sleep 1; echo done\"", json!({})).await.expect_status(201);
    svc.wait_task_state("j", "t", "running", secs(30)).await;

    // No body: requeue. 202 with DataServiceId, as recorded.
    let r = svc.post(&format!("{path}/reboot")).send().await;
    r.expect_status(202);
    assert!(r.header("dataserviceid").is_some_and(|u| u.ends_with("/reboot")), "{r:?}");
    let n = svc.get_json(&path).await;
    assert_eq!(n["state"], "rebooting", "{n}");
    svc.post(&format!("{path}/reboot")).send().await.expect_error(409, "NodeBeingRebooted");

    let t = svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!(t["executionInfo"]["requeueCount"], 1, "{t}");
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    let n = wait_node(&svc, "p", &node, &["idle"]).await;
    assert_ne!(n["lastBootTime"], before, "{n}");
    assert_eq!(n["startTaskInfo"]["state"], "completed", "{n}");
    assert_eq!(boots(&svc, "p", &node).await, 2, "the start task ran again and its earlier output was kept");
    // recentTasks: the task, completed, with its execution information.
    assert_eq!(n["recentTasks"][0]["taskId"], "t", "{n}");
    assert_eq!(n["recentTasks"][0]["taskState"], "completed", "{n}");
    assert_eq!(n["recentTasks"][0]["executionInfo"]["exitCode"], 0, "{n}");
    assert!(n["recentTasks"][0]["taskUrl"].as_str().is_some_and(|u| u.ends_with("/jobs/j/tasks/t")), "{n}");

    // Errors: unknown node, unknown option.
    svc.post("/pools/p/nodes/nope/reboot").send().await.expect_error(404, "NodeNotFound");
    let e = svc.post(&format!("{path}/reboot")).json(json!({"nodeRebootOption": "later"})).send().await;
    e.expect_error(400, "InvalidPropertyValue");
}

#[tokio::test]
async fn reimage_wipes_the_node_and_is_refused_where_only_cloud_service_pools_have_it() {
    let svc = Service::start().await;
    let node = counting_pool(&svc, "p").await;
    let path = format!("/pools/p/nodes/{node}");
    // Up to 2024-02-01.19.0: for Cloud Services pools only, as the service answers.
    let e = svc.post(&format!("{path}/reimage")).json(json!({"nodeReimageOption": "terminate"})).send().await;
    let body = e.expect_error(409, "OperationNotValidOnNode");
    assert!(body.to_string().contains("cloudServiceConfiguration"), "{body}");

    svc.add_job("j", "p", json!({})).await.expect_status(201);
    svc.add_task("j", "t", "/bin/sleep 60", json!({})).await.expect_status(201);
    svc.wait_task_state("j", "t", "running", secs(30)).await;
    let r = svc.post(&format!("{path}/reimage")).api_version("2024-07-01.20.0").json(json!({"nodeReimageOption": "terminate"}));
    r.send().await.expect_status(202);
    let t = svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "TaskEnded", "{t}");
    let n = wait_node(&svc, "p", &node, &["idle"]).await;
    assert_eq!(n["startTaskInfo"]["state"], "completed", "{n}");
    assert_eq!(boots(&svc, "p", &node).await, 1, "the node directory was wiped before the start task ran again");
    let files = svc.get("/jobs/j/tasks/t/files/stdout.txt").send().await;
    assert_eq!(files.status, 404, "the task's files went with the reimage: {files:?}");
}

#[tokio::test]
async fn reboot_with_taskcompletion_lets_the_task_finish_first() {
    let svc = Service::start().await;
    let node = counting_pool(&svc, "p").await;
    let path = format!("/pools/p/nodes/{node}");
    svc.add_job("j", "p", json!({})).await.expect_status(201);
    svc.add_task("j", "t", "/bin/sleep 2", json!({})).await.expect_status(201);
    svc.wait_task_state("j", "t", "running", secs(30)).await;
    svc.post(&format!("{path}/reboot")).json(json!({"nodeRebootOption": "taskcompletion"})).send().await.expect_status(202);
    assert_eq!(svc.get_json(&path).await["state"], "rebooting");
    let t = svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!((t["executionInfo"]["exitCode"].as_i64(), t["executionInfo"]["requeueCount"].as_i64()), (Some(0), Some(0)), "{t}");
    wait_node(&svc, "p", &node, &["idle"]).await;
    assert_eq!(boots(&svc, "p", &node).await, 2);
}

#[tokio::test]
async fn node_users_add_update_delete_and_expire() {
    let svc = Service::start_with(&["--clock-control"]).await;
    svc.add_pool("p", 1, json!({})).await.expect_status(201);
    let node = svc.wait_pool_idle("p", 1, secs(30)).await[0]["id"].as_str().unwrap().to_string();
    let users = format!("/pools/p/nodes/{node}/users");
    let r = svc.post(&users).json(json!({"name": "alice", "isAdmin": false, "password": "kt#_gahr!@aGERDXA"})).send().await;
    r.expect_status(201);
    assert!(r.header("location").is_some_and(|u| u.ends_with("/users/alice")), "{r:?}");
    assert!(r.header("etag").is_none());
    svc.post(&users).json(json!({"name": "alice"})).send().await.expect_error(409, "NodeUserExists");
    svc.post(&users).json(json!({"isAdmin": true})).send().await.expect_error(400, "MissingRequiredProperty");
    let bad_key = svc.post(&users).json(json!({"name": "bob", "sshPublicKey": "not a key"})).send().await;
    assert_eq!(bad_key.expect_error(400, "InvalidPropertyValue")["values"][0]["value"], "sshPublicKey");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxLpl3zJCWpkWm8CXN0KNb9JvbvVXdq0bDXNG3sY6Jn me@host";
    svc.post(&users).json(json!({"name": "bob", "sshPublicKey": key})).send().await.expect_status(201);
    // Update replaces; 200 with DataServiceId.
    let r = svc.put(&format!("{users}/alice")).json(json!({"password": "liilef#$DdRGSa_ewkjh"})).send().await;
    r.expect_status(200);
    assert!(r.header("dataserviceid").is_some_and(|u| u.ends_with("/users/alice")), "{r:?}");
    svc.put(&format!("{users}/carol")).json(json!({})).send().await.expect_error(404, "NodeUserNotFound");
    // Delete: 200 without DataServiceId.
    let r = svc.delete(&format!("{users}/alice")).send().await;
    r.expect_status(200);
    assert!(r.header("dataserviceid").is_none());
    svc.delete(&format!("{users}/alice")).send().await.expect_error(404, "NodeUserNotFound");
    // bob expires a day after he was added, by the service clock.
    svc.advance_clock("PT25H").await;
    svc.delete(&format!("{users}/bob")).send().await.expect_error(404, "NodeUserNotFound");
    let past = svc.post(&users).json(json!({"name": "dave", "expiryTime": "2020-01-01T00:00:00Z"})).send().await;
    past.expect_error(400, "InvalidPropertyValue");
    // Passwords are never shown: the node has no users property.
    let n = svc.get_json(&format!("/pools/p/nodes/{node}")).await;
    assert!(n.get("users").is_none() && !n.to_string().contains("kt#_gahr"), "{n}");
}

#[tokio::test]
async fn remote_login_remote_desktop_and_extensions() {
    let svc = Service::start().await;
    let ext = json!({"name": "ext1", "publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorLinuxAgent",
                     "typeHandlerVersion": "1.0", "protectedSettings": {"secret": "s3"}});
    let mut pool = linux_pool("p", 1);
    pool["virtualMachineConfiguration"]["extensions"] = json!([ext]);
    svc.post("/pools").json(pool).send().await.expect_status(201);
    let node = svc.wait_pool_idle("p", 1, secs(30)).await[0]["id"].as_str().unwrap().to_string();
    let path = format!("/pools/p/nodes/{node}");
    let e = svc.get(&format!("{path}/remoteloginsettings")).send().await;
    assert!(e.expect_error(409, "OperationNotValidOnNode").to_string().contains("no SSH endpoint"));
    let e = svc.get(&format!("{path}/rdp")).api_version("2020-09-01.12.0").send().await;
    e.expect_error(409, "OperationNotValidOnNode");
    svc.get(&format!("{path}/rdp")).api_version("2024-07-01.20.0").send().await.expect_error(404, "ResourceNotFound");

    let list = svc.get_json(&format!("{path}/extensions")).await;
    let items = list["value"].as_array().expect("value");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["vmExtension"]["name"], "ext1");
    assert_eq!(items[0]["provisioningState"], "Failed");
    assert_eq!(items[0]["instanceView"]["statuses"][0]["level"], "Error");
    assert!(!list.to_string().contains("s3"), "protected settings are never shown: {list}");
    let one = svc.get_json(&format!("{path}/extensions/ext1")).await;
    assert_eq!(one["vmExtension"]["type"], "AzureMonitorLinuxAgent", "{one}");
    svc.get(&format!("{path}/extensions/nope")).send().await.expect_error(404, "ResourceNotFound");
    // Not in the api-versions before 2021-06-01.14.0.
    svc.get(&format!("{path}/extensions")).api_version("2020-09-01.12.0").send().await.expect_error(404, "ResourceNotFound");
}
