//! The hub of connected node agents: sends service messages to a node and carries file
//! requests to it, matching each answer to its request.
//!
//! File bytes do not travel the control connection: for a read the hub registers a pending
//! stream under the request id with a one-time random key, the agent answers `Opened` on the
//! WebSocket and posts the bytes to `POST /agent/v1/files/<request id>` with that key
//! ([`Hub::attach_stream`]); they reach the reader through a channel of [`STREAM_CHUNKS`]
//! pieces, so memory per transfer is bounded and a slow reader slows the agent down.

use crate::agent::protocol::{FileOp, FileReply, ServiceMessage};
use bytes::Bytes;
use futures::Stream;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Pieces (as the agent's HTTP request delivers them) buffered per streamed read.
pub const STREAM_CHUNKS: usize = 8;
/// A streamed read whose agent sends nothing for this long is ended with an error.
pub const STREAM_IDLE: Duration = Duration::from_secs(60);

/// The bytes of a file read, in order; an `Err` item means the transfer broke off.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Sending side of a streamed read, handed to the agent's upload request.
pub type StreamSender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A read waiting for its agent's upload.
struct PendingStream {
    node_id: String,
    key: String,
    tx: StreamSender,
}

/// Removes a pending stream when its reader goes away before the agent attached.
struct PendingGuard {
    streams: Arc<Mutex<HashMap<u64, PendingStream>>>,
    request_id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.request_id);
    }
}

/// One live agent connection.
struct Conn {
    conn_id: u64,
    tx: mpsc::UnboundedSender<ServiceMessage>,
}

/// A file request waiting for its agent's answer.
struct PendingFile {
    node_id: String,
    tx: oneshot::Sender<FileReply>,
}

/// The connected agents, by node id.
#[derive(Default, Clone)]
pub struct Hub {
    conns: Arc<Mutex<HashMap<String, Conn>>>,
    pending: Arc<Mutex<HashMap<u64, PendingFile>>>,
    streams: Arc<Mutex<HashMap<u64, PendingStream>>>,
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
    /// The node's file requests still waiting then fail at once ([`HubError::NodeUnavailable`]):
    /// their answers will not come (an agent told to shut down drops what it had not
    /// answered), so they do not wait out their timeout.
    pub fn disconnect(&self, node_id: &str, conn_id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.get(node_id).is_some_and(|c| c.conn_id == conn_id) {
            conns.remove(node_id);
            drop(conns);
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, p| p.node_id != node_id);
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
        self.file_as(request_id, node_id, op, timeout).await
    }

    async fn file_as(&self, request_id: u64, node_id: &str, op: FileOp, timeout: Duration) -> Result<FileReply, HubError> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(request_id, PendingFile { node_id: node_id.to_string(), tx });
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
        if let Some(p) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id) {
            let _ = p.tx.send(reply);
        }
    }
}

impl Hub {
    /// Asks a node's agent to read bytes `[start, end)` of `path` under `root` (see
    /// [`FileOp::Read`]) and waits at most `timeout` for it to open the file. When it answers
    /// [`FileReply::Opened`], the bytes follow on the returned stream, which ends with an
    /// `Err` item if the agent stops sending for [`STREAM_IDLE`] or its upload breaks off.
    pub async fn read(
        &self,
        node_id: &str,
        root: String,
        path: String,
        range: (u64, Option<u64>),
        timeout: Duration,
    ) -> Result<(FileReply, Option<ByteStream>), HubError> {
        let request_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let key = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = mpsc::channel(STREAM_CHUNKS);
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request_id, PendingStream { node_id: node_id.to_string(), key: key.clone(), tx });
        let guard = PendingGuard { streams: self.streams.clone(), request_id };
        let op = FileOp::Read { root, path, start: range.0, end: range.1, stream_key: key };
        let reply = self.file_as(request_id, node_id, op, timeout).await?;
        if !matches!(reply, FileReply::Opened { .. }) {
            return Ok((reply, None));
        }
        let stream = futures::stream::unfold((rx, Some(guard)), |(mut rx, guard)| async move {
            guard.as_ref()?;
            match tokio::time::timeout(STREAM_IDLE, rx.recv()).await {
                Ok(Some(item)) => {
                    let failed = item.is_err();
                    Some((item, (rx, if failed { None } else { guard })))
                }
                Ok(None) => None,
                Err(_) => {
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "the compute node stopped sending the file");
                    Some((Err(e), (rx, None)))
                }
            }
        });
        Ok((reply, Some(Box::pin(stream))))
    }

    /// The sending side of the pending read `request_id` when `node_id` and `key` match it
    /// (compared in constant time); each read can be attached once.
    pub fn attach_stream(&self, request_id: u64, node_id: &str, key: &str) -> Option<StreamSender> {
        use subtle::ConstantTimeEq;
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let p = streams.get(&request_id)?;
        if p.node_id != node_id || !bool::from(p.key.as_bytes().ct_eq(key.as_bytes())) {
            return None;
        }
        streams.remove(&request_id).map(|p| p.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_request_fails_at_once_when_its_agent_disconnects() {
        let hub = Hub::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = hub.connect("node-1", tx);
        let asking = {
            let hub = hub.clone();
            tokio::spawn(async move {
                hub.file("node-1", FileOp::Stat { root: String::new(), path: "stdout.txt".into() }, Duration::from_secs(60)).await
            })
        };
        // The agent got the request (and, shutting down, never answers it).
        assert!(matches!(rx.recv().await, Some(ServiceMessage::File { .. })));
        assert!(hub.disconnect("node-1", conn));
        let answer = tokio::time::timeout(Duration::from_secs(5), asking).await.expect("answered before its timeout").unwrap();
        assert_eq!(answer, Err(HubError::NodeUnavailable));
    }
}
