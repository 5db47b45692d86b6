//! Grants. Visible and writable through their agent: the agent's owner and admins.

use crate::rows::{int, now_ms, opt_text, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::grant::{Grant, GrantKind, ToolRule};
use toolbelt_model::{AgentId, ConnectionId, GrantId, Page, Scope, ServerId, ToolboxId};

fn grant(r: &AnyRow) -> Result<Grant> {
    Ok(Grant {
        id: GrantId::from_db(text(r, "id")?),
        agent_id: AgentId::from_db(text(r, "agent_id")?),
        kind: parsed(r, "kind", GrantKind::parse)?,
        toolbox_id: opt_text(r, "toolbox_id")?.map(ToolboxId::from_db),
        server_id: opt_text(r, "server_id")?.map(ServerId::from_db),
        tool: opt_text(r, "tool")?,
        connection_id: opt_text(r, "connection_id")?.map(ConnectionId::from_db),
        rule: parsed(r, "rule", ToolRule::parse)?,
        active: int(r, "active")? != 0,
        created_at: ts(r, "created_at")?,
    })
}

pub struct NewGrant<'a> {
    pub agent_id: &'a AgentId,
    pub kind: GrantKind,
    pub toolbox_id: Option<&'a ToolboxId>,
    pub server_id: Option<&'a ServerId>,
    pub tool: Option<&'a str>,
    pub connection_id: Option<&'a ConnectionId>,
    pub rule: ToolRule,
}

/// The caller has already checked that it may use the agent and see the target.
pub async fn create(c: &mut AnyConnection, g: NewGrant<'_>) -> Result<Grant> {
    let r = sqlx::query(
        "INSERT INTO grants (id, agent_id, kind, toolbox_id, server_id, tool, rule, active,
             created_at, connection_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) RETURNING *",
    )
    .bind(GrantId::generate().to_string())
    .bind(g.agent_id.to_string())
    .bind(g.kind.as_str())
    .bind(g.toolbox_id.map(|t| t.to_string()))
    .bind(g.server_id.map(|s| s.to_string()))
    .bind(g.tool.map(str::to_string))
    .bind(g.rule.as_str())
    .bind(now_ms())
    .bind(g.connection_id.map(|c| c.to_string()))
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || "this agent already has that grant".to_string()))?;
    grant(&r)
}

pub async fn get(c: &mut AnyConnection, scope: &Scope, id: &GrantId) -> Result<Grant> {
    let r = sqlx::query(
        "SELECT g.* FROM grants g JOIN agents a ON a.id = g.agent_id
         WHERE g.id = $1 AND (a.owner_id = $2 OR $3 = 1)",
    )
    .bind(id.to_string())
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    grant(&r)
}

pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    agent: Option<&AgentId>,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<Grant>> {
    let rows = sqlx::query(
        "SELECT g.* FROM grants g JOIN agents a ON a.id = g.agent_id
         WHERE ($1 IS NULL OR g.id > $1) AND ($4 IS NULL OR g.agent_id = $4)
           AND (a.owner_id = $2 OR $3 = 1)
         ORDER BY g.id LIMIT $5",
    )
    .bind(after.map(str::to_string))
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .bind(agent.map(|a| a.to_string()))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *c)
    .await?;
    let items = rows.iter().map(grant).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |g| g.id.to_string()))
}

/// Every grant of one agent (the gateway's authorisation input).
pub async fn for_agent(c: &mut AnyConnection, agent: &AgentId) -> Result<Vec<Grant>> {
    let rows = sqlx::query("SELECT * FROM grants WHERE agent_id = $1 ORDER BY id")
        .bind(agent.to_string())
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(grant).collect()
}

/// Switches a toolbelt item on or off, or changes a tool rule.
pub async fn update(
    c: &mut AnyConnection,
    scope: &Scope,
    id: &GrantId,
    active: Option<bool>,
    rule: Option<ToolRule>,
) -> Result<Grant> {
    get(c, scope, id).await?;
    sqlx::query(
        "UPDATE grants SET active = COALESCE($1, active), rule = COALESCE($2, rule) WHERE id = $3",
    )
    .bind(active.map(i64::from))
    .bind(rule.map(|r| r.as_str()))
    .bind(id.to_string())
    .execute(&mut *c)
    .await?;
    get(c, scope, id).await
}

pub async fn delete(c: &mut AnyConnection, scope: &Scope, id: &GrantId) -> Result<Grant> {
    let g = get(c, scope, id).await?;
    sqlx::query("DELETE FROM grants WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(g)
}
