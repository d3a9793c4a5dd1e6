//! The reactor: every Batch scheduling rule, as transitions of in-memory state and records.
//!
//! As HyperQueue's `tako` reactor does, each [`Event`] (a task added, an agent's result, a
//! node lost, a job terminated, a timer tick) is a function of the reactor's state — the
//! placement [`Core`], the node runtimes, the dependency tracker — and of the batch's
//! [`Records`]; it changes them and appends [`Effect`]s to the outbox (send this to that
//! agent, start or stop a node agent, answer that request). The reactor does no IO: records
//! come through a [`Backing`] (a store transaction in the driver, maps in tests) and time
//! from a [`TimeSource`]. The driver persists the records and carries out the effects once
//! the batch has committed.
//!
//! The rules live in submodules along their seams: [`tasks`] (dispatch, results, retries,
//! exit conditions, requeue), [`jobs`] (the job state machine), [`prep`] (job preparation
//! and release tasks), [`nodes`] (agents, start tasks, node loss), [`pools`] (resize and
//! deletion) and [`stats`] (what attempts and node samples add to the statistics).

mod autoscale;
mod certificates;
pub mod dependencies;
pub mod exec;
mod jobs;
mod multi;
pub mod node_ops;
mod node_users;
mod nodes;
mod pools;
mod prep;
pub mod records;
pub mod resize;
mod retention;
pub mod schedules;
mod spot;
mod stats;
mod tasks;
pub(crate) mod testenv;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_autoscale;
#[cfg(test)]
mod tests_certificates;
#[cfg(test)]
mod tests_lifecycle;
#[cfg(test)]
mod tests_nodes;
#[cfg(test)]
mod tests_preempt;
#[cfg(test)]
mod tests_resize;
#[cfg(test)]
mod tests_retention;
#[cfg(test)]
mod tests_schedules;
#[cfg(test)]
mod tests_stats;

pub use records::{Backing, MemBacking, Records};

use super::clock::TimeSource;
use super::core::{Core, PrepState};
use super::deps::DepTracker;
use crate::agent::protocol::{AgentMessage, ExecKind, ExecResult, ServiceMessage};
use crate::api::conditions::Conditions;
use crate::api::error::ApiResult;
use crate::model::job::{DisableJobOption, Job, JobNode, JobState, PrepTaskState};
use crate::model::job_schedule::{JobSchedule, JobScheduleState};
use crate::model::node::{Node, NodeState, SchedulingState};
use crate::model::pool::{NodeFillType, Pool};
use crate::model::task::{Task, TaskState};
use crate::model::time::{deadline, Timestamp};
use crate::storage::resource_files::AutoStorage;
use crate::store::StoreResult;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

/// How long a node may stay disconnected before it counts as lost (seconds).
pub const RECONNECT_GRACE_SECS: i64 = 5;

/// What the service tells agents and writes into resources about itself.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub account_name: String,
    /// Base URL of the account (`http://127.0.0.1:10400`), for resource URLs.
    pub account_url: String,
    /// The account's linked storage (`autoStorageContainerName`), if configured.
    pub auto_storage: Option<AutoStorage>,
    /// The directory holding the node roots (`<data>/nodes`): a node's root is
    /// `<nodes_dir>/<pool>/<node>`.
    pub nodes_dir: PathBuf,
    /// Issues the authentication tokens of tasks with `authenticationTokenSettings`.
    pub task_tokens: Option<Arc<crate::api::task_token::TaskTokens>>,
    /// Node quotas and Spot behaviour.
    pub limits: resize::PoolLimits,
}

/// A task just added, as the scheduler needs it: its id, the slots it needs on a node, and
/// its instances (more than 1 for a multi-instance task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedTask {
    pub id: String,
    pub slots: u32,
    pub instances: u32,
}

impl From<&Task> for AddedTask {
    fn from(t: &Task) -> Self {
        AddedTask { id: t.spec.id.clone(), slots: t.spec.slots(), instances: t.spec.instances() }
    }
}

/// Identifies the request an event answers, so the driver can route the [`Answer`].
pub type Ticket = usize;

