//! Chat's rules, in the control plane's service style (see
//! `crates/control/src/service/README.md`): a [`Caller`](toolbelt_control::service::Caller)
//! and typed inputs in, typed results or a `ServiceError` out, every change audited in its
//! transaction. Handlers (`crate::api`) only shape the HTTP reply.

pub mod chats;
pub mod llms;
pub mod run;
pub mod settings;
