//! KEKs from a key file: small JSON, mode 0600, created with one key on first use.
//!
//! ```json
//! {
//!   "format": "toolbelt-vault-keys/1",
//!   "current": "kek_5f1c2a9e0b7d3c4a",
//!   "keys": [
//!     { "id": "kek_0a4e…", "created_at": "2026-01-05T10:00:00Z", "key": "<64 hex digits>" },
//!     { "id": "kek_5f1c2a9e0b7d3c4a", "created_at": "2026-04-01T09:30:00Z", "key": "<64 hex digits>" }
//!   ]
//! }
//! ```
//!
//! `current` wraps new data keys; the others still unwrap. Each `id` is [`kek_id_of`] its key,
//! checked on load, so a hand edit that pairs an id with the wrong key is refused. The file is
//! re-read whenever it changes on disk (checked by a `stat` per use), so keys added or
//! removed by `add_key`/`remove_key` — in this process or another — take effect in a running
//! service. Rewrites go to a temporary file that is renamed over the old one, never half
//! written. Two processes editing the file at the same moment are not guarded against: key
//! management is an operator's action.

use crate::crypto::{self, DataKey, KEY_LEN};
use crate::keys::{KeyError, KeyProvider, KeyRing, Wrapped, kek_id_of, parse_hex_key};
use crate::{Result, VaultError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::{Zeroize, Zeroizing};

const FORMAT: &str = "toolbelt-vault-keys/1";

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    current: String,
    keys: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: String,
    created_at: DateTime<Utc>,
    key: String,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Identity of the file's current content as far as `stat` can tell; a rename always
/// changes the inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp(u64, u64, u64, i64, i64);

struct Loaded {
    stamp: Stamp,
    ring: Arc<KeyRing>,
}

/// The key-file [`KeyProvider`].
pub struct KeyFileProvider {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    /// Serialises this process's read-modify-write of the file.
    edit: Mutex<()>,
}

impl std::fmt::Debug for KeyFileProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn keys_err(path: &Path, m: impl std::fmt::Display) -> VaultError {
    VaultError::Keys(format!("key file {}: {m}", path.display()))
}

fn stamp(path: &Path) -> Result<Stamp> {
    let m = std::fs::metadata(path).map_err(|e| keys_err(path, e))?;
    if m.permissions().mode() & 0o077 != 0 {
        return Err(keys_err(
            path,
            format!(
                "readable by group or others (mode {:o}); chmod 600 it",
                m.permissions().mode() & 0o777
            ),
        ));
    }
    Ok(Stamp(m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn read(path: &Path) -> Result<KeyFile> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| keys_err(path, e))?);
    let f: KeyFile = serde_json::from_str(&text).map_err(|e| keys_err(path, e))?;
    if f.format != FORMAT {
        return Err(keys_err(path, format!("format must be {FORMAT:?}")));
    }
    Ok(f)
}

fn ring_of(path: &Path, f: &KeyFile) -> Result<KeyRing> {
    let mut ring = KeyRing::default();
    for e in &f.keys {
        let key = parse_hex_key(&e.key).map_err(|m| keys_err(path, format!("{}: {m}", e.id)))?;
        if kek_id_of(&key) != e.id {
            return Err(keys_err(
                path,
                format!("{}: the id does not match its key", e.id),
            ));
        }
        ring.add(e.id.clone(), key, e.id == f.current);
    }
    if ring.current() != Some(f.current.as_str()) {
        return Err(keys_err(
            path,
            format!("current key {} is not in keys", f.current),
        ));
    }
    Ok(ring)
}

/// Writes the whole file through a temporary one. `create` never replaces an existing file
/// (two processes starting at once must not each make a key and keep only one): it links
/// the temporary file into place, which fails when the name exists — `Ok(false)`.
fn write(path: &Path, f: &KeyFile, create: bool) -> Result<bool> {
    let text = Zeroizing::new(serde_json::to_string_pretty(f).map_err(|e| keys_err(path, e))?);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let mut nonce = [0u8; 8];
    crypto::random(&mut nonce)?;
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let res = (|| -> std::io::Result<bool> {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        out.sync_all()?;
        let placed = if create {
            match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                r => r.map(|()| true)?,
            }
        } else {
            std::fs::rename(&tmp, path).map(|()| true)?
        };
        // The new name survives a crash only once the directory is synced.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
        Ok(placed)
    })();
    let _ = std::fs::remove_file(&tmp);
    res.map_err(|e| keys_err(path, e))
}

