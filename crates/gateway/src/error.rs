//! What the gateway answers an agent when something goes wrong, on every path (tool calls,
//! listings, prompts, resources, completion, the HTTP layer): one [`CallError`], its code
//! from `toolbelt_model::rpc`, and the one mapping from an upstream (rmcp) failure to it.

use crate::audit_writer::AuditError;
use crate::upstream::ConnectError;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResponse, ErrorCode};
use rmcp::service::ServiceError;
use serde_json::{Value, json};
use std::time::Duration;
use toolbelt_model::audit::Outcome;
use toolbelt_model::rpc::ErrorKind;
use toolbelt_model::server::ServerStatus;
use toolbelt_store::StoreError;

/// Why a server cannot take calls now (checked before each call: fail fast, never hang).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unreachable {
    #[error("toolbox {0} is unresponsive (its DTMA stopped heartbeating)")]
    ToolboxUnresponsive(String),
    #[error("server {server} is {status}")]
    NotRunning {
        server: String,
        status: ServerStatus,
    },
    #[error("server {0} has no endpoint yet")]
    NoEndpoint(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("Parse error: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("Invalid Request: {0}")]
    InvalidRequest(&'static str),
    #[error("Request body too large")]
    RequestTooLarge,
    #[error("Unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("Session not found")]
    SessionNotFound,
    #[error("Origin not allowed: {0} (allow it with TOOLBELT_ALLOWED_ORIGINS)")]
    OriginNotAllowed(String),
    #[error("Host not allowed: {0} (allow it with TOOLBELT_ALLOWED_HOSTS)")]
    HostNotAllowed(String),
    /// A tool that does not exist or that the agent may not see: the same answer.
    #[error("Unknown tool: {0}")]
    UnknownTool(String),
    #[error("Invalid arguments: {field}: {reason}")]
    InvalidArguments { field: String, reason: String },
    /// A bad cursor, an unsupported completion reference.
    #[error("{0}")]
    InvalidParams(String),
    /// A prompt that does not exist or that the agent may not see (`invalid_params`,
    /// as before: only the audit outcome tells it from a bad parameter).
    #[error("Unknown prompt: {0}")]
    UnknownPrompt(String),
    #[error("Unknown resource: {0}")]
    UnknownResource(String),
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    #[error("cannot reach {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: ConnectError,
    },
    #[error("{server} did not answer within {:.1} s", .after.as_secs_f64())]
    Timeout { server: String, after: Duration },
    #[error("{0}")]
    Cancelled(String),
    #[error("{server} failed: {reason}")]
    UpstreamFailed { server: String, reason: String },
    /// The upstream's own error, passed on with its code and data.
    #[error("{}", .0.message)]
    Upstream(McpError),
    #[error("{message}")]
    NoCredential {
        message: String,
        provider: Option<String>,
    },
    #[error("the owner denied this call (approval {0})")]
    AskDenied(String),
    #[error("no approval within {} s (approval {approval})", .after.as_secs())]
    AskTimedOut { approval: String, after: Duration },
    #[error("rate limit of this {what} reached; retry after {} ms", retry_ms(*.retry_after))]
    RateLimited {
        what: &'static str,
        retry_after: Duration,
    },
    /// An upstream asked the agent something (sampling, elicitation, roots) and no agent
    /// session is waiting on that server.
    #[error("no agent session is waiting on this server")]
    NoAgentSession,
    /// The agent's answer to an upstream's request could not be had.
    #[error("the agent could not answer: {0}")]
    Agent(String),
    #[error("the call could not be audited: {}", audit_reason(.0))]
    Audit(#[from] AuditError),
    #[error("{}", store_reason(.0))]
    Store(#[from] StoreError),
}

/// What the agent is told when the database is down (restarting, unreachable): that, in
/// words, rather than the driver's message; the call can be tried again.
fn audit_reason(e: &AuditError) -> String {
    match e {
        AuditError::Write(s) if s.is_unavailable() => toolbelt_store::UNAVAILABLE.into(),
        e => e.to_string(),
    }
}

fn store_reason(e: &StoreError) -> String {
    if e.is_unavailable() {
        toolbelt_store::UNAVAILABLE.into()
    } else {
        e.to_string()
    }
}

/// How long to wait, when an answer is the gateway's own `unavailable` error: the HTTP
/// layer answers it with 503 and `Retry-After` instead of 200. Only the gateway's own: an
/// upstream's error of the same shape loses its data on the way in ([`CallError::upstream`]).
pub fn unavailable_retry(e: &McpError) -> Option<Duration> {
    if e.code.0 != ErrorKind::Unavailable.code() {
        return None;
    }
    let data = e.data.as_ref()?.as_object()?;
    if data.get("unavailable").and_then(Value::as_str) != Some("database") {
        return None;
    }
    let ms = data.get("retry_after_ms")?.as_u64()?;
    Some(Duration::from_millis(ms))
}

fn retry_ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl CallError {
    /// The one mapping from an upstream request's failure to what the agent is told.
    pub fn upstream(server: &str, e: ServiceError) -> CallError {
        match e {
            ServiceError::McpError(mut e) => {
                // Only the gateway's own outage is answered 503 (see `unavailable_retry`).
                if unavailable_retry(&e).is_some() {
                    e.data = None;
                }
                CallError::Upstream(e)
            }
            ServiceError::Timeout { timeout } => CallError::Timeout {
                server: server.to_string(),
                after: timeout,
            },
            ServiceError::Cancelled { reason } => {
                CallError::Cancelled(reason.unwrap_or_else(|| "cancelled".into()))
            }
            other => CallError::UpstreamFailed {
                server: server.to_string(),
                reason: other.to_string(),
            },
        }
    }

    /// Our kind of error; None for an upstream's own, passed on as it came.
    pub fn kind(&self) -> Option<ErrorKind> {
        use CallError::*;
        Some(match self {
            Parse(_) => ErrorKind::ParseError,
            InvalidRequest(_) => ErrorKind::InvalidRequest,
            RequestTooLarge => ErrorKind::RequestTooLarge,
            Unauthorized(_) => ErrorKind::Unauthorized,
            SessionNotFound => ErrorKind::SessionNotFound,
            OriginNotAllowed(_) => ErrorKind::OriginNotAllowed,
            HostNotAllowed(_) => ErrorKind::HostNotAllowed,
            UnknownTool(_) => ErrorKind::UnknownTool,
            InvalidArguments { .. } | InvalidParams(_) | UnknownPrompt(_) => {
                ErrorKind::InvalidParams
            }
            UnknownResource(_) => ErrorKind::ResourceNotFound,
            Unreachable(_) | Connect { .. } => ErrorKind::UpstreamUnreachable,
            Timeout { .. } => ErrorKind::UpstreamTimeout,
            Cancelled(_) => ErrorKind::Cancelled,
            UpstreamFailed { .. } => ErrorKind::UpstreamFailed,
            Upstream(_) => return None,
            NoCredential { .. } => ErrorKind::NoCredential,
            AskDenied(_) => ErrorKind::AskDenied,
            AskTimedOut { .. } => ErrorKind::AskTimedOut,
            RateLimited { .. } => ErrorKind::RateLimited,
            NoAgentSession => ErrorKind::NoClientSession,
            _ if self.retry_after().is_some() => ErrorKind::Unavailable,
            Agent(_) | Audit(_) | Store(_) => ErrorKind::Internal,
        })
    }

    /// When the database was unavailable: how long to wait (the store's one mapping, as
    /// the REST API's 503s use it).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Audit(AuditError::Write(s)) => s.retry_after(),
            CallError::Store(s) => s.retry_after(),
            _ => None,
        }
    }

    pub fn code(&self) -> i32 {
        match (self, self.kind()) {
            (CallError::Upstream(e), _) => e.code.0,
            (_, Some(k)) => k.code(),
            (_, None) => ErrorKind::Internal.code(),
        }
    }

    pub fn data(&self) -> Option<Value> {
        match self {
            CallError::InvalidArguments { field, .. } => Some(json!({ "field": field })),
            CallError::NoCredential { provider, .. } => Some(json!({ "provider": provider })),
            CallError::AskDenied(a) | CallError::AskTimedOut { approval: a, .. } => {
                Some(json!({ "approval": a }))
            }
            CallError::RateLimited { retry_after, .. } => {
                Some(json!({ "retry_after_ms": retry_ms(*retry_after) }))
            }
            CallError::Upstream(e) => e.data.clone(),
            e => e
                .retry_after()
                .map(|d| json!({ "unavailable": "database", "retry_after_ms": retry_ms(d) })),
        }
    }

    /// A whole JSON-RPC error response (for the HTTP layer, which answers before rmcp).
    pub fn reply(&self, id: &Value) -> Value {
        let kind = self.kind().unwrap_or(ErrorKind::Internal);
        let mut r = kind.reply(id, &self.to_string(), self.data());
        r["error"]["code"] = json!(self.code());
        r
    }
}

impl From<toolbelt_wire::mcp_body::DecodeError> for CallError {
    fn from(e: toolbelt_wire::mcp_body::DecodeError) -> CallError {
        use toolbelt_wire::mcp_body::DecodeError;
        match e {
            DecodeError::Parse(e) => CallError::Parse(e),
            DecodeError::InvalidRequest(why) => CallError::InvalidRequest(why),
        }
    }
}

impl From<CallError> for McpError {
    fn from(e: CallError) -> McpError {
        match e {
            CallError::Upstream(e) => e,
            e => McpError::new(ErrorCode(e.code()), e.to_string(), e.data()),
        }
    }
}

/// The most characters of error text an audit row keeps (an upstream's error message
/// can be as large as its reply; the chain is forever).
pub const AUDIT_ERROR_CHARS: usize = 1024;
/// The most characters of a name the agent sent (a tool, a prompt, a URI) an audit row
/// keeps: an unknown tool's name can be as large as the request body.
pub const AUDIT_NAME_CHARS: usize = 512;

/// `s` cut to `max` characters, marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!("{}… ({} bytes in all)", &s[..at], s.len()),
    }
}

