//! Tests of evaluation: every operator, type, function and sample method, the targets, the
//! results text, and the examples of Microsoft's autoscale documentation.

use super::types::{Metric, Metrics, Value as V, TICKS_PER_SECOND};
use super::*;
use chrono::{DateTime, Duration, Utc};

fn at(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The documentation's evaluation time: Thursday 2016-10-13 19:18:47.805 UTC.
fn doc_now() -> Timestamp {
    at("2016-10-13T19:18:47.805Z")
}

fn input(now: Timestamp, history: &History) -> Input<'_> {
    let current = history.latest_row().unwrap_or_default();
    Input { now, current, history, target_dedicated: 0.0, target_low_priority: 0.0, seed: 7 }
}

/// A history of one sample every 30 s over `minutes` up to `now`, each metric set by `f(i)`
/// (i = 0 for the oldest).
fn history(now: Timestamp, minutes: i64, f: impl Fn(usize) -> Vec<(Metric, f64)>) -> History {
    let mut h = History::new();
    let n = minutes * 2;
    for i in 0..=n {
        let mut m = Metrics::default();
        for (k, v) in f(i as usize) {
            m.set(k, v);
        }
        h.push(now - Duration::seconds(30 * (n - i)), m);
    }
    h
}

fn run_with(src: &str, inp: &Input) -> Run {
    evaluate(&parse(src).unwrap_or_else(|e| panic!("{src}: {e}")), inp)
}

fn run(src: &str) -> Run {
    let h = History::new();
    run_with(src, &input(doc_now(), &h))
}

/// The value of user variable `v` after `src` (a statement `v = …` inside it).
fn value(src: &str, v: &str) -> V {
    let h = History::new();
    let f = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let inp = input(doc_now(), &h);
    let mut ev = eval::Eval::new(src, &inp);
    ev.run(&f.stmts).unwrap_or_else(|e| panic!("{src}: {e}"));
    ev.vars.get(v).cloned().unwrap()
}

fn d(src: &str) -> f64 {
    match value(&format!("r = {src};"), "r") {
        V::Double(x) => x,
        other => panic!("{src}: {other:?}"),
    }
}

fn eval_err(src: &str) -> FormulaError {
    run(src).outcome.expect_err(src)
}

#[test]
fn arithmetic_comparison_and_logic_on_doubles() {
    assert_eq!(d("1 + 2 * 3 - 4 / 2"), 5.0);
    assert_eq!(d("(1 + 2) * 3"), 9.0);
    assert_eq!(d("-2 * -3"), 6.0);
    assert_eq!(d("!0 + !5"), 1.0);
    assert_eq!(d("1 < 2") + d("2 <= 2") + d("3 > 2") + d("2 >= 3") + d("1 == 1") + d("1 != 1"), 4.0);
    assert_eq!(d("1 && 0") + d("1 || 0") + d("0 || 0") + d("2 && 3"), 2.0);
    assert_eq!(d("1 ? 10 : 20") + d("0 ? 10 : 20"), 30.0);
    assert_eq!(d("0 ? 1 : 0 ? 2 : 3"), 3.0, "the ternary is right-associative");
    assert_eq!(d("1 + 1 == 2 && 3 > 2"), 1.0, "comparison binds tighter than &&, + tighter than ==");
    assert_eq!(d("1 / 0"), f64::INFINITY);
    // && and || do not evaluate their right side when the left decides.
    assert_eq!(d("0 && val($PendingTasks.GetSample(0), 5)"), 0.0);
    assert_eq!(d("1 || val($PendingTasks.GetSample(0), 5)"), 1.0);
}

