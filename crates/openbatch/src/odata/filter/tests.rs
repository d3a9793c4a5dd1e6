//! Tests of the `$filter` module: parser (every operator, literal, error position), `check`,
//! `eval`, `pushdown`, and property-based round-trip and push-down soundness.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::{json, Value};

fn p(s: &str) -> Filter {
    parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> FilterError {
    match parse(s) {
        Ok(f) => panic!("{s:?} parsed as {f:?}"),
        Err(e) => e,
    }
}

fn cmp(path: &str, op: CmpOp, v: Literal) -> Filter {
    Filter::cmp(path, op, v)
}

fn s(v: &str) -> Literal {
    Literal::Str(v.into())
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, sec: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, sec).unwrap()
}

// ----------------------------------------------------------------------------------- parser

#[test]
fn every_comparison_operator_any_case() {
    for (kw, op) in [("eq", CmpOp::Eq), ("ne", CmpOp::Ne), ("gt", CmpOp::Gt), ("ge", CmpOp::Ge), ("lt", CmpOp::Lt), ("le", CmpOp::Le)] {
        assert_eq!(p(&format!("executionInfo/exitCode {kw} 3")), cmp("executionInfo/exitCode", op, Literal::Int(3)));
        let upper = kw.to_uppercase();
        assert_eq!(p(&format!("id {upper} 'x'")), cmp("id", op, s("x")));
    }
}

#[test]
fn literals() {
    assert_eq!(p("state eq 'active'"), cmp("state", CmpOp::Eq, s("active")));
    assert_eq!(p("id eq 'it''s'"), cmp("id", CmpOp::Eq, s("it's")));
    assert_eq!(p("id eq ''''"), cmp("id", CmpOp::Eq, s("'")));
    assert_eq!(p("id eq ''"), cmp("id", CmpOp::Eq, s("")));
    assert_eq!(p("id eq 'a b  (c) and or'"), cmp("id", CmpOp::Eq, s("a b  (c) and or")));
    assert_eq!(p("id eq 'ünï'"), cmp("id", CmpOp::Eq, s("ünï")));
    assert_eq!(p("x eq 0"), cmp("x", CmpOp::Eq, Literal::Int(0)));
    assert_eq!(p("x eq -1"), cmp("x", CmpOp::Eq, Literal::Int(-1)));
    assert_eq!(p("x eq 9223372036854775807"), cmp("x", CmpOp::Eq, Literal::Int(i64::MAX)));
    assert_eq!(p("x eq -9223372036854775808"), cmp("x", CmpOp::Eq, Literal::Int(i64::MIN)));
    assert_eq!(p("enableAutoScale eq true"), cmp("enableAutoScale", CmpOp::Eq, Literal::Bool(true)));
    assert_eq!(p("enableAutoScale ne FALSE"), cmp("enableAutoScale", CmpOp::Ne, Literal::Bool(false)));
    assert_eq!(p("executionInfo/endTime eq null"), cmp("executionInfo/endTime", CmpOp::Eq, Literal::Null));
    assert_eq!(p("executionInfo/endTime ne Null"), cmp("executionInfo/endTime", CmpOp::Ne, Literal::Null));
}

#[test]
fn datetime_literals() {
    let t = Literal::DateTime(utc(2011, 5, 8, 8, 49, 37));
    // The docs' two forms, with the docs' `DateTime` spelling.
    assert_eq!(p("creationTime gt DateTime'2011-05-08T08:49:37Z'"), cmp("creationTime", CmpOp::Gt, t.clone()));
    assert_eq!(p("creationTime gt DateTime'Sun, 08 May 2011 08:49:37 GMT'"), cmp("creationTime", CmpOp::Gt, t.clone()));
    // Lower case, no zone (taken as UTC), an offset, .NET's 7 fractional digits.
    assert_eq!(p("creationTime gt datetime'2011-05-08T08:49:37'"), cmp("creationTime", CmpOp::Gt, t.clone()));
    assert_eq!(p("creationTime gt datetime'2011-05-08T10:49:37+02:00'"), cmp("creationTime", CmpOp::Gt, t.clone()));
    let frac = utc(2022, 1, 13, 7, 24, 33) + chrono::Duration::nanoseconds(148_100);
    assert_eq!(
        p("stateTransitionTime ge DATETIME'2022-01-13T07:24:33.0001481Z'"),
        cmp("stateTransitionTime", CmpOp::Ge, Literal::DateTime(frac))
    );
    assert_eq!(
        p("stateTransitionTime ge datetime'2022-01-13T07:24:33.0001481'"),
        cmp("stateTransitionTime", CmpOp::Ge, Literal::DateTime(frac))
    );
}

