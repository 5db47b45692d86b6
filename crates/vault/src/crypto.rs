//! The cipher work: random data keys and nonces, sealing a value under its data key, and the
//! associated data that binds a ciphertext to its row.
//!
//! XChaCha20-Poly1305 rather than AES-256-GCM: its 192-bit nonces may be drawn at random for
//! every seal with no practical risk of a repeat — a KEK wraps one data key per secret
//! version for years, where GCM's 96-bit random nonces would cap a key at about 2^32 uses and
//! a repeated nonce breaks GCM outright — and it runs in constant time in software, so no
//! toolbox or replica depends on AES-NI being there.

use crate::{Result, SecretValue, VaultError};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::TryRng;
use toolbelt_model::UserId;
use toolbelt_store::secrets::SecretId;
use zeroize::Zeroizing;

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 24;

/// Fills `buf` from the operating system's generator (no user-space state to leak or fork).
pub(crate) fn random(buf: &mut [u8]) -> Result<()> {
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|e| VaultError::Rng(e.to_string()))
}

/// A 256-bit data key: one per secret version, zeroized on drop, never stored unwrapped.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub fn generate() -> Result<DataKey> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        random(k.as_mut())?;
        Ok(DataKey(k))
    }

    /// For key providers that unwrap elsewhere (a KMS): exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<DataKey> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        (b.len() == KEY_LEN).then(|| {
            k.copy_from_slice(b);
            DataKey(k)
        })
    }

    /// The raw key, for a provider to wrap.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// Seals `msg` under `key` with a fresh random nonce: `(nonce, ciphertext ‖ tag)`.
/// An error here means the AEAD refused its input (over 256 GiB), never a bad key.
pub(crate) fn seal(key: &[u8; KEY_LEN], msg: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(&XNonce::from(nonce), Payload { msg, aad })
        .map_err(|_| VaultError::Keys("value too large to seal".into()))?;
    Ok((nonce.to_vec(), ct))
}

/// Opens what [`seal`] made; None when the key, nonce, ciphertext or associated data differ.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = XNonce::try_from(nonce).ok()?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(&nonce, Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// What a ciphertext is bound to. Both the value and its wrapped data key carry it as
/// associated data, under different labels, so neither opens in another row or version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub owner: Option<&'a UserId>,
    pub id: &'a SecretId,
    pub version: i64,
}

impl Binding<'_> {
    fn aad(&self, label: &str) -> Vec<u8> {
        // Length-prefixed fields: no two different bindings encode to the same bytes.
        let mut out = Vec::with_capacity(96);
        for field in [
            label,
            self.owner.map_or("", |o| o.as_str()),
            self.id.as_str(),
        ] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        out
    }

    pub fn value_aad(&self) -> Vec<u8> {
        self.aad("toolbelt-vault/value/v1")
    }

    pub fn key_aad(&self) -> Vec<u8> {
        self.aad("toolbelt-vault/data-key/v1")
    }
}

/// Seals a value under a fresh data key: `(data key, nonce, ciphertext)`.
pub(crate) fn seal_value(
    value: &SecretValue,
    b: &Binding<'_>,
) -> Result<(DataKey, Vec<u8>, Vec<u8>)> {
    let dek = DataKey::generate()?;
    let (nonce, ct) = seal(dek.expose(), value.expose(), &b.value_aad())?;
    Ok((dek, nonce, ct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn binding<'a>(id: &'a SecretId, owner: Option<&'a UserId>, version: i64) -> Binding<'a> {
        Binding { owner, id, version }
    }

    #[test]
    fn aad_differs_for_every_field_and_label() {
        let (a, b) = (crate::actor::new_id(), crate::actor::new_id());
        let u = UserId::generate();
        let base = binding(&a, Some(&u), 1);
        assert_ne!(base.value_aad(), base.key_aad());
        assert_ne!(base.value_aad(), binding(&b, Some(&u), 1).value_aad());
        assert_ne!(base.value_aad(), binding(&a, None, 1).value_aad());
        assert_ne!(base.value_aad(), binding(&a, Some(&u), 2).value_aad());
    }

    #[test]
    fn sealed_values_open_only_with_their_key_nonce_and_aad() {
        let k = DataKey::generate().unwrap();
        let (n, ct) = seal(k.expose(), b"canary", b"aad").unwrap();
        assert_eq!(
            open(k.expose(), &n, &ct, b"aad").unwrap().as_slice(),
            b"canary"
        );
        assert!(open(k.expose(), &n, &ct, b"other").is_none());
        assert!(open(DataKey::generate().unwrap().expose(), &n, &ct, b"aad").is_none());
        assert!(
            open(k.expose(), &n[..12], &ct, b"aad").is_none(),
            "short nonce"
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(open(k.expose(), &n, &bad, b"aad").is_none());
        assert!(!format!("{k:?}").contains(&hex::encode(k.expose())));
    }

    /// Crypto cost per secret without the database: seal = new data key + seal the value +
    /// wrap the key under a KEK; open = unwrap + open. Prints, never asserts on time; for
    /// meaningful numbers: `cargo test --release -p toolbelt-vault --lib cost -- --nocapture`.
    #[test]
    fn seal_and_open_cost() {
        let kek = DataKey::generate().unwrap();
        let id = crate::actor::new_id();
        let b = binding(&id, None, 1);
        let value = SecretValue::from("x".repeat(256));
        let n = 2_000;
        let t = Instant::now();
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let (dek, nonce, ct) = seal_value(&value, &b).unwrap();
            let wrapped = seal(kek.expose(), dek.expose(), &b.key_aad()).unwrap();
            rows.push((nonce, ct, wrapped));
        }
        let seal_ns = t.elapsed().as_nanos() / n as u128;
        let t = Instant::now();
        for (nonce, ct, (wn, wct)) in &rows {
            let dek = open(kek.expose(), wn, wct, &b.key_aad()).unwrap();
            let dek = DataKey::from_slice(&dek).unwrap();
            assert_eq!(
                open(dek.expose(), nonce, ct, &b.value_aad()).unwrap().len(),
                256
            );
        }
        let open_ns = t.elapsed().as_nanos() / n as u128;
        println!(
            "vault crypto, 256-byte value: seal {seal_ns} ns/secret, open {open_ns} ns/secret"
        );
    }
}
