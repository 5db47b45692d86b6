//! Who asks a service: a signed-in user, with the credential they came with. The REST
//! layer builds one from the request's token or session cookie (`auth::SignedIn`), and so
//! will the dashboard; a caller of another kind (the chat runtime acting for its owner)
//! adds a [`Credential`] variant. Services never see headers or cookies.

use super::error::{Result, ServiceError};
use serde_json::Value;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::{Scope, TokenId, UserId};

#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub credential: Credential,
}

/// What the caller signed in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer API token (the CLI, scripts).
    ApiToken(TokenId),
    /// A dashboard session (its cookie).
    Session(TokenId),
}

impl Caller {
    pub fn id(&self) -> &UserId {
        &self.scope.user_id
    }

    pub fn is_admin(&self) -> bool {
        self.scope.is_admin()
    }

    /// Forbidden unless an admin: "only admins may {what}".
    pub fn require_admin(&self, what: &str) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::forbidden(format!("only admins may {what}")))
        }
    }

    /// The token this caller presented.
    pub fn token_id(&self) -> &TokenId {
        match &self.credential {
            Credential::ApiToken(t) | Credential::Session(t) => t,
        }
    }

    /// The dashboard session, when the caller came through one.
    pub fn session(&self) -> Option<&TokenId> {
        match &self.credential {
            Credential::Session(t) => Some(t),
            Credential::ApiToken(_) => None,
        }
    }

    /// A success event by this caller about a target owned by `owner` (default: the caller).
    pub fn event(
        &self,
        action: AuditAction,
        target_kind: TargetKind,
        target_id: impl ToString,
        owner: Option<&UserId>,
        detail: Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            actor_kind: ActorKind::User,
            actor_id: Some(self.id().to_string()),
            owner_id: owner.cloned().or_else(|| Some(self.id().clone())),
            action,
            target_kind,
            target_id: Some(target_id.to_string()),
            outcome: Outcome::Success,
            detail,
        }
    }
}
