//! The audit log: members read the events of their own things; admins read all and
//! verify the chain.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use super::refs;
use crate::state::AppState;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditEvent, Outcome, VerifyReport};
use toolbelt_model::page::clamp_limit;
use toolbelt_store::audit;

/// Which events, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Events by or about this agent (id or the caller's own agent's name).
    pub agent: Option<String>,
    /// Events by this actor id.
    pub actor: Option<String>,
    /// An action (`agent.create`) or a prefix of one (`agent`).
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<Outcome>,
    /// Events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Events before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn list(st: &AppState, caller: &Caller, f: &Filter) -> Result<Page<AuditEvent>> {
    let mut c = st.store.conn().await?;
    let involving = match &f.agent {
        Some(a) => Some(refs::agent(&mut c, &caller.scope, a).await?.id.to_string()),
        None => None,
    };
    let before = match &f.cursor {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ServiceError::invalid("cursor", "is not a cursor from this list"))?,
        ),
        None => None,
    };
    let sf = audit::Filter {
        actor_id: f.actor.clone(),
        action: f.action.clone(),
        target_id: f.target.clone(),
        involving,
        outcome: f.outcome,
        since_ms: f.since.map(|t| t.timestamp_millis()),
        until_ms: f.until.map(|t| t.timestamp_millis()),
    };
    Ok(audit::list(&mut c, &caller.scope, &sf, clamp_limit(f.limit), before).await?)
}

/// Walks the whole hash chain and names the first broken event (admins only).
pub async fn verify(st: &AppState, caller: &Caller) -> Result<VerifyReport> {
    caller.require_admin("verify the audit chain")?;
    let mut c = st.store.conn().await?;
    Ok(audit::verify(&mut c).await?)
}
