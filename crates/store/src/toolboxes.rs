//! Toolboxes. Shared ones (no owner) are visible to everyone; private ones to their owner
//! and admins.

use crate::rows::{now_ms, opt_text, opt_ts, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::toolbox::{Toolbox, ToolboxKind, ToolboxStatus};
use toolbelt_model::{Name, Page, Scope, ToolboxId, UserId};

fn toolbox(r: &AnyRow) -> Result<Toolbox> {
    let owner_id = opt_text(r, "owner_id")?.map(UserId::from_db);
    let report: Option<toolbelt_model::dtma::ToolboxReport> =
        opt_text(r, "report")?.and_then(|j| serde_json::from_str(&j).ok());
    Ok(Toolbox {
        id: ToolboxId::from_db(text(r, "id")?),
        name: Name::from_db(text(r, "name")?),
        shared: owner_id.is_none(),
        owner_id,
        kind: opt_text(r, "kind")?.and_then(|k| ToolboxKind::parse(&k)),
        status: parsed(r, "status", ToolboxStatus::parse)?,
        created_at: ts(r, "created_at")?,
        last_heartbeat_at: opt_ts(r, "last_heartbeat_at")?,
        dtma_url: opt_text(r, "dtma_url")?,
        dtma_tls_pin: opt_text(r, "dtma_tls_pin")?,
        allowed_registries: opt_text(r, "allowed_registries")?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        report: report.clone(),
        isolation: report.and_then(|r| r.runtime.isolation),
    })
}

/// `owner` None creates a shared toolbox.
pub async fn create(
    c: &mut AnyConnection,
    name: &Name,
    owner: Option<&UserId>,
    kind: Option<ToolboxKind>,
    status: ToolboxStatus,
) -> Result<Toolbox> {
    let r = sqlx::query(
        "INSERT INTO toolboxes (id, name, owner_id, kind, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
    )
    .bind(ToolboxId::generate().to_string())
    .bind(name.to_string())
    .bind(owner.map(|o| o.to_string()))
    .bind(kind.map(|k| k.as_str()))
    .bind(status.as_str())
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || format!("a toolbox named {name} already exists")))?;
    toolbox(&r)
}

/// Replaces a toolbox's registry allow-list (empty: any registry).
pub async fn set_allowed_registries(
    c: &mut AnyConnection,
    id: &ToolboxId,
    allowed: &[String],
) -> Result<Toolbox> {
    let value = (!allowed.is_empty())
        .then(|| serde_json::to_string(allowed).unwrap_or_else(|_| "[]".into()));
    let n = sqlx::query("UPDATE toolboxes SET allowed_registries = $1 WHERE id = $2")
        .bind(value)
        .bind(id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get_internal(c, id).await
}

pub async fn get(c: &mut AnyConnection, scope: &Scope, id: &ToolboxId) -> Result<Toolbox> {
    let r = sqlx::query(
        "SELECT * FROM toolboxes WHERE id = $1 AND (owner_id IS NULL OR owner_id = $2 OR $3 = 1)",
    )
    .bind(id.to_string())
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    toolbox(&r)
}

/// By name: the caller's own toolbox first, then a shared one.
pub async fn find_by_name(c: &mut AnyConnection, scope: &Scope, name: &str) -> Result<Toolbox> {
    let r = sqlx::query(
        "SELECT * FROM toolboxes WHERE name = $1 AND (owner_id IS NULL OR owner_id = $2)
         ORDER BY CASE WHEN owner_id IS NULL THEN 1 ELSE 0 END LIMIT 1",
    )
    .bind(name.to_string())
    .bind(scope.user_id.to_string())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    toolbox(&r)
}

/// Unscoped read for internal callers (heartbeats, the DTMA channel).
pub async fn get_internal(c: &mut AnyConnection, id: &ToolboxId) -> Result<Toolbox> {
    let r = sqlx::query("SELECT * FROM toolboxes WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    toolbox(&r)
}

pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<Toolbox>> {
    let rows = sqlx::query(
        "SELECT * FROM toolboxes
         WHERE ($1 IS NULL OR id > $1) AND (owner_id IS NULL OR owner_id = $2 OR $3 = 1)
         ORDER BY id LIMIT $4",
    )
    .bind(after.map(str::to_string))
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *c)
    .await?;
    let items = rows.iter().map(toolbox).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |t| t.id.to_string()))
}

