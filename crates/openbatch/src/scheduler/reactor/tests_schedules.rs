//! Reactor tests of job schedules on the hand-moved clock: when jobs are created (once,
//! recurring, one active job at a time, start windows, `doNotRunUntil` / `doNotRunAfter`),
//! Disable and Enable, restarts, Terminate and Delete, and auto pools.

use super::testenv::TestEnv;
use super::Event;
use crate::agent::protocol::ExecKind;
use crate::model::job::{Job, JobState};
use crate::model::job_schedule::{JobSchedule, JobScheduleState};
use crate::model::pool::{Pool, PoolState};
use crate::model::task::{Task, TaskState};
use crate::model::time::Timestamp;
use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};

const MIN: i64 = 60;
const HOUR: i64 = 3600;

/// The test clock's start plus `secs`.
fn at(secs: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A job specification on pool `p` whose job manager task `jm` ends the job when it exits.
fn managed() -> Value {
    json!({"poolInfo": {"poolId": "p"}, "jobManagerTask": {"id": "jm", "commandLine": "manage"}})
}

/// Pool `p` (one node, one slot) and schedule `id` with `schedule`, creating [`managed`] jobs.
fn managed_schedule(env: &mut TestEnv, id: &str, schedule: Value) {
    env.pool("p", 1, 1);
    env.schedule_with(id, json!({"schedule": schedule, "jobSpecification": managed()}));
}

/// The ids of the jobs schedule `id` has now, in the order it created them.
fn jobs_of(env: &TestEnv, id: &str) -> Vec<String> {
    let mut jobs: Vec<(u64, String)> = env
        .all::<Job>()
        .into_iter()
        .filter(|j| j.schedule_id() == Some(id))
        .map(|j| (j.spec.id.rsplit_once("-").and_then(|(_, n)| n.parse().ok()).unwrap_or(0), j.spec.id))
        .collect();
    jobs.sort();
    jobs.into_iter().map(|(_, id)| id).collect()
}

/// Schedule `id`'s (state, nextRunTime, recentJob id).
fn status(env: &TestEnv, id: &str) -> (JobScheduleState, Option<Timestamp>, Option<String>) {
    let s = env.schedule(id);
    (s.state, s.execution_info.next_run_time, s.execution_info.recent_job.map(|j| j.id))
}

/// The job manager task of `job` exits 0 (ending the job).
fn manager_exits(env: &mut TestEnv, job: &str) {
    env.exit(job, "jm", 0);
    assert_eq!(env.job(job).status.state, JobState::Completed, "{job} ends with its job manager");
}

#[test]
fn a_schedule_without_recurrence_runs_one_job_and_completes_with_it() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "once", json!({}));
    assert_eq!(jobs_of(&env, "once"), ["once:job-1"]);
    assert_eq!(status(&env, "once"), (JobScheduleState::Active, None, Some("once:job-1".into())));
    assert_eq!(env.job("once:job-1").creation_time, at(0));
    assert!(env.where_runs("once:job-1", "jm").is_some(), "its job manager task runs");
    env.advance(5 * MIN);
    manager_exits(&mut env, "once:job-1");
    assert_eq!(env.job("once:job-1").status.execution_info.terminate_reason.as_deref(), Some("JMComplete"));
    let s = env.schedule("once");
    assert_eq!(
        (s.state, s.execution_info.end_time, s.execution_info.next_run_time),
        (JobScheduleState::Completed, Some(at(5 * MIN)), None)
    );
    assert_eq!(s.state_transition_time, at(5 * MIN));
    env.advance(2 * HOUR);
    assert_eq!(jobs_of(&env, "once"), ["once:job-1"]);

    // A job without a manager task completes when terminated.
    env.schedule_with("plain", json!({"schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}}));
    assert_eq!(jobs_of(&env, "plain"), ["plain:job-1"]);
    env.advance(MIN);
    assert_eq!(env.schedule("plain").state, JobScheduleState::Active, "its job is still active");
    env.call(Event::TerminateJob { job_id: "plain:job-1".into(), reason: "UserTerminate".into() }).expect("terminated");
    let s = env.schedule("plain");
    assert_eq!(
        (s.state, s.execution_info.end_time, s.execution_info.next_run_time),
        (JobScheduleState::Completed, Some(at(2 * HOUR + 6 * MIN)), None)
    );
}

#[test]
fn an_hourly_schedule_waits_for_its_active_job() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "h", json!({"recurrenceInterval": "PT1H"}));
    assert_eq!(jobs_of(&env, "h"), ["h:job-1"]);
    assert_eq!(status(&env, "h"), (JobScheduleState::Active, Some(at(HOUR)), Some("h:job-1".into())));
    env.advance(20 * MIN);
    manager_exits(&mut env, "h:job-1");
    assert_eq!(status(&env, "h"), (JobScheduleState::Active, Some(at(HOUR)), Some("h:job-1".into())));
    env.advance(40 * MIN - 1);
    assert_eq!(jobs_of(&env, "h"), ["h:job-1"], "not due yet");
    env.advance(1);
    assert_eq!(jobs_of(&env, "h"), ["h:job-1", "h:job-2"]);
    assert_eq!(env.job("h:job-2").creation_time, at(HOUR));
    assert_eq!(status(&env, "h"), (JobScheduleState::Active, Some(at(2 * HOUR)), Some("h:job-2".into())));
    // Job 2 still runs when job 3 is due: the recurrence waits (the window is unlimited).
    env.advance(HOUR);
    env.advance(30 * MIN);
    assert_eq!(jobs_of(&env, "h"), ["h:job-1", "h:job-2"]);
    assert_eq!(status(&env, "h").1, Some(at(2 * HOUR)), "the recurrence is pending");
    manager_exits(&mut env, "h:job-2");
    assert_eq!(jobs_of(&env, "h"), ["h:job-1", "h:job-2", "h:job-3"]);
    assert_eq!(env.job("h:job-3").creation_time, at(2 * HOUR + 30 * MIN), "created when job 2 completed");
    assert_eq!(status(&env, "h"), (JobScheduleState::Active, Some(at(3 * HOUR)), Some("h:job-3".into())));
    assert!(env.where_runs("h:job-3", "jm").is_some());
}

