//! A database dump — every column of every row of every table — holds no plaintext.

use crate::{name, user, vault};
use sqlx::Row;
use toolbelt_model::Role;
use toolbelt_store::Store;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;
use toolbelt_vault::{Owner, SecretKind};

backend_tests!(a_database_dump_holds_no_plaintext);

const CANARY: &str = "canary-4b1d9e7f2a6c";

/// Every column of every row of every table, as text (blobs as hex).
pub async fn dump(s: &Store) -> String {
    let pg = s.backend() == toolbelt_store::Backend::Postgres;
    let tables_sql = if pg {
        "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    } else {
        "SELECT name AS t FROM sqlite_master WHERE type = 'table' ORDER BY 1"
    };
    let tables: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(s.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("t"))
        .collect();
    assert!(tables.iter().any(|t| t == "secrets"), "{tables:?}");
    let mut out = String::new();
    for t in tables {
        let q = if pg {
            // A row cast to text shows every column; BYTEA as \x-hex.
            format!("SELECT x::text AS r FROM \"{t}\" x")
        } else {
            let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name AS c FROM pragma_table_info('{t}')"
            )))
            .fetch_all(s.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| format!("quote(\"{}\")", r.get::<String, _>("c")))
            .collect();
            // quote() renders BLOBs as X'hex'.
            format!("SELECT {} AS r FROM \"{t}\"", cols.join(" || ',' || "))
        };
        for r in sqlx::query(sqlx::AssertSqlSafe(q))
            .fetch_all(s.pool())
            .await
            .unwrap()
        {
            out.push_str(&t);
            out.push(':');
            out.push_str(&r.get::<Option<String>, _>("r").unwrap_or_default());
            out.push('\n');
        }
    }
    out.to_lowercase()
}

async fn a_database_dump_holds_no_plaintext(db: TestDb) {
    let v = vault(&db).await;
    let ann = user(v.store(), "ann@x.io", Role::Member).await;
    let admin = user(v.store(), "root@x.io", Role::Admin).await;
    v.put(
        &ann,
        Owner::Caller,
        &name("token"),
        SecretKind::OauthToken,
        CANARY.into(),
    )
    .await
    .unwrap();
    v.put(
        &ann,
        Owner::Caller,
        &name("token"),
        SecretKind::OauthToken,
        format!("{CANARY}-v2").into(),
    )
    .await
    .unwrap();
    v.put(
        &admin,
        Owner::Shared,
        &name("client"),
        SecretKind::OauthClientSecret,
        CANARY.into(),
    )
    .await
    .unwrap();
    // A positive control: a secret's name is metadata and must show up in the dump.
    v.put(
        &ann,
        Owner::Caller,
        &name("visible-name-5e8a"),
        SecretKind::Generic,
        CANARY.into(),
    )
    .await
    .unwrap();
    assert_eq!(
        v.get(&ann, "token").await.unwrap().expose_str(),
        Some(&*format!("{CANARY}-v2"))
    );
    v.rotate().await.unwrap();

    let d = dump(v.store()).await;
    assert!(
        d.contains("visible-name-5e8a"),
        "the dump reads the secrets table"
    );
    assert!(d.lines().filter(|l| l.starts_with("secrets:")).count() == 3);
    assert!(!d.contains(CANARY), "plaintext in the dump");
    assert!(
        !d.contains(&hex::encode(CANARY)),
        "plaintext bytes in the dump"
    );
    assert!(
        !d.contains(&hex::encode(&CANARY[..12])),
        "a prefix of the plaintext in the dump"
    );
}
