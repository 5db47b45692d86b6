//! Sending a call upstream: on the caller's own task as one POST within the pooled
//! session ([`crate::upstream_call`]) when no progress has to be routed back, else
//! through rmcp's peer (progress and the upstream's own requests routed to the agent).

use super::Caller;
use crate::Hub;
use crate::error::CallError;
use crate::registry::ServerEntry;
use crate::upstream::{Conn, Endpoint};
use crate::view::Exposed;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotificationParam,
    ClientRequest, RequestMetaObject, ResultType, ServerResult,
};
use rmcp::service::{PeerRequestOptions, ServiceError};
use toolbelt_net::otel::{Attribute, Kind, Span, TraceContext};

/// The upstream request, in a client span of its own whose `traceparent` it carries.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    hub: &Hub,
    server: &ServerEntry,
    endpoint: &Endpoint,
    cred: Option<&toolbelt_oauth::Credential>,
    hit: &Exposed,
    req: &CallToolRequestParams,
    ctx: &Caller,
    trace: &TraceContext,
) -> Result<CallToolResponse, CallError> {
    let span = Span::start("upstream tools/call", Kind::Client, trace, || {
        let via = match endpoint {
            Endpoint::Remote { .. } => "remote",
            _ => "dtma",
        };
        vec![
            Attribute::new("toolbelt.server", server.name.clone()),
            Attribute::new("toolbelt.upstream", via),
        ]
    });
    let res = send_in(hub, server, endpoint, cred, hit, req, ctx, &span).await;
    if let Err(e) = &res {
        span.fail(|| e.to_string());
    }
    res
}

#[allow(clippy::too_many_arguments)]
async fn send_in(
    hub: &Hub,
    server: &ServerEntry,
    endpoint: &Endpoint,
    cred: Option<&toolbelt_oauth::Credential>,
    hit: &Exposed,
    req: &CallToolRequestParams,
    ctx: &Caller,
    span: &Span,
) -> Result<CallToolResponse, CallError> {
    let trace_headers = toolbelt_net::otel::outgoing(&span.context());
    let mut params = CallToolRequestParams::new(hit.tool().name.clone());
    params.arguments = req.arguments.clone();
    let mut meta = RequestMetaObject::new();
    for (k, v) in ctx.meta.0.0.iter() {
        // The agent's protocol keys and progress token are its own; the upstream gets ours.
        if !k.starts_with("io.modelcontextprotocol/") && k != "progressToken" {
            meta.0.0.insert(k.clone(), v.clone());
        }
    }
    // A session the upstream forgot took nothing: one retry on a new session.
    for attempt in 0..2 {
        let conn = hub
            .registry
            .upstreams
            .get(&server.id, endpoint, hub.config.connect_timeout, cred)
            .await
            .map_err(|source| CallError::Connect {
                server: server.name.clone(),
                source,
            })?;
        // Without progress to route back, the call goes out on the caller's own task.
        let wire = conn
            .wire()
            .filter(|_| hub.config.direct_upstream && ctx.meta.get_progress_token().is_none());
        let Some(wire) = wire else {
            return through_rmcp(hub, server, &conn, params, meta, ctx).await;
        };
        let routes = &hub.registry.upstreams.routes;
        let timeout = hub.config.call_timeout;
        let sent = crate::upstream_call::call_tool(
            &conn,
            &wire,
            params.clone(),
            meta.clone(),
            timeout,
            ctx,
            routes,
            &trace_headers,
        );
        match sent.await {
            Ok(res) => return finish(hub, server, res).await,
            Err(crate::upstream_call::Expired) => {
                tracing::debug!(server = %server.name, attempt, "upstream session expired");
                hub.registry.upstreams.reset(&server.id).await;
            }
        }
    }
    Err(CallError::UpstreamFailed {
        server: server.name.clone(),
        reason: "its session expired twice".into(),
    })
}

async fn through_rmcp(
    hub: &Hub,
    server: &ServerEntry,
    conn: &Conn,
    params: CallToolRequestParams,
    meta: RequestMetaObject,
    ctx: &Caller,
) -> Result<CallToolResponse, CallError> {
    let opts = PeerRequestOptions::with_timeout(hub.config.call_timeout).with_meta(meta);
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = conn
        .peer()
        .send_request_with_option(request, opts)
        .await
        .map_err(|e| CallError::upstream(&server.name, e))?;
    let (up_id, up_token) = (handle.id.clone(), handle.progress_token.clone());
    let routes = &hub.registry.upstreams.routes;
    if let (Some(tok), Some(peer)) = (ctx.meta.get_progress_token(), &ctx.peer) {
        routes.route_progress(conn.key(), up_token.clone(), (peer.clone(), tok));
    }
    if let Some(peer) = &ctx.peer {
        routes.route_requests(conn.key(), up_id.clone(), peer.clone());
    }
    let res = tokio::select! {
        r = handle.await_response() => r,
        _ = ctx.ct.cancelled() => {
            let why = CancelledNotificationParam::new(Some(up_id.clone()), Some("the agent cancelled".into()));
            let _ = conn.peer().notify_cancelled(why).await;
            Err(ServiceError::Cancelled { reason: Some("the agent cancelled".into()) })
        }
    };
    routes.forget(conn.key(), &up_token, &up_id);
    finish(hub, server, res).await
}

/// The upstream's answer to `tools/call`, as the agent gets it.
async fn finish(
    hub: &Hub,
    server: &ServerEntry,
    res: Result<ServerResult, ServiceError>,
) -> Result<CallToolResponse, CallError> {
    match res {
        Ok(ServerResult::CallToolResult(mut r)) => {
            // A legacy upstream omits it; 2026-07-28 agents need it (rmcp strips it
            // again for legacy agents).
            r.result_type.get_or_insert(ResultType::COMPLETE);
            Ok(CallToolResponse::Complete(r))
        }
        Ok(ServerResult::InputRequiredResult(r)) => Ok(CallToolResponse::InputRequired(r)),
        Ok(ServerResult::CreateTaskResult(r)) => Ok(CallToolResponse::Task(r)),
        Ok(_) => Err(CallError::UpstreamFailed {
            server: server.name.clone(),
            reason: "it answered tools/call with something else".into(),
        }),
        Err(e) => {
            if matches!(
                e,
                ServiceError::TransportClosed | ServiceError::TransportSend(_)
            ) {
                hub.registry.upstreams.reset(&server.id).await;
            }
            Err(CallError::upstream(&server.name, e))
        }
    }
}
