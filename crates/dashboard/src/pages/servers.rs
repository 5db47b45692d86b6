//! Servers: the list (live status), one server's page (status, last error, tools, history,
//! charts of its calls and resources, recent calls) and its lifecycle buttons. Deleting asks first on a page of its own, so
//! the confirmation works without JavaScript too.

use super::logs::{self, LogTail};
use crate::charts::series::{self, Of, Window};
use crate::charts::{Figure, Range};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, ago, tone, when};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use std::collections::HashMap;
use toolbelt_control::AppState;
use toolbelt_control::service::servers::Change;
use toolbelt_control::service::{self, Paging};
use toolbelt_model::server::Server;

/// A server as the list and the detail page show it.
pub struct ServerRow {
    pub id: String,
    pub name: String,
    /// Unique on the page: the name, or `name-toolbox` when two visible servers share it
    /// (the gateway's own way of telling them apart).
    pub key: String,
    pub toolbox: String,
    pub catalog: String,
    pub status: &'static str,
    pub tone: &'static str,
    pub desired: &'static str,
    pub shared: bool,
    pub last_error: String,
    pub restarts: i64,
    pub tools: String,
    pub updated: String,
}

impl ServerRow {
    pub fn of(s: &Server, key: String) -> ServerRow {
        ServerRow {
            id: s.id.to_string(),
            name: s.name.to_string(),
            key,
            toolbox: s.toolbox_name.to_string(),
            catalog: s.catalog_slug.clone(),
            status: s.status.as_str(),
            tone: tone(s.status.as_str()),
            desired: s.desired.as_str(),
            shared: s.shared,
            last_error: s.last_error.clone().unwrap_or_default(),
            restarts: s.restart_count,
            tools: s
                .discovery
                .as_ref()
                .map(|d| d.tools.to_string())
                .unwrap_or_else(|| "–".into()),
            updated: ago(&s.updated_at),
        }
    }
}

/// Page keys for a list: names, disambiguated by toolbox where they repeat.
pub fn rows(servers: &[Server]) -> Vec<ServerRow> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for s in servers {
        *seen.entry(s.name.as_str()).or_default() += 1;
    }
    servers
        .iter()
        .map(|s| {
            let key = if seen[s.name.as_str()] > 1 {
                format!("{}-{}", s.name, s.toolbox_name)
            } else {
                s.name.to_string()
            };
            ServerRow::of(s, key)
        })
        .collect()
}

#[derive(Deserialize)]
pub struct ListQuery {
    toolbox: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "servers.html")]
struct ListPage {
    c: Chrome,
    servers: Vec<ServerRow>,
    toolbox: String,
    next: Option<String>,
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(q): Query<ListQuery>) -> PageResult {
    let toolbox = q.toolbox.filter(|t| !t.is_empty());
    let page = Paging {
        limit: Some(200),
        cursor: q.cursor,
    };
    let p = service::servers::list(&st, &d.caller, toolbox.as_deref(), &page).await?;
    let next = p.next_cursor.map(|c| {
        let mut u = form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &toolbox {
            u.append_pair("toolbox", t);
        }
        u.append_pair("cursor", &c);
        format!("/servers?{}", u.finish())
    });
    super::render(&ListPage {
        c: Chrome::new(&d, "servers").with_notice(q.done),
        servers: rows(&p.items),
        toolbox: toolbox.unwrap_or_default(),
        next,
    })
}

pub struct ToolRow {
    pub name: String,
    pub description: String,
    pub hash: String,
    pub flags: String,
}

pub struct HistoryRow {
    pub at: String,
    pub status: &'static str,
    pub tone: &'static str,
    pub error: String,
    pub restarts: i64,
}

pub struct CallRow {
    pub minute: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: String,
    pub p99_ms: String,
}

#[derive(Template)]
#[template(path = "server.html")]
struct DetailPage {
    c: Chrome,
    s: ServerRow,
    image_digest: String,
    /// The image the server is pinned to (what restarts and re-creates run).
    pinned: String,
    started: String,
    discovery_error: String,
    held: u32,
    tools: Vec<ToolRow>,
    history: Vec<HistoryRow>,
    calls: Vec<CallRow>,
    config: String,
    figures: Vec<Figure>,
    ranges: Vec<(&'static str, &'static str)>,
    log: LogTail,
    log_lines: usize,
}

/// The range links (`?range=`), the current one marked.
pub fn ranges(current: Range) -> Vec<(&'static str, &'static str)> {
    Range::ALL
        .iter()
        .map(|r| (r.as_str(), if *r == current { "page" } else { "false" }))
        .collect()
}

