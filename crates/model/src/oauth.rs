//! OAuth providers (configured by admins) and connections (one user's link to a provider).
//! Token values never appear here: they live in the vault, these carry only their metadata.

use crate::{ConnectionId, ProviderId, UserId, name::Name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

str_enum!(
    /// Where a provider's endpoints come from.
    ProviderKind {
        Github = "github",
        Google = "google",
        Microsoft = "microsoft",
        Slack = "slack",
        /// Any OAuth 2.1 / OpenID Connect provider, from its metadata (RFC 8414 or OIDC
        /// discovery) or given endpoints.
        Custom = "custom",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Provider {
    pub id: ProviderId,
    /// What catalog entries name in `oauth.provider`, and what `/oauth/{provider}/...` uses.
    #[schema(value_type = String)]
    pub name: Name,
    pub kind: ProviderKind,
    pub issuer: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    /// The vault secret holding the client secret (public clients have none).
    pub client_secret_id: Option<String>,
    /// Scopes asked for when a connection names none.
    pub default_scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

str_enum!(
    ConnectionStatus {
        /// Tokens usable; the refresher keeps them fresh.
        Active = "active",
        /// The provider refused a refresh (revoked, expired, reused): the user must
        /// connect again. Never injected.
        NeedsReauth = "needs_reauth",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    pub id: ConnectionId,
    pub owner_id: UserId,
    pub provider_id: ProviderId,
    #[schema(value_type = String)]
    pub provider: Name,
    pub status: ConnectionStatus,
    /// The scopes the provider granted.
    pub scopes: Vec<String>,
    /// When the access token expires (None: the provider did not say).
    pub expires_at: Option<DateTime<Utc>>,
    pub has_refresh_token: bool,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Why the last refresh failed.
    pub last_error: Option<String>,
    /// Consecutive failed refresh attempts (reset by a success).
    pub refresh_failures: i64,
    /// When the refresher next looks at it.
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// The vault secret holding the tokens (never their values).
    #[serde(skip)]
    pub token_secret_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
