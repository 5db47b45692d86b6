//! `/mcp/{server}`: the Streamable HTTP face of a stdio server.
//!
//! `initialize` is answered from the DTMA's own handshake with the server (one stdio
//! session serves every client); requests are forwarded and answered as JSON, or as an
//! SSE stream when progress or server requests arrive first and the client accepts SSE.

use super::error::BridgeError;
use super::mux::{Event, Upstream};
use super::{Bridges, Target, proxy};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const SESSION_HEADER: &str = "mcp-session-id";

fn rpc_error(e: BridgeError, id: &Value) -> Response {
    let body = e.reply(id);
    (
        e.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_response(v: &Value, session: Option<&str>) -> Response {
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response();
    if let Some(s) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        res.headers_mut().insert(SESSION_HEADER, s);
    }
    res
}

fn sse_frame(v: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {v}\n\n"))
}

fn accepts_sse(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .map(|s| s.contains("text/event-stream"))
            .unwrap_or(false)
    })
}

/// The request's own id: a reply without it (`id: null`) cannot be matched by the
/// caller's client, which then waits for its timeout instead of seeing the error.
pub(super) fn request_id(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

fn not_running(server: &str, body: &[u8]) -> Response {
    rpc_error(BridgeError::NotHere(server.to_string()), &request_id(body))
}

/// POST: one JSON-RPC message from a client, in a span of the caller's trace (its
/// `traceparent`), which an HTTP server behind the bridge is sent on.
pub async fn post(
    State(b): State<Arc<Bridges>>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use toolbelt_net::otel::{Attribute, Kind, Span};
    let parent = toolbelt_net::otel::incoming(&headers);
    let span = Span::start("dtma /mcp/{server}", Kind::Server, &parent, || {
        vec![Attribute::new("toolbelt.server", server.clone())]
    });
    let res = post_in(b, server, headers, body, &span).await;
    if !res.status().is_success() {
        span.fail(|| format!("HTTP {}", res.status()));
    }
    res
}

async fn post_in(
    b: Arc<Bridges>,
    server: String,
    headers: HeaderMap,
    body: Bytes,
    span: &toolbelt_net::otel::Span,
) -> Response {
    let up = match b.get(&server) {
        Some(Target::Stdio(up)) if up.is_alive() => up,
        Some(Target::Http(base)) => {
            let trace = toolbelt_net::otel::outgoing(&span.context());
            return proxy::forward(
                &b,
                &server,
                &base,
                axum::http::Method::POST,
                &headers,
                body,
                &trace,
            )
            .await;
        }
        Some(_) | None => return not_running(&server, &body),
    };
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return rpc_error(BridgeError::Parse(e), &Value::Null),
    };
    if !msg.is_object() || msg["jsonrpc"] != "2.0" {
        return rpc_error(
            BridgeError::InvalidRequest(
                "send one JSON-RPC 2.0 message (batches are not supported)",
            ),
            &Value::Null,
        );
    }
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(s) = &session
        && !b.touch_session(s, &server)
    {
        return rpc_error(
            BridgeError::SessionNotFound,
            msg.get("id").unwrap_or(&Value::Null),
        );
    }
    let session_key = session.clone().unwrap_or_default();
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    match (method.as_deref(), msg.get("id").cloned()) {
        (Some("initialize"), Some(id)) => match up.init_result() {
            Some(init) => {
                let sid = b.new_session(&server);
                json_response(
                    &json!({ "jsonrpc": "2.0", "id": id, "result": init }),
                    Some(&sid),
                )
            }
            None => rpc_error(BridgeError::Starting, &id),
        },
        (Some(_), Some(id)) => {
            forward_request(&b, up, msg, id, &session_key, accepts_sse(&headers)).await
        }
        (Some("notifications/initialized"), None) => StatusCode::ACCEPTED.into_response(),
        (Some(_), None) => {
            up.notify_from_client(msg, &session_key);
            StatusCode::ACCEPTED.into_response()
        }
        (None, Some(_)) if msg.get("result").is_some() || msg.get("error").is_some() => {
            up.respond_from_client(&msg);
            StatusCode::ACCEPTED.into_response()
        }
        _ => rpc_error(
            BridgeError::InvalidRequest("neither a request, a notification nor a response"),
            &Value::Null,
        ),
    }
}

async fn forward_request(
    b: &Bridges,
    up: Arc<Upstream>,
    msg: Value,
    id: Value,
    session: &str,
    sse: bool,
) -> Response {
    let timeout = b.call_timeout;
    let mut call = up.call(msg, session);
    // Answer with plain JSON unless something must be streamed before the reply.
    let first = loop {
        match call.next(timeout, &id).await {
            Event::Done(v) => return json_response(&v, None),
            Event::Relay(v) if sse => break v,
            Event::Relay(_) => continue,
        }
    };
    let stream = futures::stream::unfold(
        (Some(first), Some(call), id),
        move |(first, call, id)| async move {
            if let Some(v) = first {
                return Some((
                    Ok::<_, std::convert::Infallible>(sse_frame(&v)),
                    (None, call, id),
                ));
            }
            let mut call = call?;
            match call.next(timeout, &id).await {
                Event::Relay(v) => Some((Ok(sse_frame(&v)), (None, Some(call), id))),
                Event::Done(v) => Some((Ok(sse_frame(&v)), (None, None, id))),
            }
        },
    );
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// GET: the server's notifications (list changes, log messages) as an SSE stream.
pub async fn get(
    State(b): State<Arc<Bridges>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    let up = match b.get(&server) {
        Some(Target::Stdio(up)) if up.is_alive() => up,
        Some(Target::Http(base)) => {
            return proxy::forward(
                &b,
                &server,
                &base,
                axum::http::Method::GET,
                &headers,
                Bytes::new(),
                &[],
            )
            .await;
        }
        Some(_) | None => return not_running(&server, &[]),
    };
    if !accepts_sse(&headers) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let rx = tokio_stream_from(up.subscribe());
    let closed = {
        let up = up.clone();
        async move { up.closed().await }
    };
    let keepalive = futures::stream::unfold((), |_| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Bytes::from_static(b": keep-alive\n\n"), ()))
    });
    let events = futures::stream::select(
        rx.map(|line| Bytes::from(format!("event: message\ndata: {line}\n\n"))),
        keepalive,
    )
    .take_until(closed)
    .map(Ok::<_, std::convert::Infallible>);
    let mut res = Response::new(Body::from_stream(events));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    res
}

fn tokio_stream_from(
    rx: tokio::sync::broadcast::Receiver<Arc<str>>,
) -> futures::stream::BoxStream<'static, Arc<str>> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => return Some((v, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// DELETE: ends a session.
pub async fn delete(
    State(b): State<Arc<Bridges>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(Target::Http(base)) = b.get(&server) {
        return proxy::forward(
            &b,
            &server,
            &base,
            axum::http::Method::DELETE,
            &headers,
            Bytes::new(),
            &[],
        )
        .await;
    }
    match headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        Some(s) if b.end_session(s) => StatusCode::OK.into_response(),
        Some(_) => StatusCode::NOT_FOUND.into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}
