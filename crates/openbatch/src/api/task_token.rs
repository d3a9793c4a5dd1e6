//! Task authentication tokens: what a task added with `authenticationTokenSettings:
//! {"access": ["job"]}` finds in `AZ_BATCH_AUTHENTICATION_TOKEN`, and sends back as
//! `Authorization: Bearer <token>` to act on its own job without the account key.
//!
//! Decisions:
//!
//! * **Format.** A JWT signed with HS256 (HMAC-SHA256) by [`jsonwebtoken`]. The token is opaque
//!   to the SDKs (msrest's `BasicTokenAuthentication`, an `azure.core` `TokenCredential`), so
//!   any format would do; a JWT is what the real service hands out and is easy to inspect.
//! * **Claims** ([`TokenClaims`]): `iss` = [`ISSUER`], `aud` = the Batch account name (a token
//!   is refused by a service serving another account), `jobId`, `taskId`, `access` (the
//!   scopes of `authenticationTokenSettings.access`; today only `job`), `iat` and `exp`
//!   (Unix seconds). All are required; `alg` must be HS256 (no `none`, no key confusion).
//! * **Lifetime.** [`TOKEN_LIFETIME_SECONDS`] = 7 days, the default `retentionTime` of a task
//!   (`P7D`): a token outlives any task that keeps the defaults. A task running longer gets
//!   401 after 7 days. Expiry is checked exactly (no leeway): issuer and verifier share a clock.
//! * **Secret.** [`SECRET_LEN`] bytes from the operating system's CSPRNG (`rand::rngs::OsRng`),
//!   created at the first start as `<data dir>/`[`SECRET_FILE`] with mode 0600 and reused
//!   after, so tokens survive a restart. It is written to a temporary file and hard-linked into
//!   place, so a crash never leaves a partial secret and two racing starts agree on one. A file
//!   of another length is an error (never silently replaced: that would revoke every token);
//!   a file readable by others is narrowed to 0600 with a warning. Deleting the file revokes
//!   every token at the next start. Mode 0600 keeps the secret from other users only: tasks
//!   run as the service's user (README, "Tasks run as the user the service runs as"), so a task
//!   can read it, as it can read the account key and the store; a token is a convenience
//!   scope for well-behaved tasks, not a sandbox, until tasks get users of their own.
//! * **Scope.** A token names its job by id; it authorizes `/jobs/{jobId}` and every path under
//!   it, compared after percent-decoding (see `auth::Principal::authorize`). A job deleted and
//!   added again under the same id is the same job to its old tokens, until they expire.
//! * **Errors** (Batch error bodies, see [`BatchError`]). The recorded interactions and the
//!   Swagger specs carry no authentication or authorization failure of a bearer token, so the
//!   codes come from Batch's documented error code list ("Batch status and error codes",
//!   `BatchErrorCodeStrings`):
//!   - a bearer token that is not a JWT at all (not three base64url parts, header or payload
//!     not JSON, an unknown `alg` such as `none`, an empty token) → **400
//!     `InvalidAuthenticationInfo`**, as a malformed SharedKey header already answers (the
//!     code documented for authentication information "not provided in the correct format");
//!   - a JWT that is not a valid task token of this service (signature not made with this
//!     secret, tampered, another algorithm, another account or issuer, a claim missing,
//!     expired) → **401 `AuthenticationFailed`** with an `AuthenticationErrorDetail` value:
//!     the code documented for "the server failed to authenticate the request", with the
//!     status of RFC 6750's `invalid_token` rather than the 403 that the same code carries for
//!     a wrong SharedKey signature. No `WWW-Authenticate` header is sent: `azure.core`'s
//!     bearer policy reads one as a claims challenge;
//!   - a valid token used outside its job → **403 `InsufficientAccountPermissions`** (documented
//!     with status 403: the credentials lack the permissions for the operation) with an
//!     `AuthorizationErrorDetail` value, built by [`forbidden`].

