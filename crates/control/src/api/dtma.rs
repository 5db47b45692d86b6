//! `/api/v1/dtma/...`: the channel between the control plane and toolbox agents. Rules:
//! [`service::dtma`].

use super::common::CommonErrors;
use crate::auth::ToolboxCaller;
use crate::extract::Body;
use crate::problem::ApiResult;
use crate::service;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use toolbelt_model::dtma::{
    HeartbeatReply, HeartbeatReport, JoinRequest, JoinResponse, SecretsRequest, SecretsResponse,
};

/// Exchanges a one-time join token for the toolbox's DTMA credential.
#[utoipa::path(post, path = "/api/v1/dtma/join", tag = "dtma", request_body = JoinRequest,
    responses((status = 200, body = JoinResponse), CommonErrors))]
pub async fn join(
    State(st): State<AppState>,
    Body(req): Body<JoinRequest>,
) -> ApiResult<Json<JoinResponse>> {
    Ok(Json(service::dtma::join(&st, req).await?))
}

/// Reports what runs; answered with the full desired set.
#[utoipa::path(post, path = "/api/v1/dtma/heartbeat", tag = "dtma", request_body = HeartbeatReport,
    responses((status = 200, body = HeartbeatReply), CommonErrors))]
pub async fn heartbeat(
    State(st): State<AppState>,
    caller: ToolboxCaller,
    Body(report): Body<HeartbeatReport>,
) -> ApiResult<Json<HeartbeatReply>> {
    Ok(Json(
        service::dtma::heartbeat(&st, &caller.toolbox_id, report).await?,
    ))
}

/// The secret values of one server on the caller's toolbox (audited delivery).
#[utoipa::path(post, path = "/api/v1/dtma/secrets", tag = "dtma", request_body = SecretsRequest,
    responses((status = 200, body = SecretsResponse), CommonErrors))]
pub async fn secrets(
    State(st): State<AppState>,
    caller: ToolboxCaller,
    Body(req): Body<SecretsRequest>,
) -> ApiResult<Json<SecretsResponse>> {
    Ok(Json(
        service::dtma::secrets(&st, &caller.toolbox_id, req).await?,
    ))
}
