//! Small key/value settings of the installation (seed markers, key ids).

use crate::Result;
use sqlx::AnyConnection;

pub async fn get(c: &mut AnyConnection, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key.to_string())
            .fetch_optional(&mut *c)
            .await?,
    )
}

pub async fn set(c: &mut AnyConnection, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key.to_string())
    .bind(value.to_string())
    .execute(&mut *c)
    .await?;
    Ok(())
}
