//! The trust centre: for the signed-in user, "which agents can touch which of my accounts
//! and tools, and what have they done" — agents × connections/servers, the credentials'
//! recent uses from the audit log, and revoke buttons (a connection, an agent token, a
//! grant). What counts as access is `service::trust`'s; revoking is the owning services'.

use super::connections::{delete_grant_to, left, revoke_to};
use crate::error::PageResult;
use crate::form::Form;
use crate::pages::overview::Notice;
use crate::session::Dash;
use crate::view::{Chrome, ago, tone, when};
use askama::Template;
use axum::extract::{Path, Query, State};
use std::collections::BTreeMap;
use toolbelt_control::AppState;
use toolbelt_control::service;
use toolbelt_control::service::trust::{AgentAccess, Reach, Trust};
use toolbelt_model::audit::AuditEvent;
use toolbelt_model::grant::{Grant, GrantKind};

/// A column of the matrix: one of the user's connections, a server or a toolbox.
pub struct Column {
    /// What element ids use: the connection's, server's or toolbox's id.
    pub id: String,
    pub kind: &'static str,
    pub label: String,
    pub sub: String,
}

/// One grant in a cell, with its remove button.
pub struct Item {
    pub grant: String,
    pub text: String,
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub tokens: Vec<TokenRow>,
    /// One cell per column, in the columns' order.
    pub cells: Vec<Cell>,
}

pub struct Cell {
    /// The column's id and label (for element ids and button names).
    pub col: String,
    pub label: String,
    /// Empty: no access.
    pub items: Vec<Item>,
}

pub struct TokenRow {
    pub id: String,
    pub label: String,
    pub used: String,
}

pub struct ConnRow {
    pub id: String,
    pub provider: String,
    pub status: &'static str,
    pub tone: &'static str,
    pub expires_in: String,
    pub expires_at: String,
    /// How many of the agents may act with it.
    pub agents: usize,
}

pub struct UseRow {
    pub seq: i64,
    pub at: String,
    pub ago: String,
    pub who: String,
    pub action: String,
    pub what: String,
    pub connection: String,
    pub outcome: &'static str,
    pub tone: &'static str,
}

#[derive(Template)]
#[template(path = "trust.html")]
struct TrustPage {
    c: Chrome,
    columns: Vec<Column>,
    rows: Vec<Row>,
    connections: Vec<ConnRow>,
    uses: Vec<UseRow>,
}

fn columns(t: &Trust) -> Vec<Column> {
    let conns = t.connections.iter().map(|k| Column {
        id: k.id.to_string(),
        kind: "connection",
        label: k.provider.to_string(),
        sub: "account".into(),
    });
    let reaches = t.reaches.iter().map(|r: &Reach| Column {
        id: r.id.clone(),
        kind: if r.kind == GrantKind::Toolbox {
            "toolbox"
        } else {
            "server"
        },
        label: r.name.clone(),
        sub: if r.kind == GrantKind::Toolbox {
            "toolbox: every server on it".into()
        } else if r.toolbox.is_empty() {
            "server".into()
        } else {
            format!("server on {}", r.toolbox)
        },
    });
    conns.chain(reaches).collect()
}

/// What one grant means in one column's cell, if it belongs there.
fn item(g: &Grant, col: &Column, names: &BTreeMap<String, String>) -> Option<Item> {
    let id = |o: Option<String>| o.as_deref() == Some(col.id.as_str());
    let text = match (col.kind, g.kind) {
        ("connection", GrantKind::Connection)
            if id(g.connection_id.as_ref().map(|c| c.to_string())) =>
        {
            match &g.server_id {
                Some(s) => format!(
                    "through {}",
                    names
                        .get(s.as_str())
                        .map(String::as_str)
                        .unwrap_or(s.as_str())
                ),
                None => "through any granted server asking for it".into(),
            }
        }
        ("server", GrantKind::Server) if id(g.server_id.as_ref().map(|s| s.to_string())) => {
            if g.active {
                "every tool".into()
            } else {
                "every tool (switched off)".into()
            }
        }
        ("server", GrantKind::Tool) if id(g.server_id.as_ref().map(|s| s.to_string())) => {
            format!("{}: {}", g.tool.as_deref().unwrap_or(""), g.rule.as_str())
        }
        ("toolbox", GrantKind::Toolbox) if id(g.toolbox_id.as_ref().map(|t| t.to_string())) => {
            "every server".into()
        }
        _ => return None,
    };
    Some(Item {
        grant: g.id.to_string(),
        text,
    })
}

