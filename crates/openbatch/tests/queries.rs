//! HTTP tests of request options and query fidelity: conditional requests (`If-Match`,
//! `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`), `$select` (nested too),
//! `$expand`, `timeout`, and paging that stays stable while items come and go.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[tokio::test]
async fn conditional_requests() {
    let svc = Service::start().await;
    svc.add_pool("p", 0, json!({})).await;
    let r = svc.get("/pools/p").send().await;
    r.expect_status(200);
    let etag = r.header("etag").unwrap();
    let modified = r.header("last-modified").unwrap();

    // Reads: a matching If-None-Match or an unchanged If-Modified-Since is 304, without a body.
    let r = svc.get("/pools/p").header("If-None-Match", &etag).send().await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(svc.get("/pools/p").header("If-None-Match", "0x1").send().await.status, 200);
    assert_eq!(svc.get("/pools/p").header("If-Modified-Since", &modified).send().await.status, 304);
    assert_eq!(svc.get("/pools/p").header("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT").send().await.status, 200);
    assert_eq!(svc.head("/pools/p").header("If-None-Match", &format!("\"{etag}\"")).send().await.status, 304);
    assert_eq!(svc.get("/pools/p").header("If-Match", "0x1").send().await.status, 412);

    // Writes: If-Match must match; If-None-Match: * or a match fails; If-Unmodified-Since.
    let patch = json!({"metadata": [{"name": "a", "value": "1"}]});
    svc.patch("/pools/p").header("If-Match", "0x8D00000000000").json(patch.clone()).send().await.expect_error(412, "ConditionNotMet");
    svc.patch("/pools/p").header("If-None-Match", "*").json(patch.clone()).send().await.expect_error(412, "ConditionNotMet");
    svc.patch("/pools/p")
        .header("If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .json(patch.clone())
        .send()
        .await
        .expect_error(412, "ConditionNotMet");
    assert_eq!(svc.get("/pools/p").send().await.header("etag").unwrap(), etag, "a refused write changes nothing");
    let r = svc.patch("/pools/p").header("If-Match", &etag).json(patch.clone()).send().await;
    r.expect_status(200);
    let new_etag = r.header("etag").unwrap();
    assert_ne!(new_etag, etag, "every change gives a new ETag");
    assert_eq!(svc.get("/pools/p").send().await.header("etag").unwrap(), new_etag, "and only changes do");
    svc.patch("/pools/p").header("If-Match", &etag).json(patch).send().await.expect_error(412, "ConditionNotMet");
    svc.delete("/pools/p").header("If-Match", &etag).send().await.expect_error(412, "ConditionNotMet");
    svc.get("/pools/p").send().await.expect_status(200);

    // Jobs and tasks, including state-changing POSTs.
    svc.add_job("j", "p", json!({})).await;
    let jtag = svc.get("/jobs/j").send().await.header("etag").unwrap();
    svc.post("/jobs/j/terminate").header("If-Match", "0x1").send().await.expect_error(412, "ConditionNotMet");
    svc.add_task("j", "t", "/bin/true", json!({})).await;
    let ttag = svc.get("/jobs/j/tasks/t").send().await.header("etag").unwrap();
    assert_eq!(svc.get("/jobs/j/tasks/t").header("If-None-Match", &ttag).send().await.status, 304);
    svc.post("/jobs/j/tasks/t/terminate").header("If-Match", "0x1").send().await.expect_error(412, "ConditionNotMet");
    svc.delete("/jobs/j/tasks/t").header("If-Match", "0x1").send().await.expect_error(412, "ConditionNotMet");
    svc.post("/jobs/j/terminate").header("If-Match", &jtag).send().await.expect_status(202);
}

#[tokio::test]
async fn select_expand_and_timeout() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.add_job("j", "p", json!({})).await;
    svc.add_task("j", "t", "/bin/sh -c \"exit 4\"", json!({})).await;
    svc.wait_task_completed("j", "t", secs(20)).await;
    let t = svc.get_json("/jobs/j/tasks/t?$select=id,state,executionInfo/exitCode").await;
    let keys: BTreeSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["odata.metadata", "id", "state", "executionInfo"]), "{t}");
    assert_eq!(t["executionInfo"], json!({"exitCode": 4}));
    let list = svc.get_json("/jobs/j/tasks?$select=id").await;
    assert_eq!(list["value"], json!([{"id": "t"}]));
    svc.get_json("/pools/p?$expand=stats").await;
    svc.get("/pools/p?$expand=bogus").send().await.expect_error(400, "InvalidQueryParameterValue");
    svc.get_json("/pools?timeout=45").await;
    svc.get("/pools?timeout=0").send().await.expect_error(400, "InvalidQueryParameterValue");
    svc.get("/pools?timeout=abc").send().await.expect_error(400, "InvalidQueryParameterValue");
    svc.get("/pools?maxresults=0").send().await.expect_error(400, "InvalidQueryParameterValue");
    svc.get("/pools?maxresults=1001").send().await.expect_error(400, "InvalidQueryParameterValue");
    // Files page too.
    let files = svc.get_json("/jobs/j/tasks/t/files?recursive=true&maxresults=1").await;
    assert_eq!(files["value"].as_array().unwrap().len(), 1);
    assert!(files["odata.nextLink"].is_string(), "{files}");
}

