//! Applications and their packages: Applications List and Get (as the service shows them),
//! the administrator's package upload (`PUT /openbatch/v1/applications/{id}/versions/{version}`,
//! SharedKey-signed, what `openbatch app add` sends; not a Batch operation), the node agents'
//! package download (`GET /agent/v1/applications/{id}/{version}`, authenticated by the node's
//! token), and the check of `applicationPackageReferences` when a pool or task is added.

use crate::api::error::{ApiResult, BatchError};
use crate::api::reply::Reply;
use crate::api::{App, Ctx};
use crate::model::application::{package_file_name, Application};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest package accepted (bytes).
pub const MAX_PACKAGE: usize = 1 << 30;

/// Where a package version is stored: `<data dir>/applications/<id>/<version file>`.
pub fn package_path(app: &App, id: &str, version: &str) -> std::path::PathBuf {
    app.data_dir.join("applications").join(id.to_ascii_lowercase()).join(package_file_name(version))
}

fn render(a: &Application) -> Value {
    let mut v = json!({"id": a.id, "versions": a.versions});
    if let Some(d) = &a.display_name {
        v["displayName"] = json!(d);
    }
    v
}

fn not_found() -> BatchError {
    BatchError::new(StatusCode::NOT_FOUND, "ApplicationNotFound", "The specified application does not exist.")
}

/// Applications List: the applications with packages, by id (`maxresults` paging).
pub async fn list(app: &App, ctx: &Ctx) -> ApiResult<Reply> {
    let (max, after) = super::page_params(ctx)?;
    let apps = app.store.list::<Application>("", after.as_deref(), None, max).await?;
    let last = (apps.len() == max as usize).then(|| apps.last().map(|a| a.id.clone())).flatten();
    let items = apps.iter().map(|a| ctx.view("ApplicationSummary", render(a))).collect();
    Ok(super::list_reply(ctx, "listapplicationsummariesresponses", items, last.as_deref()))
}

/// Applications Get; 404 `ApplicationNotFound`.
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> ApiResult<Reply> {
    let a = app.store.get::<Application>("", id).await?.ok_or_else(not_found)?;
    let mut body = render(&a);
    body["odata.metadata"] = json!(format!("{}/$metadata#getapplicationsummaryresponse/@Element", ctx.base));
    Ok(Reply::json(ctx.view("ApplicationSummary", body)))
}

/// Checks `applicationPackageReferences` of a pool or task (`path` names the property): each
/// names an application with a package of that version, or with a default version when the
/// reference gives none.
///
/// Errors: 409 `InvalidApplicationPackageReferences` listing each reference that names no
/// package (as `<id>:<version or default>`).
pub async fn check_references(app: &App, path: &str, refs: Option<&[Value]>) -> ApiResult<()> {
    let mut bad = Vec::new();
    for r in refs.unwrap_or_default() {
        let id = r.get("applicationId").and_then(Value::as_str).unwrap_or("");
        let version = r.get("version").and_then(Value::as_str);
        let found = app.store.get::<Application>("", id).await?.and_then(|a| a.resolve(version));
        if found.is_none() {
            bad.push(format!("{id}:{}", version.unwrap_or("(default version)")));
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(BatchError::new(
        StatusCode::CONFLICT,
        "InvalidApplicationPackageReferences",
        "One or more of the specified application package references are invalid.",
    )
    .with("PropertyName", path)
    .with("Reason", format!("No package for {}: add it with `openbatch app add`.", bad.join(", "))))
}

/// The administrator's upload of a package version (`openbatch app add`): a SharedKey-signed
/// `PUT` whose body is the zip file; `?default=true` makes it the default version,
/// `?displayName=` names the application. 201 on success; 403 `AuthenticationFailed`, 400
/// `InvalidRequestBody` for a body that is not a zip archive, 413 `RequestBodyTooLarge`.
pub async fn admin_put_package(
    State(app): State<Arc<App>>,
    Path((id, version)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result: ApiResult<()> = async {
        app.account.verify(&method, uri.path(), uri.query(), &headers)?;
        super::check_id(&id)?;
        if version.is_empty() || version.len() > 64 {
            return Err(BatchError::invalid_property("version", version.clone(), "A version is 1 to 64 characters."));
        }
        if body.len() > MAX_PACKAGE {
            return Err(BatchError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestBodyTooLarge", "The package is larger than 1 GiB."));
        }
        zip::ZipArchive::new(std::io::Cursor::new(&body[..]))
            .map_err(|e| BatchError::invalid_body(format!("the package is not a zip archive: {e}")))?;
        let query: Vec<(String, String)> = crate::api::auth::form_pairs(uri.query().unwrap_or(""));
        let q = |k: &str| query.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        let path = package_path(&app, &id, &version);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| BatchError::internal(e.to_string()))?;
        }
        let tmp = path.with_extension("partial");
        tokio::fs::write(&tmp, &body).await.map_err(|e| BatchError::internal(e.to_string()))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| BatchError::internal(e.to_string()))?;
        let mut tx = app.store.begin().await?;
        let mut a: Application = tx.get("", &id).await?.unwrap_or(Application {
            id: id.clone(),
            display_name: None,
            versions: Vec::new(),
            default_version: None,
        });
        a.add_version(&version, q("default").is_some_and(|d| d.eq_ignore_ascii_case("true")));
        if let Some(name) = q("displayName") {
            a.display_name = Some(name);
        }
        tx.put(&a).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => crate::api::error_response("", e),
    }
}

/// The node a node agent's request comes from: the node named by the headers
/// `x-openbatch-pool` and `x-openbatch-node`, when `x-openbatch-token` is its agent token
/// (compared in constant time); `None` otherwise.
pub async fn agent_node(app: &App, headers: &HeaderMap) -> Option<crate::model::node::Node> {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let node = app.store.get::<crate::model::node::Node>(&h("x-openbatch-pool"), &h("x-openbatch-node")).await.ok()??;
    use subtle::ConstantTimeEq;
    bool::from(node.agent_token.as_bytes().ct_eq(h("x-openbatch-token").as_bytes())).then_some(node)
}

/// A node agent's download of a package: headers `x-openbatch-pool`, `x-openbatch-node` and
/// `x-openbatch-token` (the node's agent token). 404 when the package does not exist, 403 for
/// a wrong token.
pub async fn agent_get_package(State(app): State<Arc<App>>, Path((id, version)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if agent_node(&app, &headers).await.is_none() {
        return StatusCode::FORBIDDEN.into_response();
    }
    // `@default` asks for the application's default version; the answer names the version.
    let wanted = (version != "@default").then_some(version.as_str());
    let resolved = match app.store.get::<Application>("", &id).await {
        Ok(Some(a)) => a.resolve(wanted),
        _ => None,
    };
    let Some(version) = resolved else { return StatusCode::NOT_FOUND.into_response() };
    let file = match tokio::fs::File::open(package_path(&app, &id, &version)).await {
        Ok(f) => f,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let stream = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Response::builder()
        .header("content-type", "application/zip")
        .header("x-openbatch-version", version)
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
