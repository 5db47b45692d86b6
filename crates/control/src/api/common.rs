//! Pieces shared by the API handlers: paging, error documentation, reference resolution.

use crate::problem::{Kind, Problem};
use serde::Deserialize;
use toolbelt_model::agent::Agent;
use toolbelt_model::server::Server;
use toolbelt_model::toolbox::Toolbox;
use toolbelt_model::{AgentId, Scope, ServerId, ToolboxId};
use toolbelt_store::{AnyConnection, StoreError, agents, servers, toolboxes};
use utoipa::{IntoParams, IntoResponses};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size (1-1000, default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Errors every authenticated route can answer with.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum CommonErrors {
    /// Missing, invalid, expired or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(#[to_schema] Problem),
    /// Authenticated, but the role or token kind may not do this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such thing, or not yours (never told apart).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Invalid input; `errors` names each field.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Errors of routes that write.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum WriteErrors {
    /// Duplicate name, or the change would break something that depends on it.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(#[to_schema] Problem),
    /// Body over the size limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// Body not sent as application/json.
    #[response(status = 415, content_type = "application/problem+json")]
    MediaType(Problem),
}

/// Maps a store `NotFound` to a problem naming what was looked for.
pub fn nf<T>(what: &str, r: Result<T, StoreError>) -> Result<T, Problem> {
    r.map_err(|e| match e {
        StoreError::NotFound => Problem::not_found(what),
        other => other.into(),
    })
}

/// An agent by id (any the caller may see) or by name (the caller's own).
pub async fn agent(c: &mut AnyConnection, scope: &Scope, r: &str) -> Result<Agent, Problem> {
    let found = match AgentId::parse(r) {
        Some(id) => agents::get(c, scope, &id).await,
        None => agents::find_by_name(c, scope, r).await,
    };
    nf(&format!("agent {r}"), found)
}

/// A toolbox by id, or by name (the caller's own first, then a shared one).
pub async fn toolbox(c: &mut AnyConnection, scope: &Scope, r: &str) -> Result<Toolbox, Problem> {
    let found = match ToolboxId::parse(r) {
        Some(id) => toolboxes::get(c, scope, &id).await,
        None => toolboxes::find_by_name(c, scope, r).await,
    };
    nf(&format!("toolbox {r}"), found)
}

/// A server by id, or by name — on `toolbox` when given, else the only visible one with
/// that name (409 when several toolboxes have it).
pub async fn server(
    c: &mut AnyConnection,
    scope: &Scope,
    r: &str,
    toolbox_ref: Option<&str>,
) -> Result<Server, Problem> {
    if let Some(id) = ServerId::parse(r) {
        return nf(&format!("server {r}"), servers::get(c, scope, &id).await);
    }
    let tb = match toolbox_ref {
        Some(t) => Some(toolbox(c, scope, t).await?.id),
        None => None,
    };
    let mut found = servers::find_by_name(c, scope, r, tb.as_ref()).await?;
    match found.len() {
        0 => Err(Problem::not_found(format!("server {r}"))),
        1 => Ok(found.remove(0)),
        n => Err(Problem::new(
            Kind::Ambiguous,
            format!(
                "{n} toolboxes have a server named {r}; say which with ?toolbox= (or use its id)"
            ),
        )),
    }
}
