//! The control plane's API suite over the app as `toolbelt-app` builds it for users (gateway,
//! vault and OAuth included), every test on SQLite and on PostgreSQL.

mod audit;
mod audit_checkpoints;
mod bad_input;
mod chat;
mod credentials_matrix;
mod dashboard;
mod login_abuse;
mod matrix;
mod mcp_auth;
mod mcp_auth_clients;
mod mcp_auth_hardening;
mod openapi;
mod session;
mod support;
mod users;
