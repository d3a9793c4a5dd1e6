//! `GET /agent/v1/connect`: the WebSocket node agents connect to (see
//! `agent::protocol`). The first message must be a `Hello` whose node id and token match a
//! node of the store; then service messages flow out and agent reports flow to the driver.
//!
//! `POST /agent/v1/files/{request_id}`: an agent streams the bytes of a file read here (see
//! `scheduler::hub`), authenticated by its node id and the read's one-time stream key.

use super::App;
use crate::agent::protocol::{AgentMessage, ServiceMessage};
use crate::scheduler::reactor::Event;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::sync::mpsc;

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
    let hello = Event::AgentHello { pool_id, node_id: node_id.clone(), token, agent_version, running, finished };
    if !app.driver.hello(hello).await {
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
    app.driver.agent_gone(node_id, conn_id);
}

/// How long an upload waits for the reader to take the next piece before giving up.
const STREAM_STALL: std::time::Duration = std::time::Duration::from_secs(300);

/// Receives the bytes of a streamed file read from an agent and hands them to the reader.
/// Headers: `x-openbatch-node` and `x-openbatch-stream-key`. Answers 204 when all bytes
/// were delivered, 404 for an unknown read or a wrong key, 410 when the reader went away
/// (or stalled for 5 minutes), 400 when the upload broke off.
pub async fn upload(
    State(app): State<Arc<App>>,
    axum::extract::Path(request_id): axum::extract::Path<u64>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let Some(tx) = app.driver.hub.attach_stream(request_id, &h("x-openbatch-node"), &h("x-openbatch-stream-key")) else {
        return StatusCode::NOT_FOUND;
    };
    let mut data = body.into_data_stream();
    while let Some(piece) = data.next().await {
        let (item, broken) = match piece {
            Ok(b) => (Ok(b), false),
            Err(e) => (Err(std::io::Error::other(e.to_string())), true),
        };
        match tokio::time::timeout(STREAM_STALL, tx.send(item)).await {
            Ok(Ok(())) if !broken => {}
            Ok(Ok(())) => return StatusCode::BAD_REQUEST,
            _ => return StatusCode::GONE,
        }
    }
    StatusCode::NO_CONTENT
}
