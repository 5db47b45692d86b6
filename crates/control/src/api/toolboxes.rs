//! Toolboxes: members create private ones, admins shared ones; join tokens let a DTMA in.

use super::common::{self, CommonErrors, ListQuery, WriteErrors};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::name::{Name, SHORT_NAME_MAX};
use toolbelt_model::page::clamp_limit;
use toolbelt_model::token::{self, TokenKind};
use toolbelt_model::toolbox::{Toolbox, ToolboxKind, ToolboxStatus};
use toolbelt_model::{Page, now};
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
}

/// Whether the caller may change this toolbox: its owner, or an admin.
pub fn may_manage(caller: &UserCaller, t: &Toolbox) -> bool {
    caller.is_admin() || t.owner_id.as_ref() == Some(caller.id())
}

/// Toolboxes the caller can see: their own and the shared ones (admins: all).
#[utoipa::path(get, path = "/api/v1/toolboxes", tag = "toolboxes", params(ListQuery),
    responses((status = 200, body = Page<Toolbox>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Toolbox>>> {
    let mut c = st.store.conn().await?;
    Ok(Json(
        toolboxes::list(
            &mut c,
            &caller.scope,
            clamp_limit(q.limit),
            q.cursor.as_deref(),
        )
        .await?,
    ))
}

/// Creates a toolbox. Private to the caller unless `shared` (admins only).
#[utoipa::path(post, path = "/api/v1/toolboxes", tag = "toolboxes", request_body = CreateToolbox,
    responses((status = 201, body = Toolbox), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<CreateToolbox>,
) -> ApiResult<(StatusCode, Json<Toolbox>)> {
    let name = Name::parse("name", &req.name, SHORT_NAME_MAX)?;
    if req.shared {
        caller.require_admin("create shared toolboxes")?;
    }
    let owner = (!req.shared).then(|| caller.id().clone());
    let status = match req.kind {
        Some(ToolboxKind::Remote) => ToolboxStatus::Active,
        Some(_) => {
            return Err(Problem::invalid(
                "kind",
                "only 'remote' can be chosen; docker and process are reported by the DTMA when it joins",
            ));
        }
        None => ToolboxStatus::AwaitingHeartbeat,
    };
    let mut tx = st.store.begin_audited().await?;
    let t = toolboxes::create(&mut tx, &name, owner.as_ref(), req.kind, status).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::ToolboxCreate,
        TargetKind::Toolbox,
        &t.id,
        owner.as_ref(),
        json!({ "name": name, "shared": req.shared }),
    ))
    .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// One toolbox, by id or name.
#[utoipa::path(get, path = "/api/v1/toolboxes/{toolbox}", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    responses((status = 200, body = Toolbox), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Toolbox>> {
    let mut c = st.store.conn().await?;
    Ok(Json(common::toolbox(&mut c, &caller.scope, &r).await?))
}

/// Deletes an empty toolbox.
#[utoipa::path(delete, path = "/api/v1/toolboxes/{toolbox}", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    responses((status = 200, body = Toolbox), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Toolbox>> {
    let mut tx = st.store.begin_audited().await?;
    let t = common::toolbox(&mut tx, &caller.scope, &r).await?;
    if !may_manage(&caller, &t) {
        return Err(Problem::forbidden(
            "only admins may delete shared toolboxes",
        ));
    }
    let t = toolboxes::delete(&mut tx, &caller.scope, &t.id).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::ToolboxDelete,
        TargetKind::Toolbox,
        &t.id,
        t.owner_id.as_ref(),
        json!({ "name": t.name }),
    ))
    .await?;
    Ok(Json(t))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JoinToken {
    /// Give to `toolbelt dtma --join-token`. Works once; shown once.
    pub token: String,
    pub toolbox_id: toolbelt_model::ToolboxId,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Issues a one-time join token for the toolbox's DTMA.
#[utoipa::path(post, path = "/api/v1/toolboxes/{toolbox}/join-token", tag = "toolboxes",
    params(("toolbox" = String, Path, description = "Toolbox id or name")),
    responses((status = 201, body = JoinToken), CommonErrors, WriteErrors))]
pub async fn join_token(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<(StatusCode, Json<JoinToken>)> {
    let mut tx = st.store.begin_audited().await?;
    let t = common::toolbox(&mut tx, &caller.scope, &r).await?;
    if !may_manage(&caller, &t) {
        return Err(Problem::forbidden(
            "only admins may let a DTMA join a shared toolbox",
        ));
    }
    if t.kind == Some(ToolboxKind::Remote) {
        return Err(Problem::conflict(
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
    tx.commit(by_user(
        &caller,
        AuditAction::ToolboxJoinToken,
        TargetKind::Toolbox,
        &t.id,
        t.owner_id.as_ref(),
        json!({ "token_id": info.id }),
    ))
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinToken {
            token: issued.secret.clone(),
            toolbox_id: t.id,
            expires_at,
        }),
    ))
}
