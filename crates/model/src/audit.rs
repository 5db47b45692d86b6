//! Audit events and their hash chain: `hash = SHA-256(prev_hash ‖ canonical(event))`.

use crate::{UserId, canonical};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

str_enum!(
    ActorKind {
        User = "user",
        Agent = "agent",
        Toolbox = "toolbox",
        System = "system",
        /// A caller whose credentials were rejected: recorded for failures only.
        Anonymous = "anonymous",
    }
);

str_enum!(
    Outcome {
        Success = "success",
        /// The caller was not allowed to do it.
        Denied = "denied",
        /// It was allowed but did not succeed (validation, conflict, upstream error).
        Failure = "failure",
    }
);

str_enum!(
    /// Every audited action, by its stable dotted name (`agent.create`). These strings are
    /// stored in the hash chain, filtered on (`?action=agent` matches a prefix) and shown:
    /// never rename one; add a variant instead.
    AuditAction {
        SessionLogin = "session.login",
        /// Failed logins from one client address over one window, summed up in one event
        /// (the chain grows by windows and addresses, not by attempts).
        SessionLoginFailure = "session.login.failure",
        SessionLogout = "session.logout",
        /// A user set their own password.
        UserPassword = "user.password",
        UserCreate = "user.create",
        UserDelete = "user.delete",
        /// An admin changed a user's role.
        UserRole = "user.role",
        /// A user's own API token.
        TokenIssue = "token.issue",
        TokenRevoke = "token.revoke",
        ToolboxCreate = "toolbox.create",
        ToolboxDelete = "toolbox.delete",
        /// A toolbox's settings changed (its registry allow-list).
        ToolboxUpdate = "toolbox.update",
        ToolboxJoinToken = "toolbox.join_token",
        /// A DTMA exchanged its join token.
        ToolboxJoin = "toolbox.join",
        /// A failed heartbeat (successful ones are not audited).
        ToolboxHeartbeat = "toolbox.heartbeat",
        /// A toolbox heartbeat again after being silent or new.
        ToolboxActive = "toolbox.active",
        ToolboxUnresponsive = "toolbox.unresponsive",
        /// A toolbox's DTMA has no sandbox for process servers and an admin let them run
        /// anyway (`TOOLBELT_ALLOW_UNSANDBOXED`): recorded when it first reports so.
        ToolboxUnsandboxed = "toolbox.unsandboxed",
        CatalogCreate = "catalog.create",
        CatalogUpdate = "catalog.update",
        CatalogDelete = "catalog.delete",
        CatalogDeprecate = "catalog.deprecate",
        /// The seed catalog written on first start.
        CatalogSeed = "catalog.seed",
        ServerCreate = "server.create",
        ServerDelete = "server.delete",
        ServerStart = "server.start",
        ServerStop = "server.stop",
        ServerRestart = "server.restart",
        /// A deleted server's toolbox confirmed it gone.
        ServerRemoved = "server.removed",
        /// A server's toolbox reported it failing.
        ServerError = "server.error",
        /// A server was pinned to the image digest its toolbox resolved at the first deploy.
        ServerImagePinned = "server.image_pinned",
        /// A server was moved to another image digest by an explicit update (old and new
        /// digest in the detail); its container is re-created on it.
        ServerUpdateImage = "server.update_image",
        AgentCreate = "agent.create",
        AgentDelete = "agent.delete",
        AgentTokenIssue = "agent.token.issue",
        AgentTokenRevoke = "agent.token.revoke",
        /// An agent's discovery mode or always-visible tools changed.
        AgentUpdate = "agent.update",
        ToolsetCreate = "toolset.create",
        ToolsetDelete = "toolset.delete",
        GrantCreate = "grant.create",
        GrantUpdate = "grant.update",
        GrantDelete = "grant.delete",
        /// An agent's tool call through the gateway.
        ToolCall = "tool.call",
        /// An agent's `prompts/get` through the gateway.
        PromptGet = "prompt.get",
        /// An agent's `resources/read` through the gateway.
        ResourceRead = "resource.read",
        /// An agent's `completion/complete` through the gateway.
        CompletionComplete = "completion.complete",
        /// A pinned tool's definition changed upstream (the tool is hidden).
        ToolChanged = "tool.changed",
        /// A tool first seen with suspicious flags, held for review.
        ToolHeld = "tool.held",
        ToolApprove = "tool.approve",
        ToolReject = "tool.reject",
        /// A call held by an `ask` rule.
        ApprovalRequest = "approval.request",
        ApprovalApprove = "approval.approve",
        ApprovalDeny = "approval.deny",
        SecretCreate = "secret.create",
        SecretUpdate = "secret.update",
        SecretDelete = "secret.delete",
        SecretDecrypt = "secret.decrypt",
        /// Secret values handed to a toolbox for one server.
        SecretDeliver = "secret.deliver",
        VaultRotate = "vault.rotate",
        VaultKeyAdd = "vault.key.add",
        VaultKeyDelete = "vault.key.delete",
        ProviderCreate = "provider.create",
        ProviderDelete = "provider.delete",
        /// A connection flow was asked for (recorded when that fails).
        ConnectionStart = "connection.start",
        ConnectionCreate = "connection.create",
        /// A connection re-authorized by its owner: new tokens on the same connection.
        ConnectionReconnect = "connection.reconnect",
        ConnectionRefresh = "connection.refresh",
        ConnectionRevoke = "connection.revoke",
        /// An LLM endpoint for chat was added or removed.
        LlmCreate = "llm.create",
        LlmDelete = "llm.delete",
        /// An agent's chat settings (endpoint, model, system prompt, limits) were set.
        AgentChat = "agent.chat",
        ChatCreate = "chat.create",
        ChatDelete = "chat.delete",
        /// One turn of a conversation: the LLM calls and tool steps, with model and usage.
        ChatTurn = "chat.turn",
        /// A user approved (or refused) an MCP client acting as one of their agents.
        McpClientConsent = "mcp_client.consent",
        /// A refresh token was presented twice: its whole token family is revoked.
        McpClientReplay = "mcp_client.replay",
        /// A token of an MCP client revoked (RFC 7009).
        McpClientRevoke = "mcp_client.revoke",
        /// An admin had the chain's head signed into the checkpoint file now (periodic
        /// checkpoints are not audited: each would call for the next).
        AuditCheckpoint = "audit.checkpoint",
        /// A verification against signed checkpoints that was refused (failures only).
        AuditVerify = "audit.verify",
        /// A failed write to a route that has no action of its own.
        Request = "request",
    }
);

