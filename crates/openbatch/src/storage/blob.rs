//! Blob containers through `object_store`'s Azure client: container URLs of Azure Blob
//! (`https://<account>.blob.core.windows.net/<container>`) and of Azurite (path-style,
//! `http://<host>:<port>/<account>/<container>`), with a SAS from the URL's query, an account
//! key, or no credentials (public containers); streamed downloads to disk and uploads from it.

use super::ContainerRef;
use futures::StreamExt;
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path as BlobPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Chunk size of uploads (bytes): files larger than this go up in blocks of this size.
pub const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

/// What went wrong talking to a container, in the terms Batch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobErrorKind {
    NotFound,
    AccessDenied,
    /// A failure a retry may cure (network, 5xx, throttling).
    Transient,
    Other,
}

/// A container URL split into what the client needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerAddress {
    /// Account endpoint: `https://<account>.blob.core.windows.net` or `http://host:port/<account>`.
    pub endpoint: String,
    pub account: String,
    pub container: String,
    /// SAS query pairs, if the URL carried a query.
    pub sas: Vec<(String, String)>,
}

/// Splits a container URL. Host-style when the URL's path has one segment (the container);
/// path-style (Azurite, IP hosts) when it has two (account, container).
///
/// Errors: a reason, when the URL is not a container URL.
pub fn parse_container_url(url: &str) -> Result<ContainerAddress, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("'{}' is not a URL: {e}", super::redact(url)))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("'{}' is not an http(s) URL", super::redact(url)));
    }
    let host = u.host_str().ok_or_else(|| format!("'{}' has no host", super::redact(url)))?;
    let authority = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let segs: Vec<&str> = u.path_segments().map(|s| s.filter(|x| !x.is_empty()).collect()).unwrap_or_default();
    let sas = u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let (endpoint, account, container) = match segs.as_slice() {
        [container] => {
            let account = host.split('.').next().unwrap_or(host).to_string();
            (format!("{}://{authority}", u.scheme()), account, container.to_string())
        }
        [account, container] => (format!("{}://{authority}/{account}", u.scheme()), account.to_string(), container.to_string()),
        _ => return Err(format!("'{}' does not name a blob container", super::redact(url))),
    };
    Ok(ContainerAddress { endpoint, account, container, sas })
}

/// An `object_store` client for the container.
///
/// Errors: a reason, when the URL is not a container URL or the client cannot be built.
pub fn container_store(c: &ContainerRef) -> Result<MicrosoftAzure, String> {
    let a = parse_container_url(&c.url)?;
    let mut b = MicrosoftAzureBuilder::new()
        .with_account(&a.account)
        .with_container_name(&a.container)
        .with_endpoint(a.endpoint.clone())
        .with_allow_http(true);
    b = match (&c.account_key, a.sas.is_empty()) {
        (Some(key), _) => b.with_access_key(key),
        (None, false) => b.with_sas_authorization(a.sas.clone()),
        (None, true) => b.with_skip_signature(true),
    };
    b.build().map_err(|e| e.to_string())
}

/// Classifies an `object_store` error. Its typed variants say it directly; a generic one
/// (what an Azure listing answers) is read from the HTTP status its message carries
/// (`non-2xx status code: 404 …`) or the storage error code in the body (`<Code>…</Code>`),
/// never from digits elsewhere in the text (timings, request ids).
pub fn kind_of(e: &object_store::Error) -> BlobErrorKind {
    match e {
        object_store::Error::NotFound { .. } => BlobErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => BlobErrorKind::AccessDenied,
        object_store::Error::Generic { .. } => kind_of_text(&e.to_string()),
        _ => BlobErrorKind::Other,
    }
}

/// The HTTP status an `object_store` error text reports: the three digits right after
/// `status` (`non-2xx status code: 403 Forbidden`, `with status 404 Not Found`).
pub fn http_status(text: &str) -> Option<u16> {
    text.match_indices("status").find_map(|(i, _)| {
        let rest = text[i + "status".len()..].trim_start_matches([' ', ':']);
        let rest = rest.strip_prefix("code").map(|r| r.trim_start_matches([' ', ':'])).unwrap_or(rest);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (digits.len() == 3).then(|| digits.parse().ok()).flatten().filter(|s| (100..600).contains(s))
    })
}

