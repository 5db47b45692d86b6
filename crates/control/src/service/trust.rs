//! The trust centre: for the signed-in user, which of their agents can touch which of
//! their accounts (OAuth connections) and tools (servers, whole toolboxes), and what those
//! credentials did lately. Always the caller's *own* things, admins included: an admin's
//! trust centre is about the admin's agents and accounts (everyone's is the audit log's).
//! Read-only; revoking goes through the owning services (`oauth`, `agents`, `grants`).

use super::caller::Caller;
use super::error::Result;
use super::refs;
use crate::state::AppState;
use std::collections::{BTreeMap, HashSet};
use toolbelt_model::Scope;
use toolbelt_model::agent::{Agent, TokenInfo};
use toolbelt_model::audit::AuditEvent;
use toolbelt_model::grant::{Grant, GrantKind};
use toolbelt_model::oauth::Connection;
use toolbelt_model::token::TokenKind;
use toolbelt_model::user::Role;
use toolbelt_store::tokens::Subject;
use toolbelt_store::{AnyConnection, agents, audit, grants, oauth, tokens};

/// Bounds that keep the page one screen of facts, not an export.
const MAX_AGENTS: u32 = 500;
const MAX_CONNECTIONS: u32 = 200;
const USES_PER_CONNECTION: u32 = 20;
const RECENT_REVOKED: u32 = 10;
const USES_SHOWN: usize = 50;

/// One of the caller's agents: its live tokens and every grant it holds.
pub struct AgentAccess {
    pub agent: Agent,
    /// Tokens not revoked and not expired.
    pub tokens: Vec<TokenInfo>,
    pub grants: Vec<Grant>,
}

/// A column of tools: a server, or a whole toolbox (a toolbox grant reaches every server
/// on it).
#[derive(Clone, Debug)]
pub struct Reach {
    pub kind: GrantKind,
    pub id: String,
    pub name: String,
    /// The server's toolbox's name (servers only).
    pub toolbox: String,
}

pub struct Trust {
    pub agents: Vec<AgentAccess>,
    pub connections: Vec<Connection>,
    /// Servers and toolboxes any of the agents has a grant for, by name.
    pub reaches: Vec<Reach>,
    /// Names of the servers connection grants go through, by server id.
    pub server_names: BTreeMap<String, String>,
    /// The credentials' latest audit events (calls that carried a connection's token,
    /// connections made, refreshed, revoked), newest first.
    pub uses: Vec<AuditEvent>,
}

/// The caller's own scope: an admin's too is only their own things here.
fn own(caller: &Caller) -> Scope {
    Scope {
        user_id: caller.id().clone(),
        role: Role::Member,
    }
}

pub async fn overview(st: &AppState, caller: &Caller) -> Result<Trust> {
    let scope = own(caller);
    let mut c = st.store.conn().await?;
    let mine = agents::list(&mut c, &scope, MAX_AGENTS, None).await?.items;
    let now = toolbelt_model::now();
    let mut out = Vec::with_capacity(mine.len());
    for agent in mine {
        let live = tokens::list(&mut c, &Subject::Agent(agent.id.clone()), TokenKind::Agent)
            .await?
            .into_iter()
            .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now))
            .collect();
        let held = grants::list(&mut c, &scope, Some(&agent.id), 1000, None)
            .await?
            .items;
        out.push(AgentAccess {
            agent,
            tokens: live,
            grants: held,
        });
    }
    let connections = oauth::list_connections(&mut c, &scope, MAX_CONNECTIONS, None)
        .await?
        .items;
    let (reaches, server_names) = reaches(&mut c, &scope, &out).await?;
    let uses = uses(&mut c, &scope, &connections).await?;
    Ok(Trust {
        agents: out,
        connections,
        reaches,
        server_names,
        uses,
    })
}

