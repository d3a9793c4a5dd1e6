//! Pool autoscale operations: Enable AutoScale, Disable AutoScale, Evaluate AutoScale, and the
//! autoscale checks of a pool specification (Pool Add, a job's auto pool).
//!
//! Errors (Batch error codes): a formula that does not parse or check is 400
//! `AutoScalingFormulaSyntaxError` ("The specified auto-scaling formula has a syntax error.")
//! and one over 8 KB 400 `AutoScaleFormulaTooLong`, each with the detail `Message`
//! `Line L, Col C: …`; an interval outside its bounds is 400 `InvalidPropertyValue`; a
//! formula with `enableAutoScale` false, or targets with it true, 400 `InvalidPropertyValue`
//! naming the property (the service's code for these is not documented: openbatch's choice);
//! Enable AutoScale on a pool being resized is 409 `PoolBeingResized`, and within 30 s of the
//! previous one 503 `TooManyEnableAutoScaleRequests` (by the service clock); Evaluate on a pool
//! without autoscale is 409 `OperationInvalidForCurrentState`.

use super::pools::url;
use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::{App, Ctx};
use crate::autoscale::{self, Formula, FormulaError};
use crate::model::autoscale::{check_interval, EnableAutoScale, EvaluateAutoScale, ENABLE_SPACING_SECS};
use crate::model::pool::{AllocationState, Pool, PoolSpec};
use crate::model::time::{format_duration, Clock};
use crate::scheduler::reactor::Event;
use axum::http::StatusCode;

/// The Batch error of a formula refused when it comes: 400 `AutoScalingFormulaSyntaxError` or
/// `AutoScaleFormulaTooLong`, with the position and reason as the `Message` detail.
pub fn formula_error(e: &FormulaError) -> BatchError {
    BatchError::new(StatusCode::BAD_REQUEST, e.code(), e.summary()).with("Message", e.to_string())
}

/// Parses a formula that comes with a request. Errors: see [`formula_error`].
fn parse(formula: &str) -> ApiResult<Formula> {
    autoscale::parse(formula).map_err(|e| formula_error(&e))
}

/// Checks an interval that comes with a request and gives it as the service writes it.
/// Errors: 400 `InvalidPropertyValue` naming `autoScaleEvaluationInterval`.
fn interval(s: &str) -> ApiResult<String> {
    check_interval(s).map(format_duration).map_err(|reason| BatchError::invalid_property("autoScaleEvaluationInterval", s, reason))
}

/// The autoscale settings of a pool specification: with `enableAutoScale` true a valid
/// `autoScaleFormula` is required and the interval is checked; without it neither may be
/// given.
/// Errors: 400 `MissingRequiredProperty`, `InvalidPropertyValue`, `AutoScalingFormulaSyntaxError`,
/// `AutoScaleFormulaTooLong`.
pub fn check_settings(spec: &PoolSpec) -> ApiResult<()> {
    if spec.enable_auto_scale != Some(true) {
        for (name, given) in [
            ("autoScaleFormula", spec.auto_scale_formula.is_some()),
            ("autoScaleEvaluationInterval", spec.auto_scale_evaluation_interval.is_some()),
        ] {
            if given {
                return Err(BatchError::invalid_property(
                    name,
                    "",
                    format!("{name} must not be specified if enableAutoScale is not true."),
                ));
            }
        }
        return Ok(());
    }
    let formula = spec.auto_scale_formula.as_deref().ok_or_else(|| BatchError::missing_property("autoScaleFormula"))?;
    parse(formula)?;
    if let Some(i) = spec.auto_scale_evaluation_interval.as_deref() {
        interval(i)?;
    }
    Ok(())
}

/// A new autoscale pool names no targets (Pool Add, a job's auto pool).
/// Errors: 400 `InvalidPropertyValue` naming the target given.
pub fn check_no_targets(spec: &PoolSpec) -> ApiResult<()> {
    if spec.enable_auto_scale != Some(true) {
        return Ok(());
    }
    for (name, v) in [("targetDedicatedNodes", spec.target_dedicated_nodes), ("targetLowPriorityNodes", spec.target_low_priority_nodes)] {
        if let Some(n) = v {
            return Err(BatchError::invalid_property(
                name,
                n.to_string(),
                format!("{name} must not be specified if enableAutoScale is true."),
            ));
        }
    }
    Ok(())
}

