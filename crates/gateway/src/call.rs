//! One `tools/call`, from agent to upstream and back: resolve the name in the agent's
//! view, check reachability, validate arguments (before any upstream sees them), rate
//! limit, hold for approval when the rule says `ask`, forward with progress and
//! cancellation mapped, and make the audit event durable before answering.

mod send;

use crate::Hub;
use crate::error::{CallError, ending};
use crate::policy::{AgentIdentity, Decision};
use crate::view::Exposed;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolRequestParams, CallToolResponse, RequestMetaObject};
use rmcp::service::{Peer, RequestContext, RoleServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::gateway::ApprovalStatus;
use toolbelt_net::otel::{Attribute, Kind, Span, TraceContext};
use toolbelt_store::approvals;

struct Record<'a> {
    agent: &'a AgentIdentity,
    exposed: &'a str,
    args: &'a Value,
    started: Instant,
}

impl Record<'_> {
    /// `connection`: the OAuth connection whose token the call carried; `agent_name`: the
    /// agent's name as its policy has it (metrics label calls with it).
    fn event(
        &self,
        hit: Option<&Exposed>,
        res: &Result<CallToolResponse, CallError>,
        connection: Option<&toolbelt_model::ConnectionId>,
        agent_name: Option<&str>,
    ) -> NewAuditEvent {
        let end = ending(res);
        let args_hash = hex::encode(Sha256::digest(
            toolbelt_model::canonical::to_string(self.args).as_bytes(),
        ));
        let mut detail = json!({
            "tool": crate::error::clip(self.exposed, crate::error::AUDIT_NAME_CHARS),
            "arguments_sha256": args_hash,
            "latency_us": self.started.elapsed().as_micros() as u64,
        });
        if let Some(e) = &end.error {
            detail["error"] = json!(e);
        }
        if let Some(k) = end.kind {
            detail["error_kind"] = json!(k);
        }
        if let Some(c) = connection {
            detail["connection"] = json!(c);
        }
        if let Some(n) = agent_name {
            detail["agent_name"] = json!(n);
        }
        if let Some(chat) = &self.agent.chat {
            detail["via"] = json!("chat");
            detail["chat"] = json!(chat);
        }
        // A token of Toolbelt's authorization server: which OAuth client acts as the agent.
        if let Some(client) = &self.agent.oauth_client {
            detail["via"] = json!("oauth");
            detail["oauth_client"] = json!(client.as_ref());
        }
        let target = match hit {
            Some(h) => {
                detail["server"] = json!(h.server.id);
                detail["server_name"] = json!(h.server.name);
                detail["toolbox"] = json!(h.server.toolbox_name);
                detail["upstream_tool"] = json!(h.tool().name);
                if h.server.audit_arguments {
                    detail["arguments"] = self.args.clone();
                }
                Some(format!("{}/{}", h.server.id, h.tool().name))
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

/// What a call needs of the agent's request, whichever way it came (rmcp's handler or
/// the fast path).
pub struct Caller {
    /// The request's `_meta`.
    pub meta: RequestMetaObject,
    /// The agent's session: where the upstream's own requests (sampling, elicitation,
    /// roots) and progress go.
    pub peer: Option<Peer<RoleServer>>,
    /// Cancelled when the agent cancels the request.
    pub ct: CancellationToken,
    /// The span of the agent's HTTP request (empty when tracing is off).
    pub trace: TraceContext,
}

/// The request span's context, left in the request's extensions by the HTTP layer for
/// the requests rmcp serves.
#[derive(Clone)]
pub struct Traced(pub TraceContext);

impl Caller {
    pub fn of(ctx: &RequestContext<RoleServer>) -> Caller {
        let trace = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<Traced>())
            .map(|t| t.0.clone())
            .unwrap_or_default();
        Caller {
            meta: ctx.meta.clone(),
            peer: Some(ctx.peer.clone()),
            ct: ctx.ct.clone(),
            trace,
        }
    }
}

/// The first schema violation, naming the field.
fn validate(hit: &Exposed, args: &Value) -> Result<(), CallError> {
    let Some(v) = hit.server.validators.get(hit.tool().name.as_ref()) else {
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

/// One `tools/call` as the agent sent it: the meta tools of search mode
/// (`crate::search::meta`) are answered or unwrapped there, everything else goes the
/// one way, [`call_direct`].
pub async fn call_tool(
    hub: &Hub,
    agent: &AgentIdentity,
    req: CallToolRequestParams,
    ctx: &Caller,
) -> Result<CallToolResponse, McpError> {
    if let Some(r) = crate::search::meta::intercept(hub, agent, &req, ctx).await {
        return r;
    }
    call_direct(hub, agent, req, ctx).await
}

/// A call of a named tool, from lookup to its durable audit event.
pub async fn call_direct(
    hub: &Hub,
    agent: &AgentIdentity,
    req: CallToolRequestParams,
    ctx: &Caller,
) -> Result<CallToolResponse, McpError> {
    let args = Value::Object(req.arguments.clone().unwrap_or_default());
    let rec = Record {
        agent,
        exposed: &req.name,
        args: &args,
        started: Instant::now(),
    };
    let mut unanswered = Unanswered {
        hub,
        rec: &rec,
        armed: true,
    };
    let mut connection = None;
    let span = Span::start("tools/call", Kind::Internal, &ctx.trace, || {
        vec![
            Attribute::new("mcp.method.name", "tools/call"),
            Attribute::new("toolbelt.agent_id", agent.agent_id.to_string()),
        ]
    });
    let Attempt {
        hit,
        result,
        agent_name,
    } = run(
        hub,
        agent,
        &req,
        &args,
        ctx,
        &span.context(),
        &mut connection,
    )
    .await;
    unanswered.armed = false;
    traced(&span, hit.as_ref(), &result, agent_name.as_deref());
    // Durable before the agent sees anything; no event, no result.
    hub.audit
        .record(rec.event(
            hit.as_ref(),
            &result,
            connection.as_ref(),
            agent_name.as_deref(),
        ))
        .await
        .map_err(CallError::from)?;
    Ok(result?)
}

/// Names and outcome on the call's span (never arguments or results).
fn traced(
    span: &Span,
    hit: Option<&Exposed>,
    res: &Result<CallToolResponse, CallError>,
    agent_name: Option<&str>,
) {
    let end = ending(res);
    let outcome = match (end.outcome, end.kind) {
        (toolbelt_model::audit::Outcome::Success, _) => "success",
        (_, Some(kind)) => kind,
        (o, None) => o.as_str(),
    };
    span.set(|| {
        let mut a = vec![Attribute::new("toolbelt.outcome", outcome)];
        if let Some(n) = agent_name {
            a.push(Attribute::new("toolbelt.agent", n.to_string()));
        }
        if let Some(h) = hit {
            a.push(Attribute::new(
                "toolbelt.toolbox",
                h.server.toolbox_name.to_string(),
            ));
            a.push(Attribute::new("toolbelt.server", h.server.name.to_string()));
            a.push(Attribute::new("toolbelt.tool", h.tool().name.to_string()));
        }
        a
    });
    if let Some(e) = end.error {
        span.fail(|| e);
    }
}

/// A call's outcome, with the tool it reached (none when it reached no tool).
struct Attempt {
    hit: Option<Exposed>,
    result: Result<CallToolResponse, CallError>,
    agent_name: Option<std::sync::Arc<str>>,
}

impl Attempt {
    fn missed(e: CallError) -> Attempt {
        Attempt {
            hit: None,
            result: Err(e),
            agent_name: None,
        }
    }
}

/// A call whose agent went away (its request dropped mid-call, as a closed connection
/// does to the fast path) still ends in its audit event.
struct Unanswered<'a> {
    hub: &'a Hub,
    rec: &'a Record<'a>,
    armed: bool,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let gone = Err(CallError::Cancelled(
            "the agent went away before the answer".into(),
        ));
        let ev = self.rec.event(None, &gone, None, None);
        let audit = self.hub.audit.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = audit.record(ev).await {
                    tracing::error!(error = %e, "could not audit an abandoned call");
                }
            });
        }
    }
}

