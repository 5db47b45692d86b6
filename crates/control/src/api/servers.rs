//! `/api/v1/servers`: deployed MCP servers and their desired state. Rules:
//! [`service::servers`].

use super::common::{CommonErrors, ToolboxErrors, WriteErrors};
use crate::auth::SignedIn;
use crate::extract::{Body, Query};
use crate::problem::ApiResult;
use crate::service::server_image::UpdateImage;
use crate::service::servers::{Change, CreateServer};
use crate::service::{self, Paging};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use toolbelt_model::Page;
use toolbelt_model::server::Server;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServerQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only servers on this toolbox (id or name); also disambiguates a server name.
    pub toolbox: Option<String>,
}

/// Servers the caller can see (on their toolboxes and shared ones).
#[utoipa::path(get, path = "/api/v1/servers", tag = "servers", params(ServerQuery),
    responses((status = 200, body = Page<Server>), CommonErrors))]
pub async fn list(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Page<Server>>> {
    let page = Paging {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(
        service::servers::list(&st, &caller, q.toolbox.as_deref(), &page).await?,
    ))
}

/// Requests a deployment: a server in desired state `running` on a toolbox.
#[utoipa::path(post, path = "/api/v1/servers", tag = "servers", request_body = CreateServer,
    responses((status = 201, body = Server), CommonErrors, WriteErrors))]
pub async fn create(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Body(req): Body<CreateServer>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    let s = service::servers::create(&st, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// One server, by id or name.
#[utoipa::path(get, path = "/api/v1/servers/{server}", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors))]
pub async fn get(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    Ok(Json(
        service::servers::get(&st, &caller, &r, q.toolbox.as_deref()).await?,
    ))
}

async fn change(
    st: &AppState,
    caller: &service::Caller,
    r: &str,
    q: &ServerQuery,
    c: Change,
) -> ApiResult<Json<Server>> {
    Ok(Json(
        service::servers::change(st, caller, r, q.toolbox.as_deref(), c).await?,
    ))
}

/// Requests removal; the server disappears when its toolbox confirms.
#[utoipa::path(delete, path = "/api/v1/servers/{server}", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn delete(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(&st, &caller, &r, &q, Change::Delete).await
}

/// Desired state `running`.
#[utoipa::path(post, path = "/api/v1/servers/{server}/start", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn start(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(&st, &caller, &r, &q, Change::Start).await
}

/// Desired state `stopped`.
#[utoipa::path(post, path = "/api/v1/servers/{server}/stop", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn stop(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(&st, &caller, &r, &q, Change::Stop).await
}

/// Recreates the server's process or container (desired state `running`).
#[utoipa::path(post, path = "/api/v1/servers/{server}/restart", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, body = Server), CommonErrors, WriteErrors))]
pub async fn restart(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Json<Server>> {
    change(&st, &caller, &r, &q, Change::Restart).await
}

/// Moves a container server to another image — its entry's tag resolved again by its
/// toolbox, or `digest` (an image of the entry's repository) — and re-creates its
/// container on it. Audited (`server.update_image`, old and new digest).
#[utoipa::path(post, path = "/api/v1/servers/{server}/update-image", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    request_body = UpdateImage,
    responses((status = 200, body = Server), CommonErrors, WriteErrors, ToolboxErrors))]
pub async fn update_image(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
    Body(req): Body<UpdateImage>,
) -> ApiResult<Json<Server>> {
    Ok(Json(
        service::server_image::update_image(&st, &caller, &r, q.toolbox.as_deref(), req).await?,
    ))
}
