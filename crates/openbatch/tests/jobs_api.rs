//! HTTP integration tests of jobs, driven through a real `openbatch serve` process (and its
//! node agents) with SharedKey-signed requests: job add, get, list, patch, update, terminate
//! and delete; `onAllTasksComplete`; task counts, and running tasks ended by task terminate,
//! task delete and job terminate; job disable and enable; auto pools; job preparation and
//! release tasks; lifetime job statistics.
//!
//! The protocol, pools and nodes are tested in `http_api.rs`, tasks and files in
//! `tasks_api.rs`; the helpers the three share are in `common/mod.rs`.
//!
//! Each test starts its own service on a free port with its own data directory, so tests run
//! in parallel and never share state.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn job_add_get_list_patch_update_terminate_delete() {
    let svc = Service::start().await;

    let r = svc
        .post("/jobs")
        .json(json!({"id": "j1", "poolInfo": {"poolId": "nopool"}, "displayName": "Job 1",
                     "commonEnvironmentSettings": [{"name": "A", "value": "1"}]}))
        .send()
        .await;
    r.expect_status(201);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    assert!(r.header("location").is_some_and(|l| l.starts_with(&format!("{}/jobs/", svc.base))), "{r:?}");
    assert!(r.header("dataserviceid").is_some(), "{r:?}");
    let etag_add = r.header("etag").unwrap();

    svc.post("/jobs").json(json!({"id": "j1", "poolInfo": {"poolId": "x"}})).send().await.expect_error(409, "JobExists");
    svc.post("/jobs").json(json!({"id": "J1", "poolInfo": {"poolId": "x"}})).send().await.expect_error(409, "JobExists");
    let r = svc.post("/jobs").json(json!({"id": "j9"})).send().await;
    r.expect_error(400, "MissingRequiredProperty");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("poolInfo"), "{r:?}");
    let r = svc.post("/jobs").json(json!({"id": "bad id", "poolInfo": {"poolId": "x"}})).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    let r = svc.post("/jobs").json(json!({"id": "j9", "poolInfo": {"poolId": "x"}, "nonsense": true})).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("nonsense"), "{r:?}");

    let r = svc.get("/jobs/j1").send().await;
    r.expect_status(200);
    assert_entity_headers(&r);
    let j = r.json();
    assert_eq!(j["odata.metadata"], format!("{}/$metadata#jobs/@Element", svc.base));
    assert_eq!(j["id"], "j1");
    assert_eq!(j["url"], format!("{}/jobs/j1", svc.base));
    assert_eq!(j["eTag"], etag_add.as_str());
    assert_eq!(j["state"], "active");
    assert_eq!(j["priority"], 0);
    assert_eq!(j["usesTaskDependencies"], false);
    assert_eq!(j["onAllTasksComplete"], "noaction");
    assert_eq!(j["onTaskFailure"], "noaction");
    assert_eq!(j["constraints"]["maxWallClockTime"], UNLIMITED);
    assert_eq!(j["constraints"]["maxTaskRetryCount"], 0);
    assert_eq!(j["poolInfo"]["poolId"], "nopool");
    assert_eq!(j["executionInfo"]["poolId"], "nopool");
    ts(&j["executionInfo"]["startTime"]);
    assert_eq!(j["displayName"], "Job 1");
    svc.get("/jobs/nope").send().await.expect_error(404, "JobNotFound");

    svc.add_job("j2", "nopool", json!({})).await;
    svc.add_job("j3", "nopool", json!({})).await;
    let list = svc.get_json("/jobs").await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("/$metadata#jobs"), "{list}");
    assert_eq!(ids(&list).into_iter().collect::<BTreeSet<_>>(), BTreeSet::from(["j1".into(), "j2".into(), "j3".into()]));
    // Paging through jobs too.
    let mut seen = Vec::new();
    let mut page = svc.get_json("/jobs?maxresults=2").await;
    loop {
        seen.extend(ids(&page));
        let Some(next) = page.get("odata.nextLink").and_then(Value::as_str).map(str::to_string) else { break };
        let r = svc.req_url(Method::GET, &next).send().await;
        r.expect_status(200);
        page = r.json();
    }
    seen.sort();
    assert_eq!(seen, vec!["j1", "j2", "j3"]);

    // Patch changes only what is given.
    let r = svc.patch("/jobs/j1").json(json!({"priority": 100, "metadata": [{"name": "m", "value": "1"}]})).send().await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    assert_eq!(r.header("dataserviceid"), Some(format!("{}/jobs/j1", svc.base)));
    let etag_patch = r.header("etag").unwrap();
    assert_ne!(etag_patch, etag_add);
    let j = svc.get_json("/jobs/j1").await;
    assert_eq!(j["priority"], 100);
    assert_eq!(j["metadata"], json!([{"name": "m", "value": "1"}]));
    assert_eq!(j["commonEnvironmentSettings"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(j["displayName"], "Job 1");
    svc.patch("/jobs/nope").json(json!({"priority": 1})).send().await.expect_error(404, "JobNotFound");
    svc.patch("/jobs/j1").json(json!({"priority": 5000})).send().await.expect_error(400, "InvalidPropertyValue");

    // Update (PUT) replaces: what is not given goes back to its default.
    let r = svc.put("/jobs/j1").json(json!({"poolInfo": {"poolId": "otherpool"}, "priority": 5})).send().await;
    r.expect_status(200);
    assert_entity_headers(&r);
    assert_ne!(r.header("etag").unwrap(), etag_patch);
    let j = svc.get_json("/jobs/j1").await;
    assert_eq!(j["priority"], 5);
    assert_eq!(j["poolInfo"]["poolId"], "otherpool");
    assert!(j.get("metadata").is_none_or(|m| m == &json!([])), "metadata is reset by PUT: {j}");
    assert_eq!(j["constraints"]["maxTaskRetryCount"], 0);
    let r = svc.put("/jobs/j1").json(json!({"priority": 5})).send().await;
    r.expect_error(400, "MissingRequiredProperty");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("poolInfo"), "{r:?}");
    svc.put("/jobs/nope").json(json!({"poolInfo": {"poolId": "p"}})).send().await.expect_error(404, "JobNotFound");

    // Terminate.
    let r = svc.post("/jobs/j1/terminate").send().await;
    r.expect_status(202);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    let j = poll("j1 completed", secs(10), || async {
        let j = svc.get_json("/jobs/j1").await;
        (j["state"] == "completed").then_some(j)
    })
    .await;
    assert_eq!(j["executionInfo"]["terminateReason"], "UserTerminate", "{j}");
    ts(&j["executionInfo"]["endTime"]);
    svc.post("/jobs/j2/terminate").json(json!({"terminateReason": "because"})).send().await.expect_status(202);
    let j = poll("j2 completed", secs(10), || async {
        let j = svc.get_json("/jobs/j2").await;
        (j["state"] == "completed").then_some(j)
    })
    .await;
    assert_eq!(j["executionInfo"]["terminateReason"], "because");
    svc.post("/jobs/nope/terminate").send().await.expect_error(404, "JobNotFound");

    // A completed job refuses changes and new tasks.
    svc.post("/jobs/j1/terminate").send().await.expect_error(409, "JobCompleted");
    svc.post("/jobs/j1/tasks").json(json!({"id": "t", "commandLine": "/bin/true"})).send().await.expect_error(409, "JobCompleted");
    svc.post("/jobs/j1/addtaskcollection")
        .json(json!({"value": [{"id": "t", "commandLine": "/bin/true"}]}))
        .send()
        .await
        .expect_error(409, "JobCompleted");
    svc.patch("/jobs/j1").json(json!({"priority": 1})).send().await.expect_error(409, "JobCompleted");

    // Delete.
    svc.add_task("j3", "t1", "/bin/true", json!({})).await;
    for id in ["j1", "j3"] {
        let r = svc.delete(&format!("/jobs/{id}")).send().await;
        r.expect_status(202);
        assert!(r.body.is_empty());
    }
    for id in ["j1", "j3"] {
        let path = format!("/jobs/{id}");
        poll(&format!("{id} deleted"), secs(10), || async { (svc.get(&path).send().await.status == 404).then_some(()) }).await;
        svc.get(&path).send().await.expect_error(404, "JobNotFound");
    }
    svc.get("/jobs/j3/tasks").send().await.expect_error(404, "JobNotFound");
    svc.get("/jobs/j3/tasks/t1").send().await.expect_error(404, "JobNotFound");
    svc.delete("/jobs/j3").send().await.expect_error(404, "JobNotFound");
    assert_eq!(ids(&svc.get_json("/jobs").await), vec!["j2"]);
    // The id is free again.
    svc.add_job("j3", "nopool", json!({})).await;
}

