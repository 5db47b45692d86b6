//! Key rotation: re-wrap every data key under the current KEK while the service runs —
//! secrets' and sealed records' (chat turns), so an old KEK may be deleted afterwards
//! without losing a transcript.

use crate::crypto::Binding;
use crate::keys::KeyError;
use crate::records::{RecordBinding, TURN_KIND};
use crate::{Result, Vault, VaultError};
use serde::Serialize;
use toolbelt_model::ChatId;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_store::chats;
use toolbelt_store::secrets::{self, SecretId};

/// What a rotation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    /// The KEK data keys were moved to.
    pub kek_id: String,
    pub rewrapped: u64,
    /// Rows a writer changed between our read and our update: their new version was sealed
    /// by that writer (under the current KEK, unless its provider lags behind).
    pub skipped: u64,
    pub batches: u64,
    /// Secrets and records whose data key did not unwrap (unknown or wrong KEK): `id: reason`.
    pub unreadable: Vec<String>,
    /// Rows still wrapped by another KEK when the pass ended. Zero means every other KEK may
    /// be removed from the provider.
    pub remaining: i64,
}

/// Rows per batch; each batch is one short transaction.
pub const DEFAULT_BATCH: u32 = 100;

impl Vault {
    /// Re-wraps every data key not under the provider's current KEK. See [`Vault::rotate_in_batches`].
    pub async fn rotate(&self) -> Result<RotationReport> {
        self.rotate_in_batches(DEFAULT_BATCH).await
    }

    /// Passes over the secrets in id order, `batch` rows at a time. Unwrapping and wrapping
    /// (possibly a KMS round trip) happen outside any transaction; each batch's updates then
    /// commit together, each row only if it still holds the version and KEK that were read —
    /// so readers and writers carry on throughout, and nothing a writer stored is undone.
    /// Ciphertexts are never touched: only the 72-byte wrapped keys change. Running it again
    /// is harmless. Ends with a `vault.rotate` audit event.
    pub async fn rotate_in_batches(&self, batch: u32) -> Result<RotationReport> {
        let current = self.keys.current_id().await?;
        let mut report = RotationReport {
            kek_id: current.clone(),
            ..Default::default()
        };
        // A writer that sealed under the old KEK just before the switch may commit after this
        // pass went by; a further pass picks such rows up. Three passes settle it in practice.
        for _ in 0..3 {
            report.unreadable.clear();
            let moved = self
                .rotation_pass(&current, batch.max(1), &mut report)
                .await?
                + self
                    .records_pass(&current, batch.max(1), &mut report)
                    .await?;
            report.remaining = self
                .kek_usage()
                .await?
                .iter()
                .filter(|u| u.kek_id != current)
                .map(|u| u.total())
                .sum();
            if moved == 0 || report.remaining <= report.unreadable.len() as i64 {
                break;
            }
        }
        let mut ev = NewAuditEvent::new(AuditAction::VaultRotate, TargetKind::Vault, None);
        ev.actor_kind = ActorKind::System;
        if !report.unreadable.is_empty() {
            ev.outcome = Outcome::Failure;
        }
        ev.detail = serde_json::to_value(&report).unwrap_or_default();
        self.store.begin_audited().await?.commit(ev).await?;
        tracing::info!(kek_id = %current, rewrapped = report.rewrapped, remaining = report.remaining, "vault rotation done");
        Ok(report)
    }

    /// One pass in id order; returns how many rows it re-wrapped.
    async fn rotation_pass(
        &self,
        current: &str,
        batch: u32,
        report: &mut RotationReport,
    ) -> Result<u64> {
        let before = report.rewrapped;
        let mut after: Option<SecretId> = None;
        loop {
            let rows = {
                let mut c = self.store.conn().await?;
                secrets::not_wrapped_by(&mut c, current, after.as_ref(), batch).await?
            };
            let Some(last) = rows.last() else { break };
            after = Some(last.meta.id.clone());
            let mut updates = Vec::with_capacity(rows.len());
            for r in &rows {
                let m = &r.meta;
                let aad = Binding {
                    owner: m.owner_id.as_ref(),
                    id: &m.id,
                    version: m.version,
                }
                .key_aad();
                let dek = match self
                    .keys
                    .unwrap(&r.sealed.kek_id, &r.sealed.wrapped_key, &aad)
                    .await
                {
                    Ok(k) => k,
                    Err(e @ (KeyError::Unknown(_) | KeyError::Unwrap)) => {
                        report
                            .unreadable
                            .push(format!("{}: {e} ({})", m.id, r.sealed.kek_id));
                        continue;
                    }
                    Err(KeyError::Unavailable(m)) => return Err(VaultError::Keys(m)),
                };
                let w = self.keys.wrap(&dek, &aad).await?;
                updates.push((m.id.clone(), m.version, r.sealed.kek_id.clone(), w));
            }
            let mut tx = self.store.begin().await?;
            for (id, version, old, w) in updates {
                if secrets::rewrap(&mut tx, &id, version, &old, &w.kek_id, w.bytes).await? {
                    report.rewrapped += 1;
                } else {
                    report.skipped += 1;
                }
            }
            tx.commit()
                .await
                .map_err(toolbelt_store::StoreError::from)?;
            report.batches += 1;
        }
        Ok(report.rewrapped - before)
    }

    /// One pass over the sealed chat turns in (chat, seq) order, as [`Self::rotation_pass`]
    /// does for secrets; returns how many it re-wrapped.
    async fn records_pass(
        &self,
        current: &str,
        batch: u32,
        report: &mut RotationReport,
    ) -> Result<u64> {
        let before = report.rewrapped;
        let mut after: Option<(ChatId, i64)> = None;
        loop {
            let rows = {
                let mut c = self.store.conn().await?;
                let from = after.as_ref().map(|(c, s)| (c, *s));
                chats::turn_keys_not_wrapped_by(&mut c, current, from, batch).await?
            };
            let Some(last) = rows.last() else { break };
            after = Some((last.chat_id.clone(), last.seq));
            let mut updates = Vec::with_capacity(rows.len());
            for r in &rows {
                let id = r.chat_id.to_string();
                let b = RecordBinding {
                    kind: TURN_KIND,
                    owner: &r.owner_id,
                    id: &id,
                    seq: r.seq,
                };
                let aad = b.key_aad();
                let dek = match self.keys.unwrap(&r.kek_id, &r.wrapped_key, &aad).await {
                    Ok(k) => k,
                    Err(e @ (KeyError::Unknown(_) | KeyError::Unwrap)) => {
                        report
                            .unreadable
                            .push(format!("{}: {e} ({})", b.what(), r.kek_id));
                        continue;
                    }
                    Err(KeyError::Unavailable(m)) => return Err(VaultError::Keys(m)),
                };
                let w = self.keys.wrap(&dek, &aad).await?;
                updates.push((r, w));
            }
            let mut tx = self.store.begin().await?;
            for (r, w) in updates {
                if chats::rewrap_turn(&mut tx, &r.chat_id, r.seq, &r.kek_id, &w.kek_id, w.bytes)
                    .await?
                {
                    report.rewrapped += 1;
                } else {
                    report.skipped += 1;
                }
            }
            tx.commit()
                .await
                .map_err(toolbelt_store::StoreError::from)?;
            report.batches += 1;
        }
        Ok(report.rewrapped - before)
    }
}
