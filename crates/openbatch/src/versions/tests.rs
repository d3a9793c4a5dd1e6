//! Tests of the version table against the wire tables, and of the rules.
use super::*;

/// The versions that have an official Python SDK release, whose wire tables are facts.
const RELEASES: &[&str] = &[
    "2016-07-01.3.1",
    "2017-01-01.4.0",
    "2017-06-01.5.1",
    "2017-09-01.6.0",
    "2018-03-01.6.1",
    "2018-08-01.7.0",
    "2018-12-01.8.0",
    "2019-06-01.9.0",
    "2019-08-01.10.0",
    "2020-03-01.11.0",
    "2020-09-01.12.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2024-02-01.19.0",
];

/// Models the main wire tables leave out (their filter drops names ending in `Options`).
const OPTIONS_MODELS: &[&str] = &["ExitOptions", "OutputFileUploadOptions"];

fn wire(name: &str) -> Vec<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/azure-batch-wire").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip(1).map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

/// Positions of `first..=last` (wire-table names) among the releases openbatch serves.
fn release_span(first: &str, last: &str) -> Vec<ApiVersion> {
    RELEASES.iter().filter(|r| **r >= first && **r <= last).filter_map(|r| ApiVersion::find(r)).collect()
}

fn release_versions() -> Vec<ApiVersion> {
    RELEASES.iter().filter_map(|r| ApiVersion::find(r)).collect()
}

fn in_range(first: u8, last: u8, v: ApiVersion) -> bool {
    first <= v.index() && v.index() <= last
}

#[test]
fn properties_match_the_wire_tables_at_every_release() {
    let rows = wire("properties_by_version.tsv");
    for r in &rows {
        let (model, prop) = (r[0].as_str(), r[1].as_str());
        if model.ends_with("Paged") {
            continue;
        }
        for v in release_span(&r[3], &r[4]) {
            assert!(property(model, prop, v).is_some(), "{model}.{prop} missing at {}", v.as_str());
        }
    }
    for p in table::PROPERTIES.iter().filter(|p| !OPTIONS_MODELS.contains(&p.model)) {
        for v in release_versions().into_iter().filter(|v| in_range(p.first, p.last, *v)) {
            let covered =
                rows.iter().any(|r| r[0] == p.model && r[1] == p.name && r[3].as_str() <= v.as_str() && v.as_str() <= r[4].as_str());
            assert!(covered, "{}.{} is in the table at {} but not in the wire tables", p.model, p.name, v.as_str());
        }
    }
}

#[test]
fn enums_and_operations_match_the_wire_tables() {
    for r in wire("enums_by_version.tsv") {
        for v in release_span(&r[2], &r[3]) {
            let ok = table::ENUMS.iter().any(|e| e.name == r[0] && e.value == r[1] && in_range(e.first, e.last, v));
            assert!(ok, "{}.{} missing at {}", r[0], r[1], v.as_str());
        }
    }
    let ops = wire("operations_by_version.tsv");
    for r in &ops {
        for v in release_span(&r[2], &r[3]) {
            assert!(operation_exists(&r[0], &r[1], v), "{} {} missing at {}", r[0], r[1], v.as_str());
        }
    }
    for o in table::OPERATIONS {
        for v in release_versions().into_iter().filter(|v| in_range(o.first, o.last, *v)) {
            let covered =
                ops.iter().any(|r| r[0] == o.method && r[1] == o.path && r[2].as_str() <= v.as_str() && v.as_str() <= r[3].as_str());
            assert!(covered, "{} {} is in the table at {} but not in the wire tables", o.method, o.path, v.as_str());
        }
    }
}

