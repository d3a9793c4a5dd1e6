//! A test environment for the reactor: records in maps, a hand-moved clock, agents simulated
//! from the effects. Every event is followed by the reactor's `sanity_check` against the
//! records (unless `checks` is off, as for `openbatch bench --deps`, which drives the reactor
//! through it without IO). Test and benchmark code: it panics on what a test must not see.

// Most helpers serve the tests only; the benchmark uses a few.
#![cfg_attr(not(test), allow(dead_code))]

use super::records::{Kind, MemBacking};
use super::{Answer, Effect, Event, Reactor, Records, ServiceInfo};
use crate::agent::protocol::{AgentMessage, ExecFailure, ExecKind, ExecResult, ExecSpec, FailureKind, ServiceMessage};
use crate::api::error::ApiResult;
use crate::model::job::{Job, JobLifetimeStats};
use crate::model::node::Node;
use crate::model::pool::{Pool, PoolSpec};
use crate::model::task::{Task, TaskSpec, TaskState};
use crate::scheduler::clock::ManualClock;
use chrono::TimeZone;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Runs a future that never waits (the in-memory backing answers at once).
fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// The reactor, its records and simulated agents.
pub struct TestEnv {
    pub reactor: Reactor,
    pub store: MemBacking,
    pub clock: ManualClock,
    /// What each node's agent runs now, by dispatch id.
    pub running: BTreeMap<String, BTreeMap<u64, ExecSpec>>,
    /// Every effect so far.
    pub effects: Vec<Effect>,
    /// Agents the reactor asked to start and that have not said hello yet.
    pub spawned: Vec<(String, String, String)>,
    /// Whether every batch is followed by `sanity_check` (on by default).
    pub checks: bool,
    next_pid: u32,
}

impl TestEnv {
    pub fn new() -> Self {
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid time");
        let clock = ManualClock::new(start);
        let info = ServiceInfo {
            account_name: "test".into(),
            account_url: "http://127.0.0.1:1".into(),
            auto_storage: None,
            nodes_dir: "/nonexistent/nodes".into(),
            task_tokens: None,
            limits: Default::default(),
        };
        let mut env = TestEnv {
            reactor: Reactor::new(info, Arc::new(clock.clone()), 1),
            store: MemBacking::default(),
            clock,
            running: BTreeMap::new(),
            effects: Vec::new(),
            spawned: Vec::new(),
            checks: true,
            next_pid: 1000,
        };
        env.put(JobLifetimeStats::new(start));
        env
    }

    /// Writes a record straight into the store.
    pub fn put<T: Kind>(&mut self, r: T) {
        use super::Backing;
        run(self.store.write(&r)).expect("in-memory write");
    }

    pub fn all<T: Kind>(&self) -> Vec<T> {
        self.store.all::<T>()
    }

    pub fn task(&self, job: &str, id: &str) -> Task {
        self.all::<Task>().into_iter().find(|t| t.job_id == job && t.spec.id == id).expect("task exists")
    }

    pub fn job(&self, id: &str) -> Job {
        self.all::<Job>().into_iter().find(|j| j.spec.id == id).expect("job exists")
    }

    pub fn nodes(&self, pool: &str) -> Vec<Node> {
        self.all::<Node>().into_iter().filter(|n| n.pool_id == pool).collect()
    }

    /// Applies events as one batch; simulates the agents' side of the effects; checks the
    /// invariants. Returns the answers by ticket.
    pub fn batch(&mut self, events: Vec<(Event, Option<usize>)>) -> Vec<(usize, Answer)> {
        let mut records = Records::new(std::mem::take(&mut self.store));
        let effects = run(self.reactor.apply(&mut records, events)).expect("in-memory batch");
        self.store = records.backing;
        let mut answers = Vec::new();
        for e in &effects {
            match e {
                Effect::Send { node_id, msg: ServiceMessage::Run { spec } } => {
                    self.running.entry(node_id.clone()).or_default().insert(spec.dispatch_id, (**spec).clone());
                }
                Effect::Send { node_id, msg: ServiceMessage::Kill { dispatch_id, .. } } => {
                    // The agent kills it; its late `TaskEnded` report is stale and not sent.
                    if let Some(m) = self.running.get_mut(node_id) {
                        m.remove(dispatch_id);
                    }
                }
                Effect::Send { node_id, msg: ServiceMessage::Shutdown { .. } } => {
                    self.running.remove(node_id);
                }
                Effect::SpawnAgent { pool_id, node_id, token } => self.spawned.push((pool_id.clone(), node_id.clone(), token.clone())),
                Effect::RestartAgent { pool_id, node_id, token, .. } => {
                    // The old agent dies with what it ran; a new one is started.
                    self.running.remove(node_id);
                    self.spawned.push((pool_id.clone(), node_id.clone(), token.clone()));
                }
                Effect::Answer { ticket, answer } => answers.push((*ticket, answer.clone())),
                _ => {}
            }
        }
        self.effects.extend(effects);
        if self.checks {
            self.check();
        }
        answers
    }

