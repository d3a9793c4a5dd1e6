//! Resource and output files over HTTP, without Azure Storage: `httpUrl` downloads from a
//! local web server (file modes, directories, failures), the checks made when a task or start
//! task is added, and the node directories tasks see. (Blob containers, SAS and output file
//! uploads run against Azurite in `conformance/test_data_azurite.py`.)

mod common;

use common::*;
use serde_json::{json, Value};

/// A web server on a free loopback port: `/files/<name>` answers `<name> contents\n`,
/// `/status/<code>` answers that status.
async fn web_server() -> String {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/files/{*name}", get(|Path(name): Path<String>| async move { format!("{name} contents\n") }))
        .route("/status/{code}", get(|Path(code): Path<u16>| async move { StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn names_property(e: &Value, property: &str) -> bool {
    e["values"].as_array().is_some_and(|v| v.iter().any(|x| x["key"] == "PropertyName" && x["value"] == property))
}

#[tokio::test]
async fn http_resource_files_are_downloaded_before_the_command() {
    let web = web_server().await;
    let svc = Service::start().await;
    let start_task = json!({"commandLine": "/bin/sh -c 'cp setup.sh $AZ_BATCH_NODE_SHARED_DIR/from-start'", "waitForSuccess": true,
        "resourceFiles": [{"httpUrl": format!("{web}/files/setup.sh"), "filePath": "setup.sh"}]});
    svc.add_pool("p", 1, json!({"startTask": start_task})).await;
    svc.wait_pool_idle("p", 1, secs(30)).await;
    svc.add_job("j", "p", json!({})).await;
    let files = json!([
        {"httpUrl": format!("{web}/files/a.txt?sig=secret"), "filePath": "in/deep/a.txt", "fileMode": "0600"},
        {"httpUrl": format!("{web}/files/b.txt"), "filePath": "b.txt"},
    ]);
    let cmd = "/bin/sh -c 'cat in/deep/a.txt b.txt; stat -c %a in/deep/a.txt b.txt; cat $AZ_BATCH_NODE_SHARED_DIR/from-start'";
    svc.add_task("j", "t", cmd, json!({"resourceFiles": files})).await;
    let t = svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    let out = svc.task_file("j", "t", "stdout.txt").await;
    assert_eq!(out, "a.txt contents\nb.txt contents\n600\n770\nsetup.sh contents\n");
    // The files are listed like any other file of the task.
    let list = svc.get_json("/jobs/j/tasks/t/files?recursive=true").await;
    let names: Vec<&str> = list["value"].as_array().unwrap().iter().filter_map(|f| f["name"].as_str()).collect();
    assert!(names.contains(&"wd/in/deep/a.txt"), "{names:?}");
}

#[tokio::test]
async fn a_failed_download_completes_the_task_without_running_it() {
    let web = web_server().await;
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.wait_pool_idle("p", 1, secs(30)).await;
    svc.add_job("j", "p", json!({})).await;
    let cases = [("gone", 404, "BlobNotFound"), ("denied", 403, "BlobAccessDenied"), ("teapot", 418, "BlobDownloadMiscError")];
    for (id, status, _) in cases {
        let files = json!([{"httpUrl": format!("{web}/status/{status}?sig=secret"), "filePath": "x"}]);
        svc.add_task("j", id, "/bin/sh -c 'echo must not run'", json!({"resourceFiles": files, "constraints": {"maxTaskRetryCount": 2}}))
            .await;
    }
    for (id, _, code) in cases {
        let t = svc.wait_task_completed("j", id, secs(30)).await;
        let info = &t["executionInfo"];
        assert_eq!(info["result"], "failure", "{t}");
        assert_eq!(info["failureInfo"]["code"], code, "{t}");
        assert_eq!(info["failureInfo"]["category"], "UserError", "{t}");
        assert!(info.get("exitCode").is_none(), "{t}");
        assert_eq!(info["retryCount"], 0, "a download failure is not retried: {t}");
        let details = info["failureInfo"]["details"].to_string();
        assert!(details.contains("\"FilePath\"") && details.contains("/status/") && !details.contains("secret"), "{details}");
        assert_eq!(svc.task_file("j", id, "stdout.txt").await, "", "{id} ran");
    }
    // A start task whose resource file is missing fails the node's start task.
    let st = json!({"commandLine": "/bin/true", "waitForSuccess": true, "resourceFiles": [{"httpUrl": format!("{web}/status/404"), "filePath": "s"}]});
    svc.add_pool("bad", 1, json!({"startTask": st})).await;
    let node = poll("node in startTaskFailed", secs(30), || async {
        let nodes = svc.get_json("/pools/bad/nodes").await["value"].as_array().cloned().unwrap_or_default();
        nodes.into_iter().find(|n| n["state"] == "startTaskFailed")
    })
    .await;
    assert_eq!(node["startTaskInfo"]["failureInfo"]["code"], "BlobNotFound", "{node}");
}

#[tokio::test]
async fn resource_and_output_files_are_checked_when_added() {
    let svc = Service::start().await;
    svc.add_pool("p", 0, json!({})).await;
    svc.add_job("j", "p", json!({})).await;
    let bad_resources = [
        (json!([{"httpUrl": "http://h/x", "filePath": "../../etc/x"}]), "resourceFiles[0].filePath"),
        (json!([{"httpUrl": "http://h/x", "filePath": "/etc/x"}]), "resourceFiles[0].filePath"),
        (json!([{"httpUrl": "http://h/x"}]), "resourceFiles[0].filePath"),
        (json!([{"httpUrl": "http://h/x", "filePath": "x", "fileMode": "rw-"}]), "resourceFiles[0].fileMode"),
        (json!([{"filePath": "x"}]), "resourceFiles[0].httpUrl"),
        (json!([{"autoStorageContainerName": "c"}]), "resourceFiles[0].autoStorageContainerName"),
    ];
    for (files, prop) in bad_resources {
        let e = svc
            .post("/jobs/j/tasks")
            .json(json!({"id": "t", "commandLine": "true", "resourceFiles": files}))
            .send()
            .await
            .expect_error(400, "InvalidPropertyValue");
        assert!(names_property(&e, prop), "{prop}: {e}");
    }
    let container = json!({"containerUrl": "https://acct.blob.core.windows.net/out?sig=s"});
    let missing = svc
        .post("/jobs/j/tasks")
        .json(json!({"id": "t", "commandLine": "true", "outputFiles": [{"filePattern": "*.txt", "destination": {"container": container}}]}))
        .send()
        .await
        .expect_error(400, "MissingRequiredProperty");
    assert!(names_property(&missing, "outputFiles[0].uploadOptions.uploadCondition"), "{missing}");
    let e = svc
        .post("/jobs/j/tasks")
        .json(json!({"id": "t", "commandLine": "true", "outputFiles": [{"filePattern": "*.txt", "destination": {"container": container},
            "uploadOptions": {"uploadCondition": "sometimes"}}]}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");
    // (the version layer checks enum values; it names the property without the index)
    assert!(names_property(&e, "outputFiles.uploadOptions.uploadCondition"), "{e}");
    let st = json!({"commandLine": "true", "resourceFiles": [{"httpUrl": "http://h/x", "filePath": "a/../../x"}]});
    let mut pool = linux_pool("q", 0);
    pool["startTask"] = st;
    let e = svc.post("/pools").json(pool).send().await.expect_error(400, "InvalidPropertyValue");
    assert!(names_property(&e, "startTask.resourceFiles[0].filePath"), "{e}");
    // The old name of httpUrl, before 2018-12-01.8.0.
    let old = json!({"id": "old", "commandLine": "true", "resourceFiles": [{"blobSource": "http://127.0.0.1:9/x", "filePath": "x"}]});
    svc.post("/jobs/j/tasks").api_version("2018-08-01.7.0").json(old).send().await.expect_status(201);
    let t = svc.get("/jobs/j/tasks/old").api_version("2018-08-01.7.0").send().await.json();
    assert_eq!(t["resourceFiles"][0]["blobSource"], "http://127.0.0.1:9/x", "{t}");
}

#[tokio::test]
async fn node_directories_in_the_environment_are_absolute() {
    // The harness starts the service with a relative --data-dir, as `cargo run -- serve` does.
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.wait_pool_idle("p", 1, secs(30)).await;
    svc.add_job("j", "p", json!({})).await;
    let cmd = "/bin/sh -c 'for v in $AZ_BATCH_NODE_SHARED_DIR $AZ_BATCH_TASK_WORKING_DIR $AZ_BATCH_NODE_ROOT_DIR; do case $v in /*) test -d $v && echo ok;; *) echo relative $v;; esac; done'";
    svc.add_task("j", "t", cmd, json!({})).await;
    svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!(svc.task_file("j", "t", "stdout.txt").await, "ok\nok\nok\n");
}
