//! Toolboxes: members create private ones, admins shared ones; join tokens let a DTMA in.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use super::{Paging, refs};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::name::{Name, SHORT_NAME_MAX};
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::toolbox::{Toolbox, ToolboxKind, ToolboxStatus};
use toolbelt_model::{Page, ToolboxId, now, registry};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::toolboxes;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToolbox {
    pub name: String,
    /// Shared toolboxes (admins only) are visible to every member.
    #[serde(default)]
    pub shared: bool,
    /// `remote` for a toolbox that only holds remote (URL) servers and runs no DTMA.
    pub kind: Option<ToolboxKind>,
    /// Registries its servers' images may come from (`ghcr.io`, `localhost:5000`; Docker
    /// Hub is `docker.io`); empty or absent: any.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
}

/// A change of a toolbox's settings; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateToolbox {
    /// Replaces the registry allow-list (`[]`: any registry again).
    #[serde(default)]
    pub allowed_registries: Option<Vec<String>>,
}

/// The allow-list as kept, refused for a remote toolbox (it runs no images).
fn allowed_registries(kind: Option<ToolboxKind>, given: &[String]) -> Result<Vec<String>> {
    let list = registry::normalize("allowed_registries", given)?;
    if !list.is_empty() && kind == Some(ToolboxKind::Remote) {
        return Err(ServiceError::invalid(
            "allowed_registries",
            "a remote toolbox runs no images",
        ));
    }
    Ok(list)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JoinToken {
    /// Give to `toolbelt dtma --join-token`. Works once; shown once.
    pub token: String,
    pub toolbox_id: ToolboxId,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Whether the caller may change this toolbox (and deploy on it): its owner, or an admin
/// (shared toolboxes are the admins').
pub fn may_manage(caller: &Caller, t: &Toolbox) -> bool {
    caller.is_admin() || t.owner_id.as_ref() == Some(caller.id())
}

/// The caller's toolboxes and the shared ones (admins: all).
pub async fn list(st: &AppState, caller: &Caller, page: &Paging) -> Result<Page<Toolbox>> {
    let mut c = st.store.conn().await?;
    Ok(toolboxes::list(&mut c, &caller.scope, page.limit(), page.cursor()).await?)
}

/// Creates a toolbox, private to the caller unless `shared` (admins only).
pub async fn create(st: &AppState, caller: &Caller, req: CreateToolbox) -> Result<Toolbox> {
    let name = Name::parse("name", &req.name, SHORT_NAME_MAX)?;
    if req.shared {
        caller.require_admin("create shared toolboxes")?;
    }
    let owner = (!req.shared).then(|| caller.id().clone());
    let status = match req.kind {
        Some(ToolboxKind::Remote) => ToolboxStatus::Active,
        Some(_) => {
            return Err(ServiceError::invalid(
                "kind",
                "only 'remote' can be chosen; docker and process are reported by the DTMA when it joins",
            ));
        }
        None => ToolboxStatus::AwaitingHeartbeat,
    };
    let allowed = allowed_registries(req.kind, &req.allowed_registries)?;
    let mut tx = st.store.begin_audited().await?;
    let mut t = toolboxes::create(&mut tx, &name, owner.as_ref(), req.kind, status).await?;
    if !allowed.is_empty() {
        t = toolboxes::set_allowed_registries(&mut tx, &t.id, &allowed).await?;
    }
    tx.commit(caller.event(
        AuditAction::ToolboxCreate,
        TargetKind::Toolbox,
        &t.id,
        owner.as_ref(),
        json!({ "name": name, "shared": req.shared, "allowed_registries": allowed }),
    ))
    .await?;
    Ok(t)
}

/// Changes a toolbox's settings (its owner, or an admin); audited with the old and new
/// values. Servers already running keep running until re-created: their DTMA then
/// refuses an image the new list does not allow.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    r: &str,
    req: UpdateToolbox,
) -> Result<Toolbox> {
    let mut tx = st.store.begin_audited().await?;
    let t = refs::toolbox(&mut tx, &caller.scope, r).await?;
    if !may_manage(caller, &t) {
        return Err(ServiceError::forbidden(
            "only admins may change shared toolboxes",
        ));
    }
    let Some(given) = req.allowed_registries else {
        return Ok(t);
    };
    let allowed = allowed_registries(t.kind, &given)?;
    let updated = toolboxes::set_allowed_registries(&mut tx, &t.id, &allowed).await?;
    tx.commit(caller.event(
        AuditAction::ToolboxUpdate,
        TargetKind::Toolbox,
        &t.id,
        t.owner_id.as_ref(),
        json!({ "name": t.name, "old_allowed_registries": t.allowed_registries,
            "allowed_registries": allowed }),
    ))
    .await?;
    Ok(updated)
}

/// One toolbox, by id or name.
pub async fn get(st: &AppState, caller: &Caller, r: &str) -> Result<Toolbox> {
    let mut c = st.store.conn().await?;
    refs::toolbox(&mut c, &caller.scope, r).await
}

/// Deletes an empty toolbox (its owner, or an admin).
pub async fn delete(st: &AppState, caller: &Caller, r: &str) -> Result<Toolbox> {
    let mut tx = st.store.begin_audited().await?;
    let t = refs::toolbox(&mut tx, &caller.scope, r).await?;
    if !may_manage(caller, &t) {
        return Err(ServiceError::forbidden(
            "only admins may delete shared toolboxes",
        ));
    }
    let t = toolboxes::delete(&mut tx, &caller.scope, &t.id).await?;
    tx.commit(caller.event(
        AuditAction::ToolboxDelete,
        TargetKind::Toolbox,
        &t.id,
        t.owner_id.as_ref(),
        json!({ "name": t.name }),
    ))
    .await?;
    Ok(t)
}

/// A one-time token for the toolbox's DTMA to join with (not for remote toolboxes).
pub async fn join_token(st: &AppState, caller: &Caller, r: &str) -> Result<JoinToken> {
    let mut tx = st.store.begin_audited().await?;
    let t = refs::toolbox(&mut tx, &caller.scope, r).await?;
    if !may_manage(caller, &t) {
        return Err(ServiceError::forbidden(
            "only admins may let a DTMA join a shared toolbox",
        ));
    }
    if t.kind == Some(ToolboxKind::Remote) {
        return Err(ServiceError::conflict(
            "a remote toolbox runs no DTMA; it needs no join token",
        ));
    }
    let expires_at =
        now() + chrono::TimeDelta::from_std(st.config.join_token_ttl).unwrap_or_default();
    let issued = token::issue(TokenKind::Join);
    let info = tokens::insert(
        &mut tx,
        TokenKind::Join,
        &issued.digest,
        &Subject::Toolbox(t.id.clone()),
        "join",
        Some(expires_at),
    )
    .await?;
    tx.commit(caller.event(
        AuditAction::ToolboxJoinToken,
        TargetKind::Toolbox,
        &t.id,
        t.owner_id.as_ref(),
        json!({ "token_id": info.id }),
    ))
    .await?;
    Ok(JoinToken {
        token: issued.secret.clone(),
        toolbox_id: t.id,
        expires_at,
    })
}
