//! Certificate operations (api-versions 2015-06-01.2.0 to 2024-07-01.20.0): Add, List, Get,
//! Delete and Cancel Deletion; the check of the `certificateReferences` of pools; and the
//! node agents' download of the certificates installed on their node.
//!
//! Add checks and stores the certificate (`model::certificate::accept`); what Delete and
//! Cancel Deletion do is the reactor's (`scheduler::reactor::certificates`). Answers follow
//! the recorded service: Add 201 with `Location`/`DataServiceId` and no ETag, Delete 202,
//! Cancel Deletion 204, Get and List 200. A certificate's data and password are never shown.

use crate::api::error::{ApiResult, BatchError, ResourceKind};
use crate::api::reply::{entity, to_map, Reply};
use crate::api::router::CertificateKey;
use crate::api::{App, Ctx};
use crate::model::certificate::{self, Certificate, CertificateAdd, CertificateState, Reference, SHA1};
use crate::model::time::{format_timestamp, Clock};
use crate::scheduler::reactor::Event;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The certificate's URL under `base`, as Get and List show it.
pub fn url(base: &str, c: &Certificate) -> String {
    format!("{base}/certificates(thumbprintAlgorithm={},thumbprint={})", c.thumbprint_algorithm, c.thumbprint)
}

/// The wire shape of a certificate (Certificate, 2022-10-01.16.0): never its data or password.
pub fn render(base: &str, c: &Certificate) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("thumbprint".into(), Value::String(c.thumbprint.clone()));
    m.insert("thumbprintAlgorithm".into(), Value::String(c.thumbprint_algorithm.clone()));
    m.insert("url".into(), Value::String(url(base, c)));
    m.insert("state".into(), Value::String(c.state.as_str().into()));
    m.insert("stateTransitionTime".into(), Value::String(format_timestamp(&c.state_transition_time)));
    if let (Some(p), Some(t)) = (c.previous_state, &c.previous_state_transition_time) {
        m.insert("previousState".into(), Value::String(p.as_str().into()));
        m.insert("previousStateTransitionTime".into(), Value::String(format_timestamp(t)));
    }
    m.insert("publicData".into(), Value::String(c.public_data.clone()));
    if let Some(e) = &c.delete_certificate_error {
        m.insert("deleteCertificateError".into(), Value::Object(to_map(e)));
    }
    m
}

/// The record key a path's certificate key names. Errors: 400 `InvalidUri` for a thumbprint
/// that is not hex (Get, Delete and Cancel Deletion of anything else answer 404).
fn record_key(k: &CertificateKey) -> ApiResult<String> {
    let tp = certificate::normalize_thumbprint(&k.thumbprint);
    if tp.is_empty() || !tp.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(BatchError::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        )
        .with("Reason", "A thumbprint is a sequence of hex digits."));
    }
    Ok(certificate::key(&k.thumbprint_algorithm, &tp))
}

async fn load(app: &App, k: &CertificateKey) -> ApiResult<Certificate> {
    let id = record_key(k)?;
    app.store.get::<Certificate>("", &id).await?.ok_or_else(|| BatchError::not_found(ResourceKind::Certificate))
}

