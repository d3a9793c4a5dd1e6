//! Every operation of the API as one enum, matched from method and path (path segments are
//! percent-decoded one by one, so a file path may carry encoded `/`).

use super::error::BatchError;
use axum::http::Method;

/// An operation of the Batch data-plane API, with the ids from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListSupportedImages,
    ListNodeAgentSkus,
    ApplicationList,
    ApplicationGet(String),
    ListPoolNodeCounts,
    LifetimeJobStats,
    LifetimePoolStats,
    PoolListUsageMetrics,
    PoolAdd,
    PoolList,
    PoolGet(String),
    PoolExists(String),
    PoolDelete(String),
    PoolPatch(String),
    PoolResize(String),
    PoolUpgradeOs(String),
    PoolStopResize(String),
    PoolRemoveNodes(String),
    PoolUpdateProperties(String),
    PoolEnableAutoScale(String),
    PoolDisableAutoScale(String),
    PoolEvaluateAutoScale(String),
    NodeList(String),
    NodeGet(String, String),
    NodeUploadBatchServiceLogs(String, String),
    NodeDisableScheduling(String, String),
    NodeEnableScheduling(String, String),
    NodeReboot(String, String),
    NodeReimage(String, String),
    NodeAddUser(String, String),
    NodeUpdateUser(String, String, String),
    NodeDeleteUser(String, String, String),
    NodeRemoteLoginSettings(String, String),
    NodeRemoteDesktop(String, String),
    NodeExtensionList(String, String),
    NodeExtensionGet(String, String, String),
    FileListFromNode(String, String),
    FileFromNode { pool: String, node: String, path: String, method: FileMethod },
    JobAdd,
    JobList,
    JobGet(String),
    JobPatch(String),
    JobUpdate(String),
    JobDelete(String),
    JobTerminate(String),
    JobDisable(String),
    JobEnable(String),
    JobPrepReleaseStatus(String),
    JobTaskCounts(String),
    JobScheduleAdd,
    JobScheduleList,
    JobScheduleGet(String),
    JobScheduleExists(String),
    JobSchedulePatch(String),
    JobScheduleUpdate(String),
    JobScheduleDelete(String),
    JobScheduleDisable(String),
    JobScheduleEnable(String),
    JobScheduleTerminate(String),
    JobListFromJobSchedule(String),
    TaskAdd(String),
    TaskAddCollection(String),
    TaskList(String),
    TaskGet(String, String),
    TaskUpdate(String, String),
    TaskDelete(String, String),
    TaskTerminate(String, String),
    TaskReactivate(String, String),
    TaskListSubtasks(String, String),
    FileListFromTask(String, String),
    FileFromTask { job: String, task: String, path: String, method: FileMethod },
    CertificateAdd,
    CertificateList,
    CertificateGet(CertificateKey),
    CertificateDelete(CertificateKey),
    CertificateCancelDeletion(CertificateKey),
}

/// The key of a certificate in its path segment
/// `certificates(thumbprintAlgorithm={a},thumbprint={t})`: names compared without case (the
/// service's `Location` writes `ThumbprintAlgorithm=`), values optionally in single quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateKey {
    pub thumbprint_algorithm: String,
    pub thumbprint: String,
}

impl CertificateKey {
    /// Reads a decoded path segment; `None` when it is not `certificates(...)` with exactly
    /// these two keys.
    pub fn parse(seg: &str) -> Option<CertificateKey> {
        let inner = seg.strip_prefix("certificates(")?.strip_suffix(')')?;
        let (mut alg, mut tp) = (None, None);
        for pair in inner.split(',') {
            let (k, v) = pair.split_once('=')?;
            let v = v.trim();
            let v = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).unwrap_or(v).to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "thumbprintalgorithm" if alg.is_none() => alg = Some(v),
                "thumbprint" if tp.is_none() => tp = Some(v),
                _ => return None,
            }
        }
        Some(CertificateKey { thumbprint_algorithm: alg?, thumbprint: tp? })
    }
}

/// What is done with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMethod {
    Get,
    Head,
    Delete,
}

