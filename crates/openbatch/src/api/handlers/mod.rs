//! Operation handlers, one module per resource, and what they share: id validation, list
//! paging (`maxresults`, `$skiptoken`, `odata.nextLink`), `$select`, and the rendering of
//! canonical resources to their wire shape.

mod account;
pub mod applications;
mod autoscale;
pub mod certificates;
pub mod clock;
mod files;
mod job_schedules;
mod jobs;
mod node_logs;
mod node_ops;
mod nodes;
pub mod pool_resize;
mod pools;
mod stats;
mod tasks;

use super::error::{ApiResult, BatchError};
use super::reply::Reply;
use super::router::Operation;
use super::{App, Ctx};
use crate::storage::resource_files::AutoStorage;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// Runs one operation.
pub async fn handle(app: &App, op: Operation, ctx: &Ctx, body: &[u8]) -> ApiResult<Reply> {
    let (method, template) = op.template();
    if !crate::versions::operation_exists(method, template, ctx.version) {
        // As the service answers for a path that names nothing at this api-version.
        return Err(BatchError::unknown_path(&ctx.path));
    }
    reject_unsupported_queries(ctx)?;
    match op {
        Operation::ListSupportedImages => account::list_supported_images(ctx),
        Operation::ListNodeAgentSkus => account::list_node_agent_skus(ctx),
        Operation::ApplicationList => applications::list(app, ctx).await,
        Operation::ApplicationGet(id) => applications::get(app, ctx, &id).await,
        Operation::PoolUpgradeOs(id) => pools::upgrade_os(app, &id).await,
        Operation::ListPoolNodeCounts => account::list_pool_node_counts(app, ctx).await,
        Operation::LifetimeJobStats => account::lifetime_job_stats(app, ctx).await,
        Operation::LifetimePoolStats => account::lifetime_pool_stats(app, ctx).await,
        Operation::PoolListUsageMetrics => account::list_usage_metrics(app, ctx).await,
        Operation::PoolAdd => pools::add(app, ctx, body).await,
        Operation::PoolList => pools::list(app, ctx).await,
        Operation::PoolGet(id) => pools::get(app, ctx, &id).await,
        Operation::PoolExists(id) => pools::exists(app, ctx, &id).await,
        Operation::PoolDelete(id) => pools::delete(app, ctx, &id).await,
        Operation::PoolPatch(id) => pools::patch(app, ctx, &id, body).await,
        Operation::PoolResize(id) => pools::resize(app, ctx, &id, body).await,
        Operation::PoolStopResize(id) => pool_resize::stop_resize(app, ctx, &id).await,
        Operation::PoolRemoveNodes(id) => pool_resize::remove_nodes(app, ctx, &id, body).await,
        Operation::PoolUpdateProperties(id) => pools::update_properties(app, ctx, &id, body).await,
        Operation::PoolEnableAutoScale(id) => autoscale::enable(app, ctx, &id, body).await,
        Operation::PoolDisableAutoScale(id) => autoscale::disable(app, ctx, &id).await,
        Operation::PoolEvaluateAutoScale(id) => autoscale::evaluate(app, ctx, &id, body).await,
        Operation::NodeList(pool) => nodes::list(app, ctx, &pool).await,
        Operation::NodeGet(pool, node) => nodes::get(app, ctx, &pool, &node).await,
        Operation::NodeDisableScheduling(pool, node) => nodes::disable_scheduling(app, ctx, &pool, &node, body).await,
        Operation::NodeEnableScheduling(pool, node) => nodes::enable_scheduling(app, ctx, &pool, &node).await,
        Operation::NodeUploadBatchServiceLogs(pool, node) => node_logs::upload(app, ctx, &pool, &node, body).await,
        Operation::NodeReboot(pool, node) => node_ops::reboot(app, ctx, &pool, &node, body).await,
        Operation::NodeReimage(pool, node) => node_ops::reimage(app, ctx, &pool, &node, body).await,
        Operation::NodeAddUser(pool, node) => node_ops::add_user(app, ctx, &pool, &node, body).await,
        Operation::NodeUpdateUser(pool, node, user) => node_ops::update_user(app, ctx, &pool, &node, &user, body).await,
        Operation::NodeDeleteUser(pool, node, user) => node_ops::delete_user(app, ctx, &pool, &node, &user).await,
        Operation::NodeRemoteLoginSettings(pool, node) => node_ops::remote_login_settings(app, ctx, &pool, &node).await,
        Operation::NodeRemoteDesktop(pool, node) => node_ops::remote_desktop(app, ctx, &pool, &node).await,
        Operation::NodeExtensionList(pool, node) => node_ops::list_extensions(app, ctx, &pool, &node).await,
        Operation::NodeExtensionGet(pool, node, name) => node_ops::get_extension(app, ctx, &pool, &node, &name).await,
        Operation::FileListFromNode(pool, node) => files::list_from_node(app, ctx, &pool, &node).await,
        Operation::FileFromNode { pool, node, path, method } => files::from_node(app, ctx, &pool, &node, &path, method).await,
        Operation::JobAdd => jobs::add(app, ctx, body).await,
        Operation::JobList => jobs::list(app, ctx).await,
        Operation::JobGet(id) => jobs::get(app, ctx, &id).await,
        Operation::JobPatch(id) => jobs::patch(app, ctx, &id, body).await,
        Operation::JobUpdate(id) => jobs::update(app, ctx, &id, body).await,
        Operation::JobDelete(id) => jobs::delete(app, ctx, &id).await,
        Operation::JobTerminate(id) => jobs::terminate(app, ctx, &id, body).await,
        Operation::JobTaskCounts(id) => jobs::task_counts(app, ctx, &id).await,
        Operation::JobDisable(id) => jobs::disable(app, ctx, &id, body).await,
        Operation::JobEnable(id) => jobs::enable(app, ctx, &id).await,
        Operation::JobPrepReleaseStatus(id) => jobs::prep_release_status(app, ctx, &id).await,
        Operation::JobScheduleAdd => job_schedules::add(app, ctx, body).await,
        Operation::JobScheduleList => job_schedules::list(app, ctx).await,
        Operation::JobScheduleGet(id) => job_schedules::get(app, ctx, &id).await,
        Operation::JobScheduleExists(id) => job_schedules::exists(app, ctx, &id).await,
        Operation::JobSchedulePatch(id) => job_schedules::patch(app, ctx, &id, body).await,
        Operation::JobScheduleUpdate(id) => job_schedules::update(app, ctx, &id, body).await,
        Operation::JobScheduleDelete(id) => job_schedules::delete(app, ctx, &id).await,
        Operation::JobScheduleDisable(id) => job_schedules::disable(app, ctx, &id).await,
        Operation::JobScheduleEnable(id) => job_schedules::enable(app, ctx, &id).await,
        Operation::JobScheduleTerminate(id) => job_schedules::terminate(app, ctx, &id).await,
        Operation::JobListFromJobSchedule(id) => job_schedules::list_jobs(app, ctx, &id).await,
        Operation::TaskAdd(job) => tasks::add(app, ctx, &job, body).await,
        Operation::TaskAddCollection(job) => tasks::add_collection(app, ctx, &job, body).await,
        Operation::TaskList(job) => tasks::list(app, ctx, &job).await,
        Operation::TaskGet(job, task) => tasks::get(app, ctx, &job, &task).await,
        Operation::TaskUpdate(job, task) => tasks::update(app, ctx, &job, &task, body).await,
        Operation::TaskDelete(job, task) => tasks::delete(app, ctx, &job, &task).await,
        Operation::TaskTerminate(job, task) => tasks::terminate(app, ctx, &job, &task).await,
        Operation::TaskReactivate(job, task) => tasks::reactivate(app, ctx, &job, &task).await,
        Operation::TaskListSubtasks(job, task) => tasks::list_subtasks(app, ctx, &job, &task).await,
        Operation::FileListFromTask(job, task) => files::list_from_task(app, ctx, &job, &task).await,
        Operation::FileFromTask { job, task, path, method } => files::from_task(app, ctx, &job, &task, &path, method).await,
        Operation::CertificateAdd => certificates::add(app, ctx, body).await,
        Operation::CertificateList => certificates::list(app, ctx).await,
        Operation::CertificateGet(k) => certificates::get(app, ctx, &k).await,
        Operation::CertificateDelete(k) => certificates::delete(app, &k).await,
        Operation::CertificateCancelDeletion(k) => certificates::cancel_deletion(app, ctx, &k).await,
    }
}