#[test]
fn boolean_structure_and_precedence() {
    let a = || cmp("a", CmpOp::Eq, Literal::Int(1));
    let b = || cmp("b", CmpOp::Eq, Literal::Int(2));
    let c = || cmp("c", CmpOp::Eq, Literal::Int(3));
    // and > or
    assert_eq!(p("a eq 1 or b eq 2 and c eq 3"), Filter::or(a(), Filter::and(b(), c())));
    assert_eq!(p("a eq 1 and b eq 2 or c eq 3"), Filter::or(Filter::and(a(), b()), c()));
    // not > and
    assert_eq!(p("not a eq 1 and b eq 2"), Filter::and(Filter::not(a()), b()));
    assert_eq!(p("not (a eq 1 and b eq 2)"), Filter::not(Filter::and(a(), b())));
    assert_eq!(p("not(a eq 1)"), Filter::not(a()));
    assert_eq!(p("not not a eq 1"), Filter::not(Filter::not(a())));
    // left associativity, parentheses
    assert_eq!(p("a eq 1 and b eq 2 and c eq 3"), Filter::and(Filter::and(a(), b()), c()));
    assert_eq!(p("a eq 1 and (b eq 2 and c eq 3)"), Filter::and(a(), Filter::and(b(), c())));
    assert_eq!(p("(a eq 1 or b eq 2) and c eq 3"), Filter::and(Filter::or(a(), b()), c()));
    assert_eq!(p("((((a eq 1))))"), a());
    // keywords in any case, free whitespace
    assert_eq!(p(" \t(a eq 1)\nOR\r\nNOT b eq 2  AnD c eq 3 "), Filter::or(a(), Filter::and(Filter::not(b()), c())));
    assert_eq!(p("(a eq 1)and(b eq 2)"), Filter::and(a(), b()));
    // names that start with keywords are names
    assert_eq!(p("notes eq 1"), cmp("notes", CmpOp::Eq, Literal::Int(1)));
    assert_eq!(p("order eq 1 or andy eq 2"), Filter::or(cmp("order", CmpOp::Eq, Literal::Int(1)), cmp("andy", CmpOp::Eq, Literal::Int(2))));
}

#[test]
fn startswith_forms() {
    let sw = || Filter::starts_with("id", "renderTask");
    assert_eq!(p("startswith(id,'renderTask')"), sw());
    assert_eq!(p("startswith( id , 'renderTask' )"), sw());
    assert_eq!(p("StartsWith(id, 'renderTask')"), sw());
    assert_eq!(p("startswith (id, 'renderTask')"), sw());
    assert_eq!(p("startswith(id,'renderTask') eq true"), sw());
    assert_eq!(p("startswith(id,'renderTask') ne false"), sw());
    assert_eq!(p("startswith(id,'renderTask') eq false"), Filter::not(sw()));
    assert_eq!(p("startswith(id,'renderTask') ne true"), Filter::not(sw()));
    // The docs' example, and as a term of and/or/not.
    assert_eq!(p("(state eq 'running') and startswith(id, 'renderTask')"), Filter::and(cmp("state", CmpOp::Eq, s("running")), sw()));
    assert_eq!(
        p("not startswith(id,'renderTask') or startswith(id,'renderTask') eq true and id eq 'x'"),
        Filter::or(Filter::not(sw()), Filter::and(sw(), cmp("id", CmpOp::Eq, s("x"))))
    );
    assert_eq!(p("startswith(executionInfo/poolId,'p')"), Filter::starts_with("executionInfo/poolId", "p"));
    // `startswith` is a property name when not followed by `(`.
    assert_eq!(p("startswith eq 'x'"), cmp("startswith", CmpOp::Eq, s("x")));
}

#[test]
fn doc_examples_parse() {
    for f in [
        "state eq 'active'",
        "(state eq 'running') and startswith(id, 'renderTask')",
        "(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)",
        "startswith(id, 'test')",
        "creationTime gt DateTime'2011-05-08T08:49:37Z'",
        "creationTime gt DateTime'Sun, 08 May 2011 08:49:37 GMT'",
        "executionInfo/endTime ge DateTime'2023-01-01T00:00:00.0000000Z' and state eq 'Completed' and executionInfo/result eq 'Success'",
        "executionInfo/exitCode ne 0 and state eq 'Completed'",
        "stats/wallClockTime ne null",
    ] {
        p(f);
    }
}

