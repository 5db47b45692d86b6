//! The MCP handler, written by hand because the tool list changes at run time: tools
//! from [`crate::tools`], one resource (`fixture://hello`), and the prompts (`greet`) and
//! resource template (`fixture://greeting/{name}`) of [`crate::prompts`].

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, ServerHandler};

use crate::args::{self, Args};
use crate::{calls, prompts, tools};

const HELLO_URI: &str = "fixture://hello";

/// Stateless: the shared state lives in [`crate::tools`], so every session's handler
/// is the same unit value.
#[derive(Clone, Copy, Debug)]
pub struct Fixture;

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(caps).with_server_info(Implementation::new(
            "fixture-mcp",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        // Kept so `change_tools` can reach this session outside of its own requests.
        tools::add_peer(ctx.peer);
    }

    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::find(name)
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        // invalid_params, not method_not_found: on the 2026 HTTP path the latter is a 404.
        let tool = tools::find(&req.name).ok_or_else(|| {
            McpError::invalid_params(format!("unknown tool `{}`", req.name), None)
        })?;
        let empty = JsonObject::new();
        let arguments = req.arguments.as_ref().unwrap_or(&empty);
        args::validate(&tool, arguments)?;
        calls::run(&tool.name, Args(arguments), &ctx)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let hello = Resource::new(HELLO_URI, "hello").with_mime_type("text/plain");
        Ok(ListResourcesResult::with_all_items(vec![hello]))
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if let Some(name) = req.uri.strip_prefix(prompts::GREETING_PREFIX) {
            let text = format!("Hello, {name}!");
            return Ok(ReadResourceResult::new(vec![ResourceContents::text(
                text,
                req.uri.clone(),
            )])
            .into());
        }
        if req.uri != HELLO_URI {
            return Err(McpError::resource_not_found(
                format!("no resource {}", req.uri),
                None,
            ));
        }
        Ok(ReadResourceResult::new(vec![ResourceContents::text("hello", HELLO_URI)]).into())
    }

    async fn list_prompts(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::prompts()))
    }

    async fn list_resource_templates(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            prompts::templates(),
        ))
    }

    async fn get_prompt(
        &self,
        req: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if !prompts::has_prompt(&req.name) {
            return Err(McpError::invalid_params(
                format!("unknown prompt `{}`", req.name),
                None,
            ));
        }
        if req.name == "farewell" {
            let message = PromptMessage::new_text(Role::User, "Goodbye!");
            return Ok(GetPromptResult::new(vec![message]).into());
        }
        let empty = JsonObject::new();
        let args = Args(req.arguments.as_ref().unwrap_or(&empty));
        let name = args.str("name")?;
        if let Some(ms) = args.opt_str("wait_ms")? {
            let ms: u64 = ms.parse().map_err(|_| {
                McpError::invalid_params("wait_ms must be a number of milliseconds", None)
            })?;
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let message = PromptMessage::new_text(Role::User, format!("Hello, {name}!"));
        Ok(GetPromptResult::new(vec![message]).into())
    }

    /// 2026-07-28 clients hear about list changes on `subscriptions/listen` streams.
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
        let id = tools::add_sink(ctx.sink().clone());
        ctx.cancelled().await;
        tools::remove_sink(id);
        Ok(())
    }
}
