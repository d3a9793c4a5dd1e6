//! Task operations: Add, Add Collection, List, Get, Update (PUT), Delete, Terminate.

use super::{check_id, conditional};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::{parse_body, App, Ctx};
use crate::model::common::TaskConstraints;
use crate::model::dependencies::TaskDependencies;
use crate::model::exit::{ExitConditions, JobAction};
use crate::model::job::{Job, JobSpec, JobState, OnTaskFailure};
use crate::model::multi_instance::MultiInstanceSettings;
use crate::model::task::{Task, TaskAddCollection, TaskSpec, TaskState, TaskUpdate};
use crate::model::time::{etag_for, format_timestamp, parse_duration, Clock, Timestamp};
use crate::scheduler::reactor::{AddedTask, Event};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// Most tasks in one Add Collection request.
pub const MAX_COLLECTION: usize = 100;
/// Largest Add Collection body (bytes).
pub const MAX_COLLECTION_BYTES: usize = 1024 * 1024;

/// The task's URL under `base`.
pub fn url(base: &str, job: &str, id: &str) -> String {
    format!("{base}/jobs/{job}/tasks/{id}")
}

/// The wire shape of a task (2022-10-01.16.0).
pub fn render(base: &str, t: &Task) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(t.spec.id.clone()));
    m.insert("url".into(), Value::String(url(base, &t.job_id, &t.spec.id)));
    m.insert("eTag".into(), Value::String(etag_for(&t.last_modified)));
    m.insert("creationTime".into(), Value::String(format_timestamp(&t.creation_time)));
    m.insert("lastModified".into(), Value::String(format_timestamp(&t.last_modified)));
    let mut status = to_map(&t.status);
    let exec = status.remove("executionInfo");
    let node = status.remove("nodeInfo");
    m.extend(status);
    for (k, v) in to_map(&t.spec) {
        m.entry(k).or_insert(v);
    }
    if let Some(e) = exec {
        m.insert("executionInfo".into(), e);
    }
    if let Some(n) = node {
        m.insert("nodeInfo".into(), n);
    }
    m
}

/// The wire shape of a task with its statistics (TaskStatistics as `stats`, zero before an
/// attempt ended) when `with_stats` (`$expand=stats`).
fn render_with(base: &str, t: &Task, with_stats: bool) -> Map<String, Value> {
    let mut m = render(base, t);
    if with_stats {
        let empty = crate::model::stats::TaskStats::new(t.creation_time);
        let stats_url = super::stats::url(&url(base, &t.job_id, &t.spec.id));
        m.insert("stats".into(), super::stats::task(stats_url, t.stats.as_ref().unwrap_or(&empty)));
    }
    m
}

/// A job that accepts new tasks; 404 `JobNotFound`, 409 `JobCompleted`,
/// `JobBeingTerminated` or `JobBeingDeleted`.
async fn open_job(app: &App, id: &str) -> ApiResult<Job> {
    open(app.store.get("", id).await?)
}

/// A job tasks can be added to, as loaded (checked again inside the adding transaction, so a
/// job deleted meanwhile gets no orphan task). Errors: 404 `JobNotFound`; 409 `JobCompleted`,
/// `JobBeingTerminated`, `JobBeingDeleted`.
fn open(j: Option<Job>) -> ApiResult<Job> {
    let j = j.ok_or_else(|| BatchError::not_found(ResourceKind::Job))?;
    match j.status.state {
        JobState::Completed => Err(BatchError::conflict("JobCompleted", "The specified job is already in a completed state.")),
        JobState::Terminating => Err(BatchError::conflict("JobBeingTerminated", "The specified job is being terminated.")),
        JobState::Deleting => Err(BatchError::being_deleted(ResourceKind::Job)),
        _ => Ok(j),
    }
}

/// Checks a task's constraints (`prefix` names where they sit, e.g. `constraints` or
/// `jobManagerTask.constraints`): the durations must be ISO 8601.
///
/// Errors: 400 `InvalidPropertyValue` naming the duration.
pub(super) fn check_constraints(prefix: &str, c: Option<&TaskConstraints>) -> ApiResult<()> {
    let Some(c) = c else { return Ok(()) };
    for (name, v) in [("maxWallClockTime", &c.max_wall_clock_time), ("retentionTime", &c.retention_time)] {
        if let Some(v) = v {
            if parse_duration(v).is_none() {
                return Err(BatchError::invalid_property(&format!("{prefix}.{name}"), v.clone(), "Not an ISO 8601 duration."));
            }
        }
    }
    Ok(())
}

