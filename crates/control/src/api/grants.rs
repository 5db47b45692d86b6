//! Grants: what an agent may use. The agent's owner (or an admin) grants, and only what
//! the owner can see.

use super::common::{self, CommonErrors, WriteErrors, nf};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::grant::{Grant, GrantKind, ToolRule};
use toolbelt_model::name::validate_tool_name;
use toolbelt_model::page::clamp_limit;
use toolbelt_model::{ConnectionId, GrantId, Page, Scope};
use toolbelt_store::{grants, users};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// Agent id or (your own) name.
    pub agent: String,
    /// Without `server`: a toolbox grant (every server on it). With `server`: only says
    /// which toolbox the server name is on.
    pub toolbox: Option<String>,
    /// Server id or name: a server grant (a toolbelt item), or with `tool` a tool rule.
    pub server: Option<String>,
    /// The server's own tool name.
    pub tool: Option<String>,
    /// For tool rules: `allow` (default), `deny` or `ask`.
    pub rule: Option<ToolRule>,
    /// A connection grant: the agent may act with this OAuth connection of its owner's,
    /// through `server` (or, without one, through any granted server asking for its
    /// provider).
    pub connection: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only this agent's grants (id or your own name).
    pub agent: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGrant {
    /// Switch a toolbelt item on or off.
    pub active: Option<bool>,
    /// Change a tool rule.
    pub rule: Option<ToolRule>,
}