impl Operation {
    /// The operation's method and path template as the API documents it, the key of the
    /// version table's operation rows.
    pub fn template(&self) -> (&'static str, &'static str) {
        let file_method = |m: &FileMethod| match m {
            FileMethod::Get => "GET",
            FileMethod::Head => "HEAD",
            FileMethod::Delete => "DELETE",
        };
        match self {
            Operation::ListSupportedImages => ("GET", "/supportedimages"),
            Operation::ListNodeAgentSkus => ("GET", "/nodeagentskus"),
            Operation::ApplicationList => ("GET", "/applications"),
            Operation::ApplicationGet(_) => ("GET", "/applications/{applicationId}"),
            Operation::ListPoolNodeCounts => ("GET", "/nodecounts"),
            Operation::LifetimeJobStats => ("GET", "/lifetimejobstats"),
            Operation::LifetimePoolStats => ("GET", "/lifetimepoolstats"),
            Operation::PoolListUsageMetrics => ("GET", "/poolusagemetrics"),
            Operation::PoolAdd => ("POST", "/pools"),
            Operation::PoolList => ("GET", "/pools"),
            Operation::PoolGet(_) => ("GET", "/pools/{poolId}"),
            Operation::PoolExists(_) => ("HEAD", "/pools/{poolId}"),
            Operation::PoolDelete(_) => ("DELETE", "/pools/{poolId}"),
            Operation::PoolPatch(_) => ("PATCH", "/pools/{poolId}"),
            Operation::PoolResize(_) => ("POST", "/pools/{poolId}/resize"),
            Operation::PoolUpgradeOs(_) => ("POST", "/pools/{poolId}/upgradeos"),
            Operation::PoolStopResize(_) => ("POST", "/pools/{poolId}/stopresize"),
            Operation::PoolRemoveNodes(_) => ("POST", "/pools/{poolId}/removenodes"),
            Operation::PoolUpdateProperties(_) => ("POST", "/pools/{poolId}/updateproperties"),
            Operation::PoolEnableAutoScale(_) => ("POST", "/pools/{poolId}/enableautoscale"),
            Operation::PoolDisableAutoScale(_) => ("POST", "/pools/{poolId}/disableautoscale"),
            Operation::PoolEvaluateAutoScale(_) => ("POST", "/pools/{poolId}/evaluateautoscale"),
            Operation::NodeList(_) => ("GET", "/pools/{poolId}/nodes"),
            Operation::NodeGet(..) => ("GET", "/pools/{poolId}/nodes/{nodeId}"),
            Operation::NodeUploadBatchServiceLogs(..) => ("POST", "/pools/{poolId}/nodes/{nodeId}/uploadbatchservicelogs"),
            Operation::NodeDisableScheduling(..) => ("POST", "/pools/{poolId}/nodes/{nodeId}/disablescheduling"),
            Operation::NodeEnableScheduling(..) => ("POST", "/pools/{poolId}/nodes/{nodeId}/enablescheduling"),
            Operation::NodeReboot(..) => ("POST", "/pools/{poolId}/nodes/{nodeId}/reboot"),
            Operation::NodeReimage(..) => ("POST", "/pools/{poolId}/nodes/{nodeId}/reimage"),
            Operation::NodeAddUser(..) => ("POST", "/pools/{poolId}/nodes/{nodeId}/users"),
            Operation::NodeUpdateUser(..) => ("PUT", "/pools/{poolId}/nodes/{nodeId}/users/{userName}"),
            Operation::NodeDeleteUser(..) => ("DELETE", "/pools/{poolId}/nodes/{nodeId}/users/{userName}"),
            Operation::NodeRemoteLoginSettings(..) => ("GET", "/pools/{poolId}/nodes/{nodeId}/remoteloginsettings"),
            Operation::NodeRemoteDesktop(..) => ("GET", "/pools/{poolId}/nodes/{nodeId}/rdp"),
            Operation::NodeExtensionList(..) => ("GET", "/pools/{poolId}/nodes/{nodeId}/extensions"),
            Operation::NodeExtensionGet(..) => ("GET", "/pools/{poolId}/nodes/{nodeId}/extensions/{extensionName}"),
            Operation::FileListFromNode(..) => ("GET", "/pools/{poolId}/nodes/{nodeId}/files"),
            Operation::FileFromNode { method, .. } => (file_method(method), "/pools/{poolId}/nodes/{nodeId}/files/{filePath}"),
            Operation::JobAdd => ("POST", "/jobs"),
            Operation::JobList => ("GET", "/jobs"),
            Operation::JobGet(_) => ("GET", "/jobs/{jobId}"),
            Operation::JobPatch(_) => ("PATCH", "/jobs/{jobId}"),
            Operation::JobUpdate(_) => ("PUT", "/jobs/{jobId}"),
            Operation::JobDelete(_) => ("DELETE", "/jobs/{jobId}"),
            Operation::JobTerminate(_) => ("POST", "/jobs/{jobId}/terminate"),
            Operation::JobDisable(_) => ("POST", "/jobs/{jobId}/disable"),
            Operation::JobEnable(_) => ("POST", "/jobs/{jobId}/enable"),
            Operation::JobPrepReleaseStatus(_) => ("GET", "/jobs/{jobId}/jobpreparationandreleasetaskstatus"),
            Operation::JobTaskCounts(_) => ("GET", "/jobs/{jobId}/taskcounts"),
            Operation::JobScheduleAdd => ("POST", "/jobschedules"),
            Operation::JobScheduleList => ("GET", "/jobschedules"),
            Operation::JobScheduleGet(_) => ("GET", "/jobschedules/{jobScheduleId}"),
            Operation::JobScheduleExists(_) => ("HEAD", "/jobschedules/{jobScheduleId}"),
            Operation::JobSchedulePatch(_) => ("PATCH", "/jobschedules/{jobScheduleId}"),
            Operation::JobScheduleUpdate(_) => ("PUT", "/jobschedules/{jobScheduleId}"),
            Operation::JobScheduleDelete(_) => ("DELETE", "/jobschedules/{jobScheduleId}"),
            Operation::JobScheduleDisable(_) => ("POST", "/jobschedules/{jobScheduleId}/disable"),
            Operation::JobScheduleEnable(_) => ("POST", "/jobschedules/{jobScheduleId}/enable"),
            Operation::JobScheduleTerminate(_) => ("POST", "/jobschedules/{jobScheduleId}/terminate"),
            Operation::JobListFromJobSchedule(_) => ("GET", "/jobschedules/{jobScheduleId}/jobs"),
            Operation::TaskAdd(_) => ("POST", "/jobs/{jobId}/tasks"),
            Operation::TaskAddCollection(_) => ("POST", "/jobs/{jobId}/addtaskcollection"),
            Operation::TaskList(_) => ("GET", "/jobs/{jobId}/tasks"),
            Operation::TaskGet(..) => ("GET", "/jobs/{jobId}/tasks/{taskId}"),
            Operation::TaskUpdate(..) => ("PUT", "/jobs/{jobId}/tasks/{taskId}"),
            Operation::TaskDelete(..) => ("DELETE", "/jobs/{jobId}/tasks/{taskId}"),
            Operation::TaskTerminate(..) => ("POST", "/jobs/{jobId}/tasks/{taskId}/terminate"),
            Operation::TaskReactivate(..) => ("POST", "/jobs/{jobId}/tasks/{taskId}/reactivate"),
            Operation::TaskListSubtasks(..) => ("GET", "/jobs/{jobId}/tasks/{taskId}/subtasksinfo"),
            Operation::FileListFromTask(..) => ("GET", "/jobs/{jobId}/tasks/{taskId}/files"),
            Operation::FileFromTask { method, .. } => (file_method(method), "/jobs/{jobId}/tasks/{taskId}/files/{filePath}"),
            Operation::CertificateAdd => ("POST", "/certificates"),
            Operation::CertificateList => ("GET", "/certificates"),
            Operation::CertificateGet(_) => ("GET", CERTIFICATE_PATH),
            Operation::CertificateDelete(_) => ("DELETE", CERTIFICATE_PATH),
            Operation::CertificateCancelDeletion(_) => {
                ("POST", "/certificates(thumbprintAlgorithm={thumbprintAlgorithm},thumbprint={thumbprint})/canceldelete")
            }
        }
    }

