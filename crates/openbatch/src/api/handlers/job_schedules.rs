//! Job schedule operations: Add, List, Get, Exists, Update (PUT), Patch, Disable, Enable,
//! Terminate, Delete, and List Jobs From Job Schedule.
//!
//! Handlers check and store what the caller sets; when jobs are created, and what Disable,
//! Enable, Terminate and Delete do to a schedule and its jobs, is the reactor's
//! (`scheduler::reactor::schedules`). Answers follow the recorded service: Add 201, Update and
//! Patch 200, Disable and Enable 204, Terminate and Delete 202.

use super::jobs::{prepare_spec, SpecOwner};
use super::{check_id, conditional};
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::{App, Ctx};
use crate::model::job::JobSpec;
use crate::model::job_schedule::{
    JobSchedule, JobScheduleAdd, JobSchedulePatch, JobScheduleSpec, JobScheduleUpdate, Schedule, MIN_INTERVAL_SECS,
};
use crate::model::time::{etag_for, format_timestamp, parse_duration, Clock};
use crate::scheduler::reactor::Event;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// The schedule's URL under `base`.
pub fn url(base: &str, id: &str) -> String {
    format!("{base}/jobschedules/{id}")
}

/// The wire shape of a job schedule (CloudJobSchedule, 2022-10-01.16.0), with its
/// statistics (JobScheduleStatistics, zero before a task attempt ended) when `with_stats`.
pub fn render(base: &str, s: &JobSchedule, with_stats: bool) -> Map<String, Value> {
    let mut m = Map::new();
    let id = &s.spec.id;
    m.insert("id".into(), Value::String(id.clone()));
    m.insert("url".into(), Value::String(url(base, id)));
    m.insert("eTag".into(), Value::String(etag_for(&s.last_modified)));
    m.insert("lastModified".into(), Value::String(format_timestamp(&s.last_modified)));
    m.insert("creationTime".into(), Value::String(format_timestamp(&s.creation_time)));
    m.insert("state".into(), Value::String(s.state.as_str().into()));
    m.insert("stateTransitionTime".into(), Value::String(format_timestamp(&s.state_transition_time)));
    if let (Some(p), Some(t)) = (s.previous_state, &s.previous_state_transition_time) {
        m.insert("previousState".into(), Value::String(p.as_str().into()));
        m.insert("previousStateTransitionTime".into(), Value::String(format_timestamp(t)));
    }
    if let Some(d) = &s.spec.display_name {
        m.insert("displayName".into(), Value::String(d.clone()));
    }
    m.insert("schedule".into(), Value::Object(to_map(&s.spec.schedule)));
    let mut job_spec = to_map(&s.spec.job_specification);
    job_spec.remove("id");
    m.insert("jobSpecification".into(), Value::Object(job_spec));
    let mut exec = to_map(&s.execution_info);
    if let Some(recent) = &s.execution_info.recent_job {
        let job_url = super::jobs::url(base, &recent.id);
        exec.insert("recentJob".into(), serde_json::json!({"id": recent.id, "url": job_url}));
    }
    m.insert("executionInfo".into(), Value::Object(exec));
    if let Some(md) = &s.spec.metadata {
        m.insert("metadata".into(), serde_json::to_value(md).unwrap_or_default());
    }
    if with_stats {
        let empty = crate::model::stats::JobStats::new(s.creation_time);
        m.insert("stats".into(), super::stats::job(super::stats::url(&url(base, id)), s.stats.as_ref().unwrap_or(&empty)));
    }
    m
}

