//! `/api/v1/agents`: agent identities and their tokens. Rules: [`service::agents`].

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::agents::{AgentCreated, CreateAgent, Revoked};
use crate::service::tokens::{IssuedToken, NewToken};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use toolbelt_model::Page;
use toolbelt_model::agent::{Agent, TokenInfo};

/// The caller's agents (admins: everyone's).
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(ListQuery),
    responses((status = 200, body = Page<Agent>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Agent>>> {
    Ok(Json(
        service::agents::list(&st, &caller, &Paging::from(q)).await?,
    ))
}

/// Creates an agent with its first token.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = AgentCreated), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentCreated>)> {
    let created = service::agents::create(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One agent, by id or (the caller's own) name.
#[utoipa::path(get, path = "/api/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Agent), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(service::agents::get(&st, &caller, &r).await?))
}

/// Deletes an agent with its tokens and grants.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Agent), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(service::agents::delete(&st, &caller, &r).await?))
}

/// The agent's tokens (metadata only).
#[utoipa::path(get, path = "/api/v1/agents/{agent}/tokens", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Vec<TokenInfo>), CommonErrors))]
pub async fn list_tokens(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(service::agents::list_tokens(&st, &caller, &r).await?))
}

/// Issues another token for the agent.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/tokens", tag = "agents", request_body = NewToken,
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 201, body = IssuedToken), CommonErrors, WriteErrors))]
pub async fn issue_token(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let issued = service::agents::issue_token(&st, &caller, &r, req).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revokes every live token of the agent.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}/tokens", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Revoked), CommonErrors))]
pub async fn revoke_all(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Revoked>> {
    Ok(Json(service::agents::revoke_all(&st, &caller, &r).await?))
}

/// Revokes one token of the agent.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}/tokens/{token_id}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name"), ("token_id" = String, Path)),
    responses((status = 200, body = TokenInfo), CommonErrors))]
pub async fn revoke_token(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path((r, token_id)): Path<(String, String)>,
) -> ApiResult<Json<TokenInfo>> {
    Ok(Json(
        service::agents::revoke_token(&st, &caller, &r, &token_id).await?,
    ))
}
