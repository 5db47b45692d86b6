//! Registration, authorization, token and revocation endpoints.

use crate::error::{OAuthReply, no_store};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use toolbelt_control::AppState;
use toolbelt_control::client_ip::ClientIp;
use toolbelt_control::service::mcp_auth::{self, AuthorizeRequest, AuthzError, Registration};

fn issuer(st: &AppState) -> Result<mcp_auth::Issuer, OAuthReply> {
    st.mcp_issuer()
        .cloned()
        .map_err(|e| OAuthReply(AuthzError::from(e)))
}

/// A form body (`application/x-www-form-urlencoded`) as `T` (whose fields are strings).
fn form<T: DeserializeOwned>(body: &[u8]) -> Result<T, OAuthReply> {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        if map.contains_key(k.as_ref()) {
            // RFC 6749 §3.1: parameters must not be included more than once.
            return Err(OAuthReply(AuthzError::request(format!(
                "parameter {k} is repeated"
            ))));
        }
        map.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| OAuthReply(AuthzError::request(e.to_string())))
}

/// RFC 7591 §3: 201 with the client's information, or `invalid_redirect_uri` /
/// `invalid_client_metadata`; 429 when the caller's address registered too many.
pub async fn register(State(st): State<AppState>, from: ClientIp, body: Bytes) -> Response {
    let r: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return OAuthReply(AuthzError::new(
                mcp_auth::OAuthCode::InvalidClientMetadata,
                format!("the body must be a JSON client metadata object: {e}"),
            ))
            .into_response();
        }
    };
    match mcp_auth::register(&st, from.0, r).await {
        Ok(reg) => {
            let mut res = (StatusCode::CREATED, Json(reg)).into_response();
            no_store(&mut res);
            res
        }
        Err(e) => OAuthReply(e).into_response(),
    }
}

/// The browser arrives with the client's request: checked here, then on to the consent
/// page with the same parameters (where signing in happens, if needed). An error about the
/// client itself is shown, never sent to an unverified redirect URI.
pub async fn authorize(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
    q: Result<Query<AuthorizeRequest>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let issuer = match issuer(&st) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let Ok(Query(r)) = q else {
        return shown(AuthzError::request(
            "the authorization request's query does not parse",
        ));
    };
    match mcp_auth::check(&st, &issuer, &r).await {
        Ok(_) => Redirect::to(&format!(
            "{}?{}",
            crate::CONSENT_PATH,
            raw.unwrap_or_default()
        ))
        .into_response(),
        Err((e, Some(checked))) if e.redirectable() => {
            Redirect::to(&checked.refuse(&e)).into_response()
        }
        Err((e, _)) => shown(e),
    }
}

/// An authorization error shown to the user in the browser (400, a small page).
fn shown(e: AuthzError) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut res = (
        crate::error::status(e.code),
        Html(format!(
            "<!doctype html><title>Authorization refused</title><h1>Authorization refused</h1>\
             <p id=\"oauth-error\" data-error=\"{}\">{}</p>",
            e.code.as_str(),
            esc(&e.description)
        )),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn token(State(st): State<AppState>, body: Bytes) -> Response {
    let issuer = match issuer(&st) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let r = match form(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match mcp_auth::token(&st, &issuer, r).await {
        Ok(t) => {
            let mut res = Json(t).into_response();
            no_store(&mut res);
            res
        }
        Err(e) => OAuthReply(e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct Revocation {
    #[serde(default)]
    token: String,
    client_id: Option<String>,
    #[allow(dead_code)] // every token revokes its family: the hint changes nothing
    token_type_hint: Option<String>,
}

/// RFC 7009 §2.2: 200 for any token, known or not.
pub async fn revoke(State(st): State<AppState>, body: Bytes) -> Response {
    let r: Revocation = match form(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match mcp_auth::revoke(&st, r.client_id.as_deref(), &r.token).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => OAuthReply(e).into_response(),
    }
}