#[tokio::test]
async fn on_all_tasks_complete_terminates_the_job() {
    let svc = Service::start().await;
    svc.add_pool("ap", 1, json!({"taskSlotsPerNode": 4})).await;
    svc.wait_pool_idle("ap", 1, secs(20)).await;

    // A job with terminatejob and no tasks stays active (as the real service answered in the
    // recorded jobs session); it completes once it has tasks and they all complete.
    svc.add_job("empty", "ap", json!({"onAllTasksComplete": "terminatejob"})).await;

    // The documented pattern: add tasks with noaction, then switch to terminatejob.
    svc.add_job("jt", "ap", json!({})).await;
    let r = svc
        .post("/jobs/jt/addtaskcollection")
        .json(json!({"value": [
            {"id": "a", "commandLine": "/bin/sleep 1"},
            {"id": "b", "commandLine": "/bin/sleep 1"},
            {"id": "c", "commandLine": "/bin/true"}
        ]}))
        .send()
        .await;
    r.expect_status(200);
    svc.patch("/jobs/jt").json(json!({"onAllTasksComplete": "terminatejob"})).send().await.expect_status(200);
    let j = svc.get_json("/jobs/jt").await;
    assert_eq!(j["state"], "active", "the job completed while tasks were still running: {j}");
    assert_eq!(j["onAllTasksComplete"], "terminatejob");

    let j = poll("jt completed", secs(20), || async {
        let j = svc.get_json("/jobs/jt").await;
        (j["state"] == "completed").then_some(j)
    })
    .await;
    assert_eq!(j["executionInfo"]["terminateReason"], "AllTasksComplete", "{j}");
    for t in ["a", "b", "c"] {
        let t = svc.get_json(&format!("/jobs/jt/tasks/{t}")).await;
        assert_eq!(t["state"], "completed", "{t}");
        assert_eq!(t["executionInfo"]["result"], "success", "{t}");
        assert!(ts(&t["executionInfo"]["endTime"]) <= ts(&j["executionInfo"]["endTime"]), "job ended before task {t}");
    }

    assert_eq!(svc.get_json("/jobs/empty").await["state"], "active", "a job without tasks is not complete");
    svc.add_task("empty", "only", "/bin/true", json!({})).await;
    let e = poll("empty job completed", secs(10), || async {
        let j = svc.get_json("/jobs/empty").await;
        (j["state"] == "completed").then_some(j)
    })
    .await;
    assert_eq!(e["executionInfo"]["terminateReason"], "AllTasksComplete", "{e}");
}