#[test]
fn nested_paths() {
    assert_eq!(
        p("executionInfo/result eq 'success'"),
        Filter::Compare { path: vec!["executionInfo".into(), "result".into()], op: CmpOp::Eq, value: s("success") }
    );
    assert_eq!(p("stats/resourceStats/avgCPUPercentage ge 1").to_string(), "stats/resourceStats/avgCPUPercentage ge 1");
}

#[test]
fn error_positions_and_messages() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "expected a condition"),
        ("   ", 3, "found the end of the filter"),
        ("state equals 'a'", 6, "expected a comparison operator (eq, ne, gt, ge, lt, le), found `equals`"),
        ("state eq", 8, "expected a value"),
        ("state eq active", 9, "expected a value ('text', an integer, true, false, null or datetime'…'), found `active`"),
        ("state eq 'active", 16, "expected a closing `'`, found the end of the filter"),
        ("state eq 'a' xor id eq 'b'", 13, "expected `and`, `or` or the end of the filter, found `xor`"),
        ("(state eq 'a'", 13, "expected `and`, `or` or `)`"),
        ("(state eq 'a' id eq 'b')", 14, "expected `and`, `or` or `)`, found `id`"),
        ("state eq 'a' and", 16, "expected a condition"),
        ("state eq 'a' and or", 17, "expected a condition (a property name, `not`, `startswith(` or `(`), found `or`"),
        ("not", 3, "expected a condition"),
        ("'a' eq state", 0, "expected a condition"),
        ("x eq 99999999999999999999", 5, "integer literal outside the 64-bit range"),
        ("x eq 12abc", 5, "expected a value"),
        ("x eq 1.5", 5, "expected a value"),
        ("creationTime gt datetime'yesterday'", 16, "invalid datetime literal: `yesterday` is not an RFC 3339 or RFC 1123 date-time"),
        ("creationTime gt datetime'2022-13-01T00:00:00Z'", 16, "invalid datetime literal"),
        ("executionInfo/ eq 1", 14, "expected a property name after `/`"),
        ("startswith(id)", 13, "expected `,`, found `)`"),
        ("startswith(id, 5)", 15, "expected a string literal in single quotes, found `5`"),
        ("startswith('x', id)", 11, "expected a property name"),
        ("startswith(id,'x'", 17, "expected `)`, found the end of the filter"),
        ("startswith(id,'x') gt true", 19, "startswith(…) can only be compared with `eq` or `ne`"),
        ("startswith(id,'x') eq 'yes'", 22, "expected `true` or `false`"),
        ("state eq true1", 9, "expected a value"),
        ("id eq 'a')", 9, "expected `and`, `or` or the end of the filter, found `)`"),
        ("id eq 'a' andid eq 'b'", 10, "found `andid`"),
    ];
    for (input, pos, msg) in cases {
        let e = err(input);
        assert_eq!(e.position, *pos, "{input:?}: {e}");
        assert!(e.message.contains(msg), "{input:?}: {:?} lacks {msg:?}", e.message);
    }
}

