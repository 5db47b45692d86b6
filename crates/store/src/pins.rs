//! Pinned tool (prompt, resource template) definitions and the changes waiting for an
//! admin (rug-pull defence). Rows say which kind they are of; functions that do not take
//! a kind are about tools.

use crate::rows::{now_ms, opt_int, opt_text, opt_ts, parsed, text, ts};
use crate::{Result, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
pub use toolbelt_model::gateway::{ChangeStatus, Pin, PinKind, ToolChange};
use toolbelt_model::{ServerId, ToolChangeId};

fn json(s: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn pin(r: &AnyRow) -> Result<Pin> {
    Ok(Pin {
        server_id: ServerId::from_db(text(r, "server_id")?),
        kind: parsed(r, "kind", PinKind::parse)?,
        tool: text(r, "tool")?,
        hash: text(r, "hash")?,
        definition: json(&text(r, "definition")?)?,
        flags: serde_json::from_str(&text(r, "flags")?).unwrap_or_default(),
    })
}

fn change(r: &AnyRow) -> Result<ToolChange> {
    Ok(ToolChange {
        id: ToolChangeId::from_db(text(r, "id")?),
        server_id: ServerId::from_db(text(r, "server_id")?),
        kind: parsed(r, "kind", PinKind::parse)?,
        tool: text(r, "tool")?,
        old_hash: opt_text(r, "old_hash")?,
        new_hash: text(r, "new_hash")?,
        old_definition: opt_text(r, "old_definition")?
            .map(|s| json(&s))
            .transpose()?,
        new_definition: json(&text(r, "new_definition")?)?,
        flags: serde_json::from_str(&text(r, "flags")?).unwrap_or_default(),
        status: parsed(r, "status", ChangeStatus::parse)?,
        created_at: ts(r, "created_at")?,
        decided_by: opt_text(r, "decided_by")?,
        decided_at: opt_ts(r, "decided_at")?,
    })
}

/// A server's tool pins.
pub async fn for_server(c: &mut AnyConnection, server: &ServerId) -> Result<Vec<Pin>> {
    of_kind(c, server, PinKind::Tool).await
}

/// A server's pins of one kind.
pub async fn of_kind(c: &mut AnyConnection, server: &ServerId, kind: PinKind) -> Result<Vec<Pin>> {
    let rows = sqlx::query("SELECT * FROM tool_pins WHERE server_id = $1 AND kind = $2")
        .bind(server.to_string())
        .bind(kind.as_str())
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(pin).collect()
}

/// The tool pins of many servers at once, by server (a tree of every server the caller sees
/// would otherwise be one query per server). Servers without pins are absent.
pub async fn for_servers(
    c: &mut AnyConnection,
    servers: &[ServerId],
) -> Result<std::collections::HashMap<ServerId, Vec<Pin>>> {
    // Bound parameters per statement stay far below SQLite's and PostgreSQL's limits.
    const CHUNK: usize = 500;
    let mut out: std::collections::HashMap<ServerId, Vec<Pin>> = Default::default();
    for chunk in servers.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT * FROM tool_pins WHERE kind = 'tool' AND server_id IN ({}) ORDER BY server_id, tool",
            marks.join(", ")
        );
        // Only placeholders are formatted into the statement; the ids are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.to_string());
        }
        for r in q.fetch_all(&mut *c).await? {
            let p = pin(&r)?;
            out.entry(p.server_id.clone()).or_default().push(p);
        }
    }
    Ok(out)
}

/// How pins hash a definition now: the whole forwarded tool (1: before icons and `_meta`).
pub const HASHING: i64 = 2;

/// The tools of a server whose pin was made under the old hashing.
pub async fn legacy_for_server(
    c: &mut AnyConnection,
    server: &ServerId,
) -> Result<std::collections::HashSet<String>> {
    let rows = sqlx::query(
        "SELECT tool FROM tool_pins WHERE server_id = $1 AND kind = 'tool' AND hashing < $2",
    )
    .bind(server.to_string())
    .bind(HASHING)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(|r| text(r, "tool")).collect()
}

/// Whether a server's prompts and resource templates were pinned before: if not, its
/// next listing is their first discovery.
pub async fn listings_pinned(c: &mut AnyConnection, server: &ServerId) -> Result<bool> {
    let r = sqlx::query("SELECT listings_pinned_at FROM servers WHERE id = $1")
        .bind(server.to_string())
        .fetch_optional(&mut *c)
        .await?;
    Ok(match r {
        Some(r) => opt_int(&r, "listings_pinned_at")?.is_some(),
        None => false,
    })
}

