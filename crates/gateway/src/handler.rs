//! The gateway as an MCP server (rmcp `ServerHandler`): one handler per session, all
//! sharing the [`Hub`]. The agent comes from the HTTP request (the auth layer put it in
//! the request's extensions), checked again on every request.

use crate::error::CallError;
use crate::policy::AgentIdentity;
use crate::sessions::Target;
use crate::{Hub, call};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, Reference, ResultType, ServerCapabilities,
    ServerConfig, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, ServerHandler};
use std::sync::Arc;
use toolbelt_model::Page;

#[derive(Clone)]
pub struct Gateway {
    pub hub: Arc<Hub>,
}

fn agent_of<R: rmcp::service::ServiceRole>(
    ext: &rmcp::model::Extensions,
    _: std::marker::PhantomData<R>,
) -> Result<AgentIdentity, CallError> {
    // The HTTP layer put it there; missing, the request did not come through it.
    ext.get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<AgentIdentity>())
        .cloned()
        .ok_or(CallError::Unauthorized("no agent token"))
}

fn agent(ctx: &RequestContext<RoleServer>) -> Result<AgentIdentity, CallError> {
    agent_of::<RoleServer>(&ctx.extensions, std::marker::PhantomData)
}

/// Offset pagination over a list that is sorted and stable between calls.
fn page<T: Clone>(items: &[T], cursor: Option<&str>, size: usize) -> Result<Page<T>, CallError> {
    let start = match cursor {
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| CallError::InvalidParams("Invalid cursor".into()))?,
        None => 0,
    };
    let end = (start + size).min(items.len());
    Ok(Page {
        items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
        next_cursor: (end < items.len()).then(|| end.to_string()),
    })
}

/// The calling agent and what it may see right now.
struct Seen {
    agent: AgentIdentity,
    view: Arc<crate::view::View>,
}

/// The agent's view as a listing must see it: current with the store, and with the
/// servers it could see but that were never discovered discovered now, each under the
/// deadline (whoever is slow or dead is left out, not waited for).
pub async fn current_view(
    hub: &Hub,
    a: &AgentIdentity,
) -> Result<Arc<crate::view::View>, CallError> {
    let policy = hub.policies.policy(&a.agent_id).await?;
    hub.registry.refresh_if_changed().await;
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
    Ok(hub.views.get(&a.agent_id, &policy, &hub.registry))
}

