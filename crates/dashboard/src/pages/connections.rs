//! Connections — the OAuth dashboard: the providers with a Connect form each (the PKCE
//! flow in this browser: the API's connection start, bound to this session, on to the
//! provider and back to `/oauth/{provider}/callback`, which lands here with a notice), the
//! user's connections (status, expiry countdown, last refresh, scopes; reconnect, refresh,
//! one-click revoke), the ones revoked lately, and the connection grants (which agent acts
//! with which connection through which server) with create and remove.

use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::pages::overview::Notice;
use crate::session::Dash;
use crate::view::{Chrome, Errors, ago, when};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use toolbelt_control::AppState;
use toolbelt_control::service::grants::CreateGrant;
use toolbelt_control::service::oauth::{BrowserStart, StartConnection};
use toolbelt_control::service::{self, Paging, ServiceError};
use toolbelt_model::audit::AuditEvent;
use toolbelt_model::grant::GrantKind;
use toolbelt_model::oauth::{Connection, ConnectionStatus};

fn all() -> Paging {
    Paging {
        limit: Some(1000),
        cursor: None,
    }
}

/// Time left until `t`, as the countdown shows it (`assets/app.js` ticks the same format).
pub fn left(t: &chrono::DateTime<chrono::Utc>) -> String {
    let s = (*t - chrono::Utc::now()).num_seconds();
    match s {
        ..=0 => "expired".into(),
        1..60 => format!("in {s} s"),
        60..3600 => format!("in {} min {} s", s / 60, s % 60),
        3600..86400 => format!("in {} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("in {} d {} h", s / 86400, s % 86400 / 3600),
    }
}

pub struct ProviderRow {
    pub name: String,
    pub kind: &'static str,
    pub scopes: String,
}

pub struct ConnRow {
    pub id: String,
    pub provider: String,
    /// `active`, `needs re-auth`.
    pub status: &'static str,
    pub tone: &'static str,
    pub scopes: String,
    /// RFC 3339, for the countdown script; empty when the provider gave no expiry.
    pub expires_at: String,
    pub expires_in: String,
    pub expires_when: String,
    pub refreshed: String,
    pub used: String,
    pub error: String,
    pub created: String,
    /// Another user's (admins see everyone's): their id.
    pub owner: Option<String>,
}

/// A connection's status as its badge shows it: (label, tone). The trust centre's too.
pub(super) fn badge(s: ConnectionStatus) -> (&'static str, &'static str) {
    match s {
        ConnectionStatus::Active => ("active", "good"),
        ConnectionStatus::NeedsReauth => ("needs re-auth", "bad"),
    }
}

impl ConnRow {
    pub fn of(c: &Connection, me: &toolbelt_model::UserId) -> ConnRow {
        let (status, tone_of) = badge(c.status);
        ConnRow {
            id: c.id.to_string(),
            provider: c.provider.to_string(),
            status,
            tone: tone_of,
            scopes: c.scopes.join(" "),
            expires_at: c.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            expires_in: c.expires_at.as_ref().map(left).unwrap_or_default(),
            expires_when: c.expires_at.as_ref().map(when).unwrap_or_default(),
            refreshed: c
                .last_refresh_at
                .as_ref()
                .map(ago)
                .unwrap_or_else(|| "never".into()),
            used: c
                .last_used_at
                .as_ref()
                .map(ago)
                .unwrap_or_else(|| "never".into()),
            error: c.last_error.clone().unwrap_or_default(),
            created: when(&c.created_at),
            owner: (&c.owner_id != me).then(|| c.owner_id.to_string()),
        }
    }
}

/// A connection revoked lately (deleted here; the audit log remembers it).
pub struct RevokedRow {
    pub id: String,
    pub provider: String,
    pub at: String,
    pub provider_told: bool,
}

impl RevokedRow {
    pub fn of(e: &AuditEvent) -> RevokedRow {
        let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        RevokedRow {
            id: e.target_id.clone().unwrap_or_default(),
            provider: d["provider"].as_str().unwrap_or("").into(),
            at: ago(&e.ts),
            provider_told: d["provider_revoked"] == true,
        }
    }
}

pub struct GrantRow {
    pub id: String,
    pub agent: String,
    pub agent_id: String,
    pub connection_id: String,
    pub connection: String,
    pub server: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    c: Chrome,
    providers: Vec<ProviderRow>,
    connections: Vec<ConnRow>,
    revoked: Vec<RevokedRow>,
    grants: Vec<GrantRow>,
    agents: Vec<Choice>,
    own_connections: Vec<Choice>,
    servers: Vec<Choice>,
    /// Errors of the Connect form of this provider ("" : none).
    connect_for: String,
    connect_errors: Errors,
    grant_errors: Errors,
    /// The grant form as posted (kept on a refusal).
    picked: (String, String, String),
}

#[derive(Default)]
struct Refusal {
    connect_for: String,
    connect: Errors,
    grant: Errors,
    picked: (String, String, String),
}

async fn page(st: &AppState, d: &Dash, c: Chrome, r: Refusal) -> PageResult<ConnectionsPage> {
    let me = d.caller.id();
    let providers = service::oauth::list_providers(st, &d.caller).await?;
    let conns = service::oauth::list_connections(st, &d.caller, &all())
        .await?
        .items;
    let revoked = service::trust::revoked_connections(st, &d.caller, 10).await?;
    let agents = service::agents::list(st, &d.caller, &all()).await?.items;
    let agent_names: BTreeMap<String, String> = agents
        .iter()
        .map(|a| (a.id.to_string(), a.name.to_string()))
        .collect();
    let servers = service::servers::list(st, &d.caller, None, &all())
        .await?
        .items;
    let server_names: BTreeMap<String, String> = servers
        .iter()
        .map(|s| (s.id.to_string(), s.name.to_string()))
        .collect();
    let conn_names: BTreeMap<String, String> = conns
        .iter()
        .map(|k| (k.id.to_string(), format!("{} ({})", k.provider, k.id)))
        .collect();
    let grants = service::grants::list(st, &d.caller, None, &all())
        .await?
        .items
        .into_iter()
        .filter(|g| g.kind == GrantKind::Connection)
        .map(|g| {
            let cid = g.connection_id.map(|c| c.to_string()).unwrap_or_default();
            let aid = g.agent_id.to_string();
            GrantRow {
                id: g.id.to_string(),
                agent: agent_names
                    .get(&aid)
                    .cloned()
                    .unwrap_or_else(|| aid.clone()),
                agent_id: aid,
                connection: conn_names.get(&cid).cloned().unwrap_or_else(|| cid.clone()),
                connection_id: cid,
                server: match g.server_id {
                    Some(s) => {
                        let s = s.to_string();
                        server_names.get(&s).cloned().unwrap_or(s)
                    }
                    None => String::new(),
                },
            }
        })
        .collect();
    Ok(ConnectionsPage {
        c,
        providers: providers
            .iter()
            .map(|p| ProviderRow {
                name: p.name.to_string(),
                kind: p.kind.as_str(),
                scopes: p.default_scopes.join(" "),
            })
            .collect(),
        connections: conns.iter().map(|k| ConnRow::of(k, me)).collect(),
        revoked: revoked.iter().map(RevokedRow::of).collect(),
        grants,
        // A connection grant is one of your own agents with one of your own connections.
        agents: agents
            .iter()
            .filter(|a| &a.owner_id == me)
            .map(|a| Choice {
                value: a.id.to_string(),
                label: a.name.to_string(),
            })
            .collect(),
        own_connections: conns
            .iter()
            .filter(|k| &k.owner_id == me)
            .map(|k| Choice {
                value: k.id.to_string(),
                label: format!("{} ({})", k.provider, k.id),
            })
            .collect(),
        servers: servers
            .iter()
            .map(|s| Choice {
                value: s.id.to_string(),
                label: s.name.to_string(),
            })
            .collect(),
        connect_for: r.connect_for,
        connect_errors: r.connect,
        grant_errors: r.grant,
        picked: r.picked,
    })
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(n): Query<Notice>) -> PageResult {
    let c = Chrome::new(&d, "connections").with_notice(n.done);
    super::render(&page(&st, &d, c, Refusal::default()).await?)
}

/// The page again with a refusal's errors, at the refusal's status.
async fn refused(st: &AppState, d: &Dash, e: ServiceError, r: Refusal) -> PageResult {
    let status = Page::from(e).status;
    let c = Chrome::new(d, "connections");
    let mut res = super::render(&page(st, d, c, r).await?)?;
    *res.status_mut() = status;
    Ok(res)
}

/// Starts the flow in this browser: the API's connection start, then the browser step
/// that binds it to this session; off to the provider's authorization page.
pub(super) async fn connect_to(
    st: &AppState,
    d: &Dash,
    provider: String,
    scopes: Option<Vec<String>>,
    login_hint: Option<String>,
) -> Result<String, ServiceError> {
    let started = service::oauth::start_connection(
        st,
        &d.caller,
        StartConnection {
            provider: provider.clone(),
            scopes,
            login_hint,
        },
    )
    .await?;
    let browser = BrowserStart {
        flow: Some(started.flow_id.to_string()),
        ..Default::default()
    };
    service::oauth::begin_in_browser(st, &d.caller, &started.provider, browser).await
}

pub(super) fn to_provider(url: String) -> Response {
    // 303: the browser GETs the provider's page whatever method brought it here.
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, url)],
        crate::view::no_store(),
    )
        .into_response()
}

