//! The authorization server's one error: an OAuth error code (RFC 6749 §4.1.2.1, §5.2;
//! RFC 7591 §3.2.2; RFC 8707 §2) and a description safe to show the client. The HTTP
//! boundary (`toolbelt-authz`) turns it into a status and a JSON body or a redirect, in
//! one table there.

use crate::service::ServiceError;
use std::time::Duration;

/// The codes of the OAuth error registry this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    /// RFC 8707: the `resource` is not this server's protected resource.
    InvalidTarget,
    /// RFC 7591: a redirect URI that breaks the rules.
    InvalidRedirectUri,
    /// RFC 7591: other registration metadata that does not validate.
    InvalidClientMetadata,
    ServerError,
    TemporarilyUnavailable,
    /// Too many requests from one address (HTTP 429 with `Retry-After`); on the wire it is
    /// `temporarily_unavailable`, the registry's nearest code.
    RateLimited,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::AccessDenied => "access_denied",
            OAuthCode::InvalidTarget => "invalid_target",
            OAuthCode::InvalidRedirectUri => "invalid_redirect_uri",
            OAuthCode::InvalidClientMetadata => "invalid_client_metadata",
            OAuthCode::ServerError => "server_error",
            OAuthCode::TemporarilyUnavailable | OAuthCode::RateLimited => "temporarily_unavailable",
        }
    }
}

/// An authorization-server refusal or failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct AuthzError {
    pub code: OAuthCode,
    pub description: String,
    /// When a rate-limited client may try again.
    pub retry_after: Option<Duration>,
}

impl AuthzError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> AuthzError {
        AuthzError {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn request(d: impl Into<String>) -> AuthzError {
        AuthzError::new(OAuthCode::InvalidRequest, d)
    }

    pub fn grant(d: impl Into<String>) -> AuthzError {
        AuthzError::new(OAuthCode::InvalidGrant, d)
    }

    pub fn client(d: impl Into<String>) -> AuthzError {
        AuthzError::new(OAuthCode::InvalidClient, d)
    }

    /// Whether the error may be sent to the client's redirect URI (RFC 6749 §4.1.2.1):
    /// not when the client or its redirect URI are what is wrong.
    pub fn redirectable(&self) -> bool {
        !matches!(
            self.code,
            OAuthCode::InvalidClient | OAuthCode::InvalidRedirectUri
        )
    }
}

impl From<toolbelt_store::StoreError> for AuthzError {
    fn from(e: toolbelt_store::StoreError) -> AuthzError {
        AuthzError::from(ServiceError::from(e))
    }
}

impl From<ServiceError> for AuthzError {
    fn from(e: ServiceError) -> AuthzError {
        match e {
            ServiceError::NotFound(m) => AuthzError::new(OAuthCode::AccessDenied, m),
            ServiceError::Unavailable(m) => AuthzError::new(OAuthCode::TemporarilyUnavailable, m),
            e @ ServiceError::DatabaseUnavailable { retry_after } => AuthzError {
                retry_after: Some(retry_after),
                ..AuthzError::new(OAuthCode::TemporarilyUnavailable, e.to_string())
            },
            ServiceError::Invalid(i) => AuthzError::request(i.to_string()),
            ServiceError::TooManyAttempts { retry_after } => AuthzError {
                retry_after: Some(retry_after),
                ..AuthzError::new(
                    OAuthCode::RateLimited,
                    format!(
                        "too many requests from this address; try again in {} s",
                        retry_after.as_secs().max(1)
                    ),
                )
            },
            ServiceError::Internal => {
                AuthzError::new(OAuthCode::ServerError, ServiceError::Internal.to_string())
            }
            other => AuthzError::new(OAuthCode::ServerError, other.to_string()),
        }
    }
}
