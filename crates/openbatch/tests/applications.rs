//! Application packages: added with `openbatch app add` (the binary, against a running
//! service), shown by Applications List and Get, installed on the nodes of pools and tasks that
//! reference them (once per node and version), announced in `AZ_BATCH_APP_PACKAGE_*`, and
//! refused when a reference names no package.

mod common;

use common::*;
use serde_json::json;
use std::io::Write;

/// A zip file with `run.sh` (printing `message`) and `data/readme.txt`.
fn package(dir: &std::path::Path, name: &str, message: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let exec = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("run.sh", exec).unwrap();
    zip.write_all(format!("#!/bin/sh\necho {message}\n").as_bytes()).unwrap();
    zip.start_file("data/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"read me\n").unwrap();
    zip.finish().unwrap();
    path
}

fn app_add(svc: &Service, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_openbatch"))
        .args(["app", "--url", &svc.base, "--account", ACCOUNT, "--key", &svc.key, "add"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn packages_are_added_listed_installed_and_announced() {
    let svc = Service::start().await;
    let dir = tempfile::tempdir().unwrap();
    let v1 = package(dir.path(), "v1.zip", "tool one");
    let v2 = package(dir.path(), "v2.zip", "tool two");
    for (version, file, default) in [("1.0", &v1, true), ("2.0-beta", &v2, false)] {
        let mut args = vec!["my-tool", version, file.to_str().unwrap()];
        if default {
            args.push("--default");
        }
        let out = app_add(&svc, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A wrong key is refused.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_openbatch"))
        .args(["app", "--url", &svc.base, "--account", ACCOUNT, "--key", "AAAA", "add", "x", "1", v1.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let list = svc.get_json("/applications").await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("#listapplicationsummariesresponses"), "{list}");
    assert_eq!(list["value"], json!([{"id": "my-tool", "versions": ["1.0", "2.0-beta"]}]));
    let one = svc.get_json("/applications/my-tool").await;
    assert_eq!(one["versions"], json!(["1.0", "2.0-beta"]));
    svc.get("/applications/nope").send().await.expect_error(404, "ApplicationNotFound");

    // The pool references the default version; a task references another.
    svc.add_pool("p", 1, json!({"applicationPackageReferences": [{"applicationId": "my-tool"}]})).await;
    svc.wait_pool_idle("p", 1, secs(30)).await;
    svc.add_job("j", "p", json!({})).await;
    let cmd = "/bin/sh -c '$AZ_BATCH_APP_PACKAGE_my_tool/run.sh; $AZ_BATCH_APP_PACKAGE_my_tool_2_0_beta/run.sh; cat $AZ_BATCH_APP_PACKAGE_my_tool_1_0/data/readme.txt'";
    let refs = json!({"applicationPackageReferences": [{"applicationId": "my-tool", "version": "2.0-beta"}]});
    svc.add_task("j", "t1", cmd, refs.clone()).await;
    let t = svc.wait_task_completed("j", "t1", secs(30)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    assert_eq!(svc.task_file("j", "t1", "stdout.txt").await, "tool one\ntool two\nread me\n");
    assert_eq!(t["applicationPackageReferences"], refs["applicationPackageReferences"], "references are echoed as given");
    // Installed once per node: the package directory is in the node's applications/.
    let node = svc.get_json("/pools/p/nodes").await["value"][0]["id"].as_str().unwrap().to_string();
    let files = svc.get_json(&format!("/pools/p/nodes/{node}/files?recursive=false")).await;
    assert!(files.to_string().contains("applications"), "{files}");
    svc.add_task("j", "t2", "/bin/sh -c '$AZ_BATCH_APP_PACKAGE_my_tool/run.sh'", json!({})).await;
    svc.wait_task_completed("j", "t2", secs(30)).await;
    assert_eq!(svc.task_file("j", "t2", "stdout.txt").await, "tool one\n");

    // References that name no package are refused.
    for body in [
        json!({"id": "x", "commandLine": "true", "applicationPackageReferences": [{"applicationId": "my-tool", "version": "9"}]}),
        json!({"id": "x", "commandLine": "true", "applicationPackageReferences": [{"applicationId": "other"}]}),
    ] {
        svc.post("/jobs/j/tasks").json(body).send().await.expect_error(409, "InvalidApplicationPackageReferences");
    }
    let mut pool = linux_pool("q", 0);
    pool["applicationPackageReferences"] = json!([{"applicationId": "nope", "version": "1"}]);
    svc.post("/pools").json(pool).send().await.expect_error(409, "InvalidApplicationPackageReferences");
}
