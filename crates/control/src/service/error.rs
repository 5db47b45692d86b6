//! The services' one error type: what went wrong, in the domain's words. Each boundary
//! renders it its own way — the REST API as a problem document ([`crate::problem`], the
//! one table of statuses and `type`s), the dashboard next to the form field at fault, the
//! chat runtime as a tool error.

use std::time::Duration;
use toolbelt_model::{FieldError, Invalid};
use toolbelt_oauth::OAuthError;
use toolbelt_store::StoreError;
use toolbelt_vault::VaultError;

/// A service refused or failed. The message (`Display`) is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Missing or wrong credentials (a failed login, a browser-only step without a session).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role or credential may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not the caller's (never told apart).
    #[error("{0}")]
    NotFound(String),
    /// The change clashes with what exists (a duplicate, a state that forbids it).
    #[error("{0}")]
    Conflict(String),
    /// A name several visible things share; the caller must say which.
    #[error("{0}")]
    Ambiguous(String),
    /// Input that does not validate; every field at fault is named.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A dependency (database, vault, toolbox) is down or not configured.
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot be reached (`StoreError::is_unavailable`): 503 with
    /// `Retry-After`, as the gateway answers its agents.
    #[error("{}", toolbelt_store::UNAVAILABLE)]
    DatabaseUnavailable { retry_after: Duration },
    /// A sealed secret does not open (wrong key, tampered or moved ciphertext).
    #[error("{0}")]
    Undecryptable(String),
    /// An OAuth flow whose state, session or expiry does not check out.
    #[error("{0}")]
    OAuthState(String),
    /// The OAuth provider refused (access_denied, invalid_grant, …).
    #[error("{0}")]
    ProviderRefused(String),
    /// The OAuth provider could not be reached or answered nonsense.
    #[error("{0}")]
    ProviderFailed(String),
    /// Too many failed logins from this client address or at this account: no attempt
    /// runs (nothing is hashed) until `retry_after` has passed.
    #[error("too many login attempts; try again in {} s", secs(*retry_after))]
    TooManyAttempts { retry_after: Duration },
    /// Too much of a bounded kind of work (password hashing) is running; try again soon.
    #[error("the server is busy; try again in {} s", secs(*retry_after))]
    Busy { retry_after: Duration },
    /// A bug or an unexpected failure; the cause is in the log, not shown.
    #[error("the server failed; the error is in its log")]
    Internal,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Whole seconds, rounded up, at least one: what a `Retry-After` header can say.
pub fn secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl ServiceError {
    /// `{what} not found`.
    pub fn not_found(what: impl std::fmt::Display) -> ServiceError {
        ServiceError::NotFound(format!("{what} not found"))
    }

    pub fn forbidden(why: impl Into<String>) -> ServiceError {
        ServiceError::Forbidden(why.into())
    }

    pub fn conflict(why: impl Into<String>) -> ServiceError {
        ServiceError::Conflict(why.into())
    }

    pub fn unavailable(why: impl Into<String>) -> ServiceError {
        ServiceError::Unavailable(why.into())
    }

    /// One invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(Invalid::field(field, message))
    }

    /// The fields at fault, for showing next to a form's inputs (empty unless `Invalid`).
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ServiceError::Invalid(i) => &i.0,
            _ => &[],
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ServiceError::NotFound(_))
    }

    /// When to try again, for the errors that say (throttled, busy).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ServiceError::TooManyAttempts { retry_after }
            | ServiceError::Busy { retry_after }
            | ServiceError::DatabaseUnavailable { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A store result whose `NotFound` names what was looked for.
pub fn found<T>(what: impl std::fmt::Display, r: Result<T, StoreError>) -> Result<T> {
    r.map_err(|e| match e {
        StoreError::NotFound => ServiceError::not_found(what),
        other => other.into(),
    })
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        match e {
            StoreError::NotFound => ServiceError::NotFound("not found".into()),
            StoreError::Conflict(m) => ServiceError::Conflict(m),
            other if other.is_storage_full() => {
                tracing::error!(error = %other, "the database's disk is full");
                ServiceError::unavailable(
                    "the database's disk is full: nothing was saved; free space and try again",
                )
            }
            other if other.is_unavailable() => {
                tracing::error!(error = %other, "database unavailable");
                ServiceError::DatabaseUnavailable {
                    retry_after: toolbelt_store::UNAVAILABLE_RETRY_AFTER,
                }
            }
            other => {
                tracing::error!(error = %other, "store error");
                ServiceError::Internal
            }
        }
    }
}

impl From<VaultError> for ServiceError {
    fn from(e: VaultError) -> ServiceError {
        match e {
            VaultError::NotFound => ServiceError::NotFound("secret not found".into()),
            VaultError::Forbidden(m) => ServiceError::Forbidden(m),
            VaultError::Conflict(m) => ServiceError::Conflict(m),
            VaultError::Store(s) => s.into(),
            e @ (VaultError::UnknownKek { .. }
            | VaultError::Unwrap { .. }
            | VaultError::Decrypt { .. }) => {
                tracing::error!(error = %e, "a secret does not open");
                ServiceError::Undecryptable(e.to_string())
            }
            e => {
                tracing::error!(error = %e, "vault error");
                ServiceError::unavailable(format!("the vault failed: {e}"))
            }
        }
    }
}

impl From<OAuthError> for ServiceError {
    fn from(e: OAuthError) -> ServiceError {
        match e {
            OAuthError::NotFound(what) => ServiceError::not_found(what),
            OAuthError::Invalid { field, message } => ServiceError::invalid(&field, message),
            OAuthError::Forbidden(m) => ServiceError::Forbidden(m),
            OAuthError::Conflict(m) => ServiceError::Conflict(m),
            e @ OAuthError::State(_) => ServiceError::OAuthState(e.to_string()),
            e @ OAuthError::Provider { .. } => ServiceError::ProviderRefused(e.to_string()),
            e @ (OAuthError::Unreachable(_) | OAuthError::Malformed(_)) => {
                ServiceError::ProviderFailed(e.to_string())
            }
            OAuthError::Vault(v) => v.into(),
            OAuthError::Store(s) => s.into(),
        }
    }
}
