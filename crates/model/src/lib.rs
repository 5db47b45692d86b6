//! Toolbelt's domain: the words of ARCHITECTURE.md as types.
//!
//! Everything here is pure: validation, ids, status enums, token digests and the audit
//! hash. No database, no network, no clock beyond `Utc::now()` for new ids.

#[macro_use]
mod strenum;

pub mod agent;
pub mod audit;
pub mod audit_checkpoint;
pub mod canonical;
pub mod catalog;
pub mod chat;
pub mod dtma;
pub mod error;
pub mod gateway;
pub mod grant;
pub mod ids;
pub mod name;
pub mod oauth;
pub mod page;
pub mod registry;
pub mod rpc;
pub mod server;
pub mod signed;
pub mod signed_reply;
pub mod throttle;
pub mod token;
pub mod toolbox;
pub mod user;

pub use error::{FieldError, Invalid};
pub use ids::*;
pub use name::Name;
pub use page::Page;
pub use user::{Role, Scope};

/// Timestamps everywhere are UTC; the store keeps them as milliseconds since the epoch.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Milliseconds since the epoch → timestamp (the store's representation).
pub fn ts_from_ms(ms: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The current time, truncated to milliseconds so it round-trips through the store.
pub fn now() -> Timestamp {
    ts_from_ms(chrono::Utc::now().timestamp_millis())
}
