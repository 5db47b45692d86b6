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
use toolbelt_store::metrics::{self, CallPoint};
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
}

/// One server (id, or name with `toolbox`) with its tools, history and recent calls.
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
    Ok(ServerActivity {
        server,
        tools,
        history,
        calls,
    })
}
