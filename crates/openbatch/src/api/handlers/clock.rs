//! The development clock control (`serve --clock-control`): `GET /openbatch/v1/clock` reads
//! the service clock, `POST /openbatch/v1/clock` with `{"advance": "<ISO 8601 duration>"}`
//! moves it forward and lets the scheduler act on the new time (job schedule recurrences,
//! wall-clock limits, retention) before answering. Both answer `{"now", "speed"}`.
//!
//! Requests are signed with the account key (SharedKey), like the Batch API (`openbatch clock`
//! does it for you). Without `--clock-control` the path answers 404 saying so. The clock never
//! goes back; this is for tests and demonstrations, never for production.

use crate::api::error::{ApiResult, BatchError};
use crate::api::App;
use crate::model::time::{format_timestamp, parse_duration, Clock};
use crate::scheduler::reactor::Event;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Serves the clock control: answers `{"now", "speed"}`, after moving the clock on a POST.
/// Errors: 403 `AuthenticationFailed` for a bad signature; 400 `InvalidPropertyValue` for an
/// `advance` that is not a non-negative ISO 8601 duration.
pub async fn control(State(app): State<Arc<App>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let result: ApiResult<Value> = async {
        if !app.clock_control {
            return Err(BatchError::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "The development clock control is off: start the service with --clock-control to move its clock.",
            ));
        }
        app.account.verify(&method, uri.path(), uri.query(), &headers)?;
        if method == Method::POST {
            let v: Value = serde_json::from_slice(&body).map_err(|e| BatchError::invalid_body(e.to_string()))?;
            let Advance { advance } = crate::api::parse_value(v)?;
            let by = parse_duration(&advance).and_then(|d| d.0).ok_or_else(|| {
                BatchError::invalid_property("advance", advance.clone(), "advance is a finite ISO 8601 duration, e.g. PT1H.")
            })?;
            let now = Clock::advance(by);
            tracing::info!(by = %advance, now = %format_timestamp(&now), "development clock moved on");
            app.driver.call(Event::Tick).await?;
        }
        Ok(json!({"now": format_timestamp(&Clock::now()), "speed": Clock::speed()}))
    }
    .await;
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => crate::api::error_response(&app.base_url(&headers), e),
    }
}

/// The body of a POST: how far to move the clock.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    /// An ISO 8601 duration (`PT1H`, `P1D`).
    advance: String,
}
