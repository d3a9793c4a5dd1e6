//! The driver: the one task that owns the scheduler [`Core`], applies events in batches, and
//! carries out the decisions — one store transaction per batch (so fsyncs are shared), then
//! messages to node agents. API handlers write what they own (adds, patches) themselves and
//! then notify the driver; operations that touch running work (terminating or deleting tasks
//! and jobs, pool resize and delete) are carried out here.
//!
//! Recovery: at start the driver rebuilds the core from the store. Nodes wait a grace
//! period for their agents to reconnect; an agent that does reports what it still runs and
//! the results not yet stored, so tasks finish normally. A node whose agent does not come
//! back is replaced (its agent restarted) and its tasks are requeued, as Azure Batch does
//! after a node failure.

use super::core::Core;
use super::core::{PrepState, Preparation};
use super::hub::Hub;
use crate::agent::protocol::{AgentMessage, AppPackageRef, ExecFailure, ExecKind, ExecResult, ExecSpec, ServiceMessage};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::model::common::{EnvironmentSetting, ErrorCategory, ExecutionResult, FailureInfo, NameValuePair};
use crate::model::job::{DisableJobOption, Job, JobLifetimeStats, JobNode, JobState, OnAllTasksComplete, PrepTaskInfo, PrepTaskState};
use crate::model::node::{Node, NodeAgentInfo, NodeState, SchedulingState, StartTaskInfo, StartTaskState};
use crate::model::pool::{AllocationState, DeallocationOption, NodeFillType, Pool, PoolState};
use crate::model::task::{Task, TaskState};
use crate::model::time::{parse_duration, Clock, Timestamp};
use crate::nodes::local::LocalProvider;
use crate::storage::{output_files, resource_files};
use crate::store::{Record, Store, StoreResult, Tx};
use chrono::{TimeZone, Utc};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a node may stay disconnected before it counts as failed.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(5);

/// Largest number of events applied in one transaction.
const MAX_BATCH: usize = 4096;

type Reply = oneshot::Sender<ApiResult<()>>;

/// Something the driver must act on.
pub enum Event {
    /// A pool was added or changed (targets, start task, deletion): reconcile its nodes.
    PoolChanged(String),
    /// A job was added or changed: refresh its scheduling view.
    JobChanged(String),
    /// Active tasks were added to a job, in order, with their required slots.
    TasksAdded { job_id: String, tasks: Vec<(String, u32)> },
    /// Terminate Task.
    TerminateTask { job_id: String, task_id: String, reply: Reply },
    /// Delete Task.
    DeleteTask { job_id: String, task_id: String, reply: Reply },
    /// Terminate Job with a reason.
    TerminateJob { job_id: String, reason: String, reply: Reply },
    /// Delete Job.
    DeleteJob { job_id: String, reply: Reply },
    /// Disable Job with the fate of its running tasks.
    DisableJob { job_id: String, option: DisableJobOption, reply: Reply },
    /// Enable Job.
    EnableJob { job_id: String, reply: Reply },
    /// An agent connected and said hello.
    AgentHello {
        conn_id: u64,
        pool_id: String,
        node_id: String,
        token: String,
        agent_version: String,
        running: Vec<(ExecKind, u64)>,
        finished: Vec<ExecResult>,
        accept: oneshot::Sender<bool>,
    },
    /// A message from a connected agent (starts and completions).
    Agent { node_id: String, msg: AgentMessage },
    /// An agent's connection dropped.
    AgentGone { node_id: String, conn_id: u64 },
    /// A node's agent process was started (the node is `starting`).
    NodeSpawned { pool_id: String, node_id: String, pid: u32 },
    /// Periodic housekeeping.
    Tick,
}

/// The handle API handlers use to reach the driver.
#[derive(Clone)]
pub struct DriverHandle {
    tx: mpsc::UnboundedSender<Event>,
    /// The connected agents.
    pub hub: Hub,
}

impl DriverHandle {
    /// Sends an event; the driver acts on it in its next batch.
    pub fn notify(&self, ev: Event) {
        let _ = self.tx.send(ev);
    }

    /// Sends an event that carries a reply and waits for the driver's answer.
    pub async fn call(&self, make: impl FnOnce(Reply) -> Event) -> ApiResult<()> {
        let (tx, rx) = oneshot::channel();
        self.notify(make(tx));
        rx.await.unwrap_or_else(|_| Err(BatchError::internal("the scheduler stopped")))
    }
}

/// What the service tells agents and writes into resources about itself.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub account_name: String,
    /// Base URL of the account (`http://127.0.0.1:10400`), for resource URLs.
    pub account_url: String,
    /// The account's linked storage (`autoStorageContainerName`), if configured.
    pub auto_storage: Option<crate::storage::resource_files::AutoStorage>,
}

struct NodeRt {
    pool_id: String,
    connected: bool,
    since: Instant,
    pid: Option<u32>,
}

/// Resources loaded and changed within one batch, written at its end.
struct Cache<R> {
    map: HashMap<(String, String), Option<R>>,
    dirty: HashSet<(String, String)>,
}

impl<R: Record + Clone> Cache<R> {
    fn new() -> Self {
        Cache { map: HashMap::new(), dirty: HashSet::new() }
    }
    async fn get(&mut self, tx: &mut Tx, parent: &str, id: &str) -> StoreResult<Option<R>> {
        let key = (parent.to_string(), id.to_string());
        if let Some(v) = self.map.get(&key) {
            return Ok(v.clone());
        }
        let v: Option<R> = tx.get(parent, id).await?;
        self.map.insert(key, v.clone());
        Ok(v)
    }
    fn put(&mut self, r: R) {
        let key = (r.parent().to_string(), r.id().to_string());
        self.dirty.insert(key.clone());
        self.map.insert(key, Some(r));
    }
    fn remove(&mut self, parent: &str, id: &str) {
        let key = (parent.to_string(), id.to_string());
        self.dirty.insert(key.clone());
        self.map.insert(key, None);
    }
    async fn flush(&mut self, tx: &mut Tx) -> StoreResult<()> {
        for key in self.dirty.drain() {
            match self.map.get(&key) {
                Some(Some(r)) => tx.put(r).await?,
                _ => {
                    tx.delete::<R>(&key.0, &key.1).await?;
                }
            }
        }
        Ok(())
    }
}

struct Work {
    tx: Tx,
    pools: Cache<Pool>,
    jobs: Cache<Job>,
    tasks: Cache<Task>,
    nodes: Cache<Node>,
    jobnodes: Cache<JobNode>,
    stats: Cache<JobLifetimeStats>,
    out: Vec<(String, ServiceMessage)>,
    acks: HashMap<String, Vec<u64>>,
    replies: Vec<(Reply, ApiResult<()>)>,
    touched_jobs: HashSet<String>,
    touched_pools: HashSet<String>,
}

/// The driver task's state.
pub struct Driver {
    store: Store,
    provider: LocalProvider,
    info: ServiceInfo,
    core: Core,
    hub: Hub,
    nodes: HashMap<String, NodeRt>,
    next_dispatch: u64,
    rx: mpsc::UnboundedReceiver<Event>,
    /// The driver's own sender, for events it schedules for itself.
    me: mpsc::UnboundedSender<Event>,
}

fn to_ts(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Clock::now)
}

fn failure_info(f: &ExecFailure) -> FailureInfo {
    let details = if f.details.is_empty() {
        vec![NameValuePair { name: "Message".into(), value: f.detail.clone() }]
    } else {
        f.details.iter().map(|(name, value)| NameValuePair { name: name.clone(), value: value.clone() }).collect()
    };
    FailureInfo { category: ErrorCategory::UserError, code: Some(f.code.clone()), message: Some(f.message.clone()), details: Some(details) }
}

