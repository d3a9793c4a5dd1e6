//! The driver: the one task that owns the [`Reactor`], feeds it events in batches, persists
//! what it changed in one store transaction per batch (so fsyncs are shared), and carries out
//! its effects once the batch committed — answers to API requests, messages to node agents,
//! node agent processes started and stopped. API handlers write what they own (adds,
//! patches) themselves and then notify the driver; operations that touch running work
//! (terminating or deleting tasks and jobs, pool resize and delete) are decided by the
//! reactor.
//!
//! Consistency: nothing the reactor decided is sent or answered before its batch committed.
//! A batch that fails (the store refused it) leaves memory and store apart, so the reactor is
//! rebuilt from the store and the batch retried; API requests get a 500 after the last try,
//! agent results stay queued (they are acknowledged only once stored).
//!
//! Recovery: at start the reactor is rebuilt from the store. Nodes wait a grace period for
//! their agents to reconnect; an agent that does reports what it still runs and the results
//! not yet stored, so tasks finish normally. A node whose agent does not come back is
//! replaced (its agent restarted) and its tasks are requeued, as Azure Batch does after a
//! node failure.

use super::clock::{TimeSource, WallClock};
use super::hub::Hub;
use super::reactor::{Answer, Effect, Event, Reactor, Records, ServiceInfo, Stored, Ticket};
use crate::agent::protocol::{AgentMessage, ServiceMessage};
use crate::api::error::{ApiResult, BatchError};
use crate::model::autoscale::AutoScaleRun;
use crate::model::job::{Job, JobLifetimeStats, JobNode};
use crate::model::job_schedule::JobSchedule;
use crate::model::node::Node;
use crate::model::pool::Pool;
use crate::model::task::Task;
use crate::nodes::local::LocalProvider;
use crate::store::{Store, StoreResult};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Largest number of events applied in one transaction.
const MAX_BATCH: usize = 4096;

/// How often a failed batch is tried before its API requests get an error.
const ATTEMPTS: u32 = 3;

/// Something sent to the driver, with where its answer goes.
enum Incoming {
    Event(Event),
    Call(Event, oneshot::Sender<ApiResult<()>>),
    Hello(Event, oneshot::Sender<bool>),
    /// Evaluate AutoScale, answered with the run.
    Evaluate(Event, oneshot::Sender<ApiResult<AutoScaleRun>>),
    /// An agent connection ended; the node is lost only if it was the current one.
    Gone {
        node_id: String,
        conn_id: u64,
    },
}

enum Responder {
    Api(oneshot::Sender<ApiResult<()>>),
    Hello(oneshot::Sender<bool>),
    Run(oneshot::Sender<ApiResult<AutoScaleRun>>),
}

impl Responder {
    /// Answers a request whose batch ended without the reactor answering it.
    fn unanswered(self, e: Option<&BatchError>) {
        match self {
            Responder::Api(tx) => {
                let _ = tx.send(e.map_or(Ok(()), |e| Err(e.clone())));
            }
            Responder::Hello(tx) => {
                let _ = tx.send(false);
            }
            Responder::Run(tx) => {
                let _ = tx.send(Err(e.cloned().unwrap_or_else(|| BatchError::internal("the evaluation was not answered"))));
            }
        }
    }
}

/// The handle API handlers use to reach the driver.
#[derive(Clone)]
pub struct DriverHandle {
    tx: mpsc::UnboundedSender<Incoming>,
    /// The connected agents.
    pub hub: Hub,
}

impl DriverHandle {
    /// Sends an event; the driver acts on it in its next batch.
    pub fn notify(&self, ev: Event) {
        let _ = self.tx.send(Incoming::Event(ev));
    }