/// Checks the request options every operation takes: `$expand` (`stats`, `metadata`) and
/// `timeout` (whole seconds, at least 1; the service caps it at 30). `$filter` is checked by
/// the list that takes it ([`filter_for`]).
/// Errors: 400 `InvalidQueryParameterValue` naming the parameter.
fn reject_unsupported_queries(ctx: &Ctx) -> ApiResult<()> {
    if let Some(e) = ctx.q("$expand") {
        for item in e.split(',').map(str::trim) {
            if !["stats", "metadata"].contains(&item) {
                return Err(BatchError::invalid_query("$expand", e, "$expand takes stats and metadata"));
            }
        }
    }
    timeout(ctx)?;
    Ok(())
}

/// The request's processing limit: `timeout` seconds (default 30, at most 30).
pub fn timeout(ctx: &Ctx) -> ApiResult<std::time::Duration> {
    match ctx.q("timeout") {
        None => Ok(std::time::Duration::from_secs(30)),
        Some(t) => match t.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(std::time::Duration::from_secs(n.min(30))),
            _ => Err(BatchError::invalid_query("timeout", t, "timeout is a whole number of seconds, at least 1")),
        },
    }
}

/// An operation the scheduler carries out, guarded by the request's conditional headers: the
/// reactor checks them against the job or task in the batch that changes it (412
/// `ConditionNotMet`; 400 `InvalidHeaderValue` for a malformed date).
pub fn conditional(ctx: &Ctx, event: crate::scheduler::reactor::Event) -> ApiResult<crate::scheduler::reactor::Event> {
    Ok(crate::scheduler::reactor::Event::Conditional { cond: ctx.conditions()?, event: Box::new(event) })
}