#[test]
fn strings_timestamps_and_intervals() {
    assert_eq!(d("\"abc\" < \"abd\"") + d("\"a\" == \"a\"") + d("\"a\" != \"a\""), 2.0);
    assert_eq!(value("r = TimeInterval_Minute * 2;", "r"), V::Interval(120 * TICKS_PER_SECOND));
    assert_eq!(value("r = 2 * TimeInterval_Minute / 4;", "r"), V::Interval(30 * TICKS_PER_SECOND));
    assert_eq!(value("r = TimeInterval_Hour - TimeInterval_Minute + TimeInterval_100ns;", "r"), V::Interval(3540 * TICKS_PER_SECOND + 1));
    assert_eq!(value("r = -TimeInterval_Second;", "r"), V::Interval(-TICKS_PER_SECOND));
    assert_eq!(value("r = TimeInterval_Zero + TimeInterval_Microsecond + TimeInterval_Millisecond;", "r"), V::Interval(10_010));
    assert_eq!(
        value("r = TimeInterval_Day + TimeInterval_Week + TimeInterval_Year;", "r"),
        V::Interval((1 + 7 + 365) * 86_400 * TICKS_PER_SECOND)
    );
    let t = value("r = time() + TimeInterval_Hour;", "r");
    assert_eq!(t, V::Timestamp(doc_now() + Duration::hours(1)));
    assert_eq!(value("r = TimeInterval_Hour + time();", "r"), t);
    assert_eq!(value("r = time() - time(\"2016-10-13T19:17:47.805Z\");", "r"), V::Interval(60 * TICKS_PER_SECOND));
    assert_eq!(d("time() > time(\"2016-10-13\")") + d("TimeInterval_Minute < TimeInterval_Second"), 1.0);
    assert_eq!(d("time(\"Thu, 13 Oct 2016 19:18:47 GMT\").second"), 47.0);
    assert_eq!(d("time().year * 10000 + time().month * 100 + time().day"), 20161013.0);
    assert_eq!(d("time().weekday"), 4.0, "Thursday; Monday is 1");
    assert_eq!(d("time(\"2016-10-17T00:00:00Z\").weekday"), 1.0);
    assert_eq!(d("time().hour * 100 + time().minute"), 1918.0);
    assert_eq!(value("r = time(\"\");", "r"), V::Timestamp(doc_now()));
}

#[test]
fn vectors() {
    let h = history(doc_now(), 1, |i| vec![(Metric::ActiveTasks, i as f64 + 1.0), (Metric::RunningTasks, 10.0)]);
    let inp = input(doc_now(), &h);
    let r = |src: &str| {
        let f = parse(&format!("r = {src};")).unwrap();
        let mut ev = eval::Eval::new(&f.src, &inp);
        ev.run(&f.stmts).unwrap_or_else(|e| panic!("{src}: {e}"));
        ev.vars["r"].clone()
    };
    assert_eq!(r("$ActiveTasks.GetSample(3)"), V::Vec(vec![1.0, 2.0, 3.0]));
    assert_eq!(r("$ActiveTasks.GetSample(3) * 2 - 1"), V::Vec(vec![1.0, 3.0, 5.0]));
    assert_eq!(r("$ActiveTasks.GetSample(3) / 2 + 1"), V::Vec(vec![1.5, 2.0, 2.5]));
    assert_eq!(r("$ActiveTasks.GetSample(2) + $RunningTasks.GetSample(2)"), V::Vec(vec![12.0, 13.0]));
    assert_eq!(
        r("$ActiveTasks.GetSample(2) * $ActiveTasks.GetSample(2) - $ActiveTasks.GetSample(2) / $ActiveTasks.GetSample(2)"),
        V::Vec(vec![3.0, 8.0])
    );
    let f = parse("r = $ActiveTasks.GetSample(2) + $ActiveTasks.GetSample(3);").unwrap();
    let e = evaluate(&f, &inp).outcome.unwrap_err();
    assert!(e.message.contains("doubleVecs of 2 and 3 values"), "{e}");
    assert_eq!(r("avg($ActiveTasks.GetSample(3), 7)"), V::Double(3.25));
    assert_eq!(r("lg($ActiveTasks.GetSample(2))"), V::Vec(vec![1.0, 3f64.log2()]));
    assert_eq!(r("$ActiveTasks"), V::Double(3.0), "a metric read as a value is its current value");
}

#[test]
fn list_functions() {
    assert_eq!(d("avg(1, 2, 3)"), 2.0);
    assert_eq!(d("len(1, 2, 3) + count(4, 5)"), 5.0);
    assert_eq!(d("len()"), 0.0);
    assert_eq!(d("max(1, 5, 3)") + d("min(4, -2, 9)"), 3.0);
    assert_eq!(d("norm(3, 4)"), 5.0);
    assert_eq!(d("range(3, 9, 1)"), 8.0);
    assert_eq!(d("sum(1, 2, 3.5)") + d("sum()"), 6.5);
    assert!((d("std(2, 4, 4, 4, 5, 5, 7, 9)") - 2.138089935).abs() < 1e-6, "the sample standard deviation");
    assert_eq!(d("std(5)"), 0.0);
    for f in ["avg", "max", "min", "range", "std"] {
        let e = eval_err(&format!("r = {f}();"));
        assert!(e.message.contains("of no values"), "{f}: {e}");
        assert_eq!(e.code(), "FormulaEvaluationError");
    }
    let e = eval_err("r = avg(1, \"x\");");
    assert!(e.message.contains("not a string"), "{e}");
    assert_eq!((e.line, e.col), (1, 5));
}

