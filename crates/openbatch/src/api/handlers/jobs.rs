//! Job operations: Add, List, Get, Patch, Update (PUT), Delete, Terminate, Get Task Counts.

use super::{accepted, check_id, conditional};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::{App, Ctx};
use crate::model::common::JobConstraints;
use crate::model::job::{
    Job, JobDisable, JobPatch, JobSpec, JobState, JobTerminate, JobUpdate, OnAllTasksComplete, PoolInformation, PoolLifetimeOption,
};
use crate::model::job_manager::JobManagerTask;
use crate::model::time::{etag_for, format_timestamp, parse_duration, Clock};
use crate::scheduler::reactor::{AddedTask, Event};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// The job's URL under `base`.
pub fn url(base: &str, id: &str) -> String {
    format!("{base}/jobs/{id}")
}

/// The wire shape of a job (2022-10-01.16.0).
pub fn render(base: &str, j: &Job) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(j.spec.id.clone()));
    m.insert("url".into(), Value::String(url(base, &j.spec.id)));
    m.insert("eTag".into(), Value::String(etag_for(&j.last_modified)));
    m.insert("lastModified".into(), Value::String(format_timestamp(&j.last_modified)));
    m.insert("creationTime".into(), Value::String(format_timestamp(&j.creation_time)));
    let mut status = to_map(&j.status);
    let exec = status.remove("executionInfo");
    m.extend(status);
    for (k, v) in to_map(&j.spec) {
        m.entry(k).or_insert(v);
    }
    if let Some(e) = exec {
        m.insert("executionInfo".into(), e);
    }
    m
}

/// The wire shape of a job with its statistics (JobStatistics as `stats`, zero before a task
/// attempt ended) when `with_stats` (`$expand=stats`).
fn render_with(base: &str, j: &Job, with_stats: bool) -> Map<String, Value> {
    let mut m = render(base, j);
    if with_stats {
        let empty = crate::model::stats::JobStats::new(j.creation_time);
        let stats_url = super::stats::url(&url(base, &j.spec.id));
        m.insert("stats".into(), super::stats::job(stats_url, j.stats.as_ref().unwrap_or(&empty)));
    }
    m
}

/// Loads a job; 404 `JobNotFound`.
pub async fn load(app: &App, id: &str) -> ApiResult<Job> {
    app.store.get::<Job>("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Job))
}

fn check_pool_info(p: &PoolInformation, owner: SpecOwner) -> ApiResult<()> {
    match (&p.pool_id, &p.auto_pool_specification) {
        (None, None) => Err(BatchError::missing_property("poolInfo.poolId")),
        (Some(_), Some(_)) => Err(BatchError::invalid_property("poolInfo", "", "Give either poolId or autoPoolSpecification, not both.")),
        (None, Some(auto)) => {
            if auto.pool_lifetime_option == PoolLifetimeOption::JobSchedule && owner == SpecOwner::Job {
                return Err(BatchError::invalid_property(
                    "poolInfo.autoPoolSpecification.poolLifetimeOption",
                    "jobschedule",
                    "A job that no job schedule created takes poolLifetimeOption job.",
                ));
            }
            if auto.auto_pool_id_prefix.as_ref().is_some_and(|p| p.len() > 20 || check_id(p).is_err()) {
                return Err(BatchError::invalid_property(
                    "poolInfo.autoPoolSpecification.autoPoolIdPrefix",
                    auto.auto_pool_id_prefix.clone().unwrap_or_default(),
                    "A prefix is up to 20 letters, digits, hyphens and underscores.",
                ));
            }
            if auto.pool.is_none() {
                return Err(BatchError::missing_property("poolInfo.autoPoolSpecification.pool"));
            }
            Ok(())
        }
        (Some(id), None) => check_id(id).map_err(|_| BatchError::invalid_property("poolInfo.poolId", id.clone(), "Not a valid pool id.")),
    }
}

/// The pool an auto pool specification describes, with a new id (`<prefix>_<GUID>` or a GUID,
/// upper case), checked and normalized; the job's specification gets the normalized pool back
/// (the service echoes the defaults it filled in) and `keepAlive` false unless set.
fn auto_pool(ctx: &Ctx, info: &mut PoolInformation) -> ApiResult<Option<crate::model::pool::PoolSpec>> {
    let Some(auto) = info.auto_pool_specification.as_mut() else {
        return Ok(None);
    };
    let id = auto.new_pool_id();
    let mut value = auto.pool.clone().unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.insert("id".into(), Value::String(id));
    }
    let mut spec: crate::model::pool::PoolSpec = ctx.parse_value("PoolAddParameter", value)?;
    super::autoscale::check_no_targets(&spec)?;
    super::pools::check_spec(&spec, ctx.auto_storage.as_ref())?;
    spec.normalize();
    let mut echo = crate::api::reply::to_map(&spec);
    echo.remove("id");
    auto.pool = Some(Value::Object(echo));
    auto.keep_alive.get_or_insert(false);
    Ok(Some(spec))
}