use super::error::BatchError;
use crate::model::time::Timestamp;
use anyhow::Context;
use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the secret's file in the data directory.
pub const SECRET_FILE: &str = "task-token.key";
/// Length of the HMAC secret in bytes (the SHA-256 block size).
pub const SECRET_LEN: usize = 64;
/// How long a token is valid after it is issued: 7 days, in seconds.
pub const TOKEN_LIFETIME_SECONDS: i64 = 7 * 24 * 60 * 60;
/// The `iss` claim of every token.
pub const ISSUER: &str = "openbatch";
/// The one access scope Batch defines: every operation on the task's job.
pub const ACCESS_JOB: &str = "job";
/// The environment variable a task finds its token in.
pub const ENV_VAR: &str = "AZ_BATCH_AUTHENTICATION_TOKEN";

/// The claims of a task token, as signed in its JWT payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Issuer: always [`ISSUER`].
    pub iss: String,
    /// Audience: the Batch account name the token is for.
    pub aud: String,
    /// The job the task belongs to; the only job the token acts on.
    #[serde(rename = "jobId")]
    pub job_id: String,
    /// The task the token was issued to.
    #[serde(rename = "taskId")]
    pub task_id: String,
    /// Access scopes (`authenticationTokenSettings.access`): `["job"]`.
    pub access: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds; the token is refused from this second on.
    pub exp: i64,
}

impl TokenClaims {
    /// True when the claims grant the `job` scope.
    pub fn has_job_access(&self) -> bool {
        self.access.iter().any(|a| a == ACCESS_JOB)
    }
}

/// Issues and verifies the task tokens of one account with one HMAC secret.
///
/// Created once by `serve` (see `App::task_tokens`) and shared as `Arc<TaskTokens>`; the
/// scheduler calls [`TaskTokens::issue`] when it starts a task with
/// `authenticationTokenSettings` and puts the token in [`ENV_VAR`].
pub struct TaskTokens {
    account: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TaskTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskTokens").field("account", &self.account).finish_non_exhaustive()
    }
}

impl TaskTokens {
    /// The secret file of the data directory `data_dir`.
    pub fn secret_path(data_dir: &Path) -> PathBuf {
        data_dir.join(SECRET_FILE)
    }

    /// Loads the secret of `data_dir` (creating the directory and the secret, mode 0600, when
    /// missing) for tokens of the account `account`.
    ///
    /// Errors: the directory or file cannot be created or read, or the file does not hold
    /// exactly [`SECRET_LEN`] bytes.
    pub fn load_or_create(data_dir: &Path, account: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let secret = read_or_create_secret(&Self::secret_path(data_dir))?;
        Self::from_secret(&secret, account)
    }

    /// Tokens of the account `account` signed with `secret` (not empty).
    fn from_secret(secret: &[u8], account: &str) -> anyhow::Result<Self> {
        let encoding = EncodingKey::from_secret(secret).context("the task token secret")?;
        let decoding = DecodingKey::from_secret(secret).context("the task token secret")?;
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked by `verify_at` against the caller's clock (exactly, no leeway).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_audience(&[account]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
        Ok(TaskTokens { account: account.to_string(), encoding, decoding, validation })
    }

