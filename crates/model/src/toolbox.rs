//! Toolboxes: hosts running a DTMA, or records holding remote servers.

use crate::{ToolboxId, UserId, name::Name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

str_enum!(
    /// Lifecycle of a toolbox, from provisioning to heartbeats.
    ToolboxStatus {
        PendingProvision = "pending_provision",
        Provisioning = "provisioning",
        /// Created (or joined) and waiting for its DTMA's first heartbeat.
        AwaitingHeartbeat = "awaiting_heartbeat",
        Active = "active",
        /// Missed three heartbeats; its servers' tools fail fast.
        Unresponsive = "unresponsive",
        ErrorProvisioning = "error_provisioning",
        Deprovisioning = "deprovisioning",
        Deprovisioned = "deprovisioned",
    }
);

str_enum!(
    /// How a toolbox runs servers; known once its DTMA joins (or `remote` from the start).
    ToolboxKind {
        Docker = "docker",
        Process = "process",
        /// No DTMA: holds remote (URL) servers the gateway reaches directly.
        Remote = "remote",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Toolbox {
    pub id: ToolboxId,
    #[schema(value_type = String)]
    pub name: Name,
    /// Absent for shared (admin-managed) toolboxes.
    pub owner_id: Option<UserId>,
    pub shared: bool,
    pub kind: Option<ToolboxKind>,
    pub status: ToolboxStatus,
    pub created_at: DateTime<Utc>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Where the control plane reaches its DTMA.
    pub dtma_url: Option<String>,
    /// The SHA-256 of the public key its DTMA serves TLS with (`sha256:<hex>`), pinned at
    /// join: calls to it accept that key only. Absent on plain HTTP.
    #[serde(default)]
    pub dtma_tls_pin: Option<String>,
    /// How its DTMA isolates process servers (`bubblewrap`, `user`, `none`), from its last
    /// report; absent for Docker and remote toolboxes.
    pub isolation: Option<crate::dtma::Isolation>,
    /// Registries its servers' images may come from (`docker.io`, `ghcr.io`,
    /// `localhost:5000`); empty: any. Checked at deploy and update-image, and again by the
    /// DTMA before it pulls or runs an image.
    #[serde(default)]
    pub allowed_registries: Vec<String>,
    /// The DTMA's last report: version, runtime availability, host metrics.
    pub report: Option<crate::dtma::ToolboxReport>,
}
