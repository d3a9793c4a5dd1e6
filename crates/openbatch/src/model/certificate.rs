//! Certificate: the account-level resource of Certificate Add / List / Get / Delete / Cancel
//! Deletion (api-versions 2015-06-01.2.0 to 2024-07-01.20.0; removed in 2025-06-01), what
//! Certificate Add accepts, and the rules of its deletion.
//!
//! Rules (`BatchService.json`, 2022-10-01.16.0, and the recorded service):
//! * the data must be a certificate of its `certificateFormat`: a PKCS#12 (`pfx`, the default)
//!   that opens with its `password`, or a DER X.509 certificate (`cer`, no password);
//! * `thumbprintAlgorithm` must be `sha1` and `thumbprint` the SHA-1 of the certificate's DER
//!   (up to 40 hex digits, spaces removed; kept in lower case);
//! * Delete moves an `active` or `deletefailed` certificate to `deleting` (a second Delete
//!   answers 409 `CertificateBeingDeleted`); the service then removes it, unless a pool
//!   references it or a compute node has it installed: it goes `deletefailed` with a
//!   `deleteCertificateError` naming them ([`deletion_outcome`]);
//! * Cancel Deletion returns a `deletefailed` certificate to `active`; in `active` it answers
//!   409 `CertificateStateActive` (as recorded), in `deleting` 409 `CertificateBeingDeleted`.
//!
//! The certificate's data and password are kept for the compute nodes that install it and are
//! never shown.

use super::common::NameValuePair;
use super::time::{ts, ts_opt, Timestamp};
use crate::batch_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::{Digest, Sha1};

batch_enum!(
    /// CertificateState.
    CertificateState { Active = "active", Deleting = "deleting", DeleteFailed = "deletefailed" }
);

batch_enum!(
    /// CertificateFormat: `pfx` (PKCS#12, the default) or `cer` (an X.509 certificate).
    CertificateFormat { Pfx = "pfx", Cer = "cer" }
);

/// The only thumbprint algorithm the service accepts.
pub const SHA1: &str = "sha1";

/// How long a certificate stays `deleting` before the service settles its deletion, in
/// milliseconds of the service clock (the real service deletes asynchronously too).
pub const DELETION_DELAY_MS: i64 = 1000;

/// The most pools or nodes a `deleteCertificateError` lists (the API documents "about the
/// first hundred").
pub const MAX_LISTED: usize = 100;

/// CertificateAddParameter (canonical shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateAdd {
    pub thumbprint: String,
    pub thumbprint_algorithm: String,
    /// Base64 of the pfx or cer file (at most 10 KB decoded).
    pub data: String,
    #[serde(default)]
    pub certificate_format: Option<CertificateFormat>,
    #[serde(default)]
    pub password: Option<String>,
}

/// DeleteCertificateError: why the last deletion failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCertificateError {
    pub code: String,
    pub message: String,
    pub values: Vec<NameValuePair>,
}

/// A certificate of the account, in the 2022-10-01.16.0 shape plus what the nodes need
/// (`format`, `data`, `password`: stored, never rendered).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// The record key, `<algorithm>-<thumbprint>` ([`key`]; never rendered).
    pub id: String,
    /// Lower-case hex SHA-1 of the certificate's DER.
    pub thumbprint: String,
    pub thumbprint_algorithm: String,
    pub state: CertificateState,
    #[serde(with = "ts")]
    pub state_transition_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<CertificateState>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ts_opt")]
    pub previous_state_transition_time: Option<Timestamp>,
    /// Base64 of the certificate's DER (the public part).
    pub public_data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_certificate_error: Option<DeleteCertificateError>,
    /// The format the data was added in (never rendered).
    pub format: CertificateFormat,
    /// Base64 of the file as added (never rendered).
    pub data: String,
    /// The pfx password (never rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Why Certificate Add refuses a certificate: the property at fault and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub property: &'static str,
    pub reason: String,
}

fn invalid(property: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid { property, reason: reason.into() }
}

/// The largest certificate file the API accepts (10 KB).
pub const MAX_DATA_BYTES: usize = 10 * 1024;

