//! The hub of connected node agents: sends service messages to a node and carries file
//! requests to it, matching each answer to its request.

use crate::agent::protocol::{FileOp, FileReply, ServiceMessage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One live agent connection.
struct Conn {
    conn_id: u64,
    tx: mpsc::UnboundedSender<ServiceMessage>,
}

/// The connected agents, by node id.
#[derive(Default, Clone)]
pub struct Hub {
    conns: Arc<Mutex<HashMap<String, Conn>>>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<FileReply>>>>,
    next: Arc<AtomicU64>,
}

/// Why a file request got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum HubError {
    /// The node's agent is not connected.
    NodeUnavailable,
    /// The agent did not answer in time.
    Timeout,
}

impl Hub {
    /// Registers a connection for `node_id`, replacing an older one; returns its id.
    pub fn connect(&self, node_id: &str, tx: mpsc::UnboundedSender<ServiceMessage>) -> u64 {
        let conn_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(node_id.to_string(), Conn { conn_id, tx });
        conn_id
    }

    /// Forgets a connection if it is still the current one for the node; true if it was.
    pub fn disconnect(&self, node_id: &str, conn_id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.get(node_id).is_some_and(|c| c.conn_id == conn_id) {
            conns.remove(node_id);
            true
        } else {
            false
        }
    }

    /// True when the node's agent is connected.
    pub fn is_connected(&self, node_id: &str) -> bool {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).contains_key(node_id)
    }

    /// Sends a message to a node's agent; false when it is not connected.
    pub fn send(&self, node_id: &str, msg: ServiceMessage) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.get(node_id).is_some_and(|c| c.tx.send(msg).is_ok())
    }

    /// Asks a node's agent to carry out a file operation and waits (at most `timeout`).
    pub async fn file(&self, node_id: &str, op: FileOp, timeout: Duration) -> Result<FileReply, HubError> {
        let request_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(request_id, tx);
        if !self.send(node_id, ServiceMessage::File { request_id, op }) {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
            return Err(HubError::NodeUnavailable);
        }
        let out = tokio::time::timeout(timeout, rx).await;
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
        match out {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(HubError::NodeUnavailable),
            Err(_) => Err(HubError::Timeout),
        }
    }

    /// Delivers an agent's answer to the waiting file request.
    pub fn file_reply(&self, request_id: u64, reply: FileReply) {
        if let Some(tx) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id) {
            let _ = tx.send(reply);
        }
    }
}
