//! Helpers for the HTTP integration tests: a service process per test (`openbatch serve`
//! on a free loopback port with its own data directory, killed with its node agents when the
//! handle drops), a request builder that signs requests with SharedKey the way the official
//! SDKs do, polling helpers with bounded timeouts, and small assertions on entities and lists
//! (ids, names, ETags) shared by the test files.
#![allow(dead_code)]

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The account every test service serves.
pub const ACCOUNT: &str = "acct";
/// The api-version the tests speak.
pub const API_VERSION: &str = "2022-10-01.16.0";
/// JSON content type the SDKs send.
pub const JSON_CT: &str = "application/json; odata=minimalmetadata; charset=utf-8";
/// An unlimited duration (.NET `TimeSpan.MaxValue` in ISO 8601): what an unset
/// `maxWallClockTime` reads back as.
pub const UNLIMITED: &str = "P10675199DT2H48M5.4775807S";

/// A base64 key of 64 random-looking bytes, different per service.
fn make_key() -> String {
    let mut bytes = [0u8; 64];
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ (std::process::id() as u64).rotate_left(32);
    let mut x = seed | 1;
    for b in bytes.iter_mut() {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().unwrap().port()
}

/// One running `openbatch serve` process. Dropping it kills the service and its node agents
/// (they share its process group).
pub struct Service {
    child: Child,
    pub base: String,
    pub key: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// Extra `serve` arguments, kept across [`Service::restart`].
    args: Vec<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: killpg on the process group this handle created (the service's pid).
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(self.dir.path().join("service.log")) {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- service log (last lines) ---");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

impl Service {
    /// Starts a service and waits until it answers HTTP.
    pub async fn start() -> Service {
        Self::start_with(&[]).await
    }

    /// Starts a service with extra `serve` arguments (e.g. `--clock-control`).
    pub async fn start_with(args: &[&str]) -> Service {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            match Self::try_start(args).await {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("the service did not start: {last_err}");
    }

    /// Kills the service (`kill -9`, its node agents too) and starts it again on the same data
    /// directory, port, key and arguments.
    pub async fn restart(&mut self) {
        // SAFETY: killpg on the process group this handle created (the service's pid).
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
        let port: u16 = self.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        self.child = spawn_serve(self.dir.path(), port, &self.key, &self.args, "service-restarted.log").expect("restart the service");
        self.wait_ready().await.expect("the restarted service answers");
    }

    async fn try_start(args: Vec<String>) -> Result<Service, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let key = make_key();
        let child = spawn_serve(dir.path(), port, &key, &args, "service.log")?;
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut svc = Service { child, base: format!("http://127.0.0.1:{port}"), key, client, dir, args };
        svc.wait_ready().await?;
        Ok(svc)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let svc = self;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = svc.child.try_wait() {
                return Err(format!("service exited early with {status}"));
            }
            if let Ok(r) = svc.client.get(format!("{}/supportedimages", svc.base)).send().await {
                // Any answer (it is unsigned, so an auth error) means the API is up.
                if r.headers().contains_key("request-id") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("the service did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves the service clock on (a service started with `--clock-control`) and returns
    /// the new time; the scheduler has acted on it when this returns.
    pub async fn advance_clock(&self, iso: &str) -> chrono::DateTime<chrono::Utc> {
        let r = self.req(Method::POST, "/openbatch/v1/clock").json(serde_json::json!({"advance": iso})).send().await;
        r.expect_status(200);
        ts(&r.json()["now"])
    }
}

impl Service {
    /// The service's process id (its node agents are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A request to `path` (which may carry a query) with api-version added.
    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        let url = Url::parse(&format!("{}{}", self.base, path)).expect("valid URL");
        Req {
            svc: self,
            method,
            url,
            api_version: Some(API_VERSION.to_string()),
            sign: Sign::Key(self.key.clone()),
            headers: Vec::new(),
            body: None,
            content_type: None,
            ocp_date: None,
        }
    }

    /// A request to an absolute URL exactly as given (e.g. an `odata.nextLink`).
    pub fn req_url(&self, method: Method, url: &str) -> Req<'_> {
        let mut r = self.req(method, "/");
        r.url = Url::parse(url).expect("valid absolute URL");
        r.api_version = None;
        r
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.req(Method::GET, path)
    }
    pub fn head(&self, path: &str) -> Req<'_> {
        self.req(Method::HEAD, path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        self.req(Method::POST, path)
    }
    pub fn put(&self, path: &str) -> Req<'_> {
        self.req(Method::PUT, path)
    }
    pub fn patch(&self, path: &str) -> Req<'_> {
        self.req(Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Req<'_> {
        self.req(Method::DELETE, path)
    }

    // ---- resource shortcuts -------------------------------------------------------------

    /// Adds a Linux pool (`id`, `targetDedicatedNodes`, plus `extra` merged in); asserts 201.
    pub async fn add_pool(&self, id: &str, nodes: u32, extra: Value) -> Resp {
        let mut body = linux_pool(id, nodes);
        merge(&mut body, extra);
        let r = self.post("/pools").json(body).send().await;
        r.expect_status(201);
        r
    }

    /// Adds a job on `pool` (plus `extra`); asserts 201.
    pub async fn add_job(&self, id: &str, pool: &str, extra: Value) -> Resp {
        let mut body = serde_json::json!({"id": id, "poolInfo": {"poolId": pool}});
        merge(&mut body, extra);
        let r = self.post("/jobs").json(body).send().await;
        r.expect_status(201);
        r
    }

    /// Adds a task (plus `extra`); asserts 201.
    pub async fn add_task(&self, job: &str, id: &str, command_line: &str, extra: Value) -> Resp {
        let mut body = serde_json::json!({"id": id, "commandLine": command_line});
        merge(&mut body, extra);
        let r = self.post(&format!("/jobs/{job}/tasks")).json(body).send().await;
        r.expect_status(201);
        r
    }

    /// GET a JSON entity; asserts 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).send().await;
        r.expect_status(200);
        r.json()
    }

    /// Waits until the pool is `steady` with `n` nodes, all `idle`; returns the node list.
    pub async fn wait_pool_idle(&self, pool: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let path = format!("/pools/{pool}");
        let nodes_path = format!("/pools/{pool}/nodes");
        poll(&format!("pool {pool} steady with {n} idle nodes"), timeout, || async {
            let p = self.get_json(&path).await;
            if p["allocationState"] != "steady" || p["currentDedicatedNodes"] != n as i64 {
                return None;
            }
            let nodes = self.get_json(&nodes_path).await["value"].as_array().cloned().unwrap_or_default();
            (nodes.len() == n && nodes.iter().all(|x| x["state"] == "idle")).then_some(nodes)
        })
        .await
    }

    /// Waits until the task is `completed`; returns it.
    pub async fn wait_task_completed(&self, job: &str, task: &str, timeout: Duration) -> Value {
        self.wait_task_state(job, task, "completed", timeout).await
    }

    /// Waits until the task reaches `state`; returns it.
    pub async fn wait_task_state(&self, job: &str, task: &str, state: &str, timeout: Duration) -> Value {
        let path = format!("/jobs/{job}/tasks/{task}");
        poll(&format!("task {job}/{task} {state}"), timeout, || async {
            let t = self.get_json(&path).await;
            (t["state"] == state).then_some(t)
        })
        .await
    }

    /// Reads a task file as text; asserts 200.
    pub async fn task_file(&self, job: &str, task: &str, file: &str) -> String {
        let r = self.get(&format!("/jobs/{job}/tasks/{task}/files/{file}")).send().await;
        r.expect_status(200);
        r.text()
    }
}

/// Starts `openbatch serve` on `port` with its data in `dir/data`, logging to `dir/<log>`.
fn spawn_serve(dir: &std::path::Path, port: u16, key: &str, args: &[String], log: &str) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(log)).map_err(|e| e.to_string())?;
    let child = Command::new(env!("CARGO_BIN_EXE_openbatch"))
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        // A relative data directory, as `cargo run -- serve` uses by default.
        .current_dir(dir)
        .arg("--data-dir")
        .arg("data")
        .arg("--account")
        .arg(ACCOUNT)
        .arg("--key")
        .arg(key)
        .args(args)
        .env("OPENBATCH_LOG", "warn")
        .env_remove("OPENBATCH_PUBLIC_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(child)
}

/// A Linux pool body on a supported image.
pub fn linux_pool(id: &str, nodes: u32) -> Value {
    serde_json::json!({
        "id": id,
        "vmSize": "STANDARD_D2S_V3",
        "virtualMachineConfiguration": {
            "imageReference": {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
            "nodeAgentSKUId": "batch.node.ubuntu 22.04"
        },
        "targetDedicatedNodes": nodes
    })
}

/// Shallow merge of `extra`'s keys into `base` (both objects).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// How a request is authenticated.
#[derive(Clone)]
pub enum Sign {
    /// SharedKey with this base64 key.
    Key(String),
    /// No Authorization header.
    None,
    /// This Authorization header verbatim.
    Raw(String),
}

/// A request being built.
pub struct Req<'a> {
    svc: &'a Service,
    method: Method,
    url: Url,
    api_version: Option<String>,
    sign: Sign,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    content_type: Option<String>,
    ocp_date: Option<String>,
}

impl<'a> Req<'a> {
    /// Sends this `ocp-date` instead of the current time.
    pub fn ocp_date(mut self, d: &str) -> Self {
        self.ocp_date = Some(d.to_string());
        self
    }
    /// Sends no api-version.
    pub fn no_api_version(mut self) -> Self {
        self.api_version = None;
        self
    }
    /// Sends this api-version.
    pub fn api_version(mut self, v: &str) -> Self {
        self.api_version = Some(v.to_string());
        self
    }
    /// Chooses the authentication.
    pub fn sign(mut self, s: Sign) -> Self {
        self.sign = s;
        self
    }
    /// Adds a header (`ocp-*` headers are signed).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// A JSON body with the SDKs' content type.
    pub fn json(mut self, v: Value) -> Self {
        self.body = Some(serde_json::to_vec(&v).unwrap());
        self.content_type = Some(JSON_CT.to_string());
        self
    }
    /// Raw body bytes with the JSON content type.
    pub fn raw_json(mut self, bytes: Vec<u8>) -> Self {
        self.body = Some(bytes);
        self.content_type = Some(JSON_CT.to_string());
        self
    }

    /// The final URL (api-version appended when set).
    pub fn url(&self) -> Url {
        let mut url = self.url.clone();
        if let Some(v) = &self.api_version {
            url.query_pairs_mut().append_pair("api-version", v);
        }
        url
    }

    /// Sends the request and reads the whole answer.
    pub async fn send(self) -> Resp {
        let method = self.method.clone();
        let r = self.response().await;
        let url = r.url().to_string();
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.bytes().await.expect("read the body").to_vec();
        Resp { method, url, status, headers, body }
    }

    /// Sends the request and returns the answer with its body not yet read (to stream it).
    pub async fn response(self) -> reqwest::Response {
        let url = self.url();
        let ocp_date = self.ocp_date.clone().unwrap_or_else(http_date_now);
        let mut headers: Vec<(String, String)> = vec![("ocp-date".into(), ocp_date)];
        headers.extend(self.headers.iter().cloned());
        let has_body = self.body.is_some();
        let content_length = match &self.body {
            Some(b) => b.len().to_string(),
            None if matches!(self.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) => "0".to_string(),
            None => String::new(),
        };
        if !content_length.is_empty() {
            headers.push(("Content-Length".into(), content_length.clone()));
        }
        if let Some(ct) = &self.content_type {
            headers.push(("Content-Type".into(), ct.clone()));
        }
        match &self.sign {
            Sign::Key(key) => {
                let sts = string_to_sign(self.method.as_str(), &url, &headers);
                headers.push(("Authorization".into(), format!("SharedKey {ACCOUNT}:{}", hmac_b64(key, &sts))));
            }
            Sign::Raw(v) => headers.push(("Authorization".into(), v.clone())),
            Sign::None => {}
        }
        let mut map = HeaderMap::new();
        for (k, v) in &headers {
            map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let mut rb = self.svc.client.request(self.method.clone(), url.clone()).headers(map);
        if has_body {
            rb = rb.body(self.body.clone().unwrap());
        }
        rb.send().await.unwrap_or_else(|e| panic!("{} {url}: {e}", self.method))
    }
}

/// The current time as an RFC 1123 date (`ocp-date`).
pub fn http_date_now() -> String {
    chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Header value for the string to sign (empty when absent; names compared case-insensitively).
fn header_value(headers: &[(String, String)], name: &str) -> String {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The SharedKey string to sign, as the official SDKs compute it.
pub fn string_to_sign(method: &str, url: &Url, headers: &[(String, String)]) -> String {
    let mut s = String::new();
    s.push_str(method);
    s.push('\n');
    for name in [
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-MD5",
        "Content-Type",
        "Date",
        "If-Modified-Since",
        "If-Match",
        "If-None-Match",
        "If-Unmodified-Since",
        "Range",
    ] {
        s.push_str(&header_value(headers, name));
        s.push('\n');
    }
    let mut ocp: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("ocp-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ocp.sort();
    for (k, v) in ocp {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push('/');
    s.push_str(ACCOUNT);
    s.push_str(url.path());
    let mut q: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned())).collect();
    q.sort();
    for (k, v) in q {
        s.push_str(&format!("\n{k}:{v}"));
    }
    s
}

/// base64(HMAC-SHA256(base64-decoded key, message)).
pub fn hmac_b64(key_b64: &str, message: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(key_b64).expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// An answer, fully read.
pub struct Resp {
    pub method: Method,
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {} {}", self.method, self.url, self.status.as_u16(), String::from_utf8_lossy(&self.body))
    }
}

impl Resp {
    /// Asserts the status code, showing the answer otherwise.
    #[track_caller]
    pub fn expect_status(&self, code: u16) -> &Self {
        assert_eq!(self.status.as_u16(), code, "unexpected status: {self:?}");
        self
    }

    /// The body as JSON (panics with the answer when it is not JSON).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or("").to_string())
    }

    /// Asserts a Batch error: the status, the `code`, and a message ending with the request id.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        self.expect_status(status);
        let v = self.json();
        assert_eq!(v["code"], code, "unexpected error code: {self:?}");
        let msg = v["message"]["value"].as_str().unwrap_or_else(|| panic!("no message.value: {self:?}"));
        let rid = self.header("request-id").expect("request-id header");
        assert!(msg.contains(&format!("RequestId:{rid}")), "message does not name the request id {rid}: {self:?}");
        assert_eq!(v["message"]["lang"], "en-US", "{self:?}");
        assert!(
            v["odata.metadata"]
                .as_str()
                .is_some_and(|m| m.ends_with("$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element")),
            "{self:?}"
        );
        v
    }

    /// The value of `values[key]` in a Batch error body.
    pub fn error_value(&self, key: &str) -> Option<String> {
        self.json()["values"].as_array()?.iter().find(|kv| kv["key"] == key).and_then(|kv| kv["value"].as_str().map(str::to_string))
    }
}

/// Polls `f` every 100 ms until it returns `Some`, panicking after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Parses a Batch ISO-8601 timestamp.
pub fn ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("bad timestamp {s}: {e}")).with_timezone(&chrono::Utc)
}

/// A request with `Authorization: Bearer <token>` (no SharedKey signature) to `base` + `path`.
pub async fn bearer(client: &reqwest::Client, base: &str, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = format!("{base}{path}{sep}api-version={API_VERSION}");
    let mut rb =
        client.request(method.clone(), &url).header("authorization", format!("Bearer {token}")).header("ocp-date", http_date_now());
    if let Some(b) = body {
        rb = rb.header("content-type", JSON_CT).body(serde_json::to_vec(&b).unwrap());
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("read the body").to_vec();
    Resp { method, url, status, headers, body }
}

// ---- assertions on entities and lists ---------------------------------------------------

/// The `id`s of a list answer's `value` entries, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["value"].as_array().expect("a list").iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

/// Whether `s` has the shape of a Batch ETag: `0x` then upper-case hex digits.
pub fn is_etag(s: &str) -> bool {
    s.len() > 2 && s.starts_with("0x") && s[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
}

/// Asserts the headers of an answer about one entity: an `ETag` ([`is_etag`]) and an
/// RFC 1123 `Last-Modified`.
#[track_caller]
pub fn assert_entity_headers(r: &Resp) {
    let etag = r.header("etag").unwrap_or_else(|| panic!("no ETag: {r:?}"));
    assert!(is_etag(&etag), "ETag {etag} is not 0x<upper-case hex>");
    let lm = r.header("last-modified").unwrap_or_else(|| panic!("no Last-Modified: {r:?}"));
    chrono::DateTime::parse_from_rfc2822(&lm).unwrap_or_else(|e| panic!("Last-Modified {lm} is not RFC 1123: {e}"));
}

/// A file list answer's entries by `name`.
pub fn names(list: &Value) -> BTreeMap<String, Value> {
    list["value"].as_array().expect("a file list").iter().map(|v| (v["name"].as_str().unwrap().to_string(), v.clone())).collect()
}
