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

/// An event about to be appended; the store assigns `seq`, `ts` and the hashes.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    /// The tenant the event belongs to: members see events of their own things.
    pub owner_id: Option<UserId>,
    /// Dotted verb, e.g. `agent.create`, `tool.call`.
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub detail: Value,
}

impl NewAuditEvent {
    pub fn new(action: &str, target_kind: &str, target_id: Option<String>) -> Self {
        NewAuditEvent {
            actor_kind: ActorKind::System,
            actor_id: None,
            owner_id: None,
            action: action.to_string(),
            target_kind: target_kind.to_string(),
            target_id,
            outcome: Outcome::Success,
            detail: json!({}),
        }
    }
}

/// A stored, chained audit event.
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
