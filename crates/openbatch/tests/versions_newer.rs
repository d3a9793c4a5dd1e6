//! HTTP tests of the api-versions after the seed (2023-05-01.17.0 … 2025-06-01): what each one
//! added, removed or renamed, its defaults, the wire habits of the clients that speak them
//! (numbers sent as strings, 15.x durations), and how configuration a compute node here cannot
//! provide is reported. Older versions keep answering as before (checked beside each change).

mod common;

use common::*;
use serde_json::{json, Value};

const V16: &str = "2022-10-01.16.0";
const V17: &str = "2023-05-01.17.0";
const V18: &str = "2023-11-01.18.0";
const V19: &str = "2024-02-01.19.0";
const V20: &str = "2024-07-01.20.0";
const V25: &str = "2025-06-01";

async fn get_at(svc: &Service, path: &str, v: &str) -> Value {
    let r = svc.get(path).api_version(v).send().await;
    r.expect_status(200);
    r.json()
}

/// Merges `extra` into `base`, object by object (arrays and scalars are replaced).
fn deep_merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                deep_merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

async fn add_pool_at(svc: &Service, v: &str, id: &str, nodes: u32, extra: Value) {
    let mut body = linux_pool(id, nodes);
    deep_merge(&mut body, extra);
    svc.post("/pools").api_version(v).json(body).send().await.expect_status(201);
}

fn assert_names_property(e: &Value, property: &str) {
    let values = e["values"].as_array().expect("values");
    assert!(values.iter().any(|x| x["key"] == "PropertyName" && x["value"] == property), "{e}");
}

#[tokio::test]
async fn every_new_version_is_served_and_unknown_ones_name_the_newest() {
    let svc = Service::start().await;
    for v in [V17, V18, V19, V20, V25] {
        let r = svc.get("/pools").api_version(v).send().await;
        r.expect_status(200);
        assert_eq!(r.json()["value"], json!([]), "{v}");
    }
    // Well formed but not published: a future date-only version, a future dotted one, one
    // older than the first, a date-only form of a dotted version.
    for v in ["2026-10-01", "2027-01-01.22.0", "2014-10-01.1.0", "2024-07-01"] {
        let r = svc.get("/pools").api_version(v).send().await;
        let e = r.expect_error(400, "InvalidQueryParameterValue");
        assert_eq!(r.error_value("QueryParameterValue").as_deref(), Some(v), "{e}");
        let reason = r.error_value("Reason").unwrap_or_default();
        assert!(reason.contains(V25) && !reason.contains("malformed"), "{v}: {reason}");
    }
    for v in ["2025-06", "2025-06-01.21", "latest"] {
        let r = svc.get("/pools").api_version(v).send().await;
        r.expect_error(400, "InvalidQueryParameterValue");
        assert!(r.error_value("Reason").unwrap_or_default().contains("malformed"), "{v}");
    }
}

#[tokio::test]
async fn lifetime_statistics_are_gone_from_2023_05_01_17_0() {
    let svc = Service::start().await;
    svc.get("/lifetimejobstats").api_version(V16).send().await.expect_status(200);
    svc.get("/lifetimejobstats").api_version(V17).send().await.expect_status(404);
    svc.get("/lifetimejobstats").api_version(V25).send().await.expect_status(404);
}

#[tokio::test]
async fn accelerated_networking_defaults_to_false_from_2023_05_01_17_0() {
    let svc = Service::start().await;
    add_pool_at(&svc, V17, "an", 0, json!({"networkConfiguration": {}})).await;
    let p = get_at(&svc, "/pools/an", V17).await;
    assert_eq!(p["networkConfiguration"]["enableAcceleratedNetworking"], false, "{p}");
    assert_eq!(p["networkConfiguration"]["dynamicVNetAssignmentScope"], "none", "{p}");
    // 16.0 neither shows nor takes it.
    let p = get_at(&svc, "/pools/an", V16).await;
    assert!(p["networkConfiguration"].get("enableAcceleratedNetworking").is_none(), "{p}");
    let mut body = linux_pool("an16", 0);
    merge(&mut body, json!({"networkConfiguration": {"enableAcceleratedNetworking": true}}));
    let e = svc.post("/pools").api_version(V16).json(body).send().await.expect_error(400, "InvalidPropertyValue");
    assert_names_property(&e, "networkConfiguration.enableAcceleratedNetworking");
}

