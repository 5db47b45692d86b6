//! The services called directly, as the dashboard and the chat runtime will call them:
//! the rules (tenancy, roles, validation) give typed errors with their fields, no HTTP in
//! between. Every test on SQLite and on PostgreSQL.

mod live;
mod rules;
mod support;
