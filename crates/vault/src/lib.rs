//! Toolbelt's vault: secrets sealed with envelope encryption so that a database dump reveals
//! none of them.
//!
//! Each secret version is sealed with its own random 256-bit data key (XChaCha20-Poly1305);
//! the associated data binds owner, secret id and version, so a ciphertext copied to another
//! row or version does not open. The data key is itself sealed ("wrapped") by a
//! key-encryption key (KEK) that never enters the database: it comes from a [`KeyProvider`]
//! — a key file ([`KeyFileProvider`]), an environment variable ([`EnvKeyProvider`]), or a
//! KMS later. Each row records which KEK wrapped its data key; a provider may hold several
//! KEKs (current + old), so [`Vault::rotate`] re-wraps every data key under the current one
//! while the service keeps running, after which the old KEK can be deleted.
//!
//! Values travel as [`SecretValue`]: redacted in Debug and Display, refused by serde's
//! serializer, zeroized on drop. Every decrypt appends a `secret.decrypt` audit event.

mod actor;
mod crypto;
mod env;
mod keyfile;
mod keys;
mod records;
mod rotate;
mod value;
mod vault;

pub use actor::{Actor, Owner};
pub use crypto::DataKey;
pub use env::{ENV_VAR, EnvKeyProvider};
pub use keyfile::KeyFileProvider;
pub use keys::{KeyError, KeyProvider, KeyRing, Wrapped, kek_id_of};
pub use records::{RecordBinding, TURN_KIND};
pub use rotate::RotationReport;
pub use toolbelt_store::secrets::{SecretId, SecretKind, SecretMeta, SecretRef};
pub use value::SecretValue;
pub use vault::Vault;

use std::path::Path;
use std::sync::Arc;
use toolbelt_store::StoreError;

/// Errors of the vault. Every failure to open names what did not open and why, without any
/// key or value material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Missing, or not visible in the caller's scope.
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The row names a KEK that the key provider does not hold.
    #[error(
        "secret {secret_id} is sealed under key-encryption key {kek_id}, which the key \
         provider does not hold (it holds: {held})"
    )]
    UnknownKek {
        secret_id: String,
        kek_id: String,
        held: String,
    },
    /// The KEK with that id did not open the wrapped data key: another key under the same id,
    /// or the wrapped key (or the row's owner, id or version) was altered.
    #[error(
        "the data key of secret {secret_id} does not open under key-encryption key {kek_id}: \
         wrong key, or the row was altered"
    )]
    Unwrap { secret_id: String, kek_id: String },
    /// The data key opened but the value did not: ciphertext, nonce, owner, id or version
    /// was altered (or the ciphertext belongs to another row).
    #[error(
        "secret {secret_id} does not decrypt: its ciphertext or its binding to owner, id and \
         version was altered"
    )]
    Decrypt { secret_id: String },
    /// The key provider is unusable (unreadable key file, malformed key, …).
    #[error("key provider: {0}")]
    Keys(String),
    #[error("random number generator failed: {0}")]
    Rng(String),
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => VaultError::NotFound,
            StoreError::Conflict(m) => VaultError::Conflict(m),
            e => VaultError::Store(e),
        }
    }
}

/// For wrap and key listing, where no secret is involved yet; unwrap errors are mapped by
/// the caller, which names the secret.
impl From<KeyError> for VaultError {
    fn from(e: KeyError) -> Self {
        VaultError::Keys(e.to_string())
    }
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;

/// The provider a deployment uses: `TOOLBELT_VAULT_KEY` when set, else the key file at
/// `key_file` (created with one fresh key on first use).
pub fn provider_from_env_or_file(key_file: &Path) -> Result<Arc<dyn KeyProvider>> {
    match EnvKeyProvider::from_env()? {
        Some(p) => Ok(Arc::new(p)),
        None => Ok(Arc::new(KeyFileProvider::open_or_create(key_file)?)),
    }
}
