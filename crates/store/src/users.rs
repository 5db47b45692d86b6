//! Users. An admin resource: the API lets only admins list or change other users.

use crate::rows::{now_ms, opt_text, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::user::User;
use toolbelt_model::{Page, Role, UserId};

fn user(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: UserId::from_db(text(r, "id")?),
        email: text(r, "email")?,
        role: parsed(r, "role", Role::parse)?,
        created_at: ts(r, "created_at")?,
    })
}

/// `email` must already be normalised (see `toolbelt_model::user::validate_email`).
pub async fn create(
    c: &mut AnyConnection,
    email: &str,
    role: Role,
    password_hash: Option<&str>,
) -> Result<User> {
    let id = UserId::generate();
    let r = sqlx::query(
        "INSERT INTO users (id, email, role, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING *",
    )
    .bind(id.as_str().to_string())
    .bind(email.to_string())
    .bind(role.as_str())
    .bind(password_hash.map(str::to_string))
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || format!("a user with email {email} already exists")))?;
    user(&r)
}

pub async fn get(c: &mut AnyConnection, id: &UserId) -> Result<User> {
    let r = sqlx::query("SELECT * FROM users WHERE id = $1")
        .bind(id.as_str().to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    user(&r)
}

/// A user with what they log in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    /// Argon2 PHC string; none until the user sets a password.
    pub password_hash: Option<String>,
}

/// The user and their password hash, for login.
pub async fn get_by_email(c: &mut AnyConnection, email: &str) -> Result<Account> {
    let r = sqlx::query("SELECT * FROM users WHERE email = $1")
        .bind(email.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(Account {
        user: user(&r)?,
        password_hash: opt_text(&r, "password_hash")?,
    })
}

pub async fn list(c: &mut AnyConnection, limit: u32, after: Option<&str>) -> Result<Page<User>> {
    let rows =
        sqlx::query("SELECT * FROM users WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2")
            .bind(after.map(str::to_string))
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *c)
            .await?;
    let users = rows.iter().map(user).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(users, limit, |u| u.id.to_string()))
}

pub async fn set_password(c: &mut AnyConnection, id: &UserId, hash: &str) -> Result<()> {
    let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash.to_string())
        .bind(id.as_str().to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn count(c: &mut AnyConnection, role: Option<Role>) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE ($1 IS NULL OR role = $1)")
            .bind(role.map(|r| r.as_str()))
            .fetch_one(&mut *c)
            .await?,
    )
}

/// Changes a user's role. Refused when it would leave no admin.
pub async fn set_role(c: &mut AnyConnection, id: &UserId, role: Role) -> Result<User> {
    let u = get(c, id).await?;
    if u.role == Role::Admin && role != Role::Admin && count(c, Some(Role::Admin)).await? <= 1 {
        return Err(StoreError::Conflict(
            "the last admin cannot stop being one".into(),
        ));
    }
    let r = sqlx::query("UPDATE users SET role = $1 WHERE id = $2 RETURNING *")
        .bind(role.as_str())
        .bind(id.as_str().to_string())
        .fetch_one(&mut *c)
        .await?;
    user(&r)
}

/// Deletes a user with their agents, tokens and grants. Refused while they own toolboxes
/// (those hold servers that someone must decide about) or when they are the last admin.
pub async fn delete(c: &mut AnyConnection, id: &UserId) -> Result<User> {
    let u = get(c, id).await?;
    let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM toolboxes WHERE owner_id = $1")
        .bind(id.as_str().to_string())
        .fetch_one(&mut *c)
        .await?;
    if owned > 0 {
        return Err(StoreError::Conflict(format!(
            "{} owns {owned} toolbox(es); delete them first",
            u.email
        )));
    }
    if u.role == Role::Admin && count(c, Some(Role::Admin)).await? <= 1 {
        return Err(StoreError::Conflict(
            "the last admin cannot be deleted".into(),
        ));
    }
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id.as_str().to_string())
        .execute(&mut *c)
        .await?;
    Ok(u)
}
