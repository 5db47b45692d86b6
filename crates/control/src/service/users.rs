//! Users: admins create, list, re-role and delete them; a member may read only themselves.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use super::tokens::IssuedToken;
use super::{Paging, refs};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::user::{User, validate_email, validate_password};
use toolbelt_model::{Page, Role};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::users;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub role: Role,
    /// Optional: without one the user works with API tokens only until they set one.
    pub password: Option<String>,
}

/// A change to a user: their role (`PATCH /api/v1/users/{user}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreated {
    pub user: User,
    /// The new user's first API token. Shown once.
    pub token: IssuedToken,
}

pub async fn list(st: &AppState, caller: &Caller, page: &Paging) -> Result<Page<User>> {
    caller.require_admin("list users")?;
    let mut c = st.store.conn().await?;
    Ok(users::list(&mut c, page.limit(), page.cursor()).await?)
}

/// Creates a user with their first API token (admins only).
pub async fn create(st: &AppState, caller: &Caller, req: CreateUser) -> Result<UserCreated> {
    caller.require_admin("create users")?;
    let email = validate_email("email", &req.email)?;
    let hash = match &req.password {
        Some(p) => {
            validate_password("password", p)?;
            Some(st.passwords.hash(p.clone()).await?)
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
    tx.commit(caller.event(
        AuditAction::UserCreate,
        TargetKind::User,
        &user.id,
        Some(&user.id),
        json!({ "email": email, "role": req.role.as_str() }),
    ))
    .await?;
    Ok(UserCreated {
        user,
        token: IssuedToken {
            token: issued.secret.clone(),
            info,
        },
    })
}

/// One user by id or email: admins see anyone, members only themselves.
pub async fn get(st: &AppState, caller: &Caller, r: &str) -> Result<User> {
    let mut c = st.store.conn().await?;
    let user = refs::user(&mut c, r).await?;
    if !caller.is_admin() && &user.id != caller.id() {
        return Err(ServiceError::not_found(format!("user {r}")));
    }
    Ok(user)
}

/// Deletes a user with their agents, tokens and grants (admins only, never themselves).
pub async fn delete(st: &AppState, caller: &Caller, r: &str) -> Result<User> {
    caller.require_admin("delete users")?;
    let mut tx = st.store.begin_audited().await?;
    let user = refs::user(&mut tx, r).await?;
    if &user.id == caller.id() {
        return Err(ServiceError::conflict("you cannot delete yourself"));
    }
    let user = users::delete(&mut tx, &user.id).await?;
    tx.commit(caller.event(
        AuditAction::UserDelete,
        TargetKind::User,
        &user.id,
        Some(&user.id),
        json!({ "email": user.email }),
    ))
    .await?;
    Ok(user)
}

/// Makes a user an admin or a member (admins only, never themselves: an admin cannot
/// lock themselves out, and the last admin stays one).
pub async fn set_role(st: &AppState, caller: &Caller, r: &str, role: Role) -> Result<User> {
    caller.require_admin("change roles")?;
    let mut tx = st.store.begin_audited().await?;
    let user = refs::user(&mut tx, r).await?;
    if &user.id == caller.id() {
        return Err(ServiceError::conflict("you cannot change your own role"));
    }
    let before = user.role;
    let user = users::set_role(&mut tx, &user.id, role).await?;
    tx.commit(caller.event(
        AuditAction::UserRole,
        TargetKind::User,
        &user.id,
        Some(&user.id),
        json!({ "email": user.email, "from": before.as_str(), "role": role.as_str() }),
    ))
    .await?;
    Ok(user)
}
