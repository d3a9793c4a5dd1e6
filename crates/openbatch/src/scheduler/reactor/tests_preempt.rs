//! Reactor tests: scheduling across jobs — job priority, `maxParallelTasks` and
//! `allowTaskPreemption`.

use super::testenv::TestEnv;
use super::{Effect, Event};
use crate::agent::protocol::{ExecKind, ServiceMessage};
use crate::model::common::ExecutionResult;
use crate::model::job::{DisableJobOption, JobState};
use crate::model::task::TaskState;
use serde_json::{json, Value};

fn sleeper(id: &str) -> Value {
    json!({"id": id, "commandLine": "sleep 30"})
}

/// A job with `priority` that allows preemption or not.
fn job(env: &mut TestEnv, id: &str, priority: i32, preemptible: bool) {
    env.job_with(id, "p", json!({"priority": priority, "allowTaskPreemption": preemptible}));
}

/// Changes a job as Job Patch does: writes it and tells the reactor.
fn patch_job(env: &mut TestEnv, id: &str, change: impl FnOnce(&mut crate::model::job::JobSpec)) {
    let mut j = env.job(id);
    change(&mut j.spec);
    env.put(j);
    env.event(Event::JobChanged(id.into()));
}

/// The kill messages sent for a task so far.
fn kills(env: &TestEnv, job: &str, task: &str) -> usize {
    let kind = ExecKind::Task { job_id: job.into(), task_id: task.into() };
    env.effects.iter().filter(|e| matches!(e, Effect::Send { msg: ServiceMessage::Kill { kind: k, .. }, .. } if *k == kind)).count()
}

fn running(env: &TestEnv, job: &str, task: &str) -> bool {
    env.where_runs(job, task).is_some()
}

#[test]
fn a_higher_priority_job_goes_first_when_a_slot_frees() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "blocker", 0, false);
    env.add_task("blocker", "b");
    job(&mut env, "low", -10, false);
    job(&mut env, "high", 100, false);
    env.add_task("low", "l1");
    env.add_task("high", "h1");
    env.add_task("high", "h2");
    assert!(!running(&env, "low", "l1") && !running(&env, "high", "h1"));
    env.exit("blocker", "b", 0);
    assert!(running(&env, "high", "h1"), "the higher-priority job's task goes first, though added later");
    env.exit("high", "h1", 0);
    assert!(running(&env, "high", "h2"));
    env.exit("high", "h2", 0);
    assert!(running(&env, "low", "l1"));
    env.exit("low", "l1", 0);
    assert_eq!(env.state("low", "l1"), TaskState::Completed);
}

#[test]
fn max_parallel_tasks_caps_a_job_and_leaves_room_for_others() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 4);
    env.job_with("capped", "p", json!({"priority": 10, "maxParallelTasks": 2}));
    env.add_tasks("capped", (0..4).map(|i| sleeper(&format!("c{i}"))).collect());
    job(&mut env, "other", 0, false);
    env.add_tasks("other", vec![sleeper("o1"), sleeper("o2"), sleeper("o3")]);
    let capped = (0..4).filter(|i| running(&env, "capped", &format!("c{i}"))).count();
    assert_eq!(capped, 2, "two of the capped job at once");
    assert!(running(&env, "other", "o1") && running(&env, "other", "o2"), "the free slots go to the other job");
    assert!(!running(&env, "other", "o3"));
    env.exit("capped", "c0", 0);
    assert!(running(&env, "capped", "c2"), "the freed slot goes back to the capped, higher-priority job");
    patch_job(&mut env, "capped", |s| s.max_parallel_tasks = Some(1));
    env.exit("capped", "c1", 0);
    assert!(running(&env, "other", "o3"), "lowered to 1: c2 runs, so the slot goes to the other job");
    assert!(!running(&env, "capped", "c3"));
}

#[test]
fn a_priority_change_reorders_queued_work() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "blocker", 0, false);
    env.add_task("blocker", "b");
    job(&mut env, "first", 0, false);
    job(&mut env, "second", 0, false);
    env.add_task("first", "f");
    env.add_task("second", "s");
    patch_job(&mut env, "second", |s| s.priority = Some(5));
    env.exit("blocker", "b", 0);
    assert!(running(&env, "second", "s"), "raised above the older job");
    env.exit("second", "s", 0);
    assert!(running(&env, "first", "f"));
}

#[test]
fn preemption_only_when_the_lower_job_allows_it() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "low", 0, false);
    env.add_tasks("low", vec![sleeper("l")]);
    job(&mut env, "high", 10, false);
    env.add_task("high", "h");
    assert!(running(&env, "low", "l") && !running(&env, "high", "h"), "allowTaskPreemption false");
    patch_job(&mut env, "low", |s| s.allow_task_preemption = Some(true));
    assert!(running(&env, "high", "h"), "allowed now: the high task takes the slot");
    assert_eq!(env.state("low", "l"), TaskState::Active);
    assert_eq!(kills(&env, "low", "l"), 1, "its process is killed");
}

