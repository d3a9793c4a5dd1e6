//! Reactor tests of compute node operations: Disable and Enable Scheduling.

use super::testenv::TestEnv;
use super::Event;
use crate::model::node::{DisableSchedulingOption, NodeState, SchedulingState};
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