/// Records a server's first discovery of prompts and templates (once).
pub async fn mark_listings_pinned(c: &mut AnyConnection, server: &ServerId) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET listings_pinned_at = $1 WHERE id = $2 AND listings_pinned_at IS NULL",
    )
    .bind(now_ms())
    .bind(server.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Pins a definition (first sight, or an approved change).
pub async fn set(c: &mut AnyConnection, p: &Pin, approved_by: Option<&str>) -> Result<()> {
    sqlx::query(
        "INSERT INTO tool_pins (server_id, tool, hash, definition, flags, pinned_at, approved_by, hashing, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (server_id, kind, tool) DO UPDATE SET hash = excluded.hash, definition = excluded.definition,
             flags = excluded.flags, pinned_at = excluded.pinned_at, approved_by = excluded.approved_by,
             hashing = excluded.hashing",
    )
    .bind(p.server_id.to_string())
    .bind(p.tool.clone())
    .bind(p.hash.clone())
    .bind(p.definition.to_string())
    .bind(serde_json::to_string(&p.flags).expect("strings serialise"))
    .bind(now_ms())
    .bind(approved_by.map(str::to_string))
    .bind(HASHING)
    .bind(p.kind.as_str())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Moves a pin to a new hashing of the same definition, keeping who approved it and
/// when; only if the pin is still `old` (a concurrent approval wins).
pub async fn rehash(c: &mut AnyConnection, old: &Pin, new: &Pin) -> Result<()> {
    sqlx::query(
        "UPDATE tool_pins SET hash = $1, definition = $2, hashing = $3
         WHERE server_id = $4 AND tool = $5 AND hash = $6 AND kind = $7",
    )
    .bind(new.hash.clone())
    .bind(new.definition.to_string())
    .bind(HASHING)
    .bind(old.server_id.to_string())
    .bind(old.tool.clone())
    .bind(old.hash.clone())
    .bind(old.kind.as_str())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Records a definition that differs from the pin, once per (server, kind, name, new hash).
/// Returns true when it is new.
pub async fn record_change(c: &mut AnyConnection, old: Option<&Pin>, new: &Pin) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO tool_changes (id, server_id, tool, old_hash, new_hash, old_definition, new_definition, flags, status, created_at, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
         ON CONFLICT (server_id, kind, tool, new_hash) DO NOTHING",
    )
    .bind(ToolChangeId::generate().to_string())
    .bind(new.server_id.to_string())
    .bind(new.tool.clone())
    .bind(old.map(|o| o.hash.clone()))
    .bind(new.hash.clone())
    .bind(old.map(|o| o.definition.to_string()))
    .bind(new.definition.to_string())
    .bind(serde_json::to_string(&new.flags).expect("strings serialise"))
    .bind(now_ms())
    .bind(new.kind.as_str())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Pending (or all) changes, newest first.
pub async fn changes(c: &mut AnyConnection, only_pending: bool) -> Result<Vec<ToolChange>> {
    let rows = sqlx::query("SELECT * FROM tool_changes WHERE ($1 = 0 OR status = 'pending') ORDER BY created_at DESC, id DESC LIMIT 1000")
        .bind(i64::from(only_pending))
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(change).collect()
}

pub async fn get_change(c: &mut AnyConnection, id: &ToolChangeId) -> Result<ToolChange> {
    let r = sqlx::query("SELECT * FROM tool_changes WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    change(&r)
}

/// The newest pending change of one tool (not a prompt or template of that name).
pub async fn pending_for(
    c: &mut AnyConnection,
    server: &ServerId,
    tool: &str,
) -> Result<ToolChange> {
    let r = sqlx::query("SELECT * FROM tool_changes WHERE server_id = $1 AND tool = $2 AND kind = 'tool' AND status = 'pending' ORDER BY created_at DESC LIMIT 1")
        .bind(server.to_string())
        .bind(tool.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    change(&r)
}

/// Decides a pending change (`approved` or `rejected`). Conflict when it is not pending.
pub async fn decide(
    c: &mut AnyConnection,
    id: &ToolChangeId,
    status: ChangeStatus,
    by: &str,
) -> Result<()> {
    let n = sqlx::query("UPDATE tool_changes SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'pending'")
        .bind(status.as_str())
        .bind(by.to_string())
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict(format!("change {id} is not pending")));
    }
    Ok(())
}