#[test]
fn a_start_window_that_closes_while_a_job_runs_skips_the_recurrence() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "w", json!({"recurrenceInterval": "PT1H", "startWindow": "PT10M"}));
    // Job 1 completes inside the next recurrence's window: job 2 is created then.
    env.advance(HOUR + 5 * MIN);
    assert_eq!(jobs_of(&env, "w"), ["w:job-1"]);
    manager_exits(&mut env, "w:job-1");
    assert_eq!(jobs_of(&env, "w"), ["w:job-1", "w:job-2"]);
    assert_eq!(env.job("w:job-2").creation_time, at(HOUR + 5 * MIN));
    assert_eq!(status(&env, "w").1, Some(at(2 * HOUR)));
    // Job 2 still runs when the 2:00 window closes at 2:10: that recurrence is skipped.
    env.advance(55 * MIN);
    assert_eq!(status(&env, "w").1, Some(at(2 * HOUR)), "waiting inside the window");
    env.advance(10 * MIN);
    assert_eq!(status(&env, "w").1, Some(at(3 * HOUR)), "the window closed");
    env.advance(5 * MIN);
    manager_exits(&mut env, "w:job-2");
    assert_eq!(jobs_of(&env, "w"), ["w:job-1", "w:job-2"], "no job for the skipped recurrence");
    assert_eq!(status(&env, "w"), (JobScheduleState::Active, Some(at(3 * HOUR)), Some("w:job-2".into())));
    env.advance(45 * MIN);
    assert_eq!(jobs_of(&env, "w"), ["w:job-1", "w:job-2", "w:job-3"]);
    assert_eq!(env.job("w:job-3").creation_time, at(3 * HOUR));
}