#[tokio::test]
async fn configuration_a_node_cannot_provide_is_kept_and_reported_on_the_node() {
    let svc = Service::start().await;
    let security = json!({"securityType": "trustedLaunch", "encryptionAtHost": true, "uefiSettings": {"secureBootEnabled": true, "vTpmEnabled": true}});
    let extra = json!({
        "virtualMachineConfiguration": {"securityProfile": security, "osDisk": {"diskSizeGB": 64}},
        "networkConfiguration": {"enableAcceleratedNetworking": true},
        "resourceTags": {"team": "batch"},
    });
    add_pool_at(&svc, V18, "sec", 1, extra).await;
    let nodes = svc.wait_pool_idle("sec", 1, secs(20)).await;
    let p = get_at(&svc, "/pools/sec", V18).await;
    assert_eq!(p["virtualMachineConfiguration"]["securityProfile"], security, "{p}");
    assert_eq!(p["virtualMachineConfiguration"]["osDisk"]["diskSizeGB"], 64, "{p}");
    assert_eq!(p["resourceTags"], json!({"team": "batch"}), "{p}");
    let node = get_at(&svc, &format!("/pools/sec/nodes/{}", nodes[0]["id"].as_str().unwrap()), V18).await;
    assert_eq!(node["state"], "idle", "{node}");
    let err = &node["errors"][0];
    assert_eq!(err["code"], "UnsupportedNodeConfiguration", "{node}");
    let named: Vec<&str> = err["errorDetails"].as_array().unwrap().iter().filter_map(|d| d["name"].as_str()).collect();
    for p in [
        "virtualMachineConfiguration.securityProfile",
        "virtualMachineConfiguration.osDisk",
        "networkConfiguration.enableAcceleratedNetworking",
    ] {
        assert!(named.contains(&p), "{p} not reported: {node}");
    }
    // The node still runs tasks.
    svc.add_job("j", "sec", json!({})).await;
    svc.add_task("j", "t", "/bin/sh -c 'echo ran'", json!({})).await;
    let t = svc.wait_task_completed("j", "t", secs(20)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
    // 16.0 sees neither the new properties nor is it offered them.
    let p = get_at(&svc, "/pools/sec", V16).await;
    assert!(p["virtualMachineConfiguration"].get("securityProfile").is_none() && p.get("resourceTags").is_none(), "{p}");
}

#[tokio::test]
async fn properties_removed_by_later_versions_are_refused_and_hidden_there() {
    let svc = Service::start().await;
    // resourceTags: 2023-11-01.18.0 to 2024-07-01.20.0.
    add_pool_at(&svc, V20, "tags", 0, json!({"resourceTags": {"a": "b"}, "targetNodeCommunicationMode": "simplified"})).await;
    assert_eq!(get_at(&svc, "/pools/tags", V20).await["resourceTags"], json!({"a": "b"}));
    let p = get_at(&svc, "/pools/tags", V25).await;
    for gone in ["resourceTags", "targetNodeCommunicationMode", "certificateReferences"] {
        assert!(p.get(gone).is_none(), "{gone} shown at {V25}: {p}");
    }
    for (prop, value) in
        [("resourceTags", json!({"a": "b"})), ("targetNodeCommunicationMode", json!("simplified")), ("certificateReferences", json!([]))]
    {
        let mut body = linux_pool("x", 0);
        body[prop] = value;
        let e = svc.post("/pools").api_version(V25).json(body).send().await.expect_error(400, "InvalidPropertyValue");
        assert_names_property(&e, prop);
    }
    // cloudServiceConfiguration: accepted up to 19.0 (a Windows pool gets an allocation error),
    // refused from 2024-07-01.20.0.
    let cs = json!({"id": "cs", "vmSize": "small", "cloudServiceConfiguration": {"osFamily": "6"}, "targetDedicatedNodes": 1});
    svc.post("/pools").api_version(V19).json(cs.clone()).send().await.expect_status(201);
    let e = svc.post("/pools").api_version(V20).json(cs).send().await.expect_error(400, "InvalidPropertyValue");
    assert_names_property(&e, "cloudServiceConfiguration");
    // Task authentication tokens: dropped by the 15.1.0 client, still sent by its 2025-06-01
    // betas (and in that version's REST spec), so 2025-06-01 takes them.
    svc.add_job("j", "tags", json!({})).await;
    let task = json!({"id": "tok", "commandLine": "true", "authenticationTokenSettings": {"access": ["job"]}});
    svc.post("/jobs/j/tasks").api_version(V25).json(task).send().await.expect_status(201);
}

#[tokio::test]
async fn operations_removed_by_later_versions_answer_not_found_there() {
    let svc = Service::start().await;
    // Certificates exist up to 2024-07-01.20.0.
    svc.get("/certificates").api_version(V20).send().await.expect_status(200);
    svc.get("/certificates").api_version(V25).send().await.expect_status(404);
    // The RDP file is gone from 2024-07-01.20.0; start and deallocate came with it.
    svc.add_pool("p", 1, json!({})).await;
    let nodes = svc.wait_pool_idle("p", 1, secs(20)).await;
    let node = nodes[0]["id"].as_str().unwrap();
    svc.get(&format!("/pools/p/nodes/{node}/rdp")).api_version(V20).send().await.expect_status(404);
    svc.post(&format!("/pools/p/nodes/{node}/deallocate")).api_version(V19).json(json!({})).send().await.expect_status(404);
}

#[tokio::test]
async fn node_counts_and_nodes_carry_each_versions_fields() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    let nodes = svc.wait_pool_idle("p", 1, secs(20)).await;
    let counts = |v: Value| v["value"][0]["dedicated"].clone();
    let c16 = counts(get_at(&svc, "/nodecounts", V16).await);
    assert_eq!(c16["idle"], 1);
    assert!(c16.get("upgradingOS").is_none() && c16.get("deallocated").is_none(), "{c16}");
    let c19 = counts(get_at(&svc, "/nodecounts", V19).await);
    assert_eq!(c19["upgradingOS"], 0, "{c19}");
    assert!(c19.get("deallocated").is_none(), "{c19}");
    let c20 = counts(get_at(&svc, "/nodecounts", V20).await);
    assert_eq!((c20["deallocated"].clone(), c20["deallocating"].clone(), c20["idle"].clone()), (json!(0), json!(0), json!(1)), "{c20}");
    let path = format!("/pools/p/nodes/{}", nodes[0]["id"].as_str().unwrap());
    assert_eq!(get_at(&svc, &path, V25).await["ipv6Address"], "::1");
    let n20 = get_at(&svc, &path, V20).await;
    assert!(n20.get("ipv6Address").is_none(), "{n20}");
    assert_eq!(n20["certificateReferences"], json!([]), "{n20}");
    assert!(get_at(&svc, &path, V25).await.get("certificateReferences").is_none());
}

