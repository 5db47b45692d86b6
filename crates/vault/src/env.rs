//! KEKs from the environment: `TOOLBELT_VAULT_KEY`.

use crate::crypto::DataKey;
use crate::keys::{KeyError, KeyProvider, KeyRing, Wrapped, kek_id_of, parse_hex_key};
use crate::{Result, VaultError};
use async_trait::async_trait;

/// The environment variable holding the KEKs.
pub const ENV_VAR: &str = "TOOLBELT_VAULT_KEY";

/// KEKs given as `TOOLBELT_VAULT_KEY=<64 hex digits>[,<64 hex digits>…]`: the first is the
/// current key, the others are old keys still accepted for unwrapping. Ids are derived from
/// the keys ([`kek_id_of`]). To rotate: restart with `new,old`, run the rotation, then restart
/// with `new` alone. Read once: a process's environment does not change under it.
#[derive(Debug)]
pub struct EnvKeyProvider {
    ring: KeyRing,
}

impl EnvKeyProvider {
    /// None when the variable is unset or empty.
    pub fn from_env() -> Result<Option<EnvKeyProvider>> {
        match std::env::var(ENV_VAR) {
            Ok(v) if !v.trim().is_empty() => Self::from_value(&v).map(Some),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(VaultError::Keys(format!("{ENV_VAR} is not valid text")))
            }
        }
    }

    /// Parses the variable's value (comma-separated hex keys, current first).
    pub fn from_value(v: &str) -> Result<EnvKeyProvider> {
        let mut ring = KeyRing::default();
        let keys: Vec<&str> = v.split(',').map(str::trim).collect();
        // Added oldest first so the first one listed ends up current.
        for (i, hex) in keys.iter().enumerate().rev() {
            let key = parse_hex_key(hex)
                .map_err(|m| VaultError::Keys(format!("{ENV_VAR}, key {}: {m}", i + 1)))?;
            ring.add(kek_id_of(&key), key, i == 0);
        }
        Ok(EnvKeyProvider { ring })
    }
}

#[async_trait]
impl KeyProvider for EnvKeyProvider {
    async fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Wrapped, KeyError> {
        self.ring.wrap_now(dek, aad)
    }

    async fn unwrap(&self, kek_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, KeyError> {
        self.ring.unwrap_now(kek_id, wrapped, aad)
    }

    async fn current_id(&self) -> Result<String, KeyError> {
        self.ring.current_id().await
    }

    async fn key_ids(&self) -> Result<Vec<String>, KeyError> {
        Ok(self.ring.ids())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_key_listed_is_current_and_ids_are_derived() {
        let (a, b) = ("11".repeat(32), "22".repeat(32));
        let p = EnvKeyProvider::from_value(&format!("{a}, {b}\n")).unwrap();
        let ids = p.key_ids().await.unwrap();
        let id_a = kek_id_of(&parse_hex_key(&a).unwrap());
        assert_eq!(ids.len(), 2);
        assert_eq!(p.current_id().await.unwrap(), id_a);
        assert_eq!(ids[0], id_a);
        let err = EnvKeyProvider::from_value(&format!("{a},abc")).unwrap_err();
        assert!(err.to_string().contains("key 2"), "{err}");
        assert!(!err.to_string().contains(&a), "errors never echo keys");
    }
}