/// What an agent request's audit event records about how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub outcome: Outcome,
    pub error: Option<String>,
    /// The stable name of our error (None: success, or the upstream's own error).
    pub kind: Option<&'static str>,
}

/// The audit outcome of a call, decided from its result alone: a call the agent may not
/// make is `denied`; every other error, and a tool reporting an error, is a `failure`.
pub fn ending(res: &Result<CallToolResponse, CallError>) -> Ending {
    match res {
        Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => Ending {
            outcome: Outcome::Failure,
            error: Some("the tool reported an error".into()),
            kind: None,
        },
        other => request_ending(other),
    }
}

/// The audit outcome of any agent request (a prompt, a resource read, a completion):
/// something the agent may not see is `denied`, any other error a `failure`.
pub fn request_ending<T>(res: &Result<T, CallError>) -> Ending {
    match res {
        Ok(_) => Ending {
            outcome: Outcome::Success,
            error: None,
            kind: None,
        },
        Err(
            e @ (CallError::UnknownTool(_)
            | CallError::UnknownPrompt(_)
            | CallError::UnknownResource(_)),
        ) => Ending {
            outcome: Outcome::Denied,
            error: Some(clip(&e.to_string(), AUDIT_ERROR_CHARS)),
            kind: e.kind().map(ErrorKind::name),
        },
        Err(e) => Ending {
            outcome: Outcome::Failure,
            error: Some(clip(&format!("{e} ({})", e.code()), AUDIT_ERROR_CHARS)),
            kind: e.kind().map(ErrorKind::name),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_once_timeouts_are_timeouts() {
        let t = CallError::upstream(
            "slow",
            ServiceError::Timeout {
                timeout: Duration::from_millis(1500),
            },
        );
        assert_eq!(t.code(), ErrorKind::UpstreamTimeout.code());
        assert_eq!(t.to_string(), "slow did not answer within 1.5 s");
        let own = McpError::new(ErrorCode(-32000), "failed on purpose", Some(json!(1)));
        let passed = CallError::upstream("fx", ServiceError::McpError(own));
        assert_eq!(
            (passed.kind(), passed.code(), passed.data()),
            (None, -32000, Some(json!(1))),
            "an upstream's own error passes with its code"
        );
        let mcp: McpError = passed.into();
        assert_eq!(mcp.message, "failed on purpose");
        let closed = CallError::upstream("fx", ServiceError::TransportClosed);
        assert_eq!(closed.kind(), Some(ErrorKind::UpstreamFailed));
        let c = CallError::upstream("fx", ServiceError::Cancelled { reason: None });
        assert_eq!(c.code(), -32800);
    }

    #[test]
    fn the_audit_ending_follows_the_error() {
        let denied = ending(&Err(CallError::UnknownTool("x__y".into())));
        assert_eq!(
            denied,
            Ending {
                outcome: Outcome::Denied,
                error: Some("Unknown tool: x__y".into()),
                kind: Some("unknown_tool"),
            }
        );
        let limited = ending(&Err(CallError::RateLimited {
            what: "agent",
            retry_after: Duration::from_millis(20),
        }));
        assert_eq!(limited.outcome, Outcome::Failure);
        assert_eq!(
            limited.error.as_deref(),
            Some("rate limit of this agent reached; retry after 20 ms (-32029)")
        );
        assert_eq!(limited.kind, Some("rate_limited"));
    }

    #[test]
    fn audit_rows_keep_bounded_text() {
        let huge = McpError::new(ErrorCode(-32000), "é".repeat(1 << 20), None);
        let e = ending(&Err(CallError::Upstream(huge)));
        let text = e.error.unwrap();
        assert!(
            text.chars().count() < AUDIT_ERROR_CHARS + 40,
            "{}",
            text.len()
        );
        assert!(text.ends_with("bytes in all)"), "marked as cut");
        let long_name = "x".repeat(1 << 20);
        let d = ending(&Err(CallError::UnknownTool(long_name)));
        assert!(d.error.unwrap().len() < AUDIT_ERROR_CHARS + 40);
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn a_database_outage_is_unavailable_and_only_ours_is() {
        let down = || StoreError::Db(std::io::Error::other("connection reset").into());
        for e in [
            CallError::Store(down()),
            CallError::Audit(AuditError::Write(std::sync::Arc::new(down()))),
        ] {
            assert_eq!((e.kind(), e.code()), (Some(ErrorKind::Unavailable), -32603));
            let mcp: McpError = e.into();
            assert!(mcp.message.contains(toolbelt_store::UNAVAILABLE), "{mcp:?}");
            assert_eq!(unavailable_retry(&mcp), Some(Duration::from_secs(1)));
        }
        let other = CallError::Store(StoreError::Corrupt("x".into()));
        assert_eq!(other.kind(), Some(ErrorKind::Internal));
        assert_eq!(unavailable_retry(&other.into()), None);
        // An upstream cannot have the gateway answer 503 for it.
        let forged = McpError::from(CallError::Store(down()));
        let passed: McpError = CallError::upstream("fx", ServiceError::McpError(forged)).into();
        assert_eq!((passed.code.0, unavailable_retry(&passed)), (-32603, None));
    }

    #[test]
    fn replies_carry_code_and_data() {
        let r = CallError::RateLimited {
            what: "tool",
            retry_after: Duration::ZERO,
        }
        .reply(&Value::Null);
        assert_eq!(r["error"]["code"], -32029);
        assert_eq!(r["error"]["data"]["retry_after_ms"], 1);
        assert_eq!(
            CallError::SessionNotFound.reply(&json!(3))["error"]["code"],
            ErrorKind::SessionNotFound.code()
        );
    }
}
