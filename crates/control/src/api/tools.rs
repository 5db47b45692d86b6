//! Tool definition changes: an upstream that changes a tool's name, description,
//! schemas or annotations gets that tool hidden until an admin approves the new
//! definition here. Rejecting keeps the old pin (and the changed tool hidden).

use super::common::{CommonErrors, nf};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::Query;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use toolbelt_model::ToolChangeId;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::gateway::{ChangeStatus, Pin, ToolChange};
use toolbelt_store::{pins, servers};
use utoipa::{IntoParams, ToSchema};

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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Include decided changes too.
    #[serde(default)]
    pub all: bool,
}

async fn view(st: &AppState, c: ToolChange) -> ApiResult<ChangeView> {
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

/// Tool definitions waiting for a decision (admins).
#[utoipa::path(get, path = "/api/v1/tools/changes", tag = "tools", params(ChangesQuery),
    responses((status = 200, body = Vec<ChangeView>), CommonErrors))]
pub async fn changes(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<Json<Vec<ChangeView>>> {
    caller.require_admin("review tool changes")?;
    let mut c = st.store.conn().await?;
    let list = pins::changes(&mut c, !q.all).await?;
    drop(c);
    let mut out = Vec::with_capacity(list.len());
    for ch in list {
        out.push(view(&st, ch).await?);
    }
    Ok(Json(out))
}

async fn decide(
    st: &AppState,
    caller: &UserCaller,
    r: &str,
    approve: bool,
) -> ApiResult<Json<ChangeView>> {
    caller.require_admin("decide on tool changes")?;
    let id =
        &ToolChangeId::parse(r).ok_or_else(|| Problem::not_found(format!("tool change {r}")))?;
    let mut tx = st.store.begin_audited().await?;
    let ch = nf(
        &format!("tool change {id}"),
        pins::get_change(&mut tx, id).await,
    )?;
    if ch.status != ChangeStatus::Pending {
        return Err(Problem::conflict(format!(
            "tool change {id} was already {}",
            ch.status
        )));
    }
    if approve {
        let pin = Pin {
            server_id: ch.server_id.clone(),
            tool: ch.tool.clone(),
            hash: ch.new_hash.clone(),
            definition: ch.new_definition.clone(),
            flags: ch.flags.clone(),
        };
        pins::set(&mut tx, &pin, Some(caller.id().as_str())).await?;
    }
    let status = if approve {
        ChangeStatus::Approved
    } else {
        ChangeStatus::Rejected
    };
    pins::decide(&mut tx, id, status, caller.id().as_str()).await?;
    let owner = servers::get_internal(&mut tx, &ch.server_id)
        .await
        .ok()
        .and_then(|s| s.owner_id);
    let action = if approve {
        AuditAction::ToolApprove
    } else {
        AuditAction::ToolReject
    };
    tx.commit(by_user(
        caller,
        action,
        TargetKind::Tool,
        format!("{}/{}", ch.server_id, ch.tool),
        owner.as_ref(),
        json!({ "change": id, "new_hash": ch.new_hash }),
    ))
    .await?;
    let mut c = st.store.conn().await?;
    let ch = pins::get_change(&mut c, id).await?;
    drop(c);
    Ok(Json(view(st, ch).await?))
}

/// Approves a changed definition: it becomes the pin and the tool reappears (admins).
#[utoipa::path(post, path = "/api/v1/tools/changes/{id}/approve", tag = "tools",
    params(("id" = String, Path)), responses((status = 200, body = ChangeView), CommonErrors))]
pub async fn approve(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ChangeView>> {
    decide(&st, &caller, &id, true).await
}

/// Rejects a changed definition: the old pin stays, the tool stays hidden (admins).
#[utoipa::path(post, path = "/api/v1/tools/changes/{id}/reject", tag = "tools",
    params(("id" = String, Path)), responses((status = 200, body = ChangeView), CommonErrors))]
pub async fn reject(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ChangeView>> {
    decide(&st, &caller, &id, false).await
}