pub async fn set_status(
    c: &mut AnyConnection,
    id: &ToolboxId,
    status: ToolboxStatus,
    kind: Option<ToolboxKind>,
) -> Result<()> {
    sqlx::query("UPDATE toolboxes SET status = $1, kind = COALESCE($2, kind) WHERE id = $3")
        .bind(status.as_str())
        .bind(kind.map(|k| k.as_str()))
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Deletes a toolbox the caller may manage (its own; any for admins). Refused while
/// servers still live on it.
pub async fn delete(c: &mut AnyConnection, scope: &Scope, id: &ToolboxId) -> Result<Toolbox> {
    let t = get(c, scope, id).await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM servers WHERE toolbox_id = $1 AND desired <> 'deleted'",
    )
    .bind(id.to_string())
    .fetch_one(&mut *c)
    .await?;
    if live > 0 {
        return Err(StoreError::Conflict(format!(
            "toolbox {} still has {live} server(s); delete them first",
            t.name
        )));
    }
    // Servers already marked deleted go with it; nothing else refers to them.
    sqlx::query("DELETE FROM servers WHERE toolbox_id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    let n = sqlx::query("DELETE FROM toolboxes WHERE id = $1 AND (owner_id = $2 OR $3 = 1)")
        .bind(id.to_string())
        .bind(scope.user_id.to_string())
        .bind(scope.admin_flag())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(t)
}

/// A DTMA joined: record how to reach it, what it runs on and the key it serves TLS with
/// (a new join replaces the pin, or clears it for a DTMA on plain HTTP).
pub async fn record_join(
    c: &mut AnyConnection,
    id: &ToolboxId,
    kind: ToolboxKind,
    dtma_url: &str,
    tls_pin: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE toolboxes SET kind = $1, status = $2, dtma_url = $3, dtma_tls_pin = $4 WHERE id = $5")
        .bind(kind.as_str())
        .bind(ToolboxStatus::AwaitingHeartbeat.as_str())
        .bind(dtma_url.to_string())
        .bind(tls_pin.map(str::to_string))
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A heartbeat arrived: the toolbox is active. A toolbox without a pin takes the key the
/// heartbeat reports (a DTMA that joined before pins, now serving TLS); a pin once set
/// changes only by a new join. Returns the toolbox as it was before.
pub async fn record_heartbeat(
    c: &mut AnyConnection,
    id: &ToolboxId,
    dtma_url: &str,
    report: &str,
    tls_pin: Option<&str>,
) -> Result<Toolbox> {
    let before = get_internal(c, id).await?;
    sqlx::query("UPDATE toolboxes SET status = $1, last_heartbeat_at = $2, dtma_url = $3, report = $4, dtma_tls_pin = COALESCE(dtma_tls_pin, $5) WHERE id = $6")
        .bind(ToolboxStatus::Active.as_str())
        .bind(crate::rows::now_ms())
        .bind(dtma_url.to_string())
        .bind(report.to_string())
        .bind(tls_pin.map(str::to_string))
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(before)
}

/// Toolboxes with a DTMA that has been silent since `before_ms` and are not yet marked so.
pub async fn silent_since(c: &mut AnyConnection, before_ms: i64) -> Result<Vec<Toolbox>> {
    let rows = sqlx::query(
        "SELECT * FROM toolboxes WHERE status IN ('active', 'awaiting_heartbeat')
           AND last_heartbeat_at IS NOT NULL AND last_heartbeat_at < $1",
    )
    .bind(before_ms)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(toolbox).collect()
}
