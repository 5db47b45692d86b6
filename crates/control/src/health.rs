//! Liveness, readiness, metrics and the OpenAPI document.

use crate::auth::{Auth, Principal};
use crate::problem::{ApiResult, Kind, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;
use std::sync::OnceLock;
use toolbelt_model::Role;
use toolbelt_model::token::TokenDigest;
use utoipa::ToSchema;

/// `{"status": "ok"}`. Named apart in the document: the `Health` schema is a server's.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Probe)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health),
    (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(st): State<AppState>) -> ApiResult<Json<Health>> {
    st.store.ready().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        Problem::new(Kind::Unavailable, "the database is not ready")
    })?;
    Ok(Json(Health { status: "ready" }))
}

/// A request to `/metrics` that presented `TOOLBELT_METRICS_TOKEN` (set by the middleware,
/// which then resolves no user from it).
#[derive(Debug, Clone, Copy)]
pub struct Scraper;

/// Whether `headers` carry the configured scrape token (compared as digests, in constant
/// time).
pub fn is_scraper(st: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(want) = &st.config.metrics_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, t)| TokenDigest::of(t.trim()).matches(&want.hash))
}

/// Prometheus metrics (text exposition format). Anyone gets the process's own; an admin
/// (API token or dashboard session) or a scraper with `TOOLBELT_METRICS_TOKEN` also gets
/// the tool calls, whose labels name agents, servers and tools.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(
    State(st): State<AppState>,
    auth: Option<Extension<Auth>>,
    scraper: Option<Extension<Scraper>>,
) -> impl IntoResponse {
    let admin = matches!(auth.as_deref(), Some(Auth::Caller(Principal::User(u))) if u.scope.role == Role::Admin);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.encode(admin || scraper.is_some()),
    )
}

pub(crate) static OPENAPI: OnceLock<String> = OnceLock::new();

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json")))]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.get().cloned().unwrap_or_default(),
    )
}
