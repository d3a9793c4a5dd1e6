//! Reactor tests of statistics: what attempts add to task, job and lifetime job statistics,
//! and what node samples and node lifetimes add to pool and lifetime pool statistics.

use super::testenv::TestEnv;
use super::Event;
use crate::agent::protocol::{AgentMessage, ExecKind, ExecResult, NodeSample, ResourceUsage};
use crate::model::job::Job;
use crate::model::pool::{Pool, PoolState};
use crate::model::stats::{JobLifetimeStats, PoolLifetimeStats};
use crate::model::task::TaskState;
use serde_json::json;

/// The running attempt of a task ends after `ran_secs` (the clock moves) with `code`, having
/// used `user_ms` of user CPU and written `write_blocks` blocks.
fn finish(env: &mut TestEnv, job: &str, task: &str, ran_secs: i64, code: i32, user_ms: u64, write_blocks: u64) {
    let (node_id, spec) = env.where_runs(job, task).expect("task runs");
    let started = env.reactor.now().timestamp_millis();
    env.clock.advance(chrono::Duration::seconds(ran_secs));
    env.running.get_mut(&node_id).map(|m| m.remove(&spec.dispatch_id));
    let result = ExecResult {
        kind: ExecKind::Task { job_id: job.into(), task_id: task.into() },
        dispatch_id: spec.dispatch_id,
        started_ms: Some(started),
        ended_ms: started + ran_secs * 1000,
        exit_code: Some(code),
        failure: None,
        usage: Some(ResourceUsage { user_ms, kernel_ms: 5, read_blocks: 0, write_blocks }),
    };
    env.event(Event::Agent { node_id, msg: AgentMessage::Finished { result } });
}

fn lifetime_jobs(env: &TestEnv) -> crate::model::stats::JobStats {
    env.all::<JobLifetimeStats>().pop().expect("lifetime job statistics").0
}

#[test]
fn attempts_add_up_per_task_per_job_and_for_the_account() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 2);
    env.job_on("j", "p");
    env.job_on("k", "p");
    env.clock.advance(chrono::Duration::seconds(3));
    env.add_tasks("j", vec![json!({"id": "t", "commandLine": "false", "constraints": {"maxTaskRetryCount": 1}})]);
    let created = env.task("j", "t").creation_time;
    env.clock.advance(chrono::Duration::seconds(2));
    finish(&mut env, "j", "t", 4, 1, 100, 8);
    assert_eq!(env.state("j", "t"), TaskState::Preparing, "retried");
    let retried_at = env.reactor.now();
    finish(&mut env, "j", "t", 6, 0, 200, 8);
    env.add_tasks("k", vec![json!({"id": "bad", "commandLine": "false"})]);
    finish(&mut env, "k", "bad", 1, 3, 50, 0);

    let t = env.task("j", "t");
    let ts = t.stats.expect("task statistics");
    assert_eq!((ts.usage.user_cpu_ms, ts.usage.kernel_cpu_ms, ts.usage.wall_clock_ms, ts.usage.write_blocks), (300, 10, 10_000, 16));
    // The test agent reports no start; the wait is to the most recent attempt's start.
    assert_eq!(ts.wait_ms, (retried_at - created).num_milliseconds() as u64);
    assert_eq!(ts.start_time, created);

    let j = env.job("j").stats.expect("job statistics");
    assert_eq!((j.succeeded, j.failed, j.retries), (1, 0, 1));
    assert_eq!((j.usage.user_cpu_ms, j.usage.wall_clock_ms), (300, 10_000));
    assert_eq!(j.wait_ms, ts.wait_ms, "a retried attempt's wait is not counted");
    let k = env.job("k").stats.expect("job statistics");
    assert_eq!((k.succeeded, k.failed, k.retries, k.usage.user_cpu_ms), (0, 1, 0, 50));

    let life = lifetime_jobs(&env);
    assert_eq!((life.succeeded, life.failed, life.retries), (1, 1, 1));
    assert_eq!(life.usage.user_cpu_ms, 350);
    assert_eq!(life.wait_ms, j.wait_ms + k.wait_ms);
}

