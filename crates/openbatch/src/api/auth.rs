//! SharedKey authentication, verified as the official SDKs compute it.
//!
//! `Authorization: SharedKey <account>:<base64 HMAC-SHA256(key, string-to-sign)>` where the
//! string to sign is: the verb; the values of Content-Encoding, Content-Language,
//! Content-Length, Content-MD5, Content-Type, Date, If-Modified-Since, If-Match,
//! If-None-Match, If-Unmodified-Since and Range (one line each); the `ocp-*` headers
//! lower-cased and sorted as `name:value` lines; and the canonical resource `/<account><path>`
//! followed by one `\nname:value` line per query parameter (names lower-cased and sorted,
//! values URL-decoded, repeated names joined by `,`).
//!
//! Releases differ in details, so every accepted variant is tried, each compared in constant
//! time: `Content-Length: 0` signed as `0` or as empty, and the path signed as sent or with
//! `%2F` decoded to `/` (azure-batch up to 4.1.3).
//!
//! `Authorization: Bearer <token>` is accepted too, for task authentication tokens (see
//! `task_token`): [`authenticate`] tells who a request acts as, [`Principal::authorize`] what
//! it may reach.

use super::error::BatchError;
use super::task_token::{self, TaskTokens, TokenClaims};
use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The account that requests must sign for: its name and its decoded key bytes.
#[derive(Clone)]
pub struct AccountKey {
    /// Batch account name (the `<account>` of `SharedKey <account>:<signature>`).
    pub name: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKey").field("name", &self.name).finish_non_exhaustive()
    }
}

impl AccountKey {
    /// An account from its name and base64 key. Errors when the key is not base64.
    pub fn new(name: &str, base64_key: &str) -> anyhow::Result<Self> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(base64_key.trim())
            .map_err(|e| anyhow::anyhow!("the account key is not valid base64: {e}"))?;
        anyhow::ensure!(!key.is_empty(), "the account key is empty");
        Ok(AccountKey { name: name.to_string(), key })
    }

    /// The base64 signature of `string_to_sign` with this key.
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Verifies the request's `Authorization` header.
    ///
    /// `raw_path` is the path as sent (percent-encoded), `raw_query` the query string as sent.
    /// Errors: no header → 400 `MissingRequiredHeader` (HeaderName Authorization); a header that
    /// is not `SharedKey account:signature` → 400 `InvalidAuthenticationInfo`; another account
    /// or a wrong signature → 403 `AuthenticationFailed`.
    pub fn verify(&self, method: &Method, raw_path: &str, raw_query: Option<&str>, headers: &HeaderMap) -> Result<(), BatchError> {
        let Some(auth) = headers.get("authorization") else {
            return Err(BatchError::new(
                StatusCode::BAD_REQUEST,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified.",
            )
            .with("HeaderName", "Authorization"));
        };
        let auth = auth.to_str().unwrap_or_default();
        let Some((account, signature)) = auth.strip_prefix("SharedKey ").and_then(|rest| rest.trim().split_once(':')) else {
            return Err(BatchError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAuthenticationInfo",
                "Authentication information is not given in the correct format. Check the value of Authorization header.",
            ));
        };
        let failed = |detail: &str| {
            BatchError::new(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
            )
            .with("AuthenticationErrorDetail", detail)
        };
        if account != self.name {
            return Err(failed(&format!(
                "The account {account} in the Authorization header is not served here; this service serves {}.",
                self.name
            )));
        }
        let mut ok = subtle::Choice::from(0u8);
        for candidate in string_to_sign_variants(method, raw_path, raw_query, headers, &self.name) {
            ok |= self.sign(&candidate).as_bytes().ct_eq(signature.as_bytes());
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(failed("The MAC signature found in the HTTP request is not the same as any computed signature."))
        }
    }
}

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// SharedKey with the account key: every operation.
    Account,
    /// A task authentication token: the operations on its job only.
    Task(TokenClaims),
}

impl Principal {
    /// Checks that the principal may call the operation at `raw_path` (as sent, before
    /// routing). The account may call anything. A task token with `job` access may call
    /// `/jobs/{jobId}` and every path under it, for its own job (ids compared percent-decoded,
    /// as the router reads them). Errors: 403 `InsufficientAccountPermissions`.
    pub fn authorize(&self, raw_path: &str) -> Result<(), BatchError> {
        let Principal::Task(claims) = self else { return Ok(()) };
        if !claims.has_job_access() {
            return Err(task_token::forbidden("The authentication token grants no access scope that covers this operation."));
        }
        match super::router::target_job(raw_path) {
            Some(job) if job == claims.job_id => Ok(()),
            _ => Err(task_token::forbidden(format!(
                "The authentication token of task {} grants access to the operations on job {} only.",
                claims.task_id, claims.job_id
            ))),
        }
    }
}