#[test]
fn do_not_run_until_and_do_not_run_after_bound_the_jobs() {
    let mut env = TestEnv::new();
    let schedule = json!({"doNotRunUntil": "2026-01-01T02:00:00Z", "doNotRunAfter": "2026-01-01T03:30:00Z", "recurrenceInterval": "PT1H"});
    managed_schedule(&mut env, "b", schedule);
    assert!(jobs_of(&env, "b").is_empty());
    assert_eq!(status(&env, "b"), (JobScheduleState::Active, Some(at(2 * HOUR)), None));
    env.advance(HOUR);
    assert!(jobs_of(&env, "b").is_empty());
    env.advance(HOUR);
    assert_eq!(jobs_of(&env, "b"), ["b:job-1"]);
    assert_eq!(env.job("b:job-1").creation_time, at(2 * HOUR));
    manager_exits(&mut env, "b:job-1");
    env.advance(HOUR);
    assert_eq!(jobs_of(&env, "b"), ["b:job-1", "b:job-2"]);
    // 4:00 is after doNotRunAfter: no next run.
    assert_eq!(status(&env, "b"), (JobScheduleState::Active, None, Some("b:job-2".into())));
    env.advance(20 * MIN);
    manager_exits(&mut env, "b:job-2");
    assert_eq!(env.schedule("b").state, JobScheduleState::Active, "doNotRunAfter has not passed");
    env.advance(10 * MIN);
    let s = env.schedule("b");
    assert_eq!((s.state, s.execution_info.end_time), (JobScheduleState::Completed, Some(at(3 * HOUR + 30 * MIN))));
    env.advance(2 * HOUR);
    assert_eq!(jobs_of(&env, "b").len(), 2);

    // A job still active when doNotRunAfter passes: the schedule completes with it.
    env.schedule_with(
        "c",
        json!({"schedule": {"doNotRunAfter": "2026-01-01T06:00:00Z", "recurrenceInterval": "PT1H"}, "jobSpecification": managed()}),
    );
    assert_eq!(jobs_of(&env, "c"), ["c:job-1"]);
    env.advance(2 * HOUR);
    assert_eq!(jobs_of(&env, "c"), ["c:job-1"]);
    assert_eq!(env.schedule("c").state, JobScheduleState::Active);
    manager_exits(&mut env, "c:job-1");
    assert_eq!(jobs_of(&env, "c"), ["c:job-1"], "no job after doNotRunAfter");
    let s = env.schedule("c");
    assert_eq!(
        (s.state, s.execution_info.end_time, s.execution_info.next_run_time),
        (JobScheduleState::Completed, Some(at(7 * HOUR + 30 * MIN)), None)
    );
}

#[test]
fn enable_inside_the_window_creates_the_job_and_after_it_does_not() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "d", json!({"recurrenceInterval": "PT1H", "startWindow": "PT10M"}));
    env.advance(MIN);
    manager_exits(&mut env, "d:job-1");
    env.advance(29 * MIN);
    env.call(Event::DisableSchedule { id: "d".into() }).expect("disabled");
    let s = env.schedule("d");
    assert_eq!(
        (s.state, s.state_transition_time, s.previous_state),
        (JobScheduleState::Disabled, at(30 * MIN), Some(JobScheduleState::Active))
    );
    let again = env.call(Event::DisableSchedule { id: "d".into() }).expect_err("already disabled");
    assert_eq!((again.status.as_u16(), again.code.as_str()), (409, "JobScheduleDisabled"));
    env.advance(35 * MIN);
    assert_eq!(jobs_of(&env, "d"), ["d:job-1"], "no job while disabled");
    assert_eq!(status(&env, "d"), (JobScheduleState::Disabled, Some(at(HOUR)), Some("d:job-1".into())));
    env.call(Event::EnableSchedule { id: "d".into() }).expect("enabled at 1:05");
    assert_eq!(jobs_of(&env, "d"), ["d:job-1", "d:job-2"]);
    assert_eq!(env.job("d:job-2").creation_time, at(HOUR + 5 * MIN));
    assert_eq!(status(&env, "d"), (JobScheduleState::Active, Some(at(2 * HOUR)), Some("d:job-2".into())));
    // Enabling an active schedule changes nothing.
    env.call(Event::EnableSchedule { id: "d".into() }).expect("still active");
    assert_eq!(jobs_of(&env, "d").len(), 2);

    manager_exits(&mut env, "d:job-2");
    env.call(Event::DisableSchedule { id: "d".into() }).expect("disabled");
    env.advance(55 * MIN);
    env.advance(15 * MIN);
    env.call(Event::EnableSchedule { id: "d".into() }).expect("enabled at 2:15");
    assert_eq!(jobs_of(&env, "d"), ["d:job-1", "d:job-2"], "the 2:00 window closed at 2:10");
    assert_eq!(status(&env, "d"), (JobScheduleState::Active, Some(at(3 * HOUR)), Some("d:job-2".into())));
    env.advance(45 * MIN);
    assert_eq!(jobs_of(&env, "d"), ["d:job-1", "d:job-2", "d:job-3"]);
}

