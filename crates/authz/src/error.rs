//! The one table from the service's OAuth error codes to HTTP: a status and the JSON body
//! of RFC 6749 §5.2 (`error`, `error_description`), never cached.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use toolbelt_control::service::mcp_auth::{AuthzError, OAuthCode};

pub struct OAuthReply(pub AuthzError);

impl From<AuthzError> for OAuthReply {
    fn from(e: AuthzError) -> Self {
        OAuthReply(e)
    }
}

pub fn status(code: OAuthCode) -> StatusCode {
    match code {
        OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        OAuthCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        OAuthCode::AccessDenied => StatusCode::FORBIDDEN,
        OAuthCode::InvalidRequest
        | OAuthCode::InvalidGrant
        | OAuthCode::UnauthorizedClient
        | OAuthCode::UnsupportedGrantType
        | OAuthCode::UnsupportedResponseType
        | OAuthCode::InvalidScope
        | OAuthCode::InvalidTarget
        | OAuthCode::InvalidRedirectUri
        | OAuthCode::InvalidClientMetadata => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthReply {
    fn into_response(self) -> Response {
        let e = self.0;
        let mut res = (
            status(e.code),
            Json(serde_json::json!({
                "error": e.code.as_str(),
                "error_description": e.description,
            })),
        )
            .into_response();
        no_store(&mut res);
        if let Some(wait) = e.retry_after {
            // Whole seconds, rounded up: a client retrying at once would be refused again.
            let secs = wait.as_millis().div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// Token endpoint replies and errors are never cached (RFC 6749 §5.1).
pub fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
