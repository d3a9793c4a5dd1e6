//! The node agent (`openbatch agent`): one compute node. It connects to the service over the
//! [`protocol`], prepares the node directories, runs start tasks and tasks as processes,
//! serves its files, keeps results until the service has stored them, and reports what the
//! node uses every few seconds ([`sample`]). When the service
//! goes away it keeps running its tasks and reconnects; after `orphan_timeout` without a
//! service it kills its tasks and exits.

pub mod certificates;
pub mod exec;
pub mod files;
pub mod packages;
pub mod protocol;
pub mod safefs;
pub mod sample;

use exec::NodeContext;
use futures::{SinkExt, StreamExt};
use protocol::{AgentMessage, ExecKind, ExecResult, NodeSample, ServiceMessage};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Version the agent reports in `nodeAgentInfo.version`.
pub const AGENT_VERSION: &str = concat!("openbatch-", env!("CARGO_PKG_VERSION"));

/// How an agent is started.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URL of the service, e.g. `http://127.0.0.1:10400`.
    pub service_url: String,
    pub pool_id: String,
    pub node_id: String,
    /// Secret the service gave this node.
    pub token: String,
    /// The node root directory (`AZ_BATCH_NODE_ROOT_DIR`).
    pub root: PathBuf,
    /// How long to keep trying to reach a vanished service before giving up.
    pub orphan_timeout: Duration,
}

enum Internal {
    Started {
        kind: ExecKind,
        dispatch_id: u64,
        started_ms: i64,
    },
    Finished(ExecResult),
    /// The answer to a file request, sent when ready (file work never holds up the loop).
    File(AgentMessage),
    /// What the node used lately (measured off the loop).
    Sample(NodeSample),
}

struct Running {
    dispatch_id: u64,
    kill: Option<oneshot::Sender<()>>,
}