#[test]
fn a_restart_between_runs_keeps_the_times_and_the_numbering() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "r", json!({"recurrenceInterval": "PT1H"}));
    env.advance(MIN);
    manager_exits(&mut env, "r:job-1");
    env.advance(29 * MIN);
    env.restart();
    env.check();
    env.advance(29 * MIN);
    assert_eq!(jobs_of(&env, "r"), ["r:job-1"]);
    env.advance(MIN);
    assert_eq!(jobs_of(&env, "r"), ["r:job-1", "r:job-2"], "on time, and numbered on");
    assert_eq!(env.job("r:job-2").creation_time, at(HOUR));
    assert!(env.where_runs("r:job-2", "jm").is_some());
    // A restart while a job runs: it ends, and the next comes on time.
    env.restart();
    env.advance(MIN);
    manager_exits(&mut env, "r:job-2");
    env.advance(59 * MIN);
    assert_eq!(jobs_of(&env, "r"), ["r:job-1", "r:job-2", "r:job-3"]);
    assert_eq!(status(&env, "r"), (JobScheduleState::Active, Some(at(3 * HOUR)), Some("r:job-3".into())));
}

#[test]
fn a_restart_after_a_missed_window_skips_that_recurrence() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "m", json!({"recurrenceInterval": "PT1H", "startWindow": "PT10M"}));
    env.advance(MIN);
    manager_exits(&mut env, "m:job-1");
    // The service is down from 0:01 to 1:15 (the clock moves, no tick runs), then restarts.
    env.clock.advance(Duration::minutes(74));
    env.restart();
    env.advance(0);
    assert_eq!(jobs_of(&env, "m"), ["m:job-1"], "the 1:00 window closed while down");
    assert_eq!(status(&env, "m"), (JobScheduleState::Active, Some(at(2 * HOUR)), Some("m:job-1".into())));
    env.advance(45 * MIN);
    assert_eq!(jobs_of(&env, "m"), ["m:job-1", "m:job-2"]);
    assert_eq!(env.job("m:job-2").creation_time, at(2 * HOUR));
    // Down from 2:00 to 3:05: the 3:00 window is still open at the restart.
    manager_exits(&mut env, "m:job-2");
    env.clock.advance(Duration::minutes(65));
    env.restart();
    env.advance(0);
    assert_eq!(jobs_of(&env, "m"), ["m:job-1", "m:job-2", "m:job-3"]);
    assert_eq!(env.job("m:job-3").creation_time, at(3 * HOUR + 5 * MIN));
}

#[test]
fn terminate_schedule_ends_the_active_job_and_completes() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "t", json!({"recurrenceInterval": "PT1H"}));
    env.advance(10 * MIN);
    env.call(Event::TerminateSchedule { id: "t".into() }).expect("terminated");
    let job = env.job("t:job-1");
    assert_eq!((job.status.state, job.status.execution_info.terminate_reason.as_deref()), (JobState::Completed, Some("UserTerminate")));
    assert_eq!(env.state("t:job-1", "jm"), TaskState::Completed);
    assert!(env.where_runs("t:job-1", "jm").is_none(), "its job manager task was ended");
    let s = env.schedule("t");
    assert_eq!((s.state, s.previous_state), (JobScheduleState::Completed, Some(JobScheduleState::Terminating)));
    assert_eq!((s.execution_info.end_time, s.execution_info.next_run_time), (Some(at(10 * MIN)), None));
    env.advance(3 * HOUR);
    assert_eq!(jobs_of(&env, "t"), ["t:job-1"]);
    for ev in
        [Event::TerminateSchedule { id: "t".into() }, Event::EnableSchedule { id: "t".into() }, Event::DisableSchedule { id: "t".into() }]
    {
        let e = env.call(ev).expect_err("completed");
        assert_eq!((e.status.as_u16(), e.code.as_str()), (409, "JobScheduleCompleted"));
    }

    // With a release task, the job and the schedule are terminating until it ran.
    let spec = json!({"poolInfo": {"poolId": "p"}, "jobManagerTask": {"id": "jm", "commandLine": "manage"}, "jobPreparationTask": {"commandLine": "prep"}, "jobReleaseTask": {"commandLine": "rel"}});
    env.schedule_with("r", json!({"schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": spec}));
    env.end(ExecKind::JobPreparation { job_id: "r:job-1".into() }, Some(0), None);
    assert!(env.where_runs("r:job-1", "jm").is_some());
    env.call(Event::TerminateSchedule { id: "r".into() }).expect("terminating");
    assert_eq!(env.job("r:job-1").status.state, JobState::Terminating);
    assert_eq!(status(&env, "r"), (JobScheduleState::Terminating, None, Some("r:job-1".into())));
    let e = env.call(Event::TerminateSchedule { id: "r".into() }).expect_err("being terminated");
    assert_eq!(e.code, "JobScheduleBeingTerminated");
    env.advance(MIN);
    env.end(ExecKind::JobRelease { job_id: "r:job-1".into() }, Some(0), None);
    assert_eq!(env.job("r:job-1").status.state, JobState::Completed);
    let s = env.schedule("r");
    assert_eq!((s.state, s.execution_info.end_time), (JobScheduleState::Completed, Some(at(3 * HOUR + 11 * MIN))));
}

