//! HTTP integration tests of tasks and files, driven through a real `openbatch serve`
//! process (and its node agents) with SharedKey-signed requests: task add, get, list,
//! update, terminate and delete; Add Task Collection; environment, command line and results;
//! retries and the wall clock limit; required slots; task and node files, their URLs, and a
//! range on an empty file; and the pool environment (virtual networks and custom image ids
//! refused or accepted, defaults the service fills in, mounts Linux nodes cannot make).
//!
//! The protocol, pools and nodes are tested in `http_api.rs`, jobs (and task counts) in
//! `jobs_api.rs`; the helpers the three share are in `common/mod.rs`.
//!
//! Each test starts its own service on a free port with its own data directory, so tests run
//! in parallel and never share state.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------
// Tasks: add, get, list, update, terminate, delete (on a pool without nodes, so tasks stay
// active)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn task_add_get_list_update_terminate_delete() {
    let svc = Service::start().await;
    svc.add_pool("idle", 0, json!({})).await;
    svc.add_job("tj", "idle", json!({})).await;

    let r = svc.post("/jobs/tj/tasks").json(json!({"id": "t1", "commandLine": "/bin/echo hi", "displayName": "T1"})).send().await;
    r.expect_status(201);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    let url = format!("{}/jobs/tj/tasks/t1", svc.base);
    assert_eq!(r.header("location").as_deref(), Some(url.as_str()));
    assert_eq!(r.header("dataserviceid").as_deref(), Some(url.as_str()));
    let etag_add = r.header("etag").unwrap();

    // What openbatch cannot run is refused, never silently ignored; bad data settings too.
    for (extra, prop, code) in [
        (
            json!({"resourceFiles": [{"httpUrl": "http://127.0.0.1:9/x", "filePath": "../x"}]}),
            "resourceFiles[0].filePath",
            "InvalidPropertyValue",
        ),
        (
            json!({"outputFiles": [{"filePattern": "*.txt", "destination": {}, "uploadOptions": {"uploadCondition": "taskcompletion"}}]}),
            "outputFiles[0].destination.container.containerUrl",
            "MissingRequiredProperty",
        ),
        (json!({"environmentSettings": [{"name": "", "value": "x"}]}), "environmentSettings.name", "InvalidPropertyValue"),
    ] {
        let mut body = json!({"id": "refused", "commandLine": "/bin/true"});
        merge(&mut body, extra);
        let e = svc.post("/jobs/tj/tasks").json(body).send().await.expect_error(400, code);
        assert_eq!(e["values"][0]["value"], prop, "{e}");
    }
    // The job was added without usesTaskDependencies (tests/lifecycle_api.rs covers the rest).
    svc.post("/jobs/tj/tasks")
        .json(json!({"id": "refused", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["t1"]}}))
        .send()
        .await
        .expect_error(400, "TaskDependenciesNotSpecifiedOnJob");
    svc.get("/jobs/tj/tasks/refused").send().await.expect_error(404, "TaskNotFound");

    svc.post("/jobs/tj/tasks").json(json!({"id": "t1", "commandLine": "x"})).send().await.expect_error(409, "TaskExists");
    svc.post("/jobs/tj/tasks").json(json!({"id": "T1", "commandLine": "x"})).send().await.expect_error(409, "TaskExists");
    svc.post("/jobs/nojob/tasks").json(json!({"id": "t1", "commandLine": "x"})).send().await.expect_error(404, "JobNotFound");
    let r = svc.post("/jobs/tj/tasks").json(json!({"id": "t9"})).send().await;
    r.expect_error(400, "MissingRequiredProperty");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("commandLine"), "{r:?}");
    let r = svc.post("/jobs/tj/tasks").json(json!({"id": "t9", "commandLine": "x", "wat": 1})).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("wat"), "{r:?}");
    svc.post("/jobs/tj/tasks").json(json!({"id": "t 9", "commandLine": "x"})).send().await.expect_error(400, "InvalidPropertyValue");
    svc.post("/jobs/tj/tasks")
        .json(json!({"id": "t9", "commandLine": "x", "requiredSlots": 0}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");

    // Get: defaults filled in.
    let r = svc.get("/jobs/tj/tasks/t1").send().await;
    r.expect_status(200);
    assert_entity_headers(&r);
    let t = r.json();
    assert_eq!(t["odata.metadata"], format!("{}/$metadata#tasks/@Element", svc.base));
    assert_eq!(t["id"], "t1");
    assert_eq!(t["url"], url);
    assert_eq!(t["eTag"], etag_add.as_str());
    assert_eq!(t["displayName"], "T1");
    assert_eq!(t["state"], "active");
    assert_eq!(t["commandLine"], "/bin/echo hi");
    assert_eq!(t["requiredSlots"], 1);
    assert_eq!(t["constraints"], json!({"maxWallClockTime": UNLIMITED, "retentionTime": "P7D", "maxTaskRetryCount": 0}));
    assert_eq!(t["userIdentity"], json!({"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}));
    assert_eq!(t["executionInfo"]["retryCount"], 0);
    assert_eq!(t["executionInfo"]["requeueCount"], 0);
    ts(&t["creationTime"]);
    svc.get("/jobs/tj/tasks/nope").send().await.expect_error(404, "TaskNotFound");
    svc.get("/jobs/nojob/tasks/t1").send().await.expect_error(404, "JobNotFound");
    svc.get("/jobs/nojob/tasks").send().await.expect_error(404, "JobNotFound");

    // List, with paging.
    for id in ["t2", "t3", "t4"] {
        svc.add_task("tj", id, "/bin/true", json!({})).await;
    }
    let list = svc.get_json("/jobs/tj/tasks").await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("/$metadata#tasks"), "{list}");
    assert_eq!(ids(&list), vec!["t1", "t2", "t3", "t4"]);
    let mut seen = Vec::new();
    let mut page = svc.get_json("/jobs/tj/tasks?maxresults=3").await;
    loop {
        seen.extend(ids(&page));
        let Some(next) = page.get("odata.nextLink").and_then(Value::as_str).map(str::to_string) else { break };
        let r = svc.req_url(Method::GET, &next).send().await;
        r.expect_status(200);
        page = r.json();
    }
    assert_eq!(seen, vec!["t1", "t2", "t3", "t4"]);

    // Update (PUT): new constraints.
    let r = svc.put("/jobs/tj/tasks/t1").json(json!({"constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 3}})).send().await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    assert_ne!(r.header("etag").unwrap(), etag_add);
    let t = svc.get_json("/jobs/tj/tasks/t1").await;
    assert_eq!(t["constraints"]["maxWallClockTime"], "PT1H");
    assert_eq!(t["constraints"]["maxTaskRetryCount"], 3);
    assert_eq!(t["constraints"]["retentionTime"], "P7D");
    assert_eq!(t["commandLine"], "/bin/echo hi");
    svc.put("/jobs/tj/tasks/nope").json(json!({"constraints": {}})).send().await.expect_error(404, "TaskNotFound");
    svc.put("/jobs/tj/tasks/t1").json(json!({"commandLine": "x"})).send().await.expect_error(400, "InvalidPropertyValue");

    // Terminate an active task: completed, never started.
    let r = svc.post("/jobs/tj/tasks/t2/terminate").send().await;
    r.expect_status(204);
    assert!(r.body.is_empty());
    let t = svc.get_json("/jobs/tj/tasks/t2").await;
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(t["executionInfo"]["result"], "failure", "{t}");
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "TaskEnded", "{t}");
    assert!(t["executionInfo"].get("startTime").is_none(), "{t}");
    assert!(t["executionInfo"].get("exitCode").is_none(), "{t}");
    svc.post("/jobs/tj/tasks/t2/terminate").send().await.expect_error(409, "TaskCompleted");
    svc.put("/jobs/tj/tasks/t2").json(json!({"constraints": {"maxTaskRetryCount": 1}})).send().await.expect_error(409, "TaskCompleted");
    svc.post("/jobs/tj/tasks/nope/terminate").send().await.expect_error(404, "TaskNotFound");

    // Delete.
    let r = svc.delete("/jobs/tj/tasks/t1").send().await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    svc.get("/jobs/tj/tasks/t1").send().await.expect_error(404, "TaskNotFound");
    svc.delete("/jobs/tj/tasks/t1").send().await.expect_error(404, "TaskNotFound");
    svc.delete("/jobs/tj/tasks/t2").send().await.expect_status(200);
    assert_eq!(ids(&svc.get_json("/jobs/tj/tasks").await), vec!["t3", "t4"]);
    // The id can be used again.
    svc.add_task("tj", "t1", "/bin/true", json!({})).await;
}

#[tokio::test]
async fn add_task_collection() {
    let svc = Service::start().await;
    svc.add_job("cj", "nopool", json!({})).await;

    let r = svc
        .post("/jobs/cj/addtaskcollection")
        .json(json!({"value": [
            {"id": "a", "commandLine": "/bin/true"},
            {"id": "b", "commandLine": "/bin/true"},
            {"id": "a", "commandLine": "/bin/false"}
        ]}))
        .send()
        .await;
    r.expect_status(200);
    let v = r.json();
    assert!(v["odata.metadata"].as_str().unwrap().ends_with("/$metadata#taskaddresult"), "{v}");
    let results = v["value"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{v}");
    let of = |id: &str| results.iter().filter(|x| x["taskId"] == id).cloned().collect::<Vec<_>>();
    let a = of("a");
    assert_eq!(a.len(), 2, "{v}");
    let ok: Vec<&Value> = a.iter().filter(|x| x["status"] == "Success").collect();
    let dup: Vec<&Value> = a.iter().filter(|x| x["status"] == "ClientError").collect();
    assert_eq!((ok.len(), dup.len()), (1, 1), "one a added, one refused: {v}");
    assert_eq!(dup[0]["error"]["code"], "TaskExists", "{v}");
    assert!(dup[0]["error"]["message"]["value"].is_string(), "{v}");
    assert!(dup[0].get("eTag").is_none() && dup[0].get("location").is_none(), "{v}");
    for s in [ok[0], &of("b")[0]] {
        assert_eq!(s["status"], "Success", "{v}");
        assert!(is_etag(s["eTag"].as_str().unwrap()), "{s}");
        ts(&s["lastModified"]);
        assert_eq!(s["location"], format!("{}/jobs/cj/tasks/{}", svc.base, s["taskId"].as_str().unwrap()));
    }
    // The one added is the first of the two.
    assert_eq!(svc.get_json("/jobs/cj/tasks/a").await["commandLine"], "/bin/true");

    // A task that exists from an earlier request.
    let v = svc
        .post("/jobs/cj/addtaskcollection")
        .json(json!({"value": [{"id": "B", "commandLine": "/bin/true"}, {"id": "c", "commandLine": "/bin/true"}]}))
        .send()
        .await;
    v.expect_status(200);
    let v = v.json();
    let results = v["value"].as_array().unwrap();
    let b = results.iter().find(|x| x["taskId"] == "B").expect("a result for B");
    assert_eq!(b["status"], "ClientError", "{v}");
    assert_eq!(b["error"]["code"], "TaskExists", "{v}");
    let c = results.iter().find(|x| x["taskId"] == "c").expect("a result for c");
    assert_eq!(c["status"], "Success", "{v}");

    assert_eq!(ids(&svc.get_json("/jobs/cj/tasks").await), vec!["a", "b", "c"]);

    // More than 100 tasks: the whole request fails, nothing is added.
    let many: Vec<Value> = (0..101).map(|i| json!({"id": format!("m{i}"), "commandLine": "/bin/true"})).collect();
    let r = svc.post("/jobs/cj/addtaskcollection").json(json!({"value": many})).send().await;
    r.expect_status(400);
    assert!(r.json()["code"].is_string(), "{r:?}");
    // Exactly 100 is fine.
    let hundred: Vec<Value> = (0..100).map(|i| json!({"id": format!("h{i}"), "commandLine": "/bin/true"})).collect();
    let r = svc.post("/jobs/cj/addtaskcollection").json(json!({"value": hundred})).send().await;
    r.expect_status(200);
    assert!(r.json()["value"].as_array().unwrap().iter().all(|x| x["status"] == "Success"), "{r:?}");

    // More than 1 MiB: 413.
    let big = "x".repeat(120 * 1024);
    let heavy: Vec<Value> = (0..10).map(|i| json!({"id": format!("big{i}"), "commandLine": format!("/bin/echo {big}")})).collect();
    let r = svc.post("/jobs/cj/addtaskcollection").json(json!({"value": heavy})).send().await;
    r.expect_error(413, "RequestBodyTooLarge");
    assert_eq!(r.error_value("MaxLimit").as_deref(), Some("1048576"), "{r:?}");

    let list = svc.get_json("/jobs/cj/tasks").await;
    let all = ids(&list);
    assert_eq!(all.len(), 103, "a, b, c and h0..h99");
    assert!(!all.iter().any(|i| i.starts_with('m') || i.starts_with("big")), "refused requests added tasks");

    svc.post("/jobs/nojob/addtaskcollection")
        .json(json!({"value": [{"id": "a", "commandLine": "/bin/true"}]}))
        .send()
        .await
        .expect_error(404, "JobNotFound");
}

// ---------------------------------------------------------------------------------------
// Task execution
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn task_environment_command_line_and_results() {
    let svc = Service::start().await;
    svc.add_pool("xp", 1, json!({"taskSlotsPerNode": 8})).await;
    let nodes = svc.wait_pool_idle("xp", 1, secs(20)).await;
    let node_id = nodes[0]["id"].as_str().unwrap().to_string();
    svc.add_job(
        "xj",
        "xp",
        json!({"commonEnvironmentSettings": [{"name": "COMMON", "value": "common-val"}, {"name": "OVERRIDE", "value": "job"}]}),
    )
    .await;

    let tasks = json!({"value": [
        {"id": "env", "commandLine": "/bin/sh -c 'echo \"task=$AZ_BATCH_TASK_ID job=$AZ_BATCH_JOB_ID mine=$MINE common=$COMMON override=$OVERRIDE\"'",
         "environmentSettings": [{"name": "MINE", "value": "my-val"}, {"name": "OVERRIDE", "value": "task"}]},
        {"id": "noshell", "commandLine": "echo $HOME"},
        {"id": "quoting", "commandLine": "printf '%s|' \"a b\" c"},
        {"id": "wd", "commandLine": "/bin/sh -c 'pwd; echo \"$AZ_BATCH_TASK_WORKING_DIR\"'"},
        {"id": "ok", "commandLine": "/bin/true"},
        {"id": "exit7", "commandLine": "/bin/sh -c 'exit 7'"},
        {"id": "notfound", "commandLine": "/definitely/not/here/prog arg"},
        {"id": "notfound2", "commandLine": "no-such-program-openbatch-xyz"}
    ]});
    let r = svc.post("/jobs/xj/addtaskcollection").json(tasks).send().await;
    r.expect_status(200);
    assert!(r.json()["value"].as_array().unwrap().iter().all(|x| x["status"] == "Success"), "{r:?}");

    let mut done = BTreeMap::new();
    for id in ["env", "noshell", "quoting", "wd", "ok", "exit7", "notfound", "notfound2"] {
        done.insert(id, svc.wait_task_completed("xj", id, secs(20)).await);
    }

    assert_eq!(svc.task_file("xj", "env", "stdout.txt").await, "task=env job=xj mine=my-val common=common-val override=task\n");
    assert_eq!(svc.task_file("xj", "noshell", "stdout.txt").await, "$HOME\n", "the command line ran in a shell");
    assert_eq!(svc.task_file("xj", "quoting", "stdout.txt").await, "a b|c|");
    let wd = svc.task_file("xj", "wd", "stdout.txt").await;
    let lines: Vec<&str> = wd.lines().collect();
    assert_eq!(lines.len(), 2, "{wd}");
    assert_eq!(lines[0], lines[1], "the working directory is AZ_BATCH_TASK_WORKING_DIR");
    assert!(lines[0].ends_with("/workitems/xj/job-1/wd/wd"), "{wd}");

    let ok = &done["ok"];
    let e = &ok["executionInfo"];
    assert_eq!(e["exitCode"], 0, "{ok}");
    assert_eq!(e["result"], "success", "{ok}");
    assert!(e.get("failureInfo").is_none(), "{ok}");
    assert!(ts(&e["startTime"]) <= ts(&e["endTime"]), "{ok}");
    assert_eq!(ok["previousState"], "running", "{ok}");
    let ni = &ok["nodeInfo"];
    assert_eq!(ni["poolId"], "xp");
    assert_eq!(ni["nodeId"], node_id.as_str());
    assert_eq!(ni["taskRootDirectory"], "workitems/xj/job-1/ok");
    assert_eq!(ni["nodeUrl"], format!("{}/pools/xp/nodes/{node_id}", svc.base));

    let x = &done["exit7"];
    let e = &x["executionInfo"];
    assert_eq!(e["exitCode"], 7, "{x}");
    assert_eq!(e["result"], "failure", "{x}");
    assert_eq!(e["failureInfo"]["code"], "FailureExitCode", "{x}");
    assert_eq!(e["failureInfo"]["category"], "UserError", "{x}");
    assert_eq!(e["retryCount"], 0, "{x}");

    for id in ["notfound", "notfound2"] {
        let x = &done[id];
        let e = &x["executionInfo"];
        assert_eq!(e["result"], "failure", "{x}");
        assert_eq!(e["failureInfo"]["code"], "CommandProgramNotFound", "{x}");
        assert_eq!(e["failureInfo"]["category"], "UserError", "{x}");
        assert!(e.get("exitCode").is_none(), "no process, no exit code: {x}");
        assert_eq!(e["retryCount"], 0, "{x}");
    }

    // The node counts what it ran.
    let n = svc.get_json(&format!("/pools/xp/nodes/{node_id}")).await;
    assert_eq!(n["totalTasksRun"], 8, "{n}");
    assert_eq!(n["runningTasksCount"], 0, "{n}");
    assert_eq!(n["state"], "idle", "{n}");
}

#[tokio::test]
async fn task_retries_and_wall_clock_limit() {
    let svc = Service::start().await;
    svc.add_pool("rp", 1, json!({"taskSlotsPerNode": 4})).await;
    let nodes = svc.wait_pool_idle("rp", 1, secs(20)).await;
    let node_id = nodes[0]["id"].as_str().unwrap().to_string();
    svc.add_job("rj", "rp", json!({})).await;

    svc.add_task(
        "rj",
        "retry",
        "/bin/sh -c 'echo try >> \"$AZ_BATCH_NODE_SHARED_DIR/retries\"; exit 1'",
        json!({"constraints": {"maxTaskRetryCount": 2}}),
    )
    .await;
    svc.add_task("rj", "slow", "/bin/sleep 30", json!({"constraints": {"maxWallClockTime": "PT1S"}})).await;
    svc.add_task("rj", "notfound", "/no/such/program", json!({"constraints": {"maxTaskRetryCount": 3}})).await;

    let t = svc.wait_task_completed("rj", "retry", secs(20)).await;
    let e = &t["executionInfo"];
    assert_eq!(e["retryCount"], 2, "{t}");
    assert_eq!(e["exitCode"], 1, "{t}");
    assert_eq!(e["result"], "failure", "{t}");
    assert_eq!(e["failureInfo"]["code"], "FailureExitCode", "{t}");
    ts(&e["lastRetryTime"]);
    let r = svc.get(&format!("/pools/rp/nodes/{node_id}/files/shared%2Fretries")).send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "try\ntry\ntry\n", "1 run + 2 retries");

    let t = svc.wait_task_completed("rj", "slow", secs(20)).await;
    let e = &t["executionInfo"];
    assert_eq!(e["result"], "failure", "{t}");
    assert!(e["failureInfo"]["code"].is_string(), "{t}");
    let ran = ts(&e["endTime"]) - ts(&e["startTime"]);
    assert!(ran >= chrono::Duration::milliseconds(900) && ran < chrono::Duration::seconds(10), "ran for {ran}: {t}");

    // A launch failure is not retried.
    let t = svc.wait_task_completed("rj", "notfound", secs(20)).await;
    assert_eq!(t["executionInfo"]["retryCount"], 0, "{t}");
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "CommandProgramNotFound", "{t}");
}

#[tokio::test]
async fn required_slots_and_task_slots_per_node() {
    let svc = Service::start().await;
    svc.add_pool("cp", 1, json!({"taskSlotsPerNode": 2})).await;
    svc.wait_pool_idle("cp", 1, secs(20)).await;
    svc.add_job("cj", "cp", json!({})).await;

    // `big` needs more slots than any node has: it never runs, and does not block others.
    svc.add_task("cj", "big", "/bin/true", json!({"requiredSlots": 3})).await;
    let r = svc
        .post("/jobs/cj/addtaskcollection")
        .json(json!({"value": [
            {"id": "a", "commandLine": "/bin/sleep 1"},
            {"id": "b", "commandLine": "/bin/sleep 1"}
        ]}))
        .send()
        .await;
    r.expect_status(200);
    let a = svc.wait_task_completed("cj", "a", secs(20)).await;
    let b = svc.wait_task_completed("cj", "b", secs(20)).await;
    let span = |t: &Value| (ts(&t["executionInfo"]["startTime"]), ts(&t["executionInfo"]["endTime"]));
    let (a0, a1) = span(&a);
    let (b0, b1) = span(&b);
    assert!(a0 < b1 && b0 < a1, "with 2 slots per node a and b ran at the same time: a {a0}..{a1}, b {b0}..{b1}");

    // A 2-slot task fills the node: a 1-slot task added with it does not run alongside.
    let r = svc
        .post("/jobs/cj/addtaskcollection")
        .json(json!({"value": [
            {"id": "e", "commandLine": "/bin/sleep 1", "requiredSlots": 2},
            {"id": "f", "commandLine": "/bin/sleep 1"}
        ]}))
        .send()
        .await;
    r.expect_status(200);
    let e = svc.wait_task_completed("cj", "e", secs(20)).await;
    let f = svc.wait_task_completed("cj", "f", secs(20)).await;
    let (e0, e1) = span(&e);
    let (f0, f1) = span(&f);
    assert!(e1 <= f0 || f1 <= e0, "a 2-slot task and another task overlapped on a 2-slot node: e {e0}..{e1}, f {f0}..{f1}");

    let big = svc.get_json("/jobs/cj/tasks/big").await;
    assert_eq!(big["state"], "active", "{big}");
    assert!(big["executionInfo"].get("startTime").is_none(), "{big}");
    assert!(big.get("nodeInfo").is_none(), "{big}");
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn task_and_node_files() {
    let svc = Service::start().await;
    svc.add_pool("fp", 1, json!({})).await;
    let nodes = svc.wait_pool_idle("fp", 1, secs(20)).await;
    let node_id = nodes[0]["id"].as_str().unwrap().to_string();
    svc.add_job("fj", "fp", json!({})).await;
    svc.add_task("fj", "ft", "/bin/sh -c 'echo hello-stdout; echo hello-stderr >&2; mkdir -p sub; echo nested > sub/n.txt'", json!({}))
        .await;
    let t = svc.wait_task_completed("fj", "ft", secs(20)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");

    // List, not recursive.
    let list = svc.get_json("/jobs/fj/tasks/ft/files").await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("/$metadata#files"), "{list}");
    let files = names(&list);
    for n in ["stdout.txt", "stderr.txt", "wd"] {
        assert!(files.contains_key(n), "{n} missing from {list}");
    }
    assert!(!files.keys().any(|k| k.contains('/')), "a non-recursive list has no nested names: {list}");
    assert_eq!(files["wd"]["isDirectory"], true);
    assert!(files["wd"].get("properties").is_none(), "directories have no properties");
    let so = &files["stdout.txt"];
    assert_eq!(so["isDirectory"], false);
    let url = so["url"].as_str().unwrap();
    assert_eq!(
        percent_encoding::percent_decode_str(url).decode_utf8_lossy(),
        format!("{}/jobs/fj/tasks/ft/files/stdout.txt", svc.base),
        "{so}"
    );
    assert_eq!(so["properties"]["contentLength"], "13", "contentLength is a string: {so}");
    assert_eq!(so["properties"]["contentType"], "text/plain");
    assert!(so["properties"]["fileMode"].as_str().unwrap().starts_with("0o100"), "{so}");
    ts(&so["properties"]["lastModified"]);

    // Recursive.
    let list = svc.get_json("/jobs/fj/tasks/ft/files?recursive=true").await;
    let files = names(&list);
    assert!(files.contains_key("wd/sub/n.txt"), "{list}");
    assert_eq!(files["wd/sub"]["isDirectory"], true, "{list}");
    assert_eq!(files["wd/sub/n.txt"]["properties"]["contentLength"], "7");
    assert!(files.contains_key("stdout.txt"));

    // Get.
    let r = svc.get("/jobs/fj/tasks/ft/files/stdout.txt").send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "hello-stdout\n");
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(r.header("ocp-batch-file-isdirectory").as_deref(), Some("False"));
    assert!(r.header("last-modified").is_some(), "{r:?}");
    assert_eq!(svc.task_file("fj", "ft", "stderr.txt").await, "hello-stderr\n");
    assert_eq!(svc.task_file("fj", "ft", "wd%2Fsub%2Fn.txt").await, "nested\n");
    assert_eq!(svc.task_file("fj", "ft", "wd/sub/n.txt").await, "nested\n");

    // ocp-range.
    let r = svc.get("/jobs/fj/tasks/ft/files/stdout.txt").header("ocp-range", "bytes=0-1").send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "he");
    let r = svc.get("/jobs/fj/tasks/ft/files/stdout.txt").header("ocp-range", "bytes=6-11").send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "stdout");

    // Properties (HEAD).
    let r = svc.head("/jobs/fj/tasks/ft/files/stdout.txt").send().await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length").as_deref(), Some("13"), "{:?}", r.headers);
    assert_eq!(r.header("ocp-batch-file-isdirectory").as_deref(), Some("False"));
    assert!(r.header("ocp-batch-file-mode").is_some_and(|m| m.starts_with("0o100")), "{:?}", r.headers);
    let file_url = r.header("ocp-batch-file-url").expect("ocp-batch-file-url");
    let decoded = percent_encoding::percent_decode_str(&file_url).decode_utf8_lossy().into_owned();
    assert_eq!(decoded, format!("{}/jobs/fj/tasks/ft/files/stdout.txt", svc.base));
    assert!(!file_url.contains('/') && file_url.starts_with("http%3A%2F%2F"), "the URL is percent-encoded: {file_url}");
    let r = svc.head("/jobs/fj/tasks/ft/files/nope.txt").send().await;
    r.expect_status(404);
    assert!(r.body.is_empty());

    // Not found and path traversal.
    svc.get("/jobs/fj/tasks/ft/files/nope.txt").send().await.expect_error(404, "FileNotFound");
    for evil in [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "..%2Fother%2Fstdout.txt",
        "wd%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = svc.get(&format!("/jobs/fj/tasks/ft/files/{evil}")).send().await;
        assert_eq!(r.status.as_u16(), 404, "{evil}: {r:?}");
        assert!(!r.text().contains("root:"), "{evil} leaked a file outside the task directory");
        let r = svc.get(&format!("/pools/fp/nodes/{node_id}/files/{evil}")).send().await;
        assert_eq!(r.status.as_u16(), 404, "node {evil}: {r:?}");
        assert!(!r.text().contains("root:"));
    }
    svc.get("/jobs/fj/tasks/nope/files").send().await.expect_error(404, "TaskNotFound");
    svc.get("/jobs/fj/tasks/nope/files/stdout.txt").send().await.expect_error(404, "TaskNotFound");

    // Delete.
    let r = svc.delete("/jobs/fj/tasks/ft/files/stderr.txt").send().await;
    r.expect_status(200);
    svc.get("/jobs/fj/tasks/ft/files/stderr.txt").send().await.expect_error(404, "FileNotFound");
    svc.delete("/jobs/fj/tasks/ft/files/stderr.txt").send().await.expect_error(404, "FileNotFound");
    assert!(!names(&svc.get_json("/jobs/fj/tasks/ft/files").await).contains_key("stderr.txt"));
    svc.delete("/jobs/fj/tasks/ft/files/wd%2Fsub%2Fn.txt").send().await.expect_status(200);
    svc.get("/jobs/fj/tasks/ft/files/wd%2Fsub%2Fn.txt").send().await.expect_error(404, "FileNotFound");

    // Node files.
    let list = svc.get_json(&format!("/pools/fp/nodes/{node_id}/files")).await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("/$metadata#files"), "{list}");
    let files = names(&list);
    for d in ["shared", "startup", "workitems"] {
        assert_eq!(files.get(d).map(|f| f["isDirectory"].clone()), Some(json!(true)), "{d} missing: {list}");
    }
    let list = svc.get_json(&format!("/pools/fp/nodes/{node_id}/files?recursive=true")).await;
    let files = names(&list);
    assert!(files.contains_key("workitems/fj/job-1/ft/stdout.txt"), "{list}");
    let node_file = format!("/pools/fp/nodes/{node_id}/files/workitems%2Ffj%2Fjob-1%2Fft%2Fstdout.txt");
    let r = svc.get(&node_file).send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "hello-stdout\n");
    let r = svc.head(&node_file).send().await;
    r.expect_status(200);
    assert_eq!(r.header("content-length").as_deref(), Some("13"));
    svc.get(&format!("/pools/fp/nodes/{node_id}/files/nope.txt")).send().await.expect_error(404, "FileNotFound");
    svc.get("/pools/fp/nodes/tvm-nope/files").send().await.expect_error(404, "NodeNotFound");
    svc.delete(&node_file).send().await.expect_status(200);
    svc.get(&node_file).send().await.expect_error(404, "FileNotFound");
    svc.get("/jobs/fj/tasks/ft/files/stdout.txt").send().await.expect_error(404, "FileNotFound");
}

