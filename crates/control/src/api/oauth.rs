//! OAuth providers (admins configure them) and connections (users link their accounts).
//!
//! A connection starts with `POST /api/v1/connections` (API or CLI), which answers a start
//! URL on this control plane. Opened in a browser logged in to the dashboard, the start URL
//! binds the flow to that session and redirects to the provider; the provider redirects to
//! the callback, which must arrive in the same session. `GET /oauth/{provider}/start`
//! without a flow starts one directly (the dashboard's "Connect" button).

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::UserCaller;
use crate::extract::{Body, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use toolbelt_model::oauth::{Connection, Provider};
use toolbelt_model::page::clamp_limit;
use toolbelt_model::{FlowId, Page};
use toolbelt_oauth::{Callback, FlowStatus, NewProvider, Revoked, StartedFlow};
use utoipa::{IntoParams, ToSchema};

/// Every configured provider (everyone may read: they hold no secret).
#[utoipa::path(get, path = "/api/v1/providers", tag = "oauth",
    responses((status = 200, body = Vec<Provider>), CommonErrors))]
pub async fn list_providers(
    State(st): State<AppState>,
    _caller: UserCaller,
) -> ApiResult<Json<Vec<Provider>>> {
    Ok(Json(st.credentials()?.oauth.list_providers().await?))
}

/// Configures a provider (admins): a built-in kind with client id and secret, or a custom
/// one by issuer (RFC 8414 / OIDC discovery) or explicit endpoints.
#[utoipa::path(post, path = "/api/v1/providers", tag = "oauth", request_body = NewProvider,
    responses((status = 201, body = Provider), CommonErrors, WriteErrors))]
pub async fn create_provider(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<NewProvider>,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let p = st
        .credentials()?
        .oauth
        .create_provider(&caller.scope, req)
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// One provider, by id or name.
#[utoipa::path(get, path = "/api/v1/providers/{provider}", tag = "oauth",
    params(("provider" = String, Path)),
    responses((status = 200, body = Provider), CommonErrors))]
pub async fn get_provider(
    State(st): State<AppState>,
    _caller: UserCaller,
    Path(p): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(st.credentials()?.oauth.get_provider(&p).await?))
}

/// Deletes a provider (admins), with every connection to it.
#[utoipa::path(delete, path = "/api/v1/providers/{provider}", tag = "oauth",
    params(("provider" = String, Path)),
    responses((status = 200, body = Provider), CommonErrors, WriteErrors))]
pub async fn delete_provider(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(p): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(
        st.credentials()?
            .oauth
            .delete_provider(&caller.scope, &p)
            .await?,
    ))
}

/// The caller's connections (admins: everyone's), without any token.
#[utoipa::path(get, path = "/api/v1/connections", tag = "oauth", params(ListQuery),
    responses((status = 200, body = Page<Connection>), CommonErrors))]
pub async fn list_connections(
    State(st): State<AppState>,
    caller: UserCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Connection>>> {
    Ok(Json(
        st.credentials()?
            .oauth
            .list_connections(&caller.scope, clamp_limit(q.limit), q.cursor.as_deref())
            .await?,
    ))
}

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

/// Starts connecting an account: answers the start URL to open in a browser that is
/// logged in to the dashboard.
#[utoipa::path(post, path = "/api/v1/connections", tag = "oauth", request_body = StartConnection,
    responses((status = 201, body = StartedFlow), CommonErrors, WriteErrors))]
pub async fn start_connection(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<StartConnection>,
) -> ApiResult<(StatusCode, Json<StartedFlow>)> {
    let f = st
        .credentials()?
        .oauth
        .create_flow(caller.id(), &req.provider, req.scopes, req.login_hint)
        .await?;
    Ok((StatusCode::CREATED, Json(f)))
}

/// Where a started connection stands (the CLI polls this).
#[utoipa::path(get, path = "/api/v1/connections/flows/{flow}", tag = "oauth",
    params(("flow" = String, Path)),
    responses((status = 200, body = FlowStatus), CommonErrors))]
pub async fn flow_status(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(flow): Path<String>,
) -> ApiResult<Json<FlowStatus>> {
    let id = FlowId::parse(&flow).ok_or_else(|| Problem::not_found(format!("flow {flow}")))?;
    Ok(Json(
        st.credentials()?
            .oauth
            .flow_status(caller.id(), &id)
            .await?,
    ))
}

