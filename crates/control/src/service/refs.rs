//! References as callers give them — an id, or a name — resolved to what the caller may
//! see. One rule for every service: a name is looked up among the caller's own things
//! (then shared ones); an id finds anything visible; anything else is not found.

use super::error::{Result, ServiceError, found};
use toolbelt_model::agent::Agent;
use toolbelt_model::server::Server;
use toolbelt_model::toolbox::Toolbox;
use toolbelt_model::user::User;
use toolbelt_model::{AgentId, Scope, ServerId, ToolboxId, UserId};
use toolbelt_store::{AnyConnection, agents, servers, toolboxes, users};

/// An agent by id (any the caller may see) or by name (the caller's own).
pub async fn agent(c: &mut AnyConnection, scope: &Scope, r: &str) -> Result<Agent> {
    let r_found = match AgentId::parse(r) {
        Some(id) => agents::get(c, scope, &id).await,
        None => agents::find_by_name(c, scope, r).await,
    };
    found(format!("agent {r}"), r_found)
}

/// A toolbox by id, or by name (the caller's own first, then a shared one).
pub async fn toolbox(c: &mut AnyConnection, scope: &Scope, r: &str) -> Result<Toolbox> {
    let r_found = match ToolboxId::parse(r) {
        Some(id) => toolboxes::get(c, scope, &id).await,
        None => toolboxes::find_by_name(c, scope, r).await,
    };
    found(format!("toolbox {r}"), r_found)
}

/// A server by id, or by name — on `toolbox` when given, else the only visible one with
/// that name (ambiguous when several toolboxes have it).
pub async fn server(
    c: &mut AnyConnection,
    scope: &Scope,
    r: &str,
    toolbox_ref: Option<&str>,
) -> Result<Server> {
    if let Some(id) = ServerId::parse(r) {
        return found(format!("server {r}"), servers::get(c, scope, &id).await);
    }
    let tb = match toolbox_ref {
        Some(t) => Some(toolbox(c, scope, t).await?.id),
        None => None,
    };
    let mut matches = servers::find_by_name(c, scope, r, tb.as_ref()).await?;
    match matches.len() {
        0 => Err(ServiceError::not_found(format!("server {r}"))),
        1 => Ok(matches.remove(0)),
        n => Err(ServiceError::Ambiguous(format!(
            "{n} toolboxes have a server named {r}; say which with ?toolbox= (or use its id)"
        ))),
    }
}

/// A user by id or email (unscoped: callers decide who may look).
pub async fn user(c: &mut AnyConnection, r: &str) -> Result<User> {
    let r_found = match UserId::parse(r) {
        Some(id) => users::get(c, &id).await,
        None => users::get_by_email(c, &r.to_ascii_lowercase())
            .await
            .map(|a| a.user),
    };
    found(format!("user {r}"), r_found)
}
