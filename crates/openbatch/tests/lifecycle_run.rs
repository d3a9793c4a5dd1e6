//! The job and task lifecycle with real processes, over HTTP: task dependencies, exit
//! conditions and `onTaskFailure`, a job manager task that adds a task with its
//! authentication token, Task Reactivate, the job's `maxWallClockTime`, task retention
//! and Delete Job running the job release task first.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn time(t: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    let s = t["executionInfo"][field].as_str().unwrap_or_else(|| panic!("no {field}: {t}"));
    chrono::DateTime::parse_from_rfc3339(s).expect("a time").with_timezone(&chrono::Utc)
}

async fn wait_job_completed(svc: &Service, job: &str) -> Value {
    let path = format!("/jobs/{job}");
    poll(&format!("job {job} completed"), WAIT, || async {
        let j = svc.get_json(&path).await;
        (j["state"] == "completed").then_some(j)
    })
    .await
}

#[tokio::test]
async fn dependents_run_after_their_dependencies_and_failures_block() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({"taskSlotsPerNode": 4})).await;
    svc.wait_pool_idle("p", 1, WAIT).await;
    svc.add_job("j", "p", json!({"usesTaskDependencies": true})).await;
    let sleep = "/bin/sh -c 'sleep 0.3'";
    svc.add_task("j", "merge", "/bin/true", json!({"dependsOn": {"taskIds": ["b"], "taskIdRanges": [{"start": 1, "end": 2}]}})).await;
    svc.add_task("j", "b", sleep, json!({"dependsOn": {"taskIds": ["a"]}})).await;
    svc.add_task("j", "a", sleep, json!({})).await;
    svc.add_task("j", "1", sleep, json!({})).await;
    svc.add_task("j", "02", sleep, json!({})).await;
    let exit3 = json!({"exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]}});
    svc.add_task("j", "soft", "/bin/sh -c 'exit 3'", exit3).await;
    svc.add_task("j", "hard", "/bin/sh -c 'exit 2'", json!({})).await;
    svc.add_task("j", "after-soft", "/bin/true", json!({"dependsOn": {"taskIds": ["soft"]}})).await;
    svc.add_task("j", "after-hard", "/bin/true", json!({"dependsOn": {"taskIds": ["hard"]}})).await;

    let merge = svc.wait_task_completed("j", "merge", WAIT).await;
    let (a, b) = (svc.wait_task_completed("j", "a", WAIT).await, svc.wait_task_completed("j", "b", WAIT).await);
    assert!(time(&b, "startTime") >= time(&a, "endTime"), "b started before a ended: {a} {b}");
    for dep in ["b", "1", "02"] {
        let d = svc.wait_task_completed("j", dep, WAIT).await;
        assert!(time(&merge, "startTime") >= time(&d, "endTime"), "merge started before {dep} ended");
    }
    svc.wait_task_completed("j", "after-soft", WAIT).await;
    svc.wait_task_completed("j", "hard", WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = svc.get_json("/jobs/j/tasks/after-hard").await;
    assert_eq!(t["state"], "active", "a failed dependency blocks: {t}");
    let counts = svc.get_json("/jobs/j/taskcounts").await;
    assert_eq!(counts["taskCounts"]["active"], 1, "{counts}");
}

#[tokio::test]
async fn a_failed_task_terminates_its_job_with_perform_exit_options() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.add_job("j", "p", json!({"onTaskFailure": "performexitoptionsjobaction"})).await;
    let none = json!({"exitConditions": {"exitCodes": [{"code": 5, "exitOptions": {"jobAction": "none"}}]}});
    svc.add_task("j", "five", "/bin/sh -c 'exit 5'", none).await;
    svc.wait_task_completed("j", "five", WAIT).await;
    assert_eq!(svc.get_json("/jobs/j").await["state"], "active");
    svc.add_task("j", "bad", "/bin/sh -c 'exit 1'", json!({})).await;
    let j = wait_job_completed(&svc, "j").await;
    assert_eq!(j["executionInfo"]["terminateReason"], "TaskFailed", "{j}");
}

#[tokio::test]
async fn a_job_manager_adds_a_task_with_its_token_and_ends_the_job() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({"taskSlotsPerNode": 2})).await;
    let jm = json!({
        "id": "jm",
        "commandLine": "/bin/sh -c 'printf %s \"$AZ_BATCH_AUTHENTICATION_TOKEN\" > token.txt; while [ ! -f go ]; do sleep 0.1; done'",
        "authenticationTokenSettings": {"access": ["job"]},
        "runExclusive": false
    });
    svc.add_job("j", "p", json!({"jobManagerTask": jm})).await;
    let job = svc.get_json("/jobs/j").await;
    assert_eq!(job["jobManagerTask"]["killJobOnCompletion"], true, "{job}");
    svc.wait_task_state("j", "jm", "running", WAIT).await;
    let token = poll("the job manager's token", WAIT, || async {
        let r = svc.get("/jobs/j/tasks/jm/files/wd/token.txt").send().await;
        (r.status.as_u16() == 200 && !r.text().is_empty()).then(|| r.text())
    })
    .await;
    // With its token the job manager may add tasks to its job, and nothing else.
    let task = json!({"id": "child", "commandLine": "/bin/sh -c 'touch ../../jm/wd/go'"});
    bearer(&svc.client, &svc.base, Method::POST, "/jobs/j/tasks", &token, Some(task)).await.expect_status(201);
    bearer(&svc.client, &svc.base, Method::GET, "/pools", &token, None).await.expect_status(403);
    svc.wait_task_completed("j", "child", WAIT).await;
    let j = wait_job_completed(&svc, "j").await;
    assert_eq!(j["executionInfo"]["terminateReason"], "JMComplete", "{j}");
    let jm = svc.get_json("/jobs/j/tasks/jm").await;
    assert_eq!(jm["executionInfo"]["result"], "success", "{jm}");
}

