//! What the dashboard shows beside the resources themselves: recent calls and errors, a
//! server's tools as pinned, its status history and call metrics. Read-only, scoped like
//! every read: a server is looked up through [`refs::server`] first, so another member's
//! is "not found" here as in the API.

use super::caller::Caller;
use super::error::Result;
use super::refs;
use crate::state::AppState;
use toolbelt_model::gateway::Pin;
use toolbelt_model::server::Server;
use toolbelt_store::history::{self, StatusChange};
use toolbelt_store::metrics::{self, CallPoint, ResourcePoint, Subject};
use toolbelt_store::pins;

/// Calls and errors of the last `minutes` on the servers the caller can see.
pub async fn totals(st: &AppState, caller: &Caller, minutes: i64) -> Result<(u64, u64)> {
    let mut c = st.store.conn().await?;
    let since = metrics::this_minute() - minutes + 1;
    Ok(metrics::totals(&mut c, &caller.scope, since).await?)
}

/// A server the caller can see, with what the dashboard's server page adds to it.
pub struct ServerActivity {
    pub server: Server,
    /// Its tools as pinned (sorted by name).
    pub tools: Vec<Pin>,
    /// Its latest status moves, newest first.
    pub history: Vec<StatusChange>,
    /// Its calls per minute over the last `minutes`, oldest first.
    pub calls: Vec<CallPoint>,
    /// Its CPU and memory per minute over the last `minutes` (from heartbeats), oldest
    /// first.
    pub resources: Vec<ResourcePoint>,
}

/// One server (id, or name with `toolbox`) with its tools, history, and calls and
/// resources of the last `minutes`.
pub async fn server(
    st: &AppState,
    caller: &Caller,
    r: &str,
    toolbox: Option<&str>,
    minutes: i64,
) -> Result<ServerActivity> {
    let mut c = st.store.conn().await?;
    let server = refs::server(&mut c, &caller.scope, r, toolbox).await?;
    let mut tools = pins::for_server(&mut c, &server.id).await?;
    tools.sort_by(|a, b| a.tool.cmp(&b.tool));
    let history = history::for_server(&mut c, &server.id, 20).await?;
    let since = metrics::this_minute() - minutes + 1;
    let calls = metrics::server_calls(&mut c, &server.id, since).await?;
    let subject = Subject::Server(server.id.clone());
    let resources = metrics::resources(&mut c, &subject, since).await?;
    Ok(ServerActivity {
        server,
        tools,
        history,
        calls,
        resources,
    })
}

/// A toolbox's CPU and memory per minute over the last `minutes` (from its heartbeats),
/// oldest first — of a toolbox the caller can see (id or name).
pub async fn toolbox_resources(
    st: &AppState,
    caller: &Caller,
    r: &str,
    minutes: i64,
) -> Result<Vec<ResourcePoint>> {
    let mut c = st.store.conn().await?;
    let tb = refs::toolbox(&mut c, &caller.scope, r).await?;
    let since = metrics::this_minute() - minutes + 1;
    Ok(metrics::resources(&mut c, &Subject::Toolbox(tb.id), since).await?)
}

/// A toolbox with the servers on it the caller can see, each with its pinned tools.
pub struct ToolboxTools {
    pub toolbox: toolbelt_model::toolbox::Toolbox,
    pub servers: Vec<(Server, Vec<Pin>)>,
}

/// Every toolbox, server and pinned tool the caller can see, for a toolbelt editor
/// (Toolbox → Server → Tool). Servers being deleted are left out.
pub async fn tool_tree(st: &AppState, caller: &Caller) -> Result<Vec<ToolboxTools>> {
    let mut c = st.store.conn().await?;
    let scope = &caller.scope;
    let mut out = Vec::new();
    let mut tb_cursor: Option<String> = None;
    loop {
        let p = toolbelt_store::toolboxes::list(&mut c, scope, 1000, tb_cursor.as_deref()).await?;
        for t in p.items {
            out.push(ToolboxTools {
                toolbox: t,
                servers: Vec::new(),
            });
        }
        match p.next_cursor {
            Some(n) => tb_cursor = Some(n),
            None => break,
        }
    }
    let mut servers = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = toolbelt_store::servers::list(&mut c, scope, None, 1000, cursor.as_deref()).await?;
        servers.extend(
            p.items
                .into_iter()
                .filter(|s| s.desired != toolbelt_model::server::DesiredState::Deleted),
        );
        match p.next_cursor {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    // One query for every server's pins (not one per server: 1,000 servers made the agent
    // builder's page slow), sorted by tool name within each server.
    let ids: Vec<_> = servers.iter().map(|s| s.id.clone()).collect();
    let mut pinned = pins::for_servers(&mut c, &ids).await?;
    let at: std::collections::HashMap<_, _> = out
        .iter()
        .enumerate()
        .map(|(i, t)| (t.toolbox.id.clone(), i))
        .collect();
    for s in servers {
        let mut tools = pinned.remove(&s.id).unwrap_or_default();
        tools.sort_by(|a, b| a.tool.cmp(&b.tool));
        if let Some(&i) = at.get(&s.toolbox_id) {
            out[i].servers.push((s, tools));
        }
    }
    Ok(out)
}

/// A tool an agent sees now, under the name it calls it by.
pub struct SeenTool {
    pub name: String,
    pub server: String,
    pub toolbox: String,
    pub tool: String,
}

/// What an agent of the caller's (admins: anyone's) sees now: its effective tools exactly
/// as the gateway computes them (grants, rules, held definitions), among the tools in
/// `tree` (from [`tool_tree`]).
pub async fn agent_sees(
    st: &AppState,
    caller: &Caller,
    agent: &str,
    tree: &[ToolboxTools],
) -> Result<Vec<SeenTool>> {
    let mut c = st.store.conn().await?;
    let agent = refs::agent(&mut c, &caller.scope, agent).await?;
    drop(c);
    let mut refs_ = Vec::new();
    let mut labels = Vec::new();
    for t in tree {
        for (s, tools) in &t.servers {
            for p in tools {
                refs_.push(toolbelt_store::discovery::ToolRef {
                    toolbox_id: t.toolbox.id.clone(),
                    server_id: s.id.clone(),
                    tool: p.tool.clone(),
                });
                labels.push((
                    s.name.to_string(),
                    t.toolbox.name.to_string(),
                    p.tool.clone(),
                ));
            }
        }
    }
    let names = st
        .tool_search()?
        .names(&agent.id, &refs_)
        .await
        .map_err(super::ServiceError::unavailable)?;
    let mut seen: Vec<SeenTool> = names
        .into_iter()
        .zip(labels)
        .filter_map(|(n, (server, toolbox, tool))| {
            n.map(|name| SeenTool {
                name,
                server,
                toolbox,
                tool,
            })
        })
        .collect();
    seen.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(seen)
}
