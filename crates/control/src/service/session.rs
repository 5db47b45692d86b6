//! Signing in and out, and the caller's own account. How a session travels (a cookie,
//! a token in a body) is the boundary's business; the rules are here.
//!
//! ## Login under attack
//! A login is the one thing anyone can try without credentials, so each attempt is made
//! cheap to refuse and bounded in what it costs us:
//!
//! 1. **Throttle first** ([`super::login_limits`]). Before anything is looked up or
//!    hashed, the attempt is counted against its client address (a few dozen free, for
//!    NAT) and, for a password login, against the account named (a handful free, known
//!    email or not — so the throttle reveals nothing either). Past the free attempts each
//!    one waits for a doubling backoff (up to 15 minutes by default); while a key waits,
//!    attempts are refused with [`ServiceError::TooManyAttempts`] (429 + `Retry-After`)
//!    and nothing is hashed. The counts live in the store (`login_throttle`, one
//!    transaction per attempt with the rows locked), so every replica sees the same ones
//!    and concurrent attempts through different replicas cannot slip past together.
//!    Counting happens before the check: a success undoes it (address) or starts the
//!    account over. Rows quiet for longer than the policy remembers are swept.
//!    The client address is the socket's peer, or `X-Forwarded-For` read from the right
//!    when the peer is a trusted proxy ([`crate::client_ip`]). One-time login tokens are
//!    throttled by address the same way.
//! 2. **Bounded hashing** ([`crate::passwords`]): argon2 runs on a fixed number of
//!    permits; a request that gets none within a short wait is refused as
//!    [`ServiceError::Busy`] (503 + `Retry-After`) instead of piling up memory.
//! 3. **Equal work**: an unknown email, or an account without a password, is verified
//!    against a fixed dummy hash — exactly one argon2 run, like a wrong password.
//! 4. **Failures summed up** ([`crate::failure_ledger`]): failed and throttled attempts
//!    are tallied in memory per address and written as one `session.login.failure` event
//!    per address and window (`TOOLBELT_LOGIN_FAILURE_WINDOW_MS`), so a flood cannot
//!    grow the audit chain — or hold its lock — once per attempt. Successful logins are
//!    audited one by one, as before.

use super::caller::{Caller, Credential};
use super::error::{Result, ServiceError, found};
use super::login_limits;
use crate::state::AppState;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::token::{self, TokenDigest, TokenKind};
use toolbelt_model::user::{User, validate_email, validate_password};
use toolbelt_model::{Scope, Timestamp, now};
use toolbelt_store::StoreError;
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

/// A successful login: a new session, or an API token when one was asked for.
#[derive(Debug)]
pub struct LoggedIn {
    pub user: User,
    /// `session` or `api`.
    pub kind: TokenKind,
    /// The new token's secret (only its digest is stored).
    pub secret: String,
    /// When a session ends; API tokens last until revoked.
    pub expires_at: Option<Timestamp>,
}

/// Who the credentials of a login request name, if they check out.
async fn authenticate(
    st: &AppState,
    req: &LoginRequest,
    email: Option<&str>,
) -> Result<Option<User>> {
    if let Some(lt) = &req.login_token {
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
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(user);
    }
    let (Some(email), Some(password)) = (email, &req.password) else {
        return Err(ServiceError::invalid(
            "email",
            "give email and password, or login_token",
        ));
    };
    let mut c = st.store.conn().await?;
    let (user, hash) = match users::get_by_email(&mut c, email).await {
        Ok(a) => (Some(a.user), a.password_hash),
        Err(StoreError::NotFound) => (None, None),
        Err(e) => return Err(e.into()),
    };
    drop(c);
    let ok = st.passwords.verify(password.clone(), hash).await?;
    Ok(user.filter(|_| ok))
}

/// Logs in with email and password or a one-time login token, from the client address
/// `from` (`None`: not over a socket). Throttled, bounded and summed up as the module doc
/// says; a failure never says which part was wrong.
pub async fn login(st: &AppState, from: Option<IpAddr>, req: LoginRequest) -> Result<LoggedIn> {
    let email = match (&req.login_token, &req.email) {
        (None, Some(e)) => Some(validate_email("email", e)),
        _ => None,
    };
    // Even a malformed attempt counts against its address.
    let valid = email.as_ref().and_then(|e| e.as_ref().ok());
    let admitted = login_limits::admit(st, from, valid.map(String::as_str)).await?;
    let email = email.transpose()?;
    let Some(user) = authenticate(st, &req, email.as_deref()).await? else {
        st.failures.failed_login(from, email.as_deref());
        return Err(ServiceError::Unauthenticated(
            "wrong email, password or login token".into(),
        ));
    };
    admitted.succeeded(st).await?;
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
    let caller = Caller {
        scope: Scope {
            user_id: user.id.clone(),
            role: user.role,
        },
        credential: Credential::ApiToken(info.id.clone()),
    };
    tx.commit(caller.event(
        AuditAction::SessionLogin,
        TargetKind::User,
        &user.id,
        None,
        json!({ "token_kind": kind.as_str(), "token_id": info.id }),
    ))
    .await?;
    Ok(LoggedIn {
        user,
        kind,
        secret: issued.secret.clone(),
        expires_at,
    })
}

/// Ends the caller's dashboard session (an API token stays valid: revoke it instead).
pub async fn logout(st: &AppState, caller: &Caller) -> Result<()> {
    let mut tx = st.store.begin_audited().await?;
    if let Some(session) = caller.session() {
        tokens::revoke(&mut tx, &Subject::User(caller.id().clone()), session).await?;
    }
    tx.commit(caller.event(
        AuditAction::SessionLogout,
        TargetKind::Token,
        caller.token_id(),
        None,
        json!({}),
    ))
    .await?;
    Ok(())
}

/// The calling user.
pub async fn me(st: &AppState, caller: &Caller) -> Result<User> {
    let mut c = st.store.conn().await?;
    found("user", users::get(&mut c, caller.id()).await)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Required when the account already has a password.
    pub current_password: Option<String>,
    pub new_password: String,
}

/// Sets the caller's password; the current one must be given when there is one.
pub async fn set_password(st: &AppState, caller: &Caller, req: PasswordChange) -> Result<()> {
    validate_password("new_password", &req.new_password)?;
    let mut c = st.store.conn().await?;
    let user = users::get(&mut c, caller.id()).await?;
    let current = users::get_by_email(&mut c, &user.email)
        .await?
        .password_hash;
    drop(c);
    if current.is_some() {
        let given = req.current_password.clone().unwrap_or_default();
        if !st.passwords.verify(given, current).await? {
            return Err(ServiceError::forbidden("current_password is wrong"));
        }
    }
    let hash = st.passwords.hash(req.new_password.clone()).await?;
    let mut tx = st.store.begin_audited().await?;
    users::set_password(&mut tx, caller.id(), &hash).await?;
    tx.commit(caller.event(
        AuditAction::UserPassword,
        TargetKind::User,
        caller.id(),
        None,
        json!({}),
    ))
    .await?;
    Ok(())
}
