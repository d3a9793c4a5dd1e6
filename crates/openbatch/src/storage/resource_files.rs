//! Resource files: checked when a task (start task, preparation or release task) is added,
//! resolved by the service into [`ResourceFileSpec`]s, and downloaded by the node agent into
//! the working directory before the command starts — streamed to disk, a few at a time, with
//! retries on transient errors. A failure ends the execution without running the command; its
//! `failureInfo` has category `UserError`, a code naming what went wrong and details naming
//! the file and the URL (without its SAS).

use super::blob::{self, BlobErrorKind, DownloadError};
use super::{redact, relative_path, ContainerRef, ResourceFileSpec, ResourceSource, TransferError};
use futures::StreamExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Batch account's linked storage account (`autoStorageContainerName`), from `openbatch
/// serve --storage-url/--storage-key`.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoStorage {
    /// The blob service URL: `https://<account>.blob.core.windows.net` or Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1`.
    pub url: String,
    /// The storage account key (base64).
    pub key: String,
}

impl AutoStorage {
    /// The container `name` of the linked account.
    pub fn container(&self, name: &str) -> ContainerRef {
        ContainerRef { url: format!("{}/{name}", self.url.trim_end_matches('/')), account_key: Some(self.key.clone()) }
    }
}

/// How many files an execution downloads at once.
pub const CONCURRENCY: usize = 4;
/// Attempts per file when the failure is transient (network, 5xx, throttling).
pub const ATTEMPTS: u32 = 3;

/// Checks one API `ResourceFile` (canonical names) at `path` (e.g. `resourceFiles[0]`).
///
/// Errors: `(property, value, reason)` for a 400 `InvalidPropertyValue`: not exactly one of
/// `httpUrl`, `storageContainerUrl`, `autoStorageContainerName`; `httpUrl` without `filePath`;
/// `blobPrefix` with `httpUrl`; a `filePath` that is absolute or uses `..`; a `fileMode` that
/// is not octal; `autoStorageContainerName` when the account has no linked storage; an
/// `identityReference` (openbatch nodes have no managed identities).
pub fn check(path: &str, rf: &Value, auto: Option<&AutoStorage>) -> Result<(), (String, String, String)> {
    let s = |k: &str| rf.get(k).and_then(Value::as_str);
    let err = |k: &str, v: &str, why: String| Err((format!("{path}.{k}"), v.to_string(), why));
    let sources: Vec<&str> =
        ["httpUrl", "storageContainerUrl", "autoStorageContainerName"].into_iter().filter(|k| s(k).is_some()).collect();
    if sources.len() != 1 {
        return err(
            "httpUrl",
            "",
            "A resource file names exactly one of httpUrl, storageContainerUrl and autoStorageContainerName.".into(),
        );
    }
    if s("httpUrl").is_some() && s("filePath").is_none_or(str::is_empty) {
        return err("filePath", "", "filePath is required with httpUrl: it names the file to download to.".into());
    }
    if s("httpUrl").is_some() && s("blobPrefix").is_some() {
        return err(
            "blobPrefix",
            s("blobPrefix").unwrap_or(""),
            "blobPrefix applies only to storageContainerUrl and autoStorageContainerName.".into(),
        );
    }
    if let Some(url) = s("storageContainerUrl") {
        if let Err(why) = blob::parse_container_url(url) {
            return err("storageContainerUrl", &redact(url), why);
        }
    }
    if let Some(url) = s("httpUrl") {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return err("httpUrl", &redact(url), "httpUrl must be an http or https URL.".into());
        }
    }
    if let Some(p) = s("filePath") {
        if let Err(why) = relative_path(p) {
            return err("filePath", p, why);
        }
    }
    if let Some(m) = s("fileMode") {
        if u32::from_str_radix(m, 8).map_or(true, |v| v > 0o7777) {
            return err("fileMode", m, "fileMode is an octal permission string such as 0644.".into());
        }
    }
    if let (Some(name), None) = (s("autoStorageContainerName"), auto) {
        return err(
            "autoStorageContainerName",
            name,
            "The account has no linked storage account: start openbatch serve with --storage-url and --storage-key.".into(),
        );
    }
    if rf.get("identityReference").is_some() {
        return err("identityReference", "", "openbatch compute nodes have no managed identities; use a SAS URL.".into());
    }
    Ok(())
}

