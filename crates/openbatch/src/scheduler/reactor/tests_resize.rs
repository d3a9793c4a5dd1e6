//! Reactor tests of resizes that end short of their targets (Stop Resize, `resizeTimeout`,
//! node quotas), Remove Nodes, and Spot preemption and restoration.

use super::resize::PoolOp;
use super::testenv::TestEnv;
use super::Event;
use crate::model::node::NodeState;
use crate::model::pool::{AllocationState, DeallocationOption, Pool};
use crate::model::task::TaskState;
use serde_json::{json, Value};

fn pool(env: &TestEnv, id: &str) -> Pool {
    env.all::<Pool>().into_iter().find(|p| p.spec.id == id).expect("pool")
}

fn error_codes(p: &Pool) -> Vec<String> {
    p.status.resize_errors.iter().filter_map(|e| e["code"].as_str().map(String::from)).collect()
}

fn op(env: &mut TestEnv, pool_id: &str, op: PoolOp) -> crate::api::error::ApiResult<()> {
    env.call(Event::Pool { pool_id: pool_id.into(), op })
}

/// Sets a pool's targets and starts its resize, as Pool Resize does.
fn resize(env: &mut TestEnv, id: &str, dedicated: i32, low_priority: i32) {
    let mut p = pool(env, id);
    p.spec.target_dedicated_nodes = Some(dedicated);
    p.spec.target_low_priority_nodes = Some(low_priority);
    p.status.begin_resize(env.reactor.now(), None);
    env.put(p);
    env.event(Event::PoolChanged(id.into()));
}

#[test]
fn stop_resize_releases_unallocated_nodes_and_keeps_the_targets() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    resize(&mut env, "p", 1, 2);
    // The two Spot nodes were asked for but their agents never said hello.
    assert_eq!(env.nodes("p").len(), 3);
    assert_eq!(pool(&env, "p").status.allocation_state, AllocationState::Resizing);
    op(&mut env, "p", PoolOp::StopResize).expect("stop resize");
    // The released nodes' agents never come.
    env.spawned.clear();
    let p = pool(&env, "p");
    assert_eq!(p.status.allocation_state, AllocationState::Steady);
    assert_eq!((p.status.current_dedicated_nodes, p.status.current_low_priority_nodes), (1, 0));
    assert_eq!((p.spec.target_dedicated_nodes, p.spec.target_low_priority_nodes), (Some(1), Some(2)));
    assert_eq!(error_codes(&p), ["ResizeStopped"]);
    assert_eq!(
        p.status.resize_errors[0]["message"],
        "Desired number of low priority nodes could not be allocated due to a stop resize operation"
    );
    // Nothing more is added, even when the pool is looked at again...
    env.event(Event::PoolChanged("p".into()));
    assert_eq!(env.nodes("p").len(), 1);
    // ...until the next resize, which clears the error.
    resize(&mut env, "p", 1, 1);
    env.connect_spawned();
    let p = pool(&env, "p");
    assert_eq!((p.status.current_dedicated_nodes, p.status.current_low_priority_nodes), (1, 1));
    assert!(p.status.resize_errors.is_empty());
    assert_eq!(p.status.allocation_state, AllocationState::Steady);
    // Stopping a steady pool changes nothing.
    op(&mut env, "p", PoolOp::StopResize).expect("stop resize");
    assert!(pool(&env, "p").status.resize_errors.is_empty());
}