#[test]
fn math_functions() {
    assert_eq!(d("lg(8)") + d("ln(1)") + d("log(1000)"), 6.0);
    assert_eq!(d("ceil(1.2)") + d("floor(1.8)") + d("round(2.5)") + d("round(-2.5)") + d("round(2.4)"), 2.0 + 1.0 + 3.0 - 3.0 + 2.0);
    assert_eq!(d("ceil(-1.5)"), -1.0);
    assert_eq!(d("percentile(3, 50)"), 3.0);
    assert_eq!(d("val(5, 0)"), 5.0);
    let e = eval_err("r = percentile(1, 101);");
    assert!(e.message.contains("from 0 to 100"), "{e}");
    let e = eval_err("r = val(1, 1);");
    assert!(e.message.contains("outside the vector"), "{e}");
    let e = eval_err("r = ceil(time());");
    assert!(e.message.contains("not a timestamp"), "{e}");
    let e = eval_err("r = time(\"yesterday\");");
    assert!(e.message.contains("not a W3C-DTF or RFC 1123 time"), "{e}");
    eval_err("r = time(1);");
    eval_err("r = percentile(1, \"a\");");
    let a = d("rand()");
    assert!((0.0..1.0).contains(&a));
    assert_ne!(value("a = rand(); b = rand();", "a"), value("a = rand(); b = rand();", "b"));
}

#[test]
fn percentile_and_val_of_samples() {
    let h = history(doc_now(), 2, |i| vec![(Metric::CpuPercent, [15.0, 20.0, 35.0, 40.0, 50.0][i])]);
    let inp = input(doc_now(), &h);
    let r = |src: &str| match evaluate(&parse(&format!("$TargetDedicatedNodes = {src};")).unwrap(), &inp).outcome {
        Ok(t) => t.dedicated,
        Err(e) => panic!("{src}: {e}"),
    };
    // Nearest rank: 5 values, the 40th percentile is the 2nd, the 100th the 5th, the 0th the 1st.
    assert_eq!(r("percentile($CPUPercent.GetSample(5), 40)"), 20);
    assert_eq!(r("percentile($CPUPercent.GetSample(5), 100)"), 50);
    assert_eq!(r("percentile($CPUPercent.GetSample(5), 0)"), 15);
    assert_eq!(r("val($CPUPercent.GetSample(5), 4)"), 50, "oldest first");
}

#[test]
fn type_errors() {
    for (src, msg) in [
        ("r = 1 + \"a\";", "`+` does not apply to a double and a string"),
        ("r = time() + 1;", "`+` does not apply to a timestamp and a double"),
        ("r = time() - TimeInterval_Hour;", "`-` does not apply to a timestamp and a timeinterval"),
        ("r = TimeInterval_Hour / TimeInterval_Hour;", "`/` does not apply"),
        ("r = 1 < TimeInterval_Hour;", "`<` does not apply"),
        ("r = -\"a\";", "`-` does not apply to a string"),
        ("r = !TimeInterval_Hour;", "`!` does not apply to a timeinterval"),
        ("r = \"a\" ? 1 : 2;", "a condition must be a double"),
        ("r = \"a\" && 1;", "a condition must be a double"),
        ("r = (1).hour;", "applies to a timestamp"),
        ("r = 1 * \"x\";", "does not apply"),
    ] {
        let e = eval_err(src);
        assert!(e.message.contains(msg), "{src}: {e}");
        assert_eq!(e.kind, ErrorKind::Evaluation);
    }
}

