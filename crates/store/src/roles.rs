//! PostgreSQL with two roles (`TOOLBELT_MIGRATE_DATABASE_URL`): migrations run as the
//! owner of the schema, the app serves as a role that may read and write the tables but
//! only SELECT and INSERT `audit_events`. The append-only triggers alone do not stop a
//! serving role that owns the table (an owner may drop triggers); a role without UPDATE,
//! DELETE or TRUNCATE privilege is refused before any trigger runs, whatever SQL it sends.
//! The head row (`audit_head`) keeps its UPDATE: it moves with every append, and a head
//! moved back is what signed checkpoints catch.

use crate::{Backend, Result, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

/// `"name"`, quoted for SQL (an embedded quote doubled).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs the migrations as the owner at `migrate_url`, then grants the role `pool` serves
/// as what it needs and no more on `audit_events`. Idempotent: every replica does it at
/// start (sqlx's migrator takes an advisory lock; grants repeat harmlessly).
pub(crate) async fn migrate_as_owner(
    backend: Backend,
    pool: &AnyPool,
    migrate_url: &str,
) -> Result<()> {
    if backend != Backend::Postgres {
        return Err(StoreError::Db(sqlx::Error::Configuration(
            "a separate migration role (TOOLBELT_MIGRATE_DATABASE_URL) is for PostgreSQL only"
                .into(),
        )));
    }
    let serving: String = sqlx::query("SELECT current_user::text AS u")
        .fetch_one(pool)
        .await?
        .try_get("u")?;
    // One connection, not a pool: the owner's credentials are used for this and dropped.
    let owner_pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(migrate_url)
        .await?;
    let mut c = owner_pool.acquire().await?;
    backend.migrator().run(&mut *c).await?;
    let row = sqlx::query("SELECT current_user::text AS u, current_schema()::text AS s")
        .fetch_one(&mut *c)
        .await?;
    let (owner, schema): (String, String) = (row.try_get("u")?, row.try_get("s")?);
    if owner == serving {
        tracing::warn!(
            role = %owner,
            "TOOLBELT_MIGRATE_DATABASE_URL names the serving role itself: audit_events stays writable by it"
        );
    } else {
        let (r, s) = (ident(&serving), ident(&schema));
        let grants = format!(
            "GRANT USAGE ON SCHEMA {s} TO {r};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r};
             REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_events FROM {r};
             REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM {r};"
        );
        // Names are quoted identifiers read from the server itself; nothing else is spliced.
        sqlx::raw_sql(sqlx::AssertSqlSafe(grants))
            .execute(&mut *c)
            .await?;
    }
    drop(c);
    owner_pool.close().await;
    Ok(())
}