fn row(a: &AgentAccess, cols: &[Column], names: &BTreeMap<String, String>) -> Row {
    Row {
        id: a.agent.id.to_string(),
        name: a.agent.name.to_string(),
        tokens: a
            .tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id.to_string(),
                label: t.label.clone(),
                used: t
                    .last_used_at
                    .as_ref()
                    .map(ago)
                    .unwrap_or_else(|| "never used".into()),
            })
            .collect(),
        cells: cols
            .iter()
            .map(|col| Cell {
                col: col.id.clone(),
                label: col.label.clone(),
                items: a
                    .grants
                    .iter()
                    .filter_map(|g| item(g, col, names))
                    .collect(),
            })
            .collect(),
    }
}

fn use_row(e: &AuditEvent, agents: &BTreeMap<String, String>, me: &str) -> UseRow {
    let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
    let actor = e.actor_id.clone().unwrap_or_default();
    let who = match e.actor_kind.as_str() {
        "agent" => format!(
            "agent {}",
            agents.get(&actor).cloned().unwrap_or_else(|| actor.clone())
        ),
        "user" if actor == me => "you".into(),
        k => format!("{k} {actor}").trim().to_string(),
    };
    let what = match (d["tool"].as_str(), d["provider"].as_str()) {
        (Some(t), _) => t.to_string(),
        (None, Some(p)) => p.to_string(),
        _ => d["purpose"].as_str().unwrap_or("").to_string(),
    };
    let connection = d["connection"]
        .as_str()
        .map(String::from)
        .or_else(|| {
            (e.target_kind == "connection").then(|| e.target_id.clone().unwrap_or_default())
        })
        .unwrap_or_default();
    UseRow {
        seq: e.seq,
        at: when(&e.ts),
        ago: ago(&e.ts),
        who,
        action: e.action.clone(),
        what,
        connection,
        outcome: e.outcome.as_str(),
        tone: tone(e.outcome.as_str()),
    }
}

pub async fn page(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let t = service::trust::overview(&st, &d.caller).await?;
    let cols = columns(&t);
    let rows: Vec<Row> = t
        .agents
        .iter()
        .map(|a| row(a, &cols, &t.server_names))
        .collect();
    let agents: BTreeMap<String, String> = t
        .agents
        .iter()
        .map(|a| (a.agent.id.to_string(), a.agent.name.to_string()))
        .collect();
    let connections = t
        .connections
        .iter()
        .map(|k| {
            let (status, tone_of) = super::connections::badge(k.status);
            ConnRow {
                id: k.id.to_string(),
                provider: k.provider.to_string(),
                status,
                tone: tone_of,
                expires_in: k.expires_at.as_ref().map(left).unwrap_or_default(),
                expires_at: k.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                agents: t
                    .agents
                    .iter()
                    .filter(|a| {
                        a.grants
                            .iter()
                            .any(|g| g.connection_id.as_ref() == Some(&k.id))
                    })
                    .count(),
            }
        })
        .collect();
    let me = d.caller.id().to_string();
    let uses = t.uses.iter().map(|e| use_row(e, &agents, &me)).collect();
    super::render(&TrustPage {
        c: Chrome::new(&d, "trust").with_notice(n.done),
        columns: cols,
        rows,
        connections,
        uses,
    })
}

pub async fn revoke_connection(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    revoke_to(&st, &d, &id, "/trust").await
}

pub async fn revoke_token(
    State(st): State<AppState>,
    d: Dash,
    Path((agent, token)): Path<(String, String)>,
    _f: Form,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &agent).await?;
    let t = service::agents::revoke_token(&st, &d.caller, a.id.as_str(), &token).await?;
    Ok(super::done(
        "/trust",
        &format!("token {} of agent {} revoked", t.label, a.name),
    ))
}

pub async fn delete_grant(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    delete_grant_to(&st, &d, &id, "/trust").await
}
