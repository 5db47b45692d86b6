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
    /// How the agent's tools are listed to it (`all`, or `search`: meta tools to find and
    /// call them, plus its always-visible tools); a token may override it.
    pub discovery: Discovery,
    pub created_at: DateTime<Utc>,
}

str_enum!(
    /// How `tools/list` shows an agent its tools.
    Discovery {
        /// Every granted tool, listed.
        All = "all",
        /// `find_tools` and `call_tool`, and the owner's always-visible tools.
        Search = "search",
    }
);

/// A token as listed: everything but the secret, which is shown once at issue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: TokenId,
    pub kind: TokenKind,
    pub label: String,
    /// The discovery mode this (agent) token overrides its agent's with.
    pub discovery: Option<Discovery>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}