/// Checks a job manager, preparation or release task: a command line, and nothing openbatch
/// cannot run.
fn check_side_task(
    ctx: &Ctx,
    name: &str,
    command_line: &str,
    resource_files: Option<&[Value]>,
    container: bool,
    env: Option<&[crate::model::common::EnvironmentSetting]>,
) -> ApiResult<()> {
    if command_line.trim().is_empty() {
        return Err(BatchError::invalid_property(&format!("{name}.commandLine"), "", "The command line cannot be empty."));
    }
    super::check_resource_files(&format!("{name}.resourceFiles"), resource_files, ctx.auto_storage.as_ref())?;
    if container {
        return Err(BatchError::invalid_property(
            &format!("{name}.containerSettings"),
            "",
            "openbatch does not support container tasks yet.",
        ));
    }
    super::check_environment(env)
}

/// Checks a job manager task: a Batch id, a command line, at least one slot, ISO 8601
/// constraints, and nothing openbatch cannot run (containers, named pool users); its files and
/// environment as for a task. (`id`, `commandLine` missing: 400 `MissingRequiredProperty`
/// from the request parser.)
///
/// Errors: 400 `InvalidPropertyValue` naming the property below `jobManagerTask`.
fn check_job_manager(ctx: &Ctx, m: &JobManagerTask) -> ApiResult<()> {
    if check_id(&m.id).is_err() {
        return Err(BatchError::invalid_property(
            "jobManagerTask.id",
            m.id.clone(),
            "An id must be 1 to 64 characters: letters, digits, hyphens and underscores.",
        ));
    }
    if let Some(n) = m.required_slots.filter(|n| *n < 1) {
        return Err(BatchError::invalid_property("jobManagerTask.requiredSlots", n.to_string(), "requiredSlots must be at least 1."));
    }
    super::tasks::check_constraints("jobManagerTask.constraints", m.constraints.as_ref())?;
    if m.user_identity.as_ref().is_some_and(|u| u.username.is_some()) {
        return Err(BatchError::invalid_property(
            "jobManagerTask.userIdentity.username",
            "",
            "openbatch does not support named pool users yet; the job was not added.",
        ));
    }
    check_side_task(
        ctx,
        "jobManagerTask",
        &m.command_line,
        m.resource_files.as_deref(),
        m.container_settings.is_some(),
        m.environment_settings.as_deref(),
    )?;
    crate::storage::output_files::check_all(m.output_files.as_deref()).map_err(|(p, v, why)| {
        let p = format!("jobManagerTask.{p}");
        if v.is_empty() && why == crate::storage::output_files::REQUIRED {
            BatchError::missing_property(&p)
        } else {
            BatchError::invalid_property(&p, v, why)
        }
    })
}

