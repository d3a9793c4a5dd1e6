//! HTTP tests of autoscale: Pool Add with `enableAutoScale`, Enable / Evaluate / Disable
//! AutoScale (status, headers, bodies, errors), periodic evaluation on a clock the test moves
//! (`serve --clock-control`) and in real time with a short interval
//! (`serve --min-autoscale-interval`).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A Linux pool body with autoscale and no targets.
fn autoscale_pool(id: &str, formula: &str, interval: Option<&str>) -> Value {
    let mut body = linux_pool(id, 0);
    let o = body.as_object_mut().unwrap();
    o.remove("targetDedicatedNodes");
    o.insert("enableAutoScale".into(), json!(true));
    o.insert("autoScaleFormula".into(), json!(formula));
    if let Some(i) = interval {
        o.insert("autoScaleEvaluationInterval".into(), json!(i));
    }
    body
}

/// The `values` entry `key` of an error body.
fn value_of(e: &Value, key: &str) -> String {
    e["values"].as_array().into_iter().flatten().find(|kv| kv["key"] == key).and_then(|kv| kv["value"].as_str()).unwrap_or("").to_string()
}

async fn pool_nodes(svc: &Service, id: &str) -> usize {
    svc.get_json(&format!("/pools/{id}/nodes")).await["value"].as_array().map_or(0, Vec::len)
}