// ---------------------------------------------------------------------------------------
// Task counts, and running tasks ended by task terminate, task delete and job terminate
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn task_counts_terminate_and_delete_running_tasks() {
    let svc = Service::start().await;
    svc.add_pool("kp", 1, json!({"taskSlotsPerNode": 3})).await;
    let nodes = svc.wait_pool_idle("kp", 1, secs(20)).await;
    let node_id = nodes[0]["id"].as_str().unwrap().to_string();
    svc.add_job("kj", "kp", json!({})).await;

    let zero = json!({"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0});
    let c = svc.get_json("/jobs/kj/taskcounts").await;
    assert!(c["odata.metadata"].as_str().unwrap().ends_with("/$metadata#taskcountsresult/@Element"), "{c}");
    assert_eq!(c["taskCounts"], zero);
    assert_eq!(c["taskSlotCounts"], zero);
    svc.get("/jobs/nope/taskcounts").send().await.expect_error(404, "JobNotFound");

    for (id, cmd) in [("s1", "/bin/true"), ("s2", "/bin/true"), ("f1", "/bin/false")] {
        svc.add_task("kj", id, cmd, json!({})).await;
    }
    for id in ["s1", "s2", "f1"] {
        svc.wait_task_completed("kj", id, secs(20)).await;
    }
    svc.add_task("kj", "big", "/bin/true", json!({"requiredSlots": 4})).await;
    svc.add_task("kj", "run", "/bin/sleep 30", json!({"requiredSlots": 2})).await;
    let run = svc.wait_task_state("kj", "run", "running", secs(20)).await;
    ts(&run["executionInfo"]["startTime"]);
    let n = svc.get_json(&format!("/pools/kp/nodes/{node_id}")).await;
    assert_eq!(n["state"], "running", "{n}");
    assert_eq!(n["runningTasksCount"], 1, "{n}");
    assert_eq!(n["runningTaskSlotsCount"], 2, "{n}");

    let c = svc.get_json("/jobs/kj/taskcounts").await;
    assert_eq!(c["taskCounts"], json!({"active": 1, "running": 1, "completed": 3, "succeeded": 2, "failed": 1}), "{c}");
    assert_eq!(c["taskSlotCounts"], json!({"active": 4, "running": 2, "completed": 3, "succeeded": 2, "failed": 1}), "{c}");

    // Terminate the running task.
    let r = svc.post("/jobs/kj/tasks/run/terminate").send().await;
    r.expect_status(204);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    assert_eq!(r.header("dataserviceid"), Some(format!("{}/jobs/kj/tasks/run/terminate", svc.base)));
    let t = svc.wait_task_completed("kj", "run", secs(10)).await;
    let e = &t["executionInfo"];
    assert_eq!(e["result"], "failure", "{t}");
    assert_eq!(e["failureInfo"]["code"], "TaskEnded", "{t}");
    assert_eq!(e["failureInfo"]["category"], "UserError", "{t}");
    ts(&e["startTime"]);
    ts(&e["endTime"]);
    svc.post("/jobs/kj/tasks/run/terminate").send().await.expect_error(409, "TaskCompleted");
    let n = poll("node idle again", secs(10), || async {
        let n = svc.get_json(&format!("/pools/kp/nodes/{node_id}")).await;
        (n["state"] == "idle").then_some(n)
    })
    .await;
    assert_eq!(n["runningTasksCount"], 0, "{n}");
    assert_eq!(n["runningTaskSlotsCount"], 0, "{n}");

    let c = svc.get_json("/jobs/kj/taskcounts").await;
    assert_eq!(c["taskCounts"], json!({"active": 1, "running": 0, "completed": 4, "succeeded": 2, "failed": 2}), "{c}");
    assert_eq!(c["taskSlotCounts"], json!({"active": 4, "running": 0, "completed": 5, "succeeded": 2, "failed": 3}), "{c}");

    // Delete a running task: it is gone, and the node is free again.
    svc.add_task("kj", "del", "/bin/sleep 30", json!({})).await;
    svc.wait_task_state("kj", "del", "running", secs(20)).await;
    svc.delete("/jobs/kj/tasks/del").send().await.expect_status(200);
    svc.get("/jobs/kj/tasks/del").send().await.expect_error(404, "TaskNotFound");
    poll("node idle after delete", secs(10), || async {
        let n = svc.get_json(&format!("/pools/kp/nodes/{node_id}")).await;
        (n["state"] == "idle" && n["runningTasksCount"] == 0).then_some(())
    })
    .await;

    // Terminating the job ends its running tasks.
    svc.add_task("kj", "last", "/bin/sleep 30", json!({})).await;
    svc.wait_task_state("kj", "last", "running", secs(20)).await;
    svc.post("/jobs/kj/terminate").send().await.expect_status(202);
    let t = svc.wait_task_completed("kj", "last", secs(10)).await;
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "TaskEnded", "{t}");
    let j = svc.get_json("/jobs/kj").await;
    assert_eq!(j["state"], "completed");
    assert_eq!(j["executionInfo"]["terminateReason"], "UserTerminate");
    // Active tasks of a terminated job stay active.
    assert_eq!(svc.get_json("/jobs/kj/tasks/big").await["state"], "active");
}

// ---------------------------------------------------------------------------------------
// Job disable and enable, auto pools, preparation and release tasks, statistics
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn job_disable_and_enable() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({"taskSlotsPerNode": 2})).await;
    svc.wait_pool_idle("p", 1, secs(20)).await;
    svc.add_job("j", "p", json!({})).await;
    svc.add_task("j", "long", "/bin/sleep 30", json!({})).await;
    svc.add_task("j", "waiter", "/bin/sleep 1", json!({})).await;
    svc.wait_task_state("j", "long", "running", secs(20)).await;
    svc.wait_task_state("j", "waiter", "running", secs(20)).await;

    // requeue: running tasks go back to active and nothing runs while disabled.
    svc.post("/jobs/j/disable").json(json!({"disableTasks": "requeue"})).send().await.expect_status(202);
    let j = svc.get_json("/jobs/j").await;
    assert_eq!(j["state"], "disabled", "{j}");
    assert_eq!(j["previousState"], "disabling", "{j}");
    let t = svc.wait_task_state("j", "long", "active", secs(10)).await;
    assert_eq!(t["executionInfo"]["requeueCount"], 1, "{t}");
    svc.add_task("j", "later", "/bin/true", json!({})).await;
    tokio::time::sleep(secs(1)).await;
    assert_eq!(svc.get_json("/jobs/j/tasks/later").await["state"], "active", "disabled jobs start nothing");
    svc.post("/jobs/j/disable").json(json!({"disableTasks": "requeue"})).send().await.expect_error(409, "JobNotActive");
    svc.post("/jobs/j/disable").json(json!({})).send().await.expect_error(400, "MissingRequiredProperty");
    svc.post("/jobs/j/disable").json(json!({"disableTasks": "sometimes"})).send().await.expect_error(400, "InvalidPropertyValue");

    // enable: the tasks run again.
    svc.post("/jobs/j/enable").send().await.expect_status(202);
    assert_eq!(svc.get_json("/jobs/j").await["state"], "active");
    svc.wait_task_completed("j", "later", secs(20)).await;
    svc.post("/jobs/j/enable").send().await.expect_error(409, "JobNotDisabled");

    // terminate: running tasks end with TaskEnded; wait: the job is disabling until they finish.
    svc.wait_task_state("j", "long", "running", secs(20)).await;
    svc.post("/jobs/j/disable").json(json!({"disableTasks": "terminate"})).send().await.expect_status(202);
    let t = svc.wait_task_completed("j", "long", secs(10)).await;
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "TaskEnded", "{t}");
    svc.post("/jobs/j/enable").send().await.expect_status(202);
    svc.add_task("j", "short", "/bin/sleep 1", json!({})).await;
    svc.wait_task_state("j", "short", "running", secs(20)).await;
    svc.post("/jobs/j/disable").json(json!({"disableTasks": "wait"})).send().await.expect_status(202);
    assert_eq!(svc.get_json("/jobs/j").await["state"], "disabling");
    let t = svc.wait_task_completed("j", "short", secs(10)).await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    poll("job disabled", secs(10), || async { (svc.get_json("/jobs/j").await["state"] == "disabled").then_some(()) }).await;
    let s = svc.get_json("/jobs/j/jobpreparationandreleasetaskstatus").await;
    assert_eq!(s["value"], json!([]));
}