async fn run(
    hub: &Hub,
    agent: &AgentIdentity,
    req: &CallToolRequestParams,
    args: &Value,
    ctx: &Caller,
    trace: &TraceContext,
    used: &mut Option<toolbelt_model::ConnectionId>,
) -> Attempt {
    let policy = match hub.policies.policy(&agent.agent_id).await {
        Ok(p) => p,
        Err(e) => return Attempt::missed(e.into()),
    };
    // A server stopped or deleted a moment ago must not take this call.
    hub.registry.refresh_if_changed().await;
    let mut view = hub.views.get(&agent.agent_id, &policy, &hub.registry);
    if view.lookup(&req.name).is_none() {
        // A call before any listing: servers just started or not yet discovered may
        // hold the tool.
        hub.registry.refresh_if_stale().await;
        let pending = hub.registry.pending(&policy);
        if !pending.is_empty() {
            hub.registry.ensure_discovered(&pending).await;
        }
        view = hub.views.get(&agent.agent_id, &policy, &hub.registry);
    }
    // A toolset endpoint calls its own tools only; what it may not call does not exist.
    let lens = crate::search::lens::of(agent, &policy);
    let agent_name = policy.agent_name.clone();
    let Some(hit) = view.lookup(&req.name).filter(|e| lens.callable(e)).cloned() else {
        return Attempt {
            agent_name,
            ..Attempt::missed(CallError::UnknownTool(req.name.to_string()))
        };
    };
    let result = forward(hub, agent, &hit, req, args, ctx, trace, used).await;
    Attempt {
        hit: Some(hit),
        result,
        agent_name,
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    hub: &Hub,
    agent: &AgentIdentity,
    hit: &Exposed,
    req: &CallToolRequestParams,
    args: &Value,
    ctx: &Caller,
    trace: &TraceContext,
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
    send::send(hub, &server, &endpoint, cred.as_ref(), hit, req, ctx, trace).await
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
    let cred = oauth
        .credential_for(
            &agent.agent_id,
            &server.id,
            server.oauth_provider.as_deref(),
        )
        .await
        .map_err(|e| CallError::NoCredential {
            message: e.to_string(),
            provider: server.oauth_provider.clone(),
        })?;
    // The agent was shown what one connection listed; a call made with another (grants
    // changed in between) would act on a listing that connection never saw.
    if let (Some(listed), Some(c)) = (&server.connection, &cred)
        && listed != &c.connection_id
    {
        return Err(CallError::NoCredential {
            message: format!(
                "the agent's connection for {} changed since it listed its tools: list them again",
                server.name
            ),
            provider: server.oauth_provider.clone(),
        });
    }
    Ok(cred)
}

/// Holds the call until the agent's owner approves it, denies it, or time runs out.
async fn ask(
    hub: &Hub,
    agent: &AgentIdentity,
    hit: &Exposed,
    args: &Value,
    ctx: &Caller,
) -> Result<(), CallError> {
    let ttl = hub.config.ask_timeout;
    let mut c = hub.store.conn().await?;
    let a = approvals::create(
        &mut c,
        &agent.agent_id,
        &agent.owner_id,
        &hit.server.id,
        &hit.tool().name,
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
    ev.detail = json!({ "server": hit.server.id, "tool": hit.tool().name });
    if let Some(chat) = &agent.chat {
        ev.detail["via"] = json!("chat");
        ev.detail["chat"] = json!(chat);
    }
    if let Some(client) = &agent.oauth_client {
        ev.detail["via"] = json!("oauth");
        ev.detail["oauth_client"] = json!(client.as_ref());
    }
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