#[test]
fn targets_aliases_and_results_text() {
    let r = run("$TargetDedicatedNodes=3");
    assert_eq!(r.results, "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue");
    assert_eq!(r.outcome.unwrap(), Targets { dedicated: 3, low_priority: 0, deallocation: "requeue".into() });
    let r = run("$TargetDedicated = 2; $TargetLowPriority = 4; $NodeDeallocationOption = taskcompletion; zeta = 1; $alpha = 2;");
    assert_eq!(r.results, "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=4;$NodeDeallocationOption=taskcompletion;$alpha=2;zeta=1");
    // The full name wins over the alias, whatever the order.
    let r = run("$TargetDedicatedNodes = 5; $TargetDedicated = 9;");
    assert_eq!(r.outcome.unwrap().dedicated, 5);
    // Fractions truncate, negatives are 0; reading a target before setting it gives the pool's.
    let h = History::new();
    let mut inp = input(doc_now(), &h);
    inp.target_dedicated = 6.0;
    inp.target_low_priority = 1.0;
    let t = run_with("$TargetDedicatedNodes = $TargetDedicatedNodes / 4; $TargetLowPriorityNodes = $TargetLowPriorityNodes - 3;", &inp);
    assert_eq!(t.results, "$TargetDedicatedNodes=1.5;$TargetLowPriorityNodes=-2;$NodeDeallocationOption=requeue");
    assert_eq!(t.outcome.unwrap(), Targets { dedicated: 1, low_priority: 0, deallocation: "requeue".into() });
    let e = run("$TargetDedicatedNodes = 1 / 0;").outcome.unwrap_err();
    assert!(e.message.contains("must be a finite double"), "{e}");
    let e = run("$TargetDedicatedNodes = \"three\";").outcome.unwrap_err();
    assert!(e.message.contains("not string `three`"), "{e}");
    let e = run("$NodeDeallocationOption = \"later\";").outcome.unwrap_err();
    assert!(e.message.contains("requeue, terminate, taskcompletion or retaineddata"), "{e}");
    assert_eq!(run("$NodeDeallocationOption = \"terminate\";").outcome.unwrap().deallocation, "terminate");
    assert!(run("t = time(); i = TimeInterval_Minute; $TargetDedicatedNodes = 1;")
        .results
        .ends_with(";i=00:01:00;t=2016-10-13T19:18:47.805Z"));
}

#[test]
fn stop_ends_the_evaluation_with_what_was_set() {
    let r = run("$TargetDedicatedNodes = 2; a = 1; stop(); $TargetDedicatedNodes = 5; b = 2;");
    assert_eq!(r.outcome.unwrap().dedicated, 2);
    assert_eq!(r.results, "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;a=1");
    assert_eq!(run("$TargetDedicatedNodes = 1 ? 3 : stop();").outcome.unwrap().dedicated, 3);
    assert_eq!(run("$TargetDedicatedNodes = 3; x = 0 ? 1 : stop();").outcome.unwrap().dedicated, 3);
}

#[test]
fn a_failed_evaluation_keeps_the_results_so_far() {
    let r = run("a = 1;\n  $TargetDedicatedNodes = val(a, 3);");
    let e = r.outcome.unwrap_err();
    assert_eq!((e.line, e.col), (2, 27));
    assert_eq!(r.results, "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;a=1");
}