/// Checks a Batch id: 1 to 64 letters, digits, hyphens and underscores.
/// Errors: 400 `InvalidPropertyValue` naming `id`.
pub fn check_id(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(BatchError::invalid_property("id", id, "An id must be 1 to 64 characters: letters, digits, hyphens and underscores."))
    }
}

/// Checks the resource files of a list property (`path`, e.g. `resourceFiles` or
/// `startTask.resourceFiles`) against the account's linked storage.
///
/// Errors: 400 `InvalidPropertyValue` naming the property (see
/// [`crate::storage::resource_files::check`]).
pub fn check_resource_files(path: &str, files: Option<&[serde_json::Value]>, auto: Option<&AutoStorage>) -> ApiResult<()> {
    crate::storage::resource_files::check_all(path, files, auto).map_err(|(p, v, why)| BatchError::invalid_property(&p, v, why))
}

/// Checks a task's `outputFiles` (filePattern, destination container URL, upload condition).
///
/// Errors: 400 `MissingRequiredProperty` or `InvalidPropertyValue` naming the property.
pub fn check_output_files(files: Option<&[serde_json::Value]>) -> ApiResult<()> {
    crate::storage::output_files::check_all(files).map_err(|(p, v, why)| {
        if v.is_empty() && why == crate::storage::output_files::REQUIRED {
            BatchError::missing_property(&p)
        } else {
            BatchError::invalid_property(&p, v, why)
        }
    })
}

