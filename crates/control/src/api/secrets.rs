//! `/api/v1/secrets`: the vault's values, written once, metadata read. Rules:
//! [`service::secrets`].

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::secrets::{CreateSecret, SecretInfo, UpdateSecret};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use toolbelt_model::Page;

/// Secrets the caller can see, metadata only (members: their own; admins: all).
#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets", params(ListQuery),
    responses((status = 200, body = Page<SecretInfo>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<SecretInfo>>> {
    Ok(Json(
        service::secrets::list(&st, &caller, &Paging::from(q)).await?,
    ))
}

/// Stores a new secret, sealed under its own data key. The value is never returned.
#[utoipa::path(post, path = "/api/v1/secrets", tag = "secrets", request_body = CreateSecret,
    responses((status = 201, body = SecretInfo), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<CreateSecret>,
) -> ApiResult<(StatusCode, Json<SecretInfo>)> {
    let info = service::secrets::create(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// One secret's metadata, by id or name.
#[utoipa::path(get, path = "/api/v1/secrets/{secret}", tag = "secrets",
    params(("secret" = String, Path, description = "Secret id or name")),
    responses((status = 200, body = SecretInfo), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(service::secrets::get(&st, &caller, &r).await?))
}

/// Replaces a secret's value: a new version, sealed under a new data key.
#[utoipa::path(put, path = "/api/v1/secrets/{secret}", tag = "secrets", request_body = UpdateSecret,
    params(("secret" = String, Path, description = "Secret id or name")),
    responses((status = 200, body = SecretInfo), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<UpdateSecret>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(service::secrets::update(&st, &caller, &r, req).await?))
}

/// Deletes a secret (its owner, or an admin).
#[utoipa::path(delete, path = "/api/v1/secrets/{secret}", tag = "secrets",
    params(("secret" = String, Path, description = "Secret id or name")),
    responses((status = 200, body = SecretInfo), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(service::secrets::delete(&st, &caller, &r).await?))
}
