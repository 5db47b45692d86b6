//! Approvals: calls held by an `ask` rule, waiting for their agent's owner. Approve and
//! deny are form posts; new ones appear live (the page's list region is re-read when the
//! event stream says an approval was created or resolved).

use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::pages::overview::Notice;
use crate::session::Dash;
use crate::view::{Chrome, ago, when};
use askama::Template;
use axum::extract::{Path, Query, State};
use std::collections::HashMap;
use toolbelt_control::AppState;
use toolbelt_control::service::approvals::Decision;
use toolbelt_control::service::{self, Caller};

pub struct ApprovalRow {
    pub id: String,
    pub agent: String,
    pub server: String,
    pub tool: String,
    pub arguments: String,
    pub asked: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    c: Chrome,
    pending: Vec<ApprovalRow>,
}

/// Names for ids, looked up once each through the services (so only visible ones).
struct Names<'a> {
    st: &'a AppState,
    caller: &'a Caller,
    agents: HashMap<String, String>,
    servers: HashMap<String, String>,
}

impl Names<'_> {
    async fn agent(&mut self, id: &str) -> String {
        if let Some(n) = self.agents.get(id) {
            return n.clone();
        }
        let n = match service::agents::get(self.st, self.caller, id).await {
            Ok(a) => a.name.to_string(),
            Err(_) => id.to_string(),
        };
        self.agents.insert(id.to_string(), n.clone());
        n
    }

    async fn server(&mut self, id: &str) -> String {
        if let Some(n) = self.servers.get(id) {
            return n.clone();
        }
        let n = match service::servers::get(self.st, self.caller, id, None).await {
            Ok(s) => format!("{} (on {})", s.name, s.toolbox_name),
            Err(_) => id.to_string(),
        };
        self.servers.insert(id.to_string(), n.clone());
        n
    }
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let list = service::approvals::list(&st, &d.caller, false).await?;
    let mut names = Names {
        st: &st,
        caller: &d.caller,
        agents: HashMap::new(),
        servers: HashMap::new(),
    };
    let mut pending = Vec::with_capacity(list.len());
    for a in &list {
        pending.push(ApprovalRow {
            id: a.id.to_string(),
            agent: names.agent(a.agent_id.as_str()).await,
            server: names.server(a.server_id.as_str()).await,
            tool: a.tool.clone(),
            arguments: serde_json::to_string_pretty(&a.arguments)
                .unwrap_or_default()
                .chars()
                .take(4000)
                .collect(),
            asked: ago(&a.created_at),
            expires: when(&a.expires_at),
        });
    }
    super::render(&ApprovalsPage {
        c: Chrome::new(&d, "approvals").with_notice(n.done),
        pending,
    })
}

pub async fn decide(
    State(st): State<AppState>,
    d: Dash,
    Path((id, decision)): Path<(String, String)>,
    _f: Form,
) -> PageResult {
    let dec = match decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        _ => return Err(Page::not_found("decision")),
    };
    let a = service::approvals::decide(&st, &d.caller, &id, dec).await?;
    Ok(super::done(
        "/approvals",
        &format!("{} {}", a.tool, a.status.as_str()),
    ))
}
