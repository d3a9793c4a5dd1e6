//! HTTP integration tests of pool operations beyond Add/Get/Resize: Update Properties, Stop
//! Resize, Remove Nodes, `resizeTimeout` bounds, node quotas, and the preemption of Spot nodes
//! (`POST /openbatch/v1/pools/{pool}/nodes/{node}/preempt`) with real node agents.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

fn node_ids(nodes: &[Value]) -> Vec<String> {
    nodes.iter().filter_map(|n| n["id"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn update_properties_replaces_every_updatable_property() {
    let svc = Service::start().await;
    let extra = json!({"startTask": {"commandLine": "/bin/true"}, "metadata": [{"name": "a", "value": "1"}]});
    svc.add_pool("p", 0, extra).await;
    // The three lists are required.
    let r =
        svc.post("/pools/p/updateproperties").json(json!({"certificateReferences": [], "applicationPackageReferences": []})).send().await;
    r.expect_error(400, "MissingRequiredProperty");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("metadata"));
    let body = json!({"certificateReferences": [], "applicationPackageReferences": [], "metadata": [{"name": "b", "value": "2"}]});
    let r = svc.post("/pools/p/updateproperties").json(body).send().await;
    r.expect_status(204);
    assert!(r.header("etag").is_some_and(|e| is_etag(&e)), "{r:?}");
    assert!(r.header("dataserviceid").is_some_and(|u| u.ends_with("/pools/p/updateproperties")), "{r:?}");
    // What the body left out is gone: the start task; the metadata is replaced.
    let p = svc.get_json("/pools/p").await;
    assert!(p.get("startTask").is_none(), "{p}");
    assert_eq!(p["metadata"], json!([{"name": "b", "value": "2"}]));
    assert_eq!(p["certificateReferences"], json!([]));
    assert!(p.get("applicationPackageReferences").is_none(), "{p}");
    // A new start task is checked as Pool Add checks it.
    let bad = json!({"certificateReferences": [], "applicationPackageReferences": [], "metadata": [], "startTask": {"commandLine": " "}});
    svc.post("/pools/p/updateproperties").json(bad).send().await.expect_error(400, "InvalidPropertyValue");
    svc.post("/pools/nope/updateproperties")
        .json(json!({"certificateReferences": [], "applicationPackageReferences": [], "metadata": []}))
        .send()
        .await
        .expect_error(404, "PoolNotFound");
}

#[tokio::test]
async fn resize_timeouts_under_five_minutes_are_refused() {
    let svc = Service::start().await;
    let mut body = linux_pool("p", 0);
    body["resizeTimeout"] = json!("PT4M59S");
    let r = svc.post("/pools").json(body).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("resizeTimeout"));
    svc.add_pool("p", 0, json!({"resizeTimeout": "PT90M"})).await;
    // Written back as the service writes durations.
    assert_eq!(svc.get_json("/pools/p").await["resizeTimeout"], "PT1H30M");
    let r = svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 1, "resizeTimeout": "PT1M"})).send().await;
    r.expect_error(400, "InvalidPropertyValue");
}

#[tokio::test]
async fn stop_resize_leaves_the_pool_steady_with_its_targets() {
    let svc = Service::start().await;
    svc.add_pool("p", 0, json!({})).await;
    // Stopping a steady pool changes nothing (and answers with the pool's ETag).
    let etag = svc.get("/pools/p").send().await.header("etag");
    let r = svc.post("/pools/p/stopresize").send().await;
    r.expect_status(202);
    assert_eq!(r.header("etag"), etag);
    svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 0, "targetLowPriorityNodes": 3})).send().await.expect_status(202);
    svc.post("/pools/p/stopresize").send().await.expect_status(202);
    let p = poll("pool steady", secs(10), || async {
        let p = svc.get_json("/pools/p").await;
        (p["allocationState"] == "steady").then_some(p)
    })
    .await;
    assert_eq!(p["targetLowPriorityNodes"], 3, "{p}");
    // Nodes whose agents had not joined yet were released; any short count says why.
    if p["currentLowPriorityNodes"] != 3 {
        assert_eq!(p["resizeErrors"][0]["code"], "ResizeStopped", "{p}");
    }
    let nodes = svc.get_json("/pools/p/nodes").await["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len() as u64, p["currentLowPriorityNodes"].as_u64().unwrap_or(99), "{nodes:?}");
    // The next resize reaches its target and clears the error.
    svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 1, "targetLowPriorityNodes": 0})).send().await.expect_status(202);
    svc.wait_pool_idle("p", 1, secs(30)).await;
    let p = svc.get_json("/pools/p").await;
    assert!(p.get("resizeErrors").is_none(), "{p}");
    svc.post("/pools/nope/stopresize").send().await.expect_error(404, "PoolNotFound");
}