/// Checks what a task asks of its job's lifecycle: dependencies, exit conditions and
/// multi-instance settings (see [`check_dependencies`], [`check_exit_conditions`],
/// [`check_multi_instance`]).
fn check_lifecycle(ctx: &Ctx, spec: &TaskSpec, job: &JobSpec) -> ApiResult<()> {
    if let Some(deps) = &spec.depends_on {
        check_dependencies(&spec.id, deps, job)?;
    }
    if let Some(ec) = &spec.exit_conditions {
        check_exit_conditions(ec, job.task_failure_mode())?;
    }
    if let Some(mi) = &spec.multi_instance_settings {
        check_multi_instance(ctx, mi, spec.required_slots)?;
    }
    Ok(())
}

/// Checks `dependsOn` of the task `task_id` in `job`.
///
/// Errors (400): `TaskDependenciesNotSpecifiedOnJob` when the job's `usesTaskDependencies` is
/// not true; `TaskDependencyListTooLong` when the ids of `taskIds` add up to more than 64000
/// characters (both from the specification's TaskAddParameter.dependsOn and
/// TaskDependencies.taskIds); `InvalidPropertyValue` for a range whose start is negative or
/// above its end, and for a task that depends on itself (by id or by a range holding its id).
fn check_dependencies(task_id: &str, deps: &TaskDependencies, job: &JobSpec) -> ApiResult<()> {
    if !job.allows_dependencies() {
        return Err(BatchError::new(
            StatusCode::BAD_REQUEST,
            "TaskDependenciesNotSpecifiedOnJob",
            "The task depends on other tasks, but its job was not added with usesTaskDependencies set to true.",
        ));
    }
    let chars = deps.task_ids_chars();
    if chars > TaskDependencies::MAX_TASK_IDS_CHARS {
        return Err(BatchError::new(
            StatusCode::BAD_REQUEST,
            "TaskDependencyListTooLong",
            format!(
                "The ids in dependsOn.taskIds add up to {chars} characters, more than the {} allowed; depend on task id ranges instead.",
                TaskDependencies::MAX_TASK_IDS_CHARS
            ),
        ));
    }
    for (i, r) in deps.ranges().iter().enumerate() {
        if r.start < 0 {
            return Err(BatchError::invalid_property(
                &format!("dependsOn.taskIdRanges[{i}].start"),
                r.start.to_string(),
                "A task id range starts at 0 or above.",
            ));
        }
        if r.start > r.end {
            return Err(BatchError::invalid_property(
                &format!("dependsOn.taskIdRanges[{i}]"),
                format!("{}-{}", r.start, r.end),
                "The start of a task id range cannot be greater than its end.",
            ));
        }
    }
    if deps.task_ids().iter().any(|id| id.eq_ignore_ascii_case(task_id)) {
        return Err(BatchError::invalid_property("dependsOn.taskIds", task_id, "A task cannot depend on itself."));
    }
    if let Some(i) = deps.ranges().iter().position(|r| r.contains(task_id)) {
        let r = deps.ranges()[i];
        return Err(BatchError::invalid_property(
            &format!("dependsOn.taskIdRanges[{i}]"),
            format!("{}-{}", r.start, r.end),
            format!("The range holds the task's own id {task_id}; a task cannot depend on itself."),
        ));
    }
    Ok(())
}

/// Checks `exitConditions` against the job's `onTaskFailure`.
///
/// Errors (400 `InvalidPropertyValue`): an exit code range whose start is above its end; a
/// `jobAction` other than `none` while the job's `onTaskFailure` is `noaction` (ExitOptions.
/// jobAction: "specifying this property returns an error and the add Task request fails with
/// an invalid property value error"; `none`, which changes nothing, is taken).
fn check_exit_conditions(ec: &ExitConditions, on_task_failure: OnTaskFailure) -> ApiResult<()> {
    for (i, r) in ec.exit_code_ranges.iter().flatten().enumerate() {
        if r.start > r.end {
            return Err(BatchError::invalid_property(
                &format!("exitConditions.exitCodeRanges[{i}]"),
                format!("{}-{}", r.start, r.end),
                "The start of an exit code range cannot be greater than its end.",
            ));
        }
    }
    if on_task_failure == OnTaskFailure::NoAction {
        for (path, o) in ec.all_options() {
            if let Some(action) = o.job_action.filter(|a| *a != JobAction::None) {
                return Err(BatchError::invalid_property(
                    &format!("exitConditions.{path}.jobAction"),
                    action.as_str(),
                    "A job action needs a job whose onTaskFailure is performexitoptionsjobaction; this job's is noaction.",
                ));
            }
        }
    }
    Ok(())
}