#[tokio::test]
async fn renamed_enum_values_and_moved_properties_read_per_version() {
    let svc = Service::start().await;
    // The OS disk placement is CacheDisk up to 19.0 and cachedisk from 20.0.
    let os = json!({"virtualMachineConfiguration": {"osDisk": {"ephemeralOSDiskSettings": {"placement": "CacheDisk"}}}});
    add_pool_at(&svc, V19, "eph", 0, os).await;
    let placement = |p: Value| p["virtualMachineConfiguration"]["osDisk"]["ephemeralOSDiskSettings"]["placement"].clone();
    assert_eq!(placement(get_at(&svc, "/pools/eph", V19).await), "CacheDisk");
    assert_eq!(placement(get_at(&svc, "/pools/eph", V20).await), "cachedisk");
    // A data disk's storage account type moved under managedDisk in 2025-06-01.
    let disks = json!({"virtualMachineConfiguration": {"dataDisks": [{"lun": 0, "diskSizeGB": 10, "storageAccountType": "premium_lrs"}]}});
    add_pool_at(&svc, V20, "disk", 0, disks).await;
    let d20 = get_at(&svc, "/pools/disk", V20).await["virtualMachineConfiguration"]["dataDisks"][0].clone();
    assert_eq!(d20["storageAccountType"], "premium_lrs", "{d20}");
    assert!(d20.get("managedDisk").is_none(), "{d20}");
    let d25 = get_at(&svc, "/pools/disk", V25).await["virtualMachineConfiguration"]["dataDisks"][0].clone();
    assert_eq!(d25["managedDisk"]["storageAccountType"], "premium_lrs", "{d25}");
    assert!(d25.get("storageAccountType").is_none(), "{d25}");
    // Sent the 2025-06-01 way, read the 2024 way; the default fills in the new place.
    let disks = json!({"virtualMachineConfiguration": {"dataDisks": [{"lun": 1, "diskSizeGB": 10, "managedDisk": {"storageAccountType": "standardssd_lrs"}}, {"lun": 2, "diskSizeGB": 5}]}});
    add_pool_at(&svc, V25, "disk25", 0, disks).await;
    let d = get_at(&svc, "/pools/disk25", V20).await["virtualMachineConfiguration"]["dataDisks"].clone();
    assert_eq!(
        (d[0]["storageAccountType"].clone(), d[1]["storageAccountType"].clone()),
        (json!("standardssd_lrs"), json!("standard_lrs")),
        "{d}"
    );
}