#[tokio::test]
async fn remove_nodes_removes_the_named_nodes() {
    let svc = Service::start().await;
    svc.add_pool("p", 3, json!({})).await;
    let ids = node_ids(&svc.wait_pool_idle("p", 3, secs(30)).await);
    // Refusals first: nothing changes.
    svc.post("/pools/p/removenodes").json(json!({"nodeList": []})).send().await.expect_error(400, "MissingRequiredProperty");
    let many: Vec<String> = (0..101).map(|i| format!("n{i}")).collect();
    svc.post("/pools/p/removenodes").json(json!({"nodeList": many})).send().await.expect_error(400, "InvalidPropertyValue");
    svc.post("/pools/p/removenodes").json(json!({"nodeList": ["nope"]})).send().await.expect_error(404, "NodeNotFound");
    let r = svc.post("/pools/p/removenodes").json(json!({"nodeList": [ids[1]], "resizeTimeout": "PT1M"})).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    let r = svc.post("/pools/p/removenodes").json(json!({"nodeList": [ids[1]], "nodeDeallocationOption": "terminate"})).send().await;
    r.expect_status(202);
    assert!(r.header("dataserviceid").is_some_and(|u| u.ends_with("/pools/p/removenodes")), "{r:?}");
    let p = poll("pool steady at 2", secs(10), || async {
        let p = svc.get_json("/pools/p").await;
        (p["allocationState"] == "steady" && p["currentDedicatedNodes"] == 2).then_some(p)
    })
    .await;
    assert_eq!(p["targetDedicatedNodes"], 2);
    let left = node_ids(svc.get_json("/pools/p/nodes").await["value"].as_array().map(Vec::as_slice).unwrap_or_default());
    assert_eq!(left, vec![ids[0].clone(), ids[2].clone()]);
}

#[tokio::test]
async fn node_quotas_are_reported_as_core_quotas() {
    let svc = Service::start_with(&["--max-dedicated-nodes", "2"]).await;
    svc.add_pool("p", 3, json!({})).await;
    let p = poll("pool steady", secs(10), || async {
        let p = svc.get_json("/pools/p").await;
        (p["allocationState"] == "steady").then_some(p)
    })
    .await;
    assert_eq!((p["currentDedicatedNodes"].as_i64(), p["targetDedicatedNodes"].as_i64()), (Some(2), Some(3)), "{p}");
    assert_eq!(p["resizeErrors"][0]["code"], "AccountCoreQuotaReached", "{p}");
}

