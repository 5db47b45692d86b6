//! `/api/v1/dtma/...`: the channel between the control plane and toolbox agents. Rules:
//! [`service::dtma`]. Heartbeat replies and secret deliveries are signed with the control
//! key over the DTMA's nonce ([`toolbelt_model::signed_reply`]).

use super::common::CommonErrors;
use crate::auth::ToolboxCaller;
use crate::extract::Body;
use crate::problem::ApiResult;
use crate::service::{self, ServiceError};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use toolbelt_model::dtma::{
    HeartbeatReply, HeartbeatReport, JoinRequest, JoinResponse, SecretsRequest, SecretsResponse,
};
use toolbelt_model::signed_reply::{NONCE_HEADER, ReplyKind, SIGNATURE_HEADER, valid_nonce};

/// Exchanges a one-time join token for the toolbox's DTMA credential.
#[utoipa::path(post, path = "/api/v1/dtma/join", tag = "dtma", request_body = JoinRequest,
    responses((status = 200, body = JoinResponse), CommonErrors))]
pub async fn join(
    State(st): State<AppState>,
    Body(req): Body<JoinRequest>,
) -> ApiResult<Json<JoinResponse>> {
    Ok(Json(service::dtma::join(&st, req).await?))
}

/// The request's nonce: absent (a DTMA older than signed replies, which signs over the
/// empty nonce and is not checked by that DTMA) or a short base64url string.
fn nonce(headers: &HeaderMap) -> Result<String, ServiceError> {
    match headers.get(NONCE_HEADER) {
        None => Ok(String::new()),
        Some(v) => match v.to_str() {
            Ok(n) if valid_nonce(n) => Ok(n.to_string()),
            _ => Err(ServiceError::invalid(
                NONCE_HEADER,
                "must be 1 to 64 base64url characters",
            )),
        },
    }
}

/// `value` as a JSON body with its signature for this toolbox and nonce.
fn signed<T: serde::Serialize>(
    st: &AppState,
    kind: ReplyKind,
    caller: &ToolboxCaller,
    nonce: &str,
    value: &T,
) -> ApiResult<Response> {
    let body = serde_json::to_vec(value).map_err(|_| ServiceError::Internal)?;
    let sig = st
        .key
        .sign_reply(kind, caller.toolbox_id.as_str(), nonce, &body);
    let sig = HeaderValue::from_str(&sig).map_err(|_| ServiceError::Internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::HeaderName::from_static(SIGNATURE_HEADER), sig),
        ],
        body,
    )
        .into_response())
}

/// Reports what runs; answered with the full desired set, signed.
#[utoipa::path(post, path = "/api/v1/dtma/heartbeat", tag = "dtma", request_body = HeartbeatReport,
    responses((status = 200, body = HeartbeatReply), CommonErrors))]
pub async fn heartbeat(
    State(st): State<AppState>,
    caller: ToolboxCaller,
    headers: HeaderMap,
    Body(report): Body<HeartbeatReport>,
) -> ApiResult<Response> {
    let nonce = nonce(&headers)?;
    let reply = service::dtma::heartbeat(&st, &caller.toolbox_id, report).await?;
    signed(&st, ReplyKind::Heartbeat, &caller, &nonce, &reply)
}

/// The secret values of one server on the caller's toolbox (audited delivery), signed.
#[utoipa::path(post, path = "/api/v1/dtma/secrets", tag = "dtma", request_body = SecretsRequest,
    responses((status = 200, body = SecretsResponse), CommonErrors))]
pub async fn secrets(
    State(st): State<AppState>,
    caller: ToolboxCaller,
    headers: HeaderMap,
    Body(req): Body<SecretsRequest>,
) -> ApiResult<Response> {
    let nonce = nonce(&headers)?;
    let reply = service::dtma::secrets(&st, &caller.toolbox_id, req).await?;
    signed(&st, ReplyKind::Secrets, &caller, &nonce, &reply)
}
