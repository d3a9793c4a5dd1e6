//! Reactor tests of autoscale: evaluation when enabled and every interval of the reactor's
//! clock, targets and `autoScaleRun`, Evaluate, Disable, and the samples formulas read.

use super::testenv::TestEnv;
use super::{Answer, Event};
use crate::agent::protocol::{AgentMessage, NodeSample};
use crate::model::autoscale::AutoScaleRun;
use crate::model::node::NodeState;
use crate::model::pool::{AllocationState, Pool};
use serde_json::json;

fn pool(env: &TestEnv, id: &str) -> Pool {
    env.all::<Pool>().into_iter().find(|p| p.spec.id == id).expect("pool exists")
}

fn run(env: &TestEnv, id: &str) -> AutoScaleRun {
    pool(env, id).status.auto_scale_run.expect("an autoscale run")
}

/// A pool with autoscale from its creation.
fn autoscale_pool(env: &mut TestEnv, id: &str, formula: &str, interval: &str) {
    env.pool_with(
        id,
        json!({"id": id, "vmSize": "standard_d2s_v3", "enableAutoScale": true, "autoScaleFormula": formula, "autoScaleEvaluationInterval": interval}),
    );
}

fn evaluate(env: &mut TestEnv, id: &str, formula: &str) -> AutoScaleRun {
    let formula = crate::autoscale::parse(formula).expect("formula");
    match env.batch(vec![(Event::EvaluateAutoScale { pool_id: id.into(), formula }, Some(3))]).pop() {
        Some((3, Answer::Run(Ok(run)))) => run,
        other => panic!("no run: {other:?}"),
    }
}

#[test]
fn a_new_autoscale_pool_is_evaluated_at_once_and_sized_by_its_formula() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = 2; $TargetLowPriorityNodes = 1;", "PT5M");
    let p = pool(&env, "p");
    assert_eq!((p.spec.target_dedicated_nodes, p.spec.target_low_priority_nodes), (Some(2), Some(1)));
    assert_eq!(env.nodes("p").len(), 3);
    assert_eq!(p.status.allocation_state, AllocationState::Steady);
    let r = run(&env, "p");
    assert_eq!(r.timestamp, env.reactor.now());
    assert_eq!(r.results.as_deref(), Some("$TargetDedicatedNodes=2;$TargetLowPriorityNodes=1;$NodeDeallocationOption=requeue"));
    assert!(r.error.is_none());
}

#[test]
fn pending_tasks_grow_the_pool_at_the_next_interval_and_it_shrinks_when_they_are_done() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = min(4, $PendingTasks); $NodeDeallocationOption = taskcompletion;", "PT5M");
    assert!(env.nodes("p").is_empty());
    env.job_on("j", "p");
    env.add_tasks("j", (0..3).map(|i| json!({"id": format!("t{i}"), "commandLine": "true"})).collect());
    env.advance(240);
    assert!(env.nodes("p").is_empty(), "not before the interval");
    env.advance(60);
    assert_eq!(env.nodes("p").len(), 3, "three pending tasks: three nodes");
    assert!(run(&env, "p").results.unwrap().starts_with("$TargetDedicatedNodes=3;"));
    env.connect_spawned();
    assert_eq!(env.finish_all_running(), 3);
    env.advance(300);
    assert!(env.nodes("p").is_empty(), "no pending tasks: no nodes");
    assert_eq!(pool(&env, "p").spec.target_dedicated_nodes, Some(0));
}

#[test]
fn enable_evaluates_now_and_restarts_the_schedule() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    let mut p = pool(&env, "p");
    p.spec.enable_auto_scale = Some(true);
    p.spec.auto_scale_formula = Some("$TargetDedicatedNodes = $CurrentDedicatedNodes + 1;".into());
    p.spec.auto_scale_evaluation_interval = Some("PT10M".into());
    env.put(p);
    env.advance(7);
    env.call(Event::EnableAutoScale { pool_id: "p".into() }).unwrap();
    assert_eq!(env.nodes("p").len(), 2);
    let enabled_at = env.reactor.now();
    env.connect_spawned();
    env.advance(599);
    assert_eq!(run(&env, "p").timestamp, enabled_at);
    env.advance(1);
    assert_eq!(env.nodes("p").len(), 3);
    assert_eq!(run(&env, "p").timestamp, env.reactor.now());
    // After a restart the schedule continues from the last run.
    env.connect_spawned();
    env.restart();
    env.advance(599);
    assert_eq!(env.nodes("p").len(), 3);
    env.advance(1);
    assert_eq!(env.nodes("p").len(), 4);
}