#[tokio::test]
async fn numbers_sent_as_strings_are_taken_as_the_azure_cli_sends_them() {
    let svc = Service::start().await;
    let mut body = linux_pool("cli", 0);
    body["targetDedicatedNodes"] = json!("1");
    body["taskSlotsPerNode"] = json!("2");
    svc.post("/pools").api_version(V19).json(body).send().await.expect_status(201);
    svc.wait_pool_idle("cli", 1, secs(20)).await;
    assert_eq!(get_at(&svc, "/pools/cli", V19).await["taskSlotsPerNode"], 2);
    let job = json!({"id": "j", "poolInfo": {"poolId": "cli"}, "priority": "100", "constraints": {"maxTaskRetryCount": "3"}});
    svc.post("/jobs").api_version(V19).json(job).send().await.expect_status(201);
    let j = get_at(&svc, "/jobs/j", V19).await;
    assert_eq!((j["priority"].clone(), j["constraints"]["maxTaskRetryCount"].clone()), (json!(100), json!(3)), "{j}");
    let e = svc
        .post("/pools/cli/resize")
        .api_version(V19)
        .json(json!({"targetDedicatedNodes": "two"}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_names_property(&e, "targetDedicatedNodes");
    // 15.x durations: zero-padded parts, and a bare P for zero.
    let task = json!({"id": "t", "commandLine": "true", "constraints": {"maxWallClockTime": "PT02H00M00S", "retentionTime": "P1DT00H00M00S", "maxTaskRetryCount": 0}});
    svc.post("/jobs/j/tasks").api_version(V25).json(task).send().await.expect_status(201);
    let t = svc.wait_task_completed("j", "t", secs(20)).await;
    assert_eq!(t["executionInfo"]["exitCode"], 0, "{t}");
}

#[tokio::test]
async fn pool_patch_changes_the_pool_shape_only_while_it_is_empty() {
    let svc = Service::start().await;
    svc.add_pool("p", 1, json!({})).await;
    svc.wait_pool_idle("p", 1, secs(20)).await;
    // 19.0 has no vmSize in a patch.
    let e = svc
        .patch("/pools/p")
        .api_version(V19)
        .json(json!({"vmSize": "standard_d4_v3"}))
        .send()
        .await
        .expect_error(400, "InvalidPropertyValue");
    assert_names_property(&e, "vmSize");
    // 20.0 has it, for an empty pool only.
    let r = svc.patch("/pools/p").api_version(V20).json(json!({"vmSize": "standard_d4_v3"})).send().await;
    r.expect_error(409, "OperationInvalidForCurrentState");
    svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 0})).send().await.expect_status(202);
    poll("pool p empty and steady", secs(20), || async {
        let p = svc.get_json("/pools/p").await;
        (p["allocationState"] == "steady" && p["currentDedicatedNodes"] == 0).then_some(())
    })
    .await;
    let patch =
        json!({"vmSize": "STANDARD_D4_V3", "taskSlotsPerNode": 3, "displayName": "bigger", "metadata": [{"name": "k", "value": "v"}]});
    svc.patch("/pools/p").api_version(V20).json(patch).send().await.expect_status(200);
    let p = get_at(&svc, "/pools/p", V20).await;
    assert_eq!(
        (p["vmSize"].clone(), p["taskSlotsPerNode"].clone(), p["displayName"].clone()),
        (json!("standard_d4_v3"), json!(3), json!("bigger")),
        "{p}"
    );
    assert_eq!(p["metadata"][0]["value"], "v", "{p}");
    // The patched pool is checked as a new one.
    let e =
        svc.patch("/pools/p").api_version(V20).json(json!({"taskSlotsPerNode": 0})).send().await.expect_error(400, "InvalidPropertyValue");
    assert_names_property(&e, "taskSlotsPerNode");
    // The new slots take effect on the nodes the pool grows.
    svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 1})).send().await.expect_status(202);
    svc.wait_pool_idle("p", 1, secs(20)).await;
}

