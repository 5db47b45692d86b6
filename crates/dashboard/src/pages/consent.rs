//! The consent page of the MCP authorization server (`toolbelt-authz` sends the browser
//! here from `/oauth2/authorize`): the signed-in user sees which client asks, picks which
//! of their agents it acts as — with the tools that gives it — and approves or refuses.
//! The answer goes back to the client's redirect URI. Not signed in: the sign-in page,
//! then back here. Every rule (the request's checks, the agent being the user's own, the
//! code) is `service::mcp_auth`'s.

use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::Chrome;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use toolbelt_control::AppState;
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
}

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
    let tree = service::activity::tool_tree(&st, &d.caller).await?;
    let mut agents = Vec::new();
    let page = Paging {
        limit: Some(1000),
        cursor: None,
    };
    for a in service::agents::list(&st, &d.caller, &page).await?.items {
        // A client acts only as one of the user's own agents (admins see everyone's).
        if &a.owner_id != d.caller.id() {
            continue;
        }
        let tools = service::activity::agent_sees(&st, &d.caller, a.id.as_str(), &tree)
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
    super::render(&ConsentPage {
        c: Chrome::new(&d, "agents"),
        client_name: ch.client.name.clone(),
        client_id: ch.client.id.clone(),
        redirect_uri: ch.redirect_uri.clone(),
        agents,
        params: params(&r),
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
    let to = mcp_auth::consent(&st, &d.caller, &ch, f.get("agent"), approve)
        .await
        .map_err(|e| Page {
            status: StatusCode::BAD_REQUEST,
            message: e.description,
        })?;
    Ok(Redirect::to(&to).into_response())
}
