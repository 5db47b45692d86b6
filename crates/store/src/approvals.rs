//! `ask` approvals: a held tool call waiting for its agent's owner (or an admin).

use crate::rows::{now_ms, opt_text, opt_ts, parsed, text, ts};
use crate::{Result, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
pub use toolbelt_model::gateway::{Approval, ApprovalStatus};
use toolbelt_model::{AgentId, ApprovalId, Scope, ServerId, UserId};

fn approval(r: &AnyRow) -> Result<Approval> {
    Ok(Approval {
        id: ApprovalId::from_db(text(r, "id")?),
        agent_id: AgentId::from_db(text(r, "agent_id")?),
        owner_id: UserId::from_db(text(r, "owner_id")?),
        server_id: ServerId::from_db(text(r, "server_id")?),
        tool: text(r, "tool")?,
        arguments: serde_json::from_str(&text(r, "arguments")?).unwrap_or_default(),
        status: parsed(r, "status", ApprovalStatus::parse)?,
        created_at: ts(r, "created_at")?,
        expires_at: ts(r, "expires_at")?,
        decided_by: opt_text(r, "decided_by")?,
        decided_at: opt_ts(r, "decided_at")?,
    })
}

pub async fn create(
    c: &mut AnyConnection,
    agent: &AgentId,
    owner: &UserId,
    server: &ServerId,
    tool: &str,
    arguments: &serde_json::Value,
    ttl_ms: i64,
) -> Result<Approval> {
    let now = now_ms();
    let r = sqlx::query(
        "INSERT INTO approvals (id, agent_id, owner_id, server_id, tool, arguments, status, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) RETURNING *",
    )
    .bind(ApprovalId::generate().to_string())
    .bind(agent.to_string())
    .bind(owner.to_string())
    .bind(server.to_string())
    .bind(tool.to_string())
    .bind(arguments.to_string())
    .bind(now)
    .bind(now + ttl_ms)
    .fetch_one(&mut *c)
    .await?;
    approval(&r)
}

/// Visible to the agent's owner and admins.
pub async fn get(c: &mut AnyConnection, scope: &Scope, id: &ApprovalId) -> Result<Approval> {
    let r = sqlx::query("SELECT * FROM approvals WHERE id = $1 AND (owner_id = $2 OR $3 = 1)")
        .bind(id.to_string())
        .bind(scope.user_id.to_string())
        .bind(scope.admin_flag())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    approval(&r)
}

pub async fn get_internal(c: &mut AnyConnection, id: &ApprovalId) -> Result<Approval> {
    let r = sqlx::query("SELECT * FROM approvals WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    approval(&r)
}

pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    only_pending: bool,
) -> Result<Vec<Approval>> {
    let rows = sqlx::query(
        "SELECT * FROM approvals WHERE (owner_id = $1 OR $2 = 1) AND ($3 = 0 OR status = 'pending')
         ORDER BY created_at DESC LIMIT 1000",
    )
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .bind(i64::from(only_pending))
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(approval).collect()
}

/// Decides a pending approval (`approved`, `denied` or `expired`; `by` is a user id or
/// `system`). Conflict when it was already decided or has expired.
pub async fn decide(
    c: &mut AnyConnection,
    id: &ApprovalId,
    status: ApprovalStatus,
    by: &str,
) -> Result<Approval> {
    let now = now_ms();
    let n = sqlx::query("UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'pending' AND expires_at > $5")
        .bind(status.as_str())
        .bind(by.to_string())
        .bind(now)
        .bind(id.to_string())
        // Approving or denying needs an unexpired request; expiring does not.
        .bind(if status == ApprovalStatus::Expired { 0 } else { now })
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "approval {id} is no longer pending"
        )));
    }
    get_internal(c, id).await
}
