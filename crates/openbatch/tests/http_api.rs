//! HTTP integration tests: every operation of the router, driven through a real
//! `openbatch serve` process (and its node agents) with SharedKey-signed requests.
//!
//! Each test starts its own service on a free port with its own data directory, so tests run
//! in parallel and never share state.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const UNLIMITED: &str = "P10675199DT2H48M5.4775807S";

fn ids(list: &Value) -> Vec<String> {
    list["value"].as_array().expect("a list").iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

fn is_etag(s: &str) -> bool {
    s.len() > 2 && s.starts_with("0x") && s[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
}

#[track_caller]
fn assert_entity_headers(r: &Resp) {
    let etag = r.header("etag").unwrap_or_else(|| panic!("no ETag: {r:?}"));
    assert!(is_etag(&etag), "ETag {etag} is not 0x<upper-case hex>");
    let lm = r.header("last-modified").unwrap_or_else(|| panic!("no Last-Modified: {r:?}"));
    chrono::DateTime::parse_from_rfc2822(&lm).unwrap_or_else(|e| panic!("Last-Modified {lm} is not RFC 1123: {e}"));
}

fn names(list: &Value) -> BTreeMap<String, Value> {
    list["value"].as_array().expect("a file list").iter().map(|v| (v["name"].as_str().unwrap().to_string(), v.clone())).collect()
}

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
