//! Servers that hold their owner's OAuth token (delivered at deploy) are recreated when a
//! refresh, a reconnect or a first connection replaces it, so they never run on a token the
//! provider stopped accepting (nor keep running without one after their owner connects).

use crate::state::AppState;
use crate::toolbox_client::{self, takes_owner_token};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::server::DesiredState;
use toolbelt_model::{ConnectionId, Role, Scope};
use toolbelt_store::{catalog, oauth as rows, servers};

/// Runs until the task is dropped.
pub async fn run(st: AppState) {
    let Some(cr) = st.credentials.clone() else {
        return;
    };
    let mut rx = cr.oauth.subscribe_refreshed();
    loop {
        match rx.recv().await {
            Ok(id) => {
                if let Err(e) = roll(&st, &id).await {
                    tracing::warn!(connection = %id, error = %e, "cannot roll servers onto a new token");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "token rollout lagged behind refreshes");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Restarts the running servers of the connection's owner that act with its provider.
async fn roll(st: &AppState, id: &ConnectionId) -> Result<(), toolbelt_store::StoreError> {
    let mut c = st.store.conn().await?;
    let conn = rows::get_connection_internal(&mut c, id).await?;
    let mut targets = Vec::new();
    for s in servers::all_live(&mut c).await? {
        if s.owner_id.as_ref() != Some(&conn.owner_id) || s.desired != DesiredState::Running {
            continue;
        }
        let entry = catalog::get(&mut c, s.catalog_id.as_str()).await?;
        let same_provider = entry
            .spec
            .oauth
            .as_ref()
            .is_some_and(|o| o.provider == conn.provider.as_str());
        if same_provider && takes_owner_token(&s, &entry) {
            targets.push(s);
        }
    }
    drop(c);
    let scope = Scope {
        user_id: conn.owner_id.clone(),
        role: Role::Member,
    };
    for s in targets {
        let mut tx = st.store.begin_audited().await?;
        let s = servers::set_desired(&mut tx, &scope, &s.id, DesiredState::Running, true).await?;
        let mut ev = NewAuditEvent::new(
            AuditAction::ServerRestart,
            TargetKind::Server,
            Some(s.id.to_string()),
        );
        ev.owner_id = s.owner_id.clone();
        ev.detail = json!({ "name": s.name, "reason": "its owner's OAuth token changed", "connection": id });
        tx.commit(ev).await?;
        toolbox_client::push(st, &s);
    }
    Ok(())
}
