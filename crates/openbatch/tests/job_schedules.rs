//! HTTP tests of job schedules: every operation's answer (status, headers, body), the
//! recurrence rules on a clock the test moves (`serve --clock-control`), ids with `:` in
//! paths, auto pool lifetimes with real nodes, and next run times across a restart.

mod common;

use common::*;
use serde_json::{json, Value};

const OLD: &str = "2020-09-01.12.0";

/// A schedule body on a pool that does not exist: its jobs stay active (they have no tasks).
fn schedule_body(id: &str, schedule: Value) -> Value {
    json!({"id": id, "schedule": schedule, "jobSpecification": {"poolInfo": {"poolId": "nopool"}}})
}

async fn add_schedule(svc: &Service, body: Value) -> Resp {
    svc.post("/jobschedules").json(body).send().await
}

async fn schedule(svc: &Service, id: &str) -> Value {
    svc.get_json(&format!("/jobschedules/{id}")).await
}

async fn job_ids(svc: &Service, id: &str) -> Vec<String> {
    let list = svc.get_json(&format!("/jobschedules/{id}/jobs")).await;
    list["value"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
}

/// The `values` entry `key` of an error body.
fn value_of(e: &Value, key: &str) -> String {
    e["values"].as_array().into_iter().flatten().find(|kv| kv["key"] == key).and_then(|kv| kv["value"].as_str()).unwrap_or("").to_string()
}

#[tokio::test]
async fn add_get_list_exists_show_what_the_service_shows() {
    let svc = Service::start().await;
    let r = add_schedule(&svc, schedule_body("nightly", json!({"startWindow": "PT1H", "recurrenceInterval": "P1D"}))).await;
    r.expect_status(201);
    for h in ["location", "etag", "last-modified", "dataserviceid"] {
        assert!(r.header(h).is_some(), "{h} missing");
    }
    add_schedule(&svc, schedule_body("NIGHTLY", json!({}))).await.expect_error(409, "JobScheduleExists");

    let s = schedule(&svc, "nightly").await;
    assert_eq!(s["state"], "active");
    assert_eq!(s["schedule"], json!({"startWindow": "PT1H", "recurrenceInterval": "P1D"}));
    let spec = &s["jobSpecification"];
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["onAllTasksComplete"], "noaction");
    assert_eq!(spec["constraints"]["maxTaskRetryCount"], 0);
    assert!(spec.get("id").is_none(), "{spec}");
    // Due at once: job-1 exists when Add answers; the next is due a day after creation.
    assert_eq!(s["executionInfo"]["recentJob"]["id"], "nightly:job-1");
    assert!(s["executionInfo"]["recentJob"]["url"].as_str().unwrap().ends_with("/jobs/nightly:job-1"));
    assert_eq!(ts(&s["executionInfo"]["nextRunTime"]), ts(&s["creationTime"]) + chrono::Duration::days(1));
    assert_eq!(job_ids(&svc, "nightly").await, ["nightly:job-1"]);

    let head = svc.head("/jobschedules/nightly").send().await;
    head.expect_status(200);
    assert_eq!(head.header("etag").as_deref(), s["eTag"].as_str());
    svc.head("/jobschedules/nothere").send().await.expect_status(404);
    svc.get("/jobschedules/nothere").send().await.expect_error(404, "JobScheduleNotFound");
    svc.get("/jobschedules/nothere/jobs").send().await.expect_error(404, "JobScheduleNotFound");

    // The old api-version shows only its own properties.
    let old = svc.get("/jobschedules/nightly").api_version(OLD).send().await.json();
    assert!(old["jobSpecification"].get("allowTaskPreemption").is_none(), "{old}");
    assert_eq!(s["jobSpecification"]["allowTaskPreemption"], false);

    add_schedule(&svc, schedule_body("other", json!({"doNotRunUntil": "2099-01-01T00:00:00Z"}))).await.expect_status(201);
    let list = svc.get_json("/jobschedules?$filter=startswith(id,'night')").await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let list = svc.get_json("/jobschedules?$filter=state%20eq%20'active'&maxresults=1").await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert!(list["odata.nextLink"].is_string(), "{list}");
    assert!(job_ids(&svc, "other").await.is_empty());
    let other = schedule(&svc, "other").await;
    assert_eq!(other["executionInfo"]["nextRunTime"], "2099-01-01T00:00:00Z");
    // The jobs of a schedule take the $filter the API documents for them (no `id`).
    let jobs = svc.get_json("/jobschedules/nightly/jobs?$filter=state%20eq%20'active'").await;
    assert_eq!(jobs["value"].as_array().unwrap().len(), 1);
    let jobs = svc.get_json("/jobschedules/nightly/jobs?$filter=state%20eq%20'completed'").await;
    assert!(jobs["value"].as_array().unwrap().is_empty(), "{jobs}");
    svc.get("/jobschedules/nightly/jobs?$filter=startswith(id,'n')").send().await.expect_error(400, "InvalidQueryParameterValue");
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_property() {
    let svc = Service::start().await;
    let e = add_schedule(&svc, schedule_body("s", json!({"recurrenceInterval": "PT30S"}))).await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(value_of(&e, "PropertyName"), "schedule.recurrenceInterval");
    let e = add_schedule(&svc, schedule_body("s", json!({"startWindow": "soon"}))).await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(value_of(&e, "PropertyName"), "schedule.startWindow");
    let mut body = schedule_body("s", json!({}));
    body["jobSpecification"]["priority"] = json!(5000);
    let e = add_schedule(&svc, body).await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(value_of(&e, "PropertyName"), "jobSpecification.priority");
    let e =
        add_schedule(&svc, json!({"id": "s", "schedule": {}, "jobSpecification": {}})).await.expect_error(400, "MissingRequiredProperty");
    assert!(value_of(&e, "PropertyName").starts_with("jobSpecification.poolInfo"), "{e}");
    add_schedule(&svc, schedule_body("a:b", json!({}))).await.expect_error(400, "InvalidPropertyValue");
    // A property the caller's api-version does not have.
    let mut body = schedule_body("s", json!({}));
    body["jobSpecification"]["allowTaskPreemption"] = json!(true);
    let e = svc.post("/jobschedules").api_version(OLD).json(body).send().await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(value_of(&e, "PropertyName"), "jobSpecification.allowTaskPreemption");
    // The job's own rules apply to the specification: an auto pool lifetime `jobschedule`
    // is fine here, unlike on Job Add.
    let mut body = schedule_body("auto", json!({}));
    body["jobSpecification"]["poolInfo"] = json!({"autoPoolSpecification": {"poolLifetimeOption": "jobschedule"}});
    let e = add_schedule(&svc, body).await.expect_error(400, "MissingRequiredProperty");
    assert_eq!(value_of(&e, "PropertyName"), "jobSpecification.poolInfo.autoPoolSpecification.pool");
    svc.get("/jobschedules/s").send().await.expect_error(404, "JobScheduleNotFound");
}

#[tokio::test]
async fn job_ids_with_a_colon_route_and_sign_sent_either_way() {
    let svc = Service::start().await;
    add_schedule(&svc, schedule_body("sched", json!({}))).await.expect_status(201);
    for path in ["/jobs/sched:job-1", "/jobs/sched%3Ajob-1", "/jobs/sched%3ajob-1"] {
        let j = svc.get_json(path).await;
        assert_eq!(j["id"], "sched:job-1", "{path}");
    }
    svc.add_task("sched%3Ajob-1", "t1", "/bin/true", json!({})).await;
    assert_eq!(svc.get_json("/jobs/sched:job-1/tasks/t1").await["state"], "active");
    let all = svc.get_json("/jobs?$filter=startswith(id,'sched:')").await;
    assert_eq!(all["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn recurrences_wait_for_the_active_job_within_their_window() {
    let svc = Service::start_with(&["--clock-control"]).await;
    add_schedule(&svc, schedule_body("hourly", json!({"recurrenceInterval": "PT1H", "startWindow": "PT10M"}))).await.expect_status(201);
    let first = schedule(&svc, "hourly").await;
    let due2 = ts(&first["executionInfo"]["nextRunTime"]);

    // Due while job-1 is active: nothing yet.
    svc.advance_clock("PT1H").await;
    assert_eq!(job_ids(&svc, "hourly").await, ["hourly:job-1"]);
    // Job-1 ends inside the window: job-2 comes at once.
    svc.post("/jobs/hourly:job-1/terminate").send().await.expect_status(202);
    poll("job-2 created", secs(10), || async { (job_ids(&svc, "hourly").await.len() == 2).then_some(()) }).await;
    let s = schedule(&svc, "hourly").await;
    assert_eq!(s["executionInfo"]["recentJob"]["id"], "hourly:job-2");
    assert_eq!(ts(&s["executionInfo"]["nextRunTime"]), due2 + chrono::Duration::hours(1));

    // The next recurrence's window closes while job-2 is active: it is skipped.
    svc.advance_clock("PT1H15M").await;
    svc.post("/jobs/hourly:job-2/terminate").send().await.expect_status(202);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(job_ids(&svc, "hourly").await, ["hourly:job-1", "hourly:job-2"]);
    let s = schedule(&svc, "hourly").await;
    assert_eq!(ts(&s["executionInfo"]["nextRunTime"]), due2 + chrono::Duration::hours(2));
    // ...and the one after that runs.
    svc.advance_clock("PT50M").await;
    assert_eq!(job_ids(&svc, "hourly").await.len(), 3);
}

#[tokio::test]
async fn disable_enable_patch_and_update() {
    let svc = Service::start_with(&["--clock-control"]).await;
    let mut body = schedule_body("s", json!({"recurrenceInterval": "PT1H"}));
    body["metadata"] = json!([{"name": "team", "value": "a"}]);
    add_schedule(&svc, body).await.expect_status(201);
    let before = schedule(&svc, "s").await;

    let r = svc.post("/jobschedules/s/disable").send().await;
    r.expect_status(204);
    assert!(r.header("etag").is_some() && r.header("dataserviceid").is_some());
    assert_eq!(schedule(&svc, "s").await["state"], "disabled");
    svc.post("/jobschedules/s/disable").send().await.expect_error(409, "JobScheduleDisabled");
    // A stale ETag is refused.
    svc.post("/jobschedules/s/enable")
        .header("if-match", before["eTag"].as_str().unwrap())
        .send()
        .await
        .expect_error(412, "ConditionNotMet");
    // Disabled over a due time: no job.
    svc.post("/jobs/s:job-1/terminate").send().await.expect_status(202);
    svc.advance_clock("PT1H").await;
    assert_eq!(job_ids(&svc, "s").await, ["s:job-1"]);
    // Enabled inside the recurrence: the job comes.
    svc.post("/jobschedules/s/enable").send().await.expect_status(204);
    assert_eq!(job_ids(&svc, "s").await, ["s:job-1", "s:job-2"]);
    let s = schedule(&svc, "s").await;
    assert_eq!(s["state"], "active");
    assert_eq!(s["previousState"], "disabled");

    svc.patch("/jobschedules/s").json(json!({"metadata": [{"name": "team", "value": "b"}]})).send().await.expect_status(200);
    let s = schedule(&svc, "s").await;
    assert_eq!(s["metadata"][0]["value"], "b");
    assert_eq!(s["schedule"]["recurrenceInterval"], "PT1H");
    // Update replaces everything: metadata not given goes; the next run follows the new
    // interval from the last job's due time.
    let due2 = ts(&s["executionInfo"]["nextRunTime"]) - chrono::Duration::hours(1);
    let r = svc
        .put("/jobschedules/s")
        .json(json!({"schedule": {"recurrenceInterval": "PT3H"}, "jobSpecification": {"poolInfo": {"poolId": "other"}, "priority": 7}}))
        .send()
        .await;
    r.expect_status(200);
    let s = schedule(&svc, "s").await;
    assert!(s.get("metadata").is_none(), "{s}");
    assert_eq!(s["jobSpecification"]["priority"], 7);
    assert_eq!(ts(&s["executionInfo"]["nextRunTime"]), due2 + chrono::Duration::hours(3));
    // Jobs created from now on follow the new specification; the active one keeps its own.
    assert_eq!(svc.get_json("/jobs/s:job-2").await["poolInfo"]["poolId"], "nopool");
    svc.put("/jobschedules/s").json(json!({"schedule": {}})).send().await.expect_error(400, "MissingRequiredProperty");
}

#[tokio::test]
async fn terminate_completes_and_delete_removes_the_jobs() {
    let svc = Service::start().await;
    add_schedule(&svc, schedule_body("t", json!({"recurrenceInterval": "PT1H"}))).await.expect_status(201);
    svc.add_task("t:job-1", "a", "/bin/true", json!({})).await;
    let r = svc.post("/jobschedules/t/terminate").send().await;
    r.expect_status(202);
    assert!(r.header("etag").is_some());
    let s = poll("schedule completed", secs(10), || async {
        let s = schedule(&svc, "t").await;
        (s["state"] == "completed").then_some(s)
    })
    .await;
    assert!(s["executionInfo"]["endTime"].is_string());
    assert!(s["executionInfo"].get("nextRunTime").is_none(), "{s}");
    let job = svc.get_json("/jobs/t:job-1").await;
    assert_eq!(job["state"], "completed");
    svc.post("/jobschedules/t/terminate").send().await.expect_error(409, "JobScheduleCompleted");
    svc.patch("/jobschedules/t").json(json!({"metadata": []})).send().await.expect_error(409, "JobScheduleCompleted");

    let r = svc.delete("/jobschedules/t").send().await;
    r.expect_status(202);
    poll("schedule gone", secs(10), || async { (svc.get("/jobschedules/t").send().await.status == 404).then_some(()) }).await;
    svc.get("/jobs/t:job-1").send().await.expect_error(404, "JobNotFound");
    svc.get("/jobs/t:job-1/tasks/a").send().await.expect_error(404, "JobNotFound");
    svc.delete("/jobschedules/t").send().await.expect_error(404, "JobScheduleNotFound");
}

#[tokio::test]
async fn auto_pools_live_as_long_as_their_job_or_their_schedule() {
    let svc = Service::start_with(&["--clock-control"]).await;
    let mut pool = linux_pool("ignored", 1);
    pool.as_object_mut().unwrap().remove("id");
    for (id, lifetime) in [("perjob", "job"), ("shared", "jobschedule")] {
        let body = json!({
            "id": id,
            "schedule": {"recurrenceInterval": "PT1M"},
            "jobSpecification": {
                "poolInfo": {"autoPoolSpecification": {"autoPoolIdPrefix": id, "poolLifetimeOption": lifetime, "pool": pool}},
                "jobManagerTask": {"id": "jm", "commandLine": "/bin/sh -c 'echo $AZ_BATCH_JOB_ID'"}
            }
        });
        add_schedule(&svc, body).await.expect_status(201);
    }
    // The job manager task's files are read while its node exists: a `job` auto pool goes
    // (with its nodes and their files) as soon as the job completes, as in Azure.
    let pool_of = |job: String| {
        let svc = &svc;
        async move {
            let t = svc.wait_task_completed(&job, "jm", secs(30)).await;
            assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
            if job.starts_with("shared") {
                assert_eq!(svc.task_file(&job, "jm", "stdout.txt").await.trim(), job);
            }
            let j = poll("job completed", secs(10), || async {
                let j = svc.get_json(&format!("/jobs/{job}")).await;
                (j["state"] == "completed").then_some(j)
            })
            .await;
            j["executionInfo"]["poolId"].as_str().unwrap().to_string()
        }
    };
    let per1 = pool_of("perjob:job-1".into()).await;
    let shared1 = pool_of("shared:job-1".into()).await;
    assert!(per1.starts_with("perjob_") && shared1.starts_with("shared_"), "{per1} {shared1}");
    let gone = |pool: String| {
        let svc = &svc;
        async move {
            poll(&format!("pool {pool} deleted"), secs(20), || async {
                (svc.get(&format!("/pools/{pool}")).send().await.status == 404).then_some(())
            })
            .await
        }
    };
    gone(per1.clone()).await;
    assert_eq!(svc.get_json(&format!("/pools/{shared1}")).await["state"], "active");

    // `openbatch clock` moves the clock as the control endpoint does.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openbatch"))
        .args(["clock", "--advance", "PT1M", "--url", &svc.base, "--account", ACCOUNT, "--key", &svc.key])
        .output()
        .expect("run openbatch clock");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let per2 = pool_of("perjob:job-2".into()).await;
    let shared2 = pool_of("shared:job-2".into()).await;
    assert_ne!(per1, per2);
    assert_eq!(shared1, shared2);
    // Task times are the service clock's too (agents report their machine's wall clock).
    let t = svc.get_json("/jobs/shared:job-2/tasks/jm").await;
    assert!(ts(&t["executionInfo"]["startTime"]) >= ts(&t["creationTime"]), "{t}");
    assert!(ts(&t["executionInfo"]["endTime"]) >= ts(&t["executionInfo"]["startTime"]), "{t}");
    gone(per2).await;
    svc.post("/jobschedules/shared/terminate").send().await.expect_status(202);
    gone(shared1).await;
    assert_eq!(schedule(&svc, "shared").await["state"], "completed");
}

#[tokio::test]
async fn next_run_times_survive_a_restart() {
    let mut svc = Service::start().await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let body = schedule_body("later", json!({"doNotRunUntil": until.to_rfc3339(), "recurrenceInterval": "PT1H"}));
    add_schedule(&svc, body).await.expect_status(201);
    let before = schedule(&svc, "later").await;
    assert!(before["executionInfo"].get("recentJob").is_none(), "{before}");
    svc.restart().await;
    let after = schedule(&svc, "later").await;
    assert_eq!(after["executionInfo"]["nextRunTime"], before["executionInfo"]["nextRunTime"]);
    assert_eq!(after["eTag"], before["eTag"]);
    // The job comes when its time does, from the restarted service.
    poll("job-1 after the restart", secs(15), || async { (job_ids(&svc, "later").await == ["later:job-1"]).then_some(()) }).await;
    let s = schedule(&svc, "later").await;
    assert_eq!(ts(&s["executionInfo"]["nextRunTime"]), ts(&before["executionInfo"]["nextRunTime"]) + chrono::Duration::hours(1));
    svc.restart().await;
    assert_eq!(job_ids(&svc, "later").await, ["later:job-1"]);
}

#[tokio::test]
async fn the_clock_control_is_off_unless_asked_for_and_strict_when_on() {
    let off = Service::start().await;
    let e = off.post("/openbatch/v1/clock").json(json!({"advance": "PT1H"})).send().await.expect_error(404, "ResourceNotFound");
    assert!(e["message"]["value"].as_str().unwrap().contains("--clock-control"), "{e}");
    let on = Service::start_with(&["--clock-control"]).await;
    let before = ts(&on.get_json("/openbatch/v1/clock").await["now"]);
    let e =
        on.post("/openbatch/v1/clock").json(json!({"advance": "PT1H", "speed": 60})).send().await.expect_error(400, "InvalidPropertyValue");
    assert_eq!(value_of(&e, "PropertyName"), "speed");
    on.post("/openbatch/v1/clock").json(json!({"advance": "soon"})).send().await.expect_error(400, "InvalidPropertyValue");
    on.post("/openbatch/v1/clock")
        .json(json!({"advance": "PT1H"}))
        .sign(Sign::None)
        .send()
        .await
        .expect_error(400, "MissingRequiredHeader");
    let after = on.advance_clock("PT2H").await;
    assert!(after - before >= chrono::Duration::hours(2), "{before} {after}");
}
