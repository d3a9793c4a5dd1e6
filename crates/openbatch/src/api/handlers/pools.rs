//! Pool operations: Add, List, Get, Exists (HEAD), Delete, Patch, Resize.

use super::{accepted, check_id};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::{App, Ctx};
use crate::model::pool::{AllocationState, Pool, PoolPatch, PoolResize, PoolSpec, PoolState, PoolStatus, PoolUpdateProperties};
use crate::model::time::{etag_for, format_timestamp, parse_duration, Clock};
use crate::scheduler::reactor::Event;
use crate::storage::resource_files::AutoStorage;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// The pool's URL under `base`.
pub fn url(base: &str, id: &str) -> String {
    format!("{base}/pools/{id}")
}

/// The wire shape of a pool (2022-10-01.16.0).
pub fn render(base: &str, p: &Pool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(p.spec.id.clone()));
    m.insert("url".into(), Value::String(url(base, &p.spec.id)));
    m.insert("eTag".into(), Value::String(etag_for(&p.last_modified)));
    m.insert("lastModified".into(), Value::String(format_timestamp(&p.last_modified)));
    m.insert("creationTime".into(), Value::String(format_timestamp(&p.creation_time)));
    let mut status = to_map(&p.status);
    for private in PoolStatus::PRIVATE {
        status.remove(*private);
    }
    m.extend(status);
    for (k, v) in to_map(&p.spec) {
        m.entry(k).or_insert(v);
    }
    // Once the pool has nodes, the mode they talk to the service in: the target mode, and
    // `classic` for `default` (as the service resolved it when the property came, 2022-10-01.16.0).
    if p.status.current_dedicated_nodes + p.status.current_low_priority_nodes > 0 {
        let mode = match p.spec.target_node_communication_mode.as_deref() {
            Some(m) if !m.eq_ignore_ascii_case("default") => m.to_string(),
            _ => "classic".to_string(),
        };
        m.insert("currentNodeCommunicationMode".into(), Value::String(mode));
    }
    // Secrets are kept for the nodes but never shown: user passwords, SSH private keys and
    // the keys and passwords of mounted file systems.
    if let Some(Value::Array(mounts)) = m.get_mut("mountConfiguration") {
        for mount in mounts.iter_mut().filter_map(Value::as_object_mut) {
            for cfg in mount.values_mut().filter_map(Value::as_object_mut) {
                for secret in ["accountKey", "sasKey", "password"] {
                    cfg.remove(secret);
                }
            }
        }
    }
    if let Some(Value::Array(accounts)) = m.get_mut("userAccounts") {
        for a in accounts.iter_mut().filter_map(Value::as_object_mut) {
            a.remove("password");
            if let Some(Value::Object(linux)) = a.get_mut("linuxUserConfiguration") {
                linux.remove("sshPrivateKey");
            }
        }
    }
    m
}

/// The wire shape of a pool with its statistics (PoolStatistics as `stats`, zero before a
/// node was counted) when `with_stats` (`$expand=stats`).
fn render_with(base: &str, p: &Pool, with_stats: bool) -> Map<String, Value> {
    let mut m = render(base, p);
    if with_stats {
        let empty = crate::model::stats::PoolStats::new(p.creation_time);
        let stats_url = super::stats::url(&url(base, &p.spec.id));
        m.insert("stats".into(), super::stats::pool(stats_url, p.stats.as_ref().unwrap_or(&empty)));
    }
    m
}