/// Checks environment settings: every name non-empty and without `=`.
/// Errors: 400 `InvalidPropertyValue` naming `environmentSettings`.
pub fn check_environment(env: Option<&[crate::model::common::EnvironmentSetting]>) -> ApiResult<()> {
    for e in env.unwrap_or_default() {
        if e.name.is_empty() || e.name.contains('=') || e.name.contains('\0') {
            return Err(BatchError::invalid_property(
                "environmentSettings.name",
                e.name.clone(),
                "An environment variable name must be non-empty and contain no '=' or NUL.",
            ));
        }
    }
    Ok(())
}

/// `maxresults` (1 to 1000, default 1000) and the `$skiptoken` to continue after.
/// Errors: 400 `InvalidQueryParameterValue` for a bad `maxresults`.
pub fn page_params(ctx: &Ctx) -> ApiResult<(u32, Option<String>)> {
    page_params_or(ctx, 1000)
}

/// [`page_params`] for a list whose `maxresults` defaults to `default` (List Pool Node Counts:
/// 10).
pub fn page_params_or(ctx: &Ctx, default: u32) -> ApiResult<(u32, Option<String>)> {
    let max = match ctx.q("maxresults") {
        None => default,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(BatchError::invalid_query("maxresults", v, "maxresults must be an integer from 1 to 1000")),
        },
    };
    let after = ctx.q("$skiptoken").map(decode_token).transpose()?;
    Ok((max, after))
}

fn decode_token(t: &str) -> ApiResult<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| BatchError::invalid_query("$skiptoken", t, "The continuation token is not one this service issued"))
}

/// The request's `$filter`, parsed and checked against what the list allows.
/// Errors: 400 `InvalidQueryParameterValue` (`QueryParameterName: $filter`) pointing at the
/// offending part.
pub fn filter_for(ctx: &Ctx, kind: crate::odata::ListKind) -> ApiResult<Option<crate::odata::Filter>> {
    match ctx.q("$filter") {
        None => Ok(None),
        Some(f) if f.trim().is_empty() => Ok(None),
        Some(f) => crate::odata::parse_for(f, kind).map(Some).map_err(|e| e.to_batch_error(f)),
    }
}

/// Keeps the items a `$filter` admits (all when there is none), evaluated on their wire JSON.
pub fn apply_filter(filter: &Option<crate::odata::Filter>, items: Vec<Value>) -> Vec<Value> {
    match filter {
        None => items,
        Some(f) => items.into_iter().filter(|v| crate::odata::eval(f, v)).collect(),
    }
}

/// List of stored resources `R` under `parent` (a pool's nodes, a job's tasks, or top-level):
/// one page of `maxresults` after the `$skiptoken`, each rendered by `render` and shown as the
/// caller's api-version shows the API model `model`; `metadata` names the list in
/// `odata.metadata`.
///
/// With a `$filter`, the part the store can answer from its indexes (ids, states, results) is
/// pushed into the query and the whole filter is evaluated on each canonical resource; pages
/// are read until `maxresults` items match or the list ends.
pub async fn list_records<R: crate::store::Record>(
    app: &App,
    ctx: &Ctx,
    parent: &str,
    kind: crate::odata::ListKind,
    metadata: &str,
    model: &str,
    render: impl Fn(&str, &R) -> Map<String, Value>,
) -> ApiResult<Reply> {
    list_records_in(app, ctx, (parent, None), kind, metadata, model, render).await
}

