//! HTTP-transport servers: requests proxied as they are to the container on the
//! toolbox's private network (no published ports), responses streamed back.

use super::Bridges;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Headers that travel end to end. The caller's Authorization (a control-plane token)
/// never does: upstream credentials come from the vault.
const PASS: &[&str] = &[
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
];

pub async fn forward(
    b: &Bridges,
    base: &str,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut req = b
        .http
        .request(method, format!("{}/mcp", base.trim_end_matches('/')))
        .timeout(b.call_timeout);
    for h in PASS {
        if let Some(v) = headers.get(*h) {
            req = req.header(*h, v);
        }
    }
    let body_copy = body.clone();
    let res = match req.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("MCP server is unreachable on the toolbox network: {e}");
            // The request's id, so the caller's client can match the error to its call.
            let id = serde_json::from_slice::<serde_json::Value>(&body_copy)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(serde_json::Value::Null);
            return (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32000, "message": msg } }).to_string()).into_response();
        }
    };
    let mut out = Response::builder().status(res.status().as_u16());
    for h in PASS {
        if let Some(v) = res.headers().get(*h) {
            out = out.header(*h, v);
        }
    }
    out.body(Body::from_stream(res.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
