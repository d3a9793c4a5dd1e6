//! A small signed HTTP client for openbatch's own commands (the benchmark, admin tools):
//! SharedKey-signed JSON requests against a Batch endpoint at api-version 2022-10-01.16.0.

use crate::api::auth::{string_to_sign_variants, AccountKey};
use axum::http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;

/// The api-version the client speaks.
pub const API_VERSION: &str = "2022-10-01.16.0";

/// A client for one account at one base URL.
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: AccountKey,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:10400`) signing as `account`.
    pub fn new(base: &str, account: &str, key_b64: &str) -> anyhow::Result<Self> {
        Ok(Client { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), key: AccountKey::new(account, key_b64)? })
    }

    /// Signed `GET path` with extra `ocp-*` headers (e.g. `ocp-range`); returns the answer
    /// with its body unread, to stream it (e.g. a file).
    pub async fn get_stream(&self, path: &str, extra: &[(&'static str, String)]) -> anyhow::Result<reqwest::Response> {
        let query = format!("api-version={API_VERSION}");
        let mut headers = HeaderMap::new();
        headers.insert("ocp-date", HeaderValue::from_str(&chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string())?);
        for (k, v) in extra {
            headers.insert(*k, HeaderValue::from_str(v)?);
        }
        let sts =
            string_to_sign_variants(&Method::GET, path, Some(&query), &headers, &self.key.name).into_iter().next().unwrap_or_default();
        let auth = format!("SharedKey {}:{}", self.key.name, self.key.sign(&sts));
        let req = self.http.get(format!("{}{}?{}", self.base, path, query)).header("authorization", auth).headers(headers);
        Ok(req.send().await?)
    }

    /// Signed `PUT path?query` with a raw body (no api-version: openbatch's own admin
    /// operations); returns the status and the JSON body (Null when empty).
    pub async fn put_raw(&self, path: &str, query: &str, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        self.send(Method::PUT, path, query, Some("application/zip"), body).await
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let content_type = body.is_some().then_some("application/json; odata=minimalmetadata; charset=utf-8");
        self.send(method, path, &format!("api-version={API_VERSION}"), content_type, bytes).await
    }

    /// Signs and sends one request (a body, or `Content-Length: 0` for bodiless writes, as the
    /// SDKs sign them); returns the status and the JSON body (Null when empty or not JSON).
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &str,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut headers = HeaderMap::new();
        headers.insert("ocp-date", HeaderValue::from_str(&chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string())?);
        if let Some(ct) = content_type {
            headers.insert("content-type", HeaderValue::from_static(ct));
        }
        if content_type.is_some() || method == Method::POST || method == Method::DELETE || method == Method::PUT {
            headers.insert("content-length", HeaderValue::from_str(&body.len().to_string())?);
        }
        let q = (!query.is_empty()).then_some(query);
        let sts = string_to_sign_variants(&method, path, q, &headers, &self.key.name).into_iter().next().unwrap_or_default();
        let auth = format!("SharedKey {}:{}", self.key.name, self.key.sign(&sts));
        let url = if query.is_empty() { format!("{}{}", self.base, path) } else { format!("{}{}?{}", self.base, path, query) };
        let mut req = self.http.request(method, url).header("authorization", auth);
        for (k, v) in headers.iter() {
            if k != "content-length" {
                req = req.header(k, v);
            }
        }
        let resp = req.body(body).send().await?;
        let status = resp.status().as_u16();
        let text = resp.bytes().await?;
        Ok((status, serde_json::from_slice(&text).unwrap_or(Value::Null)))
    }
}
