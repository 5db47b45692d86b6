//! `/api/v1/tools/changes`: pinned tool definitions that changed, waiting for an admin.
//! Rules: [`service::tools`].

use super::common::CommonErrors;
use crate::auth::SignedIn;
use crate::extract::Query;
use crate::problem::ApiResult;
use crate::service;
use crate::service::tools::{ChangeView, Decision};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Include decided changes too.
    #[serde(default)]
    pub all: bool,
}

/// Tool definitions waiting for a decision (admins).
#[utoipa::path(get, path = "/api/v1/tools/changes", tag = "tools", params(ChangesQuery),
    responses((status = 200, body = Vec<ChangeView>), CommonErrors))]
pub async fn changes(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<Json<Vec<ChangeView>>> {
    Ok(Json(service::tools::changes(&st, &caller, q.all).await?))
}

/// Approves a changed definition: it becomes the pin and the tool reappears (admins).
#[utoipa::path(post, path = "/api/v1/tools/changes/{id}/approve", tag = "tools",
    params(("id" = String, Path)), responses((status = 200, body = ChangeView), CommonErrors))]
pub async fn approve(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<ChangeView>> {
    Ok(Json(
        service::tools::decide(&st, &caller, &id, Decision::Approve).await?,
    ))
}

/// Rejects a changed definition: the old pin stays, the tool stays hidden (admins).
#[utoipa::path(post, path = "/api/v1/tools/changes/{id}/reject", tag = "tools",
    params(("id" = String, Path)), responses((status = 200, body = ChangeView), CommonErrors))]
pub async fn reject(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<ChangeView>> {
    Ok(Json(
        service::tools::decide(&st, &caller, &id, Decision::Reject).await?,
    ))
}