/// Certificate Add: 201 with `Location` and `DataServiceId` (written
/// `certificates(ThumbprintAlgorithm=…,Thumbprint=…)` as the service writes them).
///
/// Errors: 400 `InvalidPropertyValue` naming `thumbprintAlgorithm`, `thumbprint`, `data` or
/// `password` (see [`certificate::accept`]), 400 `MissingRequiredProperty`; 409
/// `CertificateExists`.
pub async fn add(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Reply> {
    let a: CertificateAdd = ctx.parse("CertificateAddParameter", body)?;
    let c = certificate::accept(a, Clock::now()).map_err(|e| BatchError::invalid_property(e.property, "", e.reason))?;
    let mut tx = app.store.begin().await?;
    if tx.exists::<Certificate>("", &c.id).await? {
        return Err(BatchError::exists(ResourceKind::Certificate));
    }
    tx.put(&c).await?;
    tx.commit().await?;
    let location = format!("{}/certificates(ThumbprintAlgorithm={},Thumbprint={})", ctx.base, c.thumbprint_algorithm, c.thumbprint);
    Ok(Reply::empty(StatusCode::CREATED).header("Location", &location).header("DataServiceId", &location))
}

/// Certificate List (`$filter` on `state` and `stateTransitionTime`, `$select`, paging).
pub async fn list(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    super::list_records::<Certificate>(app, ctx, "", crate::odata::ListKind::Certificates, "certificates", "Certificate", render).await
}

/// Certificate Get; 404 `CertificateNotFound`.
pub async fn get(app: &App, ctx: &Ctx, k: &CertificateKey) -> ApiResult<Reply> {
    let c = load(app, k).await?;
    let body = entity(Some(format!("{}/$metadata#certificates/@Element", ctx.base)), None, render(&ctx.base, &c));
    Ok(Reply::json(ctx.view("Certificate", body)))
}

/// Certificate Delete: 202; the certificate is `deleting`, then gone or `deletefailed`.
/// 404 `CertificateNotFound`, 409 `CertificateBeingDeleted`.
pub async fn delete(app: &App, k: &CertificateKey) -> ApiResult<Reply> {
    let c = load(app, k).await?;
    app.driver.call(Event::DeleteCertificate { id: c.id }).await?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Certificate Cancel Deletion: 204; a `deletefailed` certificate is `active` again.
/// 404 `CertificateNotFound`, 409 `CertificateStateActive` or `CertificateBeingDeleted`.
pub async fn cancel_deletion(app: &App, ctx: &Ctx, k: &CertificateKey) -> ApiResult<Reply> {
    let c = load(app, k).await?;
    app.driver.call(Event::CancelCertificateDeletion { id: c.id.clone() }).await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT).header("DataServiceId", format!("{}/canceldelete", url(&ctx.base, &c))))
}

/// Checks the `certificateReferences` of a pool (`path` names the property) inside the
/// transaction that stores the pool, so a certificate's deletion cannot slip in between:
/// each reference has a `thumbprint` and the `sha1` algorithm and names a certificate of the
/// account that is not being deleted.
///
/// Errors: 400 `MissingRequiredProperty` / `InvalidPropertyValue` naming the reference's
/// property; 409 `InvalidCertificateReferences` listing each missing (`<alg>-<thumbprint>:
/// not found`) or deleting certificate.
pub async fn check_references(tx: &mut crate::store::Tx, path: &str, refs: Option<&[Value]>) -> ApiResult<()> {
    let list = refs.unwrap_or_default();
    for (i, r) in list.iter().enumerate() {
        let at = |p: &str| format!("{path}[{i}].{p}");
        match r.get("thumbprint").and_then(Value::as_str) {
            None => return Err(BatchError::missing_property(&at("thumbprint"))),
            Some(t) if t.trim().is_empty() => return Err(BatchError::invalid_property(&at("thumbprint"), "", "A thumbprint is required.")),
            Some(_) => {}
        }
        match r.get("thumbprintAlgorithm").and_then(Value::as_str) {
            None => return Err(BatchError::missing_property(&at("thumbprintAlgorithm"))),
            Some(a) if !a.eq_ignore_ascii_case(SHA1) => {
                return Err(BatchError::invalid_property(&at("thumbprintAlgorithm"), a, "The thumbprint algorithm must be sha1."))
            }
            Some(_) => {}
        }
    }
    let mut bad = Vec::new();
    for r in Reference::from_api(Some(list)) {
        match tx.get::<Certificate>("", &r.key()).await? {
            None => bad.push(format!("{}: not found", r.key())),
            Some(c) if c.state == CertificateState::Deleting => bad.push(format!("{}: being deleted", r.key())),
            Some(_) => {}
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(BatchError::conflict("InvalidCertificateReferences", "One or more of the specified certificate references are invalid.")
        .with("PropertyName", path)
        .with("Reason", bad.join(", ")))
}

/// A node agent's download of a certificate installed on its node (`sha1-<thumbprint>`):
/// headers `x-openbatch-pool`, `x-openbatch-node`, `x-openbatch-token`. Answers
/// `{"format": "pfx"|"cer", "data": <base64>, "password"?: …}`; 403 for a wrong token, 404 when
/// the node does not have that certificate or the account no longer has it.
pub async fn agent_get(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(node) = crate::api::handlers::applications::agent_node(&app, &headers).await else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if !certificate::references(Some(&node.certificate_references), &id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match app.store.get::<Certificate>("", &id).await {
        Ok(Some(c)) => {
            let mut body = json!({"format": c.format.as_str(), "data": c.data});
            if let Some(p) = &c.password {
                body["password"] = Value::String(p.clone());
            }
            axum::Json(body).into_response()
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
