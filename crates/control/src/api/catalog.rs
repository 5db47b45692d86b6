//! `/api/v1/catalog`: templates for MCP servers. Rules: [`service::catalog`].

use super::common::{CommonErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use toolbelt_model::Page;
use toolbelt_model::catalog::{CatalogEntry, CatalogSpec};
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

/// Catalog entries, by slug.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog", params(CatalogQuery),
    responses((status = 200, body = Page<CatalogEntry>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<CatalogQuery>,
) -> ApiResult<Json<Page<CatalogEntry>>> {
    let page = Paging {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(
        service::catalog::list(&st, &caller, q.include_deprecated, &page).await?,
    ))
}

/// Adds an entry (admins only).
#[utoipa::path(post, path = "/api/v1/catalog", tag = "catalog", request_body = CatalogSpec,
    responses((status = 201, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(spec): Body<CatalogSpec>,
) -> ApiResult<(StatusCode, Json<CatalogEntry>)> {
    let e = service::catalog::create(&st, &caller, spec).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// One entry, by slug or id.
#[utoipa::path(get, path = "/api/v1/catalog/{slug}", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    Ok(Json(service::catalog::get(&st, &caller, &slug).await?))
}

/// Replaces an entry (admins only). Existing servers keep running; their next deploy uses it.
#[utoipa::path(put, path = "/api/v1/catalog/{slug}", tag = "catalog", request_body = CatalogSpec,
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(slug): Path<String>,
    Body(spec): Body<CatalogSpec>,
) -> ApiResult<Json<CatalogEntry>> {
    Ok(Json(
        service::catalog::update(&st, &caller, &slug, spec).await?,
    ))
}

/// Deletes an entry no server uses (admins only).
#[utoipa::path(delete, path = "/api/v1/catalog/{slug}", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    Ok(Json(service::catalog::delete(&st, &caller, &slug).await?))
}

/// Marks an entry deprecated: existing servers keep it, new servers cannot use it.
#[utoipa::path(post, path = "/api/v1/catalog/{slug}/deprecate", tag = "catalog",
    params(("slug" = String, Path)),
    responses((status = 200, body = CatalogEntry), CommonErrors, WriteErrors))]
pub async fn deprecate(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(slug): Path<String>,
) -> ApiResult<Json<CatalogEntry>> {
    Ok(Json(
        service::catalog::deprecate(&st, &caller, &slug).await?,
    ))
}
