//! API tokens: a user's own (for the CLI and scripts), and the rules every issued token
//! follows (labels, lifetimes). Agent tokens follow the same rules (see `agents`).

use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::agent::TokenInfo;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::{TokenId, now};
use toolbelt_store::tokens::{self, Subject};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    pub label: String,
    /// Lifetime in days; omit for a token that lasts until revoked.
    pub expires_in_days: Option<u32>,
    /// Agent tokens only: the discovery mode this token uses instead of its agent's.
    pub discovery: Option<toolbelt_model::agent::Discovery>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The secret. Shown once; only its digest is stored.
    pub token: String,
    pub info: TokenInfo,
}

/// When a token asked to last `days` expires (none: until revoked).
pub fn expiry(days: Option<u32>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    match days {
        None => Ok(None),
        Some(d) if (1..=3650).contains(&d) => {
            Ok(Some(now() + chrono::TimeDelta::days(i64::from(d))))
        }
        Some(_) => Err(ServiceError::invalid("expires_in_days", "must be 1-3650")),
    }
}

pub fn check_label(label: &str) -> Result<()> {
    if label.len() > 100 || label.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "label",
            "must be at most 100 characters, no control characters",
        ));
    }
    Ok(())
}

/// The caller's API tokens (metadata only).
pub async fn list(st: &AppState, caller: &Caller) -> Result<Vec<TokenInfo>> {
    let mut c = st.store.conn().await?;
    Ok(tokens::list(&mut c, &Subject::User(caller.id().clone()), TokenKind::Api).await?)
}

/// Issues an API token for the caller.
pub async fn issue(st: &AppState, caller: &Caller, req: NewToken) -> Result<IssuedToken> {
    check_label(&req.label)?;
    if req.discovery.is_some() {
        return Err(ServiceError::invalid(
            "discovery",
            "only agent tokens have a discovery mode",
        ));
    }
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
    tx.commit(caller.event(
        AuditAction::TokenIssue,
        TargetKind::Token,
        &info.id,
        None,
        json!({ "label": req.label }),
    ))
    .await?;
    Ok(IssuedToken {
        token: issued.secret.clone(),
        info,
    })
}

/// Revokes one of the caller's API tokens (sessions are ended by logging out).
pub async fn revoke(st: &AppState, caller: &Caller, r: &str) -> Result<TokenInfo> {
    let id = TokenId::parse(r).ok_or_else(|| ServiceError::not_found(format!("token {r}")))?;
    let mut tx = st.store.begin_audited().await?;
    let info = found(
        format!("token {r}"),
        tokens::revoke(&mut tx, &Subject::User(caller.id().clone()), &id).await,
    )?;
    if info.kind != TokenKind::Api {
        return Err(ServiceError::not_found(format!("token {r}")));
    }
    tx.commit(caller.event(
        AuditAction::TokenRevoke,
        TargetKind::Token,
        &id,
        None,
        json!({}),
    ))
    .await?;
    Ok(info)
}
