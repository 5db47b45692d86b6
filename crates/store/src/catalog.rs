//! Catalog entries. Everyone reads; the API lets only admins write.

use crate::rows::{json, now_ms, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::catalog::{CatalogEntry, CatalogSpec, CatalogStatus};
use toolbelt_model::{CatalogId, Page};

fn entry(r: &AnyRow) -> Result<CatalogEntry> {
    Ok(CatalogEntry {
        id: CatalogId::from_db(text(r, "id")?),
        spec: json(r, "spec")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn spec_json(spec: &CatalogSpec) -> String {
    serde_json::to_string(spec).expect("a catalog spec always serialises")
}

pub async fn create(c: &mut AnyConnection, spec: &CatalogSpec) -> Result<CatalogEntry> {
    let now = now_ms();
    let r = sqlx::query(
        "INSERT INTO catalog_entries (id, slug, status, spec, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING *",
    )
    .bind(CatalogId::generate().to_string())
    .bind(spec.slug.clone())
    .bind(spec.status.as_str())
    .bind(spec_json(spec))
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || format!("catalog entry {} already exists", spec.slug)))?;
    entry(&r)
}

/// Inserts unless the slug exists; true when inserted (seeding never overwrites edits).
pub async fn create_if_missing(c: &mut AnyConnection, spec: &CatalogSpec) -> Result<bool> {
    let now = now_ms();
    let n = sqlx::query(
        "INSERT INTO catalog_entries (id, slug, status, spec, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (slug) DO NOTHING",
    )
    .bind(CatalogId::generate().to_string())
    .bind(spec.slug.clone())
    .bind(spec.status.as_str())
    .bind(spec_json(spec))
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// By slug or id.
pub async fn get(c: &mut AnyConnection, slug_or_id: &str) -> Result<CatalogEntry> {
    let r = sqlx::query("SELECT * FROM catalog_entries WHERE slug = $1 OR id = $1")
        .bind(slug_or_id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    entry(&r)
}

pub async fn list(
    c: &mut AnyConnection,
    include_deprecated: bool,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<CatalogEntry>> {
    let rows = sqlx::query(
        "SELECT * FROM catalog_entries
         WHERE ($1 IS NULL OR slug > $1) AND ($2 = 1 OR status <> 'deprecated')
         ORDER BY slug LIMIT $3",
    )
    .bind(after.map(str::to_string))
    .bind(i64::from(include_deprecated))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *c)
    .await?;
    let items = rows.iter().map(entry).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |e| e.spec.slug.clone()))
}

/// Replaces the spec of an existing entry (the slug in `spec` must equal `slug`).
pub async fn update(c: &mut AnyConnection, slug: &str, spec: &CatalogSpec) -> Result<CatalogEntry> {
    let r = sqlx::query(
        "UPDATE catalog_entries SET status = $1, spec = $2, updated_at = $3
         WHERE slug = $4 RETURNING *",
    )
    .bind(spec.status.as_str())
    .bind(spec_json(spec))
    .bind(now_ms())
    .bind(slug.to_string())
    .fetch_optional(&mut *c)
    .await?
    .ok_or(StoreError::NotFound)?;
    entry(&r)
}

pub async fn set_status(
    c: &mut AnyConnection,
    slug: &str,
    status: CatalogStatus,
) -> Result<CatalogEntry> {
    let mut e = get(c, slug).await?;
    e.spec.status = status;
    update(c, &e.spec.slug.clone(), &e.spec).await
}

/// Deletes an entry no server uses; otherwise deprecate it.
pub async fn delete(c: &mut AnyConnection, slug: &str) -> Result<CatalogEntry> {
    let e = get(c, slug).await?;
    let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM servers WHERE catalog_id = $1")
        .bind(e.id.to_string())
        .fetch_one(&mut *c)
        .await?;
    if used > 0 {
        return Err(StoreError::Conflict(format!(
            "{used} server(s) use catalog entry {slug}; deprecate it instead"
        )));
    }
    sqlx::query("DELETE FROM catalog_entries WHERE id = $1")
        .bind(e.id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(e)
}