fn check_common(priority: Option<i32>, constraints: &Option<JobConstraints>, max_parallel: Option<i32>) -> ApiResult<()> {
    if let Some(p) = priority {
        if !(-1000..=1000).contains(&p) {
            return Err(BatchError::invalid_property("priority", p.to_string(), "priority must be from -1000 to 1000."));
        }
    }
    if let Some(n) = max_parallel {
        if n == 0 || n < -1 {
            return Err(BatchError::invalid_property(
                "maxParallelTasks",
                n.to_string(),
                "maxParallelTasks must be -1 (no limit) or at least 1.",
            ));
        }
    }
    if let Some(t) = constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_ref()) {
        if parse_duration(t).is_none() {
            return Err(BatchError::invalid_property("constraints.maxWallClockTime", t.clone(), "Not an ISO 8601 duration."));
        }
    }
    Ok(())
}

/// Who a job specification is for: a job a caller adds, or the jobs of a job schedule (whose
/// auto pool may live as long as the schedule, `poolLifetimeOption: jobschedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecOwner {
    Job,
    JobSchedule,
}

/// Checks a job's properties (Job Add's body, or a job schedule's `jobSpecification` with a
/// placeholder id), normalizes them with their defaults, and returns the auto pool a job of
/// it would get (checked and normalized; its description is echoed into the specification).
///
/// Errors: 400 `InvalidPropertyValue` / `MissingRequiredProperty` naming the property, 409
/// `InvalidApplicationPackageReferences`.
pub async fn prepare_spec(app: &App, ctx: &Ctx, spec: &mut JobSpec, owner: SpecOwner) -> ApiResult<Option<crate::model::pool::PoolSpec>> {
    check_pool_info(&spec.pool_info, owner)?;
    check_common(spec.priority, &spec.constraints, spec.max_parallel_tasks)?;
    if let Some(m) = &spec.job_manager_task {
        check_job_manager(ctx, m)?;
    }
    if let Some(p) = &spec.job_preparation_task {
        check_side_task(
            ctx,
            "jobPreparationTask",
            &p.command_line,
            p.resource_files.as_deref(),
            p.container_settings.is_some(),
            p.environment_settings.as_deref(),
        )?;
        if let Some(t) = p.constraints.as_ref().and_then(|c| c.max_wall_clock_time.as_ref()) {
            if parse_duration(t).is_none() {
                return Err(BatchError::invalid_property(
                    "jobPreparationTask.constraints.maxWallClockTime",
                    t.clone(),
                    "Not an ISO 8601 duration.",
                ));
            }
        }
    }
    if let Some(r) = &spec.job_release_task {
        check_side_task(
            ctx,
            "jobReleaseTask",
            &r.command_line,
            r.resource_files.as_deref(),
            r.container_settings.is_some(),
            r.environment_settings.as_deref(),
        )?;
        if let Some(t) = &r.max_wall_clock_time {
            if parse_duration(t).is_none() {
                return Err(BatchError::invalid_property("jobReleaseTask.maxWallClockTime", t.clone(), "Not an ISO 8601 duration."));
            }
        }
    }
    super::check_environment(spec.common_environment_settings.as_deref())?;
    if let Some(m) = &spec.job_manager_task {
        super::applications::check_references(
            app,
            "jobManagerTask.applicationPackageReferences",
            m.application_package_references.as_deref(),
        )
        .await?;
    }
    let auto = auto_pool(ctx, &mut spec.pool_info)?;
    spec.normalize();
    Ok(auto)
}

