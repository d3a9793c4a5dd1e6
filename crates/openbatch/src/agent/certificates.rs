//! Certificates on a node, as Batch installs them on Linux compute nodes: each execution's
//! certificates directory (`<task dir>/certs`, `AZ_BATCH_CERTIFICATES_DIR`) holds the node's
//! certificates visible to it — a pfx as `sha1-<thumbprint>.pfx` with its password in
//! `sha1-<thumbprint>.pfx.pw`, a cer as `sha1-<thumbprint>.cer` (DER) — readable by the
//! task's user only (mode 0600).
//!
//! The agent downloads each certificate from the service once
//! (`GET /agent/v1/certificates/<algorithm>-<thumbprint>`, authenticated by the node's token)
//! into the node's own store `<node root>/certs/`, and copies it into an execution's
//! directory before the execution's command (the start task's first) runs.

use super::exec::NodeContext;
use super::protocol::{ExecFailure, ExecKind, FailureKind, NodeCertificate};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// One download at a time per agent, so two executions never write the same file at once.
static INSTALLING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// A certificate as the service hands it to the agent.
#[derive(Debug, serde::Deserialize)]
struct Download {
    /// `pfx` or `cer`.
    format: String,
    /// Base64 of the file.
    data: String,
    #[serde(default)]
    password: Option<String>,
}

fn failure(c: &NodeCertificate, reason: String) -> ExecFailure {
    ExecFailure {
        kind: FailureKind::PreProcessing,
        code: "CertificateInstallationError".into(),
        message: "A certificate could not be installed on the compute node".into(),
        detail: String::new(),
        details: vec![("Thumbprint".into(), c.thumbprint.clone()), ("Reason".into(), reason)],
    }
}

/// Puts the node's certificates visible to an execution of `kind` into `dir` (created).
///
/// Errors: `CertificateInstallationError` (a pre-processing failure) naming the certificate,
/// when it cannot be downloaded or written.
pub async fn install_all(ctx: &NodeContext, kind: &ExecKind, dir: &Path) -> Result<(), ExecFailure> {
    for c in ctx.certificates.iter().filter(|c| c.visible_to(kind)) {
        let files = ensure_stored(ctx, c).await.map_err(|why| failure(c, why))?;
        for file in files {
            let Some(name) = file.file_name() else { continue };
            let bytes = std::fs::read(&file).map_err(|e| failure(c, e.to_string()))?;
            write_private(&dir.join(name), &bytes).map_err(|e| failure(c, e.to_string()))?;
        }
    }
    Ok(())
}

/// The files of a certificate in the node's store, downloaded first when missing.
async fn ensure_stored(ctx: &NodeContext, c: &NodeCertificate) -> Result<Vec<PathBuf>, String> {
    let _guard = INSTALLING.lock().await;
    let store = ctx.root.join("certs");
    let stem = c.stem();
    let (pfx, pw, cer) = (store.join(format!("{stem}.pfx")), store.join(format!("{stem}.pfx.pw")), store.join(format!("{stem}.cer")));
    if pfx.exists() && pw.exists() {
        return Ok(vec![pfx, pw]);
    }
    if cer.exists() {
        return Ok(vec![cer]);
    }
    let path = format!("/agent/v1/certificates/{}", percent_encoding::utf8_percent_encode(&stem, percent_encoding::NON_ALPHANUMERIC));
    let resp = ctx.service_get(&path).send().await.map_err(|e| format!("the service could not be reached: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("the service answered HTTP {} for the certificate", resp.status().as_u16()));
    }
    let d: Download = resp.json().await.map_err(|e| format!("the download failed: {e}"))?;
    use base64::Engine;
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(d.data.trim()).map_err(|e| format!("the certificate is not base64: {e}"))?;
    std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
    // The password file comes first: a pfx without it counts as not installed.
    if d.format == "pfx" {
        write_private(&pw, d.password.unwrap_or_default().as_bytes()).map_err(|e| e.to_string())?;
        write_private(&pfx, &bytes).map_err(|e| e.to_string())?;
        Ok(vec![pfx, pw])
    } else {
        write_private(&cer, &bytes).map_err(|e| e.to_string())?;
        Ok(vec![cer])
    }
}

/// Writes `bytes` to `path` with mode 0600, through a temporary file renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("openbatch-partial");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_decides_which_executions_see_a_certificate() {
        let c = |v: &[&str]| NodeCertificate {
            thumbprint_algorithm: "sha1".into(),
            thumbprint: "ab".into(),
            visibility: v.iter().map(|s| s.to_string()).collect(),
        };
        let task = ExecKind::Task { job_id: "j".into(), task_id: "t".into() };
        assert!(c(&[]).visible_to(&ExecKind::StartTask) && c(&[]).visible_to(&task));
        assert!(c(&["starttask"]).visible_to(&ExecKind::StartTask) && !c(&["starttask"]).visible_to(&task));
        assert!(c(&["task"]).visible_to(&ExecKind::JobPreparation { job_id: "j".into() }));
        assert!(!c(&["remoteuser"]).visible_to(&task));
        assert_eq!(c(&[]).stem(), "sha1-ab");
    }

    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("certs").join("sha1-ab.pfx.pw");
        write_private(&p, b"secret").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
