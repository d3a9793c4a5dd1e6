//! HTTP integration tests of the protocol, the account, pools and compute nodes, driven
//! through a real `openbatch serve` process (and its node agents) with SharedKey-signed
//! requests: api-version, SharedKey authentication, request ids, 405 and 404 routing,
//! supported images and pool node counts; pool add, get, exists, patch, delete, validation,
//! paging and resize; Windows pools; nodes, start tasks and the shared directory.
//!
//! Jobs are tested in `jobs_api.rs`, tasks and files in `tasks_api.rs`; the helpers the
//! three share are in `common/mod.rs`.
//!
//! Each test starts its own service on a free port with its own data directory, so tests run
//! in parallel and never share state.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Protocol: api-version, authentication, request ids, routing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn api_version_is_required_and_must_be_published() {
    let svc = Service::start().await;

    let r = svc.get("/pools").no_api_version().send().await;
    r.expect_error(400, "MissingRequiredQueryParameter");
    assert_eq!(r.error_value("QueryParameterName").as_deref(), Some("api-version"), "{r:?}");

    for bad in ["2026-10-01.22.0", "2022-10-01", "banana", "2022-13-01.16.0x"] {
        let r = svc.get("/pools").api_version(bad).send().await;
        r.expect_error(400, "InvalidQueryParameterValue");
        assert_eq!(r.error_value("QueryParameterName").as_deref(), Some("api-version"), "{r:?}");
        assert_eq!(r.error_value("QueryParameterValue").as_deref(), Some(bad), "{r:?}");
    }

    // Every published version is accepted, not just the newest.
    for ok in ["2025-06-01", "2023-05-01.17.0", "2022-10-01.16.0", "2021-06-01.14.0", "2019-08-01.10.0"] {
        svc.get("/pools").api_version(ok).send().await.expect_status(200);
    }
}

#[tokio::test]
async fn shared_key_authentication() {
    let svc = Service::start().await;

    // Correctly signed requests pass, including ones with several query parameters.
    svc.get("/pools?maxresults=5&timeout=30").send().await.expect_status(200);
    svc.get("/pools?$select=id,state").send().await.expect_status(200);
    svc.get("/supportedimages").header("ocp-custom-thing", "x").send().await.expect_status(200);

    // No Authorization header.
    let r = svc.get("/pools").sign(Sign::None).send().await;
    assert!(r.status.is_client_error(), "{r:?}");
    let body = r.json();
    assert_eq!(body["code"], "MissingRequiredHeader", "{r:?}");
    assert_eq!(r.error_value("HeaderName").as_deref(), Some("Authorization"), "{r:?}");

    // Signed with another key.
    let other_key = hmac_b64(&svc.key, "derive a different key");
    let r = svc.get("/pools").sign(Sign::Key(other_key)).send().await;
    r.expect_error(403, "AuthenticationFailed");
    assert!(r.error_value("AuthenticationErrorDetail").is_some(), "{r:?}");

    // The signature covers the path and the ocp-* headers: a signature made for
    // GET /jobs with one ocp-date verifies only for exactly that request.
    let date = "Mon, 01 Jan 2024 00:00:00 GMT";
    let url = reqwest::Url::parse(&format!("{}/jobs?api-version={API_VERSION}", svc.base)).unwrap();
    let sts = string_to_sign("GET", &url, &[("ocp-date".into(), date.into())]);
    let sig = Sign::Raw(format!("SharedKey {ACCOUNT}:{}", hmac_b64(&svc.key, &sts)));
    svc.get("/jobs").ocp_date(date).sign(sig.clone()).send().await.expect_status(200);
    svc.get("/pools").ocp_date(date).sign(sig.clone()).send().await.expect_error(403, "AuthenticationFailed");
    svc.get("/jobs?maxresults=3").ocp_date(date).sign(sig.clone()).send().await.expect_error(403, "AuthenticationFailed");
    svc.get("/jobs").ocp_date("Mon, 01 Jan 2024 00:00:01 GMT").sign(sig.clone()).send().await.expect_error(403, "AuthenticationFailed");
    svc.get("/jobs").ocp_date(date).header("ocp-extra", "1").sign(sig).send().await.expect_error(403, "AuthenticationFailed");

    // Bodies: Content-Length and Content-Type are signed (a correctly signed POST passes).
    svc.post("/jobs").json(json!({"id": "signed", "poolInfo": {"poolId": "p"}})).send().await.expect_status(201);
    // An empty POST and DELETE sign Content-Length 0.
    svc.post("/jobs/signed/terminate").send().await.expect_status(202);
    svc.delete("/jobs/signed").send().await.expect_status(202);

    // Another account name.
    let r = svc.get("/pools").sign(Sign::Raw("SharedKey someoneelse:AAAA".into())).send().await;
    r.expect_error(403, "AuthenticationFailed");

    // Not a SharedKey header at all.
    let r = svc.get("/pools").sign(Sign::Raw("Bearer abc.def.ghi".into())).send().await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert_eq!(r.json()["code"], "InvalidAuthenticationInfo", "{r:?}");
}

