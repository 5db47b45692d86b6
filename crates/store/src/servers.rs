//! Servers. Visible exactly when their toolbox is; writable by the toolbox's owner and admins.

use crate::rows::{int, json, now_ms, opt_text, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use serde_json::{Map, Value};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use toolbelt_model::dtma::Health;
use toolbelt_model::server::{
    DesiredState, Server, ServerInstance, ServerStatus, status_for_desired,
};
use toolbelt_model::{CatalogId, Name, Page, Scope, ServerId, ToolboxId, UserId};

fn server(r: &AnyRow) -> Result<Server> {
    let owner_id = opt_text(r, "owner_id")?.map(UserId::from_db);
    Ok(Server {
        id: ServerId::from_db(text(r, "id")?),
        name: Name::from_db(text(r, "name")?),
        toolbox_id: ToolboxId::from_db(text(r, "toolbox_id")?),
        toolbox_name: Name::from_db(text(r, "toolbox_name")?),
        catalog_id: CatalogId::from_db(text(r, "catalog_id")?),
        catalog_slug: text(r, "catalog_slug")?,
        shared: owner_id.is_none(),
        owner_id,
        config: json(r, "config")?,
        secrets: json(r, "secrets")?,
        desired: parsed(r, "desired", DesiredState::parse)?,
        status: parsed(r, "status", ServerStatus::parse)?,
        last_error: opt_text(r, "last_error")?,
        restart_count: int(r, "restart_count")?,
        generation: int(r, "generation")?,
        health: parsed(r, "health", Health::parse)?,
        image_digest: opt_text(r, "image_digest")?,
        instance: opt_text(r, "observed")?.and_then(|j| serde_json::from_str(&j).ok()),
        discovery: opt_text(r, "discovery")?.and_then(|j| serde_json::from_str(&j).ok()),
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub struct NewServer<'a> {
    pub name: &'a Name,
    pub toolbox_id: &'a ToolboxId,
    pub catalog_id: &'a CatalogId,
    /// The toolbox's owner; None on shared toolboxes.
    pub owner_id: Option<&'a UserId>,
    pub config: &'a Map<String, Value>,
    pub secrets: &'a BTreeMap<String, String>,
}

pub async fn create(c: &mut AnyConnection, s: NewServer<'_>) -> Result<Server> {
    let id = ServerId::generate();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO servers (id, name, toolbox_id, catalog_id, owner_id, config, secrets,
             desired, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(id.to_string())
    .bind(s.name.to_string())
    .bind(s.toolbox_id.to_string())
    .bind(s.catalog_id.to_string())
    .bind(s.owner_id.map(|o| o.to_string()))
    .bind(Value::Object(s.config.clone()).to_string())
    .bind(serde_json::to_string(s.secrets).expect("a string map serialises"))
    .bind(DesiredState::Running.as_str())
    .bind(ServerStatus::PendingDeploy.as_str())
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("a server named {} already exists on this toolbox", s.name)
        })
    })?;
    get_internal(c, &id).await
}

pub async fn get(c: &mut AnyConnection, scope: &Scope, id: &ServerId) -> Result<Server> {
    let sql = "SELECT s.*, t.name AS toolbox_name, c.slug AS catalog_slug
     FROM servers s
     JOIN toolboxes t ON t.id = s.toolbox_id
     JOIN catalog_entries c ON c.id = s.catalog_id
     WHERE s.id = $1 AND (t.owner_id IS NULL OR t.owner_id = $2 OR $3 = 1)";
    let r = sqlx::query(sql)
        .bind(id.to_string())
        .bind(scope.user_id.to_string())
        .bind(scope.admin_flag())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    server(&r)
}

/// Unscoped read for internal callers (DTMA sync, gateway routing).
pub async fn get_internal(c: &mut AnyConnection, id: &ServerId) -> Result<Server> {
    let sql = "SELECT s.*, t.name AS toolbox_name, c.slug AS catalog_slug
     FROM servers s
     JOIN toolboxes t ON t.id = s.toolbox_id
     JOIN catalog_entries c ON c.id = s.catalog_id
     WHERE s.id = $1";
    let r = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    server(&r)
}

/// Visible, not-deleted servers named `name`, optionally on one toolbox.
pub async fn find_by_name(
    c: &mut AnyConnection,
    scope: &Scope,
    name: &str,
    toolbox: Option<&ToolboxId>,
) -> Result<Vec<Server>> {
    let sql = "SELECT s.*, t.name AS toolbox_name, c.slug AS catalog_slug
     FROM servers s
     JOIN toolboxes t ON t.id = s.toolbox_id
     JOIN catalog_entries c ON c.id = s.catalog_id
     WHERE s.name = $1 AND s.desired <> 'deleted' AND ($4 IS NULL OR s.toolbox_id = $4)
       AND (t.owner_id IS NULL OR t.owner_id = $2 OR $3 = 1)
     ORDER BY s.id";
    let rows = sqlx::query(sql)
        .bind(name.to_string())
        .bind(scope.user_id.to_string())
        .bind(scope.admin_flag())
        .bind(toolbox.map(|t| t.to_string()))
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(server).collect()
}

pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    toolbox: Option<&ToolboxId>,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<Server>> {
    let sql = "SELECT s.*, t.name AS toolbox_name, c.slug AS catalog_slug
     FROM servers s
     JOIN toolboxes t ON t.id = s.toolbox_id
     JOIN catalog_entries c ON c.id = s.catalog_id
     WHERE ($1 IS NULL OR s.id > $1) AND ($4 IS NULL OR s.toolbox_id = $4)
       AND (t.owner_id IS NULL OR t.owner_id = $2 OR $3 = 1)
     ORDER BY s.id LIMIT $5";
    let rows = sqlx::query(sql)
        .bind(after.map(str::to_string))
        .bind(scope.user_id.to_string())
        .bind(scope.admin_flag())
        .bind(toolbox.map(|t| t.to_string()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *c)
        .await?;
    let items = rows.iter().map(server).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |s| s.id.to_string()))
}

