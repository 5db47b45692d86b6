//! Agents and their tokens. An agent belongs to the user who created it.

use super::common::{self, CommonErrors, ListQuery, WriteErrors, nf};
use super::session::{IssuedToken, NewToken, check_label, expiry};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::agent::{Agent, TokenInfo};
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::name::{LONG_NAME_MAX, Name};
use toolbelt_model::page::clamp_limit;
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

/// The caller's agents (admins: everyone's).
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(ListQuery),
    responses((status = 200, body = Page<Agent>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Agent>>> {
    let mut c = st.store.conn().await?;
    Ok(Json(
        agents::list(
            &mut c,
            &caller.scope,
            clamp_limit(q.limit),
            q.cursor.as_deref(),
        )
        .await?,
    ))
}

/// Creates an agent with its first token.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = AgentCreated), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentCreated>)> {
    let name = Name::parse("name", &req.name, LONG_NAME_MAX)?;
    if req.description.len() > 1000 {
        return Err(Problem::invalid(
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
    tx.commit(by_user(
        &caller,
        AuditAction::AgentCreate,
        TargetKind::Agent,
        &agent.id,
        Some(&agent.owner_id),
        json!({ "name": name, "token_id": info.id }),
    ))
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AgentCreated {
            agent,
            token: IssuedToken {
                token: issued.secret.clone(),
                info,
            },
        }),
    ))
}

/// One agent, by id or (the caller's own) name.
#[utoipa::path(get, path = "/api/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Agent), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Agent>> {
    let mut c = st.store.conn().await?;
    Ok(Json(common::agent(&mut c, &caller.scope, &r).await?))
}

/// Deletes an agent with its tokens and grants.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Agent), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Agent>> {
    let mut tx = st.store.begin_audited().await?;
    let a = common::agent(&mut tx, &caller.scope, &r).await?;
    let a = agents::delete(&mut tx, &caller.scope, &a.id).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::AgentDelete,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "name": a.name }),
    ))
    .await?;
    Ok(Json(a))
}

/// The agent's tokens (metadata only).
#[utoipa::path(get, path = "/api/v1/agents/{agent}/tokens", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Vec<TokenInfo>), CommonErrors))]
pub async fn list_tokens(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let mut c = st.store.conn().await?;
    let a = common::agent(&mut c, &caller.scope, &r).await?;
    Ok(Json(
        tokens::list(&mut c, &Subject::Agent(a.id), TokenKind::Agent).await?,
    ))
}

/// Issues another token for the agent.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/tokens", tag = "agents", request_body = NewToken,
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 201, body = IssuedToken), CommonErrors, WriteErrors))]
pub async fn issue_token(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Body(req): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    check_label(&req.label)?;
    let expires_at = expiry(req.expires_in_days)?;
    let issued = token::issue(TokenKind::Agent);
    let mut tx = st.store.begin_audited().await?;
    let a = common::agent(&mut tx, &caller.scope, &r).await?;
    let info = tokens::insert(
        &mut tx,
        TokenKind::Agent,
        &issued.digest,
        &Subject::Agent(a.id.clone()),
        &req.label,
        expires_at,
    )
    .await?;
    tx.commit(by_user(
        &caller,
        AuditAction::AgentTokenIssue,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "token_id": info.id, "label": req.label }),
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

/// Revokes every live token of the agent.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}/tokens", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Revoked), CommonErrors))]
pub async fn revoke_all(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Revoked>> {
    let mut tx = st.store.begin_audited().await?;
    let a = common::agent(&mut tx, &caller.scope, &r).await?;
    let n = tokens::revoke_all(&mut tx, &Subject::Agent(a.id.clone()), TokenKind::Agent).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::AgentTokenRevoke,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "revoked": n }),
    ))
    .await?;
    Ok(Json(Revoked { revoked: n }))
}

/// Revokes one token of the agent.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}/tokens/{token_id}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name"), ("token_id" = String, Path)),
    responses((status = 200, body = TokenInfo), CommonErrors))]
pub async fn revoke_token(
    State(st): State<AppState>,
    caller: UserCaller,
    Path((r, token_id)): Path<(String, String)>,
) -> ApiResult<Json<TokenInfo>> {
    let id =
        TokenId::parse(&token_id).ok_or_else(|| Problem::not_found(format!("token {token_id}")))?;
    let mut tx = st.store.begin_audited().await?;
    let a = common::agent(&mut tx, &caller.scope, &r).await?;
    let info = nf(
        &format!("token {token_id}"),
        tokens::revoke(&mut tx, &Subject::Agent(a.id.clone()), &id).await,
    )?;
    tx.commit(by_user(
        &caller,
        AuditAction::AgentTokenRevoke,
        TargetKind::Agent,
        &a.id,
        Some(&a.owner_id),
        json!({ "token_id": id }),
    ))
    .await?;
    Ok(Json(info))
}
