//! The catalog: everyone signed in reads it, admins write it.

use super::Paging;
use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use crate::state::AppState;
use serde_json::json;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::catalog::{CatalogEntry, CatalogSpec, CatalogStatus};
use toolbelt_store::catalog;

/// Validates a spec fully, including that its config schema is a usable JSON Schema.
pub fn validate(spec: &CatalogSpec) -> Result<()> {
    spec.validate()?;
    jsonschema::validator_for(&spec.config_schema).map_err(|e| {
        ServiceError::invalid("config_schema", format!("is not a valid JSON Schema: {e}"))
    })?;
    Ok(())
}

/// Entries by slug; deprecated ones only when asked for.
pub async fn list(
    st: &AppState,
    _caller: &Caller,
    include_deprecated: bool,
    page: &Paging,
) -> Result<Page<CatalogEntry>> {
    let mut c = st.store.conn().await?;
    Ok(catalog::list(&mut c, include_deprecated, page.limit(), page.cursor()).await?)
}

pub async fn create(st: &AppState, caller: &Caller, spec: CatalogSpec) -> Result<CatalogEntry> {
    caller.require_admin("write the catalog")?;
    validate(&spec)?;
    let mut tx = st.store.begin_audited().await?;
    let e = catalog::create(&mut tx, &spec).await?;
    tx.commit(caller.event(
        AuditAction::CatalogCreate,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": spec.slug }),
    ))
    .await?;
    Ok(e)
}

/// One entry, by slug or id.
pub async fn get(st: &AppState, _caller: &Caller, slug: &str) -> Result<CatalogEntry> {
    let mut c = st.store.conn().await?;
    found(
        format!("catalog entry {slug}"),
        catalog::get(&mut c, slug).await,
    )
}

/// Replaces an entry (slugs are never renamed). Servers keep running; their next deploy
/// uses it.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    slug: &str,
    spec: CatalogSpec,
) -> Result<CatalogEntry> {
    caller.require_admin("write the catalog")?;
    validate(&spec)?;
    let mut tx = st.store.begin_audited().await?;
    let current = found(
        format!("catalog entry {slug}"),
        catalog::get(&mut tx, slug).await,
    )?;
    if spec.slug != current.spec.slug {
        return Err(ServiceError::invalid(
            "slug",
            format!("must stay {}; slugs cannot be renamed", current.spec.slug),
        ));
    }
    let e = catalog::update(&mut tx, &current.spec.slug, &spec).await?;
    tx.commit(caller.event(
        AuditAction::CatalogUpdate,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": spec.slug }),
    ))
    .await?;
    Ok(e)
}

/// Deletes an entry no server uses.
pub async fn delete(st: &AppState, caller: &Caller, slug: &str) -> Result<CatalogEntry> {
    caller.require_admin("write the catalog")?;
    let mut tx = st.store.begin_audited().await?;
    let e = found(
        format!("catalog entry {slug}"),
        catalog::delete(&mut tx, slug).await,
    )?;
    tx.commit(caller.event(
        AuditAction::CatalogDelete,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": e.spec.slug }),
    ))
    .await?;
    Ok(e)
}

/// Marks an entry deprecated: existing servers keep it, new servers cannot use it.
pub async fn deprecate(st: &AppState, caller: &Caller, slug: &str) -> Result<CatalogEntry> {
    caller.require_admin("write the catalog")?;
    let mut tx = st.store.begin_audited().await?;
    let e = found(
        format!("catalog entry {slug}"),
        catalog::set_status(&mut tx, slug, CatalogStatus::Deprecated).await,
    )?;
    tx.commit(caller.event(
        AuditAction::CatalogDeprecate,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": e.spec.slug }),
    ))
    .await?;
    Ok(e)
}
