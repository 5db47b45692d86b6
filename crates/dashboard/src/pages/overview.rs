//! The overview: toolboxes with their status and heartbeat, servers by status, calls and
//! errors in the last hour, what waits for the user (approvals, tool changes).

use crate::error::PageResult;
use crate::session::Dash;
use crate::view::{Chrome, ago, tone};
use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;
use std::collections::BTreeMap;
use toolbelt_control::AppState;
use toolbelt_control::service::{self, Paging};
use toolbelt_model::toolbox::Toolbox;

#[derive(Deserialize)]
pub struct Notice {
    pub done: Option<String>,
}

pub struct ToolboxRow {
    pub name: String,
    pub id: String,
    pub status: &'static str,
    pub tone: &'static str,
    pub heartbeat: String,
    pub shared: bool,
    pub cpu: String,
    pub memory: String,
    pub disk: String,
}

fn percent(used: u64, total: u64) -> String {
    if total == 0 {
        "–".into()
    } else {
        format!("{:.0} %", used as f64 * 100.0 / total as f64)
    }
}

impl ToolboxRow {
    pub fn of(t: &Toolbox) -> ToolboxRow {
        let sys = t.report.as_ref().map(|r| &r.system);
        ToolboxRow {
            name: t.name.to_string(),
            id: t.id.to_string(),
            status: t.status.as_str(),
            tone: tone(t.status.as_str()),
            heartbeat: t
                .last_heartbeat_at
                .as_ref()
                .map(ago)
                .unwrap_or_else(|| "never".into()),
            shared: t.shared,
            cpu: sys
                .map(|s| format!("{:.0} %", s.cpu_percent))
                .unwrap_or_else(|| "–".into()),
            memory: sys
                .map(|s| percent(s.mem_used_bytes, s.mem_total_bytes))
                .unwrap_or_else(|| "–".into()),
            disk: sys
                .map(|s| percent(s.disk_used_bytes, s.disk_total_bytes))
                .unwrap_or_else(|| "–".into()),
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    c: Chrome,
    toolboxes: Vec<ToolboxRow>,
    by_status: Vec<(&'static str, &'static str, usize)>,
    servers: usize,
    calls: u64,
    errors: u64,
    approvals: usize,
    tool_changes: Option<usize>,
}

pub async fn page(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let caller = &d.caller;
    let all = Paging {
        limit: Some(1000),
        cursor: None,
    };
    let toolboxes = service::toolboxes::list(&st, caller, &all).await?;
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut servers = 0;
    let mut page = all.clone();
    loop {
        let p = service::servers::list(&st, caller, None, &page).await?;
        for s in &p.items {
            *counts.entry(s.status.as_str()).or_default() += 1;
            servers += 1;
        }
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let (calls, errors) = service::activity::totals(&st, caller, 60).await?;
    let approvals = service::approvals::list(&st, caller, false).await?.len();
    let tool_changes = if d.is_admin() {
        Some(service::tools::changes(&st, caller, false).await?.len())
    } else {
        None
    };
    super::render(&OverviewPage {
        c: Chrome::new(&d, "overview").with_notice(n.done),
        toolboxes: toolboxes.items.iter().map(ToolboxRow::of).collect(),
        by_status: counts.into_iter().map(|(s, n)| (s, tone(s), n)).collect(),
        servers,
        calls,
        errors,
        approvals,
        tool_changes,
    })
}