#[tokio::test]
async fn update_bodies_are_the_resources_own_model_from_2024_07_01_20_0() {
    let svc = Service::start().await;
    svc.add_job("j", "nopool", json!({})).await;
    svc.add_task("j", "t", "/bin/true", json!({})).await;
    let schedule = json!({"id": "s", "schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": {"poolInfo": {"poolId": "nopool"}}});
    svc.post("/jobschedules").json(schedule).send().await.expect_status(201);
    for v in [V19, V20, V25] {
        // Job, job schedule and task Update (PUT), as the 15.x clients send them (the writable
        // properties of BatchJob, BatchJobSchedule, BatchTask) and as 14.x sent them before.
        let body = json!({"poolInfo": {"poolId": "nopool"}, "priority": 3, "metadata": [{"name": "v", "value": v}]});
        svc.put("/jobs/j").api_version(v).json(body).send().await.expect_status(200);
        assert_eq!(get_at(&svc, "/jobs/j", v).await["metadata"][0]["value"], v);
        let body = json!({"schedule": {"recurrenceInterval": "PT2H"}, "jobSpecification": {"poolInfo": {"poolId": "nopool"}}});
        svc.put("/jobschedules/s").api_version(v).json(body).send().await.expect_status(200);
        assert_eq!(get_at(&svc, "/jobschedules/s", v).await["schedule"]["recurrenceInterval"], "PT2H");
        svc.put("/jobs/j/tasks/t").api_version(v).json(json!({"constraints": {"maxTaskRetryCount": 2}})).send().await.expect_status(200);
        assert_eq!(get_at(&svc, "/jobs/j/tasks/t", v).await["constraints"]["maxTaskRetryCount"], 2);
    }
    // Get, change, replace: the 15.x clients send back the OData annotations a Get returned.
    let mut job = get_at(&svc, "/jobs/j", V25).await;
    assert!(job["odata.metadata"].is_string());
    let body = json!({"odata.metadata": job["odata.metadata"].take(), "poolInfo": {"poolId": "nopool"}, "priority": 9});
    svc.put("/jobs/j").api_version(V25).json(body).send().await.expect_status(200);
    assert_eq!(get_at(&svc, "/jobs/j", V25).await["priority"], 9);
    // What the resource model has but an update cannot change is refused, naming it.
    let e = svc.put("/jobs/j").api_version(V25).json(json!({"poolInfo": {"poolId": "p"}, "state": "active"})).send().await;
    e.expect_error(400, "InvalidPropertyValue");
    assert_eq!(e.error_value("PropertyName").as_deref(), Some("state"));
}
