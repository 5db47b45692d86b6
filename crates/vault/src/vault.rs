//! The vault's API: put, get (decrypt, audited), list, delete.

use crate::actor::{Actor, Owner, new_id};
use crate::crypto::{self, Binding};
use crate::keys::{KeyError, KeyProvider};
use crate::{Result, SecretValue, VaultError};
use serde_json::json;
use std::sync::Arc;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_model::{Name, Page, Scope, UserId};
use toolbelt_store::secrets::{
    self, Sealed, SealedSecret, SecretId, SecretKind, SecretMeta, SecretRef,
};
use toolbelt_store::{Store, StoreError};

/// The vault over a store and a key provider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) keys: Arc<dyn KeyProvider>,
}

impl Vault {
    /// Checks that the provider has a current key, and warns about secrets wrapped by keys
    /// it does not hold (they will not open).
    pub async fn open(store: Store, keys: Arc<dyn KeyProvider>) -> Result<Vault> {
        let v = Vault { store, keys };
        v.keys.current_id().await?;
        let held = v.keys.key_ids().await?;
        for u in v.kek_usage().await? {
            if !held.contains(&u.kek_id) {
                tracing::warn!(kek_id = %u.kek_id, secrets = u.secrets, records = u.records,
                    "secrets or sealed records wrapped by a KEK the key provider lacks: they will not open");
            }
        }
        Ok(v)
    }