/// The versions whose tables come from `newer/` (14.1.0, 15.1.0b1 and 15.1.0): the table
/// has exactly their rows, plus what other 2025-06-01 clients send.
#[test]
fn newer_versions_match_their_wire_tables() {
    let path = |f: &str| format!("newer/{f}");
    let name = |old: &str, new: &str| if old.is_empty() { new.to_string() } else { old.to_string() };
    let extra_2025 = [
        ("AuthenticationTokenSettings", "access"),
        ("TaskAddParameter", "authenticationTokenSettings"),
        ("CloudTask", "authenticationTokenSettings"),
        ("JobManagerTask", "authenticationTokenSettings"),
        ("DataDisk", "storageAccountType"),
    ];
    for version in ["2023-11-01.18.0", "2024-07-01.20.0", "2025-06-01"] {
        let v = ApiVersion::find(version).unwrap();
        let rows: Vec<(String, String)> = wire(&path("properties.tsv"))
            .into_iter()
            .filter(|r| r[4] == version)
            .map(|r| (name(&r[0], &r[1]), r[2].clone()))
            .filter(|(m, _)| !m.ends_with("Paged") && !m.ends_with("ListResult"))
            .collect();
        for (m, p) in &rows {
            assert!(property(m, p, v).is_some(), "{m}.{p} missing at {version}");
        }
        for p in table::PROPERTIES.iter().filter(|p| in_range(p.first, p.last, v)) {
            let known = rows.iter().any(|(m, n)| m == p.model && n == p.name)
                || (version == "2025-06-01" && extra_2025.contains(&(p.model, p.name)));
            assert!(known, "{}.{} is in the table at {version} but not in its wire table", p.model, p.name);
        }
        let ops: Vec<(String, String)> =
            wire(&path("operations.tsv")).into_iter().filter(|r| r[2] == version).map(|r| (r[0].clone(), r[1].clone())).collect();
        for (m, u) in &ops {
            assert!(operation_exists(m, u, v), "{m} {u} missing at {version}");
        }
        assert_eq!(operations_at(v.index()).len(), ops.len(), "operations at {version}");
        for r in wire(&path("enums.tsv")).into_iter().filter(|r| r[3] == version) {
            let e = name(&r[0], &r[1]);
            assert!(
                table::ENUMS.iter().any(|x| x.name == e && x.value == r[2] && in_range(x.first, x.last, v)),
                "{e}.{} at {version}",
                r[2]
            );
        }
    }
}

/// What changed after the seed, as the issue and the service's notes name it.
#[test]
fn facts_of_the_versions_after_the_seed() {
    let v = |s: &str| ApiVersion::find(s).unwrap();
    // 2023-05-01.17.0 removed the lifetime statistics operations.
    assert!(operation_exists("GET", "/lifetimejobstats", v("2022-10-01.16.0")));
    assert!(!operation_exists("GET", "/lifetimejobstats", v("2023-05-01.17.0")));
    assert!(!operation_exists("GET", "/lifetimepoolstats", v("2023-05-01.17.0")));
    assert!(property("NetworkConfiguration", "enableAcceleratedNetworking", v("2023-05-01.17.0")).is_some());
    // 2024-07-01.20.0: no Cloud Services pools, no RDP file; nodes can be deallocated.
    assert!(property("PoolAddParameter", "cloudServiceConfiguration", v("2024-02-01.19.0")).is_some());
    assert!(property("PoolAddParameter", "cloudServiceConfiguration", v("2024-07-01.20.0")).is_none());
    assert!(!operation_exists("GET", "/pools/{poolId}/nodes/{nodeId}/rdp", v("2024-07-01.20.0")));
    assert!(operation_exists("POST", "/pools/{poolId}/nodes/{nodeId}/deallocate", v("2024-07-01.20.0")));
    assert!(property("NodeCounts", "deallocated", v("2024-07-01.20.0")).is_some());
    // 2025-06-01: certificates are gone; resource tags and communication modes too.
    assert!(!operation_exists("GET", "/certificates", v("2025-06-01")));
    assert!(operation_exists("GET", "/certificates", v("2024-07-01.20.0")));
    assert!(property("CloudPool", "targetNodeCommunicationMode", v("2025-06-01")).is_none());
    assert!(property("CloudPool", "resourceTags", v("2024-07-01.20.0")).is_some());
    assert!(property("CloudPool", "resourceTags", v("2025-06-01")).is_none());
    assert!(property("ComputeNode", "ipv6Address", v("2025-06-01")).is_some());
    // Old versions keep answering as before.
    assert!(property("NodeCounts", "upgradingOS", v("2022-10-01.16.0")).is_none());
    let old = downgrade_response("NodeCounts", json!({"idle": 1, "upgradingOS": 0, "deallocated": 0}), v("2022-10-01.16.0"));
    assert_eq!(old, json!({"idle": 1}));
    // The data disk's storage account type moved under managedDisk in 2025-06-01.
    let disk =
        upgrade_request("DataDisk", json!({"lun": 1, "diskSizeGB": 8, "storageAccountType": "premium_lrs"}), v("2024-07-01.20.0")).unwrap();
    assert_eq!(disk["managedDisk"]["storageAccountType"], "premium_lrs");
    assert_eq!(downgrade_response("DataDisk", disk.clone(), v("2024-07-01.20.0"))["storageAccountType"], "premium_lrs");
    let new = downgrade_response("DataDisk", disk, v("2025-06-01"));
    assert_eq!(new["managedDisk"]["storageAccountType"], "premium_lrs");
    assert!(new.get("storageAccountType").is_none());
    // Enum spellings that changed case: each version sees its own.
    let os = json!({"ephemeralOSDiskSettings": {"placement": "cachedisk"}});
    assert_eq!(downgrade_response("OSDisk", os.clone(), v("2024-02-01.19.0"))["ephemeralOSDiskSettings"]["placement"], "CacheDisk");
    assert_eq!(downgrade_response("OSDisk", os, v("2024-07-01.20.0"))["ephemeralOSDiskSettings"]["placement"], "cachedisk");
}

