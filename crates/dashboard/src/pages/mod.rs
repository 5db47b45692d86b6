//! One module per page (or group of pages): handlers that extract, call one service
//! function and render.

pub mod admin;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod catalog_admin;
pub mod chat;
pub mod chat_live;
pub mod chat_settings;
pub mod connections;
pub mod consent;
pub mod deploy;
pub mod deploy_submit;
pub mod discovery;
pub mod login;
pub mod logs;
pub mod marketplace;
pub mod overview;
pub mod servers;
pub mod tool_changes;
pub mod toolbelt;
pub mod toolboxes;
pub mod trust;

use crate::error::Page;
use askama::Template;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// Renders a template as a page that is never cached.
pub(crate) fn render(t: &impl Template) -> Result<Response, Page> {
    Ok((crate::view::no_store(), Html(t.render()?)).into_response())
}

/// Back to `to` after a form post (post/redirect/get), with a notice to show there.
pub(crate) fn done(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let n: String = form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Redirect::to(&format!("{to}{sep}done={n}")).into_response()
}