/// Loads a job schedule; 404 `JobScheduleNotFound`.
async fn load(app: &App, id: &str) -> ApiResult<JobSchedule> {
    app.store.get::<JobSchedule>("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::JobSchedule))
}

/// Checks a schedule: ISO 8601 durations of at least one minute.
/// Errors: 400 `InvalidPropertyValue` naming `schedule.startWindow` or
/// `schedule.recurrenceInterval`.
fn check_schedule(s: &Schedule) -> ApiResult<()> {
    for (name, value) in [("startWindow", &s.start_window), ("recurrenceInterval", &s.recurrence_interval)] {
        let Some(v) = value else { continue };
        let ok = match parse_duration(v) {
            Some(d) => d.0.is_none_or(|d| d.as_secs() >= MIN_INTERVAL_SECS),
            None => false,
        };
        if !ok {
            return Err(BatchError::invalid_property(
                &format!("schedule.{name}"),
                v.clone(),
                format!("{name} must be an ISO 8601 duration of at least 1 minute."),
            ));
        }
    }
    Ok(())
}

/// Reads and checks a `jobSpecification` (canonical JSON, as the request's api-version was
/// converted) as Job Add checks a job: the job's properties with an empty id, normalized.
/// Errors name the property below `jobSpecification`.
async fn job_specification(app: &App, ctx: &Ctx, value: Value) -> ApiResult<JobSpec> {
    let mut value = value;
    if let Some(o) = value.as_object_mut() {
        o.insert("id".into(), Value::String(String::new()));
    }
    let prepared = async {
        let mut spec: JobSpec = crate::api::parse_value(value)?;
        prepare_spec(app, ctx, &mut spec, SpecOwner::JobSchedule).await?;
        Ok(spec)
    };
    prepared.await.map_err(|e: BatchError| e.under("jobSpecification"))
}

/// Job Schedule Add: 201; 409 `JobScheduleExists`. A schedule due at once has its first job
/// when the answer comes.
pub async fn add(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Reply> {
    let a: JobScheduleAdd = ctx.parse("JobScheduleAddParameter", body)?;
    check_id(&a.id)?;
    check_schedule(&a.schedule)?;
    let job_specification = job_specification(app, ctx, a.job_specification).await?;
    let spec = JobScheduleSpec { id: a.id, display_name: a.display_name, schedule: a.schedule, job_specification, metadata: a.metadata };
    let now = Clock::now();
    let s = JobSchedule::new(spec, now);
    let mut tx = app.store.begin().await?;
    if tx.exists::<JobSchedule>("", &s.spec.id).await? {
        return Err(BatchError::exists(ResourceKind::JobSchedule));
    }
    tx.put(&s).await?;
    tx.commit().await?;
    app.driver.call(Event::ScheduleChanged(s.spec.id.clone())).await?;
    Ok(Reply::created(&url(&ctx.base, &s.spec.id), &now))
}

/// Job Schedule List, with statistics for `$expand=stats`.
pub async fn list(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    let with_stats = super::stats::wanted(ctx);
    let render = move |base: &str, s: &JobSchedule| render(base, s, with_stats);
    super::list_records::<JobSchedule>(app, ctx, "", crate::odata::ListKind::JobSchedules, "jobschedules", "CloudJobSchedule", render).await
}

/// Job Schedule Get; 404 `JobScheduleNotFound`.
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let s = load(app, id).await?;
    ctx.precondition(&s.last_modified, true)?;
    let m = render(&ctx.base, &s, super::stats::wanted(ctx));
    let body = entity(Some(format!("{}/$metadata#jobschedules/@Element", ctx.base)), None, m);
    Ok(Reply::json(ctx.view("CloudJobSchedule", body)).etag(&s.last_modified))
}

/// Job Schedule Exists (HEAD): 200 with the ETag, 404 when absent.
pub async fn exists(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let s = load(app, id).await?;
    ctx.precondition(&s.last_modified, true)?;
    Ok(Reply::empty(StatusCode::OK).etag(&s.last_modified))
}

/// Loads a schedule for a change inside `tx`; 409 when it is being deleted, being
/// terminated or completed.
async fn load_for_update(ctx: &Ctx, tx: &mut crate::store::Tx, id: &str) -> ApiResult<JobSchedule> {
    let s: JobSchedule = tx.get("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::JobSchedule))?;
    ctx.precondition(&s.last_modified, false)?;
    crate::scheduler::reactor::schedules::changeable(&s)?;
    Ok(s)
}

/// Stores a changed schedule (a new schedule re-times the next run) and lets the reactor
/// look at it; 200 with the new ETag.
async fn save(app: &App, ctx: &Ctx, mut tx: crate::store::Tx, mut s: JobSchedule, retime: bool) -> ApiResult<Reply> {
    let now = Clock::now();
    s.last_modified = now;
    if retime {
        s.retime(now);
    }
    tx.put(&s).await?;
    tx.commit().await?;
    app.driver.call(Event::ScheduleChanged(s.spec.id.clone())).await?;
    Ok(Reply::updated(StatusCode::OK, &url(&ctx.base, &s.spec.id), &now))
}

/// Job Schedule Patch: replaces the properties given (`schedule`, `jobSpecification`,
/// `metadata`); new jobs follow them, the active job keeps its own. 200.
pub async fn patch(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: JobSchedulePatch = ctx.parse("JobSchedulePatchParameter", body)?;
    if let Some(s) = &p.schedule {
        check_schedule(s)?;
    }
    let job_spec = match p.job_specification {
        Some(v) => Some(job_specification(app, ctx, v).await?),
        None => None,
    };
    let mut tx = app.store.begin().await?;
    let mut s = load_for_update(ctx, &mut tx, id).await?;
    let retime = p.schedule.is_some();
    if let Some(sched) = p.schedule {
        s.spec.schedule = sched;
    }
    if let Some(j) = job_spec {
        s.spec.job_specification = j;
    }
    if let Some(m) = p.metadata {
        s.spec.metadata = Some(m);
    }
    save(app, ctx, tx, s, retime).await
}

/// Job Schedule Update (PUT): replaces `schedule` and `jobSpecification`, and `metadata`
/// (removed when not given). 200.
pub async fn update(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let u: JobScheduleUpdate = ctx.parse("JobScheduleUpdateParameter", body)?;
    check_schedule(&u.schedule)?;
    let job_spec = job_specification(app, ctx, u.job_specification).await?;
    let mut tx = app.store.begin().await?;
    let mut s = load_for_update(ctx, &mut tx, id).await?;
    s.spec.schedule = u.schedule;
    s.spec.job_specification = job_spec;
    s.spec.metadata = u.metadata;
    save(app, ctx, tx, s, true).await
}

/// Runs a schedule operation in the reactor and answers with the schedule's new ETag.
async fn act(app: &App, ctx: &Ctx, id: &str, status: StatusCode, action: &str, ev: fn(String) -> Event) -> ApiResult<Reply> {
    let s = load(app, id).await?;
    let sid = s.spec.id.clone();
    app.driver.call(conditional(ctx, ev(sid.clone()))?).await?;
    let s = load(app, &sid).await?;
    Ok(Reply::updated(status, &format!("{}/{action}", url(&ctx.base, &sid)), &s.last_modified))
}

/// Job Schedule Disable: 204; no new jobs until enabled (the active job runs on).
pub async fn disable(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    act(app, ctx, id, StatusCode::NO_CONTENT, "disable", |id| Event::DisableSchedule { id }).await
}

/// Job Schedule Enable: 204; the schedule creates jobs again.
pub async fn enable(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    act(app, ctx, id, StatusCode::NO_CONTENT, "enable", |id| Event::EnableSchedule { id }).await
}

/// Job Schedule Terminate: 202; the active job is terminated and the schedule completes.
pub async fn terminate(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    act(app, ctx, id, StatusCode::ACCEPTED, "terminate", |id| Event::TerminateSchedule { id }).await
}

/// Job Schedule Delete: 202; the schedule's jobs and their tasks are deleted, then the
/// schedule.
pub async fn delete(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let s = load(app, id).await?;
    app.driver.call(conditional(ctx, Event::DeleteSchedule { id: s.spec.id })?).await?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Job List From Job Schedule: the jobs the schedule created (`<id>:job-<n>`), as Job List
/// shows them. 404 `JobScheduleNotFound`.
pub async fn list_jobs(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let s = load(app, id).await?;
    let prefix = JobSchedule::job_prefix(&s.spec.id);
    super::jobs::list_under(app, ctx, crate::odata::ListKind::JobsOfSchedule, Some(&prefix)).await
}