#[test]
fn nesting_and_size_limits() {
    let deep_ok = format!("{}a eq 1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
    p(&deep_ok);
    let too_deep = format!("{}a eq 1{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
    let e = err(&too_deep);
    assert!(e.message.contains("nested too deeply"), "{e}");
    assert_eq!(e.position, MAX_NESTING + 1);
    let nots = format!("{}a eq 1", "not ".repeat(MAX_NESTING + 1));
    assert!(err(&nots).message.contains("nested too deeply"));

    let many = vec!["id eq 'x'"; MAX_CONDITIONS].join(" or ");
    p(&many);
    let too_many = format!("{many} or id eq 'y'");
    let e = err(&too_many);
    assert!(e.message.contains("more than 1000 conditions"), "{e}");
    assert_eq!(e.position, many.len() + 4);
}

#[test]
fn display_is_canonical_and_parses_back() {
    let cases = [
        ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
        ("(a eq 1 or b eq 2) and c eq 3", "(a eq 1 or b eq 2) and c eq 3"),
        ("a eq 1 and (b eq 2 and c eq 3)", "a eq 1 and (b eq 2 and c eq 3)"),
        ("a eq 1 or (b eq 2 or c eq 3)", "a eq 1 or (b eq 2 or c eq 3)"),
        ("NOT (a EQ 1 OR b eq 2)", "not (a eq 1 or b eq 2)"),
        ("startswith( id ,'x''y') eq false", "not startswith(id,'x''y')"),
        ("t gt DateTime'Sun, 08 May 2011 08:49:37 GMT'", "t gt datetime'2011-05-08T08:49:37Z'"),
        ("t gt datetime'2022-01-13T07:24:33.0001481Z'", "t gt datetime'2022-01-13T07:24:33.000148100Z'"),
        ("x eq -5 and y eq NULL and z ne TRUE", "x eq -5 and y eq null and z ne true"),
    ];
    for (input, shown) in cases {
        let f = p(input);
        assert_eq!(f.to_string(), shown);
        assert_eq!(p(shown), f);
    }
}

// ------------------------------------------------------------------------------------ check

#[test]
fn check_accepts_documented_filters() {
    let ok: &[(ListKind, &str)] = &[
        (ListKind::Tasks, "(state eq 'running') and startswith(id, 'renderTask')"),
        (ListKind::Tasks, "(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)"),
        (ListKind::Tasks, "executionInfo/result eq 'failure' and executionInfo/retryCount ge 1"),
        (ListKind::Tasks, "executionInfo/requeueCount gt 0 or lastModifiedTime gt datetime'2022-01-01T00:00:00Z'"),
        (ListKind::Tasks, "executionInfo/endTime eq null"),
        (ListKind::Pools, "startswith(id, 'test') and state eq 'active' and allocationState eq 'steady'"),
        (ListKind::Pools, "vmSize eq 'standard_d2s_v3' and enableAutoScale eq false and enableInterNodeCommunication ne true"),
        (ListKind::Pools, "creationTime ge datetime'2022-01-01T00:00:00Z' and id lt 'z'"),
        (ListKind::Jobs, "startswith(executionInfo/poolId, 'p') and state ne 'completed'"),
        (ListKind::JobsOfSchedule, "executionInfo/poolId eq 'p1' and stateTransitionTime lt datetime'2022-01-01T00:00:00Z'"),
        (ListKind::JobSchedules, "schedule/doNotRunUntil gt datetime'2022-01-01T00:00:00Z'"),
        (ListKind::Nodes, "state eq 'idle' or startTaskInfo/exitCode ne 0"),
        (ListKind::Nodes, "startTaskInfo/state eq 'completed'"),
        (ListKind::Certificates, "state eq 'deletefailed'"),
        (ListKind::Files, "startswith(name, 'wd/')"),
        (ListKind::PoolNodeCounts, "poolId eq 'p1'"),
        (ListKind::PoolUsageMetrics, "startswith(poolId, 'p') or poolId ge 'q'"),
        (ListKind::PreparationReleaseStatus, "nodeId eq 'n1' and jobReleaseTaskExecutionInfo/exitCode ne 0"),
        (ListKind::SupportedImages, "osType eq 'linux' and verificationType eq 'verified' and nodeAgentSKUId ne 'x'"),
        (ListKind::SupportedImages, "imageReference/publisher eq 'canonical'"),
    ];
    for (kind, f) in ok {
        check(&p(f), *kind).unwrap_or_else(|e| panic!("{kind:?} {f:?}: {e}"));
        parse_for(f, *kind).unwrap_or_else(|e| panic!("{kind:?} {f:?}: {e}"));
    }
}

#[test]
fn check_refuses_properties_operators_and_types() {
    let bad: &[(ListKind, &str, &str)] = &[
        (ListKind::Pools, "displayName eq 'x'", "`displayName` cannot be used in a $filter when listing pools"),
        (ListKind::Tasks, "vmSize eq 'x'", "cannot be used"),
        (ListKind::Nodes, "id eq 'n1'", "cannot be used"),
        (ListKind::Files, "name eq 'x'", "`name` does not allow `eq`; it allows: startswith"),
        (ListKind::Tasks, "state gt 'active'", "`state` does not allow `gt`; it allows: eq, ne"),
        (ListKind::Pools, "allocationState ne 'steady'", "does not allow `ne`"),
        (ListKind::PoolNodeCounts, "poolId ne 'p'", "does not allow `ne`"),
        (ListKind::PoolNodeCounts, "poolId ne null", "does not allow `ne`"),
        (ListKind::PoolUsageMetrics, "poolId ne 'p'", "does not allow `ne`"),
        (ListKind::Pools, "startswith(state, 'a')", "does not allow `startswith`"),
        (
            ListKind::Tasks,
            "executionInfo/exitCode eq 'abc'",
            "`executionInfo/exitCode` is compared with an integer, e.g. 0, not a string (`'abc'`)",
        ),
        (ListKind::Tasks, "state eq 1", "not an integer"),
        (ListKind::Tasks, "creationTime gt '2022-01-01T00:00:00Z'", "compared with a date-time"),
        (ListKind::Pools, "enableAutoScale eq 'true'", "compared with true or false"),
        (ListKind::Pools, "id eq true", "not a boolean"),
        (ListKind::Pools, "state eq 'a' and Id eq 'x'", "`Id` cannot be used"),
    ];
    for (kind, f, msg) in bad {
        let e = check(&p(f), *kind).expect_err(f);
        assert!(e.message.contains(msg), "{f:?}: {:?} lacks {msg:?}", e.message);
    }
}

#[test]
fn check_positions() {
    // check: offsets into the Display form; parse_for: offsets into the input.
    let input = "  state eq 'active'  and (  startswith(id,'x') or  exitCode eq 1 )";
    let f = p(input);
    let e = check(&f, ListKind::Tasks).unwrap_err();
    let shown = f.to_string();
    assert_eq!(&shown[e.position..], "exitCode eq 1)");
    let e = parse_for(input, ListKind::Tasks).unwrap_err();
    assert_eq!(&input[e.position..], "exitCode eq 1 )");
    assert!(e.message.contains("`exitCode` cannot be used"));
    let e = parse_for("startswith(id,'x') eq false and vmSize eq 'a'", ListKind::Tasks).unwrap_err();
    assert_eq!(e.position, 32);
}

#[test]
fn tables_are_consistent() {
    for kind in ListKind::ALL {
        let props = kind.properties();
        assert!(!props.is_empty());
        for (i, a) in props.iter().enumerate() {
            assert!(props[i + 1..].iter().all(|b| b.path != a.path), "{kind:?}: {} twice", a.path);
            assert!(!a.ops.is_empty());
            if a.ops.contains(&PropOp::StartsWith) {
                assert_eq!(a.ty, PropType::String, "{kind:?} {}", a.path);
            }
            // Every row's path parses as a path.
            p(&format!("{} eq null", a.path));
        }
    }
}

#[test]
fn batch_error_shape() {
    let e = err("state eq");
    let b = e.to_batch_error("state eq");
    assert_eq!(b.code, "InvalidQueryParameterValue");
    assert_eq!(b.status.as_u16(), 400);
    assert!(b.values.contains(&("QueryParameterName".to_string(), "$filter".to_string())));
    assert!(b.values.iter().any(|(k, v)| k == "Reason" && v.contains("position 8")));
}

// ------------------------------------------------------------------------------------- eval

fn task() -> Value {
    json!({
        "id": "renderTask-7",
        "state": "completed",
        "creationTime": "2022-01-13T07:24:33.0001481Z",
        "lastModified": "2022-01-14T00:00:00Z",
        "executionInfo": {
            "result": "failure",
            "exitCode": 3,
            "retryCount": 1,
            "requeueCount": 0,
            "startTime": "2022-01-13T08:00:00Z",
            "endTime": "2022-01-13T09:00:00Z"
        },
        "stats": { "readIOps": "12", "writeIOps": "0", "wallClockTime": "PT1H" },
        "multiInstanceSettings": null
    })
}

fn ev(f: &str, r: &Value) -> bool {
    eval(&p(f), r)
}

#[test]
fn eval_strings_and_enums_case_insensitively() {
    let t = task();
    assert!(ev("state eq 'completed'", &t));
    assert!(ev("state eq 'Completed'", &t));
    assert!(ev("state eq 'COMPLETED' and executionInfo/result eq 'Failure'", &t));
    assert!(!ev("state eq 'active'", &t));
    assert!(ev("state ne 'active'", &t));
    assert!(ev("id eq 'RENDERTASK-7'", &t));
    assert!(ev("startswith(id, 'render')", &t));
    assert!(ev("startswith(id, 'RENDER')", &t));
    assert!(ev("startswith(id, '')", &t));
    assert!(!ev("startswith(id, 'task')", &t));
    assert!(ev("id gt 'RENDERTASK-1' and id lt 'renderTask-8' and id ge 'renderTask-7' and id le 'RENDERTASK-7'", &t));
    assert!(!ev("id gt 'renderTask-7'", &t));
}

#[test]
fn eval_numbers_and_counters() {
    let t = task();
    assert!(ev("executionInfo/exitCode eq 3", &t));
    assert!(ev("(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)", &t));
    assert!(ev("executionInfo/exitCode ge 3 and executionInfo/exitCode le 3", &t));
    assert!(!ev("executionInfo/exitCode ne 3", &t));
    assert!(ev("executionInfo/retryCount ge 1 and executionInfo/requeueCount eq 0", &t));
    // 64-bit counters written as JSON strings compare numerically.
    assert!(ev("stats/readIOps gt 9", &t));
    assert!(ev("stats/readIOps eq 12 and stats/writeIOps eq 0", &t));
    assert!(ev("stats/readIOps gt -1", &t));
    let big = json!({"n": u64::MAX, "s": "18446744073709551615", "f": 2.5});
    assert!(ev("n gt 9223372036854775807", &big));
    assert!(ev("s gt 9223372036854775807", &big));
    assert!(ev("f gt 2 and f lt 3", &big));
    // A string literal against a number, a number against a string: false, `ne` included.
    assert!(!ev("executionInfo/exitCode eq '3'", &t));
    assert!(!ev("executionInfo/exitCode ne '3'", &t));
    assert!(!ev("state eq 1", &t));
    assert!(!ev("state ne 1", &t));
}

#[test]
fn eval_datetimes_and_booleans() {
    let t = task();
    assert!(ev("creationTime gt datetime'2022-01-13T07:24:33Z'", &t));
    assert!(ev("creationTime lt datetime'2022-01-13T07:24:33.0002Z'", &t));
    assert!(ev("creationTime eq datetime'2022-01-13T07:24:33.0001481Z'", &t));
    assert!(ev("creationTime eq datetime'2022-01-13T09:24:33.0001481+02:00'", &t));
    assert!(ev("executionInfo/endTime ge DateTime'Thu, 13 Jan 2022 09:00:00 GMT'", &t));
    // The docs' `lastModifiedTime` reads the task's `lastModified`.
    assert!(ev("lastModifiedTime eq datetime'2022-01-14T00:00:00Z'", &t));
    assert!(ev("lastModified eq datetime'2022-01-14T00:00:00Z'", &t));
    let pool = json!({"id": "p", "enableAutoScale": false, "enableInterNodeCommunication": true});
    assert!(ev("enableAutoScale eq false and enableInterNodeCommunication eq true", &pool));
    assert!(ev("enableAutoScale ne true", &pool));
    assert!(!ev("enableAutoScale eq true", &pool));
}

#[test]
fn eval_missing_is_null() {
    let active = json!({"id": "t1", "state": "active", "executionInfo": {"retryCount": 0}});
    assert!(ev("executionInfo/result eq null", &active));
    assert!(!ev("executionInfo/result ne null", &active));
    assert!(!ev("executionInfo/result eq 'success'", &active));
    assert!(!ev("executionInfo/result ne 'success'", &active));
    assert!(ev("not (executionInfo/result eq 'success')", &active));
    assert!(!ev("executionInfo/exitCode lt 0 or executionInfo/exitCode ge 0", &active));
    assert!(!ev("startswith(nodeInfo/poolId, '')", &active));
    assert!(ev("executionInfo/retryCount ne null", &active));
    // Through a non-object, and an explicit JSON null.
    assert!(ev("state/inner eq null", &active));
    assert!(ev("multiInstanceSettings eq null", &task()));
    assert!(ev("multiInstanceSettings/numberOfInstances eq null", &task()));
    assert!(!ev("executionInfo eq null", &active));
}

#[test]
fn eval_boolean_operators() {
    let t = task();
    assert!(ev("state eq 'active' or executionInfo/exitCode eq 3", &t));
    assert!(!ev("state eq 'active' and executionInfo/exitCode eq 3", &t));
    assert!(ev("not state eq 'active'", &t));
    assert!(ev("not startswith(id, 'x') and startswith(id, 'r') eq true", &t));
    assert!(!ev("startswith(id, 'r') eq false", &t));
}

// --------------------------------------------------------------------------------- pushdown

#[test]
fn pushdown_shapes() {
    let pd = pushdown(&p("state eq 'Active' and startswith(id, 'render') and executionInfo/result eq 'success'"));
    assert_eq!(pd.states, Some(vec!["active".to_string()]));
    assert_eq!(pd.results, Some(vec!["success".to_string()]));
    assert_eq!(pd.ids, Some(IdCond { prefix: Some("render".into()), ..Default::default() }));

    let pd = pushdown(&p("(state eq 'running' or state eq 'preparing' or State eq 'x') and id eq 'T1'"));
    assert_eq!(pd.states, None, "a disjunction mentioning another path is not pushed");
    let pd = pushdown(&p("(state eq 'running' or state eq 'Preparing' or state eq 'running') and id eq 'T1'"));
    assert_eq!(pd.states, Some(vec!["preparing".to_string(), "running".to_string()]));
    assert_eq!(pd.ids, Some(IdCond { eq: Some("T1".into()), ..Default::default() }));

    let pd = pushdown(&p("id ge 'a' and id gt 'b' and id lt 'm' and id le 'M' and id gt 'A'"));
    let ids = pd.ids.unwrap();
    assert_eq!(ids.lower, Some(IdBound { value: "b".into(), inclusive: false }));
    assert_eq!(ids.upper, Some(IdBound { value: "m".into(), inclusive: false }));

    // Intersections, contradictions.
    let pd = pushdown(&p("(state eq 'a' or state eq 'b') and (state eq 'b' or state eq 'c')"));
    assert_eq!(pd.states, Some(vec!["b".to_string()]));
    let pd = pushdown(&p("state eq 'a' and state eq 'b'"));
    assert_eq!(pd.states, Some(vec![]));
    assert!(!pd.admits("x", Some("a"), None));

    // Not pushed: under or/not, ne, other types, other paths.
    for f in [
        "state eq 'a' or id eq 'x'",
        "not state eq 'a'",
        "not (state eq 'a' or state eq 'b')",
        "state ne 'a'",
        "id ne 'a'",
        "state eq null",
        "id eq 5",
        "state eq 1",
        "executionInfo/exitCode eq 0",
        "startswith(name, 'x')",
        "startswith(id, 'x') eq false",
        "id eq 'a' or id eq 'b'",
    ] {
        assert!(pushdown(&p(f)).is_empty(), "{f}");
    }
    // A pure state disjunction inside a top-level and is pushed; under an or it is not.
    let pd = pushdown(&p("id eq 'x' and (state eq 'a' or state eq 'b')"));
    assert_eq!(pd.states, Some(vec!["a".to_string(), "b".to_string()]));
    assert!(pushdown(&p("id eq 'x' or (state eq 'a' or state eq 'b')")).is_empty());
    // A top-level pure disjunction is pushed.
    assert_eq!(pushdown(&p("state eq 'a' or state eq 'b'")).states, Some(vec!["a".into(), "b".into()]));
}

#[test]
fn pushdown_admits() {
    let pd = pushdown(&p("startswith(id,'Ab') and id lt 'ac' and (state eq 'Running' or state eq 'waitingForStartTask') and executionInfo/result eq 'success'"));
    assert!(pd.admits("abz", Some("running"), Some("Success")));
    assert!(pd.admits("ABZ", Some("WaitingForStartTask"), Some("success")));
    assert!(!pd.admits("ac", Some("running"), Some("success")));
    assert!(!pd.admits("abz", Some("idle"), Some("success")));
    assert!(!pd.admits("abz", None, Some("success")));
    assert!(!pd.admits("abz", Some("running"), None));
    assert!(Pushdown::default().admits("anything", None, None));
    assert_eq!(IdCond::like_pattern("a_b%c\\d"), "a\\_b\\%c\\\\d%");
}

// ---------------------------------------------------------------------------- property tests

/// Property paths with their literal generators (types chosen to match and to mismatch).
fn arb_path() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        Just("id"),
        Just("state"),
        Just("executionInfo/result"),
        Just("executionInfo/exitCode"),
        Just("creationTime"),
        Just("enableAutoScale"),
        Just("stats/readIOps"),
        Just("missing/prop"),
    ]
    .prop_map(|s| s.split('/').map(str::to_string).collect())
}

