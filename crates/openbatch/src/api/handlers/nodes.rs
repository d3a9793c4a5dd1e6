//! Compute node operations: List, Get, Disable Scheduling and Enable Scheduling.

use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::{App, Ctx};
use crate::model::node::{DisableSchedulingOption, Node, NodeDisableScheduling};
use crate::model::pool::Pool;
use crate::scheduler::reactor::Event;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// The node's URL under `base`.
pub fn url(base: &str, pool: &str, id: &str) -> String {
    format!("{base}/pools/{pool}/nodes/{id}")
}

/// The wire shape of a compute node (2022-10-01.16.0); private bookkeeping is left out.
pub fn render(base: &str, n: &Node) -> Map<String, Value> {
    let mut m = to_map(n);
    for private in ["poolId", "agentToken", "rootDir", "agentPid", "imageReference", "meter", "users", "pendingRestart"] {
        m.remove(private);
    }
    m.insert("url".into(), Value::String(url(base, &n.pool_id, &n.id)));
    m.insert("affinityId".into(), Value::String(format!("TVM:{}", n.id)));
    // A local node is reached on the loopback interface, IPv4 and IPv6 (2025-06-01).
    m.insert("ipv6Address".into(), Value::String("::1".into()));
    if n.last_boot_time.is_none() {
        m.remove("certificateReferences");
    }
    // A local node accepts no inbound connections: no SSH or NAT endpoints to report.
    m.insert("endpointConfiguration".into(), json!({"inboundEndpoints": []}));
    if let Some(img) = &n.image_reference {
        let mut img = to_map(img);
        if let Some(v) = img.get("version").cloned() {
            img.entry("exactVersion").or_insert(v);
        }
        m.insert("virtualMachineInfo".into(), json!({"imageReference": img}));
    }
    if m.get("errors").is_some_and(|e| e.as_array().is_some_and(|a| a.is_empty())) {
        m.remove("errors");
    }
    entity(None, Some((&n.id, url(base, &n.pool_id, &n.id))), m).as_object().cloned().unwrap_or_default()
}

async fn pool(app: &App, id: &str) -> ApiResult<Pool> {
    app.store.get::<Pool>("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Pool))
}

/// Loads a node; 404 `PoolNotFound` or `NodeNotFound`.
pub async fn load(app: &App, pool_id: &str, node_id: &str) -> ApiResult<Node> {
    let p = pool(app, pool_id).await?;
    app.store.get::<Node>(&p.spec.id, node_id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Node))
}

/// Compute Node List of a pool.
pub async fn list(app: &App, ctx: &Ctx, pool_id: &str) -> ApiResult<Reply> {
    let p = pool(app, pool_id).await?;
    super::list_records::<Node>(app, ctx, &p.spec.id, crate::odata::ListKind::Nodes, "nodes", "ComputeNode", render).await
}

/// Compute Node Get.
pub async fn get(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Reply> {
    let n = load(app, pool_id, node_id).await?;
    let body = entity(Some(format!("{}/$metadata#nodes/@Element", ctx.base)), None, render(&ctx.base, &n));
    Ok(Reply::json(ctx.view("ComputeNode", body)))
}

/// Compute Node Disable Scheduling: 200 (`DataServiceId`, no ETag, as the recorded service);
/// the node gets no new tasks and its running ones are requeued (the default), ended or left
/// to finish (`nodeDisableSchedulingOption`). 404 `PoolNotFound` / `NodeNotFound`, 409
/// `OperationNotValidOnNode` for a node leaving its pool.
pub async fn disable_scheduling(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: NodeDisableScheduling =
        if body.is_empty() { NodeDisableScheduling::default() } else { ctx.parse("NodeDisableSchedulingParameter", body)? };
    let n = load(app, pool_id, node_id).await?;
    let option = p.node_disable_scheduling_option.unwrap_or(DisableSchedulingOption::Requeue);
    let ev = Event::DisableNodeScheduling { pool_id: n.pool_id.clone(), node_id: n.id.clone(), option };
    app.driver.call(ev).await?;
    Ok(Reply::empty(StatusCode::OK).header("DataServiceId", format!("{}/disablescheduling", url(&ctx.base, &n.pool_id, &n.id))))
}

/// Compute Node Enable Scheduling: 200 (`DataServiceId`, no ETag); the node takes tasks again.
pub async fn enable_scheduling(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Reply> {
    let n = load(app, pool_id, node_id).await?;
    app.driver.call(Event::EnableNodeScheduling { pool_id: n.pool_id.clone(), node_id: n.id.clone() }).await?;
    Ok(Reply::empty(StatusCode::OK).header("DataServiceId", format!("{}/enablescheduling", url(&ctx.base, &n.pool_id, &n.id))))
}
