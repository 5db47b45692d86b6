//! `/api/v1/providers`, `/api/v1/connections` and the browser's `/oauth/{provider}/…`
//! steps. A connection starts with `POST /api/v1/connections` (API or CLI), which answers a
//! start URL on this control plane; opened in a browser logged in to the dashboard, the
//! start URL binds the flow to that session and redirects to the provider, whose callback
//! must arrive in the same session. `GET /oauth/{provider}/start` without a flow starts one
//! directly (the dashboard's "Connect" button). Rules: [`service::oauth`].

use super::common::{CommonErrors, ListQuery, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::oauth::{BrowserStart, ReconnectConnection, StartConnection};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toolbelt_model::Page;
use toolbelt_model::oauth::{Connection, Provider};
use toolbelt_oauth::{Callback, FlowStatus, NewProvider, Revoked, StartedFlow};
use utoipa::IntoParams;

/// Every configured provider (everyone may read: they hold no secret).
#[utoipa::path(get, path = "/api/v1/providers", tag = "oauth",
    responses((status = 200, body = Vec<Provider>), CommonErrors))]
pub async fn list_providers(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
) -> ApiResult<Json<Vec<Provider>>> {
    Ok(Json(service::oauth::list_providers(&st, &caller).await?))
}

/// Configures a provider (admins): a built-in kind with client id and secret, or a custom
/// one by issuer (RFC 8414 / OIDC discovery) or explicit endpoints.
#[utoipa::path(post, path = "/api/v1/providers", tag = "oauth", request_body = NewProvider,
    responses((status = 201, body = Provider), CommonErrors, WriteErrors))]
pub async fn create_provider(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<NewProvider>,
) -> ApiResult<(StatusCode, Json<Provider>)> {
    let p = service::oauth::create_provider(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// One provider, by id or name.
#[utoipa::path(get, path = "/api/v1/providers/{provider}", tag = "oauth",
    params(("provider" = String, Path)),
    responses((status = 200, body = Provider), CommonErrors))]
pub async fn get_provider(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(p): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(service::oauth::get_provider(&st, &caller, &p).await?))
}

/// Deletes a provider (admins), with every connection to it.
#[utoipa::path(delete, path = "/api/v1/providers/{provider}", tag = "oauth",
    params(("provider" = String, Path)),
    responses((status = 200, body = Provider), CommonErrors, WriteErrors))]
pub async fn delete_provider(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(p): Path<String>,
) -> ApiResult<Json<Provider>> {
    Ok(Json(
        service::oauth::delete_provider(&st, &caller, &p).await?,
    ))
}

/// The caller's connections (admins: everyone's), without any token.
#[utoipa::path(get, path = "/api/v1/connections", tag = "oauth", params(ListQuery),
    responses((status = 200, body = Page<Connection>), CommonErrors))]
pub async fn list_connections(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Connection>>> {
    Ok(Json(
        service::oauth::list_connections(&st, &caller, &Paging::from(q)).await?,
    ))
}

/// Starts connecting an account: answers the start URL to open in a browser that is
/// logged in to the dashboard.
#[utoipa::path(post, path = "/api/v1/connections", tag = "oauth", request_body = StartConnection,
    responses((status = 201, body = StartedFlow), CommonErrors, WriteErrors))]
pub async fn start_connection(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<StartConnection>,
) -> ApiResult<(StatusCode, Json<StartedFlow>)> {
    let f = service::oauth::start_connection(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(f)))
}

/// Where a started connection stands (the CLI polls this).
#[utoipa::path(get, path = "/api/v1/connections/flows/{flow}", tag = "oauth",
    params(("flow" = String, Path)),
    responses((status = 200, body = FlowStatus), CommonErrors))]
pub async fn flow_status(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(flow): Path<String>,
) -> ApiResult<Json<FlowStatus>> {
    Ok(Json(
        service::oauth::flow_status(&st, &caller, &flow).await?,
    ))
}

/// One connection: scopes, expiry, last refresh, last use, status.
#[utoipa::path(get, path = "/api/v1/connections/{connection}", tag = "oauth",
    params(("connection" = String, Path)),
    responses((status = 200, body = Connection), CommonErrors))]
pub async fn get_connection(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Connection>> {
    Ok(Json(
        service::oauth::get_connection(&st, &caller, &id).await?,
    ))
}

/// Revokes a connection: at the provider, and here (with its grants), at once.
#[utoipa::path(delete, path = "/api/v1/connections/{connection}", tag = "oauth",
    params(("connection" = String, Path)),
    responses((status = 200, body = Revoked), CommonErrors, WriteErrors))]
pub async fn revoke_connection(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Revoked>> {
    Ok(Json(
        service::oauth::revoke_connection(&st, &caller, &id).await?,
    ))
}

/// Re-authorizes a connection (one that needs it, or to change its scopes): answers a start
/// URL like a new connection's; its callback puts the new tokens on this connection, so the
/// grants naming it hold. Only the connection's owner may (403 for anyone else who sees it).
#[utoipa::path(post, path = "/api/v1/connections/{connection}/reconnect", tag = "oauth",
    params(("connection" = String, Path)), request_body = ReconnectConnection,
    responses((status = 201, body = StartedFlow), CommonErrors, WriteErrors))]
pub async fn reconnect_connection(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
    Body(req): Body<ReconnectConnection>,
) -> ApiResult<(StatusCode, Json<StartedFlow>)> {
    let f = service::oauth::reconnect_connection(&st, &caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(f)))
}

/// Refreshes a connection's tokens now (the refresher does it on its own before expiry).
#[utoipa::path(post, path = "/api/v1/connections/{connection}/refresh", tag = "oauth",
    params(("connection" = String, Path)),
    responses((status = 200, body = Connection), CommonErrors, WriteErrors))]
pub async fn refresh_connection(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Connection>> {
    Ok(Json(
        service::oauth::refresh_connection(&st, &caller, &id).await?,
    ))
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

/// Browser: binds the flow to this dashboard session and redirects to the provider.
#[utoipa::path(get, path = "/oauth/{provider}/start", tag = "oauth",
    params(("provider" = String, Path), StartQuery),
    responses((status = 302, description = "Redirect to the provider's authorization page"), CommonErrors))]
pub async fn browser_start(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
) -> ApiResult<Response> {
    let req = BrowserStart {
        flow: q.flow,
        scopes: q
            .scopes
            .map(|s| s.split_whitespace().map(String::from).collect()),
        login_hint: q.login_hint,
    };
    let url = service::oauth::begin_in_browser(&st, &caller, &provider, req).await?;
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
    responses((status = 303, description = "Connected: to the dashboard's /connections with a notice"), CommonErrors))]
pub async fn browser_callback(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let callback = Callback {
        code: q.code,
        state: q.state,
        error: q.error,
        error_description: q.error_description,
    };
    let conn = service::oauth::complete_in_browser(&st, &caller, &provider, callback).await?;
    // Back to the dashboard's connections, where the new one is listed (post/redirect/get:
    // a reload does not replay the spent code).
    let notice = format!("Connected to {} as connection {}", conn.provider, conn.id);
    let to = format!(
        "/connections?done={}",
        url::form_urlencoded::byte_serialize(notice.as_bytes()).collect::<String>()
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, to),
            (header::CACHE_CONTROL, "no-store".into()),
            (
                header::HeaderName::from_static("x-toolbelt-connection"),
                conn.id.to_string(),
            ),
        ],
    )
        .into_response())
}
