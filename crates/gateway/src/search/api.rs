//! What the control plane asks the gateway about an agent's tools (the REST API's
//! `find-tools`, and turning the names a user types into tool identities for toolsets
//! and always-visible tools). Answered from the agent's own view: a user can name, find
//! and collect only tools the agent is granted and that are not held.

use super::lens::Lens;
use super::meta;
use crate::Hub;
use crate::error::CallError;
use toolbelt_model::{AgentId, ServerId, ToolboxId};

/// A tool as found for an agent.
pub struct FoundTool {
    pub name: String,
    pub description: String,
    pub score: f32,
}

/// A tool by identity, as the store keeps it.
pub struct Identity {
    pub toolbox_id: ToolboxId,
    pub server_id: ServerId,
    pub tool: String,
}

pub async fn find(
    hub: &Hub,
    agent: &AgentId,
    query: &str,
    limit: usize,
) -> Result<Vec<FoundTool>, CallError> {
    let view = crate::handler::view_of(hub, agent).await?;
    Ok(meta::find(hub, &view, &Lens::All, query, limit)
        .into_iter()
        .map(|f| FoundTool {
            name: f.tool.name.to_string(),
            description: f
                .tool
                .tool()
                .description
                .as_deref()
                .unwrap_or("")
                .to_string(),
            score: f.score,
        })
        .collect())
}

/// The identity of each name as the agent sees it now (None: it sees no such tool).
pub async fn resolve(
    hub: &Hub,
    agent: &AgentId,
    names: &[String],
) -> Result<Vec<Option<Identity>>, CallError> {
    let view = crate::handler::view_of(hub, agent).await?;
    Ok(names
        .iter()
        .map(|n| {
            view.lookup(n).map(|e| Identity {
                toolbox_id: e.server.toolbox_id.clone(),
                server_id: e.server.id.clone(),
                tool: e.tool().name.to_string(),
            })
        })
        .collect())
}

/// The name the agent sees each tool under now (None: not visible to it now).
pub async fn names(
    hub: &Hub,
    agent: &AgentId,
    tools: &[(ServerId, String)],
) -> Result<Vec<Option<String>>, CallError> {
    let view = crate::handler::view_of(hub, agent).await?;
    Ok(tools
        .iter()
        .map(|(s, t)| view.by_identity(s, t).map(|e| e.name.to_string()))
        .collect())
}
