//! Who is looking at a page: the dashboard session (the `toolbelt_session` cookie the
//! login form sets), and the CSRF token every form of that session carries.
//!
//! The session cookie is `SameSite=Lax` (a `Strict` one is dropped on the OAuth
//! provider's redirect back to `/oauth/{provider}/callback`), so a cross-site top-level
//! POST… is still refused twice: the browser's `Origin` must name this host (the same
//! check as the REST API's), and the form must carry [`CSRF_FIELD`] — an HMAC of the
//! session's token id under the control key. The token needs no storage (no migration),
//! is the same on every page of one session, and dies with the session; replicas sharing
//! the control key agree on it.

use crate::error::Page;
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use toolbelt_control::AppState;
use toolbelt_control::auth::{self, Auth, Principal};
use toolbelt_control::service::{self, Caller};
use toolbelt_model::signed::ControlKey;
use toolbelt_model::user::User;

/// The hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The CSRF token of the session whose token id is `session_id`.
pub fn csrf_token(key: &ControlKey, session_id: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.seed())
        .expect("HMAC takes a key of any length");
    mac.update(b"toolbelt dashboard csrf\0");
    mac.update(session_id.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// A signed-in dashboard user: the services' caller, the user (for the header) and the
/// session's CSRF token (for the forms).
#[derive(Clone)]
pub struct Dash {
    pub caller: Caller,
    pub user: User,
    pub csrf: String,
}

/// What a form of this request must carry; left in the request by [`Dash`] for
/// [`crate::form::Form`].
#[derive(Clone)]
pub(crate) struct ExpectedCsrf(pub String);

impl Dash {
    pub fn is_admin(&self) -> bool {
        self.caller.is_admin()
    }
}

/// Whether `given` is this session's CSRF token (constant time).
pub(crate) fn csrf_matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

impl FromRequestParts<AppState> for Dash {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Dash, Response> {
        let mutating = !matches!(parts.method, Method::GET | Method::HEAD);
        if mutating && !same_origin(parts) {
            return Err(Page::forbidden("cross-site request refused").into_response());
        }
        let auth = auth::resolve(&st.store, &parts.headers)
            .await
            .map_err(|_| Page::unavailable("the database is unavailable").into_response())?;
        // Only a session cookie signs a browser in; a bearer token is the API's.
        let caller = match auth {
            Auth::Caller(Principal::User(c)) if c.session().is_some() => c,
            _ => return Err(to_login(parts)),
        };
        let user = service::session::me(st, &caller)
            .await
            .map_err(|e| Page::from(e).into_response())?;
        let session = caller.session().map(|s| s.to_string()).unwrap_or_default();
        let csrf = csrf_token(&st.key, &session);
        parts.extensions.insert(ExpectedCsrf(csrf.clone()));
        Ok(Dash { caller, user, csrf })
    }
}

/// To the sign-in page, coming back here afterwards (GET pages only).
fn to_login(parts: &Parts) -> Response {
    let back = match parts.method {
        Method::GET if parts.uri.path() != "/" => {
            parts.uri.path_and_query().map(|p| p.as_str().to_string())
        }
        _ => None,
    };
    let to = match back {
        Some(b) => format!(
            "/login?next={}",
            form_urlencoded::byte_serialize(b.as_bytes()).collect::<String>()
        ),
        None => "/login".to_string(),
    };
    Redirect::to(&to).into_response()
}

/// The REST API's Origin check, shared.
pub(crate) fn same_origin(parts: &Parts) -> bool {
    toolbelt_control::middleware::same_origin_headers(&parts.headers)
}

/// Where to go after signing in: a path on this site only (never `//elsewhere`).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_per_session_and_key_and_are_stable() {
        let k = ControlKey::from_seed([7; 32]);
        let a = csrf_token(&k, "tok_a");
        assert_eq!(a, csrf_token(&k, "tok_a"));
        assert_ne!(a, csrf_token(&k, "tok_b"));
        assert_ne!(a, csrf_token(&ControlKey::from_seed([8; 32]), "tok_a"));
        assert!(csrf_matches(&a, &a));
        assert!(!csrf_matches(&a, ""));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/servers?x=1")), "/servers?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
