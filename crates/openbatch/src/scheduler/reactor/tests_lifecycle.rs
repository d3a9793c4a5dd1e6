//! Reactor tests of the job and task lifecycle rules: dependencies, exit conditions, the job
//! manager task, job wall-clock limits.

use super::testenv::TestEnv;
use super::Event;
use crate::agent::protocol::{ExecKind, FailureKind};
use crate::model::job::JobState;
use crate::model::task::TaskState;
use serde_json::json;

fn deps_job(env: &mut TestEnv, extra: serde_json::Value) {
    env.pool("p", 1, 4);
    let mut spec = json!({"usesTaskDependencies": true});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    env.job_with("j", "p", spec);
}

fn task(id: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut t = json!({"id": id, "commandLine": "true"});
    if let (Some(s), Some(e)) = (t.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    t
}

#[test]
fn a_chain_runs_in_order() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks(
        "j",
        vec![
            task("c", json!({"dependsOn": {"taskIds": ["b"]}})),
            task("b", json!({"dependsOn": {"taskIds": ["a"]}})),
            task("a", json!({})),
        ],
    );
    assert!(env.where_runs("j", "a").is_some());
    assert!(env.where_runs("j", "b").is_none() && env.where_runs("j", "c").is_none());
    assert_eq!(env.reactor.deps.waiting_on("j", "b"), 1);
    env.exit("j", "a", 0);
    assert!(env.where_runs("j", "b").is_some() && env.where_runs("j", "c").is_none());
    env.exit("j", "b", 0);
    env.exit("j", "c", 0);
    assert_eq!(env.state("j", "c"), TaskState::Completed);
}

#[test]
fn a_dependency_on_a_task_added_later_waits_for_it() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks("j", vec![task("d", json!({"dependsOn": {"taskIds": ["later"]}}))]);
    env.advance(1);
    assert!(env.where_runs("j", "d").is_none());
    env.add_task("j", "later");
    env.exit("j", "later", 0);
    assert!(env.where_runs("j", "d").is_some());
}

#[test]
fn ranges_count_integer_ids_with_leading_zeros() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks(
        "j",
        vec![
            task("merge", json!({"dependsOn": {"taskIdRanges": [{"start": 1, "end": 3}]}})),
            task("01", json!({})),
            task("2", json!({})),
            task("003", json!({})),
        ],
    );
    for id in ["01", "2"] {
        env.exit("j", id, 0);
    }
    assert!(env.where_runs("j", "merge").is_none());
    env.exit("j", "003", 0);
    assert!(env.where_runs("j", "merge").is_some(), "003 is task 3 for a range");
}

#[test]
fn a_failure_blocks_unless_its_exit_conditions_satisfy() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    let satisfy = json!({"exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]}});
    env.add_tasks(
        "j",
        vec![
            task("soft", satisfy),
            task("hard", json!({})),
            task("after-soft", json!({"dependsOn": {"taskIds": ["soft"]}})),
            task("after-hard", json!({"dependsOn": {"taskIds": ["hard"]}})),
        ],
    );
    env.exit("j", "soft", 3);
    env.exit("j", "hard", 2);
    assert!(env.where_runs("j", "after-soft").is_some(), "exit 3 satisfies");
    env.advance(1);
    assert!(env.where_runs("j", "after-hard").is_none(), "a failure blocks");
    assert_eq!(env.state("j", "after-hard"), TaskState::Active);
    // A success can block too, when the exit conditions say so.
    let block = json!({"exitConditions": {"exitCodes": [{"code": 0, "exitOptions": {"dependencyAction": "block"}}]}});
    env.add_tasks("j", vec![task("z", block), task("after-z", json!({"dependsOn": {"taskIds": ["z"]}}))]);
    env.exit("j", "z", 0);
    assert!(env.where_runs("j", "after-z").is_none());
}

#[test]
fn a_blocked_dependent_runs_after_its_dependency_is_reactivated_and_succeeds() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks("j", vec![task("a", json!({})), task("b", json!({"dependsOn": {"taskIds": ["a"]}}))]);
    env.exit("j", "a", 1);
    assert!(env.where_runs("j", "b").is_none());
    env.call(Event::ReactivateTask { job_id: "j".into(), task_id: "a".into() }).expect("reactivated");
    env.exit("j", "a", 0);
    assert!(env.where_runs("j", "b").is_some());
}

