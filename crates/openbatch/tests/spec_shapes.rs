//! Response bodies validated against the public Swagger specs in ../shared/azure-batch-spec
//! for 2017-01-01.4.0, 2020-03-01.11.0 and 2022-10-01.16.0: every property a body carries is
//! one the version's definition has, with the definition's JSON type (and enum value), and
//! every required property is present.

mod common;

use common::*;
use serde_json::{json, Value};

struct Spec {
    doc: Value,
}

impl Spec {
    fn load(version: &str) -> Spec {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/azure-batch-spec")
            .join(version)
            .join("BatchService.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Spec { doc: serde_json::from_str(&text).unwrap() }
    }

    /// Validates `v` as an instance of definition `def`; returns the problems found.
    fn validate(&self, def: &str, v: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.object(def, v, def, &mut errors);
        errors
    }

    fn object(&self, def: &str, v: &Value, path: &str, errors: &mut Vec<String>) {
        let d = &self.doc["definitions"][def];
        assert!(d.is_object(), "the spec has no definition {def}");
        let Some(obj) = v.as_object() else {
            errors.push(format!("{path}: expected an object ({def}), got {v}"));
            return;
        };
        for (k, val) in obj {
            if k.starts_with("odata.") {
                continue;
            }
            match d["properties"].get(k) {
                Some(schema) => self.value(schema, val, &format!("{path}.{k}"), errors),
                // The stored 2022-10-01.16.0 spec is a revision from before the node
                // communication modes; that version's SDK release (13.0.0) has them.
                None if def == "CloudPool" && k.ends_with("NodeCommunicationMode") => {}
                None => errors.push(format!("{path}: property '{k}' is not in {def}")),
            }
        }
        for r in d["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                errors.push(format!("{path}: required property '{r}' of {def} is missing"));
            }
        }
    }

    fn value(&self, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap_or_default();
            let d = &self.doc["definitions"][name];
            if d["type"] == "string" || d.get("enum").is_some() {
                return self.value(d, v, path, errors);
            }
            return self.object(name, v, path, errors);
        }
        let ok = match schema["type"].as_str() {
            Some("string") => {
                if let (Some(s), Some(values)) = (v.as_str(), schema["enum"].as_array()) {
                    if !values.iter().any(|e| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(s))) {
                        errors.push(format!("{path}: '{s}' is not one of {}", Value::Array(values.clone())));
                    }
                }
                if schema["format"] == "date-time" {
                    if let Some(s) = v.as_str() {
                        if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                            errors.push(format!("{path}: '{s}' is not an RFC 3339 date-time"));
                        }
                    }
                }
                v.is_string()
            }
            // 64-bit counters travel as strings in the real service's answers.
            Some("integer") => v.is_i64() || (schema["format"] == "int64" && v.as_str().is_some_and(|s| s.parse::<i64>().is_ok())),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            Some("array") => {
                if let Some(items) = v.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        self.value(&schema["items"], item, &format!("{path}[{i}]"), errors);
                    }
                    true
                } else {
                    false
                }
            }
            Some("object") | None => v.is_object(),
            Some(_) => true,
        };
        if !ok {
            errors.push(format!("{path}: {v} does not match {schema}"));
        }
    }
}

fn check(spec: &Spec, version: &str, def: &str, v: &Value) {
    let errors = spec.validate(def, v);
    assert!(errors.is_empty(), "{version} {def}:\n  {}\nbody: {v}", errors.join("\n  "));
}

fn check_list(spec: &Spec, version: &str, def: &str, v: &Value) {
    let items = v["value"].as_array().unwrap_or_else(|| panic!("not a list: {v}"));
    assert!(!items.is_empty(), "{version}: empty {def} list");
    for item in items {
        check(spec, version, def, item);
    }
}

async fn get(svc: &Service, path: &str, v: &str) -> Value {
    let r = svc.get(path).api_version(v).send().await;
    r.expect_status(200);
    r.json()
}