/// The record key of a certificate: `<algorithm>-<thumbprint>`, both lower case.
pub fn key(thumbprint_algorithm: &str, thumbprint: &str) -> String {
    format!("{}-{}", thumbprint_algorithm.to_ascii_lowercase(), normalize_thumbprint(thumbprint))
}

/// A thumbprint as the service keeps it: spaces removed, lower case.
pub fn normalize_thumbprint(t: &str) -> String {
    t.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

/// Reads and checks Certificate Add's parameter: the data decodes and opens in its format
/// (a pfx with its password), the algorithm is `sha1` and the thumbprint is the SHA-1 of the
/// certificate's DER (of the certificate that goes with the pfx's private key, or its only
/// certificate). Returns the certificate, `active` since `now`.
///
/// Errors name the property: `thumbprintAlgorithm` (not `sha1`), `thumbprint` (not hex, or not
/// the certificate's), `data` (not base64, over 10 KB, not a certificate of its format),
/// `password` (given for a cer, or not the pfx's).
pub fn accept(add: CertificateAdd, now: Timestamp) -> Result<Certificate, Invalid> {
    use base64::Engine;
    if !add.thumbprint_algorithm.eq_ignore_ascii_case(SHA1) {
        return Err(invalid("thumbprintAlgorithm", "The thumbprint algorithm must be sha1."));
    }
    let thumbprint = normalize_thumbprint(&add.thumbprint);
    if thumbprint.is_empty() || thumbprint.len() > 40 || !thumbprint.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("thumbprint", "A thumbprint is a sequence of up to 40 hex digits."));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(add.data.trim())
        .map_err(|_| invalid("data", "The data is not base64-encoded."))?;
    if bytes.len() > MAX_DATA_BYTES {
        return Err(invalid("data", format!("The certificate is {} bytes; the maximum is {MAX_DATA_BYTES}.", bytes.len())));
    }
    let format = add.certificate_format.unwrap_or(CertificateFormat::Pfx);
    let der = match format {
        CertificateFormat::Cer => {
            if add.password.as_deref().is_some_and(|p| !p.is_empty()) {
                return Err(invalid("password", "A password must be omitted for the cer format."));
            }
            cer_der(&bytes)?
        }
        CertificateFormat::Pfx => pfx_der(&bytes, add.password.as_deref().unwrap_or(""))?,
    };
    let actual = hex_sha1(&der);
    if actual != thumbprint {
        return Err(invalid(
            "thumbprint",
            "The thumbprint does not match the certificate: it is the SHA-1 hash of the certificate's DER encoding.",
        ));
    }
    let mut c = Certificate::active(&thumbprint, format, now);
    c.public_data = base64::engine::general_purpose::STANDARD.encode(&der);
    c.data = add.data.trim().to_string();
    c.password = add.password.filter(|p| !p.is_empty());
    Ok(c)
}

/// Lower-case hex SHA-1 of `der`.
pub fn hex_sha1(der: &[u8]) -> String {
    Sha1::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// The DER of a cer file (DER, or PEM text of one certificate).
fn cer_der(bytes: &[u8]) -> Result<Vec<u8>, Invalid> {
    let der = match std::str::from_utf8(bytes).ok().and_then(pem_body) {
        Some(der) => der,
        None => bytes.to_vec(),
    };
    p12_keystore::Certificate::from_der(&der).map_err(|e| invalid("data", format!("The data is not an X.509 certificate: {e}.")))?;
    Ok(der)
}

/// The DER inside `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----`, if `text` is one.
fn pem_body(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let start = text.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = text[start..].find("-----END CERTIFICATE-----")? + start;
    let b64: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The DER of a pfx's certificate: the one bound to its private key (same local key id),
/// else its only certificate.
fn pfx_der(bytes: &[u8], password: &str) -> Result<Vec<u8>, Invalid> {
    use p12_keystore::error::Error;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| match e {
        // A MAC that does not verify, or bags that do not decrypt, mean the wrong password.
        Error::MacError(_) | Error::UnpadError => invalid("password", "The password does not open the pfx."),
        other => invalid("data", format!("The data is not a PKCS#12 (pfx) certificate: {other}.")),
    })?;
    let keyed = archive.keys.iter().find_map(|k| {
        let id = k.local_key_id.as_ref()?;
        archive.certs.iter().find(|c| c.local_key_id.as_deref() == Some(id.0.as_slice()))
    });
    let cert = match (keyed, archive.certs.as_slice()) {
        (Some(c), _) => c,
        (None, [only]) => only,
        (None, []) => return Err(invalid("data", "The pfx holds no certificate.")),
        (None, _) => return Err(invalid("data", "The pfx holds several certificates and no private key telling which is its own.")),
    };
    Ok(cert.cert.as_der().to_vec())
}

/// Why a deletion-state change is refused (the handlers answer 409 with the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `CertificateBeingDeleted`: the certificate is `deleting`.
    BeingDeleted,
    /// `CertificateStateActive`: Cancel Deletion of an `active` certificate.
    Active,
}

