//! `/api/v1/audit`: list with filters, verify the chain (alone or against signed
//! checkpoints), the audit key's public half, a checkpoint now. Rules: [`service::audit`].

use super::common::{CommonErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service;
use crate::service::audit::{AuditKeyInfo, VerifyRequest};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditEvent, Outcome, VerifyReport};
use toolbelt_model::audit_checkpoint::Checkpoint;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (events are listed newest first).
    pub cursor: Option<String>,
    /// Events by or about this agent (id or your own agent's name).
    pub agent: Option<String>,
    /// Events by this actor id.
    pub actor: Option<String>,
    /// An action (`agent.create`) or a prefix of one (`agent`).
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<Outcome>,
    /// RFC 3339 time: events at or after it.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339 time: events before it.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Audit events, newest first. Members see the events of their own things.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    let f = service::audit::Filter {
        limit: q.limit,
        cursor: q.cursor,
        agent: q.agent,
        actor: q.actor,
        action: q.action,
        target: q.target,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
    };
    Ok(Json(service::audit::list(&st, &caller, &f).await?))
}

/// Walks the whole hash chain and names the first broken event (admins only).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport, description = "The report; `ok` is false when the chain is broken"), CommonErrors))]
pub async fn verify(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(service::audit::verify(&st, &caller).await?))
}

/// Walks the chain and compares it with signed checkpoints' hashes (admins only): a chain
/// rewritten and re-hashed consistently, or cut, fails here though it passes `GET`. Check
/// the checkpoints' signatures yourself first (`toolbelt audit verify --checkpoint` does).
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit", request_body = VerifyRequest,
    responses((status = 200, body = VerifyReport, description = "The report; `ok` is false when the chain is broken or differs from a checkpoint"), CommonErrors, WriteErrors))]
pub async fn verify_against(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<VerifyRequest>,
) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(
        service::audit::verify_against(&st, &caller, &req.checkpoints).await?,
    ))
}

/// The audit key's public half (Ed25519, base64url) and the checkpoint file (admins only).
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = AuditKeyInfo), CommonErrors))]
pub async fn public_key(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<AuditKeyInfo>> {
    Ok(Json(service::audit::public_key(&st, &caller)?))
}

/// Signs the chain's head into the checkpoint file now and returns the line (admins only).
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = Checkpoint), CommonErrors, WriteErrors))]
pub async fn checkpoint(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<Checkpoint>> {
    Ok(Json(service::audit::checkpoint(&st, &caller).await?))
}
