//! Key-encryption keys (admins): list them, rotate to a new one while the service runs,
//! and drop an old one once no secret is wrapped by it.

use super::common::{CommonErrors, WriteErrors};
use crate::audit_log::by_user;
use crate::auth::UserCaller;
use crate::extract::Body;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct KekInfo {
    pub id: String,
    /// New data keys are wrapped under it, and rotation moves every row to it.
    pub current: bool,
    /// Secrets whose data key it wraps; at zero it may be deleted.
    pub secrets: i64,
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

fn admin(caller: &UserCaller) -> ApiResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Problem::forbidden("only admins manage the vault's keys"))
    }
}

async fn keys(st: &AppState) -> ApiResult<VaultKeys> {
    let cr = st.credentials()?;
    let held = cr
        .vault
        .key_provider()
        .key_ids()
        .await
        .map_err(|e| Problem::unavailable(format!("the vault's key provider failed: {e}")))?;
    let usage = cr.vault.kek_usage().await?;
    let count = |id: &str| {
        usage
            .iter()
            .find(|u| u.kek_id == id)
            .map_or(0, |u| u.secrets)
    };
    Ok(VaultKeys {
        provider: if cr.key_file.is_some() { "file" } else { "env" }.into(),
        keys: held
            .iter()
            .enumerate()
            .map(|(i, id)| KekInfo {
                id: id.clone(),
                current: i == 0,
                secrets: count(id),
            })
            .collect(),
        orphaned: usage
            .iter()
            .filter(|u| !held.contains(&u.kek_id))
            .map(|u| KekInfo {
                id: u.kek_id.clone(),
                current: false,
                secrets: u.secrets,
            })
            .collect(),
    })
}

/// The key-encryption keys and how many secrets each wraps.
#[utoipa::path(get, path = "/api/v1/vault/keys", tag = "vault",
    responses((status = 200, body = VaultKeys), CommonErrors))]
pub async fn list_keys(
    State(st): State<AppState>,
    caller: UserCaller,
) -> ApiResult<Json<VaultKeys>> {
    admin(&caller)?;
    Ok(Json(keys(&st).await?))
}

/// Rotates: (optionally) a new current key, then every data key re-wrapped under it, in
/// short batches while reads and writes carry on.
#[utoipa::path(post, path = "/api/v1/vault/rotate", tag = "vault", request_body = RotateRequest,
    responses((status = 200, body = RotateReport), CommonErrors, WriteErrors))]
pub async fn rotate(
    State(st): State<AppState>,
    caller: UserCaller,
    Body(req): Body<RotateRequest>,
) -> ApiResult<Json<RotateReport>> {
    admin(&caller)?;
    let cr = st.credentials()?;
    if req.new_key.unwrap_or(true) {
        let Some(file) = &cr.key_file else {
            return Err(Problem::conflict(
                "keys come from TOOLBELT_VAULT_KEY: restart with `new,old` keys, then rotate \
                 with new_key=false",
            ));
        };
        let id = file
            .add_key()
            .map_err(|e| Problem::unavailable(format!("cannot add a key: {e}")))?;
        st.store
            .begin_audited()
            .await?
            .commit(by_user(
                &caller,
                AuditAction::VaultKeyAdd,
                TargetKind::Kek,
                &id,
                None,
                json!({}),
            ))
            .await?;
    }
    let r = cr.vault.rotate().await?;
    Ok(Json(RotateReport {
        kek_id: r.kek_id,
        rewrapped: r.rewrapped,
        skipped: r.skipped,
        batches: r.batches,
        unreadable: r.unreadable,
        remaining: r.remaining,
        keys: keys(&st).await?,
    }))
}

/// Deletes an old key from the key file; refused while any secret is wrapped by it.
#[utoipa::path(delete, path = "/api/v1/vault/keys/{kek}", tag = "vault",
    params(("kek" = String, Path, description = "Key id (kek_…)")),
    responses((status = 200, body = VaultKeys), CommonErrors, WriteErrors))]
pub async fn delete_key(
    State(st): State<AppState>,
    caller: UserCaller,
    Path(kek): Path<String>,
) -> ApiResult<Json<VaultKeys>> {
    admin(&caller)?;
    let cr = st.credentials()?;
    let Some(file) = &cr.key_file else {
        return Err(Problem::conflict(
            "keys come from TOOLBELT_VAULT_KEY: remove the old key there and restart",
        ));
    };
    let before = keys(&st).await?;
    let Some(k) = before.keys.iter().find(|k| k.id == kek) else {
        return Err(Problem::not_found(format!("key {kek}")));
    };
    if k.current {
        return Err(Problem::conflict(format!("{kek} is the current key")));
    }
    if k.secrets > 0 {
        return Err(Problem::conflict(format!(
            "{kek} still wraps {} secret(s): rotate first",
            k.secrets
        )));
    }
    file.remove_key(&kek)
        .map_err(|e| Problem::unavailable(format!("cannot remove the key: {e}")))?;
    st.store
        .begin_audited()
        .await?
        .commit(by_user(
            &caller,
            AuditAction::VaultKeyDelete,
            TargetKind::Kek,
            &kek,
            None,
            json!({}),
        ))
        .await?;
    Ok(Json(keys(&st).await?))
}
