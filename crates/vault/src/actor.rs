//! Ids of new secrets, whose namespace they go in, and who is recorded as opening them.

use toolbelt_model::audit::ActorKind;
use toolbelt_model::{AgentId, Scope};
use toolbelt_store::secrets::SecretId;

pub(crate) fn new_id() -> SecretId {
    SecretId::generate()
}

/// Whose namespace a new secret goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The caller's own (members and admins).
    Caller,
    /// The shared namespace: admins only.
    Shared,
}

/// Who decrypts and why: recorded in the `secret.decrypt` audit event.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub purpose: String,
}

impl Actor {
    /// The scope's user, through the API.
    pub fn user(scope: &Scope) -> Actor {
        Actor {
            kind: ActorKind::User,
            id: Some(scope.user_id.to_string()),
            purpose: "api".into(),
        }
    }

    /// An agent using its owner's secret (e.g. injected into an upstream call).
    pub fn agent(id: &AgentId, purpose: &str) -> Actor {
        Actor {
            kind: ActorKind::Agent,
            id: Some(id.to_string()),
            purpose: purpose.into(),
        }
    }

    /// Toolbelt itself (a deploy, a token refresh).
    pub fn system(purpose: &str) -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            purpose: purpose.into(),
        }
    }
}