/// Checks `multiInstanceSettings` (the pool's inter-node communication is the scheduler's
/// check when it places the task).
///
/// Errors (400 `InvalidPropertyValue`): `numberOfInstances` below 1 or above
/// [`MultiInstanceSettings::MAX_INSTANCES`]; an empty `coordinationCommandLine`;
/// `requiredSlots` other than 1 ("For multi-instance Tasks, this must be 1"); a bad common
/// resource file (as for `resourceFiles`).
fn check_multi_instance(ctx: &Ctx, mi: &MultiInstanceSettings, required_slots: Option<i32>) -> ApiResult<()> {
    if let Some(n) = mi.number_of_instances {
        if n < 1 {
            return Err(BatchError::invalid_property(
                "multiInstanceSettings.numberOfInstances",
                n.to_string(),
                "A multi-instance task runs on at least 1 compute node.",
            ));
        }
        if n > MultiInstanceSettings::MAX_INSTANCES {
            return Err(BatchError::invalid_property(
                "multiInstanceSettings.numberOfInstances",
                n.to_string(),
                format!("openbatch runs a multi-instance task on at most {} compute nodes.", MultiInstanceSettings::MAX_INSTANCES),
            ));
        }
    }
    if mi.coordination_command_line.as_ref().is_some_and(|c| c.trim().is_empty()) {
        return Err(BatchError::invalid_property(
            "multiInstanceSettings.coordinationCommandLine",
            "",
            "The coordination command line cannot be empty.",
        ));
    }
    if let Some(n) = required_slots.filter(|n| *n != 1) {
        return Err(BatchError::invalid_property(
            "requiredSlots",
            n.to_string(),
            "A multi-instance task takes one slot on each of its compute nodes; requiredSlots must be 1.",
        ));
    }
    super::check_resource_files("multiInstanceSettings.commonResourceFiles", mi.common_resource_files.as_deref(), ctx.auto_storage.as_ref())
}

/// Validates and normalizes a task add parameter into a new task.
fn new_task(ctx: &Ctx, job: &Job, value: Value, now: Timestamp) -> ApiResult<Task> {
    let mut spec: TaskSpec = ctx.parse_value("TaskAddParameter", value)?;
    check_id(&spec.id)?;
    if spec.command_line.trim().is_empty() {
        return Err(BatchError::invalid_property("commandLine", "", "The command line cannot be empty."));
    }
    if let Some(n) = spec.required_slots {
        if n < 1 {
            return Err(BatchError::invalid_property("requiredSlots", n.to_string(), "requiredSlots must be at least 1."));
        }
    }
    check_constraints("constraints", spec.constraints.as_ref())?;
    let unsupported = [
        ("containerSettings", spec.container_settings.is_some(), "container tasks"),
        ("userIdentity.username", spec.user_identity.as_ref().is_some_and(|u| u.username.is_some()), "named pool users"),
    ];
    if let Some((name, _, what)) = unsupported.iter().find(|(_, used, _)| *used) {
        return Err(BatchError::invalid_property(name, "", format!("openbatch does not support {what} yet; the task was not added.")));
    }
    super::check_environment(spec.environment_settings.as_deref())?;
    super::check_resource_files("resourceFiles", spec.resource_files.as_deref(), ctx.auto_storage.as_ref())?;
    super::check_output_files(spec.output_files.as_deref())?;
    check_lifecycle(ctx, &spec, &job.spec)?;
    spec.normalize(job.spec.constraints.as_ref().and_then(|c| c.max_task_retry_count));
    Ok(Task::new_active(&job.spec.id, spec, now))
}

/// Task Add: 201; 409 `TaskExists`.
pub async fn add(app: &App, ctx: &Ctx, job_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let job = open_job(app, job_id).await?;
    let value: Value = serde_json::from_slice(body).map_err(|e| BatchError::invalid_body(e.to_string()))?;
    let now = Clock::now();
    let task = new_task(ctx, &job, value, now)?;
    super::applications::check_references(app, "applicationPackageReferences", task.spec.application_package_references.as_deref()).await?;
    let mut tx = app.store.begin().await?;
    open(tx.get("", &job.spec.id).await?)?;
    if tx.exists::<Task>(&job.spec.id, &task.spec.id).await? {
        return Err(BatchError::exists(ResourceKind::Task));
    }
    tx.put(&task).await?;
    tx.commit().await?;
    app.driver.notify(Event::TasksAdded { job_id: job.spec.id.clone(), tasks: vec![AddedTask::from(&task)] });
    Ok(Reply::created(&url(&ctx.base, &job.spec.id, &task.spec.id), &now))
}