#[test]
fn sample_methods() {
    let now = doc_now();
    let h = history(now, 10, |i| vec![(Metric::PendingTasks, i as f64)]);
    let inp = input(now, &h);
    let r = |src: &str| -> V {
        let f = parse(&format!("r = {src};")).unwrap();
        let mut ev = eval::Eval::new(&f.src, &inp);
        ev.run(&f.stmts).unwrap_or_else(|e| panic!("{src}: {e}"));
        ev.vars["r"].clone()
    };
    assert_eq!(r("$PendingTasks.Count()"), V::Double(21.0));
    assert_eq!(r("$PendingTasks.GetSamplePeriod()"), V::Interval(30 * TICKS_PER_SECOND));
    assert_eq!(r("$PendingTasks.HistoryBeginTime()"), V::Timestamp(now - Duration::minutes(10)));
    assert_eq!(r("$PendingTasks.GetSample(1)"), V::Vec(vec![20.0]));
    assert_eq!(r("$PendingTasks.GetSample(100)"), V::Vec((0..=20).map(f64::from).collect()));
    assert_eq!(r("len($PendingTasks.GetSample(TimeInterval_Minute * 2))"), V::Double(5.0), "0, 30, 60, 90 and 120 s ago");
    assert_eq!(r("$PendingTasks.GetSample(TimeInterval_Minute * 6, TimeInterval_Minute * 5)"), V::Vec(vec![8.0, 9.0, 10.0]));
    assert_eq!(r("$PendingTasks.GetSample(TimeInterval_Minute * 5, TimeInterval_Minute * 6)"), V::Vec(vec![8.0, 9.0, 10.0]));
    assert_eq!(r("len($PendingTasks.GetSample(time() + (-3 * TimeInterval_Minute), TimeInterval_Minute * 2))"), V::Double(3.0));
    assert_eq!(r("len($PendingTasks.GetSample(time(\"2016-10-13T19:17:47.805Z\"), 100))"), V::Double(3.0));
    assert_eq!(r("len($PendingTasks.GetSample(TimeInterval_Minute * 10, 100))"), V::Double(21.0));
    assert_eq!(r("$PendingTasks.GetSamplePercent(TimeInterval_Minute * 10)"), V::Double(100.0));
    assert_eq!(r("$PendingTasks.GetSamplePercent(TimeInterval_Minute * 40)"), V::Double(26.25));
    assert_eq!(r("$PendingTasks.GetSamplePercent(TimeInterval_Minute * 40, TimeInterval_Minute * 20)"), V::Double(0.0));
    // The documented failure: too few samples for the percentage asked.
    let f = parse("a = 1;\nr = $PendingTasks.GetSample(TimeInterval_Minute * 40, 75);").unwrap();
    let e = evaluate(&f, &inp).outcome.unwrap_err();
    assert_eq!(e.code(), "InsufficientSampleData");
    assert_eq!(e.to_string(), "Line 2, Col 19: Insufficient data from data set: $PendingTasks wanted 75%, received 26%");
    for bad in [
        "$PendingTasks.GetSample(-1)",
        "$PendingTasks.GetSample(1, 2)",
        "$PendingTasks.GetSample(\"a\")",
        "$PendingTasks.GetSample(TimeInterval_Minute, 101)",
        "$PendingTasks.GetSamplePercent(3)",
        "$PendingTasks.GetSample(TimeInterval_Minute, \"x\")",
    ] {
        let f = parse(&format!("r = {bad};")).unwrap();
        let e = evaluate(&f, &inp).outcome.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Evaluation, "{bad}: {e}");
    }
    let empty = History::new();
    let e = run_with("r = $CPUPercent.HistoryBeginTime();", &input(now, &empty)).outcome.unwrap_err();
    assert!(e.message.contains("no samples yet"), "{e}");
}

#[test]
fn history_is_bounded_and_ordered() {
    let now = doc_now();
    let mut h = History::new();
    for i in 0..(samples::HISTORY_KEEP_SECS / 30 + 100) {
        h.push(now + Duration::seconds(30 * i), Metrics::default());
    }
    assert_eq!(h.len() as i64, samples::HISTORY_KEEP_SECS / 30 + 1);
    let last = h.last_time().unwrap();
    h.push(last - Duration::seconds(1), Metrics::default());
    assert_eq!(h.last_time(), Some(last), "an older sample is dropped");
}

// ---- The examples of "Create a formula to automatically scale compute nodes in a Batch pool".

#[test]
fn doc_example_time_based_adjustment() {
    let src = "$curTime = time();\n$workHours = $curTime.hour >= 8 && $curTime.hour < 18;\n$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;\n$isWorkingWeekdayHour = $workHours && $isWeekday;\n$TargetDedicatedNodes = $isWorkingWeekdayHour ? 20:10;";
    // The documented output of this formula evaluated at 2016-10-13T19:18:47.805Z.
    assert_eq!(
        run(src).results,
        "$TargetDedicatedNodes=10;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;$curTime=2016-10-13T19:18:47.805Z;$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0"
    );
    let h = History::new();
    let monday_morning = input(at("2016-10-17T09:00:00Z"), &h);
    assert_eq!(
        run_with(&format!("{src}\n$NodeDeallocationOption = taskcompletion;"), &monday_morning).outcome.unwrap(),
        Targets { dedicated: 20, low_priority: 0, deallocation: "taskcompletion".into() }
    );
    // The time-zone variant.
    let mdt = "$curTime = time() + (-6 * TimeInterval_Hour); $TargetDedicatedNodes = $curTime.hour;";
    assert_eq!(run(mdt).outcome.unwrap().dedicated, 13);
}

