//! The turn's MCP client: the gateway's own `/mcp` router, called in process with the
//! turn's minted agent token — the same door every agent uses (origin and host checks,
//! token, session ownership, the fast path or rmcp, grants, pins, `ask`, rate limits,
//! audit). A legacy session (initialize, then `Mcp-Session-Id`), replies read as JSON or
//! as an SSE stream.

use crate::wire::sse;
use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt;

const PROTOCOL: &str = "2025-11-25";
/// The most tools listed (pages followed) for one turn.
const MAX_TOOLS: usize = 10_000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum McpError {
    /// The gateway refused the request itself (HTTP status, its message).
    #[error("the gateway refused: {status} {message}")]
    Refused { status: u16, message: String },
    /// A JSON-RPC error: what the gateway or the tool's server said.
    #[error("{message}")]
    Rpc { code: i64, message: String },
    #[error("unreadable gateway reply: {0}")]
    Reply(String),
}

pub struct Mcp {
    router: Router,
    token: String,
    host: String,
    session: Option<String>,
    ids: AtomicU64,
}

/// A finished `tools/call`: the result as the model will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub is_error: bool,
    pub text: String,
    /// The images forwarded natively (the text names each).
    pub images: Vec<crate::wire::Image>,
}

impl Mcp {
    /// Opens a session as the token's agent. `host`: the Host header (the gateway's public
    /// host, which its allow-list always holds).
    pub async fn open(router: Router, token: String, host: String) -> Result<Mcp, McpError> {
        let mut m = Mcp {
            router,
            token,
            host,
            session: None,
            ids: AtomicU64::new(1),
        };
        let (reply, session) = m
            .post(json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": { "name": "toolbelt-chat", "version": env!("CARGO_PKG_VERSION") } } }))
            .await?;
        result(reply)?;
        m.session = session;
        m.notify(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await?;
        Ok(m)
    }

    /// Every tool the agent sees (all pages).
    pub async fn list_tools(&self) -> Result<Vec<Value>, McpError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut params = json!({});
            if let Some(c) = &cursor {
                params["cursor"] = json!(c);
            }
            let id = self.next_id();
            let (reply, _) = self
                .post(
                    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params }),
                )
                .await?;
            let r = result(reply)?;
            out.extend(r["tools"].as_array().cloned().unwrap_or_default());
            if out.len() > MAX_TOOLS {
                return Err(McpError::Reply(format!("more than {MAX_TOOLS} tools")));
            }
            match r["nextCursor"].as_str() {
                Some(c) if Some(c) != cursor.as_deref() => cursor = Some(c.to_string()),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Calls a tool under request id `id` (from [`Mcp::next_id`], so it can be cancelled).
    /// A JSON-RPC error (unknown tool, denied, held and denied, invalid arguments, upstream
    /// failure) is an outcome too: the model is told, the turn goes on. Only a refusal of
    /// the credential itself is an `Err`.
    pub async fn call(
        &self,
        id: u64,
        name: &str,
        arguments: &Value,
    ) -> Result<CallOutcome, McpError> {
        let (reply, _) = self
            .post(json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": { "name": name, "arguments": arguments } }))
            .await?;
        match result(reply) {
            Ok(r) => {
                let parts = crate::tools::result(&r);
                Ok(CallOutcome {
                    is_error: r["isError"].as_bool().unwrap_or(false),
                    text: parts.text,
                    images: parts.images,
                })
            }
            Err(McpError::Rpc { message, code }) => Ok(CallOutcome {
                is_error: true,
                text: format!("error {code}: {message}"),
                images: vec![],
            }),
            Err(e) => Err(e),
        }
    }

    /// Tells the gateway the request `id` is abandoned (MCP cancellation).
    pub async fn cancel(&self, id: u64, reason: &str) {
        let _ = self
            .notify(
                json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": { "requestId": id, "reason": reason } }),
            )
            .await;
    }

    /// Ends the session.
    pub async fn close(&self) {
        if self.session.is_some() {
            let _ = self.send(Method::DELETE, None).await;
        }
    }

    async fn notify(&self, msg: Value) -> Result<(), McpError> {
        let (status, _, body) = self.send(Method::POST, Some(msg)).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(refused(status, &body))
        }
    }

    async fn post(&self, msg: Value) -> Result<(Value, Option<String>), McpError> {
        let id = msg["id"].clone();
        let (status, session, body) = self.send(Method::POST, Some(msg)).await?;
        if !status.is_success() {
            // A JSON-RPC error body (401 unauthorized, 403 …) still says why.
            if let Ok(v) = serde_json::from_slice::<Value>(&body)
                && v["error"].is_object()
                && status != StatusCode::UNAUTHORIZED
                && status != StatusCode::FORBIDDEN
            {
                return Ok((v, session));
            }
            return Err(refused(status, &body));
        }
        Ok((reply_for(&body, &id)?, session))
    }

    async fn send(
        &self,
        method: Method,
        msg: Option<Value>,
    ) -> Result<(StatusCode, Option<String>, bytes::Bytes), McpError> {
        let mut b = Request::builder()
            .method(method)
            .uri("/mcp")
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(s) = &self.session {
            b = b
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", PROTOCOL);
        }
        let body = match msg {
            Some(m) => Body::from(m.to_string()),
            None => Body::empty(),
        };
        let req = b.body(body).map_err(|e| McpError::Reply(e.to_string()))?;
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| McpError::Reply(e.to_string()))?;
        let status = resp.status();
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| McpError::Reply(e.to_string()))?
            .to_bytes();
        Ok((status, session, body))
    }
}

fn refused(status: StatusCode, body: &[u8]) -> McpError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    McpError::Refused {
        status: status.as_u16(),
        message,
    }
}

/// The JSON-RPC reply with this id: the body itself, or the matching event of an SSE body.
fn reply_for(body: &[u8], id: &Value) -> Result<Value, McpError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let mut d = sse::Decoder::default();
    for e in d.feed(body).into_iter().chain(d.finish()) {
        if let Ok(v) = serde_json::from_str::<Value>(&e.data)
            && &v["id"] == id
            && (v.get("result").is_some() || v.get("error").is_some())
        {
            return Ok(v);
        }
    }
    Err(McpError::Reply(format!(
        "no reply to request {id} in: {}",
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    )))
}

fn result(v: Value) -> Result<Value, McpError> {
    if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        return Err(McpError::Rpc {
            code: e["code"].as_i64().unwrap_or(0),
            message: e["message"].as_str().unwrap_or("error").to_string(),
        });
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_found_in_json_or_in_an_sse_stream() {
        let id = json!(7);
        let plain = br#"{"jsonrpc":"2.0","id":7,"result":{"ok":true}}"#;
        assert_eq!(reply_for(plain, &id).unwrap()["result"]["ok"], true);
        let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":1}}\n\n";
        assert_eq!(reply_for(sse, &id).unwrap()["result"]["ok"], 1);
        assert!(reply_for(b"data: {}\n\n", &id).is_err());
    }
}