#[tokio::test]
async fn a_preempted_spot_node_requeues_its_task_which_completes_elsewhere() {
    let svc = Service::start_with(&["--spot-recovery", "PT2S"]).await;
    svc.add_pool("p", 1, json!({"targetLowPriorityNodes": 1})).await;
    let nodes = poll("a dedicated and a spot node idle", secs(30), || async {
        let nodes = svc.get_json("/pools/p/nodes").await["value"].as_array().cloned().unwrap_or_default();
        (nodes.len() == 2 && nodes.iter().all(|n| n["state"] == "idle")).then_some(nodes)
    })
    .await;
    let spot = nodes.iter().find(|n| n["isDedicated"] == false).and_then(|n| n["id"].as_str()).expect("a spot node").to_string();
    let dedicated = nodes.iter().find(|n| n["isDedicated"] == true).and_then(|n| n["id"].as_str()).expect("a dedicated node").to_string();
    svc.add_job("j", "p", json!({})).await;
    for t in ["a", "b"] {
        svc.add_task("j", t, "/bin/sh -c 'sleep 2; echo done'", json!({})).await;
    }
    // Find the task on the Spot node once both run.
    let on_spot = poll("a task running on the spot node", secs(20), || async {
        for t in ["a", "b"] {
            let task = svc.get_json(&format!("/jobs/j/tasks/{t}")).await;
            if task["state"] == "running" && task["nodeInfo"]["nodeId"] == spot.as_str() {
                return Some(t);
            }
        }
        None
    })
    .await;
    // Dedicated nodes cannot be preempted; Spot nodes can, by the account's administrator.
    let r = svc.req(Method::POST, &format!("/openbatch/v1/pools/p/nodes/{dedicated}/preempt")).send().await;
    r.expect_error(409, "OperationInvalidForCurrentState");
    svc.req(Method::POST, "/openbatch/v1/pools/p/nodes/nope/preempt").send().await.expect_error(404, "NodeNotFound");
    let unsigned = svc.req(Method::POST, &format!("/openbatch/v1/pools/p/nodes/{spot}/preempt")).sign(Sign::None).send().await;
    assert!(unsigned.status.is_client_error(), "{unsigned:?}");
    svc.req(Method::POST, &format!("/openbatch/v1/pools/p/nodes/{spot}/preempt")).send().await.expect_status(202);
    let n = svc.get_json(&format!("/pools/p/nodes/{spot}")).await;
    assert_eq!(n["state"], "preempted", "{n}");
    let p = svc.get_json("/pools/p").await;
    assert_eq!(p["currentLowPriorityNodes"], 1, "preempted nodes still count: {p}");
    // The task is requeued and completes, on whichever node takes it, with its output.
    let t = svc.wait_task_completed("j", on_spot, secs(30)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    assert_eq!(t["executionInfo"]["retryCount"], 0, "preemption is not a retry: {t}");
    assert_eq!(svc.task_file("j", on_spot, "stdout.txt").await.trim(), "done");
    svc.wait_task_completed("j", if on_spot == "a" { "b" } else { "a" }, secs(30)).await;
    // The Spot node is restored as a new node after the recovery time.
    poll("spot node restored", secs(20), || async {
        (svc.get_json(&format!("/pools/p/nodes/{spot}")).await["state"] == "idle").then_some(())
    })
    .await;
    let counts = svc.get_json("/nodecounts").await;
    assert_eq!(counts["value"][0]["lowPriority"]["idle"], 1, "{counts}");
}

#[tokio::test]
async fn usage_metrics_sum_core_hours_per_half_hour() {
    let svc = Service::start_with(&["--clock-control"]).await;
    svc.add_pool("p", 1, json!({})).await;
    svc.wait_pool_idle("p", 1, secs(30)).await;
    let created = ts(&svc.get_json("/pools/p").await["creationTime"]);
    // By default only the last complete interval is listed: the pool did not exist then.
    let r = svc.get("/poolusagemetrics").send().await;
    r.expect_status(200);
    assert_eq!(r.json()["value"], json!([]), "{r:?}");
    // An hour later (service clock), its node's time has been counted.
    svc.advance_clock("PT1H").await;
    let start = created.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let all = poll("usage counted", secs(20), || async {
        let v = svc.get(&format!("/poolusagemetrics?starttime={start}")).send().await.json();
        let items = v["value"].as_array().cloned().unwrap_or_default();
        let total: f64 = items.iter().filter_map(|i| i["totalCoreHours"].as_f64()).sum();
        (total > 0.9).then_some(items)
    })
    .await;
    for i in &all {
        assert_eq!(i["poolId"], "p", "{i}");
        assert_eq!(i["vmSize"], "standard_d2s_v3", "{i}");
        let (s, e) = (ts(&i["startTime"]), ts(&i["endTime"]));
        assert_eq!((e - s).num_minutes(), 30, "{i}");
        assert_eq!(s.timestamp() % 1800, 0, "intervals start on the half hour: {i}");
    }
    // `$filter` on poolId; a malformed time is refused.
    let none = svc.get(&format!("/poolusagemetrics?starttime={start}&$filter=poolId%20eq%20'other'")).send().await.json();
    assert_eq!(none["value"], json!([]));
    svc.get("/poolusagemetrics?starttime=yesterday").send().await.expect_error(400, "InvalidQueryParameterValue");
}

#[tokio::test]
async fn pool_node_counts_page_through_every_pool() {
    let svc = Service::start().await;
    for i in 0..13 {
        svc.add_pool(&format!("p{i:02}"), 0, json!({})).await;
    }
    // Ten a page by default, as the API documents; the next link continues.
    let first = svc.get("/nodecounts").send().await.json();
    assert_eq!(first["value"].as_array().map(Vec::len), Some(10), "{first}");
    let next = first["odata.nextLink"].as_str().expect("a next link").to_string();
    let second = svc.req_url(Method::GET, &next).send().await.json();
    let ids: Vec<&str> = second["value"].as_array().into_iter().flatten().filter_map(|v| v["poolId"].as_str()).collect();
    assert_eq!(ids, ["p10", "p11", "p12"]);
    assert!(second.get("odata.nextLink").is_none(), "{second}");
    let one = svc.get("/nodecounts?$filter=poolId%20eq%20'p12'").send().await.json();
    assert_eq!(one["value"].as_array().map(Vec::len), Some(1), "{one}");
}