#[test]
fn tasks_ended_by_terminate_job_count_in_the_job_it_holds() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    env.job_on("j", "p");
    env.add_task("j", "t");
    let (node_id, spec) = env.where_runs("j", "t").expect("runs");
    let started_ms = env.reactor.now().timestamp_millis();
    env.event(Event::Agent { node_id, msg: AgentMessage::Started { kind: spec.kind.clone(), dispatch_id: spec.dispatch_id, started_ms } });
    assert_eq!(env.state("j", "t"), TaskState::Running);
    env.clock.advance(chrono::Duration::seconds(5));
    env.call(Event::TerminateJob { job_id: "j".into(), reason: "UserTerminate".into() }).expect("terminated");
    let j: Job = env.job("j");
    let s = j.stats.expect("job statistics");
    assert_eq!((s.failed, s.usage.wall_clock_ms), (1, 5000), "{s:?}");
    assert_eq!(env.task("j", "t").stats.expect("task statistics").usage.wall_clock_ms, 5000);
    assert_eq!(lifetime_jobs(&env).failed, 1);
}

#[test]
fn node_samples_and_node_lifetimes_add_up_per_pool_and_for_the_account() {
    let mut env = TestEnv::new();
    env.pool("p", 1, 1);
    let node = env.nodes("p").pop().expect("a node");
    env.clock.advance(chrono::Duration::seconds(10));
    let gib = 1u64 << 30;
    let sample = NodeSample {
        interval_ms: 10_000,
        cores: 2,
        cpu_ms: 5_000,
        read_bytes: 1024,
        write_bytes: 4096,
        memory_bytes: gib,
        disk_bytes: 2 * gib,
    };
    env.event(Event::Agent { node_id: node.id.clone(), msg: AgentMessage::Sample { sample } });
    let pool = env.all::<Pool>().pop().expect("pool");
    let s = pool.stats.expect("pool statistics");
    assert_eq!(s.dedicated_core_ms, 20_000, "2 cores for the 10 s since the node's allocation");
    assert!((s.avg_cpu_percentage() - 25.0).abs() < 1e-9);
    assert_eq!((s.write_bytes, s.peak_disk_bytes), (4096, 2 * gib));
    assert_eq!(env.nodes("p")[0].meter.map(|m| m.cores), Some(2));

    // Deleting the pool counts its node's last 3 s; the account keeps everything.
    env.clock.advance(chrono::Duration::seconds(3));
    let mut pool = env.all::<Pool>().pop().expect("pool");
    pool.status.state = PoolState::Deleting;
    env.put(pool);
    env.event(Event::PoolChanged("p".into()));
    assert!(env.all::<Pool>().is_empty());
    let life = env.all::<PoolLifetimeStats>().pop().expect("lifetime pool statistics").0;
    assert_eq!(life.dedicated_core_ms, 26_000);
    assert_eq!((life.cpu_ms, life.read_bytes, life.peak_memory_bytes), (5_000, 1024, gib));
    // A late sample of the removed node counts nowhere.
    env.event(Event::Agent { node_id: node.id, msg: AgentMessage::Sample { sample } });
    assert_eq!(env.all::<PoolLifetimeStats>().pop().expect("lifetime").0.dedicated_core_ms, 26_000);
}

#[test]
fn low_priority_nodes_have_no_dedicated_core_time() {
    let mut env = TestEnv::new();
    env.pool_with("s", json!({"id": "s", "vmSize": "standard_d2s_v3", "targetLowPriorityNodes": 1}));
    let node = env.nodes("s").pop().expect("a node");
    assert!(!node.is_dedicated);
    env.clock.advance(chrono::Duration::seconds(10));
    let sample = NodeSample { interval_ms: 10_000, cores: 4, cpu_ms: 40_000, ..Default::default() };
    env.event(Event::Agent { node_id: node.id, msg: AgentMessage::Sample { sample } });
    let s = env.all::<Pool>().pop().expect("pool").stats.expect("pool statistics");
    assert_eq!(s.dedicated_core_ms, 0);
    assert!((s.avg_cpu_percentage() - 100.0).abs() < 1e-9);
}
