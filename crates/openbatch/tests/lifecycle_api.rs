//! HTTP tests of the job and task lifecycle properties at the API layer: `dependsOn`,
//! `exitConditions`, `multiInstanceSettings`, `authenticationTokenSettings`, `jobManagerTask`
//! and `onTaskFailure` — each validation error Task Add, Add Collection and Job Add give, and
//! what Get echoes — at the newest api-version and at an old one that has the property.
//!
//! The jobs here name a pool that does not exist, so their tasks stay active: these tests are
//! about what the API takes and shows, not about running the tasks.

mod common;

use common::*;
use serde_json::{json, Value};

const NEWEST: &str = "2025-06-01";
const V3_1: &str = "2016-07-01.3.1";
const V4_0: &str = "2017-01-01.4.0";
const V5_1: &str = "2017-06-01.5.1";

async fn add_job(svc: &Service, v: &str, body: Value) -> Resp {
    svc.post("/jobs").api_version(v).json(body).send().await
}

async fn add_task(svc: &Service, v: &str, job: &str, body: Value) -> Resp {
    svc.post(&format!("/jobs/{job}/tasks")).api_version(v).json(body).send().await
}

async fn get_at(svc: &Service, path: &str, v: &str) -> Value {
    let r = svc.get(path).api_version(v).send().await;
    r.expect_status(200);
    r.json()
}

/// The `values` entry `key` of an error body.
fn value_of(e: &Value, key: &str) -> String {
    e["values"].as_array().into_iter().flatten().find(|kv| kv["key"] == key).and_then(|kv| kv["value"].as_str()).unwrap_or("").to_string()
}

#[track_caller]
fn assert_names(e: &Value, property: &str) {
    assert_eq!(value_of(e, "PropertyName"), property, "{e}");
}

// ---------------------------------------------------------------------------------------
// dependsOn
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn task_dependencies_need_a_job_that_uses_them() {
    let svc = Service::start().await;
    for v in [NEWEST, V4_0] {
        let plain = format!("plain{}", &v[..4]);
        let deps = format!("deps{}", &v[..4]);
        add_job(&svc, v, json!({"id": plain, "poolInfo": {"poolId": "nopool"}})).await.expect_status(201);
        add_job(&svc, v, json!({"id": deps, "poolInfo": {"poolId": "nopool"}, "usesTaskDependencies": true})).await.expect_status(201);

        let body = json!({"id": "b", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["a"]}});
        let e = add_task(&svc, v, &plain, body.clone()).await.expect_error(400, "TaskDependenciesNotSpecifiedOnJob");
        assert!(e["message"]["value"].as_str().unwrap().contains("usesTaskDependencies"), "{e}");
        svc.get(&format!("/jobs/{plain}/tasks/b")).send().await.expect_error(404, "TaskNotFound");
        // Even an empty dependsOn is a dependency declaration.
        let empty = json!({"id": "c", "commandLine": "/bin/true", "dependsOn": {}});
        add_task(&svc, v, &plain, empty).await.expect_error(400, "TaskDependenciesNotSpecifiedOnJob");

        // In a job that uses dependencies, Get echoes dependsOn as sent.
        let sent = json!({"taskIds": ["a", "prep"], "taskIdRanges": [{"start": 1, "end": 3}]});
        add_task(&svc, v, &deps, json!({"id": "b", "commandLine": "/bin/true", "dependsOn": sent})).await.expect_status(201);
        let t = get_at(&svc, &format!("/jobs/{deps}/tasks/b"), v).await;
        assert_eq!(t["dependsOn"], sent, "{t}");
        assert_eq!(get_at(&svc, &format!("/jobs/{deps}"), v).await["usesTaskDependencies"], true);
        assert_eq!(get_at(&svc, &format!("/jobs/{plain}"), v).await["usesTaskDependencies"], false);
    }
}

