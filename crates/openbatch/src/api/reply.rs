//! Building answers the way the real service shapes them: status codes per operation,
//! `request-id`, `DataServiceVersion: 3.0`, `ETag`/`Last-Modified` on entities,
//! `Location`/`DataServiceId` on creates and actions, and JSON bodies with `odata.metadata`
//! first (`Content-Type: application/json;odata=minimalmetadata`).

use crate::model::time::{etag_for, format_http_date, Timestamp};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// The body of an answer.
pub enum Body {
    Empty,
    Json(Value),
    Bytes {
        data: Vec<u8>,
        content_type: String,
    },
    /// Bytes produced while the answer is sent (a file read from a node); the length goes in
    /// a `Content-Length` header when known. An `Err` item aborts the response.
    Stream {
        stream: crate::scheduler::hub::ByteStream,
        content_type: String,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => write!(f, "Empty"),
            Body::Json(v) => write!(f, "Json({v})"),
            Body::Bytes { data, content_type } => write!(f, "Bytes({} bytes of {content_type})", data.len()),
            Body::Stream { content_type, .. } => write!(f, "Stream({content_type})"),
        }
    }
}

/// An answer: status, extra headers, body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Reply {
    /// An answer with no body.
    pub fn empty(status: StatusCode) -> Self {
        Reply { status, headers: Vec::new(), body: Body::Empty }
    }

    /// 200 with a JSON body.
    pub fn json(body: Value) -> Self {
        Reply { status: StatusCode::OK, headers: Vec::new(), body: Body::Json(body) }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Adds `ETag` and `Last-Modified` for an entity last modified at `t`.
    pub fn etag(self, t: &Timestamp) -> Self {
        self.header("ETag", etag_for(t)).header("Last-Modified", format_http_date(t))
    }

    /// 201 for an add: `Location` and `DataServiceId` are the new resource's URL.
    pub fn created(url: &str, t: &Timestamp) -> Self {
        Reply::empty(StatusCode::CREATED).header("Location", url).header("DataServiceId", url).etag(t)
    }

    /// An update or action answer: `DataServiceId` is the URL acted on, with the new ETag.
    pub fn updated(status: StatusCode, url: &str, t: &Timestamp) -> Self {
        Reply::empty(status).header("DataServiceId", url).etag(t)
    }
}

/// Puts `odata.metadata` first, then `id`/`url` (when given), then the rest of `fields`.
pub fn entity(metadata: Option<String>, id_url: Option<(&str, String)>, fields: Map<String, Value>) -> Value {
    let mut out = Map::new();
    if let Some(m) = metadata {
        out.insert("odata.metadata".into(), Value::String(m));
    }
    if let Some((id, url)) = id_url {
        out.insert("id".into(), Value::String(id.to_string()));
        out.insert("url".into(), Value::String(url));
    }
    for (k, v) in fields {
        if !out.contains_key(&k) {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

/// Serializes to a JSON object (an empty one if the value is not an object).
pub fn to_map<T: serde::Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}
