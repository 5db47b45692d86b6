//! Agents and the metadata of issued tokens.

use crate::{AgentId, TokenId, UserId, name::Name, token::TokenKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: AgentId,
    #[schema(value_type = String)]
    pub name: Name,
    pub owner_id: UserId,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// A token as listed: everything but the secret, which is shown once at issue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: TokenId,
    pub kind: TokenKind,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}
