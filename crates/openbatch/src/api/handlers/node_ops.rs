//! Compute node operations: Reboot, Reimage, Add / Update / Delete User, Get Remote Login
//! Settings, Get Remote Desktop, and the node's VM extensions (List, Get).
//!
//! Reboot, Reimage and the user operations go through the scheduler (they change the node
//! record the reactor owns); see `scheduler::reactor::node_ops` and `node_users` for their
//! rules. Every operation answers 404 `PoolNotFound` / `NodeNotFound` first.

use super::nodes::{load, url};
use crate::api::error::{ApiResult, BatchError};
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::node::Node;
use crate::model::node_ops::{node_extension, NodeReboot, NodeReimage, NodeUserAdd, NodeUserUpdate, RestartKind};
use crate::model::pool::{DeallocationOption, Pool};
use crate::scheduler::reactor::node_ops::NodeOp;
use crate::scheduler::reactor::Event;
use axum::http::StatusCode;
use serde_json::Value;

/// Reads an optional body: none (or only whitespace) is the model's default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(ctx: &Ctx, model: &str, body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        ctx.parse(model, body)
    }
}

/// 409 `OperationNotValidOnNode` with the `Reason` the service gives for an operation of
/// Cloud Services pools on a node of a virtual machine pool (as recorded for reimage).
fn cloud_service_only(operation: &str) -> BatchError {
    BatchError::conflict("OperationNotValidOnNode", "The specified operation is not valid on the node.")
        .with("Reason", format!("Operation {operation} can be invoked only on pools created with cloudServiceConfiguration"))
}

/// Runs a node operation in the scheduler.
async fn run(app: &App, n: &Node, op: NodeOp) -> ApiResult<()> {
    app.driver.call(Event::NodeOperation { pool_id: n.pool_id.clone(), node_id: n.id.clone(), op }).await
}

/// Compute Node Reboot: 202 with `DataServiceId` (as recorded). The body
/// (`nodeRebootOption`) is optional. 409 `NodeBeingCreated`, `NodeBeingStarted`,
/// `NodeBeingRebooted`, `NodeBeingReimaged`, `OperationNotValidOnNode` for a node that is not
/// booted (see [`crate::scheduler::reactor::node_ops::not_ready`]).
pub async fn reboot(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: NodeReboot = optional_body(ctx, "NodeRebootParameter", body)?;
    let n = load(app, pool_id, node_id).await?;
    let option = p.node_reboot_option.unwrap_or(DeallocationOption::Requeue);
    run(app, &n, NodeOp::Restart { kind: RestartKind::Reboot, option }).await?;
    Ok(Reply::empty(StatusCode::ACCEPTED).header("DataServiceId", format!("{}/reboot", url(&ctx.base, &n.pool_id, &n.id))))
}

/// Compute Node Reimage: 202 as Reboot, the node directory wiped. Up to 2024-02-01.19.0 the
/// operation is for Cloud Services pools only, and every openbatch node belongs to a virtual
/// machine pool: 409 `OperationNotValidOnNode` (Reason: only on pools created with
/// cloudServiceConfiguration), as the service answers. Later versions (no Cloud Services
/// pools left) reimage the node; errors as Reboot's.
pub async fn reimage(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: NodeReimage = optional_body(ctx, "NodeReimageParameter", body)?;
    let n = load(app, pool_id, node_id).await?;
    if crate::versions::reimage_needs_cloud_service(ctx.version) {
        return Err(cloud_service_only("reimage"));
    }
    let option = p.node_reimage_option.unwrap_or(DeallocationOption::Requeue);
    run(app, &n, NodeOp::Restart { kind: RestartKind::Reimage, option }).await?;
    Ok(Reply::empty(StatusCode::ACCEPTED).header("DataServiceId", format!("{}/reimage", url(&ctx.base, &n.pool_id, &n.id))))
}

/// Checks the account properties of Add and Update User: `expiryTime` in the future,
/// `sshPublicKey` an OpenSSH public key (`<type> <base64 key> [comment]`, or the base64 key
/// alone). Errors: 400 `InvalidPropertyValue` naming the property.
fn check_account(now: &crate::model::time::Timestamp, expiry: Option<&crate::model::time::Timestamp>, ssh: Option<&str>) -> ApiResult<()> {
    if let Some(t) = expiry.filter(|t| *t <= now) {
        let v = crate::model::time::format_timestamp(t);
        return Err(BatchError::invalid_property("expiryTime", v, "The expiry time must be in the future."));
    }
    if let Some(key) = ssh {
        use base64::Engine;
        let mut parts = key.split_whitespace();
        let (first, second) = (parts.next().unwrap_or(""), parts.next());
        let blob = if second.is_some() && !first.starts_with("AAAA") { second.unwrap_or("") } else { first };
        let valid = base64::engine::general_purpose::STANDARD.decode(blob).is_ok_and(|b| b.len() > 4);
        if !valid {
            return Err(BatchError::invalid_property(
                "sshPublicKey",
                key.chars().take(64).collect::<String>(),
                "The SSH public key must be an OpenSSH public key: '<type> <base64 key> [comment]'.",
            ));
        }
    }
    Ok(())
}