    /// True when the operation changes state (for logs and future conditional checks).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Operation::ListSupportedImages
                | Operation::ListNodeAgentSkus
                | Operation::ApplicationList
                | Operation::ApplicationGet(_)
                | Operation::ListPoolNodeCounts
                | Operation::LifetimeJobStats
                | Operation::LifetimePoolStats
                | Operation::PoolListUsageMetrics
                | Operation::PoolList
                | Operation::PoolGet(_)
                | Operation::PoolExists(_)
                | Operation::NodeList(_)
                | Operation::NodeGet(..)
                | Operation::NodeRemoteLoginSettings(..)
                | Operation::NodeRemoteDesktop(..)
                | Operation::NodeExtensionList(..)
                | Operation::NodeExtensionGet(..)
                | Operation::FileListFromNode(..)
                | Operation::JobList
                | Operation::JobGet(_)
                | Operation::JobTaskCounts(_)
                | Operation::JobPrepReleaseStatus(_)
                | Operation::JobScheduleList
                | Operation::JobScheduleGet(_)
                | Operation::JobScheduleExists(_)
                | Operation::JobListFromJobSchedule(_)
                | Operation::TaskListSubtasks(..)
                | Operation::TaskList(_)
                | Operation::TaskGet(..)
                | Operation::FileListFromTask(..)
                | Operation::CertificateList
                | Operation::CertificateGet(_)
        )
    }
}

