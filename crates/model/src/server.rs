//! Server instances: a catalog entry placed on a toolbox, with desired and observed state.

use crate::{CatalogId, ServerId, ToolboxId, UserId, name::Name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

str_enum!(
    /// What the owner wants.
    DesiredState {
        Running = "running",
        Stopped = "stopped",
        Deleted = "deleted",
    }
);

str_enum!(
    /// What the toolbox last reported (or the control plane inferred).
    ServerStatus {
        PendingDeploy = "pending_deploy",
        Deploying = "deploying",
        Running = "running",
        Stopped = "stopped",
        ErrorRuntime = "error_runtime",
        PendingDelete = "pending_delete",
        Deleting = "deleting",
        /// Its toolbox stopped sending heartbeats.
        Unresponsive = "unresponsive",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Server {
    pub id: ServerId,
    #[schema(value_type = String)]
    pub name: Name,
    pub toolbox_id: ToolboxId,
    #[schema(value_type = String)]
    pub toolbox_name: Name,
    pub catalog_id: CatalogId,
    pub catalog_slug: String,
    /// The member who owns it; absent for shared servers on shared toolboxes.
    pub owner_id: Option<UserId>,
    pub shared: bool,
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Secret requirement name → name of the secret that fills it. Never values.
    pub secrets: BTreeMap<String, String>,
    pub desired: DesiredState,
    pub status: ServerStatus,
    pub last_error: Option<String>,
    pub restart_count: i64,
    /// Bumped by each restart request.
    pub generation: i64,
    /// The last health check of its toolbox (a periodic MCP ping).
    pub health: crate::dtma::Health,
    /// The image a container server is pinned to (`sha256:…`): resolved from its catalog
    /// entry's image by its toolbox at the first deploy (audited, `server.image_pinned`);
    /// restarts and re-creates run exactly it, whatever the tag points to since.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// What its toolbox last observed of the running instance.
    pub instance: Option<ServerInstance>,
    /// What the gateway's last discovery found.
    pub discovery: Option<ServerDiscovery>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The running instance behind a server, as its toolbox reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerInstance {
    pub container_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub image_digest: Option<String>,
    pub tool_count: Option<u32>,
}

/// The gateway's view of a server: its tools, and why some are hidden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerDiscovery {
    pub tools: u32,
    /// Tools hidden until an admin approves their changed definition.
    pub held: u32,
    /// The last discovery failure (a dead or slow server), if any.
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// The status a change of desired state moves a server to until its toolbox reports.
pub fn status_for_desired(desired: DesiredState, current: ServerStatus) -> ServerStatus {
    match (desired, current) {
        (DesiredState::Deleted, _) => ServerStatus::PendingDelete,
        (DesiredState::Running, ServerStatus::Running) => ServerStatus::Running,
        (DesiredState::Running, _) => ServerStatus::PendingDeploy,
        (DesiredState::Stopped, s) => s,
    }
}