#[tokio::test]
async fn dependency_lists_are_checked() {
    let svc = Service::start().await;
    add_job(&svc, NEWEST, json!({"id": "j", "poolInfo": {"poolId": "nopool"}, "usesTaskDependencies": true})).await.expect_status(201);
    let task = |id: &str, deps: Value| json!({"id": id, "commandLine": "/bin/true", "dependsOn": deps});
    for (body, property) in [
        (task("Self", json!({"taskIds": ["other", "sELF"]})), "dependsOn.taskIds"),
        (task("5", json!({"taskIdRanges": [{"start": 7, "end": 9}, {"start": 1, "end": 10}]})), "dependsOn.taskIdRanges[1]"),
        (task("r", json!({"taskIdRanges": [{"start": 4, "end": 3}]})), "dependsOn.taskIdRanges[0]"),
        (task("n", json!({"taskIdRanges": [{"start": -1, "end": 3}]})), "dependsOn.taskIdRanges[0].start"),
    ] {
        let e = add_task(&svc, NEWEST, "j", body).await.expect_error(400, "InvalidPropertyValue");
        assert_names(&e, property);
    }
    let e =
        add_task(&svc, NEWEST, "j", task("m", json!({"taskIdRanges": [{"start": 1}]}))).await.expect_error(400, "MissingRequiredProperty");
    assert_names(&e, "dependsOn.taskIdRanges[0].end");

    // taskIds may add up to 64000 characters.
    let id64 = |i: usize| format!("{i:0>64}");
    let at_limit: Vec<String> = (0..1000).map(id64).collect();
    add_task(&svc, NEWEST, "j", task("ok", json!({"taskIds": at_limit}))).await.expect_status(201);
    let over: Vec<String> = (0..1001).map(id64).collect();
    let e = add_task(&svc, NEWEST, "j", task("long", json!({"taskIds": over}))).await.expect_error(400, "TaskDependencyListTooLong");
    assert!(e["message"]["value"].as_str().unwrap().contains("64064"), "{e}");

    // Add Collection answers per task.
    add_job(&svc, NEWEST, json!({"id": "plain", "poolInfo": {"poolId": "nopool"}})).await.expect_status(201);
    let r = svc
        .post("/jobs/plain/addtaskcollection")
        .api_version(NEWEST)
        .json(json!({"value": [
            {"id": "fine", "commandLine": "/bin/true"},
            {"id": "needs", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["fine"]}},
        ]}))
        .send()
        .await;
    r.expect_status(200);
    let results = r.json()["value"].as_array().cloned().unwrap();
    let by_id = |id: &str| results.iter().find(|x| x["taskId"] == id).cloned().unwrap_or_else(|| panic!("no result for {id}: {results:?}"));
    assert_eq!(by_id("fine")["status"], "Success");
    let needs = by_id("needs");
    assert_eq!(needs["status"], "ClientError", "{needs}");
    assert_eq!(needs["error"]["code"], "TaskDependenciesNotSpecifiedOnJob", "{needs}");
    svc.get("/jobs/plain/tasks/needs").send().await.expect_error(404, "TaskNotFound");
}