#[test]
fn a_preempted_task_is_requeued_with_its_retries_and_reruns() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "low", 0, true);
    env.add_tasks("low", vec![json!({"id": "l", "commandLine": "sleep 30", "constraints": {"maxTaskRetryCount": 3}})]);
    env.exit("low", "l", 1);
    assert_eq!(env.task("low", "l").status.execution_info.retry_count, 1);
    assert!(running(&env, "low", "l"), "retried");
    env.advance(1);
    job(&mut env, "high", 10, false);
    env.add_task("high", "h");
    let l = env.task("low", "l");
    assert_eq!(l.status.state, TaskState::Active);
    assert_eq!(l.status.execution_info.retry_count, 1, "a preemption consumes no retry");
    assert_eq!(l.status.execution_info.requeue_count, 1);
    assert_eq!(l.status.execution_info.last_requeue_time, Some(env.reactor.now()));
    assert!(l.status.node_info.is_none() && l.status.execution_info.start_time.is_none());
    assert!(running(&env, "high", "h"));
    let node = &env.nodes("p")[0];
    assert_eq!((node.running_tasks_count, node.running_task_slots_count), (1, 1));
    env.exit("high", "h", 0);
    assert!(running(&env, "low", "l"), "runs again once the slot is free");
    env.exit("low", "l", 0);
    let l = env.task("low", "l");
    assert_eq!(l.status.state, TaskState::Completed);
    assert_eq!(l.status.execution_info.result, Some(ExecutionResult::Success));
    assert_eq!((l.status.execution_info.retry_count, l.status.execution_info.requeue_count), (1, 1));
}

#[test]
fn victims_are_the_lowest_priority_then_the_latest_started() {
    let mut env = TestEnv::new();
    env.pool("p", 2, 2);
    job(&mut env, "mid", 0, true);
    job(&mut env, "low", -5, true);
    env.add_tasks("mid", vec![sleeper("m1"), sleeper("m2")]);
    env.add_tasks("low", vec![sleeper("l1")]);
    env.advance(1);
    env.add_tasks("low", vec![sleeper("l2")]);
    job(&mut env, "high", 10, false);
    env.add_tasks("high", vec![sleeper("h1")]);
    assert_eq!(env.state("low", "l2"), TaskState::Active, "the latest of the lowest-priority job goes");
    assert!(running(&env, "low", "l1") && running(&env, "mid", "m1") && running(&env, "mid", "m2"));
    env.add_tasks("high", vec![sleeper("h2")]);
    assert_eq!(env.state("low", "l1"), TaskState::Active);
    assert!(running(&env, "mid", "m1") && running(&env, "mid", "m2"));
    env.add_tasks("high", vec![sleeper("h3")]);
    let mid_left = ["m1", "m2"].iter().filter(|t| running(&env, "mid", t)).count();
    assert_eq!(mid_left, 1, "then the higher of the lower jobs, one task at a time");
    assert!(["h1", "h2", "h3"].iter().all(|t| running(&env, "high", t)));
    assert_eq!(env.state("low", "l1"), TaskState::Active, "requeued tasks wait behind the higher job");
}

#[test]
fn a_multi_slot_task_frees_enough_slots_on_one_node() {
    let mut env = TestEnv::new();
    env.pool("p", 2, 2);
    job(&mut env, "low", 0, true);
    env.add_tasks("low", (1..=4).map(|i| sleeper(&format!("l{i}"))).collect());
    job(&mut env, "high", 10, false);
    env.add_tasks("high", vec![json!({"id": "big", "commandLine": "sleep 30", "requiredSlots": 2})]);
    let (node, _) = env.where_runs("high", "big").expect("big runs");
    let requeued: Vec<String> = (1..=4).map(|i| format!("l{i}")).filter(|t| env.state("low", t) == TaskState::Active).collect();
    assert_eq!(requeued.len(), 2, "exactly the two tasks of one node");
    let n = env.nodes("p").into_iter().find(|n| n.id == node).expect("node");
    assert_eq!(n.running_task_slots_count, 2);
}

#[test]
fn no_preemption_for_equal_priority_or_the_same_job() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "a", 5, true);
    env.add_tasks("a", vec![sleeper("a1"), sleeper("a2")]);
    assert!(running(&env, "a", "a1") && !running(&env, "a", "a2"), "its own tasks are not preempted");
    job(&mut env, "b", 5, true);
    env.add_tasks("b", vec![sleeper("b1")]);
    assert!(running(&env, "a", "a1") && !running(&env, "b", "b1"), "equal priority");
    patch_job(&mut env, "b", |s| s.priority = Some(6));
    assert!(running(&env, "b", "b1"), "raised above by Job Patch: it preempts");
    assert_eq!(env.state("a", "a1"), TaskState::Active);
    assert_eq!(kills(&env, "a", "a1"), 1);
    patch_job(&mut env, "a", |s| s.priority = Some(7));
    assert!(running(&env, "a", "a1") && !running(&env, "b", "b1"), "a, now higher, takes the slot back (b allows preemption too)");
}