#[tokio::test]
async fn auto_pools_live_and_die_with_their_job() {
    let svc = Service::start().await;
    let pool = json!({"vmSize": "STANDARD_A1", "targetDedicatedNodes": 1, "virtualMachineConfiguration": linux_pool("x", 1)["virtualMachineConfiguration"].clone()});
    let body =
        json!({"id": "aj", "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job", "autoPoolIdPrefix": "ap", "pool": pool}}});
    svc.post("/jobs").json(body).send().await.expect_status(201);
    let job = svc.get_json("/jobs/aj").await;
    let pool_id = job["executionInfo"]["poolId"].as_str().expect("an auto pool id").to_string();
    assert!(pool_id.starts_with("ap_") && pool_id.len() > 30, "{pool_id}");
    let spec = &job["poolInfo"]["autoPoolSpecification"];
    assert_eq!(spec["keepAlive"], false, "{job}");
    assert_eq!(spec["pool"]["vmSize"], "standard_a1", "defaults are echoed: {job}");
    assert_eq!(spec["pool"]["taskSlotsPerNode"], 1, "{job}");
    assert!(spec["pool"].get("id").is_none());
    svc.add_task("aj", "t", "/bin/sh -c \"echo $AZ_BATCH_POOL_ID\"", json!({})).await;
    let t = svc.wait_task_completed("aj", "t", secs(30)).await;
    assert_eq!(t["nodeInfo"]["poolId"], pool_id.as_str());
    assert_eq!(svc.task_file("aj", "t", "stdout.txt").await.trim(), pool_id);
    // Job Update with the same auto pool keeps it.
    let mut upd = json!({"priority": 5, "poolInfo": job["poolInfo"].clone()});
    upd["poolInfo"]["autoPoolSpecification"]["pool"]["vmSize"] = json!("standard_a1");
    svc.put("/jobs/aj").json(upd).send().await.expect_status(200);
    assert_eq!(svc.get_json("/jobs/aj").await["executionInfo"]["poolId"], pool_id.as_str());
    // The pool goes when the job completes.
    svc.post("/jobs/aj/terminate").send().await.expect_status(202);
    poll("auto pool deleted", secs(20), || async { (svc.get(&format!("/pools/{pool_id}")).send().await.status == 404).then_some(()) })
        .await;

    // keepAlive keeps it; jobschedule lifetimes are for job schedules.
    let keep = json!({"id": "kj", "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job", "keepAlive": true, "pool": {"vmSize": "a", "virtualMachineConfiguration": linux_pool("x", 0)["virtualMachineConfiguration"].clone()}}}});
    svc.post("/jobs").json(keep).send().await.expect_status(201);
    let kept = svc.get_json("/jobs/kj").await["executionInfo"]["poolId"].as_str().unwrap().to_string();
    svc.delete("/jobs/kj").send().await.expect_status(202);
    tokio::time::sleep(secs(1)).await;
    svc.get(&format!("/pools/{kept}")).send().await.expect_status(200);
    let bad = json!({"id": "sj", "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "jobschedule", "pool": {"vmSize": "a", "virtualMachineConfiguration": linux_pool("x", 0)["virtualMachineConfiguration"].clone()}}}});
    svc.post("/jobs").json(bad).send().await.expect_error(400, "InvalidPropertyValue");
    let nopool = json!({"id": "nj", "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job"}}});
    svc.post("/jobs").json(nopool).send().await.expect_error(400, "MissingRequiredProperty");
}