impl Certificate {
    /// An `active` certificate (since `now`) of this `sha1` thumbprint and format, with no
    /// public data, data or password yet.
    pub fn active(thumbprint: &str, format: CertificateFormat, now: Timestamp) -> Certificate {
        Certificate {
            id: key(SHA1, thumbprint),
            thumbprint: normalize_thumbprint(thumbprint),
            thumbprint_algorithm: SHA1.to_string(),
            state: CertificateState::Active,
            state_transition_time: now,
            previous_state: None,
            previous_state_transition_time: None,
            public_data: String::new(),
            delete_certificate_error: None,
            format,
            data: String::new(),
            password: None,
        }
    }

    fn set_state(&mut self, state: CertificateState, now: Timestamp) {
        self.previous_state = Some(self.state);
        self.previous_state_transition_time = Some(self.state_transition_time);
        self.state = state;
        self.state_transition_time = now;
    }

    /// Delete: `active` or `deletefailed` → `deleting`.
    pub fn begin_delete(&mut self, now: Timestamp) -> Result<(), Refusal> {
        if self.state == CertificateState::Deleting {
            return Err(Refusal::BeingDeleted);
        }
        self.set_state(CertificateState::Deleting, now);
        self.delete_certificate_error = None;
        Ok(())
    }

    /// Cancel Deletion: `deletefailed` → `active`.
    pub fn cancel_delete(&mut self, now: Timestamp) -> Result<(), Refusal> {
        match self.state {
            CertificateState::Active => Err(Refusal::Active),
            CertificateState::Deleting => Err(Refusal::BeingDeleted),
            CertificateState::DeleteFailed => {
                self.set_state(CertificateState::Active, now);
                self.delete_certificate_error = None;
                Ok(())
            }
        }
    }

    /// Whether a `deleting` certificate is due for [`deletion_outcome`] at `now`.
    pub fn deletion_due(&self, now: Timestamp) -> bool {
        self.state == CertificateState::Deleting && (now - self.state_transition_time).num_milliseconds() >= DELETION_DELAY_MS
    }

    /// Marks a failed deletion.
    pub fn delete_failed(&mut self, error: DeleteCertificateError, now: Timestamp) {
        self.set_state(CertificateState::DeleteFailed, now);
        self.delete_certificate_error = Some(error);
    }
}

/// What a deletion comes to once the service looks: the certificate goes, or its deletion
/// fails because pools reference it (`PoolsReferencingCertificate`, one `Pools` value per
/// pool) or, without such pools, compute nodes still have it installed
/// (`NodesReferencingCertificate`, one `Nodes` value `<poolId>/<nodeId>` per node); at most
/// [`MAX_LISTED`] values.
pub fn deletion_outcome(pools: &[String], nodes: &[(String, String)]) -> Option<DeleteCertificateError> {
    let values = |name: &str, items: Vec<String>| -> Vec<NameValuePair> {
        items.into_iter().take(MAX_LISTED).map(|value| NameValuePair { name: name.to_string(), value }).collect()
    };
    if !pools.is_empty() {
        return Some(DeleteCertificateError {
            code: "PoolsReferencingCertificate".into(),
            message: "The specified certificate is being used by the below mentioned pool(s)".into(),
            values: values("Pools", pools.to_vec()),
        });
    }
    if !nodes.is_empty() {
        return Some(DeleteCertificateError {
            code: "NodesReferencingCertificate".into(),
            message: "The specified certificate is installed on the below mentioned compute node(s) until they are reimaged or removed"
                .into(),
            values: values("Nodes", nodes.iter().map(|(p, n)| format!("{p}/{n}")).collect()),
        });
    }
    None
}