/// Creates a pool with a start task, a job with a completed and a failed task, then checks
/// every answer at `version` against its spec.
async fn validate_version(version: &str, pool_body: Value, task_counts_def: Option<&str>, images: (&str, &str)) {
    let spec = Spec::load(version);
    let svc = Service::start().await;
    svc.post("/pools").api_version(version).json(pool_body).send().await.expect_status(201);
    svc.wait_pool_idle("p", 1, secs(20)).await;
    svc.post("/jobs")
        .api_version(version)
        .json(json!({"id": "j", "poolInfo": {"poolId": "p"}, "metadata": [{"name": "k", "value": "v"}]}))
        .send()
        .await
        .expect_status(201);
    let r = svc
        .post("/jobs/j/addtaskcollection")
        .api_version(version)
        .json(json!({"value": [
            {"id": "ok", "commandLine": "/bin/sh -c \"echo hi\"", "environmentSettings": [{"name": "A", "value": "1"}]},
            {"id": "bad", "commandLine": "/bin/sh -c \"exit 2\""},
            {"id": "ok", "commandLine": "/bin/true"}
        ]}))
        .send()
        .await;
    r.expect_status(200);
    check(&spec, version, "TaskAddCollectionResult", &r.json());
    svc.wait_task_completed("j", "ok", secs(20)).await;
    svc.wait_task_completed("j", "bad", secs(20)).await;

    check(&spec, version, "CloudPool", &get(&svc, "/pools/p", version).await);
    check_list(&spec, version, "CloudPool", &get(&svc, "/pools", version).await);
    check(&spec, version, "CloudJob", &get(&svc, "/jobs/j", version).await);
    check_list(&spec, version, "CloudJob", &get(&svc, "/jobs", version).await);
    for t in ["ok", "bad"] {
        check(&spec, version, "CloudTask", &get(&svc, &format!("/jobs/j/tasks/{t}"), version).await);
    }
    check_list(&spec, version, "CloudTask", &get(&svc, "/jobs/j/tasks", version).await);
    let nodes = get(&svc, "/pools/p/nodes", version).await;
    check_list(&spec, version, "ComputeNode", &nodes);
    let node_id = nodes["value"][0]["id"].as_str().unwrap().to_string();
    check(&spec, version, "ComputeNode", &get(&svc, &format!("/pools/p/nodes/{node_id}"), version).await);
    check_list(&spec, version, "NodeFile", &get(&svc, "/jobs/j/tasks/ok/files?recursive=true", version).await);
    check_list(&spec, version, "NodeFile", &get(&svc, &format!("/pools/p/nodes/{node_id}/files?recursive=true"), version).await);
    check_list(&spec, version, images.1, &get(&svc, images.0, version).await);
    if let Some(def) = task_counts_def {
        check(&spec, version, def, &get(&svc, "/jobs/j/taskcounts", version).await);
    }
    if version >= "2018-03-01.6.1" {
        check_list(&spec, version, "PoolNodeCounts", &get(&svc, "/nodecounts", version).await);
    }
    let err = svc.get("/jobs/missing").api_version(version).send().await;
    check(&spec, version, "BatchError", &err.expect_error(404, "JobNotFound"));
}

fn vm() -> Value {
    json!({"imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"})
}

#[tokio::test]
async fn bodies_match_the_2017_01_01_4_0_spec() {
    let pool = json!({"id": "p", "vmSize": "standard_a1", "targetDedicated": 1, "maxTasksPerNode": 2, "virtualMachineConfiguration": vm(),
        "startTask": {"commandLine": "/bin/true", "waitForSuccess": true, "userIdentity": {"autoUser": {"elevationLevel": "nonAdmin"}}},
        "metadata": [{"name": "a", "value": "b"}]});
    validate_version("2017-01-01.4.0", pool, None, ("/nodeagentskus", "NodeAgentSku")).await;
}

#[tokio::test]
async fn bodies_match_the_2020_03_01_11_0_spec() {
    let pool = json!({"id": "p", "vmSize": "standard_a1", "targetDedicatedNodes": 1, "maxTasksPerNode": 2, "virtualMachineConfiguration": vm(),
        "startTask": {"commandLine": "/bin/true", "environmentSettings": [{"name": "X", "value": "1"}]}});
    validate_version("2020-03-01.11.0", pool, Some("TaskCounts"), ("/supportedimages", "ImageInformation")).await;
}

#[tokio::test]
async fn bodies_match_the_2022_10_01_16_0_spec() {
    let pool = json!({"id": "p", "vmSize": "standard_a1", "targetDedicatedNodes": 1, "taskSlotsPerNode": 2, "virtualMachineConfiguration": vm(),
        "startTask": {"commandLine": "/bin/true"}, "taskSchedulingPolicy": {"nodeFillType": "pack"}});
    validate_version("2022-10-01.16.0", pool, Some("TaskCountsResult"), ("/supportedimages", "ImageInformation")).await;
}

#[test]
fn the_validator_finds_what_the_spec_forbids() {
    let spec = Spec::load("2022-10-01.16.0");
    assert!(spec.validate("CloudPool", &json!({"id": "p", "targetDedicatedNodes": 1})).is_empty());
    assert!(!spec.validate("CloudPool", &json!({"id": "p", "targetDedicated": 1})).is_empty(), "unknown property");
    assert!(!spec.validate("CloudPool", &json!({"id": 5})).is_empty(), "wrong type");
    assert!(!spec.validate("CloudPool", &json!({"allocationState": "sideways"})).is_empty(), "enum value");
    assert!(!spec.validate("StartTaskInformation", &json!({"state": "running"})).is_empty(), "required properties");
    assert!(!spec.validate("CloudTask", &json!({"executionInfo": {"retryCount": 0, "requeueCount": 0, "bogus": 1}})).is_empty(), "nested");
}