/// Something the reactor acts on.
#[derive(Debug, Clone)]
pub enum Event {
    /// A pool was added or changed (targets, start task, deletion): reconcile its nodes.
    PoolChanged(String),
    /// A job was added or changed: refresh its scheduling view.
    JobChanged(String),
    /// Active tasks were added to a job, in order.
    TasksAdded { job_id: String, tasks: Vec<AddedTask> },
    /// Terminate Task (answers).
    TerminateTask { job_id: String, task_id: String },
    /// Task Reactivate (answers).
    ReactivateTask { job_id: String, task_id: String },
    /// Delete Task (answers).
    DeleteTask { job_id: String, task_id: String },
    /// Terminate Job with a reason (answers).
    TerminateJob { job_id: String, reason: String },
    /// Delete Job (answers).
    DeleteJob { job_id: String },
    /// Disable Job with the fate of its running tasks (answers).
    DisableJob { job_id: String, option: DisableJobOption },
    /// Enable Job (answers).
    EnableJob { job_id: String },
    /// A job schedule was added or changed: look at it now (answers, so that Add returns
    /// once the first job of a schedule due at once exists).
    ScheduleChanged(String),
    /// A job a schedule created completed or went.
    ScheduleJobEnded { schedule_id: String, job_id: String },
    /// Terminate Job Schedule (answers).
    TerminateSchedule { id: String },
    /// Delete Job Schedule (answers).
    DeleteSchedule { id: String },
    /// Disable Job Schedule (answers).
    DisableSchedule { id: String },
    /// Enable Job Schedule (answers).
    EnableSchedule { id: String },
    /// Compute Node Disable Scheduling (answers).
    DisableNodeScheduling { pool_id: String, node_id: String, option: crate::model::node::DisableSchedulingOption },
    /// Compute Node Enable Scheduling (answers).
    EnableNodeScheduling { pool_id: String, node_id: String },
    /// An operation on a pool (Stop Resize, Remove Nodes, preempt a Spot node).
    Pool { pool_id: String, op: resize::PoolOp },
    /// Compute Node Reboot, Reimage, Add/Update/Delete User (answers).
    NodeOperation { pool_id: String, node_id: String, op: node_ops::NodeOp },
    /// Certificate Delete of the certificate with this record key (answers).
    DeleteCertificate { id: String },
    /// Certificate Cancel Deletion of the certificate with this record key (answers).
    CancelCertificateDeletion { id: String },
    /// An API operation on a job or task that holds only if the request's conditional
    /// headers hold for the record now (checked in the batch that changes it): 412
    /// `ConditionNotMet` otherwise.
    Conditional { cond: Conditions, event: Box<Event> },
    /// An agent connected and said hello (answers with whether it is accepted).
    AgentHello {
        pool_id: String,
        node_id: String,
        token: String,
        agent_version: String,
        running: Vec<(ExecKind, u64)>,
        finished: Vec<ExecResult>,
    },
    /// A message from a connected agent (starts and completions).
    Agent { node_id: String, msg: AgentMessage },
    /// A node's current agent connection dropped.
    AgentLost { node_id: String },
    /// A node's agent process was started (the node is `starting`).
    NodeSpawned { pool_id: String, node_id: String, pid: u32 },
    /// Enable AutoScale: the handler stored the settings; evaluate now (answers).
    EnableAutoScale { pool_id: String },
    /// Disable AutoScale: the handler cleared the settings; stop a resize in progress (answers).
    DisableAutoScale { pool_id: String },
    /// Evaluate AutoScale: a formula evaluated for the pool, which does not change (answers
    /// with [`Answer::Run`]).
    EvaluateAutoScale { pool_id: String, formula: crate::autoscale::Formula },
    /// Periodic housekeeping (lost nodes).
    Tick,
}

/// The answer to an event that carries a [`Ticket`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// The result of an API operation.
    Api(ApiResult<()>),
    /// Whether an agent's hello was accepted.
    Hello(bool),
    /// The result of Evaluate AutoScale.
    Run(ApiResult<crate::model::autoscale::AutoScaleRun>),
}

