//! HTTP-transport servers: requests proxied as they are to the container on the
//! toolbox's private network (no published ports), responses streamed back.

use super::Bridges;
use super::error::BridgeError;
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
    server: &str,
    base: &str,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
    trace: &[(&'static str, String)],
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
    // The bridge's span is the server's parent, not the caller's.
    for (k, v) in trace {
        req = req.header(*k, v);
    }
    let body_copy = body.clone();
    let res = match req.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            let e = if e.is_timeout() {
                BridgeError::Timeout {
                    server: server.to_string(),
                    after: b.call_timeout,
                }
            } else {
                BridgeError::Unreachable(e)
            };
            // The request's id, so the caller's client can match the error to its call.
            let reply = e.reply(&super::http::request_id(&body_copy));
            return (
                e.status(),
                [(header::CONTENT_TYPE, "application/json")],
                reply.to_string(),
            )
                .into_response();
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
