//! Reactor tests of compute node operations: Disable and Enable Scheduling, Reboot, Reimage,
//! node users and recentTasks.

use super::node_ops::NodeOp;
use super::testenv::TestEnv;
use super::{Effect, Event};
use crate::model::node::{DisableSchedulingOption, NodeState, SchedulingState};
use crate::model::node_ops::{NodeUserAdd, NodeUserUpdate, RestartKind};
use crate::model::pool::DeallocationOption;
use crate::model::task::TaskState;
use serde_json::json;

fn disable(env: &mut TestEnv, node: &str, option: DisableSchedulingOption) {
    let ev = Event::DisableNodeScheduling { pool_id: "p".into(), node_id: node.into(), option };
    env.call(ev).expect("disable scheduling");
}

fn node_state(env: &TestEnv, node: &str) -> (NodeState, SchedulingState) {
    let n = env.nodes("p").into_iter().find(|n| n.id == node).expect("node");
    (n.state, n.scheduling_state)
}

#[test]
fn disable_scheduling_requeues_ends_or_waits_for_running_tasks() {
    for option in [DisableSchedulingOption::Requeue, DisableSchedulingOption::Terminate, DisableSchedulingOption::TaskCompletion] {
        let mut env = TestEnv::new();
        env.pool("p", 2, 1);
        env.job_on("j", "p");
        env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 9"})]);
        let (node, _) = env.where_runs("j", "a").expect("a runs");
        let other = env.nodes("p").into_iter().map(|n| n.id).find(|id| *id != node).expect("a second node");
        disable(&mut env, &node, option);
        let t = env.task("j", "a");
        match option {
            DisableSchedulingOption::Requeue => {
                // Back in the queue, and placed at once on the node that still takes tasks.
                assert_eq!(env.where_runs("j", "a").map(|(n, _)| n), Some(other.clone()));
                assert_eq!(node_state(&env, &node), (NodeState::Offline, SchedulingState::Disabled));
            }
            DisableSchedulingOption::Terminate => {
                assert_eq!(t.status.state, TaskState::Completed);
                assert_eq!(t.status.execution_info.failure_info.as_ref().and_then(|f| f.code.as_deref()), Some("TaskEnded"));
                assert_eq!(node_state(&env, &node), (NodeState::Offline, SchedulingState::Disabled));
            }
            DisableSchedulingOption::TaskCompletion => {
                assert_eq!(env.where_runs("j", "a").map(|(n, _)| n), Some(node.clone()));
                assert_eq!(node_state(&env, &node), (NodeState::Running, SchedulingState::Disabled));
                env.exit("j", "a", 0);
                assert_eq!(node_state(&env, &node), (NodeState::Offline, SchedulingState::Disabled));
            }
        }
        // A disabled node gets nothing new, even with the other node busy.
        env.add_tasks("j", vec![json!({"id": "b", "commandLine": "true"}), json!({"id": "c", "commandLine": "true"})]);
        assert!(env.where_runs("j", "b").is_none_or(|(n, _)| n != node), "{option:?}");
        assert!(env.where_runs("j", "c").is_none_or(|(n, _)| n != node), "{option:?}");
        // Enabled again, it takes the waiting task.
        env.call(Event::EnableNodeScheduling { pool_id: "p".into(), node_id: node.clone() }).expect("enable");
        let on_node = ["a", "b", "c"].iter().filter(|t| env.where_runs("j", t).is_some_and(|(n, _)| n == node)).count();
        assert_eq!(on_node, 1, "{option:?}");
        assert_eq!(node_state(&env, &node), (NodeState::Running, SchedulingState::Enabled));
    }
}

#[test]
fn scheduling_operations_on_a_missing_node_answer_not_found() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    let e =
        env.call(Event::DisableNodeScheduling { pool_id: "p".into(), node_id: "nope".into(), option: DisableSchedulingOption::Requeue });
    assert_eq!(e.unwrap_err().code, "NodeNotFound");
    let e = env.call(Event::EnableNodeScheduling { pool_id: "p".into(), node_id: "nope".into() });
    assert_eq!(e.unwrap_err().code, "NodeNotFound");
    // An idle node goes offline at once, and back to idle.
    let node = env.nodes("p")[0].id.clone();
    disable(&mut env, &node, DisableSchedulingOption::Requeue);
    assert_eq!(node_state(&env, &node), (NodeState::Offline, SchedulingState::Disabled));
    env.call(Event::EnableNodeScheduling { pool_id: "p".into(), node_id: node.clone() }).expect("enable");
    assert_eq!(node_state(&env, &node), (NodeState::Idle, SchedulingState::Enabled));
}