#[test]
fn evaluate_computes_without_changing_the_pool() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = 1;", "PT5M");
    let before = pool(&env, "p");
    let r = evaluate(&mut env, "p", "$TargetDedicatedNodes = 3; slots = $TaskSlotsPerNode;");
    assert_eq!(r.results.as_deref(), Some("$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;slots=1"));
    let after = pool(&env, "p");
    assert_eq!(after.spec.target_dedicated_nodes, Some(1));
    assert_eq!(after.status.auto_scale_run, before.status.auto_scale_run);
    assert_eq!(env.nodes("p").len(), 1);
    // A pool without autoscale: 409.
    env.pool("q", 0, 1);
    let formula = crate::autoscale::parse("$TargetDedicatedNodes = 1;").unwrap();
    match env.batch(vec![(Event::EvaluateAutoScale { pool_id: "q".into(), formula }, Some(3))]).pop() {
        Some((3, Answer::Run(Err(e)))) => assert_eq!((e.status.as_u16(), e.code.as_str()), (409, "OperationInvalidForCurrentState")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_evaluation_records_its_error_and_leaves_the_pool() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = 2;", "PT5M");
    let mut p = pool(&env, "p");
    p.spec.auto_scale_formula = Some("a = 1;\n$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Minute * 10, 90));".into());
    env.put(p);
    env.advance(300);
    let r = run(&env, "p");
    let e = r.error.expect("an error");
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("InsufficientSampleData", "Autoscale evaluation failed due to insufficient sample data")
    );
    assert_eq!(e.values[0].name, "Message");
    assert!(
        e.values[0].value.starts_with("Line 2, Col 41: Insufficient data from data set: $CPUPercent wanted 90%, received 10%"),
        "{:?}",
        e.values
    );
    assert_eq!(r.results.as_deref(), Some("$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;a=1"));
    assert_eq!(env.nodes("p").len(), 2, "unchanged");
}

#[test]
fn disable_stops_a_resize_where_it_is() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = 1;", "PT5M");
    let mut p = pool(&env, "p");
    p.spec.auto_scale_formula = Some("$TargetDedicatedNodes = 3;".into());
    env.put(p);
    env.advance(300);
    assert_eq!(env.nodes("p").len(), 3);
    assert_eq!(pool(&env, "p").status.allocation_state, AllocationState::Resizing);
    let mut p = pool(&env, "p");
    p.spec.enable_auto_scale = Some(false);
    env.put(p);
    env.call(Event::DisableAutoScale { pool_id: "p".into() }).unwrap();
    let p = pool(&env, "p");
    assert_eq!(p.spec.target_dedicated_nodes, Some(1), "the two nodes still being created are cancelled");
    assert_eq!(env.nodes("p").len(), 1);
    assert_eq!(p.status.allocation_state, AllocationState::Steady);
    // No evaluation any more.
    env.advance(600);
    assert_eq!(env.nodes("p").len(), 1);
}

#[test]
fn samples_carry_node_measurements_and_task_results() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = 2;", "PT5M");
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "ok", "commandLine": "true"}), json!({"id": "bad", "commandLine": "false"})]);
    env.exit("j", "ok", 0);
    env.exit("j", "bad", 2);
    for n in env.nodes("p") {
        assert_eq!(n.state, NodeState::Idle);
        let sample = NodeSample {
            interval_ms: 10_000,
            cores: 2,
            cpu_ms: 5_000,
            read_bytes: 100,
            write_bytes: 300,
            memory_bytes: 64 << 20,
            disk_bytes: 1 << 30,
        };
        env.event(Event::Agent { node_id: n.id, msg: AgentMessage::Sample { sample } });
    }
    let f = "cpu = $CPUPercent; wall = $WallClockSeconds; mem = $MemoryBytes; disk = $DiskBytes; r = $DiskReadBytes; w = $DiskWriteBytes; nodes = $SampleNodeCount; ok = $SucceededTasks; bad = $FailedTasks; usable = $UsableNodeCount; net = $NetworkInBytes + $NetworkOutBytes + $DiskReadOps;";
    let r = evaluate(&mut env, "p", f).results.unwrap();
    assert!(r.ends_with(";bad=1;cpu=25;disk=1;mem=64;net=0;nodes=2;ok=1;r=200;usable=2;w=600;wall=20"), "{r}");
    // The reports were used up by that row; the next counts from there.
    let r = evaluate(&mut env, "p", "cpu = $CPUPercent; n = $CPUPercent.Count();").results.unwrap();
    assert!(r.ends_with(";cpu=0;n=3"), "{r}");
}

#[test]
fn samples_are_taken_every_30_seconds_of_the_reactor_clock() {
    let mut env = TestEnv::new();
    autoscale_pool(&mut env, "p", "$TargetDedicatedNodes = 0;", "PT5M");
    for _ in 0..4 {
        env.advance(30);
    }
    env.advance(10);
    let r =
        evaluate(&mut env, "p", "n = $PendingTasks.Count(); p = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 2);").results.unwrap();
    assert!(r.ends_with(";n=6;p=100"), "{r}");
}
