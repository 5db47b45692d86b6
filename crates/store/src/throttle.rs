//! Login throttling counts, shared by every replica: one row per key, read and moved in one
//! transaction (row locks on PostgreSQL, the write lock on SQLite) so concurrent attempts
//! through different replicas cannot both slip through. The rules are
//! [`toolbelt_model::throttle::Backoff`]'s.

use crate::rows::int;
use crate::{Backend, Result, Store};
use sqlx::AnyConnection;
use toolbelt_model::throttle::{Backoff, Count};

/// A key and how it is throttled.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub key: &'a str,
    pub policy: &'a Backoff,
}

/// Whether an attempt may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted against every key; go ahead.
    Allowed,
    /// A key is waiting until then (ms); nothing was counted.
    Refused { until_ms: i64 },
}

/// Counts one attempt against every key at once, unless one of them is waiting.
pub async fn attempt(store: &Store, keys: &[Key<'_>], now_ms: i64) -> Result<Verdict> {
    let mut keys = keys.to_vec();
    // One lock order for every transaction: no deadlock between two attempts.
    keys.sort_by(|a, b| a.key.cmp(b.key));
    keys.dedup_by(|a, b| a.key == b.key);
    let mut tx = store.begin().await?;
    let mut next = Vec::with_capacity(keys.len());
    let mut refused: Option<i64> = None;
    for k in &keys {
        let c = locked(&mut tx, store.backend(), k.key).await?;
        match k.policy.attempt(c, now_ms) {
            Ok(n) => next.push((k.key, n)),
            Err(until) => refused = Some(refused.map_or(until, |r| r.max(until))),
        }
    }
    if let Some(until_ms) = refused {
        tx.rollback().await?;
        return Ok(Verdict::Refused { until_ms });
    }
    for (key, c) in next {
        put(&mut tx, key, c).await?;
    }
    tx.commit().await?;
    Ok(Verdict::Allowed)
}

/// An attempt counted by [`attempt`] succeeded: it stops counting against `key` (a client
/// address keeps its other failures: logging in to one's own account must not clear them).
pub async fn undo(store: &Store, key: Key<'_>) -> Result<()> {
    let mut tx = store.begin().await?;
    let c = locked(&mut tx, store.backend(), key.key).await?;
    put(&mut tx, key.key, key.policy.undo(c)).await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets `key` (an account whose password was just proven).
pub async fn reset(c: &mut AnyConnection, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Deletes rows with no attempt and no wait since `cutoff_ms`; how many went.
pub async fn sweep(c: &mut AnyConnection, cutoff_ms: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM login_throttle WHERE updated_at < $1 AND blocked_until < $1")
        .bind(cutoff_ms)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected())
}

/// The count kept for `key` (none: never seen, or forgotten).
pub async fn get(c: &mut AnyConnection, key: &str) -> Result<Option<Count>> {
    let r = sqlx::query(
        "SELECT failures, blocked_until, updated_at FROM login_throttle WHERE key = $1",
    )
    .bind(key.to_string())
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| count(&r)).transpose()
}

/// Rows kept (for tests and metrics).
pub async fn len(c: &mut AnyConnection) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM login_throttle")
        .fetch_one(&mut *c)
        .await?;
    int(&r, "n")
}

/// The key's count, its row locked for the rest of the transaction (created empty first,
/// so that there is a row to lock).
async fn locked(c: &mut AnyConnection, backend: Backend, key: &str) -> Result<Count> {
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, blocked_until, updated_at)
         VALUES ($1, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key.to_string())
    .execute(&mut *c)
    .await?;
    let sql = match backend {
        Backend::Postgres => {
            "SELECT failures, blocked_until, updated_at FROM login_throttle WHERE key = $1 FOR UPDATE"
        }
        // The transaction holds SQLite's write lock already (BEGIN IMMEDIATE).
        Backend::Sqlite => {
            "SELECT failures, blocked_until, updated_at FROM login_throttle WHERE key = $1"
        }
    };
    let r = sqlx::query(sql)
        .bind(key.to_string())
        .fetch_one(&mut *c)
        .await?;
    count(&r)
}

async fn put(c: &mut AnyConnection, key: &str, n: Count) -> Result<()> {
    sqlx::query(
        "UPDATE login_throttle SET failures = $1, blocked_until = $2, updated_at = $3
         WHERE key = $4",
    )
    .bind(i64::from(n.failures))
    .bind(n.blocked_until_ms)
    .bind(n.updated_ms)
    .bind(key.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn count(r: &sqlx::any::AnyRow) -> Result<Count> {
    Ok(Count {
        failures: u32::try_from(int(r, "failures")?).unwrap_or(u32::MAX),
        blocked_until_ms: int(r, "blocked_until")?,
        updated_ms: int(r, "updated_at")?,
    })
}