/// The real service answers a request without `Authorization` with **400** (not 401)
/// `MissingRequiredHeader` (recorded: azure-sdk-for-python test_batch_certificates.yaml,
/// see notes/batch-facts.md §1), and a malformed Authorization value with 400
/// `InvalidAuthenticationInfo` (Batch error-code documentation).
#[tokio::test]

async fn missing_or_malformed_authorization_is_400() {
    let svc = Service::start().await;
    svc.get("/pools").sign(Sign::None).send().await.expect_error(400, "MissingRequiredHeader");
    svc.get("/pools").sign(Sign::Raw("Bearer abc".into())).send().await.expect_error(400, "InvalidAuthenticationInfo");
}

#[tokio::test]
async fn request_ids_and_client_request_id_echo() {
    let svc = Service::start().await;

    let is_guid = |s: &str| s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4;
    let r = svc.get("/pools").send().await;
    r.expect_status(200);
    let rid = r.header("request-id").expect("request-id on success");
    assert!(is_guid(&rid), "request-id {rid} is not a GUID");
    assert_eq!(r.header("dataserviceversion").as_deref(), Some("3.0"));
    assert_eq!(r.header("content-type").as_deref(), Some("application/json;odata=minimalmetadata"));
    let r2 = svc.get("/pools").send().await;
    assert_ne!(r2.header("request-id"), Some(rid), "request ids must differ per request");

    // Errors carry one too (and name it in the message).
    let r = svc.get("/pools/nope").send().await;
    r.expect_error(404, "PoolNotFound");

    let crid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let r = svc.get("/pools").header("client-request-id", crid).header("return-client-request-id", "true").send().await;
    r.expect_status(200);
    assert_eq!(r.header("client-request-id").as_deref(), Some(crid));

    let r = svc.get("/pools").header("client-request-id", crid).header("return-client-request-id", "false").send().await;
    assert_eq!(r.header("client-request-id"), None, "echoed although return-client-request-id is false");
    let r = svc.get("/pools").header("client-request-id", crid).send().await;
    assert_eq!(r.header("client-request-id"), None, "echoed although return-client-request-id was not sent");

    // Echoed on errors too when asked for.
    let r = svc.get("/pools/nope").header("client-request-id", crid).header("return-client-request-id", "true").send().await;
    r.expect_status(404);
    assert_eq!(r.header("client-request-id").as_deref(), Some(crid));
}

#[tokio::test]
async fn wrong_method_on_a_known_path_is_405() {
    let svc = Service::start().await;
    for (m, path) in [
        (Method::PUT, "/pools"),
        (Method::DELETE, "/jobs"),
        (Method::POST, "/pools/p1"),
        (Method::PATCH, "/jobs/j/tasks/t"),
        (Method::POST, "/supportedimages"),
        (Method::PUT, "/jobs/j/tasks/t/files/stdout.txt"),
    ] {
        let r = svc.req(m, path).send().await;
        r.expect_error(405, "UnsupportedHttpVerb");
    }
    // The service is still up.
    svc.get("/pools").send().await.expect_status(200);
}

/// `GET /nothing` (a path no method serves) overflows the stack of the service's worker
/// thread and aborts the whole process (router::route and route_exact recurse into each
/// other without end), so every later request fails to connect.
#[tokio::test]

