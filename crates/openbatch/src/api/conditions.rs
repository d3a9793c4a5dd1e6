//! Conditional request headers (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`), read once per request and checked against a resource's last
//! modification time (its ETag derives from it).
//!
//! Handlers check reads and their own store transactions with [`Conditions::check`]; for
//! operations the scheduler carries out (Delete or Terminate Job, Delete or Terminate Task, …)
//! the conditions travel with the event and the reactor checks them against the record in the
//! same batch that changes it, so no change can slip in between the check and the write.

use super::error::{ApiResult, BatchError};
use crate::model::time::{etag_for, parse_http_date, Timestamp};
use axum::http::{HeaderMap, StatusCode};

/// A request's conditional headers. The default (no headers) always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`: ETags (or `*`), comma separated.
    if_match: Option<String>,
    /// `If-None-Match`: ETags (or `*`), comma separated.
    if_none_match: Option<String>,
    /// `If-Modified-Since`, Unix seconds.
    if_modified_since: Option<i64>,
    /// `If-Unmodified-Since`, Unix seconds.
    if_unmodified_since: Option<i64>,
}

impl Conditions {
    /// Reads the headers. Errors: 400 `InvalidHeaderValue` for a date that is not an HTTP date.
    pub fn from_headers(headers: &HeaderMap) -> ApiResult<Conditions> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
        let date = |name: &str, shown: &str| -> ApiResult<Option<i64>> {
            match header(name) {
                None => Ok(None),
                Some(v) => parse_http_date(&v).map(|d| Some(d.timestamp())).ok_or_else(|| BatchError::invalid_header(shown, &v)),
            }
        };
        Ok(Conditions {
            if_match: header("if-match"),
            if_none_match: header("if-none-match"),
            if_modified_since: date("if-modified-since", "If-Modified-Since")?,
            if_unmodified_since: date("if-unmodified-since", "If-Unmodified-Since")?,
        })
    }

    /// Checks the conditions against a resource last modified at `t`. `read` operations
    /// answer 304 where a write answers 412:
    ///
    /// * `If-Match` (an ETag or `*`): 412 `ConditionNotMet` unless it matches;
    /// * `If-None-Match`: a match is 304 for reads, 412 for writes;
    /// * `If-Modified-Since`: not modified since is 304 for reads, 412 for writes;
    /// * `If-Unmodified-Since`: modified since is 412.
    pub fn check(&self, t: &Timestamp, read: bool) -> ApiResult<()> {
        let etag = etag_for(t);
        let matches =
            |list: &str| list.split(',').map(|e| e.trim().trim_start_matches("W/").trim_matches('"')).any(|e| e == "*" || e == etag);
        let not_modified = || -> BatchError {
            if read {
                BatchError::new(
                    StatusCode::NOT_MODIFIED,
                    "ConditionNotMet",
                    "The condition specified using HTTP conditional header(s) is not met.",
                )
            } else {
                BatchError::condition_not_met()
            }
        };
        let seconds = t.timestamp();
        if self.if_match.as_deref().is_some_and(|v| !matches(v)) {
            return Err(BatchError::condition_not_met());
        }
        if self.if_none_match.as_deref().is_some_and(matches) {
            return Err(not_modified());
        }
        if self.if_unmodified_since.is_some_and(|d| seconds > d) {
            return Err(BatchError::condition_not_met());
        }
        if self.if_modified_since.is_some_and(|d| seconds <= d) {
            return Err(not_modified());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: &'static str, v: &str) -> Conditions {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).expect("header"));
        Conditions::from_headers(&h).expect("valid")
    }

    #[test]
    fn each_header_decides_as_documented() {
        let t = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 1, 0, 0, 0).single().expect("time");
        let etag = etag_for(&t);
        assert!(Conditions::default().check(&t, false).is_ok());
        assert!(with("if-match", &format!("\"{etag}\"")).check(&t, false).is_ok());
        assert_eq!(with("if-match", "\"0x1\"").check(&t, false).unwrap_err().status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(with("if-none-match", "*").check(&t, true).unwrap_err().status, StatusCode::NOT_MODIFIED);
        assert_eq!(with("if-none-match", "*").check(&t, false).unwrap_err().status, StatusCode::PRECONDITION_FAILED);
        assert!(with("if-modified-since", "Wed, 31 Dec 2025 23:59:59 GMT").check(&t, true).is_ok());
        assert_eq!(
            with("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT").check(&t, true).unwrap_err().status,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            with("if-unmodified-since", "Wed, 31 Dec 2025 23:59:59 GMT").check(&t, false).unwrap_err().status,
            StatusCode::PRECONDITION_FAILED
        );
        let mut h = HeaderMap::new();
        h.insert("if-modified-since", HeaderValue::from_static("yesterday"));
        assert_eq!(Conditions::from_headers(&h).unwrap_err().code, "InvalidHeaderValue");
    }
}
