//! Toolbelt as the OAuth 2.1 authorization server of its own gateway, per the MCP
//! authorization spec: the protected resource's metadata (RFC 9728) and the
//! authorization server's (RFC 8414), dynamic registration (RFC 7591), the authorization
//! endpoint (which sends the browser on to the dashboard's consent page), the token
//! endpoint and revocation (RFC 7009).
//!
//! Handlers only shape HTTP: every rule is `toolbelt_control::service::mcp_auth`'s, and
//! every error goes through one table ([`error`]).

mod endpoints;
mod error;
mod metadata;

use axum::Router;
use axum::routing::{get, post};
use toolbelt_control::AppState;

/// Where the consent page is (the dashboard serves it).
pub const CONSENT_PATH: &str = "/oauth2/consent";

/// The authorization server's routes (no fallback).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        // Toolset endpoints are under the one `/mcp` resource.
        .route(
            "/.well-known/oauth-protected-resource/mcp/{*rest}",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route("/oauth2/register", post(endpoints::register))
        .route("/oauth2/authorize", get(endpoints::authorize))
        .route("/oauth2/token", post(endpoints::token))
        .route("/oauth2/revoke", post(endpoints::revoke))
        .with_state(state)
}