#[tokio::test]
async fn job_preparation_and_release_tasks() {
    let svc = Service::start().await;
    svc.add_pool("p", 2, json!({})).await;
    svc.wait_pool_idle("p", 2, secs(20)).await;
    let job = json!({
        "jobPreparationTask": {"commandLine": "/bin/sh -c \"echo prepared > $AZ_BATCH_NODE_SHARED_DIR/prep-$AZ_BATCH_JOB_ID.txt\""},
        "jobReleaseTask": {"commandLine": "/bin/sh -c \"echo released > $AZ_BATCH_NODE_SHARED_DIR/release-$AZ_BATCH_JOB_ID.txt\""},
    });
    svc.add_job("pj", "p", job).await;
    let j = svc.get_json("/jobs/pj").await;
    let prep = &j["jobPreparationTask"];
    assert_eq!(prep["id"], "jobpreparation", "{j}");
    assert_eq!(prep["waitForSuccess"], true);
    assert_eq!(prep["rerunOnNodeRebootAfterSuccess"], true);
    assert_eq!(prep["constraints"]["retentionTime"], "P7D");
    assert_eq!(j["jobReleaseTask"]["id"], "jobrelease");
    assert_eq!(j["jobReleaseTask"]["maxWallClockTime"], "PT15M");
    // Tasks see the preparation's directory, which already holds its output.
    svc.add_task("pj", "t", "/bin/sh -c \"cat $AZ_BATCH_NODE_SHARED_DIR/prep-$AZ_BATCH_JOB_ID.txt; ls $AZ_BATCH_JOB_PREP_DIR\"", json!({}))
        .await;
    let t = svc.wait_task_completed("pj", "t", secs(20)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    let out = svc.task_file("pj", "t", "stdout.txt").await;
    assert!(out.starts_with("prepared\n") && out.contains("stdout.txt"), "{out}");
    let status = svc.get_json("/jobs/pj/jobpreparationandreleasetaskstatus").await;
    let rows = status["value"].as_array().unwrap().clone();
    assert!(!rows.is_empty(), "{status}");
    let ran = rows.iter().find(|r| r["nodeId"] == t["nodeInfo"]["nodeId"]).expect("the task's node prepared");
    let info = &ran["jobPreparationTaskExecutionInfo"];
    assert_eq!(
        (info["state"].clone(), info["result"].clone(), info["exitCode"].clone()),
        (json!("completed"), json!("success"), json!(0)),
        "{ran}"
    );
    assert!(info["taskRootDirectory"].as_str().unwrap().ends_with("job-1/jobpreparation"));
    assert!(ran.get("jobReleaseTaskExecutionInfo").is_none());
    // Terminating runs the release task on the prepared nodes, then the job completes.
    svc.post("/jobs/pj/terminate").send().await.expect_status(202);
    let done = poll("job completed after release", secs(20), || async {
        let j = svc.get_json("/jobs/pj").await;
        (j["state"] == "completed").then_some(j)
    })
    .await;
    assert_eq!(done["previousState"], "terminating");
    let status = svc.get_json("/jobs/pj/jobpreparationandreleasetaskstatus").await;
    for row in status["value"].as_array().unwrap() {
        assert_eq!(row["jobReleaseTaskExecutionInfo"]["state"], "completed", "{row}");
        assert_eq!(row["jobReleaseTaskExecutionInfo"]["exitCode"], 0, "{row}");
    }
    let node = t["nodeInfo"]["nodeId"].as_str().unwrap();
    let r = svc.get(&format!("/pools/p/nodes/{node}/files/shared%2Frelease-pj.txt")).send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "released\n");

    // A failing preparation task keeps the job's tasks off its nodes.
    svc.add_job(
        "bad",
        "p",
        json!({"jobPreparationTask": {"commandLine": "/bin/sh -c \"exit 9\"", "constraints": {"maxTaskRetryCount": 1}}}),
    )
    .await;
    svc.add_task("bad", "never", "/bin/true", json!({})).await;
    poll("preparations failed", secs(20), || async {
        let s = svc.get_json("/jobs/bad/jobpreparationandreleasetaskstatus").await;
        let rows = s["value"].as_array().cloned().unwrap_or_default();
        (rows.len() == 2 && rows.iter().all(|r| r["jobPreparationTaskExecutionInfo"]["result"] == "failure")).then_some(rows)
    })
    .await
    .iter()
    .for_each(|r| assert_eq!(r["jobPreparationTaskExecutionInfo"]["retryCount"], 1, "{r}"));
    tokio::time::sleep(secs(1)).await;
    assert_eq!(svc.get_json("/jobs/bad/tasks/never").await["state"], "active");
    svc.add_job("nop", "p", json!({"jobPreparationTask": {"commandLine": "/bin/sh -c \"exit 9\"", "waitForSuccess": false}})).await;
    svc.add_task("nop", "runs", "/bin/true", json!({})).await;
    svc.wait_task_completed("nop", "runs", secs(20)).await;
    let e = svc
        .post("/jobs")
        .json(json!({"id": "e", "poolInfo": {"poolId": "p"}, "jobReleaseTask": {"commandLine": ""}}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_eq!(e["values"][0]["value"], "jobReleaseTask.commandLine", "{e}");
}

#[tokio::test]
async fn lifetime_job_statistics_add_up_completed_tasks() {
    let svc = Service::start().await;
    let before = svc.get_json("/lifetimejobstats").await;
    assert!(before["odata.metadata"].as_str().unwrap().ends_with("#jobstats/@Element"), "{before}");
    assert_eq!(before["numSucceededTasks"], "0");
    svc.add_pool("p", 1, json!({})).await;
    svc.add_job("j", "p", json!({})).await;
    // Burn some CPU in user mode, so the kernel's accounting shows it.
    svc.add_task("j", "busy", "/bin/sh -c \"i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done\"", json!({})).await;
    svc.add_task("j", "fails", "/bin/sh -c \"exit 1\"", json!({"constraints": {"maxTaskRetryCount": 1}})).await;
    svc.wait_task_completed("j", "busy", secs(60)).await;
    svc.wait_task_completed("j", "fails", secs(20)).await;
    let s = svc.get_json("/lifetimejobstats").await;
    assert_eq!(s["numSucceededTasks"], "1", "{s}");
    assert_eq!(s["numFailedTasks"], "1", "{s}");
    assert_eq!(s["numTaskRetries"], "1", "{s}");
    let user = s["userCPUTime"].as_str().unwrap();
    assert_ne!(user, "PT0S", "the busy loop used CPU: {s}");
    assert!(s["readIOGiB"].is_number() && s["wallClockTime"].as_str().unwrap().starts_with("PT"), "{s}");
    assert!(ts(&s["lastUpdateTime"]) >= ts(&before["lastUpdateTime"]));
    // A terminated task counts as failed too.
    svc.add_task("j", "long", "/bin/sleep 30", json!({})).await;
    svc.wait_task_state("j", "long", "running", secs(20)).await;
    svc.post("/jobs/j/tasks/long/terminate").send().await.expect_status(204);
    assert_eq!(svc.get_json("/lifetimejobstats").await["numFailedTasks"], "2");
}
