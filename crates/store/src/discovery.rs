//! How an agent's tools are shown to it: its discovery mode (and its tokens' overrides),
//! its always-visible tools and its toolsets. Tools are stored by identity — toolbox,
//! server, the server's own tool name — so they survive a rename of the prefixed name.
//! Callers check that the agent is the caller's (these functions take an agent id).

use crate::rows::{now_ms, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::AnyConnection;
use toolbelt_model::agent::Discovery;
use toolbelt_model::{AgentId, ServerId, Timestamp, TokenId, ToolboxId};

/// A tool by identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolRef {
    pub toolbox_id: ToolboxId,
    pub server_id: ServerId,
    /// The server's own name for the tool.
    pub tool: String,
}

#[derive(Debug, Clone)]
pub struct Toolset {
    pub agent_id: AgentId,
    pub name: String,
    pub tools: Vec<ToolRef>,
    pub created_at: Timestamp,
}

pub async fn set_mode(c: &mut AnyConnection, agent: &AgentId, mode: Discovery) -> Result<()> {
    sqlx::query("UPDATE agents SET discovery = $1 WHERE id = $2")
        .bind(mode.as_str())
        .bind(agent.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Sets (or, with None, clears) a token's own discovery mode.
pub async fn set_token_mode(
    c: &mut AnyConnection,
    token: &TokenId,
    mode: Option<Discovery>,
) -> Result<()> {
    sqlx::query("UPDATE tokens SET discovery = $1 WHERE id = $2")
        .bind(mode.map(|m| m.as_str().to_string()))
        .bind(token.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn tool_ref(r: &sqlx::any::AnyRow) -> Result<ToolRef> {
    Ok(ToolRef {
        toolbox_id: ToolboxId::from_db(text(r, "toolbox_id")?),
        server_id: ServerId::from_db(text(r, "server_id")?),
        tool: text(r, "tool")?,
    })
}

pub async fn always_visible(c: &mut AnyConnection, agent: &AgentId) -> Result<Vec<ToolRef>> {
    let rows = sqlx::query(
        "SELECT toolbox_id, server_id, tool FROM agent_visible_tools WHERE agent_id = $1
         ORDER BY server_id, tool",
    )
    .bind(agent.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(tool_ref).collect()
}

/// Replaces the agent's always-visible tools.
pub async fn set_always_visible(
    c: &mut AnyConnection,
    agent: &AgentId,
    tools: &[ToolRef],
) -> Result<()> {
    sqlx::query("DELETE FROM agent_visible_tools WHERE agent_id = $1")
        .bind(agent.to_string())
        .execute(&mut *c)
        .await?;
    for t in dedup(tools) {
        sqlx::query(
            "INSERT INTO agent_visible_tools (agent_id, toolbox_id, server_id, tool, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(agent.to_string())
        .bind(t.toolbox_id.to_string())
        .bind(t.server_id.to_string())
        .bind(t.tool.clone())
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

fn dedup(tools: &[ToolRef]) -> Vec<&ToolRef> {
    let mut seen = std::collections::HashSet::new();
    tools.iter().filter(|t| seen.insert(*t)).collect()
}

pub async fn create_toolset(
    c: &mut AnyConnection,
    agent: &AgentId,
    name: &str,
    tools: &[ToolRef],
) -> Result<Toolset> {
    let r = sqlx::query(
        "INSERT INTO toolsets (agent_id, name, created_at) VALUES ($1, $2, $3) RETURNING *",
    )
    .bind(agent.to_string())
    .bind(name.to_string())
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("the agent already has a toolset named {name}")
        })
    })?;
    for t in dedup(tools) {
        sqlx::query(
            "INSERT INTO toolset_tools (agent_id, toolset, toolbox_id, server_id, tool)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(agent.to_string())
        .bind(name.to_string())
        .bind(t.toolbox_id.to_string())
        .bind(t.server_id.to_string())
        .bind(t.tool.clone())
        .execute(&mut *c)
        .await?;
    }
    Ok(Toolset {
        agent_id: agent.clone(),
        name: name.to_string(),
        tools: tools.to_vec(),
        created_at: ts(&r, "created_at")?,
    })
}

/// The agent's toolsets, by name.
pub async fn toolsets(c: &mut AnyConnection, agent: &AgentId) -> Result<Vec<Toolset>> {
    let sets = sqlx::query("SELECT * FROM toolsets WHERE agent_id = $1 ORDER BY name")
        .bind(agent.to_string())
        .fetch_all(&mut *c)
        .await?;
    let tools = sqlx::query(
        "SELECT toolset, toolbox_id, server_id, tool FROM toolset_tools WHERE agent_id = $1
         ORDER BY toolset, server_id, tool",
    )
    .bind(agent.to_string())
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(sets.len());
    for s in &sets {
        let name = text(s, "name")?;
        let mut members = Vec::new();
        for t in &tools {
            if text(t, "toolset")? == name {
                members.push(tool_ref(t)?);
            }
        }
        out.push(Toolset {
            agent_id: agent.clone(),
            name,
            tools: members,
            created_at: ts(s, "created_at")?,
        });
    }
    Ok(out)
}

/// Deletes a toolset with its tools; `NotFound` when the agent has none of that name.
pub async fn delete_toolset(c: &mut AnyConnection, agent: &AgentId, name: &str) -> Result<Toolset> {
    let found = toolsets(c, agent)
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or(StoreError::NotFound)?;
    // Members first (they hang off the toolset by name, not by a foreign key).
    sqlx::query("DELETE FROM toolset_tools WHERE agent_id = $1 AND toolset = $2")
        .bind(agent.to_string())
        .bind(name.to_string())
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM toolsets WHERE agent_id = $1 AND name = $2")
        .bind(agent.to_string())
        .bind(name.to_string())
        .execute(&mut *c)
        .await?;
    Ok(found)
}