/// A certificate a pool references or a node has installed: its record key and which
/// executions see it (`starttask`, `task`, `remoteuser`; empty: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub thumbprint_algorithm: String,
    pub thumbprint: String,
    pub visibility: Vec<String>,
}

impl Reference {
    /// The references of an API `certificateReferences` list (entries without a thumbprint are
    /// left out; the request check refuses them first).
    pub fn from_api(refs: Option<&[Value]>) -> Vec<Reference> {
        refs.unwrap_or_default()
            .iter()
            .filter_map(|r| {
                Some(Reference {
                    thumbprint_algorithm: r.get("thumbprintAlgorithm").and_then(Value::as_str).unwrap_or(SHA1).to_ascii_lowercase(),
                    thumbprint: normalize_thumbprint(r.get("thumbprint")?.as_str()?),
                    visibility: match r.get("visibility") {
                        Some(Value::Array(v)) => v.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect(),
                        _ => Vec::new(),
                    },
                })
            })
            .collect()
    }

    /// The record key of the referenced certificate.
    pub fn key(&self) -> String {
        key(&self.thumbprint_algorithm, &self.thumbprint)
    }
}

/// True when an API `certificateReferences` list names the certificate with record key `key`.
pub fn references(refs: Option<&[Value]>, key: &str) -> bool {
    Reference::from_api(refs).iter().any(|r| r.key().eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(state: CertificateState) -> Certificate {
        Certificate { state, ..Certificate::active("ab", CertificateFormat::Cer, chrono::DateTime::UNIX_EPOCH) }
    }

    #[test]
    fn deletion_states_follow_the_api() {
        let t = chrono::DateTime::UNIX_EPOCH + chrono::Duration::seconds(5);
        let mut c = cert(CertificateState::Active);
        assert_eq!(c.cancel_delete(t), Err(Refusal::Active));
        c.begin_delete(t).unwrap();
        assert_eq!((c.state, c.previous_state), (CertificateState::Deleting, Some(CertificateState::Active)));
        assert_eq!(c.begin_delete(t), Err(Refusal::BeingDeleted));
        assert_eq!(c.cancel_delete(t), Err(Refusal::BeingDeleted));
        assert!(!c.deletion_due(t));
        assert!(c.deletion_due(t + chrono::Duration::milliseconds(DELETION_DELAY_MS)));
        let e = deletion_outcome(&["p1".into()], &[]).unwrap();
        c.delete_failed(e, t);
        assert_eq!(c.delete_certificate_error.as_ref().unwrap().values[0].value, "p1");
        c.cancel_delete(t).unwrap();
        assert_eq!((c.state, c.delete_certificate_error.is_none()), (CertificateState::Active, true));
        // A failed deletion may be tried again.
        c.begin_delete(t).unwrap();
    }

    #[test]
    fn outcome_names_pools_then_nodes() {
        assert_eq!(deletion_outcome(&[], &[]), None);
        let e = deletion_outcome(&[], &[("p".into(), "n".into())]).unwrap();
        assert_eq!((e.code.as_str(), e.values[0].value.as_str()), ("NodesReferencingCertificate", "p/n"));
        let many: Vec<String> = (0..150).map(|i| format!("p{i}")).collect();
        assert_eq!(deletion_outcome(&many, &[]).unwrap().values.len(), MAX_LISTED);
    }

    #[test]
    fn references_read_the_api_list() {
        let refs = vec![serde_json::json!({"thumbprint": "AB CD", "thumbprintAlgorithm": "SHA1", "visibility": ["StartTask"]})];
        let r = Reference::from_api(Some(&refs));
        assert_eq!(r[0].key(), "sha1-abcd");
        assert_eq!(r[0].visibility, vec!["starttask"]);
        assert!(references(Some(&refs), "sha1-ABCD"));
        assert!(!references(None, "sha1-abcd"));
    }
}
