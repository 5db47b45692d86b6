//! Grants: what an agent may use. The agent's owner (or an admin) grants, and only what
//! the owner can see: an agent never gets more than its owner could use.

use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use super::{Paging, refs};
use crate::state::AppState;
use serde::Deserialize;
use serde_json::json;
use toolbelt_model::agent::Agent;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::grant::{Grant, GrantKind, ToolRule};
use toolbelt_model::name::validate_tool_name;
use toolbelt_model::{ConnectionId, GrantId, Page, Scope, ServerId, ToolboxId};
use toolbelt_store::{AnyConnection, grants, users};
use utoipa::ToSchema;

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGrant {
    /// Switch a toolbelt item on or off.
    pub active: Option<bool>,
    /// Change a tool rule.
    pub rule: Option<ToolRule>,
}

/// What a new grant points at, resolved as the agent's owner sees it.
struct Target {
    kind: GrantKind,
    toolbox_id: Option<ToolboxId>,
    server_id: Option<ServerId>,
    tool: Option<String>,
    connection_id: Option<ConnectionId>,
    rule: ToolRule,
}

/// Grants of the caller's agents (admins: all), optionally of one agent (id or own name).
pub async fn list(
    st: &AppState,
    caller: &Caller,
    agent: Option<&str>,
    page: &Paging,
) -> Result<Page<Grant>> {
    let mut c = st.store.conn().await?;
    let agent = match agent {
        Some(a) => Some(refs::agent(&mut c, &caller.scope, a).await?.id),
        None => None,
    };
    Ok(grants::list(
        &mut c,
        &caller.scope,
        agent.as_ref(),
        page.limit(),
        page.cursor(),
    )
    .await?)
}

/// Grants an agent a toolbox, a server, a rule for one tool, or a connection.
pub async fn create(st: &AppState, caller: &Caller, req: CreateGrant) -> Result<Grant> {
    let mut tx = st.store.begin_audited().await?;
    let agent = refs::agent(&mut tx, &caller.scope, &req.agent)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                ServiceError::invalid("agent", format!("no agent {} of yours", req.agent))
            } else {
                e
            }
        })?;
    let owner = users::get(&mut tx, &agent.owner_id).await?;
    let owner_scope = Scope {
        user_id: owner.id.clone(),
        role: owner.role,
    };
    let t = match &req.connection {
        Some(cid) => connection_target(&mut tx, &owner_scope, &agent, cid, &req).await?,
        None => resource_target(&mut tx, &owner_scope, &req).await?,
    };
    let g = grants::create(
        &mut tx,
        grants::NewGrant {
            agent_id: &agent.id,
            kind: t.kind,
            toolbox_id: t.toolbox_id.as_ref(),
            server_id: t.server_id.as_ref(),
            tool: t.tool.as_deref(),
            connection_id: t.connection_id.as_ref(),
            rule: t.rule,
        },
    )
    .await?;
    tx.commit(caller.event(AuditAction::GrantCreate, TargetKind::Grant, &g.id, Some(&agent.owner_id), json!({
        "agent": agent.id, "kind": t.kind.as_str(), "toolbox": g.toolbox_id, "server": g.server_id, "tool": g.tool, "rule": t.rule.as_str(), "connection": g.connection_id,
    }))).await?;
    Ok(g)
}

/// A connection grant: one of the agent owner's own connections (whoever asks, admins
/// included), optionally through one server.
async fn connection_target(
    c: &mut AnyConnection,
    owner_scope: &Scope,
    agent: &Agent,
    cid: &str,
    req: &CreateGrant,
) -> Result<Target> {
    if req.tool.is_some() || req.rule.is_some() {
        return Err(ServiceError::invalid(
            "connection",
            "a connection grant takes an optional server, no tool or rule",
        ));
    }
    let conn = match ConnectionId::parse(cid) {
        Some(id) => toolbelt_store::oauth::get_connection_internal(c, &id)
            .await
            .ok()
            .filter(|c| c.owner_id == agent.owner_id),
        None => None,
    }
    .ok_or_else(|| {
        ServiceError::invalid(
            "connection",
            format!("no connection {cid} of the agent's owner"),
        )
    })?;
    let server_id = match &req.server {
        Some(s) => Some(
            refs::server(c, owner_scope, s, req.toolbox.as_deref())
                .await
                .map_err(|_| {
                    ServiceError::invalid(
                        "server",
                        format!("no server {s} the agent's owner can use"),
                    )
                })?
                .id,
        ),
        None => None,
    };
    Ok(Target {
        kind: GrantKind::Connection,
        toolbox_id: None,
        server_id,
        tool: None,
        connection_id: Some(conn.id),
        rule: ToolRule::Allow,
    })
}

