//! The contract between the control plane and a toolbox's DTMA: join, heartbeat, the
//! desired set, deploy requests and observed state. Both sides (and other hosts) speak it.

use crate::catalog::{
    CatalogSource, ResourceLimits, SecretRequirement, Transport, validate_env_name,
};
use crate::error::{Checker, Invalid};
use crate::name::{Name, SHORT_NAME_MAX, validate_path_component};
use crate::server::{DesiredState, ServerStatus};
use crate::toolbox::ToolboxKind;
use crate::{ServerId, ToolboxId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /api/v1/dtma/join`: a one-time join token for a lasting credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinRequest {
    pub join_token: String,
    /// Where the control plane reaches this DTMA (`http://10.0.0.5:8871`).
    pub advertise_url: String,
    pub runtime: ToolboxKind,
    pub version: String,
    /// The SHA-256 of the public key the DTMA serves TLS with (`sha256:<hex>`): the
    /// control plane pins it (absent: plain HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_pin: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinResponse {
    pub toolbox_id: ToolboxId,
    pub toolbox_name: String,
    /// The DTMA → control plane credential (`tbd_…`); stored hashed at the control plane.
    pub credential: String,
    /// Verifies the control plane's signed calls (Ed25519, base64url).
    pub control_public_key: String,
    pub heartbeat_interval_ms: u64,
}

/// One server as its toolbox must run it. Carries no secret values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesiredServer {
    pub id: ServerId,
    pub name: String,
    /// Bumped by a restart request: a new generation means "recreate".
    pub generation: i64,
    pub desired: DesiredState,
    pub source: CatalogSource,
    pub transport: Transport,
    pub port: Option<u16>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: Vec<SecretRequirement>,
    #[serde(default)]
    pub limits: ResourceLimits,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// The catalog entry's egress (empty: no network for a sandboxed process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<String>,
    /// The image a container server is pinned to (`sha256:…`, the image ID its toolbox
    /// resolved at the first deploy): restarts and re-creates run exactly it, whatever
    /// its tag points to since. Absent until the toolbox has reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Its toolbox's registry allow-list (empty: any): the DTMA refuses to pull or run an
    /// image from another registry, whatever the control plane checked before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_registries: Vec<String>,
}

/// Whether `s` is an image digest as the DTMA pins them: `sha256:` and 64 lowercase hex.
pub fn is_image_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `POST /v1/images/resolve` on the DTMA: the image an explicit update moves a server
/// to — `digest` if given (an image of `image`'s repository, on the toolbox or in its
/// registry), else `image` resolved afresh (its tag pulled again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveImageRequest {
    /// The catalog entry's image reference.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The toolbox's registry allow-list (empty: any), checked before any pull.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_registries: Vec<String>,
}

/// The DTMA's answer: the image ID (`sha256:…`) the server is to be pinned to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveImageResponse {
    pub image_digest: String,
}

impl DesiredServer {
    /// What both ends check before acting on a desired server: the id and name become
    /// directory names on the toolbox and every secret name a file name, so each must be
    /// a single plain path component (and the usual name rules hold).
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        if ServerId::parse(self.id.as_str()).is_none() {
            c.fail("server.id", "must be a server id (srv_…)");
        }
        c.check(validate_path_component("server.id", self.id.as_str()));
        c.check(Name::parse("server.name", &self.name, SHORT_NAME_MAX));
        c.check(validate_path_component("server.name", &self.name));
        for (i, s) in self.secrets.iter().enumerate() {
            let field = format!("server.secrets[{i}].name");
            c.check(validate_path_component(&field, &s.name));
            c.check(validate_env_name(&field, &s.name));
        }
        if let Some(d) = &self.image_digest
            && !is_image_digest(d)
        {
            c.fail("server.image_digest", "must be sha256: and 64 hex digits");
        }
        c.finish()
    }
}

/// `POST /v1/servers` on the DTMA: what to run, with the secret values it needs. Values
/// are held in memory only, written to the DTMA's tmpfs, never logged.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployRequest {
    pub server: DesiredServer,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for DeployRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployRequest")
            .field("server", &self.server)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

str_enum!(
    Health {
        Ok = "ok",
        Failing = "failing",
        Unknown = "unknown",
    }
);