/// 25,000 tasks listed 1000 at a time while tasks are added and deleted: every task present
/// throughout appears exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_stable_while_items_come_and_go() {
    let svc = std::sync::Arc::new(Service::start().await);
    svc.add_pool("empty", 0, json!({})).await;
    svc.add_job("big", "empty", json!({})).await;
    const N: usize = 25_000;
    for chunk in 0..N / 100 {
        let value: Vec<Value> = (0..100).map(|i| json!({"id": format!("t{:05}", chunk * 100 + i), "commandLine": "/bin/true"})).collect();
        let r = svc.post("/jobs/big/addtaskcollection").json(json!({"value": value})).send().await;
        r.expect_status(200);
    }
    // Churn: delete every 7th task and add new ones while paging.
    let churn = {
        let svc2 = svc.clone();
        tokio::spawn(async move {
            for i in 0..300usize {
                let id = format!("t{:05}", i * 7 + 3);
                svc2.delete(&format!("/jobs/big/tasks/{id}")).send().await;
                svc2.add_task("big", &format!("new{i:04}"), "/bin/true", json!({})).await;
                svc2.add_task("big", &format!("a{i:04}"), "/bin/true", json!({})).await;
            }
        })
    };
    let mut seen: Vec<String> = Vec::new();
    let mut url = format!("{}/jobs/big/tasks?api-version={API_VERSION}&maxresults=1000&$select=id", svc.base);
    loop {
        let r = svc.req_url(reqwest::Method::GET, &url).send().await;
        r.expect_status(200);
        let page = r.json();
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 1000);
        seen.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match page["odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    churn.await.unwrap();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no task is listed twice");
    let deleted: BTreeSet<String> = (0..300usize).map(|i| format!("t{:05}", i * 7 + 3)).collect();
    for i in 0..N {
        let id = format!("t{i:05}");
        if !deleted.contains(&id) {
            assert!(unique.contains(&id), "{id} was present throughout but not listed");
        }
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["value"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap_or(x["name"].as_str().unwrap_or("")).to_string()).collect()
}