    /// The account whose tokens these are (the `aud` claim).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// A token for the task `task_id` of the job `job_id` with `job` access, issued at `now`
    /// and valid for [`TOKEN_LIFETIME_SECONDS`].
    pub fn issue(&self, job_id: &str, task_id: &str, now: Timestamp) -> String {
        let iat = now.timestamp();
        let claims = TokenClaims {
            iss: ISSUER.to_string(),
            aud: self.account.clone(),
            job_id: job_id.to_string(),
            task_id: task_id.to_string(),
            access: vec![ACCESS_JOB.to_string()],
            iat,
            exp: iat + TOKEN_LIFETIME_SECONDS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signs with any non-empty secret")
    }

    /// Verifies a token (the text after `Bearer `) at the current time. See [`Self::verify_at`].
    pub fn verify(&self, token: &str) -> Result<TokenClaims, BatchError> {
        self.verify_at(token, chrono::Utc::now())
    }

    /// Verifies a token at `now`: its signature, algorithm (HS256), issuer, audience (this
    /// account) and claims, and that it has not expired.
    ///
    /// Errors: 400 `InvalidAuthenticationInfo` when the token is not a JWT at all; 401
    /// `AuthenticationFailed` when it is not a valid, unexpired task token of this service.
    /// Both carry an `AuthenticationErrorDetail` saying why.
    pub fn verify_at(&self, token: &str, now: Timestamp) -> Result<TokenClaims, BatchError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<TokenClaims>(token.trim(), &self.decoding, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_)
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::MissingAlgorithm => malformed("The bearer token is not a JSON Web Token."),
            ErrorKind::InvalidSignature => unauthorized("The signature of the bearer token is not valid."),
            ErrorKind::InvalidAudience => unauthorized(format!("The bearer token was not issued for the account {}.", self.account)),
            ErrorKind::InvalidAlgorithm => unauthorized("The bearer token is not signed with HS256."),
            _ => unauthorized("The bearer token is not a task authentication token issued by this service."),
        })?;
        let claims = data.claims;
        if now.timestamp() >= claims.exp {
            let at = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.to_rfc3339()).unwrap_or_else(|| claims.exp.to_string());
            return Err(unauthorized(format!("The task authentication token expired at {at}.")));
        }
        Ok(claims)
    }
}

/// 400 `InvalidAuthenticationInfo` for a bearer token that is not a JWT.
pub fn malformed(detail: impl Into<String>) -> BatchError {
    BatchError::new(
        StatusCode::BAD_REQUEST,
        "InvalidAuthenticationInfo",
        "Authentication information is not given in the correct format. Check the value of Authorization header.",
    )
    .with("AuthenticationErrorDetail", detail)
}

/// 401 `AuthenticationFailed` for a bearer token that is not a valid task token.
pub fn unauthorized(detail: impl Into<String>) -> BatchError {
    BatchError::new(
        StatusCode::UNAUTHORIZED,
        "AuthenticationFailed",
        "Server failed to authenticate the request. The bearer token in the Authorization header is not valid.",
    )
    .with("AuthenticationErrorDetail", detail)
}

/// 403 `InsufficientAccountPermissions` for a valid task token used outside its scope.
pub fn forbidden(detail: impl Into<String>) -> BatchError {
    BatchError::new(
        StatusCode::FORBIDDEN,
        "InsufficientAccountPermissions",
        "The credentials of this request do not have sufficient permissions to perform this operation.",
    )
    .with("AuthorizationErrorDetail", detail)
}

/// Reads the secret at `path`, creating it (random, mode 0600) when it does not exist.
fn read_or_create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use rand::RngCore;
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    match read_secret(path) {
        Ok(secret) => return Ok(secret),
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) => {}
        Err(e) => return Err(e),
    }
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.try_fill_bytes(&mut secret).context("reading the operating system's random number generator")?;
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&secret)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    // A hard link never replaces an existing file: whoever links first wins, the others
    // read the winner's secret. Filesystems without hard links fall back to a rename.
    let linked = std::fs::hard_link(&tmp, path);
    let outcome = match linked {
        Ok(()) => Ok(secret),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path),
        Err(_) => std::fs::rename(&tmp, path).with_context(|| format!("creating {}", path.display())).map(|()| secret),
    };
    let _ = std::fs::remove_file(&tmp);
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    outcome
}

