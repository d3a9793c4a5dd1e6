//! Reactor tests: the Batch rules, without processes, HTTP or a database.

use super::testenv::TestEnv;
use super::{Effect, Event};
use crate::agent::protocol::{ExecKind, FailureKind};
use crate::model::common::ExecutionResult;
use crate::model::job::{DisableJobOption, JobNode, JobState, PrepTaskState};
use crate::model::node::NodeState;
use crate::model::pool::Pool;
use crate::model::task::{Task, TaskState};
use serde_json::json;

#[test]
fn tasks_run_in_slots_and_complete() {
    let mut env = TestEnv::new();
    env.pool("p", 2, 2);
    assert!(env.nodes("p").iter().all(|n| n.state == NodeState::Idle));
    env.job_on("j", "p");
    let ids: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    env.add_tasks("j", ids.iter().map(|id| json!({"id": id, "commandLine": "true"})).collect());
    let running: Vec<&String> = ids.iter().filter(|id| env.where_runs("j", id).is_some()).collect();
    assert_eq!(running.len(), 4, "2 nodes x 2 slots");
    assert!(env.nodes("p").iter().all(|n| n.running_tasks_count == 2 && n.state == NodeState::Running));
    for id in &ids[..4] {
        env.exit("j", id, 0);
    }
    assert!(env.where_runs("j", "t4").is_some() && env.where_runs("j", "t5").is_some());
    env.exit("j", "t4", 0);
    env.exit("j", "t5", 0);
    for id in &ids {
        let t = env.task("j", id);
        assert_eq!(t.status.state, TaskState::Completed);
        assert_eq!(t.status.execution_info.result, Some(ExecutionResult::Success));
    }
    assert!(env.nodes("p").iter().all(|n| n.state == NodeState::Idle && n.running_tasks_count == 0));
    assert_eq!(env.nodes("p").iter().map(|n| n.total_tasks_succeeded).sum::<i32>(), 6);
    let pool = env.all::<Pool>().pop().expect("pool");
    assert_eq!(pool.status.current_dedicated_nodes, 2);
}

#[test]
fn a_retry_that_succeeds() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "t", "commandLine": "false", "constraints": {"maxTaskRetryCount": 2}})]);
    env.exit("j", "t", 1);
    assert_eq!(env.state("j", "t"), TaskState::Preparing, "retried at once");
    assert_eq!(env.task("j", "t").status.execution_info.retry_count, 1);
    env.exit("j", "t", 0);
    let t = env.task("j", "t");
    assert_eq!(t.status.state, TaskState::Completed);
    assert_eq!(t.status.execution_info.result, Some(ExecutionResult::Success));
    assert_eq!(t.status.execution_info.retry_count, 1);
}

#[test]
fn minus_one_retries_without_limit() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "t", "commandLine": "false", "constraints": {"maxTaskRetryCount": -1}})]);
    for attempt in 1..=50 {
        env.exit("j", "t", 1);
        assert_eq!(env.state("j", "t"), TaskState::Preparing, "retried again after failure {attempt}");
        assert_eq!(env.task("j", "t").status.execution_info.retry_count, attempt);
    }
    env.exit("j", "t", 0);
    assert_eq!(env.task("j", "t").status.execution_info.result, Some(ExecutionResult::Success));
}

#[test]
fn retries_end_and_launch_failures_are_final() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_on("j", "p");
    env.add_tasks(
        "j",
        vec![
            json!({"id": "a", "commandLine": "false", "constraints": {"maxTaskRetryCount": 1}}),
            json!({"id": "b", "commandLine": "nope", "constraints": {"maxTaskRetryCount": 3}}),
        ],
    );
    env.exit("j", "a", 2);
    env.exit("j", "a", 2);
    let a = env.task("j", "a");
    assert_eq!(
        (a.status.state, a.status.execution_info.retry_count, a.status.execution_info.exit_code),
        (TaskState::Completed, 1, Some(2))
    );
    env.end(ExecKind::Task { job_id: "j".into(), task_id: "b".into() }, None, Some(FailureKind::PreProcessing));
    let b = env.task("j", "b");
    assert_eq!((b.status.state, b.status.execution_info.retry_count), (TaskState::Completed, 0));
}

