//! Every HTTP surface of the app, mounted in one place.

use axum::Router;
use std::sync::Arc;
use toolbelt_control::AppState;

/// What the app's parts are built on; each part's router is made from these.
pub struct Parts {
    pub state: AppState,
    /// The gateway's `/mcp` router (built with its background work already running).
    pub mcp: Router,
    pub hub: Arc<toolbelt_gateway::Hub>,
    /// The chat runtime (its routes join the control plane's `/api/v1`).
    pub chat: toolbelt_chat::Chat,
}

/// The app's routes: one `.merge` per part. A new part (the dashboard, chat, an OAuth
/// authorization server) is one more line here. Only the control plane sets a fallback.
pub fn routes(p: &Parts) -> Router {
    Router::new()
        // /api/v1/…, /healthz, /readyz, /metrics, chat's /api/v1/llms and /api/v1/chats
        .merge(toolbelt_control::router_with(
            p.state.clone(),
            toolbelt_chat::api::router(p.chat.clone()),
        ))
        // /mcp
        .merge(p.mcp.clone())
        // /, /login, /servers, … (the browser UI; /assets, /events)
        .merge(toolbelt_dashboard::router(p.state.clone()))
        // /agents/{id}/chat… (the dashboard's chat page, over the chat runtime)
        .merge(toolbelt_dashboard::chat_router(
            p.state.clone(),
            p.chat.clone(),
        ))
        // /.well-known/oauth-*, /oauth2/… (the MCP authorization server)
        .merge(toolbelt_authz::router(p.state.clone()))
}