/// Reads an existing secret, narrowing its mode to 0600 when others may read it.
fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let secret = std::fs::read(path).map_err(anyhow::Error::from)?;
    anyhow::ensure!(
        secret.len() == SECRET_LEN,
        "{} holds {} bytes, not the {SECRET_LEN} of a task token secret; delete it to make a new one (every token issued so far is then refused)",
        path.display(),
        secret.len()
    );
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the task token secret was readable by others; narrowing it to 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).with_context(|| format!("chmod 0600 {}", path.display()))?;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use chrono::{Duration, Utc};
    use std::os::unix::fs::PermissionsExt;

    fn tokens(dir: &Path) -> TaskTokens {
        TaskTokens::load_or_create(dir, "acct").unwrap()
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let now = Utc::now();
        let token = t.issue("job/1", "task-1", now);
        let c = t.verify(&token).unwrap();
        assert_eq!((c.job_id.as_str(), c.task_id.as_str(), c.aud.as_str(), c.iss.as_str()), ("job/1", "task-1", "acct", ISSUER));
        assert_eq!(c.access, vec!["job".to_string()]);
        assert!(c.has_job_access());
        assert_eq!(c.iat, now.timestamp());
        assert_eq!(c.exp - c.iat, TOKEN_LIFETIME_SECONDS);
        // The header names HS256.
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["alg"], "HS256");
    }

    #[test]
    fn tokens_expire_after_their_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let issued = Utc::now() - Duration::days(30);
        let token = t.issue("j", "t", issued);
        assert!(t.verify_at(&token, issued + Duration::seconds(TOKEN_LIFETIME_SECONDS - 1)).is_ok());
        let e = t.verify_at(&token, issued + Duration::seconds(TOKEN_LIFETIME_SECONDS)).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (StatusCode::UNAUTHORIZED, "AuthenticationFailed"));
        assert!(e.values.iter().any(|(k, v)| k == "AuthenticationErrorDetail" && v.contains("expired")), "{e:?}");
        assert_eq!(t.verify(&token).unwrap_err().status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn forged_tampered_and_foreign_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let token = t.issue("j", "t", Utc::now());
        // Another payload under the same signature.
        let parts: Vec<&str> = token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["jobId"] = "other".into();
        let tampered = format!("{}.{}.{}", parts[0], engine.encode(serde_json::to_vec(&claims).unwrap()), parts[2]);
        assert_eq!(t.verify(&tampered).unwrap_err().code, "AuthenticationFailed");
        // Another signature of the right length.
        let mut sig = parts[2].as_bytes().to_vec();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let resigned = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(sig).unwrap());
        assert_eq!(t.verify(&resigned).unwrap_err().status, StatusCode::UNAUTHORIZED);
        // Not JWTs at all (alg none included): 400 InvalidAuthenticationInfo.
        let none = format!("{}.{}.", engine.encode(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        for bad in [none.as_str(), "", "abc", "a.b.c", "SharedKey x:y", "a.b"] {
            let e = t.verify(bad).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (StatusCode::BAD_REQUEST, "InvalidAuthenticationInfo"), "{bad}");
        }
        // Another secret, and another account with the same secret.
        let other_dir = tempfile::tempdir().unwrap();
        assert!(tokens(other_dir.path()).verify(&token).is_err());
        let other_account = TaskTokens::load_or_create(dir.path(), "other").unwrap();
        let e = other_account.verify(&token).unwrap_err();
        assert!(e.values.iter().any(|(_, v)| v.contains("account other")), "{e:?}");
    }

    #[test]
    fn the_secret_is_private_and_survives_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let token = tokens(dir.path()).issue("j", "t", Utc::now());
        let path = TaskTokens::secret_path(dir.path());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len() as usize, SECRET_LEN);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Reloaded: the same secret verifies the old token.
        assert!(tokens(dir.path()).verify(&token).is_ok());
        // A file others may read is narrowed to 0600.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(tokens(dir.path()).verify(&token).is_ok());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A truncated secret is an error, never silently replaced.
        std::fs::write(&path, b"short").unwrap();
        assert!(TaskTokens::load_or_create(dir.path(), "acct").is_err());
        // Two directories, two secrets.
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tokens(a.path());
        tokens(b.path());
        assert_ne!(std::fs::read(TaskTokens::secret_path(a.path())).unwrap(), std::fs::read(TaskTokens::secret_path(b.path())).unwrap());
    }
}
