//! The DTMA channel: a toolbox's agent joins with a one-time token, then heartbeats
//! (reporting what runs, receiving the full desired set) and fetches secrets for the
//! servers it must (re)create. The caller is a toolbox, not a user.

use super::error::{Result, ServiceError};
use crate::state::AppState;
use crate::toolbox_client::desired;
use serde_json::{Value, json};
use std::collections::HashMap;
use toolbelt_model::ToolboxId;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::catalog::CatalogSource;
use toolbelt_model::dtma::{
    HeartbeatReply, HeartbeatReport, JoinRequest, JoinResponse, ObservedServer, SecretsRequest,
    SecretsResponse, ToolboxReport,
};
use toolbelt_model::server::{DesiredState, Server, ServerInstance, ServerStatus};
use toolbelt_model::token::{self, TokenDigest, TokenKind};
use toolbelt_model::toolbox::{Toolbox, ToolboxKind, ToolboxStatus};
use toolbelt_store::events::Event;
use toolbelt_store::tokens::{self, Subject};
use toolbelt_store::{AnyConnection, StoreError, catalog, history, metrics, servers, toolboxes};

fn by_toolbox(
    t: &Toolbox,
    action: AuditAction,
    target_kind: TargetKind,
    target_id: String,
    detail: Value,
) -> NewAuditEvent {
    NewAuditEvent {
        actor_kind: ActorKind::Toolbox,
        actor_id: Some(t.id.to_string()),
        owner_id: t.owner_id.clone(),
        action,
        target_kind,
        target_id: Some(target_id),
        outcome: Outcome::Success,
        detail,
    }
}

/// A DTMA's own address, checked at join and on every heartbeat: the control plane and
/// the gateway call it and relay what it answers ([`toolbelt_net::dtma_address`]); plain
/// `http://` is refused when TLS is required or the DTMA's key is pinned.
fn check_advertise_url(st: &AppState, url: &str, pinned: bool) -> Result<()> {
    match st.config.outbound.dtma.check_channel(url, pinned) {
        Ok(_) => Ok(()),
        Err(e) => Err(ServiceError::invalid("advertise_url", e.to_string())),
    }
}

/// The pin a DTMA reports, normalised (`sha256:<hex>`; [`toolbelt_net::dtma_pin`]).
fn check_pin(pin: Option<&str>) -> Result<Option<String>> {
    pin.map(|p| {
        toolbelt_net::dtma_pin::SpkiPin::parse(p)
            .map(|p| p.as_str().to_string())
            .map_err(|e| ServiceError::invalid("tls_pin", e.to_string()))
    })
    .transpose()
}

fn bad_join_token() -> ServiceError {
    ServiceError::Unauthenticated("invalid, used or expired join token".into())
}

/// Exchanges a one-time join token for the toolbox's DTMA credential; a new join replaces
/// the previous DTMA's credential.
pub async fn join(st: &AppState, req: JoinRequest) -> Result<JoinResponse> {
    let pin = check_pin(req.tls_pin.as_deref())?;
    check_advertise_url(st, &req.advertise_url, pin.is_some())?;
    if req.runtime == ToolboxKind::Remote {
        return Err(ServiceError::invalid(
            "runtime",
            "a DTMA runs docker or process",
        ));
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
                _ => return Err(bad_join_token()),
            }
        }
        _ => return Err(bad_join_token()),
    };
    let tb = toolboxes::get_internal(&mut tx, &toolbox_id).await?;
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
    toolboxes::record_join(
        &mut tx,
        &tb.id,
        req.runtime,
        &req.advertise_url,
        pin.as_deref(),
    )
    .await?;
    tx.commit(by_toolbox(&tb, AuditAction::ToolboxJoin, TargetKind::Toolbox, tb.id.to_string(), json!({
        "runtime": req.runtime.as_str(), "advertise_url": req.advertise_url, "version": req.version,
        "tls_pin": pin,
    }))).await?;
    Ok(JoinResponse {
        toolbox_id: tb.id,
        toolbox_name: tb.name.to_string(),
        credential: cred.secret.clone(),
        control_public_key: st.key.public_b64(),
        heartbeat_interval_ms: st.config.heartbeat_interval.as_millis() as u64,
    })
}

