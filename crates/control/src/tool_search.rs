//! What the control plane asks of the gateway about an agent's tools. The gateway is a
//! sibling crate, so the app hands the control plane an implementation
//! ([`crate::state::AppState::set_tool_search`]) once both are built.

use toolbelt_model::AgentId;
use toolbelt_store::discovery::ToolRef;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FoundTool {
    /// The name the agent calls it by.
    pub name: String,
    pub description: String,
    /// BM25 score: higher is a better match.
    pub score: f32,
}

#[async_trait::async_trait]
pub trait ToolSearch: Send + Sync {
    /// The agent's granted, visible tools best matching the query.
    async fn find(
        &self,
        agent: &AgentId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<FoundTool>, String>;
    /// The identity of each name as the agent sees it (None: it sees no such tool).
    async fn resolve(
        &self,
        agent: &AgentId,
        names: &[String],
    ) -> Result<Vec<Option<ToolRef>>, String>;
    /// The name the agent sees each tool under now (None: not visible to it now).
    async fn names(
        &self,
        agent: &AgentId,
        tools: &[ToolRef],
    ) -> Result<Vec<Option<String>>, String>;
}