#[test]
fn delete_schedule_deletes_its_jobs_then_itself() {
    let mut env = TestEnv::new();
    managed_schedule(&mut env, "d", json!({"recurrenceInterval": "PT1H"}));
    env.job_on("other", "p");
    env.advance(MIN);
    manager_exits(&mut env, "d:job-1");
    env.advance(HOUR);
    assert_eq!(jobs_of(&env, "d"), ["d:job-1", "d:job-2"]);
    env.add_task("d:job-2", "t");
    env.add_task("other", "o");
    assert!(env.where_runs("d:job-2", "jm").is_some());
    assert!(env.where_runs("other", "o").is_none(), "the job manager task has the node");
    env.call(Event::DeleteSchedule { id: "d".into() }).expect("deleted");
    assert!(jobs_of(&env, "d").is_empty(), "every job of the schedule is deleted");
    assert!(env.all::<Task>().iter().all(|t| t.job_id == "other"), "with their tasks");
    assert!(env.all::<JobSchedule>().is_empty(), "then the schedule");
    assert!(env.where_runs("d:job-2", "jm").is_none());
    assert_eq!(env.job("other").status.state, JobState::Active, "other jobs stay");
    assert!(env.where_runs("other", "o").is_some(), "and run on the node freed");
    env.advance(2 * HOUR);
    assert!(jobs_of(&env, "d").is_empty());
}

#[test]
fn operations_on_a_missing_or_disabled_schedule_answer_errors() {
    let mut env = TestEnv::new();
    for ev in [
        Event::TerminateSchedule { id: "nope".into() },
        Event::DeleteSchedule { id: "nope".into() },
        Event::DisableSchedule { id: "nope".into() },
        Event::EnableSchedule { id: "nope".into() },
    ] {
        let e = env.call(ev).expect_err("missing");
        assert_eq!((e.status.as_u16(), e.code.as_str()), (404, "JobScheduleNotFound"));
    }
    managed_schedule(&mut env, "s", json!({"recurrenceInterval": "PT1H"}));
    env.call(Event::DisableSchedule { id: "s".into() }).expect("disabled");
    let e = env.call(Event::DisableSchedule { id: "s".into() }).expect_err("disabled");
    assert_eq!((e.status.as_u16(), e.code.as_str()), (409, "JobScheduleDisabled"));
    // A disabled schedule can be terminated: its active job ends.
    env.call(Event::TerminateSchedule { id: "s".into() }).expect("terminated");
    assert_eq!(env.schedule("s").state, JobScheduleState::Completed);
    assert_eq!(env.job("s:job-1").status.state, JobState::Completed);
}

/// A job specification with an auto pool of `lifetime` (one node, one slot) and a manager.
fn auto_pool_spec(lifetime: &str) -> Value {
    let pool = json!({"vmSize": "standard_d2s_v3", "targetDedicatedNodes": 1, "taskSlotsPerNode": 1});
    json!({
        "poolInfo": {"autoPoolSpecification": {"autoPoolIdPrefix": "auto", "poolLifetimeOption": lifetime, "pool": pool}},
        "jobManagerTask": {"id": "jm", "commandLine": "manage"}
    })
}

/// The ids of the pools that exist now.
fn pools(env: &TestEnv) -> Vec<String> {
    env.all::<Pool>().into_iter().map(|p| p.spec.id).collect()
}

/// The pool a job runs on.
fn pool_of(env: &TestEnv, job: &str) -> String {
    env.job(job).status.execution_info.pool_id.expect("the job has a pool")
}