/// Job Add: 201; 409 `JobExists`.
pub async fn add(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Reply> {
    let mut spec: JobSpec = ctx.parse("JobAddParameter", body)?;
    check_id(&spec.id)?;
    let auto = prepare_spec(app, ctx, &mut spec, SpecOwner::Job).await?;
    let now = Clock::now();
    let pool_id = auto.as_ref().map(|p| p.id.clone()).or_else(|| spec.pool_info.pool_id.clone());
    let job = Job::new(spec, pool_id, now);
    let mut tx = app.store.begin().await?;
    if tx.exists::<Job>("", &job.spec.id).await? {
        return Err(BatchError::exists(ResourceKind::Job));
    }
    let auto_id = auto.as_ref().map(|p| p.id.clone());
    if let Some(spec) = auto {
        let refs = spec.certificate_references.as_deref();
        super::certificates::check_references(&mut tx, "poolInfo.autoPoolSpecification.pool.certificateReferences", refs).await?;
        tx.put(&crate::model::pool::Pool::new(spec, now)).await?;
    }
    tx.put(&job).await?;
    // The job manager task starts with the job: the service adds it as the job's first task.
    let manager = job.manager_task(now);
    if let Some(t) = &manager {
        tx.put(t).await?;
    }
    tx.commit().await?;
    if let Some(t) = manager {
        app.driver.notify(Event::TasksAdded { job_id: job.spec.id.clone(), tasks: vec![AddedTask::from(&t)] });
    }
    if let Some(id) = auto_id {
        app.driver.notify(Event::PoolChanged(id));
    }
    app.driver.notify(Event::JobChanged(job.spec.id.clone()));
    Ok(Reply::created(&url(&ctx.base, &job.spec.id), &now))
}

/// Job List, with each job's statistics for `$expand=stats`.
pub async fn list(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    list_under(app, ctx, crate::odata::ListKind::Jobs, None).await
}

/// Lists jobs (all, or those whose id starts with `prefix`: a job schedule's), as `kind`'s
/// `$filter` allows.
pub async fn list_under(app: &App, ctx: &Ctx, kind: crate::odata::ListKind, prefix: Option<&str>) -> ApiResult<Reply> {
    let with_stats = super::stats::wanted(ctx);
    let render = move |base: &str, j: &Job| render_with(base, j, with_stats);
    super::list_records_in::<Job>(app, ctx, ("", prefix), kind, "jobs", "CloudJob", render).await
}

/// Job Get, with the job's statistics for `$expand=stats`; 404 `JobNotFound`.
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let j = load(app, id).await?;
    ctx.precondition(&j.last_modified, true)?;
    let m = render_with(&ctx.base, &j, super::stats::wanted(ctx));
    let body = entity(Some(format!("{}/$metadata#jobs/@Element", ctx.base)), None, m);
    Ok(Reply::json(ctx.view("CloudJob", body)).etag(&j.last_modified))
}