impl Driver {
    /// Rebuilds the scheduler from the store and starts the driver task.
    pub async fn start(store: Store, provider: LocalProvider, info: ServiceInfo) -> anyhow::Result<DriverHandle> {
        let (tx, rx) = mpsc::unbounded_channel();
        let hub = Hub::default();
        let mut d = Driver {
            store: store.clone(),
            provider,
            info,
            core: Core::new(),
            hub: hub.clone(),
            nodes: HashMap::new(),
            next_dispatch: (Utc::now().timestamp_micros().max(1)) as u64,
            rx,
            me: tx.clone(),
        };
        d.recover().await?;
        let ticker = tx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(500));
            loop {
                iv.tick().await;
                if ticker.send(Event::Tick).is_err() {
                    break;
                }
            }
        });
        // Pools and jobs may have unfinished transitions (deleting, resizing, terminating).
        for p in store.all::<Pool>().await? {
            let _ = tx.send(Event::PoolChanged(p.spec.id.clone()));
        }
        tokio::spawn(d.run());
        Ok(DriverHandle { tx, hub })
    }

    async fn recover(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        for p in self.store.all::<Pool>().await? {
            self.core.upsert_pool(&p.spec.id, p.spec.slots_per_node(), fill_of(&p));
        }
        for n in self.store.all::<Node>().await? {
            self.core.upsert_node(&n.pool_id, &n.id, false);
            self.nodes.insert(n.id.clone(), NodeRt { pool_id: n.pool_id.clone(), connected: false, since: now, pid: n.agent_pid });
        }
        for j in self.store.all::<Job>().await? {
            self.upsert_job_core(&j);
        }
        if self.store.get::<JobLifetimeStats>("", JobLifetimeStats::ID).await?.is_none() {
            let mut tx = self.store.begin().await?;
            tx.put(&JobLifetimeStats::new(Clock::now())).await?;
            tx.commit().await?;
        }
        for jn in self.store.all::<JobNode>().await? {
            if let Some(p) = &jn.job_preparation_task_execution_info {
                match (p.state, p.result) {
                    (PrepTaskState::Completed, Some(ExecutionResult::Success)) => {
                        self.core.set_prep(&jn.job_id, &jn.node_id, PrepState::Ready)
                    }
                    (PrepTaskState::Completed, _) => self.core.set_prep(&jn.job_id, &jn.node_id, PrepState::Failed),
                    // Still running: the agent reports it, or it runs again.
                    (PrepTaskState::Running, _) => self.core.set_prep(&jn.job_id, &jn.node_id, PrepState::Running),
                }
            }
        }
        let mut active: Vec<Task> = Vec::new();
        for t in self.store.all::<Task>().await? {
            match t.status.state {
                TaskState::Active => active.push(t),
                TaskState::Preparing | TaskState::Running => {
                    if let Some(ni) = &t.status.node_info {
                        self.core.restore_placement(&t.job_id, &t.spec.id, &ni.pool_id, &ni.node_id, t.spec.slots());
                    }
                }
                TaskState::Completed => {}
            }
        }
        active.sort_by_key(|a| a.creation_time);
        for t in active {
            self.core.enqueue_task(&t.job_id, &t.spec.id, t.spec.slots(), false);
        }
        tracing::info!(queued = self.core.queued(), nodes = self.nodes.len(), "scheduler state recovered");
        Ok(())
    }

    fn upsert_job_core(&mut self, j: &Job) {
        let schedulable = j.status.state == JobState::Active;
        self.core.upsert_job(
            &j.spec.id,
            j.status.execution_info.pool_id.as_deref(),
            j.spec.priority.unwrap_or(0),
            schedulable,
            j.spec.max_parallel_tasks.unwrap_or(-1),
            j.spec.job_preparation_task.as_ref().map(|p| p.wait_for_success.unwrap_or(true)),
        );
    }

    async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            let (n, t0) = (batch.len(), Instant::now());
            let result = self.apply(batch).await;
            tracing::debug!(events = n, micros = t0.elapsed().as_micros() as u64, "batch applied");
            if let Err(e) = result {
                tracing::error!(error = %e, "scheduler batch failed; it will be retried from the store state");
            }
        }
    }

    async fn apply(&mut self, batch: Vec<Event>) -> StoreResult<()> {
        let tx = self.store.begin().await?;
        let mut w = Work {
            tx,
            pools: Cache::new(),
            jobs: Cache::new(),
            tasks: Cache::new(),
            nodes: Cache::new(),
            jobnodes: Cache::new(),
            stats: Cache::new(),
            out: Vec::new(),
            acks: HashMap::new(),
            replies: Vec::new(),
            touched_jobs: HashSet::new(),
            touched_pools: HashSet::new(),
        };
        let mut spawns: Vec<(String, String, String)> = Vec::new();
        for ev in batch {
            self.handle(ev, &mut w, &mut spawns).await?;
        }
        self.dispatch(&mut w).await?;
        // Flush, then settle pools and jobs from the written state.
        self.flush(&mut w).await?;
        for pool_id in std::mem::take(&mut w.touched_pools) {
            self.refresh_pool(&mut w, &pool_id).await?;
        }
        for job_id in std::mem::take(&mut w.touched_jobs) {
            self.check_all_tasks_complete(&mut w, &job_id).await?;
        }
        self.flush(&mut w).await?;
        let Work { tx, out, acks, replies, .. } = w;
        let committed = tx.commit().await;
        for (reply, result) in replies {
            let _ = reply.send(match &committed {
                Ok(()) => result,
                Err(e) => Err(BatchError::internal(e)),
            });
        }
        committed?;
        for (pool_id, node_id, token) in spawns {
            match self.provider.spawn(&pool_id, &node_id, &token) {
                Ok(pid) => {
                    if let Some(rt) = self.nodes.get_mut(&node_id) {
                        rt.pid = Some(pid);
                    }
                    let _ = self.me.send(Event::NodeSpawned { pool_id, node_id, pid });
                }
                Err(e) => tracing::error!(%pool_id, %node_id, error = %e, "could not start the node agent"),
            }
        }
        for (node_id, msg) in out {
            self.hub.send(&node_id, msg);
        }
        for (node_id, ids) in acks {
            self.hub.send(&node_id, ServiceMessage::Ack { dispatch_ids: ids });
        }
        Ok(())
    }

    async fn flush(&mut self, w: &mut Work) -> StoreResult<()> {
        w.pools.flush(&mut w.tx).await?;
        w.jobs.flush(&mut w.tx).await?;
        w.tasks.flush(&mut w.tx).await?;
        w.nodes.flush(&mut w.tx).await?;
        w.jobnodes.flush(&mut w.tx).await?;
        w.stats.flush(&mut w.tx).await
    }

    async fn handle(&mut self, ev: Event, w: &mut Work, spawns: &mut Vec<(String, String, String)>) -> StoreResult<()> {
        match ev {
            Event::PoolChanged(pool_id) => self.reconcile_pool(w, &pool_id, spawns).await?,
            Event::JobChanged(job_id) => {
                if let Some(j) = w.jobs.get(&mut w.tx, "", &job_id).await? {
                    self.upsert_job_core(&j);
                    w.touched_jobs.insert(job_id);
                }
            }
            Event::TasksAdded { job_id, tasks } => {
                for (task_id, slots) in tasks {
                    self.core.enqueue_task(&job_id, &task_id, slots, false);
                }
            }
            Event::TerminateTask { job_id, task_id, reply } => {
                let r = self.terminate_task(w, &job_id, &task_id).await?;
                w.replies.push((reply, r));
            }
            Event::DeleteTask { job_id, task_id, reply } => {
                let r = self.delete_task(w, &job_id, &task_id).await?;
                w.replies.push((reply, r));
            }
            Event::TerminateJob { job_id, reason, reply } => {
                let r = self.terminate_job(w, &job_id, &reason).await?;
                w.replies.push((reply, r));
            }
            Event::DeleteJob { job_id, reply } => {
                let r = self.delete_job(w, &job_id).await?;
                w.replies.push((reply, r));
            }
            Event::DisableJob { job_id, option, reply } => {
                let r = self.disable_job(w, &job_id, option).await?;
                w.replies.push((reply, r));
            }
            Event::EnableJob { job_id, reply } => {
                let r = self.enable_job(w, &job_id).await?;
                w.replies.push((reply, r));
            }
            Event::AgentHello { conn_id, pool_id, node_id, token, agent_version, running, finished, accept } => {
                self.agent_hello(w, conn_id, &pool_id, &node_id, &token, &agent_version, running, finished, accept).await?;
            }
            Event::Agent { node_id, msg } => match msg {
                AgentMessage::Started { kind: ExecKind::Task { job_id, task_id }, dispatch_id, started_ms } => {
                    if let Some(mut t) = w.tasks.get(&mut w.tx, &job_id, &task_id).await? {
                        if t.dispatch == dispatch_id && t.status.state == TaskState::Preparing {
                            t.status.transition(TaskState::Running, to_ts(started_ms));
                            t.status.execution_info.start_time = Some(to_ts(started_ms));
                            w.tasks.put(t);
                        }
                    }
                }
                AgentMessage::Finished { result } => {
                    w.acks.entry(node_id.clone()).or_default().push(result.dispatch_id);
                    self.finished(w, &node_id, result).await?;
                }
                _ => {}
            },
            Event::AgentGone { node_id, conn_id } => {
                if self.hub.disconnect(&node_id, conn_id) {
                    if let Some(rt) = self.nodes.get_mut(&node_id) {
                        rt.connected = false;
                        rt.since = Instant::now();
                        let pool_id = rt.pool_id.clone();
                        self.core.upsert_node(&pool_id, &node_id, false);
                    }
                }
            }
            Event::NodeSpawned { pool_id, node_id, pid } => {
                if let Some(mut node) = w.nodes.get(&mut w.tx, &pool_id, &node_id).await? {
                    node.agent_pid = Some(pid);
                    if matches!(node.state, NodeState::Creating | NodeState::Unusable) {
                        set_node_state(&mut node, NodeState::Starting, Clock::now());
                    }
                    w.nodes.put(node);
                    w.touched_pools.insert(pool_id);
                }
            }
            Event::Tick => {
                let lost: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, rt)| !rt.connected && rt.since.elapsed() > RECONNECT_GRACE)
                    .map(|(id, _)| id.clone())
                    .collect();
                for node_id in lost {
                    self.replace_node(w, &node_id, spawns).await?;
                }
            }
        }
        Ok(())
    }

    /// Places queued tasks and sends them to their nodes.
    async fn dispatch(&mut self, w: &mut Work) -> StoreResult<()> {
        let decisions = self.core.schedule();
        for p in decisions.preparations {
            self.start_preparation(w, &p, 0).await?;
        }
        for a in decisions.assignments {
            let task = w.tasks.get(&mut w.tx, &a.job_id, &a.task_id).await?;
            let job = w.jobs.get(&mut w.tx, "", &a.job_id).await?;
            let node = w.nodes.get(&mut w.tx, &a.pool_id, &a.node_id).await?;
            let (Some(mut task), Some(job), Some(mut node)) = (task, job, node) else {
                self.core.finish_task(&a.job_id, &a.task_id);
                continue;
            };
            if task.status.state != TaskState::Active {
                self.core.finish_task(&a.job_id, &a.task_id);
                continue;
            }
            let now = Clock::now();
            self.next_dispatch += 1;
            task.dispatch = self.next_dispatch;
            task.status.transition(TaskState::Preparing, now);
            let dir = format!("workitems/{}/job-1/{}", job.spec.id, task.spec.id);
            let node_url = format!("{}/pools/{}/nodes/{}", self.info.account_url, a.pool_id, a.node_id);
            task.status.node_info = Some(crate::model::task::TaskNodeInfo {
                affinity_id: format!("TVM:{}", a.node_id),
                node_url: node_url.clone(),
                pool_id: a.pool_id.clone(),
                node_id: a.node_id.clone(),
                task_root_directory: dir.clone(),
                task_root_directory_url: format!("{node_url}/files/{dir}"),
            });
            let pool_refs = w.pools.get(&mut w.tx, "", &a.pool_id).await?.and_then(|p| p.spec.application_package_references);
            let environment =
                merged_environment(job.spec.common_environment_settings.as_deref(), task.spec.environment_settings.as_deref());
            let limit = wall_clock_secs(task.spec.constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_deref()));
            let spec = ExecSpec {
                kind: ExecKind::Task { job_id: job.spec.id.clone(), task_id: task.spec.id.clone() },
                dispatch_id: task.dispatch,
                command_line: task.spec.command_line.clone(),
                environment,
                job_id: Some(job.spec.id.clone()),
                max_wall_clock_secs: limit,
                admin: task.spec.user_identity.as_ref().is_some_and(|u| u.is_admin()),
                job_prep: job.spec.job_preparation_task.is_some(),
                resource_files: resource_files::specs(task.spec.resource_files.as_deref(), self.info.auto_storage.as_ref()),
                output_files: output_files::specs(task.spec.output_files.as_deref()),
                app_packages: [pool_refs.as_deref(), task.spec.application_package_references.as_deref()]
                    .into_iter()
                    .flat_map(AppPackageRef::from_api)
                    .collect(),
            };
            node.running_tasks_count += 1;
            node.running_task_slots_count += a.slots as i32;
            if node.state == NodeState::Idle {
                node.state = NodeState::Running;
                node.state_transition_time = now;
            }
            w.out.push((a.node_id.clone(), ServiceMessage::Run { spec }));
            w.tasks.put(task);
            w.nodes.put(node);
        }
        Ok(())
    }

    /// An execution ended on a node.
    async fn finished(&mut self, w: &mut Work, node_id: &str, r: ExecResult) -> StoreResult<()> {
        let Some(pool_id) = self.nodes.get(node_id).map(|n| n.pool_id.clone()) else { return Ok(()) };
        match r.kind.clone() {
            ExecKind::JobPreparation { job_id } => return self.preparation_finished(w, &pool_id, node_id, &job_id, r).await,
            ExecKind::JobRelease { job_id } => return self.release_finished(w, node_id, &job_id, r).await,
            _ => {}
        }
        let Some(mut node) = w.nodes.get(&mut w.tx, &pool_id, node_id).await? else { return Ok(()) };
        match r.kind.clone() {
            ExecKind::StartTask => {
                let Some(info) = node.start_task_info.as_mut() else { return Ok(()) };
                let wait = node.start_task.as_ref().and_then(|s| s.wait_for_success).unwrap_or(true);
                let max_retries = node.start_task.as_ref().and_then(|s| s.max_task_retry_count).unwrap_or(0);
                let now = Clock::now();
                let (result, failure) = outcome(&r);
                if result == ExecutionResult::Failure && (max_retries < 0 || info.retry_count < max_retries) && retryable(&r) {
                    info.retry_count += 1;
                    info.last_retry_time = Some(now);
                    self.run_start_task(w, &mut node).await?;
                    w.nodes.put(node);
                    return Ok(());
                }
                info.state = StartTaskState::Completed;
                info.end_time = Some(to_ts(r.ended_ms));
                info.exit_code = r.exit_code;
                info.result = Some(result);
                info.failure_info = failure;
                if let Some(s) = r.started_ms {
                    info.start_time = to_ts(s);
                }
                if result == ExecutionResult::Failure && wait {
                    set_node_state(&mut node, NodeState::StartTaskFailed, now);
                    self.core.upsert_node(&pool_id, node_id, false);
                } else if node.state == NodeState::WaitingForStartTask {
                    set_node_state(&mut node, NodeState::Idle, now);
                    self.core.upsert_node(&pool_id, node_id, node.scheduling_state == SchedulingState::Enabled);
                }
                w.nodes.put(node);
            }
            ExecKind::Task { job_id, task_id } => {
                let Some(mut task) = w.tasks.get(&mut w.tx, &job_id, &task_id).await? else { return Ok(()) };
                if task.dispatch != r.dispatch_id || matches!(task.status.state, TaskState::Active | TaskState::Completed) {
                    return Ok(());
                }
                let slots = task.spec.slots() as i32;
                let (result, failure) = outcome(&r);
                node.running_tasks_count = (node.running_tasks_count - 1).max(0);
                node.running_task_slots_count = (node.running_task_slots_count - slots).max(0);
                node.total_tasks_run += 1;
                if result == ExecutionResult::Success {
                    node.total_tasks_succeeded += 1;
                }
                let now = Clock::now();
                if node.state == NodeState::Running && node.running_tasks_count == 0 {
                    set_node_state(&mut node, NodeState::Idle, now);
                }
                self.core.finish_task(&job_id, &task_id);
                w.touched_jobs.insert(job_id.clone());
                let max_retries = task.spec.constraints.as_ref().and_then(|c| c.max_task_retry_count).unwrap_or(0);
                let retry = result == ExecutionResult::Failure
                    && retryable(&r)
                    && (max_retries < 0 || task.status.execution_info.retry_count < max_retries);
                let waited = r.started_ms.map(|s| (to_ts(s) - task.creation_time).num_milliseconds().max(0) as u64).unwrap_or(0);
                let ran = r.started_ms.map(|s| (r.ended_ms - s).max(0) as u64).unwrap_or(0);
                let usage = r.usage.unwrap_or_default();
                if let Some(mut s) = w.stats.get(&mut w.tx, "", JobLifetimeStats::ID).await? {
                    s.user_cpu_ms += usage.user_ms;
                    s.kernel_cpu_ms += usage.kernel_ms;
                    s.read_blocks += usage.read_blocks;
                    s.write_blocks += usage.write_blocks;
                    s.wall_clock_ms += ran;
                    if retry {
                        s.retries += 1;
                    } else {
                        s.wait_ms += waited;
                        if result == ExecutionResult::Success {
                            s.succeeded += 1;
                        } else {
                            s.failed += 1;
                        }
                    }
                    s.last_update_time = now;
                    w.stats.put(s);
                }
                let exec = &mut task.status.execution_info;
                if retry {
                    exec.retry_count += 1;
                    exec.last_retry_time = Some(now);
                    exec.end_time = None;
                    exec.exit_code = None;
                    exec.failure_info = None;
                    exec.result = None;
                    task.status.transition(TaskState::Active, now);
                    task.status.node_info = None;
                    self.core.enqueue_task(&job_id, &task_id, task.spec.slots(), true);
                } else {
                    // A launch failure (no process) still went through running, as the
                    // service reports it: start and end at the moment of the attempt.
                    let started = r.started_ms.unwrap_or(r.ended_ms);
                    exec.start_time.get_or_insert(to_ts(started));
                    exec.end_time = Some(to_ts(r.ended_ms).max(exec.start_time.unwrap_or_else(|| to_ts(r.ended_ms))));
                    exec.exit_code = r.exit_code;
                    exec.result = Some(result);
                    exec.failure_info = failure;
                    if task.status.state == TaskState::Preparing {
                        task.status.transition(TaskState::Running, to_ts(started));
                    }
                    task.status.transition(TaskState::Completed, now);
                    w.touched_jobs.insert(job_id.clone());
                }
                w.tasks.put(task);
                let leaving = node.state == NodeState::LeavingPool && node.running_tasks_count == 0;
                w.nodes.put(node);
                if leaving {
                    self.remove_node(w, &pool_id, node_id, DeallocationOption::Requeue).await?;
                    w.touched_pools.insert(pool_id);
                }
            }
            ExecKind::JobPreparation { .. } | ExecKind::JobRelease { .. } => {}
        }
        Ok(())
    }

    /// Starts (or, after a failure with retries left, restarts) a job's preparation task on a
    /// node.
    async fn start_preparation(&mut self, w: &mut Work, p: &Preparation, retry_count: i32) -> StoreResult<()> {
        let Some(job) = w.jobs.get(&mut w.tx, "", &p.job_id).await? else { return Ok(()) };
        let Some(prep) = job.spec.job_preparation_task.clone() else { return Ok(()) };
        let now = Clock::now();
        self.next_dispatch += 1;
        let dir = format!("workitems/{}/job-1/jobpreparation", job.spec.id);
        let node_url = format!("{}/pools/{}/nodes/{}", self.info.account_url, p.pool_id, p.node_id);
        let mut row = w.jobnodes.get(&mut w.tx, &p.job_id, &p.node_id).await?.unwrap_or(JobNode {
            job_id: p.job_id.clone(),
            pool_id: p.pool_id.clone(),
            node_id: p.node_id.clone(),
            job_preparation_task_execution_info: None,
            job_release_task_execution_info: None,
            prep_dispatch: 0,
            release_dispatch: 0,
        });
        let previous = row.job_preparation_task_execution_info.take();
        let mut info = running_side_task(&dir, &node_url, now);
        info.retry_count = retry_count;
        info.last_retry_time = if retry_count > 0 { Some(now) } else { previous.and_then(|p| p.last_retry_time) };
        row.job_preparation_task_execution_info = Some(info);
        row.prep_dispatch = self.next_dispatch;
        let spec = ExecSpec {
            kind: ExecKind::JobPreparation { job_id: job.spec.id.clone() },
            dispatch_id: row.prep_dispatch,
            command_line: prep.command_line.clone(),
            environment: merged_environment(job.spec.common_environment_settings.as_deref(), prep.environment_settings.as_deref()),
            job_id: Some(job.spec.id.clone()),
            max_wall_clock_secs: wall_clock_secs(prep.constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_deref())),
            admin: prep.user_identity.as_ref().is_some_and(|u| u.is_admin()),
            job_prep: true,
            resource_files: resource_files::specs(prep.resource_files.as_deref(), self.info.auto_storage.as_ref()),
            output_files: Vec::new(),
            app_packages: Vec::new(),
        };
        w.out.push((p.node_id.clone(), ServiceMessage::Run { spec }));
        w.jobnodes.put(row);
        Ok(())
    }

    /// A preparation task ended: retried while it has retries left; then the node is ready
    /// for the job's tasks, or (with `waitForSuccess`) closed to them.
    async fn preparation_finished(&mut self, w: &mut Work, pool_id: &str, node_id: &str, job_id: &str, r: ExecResult) -> StoreResult<()> {
        let Some(mut row) = w.jobnodes.get(&mut w.tx, job_id, node_id).await? else { return Ok(()) };
        if row.prep_dispatch != r.dispatch_id {
            return Ok(());
        }
        let Some(job) = w.jobs.get(&mut w.tx, "", job_id).await? else { return Ok(()) };
        let max_retries =
            job.spec.job_preparation_task.as_ref().and_then(|p| p.constraints.as_ref()).and_then(|c| c.max_task_retry_count).unwrap_or(0);
        let (result, failure) = outcome(&r);
        let retries = row.job_preparation_task_execution_info.as_ref().map(|i| i.retry_count).unwrap_or(0);
        if result == ExecutionResult::Failure && retryable(&r) && (max_retries < 0 || retries < max_retries) {
            let p = Preparation { job_id: job_id.to_string(), pool_id: pool_id.to_string(), node_id: node_id.to_string() };
            return self.start_preparation(w, &p, retries + 1).await;
        }
        if let Some(info) = row.job_preparation_task_execution_info.as_mut() {
            complete_side_task(info, &r, result, failure);
        }
        row.prep_dispatch = 0;
        w.jobnodes.put(row);
        self.core.set_prep(job_id, node_id, if result == ExecutionResult::Success { PrepState::Ready } else { PrepState::Failed });
        Ok(())
    }

    /// Starts the job's release task on a node that ran its preparation task.
    async fn start_release(&mut self, w: &mut Work, job: &Job, node_id: &str) -> StoreResult<bool> {
        let Some(release) = job.spec.job_release_task.clone() else { return Ok(false) };
        let Some(mut row) = w.jobnodes.get(&mut w.tx, &job.spec.id, node_id).await? else { return Ok(false) };
        if !self.hub.is_connected(node_id) {
            return Ok(false);
        }
        let now = Clock::now();
        self.next_dispatch += 1;
        let dir = format!("workitems/{}/job-1/jobrelease", job.spec.id);
        let node_url = format!("{}/pools/{}/nodes/{}", self.info.account_url, row.pool_id, node_id);
        row.job_release_task_execution_info = Some(running_side_task(&dir, &node_url, now));
        row.release_dispatch = self.next_dispatch;
        let spec = ExecSpec {
            kind: ExecKind::JobRelease { job_id: job.spec.id.clone() },
            dispatch_id: row.release_dispatch,
            command_line: release.command_line.clone(),
            environment: merged_environment(job.spec.common_environment_settings.as_deref(), release.environment_settings.as_deref()),
            job_id: Some(job.spec.id.clone()),
            max_wall_clock_secs: wall_clock_secs(release.max_wall_clock_time.as_deref()),
            admin: release.user_identity.as_ref().is_some_and(|u| u.is_admin()),
            job_prep: job.spec.job_preparation_task.is_some(),
            resource_files: resource_files::specs(release.resource_files.as_deref(), self.info.auto_storage.as_ref()),
            output_files: Vec::new(),
            app_packages: Vec::new(),
        };
        w.out.push((node_id.to_string(), ServiceMessage::Run { spec }));
        w.jobnodes.put(row);
        Ok(true)
    }

    /// A release task ended; a terminating job completes once its last one has.
    async fn release_finished(&mut self, w: &mut Work, node_id: &str, job_id: &str, r: ExecResult) -> StoreResult<()> {
        let Some(mut row) = w.jobnodes.get(&mut w.tx, job_id, node_id).await? else { return Ok(()) };
        if row.release_dispatch != r.dispatch_id {
            return Ok(());
        }
        let (result, failure) = outcome(&r);
        if let Some(info) = row.job_release_task_execution_info.as_mut() {
            complete_side_task(info, &r, result, failure);
        }
        row.release_dispatch = 0;
        w.jobnodes.put(row);
        self.complete_job_if_released(w, job_id).await
    }

    /// Completes a terminating job when none of its release tasks still runs.
    async fn complete_job_if_released(&mut self, w: &mut Work, job_id: &str) -> StoreResult<()> {
        let Some(mut job) = w.jobs.get(&mut w.tx, "", job_id).await? else { return Ok(()) };
        if job.status.state != JobState::Terminating {
            return Ok(());
        }
        // The batch's own changes first, then what the store holds.
        let mut running = false;
        for jn in w.tx.children::<JobNode>(job_id, None).await? {
            let jn = w.jobnodes.get(&mut w.tx, job_id, &jn.node_id).await?.unwrap_or(jn);
            running |= jn.job_release_task_execution_info.as_ref().is_some_and(|i| i.state == PrepTaskState::Running);
        }
        for ((parent, _), jn) in w.jobnodes.map.iter() {
            if parent == job_id {
                running |=
                    jn.as_ref().and_then(|j| j.job_release_task_execution_info.as_ref()).is_some_and(|i| i.state == PrepTaskState::Running);
            }
        }
        if !running {
            self.complete_job(w, &mut job).await?;
            w.jobs.put(job);
        }
        Ok(())
    }

    /// A node leaves: its preparation rows go, and release tasks it was running count as
    /// ended (so their jobs can complete).
    async fn abandon_side_tasks(&mut self, w: &mut Work, node_id: &str) -> StoreResult<()> {
        let mut jobs = Vec::new();
        for jn in w.tx.by_id::<JobNode>(node_id).await? {
            let jn = w.jobnodes.get(&mut w.tx, &jn.job_id, node_id).await?.unwrap_or(jn);
            if jn.job_release_task_execution_info.as_ref().is_some_and(|i| i.state == PrepTaskState::Running) {
                jobs.push(jn.job_id.clone());
            }
            w.jobnodes.remove(&jn.job_id, node_id);
        }
        for job_id in jobs {
            self.complete_job_if_released(w, &job_id).await?;
        }
        Ok(())
    }

    async fn run_start_task(&mut self, w: &mut Work, node: &mut Node) -> StoreResult<()> {
        let Some(st) = node.start_task.clone() else { return Ok(()) };
        let pool_refs = w.pools.get(&mut w.tx, "", &node.pool_id).await?.and_then(|p| p.spec.application_package_references);
        self.next_dispatch += 1;
        let spec = ExecSpec {
            kind: ExecKind::StartTask,
            dispatch_id: self.next_dispatch,
            command_line: st.command_line.clone(),
            environment: merged_environment(None, st.environment_settings.as_deref()),
            job_id: None,
            max_wall_clock_secs: None,
            admin: st.user_identity.as_ref().is_some_and(|u| u.is_admin()),
            job_prep: false,
            resource_files: resource_files::specs(st.resource_files.as_deref(), self.info.auto_storage.as_ref()),
            output_files: Vec::new(),
            app_packages: AppPackageRef::from_api(pool_refs.as_deref()),
        };
        w.out.push((node.id.clone(), ServiceMessage::Run { spec }));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn agent_hello(
        &mut self,
        w: &mut Work,
        _conn_id: u64,
        pool_id: &str,
        node_id: &str,
        token: &str,
        agent_version: &str,
        running: Vec<(ExecKind, u64)>,
        finished: Vec<ExecResult>,
        accept: oneshot::Sender<bool>,
    ) -> StoreResult<()> {
        let node = w.nodes.get(&mut w.tx, pool_id, node_id).await?;
        let Some(mut node) = node.filter(|n| {
            use subtle::ConstantTimeEq;
            bool::from(n.agent_token.as_bytes().ct_eq(token.as_bytes()))
        }) else {
            let _ = accept.send(false);
            return Ok(());
        };
        let _ = accept.send(true);
        let now = Clock::now();
        let rt = self.nodes.entry(node_id.to_string()).or_insert(NodeRt {
            pool_id: pool_id.to_string(),
            connected: true,
            since: Instant::now(),
            pid: node.agent_pid,
        });
        rt.connected = true;
        rt.since = Instant::now();
        w.out.push((
            node_id.to_string(),
            ServiceMessage::Welcome {
                account_name: self.info.account_name.clone(),
                account_url: self.info.account_url.clone(),
                pool_id: pool_id.to_string(),
                node_id: node_id.to_string(),
                is_dedicated: node.is_dedicated,
            },
        ));
        node.node_agent_info = Some(NodeAgentInfo { version: agent_version.to_string(), last_update_time: now });
        // Results the agent kept while the service was away.
        for r in finished {
            w.acks.entry(node_id.to_string()).or_default().push(r.dispatch_id);
            w.nodes.put(node.clone());
            self.finished(w, node_id, r).await?;
            node = match w.nodes.get(&mut w.tx, pool_id, node_id).await? {
                Some(n) => n,
                None => return Ok(()),
            };
        }
        // Tasks the store places here but the agent no longer runs were lost with it.
        let still: HashSet<(ExecKind, u64)> = running.iter().cloned().collect();
        for (job_id, task_id) in self.core.tasks_on_node(pool_id, node_id) {
            let t = w.tasks.get(&mut w.tx, &job_id, &task_id).await?;
            let alive = t
                .as_ref()
                .is_some_and(|t| still.contains(&(ExecKind::Task { job_id: job_id.clone(), task_id: task_id.clone() }, t.dispatch)));
            if !alive {
                w.nodes.put(node.clone());
                self.requeue_task(w, &job_id, &task_id).await?;
                node = match w.nodes.get(&mut w.tx, pool_id, node_id).await? {
                    Some(n) => n,
                    None => return Ok(()),
                };
            }
        }
        // Work the agent runs that the store does not expect there is stopped.
        for (kind, dispatch_id) in running {
            let expected = match &kind {
                ExecKind::StartTask => node.start_task_info.as_ref().is_some_and(|i| i.state == StartTaskState::Running),
                ExecKind::Task { job_id, task_id } => w
                    .tasks
                    .get(&mut w.tx, job_id, task_id)
                    .await?
                    .is_some_and(|t| t.dispatch == dispatch_id && matches!(t.status.state, TaskState::Preparing | TaskState::Running)),
                ExecKind::JobPreparation { job_id } => {
                    w.jobnodes.get(&mut w.tx, job_id, node_id).await?.is_some_and(|j| j.prep_dispatch == dispatch_id)
                }
                ExecKind::JobRelease { job_id } => {
                    w.jobnodes.get(&mut w.tx, job_id, node_id).await?.is_some_and(|j| j.release_dispatch == dispatch_id)
                }
            };
            if !expected {
                w.out.push((node_id.to_string(), ServiceMessage::Kill { kind, dispatch_id }));
            }
        }
        // File systems a pool asks to mount cannot be mounted here: like a node whose mount
        // failed, the node is unusable and says why.
        let spec = w.pools.get(&mut w.tx, "", pool_id).await?.map(|p| p.spec);
        let mounts = spec.as_ref().and_then(|s| s.mount_configuration.as_ref()).is_some_and(|m| !m.is_empty());
        // What else the pool asks for and a node here cannot provide is reported on the node,
        // which still runs tasks.
        let unmet = spec.as_ref().map(|s| s.unmet_configuration()).unwrap_or_default();
        node.errors = if unmet.is_empty() { Vec::new() } else { vec![crate::model::pool::unmet_configuration_error(&unmet)] };
        if mounts {
            node.last_boot_time.get_or_insert(now);
            node.errors.insert(0, serde_json::json!({
                "code": "MountConfigurationError",
                "message": "The pool's file systems could not be mounted on the compute node.",
                "errorDetails": [{"name": "Reason", "value": "openbatch does not mount file systems (mountConfiguration) on compute nodes yet."}]
            }));
            set_node_state(&mut node, NodeState::Unusable, now);
            self.core.upsert_node(pool_id, node_id, false);
            w.nodes.put(node);
            w.touched_pools.insert(pool_id.to_string());
            return Ok(());
        }
        match node.state {
            NodeState::Creating | NodeState::Starting | NodeState::Rebooting | NodeState::Unusable | NodeState::Unknown => {
                node.last_boot_time = Some(now);
                if node.start_task.is_some() {
                    let wait = node.start_task.as_ref().and_then(|s| s.wait_for_success).unwrap_or(true);
                    node.start_task_info = Some(StartTaskInfo {
                        state: StartTaskState::Running,
                        start_time: now,
                        end_time: None,
                        exit_code: None,
                        failure_info: None,
                        retry_count: 0,
                        last_retry_time: None,
                        result: None,
                    });
                    set_node_state(&mut node, if wait { NodeState::WaitingForStartTask } else { NodeState::Idle }, now);
                    self.run_start_task(w, &mut node).await?;
                } else {
                    set_node_state(&mut node, NodeState::Idle, now);
                }
            }
            _ => {}
        }
        let schedulable = matches!(node.state, NodeState::Idle | NodeState::Running) && node.scheduling_state == SchedulingState::Enabled;
        self.core.upsert_node(pool_id, node_id, schedulable);
        w.nodes.put(node);
        w.touched_pools.insert(pool_id.to_string());
        Ok(())
    }

    /// Puts a task placed on a node back in its job's queue (node lost or removed).
    async fn requeue_task(&mut self, w: &mut Work, job_id: &str, task_id: &str) -> StoreResult<()> {
        let placement = self.core.placement(job_id, task_id).map(|(p, n)| (p.to_string(), n.to_string()));
        self.core.finish_task(job_id, task_id);
        let Some(mut task) = w.tasks.get(&mut w.tx, job_id, task_id).await? else { return Ok(()) };
        if !matches!(task.status.state, TaskState::Preparing | TaskState::Running) {
            return Ok(());
        }
        if let Some((pool_id, node_id)) = placement {
            if let Some(mut node) = w.nodes.get(&mut w.tx, &pool_id, &node_id).await? {
                node.running_tasks_count = (node.running_tasks_count - 1).max(0);
                node.running_task_slots_count = (node.running_task_slots_count - task.spec.slots() as i32).max(0);
                w.nodes.put(node);
            }
        }
        let now = Clock::now();
        task.status.execution_info.requeue_count += 1;
        task.status.execution_info.last_requeue_time = Some(now);
        task.status.execution_info.start_time = None;
        task.status.node_info = None;
        task.dispatch = 0;
        task.status.transition(TaskState::Active, now);
        let slots = task.spec.slots();
        w.tasks.put(task);
        // Disabled and terminating jobs keep their queue; the core does not schedule from it.
        let queued_job =
            w.jobs.get(&mut w.tx, "", job_id).await?.is_some_and(|j| !matches!(j.status.state, JobState::Completed | JobState::Deleting));
        if queued_job {
            self.core.enqueue_task(job_id, task_id, slots, true);
        }
        Ok(())
    }

    /// Ends a task that is placed or queued, as Terminate Task does.
    /// `counts_as_failed`: the task ended unfinished (terminated), so the lifetime statistics
    /// count it as failed; a task that is being deleted is not counted.
    async fn end_task(&mut self, w: &mut Work, mut task: Task, code: &str, message: &str, counts_as_failed: bool) -> StoreResult<Task> {
        let now = Clock::now();
        let job_id = task.job_id.clone();
        let task_id = task.spec.id.clone();
        if let Some((pool_id, node_id)) = self.core.placement(&job_id, &task_id).map(|(p, n)| (p.to_string(), n.to_string())) {
            w.out.push((
                node_id.clone(),
                ServiceMessage::Kill {
                    kind: ExecKind::Task { job_id: job_id.clone(), task_id: task_id.clone() },
                    dispatch_id: task.dispatch,
                },
            ));
            if let Some(mut node) = w.nodes.get(&mut w.tx, &pool_id, &node_id).await? {
                node.running_tasks_count = (node.running_tasks_count - 1).max(0);
                node.running_task_slots_count = (node.running_task_slots_count - task.spec.slots() as i32).max(0);
                node.total_tasks_run += 1;
                if node.state == NodeState::Running && node.running_tasks_count == 0 {
                    set_node_state(&mut node, NodeState::Idle, now);
                }
                w.nodes.put(node);
            }
            self.core.finish_task(&job_id, &task_id);
        } else {
            self.core.dequeue_task(&job_id, &task_id);
        }
        let exec = &mut task.status.execution_info;
        if exec.start_time.is_some() {
            exec.end_time = Some(now);
        }
        exec.result = Some(ExecutionResult::Failure);
        exec.failure_info = Some(FailureInfo {
            category: ErrorCategory::UserError,
            code: Some(code.to_string()),
            message: Some(message.to_string()),
            details: None,
        });
        task.dispatch = 0;
        task.status.transition(TaskState::Completed, now);
        task.last_modified = now;
        w.touched_jobs.insert(job_id);
        if counts_as_failed {
            let started = task.status.execution_info.start_time;
            if let Some(mut s) = w.stats.get(&mut w.tx, "", JobLifetimeStats::ID).await? {
                s.failed += 1;
                if let Some(st) = started {
                    s.wall_clock_ms += (now - st).num_milliseconds().max(0) as u64;
                    s.wait_ms += (st - task.creation_time).num_milliseconds().max(0) as u64;
                }
                s.last_update_time = now;
                w.stats.put(s);
            }
        }
        Ok(task)
    }

    async fn terminate_task(&mut self, w: &mut Work, job_id: &str, task_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(task) = w.tasks.get(&mut w.tx, job_id, task_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Task)));
        };
        if task.status.state == TaskState::Completed {
            return Ok(Err(BatchError::conflict("TaskCompleted", "The specified task is already in a completed state.")));
        }
        let task = self.end_task(w, task, "TaskEnded", "Task Was Ended by User Request", true).await?;
        w.tasks.put(task);
        Ok(Ok(()))
    }

    async fn delete_task(&mut self, w: &mut Work, job_id: &str, task_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(task) = w.tasks.get(&mut w.tx, job_id, task_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Task)));
        };
        if task.status.state != TaskState::Completed {
            self.end_task(w, task, "TaskEnded", "The task was deleted", false).await?;
        }
        w.tasks.remove(job_id, task_id);
        Ok(Ok(()))
    }

    async fn terminate_job(&mut self, w: &mut Work, job_id: &str, reason: &str) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = w.jobs.get(&mut w.tx, "", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        match job.status.state {
            JobState::Completed => {
                return Ok(Err(BatchError::conflict("JobCompleted", "The specified job is already in a completed state.")))
            }
            JobState::Deleting => return Ok(Err(BatchError::being_deleted(ResourceKind::Job))),
            JobState::Terminating => return Ok(Err(BatchError::conflict("JobBeingTerminated", "The specified job is being terminated."))),
            _ => {}
        }
        self.finish_job(w, &mut job, reason).await?;
        w.jobs.put(job);
        Ok(Ok(()))
    }

    /// Terminating → completed: running tasks are ended, active ones stay active but are no
    /// longer scheduled.
    async fn finish_job(&mut self, w: &mut Work, job: &mut Job, reason: &str) -> StoreResult<()> {
        let now = Clock::now();
        job.status.transition(JobState::Terminating, now);
        for state in [TaskState::Preparing, TaskState::Running] {
            for t in w.tx.children::<Task>(&job.spec.id, Some(state.as_str())).await? {
                let t = match w.tasks.get(&mut w.tx, &t.job_id, &t.spec.id).await? {
                    Some(t) => t,
                    None => continue,
                };
                if matches!(t.status.state, TaskState::Preparing | TaskState::Running) {
                    let t = self.end_task(w, t, "TaskEnded", "Task Was Ended by User Request", true).await?;
                    w.tasks.put(t);
                }
            }
        }
        job.status.execution_info.terminate_reason = Some(reason.to_string());
        job.last_modified = now;
        self.upsert_job_core(job);
        // Release tasks run on every node that prepared for the job; it completes after them.
        let mut releasing = false;
        if job.spec.job_release_task.is_some() {
            for node_id in self.core.prepared_nodes(&job.spec.id) {
                releasing |= self.start_release(w, job, &node_id).await?;
            }
        }
        if releasing {
            return Ok(());
        }
        self.complete_job(w, job).await
    }

    /// Terminating → completed, and the job's auto pool goes.
    async fn complete_job(&mut self, w: &mut Work, job: &mut Job) -> StoreResult<()> {
        let later = Clock::now();
        job.status.transition(JobState::Completed, later);
        job.status.execution_info.end_time = Some(later);
        job.last_modified = later;
        self.upsert_job_core(job);
        self.release_auto_pool(w, job).await
    }

    /// Deletes the auto pool of a job that completed or went away, unless it is kept alive.
    async fn release_auto_pool(&mut self, w: &mut Work, job: &Job) -> StoreResult<()> {
        let Some(pool_id) = job.status.execution_info.pool_id.clone().filter(|_| job.spec.pool_info.auto_pool_goes_with_job()) else {
            return Ok(());
        };
        if let Some(mut pool) = w.pools.get(&mut w.tx, "", &pool_id).await? {
            if pool.status.state != PoolState::Deleting {
                let now = Clock::now();
                pool.status.state = PoolState::Deleting;
                pool.status.state_transition_time = now;
                pool.last_modified = now;
                w.pools.put(pool);
                let _ = self.me.send(Event::PoolChanged(pool_id));
            }
        }
        Ok(())
    }

    async fn delete_job(&mut self, w: &mut Work, job_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(job) = w.jobs.get(&mut w.tx, "", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        self.release_auto_pool(w, &job).await?;
        for state in [TaskState::Preparing, TaskState::Running] {
            for t in w.tx.children::<Task>(job_id, Some(state.as_str())).await? {
                if let Some(t) = w.tasks.get(&mut w.tx, &t.job_id, &t.spec.id).await? {
                    if matches!(t.status.state, TaskState::Preparing | TaskState::Running) {
                        let t = self.end_task(w, t, "TaskEnded", "The job was deleted", false).await?;
                        w.tasks.put(t);
                    }
                }
            }
        }
        // Task rows go in one statement; the cache must not write any back.
        w.tasks.map.retain(|k, _| k.0 != job_id);
        w.tasks.dirty.retain(|k| k.0 != job_id);
        w.tx.delete_children::<Task>(job_id).await?;
        w.jobnodes.map.retain(|k, _| k.0 != job_id);
        w.jobnodes.dirty.retain(|k| k.0 != job_id);
        w.tx.delete_children::<JobNode>(job_id).await?;
        w.jobs.remove("", job_id);
        self.core.remove_job(job_id);
        w.touched_jobs.remove(job_id);
        Ok(Ok(()))
    }

    /// Disable Job: stop scheduling; running tasks are requeued, ended or left to finish.
    async fn disable_job(&mut self, w: &mut Work, job_id: &str, option: DisableJobOption) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = w.jobs.get(&mut w.tx, "", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        if job.status.state != JobState::Active {
            return Ok(Err(BatchError::conflict("JobNotActive", "The specified job is not in active state.")));
        }
        let now = Clock::now();
        job.status.transition(JobState::Disabling, now);
        job.last_modified = now;
        self.upsert_job_core(&job);
        for state in [TaskState::Preparing, TaskState::Running] {
            for t in w.tx.children::<Task>(job_id, Some(state.as_str())).await? {
                match option {
                    DisableJobOption::Requeue => {
                        if let Some(node_id) = self.core.placement(job_id, &t.spec.id).map(|(_, n)| n.to_string()) {
                            w.out.push((
                                node_id,
                                ServiceMessage::Kill {
                                    kind: ExecKind::Task { job_id: job_id.to_string(), task_id: t.spec.id.clone() },
                                    dispatch_id: t.dispatch,
                                },
                            ));
                        }
                        self.requeue_task(w, job_id, &t.spec.id).await?;
                    }
                    DisableJobOption::Terminate => {
                        if let Some(t) = w.tasks.get(&mut w.tx, job_id, &t.spec.id).await? {
                            let t = self.end_task(w, t, "TaskEnded", "Task Was Ended by User Request", true).await?;
                            w.tasks.put(t);
                        }
                    }
                    DisableJobOption::Wait => {}
                }
            }
        }
        w.jobs.put(job);
        w.touched_jobs.insert(job_id.to_string());
        Ok(Ok(()))
    }

    /// Enable Job: a disabled or disabling job becomes active again.
    async fn enable_job(&mut self, w: &mut Work, job_id: &str) -> StoreResult<ApiResult<()>> {
        let Some(mut job) = w.jobs.get(&mut w.tx, "", job_id).await? else {
            return Ok(Err(BatchError::not_found(ResourceKind::Job)));
        };
        if !matches!(job.status.state, JobState::Disabled | JobState::Disabling) {
            return Ok(Err(BatchError::conflict("JobNotDisabled", "The specified job is not in disabled state.")));
        }
        let now = Clock::now();
        job.status.transition(JobState::Active, now);
        job.last_modified = now;
        self.upsert_job_core(&job);
        w.jobs.put(job);
        Ok(Ok(()))
    }

    /// Settles a job after its tasks changed: `disabling` becomes `disabled` once nothing
    /// runs; `onAllTasksComplete: terminatejob` completes it once no task is unfinished.
    async fn check_all_tasks_complete(&mut self, w: &mut Work, job_id: &str) -> StoreResult<()> {
        let Some(mut job) = w.jobs.get(&mut w.tx, "", job_id).await? else { return Ok(()) };
        if job.status.state == JobState::Disabling {
            let running = w.tx.count_in_states::<Task>(job_id, &[TaskState::Preparing.as_str(), TaskState::Running.as_str()]).await?;
            if running == 0 {
                job.status.transition(JobState::Disabled, Clock::now());
                w.jobs.put(job);
            }
            return Ok(());
        }
        if job.status.state != JobState::Active || job.spec.on_all_tasks_complete != Some(OnAllTasksComplete::TerminateJob) {
            return Ok(());
        }
        // All tasks complete, and there is at least one: a job without tasks stays active.
        if w.tx.count_not_in_state::<Task>(job_id, TaskState::Completed.as_str()).await? > 0
            || w.tx.count_in_states::<Task>(job_id, &[TaskState::Completed.as_str()]).await? == 0
        {
            return Ok(());
        }
        self.finish_job(w, &mut job, "AllTasksComplete").await?;
        w.jobs.put(job);
        Ok(())
    }

    /// Brings a pool's nodes to its targets, or removes the pool when it is being deleted.
    async fn reconcile_pool(&mut self, w: &mut Work, pool_id: &str, spawns: &mut Vec<(String, String, String)>) -> StoreResult<()> {
        let Some(mut pool) = w.pools.get(&mut w.tx, "", pool_id).await? else { return Ok(()) };
        let nodes: Vec<Node> = {
            let mut v = Vec::new();
            for n in w.tx.children::<Node>(pool_id, None).await? {
                if let Some(n) = w.nodes.get(&mut w.tx, pool_id, &n.id).await? {
                    v.push(n);
                }
            }
            v
        };
        if pool.status.state == PoolState::Deleting {
            for n in &nodes {
                self.remove_node(w, pool_id, &n.id, DeallocationOption::Requeue).await?;
            }
            w.pools.remove("", pool_id);
            self.core.remove_pool(pool_id);
            let _ = std::fs::remove_dir_all(self.provider.pool_dir(pool_id));
            return Ok(());
        }
        self.core.upsert_pool(pool_id, pool.spec.slots_per_node(), fill_of(&pool));
        if pool.spec.os_refusal().is_some() {
            // No nodes can exist: the resize error was recorded when the target was set.
            if pool.status.allocation_state != AllocationState::Steady {
                pool.status.allocation_state = AllocationState::Steady;
                pool.status.allocation_state_transition_time = Clock::now();
            }
            w.pools.put(pool);
            return Ok(());
        }
        // Dedicated and low-priority (Spot) nodes are reconciled separately: local nodes are
        // alike, but each counts toward its own target as the API reports them.
        let staying: Vec<&Node> = nodes.iter().filter(|n| n.state != NodeState::LeavingPool).collect();
        let option = pool.status.pending_deallocation.unwrap_or(DeallocationOption::Requeue);
        for (dedicated, target) in [
            (true, pool.spec.target_dedicated_nodes.unwrap_or(0).max(0) as usize),
            (false, pool.spec.target_low_priority_nodes.unwrap_or(0).max(0) as usize),
        ] {
            let have: Vec<&Node> = staying.iter().copied().filter(|n| n.is_dedicated == dedicated).collect();
            if have.len() < target {
                let now = Clock::now();
                for _ in have.len()..target {
                    pool.status.next_node_index += 1;
                    // The pool's creation time keeps node ids unique when a pool id is reused.
                    let pool_key = format!("{pool_id}/{}", pool.creation_time.timestamp_micros());
                    let node_id = format!("tvm-{:08x}-{}", fxhash(&pool_key), pool.status.next_node_index);
                    let token = uuid::Uuid::new_v4().simple().to_string();
                    let mut start_task = pool.spec.start_task.clone();
                    if let Some(st) = start_task.as_mut() {
                        st.normalize();
                    }
                    let node = Node {
                        id: node_id.clone(),
                        pool_id: pool_id.to_string(),
                        state: NodeState::Creating,
                        scheduling_state: SchedulingState::Enabled,
                        state_transition_time: now,
                        last_boot_time: None,
                        allocation_time: now,
                        ip_address: "127.0.0.1".into(),
                        vm_size: pool.spec.vm_size.clone(),
                        total_tasks_run: 0,
                        total_tasks_succeeded: 0,
                        running_tasks_count: 0,
                        running_task_slots_count: 0,
                        start_task,
                        start_task_info: None,
                        errors: Vec::new(),
                        is_dedicated: dedicated,
                        node_agent_info: None,
                        image_reference: pool.spec.virtual_machine_configuration.as_ref().map(|v| v.image_reference.clone()),
                        agent_token: token.clone(),
                        root_dir: self.provider.node_root(pool_id, &node_id).display().to_string(),
                        agent_pid: None,
                    };
                    self.nodes.insert(
                        node_id.clone(),
                        NodeRt { pool_id: pool_id.to_string(), connected: false, since: Instant::now(), pid: None },
                    );
                    self.core.upsert_node(pool_id, &node_id, false);
                    w.nodes.put(node);
                    spawns.push((pool_id.to_string(), node_id, token));
                }
            } else if have.len() > target {
                // Remove the least busy nodes first.
                let mut order = have.clone();
                order.sort_by_key(|n| (n.running_tasks_count, std::cmp::Reverse(n.id.clone())));
                for n in order.into_iter().take(have.len() - target) {
                    self.remove_node(w, pool_id, &n.id, option).await?;
                }
            }
        }
        pool.status.pending_deallocation = None;
        w.pools.put(pool);
        w.touched_pools.insert(pool_id.to_string());
        Ok(())
    }

    /// Takes a node out of its pool. `taskcompletion`/`retaineddata` let running tasks
    /// finish first (the node is `leavingPool` meanwhile); `requeue` puts them back in their
    /// queues; `terminate` ends them.
    async fn remove_node(&mut self, w: &mut Work, pool_id: &str, node_id: &str, option: DeallocationOption) -> StoreResult<()> {
        let tasks = self.core.tasks_on_node(pool_id, node_id);
        if !tasks.is_empty() && matches!(option, DeallocationOption::TaskCompletion | DeallocationOption::RetainedData) {
            if let Some(mut node) = w.nodes.get(&mut w.tx, pool_id, node_id).await? {
                set_node_state(&mut node, NodeState::LeavingPool, Clock::now());
                w.nodes.put(node);
            }
            self.core.upsert_node(pool_id, node_id, false);
            return Ok(());
        }
        for (job_id, task_id) in tasks {
            match option {
                DeallocationOption::Terminate => {
                    if let Some(t) = w.tasks.get(&mut w.tx, &job_id, &task_id).await? {
                        let t = self
                            .end_task(w, t, "TaskEnded", "The task was terminated because its node was removed from the pool", true)
                            .await?;
                        w.tasks.put(t);
                    }
                }
                _ => self.requeue_task(w, &job_id, &task_id).await?,
            }
        }
        self.abandon_side_tasks(w, node_id).await?;
        self.core.remove_node(pool_id, node_id);
        self.hub.send(node_id, ServiceMessage::Shutdown { remove_files: true });
        if let Some(rt) = self.nodes.remove(node_id) {
            if !self.hub.is_connected(node_id) {
                if let Some(pid) = rt.pid {
                    self.provider.kill(pid);
                }
            }
        }
        w.nodes.remove(pool_id, node_id);
        Ok(())
    }

    /// A node whose agent stayed away: its tasks are requeued and its agent restarted.
    async fn replace_node(&mut self, w: &mut Work, node_id: &str, spawns: &mut Vec<(String, String, String)>) -> StoreResult<()> {
        let Some(rt) = self.nodes.get_mut(node_id) else { return Ok(()) };
        let pool_id = rt.pool_id.clone();
        rt.since = Instant::now();
        if let Some(pid) = rt.pid.take() {
            self.provider.kill(pid);
        }
        let Some(mut node) = w.nodes.get(&mut w.tx, &pool_id, node_id).await? else {
            self.nodes.remove(node_id);
            return Ok(());
        };
        tracing::warn!(%pool_id, %node_id, "node agent lost; requeueing its tasks and restarting the node");
        for (job_id, task_id) in self.core.tasks_on_node(&pool_id, node_id) {
            w.nodes.put(node.clone());
            self.requeue_task(w, &job_id, &task_id).await?;
            node = match w.nodes.get(&mut w.tx, &pool_id, node_id).await? {
                Some(n) => n,
                None => return Ok(()),
            };
        }
        // Preparation runs again on the restarted node; release tasks it ran are over.
        self.abandon_side_tasks(w, node_id).await?;
        for job_id in self.core.prepared_jobs(node_id) {
            self.core.forget_prep(&job_id, node_id);
        }
        node.running_tasks_count = 0;
        node.running_task_slots_count = 0;
        set_node_state(&mut node, NodeState::Unusable, Clock::now());
        node.start_task_info = None;
        let token = node.agent_token.clone();
        w.nodes.put(node);
        w.touched_pools.insert(pool_id.clone());
        spawns.push((pool_id, node_id.to_string(), token));
        Ok(())
    }

    /// Recomputes a pool's current node count and allocation state.
    async fn refresh_pool(&mut self, w: &mut Work, pool_id: &str) -> StoreResult<()> {
        let Some(mut pool) = w.pools.get(&mut w.tx, "", pool_id).await? else { return Ok(()) };
        // Counts come from the written state: the batch's changes were flushed before.
        let (mut dedicated, mut low_priority) = (0, 0);
        let mut settling = false;
        for n in w.tx.children::<Node>(pool_id, None).await? {
            if n.state == NodeState::LeavingPool {
                settling = true;
                continue;
            }
            settling |= n.state == NodeState::Creating;
            if n.is_dedicated {
                dedicated += 1;
            } else {
                low_priority += 1;
            }
        }
        let targets = (pool.spec.target_dedicated_nodes.unwrap_or(0), pool.spec.target_low_priority_nodes.unwrap_or(0));
        let reached = pool.spec.os_refusal().is_some() || (dedicated, low_priority) == targets;
        let state = if settling || !reached { AllocationState::Resizing } else { AllocationState::Steady };
        let mut changed = false;
        if (pool.status.current_dedicated_nodes, pool.status.current_low_priority_nodes) != (dedicated, low_priority) {
            pool.status.current_dedicated_nodes = dedicated;
            pool.status.current_low_priority_nodes = low_priority;
            changed = true;
        }
        if pool.status.allocation_state != state && pool.status.state == PoolState::Active {
            pool.status.allocation_state = state;
            pool.status.allocation_state_transition_time = Clock::now();
            changed = true;
        }
        if changed {
            w.pools.put(pool);
        }
        Ok(())
    }
}

