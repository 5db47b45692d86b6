//! The DTMA channel: a toolbox's agent joins with a one-time token, then heartbeats
//! (reporting what runs, receiving the full desired set) and fetches secrets for the
//! servers it must (re)create.

use super::common::CommonErrors;
use crate::auth::ToolboxCaller;
use crate::extract::Body;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use crate::toolbox_client::desired;
use axum::Json;
use axum::extract::State;
use serde_json::json;
use std::collections::HashMap;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::catalog::validate_http_url;
use toolbelt_model::dtma::{
    HeartbeatReply, HeartbeatReport, JoinRequest, JoinResponse, SecretsRequest, SecretsResponse,
    ToolboxReport,
};
use toolbelt_model::server::{DesiredState, ServerInstance, ServerStatus};
use toolbelt_model::token::{self, TokenDigest, TokenKind};
use toolbelt_model::toolbox::{Toolbox, ToolboxKind, ToolboxStatus};
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::{catalog, servers, toolboxes};

fn by_toolbox(
    t: &Toolbox,
    action: AuditAction,
    target_kind: TargetKind,
    target_id: String,
    detail: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        actor_kind: ActorKind::Toolbox,
        actor_id: Some(t.id.to_string()),
        owner_id: t.owner_id.clone(),
        action,
        target_kind,
        target_id: Some(target_id),
        outcome: toolbelt_model::audit::Outcome::Success,
        detail,
    }
}

/// Exchanges a one-time join token for the toolbox's DTMA credential.
#[utoipa::path(post, path = "/api/v1/dtma/join", tag = "dtma", request_body = JoinRequest,
    responses((status = 200, body = JoinResponse), CommonErrors))]
pub async fn join(
    State(st): State<AppState>,
    Body(req): Body<JoinRequest>,
) -> ApiResult<Json<JoinResponse>> {
    validate_http_url("advertise_url", &req.advertise_url)?;
    if req.runtime == ToolboxKind::Remote {
        return Err(Problem::invalid("runtime", "a DTMA runs docker or process"));
    }
    let mut tx = st.store.begin_audited().await?;
    let found = tokens::find(&mut tx, &TokenDigest::of(&req.join_token)).await?;
    let toolbox_id = match found {
        Some(f)
            if f.kind == TokenKind::Join
                && f.expires_at.is_none_or(|e| e > toolbelt_model::now()) =>
        {
            match f.subject {
                Subject::Toolbox(t) if tokens::consume(&mut tx, &f.id).await? => t,
                _ => {
                    return Err(Problem::unauthenticated(
                        "invalid, used or expired join token",
                    ));
                }
            }
        }
        _ => {
            return Err(Problem::unauthenticated(
                "invalid, used or expired join token",
            ));
        }
    };
    let tb = toolboxes::get_internal(&mut tx, &toolbox_id).await?;
    // A new join replaces the previous DTMA's credential.
    tokens::revoke_all(&mut tx, &Subject::Toolbox(tb.id.clone()), TokenKind::Dtma).await?;
    let cred = token::issue(TokenKind::Dtma);
    tokens::insert(
        &mut tx,
        TokenKind::Dtma,
        &cred.digest,
        &Subject::Toolbox(tb.id.clone()),
        "dtma",
        None,
    )
    .await?;
    toolboxes::record_join(&mut tx, &tb.id, req.runtime, &req.advertise_url).await?;
    tx.commit(by_toolbox(&tb, AuditAction::ToolboxJoin, TargetKind::Toolbox, tb.id.to_string(), json!({
        "runtime": req.runtime.as_str(), "advertise_url": req.advertise_url, "version": req.version,
    }))).await?;
    Ok(Json(JoinResponse {
        toolbox_id: tb.id,
        toolbox_name: tb.name.to_string(),
        credential: cred.secret.clone(),
        control_public_key: st.key.public_b64(),
        heartbeat_interval_ms: st.config.heartbeat_interval.as_millis() as u64,
    }))
}

/// Reports what runs; answered with the full desired set.
#[utoipa::path(post, path = "/api/v1/dtma/heartbeat", tag = "dtma", request_body = HeartbeatReport,
    responses((status = 200, body = HeartbeatReply), CommonErrors))]
