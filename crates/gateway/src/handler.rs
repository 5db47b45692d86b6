//! The gateway as an MCP server (rmcp `ServerHandler`): one handler per session, all
//! sharing the [`Hub`]. The agent comes from the HTTP request (the auth layer put it in
//! the request's extensions), checked again on every request.

use crate::error::{AUDIT_NAME_CHARS, CallError, clip};
use crate::policy::AgentIdentity;
use crate::request_audit::RequestAudit;
use crate::sessions::Target;
use crate::{Hub, call};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, Reference, ServerCapabilities, ServerConfig,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::json;
use std::sync::Arc;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditAction, TargetKind};

#[derive(Clone)]
pub struct Gateway {
    pub hub: Arc<Hub>,
}

mod forward;

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

/// Offset pagination over a list that is sorted and stable between calls (the same
/// bounds as `tools/list`: any number, however large, is a cursor past the end).
fn page<T: Clone>(items: &[T], cursor: Option<&str>, size: usize) -> Result<Page<T>, CallError> {
    let (start, end, next_cursor) = crate::view::page_bounds(items.len(), cursor, size)
        .ok_or_else(|| CallError::InvalidParams("Invalid cursor".into()))?;
    Ok(Page {
        items: items[start..end].to_vec(),
        next_cursor,
    })
}

/// What the calling agent may see right now.
struct Seen {
    view: Arc<crate::view::View>,
}

/// The agent's view as a listing must see it: current with the store, and with the
/// servers it could see but that were never discovered discovered now, each under the
/// deadline (whoever is slow or dead is left out, not waited for).
pub async fn current_view(
    hub: &Hub,
    a: &AgentIdentity,
) -> Result<Arc<crate::view::View>, CallError> {
    view_of(hub, &a.agent_id).await
}

/// [`current_view`] by agent id (for the control plane's questions about an agent).
pub async fn view_of(
    hub: &Hub,
    agent: &toolbelt_model::AgentId,
) -> Result<Arc<crate::view::View>, CallError> {
    let policy = hub.policies.policy(agent).await?;
    hub.registry.refresh_if_changed().await;
    let pending = hub.registry.pending(&policy);
    if !pending.is_empty() {
        hub.registry.ensure_discovered(&pending).await;
    }
    Ok(hub.views.get(agent, &policy, &hub.registry))
}

impl Gateway {
    async fn view(&self, ctx: &RequestContext<RoleServer>) -> Result<Seen, CallError> {
        let a = agent(ctx)?;
        let view = current_view(&self.hub, &a).await?;
        Ok(Seen { view })
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
        let Seen { view } = self.view(&ctx).await?;
        let agent = agent(&ctx)?;
        let cursor = req.as_ref().and_then(|r| r.cursor.as_deref());
        let policy = self
            .hub
            .policies
            .policy(&agent.agent_id)
            .await
            .map_err(CallError::from)?;
        let size = self.hub.config.page_size;
        if let Some(r) = crate::search::lens::list_page(&agent, &policy, &view, cursor, size) {
            return Ok(r?);
        }
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
        let Seen { view } = self.view(&ctx).await?;
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

    async fn list_resources(
        &self,
        req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let Seen { view } = self.view(&ctx).await?;
        let res: Vec<_> = view.resources.iter().map(|r| r.shown.clone()).collect();
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
        let Seen { view } = self.view(&ctx).await?;
        Ok(ListResourceTemplatesResult::with_all_items(
            view.templates.iter().map(|t| t.shown.clone()).collect(),
        ))
    }

    async fn get_prompt(
        &self,
        req: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let a = agent(&ctx)?;
        let asked = json!({ "prompt": clip(&req.name, AUDIT_NAME_CHARS) });
        let mut audit = RequestAudit::new(
            &self.hub,
            &a,
            AuditAction::PromptGet,
            TargetKind::Prompt,
            asked,
        );
        let res = self.get_prompt_for(&a, req, &mut audit).await;
        audit.finish(res).await
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let a = agent(&ctx)?;
        let asked = json!({ "uri": clip(&req.uri, AUDIT_NAME_CHARS) });
        let mut audit = RequestAudit::new(
            &self.hub,
            &a,
            AuditAction::ResourceRead,
            TargetKind::Resource,
            asked,
        );
        let res = self.read_resource_for(&a, req, &mut audit).await;
        audit.finish(res).await
    }

    async fn complete(
        &self,
        req: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let a = agent(&ctx)?;
        let shown = serde_json::to_string(&req.r#ref).unwrap_or_default();
        let asked = json!({ "ref": clip(&shown, AUDIT_NAME_CHARS),
            "argument": clip(&req.argument.name, AUDIT_NAME_CHARS) });
        let kind = match &req.r#ref {
            Reference::Resource(_) => TargetKind::Resource,
            _ => TargetKind::Prompt,
        };
        let mut audit =
            RequestAudit::new(&self.hub, &a, AuditAction::CompletionComplete, kind, asked);
        let res = self.complete_for(&a, req, &mut audit).await;
        audit.finish(res).await
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

#[cfg(test)]
mod tests {
    #[test]
    fn any_cursor_is_answered_none_panics() {
        let items = [1, 2, 3];
        for c in [
            "18446744073709551615",
            "99999999999999999999999",
            "-1",
            "x",
            "1e3",
            "",
        ] {
            let _ = super::page(&items, Some(c), 2);
            let _ = crate::view::page_bounds(3, Some(c), usize::MAX);
        }
        let last = super::page(&items, Some(&usize::MAX.to_string()), 2).unwrap();
        assert!(last.items.is_empty() && last.next_cursor.is_none());
        assert!(super::page(&items, Some("-1"), 2).is_err());
        assert_eq!(super::page(&items, Some("2"), 2).unwrap().items, vec![3]);
    }
}
