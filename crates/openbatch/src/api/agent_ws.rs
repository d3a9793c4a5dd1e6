//! `GET /agent/v1/connect`: the WebSocket node agents connect to (see
//! `agent::protocol`). The first message must be a `Hello` whose node id and token match a
//! node of the store; then service messages flow out and agent reports flow to the driver.

use super::App;
use crate::agent::protocol::{AgentMessage, ServiceMessage};
use crate::scheduler::driver::Event;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Upgrades the request and serves the agent connection.
pub async fn connect(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(512 * 1024 * 1024).on_upgrade(move |socket| serve(app, socket))
}

async fn serve(app: Arc<App>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let hello = match stream.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<AgentMessage>(&t).ok(),
        _ => None,
    };
    let Some(AgentMessage::Hello { pool_id, node_id, token, agent_version, running, finished }) = hello else {
        return;
    };
    let hub = app.driver.hub.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<ServiceMessage>();
    let conn_id = hub.connect(&node_id, tx);
    let (accept_tx, accept_rx) = oneshot::channel();
    app.driver.notify(Event::AgentHello {
        conn_id,
        pool_id,
        node_id: node_id.clone(),
        token,
        agent_version,
        running,
        finished,
        accept: accept_tx,
    });
    if !accept_rx.await.unwrap_or(false) {
        hub.disconnect(&node_id, conn_id);
        // An unknown node (its pool is gone): tell the agent to stop.
        if let Ok(text) = serde_json::to_string(&ServiceMessage::Shutdown { remove_files: true }) {
            let _ = sink.send(Message::Text(text.into())).await;
        }
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let Ok(text) = serde_json::to_string(&msg) else { continue };
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            continue;
        };
        match serde_json::from_str::<AgentMessage>(&text) {
            Ok(AgentMessage::File { request_id, reply }) => hub.file_reply(request_id, reply),
            Ok(msg) => app.driver.notify(Event::Agent { node_id: node_id.clone(), msg }),
            Err(e) => tracing::warn!(%node_id, error = %e, "unreadable agent message"),
        }
    }
    writer.abort();
    app.driver.notify(Event::AgentGone { node_id, conn_id });
}