    /// Sends an event that answers (Terminate/Delete Task, Job Terminate/Delete/Disable/
    /// Enable) and waits until its batch committed.
    pub async fn call(&self, ev: Event) -> ApiResult<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Incoming::Call(ev, tx));
        rx.await.unwrap_or_else(|_| Err(BatchError::internal("the scheduler stopped")))
    }

    /// Presents an agent's hello; true when the node accepts it.
    pub async fn hello(&self, ev: Event) -> bool {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Incoming::Hello(ev, tx));
        rx.await.unwrap_or(false)
    }

    /// Evaluate AutoScale: waits for the reactor's run of the formula.
    pub async fn evaluate(&self, ev: Event) -> ApiResult<AutoScaleRun> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Incoming::Evaluate(ev, tx));
        rx.await.unwrap_or_else(|_| Err(BatchError::internal("the scheduler stopped")))
    }

    /// An agent connection ended.
    pub fn agent_gone(&self, node_id: String, conn_id: u64) {
        let _ = self.tx.send(Incoming::Gone { node_id, conn_id });
    }
}

/// The driver task's state.
pub struct Driver {
    store: Store,
    provider: LocalProvider,
    reactor: Reactor,
    hub: Hub,
    rx: mpsc::UnboundedReceiver<Incoming>,
    /// The driver's own sender, for events it raises (agents started).
    me: mpsc::UnboundedSender<Incoming>,
    /// Agent events of a batch that could not be stored, tried again with the next one.
    retry: Vec<Event>,
}