/// Changes the desired state of a server the caller may manage. `restart` also bumps the
/// generation, which tells the toolbox to recreate the process.
pub async fn set_desired(
    c: &mut AnyConnection,
    scope: &Scope,
    id: &ServerId,
    desired: DesiredState,
    restart: bool,
) -> Result<Server> {
    let current = get(c, scope, id).await?;
    let status = if restart {
        ServerStatus::PendingDeploy
    } else {
        status_for_desired(desired, current.status)
    };
    let n = sqlx::query(
        "UPDATE servers SET desired = $1, status = $2, generation = generation + $3, updated_at = $4
         WHERE id = $5 AND (owner_id = $6 OR $7 = 1)",
    )
    .bind(desired.as_str())
    .bind(status.as_str())
    .bind(i64::from(restart))
    .bind(now_ms())
    .bind(id.to_string())
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get_internal(c, id).await
}

/// Every server row of one toolbox, deleted ones included (the DTMA channel's view).
pub async fn for_toolbox(c: &mut AnyConnection, toolbox: &ToolboxId) -> Result<Vec<Server>> {
    let sql = "SELECT s.*, t.name AS toolbox_name, c.slug AS catalog_slug
     FROM servers s
     JOIN toolboxes t ON t.id = s.toolbox_id
     JOIN catalog_entries c ON c.id = s.catalog_id
     WHERE s.toolbox_id = $1 ORDER BY s.id";
    let rows = sqlx::query(sql)
        .bind(toolbox.to_string())
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(server).collect()
}

/// What the toolbox observed of one server.
pub struct Observation<'a> {
    pub status: ServerStatus,
    pub last_error: Option<&'a str>,
    pub restarts: i64,
    pub health: Health,
    pub instance: Option<&'a ServerInstance>,
}

pub async fn apply_observed(
    c: &mut AnyConnection,
    id: &ServerId,
    o: Observation<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET status = $1, last_error = $2, restart_count = $3, health = $4, observed = $5, updated_at = $6
         WHERE id = $7",
    )
    .bind(o.status.as_str())
    .bind(o.last_error.map(str::to_string))
    .bind(o.restarts)
    .bind(o.health.as_str())
    .bind(o.instance.map(|i| serde_json::to_string(i).expect("an instance serialises")))
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Pins a server to the image its toolbox resolved, unless it is pinned already (a pin
/// changes only by an explicit update). Answers whether it was pinned now.
pub async fn pin_image(c: &mut AnyConnection, id: &ServerId, digest: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE servers SET image_digest = $1, updated_at = $2 WHERE id = $3 AND image_digest IS NULL",
    )
    .bind(digest.to_string())
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a server's pin to `digest` (an explicit update, audited by the caller); when
/// `recreate`, a new generation too, so its toolbox re-creates the container on it.
pub async fn set_image(
    c: &mut AnyConnection,
    id: &ServerId,
    digest: &str,
    recreate: bool,
) -> Result<Server> {
    // A stopped server keeps its status; only a re-create is pending a deploy.
    let q = if recreate {
        sqlx::query(
            "UPDATE servers SET image_digest = $1, status = $4, generation = generation + 1,
             updated_at = $2 WHERE id = $3",
        )
    } else {
        sqlx::query("UPDATE servers SET image_digest = $1, updated_at = $2 WHERE id = $3")
    };
    let mut q = q
        .bind(digest.to_string())
        .bind(now_ms())
        .bind(id.to_string());
    if recreate {
        q = q.bind(ServerStatus::PendingDeploy.as_str());
    }
    if q.execute(&mut *c).await?.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    get_internal(c, id).await
}

/// Marks every live server of a toolbox (its DTMA went silent, or came back).
pub async fn set_status_on_toolbox(
    c: &mut AnyConnection,
    toolbox: &ToolboxId,
    status: ServerStatus,
) -> Result<u64> {
    Ok(sqlx::query("UPDATE servers SET status = $1, health = 'unknown', updated_at = $2 WHERE toolbox_id = $3 AND desired <> 'deleted'")
        .bind(status.as_str())
        .bind(now_ms())
        .bind(toolbox.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected())
}

/// Removes the row of a server its toolbox has finished deleting.
pub async fn purge(c: &mut AnyConnection, id: &ServerId) -> Result<()> {
    sqlx::query("DELETE FROM servers WHERE id = $1 AND desired = 'deleted'")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Records what the gateway's discovery found.
pub async fn set_discovery(
    c: &mut AnyConnection,
    id: &ServerId,
    d: &toolbelt_model::server::ServerDiscovery,
) -> Result<()> {
    sqlx::query("UPDATE servers SET discovery = $1 WHERE id = $2")
        .bind(serde_json::to_string(d).expect("discovery serialises"))
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Every server that should be running, on any toolbox (the gateway's registry).
pub async fn all_live(c: &mut AnyConnection) -> Result<Vec<Server>> {
    let sql = "SELECT s.*, t.name AS toolbox_name, c.slug AS catalog_slug
     FROM servers s
     JOIN toolboxes t ON t.id = s.toolbox_id
     JOIN catalog_entries c ON c.id = s.catalog_id
     WHERE s.desired = 'running' ORDER BY s.id";
    let rows = sqlx::query(sql).fetch_all(&mut *c).await?;
    rows.iter().map(server).collect()
}
