//! The control plane's rules, one module per resource: who may do what (tenancy and
//! roles), what input is valid, and the audited transaction that does it.
//!
//! Layering: **handler → service → store.** A REST handler (`crate::api`) extracts the
//! caller and the request, calls one service function, and shapes the HTTP reply
//! (status, headers, cookies, redirects, streaming). The dashboard and the chat runtime
//! call the same functions. A service takes a [`Caller`] (or, on the DTMA channel, the
//! authenticated toolbox's id) and typed inputs, and returns typed results; nothing here
//! knows about axum, status codes or cookies. The store runs the queries and scopes
//! every read of owned things.
//!
//! **No rule in a handler.** A check that decides whether something is allowed, valid or
//! visible lives here, once — so the REST API, the dashboard and the chat cannot drift.
//! What a handler may still decide is the wire format: how a session travels (cookie or
//! token), how query strings spell lists, which status a success has.
//!
//! Errors are one [`ServiceError`], in the domain's words (not found, forbidden, invalid
//! fields, …); an `Invalid` carries every field at fault so a form can show each next to
//! its input. It is not the REST problem document: statuses and problem `type`s are the
//! REST boundary's table (`crate::problem`), kept in one place there, and the dashboard
//! and chat render the same error their own way. Messages are the same everywhere.
//!
//! See `README.md` beside this file for how to add a resource.

pub mod activity;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod caller;
pub mod catalog;
pub mod discovery;
pub mod dtma;
mod error;
pub mod grants;
pub mod login_limits;
pub mod mcp_auth;
pub mod oauth;
pub mod refs;
pub mod secrets;
pub mod server_image;
pub mod server_runtime;
pub mod servers;
pub mod session;
pub mod tokens;
pub mod toolboxes;
pub mod tools;
pub mod trust;
pub mod users;
pub mod vault;

pub use caller::{Caller, Credential};
pub use error::{Result, ServiceError, found, secs};

use toolbelt_model::page::clamp_limit;

/// Which page of a list: at most `limit` items (1-1000, default 100) after `cursor`
/// (the previous page's `next_cursor`).
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> u32 {
        clamp_limit(self.limit)
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}