/// Like [`list_records`], for the records under `parent` whose id starts with a prefix (the
/// jobs of a job schedule, `<scheduleId>:job-`), when one is given.
pub async fn list_records_in<R: crate::store::Record>(
    app: &App,
    ctx: &Ctx,
    (parent, prefix): (&str, Option<&str>),
    kind: crate::odata::ListKind,
    metadata: &str,
    model: &str,
    render: impl Fn(&str, &R) -> Map<String, Value>,
) -> ApiResult<Reply> {
    let (max, after) = page_params(ctx)?;
    let filter = filter_for(ctx, kind)?;
    let mut push = filter.as_ref().map(crate::odata::pushdown).unwrap_or_default();
    if let Some(prefix) = prefix {
        if !narrow_to_prefix(&mut push, prefix) {
            return Ok(list_reply(ctx, metadata, Vec::new(), None));
        }
    }
    let mut cursor = after;
    let mut items = Vec::new();
    let mut last = None;
    loop {
        let records = app.store.list_pushdown::<R>(parent, cursor.as_deref(), &push, max).await?;
        let exhausted = records.len() < max as usize;
        for r in &records {
            let canonical = Value::Object(render(&ctx.base, r));
            if filter.as_ref().is_none_or(|f| crate::odata::eval(f, &canonical)) {
                items.push(ctx.view(model, canonical));
                if items.len() == max as usize {
                    last = Some(r.id().to_string());
                    break;
                }
            }
        }
        if last.is_some() || exhausted {
            break;
        }
        cursor = records.last().map(|r| r.id().to_string());
    }
    Ok(list_reply(ctx, metadata, items, last.as_deref()))
}

/// Adds "the id starts with `prefix`" to a push-down (ASCII case ignored, as ids compare);
/// false when the filter's own prefix excludes every such id.
fn narrow_to_prefix(push: &mut crate::odata::Pushdown, prefix: &str) -> bool {
    let starts = |s: &str, p: &str| s.len() >= p.len() && s.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    let ids = push.ids.get_or_insert_with(Default::default);
    match ids.prefix.clone() {
        Some(p) if starts(&p, prefix) => true,
        Some(p) if !starts(prefix, &p) => false,
        _ => {
            ids.prefix = Some(prefix.to_string());
            true
        }
    }
}

/// A list answer: `{odata.metadata, value, odata.nextLink?}`. `last_id` is the id of the last
/// item when the page is full (more may follow).
pub fn list_reply(ctx: &Ctx, metadata: &str, items: Vec<Value>, last_id: Option<&str>) -> Reply {
    use base64::Engine;
    let mut out = Map::new();
    out.insert("odata.metadata".into(), Value::String(format!("{}/$metadata#{metadata}", ctx.base)));
    out.insert("value".into(), Value::Array(items));
    if let Some(last) = last_id {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes());
        let kept: Vec<&str> = ctx
            .raw_query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken="))
            .collect();
        let link = format!("{}{}?{}&$skiptoken={}", ctx.base, ctx.path, kept.join("&"), token);
        out.insert("odata.nextLink".into(), Value::String(link));
    }
    Reply::json(Value::Object(out))
}

/// Applies `$select`: comma-separated property paths, top-level (`id,state`) or nested with
/// `/` (`executionInfo/exitCode`); `odata.metadata` is always kept.
pub fn select(ctx: &Ctx, v: Value) -> Value {
    let Some(sel) = ctx.q("$select") else { return v };
    let wanted: Vec<Vec<&str>> = sel.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|p| p.split('/').collect()).collect();
    select_paths(v, &wanted)
}

fn select_paths(v: Value, wanted: &[Vec<&str>]) -> Value {
    let Value::Object(m) = v else { return v };
    Value::Object(
        m.into_iter()
            .filter_map(|(k, val)| {
                if k == "odata.metadata" || wanted.iter().any(|p| p.len() == 1 && p[0] == k) {
                    return Some((k, val));
                }
                let sub: Vec<Vec<&str>> = wanted.iter().filter(|p| p.len() > 1 && p[0] == k).map(|p| p[1..].to_vec()).collect();
                if sub.is_empty() {
                    None
                } else {
                    Some((k, select_paths(val, &sub)))
                }
            })
            .collect(),
    )
}

/// A 202/200 answer without a body, with `DataServiceId` and the new ETag.
pub fn accepted(url: &str, t: &crate::model::time::Timestamp) -> Reply {
    Reply::updated(StatusCode::ACCEPTED, url, t)
}
