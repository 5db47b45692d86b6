//! The two tools an agent in `search` mode sees instead of its full list: `find_tools`,
//! answered by the gateway from the shared index through the agent's own view, and
//! `call_tool`, which unwraps the call and hands it to the one call path
//! ([`crate::call::call_direct`]): the same authorization, pin check, `ask` rule, rate
//! limits and audit event (naming the real tool) as a direct call, with the same errors.
//!
//! Their descriptions are what a model reads to decide whether and how to search; they
//! are written as product text and measured by the benchmark (`./scripts/bench.sh search`).

use super::lens;
use crate::Hub;
use crate::call::{self, Caller};
use crate::error::CallError;
use crate::policy::AgentIdentity;
use crate::view::{Exposed, View};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, Tool, ToolAnnotations};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

pub const FIND: &str = "find_tools";
pub const CALL: &str = "call_tool";
pub const DEFAULT_LIMIT: usize = 8;
pub const MAX_LIMIT: usize = 50;

const FIND_DESCRIPTION: &str = "Search the tools available to you and get the best matches, \
each with its exact name, what it does and the arguments it takes (its input schema). Only \
a few tools are listed directly; many more can be found here, so search before concluding \
that something cannot be done. Describe the task in plain words, the way you would ask a \
colleague (\"open a bug report in a repository\", \"post a message to a team channel\", \
\"refund a card payment\"), rather than guessing a tool name. If no result fits, search \
again with other words. Then run the tool you chose with call_tool, passing its name \
exactly as returned and arguments that follow its input schema.";

const CALL_DESCRIPTION: &str = "Run one of your tools by its exact name, as find_tools \
returned it (for example github__create_issue), with arguments that follow that tool's \
input schema. The result, or the error, is the tool's own. If you do not know the exact \
name or the arguments, use find_tools first; do not guess names.";

fn schema(v: Value) -> Arc<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("a schema is an object"),
    }
}

/// The meta tools as listed, sorted by name.
pub fn tools() -> &'static [Tool] {
    static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let call = Tool::new(
            CALL,
            CALL_DESCRIPTION,
            schema(json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "The tool's exact name, as find_tools returned it." },
                    "arguments": { "type": "object", "description": "The tool's arguments, following its input schema.", "default": {} }
                },
                "required": ["name"]
            })),
        )
        .with_title("Call a tool by name");
        let find = Tool::new(
            FIND,
            FIND_DESCRIPTION,
            schema(json!({
                "type": "object",
                "properties": {
                    "query": { "type": "string", "description": "What you want to do, in plain words." },
                    "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                               "description": "How many tools to return at most." }
                },
                "required": ["query"]
            })),
        )
        .with_title("Find tools")
        .with_annotations(ToolAnnotations::new().read_only(true));
        vec![call, find]
    })
}

/// A tool found for an agent, with its BM25 score.
pub struct Found {
    pub tool: Exposed,
    pub score: f32,
}

/// The best `limit` tools of the agent's view for a query: the shared index, kept to
/// what the view holds (granted, not denied, not held) and what the lens may call.
pub fn find(
    hub: &Hub,
    view: &View,
    lens: &lens::Lens<'_>,
    query: &str,
    limit: usize,
) -> Vec<Found> {
    hub.index.sync(&hub.registry);
    let mut out = Vec::new();
    for h in hub.index.search(query) {
        if out.len() >= limit {
            break;
        }
        if let Some(e) = view.by_identity(&h.doc.server, &h.doc.tool)
            && lens.callable(e)
        {
            out.push(Found {
                tool: e.clone(),
                score: h.score,
            });
        }
    }
    out
}

fn bad(field: &str, reason: &str) -> McpError {
    CallError::InvalidArguments {
        field: format!("arguments.{field}"),
        reason: reason.to_string(),
    }
    .into()
}

/// A call of `find_tools` or `call_tool` by an agent in search mode: answered here (None
/// for any other call, which takes the ordinary path).
pub async fn intercept(
    hub: &Hub,
    agent: &AgentIdentity,
    req: &CallToolRequestParams,
    ctx: &Caller,
) -> Option<Result<CallToolResponse, McpError>> {
    if req.name != FIND && req.name != CALL {
        return None;
    }
    let policy = match hub.policies.policy(&agent.agent_id).await {
        Ok(p) => p,
        Err(e) => return Some(Err(CallError::from(e).into())),
    };
    let lens = lens::of(agent, &policy);
    if !matches!(lens, lens::Lens::Search(_)) {
        return None;
    }
    let args = req.arguments.clone().unwrap_or_default();
    if req.name == CALL {
        let Some(name) = args.get("name").and_then(Value::as_str) else {
            return Some(Err(bad("name", "the tool's name is required, as a string")));
        };
        let arguments = match args.get("arguments") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => return Some(Err(bad("arguments", "must be an object"))),
        };
        let mut inner = req.clone();
        inner.name = name.to_string().into();
        inner.arguments = arguments;
        return Some(call::call_direct(hub, agent, inner, ctx).await);
    }
    let Some(query) = args.get("query").and_then(Value::as_str) else {
        return Some(Err(bad("query", "a query is required, as a string")));
    };
    let limit = match args.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
            _ => return Some(Err(bad("limit", "must be an integer from 1 to 50"))),
        },
    };
    let view = match crate::handler::current_view(hub, agent).await {
        Ok(v) => v,
        Err(e) => return Some(Err(e.into())),
    };
    let found = find(hub, &view, &lens, query, limit);
    let tools: Vec<Value> = found
        .iter()
        .map(|f| {
            let t = f.tool.tool();
            json!({
                "name": &*f.tool.name,
                "description": t.description.as_deref().unwrap_or(""),
                "inputSchema": &*t.input_schema,
                "score": f.score,
            })
        })
        .collect();
    let mut result = json!({ "tools": tools });
    if found.is_empty() {
        result["hint"] =
            json!("No tool matched. Try other words for the task, or a shorter query.");
    }
    Some(Ok(CallToolResponse::Complete(CallToolResult::structured(
        result,
    ))))
}
