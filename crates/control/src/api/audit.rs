//! The audit log: list with filters, verify the chain.

use super::common::{self, CommonErrors};
use crate::auth::UserCaller;
use crate::extract::Query;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditEvent, Outcome, VerifyReport};
use toolbelt_model::page::clamp_limit;
use toolbelt_store::audit;
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
    caller: UserCaller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    let mut c = st.store.conn().await?;
    let involving = match &q.agent {
        Some(a) => Some(
            common::agent(&mut c, &caller.scope, a)
                .await?
                .id
                .to_string(),
        ),
        None => None,
    };
    let before = match &q.cursor {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| Problem::invalid("cursor", "is not a cursor from this list"))?,
        ),
        None => None,
    };
    let f = audit::Filter {
        actor_id: q.actor.clone(),
        action: q.action.clone(),
        target_id: q.target.clone(),
        involving,
        outcome: q.outcome,
        since_ms: q.since.map(|t| t.timestamp_millis()),
        until_ms: q.until.map(|t| t.timestamp_millis()),
    };
    Ok(Json(
        audit::list(&mut c, &caller.scope, &f, clamp_limit(q.limit), before).await?,
    ))
}

/// Walks the whole hash chain and names the first broken event (admins only).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport, description = "The report; `ok` is false when the chain is broken"), CommonErrors))]
pub async fn verify(
    State(st): State<AppState>,
    caller: UserCaller,
) -> ApiResult<Json<VerifyReport>> {
    caller.require_admin("verify the audit chain")?;
    let mut c = st.store.conn().await?;
    Ok(Json(audit::verify(&mut c).await?))
}
