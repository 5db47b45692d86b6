//! Login, logout, and the caller's own account: password and API tokens.

use super::common::{CommonErrors, WriteErrors, nf};
use crate::audit_log::by_user;
use crate::auth::{SESSION_COOKIE, UserCaller};
use crate::extract::Body;
use crate::passwords;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::agent::TokenInfo;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::token::{self, TokenDigest, TokenKind};
use toolbelt_model::user::{User, validate_email, validate_password};
use toolbelt_model::{TokenId, now};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::users;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: Option<String>,
    pub password: Option<String>,
    /// A one-time login token (printed by `toolbelt up` on first start).
    pub login_token: Option<String>,
    /// Issue an API token with this label instead of a session cookie (the CLI's login).
    pub api_token_label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// The API token, when one was asked for. Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn login_failed(email: &str) -> NewAuditEvent {
    let mut ev = NewAuditEvent::new(AuditAction::SessionLogin, TargetKind::User, None);
    ev.actor_kind = ActorKind::Anonymous;
    ev.outcome = Outcome::Denied;
    ev.detail = json!({ "email": email });
    ev
}

/// Logs in with email and password or a one-time login token.
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse, description = "Logged in; sets the session cookie unless an API token was asked for"), CommonErrors))]
pub async fn login(
    State(st): State<AppState>,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Response> {
    let user = if let Some(lt) = &req.login_token {
        let mut tx = st.store.begin().await?;
        let found = tokens::find(&mut tx, &TokenDigest::of(lt)).await?;
        let user = match found {
            Some(f) if f.kind == TokenKind::Login && f.expires_at.is_none_or(|e| e > now()) => {
                match (&f.subject, tokens::consume(&mut tx, &f.id).await?) {
                    (Subject::User(u), true) => Some(users::get(&mut tx, u).await?),
                    _ => None,
                }
            }
            _ => None,
        };
        tx.commit()
            .await
            .map_err(toolbelt_store::StoreError::from)?;
        user
    } else {
        let (Some(email), Some(password)) = (&req.email, &req.password) else {
            return Err(Problem::invalid(
                "email",
                "give email and password, or login_token",
            ));
        };
        let email = validate_email("email", email)?;
        let mut c = st.store.conn().await?;
        let (user, hash) = match users::get_by_email(&mut c, &email).await {
            Ok(a) => (Some(a.user), a.password_hash),
            Err(toolbelt_store::StoreError::NotFound) => (None, None),
            Err(e) => return Err(e.into()),
        };
        drop(c);
        let ok = passwords::verify(password.clone(), hash).await;
        user.filter(|_| ok)
    };
    let Some(user) = user else {
        let who = req.email.clone().unwrap_or_else(|| "(login token)".into());
        st.store
            .begin_audited()
            .await?
            .commit(login_failed(&who))
            .await?;
        return Err(Problem::unauthenticated(
            "wrong email, password or login token",
        ));
    };

    let kind = if req.api_token_label.is_some() {
        TokenKind::Api
    } else {
        TokenKind::Session
    };
    let expires_at = (kind == TokenKind::Session)
        .then(|| now() + chrono::TimeDelta::from_std(st.config.session_ttl).unwrap_or_default());
    let issued = token::issue(kind);
    let label = req
        .api_token_label
        .clone()
        .unwrap_or_else(|| "dashboard session".into());
    let mut tx = st.store.begin_audited().await?;
    let info = tokens::insert(
        &mut tx,
        kind,
        &issued.digest,
        &Subject::User(user.id.clone()),
        &label,
        expires_at,
    )
    .await?;
    let caller = UserCaller {
        scope: toolbelt_model::Scope {
            user_id: user.id.clone(),
            role: user.role,
        },
        token_id: info.id.clone(),
        via_cookie: false,
    };
    tx.commit(by_user(
        &caller,
        AuditAction::SessionLogin,
        TargetKind::User,
        &user.id,
        None,
        json!({ "token_kind": kind.as_str(), "token_id": info.id }),
    ))
    .await?;

    let body = LoginResponse {
        user,
        token: (kind == TokenKind::Api).then(|| issued.secret.clone()),
        expires_at,
    };
    let mut res = Json(body).into_response();
    if kind == TokenKind::Session {
        let secure = if st.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            issued.secret,
            st.config.session_ttl.as_secs()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// Ends the current dashboard session (revokes the presented session token).
#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "Logged out"), CommonErrors))]
pub async fn logout(State(st): State<AppState>, caller: UserCaller) -> ApiResult<Response> {
    let mut tx = st.store.begin_audited().await?;
    if caller.via_cookie {
        tokens::revoke(
            &mut tx,
            &Subject::User(caller.id().clone()),
            &caller.token_id,
        )
        .await?;
    }
    tx.commit(by_user(
        &caller,
        AuditAction::SessionLogout,
        TargetKind::Token,
        &caller.token_id,
        None,
        json!({}),
    ))
    .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("toolbelt_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(res)
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = User), CommonErrors))]
pub async fn me(State(st): State<AppState>, caller: UserCaller) -> ApiResult<Json<User>> {
    let mut c = st.store.conn().await?;
    Ok(Json(nf("user", users::get(&mut c, caller.id()).await)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Required when the account already has a password.
    pub current_password: Option<String>,
    pub new_password: String,
}

/// Sets the caller's password.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "session", request_body = PasswordChange,
    responses((status = 204, description = "Password changed"), CommonErrors, WriteErrors))]
pub async fn set_password(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<PasswordChange>,
) -> ApiResult<StatusCode> {
    validate_password("new_password", &req.new_password)?;
    let mut c = st.store.conn().await?;
    let user = users::get(&mut c, caller.id()).await?;
    let current = users::get_by_email(&mut c, &user.email)
        .await?
        .password_hash;
    drop(c);
    if current.is_some() {
        let given = req.current_password.clone().unwrap_or_default();
        if !passwords::verify(given, current).await {
            return Err(Problem::forbidden("current_password is wrong"));
        }
    }
    let hash = passwords::hash(req.new_password.clone()).await?;
    let mut tx = st.store.begin_audited().await?;
    users::set_password(&mut tx, caller.id(), &hash).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::UserPassword,
        TargetKind::User,
        caller.id(),
        None,
        json!({}),
    ))
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    pub label: String,
    /// Lifetime in days; omit for a token that lasts until revoked.
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The secret. Shown once; only its digest is stored.
    pub token: String,
    pub info: TokenInfo,
}