    /// Checks the reactor's invariants against the records.
    pub fn check(&self) {
        let tasks = self.all::<Task>();
        let nodes = self.all::<Node>();
        if let Err(e) = self.reactor.sanity_check(&tasks, &nodes) {
            panic!("sanity check failed: {e}");
        }
    }

    pub fn event(&mut self, ev: Event) {
        self.batch(vec![(ev, None)]);
    }

    /// An event that answers; returns its answer.
    pub fn call(&mut self, ev: Event) -> ApiResult<()> {
        match self.batch(vec![(ev, Some(1))]).into_iter().find(|(t, _)| *t == 1) {
            Some((_, Answer::Api(a))) => a,
            other => panic!("no API answer: {other:?}"),
        }
    }

    /// A pool with `nodes` dedicated nodes of `slots` task slots, whose agents all connect.
    pub fn pool(&mut self, id: &str, nodes: i32, slots: i32) {
        self.pool_with(id, json!({"id": id, "vmSize": "standard_d2s_v3", "targetDedicatedNodes": nodes, "taskSlotsPerNode": slots}));
    }

    pub fn pool_with(&mut self, id: &str, spec: Value) {
        let spec: PoolSpec = serde_json::from_value(spec).expect("pool spec");
        let now = self.reactor.now();
        self.put(Pool::new(spec, now));
        self.event(Event::PoolChanged(id.into()));
        self.connect_spawned();
    }

    /// Starts the agents the reactor asked for: each reports its pid and says hello.
    pub fn connect_spawned(&mut self) {
        for (pool_id, node_id, token) in std::mem::take(&mut self.spawned) {
            self.next_pid += 1;
            let pid = self.next_pid;
            self.event(Event::NodeSpawned { pool_id: pool_id.clone(), node_id: node_id.clone(), pid });
            let hello = Event::AgentHello { pool_id, node_id, token, agent_version: "test".into(), running: vec![], finished: vec![] };
            let answers = self.batch(vec![(hello, Some(7))]);
            assert!(matches!(answers.as_slice(), [(7, Answer::Hello(true))]), "hello refused: {answers:?}");
        }
    }

    /// A job on a pool, from a JobAddParameter-like JSON (`poolInfo` added).
    pub fn job_with(&mut self, id: &str, pool: &str, mut spec: Value) {
        spec["id"] = json!(id);
        spec["poolInfo"] = json!({"poolId": pool});
        let mut spec: crate::model::job::JobSpec = serde_json::from_value(spec).expect("job spec");
        spec.normalize();
        let now = self.reactor.now();
        let job = Job::new(spec, Some(pool.into()), now);
        self.put(job);
        self.event(Event::JobChanged(id.into()));
    }

    pub fn job_on(&mut self, id: &str, pool: &str) {
        self.job_with(id, pool, json!({}));
    }

    /// Adds tasks (TaskAddParameter-like JSON) to a job in one event.
    pub fn add_tasks(&mut self, job: &str, specs: Vec<Value>) {
        let now = self.reactor.now();
        let mut added = Vec::new();
        for s in specs {
            let mut spec: TaskSpec = serde_json::from_value(s).expect("task spec");
            spec.normalize(None);
            let task = Task::new_active(job, spec, now);
            added.push(super::AddedTask::from(&task));
            self.put(task);
        }
        self.event(Event::TasksAdded { job_id: job.into(), tasks: added });
    }