/// What applying one heartbeat changed, for the audit log and the gateway.
#[derive(Default)]
struct Applied {
    desired: Vec<toolbelt_model::dtma::DesiredServer>,
    /// Servers whose deletion the toolbox confirmed.
    purged: Vec<Server>,
    /// Servers that just started failing.
    failing: Vec<Failing>,
    /// Some server's status moved.
    moved: bool,
    /// Each move, for live pages.
    moves: Vec<Event>,
    /// Image servers not pinned yet, with the digest their toolbox reports running.
    pins: Vec<(Server, String)>,
}

struct Failing {
    server: Server,
    /// The toolbox's reason.
    error: Option<String>,
}

/// The status a report means for a server the control plane knows.
fn observed_status(s: &Server, o: &ObservedServer) -> ServerStatus {
    if s.desired == DesiredState::Deleted {
        ServerStatus::Deleting
    } else if o.generation < s.generation {
        // A report from before the DTMA heard of this generation (a restart just asked
        // for): its `running` is the old instance's.
        s.status
    } else {
        o.status
    }
}

fn moved(s: &Server, status: ServerStatus) -> Event {
    Event::ServerStatus {
        server: s.id.clone(),
        toolbox: s.toolbox_id.clone(),
        owner: s.owner_id.clone(),
        status,
    }
}

/// Records what the toolbox reports about each of its servers and builds the desired set.
async fn apply(
    c: &mut AnyConnection,
    rows: &[Server],
    report: &HeartbeatReport,
    allowed_registries: &[String],
) -> Result<Applied, StoreError> {
    let observed: HashMap<_, _> = report.servers.iter().map(|o| (o.id.clone(), o)).collect();
    let mut entries = HashMap::new();
    let mut out = Applied::default();
    for s in rows {
        // The first image this generation reports running is what the server is pinned to.
        let mut pin = observed
            .get(&s.id)
            .filter(|o| s.image_digest.is_none() && o.generation == s.generation)
            .and_then(|o| o.image_digest.clone())
            .filter(|d| toolbelt_model::dtma::is_image_digest(d));
        match observed.get(&s.id) {
            Some(o) => {
                let instance = ServerInstance {
                    container_id: o.container_id.clone(),
                    started_at: o.started_at,
                    image_digest: o.image_digest.clone(),
                    tool_count: o.tool_count,
                };
                let status = observed_status(s, o);
                let changed = s.status != status
                    || s.last_error != o.last_error
                    || s.restart_count != o.restarts
                    || s.health != o.health
                    || s.instance.as_ref() != Some(&instance);
                if let Some(stats) = &o.stats {
                    let subject = metrics::Subject::Server(s.id.clone());
                    let (cpu, mem) = (stats.cpu_percent, stats.memory_bytes);
                    metrics::record_resources(c, metrics::this_minute(), &subject, cpu, mem)
                        .await?;
                }
                if s.status != status {
                    history::record(c, &s.id, status, o.last_error.as_deref(), o.restarts).await?;
                    out.moves.push(moved(s, status));
                }
                if changed {
                    out.moved |= s.status != status;
                    let obs = servers::Observation {
                        status,
                        last_error: o.last_error.as_deref(),
                        restarts: o.restarts,
                        health: o.health,
                        instance: Some(&instance),
                    };
                    servers::apply_observed(c, &s.id, obs).await?;
                    if status == ServerStatus::ErrorRuntime
                        && s.status != ServerStatus::ErrorRuntime
                    {
                        out.failing.push(Failing {
                            server: s.clone(),
                            error: o.last_error.clone(),
                        });
                    }
                }
            }
            None if s.desired == DesiredState::Deleted => {
                servers::purge(c, &s.id).await?;
                out.purged.push(s.clone());
            }
            None if s.status == ServerStatus::Unresponsive => {
                let obs = servers::Observation {
                    status: ServerStatus::PendingDeploy,
                    last_error: None,
                    restarts: s.restart_count,
                    health: s.health,
                    instance: None,
                };
                servers::apply_observed(c, &s.id, obs).await?;
                history::record(c, &s.id, ServerStatus::PendingDeploy, None, s.restart_count)
                    .await?;
                out.moves.push(moved(s, ServerStatus::PendingDeploy));
            }
            None => {}
        }
        if s.desired != DesiredState::Deleted {
            if !entries.contains_key(&s.catalog_id) {
                entries.insert(
                    s.catalog_id.clone(),
                    catalog::get(c, s.catalog_id.as_str()).await?,
                );
            }
            let entry = &entries[&s.catalog_id];
            if !matches!(entry.spec.source, CatalogSource::Image { .. }) {
                pin = None;
            }
            match desired(s, entry, allowed_registries) {
                Ok(d) => {
                    if let Some(digest) = pin {
                        out.pins.push((s.clone(), digest));
                    }
                    out.desired.push(d)
                }
                Err(e) => {
                    tracing::warn!(server = %s.id, error = %e, "not sent to its toolbox")
                }
            }
        }
    }
    Ok(out)
}

