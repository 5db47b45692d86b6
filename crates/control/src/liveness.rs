//! Toolboxes whose DTMA stops heartbeating become `unresponsive` (with their servers),
//! so calls to them fail at once instead of hanging; a heartbeat makes them `active`.

use crate::state::AppState;
use serde_json::json;
use std::time::Duration;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::server::ServerStatus;
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_store::{servers, toolboxes};

/// Missed heartbeats after which a toolbox is unresponsive.
pub const MISSED: u32 = 3;

pub async fn run(st: AppState, stop: impl std::future::Future<Output = ()>) {
    let every = (st.config.heartbeat_interval / 2).max(Duration::from_millis(100));
    tokio::pin!(stop);
    // While the database was unreachable the DTMAs' heartbeats were refused, not missed:
    // silence is counted from the first sweep after an outage, or every toolbox would turn
    // unresponsive (and its calls fail) the moment the database is back.
    let (mut counted_from, mut failed) = (i64::MIN, false);
    loop {
        if failed {
            counted_from = toolbelt_model::now().timestamp_millis();
        }
        failed = false;
        if let Err(e) = sweep(&st, counted_from).await {
            tracing::warn!(error = %e, "liveness sweep failed");
            failed = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}

/// Marks the toolboxes silent for `MISSED` heartbeats, none if silence counted from
/// `counted_from` (ms) would be shorter.
pub async fn sweep(st: &AppState, counted_from: i64) -> Result<(), toolbelt_store::StoreError> {
    let limit = st.config.heartbeat_interval * MISSED;
    let before = toolbelt_model::now().timestamp_millis() - limit.as_millis() as i64;
    let mut c = st.store.conn().await?;
    let silent = toolboxes::silent_since(&mut c, before).await?;
    drop(c);
    // Read first: a sweep that reaches the database ends the outage it counts from.
    if before < counted_from {
        return Ok(());
    }
    for t in silent {
        let mut tx = st.store.begin_audited().await?;
        toolboxes::set_status(&mut tx, &t.id, ToolboxStatus::Unresponsive, None).await?;
        let n = servers::set_status_on_toolbox(&mut tx, &t.id, ServerStatus::Unresponsive).await?;
        let mut ev = NewAuditEvent::new(
            AuditAction::ToolboxUnresponsive,
            TargetKind::Toolbox,
            Some(t.id.to_string()),
        );
        ev.owner_id = t.owner_id.clone();
        ev.detail =
            json!({ "name": t.name, "servers": n, "silent_for_ms": limit.as_millis() as u64 });
        tx.commit(ev).await?;
        tracing::warn!(toolbox = %t.name, "toolbox unresponsive");
    }
    Ok(())
}
