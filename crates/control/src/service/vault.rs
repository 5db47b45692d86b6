//! Key-encryption keys (admins): list them, rotate to a new one while the service runs,
//! and drop an old one once no secret is wrapped by it.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use crate::state::{AppState, Credentials};
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct KekInfo {
    pub id: String,
    /// New data keys are wrapped under it, and rotation moves every row to it.
    pub current: bool,
    /// Secrets whose data key it wraps.
    pub secrets: i64,
    /// Sealed records (chat turns) whose data key it wraps; with `secrets` at zero too it
    /// may be deleted.
    pub records: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VaultKeys {
    /// `file` (the key file in the data dir) or `env` (`TOOLBELT_VAULT_KEY`).
    pub provider: String,
    pub keys: Vec<KekInfo>,
    /// Secrets wrapped by a key the provider does not hold (they do not open).
    pub orphaned: Vec<KekInfo>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Add a fresh key and make it current first (default true; key files only). False:
    /// move every row to the provider's current key (after changing `TOOLBELT_VAULT_KEY`).
    pub new_key: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotateReport {
    pub kek_id: String,
    pub rewrapped: u64,
    pub skipped: u64,
    pub batches: u64,
    /// Secrets whose data key did not unwrap: `id: reason`.
    pub unreadable: Vec<String>,
    /// Rows still under another key; zero means old keys may be deleted.
    pub remaining: i64,
    pub keys: VaultKeys,
}

fn admin(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ServiceError::forbidden(
            "only admins manage the vault's keys",
        ))
    }
}

async fn held_keys(cr: &Credentials) -> Result<VaultKeys> {
    let held =
        cr.vault.key_provider().key_ids().await.map_err(|e| {
            ServiceError::unavailable(format!("the vault's key provider failed: {e}"))
        })?;
    let usage = cr.vault.kek_usage().await?;
    let count = |id: &str| {
        usage
            .iter()
            .find(|u| u.kek_id == id)
            .map_or((0, 0), |u| (u.secrets, u.records))
    };
    Ok(VaultKeys {
        provider: if cr.key_file.is_some() { "file" } else { "env" }.into(),
        keys: held
            .iter()
            .enumerate()
            .map(|(i, id)| KekInfo {
                id: id.clone(),
                current: i == 0,
                secrets: count(id).0,
                records: count(id).1,
            })
            .collect(),
        orphaned: usage
            .iter()
            .filter(|u| !held.contains(&u.kek_id))
            .map(|u| KekInfo {
                id: u.kek_id.clone(),
                current: false,
                secrets: u.secrets,
                records: u.records,
            })
            .collect(),
    })
}

/// The key-encryption keys and how many secrets and sealed records each wraps.
pub async fn keys(st: &AppState, caller: &Caller) -> Result<VaultKeys> {
    admin(caller)?;
    held_keys(st.credentials()?).await
}

/// Rotates: (optionally) a new current key, then every data key re-wrapped under it, in
/// short batches while reads and writes carry on.
pub async fn rotate(st: &AppState, caller: &Caller, req: RotateRequest) -> Result<RotateReport> {
    admin(caller)?;
    let cr = st.credentials()?;
    if req.new_key.unwrap_or(true) {
        let Some(file) = &cr.key_file else {
            return Err(ServiceError::conflict(
                "keys come from TOOLBELT_VAULT_KEY: restart with `new,old` keys, then rotate \
                 with new_key=false",
            ));
        };
        let id = file
            .add_key()
            .map_err(|e| ServiceError::unavailable(format!("cannot add a key: {e}")))?;
        st.store
            .begin_audited()
            .await?
            .commit(caller.event(
                AuditAction::VaultKeyAdd,
                TargetKind::Kek,
                &id,
                None,
                json!({}),
            ))
            .await?;
    }
    let r = cr.vault.rotate().await?;
    Ok(RotateReport {
        kek_id: r.kek_id,
        rewrapped: r.rewrapped,
        skipped: r.skipped,
        batches: r.batches,
        unreadable: r.unreadable,
        remaining: r.remaining,
        keys: held_keys(cr).await?,
    })
}

/// Deletes an old key from the key file; refused while any secret or sealed record (a chat
/// turn) is wrapped by it — those would never open again.
pub async fn delete_key(st: &AppState, caller: &Caller, kek: &str) -> Result<VaultKeys> {
    admin(caller)?;
    let cr = st.credentials()?;
    let Some(file) = &cr.key_file else {
        return Err(ServiceError::conflict(
            "keys come from TOOLBELT_VAULT_KEY: remove the old key there and restart",
        ));
    };
    let before = held_keys(cr).await?;
    let Some(k) = before.keys.iter().find(|k| k.id == kek) else {
        return Err(ServiceError::not_found(format!("key {kek}")));
    };
    if k.current {
        return Err(ServiceError::conflict(format!("{kek} is the current key")));
    }
    if k.secrets > 0 || k.records > 0 {
        return Err(ServiceError::conflict(format!(
            "{kek} still wraps {} secret(s) and {} chat turn(s): rotate first",
            k.secrets, k.records
        )));
    }
    file.remove_key(kek)
        .map_err(|e| ServiceError::unavailable(format!("cannot remove the key: {e}")))?;
    st.store
        .begin_audited()
        .await?
        .commit(caller.event(
            AuditAction::VaultKeyDelete,
            TargetKind::Kek,
            kek,
            None,
            json!({}),
        ))
        .await?;
    held_keys(cr).await
}
