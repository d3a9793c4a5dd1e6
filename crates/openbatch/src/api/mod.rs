//! The HTTP API: api-version check, authentication (SharedKey, task tokens), routing to the operation
//! handlers, and rendering of answers and Batch errors. See `router` for the operations.

pub mod agent_ws;
pub mod auth;
pub mod conditions;
pub mod error;
pub mod handlers;
pub mod reply;
pub mod router;
pub mod task_token;
pub mod version;

use crate::scheduler::driver::DriverHandle;
use crate::scheduler::reactor::ServiceInfo;
use crate::store::Store;
use auth::AccountKey;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::{ApiResult, BatchError};
use reply::{Body, Reply};
use std::collections::HashMap;
use std::sync::Arc;
use version::ApiVersion;

/// Largest request body read at all (bytes); operations enforce their own, smaller limits.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Shared state of the API.
pub struct App {
    pub store: Store,
    pub driver: DriverHandle,
    pub account: AccountKey,
    pub info: ServiceInfo,
    /// When set, resource URLs use it instead of the request's `Host`.
    pub public_url: Option<String>,
    /// The data directory (application packages live in its `applications/`).
    pub data_dir: std::path::PathBuf,
    /// Issues and verifies task authentication tokens (`authenticationTokenSettings`); the
    /// scheduler gets a clone of the `Arc` to issue a task's token when it starts the task.
    pub task_tokens: Arc<task_token::TaskTokens>,
    /// Whether the development clock control (`/openbatch/v1/clock`) is served.
    pub clock_control: bool,
}

impl App {
    /// The account URL a request reaches: `--public-url`, or `http://<Host header>`.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            format!("http://{host}")
        })
    }
}

/// A Batch error answer from an endpoint outside the Batch operations (openbatch's own admin
/// and development endpoints): the error body under `base`, with a new request id.
pub fn error_response(base: &str, e: BatchError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = crate::model::time::format_timestamp_7(&crate::model::time::Clock::now());
    let body = serde_json::to_vec(&e.body(base, &request_id, &now)).unwrap_or_default();
    (e.status, [("content-type", "application/json;odata=minimalmetadata"), ("request-id", request_id.as_str())], body).into_response()
}

/// What a handler knows about its request.
pub struct Ctx {
    pub version: ApiVersion,
    /// The account URL as the caller reaches it (`http://host:port`), for resource URLs.
    pub base: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    /// The raw path and query, for continuation links.
    pub path: String,
    pub raw_query: String,
    /// The request's id, as the answer's `request-id` header shows it.
    pub request_id: String,
    /// The account's linked storage, which `autoStorageContainerName` names containers of.
    pub auto_storage: Option<crate::storage::resource_files::AutoStorage>,
}

impl Ctx {
    /// A query parameter by its lower-case name (names are matched case-insensitively).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// Reads a request body of the API model `model` (e.g. `PoolAddParameter`) as the caller's
    /// api-version writes it, converts it to the canonical shape and into `T`.
    /// Errors as [`parse_body`], and 400 `InvalidPropertyValue` for a property the version
    /// does not have.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, model: &str, body: &[u8]) -> ApiResult<T> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| BatchError::invalid_body(e.to_string()))?;
        self.parse_value(model, value)
    }

    /// Like [`Ctx::parse`], from an already parsed JSON value.
    pub fn parse_value<T: serde::de::DeserializeOwned>(&self, model: &str, value: serde_json::Value) -> ApiResult<T> {
        parse_value(crate::versions::upgrade_request(model, value, self.version)?)
    }

    /// Checks the request's conditional headers against a resource last modified at `t`
    /// (whose ETag derives from it); see [`conditions::Conditions::check`]. `read` operations
    /// answer 304 where a write answers 412.
    pub fn precondition(&self, t: &crate::model::time::Timestamp, read: bool) -> ApiResult<()> {
        self.conditions()?.check(t, read)
    }

    /// The request's conditional headers, for an operation the scheduler carries out (it
    /// checks them against the record in the batch that changes it).
    /// Errors: 400 `InvalidHeaderValue` for a malformed date.
    pub fn conditions(&self) -> ApiResult<conditions::Conditions> {
        conditions::Conditions::from_headers(&self.headers)
    }

    /// A canonical resource of the API model `model` as the caller's api-version shows it,
    /// with `$select` applied.
    pub fn view(&self, model: &str, value: serde_json::Value) -> serde_json::Value {
        handlers::select(self, crate::versions::downgrade_response(model, value, self.version))
    }
}

/// The API router: every Batch operation, plus the node agents' WebSocket endpoint.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/openbatch/v1/clock", axum::routing::get(handlers::clock::control).post(handlers::clock::control))
        .route("/openbatch/v1/pools/{pool}/nodes/{node}/preempt", axum::routing::post(handlers::pool_resize::preempt))
        .route("/agent/v1/connect", axum::routing::get(agent_ws::connect))
        .route("/agent/v1/applications/{id}/{version}", axum::routing::get(handlers::applications::agent_get_package))
        .route("/agent/v1/certificates/{id}", axum::routing::get(handlers::certificates::agent_get))
        .route(
            "/openbatch/v1/applications/{id}/versions/{version}",
            axum::routing::put(handlers::applications::admin_put_package).layer(DefaultBodyLimit::max(handlers::applications::MAX_PACKAGE)),
        )
        .route("/agent/v1/files/{request_id}", axum::routing::post(agent_ws::upload).layer(DefaultBodyLimit::disable()))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