/// What the driver carries out after the batch committed, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send a message to a node's agent.
    Send { node_id: String, msg: ServiceMessage },
    /// Tell a node's agent its result was stored.
    Ack { node_id: String, dispatch_id: u64 },
    /// Start a node agent (a new node, or the replacement of a lost one).
    SpawnAgent { pool_id: String, node_id: String, token: String },
    /// Kill a node agent process this service started.
    KillAgent { pid: u32 },
    /// Remove a deleted pool's node directories.
    RemovePoolDir { pool_id: String },
    /// Stop a node's agent (`pid`, when this service started it) and start it again; `wipe`
    /// empties the node directory in between (a reimage).
    RestartAgent { pool_id: String, node_id: String, token: String, pid: Option<u32>, wipe: bool },
    /// Answer the request behind a ticket.
    Answer { ticket: Ticket, answer: Answer },
}

/// The reactor's view of a node's agent.
#[derive(Debug, Clone)]
pub struct NodeRt {
    pub pool_id: String,
    pub connected: bool,
    /// When `connected` last changed.
    pub since: Timestamp,
    /// The agent process, when this service started it.
    pub pid: Option<u32>,
    /// Whether the node is dedicated (else Spot/low-priority), for the node quotas.
    pub dedicated: bool,
}

/// The reactor's state; see the module documentation.
#[derive(Debug)]
pub struct Reactor {
    /// Placement of tasks into task slots.
    pub core: Core,
    /// Which tasks wait on which (jobs with `usesTaskDependencies`).
    pub deps: DepTracker,
    /// Record ids of tasks whose dependency key differs (integer ids with leading zeros).
    dep_ids: HashMap<(String, String), String>,
    /// When each unfinished job with a `maxWallClockTime` must end.
    job_deadlines: HashMap<String, Timestamp>,
    /// Completed tasks whose directories go when their `retentionTime` passes: (when, job, task).
    retention: BTreeSet<(Timestamp, String, String)>,
    /// When to look at each unfinished job schedule again.
    schedule_wake: HashMap<String, Timestamp>,
    /// Node agents by node id.
    pub nodes: HashMap<String, NodeRt>,
    /// When node user accounts expire: (when, pool, node).
    user_expiry: BTreeSet<(Timestamp, String, String)>,
    next_dispatch: u64,
    info: ServiceInfo,
    clock: Arc<dyn TimeSource>,
    out: Vec<Effect>,
    /// Events the reactor raised for itself, handled in the same batch.
    pending: VecDeque<Event>,
    /// Jobs whose tasks changed in this batch (settled at its end).
    touched_jobs: HashSet<String>,
    /// Pools whose nodes changed in this batch (counts refreshed at its end).
    touched_pools: HashSet<String>,
    /// What the batch adds to job and pool statistics (applied at its end).
    pending_stats: stats::PendingStats,
    /// When the pools being resized time out.
    resize_deadlines: resize::ResizeDeadlines,
    /// Preempted Spot nodes and chaos preemption.
    spot: spot::Spot,
    /// Certificates whose deletion waits to be settled.
    certs: certificates::CertDeletions,
    /// Autoscale pools' sample histories and evaluation times.
    autoscale: autoscale::Scales,
}

impl Reactor {
    /// An empty reactor; `first_dispatch` must exceed every dispatch id handed out before
    /// (the driver uses the current time in microseconds).
    pub fn new(info: ServiceInfo, clock: Arc<dyn TimeSource>, first_dispatch: u64) -> Self {
        Reactor {
            core: Core::new(),
            deps: DepTracker::default(),
            dep_ids: HashMap::new(),
            job_deadlines: HashMap::new(),
            retention: BTreeSet::new(),
            schedule_wake: HashMap::new(),
            nodes: HashMap::new(),
            user_expiry: BTreeSet::new(),
            next_dispatch: first_dispatch,
            clock,
            out: Vec::new(),
            pending: VecDeque::new(),
            touched_jobs: HashSet::new(),
            touched_pools: HashSet::new(),
            pending_stats: stats::PendingStats::default(),
            resize_deadlines: HashMap::new(),
            spot: spot::Spot::new(info.limits.chaos_seed),
            certs: certificates::CertDeletions::default(),
            autoscale: autoscale::Scales::new(),
            info,
        }
    }

