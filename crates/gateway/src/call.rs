//! One `tools/call`, from agent to upstream and back: resolve the name in the agent's
//! view, check reachability, validate arguments (before any upstream sees them), rate
//! limit, hold for approval when the rule says `ask`, forward with progress and
//! cancellation mapped, and make the audit event durable before answering.

use crate::Hub;
use crate::policy::{AgentIdentity, Decision};
use crate::view::Exposed;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, ErrorCode,
    RequestMetaObject, ResultType, ServerResult,
};
use rmcp::service::{PeerRequestOptions, RequestContext, RoleServer, ServiceError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::gateway::ApprovalStatus;
use toolbelt_store::approvals;

pub const RATE_LIMITED: i32 = -32029;
pub const UNAVAILABLE: i32 = -32005;
pub const APPROVAL_DENIED: i32 = -32003;
pub const APPROVAL_TIMEOUT: i32 = -32004;
pub const UPSTREAM_FAILED: i32 = -32000;
/// The server acts with a user's OAuth token and the agent has no usable one (no
/// connection grant, or the connection needs re-authorization).
pub const NO_CREDENTIAL: i32 = -32006;

pub fn unknown_tool(name: &str) -> McpError {
    // invalid_params, not method_not_found: on the 2026-07-28 HTTP path the latter is a
    // 404. The same answer for tools that do not exist and tools the agent may not see.
    McpError::invalid_params(format!("Unknown tool: {name}"), None)
}

fn err(code: i32, msg: impl Into<String>, data: Option<Value>) -> McpError {
    McpError::new(ErrorCode(code), msg.into(), data)
}

struct Record<'a> {
    agent: &'a AgentIdentity,
    exposed: &'a str,
    args: &'a Value,
    started: Instant,
    /// The OAuth connection whose token the call carried.
    connection: Option<toolbelt_model::ConnectionId>,
}

impl Record<'_> {
    fn event(
        &self,
        hit: Option<&Exposed>,
        outcome: Outcome,
        error: Option<String>,
    ) -> NewAuditEvent {
        let args_hash = hex::encode(Sha256::digest(
            toolbelt_model::canonical::to_string(self.args).as_bytes(),
        ));
        let mut detail = json!({
            "tool": self.exposed,
            "arguments_sha256": args_hash,
            "latency_us": self.started.elapsed().as_micros() as u64,
        });
        if let Some(e) = &error {
            detail["error"] = json!(e);
        }
        if let Some(c) = &self.connection {
            detail["connection"] = json!(c);
        }
        let target = match hit {
            Some(h) => {
                detail["server"] = json!(h.server.id);
                detail["server_name"] = json!(h.server.name);
                detail["toolbox"] = json!(h.server.toolbox_name);
                detail["upstream_tool"] = json!(h.tool.name);
                if h.server.audit_arguments {
                    detail["arguments"] = self.args.clone();
                }
                Some(format!("{}/{}", h.server.id, h.tool.name))
            }
            None => None,
        };
        NewAuditEvent {
            actor_kind: ActorKind::Agent,
            actor_id: Some(self.agent.agent_id.to_string()),
            owner_id: Some(self.agent.owner_id.clone()),
            action: AuditAction::ToolCall,
            target_kind: TargetKind::Tool,
            target_id: target,
            outcome,
            detail,
        }
    }
}

/// The first schema violation, as a -32602 naming the field.
fn validate(hit: &Exposed, args: &Value) -> Result<(), McpError> {
    let Some(v) = hit.server.validators.get(hit.tool.name.as_ref()) else {
        return Ok(());
    };
    if let Some(e) = v.iter_errors(args).next() {
        let ptr = e.instance_path().as_str().to_string();
        let field = if ptr.is_empty() {
            "arguments".to_string()
        } else {
            format!("arguments{}", ptr.replace('/', "."))
        };
        return Err(McpError::invalid_params(
            format!("Invalid arguments: {field}: {e}"),
            Some(json!({ "field": field })),
        ));
    }
    Ok(())
}

pub async fn call_tool(
    hub: &Hub,
    agent: &AgentIdentity,
    req: CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let args = Value::Object(req.arguments.clone().unwrap_or_default());
    let mut rec = Record {
        agent,
        exposed: &req.name,
        args: &args,
        started: Instant::now(),
        connection: None,
    };
    let result = run(hub, agent, &req, &args, ctx, &mut rec.connection).await;
    let (hit, res) = result;
    let (outcome, error) = match &res {
        Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => (
            Outcome::Failure,
            Some("the tool reported an error".to_string()),
        ),
        Ok(_) => (Outcome::Success, None),
        Err(e) if e.code.0 == -32602 && hit.is_none() => {
            (Outcome::Denied, Some(e.message.to_string()))
        }
        Err(e) => (
            Outcome::Failure,
            Some(format!("{} ({})", e.message, e.code.0)),
        ),
    };
    // Durable before the agent sees anything; no event, no result.
    hub.audit
        .record(rec.event(hit.as_ref(), outcome, error))
        .await
        .map_err(|e| {
            McpError::internal_error(format!("the call could not be audited: {e}"), None)
        })?;
    res
}

