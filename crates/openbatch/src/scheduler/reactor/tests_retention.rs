//! Reactor tests of task directories (retention, Delete Task, Delete Job) and of Delete Job
//! running the job release task first.

use super::testenv::TestEnv;
use super::{Effect, Event};
use crate::agent::protocol::{ExecKind, FileOp, ServiceMessage};
use crate::model::job::{Job, JobNode, JobState, PrepTaskState};
use crate::model::task::Task;
use serde_json::json;

/// The directory deletions sent so far: (node, root, path).
fn deletions(env: &TestEnv) -> Vec<(String, String, String)> {
    env.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { node_id, msg: ServiceMessage::File { op: FileOp::Delete { root, path, recursive: true }, .. } } => {
                Some((node_id.clone(), root.clone(), path.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_task_directory_goes_when_its_retention_passes() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_on("j", "p");
    env.add_tasks(
        "j",
        vec![
            json!({"id": "short", "commandLine": "true", "constraints": {"retentionTime": "PT10S"}}),
            json!({"id": "default", "commandLine": "true"}),
        ],
    );
    let node = env.where_runs("j", "short").expect("runs").0;
    env.exit("j", "short", 0);
    env.exit("j", "default", 0);
    env.advance(9);
    assert!(deletions(&env).is_empty(), "kept for its retention time");
    env.advance(2);
    assert_eq!(deletions(&env), vec![(node, "workitems/j/job-1".to_string(), "short".to_string())]);
    // The default is 7 days.
    env.advance(7 * 86400 - 20);
    assert_eq!(deletions(&env).len(), 1);
    env.advance(30);
    assert_eq!(deletions(&env).len(), 2);
    assert_eq!(deletions(&env)[1].2, "default");
}

#[test]
fn a_reactivated_task_keeps_its_directory_until_it_completes_again() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_tasks("j", vec![json!({"id": "t", "commandLine": "false", "constraints": {"retentionTime": "PT10S"}})]);
    env.exit("j", "t", 1);
    env.advance(5);
    env.call(Event::ReactivateTask { job_id: "j".into(), task_id: "t".into() }).expect("reactivated");
    env.advance(20);
    assert!(deletions(&env).is_empty(), "running again: its directory stays");
    env.exit("j", "t", 0);
    env.advance(11);
    assert_eq!(deletions(&env).len(), 1, "ten seconds after its second completion");
}

#[test]
fn deleting_a_task_deletes_its_directory() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "t");
    let node = env.where_runs("j", "t").expect("runs").0;
    env.call(Event::DeleteTask { job_id: "j".into(), task_id: "t".into() }).expect("deleted");
    assert_eq!(deletions(&env), vec![(node, "workitems/j/job-1".to_string(), "t".to_string())]);
    assert!(env.all::<Task>().is_empty());
}

#[test]
fn delete_job_runs_the_release_task_before_the_job_goes() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with("j", "p", json!({"jobPreparationTask": {"commandLine": "prep"}, "jobReleaseTask": {"commandLine": "rel"}}));
    env.add_task("j", "t");
    env.end(ExecKind::JobPreparation { job_id: "j".into() }, Some(0), None);
    let node = env.where_runs("j", "t").expect("runs after preparation").0;
    env.call(Event::DeleteJob { job_id: "j".into() }).expect("deleting");
    assert!(env.where_runs("j", "t").is_none(), "its running task is ended");
    assert_eq!(env.job("j").status.state, JobState::Deleting, "waits for the release task");
    assert!(deletions(&env).is_empty());
    let again = env.call(Event::DeleteJob { job_id: "j".into() }).expect_err("being deleted");
    assert_eq!(again.code, "JobBeingDeleted");
    env.end(ExecKind::JobRelease { job_id: "j".into() }, Some(0), None);
    assert!(env.all::<Job>().is_empty(), "gone after its release task");
    assert!(env.all::<Task>().is_empty() && env.all::<JobNode>().is_empty());
    assert_eq!(deletions(&env), vec![(node, "workitems".to_string(), "j".to_string())]);
}

#[test]
fn delete_after_terminate_does_not_release_twice() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with("j", "p", json!({"jobPreparationTask": {"commandLine": "prep"}, "jobReleaseTask": {"commandLine": "rel"}}));
    env.add_task("j", "t");
    env.end(ExecKind::JobPreparation { job_id: "j".into() }, Some(0), None);
    env.exit("j", "t", 0);
    env.call(Event::TerminateJob { job_id: "j".into(), reason: "UserTerminate".into() }).expect("terminating");
    env.end(ExecKind::JobRelease { job_id: "j".into() }, Some(0), None);
    let row = env.all::<JobNode>().pop().expect("row");
    assert_eq!(row.job_release_task_execution_info.map(|i| i.state), Some(PrepTaskState::Completed));
    env.call(Event::DeleteJob { job_id: "j".into() }).expect("deleted");
    assert!(env.all::<Job>().is_empty(), "released already: it goes at once");
}

#[test]
fn a_deleting_job_goes_when_the_node_running_its_release_is_lost() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_with("j", "p", json!({"jobPreparationTask": {"commandLine": "prep"}, "jobReleaseTask": {"commandLine": "rel"}}));
    env.add_task("j", "t");
    env.end(ExecKind::JobPreparation { job_id: "j".into() }, Some(0), None);
    env.call(Event::DeleteJob { job_id: "j".into() }).expect("deleting");
    // The node is lost while the release task runs: the job still goes.
    let node = env.nodes("p")[0].id.clone();
    env.event(Event::AgentLost { node_id: node });
    env.advance(super::RECONNECT_GRACE_SECS + 1);
    assert!(env.all::<Job>().is_empty(), "{:?}", env.all::<Job>());
}
