//! Agents — the agent builder: the list with a create form, an agent's page with its
//! tokens, its toolbelt (Toolbox → Server → Tool, allow / deny / ask per tool) and what it
//! sees now; a new token is shown once, with ready client configurations.

use super::{discovery, toolbelt};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::pages::overview::Notice;
use crate::session::Dash;
use crate::view::{Chrome, Errors, ago, when};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use toolbelt_control::AppState;
use toolbelt_control::service::agents::CreateAgent;
use toolbelt_control::service::tokens::NewToken;
use toolbelt_control::service::{self, Paging, ServiceError};
use toolbelt_model::agent::{Agent, Discovery};

pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub discovery: &'static str,
    pub created: String,
}

impl AgentRow {
    fn of(a: &Agent) -> AgentRow {
        AgentRow {
            id: a.id.to_string(),
            name: a.name.to_string(),
            description: a.description.clone(),
            discovery: a.discovery.as_str(),
            created: ago(&a.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "agents.html")]
struct ListPage {
    c: Chrome,
    agents: Vec<AgentRow>,
    errors: Errors,
    name: String,
    description: String,
}

async fn list_page(
    st: &AppState,
    d: &Dash,
    c: Chrome,
    errors: Errors,
    name: String,
    description: String,
) -> PageResult<ListPage> {
    let all = Paging {
        limit: Some(1000),
        cursor: None,
    };
    let agents = service::agents::list(st, &d.caller, &all).await?;
    Ok(ListPage {
        c,
        agents: agents.items.iter().map(AgentRow::of).collect(),
        errors,
        name,
        description,
    })
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let c = Chrome::new(&d, "agents").with_notice(n.done);
    super::render(&list_page(&st, &d, c, Errors::default(), String::new(), String::new()).await?)
}

/// Client configurations for a token, as `toolbelt agent connect` prints them.
pub struct Configs {
    pub url: String,
    pub claude: String,
    pub vscode: String,
    pub cursor: String,
    pub stdio: String,
    pub http: String,
}

/// The gateway's URL as this browser reached Toolbelt.
pub fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8870");
    let scheme = if st.config.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

fn configs(base: &str, agent: &str, token: &str) -> Configs {
    use serde_json::json;
    let key = format!("toolbelt-{agent}");
    let url = format!("{base}/mcp");
    let env = json!({ "TOOLBELT_URL": base, "TOOLBELT_AGENT_TOKEN": token });
    let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    Configs {
        claude: pretty(
            json!({ "mcpServers": { &key: { "command": "toolbelt", "args": ["stdio"], "env": env } } }),
        ),
        vscode: pretty(
            json!({ "servers": { &key: { "type": "http", "url": url, "headers": { "Authorization": format!("Bearer {token}") } } } }),
        ),
        cursor: pretty(
            json!({ "mcpServers": { &key: { "url": url, "headers": { "Authorization": format!("Bearer {token}") } } } }),
        ),
        stdio: format!("TOOLBELT_URL={base} TOOLBELT_AGENT_TOKEN={token} toolbelt stdio"),
        http: format!("POST {url}\nAuthorization: Bearer {token}"),
        url,
    }
}

#[derive(Template)]
#[template(path = "agent_token.html")]
struct TokenPage {
    c: Chrome,
    agent: AgentRow,
    token: String,
    label: String,
    /// The token's own discovery mode, when it overrides the agent's.
    discovery: Option<&'static str>,
    configs: Configs,
    created: bool,
}

pub async fn create(
    State(st): State<AppState>,
    d: Dash,
    headers: HeaderMap,
    f: Form,
) -> PageResult {
    let req = CreateAgent {
        name: f.text("name"),
        description: f.text("description"),
        token_label: None,
    };
    match service::agents::create(&st, &d.caller, req).await {
        Ok(made) => {
            let base = base_url(&st, &headers);
            super::render(&TokenPage {
                c: Chrome::new(&d, "agents"),
                configs: configs(&base, made.agent.name.as_str(), &made.token.token),
                agent: AgentRow::of(&made.agent),
                label: made.token.info.label.clone(),
                discovery: None,
                token: made.token.token,
                created: true,
            })
        }
        Err(e) => {
            let errors = Errors::from_service(&e);
            let c = Chrome::new(&d, "agents");
            let page = list_page(&st, &d, c, errors, f.text("name"), f.text("description")).await?;
            let mut res = super::render(&page)?;
            *res.status_mut() = Page::from(e).status;
            Ok(res)
        }
    }
}

pub struct TokenRow {
    pub id: String,
    pub label: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub revoked: bool,
    /// Its own discovery mode, or `None`: it follows the agent's.
    pub discovery: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "agent.html")]
struct DetailPage {
    c: Chrome,
    a: AgentRow,
    tokens: Vec<TokenRow>,
    tree: Vec<toolbelt::TreeToolbox>,
    /// The editor's hidden fields naming what of the tree is open.
    open_fields: Vec<(&'static str, String)>,
    /// A page of what it sees now (`sees_page` rows from `sees_first`, of `sees_total`).
    sees: Vec<toolbelt_control::service::activity::SeenTool>,
    sees_first: usize,
    sees_total: usize,
    sees_prev: Option<String>,
    sees_next: Option<String>,
    sees_error: String,
    /// Discovery mode, always-visible tools, toolsets.
    disc: discovery::View,
    /// The caller owns the agent (only the owner chats with it).
    own: bool,
    errors: Errors,
}

/// Rows of "what this agent sees now" per page (`?sees=N` is the first row shown).
pub const SEES_PAGE: usize = 100;

#[derive(serde::Deserialize, Default)]
pub struct SeesAt {
    sees: Option<String>,
}

/// The page of "what it sees now" asked for by its first row `at`: the row it starts at
/// (past the end: the last page) and where the previous and next pages start.
fn sees_window(total: usize, at: usize) -> (usize, Option<usize>, Option<usize>) {
    let first = at.min(total.saturating_sub(1) / SEES_PAGE * SEES_PAGE);
    let prev = (first > 0).then(|| first.saturating_sub(SEES_PAGE));
    let next = (first + SEES_PAGE < total).then_some(first + SEES_PAGE);
    (first, prev, next)
}

async fn detail_page(
    st: &AppState,
    d: &Dash,
    id: &str,
    c: Chrome,
    errors: Errors,
    open: &toolbelt::Open,
    sees_at: usize,
) -> PageResult<DetailPage> {
    let a = service::agents::get(st, &d.caller, id).await?;
    let tokens = service::agents::list_tokens(st, &d.caller, a.id.as_str())
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            label: t.label,
            created: when(&t.created_at),
            last_used: t
                .last_used_at
                .as_ref()
                .map(ago)
                .unwrap_or_else(|| "never".into()),
            expires: t
                .expires_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.is_some(),
            discovery: t.discovery.map(Discovery::as_str),
        })
        .collect();
    let (tree, raw) = toolbelt::tree(st, &d.caller, a.id.as_str(), open).await?;
    let (sees, sees_error) =
        match service::activity::agent_sees(st, &d.caller, a.id.as_str(), &raw).await {
            Ok(s) => (s, String::new()),
            Err(e) => (Vec::new(), e.to_string()),
        };
    // A page of it: thousands of rows would be most of the page's weight.
    let sees_total = sees.len();
    let (sees_first, prev, next) = sees_window(sees_total, sees_at);
    let sees_link = |at: usize| {
        let base = open.url(a.id.as_str());
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}sees={at}")
    };
    let (sees_prev, sees_next) = (prev.map(sees_link), next.map(sees_link));
    let sees = sees.into_iter().skip(sees_first).take(SEES_PAGE).collect();
    let disc = discovery::view(st, &d.caller, a.id.as_str()).await;
    Ok(DetailPage {
        c,
        own: &a.owner_id == d.caller.id(),
        a: AgentRow::of(&a),
        tokens,
        tree,
        open_fields: open.fields(),
        sees,
        sees_first,
        sees_total,
        sees_prev,
        sees_next,
        sees_error,
        disc,
        errors,
    })
}

