//! `/api/v1/toolboxes`: hosts that run servers, and their join tokens. Rules:
//! [`service::toolboxes`].

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::toolboxes::{CreateToolbox, JoinToken, UpdateToolbox};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use toolbelt_model::Page;
use toolbelt_model::toolbox::Toolbox;

/// Toolboxes the caller can see: their own and the shared ones (admins: all).
#[utoipa::path(get, path = "/api/v1/toolboxes", tag = "toolboxes", params(ListQuery),
    responses((status = 200, body = Page<Toolbox>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Toolbox>>> {
    Ok(Json(
        service::toolboxes::list(&st, &caller, &Paging::from(q)).await?,
    ))
}

/// Creates a toolbox. Private to the caller unless `shared` (admins only).
#[utoipa::path(post, path = "/api/v1/toolboxes", tag = "toolboxes", request_body = CreateToolbox,
    responses((status = 201, body = Toolbox), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<CreateToolbox>,
) -> ApiResult<(StatusCode, Json<Toolbox>)> {
    let t = service::toolboxes::create(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// One toolbox, by id or name.
#[utoipa::path(get, path = "/api/v1/toolboxes/{toolbox}", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    responses((status = 200, body = Toolbox), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Toolbox>> {
    Ok(Json(service::toolboxes::get(&st, &caller, &r).await?))
}

/// Changes a toolbox's settings (its registry allow-list).
#[utoipa::path(patch, path = "/api/v1/toolboxes/{toolbox}", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    request_body = UpdateToolbox,
    responses((status = 200, body = Toolbox), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<UpdateToolbox>,
) -> ApiResult<Json<Toolbox>> {
    Ok(Json(
        service::toolboxes::update(&st, &caller, &r, req).await?,
    ))
}

/// Deletes an empty toolbox.
#[utoipa::path(delete, path = "/api/v1/toolboxes/{toolbox}", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    responses((status = 200, body = Toolbox), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<Toolbox>> {
    Ok(Json(service::toolboxes::delete(&st, &caller, &r).await?))
}

/// Issues a one-time join token for the toolbox's DTMA.
#[utoipa::path(post, path = "/api/v1/toolboxes/{toolbox}/join-token", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    responses((status = 201, body = JoinToken), CommonErrors, WriteErrors))]
pub async fn join_token(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<(StatusCode, Json<JoinToken>)> {
    let t = service::toolboxes::join_token(&st, &caller, &r).await?;
    Ok((StatusCode::CREATED, Json(t)))
}
