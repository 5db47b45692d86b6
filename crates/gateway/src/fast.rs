//! The fast path: `tools/call` and `tools/list` of an initialized legacy session, served
//! on the request's own task from the body [`crate::decode`] read once — no rmcp session
//! worker, no SSE stream to collapse. It answers only what it answers exactly as rmcp's
//! handler would (same decisions in [`crate::call`], same codes and messages, the same
//! result shaping for legacy peers); any request it is not sure of (progress tokens,
//! per-request protocol versions, SEP-2243 headers, odd media types) goes to rmcp.

use crate::call::{self, Caller};
use crate::decode::Decoded;
use crate::error::CallError;
use crate::policy::AgentIdentity;
use crate::session_table::Live;
use crate::{Hub, handler};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResponse, ClientCapabilities, RequestId, ServerJsonRpcMessage, ServerResult,
};
use std::sync::Arc;

/// Whether the fast path answers this message exactly as rmcp would (its own module,
/// so the fuzz target reaches it without the gateway's dependencies).
pub use toolbelt_wire::fast_claim::claims;

/// Answers a claimed message of session `session` (initialized, owned by `agent`).
pub async fn serve(
    hub: &Arc<Hub>,
    agent: &AgentIdentity,
    session: &str,
    live: Live,
    d: Decoded,
    trace: toolbelt_net::otel::TraceContext,
) -> Response {
    match d {
        Decoded::Call { id, params, meta } => {
            let ct = hub.session_table.call_started(session, &id);
            struct Ended<'a>(&'a Hub, &'a str, &'a RequestId);
            impl Drop for Ended<'_> {
                fn drop(&mut self) {
                    self.0.session_table.call_ended(self.1, self.2);
                }
            }
            let _ended = Ended(hub, session, &id);
            let caller = Caller {
                meta,
                peer: Some(live.peer),
                ct,
                trace,
            };
            let res = call::call_tool(hub, agent, params, &caller).await;
            json(&call_reply(id.clone(), res, live.tasks))
        }
        Decoded::List { id, cursor, .. } => list(hub, agent, id, cursor.as_deref()).await,
        _ => unreachable_claim(),
    }
}

fn unreachable_claim() -> Response {
    let e = CallError::InvalidRequest("not a message the fast path serves");
    json(&ServerJsonRpcMessage::error(e.into(), None))
}

/// The reply rmcp's handler gives a legacy peer for this outcome.
fn call_reply(
    id: RequestId,
    res: Result<CallToolResponse, McpError>,
    tasks: bool,
) -> ServerJsonRpcMessage {
    let res = match res {
        Ok(CallToolResponse::Task(_)) if !tasks => {
            Err(McpError::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            ))
        }
        Ok(CallToolResponse::InputRequired(_)) => Err(McpError::invalid_request(
            "InputRequiredResult requires negotiated protocol version 2026-07-28 or newer",
            None,
        )),
        Ok(r) => {
            let mut r = ServerResult::from(r);
            r.strip_result_type_for_legacy_peer();
            Ok(r)
        }
        Err(e) => Err(e),
    };
    match res {
        Ok(r) => ServerJsonRpcMessage::response(r, id),
        Err(e) => ServerJsonRpcMessage::error(e, Some(id)),
    }
}

async fn list(
    hub: &Arc<Hub>,
    agent: &AgentIdentity,
    id: RequestId,
    cursor: Option<&str>,
) -> Response {
    let view = match handler::current_view(hub, agent).await {
        Ok(v) => v,
        Err(e) => return json(&ServerJsonRpcMessage::error(e.into(), Some(id))),
    };
    let size = hub.config.page_size;
    // Search mode and toolsets list from the same view through their lens.
    let policy = match hub.policies.policy(&agent.agent_id).await {
        Ok(p) => p,
        Err(e) => {
            return json(&ServerJsonRpcMessage::error(
                CallError::from(e).into(),
                Some(id),
            ));
        }
    };
    let lensed = crate::search::lens::list_page(agent, &policy, &view, cursor, size);
    let pages = hub.views.pages(&view, size);
    let result = match lensed {
        Some(Ok(page)) => {
            let mut r = ServerResult::ListToolsResult(page);
            r.strip_result_type_for_legacy_peer();
            Bytes::from(serde_json::to_vec(&r).expect("a listing serializes"))
        }
        Some(Err(e)) => return json(&ServerJsonRpcMessage::error(e.into(), Some(id))),
        None => match pages.at(cursor) {
            Some(b) => b.clone(),
            None => match crate::view::pages::legacy_result(&view, cursor, size) {
                Some(b) => b,
                None => {
                    let e = CallError::InvalidParams("Invalid cursor".into());
                    return json(&ServerJsonRpcMessage::error(e.into(), Some(id)));
                }
            },
        },
    };
    // The cached result bytes spliced into the envelope: no re-serializing a listing.
    let id = serde_json::to_vec(&id).expect("an id serializes");
    let mut body = Vec::with_capacity(result.len() + id.len() + 40);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    body.extend_from_slice(&id);
    body.extend_from_slice(br#","result":"#);
    body.extend_from_slice(&result);
    body.push(b'}');
    respond(Bytes::from(body))
}

fn json(m: &ServerJsonRpcMessage) -> Response {
    let mut res = respond(Bytes::from(
        serde_json::to_vec(m).expect("a message serializes"),
    ));
    if let ServerJsonRpcMessage::Error(e) = m
        && let Some(wait) = crate::error::unavailable_retry(&e.error)
    {
        crate::http::unavailable(&mut res, wait);
    }
    res
}

fn respond(body: Bytes) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::OK;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