async fn dispatch(State(app): State<Arc<App>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let query_pairs = auth::form_pairs(uri.query().unwrap_or(""));
    // Query names are case-insensitive (the 15.x clients send `timeOut`, msrest `timeout`).
    let query: HashMap<String, String> = query_pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let base = app.base_url(&headers);
    let echo_client_id = query.get("return-client-request-id").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || headers.get("return-client-request-id").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let client_request_id = headers.get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let is_head = method == Method::HEAD;
    let result: ApiResult<Reply> = async {
        let version = ApiVersion::from_query(query.get("api-version").map(String::as_str))?;
        let principal = auth::authenticate(&app.account, &app.task_tokens, &method, uri.path(), uri.query(), &headers)?;
        principal.authorize(uri.path())?;
        let op = router::route(&method, uri.path()).map_err(|e| {
            // A documented operation of this api-version that openbatch lacks says so.
            match crate::versions::documented_operation(method.as_str(), uri.path(), version) {
                Some(template) if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::METHOD_NOT_ALLOWED => {
                    BatchError::not_implemented(method.as_str(), template)
                }
                _ => e,
            }
        })?;
        let ctx = Ctx {
            version,
            base: base.clone(),
            query,
            headers,
            path: uri.path().to_string(),
            raw_query: uri.query().unwrap_or("").to_string(),
            request_id: request_id.clone(),
            auto_storage: app.info.auto_storage.clone(),
        };
        let limit = handlers::timeout(&ctx)?;
        tokio::time::timeout(limit, handlers::handle(&app, op, &ctx, &body)).await.unwrap_or_else(|_| {
            Err(BatchError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "OperationTimedOut",
                "The operation could not be completed within the specified time.",
            ))
        })
    }
    .await;
    let mut response = match result {
        Ok(reply) => render(reply, is_head),
        Err(e) => {
            let now = crate::model::time::format_timestamp_7(&crate::model::time::Clock::now());
            if e.status.is_server_error() {
                tracing::error!(code = %e.code, %request_id, "request failed");
            }
            if is_head || e.status == StatusCode::NOT_MODIFIED {
                // HEAD and 304 answers carry no body, errors included.
                Response::builder().status(e.status).body(axum::body::Body::empty()).unwrap_or_default()
            } else {
                let body = serde_json::to_vec(&e.body(&base, &request_id, &now)).unwrap_or_default();
                let mut r = (e.status, body).into_response();
                r.headers_mut().insert("content-type", HeaderValue::from_static("application/json;odata=minimalmetadata"));
                r
            }
        }
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    h.insert("dataserviceversion", HeaderValue::from_static("3.0"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if echo_client_id {
        if let Some(v) = client_request_id.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert("client-request-id", v);
        }
    }
    response
}

fn render(reply: Reply, is_head: bool) -> Response {
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            builder = builder.header(k, v);
        }
    }
    let body = match reply.body {
        Body::Empty => axum::body::Body::empty(),
        Body::Json(v) => {
            builder = builder.header("content-type", "application/json;odata=minimalmetadata");
            axum::body::Body::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        Body::Bytes { data, content_type } => {
            builder = builder.header("content-type", content_type);
            if is_head {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from(data)
            }
        }
        Body::Stream { stream, content_type } => {
            builder = builder.header("content-type", content_type);
            if is_head {
                axum::body::Body::empty()
            } else {
                axum::body::Body::from_stream(stream)
            }
        }
    };
    builder.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Reads a JSON request body into `T`, answering Batch errors that name the offending
/// property: malformed JSON → 400 `InvalidRequestBody`; a missing required property → 400
/// `MissingRequiredProperty`; a wrong type, unknown property or bad enum value → 400
/// `InvalidPropertyValue`.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| BatchError::invalid_body(e.to_string()))?;
    parse_value(value)
}

/// Like [`parse_body`], from an already parsed JSON value.
pub fn parse_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        if let Some(field) = msg.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            let full = if path == "." { field.to_string() } else { format!("{path}.{field}") };
            return BatchError::missing_property(&full);
        }
        if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            let full =
                if path == "." || path.ends_with(field) { path.trim_start_matches('.').to_string() } else { format!("{path}.{field}") };
            let name = if full.is_empty() { field.to_string() } else { full };
            return BatchError::new(
                StatusCode::BAD_REQUEST,
                "InvalidPropertyValue",
                "The value provided for one of the properties in the request body is invalid.",
            )
            .with("PropertyName", name)
            .with("Reason", "This property is not part of the request body of this operation at this api-version.");
        }
        BatchError::invalid_property(&path, "", msg)
    })
}
