//! Toolbelt's control plane: the rules of every resource ([`service`]), the REST API under
//! `/api/v1` over them ([`api`]), authentication, the audit chain's writers, health and
//! metrics. The gateway (`/mcp`), the DTMA channel and the dashboard mount beside it.

pub mod api;
pub mod audit_checkpoints;
pub mod audit_log;
pub mod auth;
pub mod bootstrap;
pub mod call_metrics;
pub mod client_ip;
pub mod extract;
pub mod failure_ledger;
pub mod health;
pub mod liveness;
pub mod login_upkeep;
pub mod metrics;
pub mod middleware;
pub mod passwords;
pub mod problem;
pub mod secrets;
pub mod service;
pub mod state;
pub mod token_rollout;
pub mod tool_search;
pub mod toolbox_client;

pub use state::{AppState, ControlConfig, Credentials};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use problem::{Kind, Problem};
use utoipa_axum::router::OpenApiRouter;

/// The OpenAPI document of everything [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().split_for_parts().1
}

/// The control plane's HTTP application.
pub fn router(state: AppState) -> Router {
    router_with(state, OpenApiRouter::new())
}

/// [`router`] with more documented `/api/v1` routes of other parts (chat): they pass the
/// same middleware and are in the same OpenAPI document.
pub fn router_with(state: AppState, extra: OpenApiRouter<AppState>) -> Router {
    // Merged as OpenApiRouters: the extra routes keep their documentation.
    let (routes, spec) = OpenApiRouter::merge(api::router(), extra).split_for_parts();
    let doc = api::document::finish(&spec);
    let _ = health::OPENAPI.set(serde_json::to_string_pretty(&doc).unwrap_or_default());
    routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::api_layer,
        ))
        .fallback(|| async { Problem::new(Kind::RouteNotFound, "no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                Kind::MethodNotAllowed,
                "this route does not take that method",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