/// Checks every resource file of a list property (`resourceFiles`, `commonResourceFiles`).
///
/// Errors: as [`check`].
pub fn check_all(path: &str, files: Option<&[Value]>, auto: Option<&AutoStorage>) -> Result<(), (String, String, String)> {
    for (i, rf) in files.unwrap_or_default().iter().enumerate() {
        check(&format!("{path}[{i}]"), rf, auto)?;
    }
    Ok(())
}

/// Turns checked API resource files into what the node agent downloads.
pub fn specs(files: Option<&[Value]>, auto: Option<&AutoStorage>) -> Vec<ResourceFileSpec> {
    let mut out = Vec::new();
    for rf in files.unwrap_or_default() {
        let s = |k: &str| rf.get(k).and_then(Value::as_str).map(str::to_string);
        let source = if let Some(url) = s("httpUrl") {
            ResourceSource::Http { url }
        } else if let Some(url) = s("storageContainerUrl") {
            ResourceSource::Container { container: ContainerRef { url, account_key: None }, prefix: s("blobPrefix") }
        } else if let (Some(name), Some(auto)) = (s("autoStorageContainerName"), auto) {
            ResourceSource::Container { container: auto.container(&name), prefix: s("blobPrefix") }
        } else {
            continue;
        };
        out.push(ResourceFileSpec { source, file_path: s("filePath"), file_mode: s("fileMode") });
    }
    out
}

/// One file to fetch.
struct Fetch {
    from: FetchFrom,
    /// Relative to the working directory.
    rel: String,
    mode: u32,
    /// The resource file's `filePath` (or the blob name), for error details.
    shown: String,
}

enum FetchFrom {
    Url(String),
    Blob { store: std::sync::Arc<object_store::azure::MicrosoftAzure>, name: String, container_url: String },
}

fn transfer_error(code: &'static str, message: &str, shown: &str, url: &str, reason: String) -> TransferError {
    TransferError {
        kind: crate::agent::protocol::FailureKind::PreProcessing,
        code,
        message: message.to_string(),
        details: vec![("FilePath".into(), shown.to_string()), ("Url".into(), redact(url)), ("Reason".into(), reason)],
    }
}

