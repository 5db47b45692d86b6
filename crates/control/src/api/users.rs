//! `/api/v1/users`: admins create, list, re-role and delete users. Rules: [`service::users`].

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::users::{CreateUser, UpdateUser, UserCreated};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use toolbelt_model::Page;
use toolbelt_model::user::User;

/// Lists users (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery),
    responses((status = 200, body = Page<User>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(
        service::users::list(&st, &caller, &Paging::from(q)).await?,
    ))
}

/// Creates a user and their first API token (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserCreated), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserCreated>)> {
    let created = service::users::create(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One user, by id or email (admins; members may read themselves).
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or email")),
    responses((status = 200, body = User), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(service::users::get(&st, &caller, &r).await?))
}

/// Deletes a user with their agents, tokens and grants (admins only).
#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or email")),
    responses((status = 200, body = User), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(service::users::delete(&st, &caller, &r).await?))
}

/// Changes a user's role (admins only; never their own, so the last admin stays one).
#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "users", request_body = UpdateUser,
    params(("user" = String, Path, description = "User id or email")),
    responses((status = 200, body = User), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Body(req): Body<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        service::users::set_role(&st, &caller, &r, req.role).await?,
    ))
}