#[test]
fn doc_example_pending_tasks() {
    let src = "startingNumberOfVMs = 1;\nmaxNumberofVMs = 25;\npendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);\npendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : avg($PendingTasks.GetSample(180 * TimeInterval_Second));\n$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);\n$NodeDeallocationOption = taskcompletion;";
    let now = doc_now();
    // Without enough history the pool starts with one node.
    let short = history(now, 1, |_| vec![(Metric::PendingTasks, 40.0)]);
    assert_eq!(run_with(src, &input(now, &short)).outcome.unwrap().dedicated, 1);
    // With three minutes of samples, the average of the pending tasks, at most 25.
    let busy = history(now, 3, |i| vec![(Metric::PendingTasks, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0][i])]);
    let r = run_with(src, &input(now, &busy));
    assert_eq!(r.outcome.unwrap(), Targets { dedicated: 8, low_priority: 0, deallocation: "taskcompletion".into() });
    assert_eq!(
        r.results,
        "$TargetDedicatedNodes=8;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;maxNumberofVMs=25;pendingTaskSamplePercent=100;pendingTaskSamples=8;startingNumberOfVMs=1"
    );
    let flood = history(now, 3, |_| vec![(Metric::PendingTasks, 400.0)]);
    assert_eq!(run_with(src, &input(now, &flood)).outcome.unwrap().dedicated, 25);
}

#[test]
fn doc_example_preempted_nodes() {
    let src = "maxNumberofVMs = 25;\n$TargetDedicatedNodes = min(maxNumberofVMs, $PreemptedNodeCount.GetSample(180 * TimeInterval_Second));\n$TargetLowPriorityNodes = min(maxNumberofVMs , maxNumberofVMs - $TargetDedicatedNodes);\n$NodeDeallocationOption = taskcompletion;";
    let now = doc_now();
    let h = history(now, 3, |i| vec![(Metric::PreemptedNodeCount, if i < 3 { 4.0 } else { 3.0 })]);
    assert_eq!(
        run_with(src, &input(now, &h)).outcome.unwrap(),
        Targets { dedicated: 3, low_priority: 22, deallocation: "taskcompletion".into() }
    );
}

#[test]
fn doc_example_cpu_usage() {
    let src = "$totalDedicatedNodes =\n    (min($CPUPercent.GetSample(TimeInterval_Minute * 10)) > 0.7) ?\n    ($CurrentDedicatedNodes * 1.1) : $CurrentDedicatedNodes;\n$totalDedicatedNodes =\n    (avg($CPUPercent.GetSample(TimeInterval_Minute * 60)) < 0.2) ?\n    ($CurrentDedicatedNodes * 0.9) : $totalDedicatedNodes;\n$TargetDedicatedNodes = min(400, $totalDedicatedNodes)";
    let now = doc_now();
    let busy = history(now, 60, |_| vec![(Metric::CpuPercent, 90.0), (Metric::CurrentDedicatedNodes, 20.0)]);
    assert_eq!(run_with(src, &input(now, &busy)).outcome.unwrap().dedicated, 22);
    let idle = history(now, 60, |_| vec![(Metric::CpuPercent, 0.1), (Metric::CurrentDedicatedNodes, 20.0)]);
    assert_eq!(run_with(src, &input(now, &idle)).outcome.unwrap().dedicated, 18);
    let huge = history(now, 60, |_| vec![(Metric::CpuPercent, 90.0), (Metric::CurrentDedicatedNodes, 1000.0)]);
    assert_eq!(run_with(src, &input(now, &huge)).outcome.unwrap().dedicated, 400);
}

#[test]
fn doc_example_task_based_adjustment() {
    let src = "// Get pending tasks for the past 15 minutes.\n$samples = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 15);\n// If we have fewer than 70 percent data points, we use the last sample point,\n// otherwise we use the maximum of last sample point and the history average.\n$tasks = $samples < 70 ? max(0,$PendingTasks.GetSample(1)) : max( $PendingTasks.GetSample(1), avg($PendingTasks.GetSample(TimeInterval_Minute * 15)));\n// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise\n// half of current dedicated.\n$targetVMs = $tasks > 0? $tasks:max(0, $TargetDedicatedNodes/2);\n// The pool size is capped at 20, if target VM value is more than that, set it\n// to 20. This value should be adjusted according to your use case.\n$TargetDedicatedNodes = max(0, min($targetVMs, 20));\n// Set node deallocation mode - let running tasks finish before removing a node\n$NodeDeallocationOption = taskcompletion;";
    let now = doc_now();
    let few = history(now, 2, |_| vec![(Metric::PendingTasks, 7.0)]);
    assert_eq!(run_with(src, &input(now, &few)).outcome.unwrap().dedicated, 7);
    let none = history(now, 15, |_| vec![(Metric::PendingTasks, 0.0)]);
    let mut inp = input(now, &none);
    inp.target_dedicated = 10.0;
    assert_eq!(run_with(src, &inp).outcome.unwrap().dedicated, 5, "half the current target");
    let many = history(now, 15, |i| vec![(Metric::PendingTasks, if i == 30 { 50.0 } else { 1.0 })]);
    assert_eq!(run_with(src, &input(now, &many)).outcome.unwrap().dedicated, 20);
}

