//! Toolbelt's storage: one schema on SQLite (default, a file in the data dir, WAL) and on
//! PostgreSQL (several control-plane replicas), through sqlx's `Any` driver with
//! runtime-checked SQL written once (`$n` placeholders work on both).
//!
//! Repositories are modules of free functions over `&mut AnyConnection`, so a handler can
//! run several of them and the audit append in one transaction ([`AuditedTx`]). Every
//! query over owned things takes a [`Scope`](toolbelt_model::Scope) and filters by it.

pub mod agents;
pub mod approvals;
pub mod audit;
mod audit_batch;
pub mod catalog;
pub mod chats;
mod db;
pub mod discovery;
pub mod events;
pub mod grants;
pub mod history;
pub mod leases;
pub mod llms;
pub mod mcp_auth;
pub mod metrics;
pub mod oauth;
pub mod pins;
mod roles;
mod rows;
pub mod secrets;
pub mod servers;
pub mod settings;
pub mod throttle;
pub mod tokens;
pub mod toolboxes;
pub mod users;

pub use audit_batch::{AuditConnection, Committed, Path as AuditPath};
pub use db::{AuditedTx, Backend, Store, StoreOptions};
pub use sqlx::AnyConnection;

/// Errors of the store. `NotFound` also stands for "not yours": callers never learn that a
/// row they may not see exists.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unreadable row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database could not be reached (as opposed to a bad query or row). A
    /// PostgreSQL that is shutting down, restarting or starting up answers with a database
    /// error rather than a broken socket: `57P01` admin_shutdown (a fast stop ends every
    /// session), `57P02` crash_shutdown, `57P03` cannot_connect_now, and class `08`
    /// (connection exceptions).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_),
            ) => true,
            StoreError::Db(sqlx::Error::Database(d)) => d
                .code()
                .is_some_and(|c| matches!(&*c, "57P01" | "57P02" | "57P03") || c.starts_with("08")),
            _ => false,
        }
    }

    /// How long a caller refused because the database [is unavailable](Self::is_unavailable)
    /// should wait before trying again; None for every other error.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.is_unavailable().then_some(UNAVAILABLE_RETRY_AFTER)
    }

    /// The database's disk (or its quota) is full: SQLite's `SQLITE_FULL` (13), or
    /// PostgreSQL's `disk_full` (53100). The statement changed nothing.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => {
                matches!(d.code().as_deref(), Some("13" | "53100"))
            }
            _ => false,
        }
    }
}

/// What a caller is told when the database [is unavailable](StoreError::is_unavailable):
/// the REST API (503) and `/mcp` (503, the JSON-RPC error `unavailable`) say the same.
pub const UNAVAILABLE: &str = toolbelt_model::rpc::ErrorKind::Unavailable.default_message();

/// The `Retry-After` of an [`UNAVAILABLE`] answer: a PostgreSQL restart or fail-over takes
/// seconds, and every request after it succeeds again without restarting Toolbelt.
pub const UNAVAILABLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Turns a unique-constraint violation into a readable conflict; other errors pass through.
pub(crate) fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(e),
    }
}
