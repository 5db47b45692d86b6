//! The catalog: everyone reads it, admins write it.

use super::common::{CommonErrors, WriteErrors, nf};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::catalog::{CatalogEntry, CatalogSpec, CatalogStatus};
use toolbelt_model::page::clamp_limit;
use toolbelt_store::catalog;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Also list deprecated entries.
    #[serde(default)]
    pub include_deprecated: bool,
}

/// Validates a spec fully, including that its config schema is a usable JSON Schema.
pub fn validate(spec: &CatalogSpec) -> Result<(), Problem> {
    spec.validate()?;
    jsonschema::validator_for(&spec.config_schema).map_err(|e| {
        Problem::invalid("config_schema", format!("is not a valid JSON Schema: {e}"))
    })?;
    Ok(())
}

/// Catalog entries, by slug.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog", params(CatalogQuery),
    responses((status = 200, body = Page<CatalogEntry>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    _caller: UserCaller,
    Query(q): Query<CatalogQuery>,
) -> ApiResult<Json<Page<CatalogEntry>>> {
    let mut c = st.store.conn().await?;
    Ok(Json(
        catalog::list(
            &mut c,
            q.include_deprecated,
            clamp_limit(q.limit),
            q.cursor.as_deref(),
        )
        .await?,
    ))
}

/// Adds an entry (admins only).
#[utoipa::path(post, path = "/api/v1/catalog", tag = "catalog", request_body = CatalogSpec,
    responses((status = 201, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(spec): Body<CatalogSpec>,
) -> ApiResult<(StatusCode, Json<CatalogEntry>)> {
    caller.require_admin("write the catalog")?;
    validate(&spec)?;
    let mut tx = st.store.begin_audited().await?;
    let e = catalog::create(&mut tx, &spec).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::CatalogCreate,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": spec.slug }),
    ))
    .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// One entry, by slug or id.
#[utoipa::path(get, path = "/api/v1/catalog/{slug}", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    _caller: UserCaller,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    let mut c = st.store.conn().await?;
    Ok(Json(nf(
        &format!("catalog entry {slug}"),
        catalog::get(&mut c, &slug).await,
    )?))
}

/// Replaces an entry (admins only). Existing servers keep running; their next deploy uses it.
#[utoipa::path(put, path = "/api/v1/catalog/{slug}", tag = "catalog", request_body = CatalogSpec,
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(slug): Path<String>,
    Body(spec): Body<CatalogSpec>,
) -> ApiResult<Json<CatalogEntry>> {
    caller.require_admin("write the catalog")?;
    validate(&spec)?;
    let mut tx = st.store.begin_audited().await?;
    let current = nf(
        &format!("catalog entry {slug}"),
        catalog::get(&mut tx, &slug).await,
    )?;
    if spec.slug != current.spec.slug {
        return Err(Problem::invalid(
            "slug",
            format!("must stay {}; slugs cannot be renamed", current.spec.slug),
        ));
    }
    let e = catalog::update(&mut tx, &current.spec.slug, &spec).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::CatalogUpdate,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": spec.slug }),
    ))
    .await?;
    Ok(Json(e))
}

/// Deletes an entry no server uses (admins only).
#[utoipa::path(delete, path = "/api/v1/catalog/{slug}", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    caller.require_admin("write the catalog")?;
    let mut tx = st.store.begin_audited().await?;
    let e = nf(
        &format!("catalog entry {slug}"),
        catalog::delete(&mut tx, &slug).await,
    )?;
    tx.commit(by_user(
        &caller,
        AuditAction::CatalogDelete,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": e.spec.slug }),
    ))
    .await?;
    Ok(Json(e))
}

/// Marks an entry deprecated: existing servers keep it, new servers cannot use it.
#[utoipa::path(post, path = "/api/v1/catalog/{slug}/deprecate", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn deprecate(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    caller.require_admin("write the catalog")?;
    let mut tx = st.store.begin_audited().await?;
    let e = nf(
        &format!("catalog entry {slug}"),
        catalog::set_status(&mut tx, &slug, CatalogStatus::Deprecated).await,
    )?;
    tx.commit(by_user(
        &caller,
        AuditAction::CatalogDeprecate,
        TargetKind::Catalog,
        &e.id,
        None,
        json!({ "slug": e.spec.slug }),
    ))
    .await?;
    Ok(Json(e))
}