/// The environment of an execution: the job's common settings, then its own (which win, as
/// the agent applies them in order).
fn merged_environment(common: Option<&[EnvironmentSetting]>, own: Option<&[EnvironmentSetting]>) -> Vec<(String, String)> {
    common.into_iter().flatten().chain(own.into_iter().flatten()).map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())).collect()
}

/// A `maxWallClockTime` (ISO 8601) in seconds; `None` when unlimited or absent.
fn wall_clock_secs(limit: Option<&str>) -> Option<f64> {
    limit.and_then(parse_duration).and_then(|d| d.0).map(|d| d.as_secs_f64())
}

/// A preparation or release task that starts now in `dir` on the node at `node_url`.
fn running_side_task(dir: &str, node_url: &str, now: Timestamp) -> PrepTaskInfo {
    PrepTaskInfo {
        start_time: now,
        end_time: None,
        state: PrepTaskState::Running,
        task_root_directory: dir.to_string(),
        task_root_directory_url: format!("{node_url}/files/{dir}"),
        exit_code: None,
        failure_info: None,
        retry_count: 0,
        last_retry_time: None,
        result: None,
    }
}

/// Records how a preparation or release task ended.
fn complete_side_task(info: &mut PrepTaskInfo, r: &ExecResult, result: ExecutionResult, failure: Option<FailureInfo>) {
    info.state = PrepTaskState::Completed;
    if let Some(s) = r.started_ms {
        info.start_time = to_ts(s);
    }
    info.end_time = Some(to_ts(r.ended_ms).max(info.start_time));
    info.exit_code = r.exit_code;
    info.result = Some(result);
    info.failure_info = failure;
}