/// Compute Node Add User: 201 with `Location` and `DataServiceId` (the user's URL) and no
/// ETag, as recorded. 400 `MissingRequiredProperty` (`name`), `InvalidPropertyValue`
/// (`name`, `expiryTime`, `sshPublicKey`); 409 `NodeUserExists`, or the node state errors of
/// Reboot (`NodeStateUnusable` for an unusable node). openbatch keeps the account on the node
/// record: no operating-system account is created yet, and the password is not kept.
pub async fn add_user(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let add: NodeUserAdd = ctx.parse("ComputeNodeUser", body)?;
    let name = add.name.clone().ok_or_else(|| BatchError::missing_property("name"))?;
    if name.trim().is_empty() || name.len() > 256 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(BatchError::invalid_property("name", name, "A user name is 1 to 256 characters without '/' or control characters."));
    }
    check_account(&crate::model::time::Clock::now(), add.expiry_time.as_ref(), add.ssh_public_key.as_deref())?;
    let n = load(app, pool_id, node_id).await?;
    run(app, &n, NodeOp::AddUser(add)).await?;
    let user_url = format!("{}/users/{name}", url(&ctx.base, &n.pool_id, &n.id));
    Ok(Reply::empty(StatusCode::CREATED).header("Location", &user_url).header("DataServiceId", user_url))
}

/// Compute Node Update User: 200 with `DataServiceId` and no ETag, as recorded. Replaces the
/// password, SSH key and expiry (omitted ones are removed or reset). 404 `NodeUserNotFound`;
/// 400 as Add User.
pub async fn update_user(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, user: &str, body: &[u8]) -> ApiResult<Reply> {
    let update: NodeUserUpdate = ctx.parse("NodeUpdateUserParameter", body)?;
    check_account(&crate::model::time::Clock::now(), update.expiry_time.as_ref(), update.ssh_public_key.as_deref())?;
    let n = load(app, pool_id, node_id).await?;
    run(app, &n, NodeOp::UpdateUser { name: user.to_string(), update }).await?;
    Ok(Reply::empty(StatusCode::OK).header("DataServiceId", format!("{}/users/{user}", url(&ctx.base, &n.pool_id, &n.id))))
}

/// Compute Node Delete User: 200 without `DataServiceId`, as recorded. 404 `NodeUserNotFound`.
pub async fn delete_user(app: &App, _ctx: &Ctx, pool_id: &str, node_id: &str, user: &str) -> ApiResult<Reply> {
    let n = load(app, pool_id, node_id).await?;
    run(app, &n, NodeOp::DeleteUser(user.to_string())).await?;
    Ok(Reply::empty(StatusCode::OK))
}

/// Compute Node Get Remote Login Settings: 409 `OperationNotValidOnNode`. The answer would
/// be the address and port of the node's SSH endpoint, and openbatch runs none: a node is a
/// process on the service's machine (reach its files through the file API). The Reason says
/// so plainly rather than naming an address nothing listens on.
pub async fn remote_login_settings(app: &App, _ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Reply> {
    load(app, pool_id, node_id).await?;
    Err(BatchError::conflict("OperationNotValidOnNode", "The specified operation is not valid on the node.").with(
        "Reason",
        "openbatch runs no SSH endpoint for compute nodes: a node is a process on the service's machine. Read and write its files through the file API.",
    ))
}

/// Compute Node Get Remote Desktop (up to 2024-02-01.19.0): for Cloud Services pools only;
/// openbatch nodes are Linux nodes of virtual machine pools, so it answers as the service
/// does for those: 409 `OperationNotValidOnNode` (Reason: only on pools created with
/// cloudServiceConfiguration).
pub async fn remote_desktop(app: &App, _ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Reply> {
    load(app, pool_id, node_id).await?;
    Err(cloud_service_only("rdp"))
}

/// The node's view of its pool's VM extensions (NodeVMExtension, canonical shape).
async fn extensions(app: &App, pool_id: &str, node_id: &str) -> ApiResult<Vec<(String, Value)>> {
    let n = load(app, pool_id, node_id).await?;
    let pool = app.store.get::<Pool>("", &n.pool_id).await?;
    let exts = pool.and_then(|p| p.spec.virtual_machine_configuration).and_then(|v| v.extensions).unwrap_or_default();
    Ok(exts
        .iter()
        .map(|e| (e.get("name").and_then(Value::as_str).unwrap_or_default().to_string(), node_extension(e, &n.allocation_time)))
        .collect())
}

/// Compute Node Extension List (2021-06-01.14.0+): one NodeVMExtension per extension of the
/// pool's `virtualMachineConfiguration.extensions`, each `provisioningState: Failed` with the
/// reason in its instance view (openbatch installs no VM extensions); `maxresults` paging,
/// `$select`.
pub async fn list_extensions(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str) -> ApiResult<Reply> {
    let (max, after) = super::page_params(ctx)?;
    let all = extensions(app, pool_id, node_id).await?;
    let start = after.as_ref().and_then(|a| all.iter().position(|(name, _)| name == a).map(|i| i + 1)).unwrap_or(0);
    let page: Vec<&(String, Value)> = all.iter().skip(start).take(max as usize).collect();
    let last = if start + page.len() < all.len() { page.last().map(|(n, _)| n.clone()) } else { None };
    let items = page.into_iter().map(|(_, v)| ctx.view("NodeVMExtension", v.clone())).collect();
    Ok(super::list_reply(ctx, "extensions", items, last.as_deref()))
}

/// Compute Node Extension Get (2021-06-01.14.0+): 404 `ResourceNotFound` for a name the
/// pool's extensions do not have.
pub async fn get_extension(app: &App, ctx: &Ctx, pool_id: &str, node_id: &str, name: &str) -> ApiResult<Reply> {
    let found = extensions(app, pool_id, node_id).await?.into_iter().find(|(n, _)| n == name);
    let Some((_, mut v)) = found else {
        return Err(BatchError::new(StatusCode::NOT_FOUND, "ResourceNotFound", "The specified resource does not exist.")
            .with("ExtensionName", name));
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("odata.metadata".into(), Value::String(format!("{}/$metadata#extensions/@Element", ctx.base)));
    }
    Ok(Reply::json(ctx.view("NodeVMExtension", v)))
}
