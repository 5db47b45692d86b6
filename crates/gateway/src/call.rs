//! One `tools/call`, from agent to upstream and back: resolve the name in the agent's
//! view, check reachability, validate arguments (before any upstream sees them), rate
//! limit, hold for approval when the rule says `ask`, forward with progress and
//! cancellation mapped, and make the audit event durable before answering.

use crate::Hub;
use crate::error::{CallError, ending};
use crate::policy::{AgentIdentity, Decision};
use crate::view::Exposed;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, RequestMetaObject,
    ResultType, ServerResult,
};
use rmcp::service::{PeerRequestOptions, RequestContext, RoleServer, ServiceError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::gateway::ApprovalStatus;
use toolbelt_store::approvals;

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
        res: &Result<CallToolResponse, CallError>,
    ) -> NewAuditEvent {
        let end = ending(res);
        let args_hash = hex::encode(Sha256::digest(
            toolbelt_model::canonical::to_string(self.args).as_bytes(),
        ));
        let mut detail = json!({
            "tool": self.exposed,
            "arguments_sha256": args_hash,
            "latency_us": self.started.elapsed().as_micros() as u64,
        });
        if let Some(e) = &end.error {
            detail["error"] = json!(e);
        }
        if let Some(k) = end.kind {
            detail["error_kind"] = json!(k);
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
            outcome: end.outcome,
            detail,
        }
    }
}

/// The first schema violation, naming the field.
fn validate(hit: &Exposed, args: &Value) -> Result<(), CallError> {
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
        return Err(CallError::InvalidArguments {
            field,
            reason: e.to_string(),
        });
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
    let Attempt { hit, result } = run(hub, agent, &req, &args, ctx, &mut rec.connection).await;
    // Durable before the agent sees anything; no event, no result.
    hub.audit
        .record(rec.event(hit.as_ref(), &result))
        .await
        .map_err(CallError::from)?;
    Ok(result?)
}

/// A call's outcome, with the tool it reached (none when it reached no tool).
struct Attempt {
    hit: Option<Exposed>,
    result: Result<CallToolResponse, CallError>,
}

impl Attempt {
    fn missed(e: CallError) -> Attempt {
        Attempt {
            hit: None,
            result: Err(e),
        }
    }
}

async fn run(
    hub: &Hub,
    agent: &AgentIdentity,
    req: &CallToolRequestParams,
    args: &Value,
    ctx: &RequestContext<RoleServer>,
    used: &mut Option<toolbelt_model::ConnectionId>,
) -> Attempt {
    let policy = match hub.policies.policy(&agent.agent_id).await {
        Ok(p) => p,
        Err(e) => return Attempt::missed(e.into()),
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
        return Attempt::missed(CallError::UnknownTool(req.name.to_string()));
    };
    let hit = Exposed {
        server: hit.server.clone(),
        tool: hit.tool.clone(),
        decision: hit.decision,
    };
    let result = forward(hub, agent, &hit, req, args, ctx, used).await;
    Attempt {
        hit: Some(hit),
        result,
    }
}

async fn forward(
    hub: &Hub,
    agent: &AgentIdentity,
    hit: &Exposed,
    req: &CallToolRequestParams,
    args: &Value,
    ctx: &RequestContext<RoleServer>,
    used: &mut Option<toolbelt_model::ConnectionId>,
) -> Result<CallToolResponse, CallError> {
    let server = hub
        .registry
        .get(&hit.server.id)
        .unwrap_or_else(|| hit.server.clone());
    let endpoint = server.reachable()?.clone();
    validate(hit, args)?;
    if let Some(l) = &hub.agent_limiter
        && let Err(wait) = l.take(agent.agent_id.as_str())
    {
        return Err(CallError::RateLimited {
            what: "agent",
            retry_after: wait,
        });
    }
    if let Some(l) = &hub.tool_limiter
        && let Err(wait) = l.take(&format!("{}/{}", agent.agent_id, req.name))
    {
        return Err(CallError::RateLimited {
            what: "tool",
            retry_after: wait,
        });
    }
    if hit.decision == Decision::Ask {
        ask(hub, agent, hit, args, ctx).await?;
    }
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
        .map_err(|source| CallError::Connect {
            server: server.name.clone(),
            source,
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
        .map_err(|e| CallError::upstream(&server.name, e))?;
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

/// The user credential a call to a remote server carries: the token of the connection the
/// agent was granted for it (its owner's own, never another member's). Servers behind a
/// DTMA get their credentials at deploy instead.
pub(crate) async fn credential(
    hub: &Hub,
    agent: &AgentIdentity,
    server: &crate::registry::ServerEntry,
    endpoint: &crate::upstream::Endpoint,
) -> Result<Option<toolbelt_oauth::Credential>, CallError> {
    if !matches!(endpoint, crate::upstream::Endpoint::Remote { .. }) {
        return Ok(None);
    }
    let Some(oauth) = &hub.oauth else {
        return match &server.oauth_provider {
            Some(p) => Err(CallError::NoCredential {
                message: format!(
                    "{} acts with a {p} connection, and this gateway has no OAuth configured",
                    server.name
                ),
                provider: Some(p.clone()),
            }),
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
        .map_err(|e| CallError::NoCredential {
            message: e.to_string(),
            provider: server.oauth_provider.clone(),
        })
}

/// Holds the call until the agent's owner approves it, denies it, or time runs out.
async fn ask(
    hub: &Hub,
    agent: &AgentIdentity,
    hit: &Exposed,
    args: &Value,
    ctx: &RequestContext<RoleServer>,
) -> Result<(), CallError> {
    let ttl = hub.config.ask_timeout;
    let mut c = hub.store.conn().await?;
    let a = approvals::create(
        &mut c,
        &agent.agent_id,
        &agent.owner_id,
        &hit.server.id,
        &hit.tool.name,
        args,
        ttl.as_millis() as i64,
    )
    .await?;
    drop(c);
    hub.store
        .publish(toolbelt_store::events::Event::ApprovalCreated {
            approval: a.id.clone(),
            agent: agent.agent_id.clone(),
            owner: agent.owner_id.clone(),
        })
        .await;
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
    hub.audit.record(ev).await?;
    let deadline = Instant::now() + ttl;
    loop {
        let status = {
            let mut c = hub.store.conn().await?;
            approvals::get_internal(&mut c, &a.id)
                .await
                .map(|a| a.status)
                .ok()
        };
        match status {
            Some(ApprovalStatus::Approved) => return Ok(()),
            Some(ApprovalStatus::Denied) => return Err(CallError::AskDenied(a.id.to_string())),
            _ => {}
        }
        if Instant::now() >= deadline {
            let mut c = hub.store.conn().await?;
            let _ = approvals::decide(&mut c, &a.id, ApprovalStatus::Expired, "system").await;
            hub.store
                .publish(toolbelt_store::events::Event::ApprovalResolved {
                    approval: a.id.clone(),
                    owner: agent.owner_id.clone(),
                    status: ApprovalStatus::Expired,
                })
                .await;
            return Err(CallError::AskTimedOut {
                approval: a.id.to_string(),
                after: ttl,
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = ctx.ct.cancelled() => {
                return Err(CallError::Cancelled("cancelled while waiting for approval".into()))
            }
        }
    }
}
