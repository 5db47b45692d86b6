//! A server's status history: each move of its observed status, as heartbeats report it,
//! for the dashboard's server page. Pruned with the metrics (same retention).

use crate::Result;
use crate::rows::{int, opt_text, parsed, ts};
use sqlx::AnyConnection;
use toolbelt_model::server::ServerStatus;
use toolbelt_model::{ServerId, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub at: Timestamp,
    pub status: ServerStatus,
    /// The toolbox's reason, for failures.
    pub error: Option<String>,
    pub restarts: i64,
}

/// Records that a server moved to `status`.
pub async fn record(
    c: &mut AnyConnection,
    server: &ServerId,
    status: ServerStatus,
    error: Option<&str>,
    restarts: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO server_status_log (server_id, at, status, error, restarts)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(server.to_string())
    .bind(crate::rows::now_ms())
    .bind(status.as_str())
    .bind(error.map(str::to_string))
    .bind(restarts)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The latest `limit` moves of a server, newest first.
pub async fn for_server(
    c: &mut AnyConnection,
    server: &ServerId,
    limit: u32,
) -> Result<Vec<StatusChange>> {
    let rows = sqlx::query(
        "SELECT at, status, error, restarts FROM server_status_log WHERE server_id = $1
         ORDER BY at DESC LIMIT $2",
    )
    .bind(server.to_string())
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StatusChange {
                at: ts(r, "at")?,
                status: parsed(r, "status", ServerStatus::parse)?,
                error: opt_text(r, "error")?,
                restarts: int(r, "restarts")?,
            })
        })
        .collect()
}

/// Deletes history from before `before_ms`.
pub async fn prune(c: &mut AnyConnection, before_ms: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM server_status_log WHERE at < $1")
        .bind(before_ms)
        .execute(&mut *c)
        .await?
        .rows_affected())
}
