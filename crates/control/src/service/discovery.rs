//! How an agent's tools are shown to it: its discovery mode, always-visible tools and
//! toolsets, and searching its tools. The agent's owner (or an admin) manages them. Tools
//! are named as the agent sees them (`server__tool`) and stored by identity; a name the
//! agent does not see (ungranted, denied, held, or no such tool) is refused.

use super::caller::Caller;
use super::error::{Result, ServiceError, found};
use super::refs;
use crate::state::AppState;
use crate::tool_search::FoundTool;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::agent::{Agent, Discovery};
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::name::{LONG_NAME_MAX, Name};
use toolbelt_store::discovery::{self, ToolRef};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    pub discovery: Option<Discovery>,
    /// Replaces the always-visible tools (names as the agent sees them).
    pub always_visible: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDiscovery {
    pub agent: Agent,
    /// Listed directly in `search` mode, by their current names (a tool the agent no
    /// longer sees is left out until it does again).
    pub always_visible: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToolset {
    pub name: String,
    /// Names as the agent sees them.
    pub tools: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Toolset {
    pub name: String,
    /// Its MCP endpoint's path (`/mcp/toolsets/NAME`; the agent's token).
    pub path: String,
    /// Current names of its tools the agent sees now.
    pub tools: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: toolbelt_model::Timestamp,
}

/// Names to identities; the first name the agent does not see is an invalid field.
async fn resolve(
    st: &AppState,
    agent: &Agent,
    field: &str,
    names: &[String],
) -> Result<Vec<ToolRef>> {
    let refs = st
        .tool_search()?
        .resolve(&agent.id, names)
        .await
        .map_err(ServiceError::unavailable)?;
    names
        .iter()
        .zip(refs)
        .enumerate()
        .map(|(i, (n, r))| {
            r.ok_or_else(|| {
                ServiceError::invalid(
                    &format!("{field}[{i}]"),
                    format!(
                        "{n}: the agent has no tool of that name (it must be granted and not held)"
                    ),
                )
            })
        })
        .collect()
}

async fn names_of(st: &AppState, agent: &Agent, tools: &[ToolRef]) -> Result<Vec<String>> {
    let names = st
        .tool_search()?
        .names(&agent.id, tools)
        .await
        .map_err(ServiceError::unavailable)?;
    Ok(names.into_iter().flatten().collect())
}

/// The agent with its always-visible tools.
pub async fn get(st: &AppState, caller: &Caller, r: &str) -> Result<AgentDiscovery> {
    let mut c = st.store.conn().await?;
    let agent = refs::agent(&mut c, &caller.scope, r).await?;
    let tools = discovery::always_visible(&mut c, &agent.id).await?;
    drop(c);
    let always_visible = names_of(st, &agent, &tools).await?;
    Ok(AgentDiscovery {
        agent,
        always_visible,
    })
}

/// Sets the agent's discovery mode and (or) its always-visible tools.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    r: &str,
    req: UpdateAgent,
) -> Result<AgentDiscovery> {
    let agent = {
        let mut c = st.store.conn().await?;
        refs::agent(&mut c, &caller.scope, r).await?
    };
    let visible = match &req.always_visible {
        Some(names) => Some(resolve(st, &agent, "always_visible", names).await?),
        None => None,
    };
    let mut tx = st.store.begin_audited().await?;
    if let Some(mode) = req.discovery {
        discovery::set_mode(&mut tx, &agent.id, mode).await?;
    }
    if let Some(v) = &visible {
        discovery::set_always_visible(&mut tx, &agent.id, v).await?;
    }
    tx.commit(caller.event(
        AuditAction::AgentUpdate,
        TargetKind::Agent,
        &agent.id,
        Some(&agent.owner_id),
        json!({ "discovery": req.discovery, "always_visible": req.always_visible }),
    ))
    .await?;
    get(st, caller, agent.id.as_str()).await
}

fn shown(st: &discovery::Toolset, tools: Vec<String>) -> Toolset {
    Toolset {
        path: format!("/mcp/toolsets/{}", st.name),
        name: st.name.clone(),
        tools,
        created_at: st.created_at,
    }
}

pub async fn list_toolsets(st: &AppState, caller: &Caller, r: &str) -> Result<Vec<Toolset>> {
    let mut c = st.store.conn().await?;
    let agent = refs::agent(&mut c, &caller.scope, r).await?;
    let sets = discovery::toolsets(&mut c, &agent.id).await?;
    drop(c);
    let mut out = Vec::with_capacity(sets.len());
    for s in &sets {
        out.push(shown(s, names_of(st, &agent, &s.tools).await?));
    }
    Ok(out)
}

pub async fn create_toolset(
    st: &AppState,
    caller: &Caller,
    r: &str,
    req: CreateToolset,
) -> Result<Toolset> {
    let name = Name::parse("name", &req.name, LONG_NAME_MAX)?;
    if req.tools.is_empty() {
        return Err(ServiceError::invalid(
            "tools",
            "a toolset needs at least one tool",
        ));
    }
    let agent = {
        let mut c = st.store.conn().await?;
        refs::agent(&mut c, &caller.scope, r).await?
    };
    let tools = resolve(st, &agent, "tools", &req.tools).await?;
    let mut tx = st.store.begin_audited().await?;
    let set = discovery::create_toolset(&mut tx, &agent.id, name.as_str(), &tools).await?;
    tx.commit(caller.event(
        AuditAction::ToolsetCreate,
        TargetKind::Agent,
        &agent.id,
        Some(&agent.owner_id),
        json!({ "toolset": name, "tools": req.tools }),
    ))
    .await?;
    let names = names_of(st, &agent, &set.tools).await?;
    Ok(shown(&set, names))
}

pub async fn delete_toolset(
    st: &AppState,
    caller: &Caller,
    r: &str,
    toolset: &str,
) -> Result<Toolset> {
    let mut tx = st.store.begin_audited().await?;
    let agent = refs::agent(&mut tx, &caller.scope, r).await?;
    let set = found(
        format!("toolset {toolset}"),
        discovery::delete_toolset(&mut tx, &agent.id, toolset).await,
    )?;
    tx.commit(caller.event(
        AuditAction::ToolsetDelete,
        TargetKind::Agent,
        &agent.id,
        Some(&agent.owner_id),
        json!({ "toolset": toolset }),
    ))
    .await?;
    Ok(shown(&set, Vec::new()))
}

/// The agent's tools best matching a query (what `find_tools` would answer it).
pub async fn find_tools(
    st: &AppState,
    caller: &Caller,
    r: &str,
    q: &str,
    limit: Option<u32>,
) -> Result<Vec<FoundTool>> {
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ServiceError::invalid("limit", "must be 1-100"));
    }
    if q.trim().is_empty() {
        return Err(ServiceError::invalid("q", "say what the tool should do"));
    }
    let agent = {
        let mut c = st.store.conn().await?;
        refs::agent(&mut c, &caller.scope, r).await?
    };
    st.tool_search()?
        .find(&agent.id, q, limit as usize)
        .await
        .map_err(ServiceError::unavailable)
}