#[test]
fn a_job_lifetime_auto_pool_is_created_and_deleted_with_each_job() {
    let mut env = TestEnv::new();
    env.schedule_with("a", json!({"schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": auto_pool_spec("job")}));
    env.connect_spawned();
    let first = pool_of(&env, "a:job-1");
    assert!(first.starts_with("auto_"), "{first}");
    assert_eq!(pools(&env), [first.as_str()]);
    assert!(env.where_runs("a:job-1", "jm").is_some_and(|(node, _)| env.nodes(&first).iter().any(|n| n.id == node)));
    manager_exits(&mut env, "a:job-1");
    assert!(pools(&env).is_empty(), "the pool goes with its job");
    env.advance(HOUR);
    env.connect_spawned();
    let second = pool_of(&env, "a:job-2");
    assert_ne!(first, second);
    assert_eq!(pools(&env), [second.as_str()]);
    assert!(env.where_runs("a:job-2", "jm").is_some());
    env.call(Event::TerminateSchedule { id: "a".into() }).expect("terminated");
    assert_eq!(env.schedule("a").state, JobScheduleState::Completed);
    assert!(pools(&env).is_empty());
}

#[test]
fn a_job_schedule_lifetime_auto_pool_is_shared_until_the_schedule_ends() {
    let mut env = TestEnv::new();
    env.schedule_with("s", json!({"schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": auto_pool_spec("jobschedule")}));
    env.connect_spawned();
    let shared = pool_of(&env, "s:job-1");
    assert_eq!(env.schedule("s").auto_pool_id.as_deref(), Some(shared.as_str()));
    manager_exits(&mut env, "s:job-1");
    assert_eq!(pools(&env), [shared.as_str()], "the pool outlives the job");
    env.advance(HOUR);
    assert!(env.spawned.is_empty(), "no new pool, no new node");
    assert_eq!(pool_of(&env, "s:job-2"), shared);
    assert!(env.where_runs("s:job-2", "jm").is_some());
    manager_exits(&mut env, "s:job-2");
    assert_eq!(pools(&env), [shared.as_str()]);
    env.call(Event::TerminateSchedule { id: "s".into() }).expect("terminated");
    assert_eq!(env.schedule("s").state, JobScheduleState::Completed);
    assert!(pools(&env).is_empty(), "the pool goes when the schedule completes");

    // Delete Job Schedule deletes it too, with the jobs running on it.
    env.schedule_with("x", json!({"schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": auto_pool_spec("jobschedule")}));
    env.connect_spawned();
    let pool = pool_of(&env, "x:job-1");
    assert_eq!(env.all::<Pool>().into_iter().map(|p| p.status.state).collect::<Vec<_>>(), [PoolState::Active]);
    env.call(Event::DeleteSchedule { id: "x".into() }).expect("deleted");
    assert!(jobs_of(&env, "x").is_empty() && env.all::<JobSchedule>().iter().all(|s| s.spec.id != "x"));
    assert!(!pools(&env).contains(&pool) && pools(&env).is_empty());
}

#[test]
fn a_job_completed_by_its_tasks_lets_the_next_job_run() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    let spec = json!({
        "poolInfo": {"poolId": "p"},
        "onAllTasksComplete": "terminatejob",
        "jobManagerTask": {"id": "jm", "commandLine": "manage", "killJobOnCompletion": false}
    });
    env.schedule_with("o", json!({"schedule": {"recurrenceInterval": "PT1H"}, "jobSpecification": spec}));
    env.advance(HOUR + MIN);
    assert_eq!(jobs_of(&env, "o"), ["o:job-1"]);
    // Its last task completes: the job terminates with AllTasksComplete, and job 2 is created.
    env.exit("o:job-1", "jm", 0);
    let job = env.job("o:job-1");
    assert_eq!((job.status.state, job.status.execution_info.terminate_reason.as_deref()), (JobState::Completed, Some("AllTasksComplete")));
    assert_eq!(jobs_of(&env, "o"), ["o:job-1", "o:job-2"], "created in the same batch");
    assert_eq!(env.job("o:job-2").creation_time, at(HOUR + MIN));
    // The job completed while the batch settled its jobs, after that batch's scheduling
    // round: job 2's manager task is placed by the next batch (the driver ticks twice a second).
    env.advance(0);
    assert!(env.where_runs("o:job-2", "jm").is_some());
}