#[test]
fn a_resize_that_outlives_its_timeout_ends_with_allocation_timed_out() {
    let mut env = TestEnv::new();
    env.pool_with("p", json!({"id": "p", "vmSize": "small", "targetDedicatedNodes": 2, "resizeTimeout": "PT5M"}));
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 900"})]);
    let (busy, _) = env.where_runs("j", "a").expect("a runs");
    // Shrinking to zero with `taskcompletion`: the idle node goes at once, the busy one
    // leaves when its task completes, which takes longer than the resize timeout.
    let mut p = pool(&env, "p");
    p.spec.target_dedicated_nodes = Some(0);
    p.status.begin_resize(env.reactor.now(), Some(DeallocationOption::TaskCompletion));
    env.put(p);
    env.event(Event::PoolChanged("p".into()));
    assert_eq!(env.nodes("p").len(), 1);
    assert_eq!(env.nodes("p")[0].state, NodeState::LeavingPool);
    env.advance(299);
    assert_eq!(pool(&env, "p").status.allocation_state, AllocationState::Resizing);
    env.advance(2);
    // The resize gives up: the node stays in the pool, running its task.
    let p = pool(&env, "p");
    assert_eq!(p.status.allocation_state, AllocationState::Steady);
    assert_eq!(error_codes(&p), ["AllocationTimedOut"]);
    assert_eq!(
        p.status.resize_errors[0]["message"],
        "Desired number of dedicated nodes could not be removed as the resize timeout was reached"
    );
    assert_eq!(p.status.current_dedicated_nodes, 1);
    assert_eq!(env.nodes("p")[0].state, NodeState::Running);
    assert_eq!(env.where_runs("j", "a").map(|(n, _)| n), Some(busy));
    env.exit("j", "a", 0);
    assert_eq!(env.nodes("p")[0].state, NodeState::Idle);
}

#[test]
fn node_quotas_stop_a_resize_as_a_core_quota_does() {
    let mut env = TestEnv::new();
    env.reactor.info.limits.max_dedicated_nodes = 3;
    env.pool("a", 2, 1);
    env.pool("b", 2, 1);
    let b = pool(&env, "b");
    assert_eq!(b.status.current_dedicated_nodes, 1);
    assert_eq!(b.status.allocation_state, AllocationState::Steady);
    assert_eq!(error_codes(&b), ["AccountCoreQuotaReached"]);
    let values: &Value = &b.status.resize_errors[0]["values"][0]["value"];
    assert!(values.as_str().is_some_and(|v| v.contains("--max-dedicated-nodes")), "{values}");
    // Spot nodes have their own quota.
    env.reactor.info.limits.max_low_priority_nodes = 0;
    resize(&mut env, "a", 2, 1);
    assert_eq!(error_codes(&pool(&env, "a")), ["AccountLowPriorityCoreQuotaReached"]);
}

#[test]
fn remove_nodes_takes_the_named_nodes_with_their_deallocation_option() {
    let mut env = TestEnv::new();
    env.pool("p", 3, 1);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 9"})]);
    let (busy, _) = env.where_runs("j", "a").expect("a runs");
    // The handler lowered the target by one before the reactor removes the node.
    let mut p = pool(&env, "p");
    p.spec.target_dedicated_nodes = Some(2);
    p.status.begin_resize(env.reactor.now(), Some(DeallocationOption::TaskCompletion));
    env.put(p);
    op(&mut env, "p", PoolOp::RemoveNodes { node_ids: vec![busy.clone()], option: DeallocationOption::TaskCompletion }).expect("remove");
    // The busy node (not the least busy ones) leaves once its task completes.
    let n = env.nodes("p").into_iter().find(|n| n.id == busy).expect("still there");
    assert_eq!(n.state, NodeState::LeavingPool);
    assert_eq!(env.nodes("p").len(), 3);
    env.exit("j", "a", 0);
    assert!(env.nodes("p").iter().all(|n| n.id != busy));
    assert_eq!(env.nodes("p").len(), 2);
    let p = pool(&env, "p");
    assert_eq!((p.status.allocation_state, p.status.current_dedicated_nodes), (AllocationState::Steady, 2));
    assert_eq!(env.state("j", "a"), TaskState::Completed);
}