/// Small, case-varied strings so that comparisons with resource values often hit.
fn arb_small_str() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_string()),
        Just("A".to_string()),
        Just("ab".to_string()),
        Just("aB1".to_string()),
        Just("b".to_string()),
        Just("active".to_string()),
        Just("Running".to_string()),
        Just("completed".to_string()),
        Just("success".to_string()),
        Just("FAILURE".to_string()),
        "[a-cA-C0-9_-]{0,3}",
    ]
}

fn arb_datetime() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_000_000_000i64..250_000_000_000i64, 0u32..1_000_000_000).prop_map(|(s, n)| Utc.timestamp_opt(s, n).unwrap())
}

fn arb_literal(small: bool) -> BoxedStrategy<Literal> {
    let strs: BoxedStrategy<String> = if small { arb_small_str().boxed() } else { any::<String>().boxed() };
    let ints: BoxedStrategy<i64> = if small { (-3i64..4).boxed() } else { any::<i64>().boxed() };
    prop_oneof![
        4 => strs.prop_map(Literal::Str),
        2 => ints.prop_map(Literal::Int),
        1 => any::<bool>().prop_map(Literal::Bool),
        1 => arb_datetime().prop_map(Literal::DateTime),
        1 => Just(Literal::Null),
    ]
    .boxed()
}

