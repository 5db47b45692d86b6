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
    loop {
        if let Err(e) = sweep(&st).await {
            tracing::warn!(error = %e, "liveness sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}

pub async fn sweep(st: &AppState) -> Result<(), toolbelt_store::StoreError> {
    let limit = st.config.heartbeat_interval * MISSED;
    let before = toolbelt_model::now().timestamp_millis() - limit.as_millis() as i64;
    let mut c = st.store.conn().await?;
    let silent = toolboxes::silent_since(&mut c, before).await?;
    drop(c);
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
