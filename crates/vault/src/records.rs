//! Records sealed at rest that are not secrets: a chat's turns (tool results hold personal
//! data, sometimes secrets). The same envelope as a secret — a fresh data key per record,
//! wrapped by the current KEK — with associated data binding the record's kind, owner, id
//! and sequence number, so a record copied to another row, chat or owner does not open.
//!
//! Rotation (`Vault::rotate`) re-wraps records' data keys as it does secrets' (the ciphertext
//! stays), so an old KEK may be retired once `kek_usage` counts nothing under it.

use crate::crypto::{self, DataKey};
use crate::keys::KeyError;
use crate::{Result, SecretValue, Vault, VaultError};
use toolbelt_model::UserId;
use toolbelt_store::secrets::Sealed;

/// The record kind of a chat turn (the only kind of record so far).
pub const TURN_KIND: &str = "chat-turn";

/// What a sealed record is bound to.
#[derive(Debug, Clone, Copy)]
pub struct RecordBinding<'a> {
    /// The kind of record (`chat-turn`).
    pub kind: &'a str,
    pub owner: &'a UserId,
    /// The record's container (a chat id).
    pub id: &'a str,
    pub seq: i64,
}

impl RecordBinding<'_> {
    fn aad(&self, label: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        for field in [label, self.kind, self.owner.as_str(), self.id] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// The associated data its data key is wrapped with.
    pub(crate) fn key_aad(&self) -> Vec<u8> {
        self.aad("toolbelt-vault/record-key/v1")
    }

    pub(crate) fn what(&self) -> String {
        format!("{} {}#{}", self.kind, self.id, self.seq)
    }
}

impl Vault {
    /// Seals `plain` for `b` under a new data key wrapped by the current KEK.
    pub async fn seal_record(&self, b: &RecordBinding<'_>, plain: &[u8]) -> Result<Sealed> {
        let dek = DataKey::generate()?;
        let (nonce, ciphertext) =
            crypto::seal(dek.expose(), plain, &b.aad("toolbelt-vault/record/v1"))?;
        let w = self.keys.wrap(&dek, &b.key_aad()).await?;
        Ok(Sealed {
            nonce,
            ciphertext,
            wrapped_key: w.bytes,
            kek_id: w.kek_id,
        })
    }

    /// Opens what [`Vault::seal_record`] sealed for the same binding.
    pub async fn open_record(&self, b: &RecordBinding<'_>, s: &Sealed) -> Result<SecretValue> {
        let dek = match self
            .keys
            .unwrap(&s.kek_id, &s.wrapped_key, &b.key_aad())
            .await
        {
            Ok(k) => k,
            Err(KeyError::Unknown(kek_id)) => {
                let held = self.keys.key_ids().await.unwrap_or_default().join(", ");
                return Err(VaultError::UnknownKek {
                    secret_id: b.what(),
                    kek_id,
                    held,
                });
            }
            Err(KeyError::Unwrap) => {
                return Err(VaultError::Unwrap {
                    secret_id: b.what(),
                    kek_id: s.kek_id.clone(),
                });
            }
            Err(KeyError::Unavailable(m)) => return Err(VaultError::Keys(m)),
        };
        let mut plain = crypto::open(
            dek.expose(),
            &s.nonce,
            &s.ciphertext,
            &b.aad("toolbelt-vault/record/v1"),
        )
        .ok_or(VaultError::Decrypt {
            secret_id: b.what(),
        })?;
        Ok(SecretValue::new(std::mem::take(&mut *plain)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyRing;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_record_opens_only_under_its_own_binding() {
        let store = toolbelt_store::Store::open("sqlite::memory:", Default::default())
            .await
            .unwrap();
        let v = Vault::unchecked(store, Arc::new(KeyRing::generate().unwrap()));
        let owner = UserId::generate();
        let other = UserId::generate();
        let b = RecordBinding {
            kind: "chat-turn",
            owner: &owner,
            id: "cht_1",
            seq: 1,
        };
        let s = v.seal_record(&b, b"the tool said 42").await.unwrap();
        assert_eq!(
            v.open_record(&b, &s).await.unwrap().expose(),
            b"the tool said 42"
        );
        for wrong in [
            RecordBinding { seq: 2, ..b },
            RecordBinding { id: "cht_2", ..b },
            RecordBinding { owner: &other, ..b },
        ] {
            assert!(v.open_record(&wrong, &s).await.is_err());
        }
    }
}