fn restart(env: &mut TestEnv, node: &str, kind: RestartKind, option: DeallocationOption) -> crate::api::error::ApiResult<()> {
    env.call(Event::NodeOperation { pool_id: "p".into(), node_id: node.into(), op: NodeOp::Restart { kind, option } })
}

fn node(env: &TestEnv, id: &str) -> crate::model::node::Node {
    env.nodes("p").into_iter().find(|n| n.id == id).expect("node")
}

/// The agent restarts the reactor asked for since `from` (effects index): (node, wipe).
fn restarts(env: &TestEnv, from: usize) -> Vec<(String, bool)> {
    env.effects[from..]
        .iter()
        .filter_map(|e| match e {
            Effect::RestartAgent { node_id, wipe, .. } => Some((node_id.clone(), *wipe)),
            _ => None,
        })
        .collect()
}

#[test]
fn reboot_requeues_or_ends_tasks_restarts_the_agent_and_reruns_the_start_task() {
    for option in [DeallocationOption::Requeue, DeallocationOption::Terminate] {
        let mut env = TestEnv::new();
        env.pool_with("p", json!({"id": "p", "vmSize": "x", "targetDedicatedNodes": 2, "startTask": {"commandLine": "true"}}));
        env.finish_all_running();
        env.job_on("j", "p");
        env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 9"})]);
        let (n, _) = env.where_runs("j", "a").expect("a runs");
        let booted = node(&env, &n).last_boot_time;
        env.clock.advance(chrono::Duration::seconds(10));
        let mark = env.effects.len();
        restart(&mut env, &n, RestartKind::Reboot, option).expect("reboot");
        assert_eq!(node(&env, &n).state, NodeState::Rebooting);
        assert_eq!(restarts(&env, mark), vec![(n.clone(), false)]);
        match option {
            DeallocationOption::Requeue => assert!(env.where_runs("j", "a").is_some_and(|(on, _)| on != n), "requeued elsewhere"),
            _ => assert_eq!(env.task("j", "a").status.execution_info.failure_info.and_then(|f| f.code).as_deref(), Some("TaskEnded")),
        }
        // A second reboot while it reboots is refused.
        let e = restart(&mut env, &n, RestartKind::Reboot, option).unwrap_err();
        assert_eq!(e.code, "NodeBeingRebooted");
        // The new agent says hello: the node boots again and reruns its start task.
        env.connect_spawned();
        let after = node(&env, &n);
        assert_eq!(after.state, NodeState::WaitingForStartTask);
        assert!(after.last_boot_time > booted);
        assert!(env.running.get(&n).is_some_and(|m| m.values().any(|s| s.kind == crate::agent::protocol::ExecKind::StartTask)));
        env.finish_all_running();
        assert!(matches!(node(&env, &n).state, NodeState::Idle | NodeState::Running));
    }
}

#[test]
fn reboot_with_taskcompletion_waits_for_the_running_task_and_takes_no_new_one() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 9"})]);
    let (n, _) = env.where_runs("j", "a").expect("a runs");
    let mark = env.effects.len();
    restart(&mut env, &n, RestartKind::Reimage, DeallocationOption::TaskCompletion).expect("reimage");
    assert_eq!(node(&env, &n).state, NodeState::Reimaging);
    assert!(restarts(&env, mark).is_empty(), "waits for its task");
    env.add_tasks("j", vec![json!({"id": "b", "commandLine": "true"})]);
    assert!(env.where_runs("j", "b").is_none(), "no new task on a node waiting to reimage");
    env.exit("j", "a", 0);
    assert_eq!(env.state("j", "a"), TaskState::Completed);
    assert_eq!(restarts(&env, mark), vec![(n.clone(), true)]);
    env.connect_spawned();
    assert_eq!(node(&env, &n).state, NodeState::Running, "back, it takes the waiting task");
    assert!(env.where_runs("j", "b").is_some());
}