    pub fn add_task(&mut self, job: &str, id: &str) {
        self.add_tasks(job, vec![json!({"id": id, "commandLine": "true"})]);
    }

    /// A job schedule from JobScheduleAddParameter-like JSON (`schedule`,
    /// `jobSpecification`; the job specification gets the empty id and its defaults), stored
    /// as created now and looked at at once, as Add Job Schedule does.
    pub fn schedule_with(&mut self, id: &str, spec: Value) {
        use crate::model::job_schedule::{JobSchedule, JobScheduleSpec};
        let mut job = spec["jobSpecification"].clone();
        job["id"] = json!("");
        let mut job: crate::model::job::JobSpec = serde_json::from_value(job).expect("job specification");
        job.normalize();
        let schedule = serde_json::from_value(spec["schedule"].clone()).expect("schedule");
        let spec = JobScheduleSpec { id: id.into(), display_name: None, schedule, job_specification: job, metadata: None };
        let now = self.reactor.now();
        self.put(JobSchedule::new(spec, now));
        self.call(Event::ScheduleChanged(id.into())).expect("schedule looked at");
    }

    pub fn schedule(&self, id: &str) -> crate::model::job_schedule::JobSchedule {
        self.all::<crate::model::job_schedule::JobSchedule>().into_iter().find(|s| s.spec.id == id).expect("job schedule exists")
    }

    /// Where a task runs now: (node, spec).
    pub fn where_runs(&self, job: &str, task: &str) -> Option<(String, ExecSpec)> {
        let kind = ExecKind::Task { job_id: job.into(), task_id: task.into() };
        self.running.iter().find_map(|(n, m)| m.values().find(|s| s.kind == kind).map(|s| (n.clone(), s.clone())))
    }

    /// The running execution of `kind` ends with an exit code or a failure.
    pub fn end(&mut self, kind: ExecKind, exit_code: Option<i32>, failure: Option<FailureKind>) {
        let found = self.running.iter().find_map(|(n, m)| m.values().find(|s| s.kind == kind).map(|s| (n.clone(), s.dispatch_id)));
        let (node_id, dispatch_id) = found.unwrap_or_else(|| panic!("{kind:?} is not running"));
        self.running.get_mut(&node_id).map(|m| m.remove(&dispatch_id));
        let now = self.reactor.now().timestamp_millis();
        let failure =
            failure.map(|kind| ExecFailure { kind, code: "X".into(), message: "x".into(), detail: String::new(), details: vec![] });
        let result = ExecResult { kind, dispatch_id, started_ms: Some(now), ended_ms: now, exit_code, failure, usage: None };
        self.event(Event::Agent { node_id, msg: AgentMessage::Finished { result } });
    }

    /// Every execution running now ends with exit code 0, all reported in one batch (as the
    /// driver batches what agents report); returns how many ended.
    pub fn finish_all_running(&mut self) -> usize {
        let now = self.reactor.now().timestamp_millis();
        let mut events = Vec::new();
        for (node_id, specs) in std::mem::take(&mut self.running) {
            for (dispatch_id, spec) in specs {
                let result = ExecResult {
                    kind: spec.kind,
                    dispatch_id,
                    started_ms: Some(now),
                    ended_ms: now,
                    exit_code: Some(0),
                    failure: None,
                    usage: None,
                };
                events.push((Event::Agent { node_id: node_id.clone(), msg: AgentMessage::Finished { result } }, None));
            }
        }
        let n = events.len();
        self.batch(events);
        n
    }

    /// A task's process exits with `code`.
    pub fn exit(&mut self, job: &str, task: &str, code: i32) {
        self.end(ExecKind::Task { job_id: job.into(), task_id: task.into() }, Some(code), None);
    }

    pub fn state(&self, job: &str, task: &str) -> TaskState {
        self.task(job, task).status.state
    }

    /// A restart: the reactor's memory is rebuilt from the records alone.
    pub fn restart(&mut self) {
        let stored = super::Stored {
            pools: self.all(),
            nodes: self.all(),
            jobs: self.all(),
            job_nodes: self.all(),
            tasks: self.all(),
            schedules: self.all(),
        };
        self.reactor.restore(stored);
    }

    /// Moves the clock and lets the reactor's timer run.
    pub fn advance(&mut self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
        self.event(Event::Tick);
    }
}