/// The path template of one certificate.
const CERTIFICATE_PATH: &str = "/certificates(thumbprintAlgorithm={thumbprintAlgorithm},thumbprint={thumbprint})";

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg).decode_utf8_lossy().into_owned()
}

/// The path's segments, percent-decoded one by one, empty ones left out.
fn segments(raw_path: &str) -> Vec<String> {
    raw_path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(decode).collect()
}

/// The job a path targets: the decoded `{jobId}` of `/jobs/{jobId}` and of every path under
/// it, read as [`route`] reads it; `None` for every other path (`/jobs` itself included).
pub fn target_job(raw_path: &str) -> Option<String> {
    let mut segs = segments(raw_path).into_iter();
    match (segs.next(), segs.next()) {
        (Some(first), Some(job)) if first == "jobs" => Some(job),
        _ => None,
    }
}

/// Matches a request. Unknown paths answer 404 `ResourceNotFound`-style errors (as the real
/// service does for a URI naming no resource); known paths with another method answer 405.
pub fn route(method: &Method, raw_path: &str) -> Result<Operation, BatchError> {
    let segs = segments(raw_path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let Some(op) = match_op(method.as_str(), &s) {
        return Ok(op);
    }
    if s.first().is_some_and(|f| f.starts_with("certificates(") && CertificateKey::parse(f).is_none()) {
        return Err(BatchError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        )
        .with("Reason", "A certificate is named as certificates(thumbprintAlgorithm=<algorithm>,thumbprint=<thumbprint>)."));
    }
    // A path that some method serves answers 405 for the others.
    let served = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].iter().any(|m| match_op(m, &s).is_some());
    if served {
        Err(BatchError::method_not_allowed(method.as_str()))
    } else {
        Err(BatchError::unknown_path(raw_path))
    }
}