#[derive(Deserialize)]
pub struct DetailQuery {
    pub done: Option<String>,
    pub range: Option<String>,
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

pub async fn detail(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
    headers: HeaderMap,
) -> PageResult {
    let range = Range::parse(q.range.as_deref());
    let now = toolbelt_store::metrics::this_minute();
    let window = Window::new(range, now);
    let a = service::activity::server(&st, &d.caller, &id, None, range.minutes()).await?;
    let mut figures = series::call_figures(&window, &a.calls);
    figures.extend(series::resource_figures(&window, &a.resources, Of::Server));
    // A live-region refresh (app.js says so) replaces only the region, which holds no log:
    // it does not wait on the toolbox for lines nobody shows.
    let log = if headers.contains_key("x-toolbelt-region") {
        LogTail {
            lines: Vec::new(),
            unavailable: None,
        }
    } else {
        logs::tail(&st, &d, a.server.id.as_str()).await
    };
    let s = &a.server;
    let tools = a
        .tools
        .iter()
        .map(|p| ToolRow {
            name: p.tool.clone(),
            description: p.definition["description"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect(),
            hash: p.hash.chars().take(12).collect(),
            flags: p.flags.join(", "),
        })
        .collect();
    let history = a
        .history
        .iter()
        .map(|h| HistoryRow {
            at: when(&h.at),
            status: h.status.as_str(),
            tone: tone(h.status.as_str()),
            error: h.error.clone().unwrap_or_default(),
            restarts: h.restarts,
        })
        .collect();
    let calls = a
        .calls
        .iter()
        .rev()
        // The table is the last hour's minutes whatever the charts' range.
        .take_while(|p| p.minute > now - 60)
        .map(|p| CallRow {
            minute: chrono::DateTime::from_timestamp(p.minute * 60, 0)
                .map(|t| t.format("%H:%M").to_string())
                .unwrap_or_default(),
            calls: p.calls,
            errors: p.errors,
            p50_ms: ms(p.p50_us),
            p99_ms: ms(p.p99_us),
        })
        .collect();
    let inst = s.instance.as_ref();
    super::render(&DetailPage {
        c: Chrome::new(&d, "servers").with_notice(q.done),
        image_digest: inst
            .and_then(|i| i.image_digest.clone())
            .unwrap_or_default(),
        pinned: s.image_digest.clone().unwrap_or_default(),
        started: inst
            .and_then(|i| i.started_at.as_ref())
            .map(when)
            .unwrap_or_default(),
        discovery_error: s
            .discovery
            .as_ref()
            .and_then(|d| d.error.clone())
            .unwrap_or_default(),
        held: s.discovery.as_ref().map(|d| d.held).unwrap_or(0),
        config: serde_json::to_string_pretty(&s.config).unwrap_or_default(),
        s: ServerRow::of(s, s.name.to_string()),
        tools,
        history,
        calls,
        figures,
        ranges: ranges(range),
        log,
        log_lines: logs::LINES,
    })
}

#[derive(Template)]
#[template(path = "server_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    s: ServerRow,
}

/// The question before a delete (the detail page's Delete links here).
pub async fn confirm_delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
) -> PageResult {
    let s = service::servers::get(&st, &d.caller, &id, None).await?;
    super::render(&ConfirmDelete {
        c: Chrome::new(&d, "servers"),
        s: ServerRow::of(&s, s.name.to_string()),
    })
}

/// Delete (the confirmation page's form).
pub async fn delete(st: State<AppState>, d: Dash, Path(id): Path<String>, f: Form) -> PageResult {
    act(st, d, Path((id, "delete".to_string())), f).await
}

/// Start, stop, restart, delete or update its image, then back to the server (the list
/// after a delete).
pub async fn act(
    State(st): State<AppState>,
    d: Dash,
    Path((id, action)): Path<(String, String)>,
    f: Form,
) -> PageResult {
    if action == "update-image" {
        let digest = Some(f.text("digest")).filter(|d| !d.is_empty());
        let req = service::server_image::UpdateImage { digest };
        let s = service::server_image::update_image(&st, &d.caller, &id, None, req).await?;
        let pin = s.image_digest.unwrap_or_default();
        return Ok(super::done(
            &format!("/servers/{}", s.id),
            &format!("server {}: image {pin}", s.name),
        ));
    }
    let change = match action.as_str() {
        "start" => Change::Start,
        "stop" => Change::Stop,
        "restart" => Change::Restart,
        "delete" => Change::Delete,
        _ => return Err(Page::not_found("action")),
    };
    let s = service::servers::change(&st, &d.caller, &id, None, change).await?;
    Ok(match change {
        Change::Delete => super::done("/servers", &format!("server {} is being deleted", s.name)),
        _ => super::done(
            &format!("/servers/{}", s.id),
            &format!("server {}: {action} requested", s.name),
        ),
    })
}
