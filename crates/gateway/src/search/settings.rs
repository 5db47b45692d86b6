//! An agent's discovery settings, read from the store with its grants (and cached with
//! them, so a change made through the API shows on the next request).

use super::lens::Settings;
use toolbelt_model::agent::Discovery;
use toolbelt_model::{AgentId, Scope, UserId};
use toolbelt_store::{AnyConnection, StoreError, agents, discovery};

pub async fn load(c: &mut AnyConnection, agent: &AgentId) -> Result<Settings, StoreError> {
    let admin = Scope {
        user_id: UserId::from_db(String::new()),
        role: toolbelt_model::Role::Admin,
    };
    let mode = match agents::get(c, &admin, agent).await {
        Ok(a) => a.discovery,
        Err(StoreError::NotFound) => Discovery::All,
        Err(e) => return Err(e),
    };
    let key = |t: discovery::ToolRef| (t.server_id, t.tool);
    let always_visible = discovery::always_visible(c, agent)
        .await?
        .into_iter()
        .map(key)
        .collect();
    let toolsets = discovery::toolsets(c, agent)
        .await?
        .into_iter()
        .map(|s| (s.name, s.tools.into_iter().map(key).collect()))
        .collect();
    Ok(Settings {
        mode,
        always_visible,
        toolsets,
    })
}