#[test]
fn a_timed_out_task_is_retried() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_tasks(
        "j",
        vec![json!({"id": "t", "commandLine": "sleep 9", "constraints": {"maxTaskRetryCount": 1, "maxWallClockTime": "PT1S"}})],
    );
    env.end(ExecKind::Task { job_id: "j".into(), task_id: "t".into() }, Some(137), Some(FailureKind::WallClockTimeout));
    assert_eq!(env.task("j", "t").status.execution_info.retry_count, 1);
    assert!(env.where_runs("j", "t").is_some());
}

#[test]
fn node_lost_mid_task_requeues_and_replaces_it() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "t");
    let (node_id, _) = env.where_runs("j", "t").expect("running");
    env.running.clear();
    env.event(Event::AgentLost { node_id: node_id.clone() });
    env.advance(2);
    assert_eq!(env.state("j", "t"), TaskState::Preparing, "within the grace period the task stays");
    env.advance(4);
    let t = env.task("j", "t");
    assert_eq!(t.status.state, TaskState::Active);
    assert_eq!(t.status.execution_info.requeue_count, 1);
    assert_eq!(t.status.execution_info.retry_count, 0);
    assert!(env.effects.iter().any(|e| matches!(e, Effect::KillAgent { .. })));
    assert_eq!(env.nodes("p")[0].state, NodeState::Unusable);
    assert_eq!(env.spawned.len(), 1, "the node's agent is restarted");
    env.connect_spawned();
    assert!(env.where_runs("j", "t").is_some(), "runs again on the restarted node");
    env.exit("j", "t", 0);
    assert_eq!(env.state("j", "t"), TaskState::Completed);
}

#[test]
fn a_returning_agent_keeps_its_tasks_and_reports_results() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_on("j", "p");
    env.add_task("j", "a");
    env.add_task("j", "b");
    let (node_id, a) = env.where_runs("j", "a").expect("a runs");
    let (_, b) = env.where_runs("j", "b").expect("b runs");
    env.event(Event::AgentLost { node_id: node_id.clone() });
    let node = env.nodes("p").pop().expect("node");
    let now = env.reactor.now().timestamp_millis();
    let finished = vec![crate::agent::protocol::ExecResult {
        kind: a.kind.clone(),
        dispatch_id: a.dispatch_id,
        started_ms: Some(now),
        ended_ms: now,
        exit_code: Some(0),
        failure: None,
        usage: None,
    }];
    let hello = Event::AgentHello {
        pool_id: "p".into(),
        node_id: node_id.clone(),
        token: node.agent_token.clone(),
        agent_version: "t".into(),
        running: vec![(b.kind.clone(), b.dispatch_id)],
        finished,
    };
    env.running.get_mut(&node_id).map(|m| m.remove(&a.dispatch_id));
    env.batch(vec![(hello, Some(1))]);
    assert_eq!(env.state("j", "a"), TaskState::Completed);
    assert_eq!(env.state("j", "b"), TaskState::Preparing, "still running on the agent");
    assert!(env.effects.iter().any(|e| matches!(e, Effect::Ack { dispatch_id, .. } if *dispatch_id == a.dispatch_id)));
    assert!(env.spawned.is_empty(), "no replacement");
}

#[test]
fn a_hello_with_a_wrong_token_is_refused_and_changes_nothing() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    let node = env.nodes("p").pop().expect("node");
    let hello = Event::AgentHello {
        pool_id: "p".into(),
        node_id: node.id.clone(),
        token: "wrong".into(),
        agent_version: "x".into(),
        running: vec![],
        finished: vec![],
    };
    let answers = env.batch(vec![(hello, Some(3))]);
    assert!(matches!(answers.as_slice(), [(3, super::Answer::Hello(false))]));
    assert_eq!(env.nodes("p").pop().expect("node"), node);
}

#[test]
fn disable_with_requeue_while_running_then_enable() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "t");
    assert!(env.where_runs("j", "t").is_some());
    env.call(Event::DisableJob { job_id: "j".into(), option: DisableJobOption::Requeue }).expect("disabled");
    assert!(env.where_runs("j", "t").is_none(), "killed");
    let t = env.task("j", "t");
    assert_eq!(t.status.state, TaskState::Active);
    assert_eq!(t.status.execution_info.requeue_count, 1);
    assert_eq!(env.job("j").status.state, JobState::Disabled);
    env.advance(1);
    assert!(env.where_runs("j", "t").is_none(), "a disabled job's tasks do not run");
    env.call(Event::EnableJob { job_id: "j".into() }).expect("enabled");
    assert!(env.where_runs("j", "t").is_some());
    assert!(env.call(Event::EnableJob { job_id: "j".into() }).is_err(), "409 when not disabled");
}

