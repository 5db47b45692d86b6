//! What a server's toolbox knows about it right now: logs (tail and follow, streamed)
//! and resource stats, fetched from its DTMA with a signed token.

use super::common::{self, CommonErrors};
use super::servers::ServerQuery;
use crate::auth::UserCaller;
use crate::extract::Query;
use crate::problem::{ApiResult, Kind, Problem};
use crate::state::AppState;
use crate::toolbox_client::token_for;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toolbelt_model::server::Server;
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_store::toolboxes;
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

async fn dtma_get(st: &AppState, server: &Server, path: &str) -> ApiResult<reqwest::Response> {
    let mut c = st.store.conn().await?;
    let tb = toolboxes::get_internal(&mut c, &server.toolbox_id).await?;
    drop(c);
    let Some(url) = tb.dtma_url.clone() else {
        return Err(Problem::new(
            Kind::Unavailable,
            format!("toolbox {} has no DTMA yet", tb.name),
        ));
    };
    if tb.status == ToolboxStatus::Unresponsive {
        return Err(Problem::new(
            Kind::Unavailable,
            format!("toolbox {} is unresponsive", tb.name),
        ));
    }
    let res = st
        .toolboxes
        .http
        .get(format!("{}{path}", url.trim_end_matches('/')))
        .bearer_auth(token_for(st, &tb))
        .timeout(std::time::Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| {
            Problem::new(
                Kind::Unavailable,
                format!("toolbox {} did not answer: {e}", tb.name),
            )
        })?;
    if !res.status().is_success() {
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        let detail = body["detail"]
            .as_str()
            .unwrap_or("the toolbox refused")
            .to_string();
        return Err(Problem::conflict(detail));
    }
    Ok(res)
}

/// The server's log (stderr for stdio servers, whose stdout is protocol traffic).
#[utoipa::path(get, path = "/api/v1/servers/{server}/logs", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), LogsQuery),
    responses((status = 200, description = "Log lines", content_type = "text/plain"), CommonErrors))]
pub async fn logs(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let mut c = st.store.conn().await?;
    let s = common::server(&mut c, &caller.scope, &r, q.toolbox.as_deref()).await?;
    drop(c);
    let tail = q.tail.unwrap_or(100).min(10_000);
    let follow = u8::from(q.follow == Some(1));
    let res = dtma_get(
        &st,
        &s,
        &format!("/v1/servers/{}/logs?tail={tail}&follow={follow}", s.name),
    )
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(res.bytes_stream()),
    )
        .into_response())
}

/// CPU, memory and process count of the server's container or process.
#[utoipa::path(get, path = "/api/v1/servers/{server}/stats", tag = "servers",
    params(("server" = String, Path, description = "Server id or name"), ServerQuery),
    responses((status = 200, description = "Stats", body = Object), CommonErrors))]
pub async fn stats(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(r): Path<String>,
    Query(q): Query<ServerQuery>,
) -> ApiResult<Response> {
    let mut c = st.store.conn().await?;
    let s = common::server(&mut c, &caller.scope, &r, q.toolbox.as_deref()).await?;
    drop(c);
    let res = dtma_get(&st, &s, &format!("/v1/servers/{}/stats", s.name)).await?;
    let body = res
        .bytes()
        .await
        .map_err(|_| Problem::new(Kind::Unavailable, "the toolbox's answer was cut off"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