pub async fn connect(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    let provider = f.text("provider");
    let scopes = f.text("scopes");
    let scopes =
        (!scopes.is_empty()).then(|| scopes.split_whitespace().map(String::from).collect());
    let hint = f.text("login_hint");
    match connect_to(
        &st,
        &d,
        provider.clone(),
        scopes,
        (!hint.is_empty()).then_some(hint),
    )
    .await
    {
        Ok(url) => Ok(to_provider(url)),
        Err(e) => {
            let r = Refusal {
                connect_for: provider,
                connect: Errors::from_service(&e),
                ..Default::default()
            };
            refused(&st, &d, e, r).await
        }
    }
}

/// Re-authorizes the connection (one that needs it, or whose scopes to renew): the
/// provider's answer puts new tokens on this same connection, so its grants hold.
pub async fn reconnect(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    let started = service::oauth::reconnect_connection(
        &st,
        &d.caller,
        &id,
        service::oauth::ReconnectConnection::default(),
    )
    .await?;
    let browser = BrowserStart {
        flow: Some(started.flow_id.to_string()),
        ..Default::default()
    };
    let url = service::oauth::begin_in_browser(&st, &d.caller, &started.provider, browser).await?;
    Ok(to_provider(url))
}

pub async fn refresh(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    let conn = service::oauth::refresh_connection(&st, &d.caller, &id).await?;
    let what = match conn.status {
        ConnectionStatus::Active => "refreshed",
        ConnectionStatus::NeedsReauth => "refused by the provider: it needs re-authorization",
    };
    Ok(super::done(
        "/connections",
        &format!("connection {} {what}", conn.id),
    ))
}

