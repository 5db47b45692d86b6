//! `ask` approvals: a tool call held by its rule until the agent's owner (or an admin)
//! approves or denies it, or it times out.

use super::common::{CommonErrors, nf};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::Query;
use crate::problem::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use toolbelt_model::ApprovalId;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::gateway::{Approval, ApprovalStatus};
use toolbelt_store::approvals;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalsQuery {
    /// Include decided and expired ones too.
    #[serde(default)]
    pub all: bool,
}

/// Approvals of the caller's agents (admins: all).
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ApprovalsQuery),
    responses((status = 200, body = Vec<Approval>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ApprovalsQuery>,
) -> ApiResult<Json<Vec<Approval>>> {
    let mut c = st.store.conn().await?;
    Ok(Json(approvals::list(&mut c, &caller.scope, !q.all).await?))
}

async fn decide(
    st: &AppState,
    caller: &UserCaller,
    r: &str,
    status: ApprovalStatus,
) -> ApiResult<Json<Approval>> {
    let found = match ApprovalId::parse(r) {
        Some(id) => {
            let mut tx = st.store.begin_audited().await?;
            let a = approvals::get(&mut tx, &caller.scope, &id).await;
            a.map(|a| (tx, a))
        }
        None => Err(toolbelt_store::StoreError::NotFound),
    };
    let (mut tx, a) = nf(&format!("approval {r}"), found)?;
    let a2 = approvals::decide(&mut tx, &a.id, status, caller.id().as_str()).await?;
    let action = if status == ApprovalStatus::Approved {
        AuditAction::ApprovalApprove
    } else {
        AuditAction::ApprovalDeny
    };
    tx.commit(by_user(
        caller,
        action,
        TargetKind::Approval,
        &a.id,
        Some(&a.owner_id),
        json!({ "agent": a.agent_id, "server": a.server_id, "tool": a.tool }),
    ))
    .await?;
    Ok(Json(a2))
}

/// Lets the held call proceed.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path)), responses((status = 200, body = Approval), CommonErrors))]
pub async fn approve(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    decide(&st, &caller, &id, ApprovalStatus::Approved).await
}

/// Refuses the held call; the agent gets an error at once.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "approvals",
    params(("id" = String, Path)), responses((status = 200, body = Approval), CommonErrors))]
pub async fn deny(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Approval>> {
    decide(&st, &caller, &id, ApprovalStatus::Denied).await
}
