//! The JSON-RPC errors Toolbelt itself answers with on the MCP boundary — the gateway
//! towards agents, the DTMA's bridge towards the gateway, `toolbelt stdio` towards its
//! client — in one table: each error's code, its stable name and what it means. The
//! README's "Gateway errors" table is this table (a test keeps them equal).
//!
//! An upstream server's own errors pass through with the server's code and are not in
//! here; neither are the protocol errors rmcp answers by itself (-32020…-32022 on the
//! 2026-07-28 transport).

use serde_json::{Value, json};

macro_rules! rpc_table {
    ($($(#[$m:meta])* $var:ident = $code:literal, $name:literal, $message:literal, $meaning:literal;)+) => {
        /// Every error Toolbelt emits on the MCP boundary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind { $($(#[$m])* $var),+ }

        impl ErrorKind {
            /// In the order of the README's table.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$var),+];

            /// The JSON-RPC `error.code`.
            pub const fn code(self) -> i32 {
                match self { $(ErrorKind::$var => $code),+ }
            }

            /// The stable short name (audit details, logs, docs).
            pub const fn name(self) -> &'static str {
                match self { $(ErrorKind::$var => $name),+ }
            }

            /// The message when there is nothing more specific to say.
            pub const fn default_message(self) -> &'static str {
                match self { $(ErrorKind::$var => $message),+ }
            }

            /// What the error means, as the README's table says it.
            pub const fn meaning(self) -> &'static str {
                match self { $(ErrorKind::$var => $meaning),+ }
            }
        }
    };
}

rpc_table! {
    ParseError = -32700, "parse_error", "Parse error", "the body is not JSON";
    InvalidRequest = -32600, "invalid_request", "Invalid Request",
        "not a JSON-RPC 2.0 request, notification or response";
    /// An alias of `invalid_request`, told apart by its HTTP status.
    RequestTooLarge = -32600, "request_too_large", "Request body too large",
        "the body is over the size limit (HTTP 413)";
    MethodNotFound = -32601, "method_not_found", "Method not found", "unknown method";
    /// Answered to a server's own request (sampling, elicitation, roots) when no client
    /// can take it: to the server it is as if the client did not offer the method.
    NoClientSession = -32601, "no_client_session", "no client session can answer this request",
        "a server's request (sampling, elicitation, roots) that no agent session can answer";
    InvalidParams = -32602, "invalid_params", "Invalid params",
        "arguments violating the tool's schema (`data.field` names the field), a bad cursor, an unknown prompt";
    /// The same answer for a tool that does not exist and one the agent may not see.
    UnknownTool = -32602, "unknown_tool", "Unknown tool",
        "unknown or ungranted tool (the same answer)";
    ResourceNotFound = -32002, "resource_not_found", "Resource not found",
        "unknown or ungranted resource";
    Internal = -32603, "internal", "Internal error",
        "Toolbelt itself failed (say, the call could not be audited)";
    /// An alias of `internal`, told apart by its HTTP status (503, with `Retry-After`).
    Unavailable = -32603, "unavailable", "the database is unavailable; try again",
        "Toolbelt's database is unreachable (restarting, failing over): HTTP 503 with `Retry-After` and `data.retry_after_ms`; try again";
    Unauthorized = -32010, "unauthorized", "Unauthorized",
        "missing, invalid, revoked or expired agent token (HTTP 401)";
    SessionNotFound = -32011, "session_not_found", "Session not found",
        "unknown session id, or another agent's (HTTP 404)";
    OriginNotAllowed = -32012, "origin_not_allowed", "Origin not allowed",
        "a browser request whose `Origin` is neither the public URL's nor in `TOOLBELT_ALLOWED_ORIGINS` (HTTP 403)";
    HostNotAllowed = -32013, "host_not_allowed", "Host not allowed",
        "a `Host` the gateway does not answer to: not the public URL's, loopback or in `TOOLBELT_ALLOWED_HOSTS` (HTTP 403)";
    UpstreamUnreachable = -32005, "upstream_unreachable", "the server is unreachable",
        "server unreachable: not running, dead or silent toolbox, no connection";
    UpstreamFailed = -32007, "upstream_failed", "the server failed",
        "the server's connection broke mid-call, or it answered with something else";
    ReplyTooLarge = -32008, "reply_too_large", "the server's reply is too large",
        "the server's reply is over the gateway's limit (`TOOLBELT_MAX_REPLY_BYTES`, `data.limit_bytes`)";
    UpstreamTimeout = -32001, "upstream_timeout", "the server did not answer in time",
        "upstream timeout: the server did not answer within the call timeout";
    Cancelled = -32800, "cancelled", "cancelled", "cancelled (by the agent, or while waiting)";
    NoCredential = -32006, "no_credential", "no usable OAuth credential",
        "no usable OAuth credential (`data.provider`)";
    AskDenied = -32003, "ask_denied", "the owner denied this call",
        "an `ask` call the owner denied (`data.approval`)";
    AskTimedOut = -32004, "ask_timed_out", "no approval in time",
        "an `ask` call nobody decided in time (`data.approval`)";
    RateLimited = -32029, "rate_limited", "rate limit reached",
        "rate limited (`data.retry_after_ms`)";
}

