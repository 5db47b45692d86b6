//! Tool definition changes: an upstream that changes a tool's name, description,
//! schemas or annotations gets that tool hidden until an admin approves the new
//! definition. Rejecting keeps the old pin (and the changed tool hidden). Prompts and
//! resource templates are held and decided the same way (a change's `kind` says which).

use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use crate::state::AppState;
use serde::Serialize;
use serde_json::{Value, json};
use toolbelt_model::ToolChangeId;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::gateway::{ChangeStatus, Pin, PinKind, ToolChange};
use toolbelt_store::{pins, servers};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldDiff {
    /// `description`, `inputSchema`, `annotations`, …
    pub field: String,
    #[schema(value_type = Object)]
    pub old: Value,
    #[schema(value_type = Object)]
    pub new: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    #[serde(flatten)]
    pub change: ToolChange,
    pub server_name: String,
    /// Field by field, what changed.
    pub diff: Vec<FieldDiff>,
}

/// An admin's decision on a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The new definition becomes the pin and the tool reappears.
    Approve,
    /// The old pin stays, the tool stays hidden.
    Reject,
}

/// The fields of two definitions that differ.
pub fn diff(old: Option<&Value>, new: &Value) -> Vec<FieldDiff> {
    let empty = serde_json::Map::new();
    let o = old.and_then(Value::as_object).unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| FieldDiff {
            field: k.clone(),
            old: o.get(k).cloned().unwrap_or(Value::Null),
            new: n.get(k).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

async fn view(st: &AppState, c: ToolChange) -> Result<ChangeView> {
    let mut conn = st.store.conn().await?;
    let name = servers::get_internal(&mut conn, &c.server_id)
        .await
        .map(|s| s.name.to_string())
        .unwrap_or_default();
    let d = diff(c.old_definition.as_ref(), &c.new_definition);
    Ok(ChangeView {
        change: c,
        server_name: name,
        diff: d,
    })
}

/// Changes waiting for a decision, or (with `all`) every change (admins).
pub async fn changes(st: &AppState, caller: &Caller, all: bool) -> Result<Vec<ChangeView>> {
    caller.require_admin("review tool changes")?;
    let mut c = st.store.conn().await?;
    let list = pins::changes(&mut c, !all).await?;
    drop(c);
    let mut out = Vec::with_capacity(list.len());
    for ch in list {
        out.push(view(st, ch).await?);
    }
    Ok(out)
}

/// Decides a pending change (admins); a decided one is a conflict.
pub async fn decide(
    st: &AppState,
    caller: &Caller,
    r: &str,
    decision: Decision,
) -> Result<ChangeView> {
    caller.require_admin("decide on tool changes")?;
    let id = &ToolChangeId::parse(r)
        .ok_or_else(|| ServiceError::not_found(format!("tool change {r}")))?;
    let mut tx = st.store.begin_audited().await?;
    let ch = found(
        format!("tool change {id}"),
        pins::get_change(&mut tx, id).await,
    )?;
    if ch.status != ChangeStatus::Pending {
        return Err(ServiceError::conflict(format!(
            "tool change {id} was already {}",
            ch.status
        )));
    }
    let (status, action) = match decision {
        Decision::Approve => {
            let pin = Pin {
                server_id: ch.server_id.clone(),
                kind: ch.kind,
                tool: ch.tool.clone(),
                hash: ch.new_hash.clone(),
                definition: ch.new_definition.clone(),
                flags: ch.flags.clone(),
            };
            pins::set(&mut tx, &pin, Some(caller.id().as_str())).await?;
            (ChangeStatus::Approved, AuditAction::ToolApprove)
        }
        Decision::Reject => (ChangeStatus::Rejected, AuditAction::ToolReject),
    };
    pins::decide(&mut tx, id, status, caller.id().as_str()).await?;
    let owner = servers::get_internal(&mut tx, &ch.server_id)
        .await
        .ok()
        .and_then(|s| s.owner_id);
    let target = match ch.kind {
        PinKind::Tool => TargetKind::Tool,
        PinKind::Prompt => TargetKind::Prompt,
        PinKind::ResourceTemplate => TargetKind::Resource,
    };
    tx.commit(caller.event(
        action,
        target,
        format!("{}/{}", ch.server_id, ch.tool),
        owner.as_ref(),
        json!({ "change": id, "kind": ch.kind, "new_hash": ch.new_hash }),
    ))
    .await?;
    let mut c = st.store.conn().await?;
    let ch = pins::get_change(&mut c, id).await?;
    drop(c);
    view(st, ch).await
}