impl Driver {
    /// Rebuilds the reactor from the store and starts the driver task.
    pub async fn start(store: Store, provider: LocalProvider, info: ServiceInfo) -> anyhow::Result<DriverHandle> {
        let clock: Arc<dyn TimeSource> = Arc::new(WallClock);
        let (tx, rx) = mpsc::unbounded_channel();
        let hub = Hub::default();
        let first_dispatch = Utc::now().timestamp_micros().max(1) as u64;
        let mut d = Driver {
            store: store.clone(),
            provider,
            reactor: Reactor::new(info, clock, first_dispatch),
            hub: hub.clone(),
            rx,
            me: tx.clone(),
            retry: Vec::new(),
        };
        if store.get::<JobLifetimeStats>("", JobLifetimeStats::ID).await?.is_none() {
            let mut t = store.begin().await?;
            t.put(&JobLifetimeStats::new(d.reactor.now())).await?;
            t.commit().await?;
        }
        d.rebuild().await?;
        tracing::info!(queued = d.reactor.core.queued(), nodes = d.reactor.nodes.len(), "scheduler state recovered");
        let ticker = tx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(500));
            loop {
                iv.tick().await;
                if ticker.send(Incoming::Event(Event::Tick)).is_err() {
                    break;
                }
            }
        });
        // Pools may have unfinished transitions (deleting, resizing).
        for p in store.all::<Pool>().await? {
            let _ = tx.send(Incoming::Event(Event::PoolChanged(p.spec.id.clone())));
        }
        tokio::spawn(d.run());
        Ok(DriverHandle { tx, hub })
    }

    /// Loads every record and rebuilds the reactor's memory from them.
    async fn rebuild(&mut self) -> StoreResult<()> {
        let stored = Stored {
            pools: self.store.all::<Pool>().await?,
            nodes: self.store.all::<Node>().await?,
            jobs: self.store.all::<Job>().await?,
            job_nodes: self.store.all::<JobNode>().await?,
            tasks: self.store.all::<Task>().await?,
            schedules: self.store.all::<JobSchedule>().await?,
        };
        self.reactor.restore(stored);
        Ok(())
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
            self.apply(batch).await;
            tracing::debug!(events = n, micros = t0.elapsed().as_micros() as u64, "batch applied");
        }
    }

    async fn apply(&mut self, batch: Vec<Incoming>) {
        let mut events: Vec<(Event, Option<Ticket>)> = std::mem::take(&mut self.retry).into_iter().map(|e| (e, None)).collect();
        let mut responders: HashMap<Ticket, Responder> = HashMap::new();
        for inc in batch {
            let ticket = responders.len() + 1;
            match inc {
                Incoming::Event(e) => events.push((e, None)),
                Incoming::Call(e, tx) => {
                    responders.insert(ticket, Responder::Api(tx));
                    events.push((e, Some(ticket)));
                }
                Incoming::Hello(e, tx) => {
                    responders.insert(ticket, Responder::Hello(tx));
                    events.push((e, Some(ticket)));
                }
                Incoming::Evaluate(e, tx) => {
                    responders.insert(ticket, Responder::Run(tx));
                    events.push((e, Some(ticket)));
                }
                Incoming::Gone { node_id, conn_id } => {
                    if self.hub.disconnect(&node_id, conn_id) {
                        events.push((Event::AgentLost { node_id }, None));
                    }
                }
            }
        }
        let mut last_error = None;
        for attempt in 0..ATTEMPTS {
            match self.try_apply(events.clone()).await {
                Ok(effects) => {
                    self.carry_out(effects, &mut responders);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, "scheduler batch failed; rebuilding from the store");
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    if let Err(e) = self.rebuild().await {
                        tracing::error!(error = %e, "could not rebuild the scheduler from the store");
                    }
                }
            }
        }
        let err = BatchError::internal(last_error.map(|e| e.to_string()).unwrap_or_default());
        for (_, r) in responders {
            r.unanswered(Some(&err));
        }
        // Agent reports are kept: they are acknowledged only once stored.
        self.retry = events
            .into_iter()
            .filter(|(e, _)| matches!(e, Event::Agent { msg: AgentMessage::Finished { .. }, .. }))
            .map(|(e, _)| e)
            .collect();
    }

    async fn try_apply(&mut self, events: Vec<(Event, Option<Ticket>)>) -> StoreResult<Vec<Effect>> {
        let tx = self.store.begin().await?;
        let mut records = Records::new(tx);
        let effects = self.reactor.apply(&mut records, events).await?;
        records.backing.commit().await?;
        Ok(effects)
    }

    /// Carries out a committed batch's effects: answers first, then agents started, messages
    /// and acknowledgements.
    fn carry_out(&mut self, effects: Vec<Effect>, responders: &mut HashMap<Ticket, Responder>) {
        let mut acks: HashMap<String, Vec<u64>> = HashMap::new();
        for e in effects {
            match e {
                Effect::Answer { ticket, answer } => match (responders.remove(&ticket), answer) {
                    (Some(Responder::Api(tx)), Answer::Api(a)) => {
                        let _ = tx.send(a);
                    }
                    (Some(Responder::Hello(tx)), Answer::Hello(ok)) => {
                        let _ = tx.send(ok);
                    }
                    (Some(Responder::Run(tx)), Answer::Run(run)) => {
                        let _ = tx.send(run);
                    }
                    _ => {}
                },
                Effect::Send { node_id, msg } => {
                    self.hub.send(&node_id, msg);
                }
                Effect::Ack { node_id, dispatch_id } => acks.entry(node_id).or_default().push(dispatch_id),
                Effect::SpawnAgent { pool_id, node_id, token } => match self.provider.spawn(&pool_id, &node_id, &token) {
                    Ok(pid) => {
                        let _ = self.me.send(Incoming::Event(Event::NodeSpawned { pool_id, node_id, pid }));
                    }
                    Err(e) => tracing::error!(%pool_id, %node_id, error = %e, "could not start the node agent"),
                },
                Effect::KillAgent { pid } => self.provider.kill(pid),
                Effect::RemovePoolDir { pool_id } => {
                    let _ = std::fs::remove_dir_all(self.provider.pool_dir(&pool_id));
                }
                Effect::RestartAgent { pool_id, node_id, token, pid, wipe } => {
                    let (provider, me) = (self.provider.clone(), self.me.clone());
                    tokio::spawn(async move {
                        match provider.restart(&pool_id, &node_id, &token, pid, wipe).await {
                            Ok(pid) => {
                                let _ = me.send(Incoming::Event(Event::NodeSpawned { pool_id, node_id, pid }));
                            }
                            Err(e) => tracing::error!(%pool_id, %node_id, error = %e, "could not restart the node agent"),
                        }
                    });
                }
            }
        }
        for (node_id, dispatch_ids) in acks {
            self.hub.send(&node_id, ServiceMessage::Ack { dispatch_ids });
        }
        // Requests the batch did not answer (none should remain) learn that it is done.
        for (_, r) in responders.drain() {
            r.unanswered(None);
        }
    }
}
