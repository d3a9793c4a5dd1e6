//! The development clock control (`serve --clock-control`): `GET /openbatch/v1/clock` reads
//! the service clock, `POST /openbatch/v1/clock` with `{"advance": "<ISO 8601 duration>"}`
//! moves it forward and lets the scheduler act on the new time (job schedule recurrences,
//! wall-clock limits, retention) before answering. Both answer `{"now", "speed"}`.
//!
//! Requests are signed with the account key (SharedKey), like the Batch API. The clock never
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
        app.account.verify(&method, uri.path(), uri.query(), &headers)?;
        if method == Method::POST {
            let v: Value = serde_json::from_slice(&body).map_err(|e| BatchError::invalid_body(e.to_string()))?;
            let text = v.get("advance").and_then(Value::as_str).ok_or_else(|| BatchError::missing_property("advance"))?;
            let by = parse_duration(text)
                .and_then(|d| d.0)
                .ok_or_else(|| BatchError::invalid_property("advance", text, "advance is a finite ISO 8601 duration, e.g. PT1H."))?;
            let now = Clock::advance(by);
            tracing::info!(by = text, now = %format_timestamp(&now), "development clock moved on");
            app.driver.call(Event::Tick).await?;
        }
        Ok(json!({"now": format_timestamp(&Clock::now()), "speed": Clock::speed()}))
    }
    .await;
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => {
            let now = format_timestamp(&Clock::now());
            (e.status, axum::Json(e.body("", "", &now))).into_response()
        }
    }
}
