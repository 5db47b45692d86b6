//! Toolbelt as the OAuth 2.1 authorization server of its own gateway (the MCP
//! authorization spec): MCP clients register themselves (RFC 7591) or name themselves by
//! the URL of a client metadata document ([`documents`]), a signed-in user
//! approves one to act as one of their agents (the dashboard's consent page), and the
//! client gets short-lived access tokens bound to the `/mcp` resource (RFC 8707) plus a
//! rotating refresh token (a replay revokes the whole family), revocable (RFC 7009).
//!
//! Only public clients with PKCE S256: a desktop or IDE client cannot keep a secret, and
//! `plain` gives nothing against a stolen code. The tokens are not JWTs: the gateway looks
//! their digest up like an agent token's, so revocation is immediate.
//!
//! The HTTP side (metadata, endpoints, the OAuth error table) is `toolbelt-authz`.

mod authorize;
mod documents;
mod error;
mod register;
mod token;

pub use authorize::{AuthorizeRequest, Checked, check, consent};
pub use documents::{Documents, is_document_id};
pub use error::{AuthzError, OAuthCode};
pub use register::{REGISTER_LIMIT, Registration, register};
pub use token::{TokenRequest, TokenResponse, revoke, token};

use std::time::Duration;

/// How long an access token lasts: short, since the client refreshes it by itself.
pub const ACCESS_TTL: Duration = Duration::from_secs(600);
/// How long a refresh token lasts unused.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an authorization code may wait for its exchange.
pub const CODE_TTL: Duration = Duration::from_secs(120);

/// Prefixes of the secrets, so leaked ones are recognisable (and the gateway knows which
/// table to look an access token up in).
pub const ACCESS_PREFIX: &str = "tbo_";
pub const REFRESH_PREFIX: &str = "tbr_";
pub const CODE_PREFIX: &str = "tbc_";

/// The only scope: the gateway's tools, as the chosen agent. `offline_access` is
/// accepted (clients ask for it to get a refresh token; they always get one).
pub const SCOPES: &[&str] = &["mcp", "offline_access"];

/// Where this server is: the issuer (`https://host`) and the protected resource it issues
/// tokens for (`https://host/mcp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub issuer: String,
    pub resource: String,
}

impl Issuer {
    /// From the app's public URL (where browsers and MCP clients reach it).
    pub fn from_public_url(public_url: &str) -> Issuer {
        let issuer = public_url.trim_end_matches('/').to_string();
        Issuer {
            resource: format!("{issuer}/mcp"),
            issuer,
        }
    }

    /// `resource` names this server's protected resource (a trailing slash aside).
    pub fn is_resource(&self, resource: &str) -> bool {
        resource.trim_end_matches('/') == self.resource
    }

    /// The RFC 9728 metadata URL of the `/mcp` resource (what 401s point to).
    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.issuer)
    }
}

/// The scope asked for, checked: every word one of [`SCOPES`].
fn check_scope(scope: Option<&str>) -> Result<Option<String>, AuthzError> {
    let Some(s) = scope.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    for w in s.split_ascii_whitespace() {
        if !SCOPES.contains(&w) {
            return Err(AuthzError::new(
                OAuthCode::InvalidScope,
                format!(
                    "unknown scope {w:?}; this server knows {}",
                    SCOPES.join(", ")
                ),
            ));
        }
    }
    Ok(Some(s.to_string()))
}

fn secs(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(d.as_secs() as i64)
}