async fn unknown_path_is_404() {
    let svc = Service::start().await;
    for path in ["/nothing", "/pools/p/bogus", "/jobs/j/tasks/t/whatever/else", "/certificatesx"] {
        let r = svc.get(path).send().await;
        r.expect_status(404);
        assert!(r.json()["code"].is_string(), "{r:?}");
    }
    svc.get("/pools").send().await.expect_status(200);
}

/// `GET /pools/p1/resize` overflows the stack the same way and aborts the service: any
/// request with a wrong method on a path that GET does not serve (GET on a POST-only path,
/// PUT /jobs/j/terminate, ...) recurses without end while looking for a method that serves it.
#[tokio::test]

async fn wrong_method_on_a_post_only_path_is_405() {
    let svc = Service::start().await;
    for path in ["/pools/p1/resize", "/jobs/j/terminate", "/jobs/j/addtaskcollection", "/jobs/j/tasks/t/terminate"] {
        let r = svc.get(path).send().await;
        r.expect_error(405, "UnsupportedHttpVerb");
    }
    svc.get("/pools").send().await.expect_status(200);
}

// ---------------------------------------------------------------------------------------
// Account
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn supported_images_and_pool_node_counts() {
    let svc = Service::start().await;
    let v = svc.get_json("/supportedimages").await;
    assert!(v["odata.metadata"].as_str().unwrap().ends_with("/$metadata#supportedimages"), "{v}");
    let images = v["value"].as_array().unwrap();
    assert!(!images.is_empty());
    for i in images {
        assert_eq!(i["osType"], "linux", "{i}");
        assert!(i["nodeAgentSKUId"].as_str().unwrap().starts_with("batch.node."), "{i}");
        assert_eq!(i["imageReference"]["version"], "latest", "{i}");
    }
    assert!(images.iter().any(|i| i["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"));

    svc.add_pool("counted", 1, json!({})).await;
    svc.add_pool("empty", 0, json!({})).await;
    svc.wait_pool_idle("counted", 1, secs(20)).await;
    let v = svc.get_json("/nodecounts").await;
    assert!(v["odata.metadata"].as_str().unwrap().ends_with("/$metadata#poolnodecounts"), "{v}");
    let by_pool: BTreeMap<String, Value> =
        v["value"].as_array().unwrap().iter().map(|p| (p["poolId"].as_str().unwrap().to_string(), p.clone())).collect();
    assert_eq!(by_pool["counted"]["dedicated"]["idle"], 1, "{v}");
    assert_eq!(by_pool["counted"]["dedicated"]["total"], 1, "{v}");
    assert_eq!(by_pool["counted"]["lowPriority"]["total"], 0, "{v}");
    assert_eq!(by_pool["empty"]["dedicated"]["total"], 0, "{v}");
}

// ---------------------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pool_add_get_exists_patch_delete() {
    let svc = Service::start().await;

    let mut body = linux_pool("pool-a", 0);
    merge(&mut body, json!({"displayName": "Pool A", "metadata": [{"name": "k1", "value": "v1"}]}));
    let r = svc.post("/pools").json(body.clone()).send().await;
    r.expect_status(201);
    assert!(r.body.is_empty(), "201 has no body: {r:?}");
    let url = format!("{}/pools/pool-a", svc.base);
    assert_eq!(r.header("location").as_deref(), Some(url.as_str()));
    assert_eq!(r.header("dataserviceid").as_deref(), Some(url.as_str()));
    assert_entity_headers(&r);
    let etag_add = r.header("etag").unwrap();

    // Duplicate ids (ids are case-insensitive).
    svc.post("/pools").json(body.clone()).send().await.expect_error(409, "PoolExists");
    let mut upper = body.clone();
    upper["id"] = json!("POOL-A");
    svc.post("/pools").json(upper).send().await.expect_error(409, "PoolExists");

    // Get: the service's defaults are filled in.
    let r = svc.get("/pools/pool-a").send().await;
    r.expect_status(200);
    assert_entity_headers(&r);
    let p = r.json();
    let meta = p["odata.metadata"].as_str().unwrap();
    assert_eq!(meta, format!("{}/$metadata#pools/@Element", svc.base));
    assert_eq!(p.as_object().unwrap().keys().next().map(String::as_str), Some("odata.metadata"), "odata.metadata first");
    assert_eq!(p["id"], "pool-a");
    assert_eq!(p["url"], url);
    assert_eq!(p["eTag"], r.header("etag").unwrap().as_str());
    assert_eq!(p["eTag"], etag_add.as_str());
    assert_eq!(p["displayName"], "Pool A");
    assert_eq!(p["state"], "active");
    assert_eq!(p["resizeTimeout"], "PT15M");
    assert_eq!(p["taskSlotsPerNode"], 1);
    assert_eq!(p["taskSchedulingPolicy"]["nodeFillType"], "Spread");
    assert_eq!(p["vmSize"], "standard_d2s_v3");
    assert_eq!(p["targetDedicatedNodes"], 0);
    assert_eq!(p["enableAutoScale"], false);
    assert_eq!(p["enableInterNodeCommunication"], false);
    assert_eq!(p["virtualMachineConfiguration"]["imageReference"]["version"], "latest");
    assert_eq!(p["virtualMachineConfiguration"]["imageReference"]["publisher"], "canonical");
    assert_eq!(p["virtualMachineConfiguration"]["nodeAgentSKUId"], "batch.node.ubuntu 22.04");
    assert_eq!(p["metadata"], json!([{"name": "k1", "value": "v1"}]));
    assert_eq!(p["creationTime"], p["lastModified"]);
    ts(&p["creationTime"]);
    ts(&p["stateTransitionTime"]);
    for (k, v) in p.as_object().unwrap() {
        assert!(!v.is_null(), "{k} is null; absent fields are omitted");
    }

    // $select keeps only the named properties (and odata.metadata).
    let sel = svc.get_json("/pools/pool-a?$select=id,state").await;
    let keys: BTreeSet<&str> = sel.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["odata.metadata", "id", "state"]));

    svc.get("/pools/nope").send().await.expect_error(404, "PoolNotFound");

    // Exists (HEAD): no body either way.
    let r = svc.head("/pools/pool-a").send().await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    let r = svc.head("/pools/nope").send().await;
    r.expect_status(404);
    assert!(r.body.is_empty(), "HEAD 404 has no body: {r:?}");

    // Patch: metadata replaced, other properties kept, a new ETag.
    let r = svc.patch("/pools/pool-a").json(json!({"metadata": [{"name": "k2", "value": "v2"}]})).send().await;
    r.expect_status(200);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    assert_eq!(r.header("dataserviceid").as_deref(), Some(url.as_str()));
    let etag_patch = r.header("etag").unwrap();
    assert_ne!(etag_patch, etag_add, "a patch gives a new ETag");
    let p = svc.get_json("/pools/pool-a").await;
    assert_eq!(p["metadata"], json!([{"name": "k2", "value": "v2"}]));
    assert_eq!(p["displayName"], "Pool A");
    assert_eq!(p["eTag"], etag_patch.as_str());
    svc.patch("/pools/nope").json(json!({"metadata": []})).send().await.expect_error(404, "PoolNotFound");
    svc.patch("/pools/pool-a").json(json!({"vmSize": "other"})).send().await.expect_error(400, "InvalidPropertyValue");

    // Delete: 202, then the pool goes away.
    let r = svc.delete("/pools/pool-a").send().await;
    r.expect_status(202);
    assert!(r.body.is_empty());
    poll("pool-a deleted", secs(15), || async {
        let r = svc.get("/pools/pool-a").send().await;
        (r.status == 404).then(|| r.expect_error(404, "PoolNotFound"))
    })
    .await;
    svc.head("/pools/pool-a").send().await.expect_status(404);
    svc.delete("/pools/pool-a").send().await.expect_error(404, "PoolNotFound");
    assert!(ids(&svc.get_json("/pools").await).is_empty());
}

