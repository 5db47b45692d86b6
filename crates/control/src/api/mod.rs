//! The `/api/v1` REST API. Every route is registered through `routes!` so the OpenAPI
//! document and the router come from the same handlers.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod common;
pub mod discovery;
pub mod document;
pub mod dtma;
pub mod grants;
pub mod oauth;
pub mod secrets;
pub mod server_runtime;
pub mod servers;
pub mod session;
pub mod toolboxes;
pub mod tools;
pub mod users;
pub mod vault;

use crate::health;
use crate::state::AppState;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Toolbelt",
        description = "Control plane of Toolbelt: users, toolboxes, catalog, servers, agents, grants and the audit log. Errors are RFC 9457 problem documents (application/problem+json) with stable `type`s of the form urn:toolbelt:problem:<slug>.",
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "session", description = "Login and the caller's own account"),
        (name = "users", description = "Users (admins)"),
        (name = "toolboxes", description = "Hosts that run servers"),
        (name = "catalog", description = "Templates for MCP servers"),
        (name = "servers", description = "Deployed MCP servers"),
        (name = "agents", description = "Agent identities and their tokens"),
        (name = "grants", description = "What each agent may use"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "tools", description = "Pinned tool definitions and their changes"),
        (name = "approvals", description = "Tool calls held by an ask rule"),
        (name = "secrets", description = "The vault: values written once, metadata read"),
        (name = "vault", description = "Key-encryption keys and their rotation (admins)"),
        (name = "oauth", description = "OAuth providers and users' connections to them"),
        (name = "dtma", description = "The channel between the control plane and toolbox agents"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// Every documented route of the control plane.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(health::openapi))
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::set_password))
        .routes(routes!(session::list_tokens, session::issue_token))
        .routes(routes!(session::revoke_token))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::delete, users::update))
        .routes(routes!(toolboxes::list, toolboxes::create))
        .routes(routes!(
            toolboxes::get,
            toolboxes::delete,
            toolboxes::update
        ))
        .routes(routes!(toolboxes::join_token))
        .routes(routes!(catalog::list, catalog::create))
        .routes(routes!(catalog::get, catalog::update, catalog::delete))
        .routes(routes!(catalog::deprecate))
        .routes(routes!(servers::list, servers::create))
        .routes(routes!(servers::get, servers::delete))
        .routes(routes!(servers::start))
        .routes(routes!(servers::stop))
        .routes(routes!(servers::restart))
        .routes(routes!(servers::update_image))
        .routes(routes!(server_runtime::logs))
        .routes(routes!(server_runtime::stats))
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::get, agents::delete, discovery::update))
        .routes(routes!(discovery::list_toolsets, discovery::create_toolset))
        .routes(routes!(discovery::delete_toolset))
        .routes(routes!(discovery::find_tools))
        .routes(routes!(
            agents::list_tokens,
            agents::issue_token,
            agents::revoke_all
        ))
        .routes(routes!(agents::revoke_token))
        .routes(routes!(grants::list, grants::create))
        .routes(routes!(grants::get, grants::update, grants::delete))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify, audit::verify_against))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(tools::changes))
        .routes(routes!(tools::approve))
        .routes(routes!(tools::reject))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(dtma::join))
        .routes(routes!(dtma::heartbeat))
        .routes(routes!(dtma::secrets))
        .routes(routes!(secrets::list, secrets::create))
        .routes(routes!(secrets::get, secrets::update, secrets::delete))
        .routes(routes!(vault::list_keys))
        .routes(routes!(vault::rotate))
        .routes(routes!(vault::delete_key))
        .routes(routes!(oauth::list_providers, oauth::create_provider))
        .routes(routes!(oauth::get_provider, oauth::delete_provider))
        .routes(routes!(oauth::list_connections, oauth::start_connection))
        .routes(routes!(oauth::flow_status))
        .routes(routes!(oauth::get_connection, oauth::revoke_connection))
        .routes(routes!(oauth::refresh_connection))
        .routes(routes!(oauth::reconnect_connection))
        .routes(routes!(oauth::browser_start))
        .routes(routes!(oauth::browser_callback))
}