#[test]
fn disable_with_wait_stays_disabling_until_tasks_end() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "t");
    env.add_task("j", "u");
    env.call(Event::DisableJob { job_id: "j".into(), option: DisableJobOption::Wait }).expect("disabling");
    assert_eq!(env.job("j").status.state, JobState::Disabling);
    env.exit("j", "t", 0);
    assert_eq!(env.job("j").status.state, JobState::Disabled);
    assert_eq!(env.state("j", "u"), TaskState::Active);
}

#[test]
fn terminate_task_and_job() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "a");
    env.add_task("j", "b");
    env.call(Event::TerminateTask { job_id: "j".into(), task_id: "a".into() }).expect("terminated");
    let a = env.task("j", "a");
    assert_eq!(a.status.state, TaskState::Completed);
    assert_eq!(a.status.execution_info.failure_info.as_ref().and_then(|f| f.code.as_deref()), Some("TaskEnded"));
    assert!(env.where_runs("j", "b").is_some(), "the freed slot is used");
    assert!(env.call(Event::TerminateTask { job_id: "j".into(), task_id: "a".into() }).is_err(), "409 TaskCompleted");
    env.call(Event::TerminateJob { job_id: "j".into(), reason: "UserTerminate".into() }).expect("job terminated");
    let j = env.job("j");
    assert_eq!(j.status.state, JobState::Completed);
    assert_eq!(j.status.execution_info.terminate_reason.as_deref(), Some("UserTerminate"));
    assert_eq!(env.state("j", "b"), TaskState::Completed);
    assert!(env.nodes("p").iter().all(|n| n.running_tasks_count == 0));
}

#[test]
fn all_tasks_complete_terminates_the_job() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with("j", "p", json!({"onAllTasksComplete": "terminatejob"}));
    env.advance(1);
    assert_eq!(env.job("j").status.state, JobState::Active, "a job without tasks stays active");
    env.add_task("j", "t");
    env.exit("j", "t", 0);
    let j = env.job("j");
    assert_eq!(j.status.state, JobState::Completed);
    assert_eq!(j.status.execution_info.terminate_reason.as_deref(), Some("AllTasksComplete"));
}

#[test]
fn preparation_then_tasks_then_release() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with(
        "j",
        "p",
        json!({"jobPreparationTask": {"commandLine": "prep", "constraints": {"maxTaskRetryCount": 1}}, "jobReleaseTask": {"commandLine": "rel"}}),
    );
    env.add_task("j", "t");
    assert!(env.where_runs("j", "t").is_none(), "waits for the preparation task");
    let prep = ExecKind::JobPreparation { job_id: "j".into() };
    env.end(prep.clone(), Some(1), None);
    assert_eq!(env.all::<JobNode>()[0].job_preparation_task_execution_info.as_ref().map(|i| i.retry_count), Some(1));
    env.end(prep, Some(0), None);
    let (_, spec) = env.where_runs("j", "t").expect("runs after preparation");
    assert!(spec.job_prep);
    env.exit("j", "t", 0);
    env.call(Event::TerminateJob { job_id: "j".into(), reason: "UserTerminate".into() }).expect("terminating");
    assert_eq!(env.job("j").status.state, JobState::Terminating, "waits for the release task");
    env.end(ExecKind::JobRelease { job_id: "j".into() }, Some(0), None);
    assert_eq!(env.job("j").status.state, JobState::Completed);
    let row = env.all::<JobNode>().pop().expect("row");
    assert_eq!(row.job_release_task_execution_info.map(|i| i.state), Some(PrepTaskState::Completed));
}

#[test]
fn delete_job_while_running_removes_everything() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "a");
    env.add_task("j", "b");
    env.call(Event::DeleteJob { job_id: "j".into() }).expect("deleted");
    assert!(env.all::<Task>().is_empty());
    assert!(env.all::<crate::model::job::Job>().is_empty());
    assert!(env.where_runs("j", "a").is_none());
    assert!(env.nodes("p").iter().all(|n| n.running_tasks_count == 0 && n.state == NodeState::Idle));
}