/// The operation served by `m` at the decoded path segments `s`, if any.
fn match_op(m: &str, s: &[&str]) -> Option<Operation> {
    let file_method = |m: &str| match m {
        "GET" => Some(FileMethod::Get),
        "HEAD" => Some(FileMethod::Head),
        "DELETE" => Some(FileMethod::Delete),
        _ => None,
    };
    let op = match (m, s) {
        ("GET", ["supportedimages"]) => Operation::ListSupportedImages,
        ("GET", ["nodeagentskus"]) => Operation::ListNodeAgentSkus,
        ("GET", ["applications"]) => Operation::ApplicationList,
        ("GET", ["applications", a]) => Operation::ApplicationGet(a.to_string()),
        ("GET", ["nodecounts"]) => Operation::ListPoolNodeCounts,
        ("GET", ["lifetimejobstats"]) => Operation::LifetimeJobStats,
        ("GET", ["lifetimepoolstats"]) => Operation::LifetimePoolStats,
        ("GET", ["poolusagemetrics"]) => Operation::PoolListUsageMetrics,
        ("POST", ["pools"]) => Operation::PoolAdd,
        ("GET", ["pools"]) => Operation::PoolList,
        ("GET", ["pools", p]) => Operation::PoolGet(p.to_string()),
        ("HEAD", ["pools", p]) => Operation::PoolExists(p.to_string()),
        ("DELETE", ["pools", p]) => Operation::PoolDelete(p.to_string()),
        ("PATCH", ["pools", p]) => Operation::PoolPatch(p.to_string()),
        ("POST", ["pools", p, "resize"]) => Operation::PoolResize(p.to_string()),
        ("POST", ["pools", p, "upgradeos"]) => Operation::PoolUpgradeOs(p.to_string()),
        ("POST", ["pools", p, "stopresize"]) => Operation::PoolStopResize(p.to_string()),
        ("POST", ["pools", p, "removenodes"]) => Operation::PoolRemoveNodes(p.to_string()),
        ("POST", ["pools", p, "updateproperties"]) => Operation::PoolUpdateProperties(p.to_string()),
        ("POST", ["pools", p, "enableautoscale"]) => Operation::PoolEnableAutoScale(p.to_string()),
        ("POST", ["pools", p, "disableautoscale"]) => Operation::PoolDisableAutoScale(p.to_string()),
        ("POST", ["pools", p, "evaluateautoscale"]) => Operation::PoolEvaluateAutoScale(p.to_string()),
        ("GET", ["pools", p, "nodes"]) => Operation::NodeList(p.to_string()),
        ("GET", ["pools", p, "nodes", n]) => Operation::NodeGet(p.to_string(), n.to_string()),
        ("POST", ["pools", p, "nodes", n, "uploadbatchservicelogs"]) => Operation::NodeUploadBatchServiceLogs(p.to_string(), n.to_string()),
        ("POST", ["pools", p, "nodes", n, "disablescheduling"]) => Operation::NodeDisableScheduling(p.to_string(), n.to_string()),
        ("POST", ["pools", p, "nodes", n, "enablescheduling"]) => Operation::NodeEnableScheduling(p.to_string(), n.to_string()),
        ("POST", ["pools", p, "nodes", n, "reboot"]) => Operation::NodeReboot(p.to_string(), n.to_string()),
        ("POST", ["pools", p, "nodes", n, "reimage"]) => Operation::NodeReimage(p.to_string(), n.to_string()),
        ("POST", ["pools", p, "nodes", n, "users"]) => Operation::NodeAddUser(p.to_string(), n.to_string()),
        ("PUT", ["pools", p, "nodes", n, "users", u]) => Operation::NodeUpdateUser(p.to_string(), n.to_string(), u.to_string()),
        ("DELETE", ["pools", p, "nodes", n, "users", u]) => Operation::NodeDeleteUser(p.to_string(), n.to_string(), u.to_string()),
        ("GET", ["pools", p, "nodes", n, "remoteloginsettings"]) => Operation::NodeRemoteLoginSettings(p.to_string(), n.to_string()),
        ("GET", ["pools", p, "nodes", n, "rdp"]) => Operation::NodeRemoteDesktop(p.to_string(), n.to_string()),
        ("GET", ["pools", p, "nodes", n, "extensions"]) => Operation::NodeExtensionList(p.to_string(), n.to_string()),
        ("GET", ["pools", p, "nodes", n, "extensions", e]) => Operation::NodeExtensionGet(p.to_string(), n.to_string(), e.to_string()),
        ("GET", ["pools", p, "nodes", n, "files"]) => Operation::FileListFromNode(p.to_string(), n.to_string()),
        (_, ["pools", p, "nodes", n, "files", rest @ ..]) if !rest.is_empty() && file_method(m).is_some() => Operation::FileFromNode {
            pool: p.to_string(),
            node: n.to_string(),
            path: rest.join("/"),
            method: file_method(m).unwrap_or(FileMethod::Get),
        },
        ("POST", ["jobs"]) => Operation::JobAdd,
        ("GET", ["jobs"]) => Operation::JobList,
        ("GET", ["jobs", j]) => Operation::JobGet(j.to_string()),
        ("PATCH", ["jobs", j]) => Operation::JobPatch(j.to_string()),
        ("PUT", ["jobs", j]) => Operation::JobUpdate(j.to_string()),
        ("DELETE", ["jobs", j]) => Operation::JobDelete(j.to_string()),
        ("POST", ["jobs", j, "terminate"]) => Operation::JobTerminate(j.to_string()),
        ("POST", ["jobs", j, "disable"]) => Operation::JobDisable(j.to_string()),
        ("POST", ["jobs", j, "enable"]) => Operation::JobEnable(j.to_string()),
        ("GET", ["jobs", j, "jobpreparationandreleasetaskstatus"]) => Operation::JobPrepReleaseStatus(j.to_string()),
        ("GET", ["jobs", j, "taskcounts"]) => Operation::JobTaskCounts(j.to_string()),
        ("POST", ["jobschedules"]) => Operation::JobScheduleAdd,
        ("GET", ["jobschedules"]) => Operation::JobScheduleList,
        ("GET", ["jobschedules", s]) => Operation::JobScheduleGet(s.to_string()),
        ("HEAD", ["jobschedules", s]) => Operation::JobScheduleExists(s.to_string()),
        ("PATCH", ["jobschedules", s]) => Operation::JobSchedulePatch(s.to_string()),
        ("PUT", ["jobschedules", s]) => Operation::JobScheduleUpdate(s.to_string()),
        ("DELETE", ["jobschedules", s]) => Operation::JobScheduleDelete(s.to_string()),
        ("POST", ["jobschedules", s, "disable"]) => Operation::JobScheduleDisable(s.to_string()),
        ("POST", ["jobschedules", s, "enable"]) => Operation::JobScheduleEnable(s.to_string()),
        ("POST", ["jobschedules", s, "terminate"]) => Operation::JobScheduleTerminate(s.to_string()),
        ("GET", ["jobschedules", s, "jobs"]) => Operation::JobListFromJobSchedule(s.to_string()),
        ("POST", ["jobs", j, "tasks"]) => Operation::TaskAdd(j.to_string()),
        ("POST", ["jobs", j, "addtaskcollection"]) => Operation::TaskAddCollection(j.to_string()),
        ("GET", ["jobs", j, "tasks"]) => Operation::TaskList(j.to_string()),
        ("GET", ["jobs", j, "tasks", t]) => Operation::TaskGet(j.to_string(), t.to_string()),
        ("PUT", ["jobs", j, "tasks", t]) => Operation::TaskUpdate(j.to_string(), t.to_string()),
        ("DELETE", ["jobs", j, "tasks", t]) => Operation::TaskDelete(j.to_string(), t.to_string()),
        ("POST", ["jobs", j, "tasks", t, "terminate"]) => Operation::TaskTerminate(j.to_string(), t.to_string()),
        ("POST", ["jobs", j, "tasks", t, "reactivate"]) => Operation::TaskReactivate(j.to_string(), t.to_string()),
        ("GET", ["jobs", j, "tasks", t, "subtasksinfo"]) => Operation::TaskListSubtasks(j.to_string(), t.to_string()),
        ("GET", ["jobs", j, "tasks", t, "files"]) => Operation::FileListFromTask(j.to_string(), t.to_string()),
        (_, ["jobs", j, "tasks", t, "files", rest @ ..]) if !rest.is_empty() && file_method(m).is_some() => Operation::FileFromTask {
            job: j.to_string(),
            task: t.to_string(),
            path: rest.join("/"),
            method: file_method(m).unwrap_or(FileMethod::Get),
        },
        ("POST", ["certificates"]) => Operation::CertificateAdd,
        ("GET", ["certificates"]) => Operation::CertificateList,
        ("GET", [c]) => Operation::CertificateGet(CertificateKey::parse(c)?),
        ("DELETE", [c]) => Operation::CertificateDelete(CertificateKey::parse(c)?),
        ("POST", [c, "canceldelete"]) => Operation::CertificateCancelDeletion(CertificateKey::parse(c)?),
        _ => return None,
    };
    Some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_operations_and_file_paths() {
        assert_eq!(route(&Method::GET, "/pools").unwrap(), Operation::PoolList);
        assert_eq!(route(&Method::HEAD, "/pools/p1").unwrap(), Operation::PoolExists("p1".into()));
        assert_eq!(
            route(&Method::GET, "/jobs/j/tasks/t/files/wd%2Fout%20x.txt").unwrap(),
            Operation::FileFromTask { job: "j".into(), task: "t".into(), path: "wd/out x.txt".into(), method: FileMethod::Get }
        );
        assert_eq!(
            route(&Method::HEAD, "/pools/p/nodes/n/files/workitems/j/job-1/t/stdout.txt").unwrap(),
            Operation::FileFromNode {
                pool: "p".into(),
                node: "n".into(),
                path: "workitems/j/job-1/t/stdout.txt".into(),
                method: FileMethod::Head
            }
        );
        assert_eq!(route(&Method::PUT, "/pools").unwrap_err().code, "UnsupportedHttpVerb");
        assert_eq!(route(&Method::GET, "/nothing/here").unwrap_err().status.as_u16(), 404);
        assert_eq!(route(&Method::GET, "/nothing").unwrap_err().status.as_u16(), 404);
        assert_eq!(route(&Method::GET, "/pools/p/resize").unwrap_err().code, "UnsupportedHttpVerb");
        assert_eq!(route(&Method::PUT, "/jobs/j/terminate").unwrap_err().code, "UnsupportedHttpVerb");
    }

    #[test]
    fn routes_job_schedules_and_their_jobs_ids() {
        assert_eq!(route(&Method::GET, "/jobschedules/s1/jobs").unwrap(), Operation::JobListFromJobSchedule("s1".into()));
        assert_eq!(route(&Method::POST, "/jobschedules/s1/terminate").unwrap(), Operation::JobScheduleTerminate("s1".into()));
        // A schedule's job ids carry `:`, sent as is or percent-encoded.
        for p in ["/jobs/s1:job-2", "/jobs/s1%3Ajob-2", "/jobs/s1%3ajob-2"] {
            assert_eq!(route(&Method::GET, p).unwrap(), Operation::JobGet("s1:job-2".into()), "{p}");
            assert_eq!(target_job(p).as_deref(), Some("s1:job-2"));
        }
        assert_eq!(route(&Method::PUT, "/jobschedules").unwrap_err().code, "UnsupportedHttpVerb");
    }

    #[test]
    fn routes_certificates_by_their_key_segment() {
        let key = CertificateKey { thumbprint_algorithm: "sha1".into(), thumbprint: "ab12".into() };
        for p in [
            "/certificates(thumbprintAlgorithm=sha1,thumbprint=ab12)",
            "/certificates(ThumbprintAlgorithm=sha1,Thumbprint=ab12)",
            "/certificates%28thumbprintAlgorithm%3Dsha1%2Cthumbprint%3Dab12%29",
            "/certificates(thumbprint='ab12',thumbprintAlgorithm='sha1')",
        ] {
            assert_eq!(route(&Method::GET, p).unwrap(), Operation::CertificateGet(key.clone()), "{p}");
        }
        let p = "/certificates(thumbprintAlgorithm=sha1,thumbprint=ab12)";
        assert_eq!(route(&Method::DELETE, p).unwrap(), Operation::CertificateDelete(key.clone()));
        assert_eq!(route(&Method::POST, &format!("{p}/canceldelete")).unwrap(), Operation::CertificateCancelDeletion(key));
        assert_eq!(route(&Method::POST, "/certificates").unwrap(), Operation::CertificateAdd);
        assert_eq!(route(&Method::PUT, p).unwrap_err().code, "UnsupportedHttpVerb");
        for bad in
            ["/certificates(thumbprint=ab12)", "/certificates(x=1,thumbprint=ab12)", "/certificates(thumbprintAlgorithm=sha1,thumbprint=ab"]
        {
            assert_eq!(route(&Method::GET, bad).unwrap_err().code, "InvalidUri", "{bad}");
        }
        assert_eq!(route(&Method::GET, "/pools(x)").unwrap_err().status.as_u16(), 404);
    }

    #[test]
    fn target_job_reads_the_job_as_route_does() {
        assert_eq!(target_job("/jobs/j").as_deref(), Some("j"));
        assert_eq!(target_job("/jobs/j/tasks/t/files/a%2Fb").as_deref(), Some("j"));
        assert_eq!(target_job("//jobs//my%20job/terminate").as_deref(), Some("my job"));
        assert_eq!(target_job("/jobs/a%2Fb/tasks").as_deref(), Some("a/b"));
        assert_eq!(route(&Method::GET, "/jobs/a%2Fb/tasks").unwrap(), Operation::TaskList("a/b".into()));
        for other in ["/jobs", "/jobs/", "/", "/pools/p", "/pools/jobs/j", "/jobschedules/s/jobs", "/applications"] {
            assert_eq!(target_job(other), None, "{other}");
        }
        // Every operation routed under /jobs/{jobId} targets that job.
        for (m, p) in [("GET", "/jobs/x"), ("POST", "/jobs/x/tasks"), ("GET", "/jobs/x/taskcounts"), ("POST", "/jobs/x/terminate")] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert!(route(&m, p).is_ok());
            assert_eq!(target_job(p).as_deref(), Some("x"));
        }
    }
}
