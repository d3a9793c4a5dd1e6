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

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let query = format!("api-version={API_VERSION}");
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert("ocp-date", HeaderValue::from_str(&chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string())?);
        if body.is_some() {
            headers.insert("content-type", HeaderValue::from_static("application/json; odata=minimalmetadata; charset=utf-8"));
        }
        if body.is_some() || method == Method::POST || method == Method::DELETE {
            headers.insert("content-length", HeaderValue::from_str(&bytes.len().to_string())?);
        }
        let sts = string_to_sign_variants(&method, path, Some(&query), &headers, &self.key.name).into_iter().next().unwrap_or_default();
        let auth = format!("SharedKey {}:{}", self.key.name, self.key.sign(&sts));
        let url = format!("{}{}?{}", self.base, path, query);
        let mut req = self.http.request(method, url).header("authorization", auth);
        for (k, v) in headers.iter() {
            if k != "content-length" {
                req = req.header(k, v);
            }
        }
        let resp = req.body(bytes).send().await?;
        let status = resp.status().as_u16();
        let text = resp.bytes().await?;
        let json = if text.is_empty() { Value::Null } else { serde_json::from_slice(&text).unwrap_or(Value::Null) };
        Ok((status, json))
    }
}