/// Downloads `files` into `wd`; returns how many files were written.
///
/// Errors: the first failure, as Batch reports it: `BlobNotFound` / `BlobAccessDenied` for a
/// file, `ResourceContainerNotFound` / `ResourceContainerAccessDenied` for a container that
/// cannot be listed, `BlobDownloadMiscError` otherwise (also a path that would leave `wd`).
pub async fn download_all(wd: &Path, files: &[ResourceFileSpec]) -> Result<usize, TransferError> {
    let mut fetches = Vec::new();
    for rf in files {
        let mode = rf.file_mode.as_deref().and_then(|m| u32::from_str_radix(m, 8).ok()).unwrap_or(0o770);
        let base = rf.file_path.as_deref().map(relative_path).transpose();
        let base = base.map_err(|why| {
            transfer_error("BlobDownloadMiscError", "The resource file path is not allowed", rf.file_path.as_deref().unwrap_or(""), "", why)
        })?;
        match &rf.source {
            ResourceSource::Http { url } => {
                let rel = base.unwrap_or_default();
                fetches.push(Fetch { from: FetchFrom::Url(url.clone()), shown: rel.clone(), rel, mode });
            }
            ResourceSource::Container { container, prefix } => {
                let store = blob::container_store(container).map_err(|why| {
                    transfer_error("BlobDownloadMiscError", "The resource container could not be reached", "", &container.url, why)
                })?;
                let names = list_with_retries(&store, prefix.as_deref()).await.map_err(|e| {
                    let (code, msg) = match blob::kind_of(&e) {
                        BlobErrorKind::NotFound => ("ResourceContainerNotFound", "The resource container does not exist"),
                        BlobErrorKind::AccessDenied => ("ResourceContainerAccessDenied", "Access to the resource container was denied"),
                        _ => ("BlobDownloadMiscError", "The resource container could not be listed"),
                    };
                    transfer_error(code, msg, rf.file_path.as_deref().unwrap_or(""), &container.url, e.to_string())
                })?;
                let store = std::sync::Arc::new(store);
                for name in names {
                    let rel = match &base {
                        Some(b) if !b.is_empty() => format!("{b}/{name}"),
                        _ => name.clone(),
                    };
                    let from = FetchFrom::Blob { store: store.clone(), name: name.clone(), container_url: container.url.clone() };
                    fetches.push(Fetch { from, rel, mode, shown: name });
                }
            }
        }
    }
    let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(30)).build().map_err(|e| TransferError {
        kind: crate::agent::protocol::FailureKind::PreProcessing,
        code: "BlobDownloadMiscError",
        message: "The download client could not be created".into(),
        details: vec![("Reason".into(), e.to_string())],
    })?;
    let count = fetches.len();
    let mut results = futures::stream::iter(fetches.into_iter().map(|f| fetch(&client, wd, f))).buffer_unordered(CONCURRENCY);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(count)
}

async fn list_with_retries(store: &object_store::azure::MicrosoftAzure, prefix: Option<&str>) -> Result<Vec<String>, object_store::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match blob::list(store, prefix).await {
            Err(e) if attempt < ATTEMPTS && blob::kind_of(&e) == BlobErrorKind::Transient => {
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            r => return r,
        }
    }
}

async fn fetch(client: &reqwest::Client, wd: &Path, f: Fetch) -> Result<(), TransferError> {
    let (url_shown, dest) = (
        match &f.from {
            FetchFrom::Url(u) => u.clone(),
            FetchFrom::Blob { container_url, name, .. } => format!("{}/{name}", redact(container_url)),
        },
        safe_destination(wd, &f.rel),
    );
    let dest =
        dest.map_err(|why| transfer_error("BlobDownloadMiscError", "The resource file path is not allowed", &f.shown, &url_shown, why))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = match &f.from {
            FetchFrom::Url(u) => blob::download_url(client, u, &dest).await,
            FetchFrom::Blob { store, name, .. } => blob::download(store, name, &dest).await,
        };
        match r {
            Ok(_) => break,
            Err(e) if attempt < ATTEMPTS && e.kind() == BlobErrorKind::Transient => {
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            Err(e) => {
                let (code, msg) = match (e.kind(), &e) {
                    (_, DownloadError::Io(_)) => ("BlobDownloadMiscError", "The resource file could not be written on the node"),
                    (BlobErrorKind::NotFound, _) => ("BlobNotFound", "The resource file does not exist"),
                    (BlobErrorKind::AccessDenied, _) => ("BlobAccessDenied", "Access to the resource file was denied"),
                    _ => ("BlobDownloadMiscError", "The resource file could not be downloaded"),
                };
                return Err(transfer_error(code, msg, &f.shown, &url_shown, e.to_string()));
            }
        }
    }
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(&dest, std::fs::Permissions::from_mode(f.mode)).await.map_err(|e| {
        transfer_error("BlobDownloadMiscError", "The resource file mode could not be set", &f.shown, &url_shown, e.to_string())
    })
}