/// Waits until the pool has `n` nodes.
async fn wait_nodes(svc: &Service, id: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pool_nodes(svc, id).await != n {
        assert!(std::time::Instant::now() < deadline, "pool {id} never had {n} nodes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pool_add_checks_autoscale_settings_as_the_service_does() {
    let svc = Service::start().await;
    let mut no_formula = autoscale_pool("a", "x", None);
    no_formula.as_object_mut().unwrap().remove("autoScaleFormula");
    let e = svc.post("/pools").json(no_formula).send().await;
    e.expect_status(400);
    assert_eq!(e.json()["code"], "MissingRequiredProperty");
    let mut with_targets = autoscale_pool("a", "$TargetDedicatedNodes = 1;", None);
    with_targets["targetDedicatedNodes"] = json!(0);
    let e = svc.post("/pools").json(with_targets).send().await;
    e.expect_status(400);
    assert_eq!(
        (e.json()["code"].as_str(), value_of(&e.json(), "PropertyName").as_str()),
        (Some("InvalidPropertyValue"), "targetDedicatedNodes")
    );
    let mut formula_only = linux_pool("a", 1);
    formula_only["autoScaleFormula"] = json!("$TargetDedicatedNodes = 1;");
    let e = svc.post("/pools").json(formula_only).send().await;
    e.expect_status(400);
    assert_eq!(value_of(&e.json(), "PropertyName"), "autoScaleFormula");
    let e = svc.post("/pools").json(autoscale_pool("a", "$TargetDedicatedNodes = (1;", None)).send().await;
    e.expect_status(400);
    let body = e.json();
    assert_eq!(body["code"], "AutoScalingFormulaSyntaxError");
    assert!(body["message"]["value"].as_str().unwrap().starts_with("The specified auto-scaling formula has a syntax error."));
    assert!(value_of(&body, "Message").starts_with("Line 1, Col 27: expected `)`"), "{body}");
    let long = format!("a = 1;{}", " ".repeat(9000));
    let e = svc.post("/pools").json(autoscale_pool("a", &long, None)).send().await;
    e.expect_status(400);
    assert_eq!(e.json()["code"], "AutoScaleFormulaTooLong");
    for bad in ["PT4M59S", "PT169H", "soon"] {
        let e = svc.post("/pools").json(autoscale_pool("a", "$TargetDedicatedNodes = 1;", Some(bad))).send().await;
        e.expect_status(400);
        assert_eq!(value_of(&e.json(), "PropertyName"), "autoScaleEvaluationInterval", "{bad}");
    }
    svc.post("/pools").json(autoscale_pool("a", "$TargetDedicatedNodes = 2;", Some("PT300S"))).send().await.expect_status(201);
    let p = svc.get_json("/pools/a").await;
    assert_eq!((p["enableAutoScale"].as_bool(), p["autoScaleEvaluationInterval"].as_str()), (Some(true), Some("PT5M")));
    assert_eq!(p["autoScaleFormula"], "$TargetDedicatedNodes = 2;");
    svc.wait_pool_idle("a", 2, Duration::from_secs(20)).await;
    let p = svc.get_json("/pools/a").await;
    assert_eq!(p["targetDedicatedNodes"], 2);
    assert_eq!(p["autoScaleRun"]["results"], "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue");
    assert!(p["autoScaleRun"]["timestamp"].is_string());
}

#[tokio::test]
async fn enable_evaluate_disable_answer_as_recorded() {
    let svc = Service::start().await;
    svc.add_pool("p", 0, json!({})).await;
    // Evaluate needs autoscale.
    let e = svc.post("/pools/p/evaluateautoscale").json(json!({"autoScaleFormula": "$TargetDedicatedNodes=3"})).send().await;
    e.expect_status(409);
    assert_eq!(e.json()["code"], "OperationInvalidForCurrentState");
    let e = svc.post("/pools/p/enableautoscale").json(json!({"autoScaleEvaluationInterval": "PT6M"})).send().await;
    e.expect_status(400);
    assert_eq!(e.json()["code"], "MissingRequiredProperty");
    let r = svc
        .post("/pools/p/enableautoscale")
        .api_version("2020-09-01.12.0")
        .json(json!({"autoScaleFormula": "$TargetDedicatedNodes=2", "autoScaleEvaluationInterval": "PT6M"}))
        .send()
        .await;
    r.expect_status(200);
    for h in ["etag", "last-modified", "dataserviceid"] {
        assert!(r.header(h).is_some(), "{h}");
    }
    assert!(r.header("dataserviceid").unwrap().ends_with("/pools/p/enableautoscale"));
    assert!(r.text().is_empty());
    let p = svc.get_json("/pools/p").await;
    assert_eq!((p["targetDedicatedNodes"].as_i64(), p["autoScaleEvaluationInterval"].as_str()), (Some(2), Some("PT6M")));
    let run = &p["autoScaleRun"];
    assert_eq!(run["results"], "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue");
    // Evaluate only computes.
    let r = svc
        .post("/pools/p/evaluateautoscale")
        .api_version("2020-09-01.12.0")
        .json(json!({"autoScaleFormula": "$TargetDedicatedNodes=3"}))
        .send()
        .await;
    r.expect_status(200);
    let body = r.json();
    assert!(body["odata.metadata"].as_str().unwrap().ends_with("$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"));
    assert_eq!(body["results"], "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue");
    assert!(body["timestamp"].is_string() && body.get("error").is_none());
    assert!(r.header("dataserviceid").unwrap().ends_with("/pools/p/evaluateautoscale"));
    assert_eq!(svc.get_json("/pools/p").await["targetDedicatedNodes"], 2);
    // A run that fails is a 200 with the error.
    let r = svc
        .post("/pools/p/evaluateautoscale")
        .json(json!({"autoScaleFormula": "$TargetDedicatedNodes = $CPUPercent.GetSample(TimeInterval_Hour, 50);"}))
        .send()
        .await;
    r.expect_status(200);
    let err = &r.json()["error"];
    assert_eq!(err["code"], "InsufficientSampleData");
    assert_eq!(err["values"][0]["name"], "Message");
    // A formula that does not parse is a 400.
    let e = svc.post("/pools/p/evaluateautoscale").json(json!({"autoScaleFormula": "$TargetDedicatedNodes = ;"})).send().await;
    e.expect_status(400);
    assert_eq!(e.json()["code"], "AutoScalingFormulaSyntaxError");
    // Enable again within 30 s.
    let e = svc.post("/pools/p/enableautoscale").json(json!({"autoScaleFormula": "$TargetDedicatedNodes=1"})).send().await;
    e.expect_status(503);
    assert_eq!(e.json()["code"], "TooManyEnableAutoScaleRequests");
    let r = svc.post("/pools/p/disableautoscale").send().await;
    r.expect_status(200);
    assert!(r.header("etag").is_some() && r.header("dataserviceid").unwrap().ends_with("/pools/p/disableautoscale"));
    let p = svc.get_json("/pools/p").await;
    assert_eq!(p["enableAutoScale"], false);
    for gone in ["autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun"] {
        assert!(p.get(gone).is_none(), "{gone}: {p}");
    }
    assert_eq!(p["eTag"].as_str(), r.header("etag").as_deref());
    for (op, code) in [("enableautoscale", 404), ("disableautoscale", 404), ("evaluateautoscale", 404)] {
        let e = svc.post(&format!("/pools/none/{op}")).json(json!({"autoScaleFormula": "$TargetDedicatedNodes=1"})).send().await;
        e.expect_status(code);
        assert_eq!(e.json()["code"], "PoolNotFound");
    }
}

#[tokio::test]
async fn the_formula_is_evaluated_every_interval_of_the_service_clock() {
    let svc = Service::start_with(&["--clock-control"]).await;
    let formula = "$TargetDedicatedNodes = min(2, $PendingTasks); $NodeDeallocationOption = taskcompletion;";
    svc.post("/pools").json(autoscale_pool("p", formula, Some("PT5M"))).send().await.expect_status(201);
    svc.add_job("j", "p", json!({})).await;
    for t in ["a", "b", "c"] {
        svc.add_task("j", t, "/bin/sh -c 'sleep 1'", json!({})).await;
    }
    svc.advance_clock("PT4M").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(pool_nodes(&svc, "p").await, 0, "not before the interval");
    svc.advance_clock("PT1M").await;
    wait_nodes(&svc, "p", 2).await;
    for t in ["a", "b", "c"] {
        svc.wait_task_completed("j", t, Duration::from_secs(30)).await;
    }
    svc.advance_clock("PT5M").await;
    wait_nodes(&svc, "p", 0).await;
    let p = svc.get_json("/pools/p").await;
    assert!(p["autoScaleRun"]["results"].as_str().unwrap().starts_with("$TargetDedicatedNodes=0;"), "{p}");
}

#[tokio::test]
async fn a_development_option_shortens_the_shortest_interval() {
    let svc = Service::start_with(&["--min-autoscale-interval", "PT1S"]).await;
    svc.post("/pools").json(autoscale_pool("p", "$TargetDedicatedNodes = 0;", Some("PT1S"))).send().await.expect_status(201);
    let first = loop {
        if let Some(t) = svc.get_json("/pools/p").await["autoScaleRun"]["timestamp"].as_str() {
            break t.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = svc.get_json("/pools/p").await["autoScaleRun"]["timestamp"].as_str().unwrap().to_string();
    assert!(later > first, "evaluated again: {first} then {later}");
    let e = svc.post("/pools").json(autoscale_pool("q", "$TargetDedicatedNodes = 0;", Some("PT0.5S"))).send().await;
    e.expect_status(400);
}

#[tokio::test]
async fn an_autoscale_pool_cannot_be_resized() {
    let svc = Service::start().await;
    svc.post("/pools").json(autoscale_pool("p", "$TargetDedicatedNodes = 0;", None)).send().await.expect_status(201);
    // "You cannot resize Pools which are configured for automatic scaling" (Pool_Resize): 409.
    let r = svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 3})).send().await;
    r.expect_error(409, "OperationInvalidForCurrentState");
    assert_eq!(svc.get_json("/pools/p").await["targetDedicatedNodes"], 0);
    // Once autoscale is disabled, it can.
    svc.post("/pools/p/disableautoscale").send().await.expect_status(200);
    svc.post("/pools/p/resize").json(json!({"targetDedicatedNodes": 1})).send().await.expect_status(202);
}
