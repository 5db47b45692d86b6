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
use axum::http::{HeaderName, Method, header};
use axum::routing::{get, post};
use std::time::Duration;
use toolbelt_control::AppState;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Where the consent page is (the dashboard serves it).
pub const CONSENT_PATH: &str = "/oauth2/consent";

/// The authorization server's routes (no fallback).
pub fn router(state: AppState) -> Router {
    // What browser-based MCP clients fetch: metadata, registration, token, revocation.
    let public = Router::new()
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
        .route("/oauth2/token", post(endpoints::token))
        .route("/oauth2/revoke", post(endpoints::revoke))
        .layer(cors());
    Router::new()
        .merge(public)
        // A top-level navigation of the user's browser: no CORS.
        .route("/oauth2/authorize", get(endpoints::authorize))
        .with_state(state)
}

/// CORS of the endpoints a web page's MCP client calls: any origin, since none of them
/// reads a cookie (a public client proves itself with PKCE, a token with itself), so a
/// page gains nothing it could not get by calling them from a server.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}