/// One connection: scopes, expiry, last refresh, last use, status.
#[utoipa::path(get, path = "/api/v1/connections/{connection}", tag = "oauth",
    params(("connection" = String, Path)),
    responses((status = 200, body = Connection), CommonErrors))]
pub async fn get_connection(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Connection>> {
    Ok(Json(
        st.credentials()?
            .oauth
            .get_connection(&caller.scope, &id)
            .await?,
    ))
}

/// Revokes a connection: at the provider, and here (with its grants), at once.
#[utoipa::path(delete, path = "/api/v1/connections/{connection}", tag = "oauth",
    params(("connection" = String, Path)),
    responses((status = 200, body = Revoked), CommonErrors, WriteErrors))]
pub async fn revoke_connection(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Revoked>> {
    Ok(Json(
        st.credentials()?.oauth.revoke(&caller.scope, &id).await?,
    ))
}

/// Refreshes a connection's tokens now (the refresher does it on its own before expiry).
#[utoipa::path(post, path = "/api/v1/connections/{connection}/refresh", tag = "oauth",
    params(("connection" = String, Path)),
    responses((status = 200, body = Connection), CommonErrors, WriteErrors))]
pub async fn refresh_connection(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Connection>> {
    let oauth = &st.credentials()?.oauth;
    let conn = oauth.get_connection(&caller.scope, &id).await?;
    if conn.owner_id != *caller.id() {
        return Err(Problem::forbidden("only a connection's owner refreshes it"));
    }
    match oauth.refresh_one(&conn.id).await? {
        toolbelt_oauth::RefreshResult::Skipped => {
            return Err(Problem::conflict(
                "the connection is being refreshed, or needs re-authorization",
            ));
        }
        toolbelt_oauth::RefreshResult::Retrying(e) => {
            return Err(toolbelt_oauth::OAuthError::Unreachable(e).into());
        }
        _ => {}
    }
    Ok(Json(oauth.get_connection(&caller.scope, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// A flow made by `POST /api/v1/connections`; absent: start one now.
    pub flow: Option<String>,
    /// Space-separated scopes (new flows only).
    pub scopes: Option<String>,
    pub login_hint: Option<String>,
}

fn browser_session(caller: &UserCaller) -> ApiResult<String> {
    if !caller.via_cookie {
        return Err(Problem::unauthenticated(
            "open this link in a browser that is logged in to the Toolbelt dashboard",
        ));
    }
    Ok(caller.token_id.to_string())
}

/// Browser: binds the flow to this dashboard session and redirects to the provider.
#[utoipa::path(get, path = "/oauth/{provider}/start", tag = "oauth",
    params(("provider" = String, Path), StartQuery),
    responses((status = 302, description = "Redirect to the provider's authorization page"), CommonErrors))]
pub async fn browser_start(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
) -> ApiResult<Response> {
    let session = browser_session(&caller)?;
    let oauth = &st.credentials()?.oauth;
    let flow = match &q.flow {
        Some(f) => FlowId::parse(f).ok_or_else(|| Problem::not_found(format!("flow {f}")))?,
        None => {
            let scopes = q
                .scopes
                .as_ref()
                .map(|s| s.split_whitespace().map(String::from).collect());
            oauth
                .create_flow(caller.id(), &provider, scopes, q.login_hint.clone())
                .await?
                .flow_id
        }
    };
    let url = oauth.begin(&provider, &flow, caller.id(), &session).await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Browser: the provider's redirect. Exchanges the code (with the flow's PKCE verifier)
/// and seals the tokens in the vault.
#[utoipa::path(get, path = "/oauth/{provider}/callback", tag = "oauth",
    params(("provider" = String, Path), CallbackQuery),
    responses((status = 200, description = "Connected (an HTML page)"), CommonErrors))]
pub async fn browser_callback(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let session = browser_session(&caller)?;
    let conn = st
        .credentials()?
        .oauth
        .complete(
            &provider,
            Callback {
                code: q.code,
                state: q.state,
                error: q.error,
                error_description: q.error_description,
            },
            Some(&session),
        )
        .await?;
    let page = format!(
        "<!doctype html><title>Connected</title><p>Connected to <b>{}</b> as connection \
         <code>{}</code>. You can close this window.</p>",
        conn.provider, conn.id
    );
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::HeaderName::from_static("x-toolbelt-connection"),
                conn.id.as_str(),
            ),
        ],
        Html(page),
    )
        .into_response())
}