#[test]
fn node_users_are_added_updated_deleted_and_expire() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    let n = env.nodes("p")[0].id.clone();
    let user = |name: &str| NodeUserAdd {
        name: Some(name.into()),
        is_admin: None,
        expiry_time: None,
        password: Some("pw".into()),
        ssh_public_key: None,
    };
    let op = |env: &mut TestEnv, op: NodeOp| env.call(Event::NodeOperation { pool_id: "p".into(), node_id: n.clone(), op });
    op(&mut env, NodeOp::AddUser(user("alice"))).expect("add");
    assert_eq!(op(&mut env, NodeOp::AddUser(user("ALICE"))).unwrap_err().code, "NodeUserExists");
    let u = node(&env, &n).ops.users[0].clone();
    assert!(u.has_password && !u.is_admin);
    assert_eq!(u.expiry_time, env.reactor.now() + chrono::Duration::days(1), "a day by default");
    let missing = op(&mut env, NodeOp::UpdateUser { name: "bob".into(), update: NodeUserUpdate::default() });
    assert_eq!(missing.unwrap_err().code, "NodeUserNotFound");
    op(&mut env, NodeOp::UpdateUser { name: "alice".into(), update: NodeUserUpdate::default() }).expect("update");
    assert!(!node(&env, &n).ops.users[0].has_password, "an omitted password is removed");
    op(&mut env, NodeOp::DeleteUser("alice".into())).expect("delete");
    assert_eq!(op(&mut env, NodeOp::DeleteUser("alice".into())).unwrap_err().code, "NodeUserNotFound");
    // An account goes at its expiry time, by the reactor's clock.
    op(&mut env, NodeOp::AddUser(user("carol"))).expect("add");
    env.advance(23 * 3600);
    assert_eq!(node(&env, &n).ops.users.len(), 1);
    env.advance(3600);
    assert!(node(&env, &n).ops.users.is_empty(), "expired");
    // A reimage drops the accounts; a reboot keeps them.
    op(&mut env, NodeOp::AddUser(user("dave"))).expect("add");
    restart(&mut env, &n, RestartKind::Reboot, DeallocationOption::Requeue).expect("reboot");
    assert_eq!(op(&mut env, NodeOp::AddUser(user("eve"))).unwrap_err().code, "NodeBeingRebooted");
    env.connect_spawned();
    assert_eq!(node(&env, &n).ops.users.len(), 1);
    restart(&mut env, &n, RestartKind::Reimage, DeallocationOption::Requeue).expect("reimage");
    env.connect_spawned();
    assert!(node(&env, &n).ops.users.is_empty());
}

#[test]
fn recent_tasks_show_the_tasks_that_ran_on_the_node_newest_first() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    let n = env.nodes("p")[0].id.clone();
    for i in 0..12 {
        env.add_task("j", &format!("t{i}"));
        env.exit("j", &format!("t{i}"), i);
    }
    let recent = node(&env, &n).ops.recent_tasks;
    assert_eq!(recent.len(), crate::model::node_ops::RECENT_TASKS);
    assert_eq!(recent[0].task_id, "t11");
    assert_eq!(recent[0].task_state, TaskState::Completed);
    assert_eq!(recent[0].execution_info.exit_code, Some(11));
    assert_eq!(recent[0].task_url, "http://127.0.0.1:1/jobs/j/tasks/t11");
}

#[test]
fn a_node_whose_agent_is_away_cannot_reboot_and_a_lost_node_forgets_its_waiting_reboot() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "a", "commandLine": "sleep 9"})]);
    let n = env.nodes("p")[0].id.clone();
    restart(&mut env, &n, RestartKind::Reboot, DeallocationOption::TaskCompletion).expect("reboot");
    assert_eq!(node(&env, &n).ops.pending_restart, Some(RestartKind::Reboot));
    // The agent is lost: the node is restarted anyway, its task requeued, the wait dropped.
    env.event(Event::AgentLost { node_id: n.clone() });
    assert_eq!(restart(&mut env, &n, RestartKind::Reboot, DeallocationOption::Requeue).unwrap_err().code, "NodeBeingRebooted");
    env.advance(super::RECONNECT_GRACE_SECS + 1);
    assert_eq!(node(&env, &n).ops.pending_restart, None);
    assert_eq!(restart(&mut env, &n, RestartKind::Reboot, DeallocationOption::Requeue).unwrap_err().code, "NodeBeingStarted");
    env.connect_spawned();
    assert_eq!(node(&env, &n).state, NodeState::Running, "back, it runs the requeued task");
}
