//! `/api/v1/grants`: what each agent may use. Rules: [`service::grants`].

use super::common::{CommonErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::grants::{CreateGrant, UpdateGrant};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use toolbelt_model::Page;
use toolbelt_model::grant::Grant;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only this agent's grants (id or your own name).
    pub agent: Option<String>,
}

/// Grants of the caller's agents (admins: all).
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = Page<Grant>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<GrantQuery>,
) -> ApiResult<Json<Page<Grant>>> {
    let page = Paging {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(
        service::grants::list(&st, &caller, q.agent.as_deref(), &page).await?,
    ))
}

/// Grants an agent a toolbox, a server, or a rule for one tool.
#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", request_body = CreateGrant,
    responses((status = 201, body = Grant), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<CreateGrant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let g = service::grants::create(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

/// One grant.
#[utoipa::path(get, path = "/api/v1/grants/{grant}", tag = "grants",
    params(("grant" = String, Path)),
    responses((status = 200, body = Grant), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(service::grants::get(&st, &caller, &r).await?))
}

/// Switches a toolbelt item on or off, or changes a tool rule.
#[utoipa::path(patch, path = "/api/v1/grants/{grant}", tag = "grants", request_body = UpdateGrant,
    params(("grant" = String, Path)),
    responses((status = 200, body = Grant), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<UpdateGrant>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(service::grants::update(&st, &caller, &r, req).await?))
}

/// Removes a grant; it takes effect on the agent's next call.
#[utoipa::path(delete, path = "/api/v1/grants/{grant}", tag = "grants",
    params(("grant" = String, Path)),
    responses((status = 200, body = Grant), CommonErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(service::grants::delete(&st, &caller, &r).await?))
}