/// Runs the agent until the service shuts the node down or it is orphaned too long.
pub async fn run(cfg: AgentConfig) -> anyhow::Result<()> {
    for d in exec::NODE_DIRS {
        std::fs::create_dir_all(cfg.root.join(d))?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Internal>();
    let mut running: HashMap<ExecKind, Running> = HashMap::new();
    let mut unacked: HashMap<u64, ExecResult> = HashMap::new();
    let mut ctx: Option<NodeContext> = None;
    let mut last_connected = Instant::now();
    let ws_url = format!(
        "{}/agent/v1/connect",
        cfg.service_url.trim_end_matches('/').replacen("http://", "ws://", 1).replacen("https://", "wss://", 1)
    );
    // Samples, from the agent's start on; one that could not be sent is merged into the next.
    spawn_sampler(cfg.root.clone(), tx.clone());
    let mut unsent: Option<NodeSample> = None;
    let mut backoff = Duration::from_millis(50);
    let uploader = files::Uploader::new(&cfg.service_url, &cfg.node_id)?;
    loop {
        // No Nagle: messages are small and latency is the dispatch rate.
        let conn = tokio_tungstenite::connect_async_with_config(&ws_url, None, true).await;
        let Ok((ws, _)) = conn else {
            if last_connected.elapsed() > cfg.orphan_timeout {
                tracing::warn!("service unreachable for {:?}; ending node", cfg.orphan_timeout);
                for r in running.values_mut() {
                    if let Some(k) = r.kill.take() {
                        let _ = k.send(());
                    }
                }
                return Ok(());
            }
            // Results keep arriving while disconnected: hold them for the next connection.
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    Internal::Finished(r) => {
                        running.remove(&r.kind);
                        unacked.insert(r.dispatch_id, r);
                    }
                    Internal::Sample(s) => unsent = Some(unsent.take().map_or(s, |u| u.then(s))),
                    _ => {}
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(50);
        let (mut sink, mut stream) = ws.split();
        let hello = AgentMessage::Hello {
            pool_id: cfg.pool_id.clone(),
            node_id: cfg.node_id.clone(),
            token: cfg.token.clone(),
            agent_version: AGENT_VERSION.to_string(),
            running: running.iter().map(|(k, r)| (k.clone(), r.dispatch_id)).collect(),
            finished: unacked.values().cloned().collect(),
        };
        if sink.send(Message::text(serde_json::to_string(&hello)?)).await.is_err() {
            continue;
        }
        // Serve this connection until it drops.
        loop {
            last_connected = Instant::now();
            tokio::select! {
                msg = stream.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    let text = match msg {
                        Message::Text(t) => t.to_string(),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let msg: ServiceMessage = match serde_json::from_str(&text) {
                        Ok(m) => m,
                        Err(e) => { tracing::warn!(%e, "unreadable service message"); continue; }
                    };
                    match msg {
                        ServiceMessage::Welcome { account_name, account_url, pool_id, node_id, is_dedicated, certificates } => {
                            tracing::info!(%pool_id, %node_id, "connected to the Batch service");
                            ctx = Some(NodeContext {
                                root: cfg.root.clone(),
                                account_name,
                                account_url,
                                pool_id,
                                node_id,
                                is_dedicated,
                                service_url: cfg.service_url.clone(),
                                token: cfg.token.clone(),
                                certificates,
                            });
                        }
                        ServiceMessage::Run { spec } => {
                            let Some(ctx) = ctx.clone() else { continue };
                            if let Some(old) = running.get_mut(&spec.kind) {
                                if old.dispatch_id == spec.dispatch_id { continue; }
                                if let Some(k) = old.kill.take() { let _ = k.send(()); }
                            }
                            let (ktx, krx) = oneshot::channel();
                            running.insert(spec.kind.clone(), Running { dispatch_id: spec.dispatch_id, kill: Some(ktx) });
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                let started_tx = tx.clone();
                                let (kind, id) = (spec.kind.clone(), spec.dispatch_id);
                                let result = exec::run(&ctx, &spec, krx, move |ms| {
                                    let _ = started_tx.send(Internal::Started { kind, dispatch_id: id, started_ms: ms });
                                }).await;
                                let _ = tx.send(Internal::Finished(result));
                            });
                        }
                        ServiceMessage::Kill { kind, dispatch_id } => {
                            if let Some(r) = running.get_mut(&kind) {
                                if r.dispatch_id == dispatch_id {
                                    if let Some(k) = r.kill.take() { let _ = k.send(()); }
                                }
                            }
                        }
                        ServiceMessage::Ack { dispatch_ids } => {
                            for id in dispatch_ids { unacked.remove(&id); }
                        }
                        ServiceMessage::File { request_id, op } => {
                            let (root, up, tx) = (cfg.root.clone(), uploader.clone(), tx.clone());
                            tokio::spawn(async move {
                                let reply = files::serve(root, request_id, op, up).await;
                                let _ = tx.send(Internal::File(AgentMessage::File { request_id, reply }));
                            });
                        }
                        ServiceMessage::Shutdown { remove_files } => {
                            for r in running.values_mut() {
                                if let Some(k) = r.kill.take() { let _ = k.send(()); }
                            }
                            // Give killed processes a moment to be reaped.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if remove_files {
                                let _ = std::fs::remove_dir_all(&cfg.root);
                            }
                            let _ = sink.close().await;
                            return Ok(());
                        }
                    }
                }
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    let m = match ev {
                        Internal::Started { kind, dispatch_id, started_ms } => AgentMessage::Started { kind, dispatch_id, started_ms },
                        Internal::Finished(r) => {
                            let failure = r.failure.as_ref().map(|f| f.code.as_str()).unwrap_or("");
                            tracing::info!(kind = ?r.kind, dispatch = r.dispatch_id, exit_code = ?r.exit_code, failure, "execution ended");
                            if running.get(&r.kind).is_some_and(|x| x.dispatch_id == r.dispatch_id) {
                                running.remove(&r.kind);
                            }
                            unacked.insert(r.dispatch_id, r.clone());
                            AgentMessage::Finished { result: r }
                        }
                        Internal::File(m) => m,
                        Internal::Sample(s) => {
                            let s = unsent.take().map_or(s, |u| u.then(s));
                            unsent = Some(s);
                            AgentMessage::Sample { sample: s }
                        }
                    };
                    let is_sample = matches!(m, AgentMessage::Sample { .. });
                    if sink.send(Message::text(serde_json::to_string(&m)?)).await.is_err() { break; }
                    if is_sample {
                        unsent = None;
                    }
                }
            }
        }
        tracing::info!("disconnected from the service; reconnecting");
    }
}

/// Takes a sample of the node now and every [`sample::SAMPLE_PERIOD`] (on a blocking thread:
/// it reads `/proc` and walks the node directory) and hands it to the agent's loop.
fn spawn_sampler(root: PathBuf, tx: mpsc::UnboundedSender<Internal>) {
    tokio::spawn(async move {
        let mut sampler = sample::Sampler::new(&root);
        let mut tick = tokio::time::interval(sample::SAMPLE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok((s, back)) = tokio::task::spawn_blocking(move || (sampler.sample(), sampler)).await else { return };
            sampler = back;
            if tx.send(Internal::Sample(s)).is_err() {
                return;
            }
        }
    });
}