#[tokio::test]
async fn filters_on_every_list() {
    let svc = Service::start().await;
    svc.add_pool("render-a", 1, json!({})).await;
    svc.add_pool("render-b", 0, json!({})).await;
    svc.add_pool("other", 0, json!({})).await;
    svc.wait_pool_idle("render-a", 1, secs(20)).await;
    let q = |f: &str| format!("$filter={}", urlencode(f));
    assert_eq!(ids(&svc.get_json(&format!("/pools?{}", q("startswith(id,'render')"))).await), ["render-a", "render-b"]);
    assert_eq!(ids(&svc.get_json(&format!("/pools?{}", q("startswith(id,'RENDER') and not (id eq 'render-b')"))).await), ["render-a"]);
    assert_eq!(ids(&svc.get_json(&format!("/pools?{}", q("id gt 'p' or id eq 'other'"))).await), ["other", "render-a", "render-b"]);

    svc.add_job("j", "render-a", json!({})).await;
    for (id, cmd) in [("ok1", "/bin/true"), ("ok2", "/bin/true"), ("bad3", "/bin/sh -c \"exit 3\""), ("bad5", "/bin/sh -c \"exit 5\"")] {
        svc.add_task("j", id, cmd, json!({})).await;
    }
    for id in ["ok1", "ok2", "bad3", "bad5"] {
        svc.wait_task_completed("j", id, secs(20)).await;
    }
    svc.add_job("idle", "render-b", json!({})).await;
    svc.add_task("idle", "waiting", "/bin/true", json!({})).await;
    let tasks = |f: &str| {
        let svc = &svc;
        let path = format!("/jobs/j/tasks?{}", q(f));
        async move { ids(&svc.get_json(&path).await) }
    };
    assert_eq!(tasks("executionInfo/result eq 'failure'").await, ["bad3", "bad5"]);
    assert_eq!(tasks("executionInfo/exitCode gt 3").await, ["bad5"]);
    assert_eq!(tasks("state eq 'completed' and executionInfo/exitCode eq 0").await, ["ok1", "ok2"]);
    assert_eq!(tasks("(executionInfo/exitCode eq 3 or executionInfo/exitCode eq 5) and startswith(id,'bad')").await, ["bad3", "bad5"]);
    let t0 = "2000-01-01T00:00:00Z";
    assert_eq!(tasks(&format!("creationTime gt datetime'{t0}' and id ge 'ok2'")).await, ["ok2"]);
    assert_eq!(ids(&svc.get_json(&format!("/jobs/idle/tasks?{}", q("state eq 'active'"))).await), ["waiting"]);
    assert_eq!(ids(&svc.get_json(&format!("/jobs?{}", q("state eq 'active' and id eq 'IDLE'"))).await), ["idle"]);
    // Paging with a filter: one match per page, the link carries the filter.
    let page = svc.get_json(&format!("/jobs/j/tasks?maxresults=1&{}", q("executionInfo/result eq 'success'"))).await;
    assert_eq!(ids(&page), ["ok1"]);
    let next = page["odata.nextLink"].as_str().expect("a next link").to_string();
    let r = svc.req_url(reqwest::Method::GET, &next).send().await;
    r.expect_status(200);
    assert_eq!(ids(&r.json()), ["ok2"]);

    // Nodes, files, node counts, supported images.
    let nodes = svc.get_json(&format!("/pools/render-a/nodes?{}", q("state eq 'idle' or state eq 'running'"))).await;
    assert_eq!(nodes["value"].as_array().unwrap().len(), 1);
    let files = svc.get_json(&format!("/jobs/j/tasks/ok1/files?recursive=true&{}", q("startswith(name,'std')"))).await;
    assert_eq!(ids(&files), ["stderr.txt", "stdout.txt"]);
    let counts = svc.get_json(&format!("/nodecounts?{}", q("poolId eq 'other'"))).await;
    assert_eq!(counts["value"].as_array().unwrap().len(), 1);
    let images = svc.get_json(&format!("/supportedimages?{}", q("nodeAgentSKUId eq 'batch.node.ubuntu 22.04'"))).await;
    assert!(!images["value"].as_array().unwrap().is_empty());
    assert!(images["value"].as_array().unwrap().iter().all(|i| i["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"));

    // Errors point at the problem.
    for bad in ["state eq", "state eqq 'active'", "nosuchproperty eq 1", "executionInfo/exitCode eq 'x'", "(state eq 'active'"] {
        let e = svc.get(&format!("/jobs/j/tasks?{}", q(bad))).send().await.expect_error(400, "InvalidQueryParameterValue");
        assert!(e["values"].as_array().unwrap().iter().any(|v| v["key"] == "QueryParameterName" && v["value"] == "$filter"), "{bad}: {e}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