#[test]
fn a_retry_that_succeeds_releases_dependents_once() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks(
        "j",
        vec![task("a", json!({"constraints": {"maxTaskRetryCount": 1}})), task("b", json!({"dependsOn": {"taskIds": ["a"]}}))],
    );
    env.exit("j", "a", 1);
    assert!(env.where_runs("j", "b").is_none(), "a retry is not a completion");
    env.exit("j", "a", 0);
    assert!(env.where_runs("j", "b").is_some());
}

#[test]
fn a_dependency_deleted_keeps_its_dependents_waiting() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks("j", vec![task("a", json!({})), task("b", json!({"dependsOn": {"taskIds": ["a"]}}))]);
    env.call(Event::DeleteTask { job_id: "j".into(), task_id: "a".into() }).expect("deleted");
    env.advance(1);
    assert!(env.where_runs("j", "b").is_none());
    env.add_task("j", "a");
    env.exit("j", "a", 0);
    assert!(env.where_runs("j", "b").is_some(), "a new task with the id counts");
}

#[test]
fn dependencies_survive_a_restore() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks(
        "j",
        vec![
            task("a", json!({})),
            task("b", json!({"dependsOn": {"taskIds": ["a"]}})),
            task("c", json!({"dependsOn": {"taskIds": ["x"]}})),
        ],
    );
    env.exit("j", "a", 0);
    env.exit("j", "b", 0);
    env.add_tasks("j", vec![task("d", json!({"dependsOn": {"taskIds": ["b"]}})), task("e", json!({"dependsOn": {"taskIds": ["d"]}}))]);
    // A restart: the reactor's memory is rebuilt from the records alone.
    env.restart();
    env.check();
    assert_eq!(env.reactor.deps.waiting_on("j", "c"), 1);
    assert_eq!(env.reactor.deps.waiting_on("j", "e"), 1);
    env.exit("j", "d", 0);
    assert!(env.where_runs("j", "e").is_some());
}

#[test]
fn a_long_chain_resolves() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    let n = 500;
    let specs: Vec<_> = (0..n)
        .map(|i| if i == 0 { task("0", json!({})) } else { task(&i.to_string(), json!({"dependsOn": {"taskIds": [(i - 1).to_string()]}})) })
        .collect();
    env.add_tasks("j", specs);
    for i in 0..n {
        env.exit("j", &i.to_string(), 0);
    }
    assert_eq!(env.state("j", &(n - 1).to_string()), TaskState::Completed);
}

#[test]
fn perform_exit_options_job_action_terminates_or_disables_the_job() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_with("j", "p", json!({"onTaskFailure": "performexitoptionsjobaction"}));
    let keep = json!({"exitConditions": {"exitCodes": [{"code": 5, "exitOptions": {"jobAction": "none"}}]}});
    env.add_tasks("j", vec![task("five", keep)]);
    env.exit("j", "five", 5);
    assert_eq!(env.job("j").status.state, JobState::Active, "exit 5 maps to no job action");
    env.add_task("j", "bad");
    env.add_task("j", "other");
    env.exit("j", "bad", 1);
    let j = env.job("j");
    assert_eq!(j.status.state, JobState::Completed);
    assert_eq!(j.status.execution_info.terminate_reason.as_deref(), Some("TaskFailed"));
    assert_eq!(env.state("j", "other"), TaskState::Completed, "running tasks end with the job");

    env.job_with("k", "p", json!({"onTaskFailure": "performexitoptionsjobaction"}));
    let disable = json!({"exitConditions": {"preProcessingError": {"jobAction": "disable"}}});
    env.add_tasks("k", vec![task("t", disable)]);
    env.end(ExecKind::Task { job_id: "k".into(), task_id: "t".into() }, None, Some(FailureKind::PreProcessing));
    assert_eq!(env.job("k").status.state, JobState::Disabled);
}

#[test]
fn no_job_action_without_perform_exit_options() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "bad");
    env.exit("j", "bad", 1);
    assert_eq!(env.job("j").status.state, JobState::Active);
}