/// Pins each server its toolbox first reports running an image (with its audit event, in
/// one transaction), and has this reply's desired set carry the pin already.
async fn pin_images(st: &AppState, toolbox: &ToolboxId, applied: &mut Applied) -> Result<()> {
    if applied.pins.is_empty() {
        return Ok(());
    }
    let mut c = st.store.conn().await?;
    let tb = toolboxes::get_internal(&mut c, toolbox).await?;
    drop(c);
    for (s, digest) in std::mem::take(&mut applied.pins) {
        let mut tx = st.store.begin_audited().await?;
        if !servers::pin_image(&mut tx, &s.id, &digest).await? {
            tx.rollback().await?;
            continue;
        }
        tx.commit(by_toolbox(
            &tb,
            AuditAction::ServerImagePinned,
            TargetKind::Server,
            s.id.to_string(),
            json!({ "name": s.name, "image_digest": digest }),
        ))
        .await?;
        if let Some(d) = applied.desired.iter_mut().find(|d| d.id == s.id) {
            d.image_digest = Some(digest);
        }
    }
    Ok(())
}

/// Records a toolbox's report; answers the full desired set.
pub async fn heartbeat(
    st: &AppState,
    toolbox: &ToolboxId,
    report: HeartbeatReport,
) -> Result<HeartbeatReply> {
    let pin = check_pin(report.tls_pin.as_deref())?;
    check_advertise_url(st, &report.advertise_url, pin.is_some())?;
    let summary = ToolboxReport {
        version: report.version.clone(),
        runtime: report.runtime.clone(),
        system: report.system.clone(),
    };
    let summary = serde_json::to_string(&summary).map_err(|_| ServiceError::Internal)?;
    let mut tx = st.store.begin().await?;
    let was = toolboxes::record_heartbeat(
        &mut tx,
        toolbox,
        &report.advertise_url,
        &summary,
        pin.as_deref(),
    )
    .await?;
    // Checked against the pin as stored (the transaction is rolled back on refusal).
    check_advertise_url(st, &report.advertise_url, was.dtma_tls_pin.is_some())?;
    if let (Some(pinned), Some(now)) = (&was.dtma_tls_pin, &pin)
        && pinned != now
    {
        // Not re-pinned from a heartbeat (its bearer credential is not proof enough):
        // calls fail naming the mismatch until the DTMA joins again.
        tracing::warn!(toolbox = %toolbox, %pinned, reported = %now, "the DTMA reports another TLS key than the one pinned at join");
    }
    let before = was.status;
    let minute = metrics::this_minute();
    let system = &report.system;
    let subject = metrics::Subject::Toolbox(toolbox.clone());
    let (cpu, mem) = (Some(system.cpu_percent), Some(system.mem_used_bytes));
    metrics::record_resources(&mut tx, minute, &subject, cpu, mem).await?;
    let rows = servers::for_toolbox(&mut tx, toolbox).await?;
    let mut applied = apply(&mut tx, &rows, &report, &was.allowed_registries).await?;
    tx.commit().await.map_err(StoreError::from)?;
    pin_images(st, toolbox, &mut applied).await?;
    for ev in applied.moves.iter().cloned() {
        st.store.publish(ev).await;
    }
    // Pages show the status at once, and the toolbox's metrics once a minute (its first
    // heartbeat of each minute), not at every heartbeat.
    let last_minute = was
        .last_heartbeat_at
        .map(|t| metrics::minute_of(t.timestamp_millis()));
    if before != ToolboxStatus::Active || last_minute != Some(minute) {
        st.store
            .publish(Event::ToolboxStatus {
                toolbox: toolbox.clone(),
                owner: was.owner_id.clone(),
                status: ToolboxStatus::Active,
            })
            .await;
    }
    if applied.moved || !applied.purged.is_empty() {
        // A server came up, went down or went away: the gateway re-reads before its next
        // call or listing instead of at its next periodic refresh.
        st.store.bump_epoch();
    }

    // An admin's opt-in to unsandboxed servers is audited when it first shows.
    let unsandboxed = report.runtime.unsandboxed_allowed
        && !was
            .report
            .as_ref()
            .is_some_and(|r| r.runtime.unsandboxed_allowed);
    if before != ToolboxStatus::Active
        || !applied.purged.is_empty()
        || !applied.failing.is_empty()
        || unsandboxed
    {
        let mut c = st.store.conn().await?;
        let tb = toolboxes::get_internal(&mut c, toolbox).await?;
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
        if unsandboxed {
            events.push(by_toolbox(
                &tb,
                AuditAction::ToolboxUnsandboxed,
                TargetKind::Toolbox,
                tb.id.to_string(),
                json!({ "isolation": "none" }),
            ));
        }
        for s in &applied.purged {
            events.push(by_toolbox(
                &tb,
                AuditAction::ServerRemoved,
                TargetKind::Server,
                s.id.to_string(),
                json!({ "name": s.name }),
            ));
        }
        for f in &applied.failing {
            events.push(by_toolbox(
                &tb,
                AuditAction::ServerError,
                TargetKind::Server,
                f.server.id.to_string(),
                json!({ "name": f.server.name, "error": f.error }),
            ));
        }
        for ev in events {
            st.store.begin_audited().await?.commit(ev).await?;
        }
    }
    Ok(HeartbeatReply {
        desired: applied.desired,
        heartbeat_interval_ms: st.config.heartbeat_interval.as_millis() as u64,
    })
}

/// The secret values of one server on the caller's toolbox (an audited delivery). A
/// reference that does not resolve is a conflict naming why.
pub async fn secrets(
    st: &AppState,
    toolbox: &ToolboxId,
    req: SecretsRequest,
) -> Result<SecretsResponse> {
    let mut c = st.store.conn().await?;
    let server = match servers::get_internal(&mut c, &req.server_id).await {
        Ok(s) if &s.toolbox_id == toolbox => s,
        _ => return Err(ServiceError::not_found(format!("server {}", req.server_id))),
    };
    let tb = toolboxes::get_internal(&mut c, toolbox).await?;
    drop(c);
    let values = st
        .secrets
        .resolve(&server)
        .await
        .map_err(|e| ServiceError::conflict(e.to_string()))?;
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
    Ok(SecretsResponse { secrets: values })
}