/// The real service's file URLs (recorded, azure-batch-recordings files case): a list
/// entry's `url` is the plain URL (`.../files/stdout.txt`, recursive entries
/// `.../files/workitems/batch/job-1/test_task/stdout.txt` with literal `/`), and
/// `ocp-batch-file-url` percent-encodes `:` and `/` but not `.`, `-` or `_`
/// (`https%3A%2F%2Fbatch498930ae3.southcentralus.batch.azure.com%2Fjobs%2F...%2Ffiles%2Fstdout.txt`).
#[tokio::test]

async fn file_urls_are_encoded_like_the_real_service() {
    let svc = Service::start().await;
    svc.add_pool("up", 1, json!({})).await;
    let nodes = svc.wait_pool_idle("up", 1, secs(20)).await;
    let node_id = nodes[0]["id"].as_str().unwrap().to_string();
    svc.add_job("uj", "up", json!({})).await;
    svc.add_task("uj", "my_task-1", "/bin/true", json!({})).await;
    svc.wait_task_completed("uj", "my_task-1", secs(20)).await;

    let files = names(&svc.get_json("/jobs/uj/tasks/my_task-1/files").await);
    assert_eq!(files["stdout.txt"]["url"], format!("{}/jobs/uj/tasks/my_task-1/files/stdout.txt", svc.base));
    let files = names(&svc.get_json(&format!("/pools/up/nodes/{node_id}/files?recursive=true")).await);
    let f = &files["workitems/uj/job-1/my_task-1/stdout.txt"];
    assert_eq!(f["url"], format!("{}/pools/up/nodes/{node_id}/files/workitems/uj/job-1/my_task-1/stdout.txt", svc.base));

    let r = svc.head("/jobs/uj/tasks/my_task-1/files/stdout.txt").send().await;
    r.expect_status(200);
    let want = format!("{}/jobs/uj/tasks/my_task-1/files/stdout.txt", svc.base).replace(':', "%3A").replace('/', "%2F");
    assert_eq!(r.header("ocp-batch-file-url"), Some(want));
}