/// Authenticates a request: `Authorization: Bearer <task token>` is verified by `tokens`
/// (errors as [`TaskTokens::verify`]: 400 `InvalidAuthenticationInfo` for a token that is not a
/// JWT, 401 `AuthenticationFailed` for one that is not valid), anything else as SharedKey by
/// `account` (errors as [`AccountKey::verify`]).
pub fn authenticate(
    account: &AccountKey,
    tokens: &TaskTokens,
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Principal, BatchError> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(token) = bearer_token(auth) {
        return tokens.verify(token).map(Principal::Task);
    }
    account.verify(method, raw_path, raw_query, headers).map(|()| Principal::Account)
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive; a
/// bare `Bearer` has an empty token).
fn bearer_token(auth: &str) -> Option<&str> {
    let auth = auth.trim();
    let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// All strings to sign that some official SDK release computes for this request.
pub fn string_to_sign_variants(
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    account: &str,
) -> Vec<String> {
    let header = |name: &str| -> String { headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string() };
    let content_length = header("content-length");
    let mut lengths = vec![content_length.clone()];
    if content_length == "0" {
        lengths.push(String::new());
    }
    let decoded_slash = raw_path.replace("%2F", "/").replace("%2f", "/");
    let mut paths = vec![raw_path.to_string()];
    if decoded_slash != raw_path {
        paths.push(decoded_slash);
    }
    let mut ocp: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("ocp-"))
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    ocp.sort();
    let canonical_headers: String = ocp.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let mut queries = vec![canonical_query(raw_query), canonical_query_as_sent(raw_query)];
    queries.dedup();

    let mut out = Vec::new();
    let combos = lengths.iter().flat_map(|l| paths.iter().map(move |p| (l, p)));
    for ((len, path), query) in combos.flat_map(|lp| queries.iter().map(move |q| (lp, q))) {
        let mut s = String::new();
        s.push_str(method.as_str());
        s.push('\n');
        for name in ["content-encoding", "content-language"] {
            s.push_str(&header(name));
            s.push('\n');
        }
        s.push_str(len);
        s.push('\n');
        for name in
            ["content-md5", "content-type", "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]
        {
            s.push_str(&header(name));
            s.push('\n');
        }
        s.push_str(&canonical_headers);
        s.push('/');
        s.push_str(account);
        s.push_str(path);
        s.push_str(query);
        out.push(s);
    }
    out
}

/// `\nname:value` lines for the query as the 15.x clients (and msrest, whose names are all
/// lower case) sign it: names as sent, sorted; the first value of each, URL-decoded;
/// parameters with an empty value left out (`azure-batch-wire/newer/diff.md`, section 6).
fn canonical_query_as_sent(raw_query: Option<&str>) -> String {
    let mut params: std::collections::BTreeMap<String, String> = Default::default();
    for (k, v) in form_pairs(raw_query.unwrap_or("")) {
        if !v.is_empty() {
            params.entry(k).or_insert(v);
        }
    }
    params.iter().map(|(k, v)| format!("\n{k}:{v}")).collect()
}

/// `\nname:value` lines for the query, names lower-cased and sorted, values URL-decoded.
fn canonical_query(raw_query: Option<&str>) -> String {
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in form_pairs(raw_query.unwrap_or("")) {
        params.entry(k.to_lowercase()).or_default().push(v);
    }
    params.iter().map(|(k, vs)| format!("\n{k}:{}", vs.join(","))).collect()
}

/// Splits a query string into URL-decoded pairs (`+` as space, as form decoding does).
pub fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key() -> AccountKey {
        AccountKey::new("acct", "c2VjcmV0LWtleS1ieXRlcw==").unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn string_to_sign_has_the_documented_layout() {
        let h = headers(&[
            ("content-type", "application/json; odata=minimalmetadata; charset=utf-8"),
            ("content-length", "12"),
            ("ocp-date", "Thu, 13 Jan 2022 07:24:32 GMT"),
            ("client-request-id", "x"),
        ]);
        let v = string_to_sign_variants(&Method::POST, "/jobs", Some("api-version=2022-10-01.16.0&timeout=30"), &h, "acct");
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0],
            "POST\n\n\n12\n\napplication/json; odata=minimalmetadata; charset=utf-8\n\n\n\n\n\n\nocp-date:Thu, 13 Jan 2022 07:24:32 GMT\n/acct/jobs\napi-version:2022-10-01.16.0\ntimeout:30"
        );
    }

    #[test]
    fn query_names_are_signed_as_the_new_clients_send_them() {
        // azure-batch 15.x signs `timeOut` as sent (not lower-cased) and leaves out empty values.
        let h = headers(&[("ocp-date", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let q = Some("api-version=2025-06-01&timeOut=30&%24filter=");
        let v = string_to_sign_variants(&Method::GET, "/pools", q, &h, "acct");
        assert!(v.iter().any(|s| s.ends_with("/acct/pools\napi-version:2025-06-01\ntimeOut:30")), "{v:?}");
        assert!(v.iter().any(|s| s.ends_with("/acct/pools\n$filter:\napi-version:2025-06-01\ntimeout:30")), "{v:?}");
        let k = key();
        let signed = v.iter().find(|s| s.contains("timeOut")).unwrap();
        let mut h2 = h.clone();
        h2.insert("authorization", HeaderValue::from_str(&format!("SharedKey acct:{}", k.sign(signed))).unwrap());
        assert!(k.verify(&Method::GET, "/pools", q, &h2).is_ok());
        // The signature does not carry over to another query.
        assert!(k.verify(&Method::GET, "/pools", Some("api-version=2025-06-01&timeOut=31"), &h2).is_err());
    }

    #[test]
    fn accepts_each_sdk_variant_and_rejects_others() {
        let k = key();
        let h0 = headers(&[("content-length", "0"), ("ocp-date", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let path = "/jobs/j/tasks/t/files/wd%2Fout.txt";
        let q = Some("api-version=2022-10-01.16.0");
        for variant in string_to_sign_variants(&Method::DELETE, path, q, &h0, "acct") {
            let mut h = h0.clone();
            h.insert("authorization", HeaderValue::from_str(&format!("SharedKey acct:{}", k.sign(&variant))).unwrap());
            assert!(k.verify(&Method::DELETE, path, q, &h).is_ok());
        }
        let mut bad = h0.clone();
        bad.insert("authorization", HeaderValue::from_static("SharedKey acct:AAAA"));
        assert_eq!(k.verify(&Method::DELETE, path, q, &bad).unwrap_err().code, "AuthenticationFailed");
        let mut other = h0.clone();
        other.insert("authorization", HeaderValue::from_static("SharedKey other:AAAA"));
        assert_eq!(k.verify(&Method::DELETE, path, q, &other).unwrap_err().status, StatusCode::FORBIDDEN);
        assert_eq!(k.verify(&Method::DELETE, path, q, &h0).unwrap_err().code, "MissingRequiredHeader");
    }

    #[test]
    fn bearer_tokens_act_as_their_task_on_its_job_only() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = TaskTokens::load_or_create(dir.path(), "acct").unwrap();
        let token = tokens.issue("j 1", "t", chrono::Utc::now());
        let k = key();
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let h = headers(&[("authorization", &format!("{scheme} {token}"))]);
            let p = authenticate(&k, &tokens, &Method::GET, "/jobs/j%201", None, &h).unwrap();
            assert!(matches!(&p, Principal::Task(c) if c.job_id == "j 1" && c.task_id == "t"), "{p:?}");
            for ok in ["/jobs/j%201", "/jobs/j%201/tasks", "/jobs/j%201/tasks/x/files/a%2Fb", "/jobs/j%201/terminate"] {
                assert!(p.authorize(ok).is_ok(), "{ok}");
            }
            for denied in ["/jobs", "/jobs/j1", "/jobs/j%202/tasks", "/pools", "/pools/p/nodes", "/applications", "/jobschedules", "/"] {
                let e = p.authorize(denied).unwrap_err();
                assert_eq!((e.status, e.code.as_str()), (StatusCode::FORBIDDEN, "InsufficientAccountPermissions"), "{denied}");
            }
        }
        // A token without the job scope reaches nothing.
        let mut claims = tokens.verify(&token).unwrap();
        claims.access.clear();
        assert_eq!(Principal::Task(claims).authorize("/jobs/j%201").unwrap_err().status, StatusCode::FORBIDDEN);
        // A bearer token that is not a JWT is 400, one that is not valid 401; never a fall-back
        // to SharedKey.
        for bad in ["Bearer", "Bearer ", "Bearer abc", "bearer abc.def.ghi"] {
            let h = headers(&[("authorization", bad)]);
            let e = authenticate(&k, &tokens, &Method::GET, "/jobs/j%201", None, &h).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (StatusCode::BAD_REQUEST, "InvalidAuthenticationInfo"), "{bad}");
        }
        let other = TaskTokens::load_or_create(tempfile::tempdir().unwrap().path(), "acct").unwrap().issue("j 1", "t", chrono::Utc::now());
        let h = headers(&[("authorization", &format!("Bearer {other}"))]);
        let e = authenticate(&k, &tokens, &Method::GET, "/jobs/j%201", None, &h).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (StatusCode::UNAUTHORIZED, "AuthenticationFailed"));
        // SharedKey still acts as the account, allowed everywhere.
        let h = headers(&[("ocp-date", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let sts = string_to_sign_variants(&Method::GET, "/pools", None, &h, "acct").remove(0);
        let mut signed = h.clone();
        signed.insert("authorization", HeaderValue::from_str(&format!("SharedKey acct:{}", k.sign(&sts))).unwrap());
        let p = authenticate(&k, &tokens, &Method::GET, "/pools", None, &signed).unwrap();
        assert_eq!(p, Principal::Account);
        assert!(p.authorize("/pools").is_ok());
        assert_eq!(authenticate(&k, &tokens, &Method::GET, "/pools", None, &h).unwrap_err().code, "MissingRequiredHeader");
    }
}