#[test]
fn resize_down_with_taskcompletion_waits_then_removes() {
    let mut env = TestEnv::new();
    env.pool("p", 2, 1);
    env.job_on("j", "p");
    env.add_task("j", "a");
    env.add_task("j", "b");
    let mut pool = env.all::<Pool>().pop().expect("pool");
    pool.spec.target_dedicated_nodes = Some(0);
    pool.status.pending_deallocation = Some(crate::model::pool::DeallocationOption::TaskCompletion);
    env.put(pool);
    env.event(Event::PoolChanged("p".into()));
    assert!(env.nodes("p").iter().all(|n| n.state == NodeState::LeavingPool));
    env.exit("j", "a", 0);
    env.exit("j", "b", 0);
    assert!(env.nodes("p").is_empty());
    assert_eq!(env.all::<Pool>()[0].status.current_dedicated_nodes, 0);
}

#[test]
fn restore_from_the_records_mid_run() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_on("j", "p");
    for id in ["a", "b", "c"] {
        env.add_task("j", id);
    }
    env.restart();
    env.check();
    env.exit("j", "a", 0);
    assert!(env.where_runs("j", "c").is_some(), "the queue survived");
    env.exit("j", "b", 0);
    env.exit("j", "c", 0);
    assert!(["a", "b", "c"].iter().all(|t| env.state("j", t) == TaskState::Completed));
}

#[test]
fn reactivate_runs_a_failed_task_again_with_its_retries_reset() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "t", "commandLine": "false", "constraints": {"maxTaskRetryCount": 1}})]);
    env.add_task("j", "ok");
    env.exit("j", "t", 1);
    env.exit("j", "t", 1);
    env.exit("j", "ok", 0);
    assert_eq!(env.task("j", "t").status.execution_info.retry_count, 1);
    let e = env.call(Event::ReactivateTask { job_id: "j".into(), task_id: "ok".into() }).expect_err("succeeded tasks stay");
    assert_eq!(e.code, "TaskCompletedSuccessfully");
    env.call(Event::ReactivateTask { job_id: "j".into(), task_id: "t".into() }).expect("reactivated");
    let t = env.task("j", "t");
    assert_eq!((t.status.execution_info.retry_count, t.status.execution_info.exit_code), (0, None));
    assert!(env.where_runs("j", "t").is_some());
    let e = env.call(Event::ReactivateTask { job_id: "j".into(), task_id: "t".into() }).expect_err("running");
    assert_eq!(e.code, "TaskNotCompleted");
    env.exit("j", "t", 0);
    assert_eq!(env.task("j", "t").status.execution_info.result, Some(ExecutionResult::Success));
}

#[test]
fn conditional_operations_check_the_record_in_the_batch_that_changes_it() {
    use crate::api::conditions::Conditions;
    use axum::http::{HeaderMap, HeaderValue};
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.clock.advance(chrono::Duration::seconds(1));
    env.add_task("j", "t");
    let if_match = |etag: &str| {
        let mut h = HeaderMap::new();
        h.insert("if-match", HeaderValue::from_str(&format!("\"{etag}\"")).expect("header"));
        Conditions::from_headers(&h).expect("valid")
    };
    let before = env.state("j", "t");
    let stale = if_match("0x8D0000000000000");
    let terminate = Event::TerminateTask { job_id: "j".into(), task_id: "t".into() };
    let e = env.call(Event::Conditional { cond: stale, event: Box::new(terminate.clone()) }).expect_err("stale ETag");
    assert_eq!((e.status.as_u16(), e.code.as_str()), (412, "ConditionNotMet"));
    assert_eq!(env.state("j", "t"), before, "nothing changed");
    let current = crate::model::time::etag_for(&env.task("j", "t").last_modified);
    env.call(Event::Conditional { cond: if_match(&current), event: Box::new(terminate) }).expect("current ETag");
    assert_eq!(env.state("j", "t"), TaskState::Completed);
    let e = env
        .call(Event::Conditional { cond: if_match(&current), event: Box::new(Event::DeleteJob { job_id: "j".into() }) })
        .expect_err("the job's ETag is another");
    assert_eq!(e.code, "ConditionNotMet");
    assert_eq!(env.all::<crate::model::job::Job>().len(), 1);
}