#[tokio::test]
async fn pool_add_validation_errors() {
    let svc = Service::start().await;

    // Missing vmSize.
    let mut body = linux_pool("p1", 0);
    body.as_object_mut().unwrap().remove("vmSize");
    let r = svc.post("/pools").json(body).send().await;
    r.expect_error(400, "MissingRequiredProperty");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("vmSize"), "{r:?}");

    // Missing id.
    let mut body = linux_pool("p1", 0);
    body.as_object_mut().unwrap().remove("id");
    let r = svc.post("/pools").json(body).send().await;
    r.expect_error(400, "MissingRequiredProperty");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("id"), "{r:?}");

    // An unknown property, top level and nested.
    let mut body = linux_pool("p1", 0);
    merge(&mut body, json!({"fooBar": 1}));
    let r = svc.post("/pools").json(body).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    assert_eq!(r.error_value("PropertyName").as_deref(), Some("fooBar"), "{r:?}");
    let mut body = linux_pool("p1", 0);
    body["virtualMachineConfiguration"]["imageReference"]["bogusField"] = json!("x");
    let r = svc.post("/pools").json(body).send().await;
    r.expect_error(400, "InvalidPropertyValue");
    assert!(r.error_value("PropertyName").unwrap_or_default().contains("bogusField"), "{r:?}");

    // Invalid ids.
    for bad in ["has space", "semi;colon", "ümlaut", &"x".repeat(65), ""] {
        let r = svc.post("/pools").json(linux_pool(bad, 0)).send().await;
        r.expect_error(400, "InvalidPropertyValue");
        assert_eq!(r.error_value("PropertyName").as_deref(), Some("id"), "{r:?}");
    }
    // 64 characters is fine.
    svc.add_pool(&"x".repeat(64), 0, json!({})).await;

    // Wrong types and out-of-range values.
    let r = svc
        .post("/pools")
        .json({
            let mut b = linux_pool("p1", 0);
            b["targetDedicatedNodes"] = json!("two");
            b
        })
        .send()
        .await;
    r.expect_error(400, "InvalidPropertyValue");
    assert!(r.error_value("PropertyName").unwrap_or_default().contains("targetDedicatedNodes"), "{r:?}");
    let mut b = linux_pool("p1", 0);
    b["targetDedicatedNodes"] = json!(-1);
    svc.post("/pools").json(b).send().await.expect_error(400, "InvalidPropertyValue");
    let mut b = linux_pool("p1", 0);
    b["taskSlotsPerNode"] = json!(0);
    svc.post("/pools").json(b).send().await.expect_error(400, "InvalidPropertyValue");

    // Not JSON at all.
    svc.post("/pools").raw_json(b"{\"id\": ".to_vec()).send().await.expect_error(400, "InvalidRequestBody");

    // None of the refused pools exists.
    assert_eq!(ids(&svc.get_json("/pools").await), vec!["x".repeat(64)]);
}

