//! `/api/v1/vault`: key-encryption keys and their rotation (admins). Rules:
//! [`service::vault`].

use super::common::{CommonErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::Body;
use crate::problem::ApiResult;
use crate::service;
use crate::service::vault::{RotateReport, RotateRequest, VaultKeys};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};

/// The key-encryption keys and how many secrets each wraps.
#[utoipa::path(get, path = "/api/v1/vault/keys", tag = "vault",
    responses((status = 200, body = VaultKeys), CommonErrors))]
pub async fn list_keys(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<VaultKeys>> {
    Ok(Json(service::vault::keys(&st, &caller).await?))
}

/// Rotates: (optionally) a new current key, then every data key re-wrapped under it, in
/// short batches while reads and writes carry on.
#[utoipa::path(post, path = "/api/v1/vault/rotate", tag = "vault", request_body = RotateRequest,
    responses((status = 200, body = RotateReport), CommonErrors, WriteErrors))]
pub async fn rotate(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<RotateRequest>,
) -> ApiResult<Json<RotateReport>> {
    Ok(Json(service::vault::rotate(&st, &caller, req).await?))
}

/// Deletes an old key from the key file; refused while any secret is wrapped by it.
#[utoipa::path(delete, path = "/api/v1/vault/keys/{kek}", tag = "vault",
    params(("kek" = String, Path, description = "Key id (kek_…)")),
    responses((status = 200, body = VaultKeys), CommonErrors, WriteErrors))]
pub async fn delete_key(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(kek): Path<String>,
) -> ApiResult<Json<VaultKeys>> {
    Ok(Json(service::vault::delete_key(&st, &caller, &kek).await?))
}