/// Opens the transaction of a change to pool `id` and reads the pool in it: 404
/// `PoolNotFound`, 412 when the request's conditions do not hold, 409 `PoolBeingDeleted`.
pub async fn load_for_change(app: &App, ctx: &Ctx, id: &str) -> ApiResult<(crate::store::Tx, Pool)> {
    let mut tx = app.store.begin().await?;
    let p: Pool = tx.get("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Pool))?;
    ctx.precondition(&p.last_modified, false)?;
    if p.status.state == PoolState::Deleting {
        return Err(BatchError::being_deleted(ResourceKind::Pool));
    }
    Ok((tx, p))
}

async fn load(app: &App, id: &str) -> ApiResult<Pool> {
    app.store.get::<Pool>("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Pool))
}

/// Checks a pool specification (Pool Add, or a job's auto pool).
pub fn check_spec(spec: &PoolSpec, auto: Option<&AutoStorage>) -> ApiResult<()> {
    check_id(&spec.id)?;
    if spec.cloud_service_configuration.is_none() && spec.virtual_machine_configuration.is_none() {
        return Err(BatchError::missing_property("virtualMachineConfiguration"));
    }
    if spec.cloud_service_configuration.is_some() && spec.virtual_machine_configuration.is_some() {
        return Err(BatchError::invalid_property(
            "cloudServiceConfiguration",
            "",
            "A pool has either cloudServiceConfiguration or virtualMachineConfiguration, not both.",
        ));
    }
    for (name, v) in [("targetDedicatedNodes", spec.target_dedicated_nodes), ("targetLowPriorityNodes", spec.target_low_priority_nodes)] {
        if v.is_some_and(|n| n < 0) {
            return Err(BatchError::invalid_property(name, v.unwrap_or(0).to_string(), "The target node count cannot be negative."));
        }
    }
    if let Some(n) = spec.task_slots_per_node {
        if !(1..=256).contains(&n) {
            return Err(BatchError::invalid_property("taskSlotsPerNode", n.to_string(), "taskSlotsPerNode must be from 1 to 256."));
        }
    }
    super::autoscale::check_settings(spec)?;
    check_resize_timeout(spec.resize_timeout.as_deref())?;
    if let Some(st) = &spec.start_task {
        check_start_task(st, auto)?;
    }
    if let Err((name, value, reason)) = spec.check_environment() {
        return Err(BatchError::invalid_property(name, value, reason));
    }
    Ok(())
}

/// Checks a `resizeTimeout` (Pool Add, Resize, Remove Nodes): an ISO 8601 duration of at
/// least 5 minutes, as the API documents; else 400 `InvalidPropertyValue`.
pub fn check_resize_timeout(t: Option<&str>) -> ApiResult<()> {
    let Some(t) = t else { return Ok(()) };
    match parse_duration(t) {
        None => Err(BatchError::invalid_property("resizeTimeout", t, "Not an ISO 8601 duration.")),
        Some(d) if d.0.is_some_and(|d| d < std::time::Duration::from_secs(300)) => {
            Err(BatchError::invalid_property("resizeTimeout", t, "The resize timeout must be at least 5 minutes."))
        }
        Some(_) => Ok(()),
    }
}

fn check_start_task(st: &crate::model::common::StartTask, auto: Option<&AutoStorage>) -> ApiResult<()> {
    if st.command_line.trim().is_empty() {
        return Err(BatchError::invalid_property("startTask.commandLine", "", "The command line cannot be empty."));
    }
    super::check_resource_files("startTask.resourceFiles", st.resource_files.as_deref(), auto)?;
    if st.container_settings.is_some() {
        return Err(BatchError::invalid_property("startTask.containerSettings", "", "openbatch does not support container tasks yet."));
    }
    super::check_environment(st.environment_settings.as_deref())
}

/// Pool Add: 201 with `Location`; 409 `PoolExists` when the id is taken.
pub async fn add(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Reply> {
    let mut spec: PoolSpec = ctx.parse("PoolAddParameter", body)?;
    super::autoscale::check_no_targets(&spec)?;
    check_spec(&spec, ctx.auto_storage.as_ref())?;
    super::applications::check_references(app, "applicationPackageReferences", spec.application_package_references.as_deref()).await?;
    spec.normalize();
    let now = Clock::now();
    let pool = Pool::new(spec, now);
    let mut tx = app.store.begin().await?;
    if tx.exists::<Pool>("", &pool.spec.id).await? {
        return Err(BatchError::exists(ResourceKind::Pool));
    }
    super::certificates::check_references(&mut tx, "certificateReferences", pool.spec.certificate_references.as_deref()).await?;
    tx.put(&pool).await?;
    tx.commit().await?;
    app.driver.notify(Event::PoolChanged(pool.spec.id.clone()));
    Ok(Reply::created(&url(&ctx.base, &pool.spec.id), &now))
}

/// Pool List, with each pool's statistics for `$expand=stats`.
pub async fn list(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    let with_stats = super::stats::wanted(ctx);
    let render = move |base: &str, p: &Pool| render_with(base, p, with_stats);
    super::list_records::<Pool>(app, ctx, "", crate::odata::ListKind::Pools, "pools", "CloudPool", render).await
}

/// Pool Get, with the pool's statistics for `$expand=stats`; 404 `PoolNotFound`.
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let p = load(app, id).await?;
    ctx.precondition(&p.last_modified, true)?;
    let m = render_with(&ctx.base, &p, super::stats::wanted(ctx));
    let body = entity(Some(format!("{}/$metadata#pools/@Element", ctx.base)), None, m);
    Ok(Reply::json(ctx.view("CloudPool", body)).etag(&p.last_modified))
}

/// Pool Exists (HEAD): 200 with ETag, 404 without a body.
pub async fn exists(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let p = load(app, id).await?;
    ctx.precondition(&p.last_modified, true)?;
    Ok(Reply::empty(StatusCode::OK).etag(&p.last_modified))
}

/// Pool Delete: 202; the pool is `deleting` until its nodes are gone. 409
/// `PoolBeingDeleted` when already deleting.
pub async fn delete(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let (mut tx, mut p) = load_for_change(app, ctx, id).await?;
    let now = Clock::now();
    p.status.state = PoolState::Deleting;
    p.status.state_transition_time = now;
    p.last_modified = now;
    tx.put(&p).await?;
    tx.commit().await?;
    app.driver.notify(Event::PoolChanged(p.spec.id.clone()));
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Pool Patch: replaces the properties given (start task, certificate and application
/// package references, metadata, communication mode; from 2024-07-01.20.0 also the pool's
/// shape: `vmSize`, `virtualMachineConfiguration`, task slots and scheduling policy, network,
/// mounts, user accounts, upgrade policy, resource tags and display name); 200. The shape
/// changes only while the pool is empty: 409 `OperationInvalidForCurrentState` when it has
/// compute nodes or is resizing. The patched pool is checked as Pool Add checks a new one.
pub async fn patch(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let patch: PoolPatch = ctx.parse("PoolPatchParameter", body)?;
    let (mut tx, p) = load_for_change(app, ctx, id).await?;
    if let Some(shape) = patch.shape_property() {
        let empty = p.status.current_dedicated_nodes == 0 && p.status.current_low_priority_nodes == 0;
        if !empty || p.status.allocation_state != AllocationState::Steady {
            return Err(BatchError::conflict(
                "OperationInvalidForCurrentState",
                format!("The pool's {shape} can be updated only when the pool is empty: resize it to 0 dedicated and 0 low-priority nodes and wait for a steady allocation state first."),
            ));
        }
    }
    if patch.certificate_references.is_some() {
        super::certificates::check_references(&mut tx, "certificateReferences", patch.certificate_references.as_deref()).await?;
    }
    let mut spec = p.spec.clone();
    patch.apply(&mut spec);
    let pool_url = url(&ctx.base, &p.spec.id);
    let now = save_spec(app, ctx, (tx, p), spec, false).await?;
    Ok(Reply::updated(StatusCode::OK, &pool_url, &now))
}

/// Stores a pool's changed specification (Patch, Update Properties) in the change's
/// transaction: checked as Pool Add checks one (with its certificate references when
/// `check_certificates`, and its application package references), normalized, committed, and
/// the scheduler told. Returns the new last-modified time.
async fn save_spec(
    app: &App,
    ctx: &Ctx,
    (mut tx, mut p): (crate::store::Tx, Pool),
    mut spec: PoolSpec,
    check_certificates: bool,
) -> ApiResult<crate::model::time::Timestamp> {
    check_spec(&spec, ctx.auto_storage.as_ref())?;
    if check_certificates {
        super::certificates::check_references(&mut tx, "certificateReferences", spec.certificate_references.as_deref()).await?;
    }
    super::applications::check_references(app, "applicationPackageReferences", spec.application_package_references.as_deref()).await?;
    spec.normalize();
    p.spec = spec;
    let now = Clock::now();
    p.last_modified = now;
    tx.put(&p).await?;
    tx.commit().await?;
    app.driver.notify(Event::PoolChanged(p.spec.id.clone()));
    Ok(now)
}

/// Pool Resize: 202; 409 `PoolBeingResized` unless the allocation state is `steady`, 409
/// `OperationInvalidForCurrentState` for a pool with autoscale enabled (the API documents a
/// 409 without naming its code).
pub async fn resize(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let r: PoolResize = ctx.parse("PoolResizeParameter", body)?;
    for (name, v) in [("targetDedicatedNodes", r.target_dedicated_nodes), ("targetLowPriorityNodes", r.target_low_priority_nodes)] {
        if v.is_some_and(|n| n < 0) {
            return Err(BatchError::invalid_property(name, v.unwrap_or(0).to_string(), "The target node count cannot be negative."));
        }
    }
    check_resize_timeout(r.resize_timeout.as_deref())?;
    let (mut tx, mut p) = load_for_change(app, ctx, id).await?;
    if p.spec.enable_auto_scale == Some(true) {
        // "You cannot resize Pools which are configured for automatic scaling" (Pool_Resize).
        return Err(BatchError::conflict(
            "OperationInvalidForCurrentState",
            "The pool has autoscale enabled: its formula sets its size. Disable autoscale to resize it.",
        ));
    }
    if p.status.allocation_state != AllocationState::Steady {
        return Err(BatchError::conflict("PoolBeingResized", "The specified pool is being resized."));
    }
    let now = Clock::now();
    if let Some(t) = r.resize_timeout {
        p.spec.resize_timeout = Some(t);
    }
    p.resize_to(r.target_dedicated_nodes.unwrap_or(0), r.target_low_priority_nodes.unwrap_or(0), now, r.node_deallocation_option);
    p.last_modified = now;
    tx.put(&p).await?;
    tx.commit().await?;
    app.driver.notify(Event::PoolChanged(p.spec.id.clone()));
    Ok(accepted(&format!("{}/resize", url(&ctx.base, &p.spec.id)), &now))
}

/// Pool Update Properties: replaces every updatable property (start task, certificate and
/// application package references, metadata, communication mode: what the body leaves out
/// is removed); 204. 400 `MissingRequiredProperty` without `certificateReferences`,
/// `applicationPackageReferences` or `metadata`; the pool is then checked as Pool Add checks
/// a new one. New nodes get the new start task; running nodes keep theirs until rebooted.
pub async fn update_properties(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let update: PoolUpdateProperties = ctx.parse("PoolUpdatePropertiesParameter", body)?;
    if let Some(name) = update.missing() {
        return Err(BatchError::missing_property(name));
    }
    let (tx, p) = load_for_change(app, ctx, id).await?;
    let mut spec = p.spec.clone();
    update.apply(&mut spec);
    let action_url = format!("{}/updateproperties", url(&ctx.base, &p.spec.id));
    let now = save_spec(app, ctx, (tx, p), spec, true).await?;
    Ok(Reply::updated(StatusCode::NO_CONTENT, &action_url, &now))
}

/// Pool Upgrade OS (api-versions up to 2018-08-01.7.0): upgrades of Cloud Services pools'
/// operating system, which the service removed in 2018-12-01.8.0. openbatch pools are never
/// Cloud Services pools, so the answer is always a 409 that says so (404 `PoolNotFound` first).
pub async fn upgrade_os(app: &App, id: &str) -> ApiResult<Reply> {
    load(app, id).await?;
    Err(BatchError::conflict(
        "OperationInvalidForCurrentState",
        "Upgrade OS applies only to cloudServiceConfiguration pools; openbatch runs Linux virtual machine pools and has no operating system upgrades.",
    ))
}
