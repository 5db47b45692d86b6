//! The dashboard (`crates/dashboard`) driven in-process like a browser without JavaScript:
//! a cookie jar, form posts with the page's CSRF token. The real-browser scenarios are
//! the `browser` test group's.

mod admin;
mod agent_tokens;
mod agent_tree;
mod agents;
mod audit;
mod browser;
mod charts;
mod chat;
mod connections;
mod deploy_secrets;
mod logs;
mod marketplace;
mod pages;
mod server_image;
mod tenancy;
mod tool_changes;
mod toolboxes;
