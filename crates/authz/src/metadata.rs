//! The two metadata documents MCP clients discover from a 401.

use crate::error::OAuthReply;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use toolbelt_control::AppState;
use toolbelt_control::service::mcp_auth::{AuthzError, SCOPES};

fn issuer(st: &AppState) -> Result<&toolbelt_control::service::mcp_auth::Issuer, OAuthReply> {
    st.mcp_issuer().map_err(|e| OAuthReply(AuthzError::from(e)))
}

/// RFC 9728: the gateway's `/mcp` (and every toolset endpoint under it) is one resource,
/// protected by this server.
pub async fn protected_resource(State(st): State<AppState>) -> Response {
    let i = match issuer(&st) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    Json(json!({
        "resource": i.resource,
        "authorization_servers": [i.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp"],
        "resource_name": "Toolbelt gateway",
    }))
    .into_response()
}

/// RFC 8414.
pub async fn authorization_server(State(st): State<AppState>) -> Response {
    let i = match issuer(&st) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let at = |p: &str| format!("{}{p}", i.issuer);
    Json(json!({
        "issuer": i.issuer,
        "authorization_endpoint": at("/oauth2/authorize"),
        "token_endpoint": at("/oauth2/token"),
        "registration_endpoint": at("/oauth2/register"),
        "revocation_endpoint": at("/oauth2/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": SCOPES,
        // A client may name itself by the https URL of its metadata document.
        "client_id_metadata_document_supported": true,
        // RFC 9207: every authorization response names this issuer.
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}
