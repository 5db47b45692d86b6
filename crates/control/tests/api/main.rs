//! The control plane's API suite, every test on SQLite and on PostgreSQL.

mod audit;
mod bad_input;
mod credentials_matrix;
mod matrix;
mod openapi;
mod session;
mod support;