/// The agent's page again, with a form's refusal (`status`) shown next to its fields.
pub(crate) async fn refused(
    st: &AppState,
    d: &Dash,
    id: &str,
    status: axum::http::StatusCode,
    errors: Errors,
) -> PageResult {
    let c = Chrome::new(d, "agents");
    let open = toolbelt::Open::default();
    let mut res = super::render(&detail_page(st, d, id, c, errors, &open, 0).await?)?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn detail(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
    Query(open): Query<toolbelt::Open>,
    Query(at): Query<SeesAt>,
) -> PageResult {
    let c = Chrome::new(&d, "agents").with_notice(n.done);
    let sees_at = at.sees.and_then(|s| s.parse().ok()).unwrap_or(0);
    super::render(&detail_page(&st, &d, &id, c, Errors::default(), &open, sees_at).await?)
}

/// Saves the toolbelt editor: each difference becomes one grant created, switched or
/// removed through the grants service (each audited on its own). The first refusal stops
/// and is shown with the editor as it is now.
pub async fn save_toolbelt(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &id).await?;
    // Back to the same part of the tree.
    let open = toolbelt::Open::from_form(&f);
    match toolbelt::save(&st, &d.caller, &a, &f).await {
        Ok(n) => Ok(super::done(
            &open.url(a.id.as_str()),
            &format!("toolbelt saved: {n} change(s)"),
        )),
        Err(e) => {
            let status = Page::from(e.clone()).status;
            let c = Chrome::new(&d, "agents");
            let errors = Errors::from_service(&e);
            let page = detail_page(&st, &d, a.id.as_str(), c, errors, &open, 0).await?;
            let mut res = super::render(&page)?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

pub async fn issue_token(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    headers: HeaderMap,
    f: Form,
) -> PageResult {
    let label = f.text("label");
    let a = service::agents::get(&st, &d.caller, &id).await?;
    // Empty: the token follows its agent's mode (as `agent token issue` without
    // `--discovery`); otherwise the mode is the token's own, whatever the agent's becomes.
    let mode = f.text("discovery");
    let discovery = match mode.as_str() {
        "" => Ok(None),
        m => Discovery::parse(m).map(Some).ok_or_else(|| {
            ServiceError::invalid("discovery", "must be all, search, or empty (the agent's)")
        }),
    };
    let issued = match discovery {
        Ok(discovery) => {
            let req = NewToken {
                label: if label.is_empty() {
                    "dashboard".into()
                } else {
                    label
                },
                expires_in_days: None,
                discovery,
            };
            service::agents::issue_token(&st, &d.caller, a.id.as_str(), req).await
        }
        Err(e) => Err(e),
    };
    match issued {
        Ok(t) => {
            let base = base_url(&st, &headers);
            super::render(&TokenPage {
                c: Chrome::new(&d, "agents"),
                configs: configs(&base, a.name.as_str(), &t.token),
                agent: AgentRow::of(&a),
                label: t.info.label.clone(),
                discovery: t.info.discovery.map(Discovery::as_str),
                token: t.token,
                created: false,
            })
        }
        Err(e) => {
            let status = Page::from(e.clone()).status;
            let c = Chrome::new(&d, "agents");
            let (errors, open) = (Errors::from_service(&e), toolbelt::Open::default());
            let page = detail_page(&st, &d, a.id.as_str(), c, errors, &open, 0).await?;
            let mut res = super::render(&page)?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

pub async fn revoke_token(
    State(st): State<AppState>,
    d: Dash,
    Path((id, token)): Path<(String, String)>,
    _f: Form,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &id).await?;
    let t = service::agents::revoke_token(&st, &d.caller, a.id.as_str(), &token).await?;
    Ok(super::done(
        &format!("/agents/{}", a.id),
        &format!("token {} revoked", t.label),
    ))
}

#[derive(Template)]
#[template(path = "agent_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    a: AgentRow,
}

pub async fn confirm_delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
) -> PageResult {
    let a = service::agents::get(&st, &d.caller, &id).await?;
    super::render(&ConfirmDelete {
        c: Chrome::new(&d, "agents"),
        a: AgentRow::of(&a),
    })
}

pub async fn delete(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    let a = service::agents::delete(&st, &d.caller, &id).await?;
    Ok(super::done("/agents", &format!("agent {} deleted", a.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_it_sees_is_paged_from_the_asked_row_and_never_past_the_end() {
        assert_eq!(sees_window(0, 0), (0, None, None));
        assert_eq!(sees_window(100, 0), (0, None, None));
        assert_eq!(sees_window(106, 0), (0, None, Some(100)));
        assert_eq!(sees_window(106, 100), (100, Some(0), None));
        assert_eq!(sees_window(106, 5_000), (100, Some(0), None));
        assert_eq!(sees_window(350, 150), (150, Some(50), Some(250)));
    }
}