/// The storage service's error code in an error text (`<Code>ContainerNotFound</Code>`).
pub fn storage_code(text: &str) -> Option<&str> {
    let at = text.find("<Code>")? + "<Code>".len();
    let len = text[at..].find("</Code>")?;
    Some(&text[at..at + len]).filter(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn kind_of_text(text: &str) -> BlobErrorKind {
    let (status, code) = (http_status(text), storage_code(text).unwrap_or(""));
    match (status, code) {
        (Some(404), _) | (_, "ContainerNotFound" | "BlobNotFound" | "ResourceNotFound") => BlobErrorKind::NotFound,
        (Some(401 | 403), _) | (_, "AuthenticationFailed" | "AuthorizationFailure" | "AuthorizationPermissionMismatch") => {
            BlobErrorKind::AccessDenied
        }
        (Some(s), _) if s < 500 && s != 408 && s != 429 => BlobErrorKind::Other,
        _ => BlobErrorKind::Transient,
    }
}

/// Names of the blobs under `prefix` (all when `None`), in listing order.
pub async fn list(store: &MicrosoftAzure, prefix: Option<&str>) -> Result<Vec<String>, object_store::Error> {
    // object_store lists by path segments; a partial file name prefix is filtered here.
    let dir = prefix.and_then(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()));
    let dir_path = dir.as_deref().map(BlobPath::from);
    let mut names = Vec::new();
    let mut s = store.list(dir_path.as_ref());
    while let Some(meta) = s.next().await {
        let name = meta?.location.to_string();
        if prefix.is_none_or(|p| name.starts_with(p)) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Streams blob `name` to `dest` (through a temporary file beside it, renamed at the end).
pub async fn download(store: &MicrosoftAzure, name: &str, dest: &Path) -> Result<u64, DownloadError> {
    let got = store.get(&BlobPath::from(name)).await.map_err(DownloadError::Blob)?;
    write_stream(got.into_stream().map(|c| c.map_err(DownloadError::Blob)), dest).await
}

/// Writes a stream of chunks to `dest` through a temporary file beside it, renamed at the end
/// (removed on failure). The temporary name is unique to this write: the instances of a
/// multi-instance task download the same common resource files into one shared directory at
/// the same time, and each must rename its own complete copy.
async fn write_stream<S>(stream: S, dest: &Path) -> Result<u64, DownloadError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, DownloadError>> + Unpin,
{
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.openbatch-partial", std::process::id()));
    let tmp = dest.with_file_name(name);
    let written = write_to(stream, &tmp).await;
    let renamed = match written {
        Ok(n) => tokio::fs::rename(&tmp, dest).await.map(|()| n).map_err(DownloadError::Io),
        Err(e) => Err(e),
    };
    if renamed.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    renamed
}

async fn write_to<S>(mut stream: S, tmp: &Path) -> Result<u64, DownloadError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, DownloadError>> + Unpin,
{
    let mut f = tokio::fs::File::create(tmp).await.map_err(DownloadError::Io)?;
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        f.write_all(&chunk).await.map_err(DownloadError::Io)?;
    }
    f.flush().await.map_err(DownloadError::Io)?;
    Ok(n)
}

/// Why a download failed.
#[derive(Debug)]
pub enum DownloadError {
    Blob(object_store::Error),
    Http { status: u16 },
    Network(String),
    Io(std::io::Error),
}

impl DownloadError {
    /// How to report it (and whether to retry).
    pub fn kind(&self) -> BlobErrorKind {
        match self {
            DownloadError::Blob(e) => kind_of(e),
            DownloadError::Http { status: 404 } => BlobErrorKind::NotFound,
            DownloadError::Http { status: 401 | 403 } => BlobErrorKind::AccessDenied,
            DownloadError::Http { status } if *status == 408 || *status == 429 || *status >= 500 => BlobErrorKind::Transient,
            DownloadError::Http { .. } => BlobErrorKind::Other,
            DownloadError::Network(_) => BlobErrorKind::Transient,
            DownloadError::Io(_) => BlobErrorKind::Other,
        }
    }
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownloadError::Blob(e) => write!(f, "{e}"),
            DownloadError::Http { status } => write!(f, "the server answered HTTP {status}"),
            DownloadError::Network(e) => write!(f, "{e}"),
            DownloadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Streams any HTTP(S) URL to `dest` (through a temporary file).
pub async fn download_url(client: &reqwest::Client, url: &str, dest: &Path) -> Result<u64, DownloadError> {
    let resp = client.get(url).send().await.map_err(|e| DownloadError::Network(without_url(&e)))?;
    if !resp.status().is_success() {
        return Err(DownloadError::Http { status: resp.status().as_u16() });
    }
    write_stream(resp.bytes_stream().map(|c| c.map_err(|e| DownloadError::Network(without_url(&e)))), dest).await
}

/// A reqwest error's text without the URL (which may carry a SAS).
fn without_url(e: &reqwest::Error) -> String {
    let mut e2 = String::new();
    if e.is_connect() {
        e2.push_str("could not connect");
    } else if e.is_timeout() {
        e2.push_str("timed out");
    } else {
        e2.push_str("the transfer failed");
    }
    if let Some(src) = std::error::Error::source(e) {
        e2.push_str(&format!(": {src}"));
    }
    e2
}

/// Uploads the file at `src` as blob `name`, in blocks of [`UPLOAD_CHUNK`] for large files,
/// with the given attributes (content type, encoding, metadata, …).
pub async fn upload(store: &MicrosoftAzure, src: &Path, name: &str, attributes: object_store::Attributes) -> Result<u64, String> {
    use tokio::io::AsyncReadExt;
    let location = BlobPath::from(name);
    let mut f = tokio::fs::File::open(src).await.map_err(|e| e.to_string())?;
    let size = f.metadata().await.map_err(|e| e.to_string())?.len();
    if size <= UPLOAD_CHUNK as u64 {
        let mut buf = Vec::with_capacity(size as usize);
        f.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let opts = object_store::PutOptions { attributes, ..Default::default() };
        store.put_opts(&location, buf.into(), opts).await.map_err(|e| e.to_string())?;
        return Ok(size);
    }
    let opts = object_store::PutMultipartOptions { attributes, ..Default::default() };
    let upload = store.put_multipart_opts(&location, opts).await.map_err(|e| e.to_string())?;
    let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, UPLOAD_CHUNK);
    let mut buf = vec![0u8; UPLOAD_CHUNK];
    loop {
        let n = f.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        w.wait_for_capacity(2).await.map_err(|e| e.to_string())?;
        w.write(&buf[..n]);
    }
    w.finish().await.map_err(|e| e.to_string())?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_errors_are_classified_by_their_status_not_other_digits() {
        let gone = "Error performing GET http://h/c?restype=container&comp=list in 2.994033ms - Server returned non-2xx status code: 404 Not Found: <?xml?><Error><Code>ContainerNotFound</Code></Error>";
        assert_eq!(kind_of_text(gone), BlobErrorKind::NotFound);
        let denied = "Error performing GET REDACTED in 40.4ms - Server returned non-2xx status code: 403 Forbidden: <Error><Code>AuthorizationPermissionMismatch</Code></Error>";
        assert_eq!(kind_of_text(denied), BlobErrorKind::AccessDenied);
        assert_eq!(
            kind_of_text("Error performing GET in 404.1ms - Server returned non-2xx status code: 503 Service Unavailable"),
            BlobErrorKind::Transient
        );
        assert_eq!(kind_of_text("Error performing GET in 1.4ms - error sending request"), BlobErrorKind::Transient);
        assert_eq!(
            kind_of_text("Error performing GET in 403ms - Server returned non-2xx status code: 400 Bad Request"),
            BlobErrorKind::Other
        );
    }

    #[test]
    fn container_urls_of_azure_and_azurite() {
        let a = parse_container_url("https://acct.blob.core.windows.net/input?sv=2021&sig=x%2By").unwrap();
        assert_eq!(
            (a.endpoint.as_str(), a.account.as_str(), a.container.as_str()),
            ("https://acct.blob.core.windows.net", "acct", "input")
        );
        assert!(a.sas.contains(&("sig".to_string(), "x+y".to_string())));
        let a = parse_container_url("http://127.0.0.1:10000/devstoreaccount1/data").unwrap();
        assert_eq!(
            (a.endpoint.as_str(), a.account.as_str(), a.container.as_str()),
            ("http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "data")
        );
        assert!(a.sas.is_empty());
        assert!(parse_container_url("http://127.0.0.1:10000/").is_err());
        assert!(parse_container_url("ftp://x/y").is_err());
        assert!(parse_container_url("not a url").is_err());
    }
}
