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
use toolbelt_control::service::{self, Paging};
use toolbelt_model::agent::Agent;

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
}

#[derive(Template)]
#[template(path = "agent.html")]
struct DetailPage {
    c: Chrome,
    a: AgentRow,
    tokens: Vec<TokenRow>,
    tree: Vec<toolbelt::TreeToolbox>,
    sees: Vec<toolbelt_control::service::activity::SeenTool>,
    sees_error: String,
    /// Discovery mode, always-visible tools, toolsets.
    disc: discovery::View,
    /// The caller owns the agent (only the owner chats with it).
    own: bool,
    errors: Errors,
}

async fn detail_page(
    st: &AppState,
    d: &Dash,
    id: &str,
    c: Chrome,
    errors: Errors,
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
        })
        .collect();
    let (tree, raw) = toolbelt::tree(st, &d.caller, a.id.as_str()).await?;
    let (sees, sees_error) =
        match service::activity::agent_sees(st, &d.caller, a.id.as_str(), &raw).await {
            Ok(s) => (s, String::new()),
            Err(e) => (Vec::new(), e.to_string()),
        };
    let disc = discovery::view(st, &d.caller, a.id.as_str()).await;
    Ok(DetailPage {
        c,
        own: &a.owner_id == d.caller.id(),
        a: AgentRow::of(&a),
        tokens,
        tree,
        sees,
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
    let mut res = super::render(&detail_page(st, d, id, c, errors).await?)?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn detail(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult {
    let c = Chrome::new(&d, "agents").with_notice(n.done);
    super::render(&detail_page(&st, &d, &id, c, Errors::default()).await?)
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
    match toolbelt::save(&st, &d.caller, &a, &f).await {
        Ok(n) => Ok(super::done(
            &format!("/agents/{}", a.id),
            &format!("toolbelt saved: {n} change(s)"),
        )),
        Err(e) => {
            let status = Page::from(e.clone()).status;
            let c = Chrome::new(&d, "agents");
            let page = detail_page(&st, &d, a.id.as_str(), c, Errors::from_service(&e)).await?;
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
    let req = NewToken {
        label: if label.is_empty() {
            "dashboard".into()
        } else {
            label
        },
        expires_in_days: None,
        discovery: None,
    };
    let a = service::agents::get(&st, &d.caller, &id).await?;
    match service::agents::issue_token(&st, &d.caller, a.id.as_str(), req).await {
        Ok(t) => {
            let base = base_url(&st, &headers);
            super::render(&TokenPage {
                c: Chrome::new(&d, "agents"),
                configs: configs(&base, a.name.as_str(), &t.token),
                agent: AgentRow::of(&a),
                label: t.info.label.clone(),
                token: t.token,
                created: false,
            })
        }
        Err(e) => {
            let status = Page::from(e.clone()).status;
            let c = Chrome::new(&d, "agents");
            let page = detail_page(&st, &d, a.id.as_str(), c, Errors::from_service(&e)).await?;
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
