//! The control plane's questions about agents' tools, answered by the gateway
//! (`toolbelt_gateway::search::api`): the two are siblings, wired here.

use std::sync::Arc;
use toolbelt_control::tool_search::{FoundTool, ToolSearch};
use toolbelt_gateway::Hub;
use toolbelt_gateway::search::api;
use toolbelt_model::AgentId;
use toolbelt_store::discovery::ToolRef;

pub struct GatewaySearch(pub Arc<Hub>);

#[async_trait::async_trait]
impl ToolSearch for GatewaySearch {
    async fn find(
        &self,
        agent: &AgentId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<FoundTool>, String> {
        let found = api::find(&self.0, agent, query, limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|f| FoundTool {
                name: f.name,
                description: f.description,
                score: f.score,
            })
            .collect())
    }

    async fn resolve(
        &self,
        agent: &AgentId,
        names: &[String],
    ) -> Result<Vec<Option<ToolRef>>, String> {
        let ids = api::resolve(&self.0, agent, names)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ids
            .into_iter()
            .map(|i| {
                i.map(|i| ToolRef {
                    toolbox_id: i.toolbox_id,
                    server_id: i.server_id,
                    tool: i.tool,
                })
            })
            .collect())
    }

    async fn names(
        &self,
        agent: &AgentId,
        tools: &[ToolRef],
    ) -> Result<Vec<Option<String>>, String> {
        let keys: Vec<_> = tools
            .iter()
            .map(|t| (t.server_id.clone(), t.tool.clone()))
            .collect();
        api::names(&self.0, agent, &keys)
            .await
            .map_err(|e| e.to_string())
    }
}