async fn run(
    hub: &Hub,
    agent: &AgentIdentity,
    req: &CallToolRequestParams,
    args: &Value,
    ctx: &RequestContext<RoleServer>,
    used: &mut Option<toolbelt_model::ConnectionId>,
) -> (Option<Exposed>, Result<CallToolResponse, McpError>) {
    let policy = match hub.policies.policy(&agent.agent_id).await {
        Ok(p) => p,
        Err(e) => return (None, Err(McpError::internal_error(e.to_string(), None))),
    };
    // A server stopped or deleted a moment ago must not take this call.
    hub.registry.refresh_if_changed().await;
    let mut view = hub.views.get(&agent.agent_id, &policy, &hub.registry);
    if !view.by_name.contains_key(req.name.as_ref()) {
        // A call before any listing: servers just started or not yet discovered may
        // hold the tool.
        hub.registry.refresh_if_stale().await;
        let pending: Vec<_> = hub
            .registry
            .snapshot()
            .iter()
            .filter(|e| e.discovered.is_none() && policy.touches(&e.reference()))
            .map(|e| e.id.clone())
            .collect();
        if !pending.is_empty() {
            hub.registry.ensure_discovered(&pending).await;
        }
        view = hub.views.get(&agent.agent_id, &policy, &hub.registry);
    }
    let Some(hit) = view.by_name.get(req.name.as_ref()) else {
        return (None, Err(unknown_tool(&req.name)));
    };
    let hit = Exposed {
        server: hit.server.clone(),
        tool: hit.tool.clone(),
        decision: hit.decision,
    };
    let res = forward(hub, agent, &hit, req, args, ctx, used).await;
    (Some(hit), res)
}

async fn forward(
    hub: &Hub,
    agent: &AgentIdentity,
    hit: &Exposed,
    req: &CallToolRequestParams,
    args: &Value,
    ctx: &RequestContext<RoleServer>,
    used: &mut Option<toolbelt_model::ConnectionId>,
) -> Result<CallToolResponse, McpError> {
    // A silent toolbox fails at once, never hangs.
    let server = hub
        .registry
        .get(&hit.server.id)
        .unwrap_or_else(|| hit.server.clone());
    server.reachable().map_err(|e| err(UNAVAILABLE, e, None))?;
    validate(hit, args)?;
    if let Some(l) = &hub.agent_limiter
        && let Err(wait) = l.take(agent.agent_id.as_str())
    {
        return Err(rate_limited("agent", wait));
    }
    if let Some(l) = &hub.tool_limiter
        && let Err(wait) = l.take(&format!("{}/{}", agent.agent_id, req.name))
    {
        return Err(rate_limited("tool", wait));
    }
    if hit.decision == Decision::Ask {
        ask(hub, agent, hit, args, ctx).await?;
    }
    let endpoint = server
        .endpoint
        .clone()
        .ok_or_else(|| err(UNAVAILABLE, "the server has no endpoint yet", None))?;
    let cred = credential(hub, agent, &server, &endpoint).await?;
    *used = cred.as_ref().map(|c| c.connection_id.clone());
    let conn = hub
        .registry
        .upstreams
        .get(
            &server.id,
            &endpoint,
            hub.config.connect_timeout,
            cred.as_ref(),
        )
        .await
        .map_err(|e| {
            err(
                UNAVAILABLE,
                format!("cannot reach {}: {e}", server.name),
                None,
            )
        })?;
    let mut params = CallToolRequestParams::new(hit.tool.name.clone());
    params.arguments = req.arguments.clone();
    let mut meta = RequestMetaObject::new();
    for (k, v) in ctx.meta.0.0.iter() {
        // The agent's protocol keys and progress token are its own; the upstream gets ours.
        if !k.starts_with("io.modelcontextprotocol/") && k != "progressToken" {
            meta.0.0.insert(k.clone(), v.clone());
        }
    }
    let opts = PeerRequestOptions::with_timeout(hub.config.call_timeout).with_meta(meta);
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = conn
        .peer()
        .send_request_with_option(request, opts)
        .await
        .map_err(|e| upstream_error(&server.name, e))?;
    let (up_id, up_token) = (handle.id.clone(), handle.progress_token.clone());
    let routes = &hub.registry.upstreams.routes;
    if let Some(tok) = ctx.meta.get_progress_token() {
        routes.route_progress(conn.key(), up_token.clone(), (ctx.peer.clone(), tok));
    }
    routes.route_requests(conn.key(), up_id.clone(), ctx.peer.clone());
    let res = tokio::select! {
        r = handle.await_response() => r,
        _ = ctx.ct.cancelled() => {
            let _ = conn.peer().notify_cancelled(rmcp::model::CancelledNotificationParam::new(Some(up_id.clone()), Some("the agent cancelled".into()))).await;
            Err(ServiceError::Cancelled { reason: Some("the agent cancelled".into()) })
        }
    };
    routes.forget(conn.key(), &up_token, &up_id);
    match res {
        Ok(ServerResult::CallToolResult(mut r)) => {
            // A legacy upstream omits it; 2026-07-28 agents need it (rmcp strips it
            // again for legacy agents).
            r.result_type.get_or_insert(ResultType::COMPLETE);
            Ok(CallToolResponse::Complete(r))
        }
        Ok(ServerResult::InputRequiredResult(r)) => Ok(CallToolResponse::InputRequired(r)),
        Ok(ServerResult::CreateTaskResult(r)) => Ok(CallToolResponse::Task(r)),
        Ok(_) => Err(err(
            UPSTREAM_FAILED,
            format!("{} answered tools/call with something else", server.name),
            None,
        )),
        Err(e) => {
            if matches!(
                e,
                ServiceError::TransportClosed | ServiceError::TransportSend(_)
            ) {
                hub.registry.upstreams.reset(&server.id).await;
            }
            Err(upstream_error(&server.name, e))
        }
    }
}