#[tokio::test]
async fn pool_list_pages_with_next_link() {
    let svc = Service::start().await;
    let want: BTreeSet<String> = (0..5).map(|i| format!("pool-{i}")).collect();
    for id in &want {
        svc.add_pool(id, 0, json!({})).await;
    }

    let first = svc.get_json("/pools").await;
    assert!(first["odata.metadata"].as_str().unwrap().ends_with("/$metadata#pools"), "{first}");
    assert_eq!(ids(&first).into_iter().collect::<BTreeSet<_>>(), want);
    assert!(first.get("odata.nextLink").is_none(), "no nextLink when everything fits");

    let mut seen: Vec<String> = Vec::new();
    let mut page = svc.get_json("/pools?maxresults=1").await;
    let mut pages = 1;
    loop {
        let got = ids(&page);
        assert!(got.len() <= 1, "maxresults=1 gave {got:?}");
        seen.extend(got);
        let Some(next) = page.get("odata.nextLink").and_then(Value::as_str).map(str::to_string) else { break };
        assert!(next.starts_with(&format!("{}/pools?", svc.base)), "nextLink {next} is not an absolute URL of this service");
        assert!(next.contains("maxresults=1"), "nextLink {next} keeps the query");
        let r = svc.req_url(Method::GET, &next).send().await;
        r.expect_status(200);
        page = r.json();
        pages += 1;
        assert!(pages < 20, "paging does not end");
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a pool was listed twice: {seen:?}");
    assert_eq!(unique, want);

    let r = svc.get("/pools?maxresults=0").send().await;
    r.expect_error(400, "InvalidQueryParameterValue");
    assert_eq!(r.error_value("QueryParameterName").as_deref(), Some("maxresults"));
    svc.get("/pools?maxresults=abc").send().await.expect_error(400, "InvalidQueryParameterValue");
    svc.get("/pools?$skiptoken=%25%25%25").send().await.expect_error(400, "InvalidQueryParameterValue");
}

#[tokio::test]
async fn pool_resize_up_and_down() {
    let svc = Service::start().await;
    svc.add_pool("rp", 0, json!({})).await;
    svc.wait_pool_idle("rp", 0, secs(10)).await;
    let etag0 = svc.get_json("/pools/rp").await["eTag"].clone();

    let r = svc.post("/pools/rp/resize").json(json!({"targetDedicatedNodes": 3})).send().await;
    r.expect_status(202);
    assert!(r.body.is_empty());
    assert_entity_headers(&r);
    assert_eq!(r.header("dataserviceid"), Some(format!("{}/pools/rp/resize", svc.base)));
    assert_ne!(Value::String(r.header("etag").unwrap()), etag0, "a resize gives a new ETag");

    // While resizing, another resize is refused.
    let r = svc.post("/pools/rp/resize").json(json!({"targetDedicatedNodes": 1})).send().await;
    r.expect_error(409, "PoolBeingResized");

    let nodes = svc.wait_pool_idle("rp", 3, secs(30)).await;
    let p = svc.get_json("/pools/rp").await;
    assert_eq!(p["targetDedicatedNodes"], 3);
    assert_eq!(p["currentDedicatedNodes"], 3);
    assert_eq!(p["allocationState"], "steady");
    let node_ids: BTreeSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(node_ids.len(), 3, "node ids are distinct");

    // Down to one.
    svc.post("/pools/rp/resize")
        .json(json!({"targetDedicatedNodes": 1, "nodeDeallocationOption": "requeue"}))
        .send()
        .await
        .expect_status(202);
    let nodes = svc.wait_pool_idle("rp", 1, secs(20)).await;
    assert!(node_ids.contains(nodes[0]["id"].as_str().unwrap()), "the kept node is one of the old ones");
    let p = svc.get_json("/pools/rp").await;
    assert_eq!(p["targetDedicatedNodes"], 1);
    assert_eq!(p["currentDedicatedNodes"], 1);

    // Errors.
    svc.post("/pools/nope/resize").json(json!({"targetDedicatedNodes": 1})).send().await.expect_error(404, "PoolNotFound");
    svc.post("/pools/rp/resize").json(json!({"targetDedicatedNodes": -2})).send().await.expect_error(400, "InvalidPropertyValue");
    svc.post("/pools/rp/resize")
        .json(json!({"targetDedicatedNodes": 1, "bogus": 1}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");

    // Up again from one: the new nodes get new ids, and the pool settles.
    svc.post("/pools/rp/resize").json(json!({"targetDedicatedNodes": 2})).send().await.expect_status(202);
    let nodes = svc.wait_pool_idle("rp", 2, secs(20)).await;
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "node ids are distinct after growing: {ids:?}");
    poll("rp steady at 2", secs(20), || async {
        let p = svc.get_json("/pools/rp").await;
        (p["allocationState"] == "steady" && p["currentDedicatedNodes"] == 2).then_some(())
    })
    .await;
    assert!(svc.get_json("/pools/rp").await.get("nextNodeIndex").is_none(), "bookkeeping is not rendered");

    // Down to zero.
    svc.post("/pools/rp/resize").json(json!({"targetDedicatedNodes": 0})).send().await.expect_status(202);
    svc.wait_pool_idle("rp", 0, secs(20)).await;

    // Delete a pool that has a node.
    svc.add_pool("rp2", 1, json!({})).await;
    svc.wait_pool_idle("rp2", 1, secs(20)).await;
    svc.delete("/pools/rp2").send().await.expect_status(202);
    poll("rp2 deleted", secs(20), || async { (svc.get("/pools/rp2").send().await.status == 404).then_some(()) }).await;
    svc.get("/pools/rp2/nodes").send().await.expect_error(404, "PoolNotFound");
    let counts = svc.get_json("/nodecounts").await;
    assert!(!counts["value"].as_array().unwrap().iter().any(|p| p["poolId"] == "rp2"), "{counts}");
}

#[tokio::test]
async fn windows_pools_get_a_resize_error_and_no_nodes() {
    let svc = Service::start().await;
    let cloud = json!({
        "id": "win-cs", "vmSize": "small", "targetDedicatedNodes": 1,
        "cloudServiceConfiguration": {"osFamily": "6"}
    });
    svc.post("/pools").json(cloud).send().await.expect_status(201);
    let vm = json!({
        "id": "win-vm", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 2,
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "microsoftwindowsserver", "offer": "windowsserver", "sku": "2022-datacenter"},
            "nodeAgentSKUId": "batch.node.windows amd64",
            "windowsConfiguration": {"enableAutomaticUpdates": false}
        }
    });
    svc.post("/pools").json(vm).send().await.expect_status(201);
    // A Linux pool next to them gets its node, so the service does allocate.
    svc.add_pool("linux", 1, json!({})).await;
    svc.wait_pool_idle("linux", 1, secs(20)).await;

    for id in ["win-cs", "win-vm"] {
        let p = svc.get_json(&format!("/pools/{id}")).await;
        let errors = p["resizeErrors"].as_array().unwrap_or_else(|| panic!("{id} has no resizeErrors: {p}"));
        assert!(!errors.is_empty(), "{p}");
        let text = serde_json::to_string(errors).unwrap();
        assert!(text.contains("Linux"), "the resize error explains that openbatch runs Linux only: {text}");
        assert!(errors[0]["code"].is_string() && errors[0]["message"].is_string(), "{text}");
        assert_eq!(p["currentDedicatedNodes"], 0, "{p}");
        assert_eq!(p["allocationState"], "steady", "{p}");
        let nodes = svc.get_json(&format!("/pools/{id}/nodes")).await;
        assert_eq!(nodes["value"], json!([]), "{id} has no nodes");
    }
}