/// The file `rel` under `wd`, its directories created; refused when an existing directory on
/// the way is a symlink leading out of `wd`.
fn safe_destination(wd: &Path, rel: &str) -> Result<PathBuf, String> {
    let rel = relative_path(rel)?;
    if rel.is_empty() {
        return Err("the destination is the working directory itself".into());
    }
    let dest = wd.join(&rel);
    let parent = dest.parent().unwrap_or(wd);
    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    let real_wd = wd.canonicalize().map_err(|e| e.to_string())?;
    let real_parent = parent.canonicalize().map_err(|e| e.to_string())?;
    if !real_parent.starts_with(&real_wd) {
        return Err(format!("'{rel}' leads out of the working directory"));
    }
    if std::fs::symlink_metadata(&dest).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&dest).map_err(|e| e.to_string())?;
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_name_the_property() {
        let auto = AutoStorage { url: "http://127.0.0.1:10000/devstoreaccount1".into(), key: "a2V5".into() };
        let ok = [
            json!({"httpUrl": "https://x/y?sig=1", "filePath": "in/y.txt", "fileMode": "0644"}),
            json!({"storageContainerUrl": "https://a.blob.core.windows.net/c?sig=1", "blobPrefix": "data/"}),
            json!({"autoStorageContainerName": "c", "filePath": "dir"}),
        ];
        for rf in &ok {
            assert_eq!(check("resourceFiles[0]", rf, Some(&auto)), Ok(()), "{rf}");
        }
        let bad = [
            (json!({"filePath": "x"}), "resourceFiles[0].httpUrl"),
            (json!({"httpUrl": "https://x/y", "storageContainerUrl": "https://a/c"}), "resourceFiles[0].httpUrl"),
            (json!({"httpUrl": "https://x/y"}), "resourceFiles[0].filePath"),
            (json!({"httpUrl": "https://x/y", "filePath": "../y"}), "resourceFiles[0].filePath"),
            (json!({"httpUrl": "https://x/y", "filePath": "/etc/y"}), "resourceFiles[0].filePath"),
            (json!({"httpUrl": "https://x/y", "filePath": "y", "fileMode": "rwx"}), "resourceFiles[0].fileMode"),
            (json!({"httpUrl": "https://x/y", "filePath": "y", "blobPrefix": "p"}), "resourceFiles[0].blobPrefix"),
            (json!({"storageContainerUrl": "https://a.blob.core.windows.net/"}), "resourceFiles[0].storageContainerUrl"),
        ];
        for (rf, prop) in &bad {
            assert_eq!(check("resourceFiles[0]", rf, Some(&auto)).unwrap_err().0, *prop, "{rf}");
        }
        let e = check("r", &json!({"autoStorageContainerName": "c"}), None).unwrap_err();
        assert_eq!(e.0, "r.autoStorageContainerName");
    }

    #[test]
    fn destinations_stay_in_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("wd");
        std::fs::create_dir_all(&wd).unwrap();
        assert!(safe_destination(&wd, "a/b/c.txt").unwrap().starts_with(&wd));
        assert!(safe_destination(&wd, "../x").is_err());
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, wd.join("link")).unwrap();
        assert!(safe_destination(&wd, "link/x.txt").is_err());
    }

    #[test]
    fn specs_resolve_auto_storage() {
        let auto = AutoStorage { url: "http://127.0.0.1:10000/devstoreaccount1/".into(), key: "a2V5".into() };
        let v = vec![json!({"autoStorageContainerName": "in", "blobPrefix": "x"}), json!({"httpUrl": "http://h/f", "filePath": "f"})];
        let s = specs(Some(&v), Some(&auto));
        assert_eq!(
            s[0].source,
            ResourceSource::Container {
                container: ContainerRef { url: "http://127.0.0.1:10000/devstoreaccount1/in".into(), account_key: Some("a2V5".into()) },
                prefix: Some("x".into())
            }
        );
        assert_eq!(s[1].source, ResourceSource::Http { url: "http://h/f".into() });
    }
}
