//! RFC 9457 problem details: every API error is `application/problem+json` with a stable
//! `type` that scripts can match on. [`Kind`] is the REST boundary's one error table
//! (slug, status, title); service errors enter it through `From<ServiceError>`.

use crate::service::{ServiceError, secs};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use toolbelt_model::{FieldError, Invalid};
use toolbelt_store::StoreError;
use utoipa::ToSchema;

/// The stable problem types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unauthenticated,
    Forbidden,
    NotFound,
    RouteNotFound,
    MethodNotAllowed,
    Conflict,
    Ambiguous,
    Validation,
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    Unavailable,
    Internal,
    /// An OAuth callback or start URL whose state or flow does not check out.
    OAuthState,
    /// The OAuth provider refused (access_denied, invalid_grant, …).
    ProviderRefused,
    /// The OAuth provider could not be reached or answered nonsense.
    ProviderFailed,
    /// A sealed secret does not open (wrong key, tampered or moved ciphertext).
    Undecryptable,
    /// Too many failed logins from this address or at this account (`Retry-After`).
    TooManyAttempts,
    /// Bounded work (password hashing) is saturated (`Retry-After`).
    Busy,
}

impl Kind {
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Unauthenticated => "unauthenticated",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not-found",
            Kind::RouteNotFound => "route-not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::Conflict => "conflict",
            Kind::Ambiguous => "ambiguous-name",
            Kind::Validation => "validation",
            Kind::MalformedJson => "malformed-json",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::PayloadTooLarge => "payload-too-large",
            Kind::Unavailable => "unavailable",
            Kind::Internal => "internal",
            Kind::OAuthState => "oauth-state",
            Kind::ProviderRefused => "provider-refused",
            Kind::ProviderFailed => "provider-failed",
            Kind::Undecryptable => "secret-undecryptable",
            Kind::TooManyAttempts => "too-many-attempts",
            Kind::Busy => "busy",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound | Kind::RouteNotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Conflict | Kind::Ambiguous => StatusCode::CONFLICT,
            Kind::Validation | Kind::MalformedJson => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal | Kind::Undecryptable => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::OAuthState | Kind::ProviderRefused => StatusCode::BAD_REQUEST,
            Kind::ProviderFailed => StatusCode::BAD_GATEWAY,
            Kind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Unauthenticated => "Authentication required",
            Kind::Forbidden => "Not allowed",
            Kind::NotFound => "Not found",
            Kind::RouteNotFound => "No such route",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::Conflict => "Conflict",
            Kind::Ambiguous => "Ambiguous name",
            Kind::Validation => "Invalid input",
            Kind::MalformedJson => "Malformed JSON",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::PayloadTooLarge => "Request body too large",
            Kind::Unavailable => "Service unavailable",
            Kind::Internal => "Internal error",
            Kind::OAuthState => "OAuth flow does not check out",
            Kind::ProviderRefused => "The OAuth provider refused",
            Kind::ProviderFailed => "The OAuth provider failed",
            Kind::Undecryptable => "Secret does not decrypt",
            Kind::TooManyAttempts => "Too many attempts",
            Kind::Busy => "Server busy",
        }
    }
}

pub const TYPE_PREFIX: &str = "urn:toolbelt:problem:";