impl Gateway {
    async fn view(&self, ctx: &RequestContext<RoleServer>) -> Result<Seen, CallError> {
        let a = agent(ctx)?;
        let view = current_view(&self.hub, &a).await?;
        Ok(Seen { agent: a, view })
    }
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_resources()
            .enable_completions()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("toolbelt-gateway", env!("CARGO_PKG_VERSION")))
            .with_instructions("Toolbelt: the tools this agent was granted, across toolboxes. Tool names are <server>__<tool>.")
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        // The fast path serves this session's calls from now on.
        let session = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok());
        if let Some(id) = session {
            let tasks = ctx
                .peer
                .peer_info()
                .is_some_and(|i| i.capabilities.supports_tasks());
            self.hub
                .session_table
                .initialized(id, ctx.peer.clone(), tasks);
        }
        if let Ok(a) = agent_of::<RoleServer>(&ctx.extensions, std::marker::PhantomData)
            && let Ok(policy) = self.hub.policies.policy(&a.agent_id).await
        {
            let fp = self
                .hub
                .views
                .get(&a.agent_id, &policy, &self.hub.registry)
                .fingerprint;
            self.hub
                .sessions
                .add(a.agent_id, Target::Peer(ctx.peer), fp);
        }
    }

    async fn list_tools(
        &self,
        req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let Seen { view, .. } = self.view(&ctx).await?;
        let cursor = req.as_ref().and_then(|r| r.cursor.as_deref());
        Ok(view
            .list_page(cursor, self.hub.config.page_size)
            .ok_or_else(|| CallError::InvalidParams("Invalid cursor".into()))?)
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let a = agent(&ctx)?;
        call::call_tool(&self.hub, &a, req, &call::Caller::of(&ctx)).await
    }

    async fn list_prompts(
        &self,
        req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let Seen { view, .. } = self.view(&ctx).await?;
        let prompts: Vec<_> = view.prompts.iter().map(|p| p.shown.clone()).collect();
        let Page { items, next_cursor } = page(
            &prompts,
            req.as_ref().and_then(|r| r.cursor.as_deref()),
            self.hub.config.page_size,
        )?;
        let mut r = ListPromptsResult::with_all_items(items);
        r.next_cursor = next_cursor;
        Ok(r)
    }

    async fn get_prompt(
        &self,
        req: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let Seen { agent, view } = self.view(&ctx).await?;
        let p = view
            .prompts
            .iter()
            .find(|p| p.name == req.name)
            .ok_or_else(|| CallError::InvalidParams(format!("Unknown prompt: {}", req.name)))?;
        let peer = self.peer_of(&agent, &p.server).await?;
        let mut params = req.clone();
        params.name = p.upstream.clone();
        match self
            .bounded(&p.server.name, peer.get_prompt_once(params))
            .await?
        {
            GetPromptResponse::Complete(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(r))
            }
            other => Ok(other),
        }
    }

    async fn list_resources(
        &self,
        req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let Seen { view, .. } = self.view(&ctx).await?;
        let res: Vec<_> = view.resources.iter().map(|(r, _)| r.clone()).collect();
        let Page { items, next_cursor } = page(
            &res,
            req.as_ref().and_then(|r| r.cursor.as_deref()),
            self.hub.config.page_size,
        )?;
        let mut r = ListResourcesResult::with_all_items(items);
        r.next_cursor = next_cursor;
        Ok(r)
    }

    async fn list_resource_templates(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let Seen { view, .. } = self.view(&ctx).await?;
        Ok(ListResourceTemplatesResult::with_all_items(
            view.templates.iter().map(|(t, _)| t.clone()).collect(),
        ))
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let Seen { agent, view } = self.view(&ctx).await?;
        let server = owner_of_uri(&view, &req.uri)
            .ok_or_else(|| CallError::UnknownResource(req.uri.clone()))?;
        let peer = self.peer_of(&agent, &server).await?;
        match self
            .bounded(&server.name, peer.read_resource_once(req))
            .await?
        {
            ReadResourceResponse::Complete(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(ReadResourceResponse::Complete(r))
            }
            other => Ok(other),
        }
    }

    async fn complete(
        &self,
        req: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let Seen { agent, view } = self.view(&ctx).await?;
        let mut params = req.clone();
        let server = match &req.r#ref {
            Reference::Prompt(p) => {
                let found = view
                    .prompts
                    .iter()
                    .find(|x| x.name == p.name)
                    .ok_or_else(|| {
                        CallError::InvalidParams(format!("Unknown prompt: {}", p.name))
                    })?;
                if let Reference::Prompt(pp) = &mut params.r#ref {
                    pp.name = found.upstream.clone();
                }
                found.server.clone()
            }
            Reference::Resource(r) => owner_of_uri(&view, &r.uri)
                .ok_or_else(|| CallError::UnknownResource(r.uri.clone()))?,
            _ => {
                return Err(
                    CallError::InvalidParams("Unsupported completion reference".into()).into(),
                );
            }
        };
        let peer = self.peer_of(&agent, &server).await?;
        let mut r = self.bounded(&server.name, peer.complete(params)).await?;
        r.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(r)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), McpError> {
        if ctx.accepted().tools_list_changed != Some(true) {
            ctx.cancelled().await;
            return Ok(());
        }
        let a = agent(ctx.request_context())?;
        let policy = self
            .hub
            .policies
            .policy(&a.agent_id)
            .await
            .map_err(CallError::from)?;
        let fp = self
            .hub
            .views
            .get(&a.agent_id, &policy, &self.hub.registry)
            .fingerprint;
        let id = self
            .hub
            .sessions
            .add(a.agent_id, Target::Sink(ctx.sink().clone()), fp);
        ctx.cancelled().await;
        self.hub.sessions.remove(id);
        Ok(())
    }
}

/// The server that owns a URI: an exact resource, else the template with the longest
/// literal prefix matching it.
fn owner_of_uri(view: &crate::view::View, uri: &str) -> Option<Arc<crate::registry::ServerEntry>> {
    if let Some((_, s)) = view.resources.iter().find(|(r, _)| r.uri == uri) {
        return Some(s.clone());
    }
    view.templates
        .iter()
        .filter_map(|(t, s)| {
            let prefix = t.uri_template.split('{').next().unwrap_or("");
            (!prefix.is_empty() && uri.starts_with(prefix)).then_some((prefix.len(), s))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, s)| s.clone())
}

impl Gateway {
    /// An upstream request other than a tool call, bounded by the same call timeout:
    /// no request waits on a silent server for ever.
    async fn bounded<T>(
        &self,
        server: &str,
        request: impl std::future::Future<Output = Result<T, rmcp::service::ServiceError>>,
    ) -> Result<T, CallError> {
        let after = self.hub.config.call_timeout;
        match tokio::time::timeout(after, request).await {
            Ok(r) => r.map_err(|e| CallError::upstream(server, e)),
            Err(_) => Err(CallError::Timeout {
                server: server.to_string(),
                after,
            }),
        }
    }

    /// The upstream session for this agent's requests to `server` (with the user
    /// credential the agent was granted for it, if it acts with one).
    async fn peer_of(
        &self,
        agent: &AgentIdentity,
        server: &crate::registry::ServerEntry,
    ) -> Result<rmcp::service::Peer<rmcp::service::RoleClient>, CallError> {
        let ep = server.reachable()?;
        let cred = call::credential(&self.hub, agent, server, ep).await?;
        let conn = self
            .hub
            .registry
            .upstreams
            .get(
                &server.id,
                ep,
                self.hub.config.connect_timeout,
                cred.as_ref(),
            )
            .await
            .map_err(|source| CallError::Connect {
                server: server.name.clone(),
                source,
            })?;
        Ok(conn.peer().clone())
    }
}
