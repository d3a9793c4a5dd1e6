//! api-version: the query parameter every request must carry (the Azure Batch versioning rules
//! in the seed): `YYYY-MM-DD.Major.Minor`, or, from `2025-06-01` on, the date alone. A request
//! without one, or with a value that is malformed or not a published version, is refused
//! before authentication.

use super::error::BatchError;
use axum::http::StatusCode;

/// Every published Azure Batch data-plane api-version, oldest first.
pub const PUBLISHED: &[&str] = &[
    "2015-06-01.2.0",
    "2015-11-01.2.1",
    "2015-12-01.2.2",
    "2016-02-01.3.0",
    "2016-07-01.3.1",
    "2017-01-01.4.0",
    "2017-05-01.5.0",
    "2017-06-01.5.1",
    "2017-09-01.6.0",
    "2018-03-01.6.1",
    "2018-08-01.7.0",
    "2018-12-01.8.0",
    "2019-06-01.9.0",
    "2019-08-01.10.0",
    "2020-03-01.11.0",
    "2020-09-01.12.0",
    "2021-01-01.13.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
];

/// A published api-version; ordered by publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(u8);

impl ApiVersion {
    /// The newest published version.
    pub const LATEST: ApiVersion = ApiVersion((PUBLISHED.len() - 1) as u8);

    /// The version string, e.g. `2022-10-01.16.0` or `2025-06-01`.
    pub fn as_str(self) -> &'static str {
        PUBLISHED[self.0 as usize]
    }

    /// Position in [`PUBLISHED`] (0 = 2015-06-01.2.0), the number the version table uses.
    pub fn index(self) -> u8 {
        self.0
    }

    /// Looks a published version up by its exact string.
    pub fn find(s: &str) -> Option<ApiVersion> {
        PUBLISHED.iter().position(|v| *v == s).map(|i| ApiVersion(i as u8))
    }

    /// Reads the `api-version` query value.
    ///
    /// Errors: missing → 400 `MissingRequiredQueryParameter` (`QueryParameterName:
    /// api-version`); malformed or unpublished → 400 `InvalidQueryParameterValue` naming the
    /// value received, with a reason saying which of the two it is (a well-formed version that
    /// is not published, newer or older than every published one, names the newest served).
    pub fn from_query(value: Option<&str>) -> Result<ApiVersion, BatchError> {
        let Some(v) = value else {
            return Err(BatchError::new(
                StatusCode::BAD_REQUEST,
                "MissingRequiredQueryParameter",
                "A query parameter that's mandatory for this request is not specified.",
            )
            .with("QueryParameterName", "api-version"));
        };
        if let Some(found) = ApiVersion::find(v) {
            return Ok(found);
        }
        let reason = if is_well_formed(v) {
            format!(
                "The api-version {v} is not one this service supports; it serves the published api-versions {} to {} (the newest).",
                PUBLISHED[0],
                ApiVersion::LATEST.as_str()
            )
        } else {
            format!("The api-version {v} is malformed: expected YYYY-MM-DD.Major.Minor or YYYY-MM-DD.")
        };
        Err(BatchError::new(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
        .with("QueryParameterName", "api-version")
        .with("QueryParameterValue", v)
        .with("Reason", reason))
    }
}

/// True when `v` has the `YYYY-MM-DD.Major.Minor` or the date-only `YYYY-MM-DD` shape (digits in
/// each place, a month 01-12 and a day 01-31).
fn is_well_formed(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 3 && parts.len() != 1 {
        return false;
    }
    let date: Vec<&str> = parts[0].split('-').collect();
    let digits = |s: &str, n: Option<usize>| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && n.is_none_or(|n| s.len() == n);
    let in_range = |s: &str, hi: u32| s.parse::<u32>().is_ok_and(|n| (1..=hi).contains(&n));
    date.len() == 3
        && digits(date[0], Some(4))
        && digits(date[1], Some(2))
        && in_range(date[1], 12)
        && digits(date[2], Some(2))
        && in_range(date[2], 31)
        && parts[1..].iter().all(|p| digits(p, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_versions_parse() {
        for v in PUBLISHED {
            assert_eq!(ApiVersion::from_query(Some(v)).unwrap().as_str(), *v);
        }
        assert_eq!(ApiVersion::LATEST.as_str(), "2025-06-01");
        assert!(ApiVersion::find("2015-06-01.2.0").unwrap() < ApiVersion::LATEST);
        assert!(ApiVersion::find("2022-10-01.16.0").unwrap() < ApiVersion::find("2023-05-01.17.0").unwrap());
    }

    #[test]
    fn missing_and_wrong_versions_are_refused() {
        let e = ApiVersion::from_query(None).unwrap_err();
        assert_eq!(e.code, "MissingRequiredQueryParameter");
        let reason = |e: &BatchError| e.values.iter().find(|(k, _)| k == "Reason").map(|(_, v)| v.clone()).unwrap_or_default();
        // Well formed but not published: a future version, an old one, a date-only one that
        // is not 2025-06-01. The reason names the newest version served, never "malformed".
        for v in ["2026-10-01", "2026-10-01.22.0", "2014-10-01.1.0", "2023-05-01.16.0", "2024-07-01"] {
            let e = ApiVersion::from_query(Some(v)).unwrap_err();
            assert_eq!(e.code, "InvalidQueryParameterValue", "{v}");
            assert!(e.values.iter().any(|(k, x)| k == "QueryParameterValue" && x == v));
            assert!(reason(&e).contains("not one this service supports"), "{v}: {}", reason(&e));
            assert!(reason(&e).contains("2025-06-01"), "{v}: {}", reason(&e));
        }
        for v in ["banana", "2025-6-01", "2025-13-01", "2025-06-01.21", "2025-06-01.x.0", ""] {
            let e = ApiVersion::from_query(Some(v)).unwrap_err();
            assert!(reason(&e).contains("malformed"), "{v}: {}", reason(&e));
        }
        assert_eq!(ApiVersion::from_query(Some("2025-06-01")).unwrap(), ApiVersion::LATEST);
    }
}
