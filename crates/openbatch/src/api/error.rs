//! The one error type of the API: every variant maps to a Batch error code and HTTP status
//! and renders as the Batch error body
//! `{"odata.metadata": ".../$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
//!   "code": C, "message": {"lang": "en-US", "value": "<text>\nRequestId:<id>\nTime:<ISO>"},
//!   "values": [{"key": K, "value": V}]}` (see the Batch "status and error codes" documentation).

use axum::http::StatusCode;
use serde_json::{json, Value};

/// A Batch error: HTTP status, Batch error code, message, and the `values` detail pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// The Batch error code (`PoolNotFound`, `InvalidPropertyValue`, …).
    pub code: String,
    /// Human-readable message (RequestId and Time are appended when rendered).
    pub message: String,
    /// Detail pairs rendered as `values: [{key, value}]`; omitted when empty.
    pub values: Vec<(String, String)>,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status.as_u16(), self.message)
    }
}

impl std::error::Error for BatchError {}

/// Shorthand for results of API operations.
pub type ApiResult<T> = Result<T, BatchError>;

impl BatchError {
    /// A Batch error with the given status, code and message and no detail values.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        BatchError { status, code: code.to_string(), message: message.into(), values: Vec::new() }
    }

    /// Adds a `{key, value}` detail pair.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values.push((key.to_string(), value.into()));
        self
    }

    /// 404 `<Kind>NotFound`, e.g. `PoolNotFound`: "The specified pool does not exist."
    pub fn not_found(kind: ResourceKind) -> Self {
        Self::new(StatusCode::NOT_FOUND, &format!("{}NotFound", kind.code_name()), format!("The specified {} does not exist.", kind.noun()))
    }

    /// 409 `<Kind>Exists`, e.g. `JobExists`: "The specified job already exists."
    pub fn exists(kind: ResourceKind) -> Self {
        Self::new(StatusCode::CONFLICT, &format!("{}Exists", kind.code_name()), format!("The specified {} already exists.", kind.noun()))
    }

    /// 409 `<Kind>BeingDeleted`, e.g. `PoolBeingDeleted`.
    pub fn being_deleted(kind: ResourceKind) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            &format!("{}BeingDeleted", kind.code_name()),
            format!("The specified {} has been marked for deletion and is being reclaimed.", kind.noun()),
        )
    }

    /// The same error about a property nested under `parent` (a job schedule's
    /// `jobSpecification`): its `PropertyName` gets the `parent.` prefix.
    pub fn under(mut self, parent: &str) -> Self {
        for (k, v) in self.values.iter_mut() {
            if k == "PropertyName" {
                *v = format!("{parent}.{v}");
            }
        }
        self
    }

    /// 400 `MissingRequiredProperty` naming the property (JSON path in the body).
    pub fn missing_property(name: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MissingRequiredProperty", "A required property was not specified in the request body.")
            .with("PropertyName", name)
    }

    /// 400 `InvalidPropertyValue` naming the property, the value and the reason.
    pub fn invalid_property(name: &str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPropertyValue",
            "The value provided for one of the properties in the request body is invalid.",
        )
        .with("PropertyName", name)
        .with_nonempty("PropertyValue", value.into())
        .with("Reason", reason)
    }

    /// Adds a `{key, value}` detail pair unless the value is empty.
    pub fn with_nonempty(self, key: &str, value: String) -> Self {
        if value.is_empty() {
            self
        } else {
            self.with(key, value)
        }
    }

    /// 400 `InvalidRequestBody`: the body is not valid JSON or has the wrong shape.
    pub fn invalid_body(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestBody", "The specified Request Body is not syntactically valid.")
            .with("Reason", reason)
    }

    /// 400 `InvalidHeaderValue` naming the header.
    pub fn invalid_header(name: &str, value: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
            .with("HeaderName", name)
            .with("HeaderValue", value)
    }

    /// 400 `InvalidQueryParameterValue` naming the parameter, its value and the reason.
    pub fn invalid_query(name: &str, value: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
        .with("QueryParameterName", name)
        .with("QueryParameterValue", value)
        .with("Reason", reason)
    }

    /// 404 `InvalidUri`-style answer for a path that names no operation of this api-version.
    pub fn unknown_path(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", "The specified resource does not exist.").with("Path", path)
    }

    /// 501 `NotImplemented`: an operation the caller's api-version has, that openbatch does not
    /// implement yet (rather than the 404 of a path no version has).
    pub fn not_implemented(method: &str, template: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("openbatch does not implement the operation {method} {template} yet."),
        )
        .with("Operation", format!("{method} {template}"))
    }

    /// 405 for a known path with a method it does not take.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")
            .with("HttpVerb", method)
    }

    /// 413 `RequestBodyTooLarge`.
    pub fn body_too_large(limit: &str) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
        .with("MaxLimit", limit)
    }

    /// 409 `ConditionNotMet` / 412: an `If-*` precondition failed.
    pub fn condition_not_met() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        )
    }

    /// 409 with a state-conflict code such as `JobCompleted` or `PoolResizing`.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 `InternalError`; the cause is logged, not shown to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Server encountered an internal error. Please try again after some time.",
        )
    }

    /// The Batch error body for this error, with the request id and time appended to the
    /// message as the real service does.
    pub fn body(&self, account_url: &str, request_id: &str, now: &str) -> Value {
        let mut body = json!({
            "odata.metadata": format!(
                "{account_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"
            ),
            "code": self.code,
            "message": {
                "lang": "en-US",
                "value": format!("{}\nRequestId:{}\nTime:{}", self.message, request_id, now),
            },
        });
        if !self.values.is_empty() {
            body["values"] = Value::Array(self.values.iter().map(|(k, v)| json!({"key": k, "value": v})).collect());
        }
        body
    }
}

impl From<crate::store::StoreError> for BatchError {
    fn from(e: crate::store::StoreError) -> Self {
        BatchError::internal(e)
    }
}

/// The kinds of resources that appear in error codes (`PoolNotFound`, `TaskExists`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Pool,
    Job,
    Task,
    Node,
    File,
    JobSchedule,
    Certificate,
}

impl ResourceKind {
    fn code_name(self) -> &'static str {
        match self {
            ResourceKind::Pool => "Pool",
            ResourceKind::Job => "Job",
            ResourceKind::Task => "Task",
            ResourceKind::Node => "Node",
            ResourceKind::File => "File",
            ResourceKind::JobSchedule => "JobSchedule",
            ResourceKind::Certificate => "Certificate",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            ResourceKind::Pool => "pool",
            ResourceKind::Job => "job",
            ResourceKind::Task => "task",
            ResourceKind::Node => "node",
            ResourceKind::File => "file",
            ResourceKind::JobSchedule => "job schedule",
            ResourceKind::Certificate => "certificate",
        }
    }
}
