//! `/api/v1/approvals`: tool calls held by an `ask` rule. Rules: [`service::approvals`].

use super::common::CommonErrors;
use crate::auth::SignedIn;
use crate::extract::Query;
use crate::problem::ApiResult;
use crate::service;
use crate::service::approvals::Decision;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use toolbelt_model::gateway::Approval;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalsQuery {
    /// Include decided and expired ones too.
    #[serde(default)]
    pub all: bool,
}

/// Approvals of the caller's agents (admins: all).
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ApprovalsQuery),
    responses((status = 200, body = Vec<Approval>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ApprovalsQuery>,
) -> ApiResult<Json<Vec<Approval>>> {
    Ok(Json(service::approvals::list(&st, &caller, q.all).await?))
}

/// Lets the held call proceed.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path)), responses((status = 200, body = Approval), CommonErrors))]
pub async fn approve(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    Ok(Json(
        service::approvals::decide(&st, &caller, &id, Decision::Approve).await?,
    ))
}

/// Refuses the held call; the agent gets an error at once.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "approvals",
    params(("id" = String, Path)), responses((status = 200, body = Approval), CommonErrors))]
pub async fn deny(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    Ok(Json(
        service::approvals::decide(&st, &caller, &id, Decision::Deny).await?,
    ))
}
