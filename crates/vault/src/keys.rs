//! Key-encryption keys: the [`KeyProvider`] seam and [`KeyRing`], the in-memory set of KEKs
//! that the key-file and environment providers load.

use crate::crypto::{self, DataKey, KEY_LEN, NONCE_LEN};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A data key sealed under a KEK, with that KEK's id (stored beside it in the row).
#[derive(Debug, Clone)]
pub struct Wrapped {
    pub kek_id: String,
    pub bytes: Vec<u8>,
}

/// Why a provider could not wrap or unwrap.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key-encryption key {0}")]
    Unknown(String),
    /// The KEK did not open the wrapped key (another key under that id, or altered bytes).
    #[error("the wrapped data key does not open")]
    Unwrap,
    #[error("{0}")]
    Unavailable(String),
}

/// Where key-encryption keys live. The vault never sees a KEK, only asks to wrap and
/// unwrap data keys — so a KMS (whose keys never leave it) fits behind the same trait, with
/// `aad` as its encryption context.
#[async_trait]
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// Wraps `dek` under the current KEK and says which one that was.
    async fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Wrapped, KeyError>;
    /// Unwraps with the KEK `kek_id`, current or old.
    async fn unwrap(&self, kek_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, KeyError>;
    /// The KEK new data keys are wrapped under, and that rotation moves every row to.
    async fn current_id(&self) -> Result<String, KeyError>;
    /// Every KEK id the provider holds, current first.
    async fn key_ids(&self) -> Result<Vec<String>, KeyError>;
}

/// The id of a locally held KEK: `kek_` + 16 hex digits of a SHA-256 over the key. Derived,
/// not chosen, so the same key has the same id in a key file and in the environment, and a
/// different key can never pass under an old key's id.
pub fn kek_id_of(key: &[u8; KEY_LEN]) -> String {
    let mut h = Sha256::new();
    h.update(b"toolbelt-vault/kek-id/v1");
    h.update(key);
    format!("kek_{}", &hex::encode(h.finalize())[..16])
}

/// KEKs held in memory (zeroized on drop): one current, any number of old ones. Also a
/// [`KeyProvider`] itself, for tests and embedding.
#[derive(Clone, Default)]
pub struct KeyRing {
    current: Option<String>,
    keys: Vec<(String, Zeroizing<[u8; KEY_LEN]>)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("ids", &self.ids())
            .finish()
    }
}