/// Loads a job for a change inside `tx`; 409 when it is deleting or completed.
async fn load_for_update(ctx: &Ctx, tx: &mut crate::store::Tx, id: &str) -> ApiResult<Job> {
    let j: Job = tx.get("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Job))?;
    ctx.precondition(&j.last_modified, false)?;
    match j.status.state {
        JobState::Deleting => Err(BatchError::being_deleted(ResourceKind::Job)),
        JobState::Completed => Err(BatchError::conflict("JobCompleted", "The specified job is already in a completed state.")),
        _ => Ok(j),
    }
}

fn check_on_all_tasks_complete(j: &Job, new: Option<OnAllTasksComplete>) -> ApiResult<()> {
    if j.spec.on_all_tasks_complete == Some(OnAllTasksComplete::TerminateJob) && new == Some(OnAllTasksComplete::NoAction) {
        return Err(BatchError::invalid_property(
            "onAllTasksComplete",
            "noaction",
            "onAllTasksComplete cannot change from terminatejob back to noaction.",
        ));
    }
    Ok(())
}

/// Applies a new `poolInfo` from Job Patch or Update: another pool by id, or (for a job that
/// already has an auto pool) a new description of it, normalized; the existing auto pool
/// stays. 409 `OperationInvalidForCurrentState` for moving a job onto a new auto pool.
fn change_pool_info(ctx: &Ctx, j: &mut Job, mut info: PoolInformation) -> ApiResult<()> {
    check_pool_info(&info, SpecOwner::Job)?;
    if info.auto_pool_specification.is_some() {
        if j.spec.pool_info.auto_pool_specification.is_none() {
            return Err(BatchError::conflict(
                "OperationInvalidForCurrentState",
                "openbatch cannot move a job onto a new auto pool; give a poolId instead.",
            ));
        }
        auto_pool(ctx, &mut info)?;
    }
    j.spec.pool_info = info;
    Ok(())
}

async fn save(app: &App, ctx: &Ctx, mut tx: crate::store::Tx, mut j: Job) -> ApiResult<Reply> {
    let now = Clock::now();
    j.last_modified = now;
    if let Some(id) = &j.spec.pool_info.pool_id {
        j.status.execution_info.pool_id = Some(id.clone());
    }
    tx.put(&j).await?;
    tx.commit().await?;
    app.driver.notify(Event::JobChanged(j.spec.id.clone()));
    Ok(Reply::updated(StatusCode::OK, &url(&ctx.base, &j.spec.id), &now))
}

/// Job Patch: replaces the properties given; 200.
pub async fn patch(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: JobPatch = ctx.parse("JobPatchParameter", body)?;
    check_common(p.priority, &p.constraints, p.max_parallel_tasks)?;
    let mut tx = app.store.begin().await?;
    let mut j = load_for_update(ctx, &mut tx, id).await?;
    check_on_all_tasks_complete(&j, p.on_all_tasks_complete)?;
    if let Some(info) = p.pool_info {
        change_pool_info(ctx, &mut j, info)?;
    }
    if let Some(v) = p.priority {
        j.spec.priority = Some(v);
    }
    if let Some(v) = p.max_parallel_tasks {
        j.spec.max_parallel_tasks = Some(v);
    }
    if let Some(v) = p.allow_task_preemption {
        j.spec.allow_task_preemption = Some(v);
    }
    if let Some(v) = p.on_all_tasks_complete {
        j.spec.on_all_tasks_complete = Some(v);
    }
    if let Some(c) = p.constraints {
        j.spec.constraints = Some(c);
        j.spec.normalize();
    }
    if let Some(m) = p.metadata {
        j.spec.metadata = Some(m);
    }
    if let Some(n) = p.network_configuration {
        j.spec.network_configuration = Some(n);
    }
    save(app, ctx, tx, j).await
}

/// Job Update (PUT): replaces every updatable property, resetting those not given; 200.
pub async fn update(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let u: JobUpdate = ctx.parse("JobUpdateParameter", body)?;
    check_pool_info(&u.pool_info, SpecOwner::Job)?;
    check_common(u.priority, &u.constraints, u.max_parallel_tasks)?;
    let mut tx = app.store.begin().await?;
    let mut j = load_for_update(ctx, &mut tx, id).await?;
    check_on_all_tasks_complete(&j, Some(u.on_all_tasks_complete.unwrap_or(OnAllTasksComplete::NoAction)))?;
    change_pool_info(ctx, &mut j, u.pool_info)?;
    j.spec.priority = u.priority;
    j.spec.max_parallel_tasks = u.max_parallel_tasks;
    j.spec.allow_task_preemption = u.allow_task_preemption;
    j.spec.constraints = u.constraints;
    j.spec.metadata = u.metadata;
    j.spec.on_all_tasks_complete = u.on_all_tasks_complete;
    j.spec.normalize();
    save(app, ctx, tx, j).await
}

/// Job Delete: 202; running tasks are killed and every task goes with the job.
pub async fn delete(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let j = load(app, id).await?;
    let job_id = j.spec.id.clone();
    app.driver.call(conditional(ctx, Event::DeleteJob { job_id })?).await?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Job Terminate: 202; the job completes with `terminateReason` (default `UserTerminate`).
pub async fn terminate(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let t: JobTerminate = if body.is_empty() { JobTerminate::default() } else { ctx.parse("JobTerminateParameter", body)? };
    let j = load(app, id).await?;
    let job_id = j.spec.id.clone();
    let reason = t.terminate_reason.unwrap_or_else(|| "UserTerminate".into());
    app.driver.call(conditional(ctx, Event::TerminateJob { job_id: job_id.clone(), reason })?).await?;
    let j = load(app, &job_id).await?;
    Ok(accepted(&format!("{}/terminate", url(&ctx.base, &job_id)), &j.last_modified))
}

/// Job Get Task Counts: `{taskCounts, taskSlotCounts}` (preparing counts as running).
pub async fn task_counts(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let j = load(app, id).await?;
    let mut counts = [[0i64; 5]; 2];
    for (state, result, tasks, slots) in app.store.task_counts(&j.spec.id).await? {
        let idx = match state.as_str() {
            "active" => vec![0],
            "preparing" | "running" => vec![1],
            "completed" => vec![2, if result.as_deref() == Some("success") { 3 } else { 4 }],
            _ => vec![],
        };
        for i in idx {
            counts[0][i] += tasks;
            counts[1][i] += slots;
        }
    }
    let obj = |c: [i64; 5]| json!({"active": c[0], "running": c[1], "completed": c[2], "succeeded": c[3], "failed": c[4]});
    let result = json!({"taskCounts": obj(counts[0]), "taskSlotCounts": obj(counts[1])});
    Ok(Reply::json(crate::versions::task_counts(result, &ctx.base, ctx.version)))
}

/// Job Disable: 202; no new tasks start. `disableTasks`: `requeue` kills running tasks and
/// puts them back in the queue, `terminate` ends them (`TaskEnded`), `wait` lets them finish
/// (the job is `disabling` until they have). 409 `JobNotActive` unless the job is active.
pub async fn disable(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let d: JobDisable = ctx.parse("JobDisableParameter", body)?;
    let j = load(app, id).await?;
    let job_id = j.spec.id.clone();
    app.driver.call(conditional(ctx, Event::DisableJob { job_id: job_id.clone(), option: d.disable_tasks })?).await?;
    let j = load(app, &job_id).await?;
    Ok(accepted(&format!("{}/disable", url(&ctx.base, &job_id)), &j.last_modified))
}

/// Job Enable: 202; a disabled (or disabling) job becomes active and its tasks are scheduled
/// again. 409 `JobNotDisabled` otherwise.
pub async fn enable(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let j = load(app, id).await?;
    let job_id = j.spec.id.clone();
    app.driver.call(conditional(ctx, Event::EnableJob { job_id: job_id.clone() })?).await?;
    let j = load(app, &job_id).await?;
    Ok(accepted(&format!("{}/enable", url(&ctx.base, &job_id)), &j.last_modified))
}

/// Job List Preparation and Release Task Status: for each node that ran the job's
/// preparation task, how it and the release task went (`maxresults` paging, `$filter`).
pub async fn prep_release_status(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let j = load(app, id).await?;
    let base = ctx.base.clone();
    let render = move |_: &str, n: &crate::model::job::JobNode| -> Map<String, Value> {
        let mut m = crate::api::reply::to_map(n);
        for private in ["jobId", "prepDispatch", "releaseDispatch"] {
            m.remove(private);
        }
        m.insert("nodeUrl".into(), Value::String(format!("{base}/pools/{}/nodes/{}", n.pool_id, n.node_id)));
        m
    };
    super::list_records::<crate::model::job::JobNode>(
        app,
        ctx,
        &j.spec.id,
        crate::odata::ListKind::PreparationReleaseStatus,
        "jobpreparationandreleasetaskstatuslist",
        "JobPreparationAndReleaseTaskExecutionInformation",
        render,
    )
    .await
}
