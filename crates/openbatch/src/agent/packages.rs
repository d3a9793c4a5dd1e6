//! Application packages on a node: each package version is downloaded from the service once
//! (`GET /agent/v1/applications/{id}/{version}`, authenticated by the node's token), extracted
//! into `applications/<id>/<version>/` of the node root and reused by every later execution;
//! executions find it through `AZ_BATCH_APP_PACKAGE_<id>_<version>` (and
//! `AZ_BATCH_APP_PACKAGE_<id>` for a reference to the default version).

use super::exec::NodeContext;
use super::protocol::{AppPackageRef, ExecFailure};
use crate::model::application::package_env_name;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// One installation at a time per agent, so two executions never extract the same package
/// into the same directory at once.
static INSTALLING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// The directory of a package version under the node root (`applications/<id>/<version>`,
/// with characters other than letters, digits, `.`, `-`, `_` replaced).
pub fn package_dir(root: &Path, id: &str, version: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        let t: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
        t.trim_start_matches('.').to_string()
    };
    root.join("applications").join(safe(id)).join(safe(version))
}

fn failure(app: &AppPackageRef, reason: String) -> ExecFailure {
    ExecFailure {
        kind: crate::agent::protocol::FailureKind::PreProcessing,
        code: "ApplicationPackageError".into(),
        message: "An application package could not be installed on the compute node".into(),
        detail: String::new(),
        details: vec![
            ("ApplicationId".into(), app.application_id.clone()),
            ("Version".into(), app.version.clone().unwrap_or_else(|| "(default)".into())),
            ("Reason".into(), reason),
        ],
    }
}

/// Installs `packages` (if not yet on the node) and returns their environment variables.
///
/// Errors: `ApplicationPackageError` (category `UserError`) naming the package, when the
/// service has no such package or it cannot be downloaded or extracted.
pub async fn install_all(ctx: &NodeContext, packages: &[AppPackageRef]) -> Result<Vec<(String, String)>, ExecFailure> {
    let mut env = Vec::new();
    for p in packages {
        let (version, dir) = install(ctx, p).await.map_err(|why| failure(p, why))?;
        let path = dir.display().to_string();
        env.push((package_env_name(&p.application_id, Some(&version)), path.clone()));
        if p.version.is_none() {
            env.push((package_env_name(&p.application_id, None), path));
        }
    }
    Ok(env)
}

async fn install(ctx: &NodeContext, p: &AppPackageRef) -> Result<(String, PathBuf), String> {
    let _guard = INSTALLING.lock().await;
    let asked = p.version.clone().unwrap_or_else(|| "@default".into());
    if let Some(v) = &p.version {
        let dir = package_dir(&ctx.root, &p.application_id, v);
        if dir.join(".openbatch-installed").exists() {
            return Ok((v.clone(), dir));
        }
    }
    let path = format!(
        "/agent/v1/applications/{}/{}",
        percent_encoding::utf8_percent_encode(&p.application_id, percent_encoding::NON_ALPHANUMERIC),
        percent_encoding::utf8_percent_encode(&asked, percent_encoding::NON_ALPHANUMERIC)
    );
    let resp = ctx.service_get(&path).send().await.map_err(|e| format!("the service could not be reached: {e}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Err("the account has no such package (add it with openbatch app add)".into());
    }
    if !resp.status().is_success() {
        return Err(format!("the service answered HTTP {}", resp.status().as_u16()));
    }
    let version = resp.headers().get("x-openbatch-version").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or(asked);
    let dir = package_dir(&ctx.root, &p.application_id, &version);
    if dir.join(".openbatch-installed").exists() {
        return Ok((version, dir));
    }
    let bytes = resp.bytes().await.map_err(|e| format!("the download failed: {e}"))?;
    let tmp = dir.with_extension("openbatch-partial");
    let target = tmp.clone();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let _ = std::fs::remove_dir_all(&target);
        std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a zip archive: {e}"))?;
        // `extract` keeps every entry inside the target directory (it refuses `..` and
        // absolute names) and restores Unix permissions.
        zip.extract(&target).map_err(|e| format!("the archive could not be extracted: {e}"))?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())??;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(".openbatch-installed"), b"").map_err(|e| e.to_string())?;
    Ok((version, dir))
}
