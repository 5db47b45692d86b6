//! Named leases: work that one replica at a time does (writing audit checkpoints). A lease
//! is held until a time and renewed by its holder; when the holder dies it runs out and
//! another replica takes it.

use crate::Result;
use sqlx::AnyConnection;

/// Takes or renews the lease `name` for `owner` until `until_ms`: true when `owner` holds
/// it afterwards. Atomic on both backends (one conditional upsert), so exactly one of
/// several replicas asking at once wins.
pub async fn acquire(
    c: &mut AnyConnection,
    name: &str,
    owner: &str,
    until_ms: i64,
    now_ms: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
         WHERE leases.owner = excluded.owner OR leases.until < $4",
    )
    .bind(name.to_string())
    .bind(owner.to_string())
    .bind(until_ms)
    .bind(now_ms)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives the lease up (a clean shutdown), if `owner` holds it.
pub async fn release(c: &mut AnyConnection, name: &str, owner: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
        .bind(name.to_string())
        .bind(owner.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}