/// Kinds that deliberately share another kind's code, with the kind they alias.
pub const ALIASES: &[(ErrorKind, ErrorKind)] = &[
    (ErrorKind::RequestTooLarge, ErrorKind::InvalidRequest),
    (ErrorKind::NoClientSession, ErrorKind::MethodNotFound),
    (ErrorKind::UnknownTool, ErrorKind::InvalidParams),
    (ErrorKind::Unavailable, ErrorKind::Internal),
];

impl ErrorKind {
    pub fn parse(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The kind a code stands for (the first of aliases). None: not one of ours.
    pub fn of_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The `error` member of a JSON-RPC response.
    pub fn object(self, message: &str, data: Option<Value>) -> Value {
        let mut e = json!({ "code": self.code(), "message": message });
        if let Some(d) = data {
            e["data"] = d;
        }
        e
    }

    /// A whole JSON-RPC error response to the request with `id` (null when unknown).
    pub fn reply(self, id: &Value, message: &str, data: Option<Value>) -> Value {
        json!({ "jsonrpc": "2.0", "id": id, "error": self.object(message, data) })
    }

    /// The table as Markdown, as the README shows it.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | name | meaning |\n|---|---|---|\n");
        for k in ErrorKind::ALL {
            out.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                k.code(),
                k.name(),
                k.meaning()
            ));
        }
        out
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn codes_are_distinct_except_the_listed_aliases() {
        let mut by_code: HashMap<i32, ErrorKind> = HashMap::new();
        for &k in ErrorKind::ALL {
            if let Some(&first) = by_code.get(&k.code()) {
                assert!(
                    ALIASES.contains(&(k, first)),
                    "{k} shares {} with {first} without being a listed alias",
                    k.code()
                );
            } else {
                by_code.insert(k.code(), k);
            }
        }
        for (alias, of) in ALIASES {
            assert_eq!(alias.code(), of.code(), "{alias} aliases {of}");
            assert_ne!(alias, of);
            assert_eq!(ErrorKind::of_code(alias.code()), Some(*of));
        }
    }

    #[test]
    fn names_are_distinct_snake_case_and_round_trip() {
        let names: HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for &k in ErrorKind::ALL {
            assert!(
                k.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{k}"
            );
            assert_eq!(ErrorKind::parse(k.name()), Some(k));
            assert!(!k.default_message().is_empty() && !k.meaning().is_empty());
        }
        assert_eq!(ErrorKind::parse("nonsense"), None);
    }

    /// The codes the README documented before the table existed keep their meaning.
    #[test]
    fn documented_codes_keep_their_meaning() {
        for (code, kind) in [
            (-32700, ErrorKind::ParseError),
            (-32600, ErrorKind::InvalidRequest),
            (-32601, ErrorKind::MethodNotFound),
            (-32602, ErrorKind::InvalidParams),
            (-32005, ErrorKind::UpstreamUnreachable),
            (-32006, ErrorKind::NoCredential),
            (-32003, ErrorKind::AskDenied),
            (-32004, ErrorKind::AskTimedOut),
            (-32029, ErrorKind::RateLimited),
            (-32001, ErrorKind::UpstreamTimeout),
            (-32800, ErrorKind::Cancelled),
        ] {
            assert_eq!(ErrorKind::of_code(code), Some(kind), "{code}");
        }
    }

    #[test]
    fn a_reply_carries_the_id_code_and_data() {
        let r = ErrorKind::RateLimited.reply(
            &json!(7),
            "slow down",
            Some(json!({ "retry_after_ms": 5 })),
        );
        assert_eq!(
            r,
            json!({ "jsonrpc": "2.0", "id": 7, "error": { "code": -32029, "message": "slow down", "data": { "retry_after_ms": 5 } } })
        );
        assert!(ErrorKind::Cancelled.object("x", None).get("data").is_none());
    }

    /// The README shows exactly this table, so the documentation cannot drift.
    #[test]
    fn the_readme_shows_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).expect("the repository's README.md");
        let table = ErrorKind::markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's gateway error table differs from toolbelt_model::rpc; it should read:\n{table}"
        );
    }
}