/// Grants of the caller's agents (admins: all).
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants", params(GrantQuery),
    responses((status = 200, body = Page<Grant>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<GrantQuery>,
) -> ApiResult<Json<Page<Grant>>> {
    let mut c = st.store.conn().await?;
    let agent = match &q.agent {
        Some(a) => Some(common::agent(&mut c, &caller.scope, a).await?.id),
        None => None,
    };
    Ok(Json(
        grants::list(
            &mut c,
            &caller.scope,
            agent.as_ref(),
            clamp_limit(q.limit),
            q.cursor.as_deref(),
        )
        .await?,
    ))
}

/// Grants an agent a toolbox, a server, or a rule for one tool.
#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", request_body = CreateGrant,
    responses((status = 201, body = Grant), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<CreateGrant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let mut tx = st.store.begin_audited().await?;
    let agent = common::agent(&mut tx, &caller.scope, &req.agent)
        .await
        .map_err(|p| {
            if p.status == 404 {
                Problem::invalid("agent", format!("no agent {} of yours", req.agent))
            } else {
                p
            }
        })?;
    // Targets are resolved as the agent's owner sees them: an agent never gets more than
    // its owner could use.
    let owner = users::get(&mut tx, &agent.owner_id).await?;
    let owner_scope = Scope {
        user_id: owner.id.clone(),
        role: owner.role,
    };
    let (kind, toolbox_id, server_id, tool, rule);
    let mut connection_id = None;
    if let Some(cid) = &req.connection {
        if req.tool.is_some() || req.rule.is_some() {
            return Err(Problem::invalid(
                "connection",
                "a connection grant takes an optional server, no tool or rule",
            ));
        }
        // Only the agent owner's own connections, whoever asks (admins included).
        let conn = match ConnectionId::parse(cid) {
            Some(id) => toolbelt_store::oauth::get_connection_internal(&mut tx, &id)
                .await
                .ok()
                .filter(|c| c.owner_id == agent.owner_id),
            None => None,
        }
        .ok_or_else(|| {
            Problem::invalid(
                "connection",
                format!("no connection {cid} of the agent's owner"),
            )
        })?;
        let srv = match &req.server {
            Some(s) => Some(
                common::server(&mut tx, &owner_scope, s, req.toolbox.as_deref())
                    .await
                    .map_err(|_| {
                        Problem::invalid(
                            "server",
                            format!("no server {s} the agent's owner can use"),
                        )
                    })?
                    .id,
            ),
            None => None,
        };
        (kind, toolbox_id, server_id, tool, rule) =
            (GrantKind::Connection, None, srv, None, ToolRule::Allow);
        connection_id = Some(conn.id);
    } else {
        match (&req.server, &req.tool) {
            (None, Some(_)) => return Err(Problem::invalid("server", "is required with tool")),
            (None, None) => {
                let Some(t) = &req.toolbox else {
                    return Err(Problem::invalid(
                        "toolbox",
                        "give a toolbox, a server, or a server and a tool",
                    ));
                };
                let tb = common::toolbox(&mut tx, &owner_scope, t)
                    .await
                    .map_err(|_| {
                        Problem::invalid(
                            "toolbox",
                            format!("no toolbox {t} the agent's owner can use"),
                        )
                    })?;
                (kind, toolbox_id, server_id, tool) = (GrantKind::Toolbox, Some(tb.id), None, None);
                rule = allow_only(req.rule)?;
            }
            (Some(s), t) => {
                let srv = common::server(&mut tx, &owner_scope, s, req.toolbox.as_deref())
                    .await
                    .map_err(|p| {
                        if p.status == 404 {
                            Problem::invalid(
                                "server",
                                format!("no server {s} the agent's owner can use"),
                            )
                        } else {
                            p
                        }
                    })?;
                if let Some(t) = t {
                    validate_tool_name("tool", t)?;
                    (kind, tool, rule) = (
                        GrantKind::Tool,
                        Some(t.clone()),
                        req.rule.unwrap_or(ToolRule::Allow),
                    );
                } else {
                    (kind, tool) = (GrantKind::Server, None);
                    rule = allow_only(req.rule)?;
                }
                (toolbox_id, server_id) = (None, Some(srv.id));
            }
        }
    }
    let g = grants::create(
        &mut tx,
        grants::NewGrant {
            agent_id: &agent.id,
            kind,
            toolbox_id: toolbox_id.as_ref(),
            server_id: server_id.as_ref(),
            tool: tool.as_deref(),
            connection_id: connection_id.as_ref(),
            rule,
        },
    )
    .await?;
    tx.commit(by_user(&caller, AuditAction::GrantCreate, TargetKind::Grant, &g.id, Some(&agent.owner_id), json!({
        "agent": agent.id, "kind": kind.as_str(), "toolbox": g.toolbox_id, "server": g.server_id, "tool": g.tool, "rule": rule.as_str(), "connection": g.connection_id,
    }))).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

fn allow_only(rule: Option<ToolRule>) -> ApiResult<ToolRule> {
    match rule {
        None | Some(ToolRule::Allow) => Ok(ToolRule::Allow),
        Some(_) => Err(Problem::invalid(
            "rule",
            "deny and ask are rules for one tool; give server and tool",
        )),
    }
}

fn grant_id(r: &str) -> ApiResult<GrantId> {
    GrantId::parse(r).ok_or_else(|| Problem::not_found(format!("grant {r}")))
}

/// One grant.
#[utoipa::path(get, path = "/api/v1/grants/{grant}", tag = "grants",
    params(("grant" = String, Path)),
    responses((status = 200, body = Grant), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Grant>> {
    let id = grant_id(&r)?;
    let mut c = st.store.conn().await?;
    Ok(Json(nf(
        &format!("grant {r}"),
        grants::get(&mut c, &caller.scope, &id).await,
    )?))
}

/// Switches a toolbelt item on or off, or changes a tool rule.
#[utoipa::path(patch, path = "/api/v1/grants/{grant}", tag = "grants", request_body = UpdateGrant,
    params(("grant" = String, Path)),
    responses((status = 200, body = Grant), CommonErrors, WriteErrors))]
pub async fn update(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Body(req): Body<UpdateGrant>,
) -> ApiResult<Json<Grant>> {
    let id = grant_id(&r)?;
    let mut tx = st.store.begin_audited().await?;
    let g = nf(
        &format!("grant {r}"),
        grants::get(&mut tx, &caller.scope, &id).await,
    )?;
    if req.rule.is_some() && g.kind != GrantKind::Tool {
        return Err(Problem::invalid(
            "rule",
            "only tool rules have a rule to change",
        ));
    }
    if req.active.is_none() && req.rule.is_none() {
        return Err(Problem::invalid("body", "give active and/or rule"));
    }
    let g = grants::update(&mut tx, &caller.scope, &id, req.active, req.rule).await?;
    let owner = common::agent(&mut tx, &caller.scope, g.agent_id.as_str())
        .await?
        .owner_id;
    tx.commit(by_user(
        &caller,
        AuditAction::GrantUpdate,
        TargetKind::Grant,
        &g.id,
        Some(&owner),
        json!({ "active": g.active, "rule": g.rule.as_str() }),
    ))
    .await?;
    Ok(Json(g))
}

/// Removes a grant; it takes effect on the agent's next call.
#[utoipa::path(delete, path = "/api/v1/grants/{grant}", tag = "grants",
    params(("grant" = String, Path)),
    responses((status = 200, body = Grant), CommonErrors))]
pub async fn delete(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
) -> ApiResult<Json<Grant>> {
    let id = grant_id(&r)?;
    let mut tx = st.store.begin_audited().await?;
    let g = nf(
        &format!("grant {r}"),
        grants::get(&mut tx, &caller.scope, &id).await,
    )?;
    let owner = common::agent(&mut tx, &caller.scope, g.agent_id.as_str())
        .await?
        .owner_id;
    let g = grants::delete(&mut tx, &caller.scope, &g.id).await?;
    tx.commit(by_user(
        &caller,
        AuditAction::GrantDelete,
        TargetKind::Grant,
        &g.id,
        Some(&owner),
        json!({ "agent": g.agent_id, "kind": g.kind.as_str() }),
    ))
    .await?;
    Ok(Json(g))
}