/// A `Range` request on an empty file: no byte range is satisfiable (RFC 9110 §14.1.1), but
/// the service answers 206 with `Content-Range: bytes 0-0/0`, which claims one byte of a
/// zero-byte file.
#[tokio::test]

async fn range_on_an_empty_file_is_unsatisfiable() {
    let svc = Service::start().await;
    svc.add_pool("ep", 1, json!({})).await;
    svc.wait_pool_idle("ep", 1, secs(20)).await;
    svc.add_job("ej", "ep", json!({})).await;
    svc.add_task("ej", "quiet", "/bin/true", json!({})).await;
    svc.wait_task_completed("ej", "quiet", secs(20)).await;
    let r = svc.get("/jobs/ej/tasks/quiet/files/stdout.txt").header("range", "bytes=0-1").send().await;
    r.expect_error(416, "InvalidRange");
}

// ---------------------------------------------------------------------------------------
// Pool environment: defaults, networks, custom images and mounts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pool_environment_defaults_and_mounts() {
    let svc = Service::start().await;
    // No virtual networks, and custom image ids must be well-formed resource ids.
    let mut bad = linux_pool("net", 0);
    bad["networkConfiguration"] =
        json!({"subnetId": "/subscriptions/x/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/s"});
    let e = svc.post("/pools").json(bad).send().await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(e["values"][0]["value"], "subnetId", "{e}");
    let img = json!({"id": "img", "vmSize": "a", "virtualMachineConfiguration": {"imageReference": {"virtualMachineImageId": "/subscriptions/0/resourceGroups/r/providers/Microsoft.Compute/gallery/G/images/I/versions/v"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}});
    let e = svc.post("/pools").json(img).send().await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(e["values"][0]["value"], "virtualMachineImageId", "{e}");
    let good = json!({"id": "img", "vmSize": "a", "virtualMachineConfiguration": {"imageReference": {"virtualMachineImageId": "/subscriptions/0/resourceGroups/r/providers/Microsoft.Compute/galleries/G/images/I/versions/1.0"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}});
    svc.post("/pools").json(good).send().await.expect_status(201);

    // Defaults the service fills in.
    let mut p = linux_pool("defaults", 0);
    p["virtualMachineConfiguration"]["dataDisks"] = json!([{"lun": 1, "diskSizeGB": 10}]);
    p["networkConfiguration"] = json!({"endpointConfiguration": {"inboundNATPools": [{"name": "x", "protocol": "tcp", "backendPort": 8080, "frontendPortRangeStart": 15000, "frontendPortRangeEnd": 15100, "networkSecurityGroupRules": [{"priority": 150, "access": "allow", "sourceAddressPrefix": "*"}]}]}});
    svc.post("/pools").json(p).send().await.expect_status(201);
    let got = svc.get_json("/pools/defaults").await;
    assert_eq!(got["virtualMachineConfiguration"]["dataDisks"][0]["storageAccountType"], "standard_lrs");
    assert_eq!(got["networkConfiguration"]["dynamicVNetAssignmentScope"], "none");
    assert_eq!(
        got["networkConfiguration"]["endpointConfiguration"]["inboundNATPools"][0]["networkSecurityGroupRules"][0]["sourcePortRanges"],
        json!(["*"])
    );

    // Mounts: accepted, secrets never shown, and Linux nodes report they cannot mount.
    let mut m = linux_pool("mnt", 1);
    m["mountConfiguration"] = json!([{"azureBlobFileSystemConfiguration": {"accountName": "a", "containerName": "c", "accountKey": "secret", "relativeMountPath": "m"}}]);
    svc.post("/pools").json(m).send().await.expect_status(201);
    let got = svc.get_json("/pools/mnt").await;
    assert!(got["mountConfiguration"][0]["azureBlobFileSystemConfiguration"].get("accountKey").is_none(), "{got}");
    let node = poll("mount node unusable", secs(20), || async {
        let nodes = svc.get_json("/pools/mnt/nodes").await;
        nodes["value"].as_array().and_then(|a| a.first().cloned()).filter(|n| n["state"] == "unusable")
    })
    .await;
    assert_eq!(node["errors"][0]["code"], "MountConfigurationError", "{node}");
    assert_eq!(node["endpointConfiguration"], json!({"inboundEndpoints": []}));
}