pub async fn heartbeat(
    State(st): State<AppState>,
    caller: ToolboxCaller,
    Body(report): Body<HeartbeatReport>,
) -> ApiResult<Json<HeartbeatReply>> {
    validate_http_url("advertise_url", &report.advertise_url)?;
    let summary = ToolboxReport {
        version: report.version.clone(),
        runtime: report.runtime.clone(),
        system: report.system.clone(),
    };
    let summary = serde_json::to_string(&summary).map_err(|_| Problem::internal())?;
    let mut tx = st.store.begin().await?;
    let before =
        toolboxes::record_heartbeat(&mut tx, &caller.toolbox_id, &report.advertise_url, &summary)
            .await?;
    let rows = servers::for_toolbox(&mut tx, &caller.toolbox_id).await?;
    let observed: HashMap<_, _> = report.servers.iter().map(|o| (o.id.clone(), o)).collect();
    let mut entries = HashMap::new();
    let (mut desired_set, mut purged, mut errored) = (Vec::new(), Vec::new(), Vec::new());
    let mut moved = false;
    for s in &rows {
        match observed.get(&s.id) {
            Some(o) => {
                let instance = ServerInstance {
                    container_id: o.container_id.clone(),
                    started_at: o.started_at,
                    image_digest: o.image_digest.clone(),
                    tool_count: o.tool_count,
                };
                let status = if s.desired == DesiredState::Deleted {
                    ServerStatus::Deleting
                } else if o.generation < s.generation {
                    // A report from before the DTMA heard of this generation (a restart
                    // just asked for): its `running` is the old instance's.
                    s.status
                } else {
                    o.status
                };
                let changed = s.status != status
                    || s.last_error != o.last_error
                    || s.restart_count != o.restarts
                    || s.health != o.health
                    || s.instance.as_ref() != Some(&instance);
                if changed {
                    moved |= s.status != status;
                    let obs = servers::Observation {
                        status,
                        last_error: o.last_error.as_deref(),
                        restarts: o.restarts,
                        health: o.health,
                        instance: Some(&instance),
                    };
                    servers::apply_observed(&mut tx, &s.id, obs).await?;
                    if status == ServerStatus::ErrorRuntime
                        && s.status != ServerStatus::ErrorRuntime
                    {
                        errored.push((s.clone(), o.last_error.clone()));
                    }
                }
            }
            None if s.desired == DesiredState::Deleted => {
                servers::purge(&mut tx, &s.id).await?;
                purged.push(s.clone());
            }
            None if s.status == ServerStatus::Unresponsive => {
                let obs = servers::Observation {
                    status: ServerStatus::PendingDeploy,
                    last_error: None,
                    restarts: s.restart_count,
                    health: s.health,
                    instance: None,
                };
                servers::apply_observed(&mut tx, &s.id, obs).await?;
            }
            None => {}
        }
        if s.desired != DesiredState::Deleted {
            if !entries.contains_key(&s.catalog_id) {
                entries.insert(
                    s.catalog_id.clone(),
                    catalog::get(&mut tx, s.catalog_id.as_str()).await?,
                );
            }
            desired_set.push(desired(s, &entries[&s.catalog_id]));
        }
    }
    tx.commit()
        .await
        .map_err(toolbelt_store::StoreError::from)?;
    if moved || !purged.is_empty() {
        // A server came up, went down or went away: the gateway re-reads before its next
        // call or listing instead of at its next periodic refresh.
        st.store.bump_epoch();
    }

    if before != ToolboxStatus::Active || !purged.is_empty() || !errored.is_empty() {
        let mut c = st.store.conn().await?;
        let tb = toolboxes::get_internal(&mut c, &caller.toolbox_id).await?;
        drop(c);
        let mut events = Vec::new();
        if before != ToolboxStatus::Active {
            events.push(by_toolbox(
                &tb,
                AuditAction::ToolboxActive,
                TargetKind::Toolbox,
                tb.id.to_string(),
                json!({ "was": before.as_str() }),
            ));
        }
        for s in purged {
            events.push(by_toolbox(
                &tb,
                AuditAction::ServerRemoved,
                TargetKind::Server,
                s.id.to_string(),
                json!({ "name": s.name }),
            ));
        }
        for (s, why) in errored {
            events.push(by_toolbox(
                &tb,
                AuditAction::ServerError,
                TargetKind::Server,
                s.id.to_string(),
                json!({ "name": s.name, "error": why }),
            ));
        }
        for ev in events {
            st.store.begin_audited().await?.commit(ev).await?;
        }
    }
    Ok(Json(HeartbeatReply {
        desired: desired_set,
        heartbeat_interval_ms: st.config.heartbeat_interval.as_millis() as u64,
    }))
}

/// The secret values of one server on the caller's toolbox (audited delivery).
#[utoipa::path(post, path = "/api/v1/dtma/secrets", tag = "dtma", request_body = SecretsRequest,
    responses((status = 200, body = SecretsResponse), CommonErrors))]
pub async fn secrets(
    State(st): State<AppState>,
    caller: ToolboxCaller,
    Body(req): Body<SecretsRequest>,
) -> ApiResult<Json<SecretsResponse>> {
    let mut c = st.store.conn().await?;
    let server = match servers::get_internal(&mut c, &req.server_id).await {
        Ok(s) if s.toolbox_id == caller.toolbox_id => s,
        _ => return Err(Problem::not_found(format!("server {}", req.server_id))),
    };
    let tb = toolboxes::get_internal(&mut c, &caller.toolbox_id).await?;
    drop(c);
    let values = st
        .secrets
        .resolve(&server)
        .await
        .map_err(|e| Problem::conflict(e.to_string()))?;
    let names: Vec<&String> = values.keys().collect();
    st.store
        .begin_audited()
        .await?
        .commit(by_toolbox(
            &tb,
            AuditAction::SecretDeliver,
            TargetKind::Server,
            server.id.to_string(),
            json!({ "names": names }),
        ))
        .await?;
    Ok(Json(SecretsResponse { secrets: values }))
}
