//! `/api/v1/login`, `/logout`, `/me…`: signing in and the caller's own account. The
//! handlers decide only how a session travels (the cookie); rules: [`service::session`],
//! [`service::tokens`].

use super::common::{CommonErrors, LoginErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::client_ip::ClientIp;
use crate::extract::Body;
use crate::problem::ApiResult;
use crate::service;
use crate::service::session::{LoginRequest, PasswordChange};
use crate::service::tokens::{IssuedToken, NewToken};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use toolbelt_model::agent::TokenInfo;
use toolbelt_model::token::TokenKind;
use toolbelt_model::user::User;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// The API token, when one was asked for. Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Logs in with email and password or a one-time login token.
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse, description = "Logged in; sets the session cookie unless an API token was asked for"), CommonErrors, LoginErrors))]
pub async fn login(
    State(st): State<AppState>,
    ClientIp(from): ClientIp,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Response> {
    let l = service::session::login(&st, from, req).await?;
    let session = l.kind == TokenKind::Session;
    let body = LoginResponse {
        user: l.user,
        token: (!session).then(|| l.secret.clone()),
        expires_at: l.expires_at,
    };
    let mut res = Json(body).into_response();
    if session {
        let cookie = crate::auth::session_cookie(&st.config, &l.secret);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// Ends the current dashboard session (revokes the presented session token).
#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "Logged out"), CommonErrors))]
pub async fn logout(State(st): State<AppState>, SignedIn(caller): SignedIn) -> ApiResult<Response> {
    service::session::logout(&st, &caller).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(crate::auth::CLEAR_SESSION_COOKIE),
    );
    Ok(res)
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = User), CommonErrors))]
pub async fn me(State(st): State<AppState>, SignedIn(caller): SignedIn) -> ApiResult<Json<User>> {
    Ok(Json(service::session::me(&st, &caller).await?))
}

/// Sets the caller's password.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "session", request_body = PasswordChange,
    responses((status = 204, description = "Password changed"), CommonErrors, WriteErrors))]
pub async fn set_password(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    service::session::set_password(&st, &caller, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's API tokens (metadata only).
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "session",
    responses((status = 200, body = Vec<TokenInfo>), CommonErrors))]
pub async fn list_tokens(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(service::tokens::list(&st, &caller).await?))
}

/// Issues an API token for the caller.
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "session", request_body = NewToken,
    responses((status = 201, body = IssuedToken), CommonErrors, WriteErrors))]
pub async fn issue_token(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let issued = service::tokens::issue(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{token_id}", tag = "session",
    params(("token_id" = String, Path)),
    responses((status = 200, body = TokenInfo), CommonErrors))]
pub async fn revoke_token(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(token_id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    Ok(Json(
        service::tokens::revoke(&st, &caller, &token_id).await?,
    ))
}
