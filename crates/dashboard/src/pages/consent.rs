//! The consent page of the MCP authorization server (`toolbelt-authz` sends the browser
//! here from `/oauth2/authorize`): the signed-in user sees which client asks, picks which
//! of their agents it acts as — with the tools that gives it — or names a new one, and
//! approves or refuses.
//! The answer goes back to the client's redirect URI. Not signed in: the sign-in page,
//! then back here. Every rule (the request's checks, the agent being the user's own, the
//! code) is `service::mcp_auth`'s.

use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use toolbelt_control::AppState;
use toolbelt_control::service::agents::CreateAgent;
use toolbelt_control::service::mcp_auth::{self, AuthorizeRequest, AuthzError, Checked};
use toolbelt_control::service::{self, Paging};

pub struct AgentChoice {
    pub id: String,
    pub name: String,
    pub tools: Vec<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    c: Chrome,
    client_name: String,
    client_id: String,
    redirect_uri: String,
    agents: Vec<AgentChoice>,
    /// The authorization request, carried through the form unchanged.
    params: Vec<(&'static str, String)>,
    /// The refused new agent's errors (its `name` field), when creating one failed.
    errors: Errors,
    /// What was typed as the new agent's name.
    new_name: String,
    /// Whether "create a new agent" is the choice (no agent yet, or it was chosen).
    new_chosen: bool,
}

/// The radio value that asks for a new agent instead of an existing one.
const NEW_AGENT: &str = "new";

fn refused(e: AuthzError) -> Page {
    Page {
        status: StatusCode::BAD_REQUEST,
        message: format!("the authorization request is refused: {}", e.description),
    }
}

async fn checked(st: &AppState, r: &AuthorizeRequest) -> Result<Checked, Page> {
    let issuer = st.mcp_issuer()?.clone();
    mcp_auth::check(st, &issuer, r)
        .await
        .map_err(|(e, _)| refused(e))
}

fn params(r: &AuthorizeRequest) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("response_type", r.response_type.clone()),
        ("client_id", r.client_id.clone()),
    ];
    for (k, v) in [
        ("redirect_uri", &r.redirect_uri),
        ("state", &r.state),
        ("code_challenge", &r.code_challenge),
        ("code_challenge_method", &r.code_challenge_method),
        ("resource", &r.resource),
        ("scope", &r.scope),
    ] {
        if let Some(v) = v {
            p.push((k, v.clone()));
        }
    }
    p
}

pub async fn page(
    State(st): State<AppState>,
    d: Dash,
    Query(r): Query<AuthorizeRequest>,
) -> PageResult {
    let ch = checked(&st, &r).await?;
    let page = consent_page(&st, &d, &ch, &r, Errors::default(), String::new(), false).await?;
    super::render(&page)
}

/// The page for a checked request: the user's own agents with what each would give.
async fn consent_page(
    st: &AppState,
    d: &Dash,
    ch: &Checked,
    r: &AuthorizeRequest,
    errors: Errors,
    new_name: String,
    new_chosen: bool,
) -> Result<ConsentPage, Page> {
    let tree = service::activity::tool_tree(st, &d.caller).await?;
    let mut agents = Vec::new();
    let page = Paging {
        limit: Some(1000),
        cursor: None,
    };
    for a in service::agents::list(st, &d.caller, &page).await?.items {
        // A client acts only as one of the user's own agents (admins see everyone's).
        if &a.owner_id != d.caller.id() {
            continue;
        }
        let tools = service::activity::agent_sees(st, &d.caller, a.id.as_str(), &tree)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        agents.push(AgentChoice {
            id: a.id.to_string(),
            name: a.name.to_string(),
            tools,
        });
    }
    Ok(ConsentPage {
        c: Chrome::new(d, "agents"),
        client_name: ch.client.name.clone(),
        client_id: ch.client.id.clone(),
        redirect_uri: ch.redirect_uri.clone(),
        new_chosen: new_chosen || agents.is_empty(),
        agents,
        params: params(r),
        errors,
        new_name,
    })
}

pub async fn answer(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    let text = |k: &str| f.get(k).map(str::to_string);
    let r = AuthorizeRequest {
        response_type: f.text("response_type"),
        client_id: f.text("client_id"),
        redirect_uri: text("redirect_uri"),
        state: text("state"),
        code_challenge: text("code_challenge"),
        code_challenge_method: text("code_challenge_method"),
        resource: text("resource"),
        scope: text("scope"),
    };
    let ch = checked(&st, &r).await?;
    let approve = f.get("decision") == Some("approve");
    let mut agent = text("agent");
    if approve && agent.as_deref() == Some(NEW_AGENT) {
        // A new agent of the user's, made here (the agents page's rules): on a refusal the
        // page again, the error next to the name, nothing created and nothing granted.
        let req = CreateAgent {
            name: f.text("new_agent_name"),
            description: format!("Created for the MCP client {}", ch.client.name)
                .chars()
                .take(1000)
                .collect(),
            token_label: None,
        };
        match service::agents::create(&st, &d.caller, req).await {
            Ok(made) => {
                // The client gets OAuth tokens; the agent's own first token is not needed.
                service::agents::revoke_token(
                    &st,
                    &d.caller,
                    made.agent.id.as_str(),
                    &made.token.info.id.to_string(),
                )
                .await?;
                agent = Some(made.agent.id.to_string());
            }
            Err(e) => {
                let status = Page::from(e.clone()).status;
                let errors = Errors::from_service(&e);
                let page =
                    consent_page(&st, &d, &ch, &r, errors, f.text("new_agent_name"), true).await?;
                let mut res = super::render(&page)?;
                *res.status_mut() = status;
                return Ok(res);
            }
        }
    }
    let to = mcp_auth::consent(&st, &d.caller, &ch, agent.as_deref(), approve)
        .await
        .map_err(|e| Page {
            status: StatusCode::BAD_REQUEST,
            message: e.description,
        })?;
    Ok(Redirect::to(&to).into_response())
}