// ---------------------------------------------------------------------------------------
// Compute nodes and start tasks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn nodes_list_get_start_task_and_shared_dir() {
    let svc = Service::start().await;
    svc.add_pool(
        "sp",
        1,
        json!({"startTask": {
            "commandLine": "/bin/sh -c 'echo from-start > \"$AZ_BATCH_NODE_SHARED_DIR/start.txt\"; echo started'",
            "waitForSuccess": true
        }}),
    )
    .await;
    let nodes = svc.wait_pool_idle("sp", 1, secs(20)).await;
    let node_id = nodes[0]["id"].as_str().unwrap().to_string();

    let list = svc.get_json("/pools/sp/nodes").await;
    assert!(list["odata.metadata"].as_str().unwrap().ends_with("/$metadata#nodes"), "{list}");

    let n = svc.get_json(&format!("/pools/sp/nodes/{node_id}")).await;
    assert!(n["odata.metadata"].as_str().unwrap().ends_with("/$metadata#nodes/@Element"), "{n}");
    assert_eq!(n["id"], node_id.as_str());
    assert_eq!(n["url"], format!("{}/pools/sp/nodes/{node_id}", svc.base));
    assert_eq!(n["state"], "idle");
    assert_eq!(n["schedulingState"], "enabled");
    assert_eq!(n["isDedicated"], true);
    assert_eq!(n["vmSize"], "standard_d2s_v3");
    let sti = &n["startTaskInfo"];
    assert_eq!(sti["state"], "completed", "{n}");
    assert_eq!(sti["exitCode"], 0, "{n}");
    assert_eq!(sti["result"], "success", "{n}");
    assert_eq!(sti["retryCount"], 0, "{n}");
    assert!(sti.get("failureInfo").is_none(), "{n}");
    ts(&sti["startTime"]);
    ts(&sti["endTime"]);
    assert_eq!(n["startTask"]["waitForSuccess"], true);

    svc.get("/pools/sp/nodes/tvm-nope").send().await.expect_error(404, "NodeNotFound");
    svc.get("/pools/nope/nodes").send().await.expect_error(404, "PoolNotFound");
    svc.get(&format!("/pools/nope/nodes/{node_id}")).send().await.expect_error(404, "PoolNotFound");

    // The start task's output is in startup/, and what it wrote to the shared dir is there
    // for tasks.
    let r = svc.get(&format!("/pools/sp/nodes/{node_id}/files/startup%2Fstdout.txt")).send().await;
    r.expect_status(200);
    assert_eq!(r.text(), "started\n");
    svc.add_job("sj", "sp", json!({})).await;
    svc.add_task("sj", "reader", "/bin/sh -c 'cat \"$AZ_BATCH_NODE_SHARED_DIR/start.txt\"'", json!({})).await;
    let t = svc.wait_task_completed("sj", "reader", secs(20)).await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    assert_eq!(svc.task_file("sj", "reader", "stdout.txt").await, "from-start\n");
    assert_eq!(t["nodeInfo"]["nodeId"], node_id.as_str());
}