/// A toolbox grant, a server grant, or a tool rule.
async fn resource_target(
    c: &mut AnyConnection,
    owner_scope: &Scope,
    req: &CreateGrant,
) -> Result<Target> {
    let target = |kind, toolbox_id, server_id, tool, rule| Target {
        kind,
        toolbox_id,
        server_id,
        tool,
        connection_id: None,
        rule,
    };
    match (&req.server, &req.tool) {
        (None, Some(_)) => Err(ServiceError::invalid("server", "is required with tool")),
        (None, None) => {
            let Some(t) = &req.toolbox else {
                return Err(ServiceError::invalid(
                    "toolbox",
                    "give a toolbox, a server, or a server and a tool",
                ));
            };
            let tb = refs::toolbox(c, owner_scope, t).await.map_err(|_| {
                ServiceError::invalid(
                    "toolbox",
                    format!("no toolbox {t} the agent's owner can use"),
                )
            })?;
            let rule = allow_only(req.rule)?;
            Ok(target(GrantKind::Toolbox, Some(tb.id), None, None, rule))
        }
        (Some(s), tool) => {
            let srv = refs::server(c, owner_scope, s, req.toolbox.as_deref())
                .await
                .map_err(|e| {
                    if e.is_not_found() {
                        ServiceError::invalid(
                            "server",
                            format!("no server {s} the agent's owner can use"),
                        )
                    } else {
                        e
                    }
                })?;
            match tool {
                Some(t) => {
                    validate_tool_name("tool", t)?;
                    let rule = req.rule.unwrap_or(ToolRule::Allow);
                    Ok(target(
                        GrantKind::Tool,
                        None,
                        Some(srv.id),
                        Some(t.clone()),
                        rule,
                    ))
                }
                None => {
                    let rule = allow_only(req.rule)?;
                    Ok(target(GrantKind::Server, None, Some(srv.id), None, rule))
                }
            }
        }
    }
}

fn allow_only(rule: Option<ToolRule>) -> Result<ToolRule> {
    match rule {
        None | Some(ToolRule::Allow) => Ok(ToolRule::Allow),
        Some(_) => Err(ServiceError::invalid(
            "rule",
            "deny and ask are rules for one tool; give server and tool",
        )),
    }
}

fn grant_id(r: &str) -> Result<GrantId> {
    GrantId::parse(r).ok_or_else(|| ServiceError::not_found(format!("grant {r}")))
}

pub async fn get(st: &AppState, caller: &Caller, r: &str) -> Result<Grant> {
    let id = grant_id(r)?;
    let mut c = st.store.conn().await?;
    found(
        format!("grant {r}"),
        grants::get(&mut c, &caller.scope, &id).await,
    )
}

/// Switches a toolbelt item on or off, or changes a tool rule.
pub async fn update(st: &AppState, caller: &Caller, r: &str, req: UpdateGrant) -> Result<Grant> {
    let id = grant_id(r)?;
    let mut tx = st.store.begin_audited().await?;
    let g = found(
        format!("grant {r}"),
        grants::get(&mut tx, &caller.scope, &id).await,
    )?;
    if req.rule.is_some() && g.kind != GrantKind::Tool {
        return Err(ServiceError::invalid(
            "rule",
            "only tool rules have a rule to change",
        ));
    }
    if req.active.is_none() && req.rule.is_none() {
        return Err(ServiceError::invalid("body", "give active and/or rule"));
    }
    let g = grants::update(&mut tx, &caller.scope, &id, req.active, req.rule).await?;
    let owner = refs::agent(&mut tx, &caller.scope, g.agent_id.as_str())
        .await?
        .owner_id;
    tx.commit(caller.event(
        AuditAction::GrantUpdate,
        TargetKind::Grant,
        &g.id,
        Some(&owner),
        json!({ "active": g.active, "rule": g.rule.as_str() }),
    ))
    .await?;
    Ok(g)
}

/// Removes a grant; it takes effect on the agent's next call.
pub async fn delete(st: &AppState, caller: &Caller, r: &str) -> Result<Grant> {
    let id = grant_id(r)?;
    let mut tx = st.store.begin_audited().await?;
    let g = found(
        format!("grant {r}"),
        grants::get(&mut tx, &caller.scope, &id).await,
    )?;
    let owner = refs::agent(&mut tx, &caller.scope, g.agent_id.as_str())
        .await?
        .owner_id;
    let g = grants::delete(&mut tx, &caller.scope, &g.id).await?;
    tx.commit(caller.event(
        AuditAction::GrantDelete,
        TargetKind::Grant,
        &g.id,
        Some(&owner),
        json!({ "agent": g.agent_id, "kind": g.kind.as_str() }),
    ))
    .await?;
    Ok(g)
}
