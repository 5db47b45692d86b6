//! What a server's toolbox knows about it right now — logs (tail and follow) and resource
//! stats — fetched from its DTMA with a signed token. The caller must be able to see the
//! server; the toolbox must have a DTMA that answers.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use super::refs;
use crate::state::AppState;
use crate::toolbox_client::token_for;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use toolbelt_model::dtma::{ResolveImageRequest, ResolveImageResponse, is_image_digest};
use toolbelt_model::server::Server;
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_store::toolboxes;

/// Log lines as the DTMA sends them; with `follow`, the stream stays open.
pub type LogStream = BoxStream<'static, Result<Bytes, reqwest::Error>>;

/// Which lines of a server's log.
#[derive(Debug, Clone, Copy)]
pub struct LogsRequest {
    /// Lines from the end (default 100, at most 10000).
    pub tail: Option<usize>,
    /// Keep the stream open and send new lines as they come.
    pub follow: bool,
}

/// Sends a request to the server's toolbox's DTMA, signed; any answer it gives.
async fn dtma_send(
    st: &AppState,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<reqwest::Response> {
    let mut c = st.store.conn().await?;
    let tb = toolboxes::get_internal(&mut c, &server.toolbox_id).await?;
    drop(c);
    let Some(url) = tb.dtma_url.clone() else {
        return Err(ServiceError::unavailable(format!(
            "toolbox {} has no DTMA yet",
            tb.name
        )));
    };
    if tb.status == ToolboxStatus::Unresponsive {
        return Err(ServiceError::unavailable(format!(
            "toolbox {} is unresponsive",
            tb.name
        )));
    }
    // Rows written before the guard existed are checked here too; new ones at join.
    if let Err(e) = crate::toolbox_client::callable_url(st, &tb, &url) {
        return Err(ServiceError::unavailable(format!(
            "toolbox {} is not called: its DTMA address {e}",
            tb.name
        )));
    }
    let mut req = st
        .toolboxes
        .http(&tb)
        .request(method, format!("{}{path}", url.trim_end_matches('/')))
        .bearer_auth(token_for(st, &tb))
        .timeout(std::time::Duration::from_secs(3600));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.map_err(|e| {
        ServiceError::unavailable(format!(
            "toolbox {} did not answer: {}",
            tb.name,
            toolbelt_net::http::describe(&e)
        ))
    })
}

/// The `detail` of a DTMA's refusal.
async fn refusal(res: reqwest::Response) -> String {
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    body["detail"]
        .as_str()
        .unwrap_or("the toolbox refused")
        .to_string()
}

async fn dtma_get(st: &AppState, server: &Server, path: &str) -> Result<reqwest::Response> {
    let res = dtma_send(st, server, reqwest::Method::GET, path, None).await?;
    if !res.status().is_success() {
        return Err(ServiceError::conflict(refusal(res).await));
    }
    Ok(res)
}

/// The image ID the server's toolbox resolves `req` to (pulled there if needed). Its
/// refusal (no such image, not of the entry's repository) is invalid input at `field`.
pub(super) async fn resolve_image(
    st: &AppState,
    server: &Server,
    req: &ResolveImageRequest,
    field: &str,
) -> Result<String> {
    let body = serde_json::to_value(req).unwrap_or_default();
    let res = dtma_send(
        st,
        server,
        reqwest::Method::POST,
        "/v1/images/resolve",
        Some(body),
    )
    .await?;
    let status = res.status();
    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        return Err(ServiceError::invalid(field, refusal(res).await));
    }
    if !status.is_success() {
        return Err(ServiceError::unavailable(format!(
            "the toolbox could not resolve the image: {}",
            refusal(res).await
        )));
    }
    let got: ResolveImageResponse = res
        .json()
        .await
        .map_err(|_| ServiceError::unavailable("the toolbox's answer was cut off"))?;
    if !is_image_digest(&got.image_digest) {
        return Err(ServiceError::unavailable(
            "the toolbox answered no image digest",
        ));
    }
    Ok(got.image_digest)
}

/// The server's log (stderr for stdio servers, whose stdout is protocol traffic).
pub async fn logs(
    st: &AppState,
    caller: &Caller,
    r: &str,
    toolbox: Option<&str>,
    req: LogsRequest,
) -> Result<LogStream> {
    let mut c = st.store.conn().await?;
    let s = refs::server(&mut c, &caller.scope, r, toolbox).await?;
    drop(c);
    let tail = req.tail.unwrap_or(100).min(10_000);
    let follow = u8::from(req.follow);
    let res = dtma_get(
        st,
        &s,
        &format!("/v1/servers/{}/logs?tail={tail}&follow={follow}", s.name),
    )
    .await?;
    Ok(res.bytes_stream().boxed())
}

/// CPU, memory and process count of the server's container or process: the DTMA's JSON,
/// as it sent it.
pub async fn stats(
    st: &AppState,
    caller: &Caller,
    r: &str,
    toolbox: Option<&str>,
) -> Result<Bytes> {
    let mut c = st.store.conn().await?;
    let s = refs::server(&mut c, &caller.scope, r, toolbox).await?;
    drop(c);
    let res = dtma_get(st, &s, &format!("/v1/servers/{}/stats", s.name)).await?;
    res.bytes()
        .await
        .map_err(|_| ServiceError::unavailable("the toolbox's answer was cut off"))
}