/// The servers and toolboxes the grants name, as the owner sees them (a grant whose
/// target has gone shows its id). Connection grants add no column: the server they go
/// through is only named.
async fn reaches(
    c: &mut AnyConnection,
    scope: &Scope,
    agents: &[AgentAccess],
) -> Result<(Vec<Reach>, BTreeMap<String, String>)> {
    let mut reaches: Vec<Reach> = Vec::new();
    let mut server_names: BTreeMap<String, String> = BTreeMap::new();
    for g in agents.iter().flat_map(|a| &a.grants) {
        let (kind, id) = match (g.kind, &g.toolbox_id, &g.server_id) {
            (GrantKind::Toolbox, Some(t), _) => (GrantKind::Toolbox, t.to_string()),
            (_, _, Some(s)) => (GrantKind::Server, s.to_string()),
            _ => continue,
        };
        let column = g.kind != GrantKind::Connection;
        if kind == GrantKind::Server && server_names.contains_key(&id) {
            if column && !reaches.iter().any(|r| r.id == id) {
                let name = server_names[&id].clone();
                let toolbox = server_toolbox(c, scope, &id).await;
                reaches.push(Reach {
                    kind,
                    id,
                    name,
                    toolbox,
                });
            }
            continue;
        }
        if kind == GrantKind::Toolbox && reaches.iter().any(|r| r.id == id) {
            continue;
        }
        let (name, toolbox) = match kind {
            GrantKind::Toolbox => (
                refs::toolbox(c, scope, &id)
                    .await
                    .map(|t| t.name.to_string())
                    .unwrap_or_else(|_| id.clone()),
                String::new(),
            ),
            _ => (
                refs::server(c, scope, &id, None)
                    .await
                    .map(|s| s.name.to_string())
                    .unwrap_or_else(|_| id.clone()),
                server_toolbox(c, scope, &id).await,
            ),
        };
        if kind == GrantKind::Server {
            server_names.insert(id.clone(), name.clone());
        }
        if column {
            reaches.push(Reach {
                kind,
                id,
                name,
                toolbox,
            });
        }
    }
    reaches.sort_by(|a, b| (a.kind.as_str(), &a.name).cmp(&(b.kind.as_str(), &b.name)));
    Ok((reaches, server_names))
}

/// The name of a server's toolbox ("" when either is gone or not visible).
async fn server_toolbox(c: &mut AnyConnection, scope: &Scope, server: &str) -> String {
    let Ok(s) = refs::server(c, scope, server, None).await else {
        return String::new();
    };
    refs::toolbox(c, scope, s.toolbox_id.as_str())
        .await
        .map(|t| t.name.to_string())
        .unwrap_or_default()
}

/// The connections' latest events: those naming each connection (its calls, refreshes,
/// creation), and the latest revocations with what named those connections.
async fn uses(
    c: &mut AnyConnection,
    scope: &Scope,
    connections: &[Connection],
) -> Result<Vec<AuditEvent>> {
    let by = |involving: Option<String>, action: Option<&str>| audit::Filter {
        actor_id: None,
        action: action.map(String::from),
        target_id: None,
        involving,
        outcome: None,
        since_ms: None,
        until_ms: None,
    };
    let mut all = Vec::new();
    let revoked = audit::list(
        c,
        scope,
        &by(None, Some("connection.revoke")),
        RECENT_REVOKED,
        None,
    )
    .await?
    .items;
    let ids: Vec<String> = connections
        .iter()
        .map(|k| k.id.to_string())
        .chain(revoked.iter().filter_map(|e| e.target_id.clone()))
        .collect();
    all.extend(revoked);
    for id in ids {
        let f = by(Some(id), None);
        all.extend(
            audit::list(c, scope, &f, USES_PER_CONNECTION, None)
                .await?
                .items,
        );
    }
    let mut seen = HashSet::new();
    all.retain(|e| seen.insert(e.seq));
    all.sort_by_key(|e| std::cmp::Reverse(e.seq));
    all.truncate(USES_SHOWN);
    Ok(all)
}

/// The caller's connections revoked lately (they are deleted when revoked: the audit log
/// is what remembers them), newest first.
pub async fn revoked_connections(
    st: &AppState,
    caller: &Caller,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    let mut c = st.store.conn().await?;
    let f = audit::Filter {
        actor_id: None,
        action: Some("connection.revoke".into()),
        target_id: None,
        involving: None,
        outcome: None,
        since_ms: None,
        until_ms: None,
    };
    Ok(audit::list(&mut c, &own(caller), &f, limit, None)
        .await?
        .items)
}