// ---------------------------------------------------------------------------------------
// exitConditions and onTaskFailure
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn exit_conditions_follow_the_jobs_on_task_failure() {
    let svc = Service::start().await;
    for v in [NEWEST, V4_0] {
        let noact = format!("noact{}", &v[..4]);
        let perform = format!("perform{}", &v[..4]);
        add_job(&svc, v, json!({"id": noact, "poolInfo": {"poolId": "nopool"}})).await.expect_status(201);
        add_job(&svc, v, json!({"id": perform, "poolInfo": {"poolId": "nopool"}, "onTaskFailure": "performexitoptionsjobaction"}))
            .await
            .expect_status(201);
        let task = |id: &str, ec: Value| json!({"id": id, "commandLine": "/bin/true", "exitConditions": ec});

        // A job action needs performexitoptionsjobaction.
        for (ec, property) in [
            (
                json!({"exitCodes": [{"code": 1, "exitOptions": {"jobAction": "terminate"}}]}),
                "exitConditions.exitCodes[0].exitOptions.jobAction",
            ),
            (
                json!({"exitCodeRanges": [{"start": 1, "end": 9, "exitOptions": {"jobAction": "none"}}], "default": {"jobAction": "DISABLE"}}),
                "exitConditions.default.jobAction",
            ),
        ] {
            let e = add_task(&svc, v, &noact, task("t", ec)).await.expect_error(400, "InvalidPropertyValue");
            assert_names(&e, property);
        }
        // `none` asks for nothing and is taken; dependency actions need no job setting.
        let quiet = json!({"default": {"jobAction": "none", "dependencyAction": "block"}});
        add_task(&svc, v, &noact, task("quiet", quiet.clone())).await.expect_status(201);
        assert_eq!(get_at(&svc, &format!("/jobs/{noact}/tasks/quiet"), v).await["exitConditions"], quiet);

        // With performexitoptionsjobaction, partial exit conditions are echoed as sent: the
        // service fills in no defaults.
        let partial = json!({
            "exitCodes": [{"code": 1, "exitOptions": {"jobAction": "terminate"}}],
            "exitCodeRanges": [{"start": 2, "end": 4, "exitOptions": {"jobAction": "disable"}}],
            "default": {"dependencyAction": "satisfy"}
        });
        add_task(&svc, v, &perform, task("partial", partial.clone())).await.expect_status(201);
        assert_eq!(get_at(&svc, &format!("/jobs/{perform}/tasks/partial"), v).await["exitConditions"], partial);
        // A task without exit conditions shows none.
        add_task(&svc, v, &perform, json!({"id": "none", "commandLine": "/bin/true"})).await.expect_status(201);
        assert!(get_at(&svc, &format!("/jobs/{perform}/tasks/none"), v).await.get("exitConditions").is_none());

        let e = add_task(&svc, v, &perform, task("r", json!({"exitCodeRanges": [{"start": 5, "end": 2, "exitOptions": {}}]})))
            .await
            .expect_error(400, "InvalidPropertyValue");
        assert_names(&e, "exitConditions.exitCodeRanges[0]");
        let e =
            add_task(&svc, v, &perform, task("m", json!({"exitCodes": [{"code": 3}]}))).await.expect_error(400, "MissingRequiredProperty");
        assert_names(&e, "exitConditions.exitCodes[0].exitOptions");
        let e = add_task(&svc, v, &perform, task("b", json!({"default": {"jobAction": "explode"}})))
            .await
            .expect_error(400, "InvalidPropertyValue");
        assert_names(&e, "exitConditions.default.jobAction");
    }

    // 2017-01-01.4.0 names preProcessingError schedulingError; each version sees its name.
    add_task(
        &svc,
        V4_0,
        "perform2017",
        json!({"id": "sched", "commandLine": "/bin/true", "exitConditions": {"schedulingError": {"jobAction": "terminate"}}}),
    )
    .await
    .expect_status(201);
    let old = get_at(&svc, "/jobs/perform2017/tasks/sched", V4_0).await;
    assert_eq!(old["exitConditions"], json!({"schedulingError": {"jobAction": "terminate"}}), "{old}");
    let new = get_at(&svc, "/jobs/perform2017/tasks/sched", NEWEST).await;
    assert_eq!(new["exitConditions"], json!({"preProcessingError": {"jobAction": "terminate"}}), "{new}");
    // The refusal names the canonical property.
    let e = add_task(
        &svc,
        V4_0,
        "noact2017",
        json!({"id": "s", "commandLine": "/bin/true", "exitConditions": {"schedulingError": {"jobAction": "terminate"}}}),
    )
    .await
    .expect_error(400, "InvalidPropertyValue");
    assert_names(&e, "exitConditions.preProcessingError.jobAction");
}

