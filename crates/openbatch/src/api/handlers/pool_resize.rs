//! Pool Stop Resize and Remove Nodes, and the preemption of a Spot node that an administrator
//! triggers to test how an application copes (`POST /openbatch/v1/pools/{pool}/nodes/{node}/preempt`).
//! The rules are the reactor's (`scheduler::reactor::resize`, `scheduler::reactor::spot`).

use super::pools::{check_resize_timeout, url};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::node::Node;
use crate::model::pool::{AllocationState, DeallocationOption, NodeRemove, Pool};
use crate::model::time::Clock;
use crate::scheduler::reactor::resize::PoolOp;
use crate::scheduler::reactor::Event;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Most nodes one Remove Nodes request may name (NodeRemoveParameter.nodeList).
pub const MAX_REMOVE_NODES: usize = 100;

/// Pool Stop Resize: 202 with the pool's ETag (stopping changes no property of the pool).
/// The allocation state goes `stopping`, then `steady`; a `steady` pool is left as it is.
/// 404 `PoolNotFound`, 409 `PoolBeingDeleted`; 412 for unmet conditions.
pub async fn stop_resize(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let p: Pool = app.store.get("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Pool))?;
    ctx.precondition(&p.last_modified, false)?;
    app.driver.call(Event::Pool { pool_id: p.spec.id.clone(), op: PoolOp::StopResize }).await?;
    Ok(Reply::updated(StatusCode::ACCEPTED, &format!("{}/stopresize", url(&ctx.base, &p.spec.id)), &p.last_modified))
}

/// Pool Remove Nodes: 202; the named nodes leave with `nodeDeallocationOption` (default
/// `requeue`) and the targets drop by as many. Errors: 400 `MissingRequiredProperty` /
/// `InvalidPropertyValue` for an empty or longer-than-100 `nodeList` or a `resizeTimeout`
/// under 5 minutes; 404 `PoolNotFound`, 404 `NodeNotFound` for a node not in the pool; 409
/// `PoolBeingResized` unless the allocation state is `steady`, `PoolBeingDeleted`.
pub async fn remove_nodes(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let req: NodeRemove = ctx.parse("NodeRemoveParameter", body)?;
    if req.node_list.is_empty() {
        return Err(BatchError::missing_property("nodeList"));
    }
    if req.node_list.len() > MAX_REMOVE_NODES {
        return Err(BatchError::invalid_property(
            "nodeList",
            req.node_list.len().to_string(),
            format!("At most {MAX_REMOVE_NODES} compute nodes can be removed per request."),
        ));
    }
    check_resize_timeout(req.resize_timeout.as_deref())?;
    let (mut tx, mut p) = super::pools::load_for_change(app, ctx, id).await?;
    if p.status.allocation_state != AllocationState::Steady {
        return Err(BatchError::conflict("PoolBeingResized", "The specified pool is being resized."));
    }
    let mut node_ids: Vec<String> = Vec::new();
    let (mut dedicated, mut low_priority) = (0, 0);
    for node_id in &req.node_list {
        let n: Node =
            tx.get(&p.spec.id, node_id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Node).with("NodeId", node_id))?;
        if node_ids.contains(&n.id) {
            continue;
        }
        if n.is_dedicated {
            dedicated += 1;
        } else {
            low_priority += 1;
        }
        node_ids.push(n.id);
    }
    let now = Clock::now();
    p.spec.target_dedicated_nodes = Some((p.spec.target_dedicated_nodes.unwrap_or(0) - dedicated).max(0));
    p.spec.target_low_priority_nodes = Some((p.spec.target_low_priority_nodes.unwrap_or(0) - low_priority).max(0));
    if let Some(t) = req.resize_timeout {
        p.spec.resize_timeout = Some(t);
    }
    let option = req.node_deallocation_option.unwrap_or(DeallocationOption::Requeue);
    p.status.begin_resize(now, Some(option));
    p.last_modified = now;
    tx.put(&p).await?;
    tx.commit().await?;
    app.driver.call(Event::Pool { pool_id: p.spec.id.clone(), op: PoolOp::RemoveNodes { node_ids, option } }).await?;
    Ok(Reply::updated(StatusCode::ACCEPTED, &format!("{}/removenodes", url(&ctx.base, &p.spec.id)), &now))
}

/// `POST /openbatch/v1/pools/{pool}/nodes/{node}/preempt` (signed with the account key, like
/// the Batch API; `openbatch preempt` does it): preempts a Spot/low-priority node now, as
/// Azure reclaiming its VM would. 202 once done; 404 `PoolNotFound`/`NodeNotFound`; 409
/// `OperationInvalidForCurrentState` for a dedicated node or one already preempted.
pub async fn preempt(
    State(app): State<Arc<App>>,
    Path((pool_id, node_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let result: ApiResult<()> = async {
        app.account.verify(&method, uri.path(), uri.query(), &headers)?;
        app.driver.call(Event::Pool { pool_id, op: PoolOp::Preempt { node_id } }).await
    }
    .await;
    match result {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => crate::api::error_response(&app.base_url(&headers), e),
    }
}
