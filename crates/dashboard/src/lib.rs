//! Toolbelt's dashboard: the browser UI at `/`, rendered on the server from askama
//! templates (`templates/`), with our own CSS and a small JavaScript file embedded in the
//! binary (`assets/`).
//!
//! Every page reads and every action works without JavaScript: links and form posts that
//! end in a redirect (post/redirect/get). JavaScript only adds live updates (an
//! `EventSource` on [`live`]'s `/events`), copy buttons and confirmations.
//!
//! Handlers here are a boundary like the REST API's: they extract the signed-in caller
//! ([`session::Dash`]) and a form, call one function of `toolbelt_control::service`, and
//! render. Tenancy, validation, audit and roles are the services' — never decided here;
//! a service's `NotFound` (which also means "not yours") is a 404 page.

mod assets;
pub mod charts;
mod diff;
mod error;
mod form;
mod live;
mod pages;
mod session;
mod view;

use axum::Router;
use axum::routing::{get, post};
use toolbelt_control::AppState;

pub use session::{CSRF_FIELD, csrf_token};

/// The chat page of an agent (`pages::chat`): its handlers need the chat runtime too.
pub fn chat_router(state: AppState, runtime: toolbelt_chat::Chat) -> Router {
    use pages::chat;
    Router::new()
        .route("/agents/{id}/chat", get(chat::show).post(chat::post))
        .route("/agents/{id}/chat/stream", post(chat::stream))
        .route(
            "/agents/{id}/chat/settings",
            post(pages::chat_settings::save),
        )
        .route("/agents/{id}/chat/decide", post(pages::chat_live::decide))
        .route(
            "/agents/{id}/chat/{chat}/delete",
            get(chat::confirm_delete).post(chat::delete),
        )
        .layer(axum::Extension(runtime))
        .layer(axum::Extension(pages::chat_live::Parked::default()))
        .with_state(state)
}

/// The dashboard's routes (no fallback: the control plane's answers unknown routes).
pub fn router(state: AppState) -> Router {
    use pages::*;
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/servers", get(servers::list))
        .route("/servers/{id}", get(servers::detail))
        // A static segment wins over `{action}` for every method, so delete's GET (the
        // question) and POST (the answer) live on their own route.
        .route(
            "/servers/{id}/delete",
            get(servers::confirm_delete).post(servers::delete),
        )
        .route("/servers/{id}/logs/stream", get(logs::stream))
        .route("/servers/{id}/{action}", post(servers::act))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}/{decision}", post(approvals::decide))
        .route("/agents", get(agents::list).post(agents::create))
        .route("/agents/{id}", get(agents::detail))
        .route("/agents/{id}/toolbelt", post(agents::save_toolbelt))
        .route("/agents/{id}/tokens", post(agents::issue_token))
        .route("/agents/{id}/discovery", post(discovery::save))
        .route("/agents/{id}/toolsets", post(discovery::create_toolset))
        .route(
            "/agents/{id}/toolsets/{toolset}/delete",
            post(discovery::delete_toolset),
        )
        .route(
            "/agents/{id}/tokens/{token}/revoke",
            post(agents::revoke_token),
        )
        .route(
            "/agents/{id}/delete",
            get(agents::confirm_delete).post(agents::delete),
        )
        .route("/toolboxes", get(toolboxes::list).post(toolboxes::create))
        .route("/toolboxes/{id}", get(toolboxes::detail))
        .route("/toolboxes/{id}/join-token", post(toolboxes::join_token))
        .route(
            "/toolboxes/{id}/delete",
            get(toolboxes::confirm_delete).post(toolboxes::delete),
        )
        .route(
            "/marketplace",
            get(marketplace::list).post(catalog_admin::create),
        )
        .route("/marketplace/{slug}", get(marketplace::entry))
        .route("/marketplace/{slug}/deploy", post(marketplace::deploy))
        .route(
            "/marketplace/{slug}/deprecate",
            post(catalog_admin::deprecate),
        )
        .route(
            "/marketplace/{slug}/edit",
            get(catalog_admin::edit).post(catalog_admin::update),
        )
        .route("/tool-changes", get(tool_changes::list))
        .route("/tool-changes/{id}/{decision}", post(tool_changes::decide))
        .route("/admin", get(admin::page))
        .route("/admin/users", post(admin::users::create))
        .route("/admin/users/{id}/role", post(admin::users::set_role))
        .route(
            "/admin/users/{id}/delete",
            get(admin::users::confirm_delete).post(admin::users::delete),
        )
        .route("/admin/providers", post(admin::providers::create))
        .route(
            "/admin/providers/{id}/delete",
            get(admin::providers::confirm_delete).post(admin::providers::delete),
        )
        .route("/admin/vault/rotate", post(admin::vault::rotate))
        .route(
            "/admin/vault/keys/{kek}/delete",
            get(admin::vault::confirm_delete).post(admin::vault::delete),
        )
        .route("/audit", get(audit::list))
        .route("/audit/verify", get(audit::verify))
        .route("/audit/export", get(audit::export))
        .route("/connections", get(connections::list))
        .route("/connections/connect", post(connections::connect))
        .route("/connections/grants", post(connections::create_grant))
        .route(
            "/connections/grants/{id}/delete",
            post(connections::delete_grant),
        )
        .route("/connections/{id}", get(connections::detail))
        .route("/connections/{id}/reconnect", post(connections::reconnect))
        .route("/connections/{id}/refresh", post(connections::refresh))
        .route("/connections/{id}/revoke", post(connections::revoke))
        .route("/trust", get(trust::page))
        .route(
            "/trust/connections/{id}/revoke",
            post(trust::revoke_connection),
        )
        .route(
            "/trust/agents/{id}/tokens/{token}/revoke",
            post(trust::revoke_token),
        )
        .route("/trust/grants/{id}/delete", post(trust::delete_grant))
        .route("/oauth2/consent", get(consent::page).post(consent::answer))
        .route("/events", get(live::events))
        .route("/assets/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .with_state(state)
}