#[test]
fn a_preempted_spot_node_requeues_its_tasks_and_is_restored() {
    let mut env = TestEnv::new();
    env.pool_with("p", json!({"id": "p", "vmSize": "small", "targetDedicatedNodes": 1, "targetLowPriorityNodes": 1}));
    env.job_on("j", "p");
    let spot = env.nodes("p").into_iter().find(|n| !n.is_dedicated).expect("spot node").id;
    let dedicated = env.nodes("p").into_iter().find(|n| n.is_dedicated).expect("dedicated node").id;
    env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 9"}), json!({"id": "b", "commandLine": "sleep 9"})]);
    let on_spot = ["a", "b"].into_iter().find(|t| env.where_runs("j", t).is_some_and(|(n, _)| n == spot)).expect("a task on the spot node");
    // Dedicated nodes cannot be preempted.
    let e = op(&mut env, "p", PoolOp::Preempt { node_id: dedicated.clone() }).unwrap_err();
    assert_eq!(e.code, "OperationInvalidForCurrentState");
    op(&mut env, "p", PoolOp::Preempt { node_id: spot.clone() }).expect("preempt");
    let n = env.nodes("p").into_iter().find(|n| n.id == spot).expect("preempted node stays");
    assert_eq!(n.state, NodeState::Preempted);
    // The task is back in the queue (not failed, no retry counted); the pool still counts the node.
    assert_eq!(env.state("j", on_spot), TaskState::Active);
    assert_eq!(env.task("j", on_spot).status.execution_info.retry_count, 0);
    assert_eq!(pool(&env, "p").status.current_low_priority_nodes, 1);
    let e = op(&mut env, "p", PoolOp::Preempt { node_id: spot.clone() }).unwrap_err();
    assert_eq!(e.code, "OperationInvalidForCurrentState");
    // It runs on the dedicated node once that is free.
    let other = if on_spot == "a" { "b" } else { "a" };
    env.exit("j", other, 0);
    assert_eq!(env.where_runs("j", on_spot).map(|(n, _)| n), Some(dedicated));
    // After the recovery time the node comes back as a new node and takes work again.
    env.advance(29);
    assert_eq!(env.nodes("p").into_iter().find(|n| n.id == spot).map(|n| n.state), Some(NodeState::Preempted));
    env.advance(1);
    env.connect_spawned();
    assert_eq!(env.nodes("p").into_iter().find(|n| n.id == spot).map(|n| n.state), Some(NodeState::Idle));
    env.add_tasks("j", vec![json!({"id": "c", "commandLine": "true"})]);
    assert_eq!(env.where_runs("j", "c").map(|(n, _)| n), Some(spot));
}

#[test]
fn preempted_nodes_survive_a_restart_and_are_restored_after_it() {
    let mut env = TestEnv::new();
    env.pool_with("p", json!({"id": "p", "vmSize": "small", "targetLowPriorityNodes": 1}));
    let spot = env.nodes("p")[0].id.clone();
    op(&mut env, "p", PoolOp::Preempt { node_id: spot.clone() }).expect("preempt");
    env.restart();
    env.advance(10);
    assert_eq!(env.nodes("p")[0].state, NodeState::Preempted);
    assert!(env.spawned.is_empty());
    env.advance(20);
    env.connect_spawned();
    assert_eq!(env.nodes("p")[0].state, NodeState::Idle);
}

#[test]
fn chaos_preempts_running_spot_nodes_at_the_configured_rate() {
    let mut env = TestEnv::new();
    env.reactor.info.limits.spot_preemption_rate = 3600.0;
    env.reactor.info.limits.spot_recovery = std::time::Duration::from_secs(3600);
    env.pool_with("p", json!({"id": "p", "vmSize": "small", "targetDedicatedNodes": 1, "targetLowPriorityNodes": 3}));
    env.advance(1);
    // A rate of one per second over 10 s preempts every Spot node, never a dedicated one.
    for _ in 0..10 {
        env.advance(1);
    }
    let states: Vec<(bool, NodeState)> = env.nodes("p").into_iter().map(|n| (n.is_dedicated, n.state)).collect();
    assert!(states.iter().filter(|(d, _)| !d).all(|(_, s)| *s == NodeState::Preempted), "{states:?}");
    assert!(states.iter().filter(|(d, _)| *d).all(|(_, s)| *s == NodeState::Idle), "{states:?}");
}