#[test]
fn numbers_sent_as_strings_are_read_as_numbers() {
    let v = ApiVersion::LATEST;
    let up = upgrade_request("PoolAddParameter", json!({"id": "p", "targetDedicatedNodes": "2", "taskSlotsPerNode": " 4 "}), v).unwrap();
    assert_eq!(up["targetDedicatedNodes"], 2);
    assert_eq!(up["taskSlotsPerNode"], 4);
    let up =
        upgrade_request("JobAddParameter", json!({"id": "j", "priority": "-100", "constraints": {"maxTaskRetryCount": "3"}}), v).unwrap();
    assert_eq!(up["priority"], -100);
    assert_eq!(up["constraints"]["maxTaskRetryCount"], 3);
    let err = upgrade_request("PoolAddParameter", json!({"targetDedicatedNodes": "two"}), v).unwrap_err();
    assert_eq!(err.code, "InvalidPropertyValue");
    assert!(err.values.iter().any(|(k, x)| k == "PropertyName" && x == "targetDedicatedNodes"));
    // Durations are kept as the service writes them.
    let up = upgrade_request("TaskConstraints", json!({"maxWallClockTime": "PT02H00M00S", "retentionTime": "P1DT00H15M00S"}), v).unwrap();
    assert_eq!((up["maxWallClockTime"].as_str(), up["retentionTime"].as_str()), (Some("PT2H"), Some("P1DT15M")));
    // Strings stay strings where the wire type is a string.
    let up = upgrade_request("PoolAddParameter", json!({"id": "2", "vmSize": "3"}), v).unwrap();
    assert_eq!(up["id"], "2");
}