/// An API error. Its JSON form is the problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields at fault (validation problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds to wait before trying again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    #[serde(skip)]
    pub kind: Option<Kind>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Problem {
        Problem {
            type_uri: format!("{TYPE_PREFIX}{}", kind.slug()),
            title: kind.title().to_string(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            kind: Some(kind),
        }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(Kind::Unauthenticated, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(Kind::Forbidden, detail)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Problem {
        Problem::new(Kind::NotFound, format!("{what} not found"))
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(Kind::Conflict, detail)
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Problem {
        Invalid::field(field, message).into()
    }

    pub fn internal() -> Problem {
        ServiceError::Internal.into()
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The REST boundary's one table from a service error to a problem: same message, the
/// kind's status and `type`, and the fields at fault.
impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Problem {
        let kind = match &e {
            ServiceError::Unauthenticated(_) => Kind::Unauthenticated,
            ServiceError::Forbidden(_) => Kind::Forbidden,
            ServiceError::NotFound(_) => Kind::NotFound,
            ServiceError::Conflict(_) => Kind::Conflict,
            ServiceError::Ambiguous(_) => Kind::Ambiguous,
            ServiceError::Invalid(_) => Kind::Validation,
            ServiceError::Unavailable(_) | ServiceError::DatabaseUnavailable { .. } => {
                Kind::Unavailable
            }
            ServiceError::Undecryptable(_) => Kind::Undecryptable,
            ServiceError::OAuthState(_) => Kind::OAuthState,
            ServiceError::ProviderRefused(_) => Kind::ProviderRefused,
            ServiceError::ProviderFailed(_) => Kind::ProviderFailed,
            ServiceError::TooManyAttempts { .. } => Kind::TooManyAttempts,
            ServiceError::Busy { .. } => Kind::Busy,
            ServiceError::Internal => Kind::Internal,
        };
        let mut p = Problem::new(kind, e.to_string());
        p.retry_after = e.retry_after().map(secs);
        if let ServiceError::Invalid(i) = e {
            p.errors = i.0;
        }
        p
    }
}

impl From<Invalid> for Problem {
    fn from(e: Invalid) -> Problem {
        ServiceError::from(e).into()
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        ServiceError::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let unauth = status == StatusCode::UNAUTHORIZED;
        let mut res = (status, axum::Json(&self)).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauth {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        // Lets the audit middleware name failures without re-parsing the body.
        res.extensions_mut().insert(ProblemType(self.kind));
        res
    }
}

/// Marker left on error responses for the audit middleware.
#[derive(Debug, Clone, Copy)]
pub struct ProblemType(pub Option<Kind>);

pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_error_has_its_problem_type_status_and_message() {
        let cases = [
            (
                ServiceError::Unauthenticated("u".into()),
                "unauthenticated",
                401,
            ),
            (ServiceError::forbidden("f"), "forbidden", 403),
            (ServiceError::not_found("agent x"), "not-found", 404),
            (ServiceError::conflict("c"), "conflict", 409),
            (ServiceError::Ambiguous("a".into()), "ambiguous-name", 409),
            (ServiceError::invalid("name", "bad"), "validation", 422),
            (ServiceError::unavailable("down"), "unavailable", 503),
            (
                ServiceError::Undecryptable("d".into()),
                "secret-undecryptable",
                500,
            ),
            (ServiceError::OAuthState("s".into()), "oauth-state", 400),
            (
                ServiceError::ProviderRefused("r".into()),
                "provider-refused",
                400,
            ),
            (
                ServiceError::ProviderFailed("p".into()),
                "provider-failed",
                502,
            ),
            (ServiceError::Internal, "internal", 500),
            (
                ServiceError::TooManyAttempts {
                    retry_after: std::time::Duration::from_millis(2500),
                },
                "too-many-attempts",
                429,
            ),
            (
                ServiceError::Busy {
                    retry_after: std::time::Duration::from_secs(1),
                },
                "busy",
                503,
            ),
        ];
        for (e, slug, status) in cases {
            let detail = e.to_string();
            let p = Problem::from(e);
            assert_eq!(p.type_uri, format!("{TYPE_PREFIX}{slug}"));
            assert_eq!((p.status, p.detail), (status, detail));
        }
        let p = Problem::from(ServiceError::TooManyAttempts {
            retry_after: std::time::Duration::from_millis(2500),
        });
        assert_eq!(p.retry_after, Some(3), "rounded up");
        let res = p.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "3");
        // The database unreachable: the store's one mapping, as the gateway's 503s.
        let down = toolbelt_store::StoreError::Db(std::io::Error::other("reset").into());
        let p = Problem::from(down);
        assert_eq!((p.status, p.retry_after), (503, Some(1)));
        assert_eq!(p.detail, toolbelt_store::UNAVAILABLE);
        let p = Problem::from(ServiceError::invalid("config.port", "must be ≥ 1"));
        assert_eq!(p.detail, "config.port: must be ≥ 1");
        assert_eq!(p.errors[0].field, "config.port");
        assert_eq!(
            Problem::from(ServiceError::not_found("agent x")).detail,
            "agent x not found"
        );
    }

    /// The README's API conventions name every problem type with its status.
    #[test]
    fn the_readme_lists_every_problem_type() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).expect("the repository's README.md");
        let all = [
            Kind::Unauthenticated,
            Kind::Forbidden,
            Kind::NotFound,
            Kind::RouteNotFound,
            Kind::MethodNotAllowed,
            Kind::Conflict,
            Kind::Ambiguous,
            Kind::Validation,
            Kind::MalformedJson,
            Kind::UnsupportedMediaType,
            Kind::PayloadTooLarge,
            Kind::Unavailable,
            Kind::Internal,
            Kind::OAuthState,
            Kind::ProviderRefused,
            Kind::ProviderFailed,
            Kind::Undecryptable,
            Kind::TooManyAttempts,
            Kind::Busy,
        ];
        let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        for k in all {
            let entry = format!("`{}` {}", k.slug(), k.status().as_u16());
            assert!(flat.contains(&entry), "README.md does not say {entry}");
        }
    }
}
