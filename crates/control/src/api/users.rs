//! Users: admins create, list and delete them. Creating a user prints its API token once.

use super::common::{CommonErrors, ListQuery, WriteErrors, nf};
use super::session::IssuedToken;
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::passwords;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::page::clamp_limit;
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::user::{User, validate_email, validate_password};
use toolbelt_model::{Page, Role, UserId};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::{AnyConnection, users};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub role: Role,
    /// Optional: without one the user works with API tokens only until they set one.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreated {
    pub user: User,
    /// The new user's first API token. Shown once.
    pub token: IssuedToken,
}

async fn resolve(c: &mut AnyConnection, r: &str) -> ApiResult<User> {
    let found = match UserId::parse(r) {
        Some(id) => users::get(c, &id).await,
        None => users::get_by_email(c, &r.to_ascii_lowercase())
            .await
            .map(|a| a.user),
    };
    nf(&format!("user {r}"), found)
}

/// Lists users (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery),
    responses((status = 200, body = Page<User>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<User>>> {
    caller.require_admin("list users")?;
    let mut c = st.store.conn().await?;
    Ok(Json(
        users::list(&mut c, clamp_limit(q.limit), q.cursor.as_deref()).await?,
    ))
}

/// Creates a user and their first API token (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserCreated), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserCreated>)> {
    caller.require_admin("create users")?;
    let email = validate_email("email", &req.email)?;
    let hash = match &req.password {
        Some(p) => {
            validate_password("password", p)?;
            Some(passwords::hash(p.clone()).await?)
        }
        None => None,
    };
    let issued = token::issue(TokenKind::Api);
    let mut tx = st.store.begin_audited().await?;
    let user = users::create(&mut tx, &email, req.role, hash.as_deref()).await?;
    let info = tokens::insert(
        &mut tx,
        TokenKind::Api,
        &issued.digest,
        &Subject::User(user.id.clone()),
        "created with the user",
        None,
    )
    .await?;
    tx.commit(by_user(
        &caller,
        AuditAction::UserCreate,
        TargetKind::User,
        &user.id,
        Some(&user.id),
        json!({ "email": email, "role": req.role.as_str() }),
    ))
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            user,
            token: IssuedToken {
                token: issued.secret.clone(),
                info,
            },
        }),
    ))
}

/// One user, by id or email (admins; members may read themselves).
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or email")),
    responses((status = 200, body = User), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<User>> {
    let mut c = st.store.conn().await?;
    let user = resolve(&mut c, &r).await?;
    if !caller.is_admin() && &user.id != caller.id() {
        return Err(Problem::not_found(format!("user {r}")));
    }
    Ok(Json(user))
}

/// Deletes a user with their agents, tokens and grants (admins only).
#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id or email")),
    responses((status = 200, body = User), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<User>> {
    caller.require_admin("delete users")?;
    let mut tx = st.store.begin_audited().await?;
    let user = resolve(&mut tx, &r).await?;
    if &user.id == caller.id() {
        return Err(Problem::conflict("you cannot delete yourself"));
    }
    let user = users::delete(&mut tx, &user.id).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::UserDelete,
        TargetKind::User,
        &user.id,
        Some(&user.id),
        json!({ "email": user.email }),
    ))
    .await?;
    Ok(Json(user))
}
