//! Property test: a random `$filter` answered by the service (push-down into the store's
//! indexed query, then evaluation, across pages) returns exactly the tasks the same filter
//! selects when evaluated in memory over the unfiltered list.

mod common;

use common::*;
use openbatch::odata::{eval, parse, CmpOp, Filter, Literal};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

const IDS: &[&str] = &["a1", "a2", "A3", "b1", "b22", "c_1", "c-2", "d9", "ok", "zz"];

fn op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le)]
}

fn term(times: Vec<chrono::DateTime<chrono::Utc>>) -> impl Strategy<Value = Filter> {
    let n = times.len();
    prop_oneof![
        // Around the tasks' own creation times, to the tick and below (exact ties included).
        (op(), 0..n, prop::sample::select(vec![0i64, 0, 0, 0, 1, -1, 2, -3]), prop::bool::weighted(0.2)).prop_map(
            move |(o, i, delta, nanos)| {
                let mut t = times[i] + chrono::Duration::microseconds(delta * 50);
                if nanos {
                    t += chrono::Duration::nanoseconds(37);
                }
                Filter::cmp("creationTime", o, Literal::DateTime(t))
            }
        ),
        (op(), prop::sample::select(IDS.to_vec())).prop_map(|(o, v)| Filter::cmp("id", o, Literal::Str(v.to_ascii_uppercase()))),
        prop::sample::select(vec!["a", "B", "c_", "c-", "z", "q"]).prop_map(|p| Filter::starts_with("id", p)),
        prop::sample::select(vec!["active", "completed", "Running"]).prop_map(|s| Filter::cmp("state", CmpOp::Eq, Literal::Str(s.into()))),
        prop::sample::select(vec!["success", "failure"]).prop_map(|r| Filter::cmp(
            "executionInfo/result",
            CmpOp::Eq,
            Literal::Str(r.into())
        )),
        (op(), 0i64..4).prop_map(|(o, n)| Filter::cmp("executionInfo/exitCode", o, Literal::Int(n))),
    ]
}

fn filter(times: Vec<chrono::DateTime<chrono::Utc>>) -> impl Strategy<Value = Filter> {
    term(times).prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::or(a, b)),
            inner.prop_map(Filter::not),
        ]
    })
}

fn list_all(svc: &Service, rt: &tokio::runtime::Runtime, query: &str) -> Vec<String> {
    rt.block_on(async {
        let mut out = Vec::new();
        let mut url = format!("{}/jobs/j/tasks?api-version={API_VERSION}&maxresults=2{query}", svc.base);
        loop {
            let r = svc.req_url(reqwest::Method::GET, &url).send().await;
            r.expect_status(200);
            let page = r.json();
            out.extend(page["value"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
            match page["odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => break out,
            }
        }
    })
}

#[test]
fn store_filtering_agrees_with_evaluation_in_memory() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let svc = rt.block_on(async {
        let svc = Service::start().await;
        svc.add_pool("p", 1, json!({})).await;
        svc.wait_pool_idle("p", 1, secs(20)).await;
        svc.add_job("j", "p", json!({})).await;
        // Completed with various exit codes, one still active (terminated tasks complete too).
        for (i, id) in IDS.iter().enumerate() {
            let cmd = format!("/bin/sh -c \"exit {}\"", i % 3);
            svc.add_task("j", id, &cmd, json!({})).await;
        }
        for id in IDS {
            svc.wait_task_completed("j", id, secs(20)).await;
        }
        svc.add_pool("none", 0, json!({})).await;
        svc
    });
    let all: Vec<Value> = rt.block_on(async { svc.get_json("/jobs/j/tasks").await["value"].as_array().unwrap().clone() });
    assert_eq!(all.len(), IDS.len());
    let times: Vec<chrono::DateTime<chrono::Utc>> = all.iter().map(|t| ts(&t["creationTime"])).collect();
    // Exact ties at the boundaries of pushed-down time ranges.
    for t in &all {
        let (id, created) = (t["id"].as_str().unwrap(), t["creationTime"].as_str().unwrap());
        for (op, included) in [("le", true), ("ge", true), ("eq", true), ("lt", false), ("gt", false)] {
            let f = format!("creationTime {op} datetime'{created}'");
            let encoded: String =
                f.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
            let got = list_all(&svc, &rt, &format!("&$filter={encoded}"));
            assert_eq!(got.iter().any(|g| g == id), included, "{f} for {id}: {got:?}");
        }
    }
    let mut runner = TestRunner::new(Config { cases: 400, ..Config::default() });
    runner
        .run(&filter(times), |f| {
            let text = f.to_string();
            let reparsed = parse(&text);
            prop_assert_eq!(reparsed.as_ref(), Ok(&f));
            let expected: Vec<String> = all.iter().filter(|t| eval(&f, t)).map(|t| t["id"].as_str().unwrap().to_string()).collect();
            let encoded: String =
                text.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
            let got = list_all(&svc, &rt, &format!("&$filter={encoded}"));
            prop_assert_eq!(got, expected, "filter: {}", text);
            Ok(())
        })
        .unwrap();
}