#[test]
fn the_job_manager_runs_first_on_a_whole_node_and_ends_the_job() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 4);
    env.job_with("j", "p", json!({"jobManagerTask": {"id": "jm", "commandLine": "manage"}}));
    // The service adds the job manager's task with the job (the handler does; here by hand).
    env.add_tasks("j", vec![json!({"id": "jm", "commandLine": "manage"})]);
    env.add_task("j", "t");
    assert!(env.where_runs("j", "jm").is_some());
    assert!(env.where_runs("j", "t").is_none(), "runExclusive: the node is the manager's");
    assert_eq!(env.nodes("p")[0].running_task_slots_count, 4);
    env.exit("j", "jm", 0);
    let j = env.job("j");
    assert_eq!(j.status.state, JobState::Completed);
    assert_eq!(j.status.execution_info.terminate_reason.as_deref(), Some("JMComplete"));
    assert_eq!(env.nodes("p")[0].running_task_slots_count, 0);
}

#[test]
fn a_job_past_its_max_wall_clock_time_is_terminated() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with("j", "p", json!({"constraints": {"maxWallClockTime": "PT10S"}}));
    env.add_task("j", "t");
    env.advance(5);
    assert_eq!(env.job("j").status.state, JobState::Active);
    env.advance(6);
    let j = env.job("j");
    assert_eq!(j.status.state, JobState::Completed);
    assert_eq!(j.status.execution_info.terminate_reason.as_deref(), Some("MaxWallClockTimeExpiry"));
    assert_eq!(env.state("j", "t"), TaskState::Completed);
}

