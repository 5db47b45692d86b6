//! Grants: what an agent may use. Deny by default.
//!
//! A toolbox grant allows every server on it; a server grant (a toolbelt item, with an
//! active flag) every tool of that server; tool rules refine either, keyed by the
//! server's own tool name.

use crate::{AgentId, ConnectionId, GrantId, ServerId, ToolboxId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

str_enum!(
    GrantKind {
        Toolbox = "toolbox",
        Server = "server",
        Tool = "tool",
        /// The agent may act with one of its owner's OAuth connections, through one server
        /// (or, without a server, through any granted server that asks for its provider).
        Connection = "connection",
    }
);

str_enum!(
    ToolRule {
        Allow = "allow",
        Deny = "deny",
        /// Hold the call until the owner approves it, or time out.
        Ask = "ask",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub id: GrantId,
    pub agent_id: AgentId,
    pub kind: GrantKind,
    pub toolbox_id: Option<ToolboxId>,
    pub server_id: Option<ServerId>,
    /// The server's own tool name (tool rules only).
    pub tool: Option<String>,
    /// The OAuth connection (connection grants only).
    pub connection_id: Option<ConnectionId>,
    pub rule: ToolRule,
    /// Toolbelt items can be switched off without losing them.
    pub active: bool,
    pub created_at: DateTime<Utc>,
}
