//! Agents: owned by one user; visible to that user and to admins.

use crate::rows::{now_ms, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::agent::{Agent, Discovery};
use toolbelt_model::{AgentId, Name, Page, Scope, UserId};

fn agent(r: &AnyRow) -> Result<Agent> {
    Ok(Agent {
        id: AgentId::from_db(text(r, "id")?),
        name: Name::from_db(text(r, "name")?),
        owner_id: UserId::from_db(text(r, "owner_id")?),
        description: text(r, "description")?,
        discovery: parsed(r, "discovery", Discovery::parse)?,
        created_at: ts(r, "created_at")?,
    })
}

pub async fn create(
    c: &mut AnyConnection,
    owner: &UserId,
    name: &Name,
    description: &str,
) -> Result<Agent> {
    let r = sqlx::query(
        "INSERT INTO agents (id, owner_id, name, description, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING *",
    )
    .bind(AgentId::generate().to_string())
    .bind(owner.to_string())
    .bind(name.to_string())
    .bind(description.to_string())
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || format!("you already have an agent named {name}")))?;
    agent(&r)
}

pub async fn get(c: &mut AnyConnection, scope: &Scope, id: &AgentId) -> Result<Agent> {
    let r = sqlx::query("SELECT * FROM agents WHERE id = $1 AND (owner_id = $2 OR $3 = 1)")
        .bind(id.to_string())
        .bind(scope.user_id.to_string())
        .bind(scope.admin_flag())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    agent(&r)
}

/// Names resolve in the caller's own namespace only.
pub async fn find_by_name(c: &mut AnyConnection, scope: &Scope, name: &str) -> Result<Agent> {
    let r = sqlx::query("SELECT * FROM agents WHERE owner_id = $1 AND name = $2")
        .bind(scope.user_id.to_string())
        .bind(name.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    agent(&r)
}

pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<Agent>> {
    let rows = sqlx::query(
        "SELECT * FROM agents WHERE ($1 IS NULL OR id > $1) AND (owner_id = $2 OR $3 = 1)
         ORDER BY id LIMIT $4",
    )
    .bind(after.map(str::to_string))
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *c)
    .await?;
    let items = rows.iter().map(agent).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |a| a.id.to_string()))
}

/// Deletes the agent with its tokens and grants.
pub async fn delete(c: &mut AnyConnection, scope: &Scope, id: &AgentId) -> Result<Agent> {
    let a = get(c, scope, id).await?;
    sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(a)
}