fn mi_pool(env: &mut TestEnv, nodes: i32, inter_node: bool) {
    let spec = json!({"id": "p", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": nodes, "taskSlotsPerNode": 1, "enableInterNodeCommunication": inter_node});
    env.pool_with("p", spec);
    env.job_on("j", "p");
}

fn mi_task(instances: i32) -> serde_json::Value {
    json!({"id": "mpi", "commandLine": "app", "multiInstanceSettings": {"numberOfInstances": instances, "coordinationCommandLine": "coord"}})
}

/// The nodes on which `job/task` runs something now.
fn instances_running(env: &TestEnv, job: &str, task: &str) -> Vec<String> {
    let kind = ExecKind::Task { job_id: job.into(), task_id: task.into() };
    env.running.iter().filter(|(_, m)| m.values().any(|s| s.kind == kind)).map(|(n, _)| n.clone()).collect()
}

#[test]
fn a_multi_instance_task_coordinates_on_distinct_nodes_then_runs_on_the_primary() {
    let mut env = TestEnv::new();
    mi_pool(&mut env, 4, true);
    env.add_tasks("j", vec![mi_task(3)]);
    let nodes = instances_running(&env, "j", "mpi");
    assert_eq!(nodes.len(), 3, "one coordination command per instance");
    let (_, spec) = env.where_runs("j", "mpi").expect("runs");
    let mi = spec.multi_instance.expect("instance environment");
    assert_eq!((mi.hosts.len(), spec.command_line.as_str()), (3, "coord"));
    assert_eq!(env.nodes("p").iter().filter(|n| n.running_tasks_count == 1).count(), 3);
    let kind = ExecKind::Task { job_id: "j".into(), task_id: "mpi".into() };
    for _ in 0..3 {
        env.end(kind.clone(), Some(0), None);
    }
    let (primary, app) = env.where_runs("j", "mpi").expect("the application command runs");
    assert_eq!(app.command_line, "app");
    assert!(app.multi_instance.as_ref().is_some_and(|m| m.is_master));
    assert_eq!(env.task("j", "mpi").status.node_info.map(|n| n.node_id), Some(primary));
    env.end(kind, Some(0), None);
    let t = env.task("j", "mpi");
    assert_eq!(t.status.state, TaskState::Completed);
    let subtasks = t.multi.expect("subtasks").subtasks;
    assert_eq!(subtasks.len(), 3);
    assert!(subtasks.iter().all(|s| s.state == crate::model::multi_instance::SubtaskState::Completed && s.exit_code == Some(0)));
    assert!(env.nodes("p").iter().all(|n| n.running_tasks_count == 0 && n.state == crate::model::node::NodeState::Idle));
}

#[test]
fn a_multi_instance_task_waits_for_enough_nodes() {
    let mut env = TestEnv::new();
    mi_pool(&mut env, 2, true);
    env.add_tasks("j", vec![mi_task(3)]);
    env.add_task("j", "small");
    assert!(instances_running(&env, "j", "mpi").is_empty());
    assert!(env.where_runs("j", "small").is_some(), "smaller work goes on meanwhile");
}

#[test]
fn a_failed_coordination_command_fails_the_task_and_frees_every_node() {
    let mut env = TestEnv::new();
    mi_pool(&mut env, 3, true);
    env.add_tasks("j", vec![mi_task(3)]);
    env.end(ExecKind::Task { job_id: "j".into(), task_id: "mpi".into() }, Some(4), None);
    let t = env.task("j", "mpi");
    assert_eq!((t.status.state, t.status.execution_info.exit_code), (TaskState::Completed, Some(4)));
    assert!(instances_running(&env, "j", "mpi").is_empty(), "the other instances are killed");
    assert!(env.nodes("p").iter().all(|n| n.running_tasks_count == 0));
}

#[test]
fn a_node_lost_mid_multi_instance_task_requeues_it_whole() {
    let mut env = TestEnv::new();
    mi_pool(&mut env, 3, true);
    env.add_tasks("j", vec![mi_task(2)]);
    let nodes = instances_running(&env, "j", "mpi");
    env.event(Event::AgentLost { node_id: nodes[1].clone() });
    env.advance(6);
    let t = env.task("j", "mpi");
    assert_eq!(t.status.execution_info.requeue_count, 1);
    // It runs again on the two nodes still there.
    assert_eq!(instances_running(&env, "j", "mpi").len(), 2);
}

#[test]
fn a_multi_instance_task_needs_inter_node_communication() {
    let mut env = TestEnv::new();
    mi_pool(&mut env, 3, false);
    env.add_tasks("j", vec![mi_task(2)]);
    let t = env.task("j", "mpi");
    assert_eq!(t.status.state, TaskState::Completed);
    assert_eq!(t.status.execution_info.failure_info.and_then(|f| f.code).as_deref(), Some("InterNodeCommunicationNotEnabled"));
}

#[test]
fn dependency_ids_compare_without_regard_to_case() {
    let mut env = TestEnv::new();
    deps_job(&mut env, json!({}));
    env.add_tasks("j", vec![task("Prep", json!({})), task("after", json!({"dependsOn": {"taskIds": ["prep"]}}))]);
    env.exit("j", "Prep", 0);
    assert!(env.where_runs("j", "after").is_some());
}

#[test]
fn a_success_takes_no_job_action() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with("j", "p", json!({"onTaskFailure": "performexitoptionsjobaction"}));
    let terminate_on_zero = json!({"exitConditions": {"exitCodes": [{"code": 0, "exitOptions": {"jobAction": "terminate"}}]}});
    env.add_tasks("j", vec![task("ok", terminate_on_zero)]);
    env.exit("j", "ok", 0);
    assert_eq!(env.job("j").status.state, JobState::Active);
}

#[test]
fn every_instance_that_started_shows_its_start_time() {
    use crate::agent::protocol::AgentMessage;
    let mut env = TestEnv::new();
    mi_pool(&mut env, 3, true);
    env.add_tasks("j", vec![mi_task(3)]);
    let kind = ExecKind::Task { job_id: "j".into(), task_id: "mpi".into() };
    let started: Vec<(String, u64)> =
        env.running.iter().flat_map(|(n, m)| m.values().filter(|s| s.kind == kind).map(|s| (n.clone(), s.dispatch_id))).collect();
    assert_eq!(started.len(), 3);
    let started_ms = env.reactor.now().timestamp_millis();
    for (node_id, dispatch_id) in started {
        env.event(Event::Agent { node_id, msg: AgentMessage::Started { kind: kind.clone(), dispatch_id, started_ms } });
    }
    let subtasks = env.task("j", "mpi").multi.expect("subtasks").subtasks;
    assert!(
        subtasks.iter().all(|s| s.start_time.is_some() && s.state == crate::model::multi_instance::SubtaskState::Running),
        "{subtasks:?}"
    );
    // One instance's coordination command fails: the others end with it, their start kept.
    env.end(kind, Some(7), None);
    let t = env.task("j", "mpi");
    assert_eq!(t.status.state, TaskState::Completed);
    assert!(t.multi.expect("subtasks").subtasks.iter().all(|s| s.start_time.is_some() && s.end_time.is_some()));
}