pub fn expiry(days: Option<u32>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Problem> {
    match days {
        None => Ok(None),
        Some(d) if (1..=3650).contains(&d) => {
            Ok(Some(now() + chrono::TimeDelta::days(i64::from(d))))
        }
        Some(_) => Err(Problem::invalid("expires_in_days", "must be 1-3650")),
    }
}

pub fn check_label(label: &str) -> Result<(), Problem> {
    if label.len() > 100 || label.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "label",
            "must be at most 100 characters, no control characters",
        ));
    }
    Ok(())
}

/// The caller's API tokens (metadata only).
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "session",
    responses((status = 200, body = Vec<TokenInfo>), CommonErrors))]
pub async fn list_tokens(
    State(st): State<AppState>,
    caller: UserCaller,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let mut c = st.store.conn().await?;
    Ok(Json(
        tokens::list(&mut c, &Subject::User(caller.id().clone()), TokenKind::Api).await?,
    ))
}

/// Issues an API token for the caller.
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "session", request_body = NewToken,
    responses((status = 201, body = IssuedToken), CommonErrors, WriteErrors))]
pub async fn issue_token(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    check_label(&req.label)?;
    let expires_at = expiry(req.expires_in_days)?;
    let issued = token::issue(TokenKind::Api);
    let mut tx = st.store.begin_audited().await?;
    let info = tokens::insert(
        &mut tx,
        TokenKind::Api,
        &issued.digest,
        &Subject::User(caller.id().clone()),
        &req.label,
        expires_at,
    )
    .await?;
    tx.commit(by_user(
        &caller,
        AuditAction::TokenIssue,
        TargetKind::Token,
        &info.id,
        None,
        json!({ "label": req.label }),
    ))
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: issued.secret.clone(),
            info,
        }),
    ))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{token_id}", tag = "session",
    params(("token_id" = String, Path)),
    responses((status = 200, body = TokenInfo), CommonErrors))]
pub async fn revoke_token(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(token_id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    let id =
        TokenId::parse(&token_id).ok_or_else(|| Problem::not_found(format!("token {token_id}")))?;
    let mut tx = st.store.begin_audited().await?;
    let info = nf(
        &format!("token {token_id}"),
        tokens::revoke(&mut tx, &Subject::User(caller.id().clone()), &id).await,
    )?;
    if info.kind != TokenKind::Api {
        return Err(Problem::not_found(format!("token {token_id}")));
    }
    tx.commit(by_user(
        &caller,
        AuditAction::TokenRevoke,
        TargetKind::Token,
        &id,
        None,
        json!({}),
    ))
    .await?;
    Ok(Json(info))
}