#[test]
fn seed_facts_for_versions_without_releases() {
    let v = |s: &str| ApiVersion::find(s).unwrap();
    // 2017-05-01.5.0 renamed the node counts; 5.1 added Get Task Counts.
    assert!(property("CloudPool", "targetDedicatedNodes", v("2017-05-01.5.0")).is_some());
    assert!(property("CloudPool", "targetDedicated", v("2017-05-01.5.0")).is_none());
    assert!(!operation_exists("GET", "/jobs/{jobId}/taskcounts", v("2017-05-01.5.0")));
    assert!(operation_exists("GET", "/jobs/{jobId}/taskcounts", v("2017-06-01.5.1")));
    // 2021-01-01.13.0 has 12.0's shapes.
    assert!(property("CloudPool", "taskSlotsPerNode", v("2021-01-01.13.0")).is_some());
    assert!(property("CloudJob", "maxParallelTasks", v("2021-01-01.13.0")).is_none());
    // What 2015-11-01.2.1, 2015-12-01.2.2 and 2016-07-01.3.1 added.
    assert!(property("CloudTask", "multiInstanceSettings", v("2015-06-01.2.0")).is_none());
    assert!(property("CloudTask", "multiInstanceSettings", v("2015-11-01.2.1")).is_some());
    assert!(property("CloudTask", "dependsOn", v("2015-11-01.2.1")).is_none());
    assert!(property("CloudTask", "dependsOn", v("2015-12-01.2.2")).is_some());
    assert!(property("CloudJob", "onAllTasksComplete", v("2016-02-01.3.0")).is_none());
    assert!(property("CloudJob", "onAllTasksComplete", v("2016-07-01.3.1")).is_some());
    assert!(!operation_exists("GET", "/applications", v("2015-11-01.2.1")));
    assert!(operation_exists("GET", "/applications", v("2015-12-01.2.2")));
    // Operations the issue names.
    assert!(!operation_exists("GET", "/supportedimages", v("2018-12-01.8.0")));
    assert!(operation_exists("GET", "/nodeagentskus", v("2018-12-01.8.0")));
    assert!(!operation_exists("GET", "/nodeagentskus", v("2019-06-01.9.0")));
    assert!(!operation_exists("GET", "/nodecounts", v("2017-09-01.6.0")));
    assert!(operation_exists("POST", "/pools/{poolId}/upgradeos", v("2018-08-01.7.0")));
    assert!(!operation_exists("POST", "/pools/{poolId}/upgradeos", v("2018-12-01.8.0")));
    assert!(!operation_exists("GET", "/pools/{poolId}/nodes/{nodeId}/extensions", v("2021-01-01.13.0")));
    assert!(operation_exists("GET", "/pools/{poolId}/nodes/{nodeId}/extensions", v("2021-06-01.14.0")));
}

#[test]
fn enum_spellings_change_by_version() {
    let v = |s: &str| ApiVersion::find(s).unwrap();
    let node = json!({"id": "n", "state": "offline"});
    assert_eq!(downgrade_response("ComputeNode", node.clone(), v("2015-06-01.2.0"))["state"], "unusable");
    assert_eq!(downgrade_response("ComputeNode", node, v("2015-11-01.2.1"))["state"], "offline");
    let cfg = json!({"type": "dockerCompatible", "containerImageNames": ["x"]});
    assert_eq!(downgrade_response("ContainerConfiguration", cfg.clone(), v("2018-03-01.6.1"))["type"], "docker");
    assert_eq!(downgrade_response("ContainerConfiguration", cfg, v("2018-08-01.7.0"))["type"], "dockerCompatible");
    let up = upgrade_request("ContainerConfiguration", json!({"type": "docker"}), v("2017-09-01.6.0")).unwrap();
    assert_eq!(up["type"], "dockerCompatible");
    // Case-insensitive reading.
    let up = upgrade_request("TaskSchedulingPolicy", json!({"nodeFillType": "SPREAD"}), ApiVersion::LATEST).unwrap();
    assert_eq!(up["nodeFillType"], "SPREAD");
    assert!(upgrade_request("TaskSchedulingPolicy", json!({"nodeFillType": "sideways"}), ApiVersion::LATEST).is_err());
}

#[test]
fn multi_instance_settings_change_at_2017_09_01_6_0() {
    let v = |s: &str| ApiVersion::find(s).unwrap();
    let new = upgrade_request("MultiInstanceSettings", json!({"coordinationCommandLine": "x"}), v("2017-09-01.6.0")).unwrap();
    assert_eq!(new["numberOfInstances"], 1, "numberOfInstances defaults to 1 from 6.0");
    let err = upgrade_request("MultiInstanceSettings", json!({"numberOfInstances": 2}), v("2017-09-01.6.0")).unwrap_err();
    assert_eq!(err.code, "MissingRequiredProperty");
    let old = upgrade_request("MultiInstanceSettings", json!({"numberOfInstances": 2}), v("2017-06-01.5.1")).unwrap();
    assert!(old.get("coordinationCommandLine").is_none());
}

#[test]
fn readme_version_table_is_generated() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme.find("<!-- versions:start -->").expect("README has the generated version table");
    let end = readme.find("<!-- versions:end -->").expect("README has the end marker");
    let body = readme[start + "<!-- versions:start -->".len()..end].trim();
    assert_eq!(body, markdown().trim(), "regenerate with `openbatch versions > table` and paste between the markers");
}
