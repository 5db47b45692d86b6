//! `tools/call` posted to the upstream on the caller's own task: the session is rmcp's
//! (its handshake, its standalone stream for `list_changed`, its renewal), the request is
//! ours — one POST on the pooled keep-alive connections of the session's HTTP client, its
//! reply read here, with no hop through rmcp's service and transport tasks. A reply that
//! streams (the upstream asks the agent something first) is followed to its end.

use crate::upstream::{Conn, Routes};
use crate::upstream_client::Wire;
use futures::StreamExt;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotification, CancelledNotificationParam,
    ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage, RequestId,
    RequestMetaObject, ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use rmcp::service::{Peer, RoleServer, ServiceError};
use rmcp::transport::DynamicTransportError;
use std::sync::Arc;
use std::time::Duration;

const SESSION: &str = "mcp-session-id";

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> ServiceError {
    ServiceError::TransportSend(DynamicTransportError::from_parts(
        "streamable-http",
        std::any::TypeId::of::<crate::upstream_client::UpstreamClient>(),
        Box::new(e),
    ))
}

#[derive(Debug, thiserror::Error)]
enum ReplyError {
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// The upstream no longer knows the session (404): the request was not processed, so
/// the caller may open a new session and send it again.
#[derive(Debug)]
pub struct Expired;

/// `trace`: the `traceparent` (and `tracestate`) of the call's upstream span.
fn post(
    conn: &Conn,
    wire: &Wire,
    msg: &ClientJsonRpcMessage,
    trace: &[(&'static str, String)],
) -> reqwest::RequestBuilder {
    let mut req = conn
        .http
        .post(wire.uri.as_ref())
        .header(
            reqwest::header::ACCEPT,
            "text/event-stream, application/json",
        )
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(a) = &wire.auth_header {
        req = req.bearer_auth(a);
    }
    for (k, v) in &wire.headers {
        req = req.header(k, v);
    }
    if let Some(s) = &wire.session_id {
        req = req.header(SESSION, s.as_ref());
    }
    for (k, v) in trace {
        req = req.header(*k, v);
    }
    req.body(serde_json::to_vec(msg).expect("a request serializes"))
}

/// Calls the tool; the outcome as rmcp's peer would report it, so the caller maps it the
/// one way it maps every upstream answer.
#[allow(clippy::too_many_arguments)]
pub async fn call_tool(
    conn: &Conn,
    wire: &Wire,
    mut params: CallToolRequestParams,
    meta: RequestMetaObject,
    timeout: Duration,
    caller: &crate::call::Caller,
    routes: &Arc<Routes>,
    trace: &[(&'static str, String)],
) -> Result<Result<ServerResult, ServiceError>, Expired> {
    if !meta.0.0.is_empty() {
        params.meta = Some(meta);
    }
    let id = conn.next_id();
    let msg = ClientJsonRpcMessage::request(
        ClientRequest::CallToolRequest(CallToolRequest::new(params)),
        id.clone(),
    );
    let exchange = exchange(
        conn,
        wire,
        &msg,
        &id,
        caller.peer.as_ref(),
        routes,
        conn.max_reply,
        trace,
    );
    tokio::select! {
        r = tokio::time::timeout(timeout, exchange) => match r {
            Ok(r) => r,
            Err(_) => {
                cancel(conn, wire, &id, "the call timed out").await;
                Ok(Err(ServiceError::Timeout { timeout }))
            }
        },
        _ = caller.ct.cancelled() => {
            cancel(conn, wire, &id, "the agent cancelled").await;
            Ok(Err(ServiceError::Cancelled { reason: Some("the agent cancelled".into()) }))
        }
    }
}

async fn cancel(conn: &Conn, wire: &Wire, id: &RequestId, why: &str) {
    let note = ClientJsonRpcMessage::notification(ClientNotification::CancelledNotification(
        CancelledNotification::new(CancelledNotificationParam::new(
            Some(id.clone()),
            Some(why.into()),
        )),
    ));
    let _ = post(conn, wire, &note, &[]).send().await;
}

#[allow(clippy::too_many_arguments)]
async fn exchange(
    conn: &Conn,
    wire: &Wire,
    msg: &ClientJsonRpcMessage,
    id: &RequestId,
    agent: Option<&Peer<RoleServer>>,
    routes: &Arc<Routes>,
    max_reply: usize,
    trace: &[(&'static str, String)],
) -> Result<Result<ServerResult, ServiceError>, Expired> {
    let res = match post(conn, wire, msg, trace).send().await {
        Ok(r) => r,
        Err(e) => return Ok(Err(failed(e))),
    };
    if res.status() == reqwest::StatusCode::NOT_FOUND && wire.session_id.is_some() {
        return Err(Expired);
    }
    Ok(read(conn, wire, res, id, agent, routes, max_reply).await)
}

async fn read(
    conn: &Conn,
    wire: &Wire,
    res: reqwest::Response,
    id: &RequestId,
    agent: Option<&Peer<RoleServer>>,
    routes: &Arc<Routes>,
    max_reply: usize,
) -> Result<ServerResult, ServiceError> {
    let status = res.status();
    let sse = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !sse {
        let json = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let body = match crate::reply_cap::body(res, max_reply)
            .await
            .map_err(failed)?
        {
            Ok(b) => b,
            Err(too_large) => return Err(ServiceError::McpError(too_large)),
        };
        if !json {
            return Err(failed(ReplyError::Status(status)));
        }
        let m: ServerJsonRpcMessage = serde_json::from_slice(&body)
            .map_err(|e| failed(ReplyError::Unexpected(e.to_string())))?;
        return match answer(m, id) {
            Some(r) => r,
            None => Err(failed(ReplyError::Unexpected(
                "not the answer to the call".into(),
            ))),
        };
    }
    let tripped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bytes = crate::reply_cap::bounded(res.bytes_stream(), max_reply, tripped.clone());
    let mut events = sse_stream::SseStream::from_bytes_stream(bytes);
    while let Some(ev) = events.next().await {
        if tripped.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ServiceError::McpError(crate::reply_cap::too_large(
                max_reply,
            )));
        }
        let ev = ev.map_err(|e| failed(ReplyError::Unexpected(e.to_string())))?;
        let Some(data) = ev.data.filter(|d| !d.trim().is_empty()) else {
            continue;
        };
        let Ok(m) = serde_json::from_str::<ServerJsonRpcMessage>(&data) else {
            continue;
        };
        if let Some(r) = answer(m.clone(), id) {
            return r;
        }
        match m {
            JsonRpcMessage::Request(r) => {
                let reply = match agent {
                    Some(p) => crate::upstream::ask_agent(p, r.request).await,
                    None => Err(crate::error::CallError::NoAgentSession.into()),
                };
                let back = match reply {
                    Ok(res) => ClientJsonRpcMessage::response(res, r.id),
                    Err(e) => ClientJsonRpcMessage::error(e, Some(r.id)),
                };
                post(conn, wire, &back, &[]).send().await.map_err(failed)?;
            }
            JsonRpcMessage::Notification(n) => {
                if let ServerNotification::ToolListChangedNotification(_) = n.notification {
                    routes.tools_changed(conn.server()).await;
                }
            }
            _ => {}
        }
    }
    Err(ServiceError::TransportClosed)
}

/// The message that answers request `id` (an id-less error answers it too).
fn answer(m: ServerJsonRpcMessage, id: &RequestId) -> Option<Result<ServerResult, ServiceError>> {
    match m {
        JsonRpcMessage::Response(r) if &r.id == id => Some(Ok(r.result)),
        JsonRpcMessage::Error(e) if e.id.as_ref().is_none_or(|i| i == id) => {
            Some(Err(ServiceError::McpError(e.error)))
        }
        _ => None,
    }
}
