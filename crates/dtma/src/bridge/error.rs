//! What the bridge answers when it, not the server, must answer a request: one
//! [`BridgeError`], its code from `toolbelt_model::rpc` (the table the gateway answers
//! agents with, so a DTMA error reaches an agent with the meaning it had here).

use axum::http::StatusCode;
use serde_json::Value;
use std::time::Duration;
use toolbelt_model::rpc::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("Parse error: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("Invalid Request: {0}")]
    InvalidRequest(&'static str),
    #[error("Session not found")]
    SessionNotFound,
    #[error("MCP server {0} is not running on this toolbox")]
    NotHere(String),
    #[error("MCP server {0} is not running")]
    NotRunning(String),
    #[error("the server has not finished starting")]
    Starting,
    #[error("MCP server is unreachable on the toolbox network: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The server died (or was given up) with the call pending.
    #[error("MCP server {server} stopped: {why}")]
    Stopped { server: String, why: &'static str },
    #[error("the server's input is blocked")]
    InputBlocked,
    #[error("the server connection closed")]
    Closed,
    #[error("the call already finished")]
    Finished,
    #[error("MCP server {server} did not answer within {:.1} s", .after.as_secs_f64())]
    Timeout { server: String, after: Duration },
    #[error("request cancelled by the client")]
    Cancelled,
    /// A server's own request (sampling, elicitation, roots) that no client can take.
    #[error("no client session can answer this request")]
    NoClientSession,
}

impl BridgeError {
    pub fn kind(&self) -> ErrorKind {
        use BridgeError::*;
        match self {
            Parse(_) => ErrorKind::ParseError,
            InvalidRequest(_) => ErrorKind::InvalidRequest,
            SessionNotFound => ErrorKind::SessionNotFound,
            NotHere(_) | NotRunning(_) | Starting | Unreachable(_) => {
                ErrorKind::UpstreamUnreachable
            }
            Stopped { .. } | InputBlocked | Closed | Finished => ErrorKind::UpstreamFailed,
            Timeout { .. } => ErrorKind::UpstreamTimeout,
            Cancelled => ErrorKind::Cancelled,
            NoClientSession => ErrorKind::NoClientSession,
        }
    }

    /// The HTTP status of a reply that is only this error.
    pub fn status(&self) -> StatusCode {
        use BridgeError::*;
        match self {
            Parse(_) | InvalidRequest(_) => StatusCode::BAD_REQUEST,
            SessionNotFound => StatusCode::NOT_FOUND,
            NotHere(_) | NotRunning(_) | Starting => StatusCode::SERVICE_UNAVAILABLE,
            Unreachable(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::OK,
        }
    }

    /// The JSON-RPC error response to the request with `id` (null when unknown).
    pub fn reply(&self, id: &Value) -> Value {
        self.kind().reply(id, &self.to_string(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bridge_errors_use_the_shared_table() {
        let t = BridgeError::Timeout {
            server: "fx".into(),
            after: Duration::from_millis(800),
        };
        assert_eq!(
            t.reply(&json!(4)),
            json!({ "jsonrpc": "2.0", "id": 4, "error": { "code": -32001, "message": "MCP server fx did not answer within 0.8 s" } })
        );
        let died = BridgeError::Stopped {
            server: "fx".into(),
            why: "it exited",
        };
        assert_eq!(died.kind(), ErrorKind::UpstreamFailed);
        assert_ne!(
            died.kind().code(),
            -32000,
            "never the code servers use for their own errors"
        );
        assert_eq!(
            BridgeError::NotHere("fx".into()).kind().code(),
            ErrorKind::UpstreamUnreachable.code()
        );
        assert_eq!(BridgeError::SessionNotFound.status(), StatusCode::NOT_FOUND);
    }
}
