//! `ask` approvals: a tool call held by its rule until the agent's owner (or an admin)
//! approves or denies it, or it times out.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use crate::state::AppState;
use serde_json::json;
use toolbelt_model::ApprovalId;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::gateway::{Approval, ApprovalStatus};
use toolbelt_store::events::Event;
use toolbelt_store::{StoreError, approvals};

/// What the owner says to a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The held call proceeds.
    Approve,
    /// The agent gets an error at once.
    Deny,
}

/// Approvals of the caller's agents (admins: all); pending ones unless `all`.
pub async fn list(st: &AppState, caller: &Caller, all: bool) -> Result<Vec<Approval>> {
    let mut c = st.store.conn().await?;
    Ok(approvals::list(&mut c, &caller.scope, !all).await?)
}

/// Decides a pending, unexpired approval of one of the caller's agents.
pub async fn decide(st: &AppState, caller: &Caller, r: &str, d: Decision) -> Result<Approval> {
    let not_found = || ServiceError::not_found(format!("approval {r}"));
    let id = ApprovalId::parse(r).ok_or_else(not_found)?;
    let mut tx = st.store.begin_audited().await?;
    let a = match approvals::get(&mut tx, &caller.scope, &id).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let (status, action) = match d {
        Decision::Approve => (ApprovalStatus::Approved, AuditAction::ApprovalApprove),
        Decision::Deny => (ApprovalStatus::Denied, AuditAction::ApprovalDeny),
    };
    let decided = approvals::decide(&mut tx, &a.id, status, caller.id().as_str()).await?;
    tx.commit(caller.event(
        action,
        TargetKind::Approval,
        &a.id,
        Some(&a.owner_id),
        json!({ "agent": a.agent_id, "server": a.server_id, "tool": a.tool }),
    ))
    .await?;
    st.store
        .publish(Event::ApprovalResolved {
            approval: decided.id.clone(),
            owner: decided.owner_id.clone(),
            status: decided.status,
        })
        .await;
    Ok(decided)
}