impl KeyRing {
    /// A ring with one new random KEK (its id derived with [`kek_id_of`]).
    pub fn generate() -> crate::Result<KeyRing> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        crypto::random(k.as_mut())?;
        let mut ring = KeyRing::default();
        ring.add(kek_id_of(&k), k, true);
        Ok(ring)
    }

    /// Adds a KEK under `id` (replacing one of the same id); `current` makes it the one new
    /// data keys are wrapped under.
    pub fn add(&mut self, id: String, key: Zeroizing<[u8; KEY_LEN]>, current: bool) {
        self.keys.retain(|(i, _)| *i != id);
        if current {
            self.current = Some(id.clone());
        }
        self.keys.push((id, key));
    }

    /// Forgets a KEK. Refuses the current one (there must always be one to wrap with).
    pub fn remove(&mut self, id: &str) -> bool {
        if self.current.as_deref() == Some(id) {
            return false;
        }
        let before = self.keys.len();
        self.keys.retain(|(i, _)| i != id);
        self.keys.len() < before
    }

    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Current first, then the others in the order they were added.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.current.iter().cloned().collect();
        ids.extend(
            self.keys
                .iter()
                .map(|(i, _)| i.clone())
                .filter(|i| Some(i) != self.current.as_ref()),
        );
        ids
    }

    pub(crate) fn key(&self, id: &str) -> Option<&[u8; KEY_LEN]> {
        self.keys.iter().find(|(i, _)| i == id).map(|(_, k)| &**k)
    }

    /// Wrapped form: nonce (24 bytes) ‖ XChaCha20-Poly1305(KEK, data key, aad) (48 bytes).
    pub fn wrap_now(&self, dek: &DataKey, aad: &[u8]) -> Result<Wrapped, KeyError> {
        let id = self
            .current
            .as_deref()
            .ok_or_else(|| KeyError::Unavailable("no current key-encryption key".into()))?;
        let kek = self.key(id).ok_or_else(|| KeyError::Unknown(id.into()))?;
        let (mut bytes, ct) = crypto::seal(kek, dek.expose(), aad)
            .map_err(|e| KeyError::Unavailable(e.to_string()))?;
        bytes.extend_from_slice(&ct);
        Ok(Wrapped {
            kek_id: id.to_string(),
            bytes,
        })
    }

    pub fn unwrap_now(
        &self,
        kek_id: &str,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<DataKey, KeyError> {
        let kek = self
            .key(kek_id)
            .ok_or_else(|| KeyError::Unknown(kek_id.into()))?;
        if wrapped.len() < NONCE_LEN {
            return Err(KeyError::Unwrap);
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let dek = crypto::open(kek, nonce, ct, aad).ok_or(KeyError::Unwrap)?;
        DataKey::from_slice(&dek).ok_or(KeyError::Unwrap)
    }
}

#[async_trait]
impl KeyProvider for KeyRing {
    async fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Wrapped, KeyError> {
        self.wrap_now(dek, aad)
    }

    async fn unwrap(&self, kek_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, KeyError> {
        self.unwrap_now(kek_id, wrapped, aad)
    }

    async fn current_id(&self) -> Result<String, KeyError> {
        self.current
            .clone()
            .ok_or_else(|| KeyError::Unavailable("no current key-encryption key".into()))
    }

    async fn key_ids(&self) -> Result<Vec<String>, KeyError> {
        Ok(self.ids())
    }
}

/// Why a written KEK is not one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HexKeyError {
    #[error("a key-encryption key is {} hex digits (32 bytes); found {found} characters", 2 * KEY_LEN)]
    Length { found: usize },
    #[error("a key-encryption key must be hex")]
    NotHex,
}

/// Parses a KEK written as 64 hex digits (surrounding whitespace ignored).
pub(crate) fn parse_hex_key(s: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, HexKeyError> {
    let s = s.trim();
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    if s.len() != 2 * KEY_LEN {
        return Err(HexKeyError::Length { found: s.len() });
    }
    hex::decode_to_slice(s, k.as_mut()).map_err(|_| HexKeyError::NotHex)?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_wrap_under_the_current_key_and_unwrap_under_any() {
        let mut ring = KeyRing::generate().unwrap();
        let old = ring.current().unwrap().to_string();
        let dek = DataKey::generate().unwrap();
        let w_old = ring.wrap_now(&dek, b"row").unwrap();
        let newer = KeyRing::generate().unwrap();
        let new_id = newer.current().unwrap().to_string();
        ring.add(
            new_id.clone(),
            Zeroizing::new(*newer.key(&new_id).unwrap()),
            true,
        );
        let w_new = ring.wrap_now(&dek, b"row").unwrap();
        assert_eq!(
            (w_old.kek_id.as_str(), w_new.kek_id.as_str()),
            (old.as_str(), new_id.as_str())
        );
        assert_eq!(ring.ids(), vec![new_id.clone(), old.clone()]);
        for w in [&w_old, &w_new] {
            let back = ring.unwrap_now(&w.kek_id, &w.bytes, b"row").unwrap();
            assert_eq!(back.expose(), dek.expose());
            assert!(matches!(
                ring.unwrap_now(&w.kek_id, &w.bytes, b"other row"),
                Err(KeyError::Unwrap)
            ));
        }
        assert!(!ring.remove(&new_id), "the current key stays");
        assert!(ring.remove(&old));
        assert!(matches!(
            ring.unwrap_now(&old, &w_old.bytes, b"row"),
            Err(KeyError::Unknown(_))
        ));
        assert!(!format!("{ring:?}").contains(&hex::encode(ring.key(&new_id).unwrap())));
    }

    #[test]
    fn hex_keys_are_checked() {
        assert!(parse_hex_key(&"ab".repeat(32)).is_ok());
        assert!(
            parse_hex_key("abcd")
                .unwrap_err()
                .to_string()
                .contains("64 hex digits")
        );
        assert!(
            parse_hex_key(&"zz".repeat(32))
                .unwrap_err()
                .to_string()
                .contains("hex")
        );
    }
}