#[tokio::test]
async fn on_task_failure_defaults_to_noaction_and_is_not_patchable() {
    let svc = Service::start().await;
    for v in [NEWEST, V3_1] {
        let quiet = format!("quiet{}", &v[..4]);
        let loud = format!("loud{}", &v[..4]);
        add_job(&svc, v, json!({"id": quiet, "poolInfo": {"poolId": "nopool"}})).await.expect_status(201);
        // 2016-07-01.3.1 documents the camel-case spelling; values are read case-insensitively.
        add_job(&svc, v, json!({"id": loud, "poolInfo": {"poolId": "nopool"}, "onTaskFailure": "performExitOptionsJobAction"}))
            .await
            .expect_status(201);
        let j = get_at(&svc, &format!("/jobs/{quiet}"), v).await;
        assert!(j["onTaskFailure"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("noaction")), "{j}");
        assert_eq!(j["usesTaskDependencies"], false, "{j}");
        let j = get_at(&svc, &format!("/jobs/{loud}"), v).await;
        assert!(j["onTaskFailure"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("performexitoptionsjobaction")), "{j}");
    }
    assert_eq!(get_at(&svc, "/jobs/loud2016", NEWEST).await["onTaskFailure"], "performexitoptionsjobaction");
    let e = add_job(&svc, NEWEST, json!({"id": "x", "poolInfo": {"poolId": "nopool"}, "onTaskFailure": "sometimes"}))
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_names(&e, "onTaskFailure");
    // Neither Patch nor Update takes onTaskFailure.
    let e = svc
        .patch("/jobs/quiet2025")
        .api_version(NEWEST)
        .json(json!({"onTaskFailure": "performexitoptionsjobaction"}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_names(&e, "onTaskFailure");
    assert_eq!(get_at(&svc, "/jobs/quiet2025", NEWEST).await["onTaskFailure"], "noaction");
}

// ---------------------------------------------------------------------------------------
// multiInstanceSettings and authenticationTokenSettings
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn multi_instance_settings_are_checked_and_defaulted() {
    let svc = Service::start().await;
    svc.add_job("j", "nopool", json!({})).await;
    let task = |id: &str, mi: Value, extra: Value| {
        let mut t = json!({"id": id, "commandLine": "/bin/true", "multiInstanceSettings": mi});
        merge(&mut t, extra);
        t
    };
    for (body, property) in [
        (
            task("zero", json!({"numberOfInstances": 0, "coordinationCommandLine": "c"}), json!({})),
            "multiInstanceSettings.numberOfInstances",
        ),
        (
            task("many", json!({"numberOfInstances": 1001, "coordinationCommandLine": "c"}), json!({})),
            "multiInstanceSettings.numberOfInstances",
        ),
        (
            task("empty", json!({"numberOfInstances": 2, "coordinationCommandLine": " "}), json!({})),
            "multiInstanceSettings.coordinationCommandLine",
        ),
        (task("slots", json!({"numberOfInstances": 2, "coordinationCommandLine": "c"}), json!({"requiredSlots": 2})), "requiredSlots"),
        (
            task(
                "files",
                json!({"coordinationCommandLine": "c", "commonResourceFiles": [{"httpUrl": "http://127.0.0.1:9/x", "filePath": "../x"}]}),
                json!({}),
            ),
            "multiInstanceSettings.commonResourceFiles[0].filePath",
        ),
    ] {
        let e = add_task(&svc, NEWEST, "j", body).await.expect_error(400, "InvalidPropertyValue");
        assert_names(&e, property);
    }
    let e = add_task(&svc, NEWEST, "j", task("nocoord", json!({"numberOfInstances": 2}), json!({})))
        .await
        .expect_error(400, "MissingRequiredProperty");
    assert_names(&e, "multiInstanceSettings.coordinationCommandLine");

    // numberOfInstances defaults to 1 and is echoed; requiredSlots 1 is fine.
    add_task(&svc, NEWEST, "j", task("one", json!({"coordinationCommandLine": "c"}), json!({"requiredSlots": 1}))).await.expect_status(201);
    let t = get_at(&svc, "/jobs/j/tasks/one", NEWEST).await;
    assert_eq!(t["multiInstanceSettings"], json!({"numberOfInstances": 1, "coordinationCommandLine": "c"}), "{t}");
    let files = json!([{"httpUrl": "http://127.0.0.1:9/x", "filePath": "x"}]);
    add_task(
        &svc,
        NEWEST,
        "j",
        task("three", json!({"numberOfInstances": 3, "coordinationCommandLine": "c", "commonResourceFiles": files}), json!({})),
    )
    .await
    .expect_status(201);
    let t = get_at(&svc, "/jobs/j/tasks/three", NEWEST).await;
    assert_eq!(t["multiInstanceSettings"]["numberOfInstances"], 3, "{t}");
    assert_eq!(t["multiInstanceSettings"]["commonResourceFiles"], files, "{t}");

    // Before 2017-09-01.6.0 the coordination command line was optional.
    add_task(&svc, V5_1, "j", task("old", json!({"numberOfInstances": 2}), json!({}))).await.expect_status(201);
    let t = get_at(&svc, "/jobs/j/tasks/old", V5_1).await;
    assert_eq!(t["multiInstanceSettings"], json!({"numberOfInstances": 2}), "{t}");
}

#[tokio::test]
async fn authentication_token_settings_take_the_job_scope() {
    let svc = Service::start().await;
    svc.add_job("j", "nopool", json!({})).await;
    for (v, id) in [(NEWEST, "new"), (V4_0, "old")] {
        let body = json!({"id": id, "commandLine": "/bin/true", "authenticationTokenSettings": {"access": ["JOB"]}});
        add_task(&svc, v, "j", body).await.expect_status(201);
        let t = get_at(&svc, &format!("/jobs/j/tasks/{id}"), v).await;
        assert_eq!(t["authenticationTokenSettings"], json!({"access": ["job"]}), "{t}");
        let bad = json!({"id": "bad", "commandLine": "/bin/true", "authenticationTokenSettings": {"access": ["pool"]}});
        let e = add_task(&svc, v, "j", bad).await.expect_error(400, "InvalidPropertyValue");
        assert_names(&e, "authenticationTokenSettings.access");
    }
    // 2016-07-01.3.1 had no task authentication tokens.
    let e = add_task(&svc, V3_1, "j", json!({"id": "x", "commandLine": "/bin/true", "authenticationTokenSettings": {"access": ["job"]}}))
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_names(&e, "authenticationTokenSettings");
}

// ---------------------------------------------------------------------------------------
// jobManagerTask
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn job_manager_task_is_validated() {
    let svc = Service::start().await;
    let job = |jm: Value| json!({"id": "j", "poolInfo": {"poolId": "nopool"}, "jobManagerTask": jm});
    for (jm, code, property) in [
        (json!({"id": "jm"}), "MissingRequiredProperty", "jobManagerTask.commandLine"),
        (json!({"commandLine": "run"}), "MissingRequiredProperty", "jobManagerTask.id"),
        (json!({"id": "job manager", "commandLine": "run"}), "InvalidPropertyValue", "jobManagerTask.id"),
        (json!({"id": "jm", "commandLine": "  "}), "InvalidPropertyValue", "jobManagerTask.commandLine"),
        (json!({"id": "jm", "commandLine": "run", "requiredSlots": 0}), "InvalidPropertyValue", "jobManagerTask.requiredSlots"),
        (
            json!({"id": "jm", "commandLine": "run", "constraints": {"maxWallClockTime": "soon"}}),
            "InvalidPropertyValue",
            "jobManagerTask.constraints.maxWallClockTime",
        ),
        (
            json!({"id": "jm", "commandLine": "run", "containerSettings": {"imageName": "ubuntu"}}),
            "InvalidPropertyValue",
            "jobManagerTask.containerSettings",
        ),
        (
            json!({"id": "jm", "commandLine": "run", "userIdentity": {"username": "u"}}),
            "InvalidPropertyValue",
            "jobManagerTask.userIdentity.username",
        ),
        (
            json!({"id": "jm", "commandLine": "run", "resourceFiles": [{"httpUrl": "http://127.0.0.1:9/x", "filePath": "../x"}]}),
            "InvalidPropertyValue",
            "jobManagerTask.resourceFiles[0].filePath",
        ),
        (
            json!({"id": "jm", "commandLine": "run", "outputFiles": [{"filePattern": "*", "destination": {}, "uploadOptions": {"uploadCondition": "taskcompletion"}}]}),
            "MissingRequiredProperty",
            "jobManagerTask.outputFiles[0].destination.container.containerUrl",
        ),
        (
            json!({"id": "jm", "commandLine": "run", "authenticationTokenSettings": {"access": ["pool"]}}),
            "InvalidPropertyValue",
            "jobManagerTask.authenticationTokenSettings.access",
        ),
        (
            json!({"id": "jm", "commandLine": "run", "killJobOnCompletion": "yes"}),
            "InvalidPropertyValue",
            "jobManagerTask.killJobOnCompletion",
        ),
    ] {
        let e = add_job(&svc, NEWEST, job(jm)).await.expect_error(400, code);
        assert_names(&e, property);
    }
    let e = add_job(
        &svc,
        NEWEST,
        job(json!({"id": "jm", "commandLine": "run", "applicationPackageReferences": [{"applicationId": "nosuchapp"}]})),
    )
    .await
    .expect_error(409, "InvalidApplicationPackageReferences");
    assert_names(&e, "jobManagerTask.applicationPackageReferences");
    svc.get("/jobs/j").send().await.expect_error(404, "JobNotFound");
}

#[tokio::test]
async fn job_manager_task_is_echoed_with_its_defaults() {
    let svc = Service::start().await;
    let body = json!({
        "id": "j",
        "poolInfo": {"poolId": "nopool"},
        "constraints": {"maxTaskRetryCount": 3},
        "jobManagerTask": {"id": "jm", "commandLine": "/bin/sh -c 'echo manage'", "authenticationTokenSettings": {"access": ["job"]}}
    });
    add_job(&svc, NEWEST, body).await.expect_status(201);
    let j = get_at(&svc, "/jobs/j", NEWEST).await;
    assert_eq!(
        j["jobManagerTask"],
        json!({
            "id": "jm",
            "commandLine": "/bin/sh -c 'echo manage'",
            "constraints": {"maxWallClockTime": UNLIMITED, "retentionTime": "P7D", "maxTaskRetryCount": 3},
            "requiredSlots": 1,
            "killJobOnCompletion": true,
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            "runExclusive": true,
            "authenticationTokenSettings": {"access": ["job"]},
            "allowLowPriorityNode": true
        }),
        "{j}"
    );
    assert_eq!(j["onTaskFailure"], "noaction");

    // Explicit values are kept; the job's retry count is only the default.
    let body = json!({
        "id": "k",
        "poolInfo": {"poolId": "nopool"},
        "jobManagerTask": {
            "id": "jm", "displayName": "Manager", "commandLine": "run", "killJobOnCompletion": false, "runExclusive": false,
            "allowLowPriorityNode": false, "requiredSlots": 2, "constraints": {"maxTaskRetryCount": 1, "maxWallClockTime": "PT1H"},
            "environmentSettings": [{"name": "A", "value": "1"}]
        }
    });
    add_job(&svc, NEWEST, body).await.expect_status(201);
    let m = get_at(&svc, "/jobs/k", NEWEST).await["jobManagerTask"].clone();
    assert_eq!(
        (m["killJobOnCompletion"].clone(), m["runExclusive"].clone(), m["allowLowPriorityNode"].clone()),
        (json!(false), json!(false), json!(false)),
        "{m}"
    );
    assert_eq!(m["requiredSlots"], 2, "{m}");
    assert_eq!(m["constraints"], json!({"maxWallClockTime": "PT1H", "retentionTime": "P7D", "maxTaskRetryCount": 1}), "{m}");
    assert_eq!(m["displayName"], "Manager");
    assert_eq!(m["environmentSettings"], json!([{"name": "A", "value": "1"}]));

    // 2017-01-01.4.0 shows the properties it has: no allowLowPriorityNode (5.0) or
    // requiredSlots (2020-09-01.12.0).
    add_job(&svc, V4_0, json!({"id": "old", "poolInfo": {"poolId": "nopool"}, "jobManagerTask": {"id": "jm", "commandLine": "run"}}))
        .await
        .expect_status(201);
    let m = get_at(&svc, "/jobs/old", V4_0).await["jobManagerTask"].clone();
    assert_eq!(m["killJobOnCompletion"], true, "{m}");
    assert_eq!(m["runExclusive"], true, "{m}");
    assert_eq!(m["constraints"]["maxTaskRetryCount"], 0, "{m}");
    assert!(m.get("allowLowPriorityNode").is_none() && m.get("requiredSlots").is_none(), "{m}");
    assert!(m["userIdentity"]["autoUser"].is_object(), "{m}");
    let m = get_at(&svc, "/jobs/old", NEWEST).await["jobManagerTask"].clone();
    assert_eq!((m["allowLowPriorityNode"].clone(), m["requiredSlots"].clone()), (json!(true), json!(1)), "{m}");
    // Not in 2017-01-01.4.0: refused there.
    let e = add_job(&svc, V4_0, json!({"id": "x", "poolInfo": {"poolId": "nopool"}, "jobManagerTask": {"id": "jm", "commandLine": "run", "allowLowPriorityNode": true}}))
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_names(&e, "jobManagerTask.allowLowPriorityNode");
}
