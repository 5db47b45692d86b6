//! `/api/v1/servers/{server}/logs|stats`: what the server's toolbox knows right now,
//! streamed through. Rules: [`service::server_runtime`].

use super::common::CommonErrors;
use super::servers::ServerQuery;
use crate::auth::SignedIn;
use crate::extract::Query;
use crate::problem::ApiResult;
use crate::service;
use crate::service::server_runtime::LogsRequest;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Lines from the end (default 100, at most 10000).
    pub tail: Option<usize>,
    /// `1` keeps the stream open and sends new lines as they come.
    pub follow: Option<u8>,
    /// Disambiguates a server name.
    pub toolbox: Option<String>,
}

/// The server's log (stderr for stdio servers, whose stdout is protocol traffic).
#[utoipa::path(get, path = "/api/v1/servers/{server}/logs", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), LogsQuery),
    responses((status = 200, description = "Log lines", body = String, content_type = "text/plain"), CommonErrors))]
pub async fn logs(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let req = LogsRequest {
        tail: q.tail,
        follow: q.follow == Some(1),
    };
    let lines = service::server_runtime::logs(&st, &caller, &r, q.toolbox.as_deref(), req).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// CPU, memory and process count of the server's container or process.
#[utoipa::path(get, path = "/api/v1/servers/{server}/stats", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, description = "Stats", body = Object), CommonErrors))]
pub async fn stats(
    State(st): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Response> {
    let body = service::server_runtime::stats(&st, &caller, &r, q.toolbox.as_deref()).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