#[tokio::test]
async fn failing_start_task_with_wait_for_success_marks_the_node() {
    let svc = Service::start().await;
    svc.add_pool(
        "bad",
        1,
        json!({"startTask": {
            "commandLine": "/bin/sh -c 'echo oops >&2; exit 3'",
            "waitForSuccess": true,
            "maxTaskRetryCount": 1
        }}),
    )
    .await;
    let node = poll("node startTaskFailed", secs(20), || async {
        let nodes = svc.get_json("/pools/bad/nodes").await;
        let n = nodes["value"].as_array()?.first()?.clone();
        n["state"].as_str()?.eq_ignore_ascii_case("starttaskfailed").then_some(n)
    })
    .await;
    assert_eq!(node["state"], "startTaskFailed", "wire spelling of the state");
    let sti = &node["startTaskInfo"];
    assert_eq!(sti["state"], "completed", "{node}");
    assert_eq!(sti["exitCode"], 3, "{node}");
    assert_eq!(sti["result"], "failure", "{node}");
    assert_eq!(sti["retryCount"], 1, "retried once: {node}");
    assert_eq!(sti["failureInfo"]["code"], "FailureExitCode", "{node}");
    assert_eq!(sti["failureInfo"]["category"], "UserError", "{node}");
    let node_id = node["id"].as_str().unwrap();
    let r = svc.get(&format!("/pools/bad/nodes/{node_id}/files/startup/stderr.txt")).send().await;
    r.expect_status(200);
    assert!(r.text().contains("oops"), "{r:?}");

    // No task runs on the node.
    svc.add_job("bj", "bad", json!({})).await;
    svc.add_task("bj", "t", "/bin/true", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = svc.get_json("/jobs/bj/tasks/t").await;
    assert_eq!(t["state"], "active", "a task ran on a node whose start task failed: {t}");
    let n = svc.get_json(&format!("/pools/bad/nodes/{node_id}")).await;
    assert_eq!(n["state"], "startTaskFailed");
}

#[tokio::test]
async fn node_disable_and_enable_scheduling() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    let nodes = svc.wait_pool_idle("p", 1, secs(30)).await;
    let node = nodes[0]["id"].as_str().unwrap().to_string();
    let path = format!("/pools/p/nodes/{node}");
    // No body: the default option (requeue). 200 with DataServiceId and no ETag, as recorded.
    let r = svc.post(&format!("{path}/disablescheduling")).send().await;
    r.expect_status(200);
    assert!(r.header("dataserviceid").is_some_and(|u| u.ends_with("/disablescheduling")));
    assert!(r.header("etag").is_none());
    let n = svc.get_json(&path).await;
    assert_eq!((n["schedulingState"].as_str(), n["state"].as_str()), (Some("disabled"), Some("offline")), "{n}");
    // A task waits while the only node is disabled, and runs once it is enabled again.
    svc.add_job("j", "p", json!({})).await;
    svc.add_task("j", "t", "/bin/true", json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(svc.get_json("/jobs/j/tasks/t").await["state"], "active");
    svc.post(&format!("{path}/enablescheduling")).send().await.expect_status(200);
    svc.wait_task_completed("j", "t", secs(30)).await;
    assert_eq!(svc.get_json(&path).await["schedulingState"], "enabled");
    // The option as 2017-01-01.4.0 spells it; an unknown one is refused naming the property.
    let old = svc.post(&format!("{path}/disablescheduling")).api_version("2017-01-01.4.0");
    old.json(json!({"nodeDisableSchedulingOption": "taskCompletion"})).send().await.expect_status(200);
    let e = svc.post(&format!("{path}/disablescheduling")).json(json!({"nodeDisableSchedulingOption": "later"})).send().await;
    e.expect_error(400, "InvalidPropertyValue");
    svc.post("/pools/p/nodes/nope/disablescheduling").send().await.expect_error(404, "NodeNotFound");
}
