//! The gateway's records: pinned tool definitions, changes waiting for approval, and
//! `ask` approvals.

use crate::{AgentId, ApprovalId, ServerId, ToolChangeId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

str_enum!(
    /// Where a changed tool definition stands.
    ChangeStatus {
        /// Waiting for an admin; the tool stays hidden.
        Pending = "pending",
        /// The new definition became the pin.
        Approved = "approved",
        /// The old pin stays; the changed tool stays hidden.
        Rejected = "rejected",
    }
);

str_enum!(
    /// What a pin (and a held change) is of: everything the gateway forwards of a server
    /// that a model reads is pinned the same way.
    #[derive(Default)]
    PinKind {
        #[default]
        Tool = "tool",
        Prompt = "prompt",
        /// Keyed by its `uriTemplate` (names of templates need not be unique).
        ResourceTemplate = "resource_template",
    }
);

str_enum!(
    /// Where a held `ask` call stands.
    ApprovalStatus {
        Pending = "pending",
        Approved = "approved",
        Denied = "denied",
        /// Nobody decided before it timed out.
        Expired = "expired",
    }
);

/// A pinned tool definition: what agents are shown until an admin approves a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pin {
    pub server_id: ServerId,
    #[serde(default)]
    pub kind: PinKind,
    /// The tool's or prompt's name, or the template's `uriTemplate`.
    pub tool: String,
    pub hash: String,
    pub definition: serde_json::Value,
    pub flags: Vec<String>,
}

/// A tool (prompt, resource template) definition that differs from its pin: it stays
/// hidden until approved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ToolChange {
    pub id: ToolChangeId,
    pub server_id: ServerId,
    /// What changed: a tool, a prompt or a resource template.
    #[serde(default)]
    pub kind: PinKind,
    /// Its name (a resource template's `uriTemplate`).
    pub tool: String,
    pub old_hash: Option<String>,
    pub new_hash: String,
    #[schema(value_type = Object)]
    pub old_definition: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub new_definition: serde_json::Value,
    /// Findings of the description scan (hidden instructions, invisible Unicode, …).
    pub flags: Vec<String>,
    pub status: ChangeStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A held `ask` call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: ApprovalId,
    pub agent_id: AgentId,
    pub owner_id: UserId,
    pub server_id: ServerId,
    pub tool: String,
    /// The call's arguments, shown to whoever decides.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    pub status: ApprovalStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}