/// Revokes at the provider and here, at once; back to `back` (this page or the trust
/// centre).
pub async fn revoke_to(st: &AppState, d: &Dash, id: &str, back: &str) -> PageResult {
    let r = service::oauth::revoke_connection(st, &d.caller, id).await?;
    let told = match &r.provider_note {
        None => "the provider revoked its tokens too".to_string(),
        Some(n) => n.clone(),
    };
    Ok(super::done(
        back,
        &format!(
            "connection {} to {} revoked; {told}",
            r.connection.id, r.connection.provider
        ),
    ))
}

pub async fn revoke(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    revoke_to(&st, &d, &id, "/connections").await
}

pub async fn create_grant(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    let (agent, connection, server) = (f.text("agent"), f.text("connection"), f.text("server"));
    let req = CreateGrant {
        agent: agent.clone(),
        toolbox: None,
        server: (!server.is_empty()).then(|| server.clone()),
        tool: None,
        rule: None,
        connection: Some(connection.clone()),
    };
    match service::grants::create(&st, &d.caller, req).await {
        Ok(g) => Ok(super::done(
            "/connections",
            &format!("grant {} created", g.id),
        )),
        Err(e) => {
            let r = Refusal {
                grant: Errors::from_service(&e),
                picked: (agent, connection, server),
                ..Default::default()
            };
            refused(&st, &d, e, r).await
        }
    }
}

/// Removes a grant (through the grants service: another member's is not found); back to
/// `back`.
pub async fn delete_grant_to(st: &AppState, d: &Dash, id: &str, back: &str) -> PageResult {
    let g = service::grants::delete(st, &d.caller, id).await?;
    Ok(super::done(back, &format!("grant {} removed", g.id)))
}

pub async fn delete_grant(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    _f: Form,
) -> PageResult {
    delete_grant_to(&st, &d, &id, "/connections").await
}

#[derive(Template)]
#[template(path = "connection.html")]
struct DetailPage {
    c: Chrome,
    k: ConnRow,
    grants: Vec<GrantRow>,
}

/// One connection (404 when not the caller's to see), with its grants.
pub async fn detail(
    State(st): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult {
    let conn = service::oauth::get_connection(&st, &d.caller, &id).await?;
    let c = Chrome::new(&d, "connections").with_notice(n.done);
    let mut p = page(&st, &d, c, Refusal::default()).await?;
    let grants = std::mem::take(&mut p.grants)
        .into_iter()
        .filter(|g| g.connection_id == conn.id.as_str())
        .collect();
    super::render(&DetailPage {
        k: ConnRow::of(&conn, d.caller.id()),
        c: p.c,
        grants,
    })
}