/// The user credential a call to a remote server carries: the token of the connection the
/// agent was granted for it (its owner's own, never another member's). Servers behind a
/// DTMA get their credentials at deploy instead.
pub(crate) async fn credential(
    hub: &Hub,
    agent: &AgentIdentity,
    server: &crate::registry::ServerEntry,
    endpoint: &crate::upstream::Endpoint,
) -> Result<Option<toolbelt_oauth::Credential>, McpError> {
    if !matches!(endpoint, crate::upstream::Endpoint::Remote { .. }) {
        return Ok(None);
    }
    let Some(oauth) = &hub.oauth else {
        return match &server.oauth_provider {
            Some(p) => Err(err(
                NO_CREDENTIAL,
                format!(
                    "{} acts with a {p} connection, and this gateway has no OAuth configured",
                    server.name
                ),
                None,
            )),
            None => Ok(None),
        };
    };
    oauth
        .credential_for(
            &agent.agent_id,
            &server.id,
            server.oauth_provider.as_deref(),
        )
        .await
        .map_err(|e| {
            err(
                NO_CREDENTIAL,
                e.to_string(),
                Some(json!({ "provider": server.oauth_provider })),
            )
        })
}

/// Upstream errors pass through with their codes; transport trouble becomes -32000.
fn upstream_error(server: &str, e: ServiceError) -> McpError {
    match e {
        ServiceError::McpError(e) => e,
        ServiceError::Timeout { timeout } => err(
            -32001,
            format!(
                "{server} did not answer within {:.1} s",
                timeout.as_secs_f64()
            ),
            None,
        ),
        ServiceError::Cancelled { reason } => {
            err(-32800, reason.unwrap_or_else(|| "cancelled".into()), None)
        }
        other => err(UPSTREAM_FAILED, format!("{server} failed: {other}"), None),
    }
}

fn rate_limited(what: &str, wait: Duration) -> McpError {
    let ms = wait.as_millis().max(1) as u64;
    err(
        RATE_LIMITED,
        format!("rate limit of this {what} reached; retry after {ms} ms"),
        Some(json!({ "retry_after_ms": ms })),
    )
}

/// Holds the call until the agent's owner approves it, denies it, or time runs out.
async fn ask(
    hub: &Hub,
    agent: &AgentIdentity,
    hit: &Exposed,
    args: &Value,
    ctx: &RequestContext<RoleServer>,
) -> Result<(), McpError> {
    let ttl = hub.config.ask_timeout;
    let mut c = hub
        .store
        .conn()
        .await
        .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    let a = approvals::create(
        &mut c,
        &agent.agent_id,
        &agent.owner_id,
        &hit.server.id,
        &hit.tool.name,
        args,
        ttl.as_millis() as i64,
    )
    .await
    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    drop(c);
    let mut ev = NewAuditEvent::new(
        AuditAction::ApprovalRequest,
        TargetKind::Approval,
        Some(a.id.to_string()),
    );
    (ev.actor_kind, ev.actor_id, ev.owner_id) = (
        ActorKind::Agent,
        Some(agent.agent_id.to_string()),
        Some(agent.owner_id.clone()),
    );
    ev.detail = json!({ "server": hit.server.id, "tool": hit.tool.name });
    hub.audit
        .record(ev)
        .await
        .map_err(|e| McpError::internal_error(e, None))?;
    let deadline = Instant::now() + ttl;
    loop {
        let status = {
            let mut c = hub
                .store
                .conn()
                .await
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            approvals::get_internal(&mut c, &a.id)
                .await
                .map(|a| a.status)
                .ok()
        };
        match status {
            Some(ApprovalStatus::Approved) => return Ok(()),
            Some(ApprovalStatus::Denied) => {
                return Err(err(
                    APPROVAL_DENIED,
                    format!("the owner denied this call (approval {})", a.id),
                    Some(json!({ "approval": a.id })),
                ));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            let mut c = hub
                .store
                .conn()
                .await
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            let _ = approvals::decide(&mut c, &a.id, ApprovalStatus::Expired, "system").await;
            return Err(err(
                APPROVAL_TIMEOUT,
                format!("no approval within {} s (approval {})", ttl.as_secs(), a.id),
                Some(json!({ "approval": a.id })),
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = ctx.ct.cancelled() => return Err(err(-32800, "cancelled while waiting for approval", None)),
        }
    }
}
