//! OAuth providers (admins configure them) and connections (users link their accounts).
//!
//! A connection starts as a flow (`start_connection`), which answers a start URL on this
//! control plane. Opened in a browser signed in to the dashboard, the start step binds the
//! flow to that session and sends the browser to the provider; the provider's callback
//! must arrive in the same session. The flows themselves live in `toolbelt_oauth`; this
//! module holds who may take each step.

use super::Paging;
use super::caller::Caller;
use super::error::{Result, ServiceError};
use crate::state::AppState;
use serde::Deserialize;
use toolbelt_model::oauth::{Connection, Provider};
use toolbelt_model::{FlowId, Page, TokenId};
use toolbelt_oauth::{
    Callback, FlowStatus, NewProvider, OAuth, OAuthError, RefreshResult, Revoked, StartedFlow,
};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartConnection {
    /// Provider id or name.
    pub provider: String,
    /// Scopes to ask for (default: the provider's default scopes).
    pub scopes: Option<Vec<String>>,
    /// Passed to the provider as `login_hint` (which account to sign in with).
    pub login_hint: Option<String>,
}

/// Re-authorizing one of the caller's connections (one that needs it, or to change scopes).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconnectConnection {
    /// Scopes to ask for (default: the connection's current scopes).
    pub scopes: Option<Vec<String>>,
    /// Passed to the provider as `login_hint` (which account to sign in with).
    pub login_hint: Option<String>,
}

/// The browser's first step: an existing flow, or a new one with these scopes.
#[derive(Debug, Default)]
pub struct BrowserStart {
    /// A flow made by [`start_connection`]; absent: start one now.
    pub flow: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub login_hint: Option<String>,
}

fn oauth(st: &AppState) -> Result<&OAuth> {
    Ok(&st.credentials()?.oauth)
}

/// Every configured provider (everyone signed in may read: they hold no secret).
pub async fn list_providers(st: &AppState, _caller: &Caller) -> Result<Vec<Provider>> {
    Ok(oauth(st)?.list_providers().await?)
}

/// Configures a provider (admins): a built-in kind with client id and secret, or a custom
/// one by issuer (RFC 8414 / OIDC discovery) or explicit endpoints.
pub async fn create_provider(st: &AppState, caller: &Caller, req: NewProvider) -> Result<Provider> {
    Ok(oauth(st)?.create_provider(&caller.scope, req).await?)
}

/// One provider, by id or name.
pub async fn get_provider(st: &AppState, _caller: &Caller, r: &str) -> Result<Provider> {
    Ok(oauth(st)?.get_provider(r).await?)
}

/// Deletes a provider (admins), with every connection to it.
pub async fn delete_provider(st: &AppState, caller: &Caller, r: &str) -> Result<Provider> {
    Ok(oauth(st)?.delete_provider(&caller.scope, r).await?)
}

/// The caller's connections (admins: everyone's), without any token.
pub async fn list_connections(
    st: &AppState,
    caller: &Caller,
    page: &Paging,
) -> Result<Page<Connection>> {
    Ok(oauth(st)?
        .list_connections(&caller.scope, page.limit(), page.cursor())
        .await?)
}

/// Starts connecting the caller's account: the start URL to open in a signed-in browser.
pub async fn start_connection(
    st: &AppState,
    caller: &Caller,
    req: StartConnection,
) -> Result<StartedFlow> {
    Ok(oauth(st)?
        .create_flow(caller.id(), &req.provider, req.scopes, req.login_hint)
        .await?)
}

/// Starts re-authorizing a connection: a flow whose callback puts the new tokens on that
/// connection (same id, so the grants naming it hold). Only its owner may: an admin sees
/// others' connections but cannot sign in as them (403, as for refresh).
pub async fn reconnect_connection(
    st: &AppState,
    caller: &Caller,
    r: &str,
    req: ReconnectConnection,
) -> Result<StartedFlow> {
    let oauth = oauth(st)?;
    let conn = oauth.get_connection(&caller.scope, r).await?;
    if conn.owner_id != *caller.id() {
        return Err(ServiceError::forbidden(
            "only a connection's owner re-authorizes it",
        ));
    }
    Ok(oauth
        .create_reconnect_flow(caller.id(), &conn.id, req.scopes, req.login_hint)
        .await?)
}

fn flow_id(r: &str) -> Result<FlowId> {
    FlowId::parse(r).ok_or_else(|| ServiceError::not_found(format!("flow {r}")))
}

/// Where one of the caller's flows stands.
pub async fn flow_status(st: &AppState, caller: &Caller, r: &str) -> Result<FlowStatus> {
    Ok(oauth(st)?.flow_status(caller.id(), &flow_id(r)?).await?)
}

/// One connection: scopes, expiry, last refresh, last use, status.
pub async fn get_connection(st: &AppState, caller: &Caller, r: &str) -> Result<Connection> {
    Ok(oauth(st)?.get_connection(&caller.scope, r).await?)
}

/// Revokes a connection: at the provider, and here (with its grants), at once.
pub async fn revoke_connection(st: &AppState, caller: &Caller, r: &str) -> Result<Revoked> {
    Ok(oauth(st)?.revoke(&caller.scope, r).await?)
}

/// Refreshes a connection's tokens now; only its owner may (admins see, but do not use,
/// others' connections).
pub async fn refresh_connection(st: &AppState, caller: &Caller, r: &str) -> Result<Connection> {
    let oauth = oauth(st)?;
    let conn = oauth.get_connection(&caller.scope, r).await?;
    if conn.owner_id != *caller.id() {
        return Err(ServiceError::forbidden(
            "only a connection's owner refreshes it",
        ));
    }
    match oauth.refresh_one(&conn.id).await? {
        RefreshResult::Skipped => {
            return Err(ServiceError::conflict(
                "the connection is being refreshed, or needs re-authorization",
            ));
        }
        RefreshResult::Retrying(e) => return Err(OAuthError::Unreachable(e).into()),
        _ => {}
    }
    Ok(oauth.get_connection(&caller.scope, r).await?)
}

/// The dashboard session a browser step runs in: flows are bound to one, so a link
/// opened elsewhere (or replayed with an API token) cannot complete them.
fn browser_session(caller: &Caller) -> Result<&TokenId> {
    caller.session().ok_or_else(|| {
        ServiceError::Unauthenticated(
            "open this link in a browser that is logged in to the Toolbelt dashboard".into(),
        )
    })
}

/// Binds the flow (made now if none is given) to the caller's dashboard session; answers
/// the provider's authorization URL to send the browser to.
pub async fn begin_in_browser(
    st: &AppState,
    caller: &Caller,
    provider: &str,
    req: BrowserStart,
) -> Result<String> {
    let session = browser_session(caller)?.to_string();
    let oauth = oauth(st)?;
    let flow = match &req.flow {
        Some(f) => flow_id(f)?,
        None => {
            oauth
                .create_flow(caller.id(), provider, req.scopes, req.login_hint)
                .await?
                .flow_id
        }
    };
    Ok(oauth.begin(provider, &flow, caller.id(), &session).await?)
}

/// The provider's redirect, in the session that began the flow: exchanges the code (with
/// the flow's PKCE verifier) and seals the tokens in the vault.
pub async fn complete_in_browser(
    st: &AppState,
    caller: &Caller,
    provider: &str,
    callback: Callback,
) -> Result<Connection> {
    let session = browser_session(caller)?.to_string();
    Ok(oauth(st)?
        .complete(provider, callback, Some(&session))
        .await?)
}