str_enum!(
    /// What an audit event is about; its `target_id` is an id of this kind.
    TargetKind {
        User = "user",
        Token = "token",
        Toolbox = "toolbox",
        Catalog = "catalog",
        Server = "server",
        Agent = "agent",
        Grant = "grant",
        /// `<server id>/<tool name>`.
        Tool = "tool",
        /// `<server id>/<prompt name>` (the server's own name).
        Prompt = "prompt",
        /// `<server id>/<uri>`.
        Resource = "resource",
        Approval = "approval",
        Secret = "secret",
        Vault = "vault",
        /// A key-encryption key of the vault.
        Kek = "kek",
        Provider = "provider",
        Connection = "connection",
        Llm = "llm",
        Chat = "chat",
        /// A client of Toolbelt's authorization server (its `client_id`).
        McpClient = "mcp_client",
        /// A signed checkpoint of the audit chain (its id: the sequence number signed).
        Checkpoint = "checkpoint",
        /// A route without an action of its own (failures only).
        Route = "route",
    }
);

impl AuditAction {
    /// What an agent asked of an upstream through the gateway: many, group-committed,
    /// and never published one by one as live updates.
    pub fn is_agent_request(self) -> bool {
        matches!(
            self,
            AuditAction::ToolCall
                | AuditAction::PromptGet
                | AuditAction::ResourceRead
                | AuditAction::CompletionComplete
        )
    }
}

/// An event about to be appended; the store assigns `seq`, `ts` and the hashes.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    /// The tenant the event belongs to: members see events of their own things.
    pub owner_id: Option<UserId>,
    pub action: AuditAction,
    pub target_kind: TargetKind,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub detail: Value,
}

impl NewAuditEvent {
    /// A success by the system itself; set the actor and detail as needed.
    pub fn new(action: AuditAction, target_kind: TargetKind, target_id: Option<String>) -> Self {
        NewAuditEvent {
            actor_kind: ActorKind::System,
            actor_id: None,
            owner_id: None,
            action,
            target_kind,
            target_id,
            outcome: Outcome::Success,
            detail: json!({}),
        }
    }
}

/// A stored, chained audit event. `action` and `target_kind` are the stored text, not
/// [`AuditAction`]/[`TargetKind`]: the log is history, hashed byte for byte, and must stay
/// readable by a binary that does not know an action a newer one wrote.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub ts: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub owner_id: Option<UserId>,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    /// Canonical JSON text exactly as hashed.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields that are hashed, in the form the store holds them (so verification needs
/// nothing but the row).
pub struct ChainFields<'a> {
    pub seq: i64,
    pub ts_ms: i64,
    pub actor_kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: &'a str,
}

impl ChainFields<'_> {
    pub fn canonical(&self) -> String {
        canonical::to_string(&json!({
            "seq": self.seq,
            "ts": self.ts_ms,
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id,
            "owner_id": self.owner_id,
            "action": self.action,
            "target_kind": self.target_kind,
            "target_id": self.target_id,
            "outcome": self.outcome,
            "detail": self.detail,
        }))
    }

    pub fn hash(&self, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }
}

/// Result of walking the chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Events checked.
    pub checked: i64,
    /// The head recorded outside the audit table.
    pub head_seq: i64,
    /// The first row that does not verify, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Signed checkpoints compared (`audit verify --checkpoint`), when any were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints_checked: Option<i64>,
    /// The last event a matching signed checkpoint vouches for (with checkpoints given):
    /// events after it are covered by the chain alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_through: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(detail: &str) -> ChainFields<'_> {
        ChainFields {
            seq: 1,
            ts_ms: 1_700_000_000_000,
            actor_kind: "user",
            actor_id: Some("usr_x"),
            owner_id: None,
            action: "agent.create",
            target_kind: "agent",
            target_id: Some("agt_y"),
            outcome: "success",
            detail,
        }
    }

    #[test]
    fn every_action_and_target_kind_round_trips_through_its_one_spelling() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
            assert!(seen.insert(a.as_str()), "{a} is spelled twice");
        }
        for k in TargetKind::ALL {
            assert_eq!(TargetKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
        }
        // The stored spellings scripts filter on stay what they were.
        assert_eq!(AuditAction::AgentTokenIssue.as_str(), "agent.token.issue");
        assert_eq!(AuditAction::ToolboxJoinToken.as_str(), "toolbox.join_token");
        assert_eq!(TargetKind::Kek.as_str(), "kek");
    }

    #[test]
    fn hash_covers_prev_hash_and_every_field() {
        let base = fields("{}").hash(GENESIS_HASH);
        assert_eq!(base.len(), 64);
        assert_ne!(base, fields("{}").hash(&"1".repeat(64)));
        assert_ne!(base, fields(r#"{"a":1}"#).hash(GENESIS_HASH));
        let mut f = fields("{}");
        f.owner_id = Some("usr_z");
        assert_ne!(base, f.hash(GENESIS_HASH));
    }
}