    /// A vault without [`Vault::open`]'s checks (tests, and callers that ran them).
    pub fn unchecked(store: Store, keys: Arc<dyn KeyProvider>) -> Vault {
        Vault { store, keys }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn key_provider(&self) -> &Arc<dyn KeyProvider> {
        &self.keys
    }

    /// Seals `value` for (owner, id, version): a new data key, wrapped by the current KEK.
    pub(crate) async fn seal(
        &self,
        owner: Option<&UserId>,
        id: &SecretId,
        version: i64,
        value: &SecretValue,
    ) -> Result<Sealed> {
        let b = Binding { owner, id, version };
        let (dek, nonce, ciphertext) = crypto::seal_value(value, &b)?;
        let w = self.keys.wrap(&dek, &b.key_aad()).await?;
        Ok(Sealed {
            nonce,
            ciphertext,
            wrapped_key: w.bytes,
            kek_id: w.kek_id,
        })
    }

    /// Opens a row: unwraps its data key, then its value. Errors name the secret and key.
    pub(crate) async fn open_row(&self, row: &SealedSecret) -> Result<SecretValue> {
        let m = &row.meta;
        let b = Binding {
            owner: m.owner_id.as_ref(),
            id: &m.id,
            version: m.version,
        };
        let secret_id = m.id.to_string();
        let dek = match self
            .keys
            .unwrap(&row.sealed.kek_id, &row.sealed.wrapped_key, &b.key_aad())
            .await
        {
            Ok(k) => k,
            Err(KeyError::Unknown(kek_id)) => {
                let held = self.keys.key_ids().await.unwrap_or_default().join(", ");
                return Err(VaultError::UnknownKek {
                    secret_id,
                    kek_id,
                    held,
                });
            }
            Err(KeyError::Unwrap) => {
                return Err(VaultError::Unwrap {
                    secret_id,
                    kek_id: row.sealed.kek_id.clone(),
                });
            }
            Err(KeyError::Unavailable(m)) => return Err(VaultError::Keys(m)),
        };
        let mut plain = crypto::open(
            dek.expose(),
            &row.sealed.nonce,
            &row.sealed.ciphertext,
            &b.value_aad(),
        )
        .ok_or(VaultError::Decrypt { secret_id })?;
        Ok(SecretValue::new(std::mem::take(&mut *plain)))
    }

    /// Creates the secret `name` in the caller's (or, for admins, the shared) namespace, or
    /// stores a new version of it: sealed afresh under a new data key, the old one gone.
    pub async fn put(
        &self,
        scope: &Scope,
        owner: Owner,
        name: &Name,
        kind: SecretKind,
        value: SecretValue,
    ) -> Result<SecretMeta> {
        let owner_id = match owner {
            Owner::Caller => Some(scope.user_id.clone()),
            Owner::Shared if scope.is_admin() => None,
            Owner::Shared => {
                return Err(VaultError::Forbidden(
                    "only admins create shared secrets".into(),
                ));
            }
        };
        self.put_for(owner_id.as_ref(), name, kind, value, &Actor::user(scope))
            .await
    }

    /// Creates or updates the secret `name` in `owner`'s namespace (None: shared) on behalf
    /// of `actor`: for Toolbelt's own secrets (OAuth tokens, client secrets), whose callers
    /// have checked the namespace.
    pub async fn put_for(
        &self,
        owner_id: Option<&UserId>,
        name: &Name,
        kind: SecretKind,
        value: SecretValue,
        actor: &Actor,
    ) -> Result<SecretMeta> {
        // Sealing (and a KMS call) happens outside the write transaction; a concurrent
        // writer shows up as a conflict and the next attempt seals for the newer version.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let existing = {
                let mut c = self.store.conn().await?;
                secrets::find_in_namespace(&mut c, owner_id, name.as_str()).await?
            };
            let (id, version) = existing.as_ref().map_or_else(
                || (new_id(), 1),
                |e| (e.meta.id.clone(), e.meta.version + 1),
            );
            let sealed = self.seal(owner_id, &id, version, &value).await?;
            let mut tx = self.store.begin_audited().await?;
            let res = match &existing {
                None => secrets::insert(&mut tx, &id, owner_id, name, kind, &sealed).await,
                Some(e) => secrets::replace(&mut tx, &id, e.meta.version, kind, &sealed).await,
            };
            let meta = match res {
                Ok(m) => m,
                Err(StoreError::Conflict(_)) if attempt < 3 => {
                    tx.rollback().await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let action = if existing.is_some() {
                AuditAction::SecretUpdate
            } else {
                AuditAction::SecretCreate
            };
            let mut ev = event(action, &meta, actor);
            ev.detail["kind"] = json!(kind.as_str());
            tx.commit(ev).await?;
            return Ok(meta);
        }
    }

    /// Decrypts a secret as the scope's user. See [`Vault::get_as`].
    pub async fn get(&self, scope: &Scope, key: &str) -> Result<SecretValue> {
        self.get_as(scope, key, &Actor::user(scope)).await
    }

    /// Decrypts a secret visible to `scope` for decrypting (its owner's scope; an admin's for
    /// shared ones), by id or name. Every attempt on a visible secret, opened or not, appends
    /// a `secret.decrypt` event first; no value is returned without its event.
    pub async fn get_as(&self, scope: &Scope, key: &str, actor: &Actor) -> Result<SecretValue> {
        let row = {
            let mut c = self.store.conn().await?;
            secrets::get_sealed(&mut c, scope, &SecretRef::parse(key)).await?
        };
        let opened = self.open_row(&row).await;
        let mut ev = event(AuditAction::SecretDecrypt, &row.meta, actor);
        ev.detail["purpose"] = json!(actor.purpose);
        if let Err(e) = &opened {
            ev.outcome = Outcome::Failure;
            ev.detail["error"] = json!(e.to_string());
        }
        self.store.begin_audited().await?.commit(ev).await?;
        opened
    }

    /// Decrypts a secret by id for Toolbelt's own use (a deploy, a refresh, an injection),
    /// whatever its namespace: the caller has checked that `actor` may use it. Audited like
    /// [`Vault::get_as`].
    pub async fn open_by_id(&self, id: &SecretId, actor: &Actor) -> Result<SecretValue> {
        let row = {
            let mut c = self.store.conn().await?;
            secrets::get_sealed_by_id(&mut c, id).await?
        };
        let opened = self.open_row(&row).await;
        let mut ev = event(AuditAction::SecretDecrypt, &row.meta, actor);
        ev.detail["purpose"] = json!(actor.purpose);
        if let Err(e) = &opened {
            ev.outcome = Outcome::Failure;
            ev.detail["error"] = json!(e.to_string());
        }
        self.store.begin_audited().await?.commit(ev).await?;
        opened
    }

    /// Deletes a secret by id for Toolbelt's own use, audited as `secret.delete`.
    pub async fn delete_by_id(&self, id: &SecretId, actor: &Actor) -> Result<SecretMeta> {
        let mut tx = self.store.begin_audited().await?;
        let meta = secrets::delete_by_id(&mut tx, id).await?;
        tx.commit(event(AuditAction::SecretDelete, &meta, actor))
            .await?;
        Ok(meta)
    }

    /// Metadata of one secret (owners; admins see every secret's).
    pub async fn meta(&self, scope: &Scope, key: &str) -> Result<SecretMeta> {
        let mut c = self.store.conn().await?;
        Ok(secrets::get(&mut c, scope, &SecretRef::parse(key)).await?)
    }

    /// Every secret visible to `scope`, metadata only.
    pub async fn list(&self, scope: &Scope) -> Result<Vec<SecretMeta>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(scope, 1000, after.as_deref()).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => return Ok(all),
            }
        }
    }

    pub async fn list_page(
        &self,
        scope: &Scope,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<SecretMeta>> {
        let mut c = self.store.conn().await?;
        Ok(secrets::list(&mut c, scope, limit, after).await?)
    }

    /// Deletes a secret (its owner, or an admin), audited as `secret.delete`.
    pub async fn delete(&self, scope: &Scope, key: &str) -> Result<SecretMeta> {
        let mut tx = self.store.begin_audited().await?;
        let meta = secrets::delete(&mut tx, scope, &SecretRef::parse(key)).await?;
        tx.commit(event(AuditAction::SecretDelete, &meta, &Actor::user(scope)))
            .await?;
        Ok(meta)
    }

    /// How many secrets each KEK wraps; a KEK may be removed from the provider at zero.
    pub async fn kek_usage(&self) -> Result<Vec<secrets::KekUsage>> {
        let mut c = self.store.conn().await?;
        Ok(secrets::kek_usage(&mut c).await?)
    }
}

/// An audit event about a secret: names, versions and key ids, never a value.
fn event(action: AuditAction, m: &SecretMeta, actor: &Actor) -> NewAuditEvent {
    let mut ev = NewAuditEvent::new(action, TargetKind::Secret, Some(m.id.to_string()));
    ev.actor_kind = actor.kind;
    ev.actor_id = actor.id.clone();
    ev.owner_id = m.owner_id.clone();
    ev.detail = json!({
        "name": m.name.as_str(),
        "version": m.version,
        "kek_id": m.kek_id,
    });
    ev
}