fn set_node_state(node: &mut Node, state: NodeState, now: Timestamp) {
    if node.state != state {
        node.state = state;
        node.state_transition_time = now;
    }
}

fn fill_of(p: &Pool) -> NodeFillType {
    p.spec.task_scheduling_policy.as_ref().map(|t| t.node_fill_type).unwrap_or(NodeFillType::Spread)
}

/// Small stable hash for node ids (FNV-1a).
fn fxhash(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.to_ascii_lowercase().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// The Batch result and failure information of an execution.
fn outcome(r: &ExecResult) -> (ExecutionResult, Option<FailureInfo>) {
    if let Some(f) = &r.failure {
        return (ExecutionResult::Failure, Some(failure_info(f)));
    }
    match r.exit_code {
        Some(0) => (ExecutionResult::Success, None),
        _ => (
            ExecutionResult::Failure,
            Some(FailureInfo {
                category: ErrorCategory::UserError,
                code: Some("FailureExitCode".into()),
                message: Some("The task exited with an exit code representing a failure".into()),
                details: Some(vec![
                    NameValuePair { name: "Message".into(), value: "The task process exited with an unexpected exit code".into() },
                    NameValuePair { name: "AdditionalErrorCode".into(), value: "FailureExitCode".into() },
                ]),
            }),
        ),
    }
}

/// Failures that a retry may cure: a nonzero exit code or the wall-clock limit. Launch
/// failures (program not found) and user terminations are final.
fn retryable(r: &ExecResult) -> bool {
    match &r.failure {
        None => r.exit_code != Some(0),
        Some(f) => f.code == "TaskEnded" && f.message.contains("wall clock"),
    }
}
