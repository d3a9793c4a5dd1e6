//! Task authentication tokens over HTTP, against a real `openbatch serve` process: tokens are
//! minted with `TaskTokens` loaded from the service's own data directory (the same secret
//! file), sent as `Authorization: Bearer <token>` the way msrest's `BasicTokenAuthentication`
//! and an `azure.core` `TokenCredential` send them, and must reach the token's job only.

mod common;

use chrono::{Duration as ChronoDuration, Utc};
use common::*;
use openbatch::api::task_token::{TaskTokens, SECRET_FILE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

/// The token with its payload's `jobId` replaced, keeping the original signature.
fn tampered(token: &str, job: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["jobId"] = job.into();
    format!("{}.{}.{}", parts[0], engine.encode(serde_json::to_vec(&claims).unwrap()), parts[2])
}

#[tokio::test]
async fn a_task_token_reaches_its_own_job_only() {
    let svc = Service::start().await;
    svc.add_pool("p", 0, json!({})).await;
    svc.add_job("j1", "p", json!({})).await;
    svc.add_job("j2", "p", json!({})).await;
    svc.add_task("j2", "other", "/bin/true", json!({})).await;

    let data = svc.dir.path().join("data");
    // The service created its secret at start, private to its user.
    let mode = std::fs::metadata(data.join(SECRET_FILE)).expect("the service's secret file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let tokens = TaskTokens::load_or_create(&data, ACCOUNT).unwrap();
    let token = tokens.issue("j1", "t0", Utc::now());
    let c = &svc.client;
    let base = svc.base.as_str();

    // Its own job: Get Job, Add Task, List Tasks, Get Task, task counts, a percent-encoded id.
    let job = bearer(c, base, Method::GET, "/jobs/j1", &token, None).await;
    job.expect_status(200);
    assert_eq!(job.json()["id"], "j1");
    bearer(c, base, Method::POST, "/jobs/j1/tasks", &token, Some(json!({"id": "child", "commandLine": "/bin/true"})))
        .await
        .expect_status(201);
    let list = bearer(c, base, Method::GET, "/jobs/j1/tasks", &token, None).await;
    list.expect_status(200);
    let ids: Vec<String> = list.json()["value"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["child"], "{list:?}");
    bearer(c, base, Method::GET, "/jobs/j1/tasks/child", &token, None).await.expect_status(200);
    bearer(c, base, Method::GET, "/jobs/j1/taskcounts", &token, None).await.expect_status(200);
    bearer(c, base, Method::GET, "/jobs/%6A1", &token, None).await.expect_status(200);
    bearer(c, base, Method::POST, "/jobs/j1/addtaskcollection", &token, Some(json!({"value": [{"id": "c2", "commandLine": "/bin/true"}]})))
        .await
        .expect_status(200);
    // A job's operation the service lacks answers as it would to the account, not 403.
    let r = bearer(c, base, Method::GET, "/jobs/j1/tasks/child/nothing", &token, None).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{r:?}");

    // Everything else: 403 InsufficientAccountPermissions with the Batch error body.
    for (m, path) in [
        (Method::GET, "/jobs/j2"),
        (Method::GET, "/jobs/j2/tasks"),
        (Method::GET, "/jobs/j2/tasks/other"),
        (Method::POST, "/jobs/j2/terminate"),
        (Method::GET, "/jobs/j1x"),
        (Method::GET, "/jobs"),
        (Method::POST, "/jobs"),
        (Method::GET, "/pools"),
        (Method::GET, "/pools/p"),
        (Method::GET, "/pools/p/nodes"),
        (Method::GET, "/supportedimages"),
        (Method::GET, "/nodecounts"),
        (Method::GET, "/applications"),
        (Method::GET, "/jobschedules"),
    ] {
        let r = bearer(c, base, m, path, &token, None).await;
        r.expect_error(403, "InsufficientAccountPermissions");
        assert!(r.error_value("AuthorizationErrorDetail").is_some_and(|d| d.contains("j1")), "{r:?}");
    }
    // The other job is untouched.
    assert_eq!(svc.get_json("/jobs/j2").await["state"], "active");

    // JWTs that are not valid task tokens of this service: 401 AuthenticationFailed, whatever
    // the path; bearer tokens that are not JWTs at all: 400 InvalidAuthenticationInfo.
    let other_dir = tempfile::tempdir().unwrap();
    let foreign = TaskTokens::load_or_create(other_dir.path(), ACCOUNT).unwrap().issue("j1", "t0", Utc::now());
    let other_account = TaskTokens::load_or_create(&data, "another").unwrap().issue("j1", "t0", Utc::now());
    let expired = tokens.issue("j1", "t0", Utc::now() - ChronoDuration::days(8));
    for (what, bad, status, code) in [
        ("tampered", tampered(&token, "j2"), 401, "AuthenticationFailed"),
        ("another secret", foreign, 401, "AuthenticationFailed"),
        ("another account", other_account, 401, "AuthenticationFailed"),
        ("expired", expired, 401, "AuthenticationFailed"),
        ("garbage", "not-a-token".to_string(), 400, "InvalidAuthenticationInfo"),
        ("empty", String::new(), 400, "InvalidAuthenticationInfo"),
    ] {
        for path in ["/jobs/j1", "/jobs/j2", "/pools"] {
            let r = bearer(c, base, Method::GET, path, &bad, None).await;
            assert_eq!(r.status.as_u16(), status, "{what}: {r:?}");
            r.expect_error(status, code);
            assert!(r.error_value("AuthenticationErrorDetail").is_some(), "{what}: {r:?}");
        }
    }
    let r = bearer(c, base, Method::GET, "/jobs/j1", &tokens.issue("j1", "t0", Utc::now() - ChronoDuration::days(8)), None).await;
    assert!(r.error_value("AuthenticationErrorDetail").unwrap().contains("expired"), "{r:?}");

    // Job Terminate with the token, then SharedKey still reaches everything.
    bearer(c, base, Method::POST, "/jobs/j1/terminate", &token, None).await.expect_status(202);
    svc.get("/pools").send().await.expect_status(200);
    svc.get("/jobs").send().await.expect_status(200);
}

#[tokio::test]
async fn task_tokens_survive_a_restart() {
    let mut svc = Service::start().await;
    svc.add_pool("p", 0, json!({})).await;
    svc.add_job("j1", "p", json!({})).await;
    let data = svc.dir.path().join("data");
    let secret = std::fs::read(data.join(SECRET_FILE)).unwrap();
    let token = TaskTokens::load_or_create(&data, ACCOUNT).unwrap().issue("j1", "t0", Utc::now());
    bearer(&svc.client, &svc.base, Method::GET, "/jobs/j1", &token, None).await.expect_status(200);

    // Stop the service (kill -9) but keep its directory, then serve the same data again.
    svc.restart().await;
    let (client, base) = (&svc.client, svc.base.as_str());

    assert_eq!(std::fs::read(data.join(SECRET_FILE)).unwrap(), secret, "the secret was replaced");
    let job = bearer(client, base, Method::GET, "/jobs/j1", &token, None).await;
    job.expect_status(200);
    assert_eq!(job.json()["id"], "j1");
    bearer(client, base, Method::POST, "/jobs/j1/tasks", &token, Some(json!({"id": "after", "commandLine": "/bin/true"})))
        .await
        .expect_status(201);
    bearer(client, base, Method::GET, "/pools", &token, None).await.expect_error(403, "InsufficientAccountPermissions");
    // A token minted after the restart from the same file works too.
    let fresh = TaskTokens::load_or_create(&data, ACCOUNT).unwrap().issue("j1", "t1", Utc::now());
    bearer(client, base, Method::GET, "/jobs/j1/tasks/after", &fresh, None).await.expect_status(200);
}
