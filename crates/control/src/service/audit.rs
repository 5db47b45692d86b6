//! The audit log: members read the events of their own things; admins read all and
//! verify the chain.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use super::refs;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::Page;
use toolbelt_model::audit::{AuditAction, AuditEvent, Outcome, TargetKind, VerifyReport};
use toolbelt_model::audit_checkpoint::{Checkpoint, Expected};
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

/// [`verify`], and the chain compared with signed checkpoints' hashes (admins only). The
/// signatures are the verifier's to check, with a key it trusts (the CLI does, before
/// sending): this compares what it is given.
pub async fn verify_against(
    st: &AppState,
    caller: &Caller,
    expected: &[Expected],
) -> Result<VerifyReport> {
    caller.require_admin("verify the audit chain")?;
    if expected.is_empty() {
        return Err(ServiceError::invalid(
            "checkpoints",
            "give at least one checkpoint",
        ));
    }
    if expected.len() > MAX_CHECKPOINTS {
        return Err(ServiceError::invalid(
            "checkpoints",
            format!(
                "at most {MAX_CHECKPOINTS} (thin them: a later match implies the earlier ones)"
            ),
        ));
    }
    if let Some(bad) = expected.iter().position(|e| {
        e.seq < 1 || e.hash.len() != 64 || !e.hash.bytes().all(|b| b.is_ascii_hexdigit())
    }) {
        return Err(ServiceError::invalid(
            &format!("checkpoints[{bad}]"),
            "seq must be 1 or more and hash 64 hex digits",
        ));
    }
    let mut c = st.store.conn().await?;
    Ok(audit::verify_against(&mut c, expected).await?)
}

/// `POST /api/v1/audit/verify`: the signed checkpoints' sequence numbers and hashes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub checkpoints: Vec<Expected>,
}

/// The most checkpoints one verification compares (the CLI thins a longer file).
pub const MAX_CHECKPOINTS: usize = 4096;

/// The audit key's public half and where checkpoints go.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditKeyInfo {
    /// Ed25519, base64url: what `audit verify --public-key` takes.
    pub public_key: String,
    /// The checkpoint file on the control plane's host.
    pub checkpoint_file: String,
}

pub fn public_key(st: &AppState, caller: &Caller) -> Result<AuditKeyInfo> {
    caller.require_admin("read the audit key")?;
    let cp = st.audit_checkpoints()?;
    Ok(AuditKeyInfo {
        public_key: cp.public_key(),
        checkpoint_file: cp.file().display().to_string(),
    })
}

/// Signs the head into the checkpoint file now (admins only). Audited first, so the
/// checkpoint vouches for its own event.
pub async fn checkpoint(st: &AppState, caller: &Caller) -> Result<Checkpoint> {
    caller.require_admin("write an audit checkpoint")?;
    let cp = st.audit_checkpoints()?;
    let mut ev = caller.event(
        AuditAction::AuditCheckpoint,
        TargetKind::Checkpoint,
        "",
        None,
        json!({ "file": cp.file().display().to_string() }),
    );
    // Which seq gets signed is known only after the write (others may append meanwhile).
    ev.target_id = None;
    st.store.begin_audited().await?.commit(ev).await?;
    match cp.checkpoint(&st.store).await {
        Ok(Some(written)) => Ok(written),
        Ok(None) => Err(ServiceError::Internal),
        Err(crate::audit_checkpoints::CheckpointWriteError::Store(e)) => Err(e.into()),
        Err(e) => {
            let why = match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            };
            tracing::error!(error = %why, "audit checkpoint not written");
            Err(ServiceError::unavailable(why))
        }
    }
}