#[tokio::test]
async fn reactivate_runs_a_failed_task_again() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.add_job("j", "p", json!({})).await;
    let once = "/bin/sh -c 'test -f \"$AZ_BATCH_NODE_SHARED_DIR/m\" || { touch \"$AZ_BATCH_NODE_SHARED_DIR/m\"; exit 1; }'";
    svc.add_task("j", "t", once, json!({})).await;
    let t = svc.wait_task_completed("j", "t", WAIT).await;
    assert_eq!(t["executionInfo"]["result"], "failure");
    svc.post("/jobs/j/tasks/t/reactivate").send().await.expect_status(204);
    let t = poll("t succeeded", WAIT, || async {
        let t = svc.get_json("/jobs/j/tasks/t").await;
        (t["state"] == "completed" && t["executionInfo"]["result"] == "success").then_some(t)
    })
    .await;
    assert_eq!(t["executionInfo"]["retryCount"], 0);
    svc.post("/jobs/j/tasks/t/reactivate").send().await.expect_error(409, "TaskCompletedSuccessfully");
}

#[tokio::test]
async fn a_job_past_its_max_wall_clock_time_ends() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.add_job("j", "p", json!({"constraints": {"maxWallClockTime": "PT2S"}})).await;
    svc.add_task("j", "long", "/bin/sh -c 'sleep 60'", json!({})).await;
    let j = wait_job_completed(&svc, "j").await;
    assert_eq!(j["executionInfo"]["terminateReason"], "MaxWallClockTimeExpiry", "{j}");
    let t = svc.wait_task_completed("j", "long", WAIT).await;
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "TaskEnded", "{t}");
}

#[tokio::test]
async fn a_task_directory_goes_after_its_retention_time() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.add_job("j", "p", json!({})).await;
    svc.add_task("j", "brief", "/bin/sh -c 'echo kept'", json!({"constraints": {"retentionTime": "PT2S"}})).await;
    svc.add_task("j", "kept", "/bin/sh -c 'echo kept'", json!({})).await;
    svc.wait_task_completed("j", "brief", WAIT).await;
    svc.wait_task_completed("j", "kept", WAIT).await;
    assert_eq!(svc.task_file("j", "brief", "stdout.txt").await, "kept\n");
    poll("brief's files unavailable", WAIT, || async {
        let r = svc.get("/jobs/j/tasks/brief/files/stdout.txt").send().await;
        (r.status == 409).then_some(r)
    })
    .await
    .expect_error(409, "TaskFilesUnavailable");
    svc.get("/jobs/j/tasks/brief/files?recursive=true").send().await.expect_error(409, "TaskFilesUnavailable");
    assert_eq!(svc.task_file("j", "kept", "stdout.txt").await, "kept\n", "the default retention is 7 days");
    // Delete Task takes its files with it: a new task of the same id starts afresh.
    svc.delete("/jobs/j/tasks/kept").send().await.expect_status(200);
    svc.add_task("j", "kept", "/bin/sh -c 'ls'", json!({})).await;
    svc.wait_task_completed("j", "kept", WAIT).await;
    let listing = svc.get_json("/jobs/j/tasks/kept/files?recursive=true").await;
    assert!(listing["value"].as_array().is_some_and(|v| !v.is_empty()), "{listing}");
}

#[tokio::test]
async fn delete_job_runs_its_release_task_first() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    let release = "/bin/sh -c 'sleep 1; touch \"$AZ_BATCH_NODE_SHARED_DIR/released-$AZ_BATCH_JOB_ID\"'";
    svc.add_job("j", "p", json!({"jobPreparationTask": {"commandLine": "/bin/true"}, "jobReleaseTask": {"commandLine": release}})).await;
    svc.add_task("j", "t", "/bin/sh -c 'sleep 30'", json!({})).await;
    svc.wait_task_state("j", "t", "running", WAIT).await;
    svc.delete("/jobs/j").send().await.expect_status(202);
    assert_eq!(svc.get_json("/jobs/j").await["state"], "deleting", "while its release task runs");
    svc.delete("/jobs/j").send().await.expect_error(409, "JobBeingDeleted");
    poll("job j gone", WAIT, || async { (svc.get("/jobs/j").send().await.status == 404).then_some(()) }).await;
    svc.add_job("check", "p", json!({})).await;
    svc.add_task("check", "c", "/bin/sh -c 'test -f \"$AZ_BATCH_NODE_SHARED_DIR/released-j\"'", json!({})).await;
    let c = svc.wait_task_completed("check", "c", WAIT).await;
    assert_eq!(c["executionInfo"]["exitCode"], 0, "the release task ran before the job went: {c}");
}