/// One server as the DTMA sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ObservedServer {
    pub id: ServerId,
    pub name: String,
    pub generation: i64,
    pub status: ServerStatus,
    pub health: Health,
    pub restarts: i64,
    pub last_error: Option<String>,
    pub container_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub image_digest: Option<String>,
    pub tool_count: Option<u32>,
    /// CPU and memory of its process or container, in the reports the DTMA sampled them
    /// for (about every 30 s; never from DTMAs older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<ServerStats>,
}

/// A server's resource use at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerStats {
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SystemMetrics {
    pub cpu_percent: f64,
    pub load1: f64,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub disk_used_bytes: u64,
    pub disk_total_bytes: u64,
    /// The DTMA process's own resident memory.
    pub dtma_rss_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuntimeState {
    pub kind: ToolboxKind,
    /// False while the container engine does not answer; the DTMA keeps running.
    pub available: bool,
    pub detail: Option<String>,
    /// How the process runtime isolates servers (absent for Docker, and in reports of
    /// DTMAs older than the sandbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// Isolation `none`, and an admin let servers run anyway (`TOOLBELT_ALLOW_UNSANDBOXED=1`
    /// on the DTMA): audited by the control plane when it first sees it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsandboxed_allowed: bool,
}

str_enum!(
    /// How the process runtime keeps a server from the host (detected at the DTMA's start).
    Isolation {
        /// A bubblewrap sandbox: own mount, PID, IPC and (unless asked) network namespaces,
        /// a read-only system, private `/tmp` and home, no view of the DTMA's files.
        Bubblewrap = "bubblewrap",
        /// No namespaces: a dedicated unprivileged user per server with a scratch working
        /// directory (the DTMA runs as root without a usable bubblewrap).
        User = "user",
        /// Nothing: servers run as the DTMA's own user; refused unless an admin opts in.
        None = "none",
    }
);

/// What the control plane keeps of a toolbox's last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolboxReport {
    pub version: String,
    pub runtime: RuntimeState,
    pub system: SystemMetrics,
}

/// `POST /api/v1/dtma/heartbeat` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatReport {
    pub version: String,
    pub advertise_url: String,
    pub runtime: RuntimeState,
    pub system: SystemMetrics,
    pub servers: Vec<ObservedServer>,
    /// The key the DTMA serves TLS with now, as at join (pinned from it when the toolbox
    /// has no pin yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_pin: Option<String>,
}

/// The heartbeat reply: the full desired set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatReply {
    pub desired: Vec<DesiredServer>,
    pub heartbeat_interval_ms: u64,
}

/// `POST /api/v1/dtma/secrets`: the values a server needs, fetched when (re)creating it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretsRequest {
    pub server_id: ServerId,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretsResponse {
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretsResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SecretsResponse({:?})",
            self.secrets.keys().collect::<Vec<_>>()
        )
    }
}

/// Per-server discovery, as `GET /v1/discovery` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Discovery {
    pub name: String,
    pub transport: Transport,
    pub protocol_version: Option<String>,
    #[schema(value_type = Object)]
    pub capabilities: Value,
    pub server_info: Option<Value>,
    pub tool_count: Option<u32>,
    pub health: Health,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> DesiredServer {
        serde_json::from_value(serde_json::json!({
            "id": "srv_01aaaaaaaaaaaaaaaaaaaaaaaa", "name": "fx", "generation": 1,
            "desired": "running", "transport": "stdio", "port": null,
            "source": { "type": "image", "image": "x" },
            "secrets": [{ "name": "API_KEY" }]
        }))
        .unwrap()
    }

    #[test]
    fn a_desired_server_carries_no_path() {
        assert!(server().validate().is_ok());
        let mut s = server();
        s.secrets[0].name = "../x".into();
        let e = s.validate().unwrap_err();
        assert!(
            e.0.iter().all(|f| f.field == "server.secrets[0].name"),
            "{e}"
        );
        let mut s = server();
        s.name = "../x".into();
        assert!(s.validate().is_err());
        let mut s = server();
        s.id = ServerId::from_db("../../etc".into());
        assert!(s.validate().unwrap_err().to_string().contains("server.id"));
    }
}