/// Enable AutoScale: 200 with the pool's new ETag. Stores the formula and interval (the
/// interval defaults to 15 minutes; one given restarts the schedule) and evaluates the
/// formula now, setting the pool's targets and `autoScaleRun`. A pool without autoscale needs a
/// formula; one with it needs a formula or an interval. 404 `PoolNotFound`, 409
/// `PoolBeingDeleted`, 409 `PoolBeingResized`, 503 `TooManyEnableAutoScaleRequests`.
pub async fn enable(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: EnableAutoScale = ctx.parse("PoolEnableAutoScaleParameter", body)?;
    if let Some(f) = &p.auto_scale_formula {
        parse(f)?;
    }
    let new_interval = p.auto_scale_evaluation_interval.as_deref().map(interval).transpose()?;
    let (mut tx, mut pool) = super::pools::load_for_change(app, ctx, id).await?;
    let enabled = pool.spec.enable_auto_scale == Some(true);
    if !enabled && p.auto_scale_formula.is_none() {
        return Err(BatchError::missing_property("autoScaleFormula"));
    }
    if enabled && p.auto_scale_formula.is_none() && new_interval.is_none() {
        return Err(BatchError::missing_property("autoScaleFormula"));
    }
    if !enabled && pool.status.allocation_state != AllocationState::Steady {
        return Err(BatchError::conflict("PoolBeingResized", "The specified pool is being resized."));
    }
    let now = Clock::now();
    if pool.status.auto_scale_enabled_at.is_some_and(|t| (now - t).num_seconds() < ENABLE_SPACING_SECS) {
        return Err(BatchError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TooManyEnableAutoScaleRequests",
            "Too many Enable Pool AutoScale requests are issued on the pool: they must be at least 30 seconds apart.",
        ));
    }
    pool.spec.enable_auto_scale = Some(true);
    if let Some(f) = p.auto_scale_formula {
        pool.spec.auto_scale_formula = Some(f);
    }
    match new_interval {
        Some(i) => pool.spec.auto_scale_evaluation_interval = Some(i),
        None => {
            pool.spec.auto_scale_evaluation_interval.get_or_insert_with(|| "PT15M".into());
        }
    }
    pool.status.auto_scale_enabled_at = Some(now);
    pool.last_modified = now;
    tx.put(&pool).await?;
    tx.commit().await?;
    app.driver.call(Event::EnableAutoScale { pool_id: pool.spec.id.clone() }).await?;
    Ok(Reply::updated(StatusCode::OK, &format!("{}/enableautoscale", url(&ctx.base, &pool.spec.id)), &now))
}

/// Disable AutoScale: 200 with the pool's new ETag. The formula, interval and last run go;
/// the pool keeps its targets, or, when a resize is in progress, stops it where it is (see
/// the reactor's autoscale rules). 404 `PoolNotFound`, 409 `PoolBeingDeleted`.
pub async fn disable(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let (mut tx, mut pool) = super::pools::load_for_change(app, ctx, id).await?;
    let now = Clock::now();
    pool.spec.enable_auto_scale = Some(false);
    pool.spec.auto_scale_formula = None;
    pool.spec.auto_scale_evaluation_interval = None;
    pool.status.auto_scale_run = None;
    pool.last_modified = now;
    tx.put(&pool).await?;
    tx.commit().await?;
    app.driver.call(Event::DisableAutoScale { pool_id: pool.spec.id.clone() }).await?;
    Ok(Reply::updated(StatusCode::OK, &format!("{}/disableautoscale", url(&ctx.base, &pool.spec.id)), &now))
}

/// Evaluate AutoScale: 200 with the AutoScaleRun of the formula against the pool's metrics
/// now; the pool does not change. 404 `PoolNotFound`, 409 `OperationInvalidForCurrentState`
/// when autoscale is not enabled, 400 for a formula that does not parse.
pub async fn evaluate(app: &App, ctx: &Ctx, id: &str, body: &[u8]) -> ApiResult<Reply> {
    let p: EvaluateAutoScale = ctx.parse("PoolEvaluateAutoScaleParameter", body)?;
    let formula = parse(&p.auto_scale_formula)?;
    let pool: Pool = app.store.get("", id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Pool))?;
    let run = app.driver.evaluate(Event::EvaluateAutoScale { pool_id: pool.spec.id.clone(), formula }).await?;
    let metadata = format!("{}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun", ctx.base);
    let body = entity(Some(metadata), None, to_map(&run));
    Ok(Reply::json(ctx.view("AutoScaleRun", body)).header("DataServiceId", format!("{}/evaluateautoscale", url(&ctx.base, &pool.spec.id))))
}
