//! PostgreSQL with a migration owner and a serving role (`migrate_url`): the app works as
//! the serving role, which cannot UPDATE, DELETE or TRUNCATE `audit_events` — nor drop the
//! triggers that guard it — whatever SQL it sends.

use crate::audit_chain::append;
use sqlx::{AssertSqlSafe, Connection};
use toolbelt_store::{Store, StoreOptions, audit};
use toolbelt_testkit::db::TestDb;

/// `postgres://user:pw@host/db` with another user and password.
fn as_role(url: &str, role: &str, pw: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host_db = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    format!("{scheme}://{role}:{pw}@{host_db}")
}

async fn admin_sql(url: &str, sql: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_role_may_only_select_and_insert_audit_events() {
    let db = TestDb::postgres().await;
    // Unique per run: roles are cluster-wide.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 40;
    let (owner, serving) = (format!("tbo_{n:016x}"), format!("tbs_{n:016x}"));
    let dbname = db.url.rsplit_once('/').unwrap().1.to_string();
    // The owner owns the database (so the public schema is its to create in, PostgreSQL
    // 15 and later); the serving role can only connect.
    admin_sql(
        &db.url,
        &format!(
            "CREATE ROLE {owner} LOGIN PASSWORD 'owner-pw'; \
             CREATE ROLE {serving} LOGIN PASSWORD 'serving-pw'; \
             ALTER DATABASE {dbname} OWNER TO {owner}; \
             ALTER SCHEMA public OWNER TO {owner}"
        ),
    )
    .await;
    let serving_url = as_role(&db.url, &serving, "serving-pw");
    let opts = StoreOptions {
        migrate_url: Some(as_role(&db.url, &owner, "owner-pw")),
        ..StoreOptions::default()
    };
    assert!(!format!("{opts:?}").contains("owner-pw"), "{opts:?}");
    let s = Store::open(&serving_url, opts.clone()).await.unwrap();
    append(&s, 3).await;
    {
        let mut c = s.conn().await.unwrap();
        assert!(audit::verify(&mut c).await.unwrap().ok);
    }
    let mut c = sqlx::PgConnection::connect(&serving_url).await.unwrap();
    for sql in [
        "UPDATE audit_events SET outcome = 'denied' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 3",
        "TRUNCATE audit_events",
        "DROP TRIGGER audit_events_no_update ON audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    ] {
        let e = sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("permission denied") || e.contains("must be owner"),
            "{sql}: {e}"
        );
    }
    c.close().await.unwrap();
    // A second replica starting (migrations and grants again) changes nothing; the chain
    // grows and still verifies.
    let again = Store::open(&serving_url, opts).await.unwrap();
    append(&again, 2).await;
    let mut c = again.conn().await.unwrap();
    let r = audit::verify(&mut c).await.unwrap();
    assert!(r.ok && r.checked == 5, "{r:?}");
    drop(c);
    again.close().await;
    s.close().await;
    // The roles are cluster-wide: gone with what they own.
    admin_sql(
        &db.url,
        &format!(
            "ALTER DATABASE {dbname} OWNER TO CURRENT_USER; REASSIGN OWNED BY {owner} TO CURRENT_USER; \
             DROP OWNED BY {owner}; DROP OWNED BY {serving}; DROP ROLE {owner}; DROP ROLE {serving}"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_role_on_sqlite_is_refused() {
    let db = TestDb::sqlite().await;
    let e = Store::open(
        &db.url,
        StoreOptions {
            migrate_url: Some("postgres://x@127.0.0.1/x".into()),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("PostgreSQL only"), "{e}");
}