fn new_entry() -> Result<Entry> {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    crypto::random(k.as_mut())?;
    Ok(Entry {
        id: kek_id_of(&k),
        created_at: Utc::now(),
        key: hex::encode(k.as_ref()),
    })
}

impl KeyFileProvider {
    /// Loads the key file, creating it (and its directory, mode 0700) with one new key when
    /// it does not exist.
    pub fn open_or_create(path: &Path) -> Result<KeyFileProvider> {
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| keys_err(path, e))?;
            }
            let e = new_entry()?;
            let f = KeyFile {
                format: FORMAT.into(),
                current: e.id.clone(),
                keys: vec![e],
            };
            if write(path, &f, true)? {
                tracing::info!(path = %path.display(), kek_id = %f.current, "created the vault key file");
            }
        }
        let stamp = stamp(path)?;
        let ring = Arc::new(ring_of(path, &read(path)?)?);
        Ok(KeyFileProvider {
            path: path.to_path_buf(),
            loaded: Mutex::new(Loaded { stamp, ring }),
            edit: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys as the file holds them now (re-read when it changed).
    pub fn ring(&self) -> Result<Arc<KeyRing>> {
        let now = stamp(&self.path)?;
        let mut l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if l.stamp != now {
            l.ring = Arc::new(ring_of(&self.path, &read(&self.path)?)?);
            l.stamp = now;
        }
        Ok(l.ring.clone())
    }

    /// Adds a new random key and makes it current; returns its id. Old keys stay until
    /// removed. Follow with `Vault::rotate` to move every data key to it.
    pub fn add_key(&self) -> Result<String> {
        let _g = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = read(&self.path)?;
        let e = new_entry()?;
        let id = e.id.clone();
        f.current = id.clone();
        f.keys.push(e);
        write(&self.path, &f, false)?;
        self.ring()?;
        Ok(id)
    }

    /// Removes an old key. Refuses the current one. Check `Vault::kek_usage` first: secrets
    /// still wrapped by a removed key no longer open.
    pub fn remove_key(&self, id: &str) -> Result<()> {
        let _g = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = read(&self.path)?;
        if f.current == id {
            return Err(keys_err(&self.path, format!("{id} is the current key")));
        }
        let before = f.keys.len();
        f.keys.retain(|e| e.id != id);
        if f.keys.len() == before {
            return Err(keys_err(&self.path, format!("no key {id}")));
        }
        write(&self.path, &f, false)?;
        self.ring()?;
        Ok(())
    }

    fn ring_for_use(&self) -> Result<Arc<KeyRing>, KeyError> {
        self.ring()
            .map_err(|e| KeyError::Unavailable(e.to_string()))
    }
}

#[async_trait]
impl KeyProvider for KeyFileProvider {
    async fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<Wrapped, KeyError> {
        self.ring_for_use()?.wrap_now(dek, aad)
    }

    async fn unwrap(&self, kek_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<DataKey, KeyError> {
        self.ring_for_use()?.unwrap_now(kek_id, wrapped, aad)
    }

    async fn current_id(&self) -> Result<String, KeyError> {
        self.ring_for_use()?.current_id().await
    }

    async fn key_ids(&self) -> Result<Vec<String>, KeyError> {
        Ok(self.ring_for_use()?.ids())
    }
}