    /// The reactor's current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn dispatch_id(&mut self) -> u64 {
        self.next_dispatch += 1;
        self.next_dispatch
    }

    fn send(&mut self, node_id: &str, msg: ServiceMessage) {
        self.out.push(Effect::Send { node_id: node_id.to_string(), msg });
    }

    fn answer(&mut self, ticket: Option<Ticket>, answer: Answer) {
        if let Some(ticket) = ticket {
            self.out.push(Effect::Answer { ticket, answer });
        }
    }

    /// Rebuilds the in-memory state from every stored record (at start, and after a failed
    /// batch). Node runtimes (connections, processes) are kept: they are not in the store.
    pub fn restore(&mut self, stored: Stored) {
        let Stored { pools, nodes, jobs, job_nodes, tasks, schedules } = stored;
        let (pools, nodes, jobs, job_nodes) = (&pools[..], &nodes[..], &jobs[..], &job_nodes[..]);
        self.core = Core::new();
        self.job_deadlines.clear();
        self.retention.clear();
        self.reset_certificates();
        let now = self.now();
        // Every unfinished schedule is looked at with the first tick (missed windows included).
        self.schedule_wake =
            schedules.iter().filter(|s| s.state != JobScheduleState::Completed).map(|s| (s.spec.id.clone(), now)).collect();
        self.resize_deadlines.clear();
        for p in pools {
            self.core.upsert_pool(&p.spec.id, p.spec.slots_per_node(), fill_of(p));
            self.watch_resize(p);
        }
        self.restore_autoscale(pools);
        let mut known = HashSet::new();
        self.spot.preempted.clear();
        self.user_expiry.clear();
        for n in nodes {
            if n.state == NodeState::Preempted {
                let recovery = chrono::Duration::from_std(self.info.limits.spot_recovery).unwrap_or_default();
                self.spot.preempted.insert(n.id.clone(), (n.pool_id.clone(), n.state_transition_time + recovery));
                self.core.upsert_node(&n.pool_id, &n.id, false);
                continue;
            }
            known.insert(n.id.clone());
            self.restore_user_expiry(n);
            let rt = self.nodes.entry(n.id.clone()).or_insert(NodeRt {
                pool_id: n.pool_id.clone(),
                connected: false,
                since: now,
                pid: None,
                dedicated: n.is_dedicated,
            });
            rt.pid = rt.pid.or(n.agent_pid);
            let schedulable =
                rt.connected && matches!(n.state, NodeState::Idle | NodeState::Running) && n.scheduling_state == SchedulingState::Enabled;
            self.core.upsert_node(&n.pool_id, &n.id, schedulable);
        }
        self.nodes.retain(|id, _| known.contains(id));
        for j in jobs {
            self.upsert_job_core(j);
            if matches!(j.status.state, JobState::Terminating | JobState::Deleting) {
                self.touched_jobs.insert(j.spec.id.clone());
            }
        }
        for jn in job_nodes {
            if let Some(p) = &jn.job_preparation_task_execution_info {
                let state = match (p.state, p.result) {
                    (PrepTaskState::Completed, Some(crate::model::common::ExecutionResult::Success)) => PrepState::Ready,
                    (PrepTaskState::Completed, _) => PrepState::Failed,
                    // Still running: the agent reports it, or it runs again.
                    (PrepTaskState::Running, _) => PrepState::Running,
                };
                self.core.set_prep(&jn.job_id, &jn.node_id, state);
            }
        }
        let held = self.restore_dependencies(jobs, &tasks);
        let mut active: Vec<Task> = Vec::new();
        let mut placed: Vec<Task> = Vec::new();
        for t in tasks {
            match t.status.state {
                TaskState::Active if !held.contains(&(t.job_id.clone(), t.spec.id.clone())) => active.push(t),
                TaskState::Active => {}
                TaskState::Preparing | TaskState::Running => placed.push(t),
                TaskState::Completed => self.retain(&t),
            }
        }
        let by_id: HashMap<&str, &Job> = jobs.iter().map(|j| (j.spec.id.as_str(), j)).collect();
        // Placements in the order they were dispatched (preemption spares the earliest), with
        // the slots they were given (a whole node for an exclusive job manager task).
        placed.sort_by_key(|t| t.dispatch);
        for t in placed {
            let slots = self.queue_slots(by_id.get(t.job_id.as_str()).copied(), &t);
            match (&t.multi, &t.status.node_info) {
                (Some(m), Some(ni)) => self.core.restore_multi(&t.job_id, &t.spec.id, &ni.pool_id, &m.nodes, slots),
                (None, Some(ni)) => self.core.restore_placement(&t.job_id, &t.spec.id, &ni.pool_id, &ni.node_id, slots),
                _ => {}
            }
        }
        active.sort_by_key(|a| a.creation_time);
        for t in active {
            self.enqueue(by_id.get(t.job_id.as_str()).copied(), &t, false);
        }
    }

    fn upsert_job_core(&mut self, j: &Job) {
        let limit = j.spec.constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_deref()).and_then(|d| deadline(j.creation_time, d));
        match (limit, j.status.state) {
            (Some(at), JobState::Active | JobState::Disabling | JobState::Disabled) => {
                self.job_deadlines.insert(j.spec.id.clone(), at);
            }
            _ => {
                self.job_deadlines.remove(&j.spec.id);
            }
        }
        self.core.upsert_job(
            &j.spec.id,
            j.status.execution_info.pool_id.as_deref(),
            j.spec.priority.unwrap_or(0),
            j.status.state == JobState::Active,
            j.spec.max_parallel_tasks.unwrap_or(-1),
            j.spec.job_preparation_task.as_ref().map(|p| p.wait_for_success.unwrap_or(true)),
        );
        let manager = j.spec.job_manager_task.as_ref().map(|m| m.id.as_str());
        self.core.set_preemption(&j.spec.id, j.spec.allow_task_preemption == Some(true), manager);
    }

    /// Applies a batch of events: each event, the events they raise, then a scheduling round
    /// and the settling of touched jobs and pools. Records are flushed to the backing; the
    /// effects are returned for the driver to carry out after it commits.
    pub async fn apply<B: Backing>(&mut self, r: &mut Records<B>, events: Vec<(Event, Option<Ticket>)>) -> StoreResult<Vec<Effect>> {
        self.out.clear();
        self.pending.clear();
        self.pending_stats.clear();
        for (ev, ticket) in events {
            self.handle(r, ev, ticket).await?;
            while let Some(ev) = self.pending.pop_front() {
                self.handle(r, ev, None).await?;
            }
        }
        self.dispatch(r).await?;
        // Settle pools and jobs from the written state.
        r.flush().await?;
        for pool_id in std::mem::take(&mut self.touched_pools) {
            self.refresh_pool(r, &pool_id).await?;
        }
        for job_id in std::mem::take(&mut self.touched_jobs) {
            self.settle_job(r, &job_id).await?;
        }
        let mut raised = false;
        while let Some(ev) = self.pending.pop_front() {
            raised = true;
            self.handle(r, ev, None).await?;
        }
        if raised {
            // What settling raised (a job schedule's next job and its job manager task, an
            // auto pool going) is scheduled now rather than with the next batch; jobs this
            // round touches settle with the next batch.
            self.dispatch(r).await?;
        }
        self.flush_stats(r).await?;
        r.flush().await?;
        Ok(std::mem::take(&mut self.out))
    }

    /// Checks a request's conditional headers against the job or task an event changes, as
    /// stored now (a missing one is left to the event, which answers 404).
    async fn conditions_hold<B: Backing>(&mut self, r: &mut Records<B>, cond: &Conditions, ev: &Event) -> StoreResult<ApiResult<()>> {
        let modified = match ev {
            Event::TerminateTask { job_id, task_id }
            | Event::ReactivateTask { job_id, task_id }
            | Event::DeleteTask { job_id, task_id } => r.get::<Task>(job_id, task_id).await?.map(|t| t.last_modified),
            Event::TerminateJob { job_id, .. }
            | Event::DeleteJob { job_id }
            | Event::DisableJob { job_id, .. }
            | Event::EnableJob { job_id } => r.get::<Job>("", job_id).await?.map(|j| j.last_modified),
            Event::TerminateSchedule { id }
            | Event::DeleteSchedule { id }
            | Event::DisableSchedule { id }
            | Event::EnableSchedule { id } => r.get::<JobSchedule>("", id).await?.map(|s| s.last_modified),
            _ => None,
        };
        Ok(modified.map_or(Ok(()), |t| cond.check(&t, false)))
    }

    async fn handle<B: Backing>(&mut self, r: &mut Records<B>, ev: Event, ticket: Option<Ticket>) -> StoreResult<()> {
        match ev {
            Event::PoolChanged(pool_id) => {
                self.autoscale_pool_changed(r, &pool_id).await?;
                self.reconcile_pool(r, &pool_id).await?
            }
            Event::EnableAutoScale { pool_id } => {
                let a = self.enable_autoscale(r, &pool_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DisableAutoScale { pool_id } => {
                let a = self.disable_autoscale(r, &pool_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::EvaluateAutoScale { pool_id, formula } => self.evaluate_autoscale(r, &pool_id, &formula, ticket).await?,
            Event::JobChanged(job_id) => {
                if let Some(j) = r.get::<Job>("", &job_id).await? {
                    self.upsert_job_core(&j);
                    self.touched_jobs.insert(job_id);
                }
            }
            Event::TasksAdded { job_id, tasks } => self.tasks_added(r, &job_id, tasks).await?,
            Event::TerminateTask { job_id, task_id } => {
                let a = self.terminate_task(r, &job_id, &task_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::ReactivateTask { job_id, task_id } => {
                let a = self.reactivate_task(r, &job_id, &task_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DeleteTask { job_id, task_id } => {
                let a = self.delete_task(r, &job_id, &task_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::TerminateJob { job_id, reason } => {
                let a = self.terminate_job(r, &job_id, &reason).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DeleteJob { job_id } => {
                let a = self.delete_job(r, &job_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DisableJob { job_id, option } => {
                let a = self.disable_job(r, &job_id, option).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::EnableJob { job_id } => {
                let a = self.enable_job(r, &job_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::ScheduleChanged(id) => {
                self.evaluate_schedule(r, &id).await?;
                self.answer(ticket, Answer::Api(Ok(())));
            }
            Event::ScheduleJobEnded { schedule_id, job_id } => self.schedule_job_ended(r, &schedule_id, &job_id).await?,
            Event::TerminateSchedule { id } => {
                let a = self.terminate_schedule(r, &id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DeleteSchedule { id } => {
                let a = self.delete_schedule(r, &id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DisableSchedule { id } => {
                let a = self.disable_schedule(r, &id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::EnableSchedule { id } => {
                let a = self.enable_schedule(r, &id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DisableNodeScheduling { pool_id, node_id, option } => {
                let a = self.disable_node_scheduling(r, &pool_id, &node_id, option).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::EnableNodeScheduling { pool_id, node_id } => {
                let a = self.enable_node_scheduling(r, &pool_id, &node_id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::Pool { pool_id, op } => {
                let a = self.pool_op(r, &pool_id, op).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::NodeOperation { pool_id, node_id, op } => {
                let a = self.node_operation(r, (&pool_id, &node_id), op).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::DeleteCertificate { id } => {
                let a = self.delete_certificate(r, &id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::CancelCertificateDeletion { id } => {
                let a = self.cancel_certificate_deletion(r, &id).await?;
                self.answer(ticket, Answer::Api(a));
            }
            Event::AgentHello { pool_id, node_id, token, agent_version, running, mut finished } => {
                finished.iter_mut().for_each(|res| self.agent_times(res));
                let accepted = self.agent_hello(r, &pool_id, &node_id, &token, &agent_version, running, finished).await?;
                self.answer(ticket, Answer::Hello(accepted));
            }
            Event::Agent { node_id, msg } => match msg {
                AgentMessage::Started { kind: ExecKind::Task { job_id, task_id }, dispatch_id, started_ms } => {
                    let started_ms = self.clock.wall_ms_to_service(started_ms);
                    self.task_started(r, &node_id, (&job_id, &task_id), dispatch_id, started_ms).await?;
                }
                AgentMessage::Finished { mut result } => {
                    self.agent_times(&mut result);
                    self.out.push(Effect::Ack { node_id: node_id.clone(), dispatch_id: result.dispatch_id });
                    self.finished(r, &node_id, result).await?;
                }
                AgentMessage::Sample { sample } => self.node_sampled(r, &node_id, sample).await?,
                _ => {}
            },
            Event::AgentLost { node_id } => {
                let now = self.now();
                if let Some(rt) = self.nodes.get_mut(&node_id) {
                    rt.connected = false;
                    rt.since = now;
                    let pool_id = rt.pool_id.clone();
                    self.core.upsert_node(&pool_id, &node_id, false);
                }
            }
            Event::NodeSpawned { pool_id, node_id, pid } => self.node_spawned(r, &pool_id, &node_id, pid).await?,
            Event::Conditional { cond, event } => match self.conditions_hold(r, &cond, &event).await? {
                Ok(()) => Box::pin(self.handle(r, *event, ticket)).await?,
                Err(e) => self.answer(ticket, Answer::Api(Err(e))),
            },
            Event::Tick => {
                let now = self.now();
                let grace_ms = (RECONNECT_GRACE_SECS as f64 * 1000.0 * self.clock.speed()) as i64;
                let lost: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, rt)| !rt.connected && (now - rt.since).num_milliseconds() >= grace_ms)
                    .map(|(id, _)| id.clone())
                    .collect();
                for node_id in lost {
                    self.replace_node(r, &node_id).await?;
                }
                // Jobs past their maxWallClockTime end, with their running tasks.
                let expired: Vec<String> = self.job_deadlines.iter().filter(|(_, d)| **d <= now).map(|(j, _)| j.clone()).collect();
                for job_id in expired {
                    self.job_deadlines.remove(&job_id);
                    self.pending.push_back(Event::TerminateJob { job_id, reason: "MaxWallClockTimeExpiry".into() });
                }
                self.expire_retention(r, now).await?;
                self.expire_node_users(r, now).await?;
                for id in self.due_schedules(now) {
                    self.evaluate_schedule(r, &id).await?;
                }
                self.resize_timeouts(r, now).await?;
                self.restore_preempted(r, now).await?;
                self.chaos_preemptions(r, now).await?;
                self.tick_certificates(r, now).await?;
                self.autoscale_tick(r, now).await?;
            }
        }
        Ok(())
    }

    /// An agent's times (its machine's wall clock) as the service clock reads them.
    fn agent_times(&self, res: &mut ExecResult) {
        res.started_ms = res.started_ms.map(|ms| self.clock.wall_ms_to_service(ms));
        res.ended_ms = self.clock.wall_ms_to_service(res.ended_ms);
    }

    /// Checks the invariants between the reactor's memory and the records: every placed
    /// task is preparing or running on its node, every node's running counts equal its
    /// placements, and the core's own counters agree (see [`Core::sanity_check`]).
    pub fn sanity_check(&self, tasks: &[Task], nodes: &[Node]) -> Result<(), String> {
        self.core.sanity_check()?;
        for t in tasks {
            let placed = self.core.placement(&t.job_id, &t.spec.id);
            let running = matches!(t.status.state, TaskState::Preparing | TaskState::Running);
            if placed.is_some() != running {
                return Err(format!("task {}/{} is {:?} but placed={:?}", t.job_id, t.spec.id, t.status.state, placed));
            }
            if let (Some((pool, node)), Some(ni)) = (placed, &t.status.node_info) {
                if (pool, node) != (ni.pool_id.as_str(), ni.node_id.as_str()) {
                    return Err(format!(
                        "task {}/{} placed on {pool}/{node} but records say {}/{}",
                        t.job_id, t.spec.id, ni.pool_id, ni.node_id
                    ));
                }
            }
        }
        for n in nodes {
            let placed = self.core.tasks_on_node(&n.pool_id, &n.id);
            if placed.len() as i32 != n.running_tasks_count {
                return Err(format!("node {} counts {} running tasks, {} placed", n.id, n.running_tasks_count, placed.len()));
            }
        }
        Ok(())
    }
}

/// Every stored record the reactor rebuilds its memory from.
#[derive(Debug, Default)]
pub struct Stored {
    pub pools: Vec<Pool>,
    pub nodes: Vec<Node>,
    pub jobs: Vec<Job>,
    pub job_nodes: Vec<JobNode>,
    pub tasks: Vec<Task>,
    pub schedules: Vec<JobSchedule>,
}

/// Sets a node's state, stamping the transition time when it changes.
fn set_node_state(node: &mut Node, state: NodeState, now: Timestamp) {
    if node.state != state {
        node.state = state;
        node.state_transition_time = now;
    }
}

fn fill_of(p: &Pool) -> NodeFillType {
    p.spec.task_scheduling_policy.as_ref().map(|t| t.node_fill_type).unwrap_or(NodeFillType::Spread)
}

/// Milliseconds since the epoch as a timestamp (agent times), or `fallback`.
fn to_ts(ms: i64, fallback: Timestamp) -> Timestamp {
    use chrono::TimeZone;
    chrono::Utc.timestamp_millis_opt(ms).single().unwrap_or(fallback)
}