#[test]
fn a_job_manager_task_is_not_preempted() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_with("m", "p", json!({"allowTaskPreemption": true, "jobManagerTask": {"id": "jm", "commandLine": "manage"}}));
    env.add_tasks("m", vec![json!({"id": "jm", "commandLine": "manage"})]);
    assert!(running(&env, "m", "jm"));
    job(&mut env, "high", 10, false);
    env.add_task("high", "h");
    assert!(running(&env, "m", "jm") && !running(&env, "high", "h"));
}

#[test]
fn a_disabled_high_job_does_not_preempt_until_enabled() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "low", 0, true);
    env.add_tasks("low", vec![sleeper("l")]);
    job(&mut env, "high", 10, false);
    env.call(Event::DisableJob { job_id: "high".into(), option: DisableJobOption::Requeue }).expect("disabled");
    env.add_task("high", "h");
    assert!(running(&env, "low", "l"), "a disabled job schedules nothing");
    env.call(Event::EnableJob { job_id: "high".into() }).expect("enabled");
    assert!(running(&env, "high", "h") && env.state("low", "l") == TaskState::Active);
}

#[test]
fn a_disabling_low_job_is_preempted_and_becomes_disabled() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "low", 0, true);
    env.add_tasks("low", vec![sleeper("l")]);
    env.call(Event::DisableJob { job_id: "low".into(), option: DisableJobOption::Wait }).expect("disabling");
    assert_eq!(env.job("low").status.state, JobState::Disabling);
    job(&mut env, "high", 10, false);
    env.add_task("high", "h");
    assert!(running(&env, "high", "h"));
    assert_eq!(env.state("low", "l"), TaskState::Active);
    assert_eq!(env.job("low").status.state, JobState::Disabled, "nothing of it runs any more");
    env.exit("high", "h", 0);
    assert!(!running(&env, "low", "l"), "a disabled job's task waits");
    env.call(Event::EnableJob { job_id: "low".into() }).expect("enabled");
    assert!(running(&env, "low", "l"));
}

#[test]
fn terminating_the_high_job_lets_the_preempted_task_rerun() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "low", 0, true);
    env.add_tasks("low", vec![sleeper("l")]);
    job(&mut env, "high", 10, false);
    env.add_tasks("high", vec![sleeper("h")]);
    assert_eq!(env.state("low", "l"), TaskState::Active);
    env.call(Event::TerminateJob { job_id: "high".into(), reason: "UserTerminate".into() }).expect("terminated");
    assert_eq!(env.state("high", "h"), TaskState::Completed);
    assert!(running(&env, "low", "l"));
    env.call(Event::TerminateJob { job_id: "low".into(), reason: "UserTerminate".into() }).expect("terminated");
    let l = env.task("low", "l");
    assert_eq!((l.status.state, l.status.execution_info.requeue_count), (TaskState::Completed, 1));
}

#[test]
fn preemption_is_the_same_after_a_restore() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    job(&mut env, "low", 0, true);
    // Dispatched first, "z" is stored after "a": the restore must follow dispatch order.
    env.add_tasks("low", vec![sleeper("z")]);
    env.advance(1);
    env.add_tasks("low", vec![sleeper("a")]);
    // A restart: the reactor's memory is rebuilt from the records alone.
    env.restart();
    env.check();
    job(&mut env, "high", 10, false);
    env.add_task("high", "h");
    assert_eq!(env.state("low", "a"), TaskState::Active, "the later one, as dispatched before the restore");
    assert!(running(&env, "low", "z"));
}

#[test]
fn a_job_with_a_preparation_task_prepares_the_node_it_preempts_on() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    job(&mut env, "low", 0, true);
    env.add_tasks("low", vec![sleeper("l")]);
    let prep = |wait: bool| json!({"priority": 10, "jobPreparationTask": {"commandLine": "prep", "waitForSuccess": wait}});
    env.job_with("waits", "p", prep(true));
    env.add_task("waits", "w");
    assert!(running(&env, "low", "l"), "a job whose preparation must succeed first preempts only on prepared nodes");
    env.job_with("runs", "p", prep(false));
    env.add_task("runs", "r");
    assert_eq!(env.state("low", "l"), TaskState::Active);
    assert!(running(&env, "runs", "r"));
    let prep_kind = ExecKind::JobPreparation { job_id: "runs".into() };
    assert!(env.running.values().any(|m| m.values().any(|s| s.kind == prep_kind)), "its preparation task runs there too");
}
