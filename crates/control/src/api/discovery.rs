//! Tool search settings of an agent: `PATCH /api/v1/agents/{agent}` (discovery mode,
//! always-visible tools), its toolsets, and `find-tools`. Rules: [`service::discovery`].

use super::common::{CommonErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service;
use crate::service::discovery::{AgentDiscovery, CreateToolset, Toolset, UpdateAgent};
use crate::state::AppState;
use crate::tool_search::FoundTool;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

/// Sets the agent's discovery mode (`all`, `search`) and (or) its always-visible tools.
#[utoipa::path(patch, path = "/api/v1/agents/{agent}", tag = "agents", request_body = UpdateAgent,
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = AgentDiscovery), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<UpdateAgent>,
) -> ApiResult<Json<AgentDiscovery>> {
    Ok(Json(
        service::discovery::update(&st, &caller, &r, req).await?,
    ))
}

/// The agent's toolsets, each its own MCP endpoint (`/mcp/toolsets/NAME`, same token).
#[utoipa::path(get, path = "/api/v1/agents/{agent}/toolsets", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 200, body = Vec<Toolset>), CommonErrors))]
pub async fn list_toolsets(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Vec<Toolset>>> {
    Ok(Json(
        service::discovery::list_toolsets(&st, &caller, &r).await?,
    ))
}

/// Creates a toolset: a named subset of the agent's granted tools.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/toolsets", tag = "agents", request_body = CreateToolset,
    params(("agent" = String, Path, description = "Agent id or name")),
    responses((status = 201, body = Toolset), CommonErrors, WriteErrors))]
pub async fn create_toolset(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<CreateToolset>,
) -> ApiResult<(StatusCode, Json<Toolset>)> {
    let t = service::discovery::create_toolset(&st, &caller, &r, req).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Deletes a toolset (its endpoint answers 404 from then on).
#[utoipa::path(delete, path = "/api/v1/agents/{agent}/toolsets/{toolset}", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name"), ("toolset" = String, Path)),
    responses((status = 200, body = Toolset), CommonErrors, WriteErrors))]
pub async fn delete_toolset(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path((r, toolset)): Path<(String, String)>,
) -> ApiResult<Json<Toolset>> {
    Ok(Json(
        service::discovery::delete_toolset(&st, &caller, &r, &toolset).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    /// What the tool should do, in plain words.
    pub q: String,
    /// At most this many (1-100, default 10).
    pub limit: Option<u32>,
}

/// The agent's tools best matching a query, as `find_tools` ranks them for it.
#[utoipa::path(get, path = "/api/v1/agents/{agent}/find-tools", tag = "agents",
    params(("agent" = String, Path, description = "Agent id or name"), FindQuery),
    responses((status = 200, body = Vec<FoundTool>), CommonErrors))]
pub async fn find_tools(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<FindQuery>,
) -> ApiResult<Json<Vec<FoundTool>>> {
    Ok(Json(
        service::discovery::find_tools(&st, &caller, &r, &q.q, q.limit).await?,
    ))
}