#[test]
fn doc_example_parallel_tasks() {
    let src = "$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);\n$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max( $ActiveTasks.GetSample(1),avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));\n$cores = $TargetDedicatedNodes * 4;\n$extraVMs = (($tasks - $cores) + 3) / 4;\n$targetVMs = ($TargetDedicatedNodes + $extraVMs);\n$TargetDedicatedNodes = max(0,min($targetVMs,3));\n$NodeDeallocationOption = taskcompletion;";
    let now = doc_now();
    let h = history(now, 1, |_| vec![(Metric::ActiveTasks, 9.0)]);
    let mut inp = input(now, &h);
    inp.target_dedicated = 1.0;
    // (9 - 4 + 3) / 4 = 2 extra: 3 nodes.
    assert_eq!(run_with(src, &inp).outcome.unwrap().dedicated, 3);
    let h = history(now, 1, |_| vec![(Metric::ActiveTasks, 2.0)]);
    let mut inp = input(now, &h);
    inp.target_dedicated = 1.0;
    // 1 + (2 - 4 + 3) / 4 = 1.25: 1 node.
    assert_eq!(run_with(src, &inp).outcome.unwrap().dedicated, 1);
}

#[test]
fn doc_example_initial_pool_size() {
    let src = "\n    $TargetDedicatedNodes = 4;\n    lifespan         = time() - time(\"Thu, 13 Oct 2016 19:15:00 GMT\");\n    span             = TimeInterval_Minute * 60;\n    startup          = TimeInterval_Minute * 10;\n    ratio            = 50;\n\n    $TargetDedicatedNodes = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio), $ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicatedNodes) : 4);\n    ";
    let h = History::new();
    assert_eq!(run_with(src, &input(doc_now(), &h)).outcome.unwrap().dedicated, 4, "within the first 10 minutes");
    let later = doc_now() + Duration::hours(2);
    let idle = history(later, 60, |_| vec![]);
    assert_eq!(run_with(src, &input(later, &idle)).outcome.unwrap().dedicated, 0);
    let busy = history(later, 60, |i| vec![(Metric::RunningTasks, if i == 3 { 1.0 } else { 0.0 })]);
    assert_eq!(run_with(src, &input(later, &busy)).outcome.unwrap().dedicated, 4);
    // Without half of an hour of samples, GetSample fails with the documented error.
    let e = run_with(src, &input(later, &h)).outcome.unwrap_err();
    assert_eq!(e.code(), "InsufficientSampleData");
    assert!(e.message.starts_with("Insufficient data from data set: $RunningTasks wanted 50%, received 0%"), "{e}");
}

#[test]
fn doc_examples_of_the_rest_and_powershell_references() {
    // Evaluate AutoScale (recording, api-version 2020-09-01.12.0).
    assert_eq!(run("$TargetDedicatedNodes=3").results, "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue");
    // Test-AzBatchAutoScale: a pool without CPU samples gets 5 nodes.
    let src = "totalNodes=($CPUPercent.GetSamplePercent(TimeInterval_Minute*0,TimeInterval_Minute*10)<0.7?5:(min($CPUPercent.GetSample(TimeInterval_Minute*0, TimeInterval_Minute*10))>0.8?($CurrentDedicated*1.1):$CurrentDedicated));$TargetDedicated=min(100,totalNodes);";
    let r = run(src);
    assert_eq!(r.results, "$TargetDedicatedNodes=5;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;totalNodes=5");
    // Evaluate AutoScale's documented InsufficientSampleData error.
    let e = run("$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Minute * 10, 10));").outcome.unwrap_err();
    assert_eq!(e.summary(), "Autoscale evaluation failed due to insufficient sample data");
    assert_eq!(e.to_string(), "Line 1, Col 41: Insufficient data from data set: $CPUPercent wanted 10%, received 0%");
}