/// Task Add Collection: at most 100 tasks and 1 MiB; 200 with a `TaskAddResult` per task
/// (`Success`, or `ClientError` with the Batch error, e.g. `TaskExists`), all stored in one
/// commit. Whole-request errors: 413 `RequestBodyTooLarge`; 400 for more than 100 tasks.
pub async fn add_collection(app: &App, ctx: &Ctx, job_id: &str, body: &[u8]) -> ApiResult<Reply> {
    if body.len() > MAX_COLLECTION_BYTES {
        return Err(BatchError::body_too_large(&MAX_COLLECTION_BYTES.to_string()));
    }
    let coll: TaskAddCollection = parse_body(body)?;
    if coll.value.len() > MAX_COLLECTION {
        return Err(BatchError::invalid_property(
            "value",
            coll.value.len().to_string(),
            format!("A task collection holds at most {MAX_COLLECTION} tasks."),
        ));
    }
    let job = open_job(app, job_id).await?;
    let now = Clock::now();
    let mut results: Vec<Value> = Vec::with_capacity(coll.value.len());
    let mut added: Vec<AddedTask> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut tx = app.store.begin().await?;
    open(tx.get("", &job.spec.id).await?)?;
    for value in coll.value {
        let id_hint = value.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let outcome: ApiResult<Task> = async {
            let task = new_task(ctx, &job, value, now)?;
            super::applications::check_references(app, "applicationPackageReferences", task.spec.application_package_references.as_deref())
                .await?;
            if !seen.insert(task.spec.id.to_ascii_lowercase()) || tx.exists::<Task>(&job.spec.id, &task.spec.id).await? {
                return Err(BatchError::exists(ResourceKind::Task));
            }
            tx.put(&task).await?;
            Ok(task)
        }
        .await;
        match outcome {
            Ok(task) => {
                results.push(ctx.view(
                    "TaskAddResult",
                    json!({
                        "status": "Success",
                        "taskId": task.spec.id,
                        "eTag": etag_for(&now),
                        "lastModified": format_timestamp(&now),
                        "location": url(&ctx.base, &job.spec.id, &task.spec.id),
                    }),
                ));
                added.push(AddedTask::from(&task));
            }
            Err(e) if e.status.is_server_error() => return Err(e),
            Err(e) => {
                let stamp = crate::model::time::format_timestamp_7(&Clock::now());
                let mut err = e.body(&ctx.base, &uuid::Uuid::new_v4().to_string(), &stamp);
                if let Some(o) = err.as_object_mut() {
                    o.remove("odata.metadata");
                }
                results.push(ctx.view("TaskAddResult", json!({"status": "ClientError", "taskId": id_hint, "error": err})));
            }
        }
    }
    tx.commit().await?;
    if !added.is_empty() {
        app.driver.notify(Event::TasksAdded { job_id: job.spec.id.clone(), tasks: added });
    }
    Ok(Reply::json(json!({
        "odata.metadata": format!("{}/$metadata#taskaddresult", ctx.base),
        "value": results,
    })))
}

/// Task List (of a job), with each task's statistics for `$expand=stats`; 404 `JobNotFound`.
pub async fn list(app: &App, ctx: &Ctx, job_id: &str) -> ApiResult<Reply> {
    let job = super::jobs::load(app, job_id).await?;
    let with_stats = super::stats::wanted(ctx);
    let render = move |base: &str, t: &Task| render_with(base, t, with_stats);
    super::list_records::<Task>(app, ctx, &job.spec.id, crate::odata::ListKind::Tasks, "tasks", "CloudTask", render).await
}

/// Loads a task; 404 `JobNotFound` or `TaskNotFound`.
pub async fn load(app: &App, job_id: &str, task_id: &str) -> ApiResult<Task> {
    let job = super::jobs::load(app, job_id).await?;
    app.store.get::<Task>(&job.spec.id, task_id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Task))
}

