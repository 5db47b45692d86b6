//! Agents and their tokens. An agent belongs to the user who created it; its owner (or an
//! admin) manages it and its tokens.

use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use super::tokens::{IssuedToken, NewToken, check_label, expiry};
use super::{Paging, refs};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::agent::{Agent, TokenInfo};
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::name::{LONG_NAME_MAX, Name};
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::{Page, TokenId};
use toolbelt_store::agents;
use toolbelt_store::tokens::{self, Subject};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Label of the first token (default `default`).
    pub token_label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentCreated {
    pub agent: Agent,
    /// The agent's first token for the gateway. Shown once.
    pub token: IssuedToken,
}

/// Named apart in the OpenAPI document: `Revoked` is a connection's revocation.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TokensRevoked)]
pub struct Revoked {
    pub revoked: u64,
}

/// The caller's agents (admins: everyone's).
pub async fn list(st: &AppState, caller: &Caller, page: &Paging) -> Result<Page<Agent>> {
    let mut c = st.store.conn().await?;
    Ok(agents::list(&mut c, &caller.scope, page.limit(), page.cursor()).await?)
}

/// Creates an agent owned by the caller, with its first token.
pub async fn create(st: &AppState, caller: &Caller, req: CreateAgent) -> Result<AgentCreated> {
    let name = Name::parse("name", &req.name, LONG_NAME_MAX)?;
    if req.description.len() > 1000 {
        return Err(ServiceError::invalid(
            "description",
            "must be at most 1000 characters",
        ));
    }
    let label = req.token_label.clone().unwrap_or_else(|| "default".into());
    check_label(&label)?;
    let issued = token::issue(TokenKind::Agent);
    let mut tx = st.store.begin_audited().await?;
    let agent = agents::create(&mut tx, caller.id(), &name, &req.description).await?;
    let info = tokens::insert(
        &mut tx,
        TokenKind::Agent,
        &issued.digest,
        &Subject::Agent(agent.id.clone()),
        &label,
        None,
    )
    .await?;
    tx.commit(caller.event(
        AuditAction::AgentCreate,
        TargetKind::Agent,
        &agent.id,
        Some(&agent.owner_id),
        json!({ "name": name, "token_id": info.id }),
    ))
    .await?;
    Ok(AgentCreated {
        agent,
        token: IssuedToken {
            token: issued.secret.clone(),
            info,
        },
    })
}

/// One agent, by id or (the caller's own) name.
pub async fn get(st: &AppState, caller: &Caller, r: &str) -> Result<Agent> {
    let mut c = st.store.conn().await?;
    refs::agent(&mut c, &caller.scope, r).await
}

/// Deletes an agent with its tokens and grants.
pub async fn delete(st: &AppState, caller: &Caller, r: &str) -> Result<Agent> {
    let mut tx = st.store.begin_audited().await?;
    let a = refs::agent(&mut tx, &caller.scope, r).await?;
    let a = agents::delete(&mut tx, &caller.scope, &a.id).await?;
    tx.commit(caller.event(
        AuditAction::AgentDelete,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "name": a.name }),
    ))
    .await?;
    Ok(a)
}

/// The agent's tokens (metadata only).
pub async fn list_tokens(st: &AppState, caller: &Caller, r: &str) -> Result<Vec<TokenInfo>> {
    let mut c = st.store.conn().await?;
    let a = refs::agent(&mut c, &caller.scope, r).await?;
    Ok(tokens::list(&mut c, &Subject::Agent(a.id), TokenKind::Agent).await?)
}

/// Issues another token for the agent.
pub async fn issue_token(
    st: &AppState,
    caller: &Caller,
    r: &str,
    req: NewToken,
) -> Result<IssuedToken> {
    check_label(&req.label)?;
    let expires_at = expiry(req.expires_in_days)?;
    let issued = token::issue(TokenKind::Agent);
    let mut tx = st.store.begin_audited().await?;
    let a = refs::agent(&mut tx, &caller.scope, r).await?;
    let mut info = tokens::insert(
        &mut tx,
        TokenKind::Agent,
        &issued.digest,
        &Subject::Agent(a.id.clone()),
        &req.label,
        expires_at,
    )
    .await?;
    if req.discovery.is_some() {
        toolbelt_store::discovery::set_token_mode(&mut tx, &info.id, req.discovery).await?;
        info.discovery = req.discovery;
    }
    tx.commit(caller.event(
        AuditAction::AgentTokenIssue,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "token_id": info.id, "label": req.label, "discovery": req.discovery }),
    ))
    .await?;
    Ok(IssuedToken {
        token: issued.secret.clone(),
        info,
    })
}

/// Revokes every live token of the agent.
pub async fn revoke_all(st: &AppState, caller: &Caller, r: &str) -> Result<Revoked> {
    let mut tx = st.store.begin_audited().await?;
    let a = refs::agent(&mut tx, &caller.scope, r).await?;
    let n = tokens::revoke_all(&mut tx, &Subject::Agent(a.id.clone()), TokenKind::Agent).await?;
    tx.commit(caller.event(
        AuditAction::AgentTokenRevoke,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "revoked": n }),
    ))
    .await?;
    Ok(Revoked { revoked: n })
}

/// Revokes one token of the agent.
pub async fn revoke_token(
    st: &AppState,
    caller: &Caller,
    r: &str,
    token_ref: &str,
) -> Result<TokenInfo> {
    let id = TokenId::parse(token_ref)
        .ok_or_else(|| ServiceError::not_found(format!("token {token_ref}")))?;
    let mut tx = st.store.begin_audited().await?;
    let a = refs::agent(&mut tx, &caller.scope, r).await?;
    let info = found(
        format!("token {token_ref}"),
        tokens::revoke(&mut tx, &Subject::Agent(a.id.clone()), &id).await,
    )?;
    tx.commit(caller.event(
        AuditAction::AgentTokenRevoke,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "token_id": id }),
    ))
    .await?;
    Ok(info)
}
