//! The two migration trees (`migrations/sqlite`, `migrations/postgres`) must describe one
//! schema: a fresh database of each backend, migrated, has the same tables, columns (with
//! nullability and a type class), keys, foreign keys and named indexes. A change made to
//! one tree only fails here with a readable list of the differences.
//!
//! Types are compared as classes (text, integer, blob, real, boolean) because the spelling
//! differs by backend (`BLOB`/`BYTEA`) while what the code binds is the same. Index
//! expressions (`COALESCE(owner_id, '')`) and `CHECK` constraints are backend-specific SQL
//! text, so an index is compared by name, table, uniqueness, partial-ness and its plain
//! columns (an expression shows as `(expr)`), and checks are not compared.

use sqlx::{Connection, PgConnection, SqliteConnection};
use std::collections::BTreeMap;
use toolbelt_testkit::db::TestDb;

/// Subject ("column servers.health") → description ("text not null").
type Schema = BTreeMap<String, String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_migrate_to_the_same_tables_columns_keys_and_indexes() {
    let (lite, pg) = (TestDb::sqlite().await, TestDb::postgres().await);
    crate::open(&lite).await.close().await;
    crate::open(&pg).await.close().await;
    let lite = sqlite_schema(&lite.url).await;
    let pg = postgres_schema(&pg.url).await;
    assert!(
        lite.keys().any(|k| k.starts_with("column ")) && lite.len() > 50,
        "the SQLite schema was not read: {lite:#?}"
    );
    let diff = differences(&lite, &pg);
    assert!(
        diff.is_empty(),
        "the SQLite and PostgreSQL migrations disagree ({} differences):\n  {}",
        diff.len(),
        diff.join("\n  ")
    );
}

/// One line per subject that is missing on a side or described differently.
fn differences(lite: &Schema, pg: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for (k, a) in lite {
        match pg.get(k) {
            None => out.push(format!("{k}: only in sqlite ({a})")),
            Some(b) if a != b => out.push(format!("{k}: sqlite `{a}`, postgres `{b}`")),
            Some(_) => {}
        }
    }
    for (k, b) in pg {
        if !lite.contains_key(k) {
            out.push(format!("{k}: only in postgres ({b})"));
        }
    }
    out
}

fn type_class(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    match t.as_str() {
        "text" | "character varying" | "varchar" | "character" => "text",
        "bigint" | "integer" | "int" | "smallint" | "int8" | "int4" => "integer",
        "blob" | "bytea" => "blob",
        "real" | "double precision" | "float" | "numeric" => "real",
        "boolean" | "bool" => "boolean",
        _ => return format!("other:{t}"),
    }
    .to_string()
}

fn nullability(not_null: bool) -> &'static str {
    if not_null { "not null" } else { "null" }
}

async fn sqlite_schema(url: &str) -> Schema {
    let mut c = SqliteConnection::connect(url).await.unwrap();
    let mut s = Schema::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for t in &tables {
        s.insert(format!("table {t}"), "exists".into());
        let cols: Vec<(String, String, bool, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
        )
        .bind(t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for (name, ty, not_null, pk) in cols {
            // SQLite lets a non-INTEGER primary key hold NULL (a documented legacy quirk);
            // PostgreSQL does not. Both trees declare the key, which is what counts here.
            let not_null = not_null || pk > 0;
            s.insert(
                format!("column {t}.{name}"),
                format!("{} {}", type_class(&ty), nullability(not_null)),
            );
        }
        let fks: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list(?1)",
        )
        .bind(t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for (from, other, to, on_delete) in fks {
            s.insert(
                format!("foreign key {t}.{from}"),
                format!("{other}.{to} on delete {}", on_delete.to_ascii_lowercase()),
            );
        }
        let indexes: Vec<(String, bool, String, bool)> =
            sqlx::query_as("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
                .bind(t)
                .fetch_all(&mut c)
                .await
                .unwrap();
        for (name, unique, origin, partial) in indexes {
            let cols: Vec<Option<String>> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            let cols = column_list(cols);
            match origin.as_str() {
                // Constraint-backed indexes have generated names that differ by backend.
                "pk" => s.insert(format!("primary key {t}"), cols),
                "u" => s.insert(format!("unique {t} ({cols})"), "constraint".into()),
                _ => s.insert(
                    format!("index {name}"),
                    index_description(t, unique, partial, &cols),
                ),
            };
        }
    }
    c.close().await.unwrap();
    s
}

async fn postgres_schema(url: &str) -> Schema {
    let mut c = PgConnection::connect(url).await.unwrap();
    let mut s = Schema::new();
    let cols: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
           AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for (t, name, ty, nullable) in cols {
        s.insert(format!("table {t}"), "exists".into());
        s.insert(
            format!("column {t}.{name}"),
            format!("{} {}", type_class(&ty), nullability(nullable == "NO")),
        );
    }
    // Keys and foreign keys from the catalog: (kind, table, columns, referenced, on delete).
    let constraints: Vec<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT k.contype::text, t.relname::text, \
           (SELECT string_agg(a.attname::text, ', ' ORDER BY u.ord) \
              FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum), \
           (SELECT r.relname::text || '.' || string_agg(a.attname::text, ', ' ORDER BY u.ord) \
              FROM unnest(k.confkey) WITH ORDINALITY u(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum \
              JOIN pg_class r ON r.oid = k.confrelid GROUP BY r.relname), \
           CASE k.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null' \
             WHEN 'd' THEN 'set default' WHEN 'r' THEN 'restrict' ELSE 'no action' END \
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND k.contype IN ('p', 'u', 'f') \
           AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for (kind, t, cols, referenced, on_delete) in constraints {
        match kind.as_str() {
            "p" => s.insert(format!("primary key {t}"), cols),
            "u" => s.insert(format!("unique {t} ({cols})"), "constraint".into()),
            _ => s.insert(
                format!("foreign key {t}.{cols}"),
                format!("{} on delete {on_delete}", referenced.unwrap_or_default()),
            ),
        };
    }
    let indexes: Vec<(String, String, bool, bool, String)> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, x.indisunique, x.indpred IS NOT NULL, \
           (SELECT string_agg(COALESCE(a.attname::text, '(expr)'), ', ' ORDER BY u.ord) \
              FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(attnum, ord) \
              LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.attnum) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relname <> '_sqlx_migrations' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for (name, t, unique, partial, cols) in indexes {
        s.insert(
            format!("index {name}"),
            index_description(&t, unique, partial, &cols),
        );
    }
    c.close().await.unwrap();
    s
}

fn column_list(cols: Vec<Option<String>>) -> String {
    cols.into_iter()
        .map(|c| c.unwrap_or_else(|| "(expr)".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn index_description(table: &str, unique: bool, partial: bool, cols: &str) -> String {
    format!(
        "on {table} ({cols}){}{}",
        if unique { " unique" } else { "" },
        if partial { " partial" } else { "" }
    )
}