fn arb_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le)]
}

fn arb_filter(small: bool) -> impl Strategy<Value = Filter> {
    let prefixes: BoxedStrategy<String> = if small { arb_small_str().boxed() } else { any::<String>().boxed() };
    let leaf = prop_oneof![
        4 => (arb_path(), arb_op(), arb_literal(small)).prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        1 => (arb_path(), prefixes).prop_map(|(path, prefix)| Filter::StartsWith { path, prefix }),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::and(l, r)),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::or(l, r)),
            inner.prop_map(Filter::not),
        ]
    })
}

/// A resource with id/state and, sometimes, an executionInfo with result/exitCode.
fn arb_resource() -> impl Strategy<Value = Value> {
    (
        arb_small_str(),
        proptest::option::of(arb_small_str()),
        proptest::option::of(proptest::option::of(arb_small_str())),
        proptest::option::of(prop_oneof![(-3i64..4).prop_map(Value::from), (-3i64..4).prop_map(|n| Value::from(n.to_string()))]),
        proptest::option::of(arb_datetime()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(id, state, result, exit, created, autoscale)| {
            let mut r = serde_json::Map::new();
            r.insert("id".into(), id.into());
            if let Some(s) = state {
                r.insert("state".into(), s.into());
            }
            if result.is_some() || exit.is_some() {
                let mut ei = serde_json::Map::new();
                if let Some(res) = result {
                    ei.insert("result".into(), res.map_or(Value::Null, Value::from));
                }
                if let Some(e) = exit {
                    ei.insert("exitCode".into(), e);
                }
                r.insert("executionInfo".into(), ei.into());
            }
            if let Some(t) = created {
                r.insert("creationTime".into(), crate::model::time::format_timestamp(&t).into());
            }
            if let Some(b) = autoscale {
                r.insert("enableAutoScale".into(), b.into());
            }
            Value::Object(r)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// `parse(display(f)) == f` for arbitrary trees, strings (quotes, unicode), integers and
    /// date-times.
    #[test]
    fn display_round_trips(f in arb_filter(false)) {
        let text = f.to_string();
        let back = parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&f), "text: {}", text);
    }

    /// Whitespace and keyword case do not matter.
    #[test]
    fn respelled_text_parses_the_same(f in arb_filter(true)) {
        let text = f.to_string()
            .replace(" and ", "\n AND\t")
            .replace(" or ", "  Or  ")
            .replace("not ", "NOT ")
            .replace("startswith(", "StartsWith ( ")
            .replace(" eq ", " EQ ");
        prop_assert_eq!(parse(&format!("  {text}  ")), Ok(f), "text: {}", text);
    }

    /// Push-down is sound: whatever `eval` accepts, `Pushdown::admits` accepts too.
    #[test]
    fn pushdown_is_sound(f in arb_filter(true), r in arb_resource()) {
        if eval(&f, &r) {
            let pd = pushdown(&f);
            let id = r["id"].as_str().unwrap();
            let state = r.get("state").and_then(Value::as_str);
            let result = r.pointer("/executionInfo/result").and_then(Value::as_str);
            prop_assert!(pd.admits(id, state, result), "filter {} accepts {} but pushdown {:?} refuses it", f, r, pd);
        }
    }

    /// Parsing never panics on arbitrary text, and errors point inside it.
    #[test]
    fn parse_total(text in "[ a-zA-Z0-9'()/,=<>_-]{0,40}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.position <= text.len());
            prop_assert!(text.is_char_boundary(e.position));
        }
    }
}