/// Task Get, with the task's statistics for `$expand=stats`.
pub async fn get(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Reply> {
    let t = load(app, job_id, task_id).await?;
    ctx.precondition(&t.last_modified, true)?;
    let m = render_with(&ctx.base, &t, super::stats::wanted(ctx));
    let body = entity(Some(format!("{}/$metadata#tasks/@Element", ctx.base)), None, m);
    Ok(Reply::json(ctx.view("CloudTask", body)).etag(&t.last_modified))
}

/// Task Update (PUT): new constraints; 200. 409 `TaskCompleted` for a completed task.
pub async fn update(app: &App, ctx: &Ctx, job_id: &str, task_id: &str, body: &[u8]) -> ApiResult<Reply> {
    let u: TaskUpdate = ctx.parse("TaskUpdateParameter", body)?;
    let t = load(app, job_id, task_id).await?;
    let mut tx = app.store.begin().await?;
    let mut t: Task = tx.get(&t.job_id, &t.spec.id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Task))?;
    ctx.precondition(&t.last_modified, false)?;
    if t.status.state == TaskState::Completed {
        return Err(BatchError::conflict("TaskCompleted", "The specified task is already in a completed state."));
    }
    let job: Option<Job> = tx.get("", &t.job_id).await?;
    t.spec.constraints = u.constraints;
    t.spec.normalize(job.and_then(|j| j.spec.constraints).and_then(|c| c.max_task_retry_count));
    let now = Clock::now();
    t.last_modified = now;
    tx.put(&t).await?;
    tx.commit().await?;
    Ok(Reply::updated(StatusCode::OK, &url(&ctx.base, &t.job_id, &t.spec.id), &now))
}

/// Task Delete: 200; a running task is killed first.
pub async fn delete(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Reply> {
    let t = load(app, job_id, task_id).await?;
    let (job_id, task_id) = (t.job_id.clone(), t.spec.id.clone());
    app.driver.call(conditional(ctx, Event::DeleteTask { job_id, task_id })?).await?;
    Ok(Reply::empty(StatusCode::OK))
}

/// Task Terminate: 204; the task completes with `failureInfo.code TaskEnded`. 409
/// `TaskCompleted` when it already completed.
pub async fn terminate(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Reply> {
    let t = load(app, job_id, task_id).await?;
    let (job_id, task_id) = (t.job_id.clone(), t.spec.id.clone());
    app.driver.call(conditional(ctx, Event::TerminateTask { job_id: job_id.clone(), task_id: task_id.clone() })?).await?;
    let t = load(app, &job_id, &task_id).await?;
    Ok(Reply::updated(StatusCode::NO_CONTENT, &format!("{}/terminate", url(&ctx.base, &job_id, &task_id)), &t.last_modified))
}

/// Task Reactivate: a task that completed with a failure runs again, its retry count reset
/// (204). 409 `TaskNotCompleted` for a task that has not completed,
/// `TaskCompletedSuccessfully` for one that succeeded, and `JobCompleted`/`JobBeingTerminated`/
/// `JobBeingDeleted` when its job is over (Task_Reactivate).
pub async fn reactivate(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Reply> {
    let t = load(app, job_id, task_id).await?;
    let (job_id, task_id) = (t.job_id.clone(), t.spec.id.clone());
    app.driver.call(conditional(ctx, Event::ReactivateTask { job_id: job_id.clone(), task_id: task_id.clone() })?).await?;
    let t = load(app, &job_id, &task_id).await?;
    Ok(Reply::updated(StatusCode::NO_CONTENT, &format!("{}/reactivate", url(&ctx.base, &job_id, &task_id)), &t.last_modified))
}

/// Task List Subtasks: the subtasks of a multi-instance task's current (or last) attempt —
/// every instance but the primary, which the task itself stands for — with their state, node
/// and coordination command result; an empty list for any other task (Task_ListSubtasks).
pub async fn list_subtasks(app: &App, ctx: &Ctx, job_id: &str, task_id: &str) -> ApiResult<Reply> {
    let t = load(app, job_id, task_id).await?;
    let subtasks: Vec<Value> =
        t.multi.iter().flat_map(|m| m.subtasks.iter().skip(1)).filter_map(|s| serde_json::to_value(s).ok()).collect();
    let body = serde_json::json!({
        "odata.metadata": format!("{}/$metadata#subtaskinfo", ctx.base),
        "value": subtasks,
    });
    Ok(Reply::json(ctx.view("CloudTaskListSubtasksResult", body)))
}
