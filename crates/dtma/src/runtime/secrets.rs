//! Secret files for servers: written to a DTMA-owned tmpfs directory (never to disk),
//! bound read-only into containers (and sandboxes) at `/run/secrets` — the one allowed
//! bind, as Docker Swarm and Kubernetes do it. Removed with the server.
//!
//! Nothing here trusts a name it is given: the toolbox id, server id and every secret
//! name must be single path components (checked again here, whatever the caller did),
//! the toolbox's directory must be a real directory this DTMA owns (a directory or
//! symlink someone else planted in the world-writable `/dev/shm` is refused), and files
//! are created with `O_EXCL | O_NOFOLLOW`, so nothing is written through a link.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use toolbelt_model::name::validate_path_component;

/// The uid:gid hardened containers run as.
pub const CONTAINER_UID: u32 = 65534;

pub struct SecretStore {
    root: PathBuf,
}

fn invalid(e: toolbelt_model::Invalid) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

impl SecretStore {
    /// A directory on a tmpfs: `/dev/shm` is one on Linux, so no mount privilege is needed.
    /// `traversable`: servers running as other users (the process runtime's per-server
    /// users) must pass through it to their own directory; otherwise only the DTMA may.
    pub fn new(toolbox_id: &str, traversable: bool) -> std::io::Result<SecretStore> {
        let base = std::env::var_os("TOOLBELT_SECRETS_TMPFS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/dev/shm"));
        SecretStore::under(&base, toolbox_id, traversable)
    }

    /// The toolbox's directory under `base` (tests give a temporary one).
    pub fn under(base: &Path, toolbox_id: &str, traversable: bool) -> std::io::Result<SecretStore> {
        validate_path_component("toolbox_id", toolbox_id).map_err(invalid)?;
        let root = base.join(format!("toolbelt-{toolbox_id}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // Not followed: a symlink or someone else's directory planted under that name
        // (before this DTMA first ran) is refused, never used.
        let meta = std::fs::symlink_metadata(&root)?;
        if !meta.file_type().is_dir() || meta.uid() != euid() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a directory owned by this DTMA (uid {}); remove it",
                    root.display(),
                    euid()
                ),
            ));
        }
        // Never listable: names of other servers' directories stay hidden.
        let mode = if traversable { 0o711 } else { 0o700 };
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode))?;
        Ok(SecretStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one generation of a server; refused unless the id is one plain
    /// path component.
    pub fn dir_for(&self, server_id: &str, generation: i64) -> std::io::Result<PathBuf> {
        validate_path_component("server_id", server_id).map_err(invalid)?;
        Ok(self.root.join(format!("{server_id}-{generation}")))
    }

    /// Writes one file per secret. With `owner` and root privileges the directory and
    /// files belong to that user (mode 0500/0400: only it reads them); otherwise they stay
    /// the DTMA's and are world-readable (0555/0444) inside the unlistable toolbox
    /// directory, which is all a container's user can be given without root. Every name
    /// is checked before anything is written.
    pub fn write(
        &self,
        server_id: &str,
        generation: i64,
        secrets: &BTreeMap<String, String>,
        owner: Option<u32>,
    ) -> std::io::Result<PathBuf> {
        let dir = self.dir_for(server_id, generation)?;
        for name in secrets.keys() {
            validate_path_component("secret name", name).map_err(invalid)?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let chown_to = owner.filter(|_| euid() == 0);
        for (name, value) in secrets {
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .mode(0o400)
                .open(&path)?;
            f.write_all(value.as_bytes())?;
            match chown_to {
                Some(uid) => std::os::unix::fs::fchown(&f, Some(uid), Some(uid))?,
                None => f.set_permissions(std::fs::Permissions::from_mode(0o444))?,
            }
        }
        match chown_to {
            Some(uid) => {
                std::os::unix::fs::chown(&dir, Some(uid), Some(uid))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500))?;
            }
            None => std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555))?,
        }
        Ok(dir)
    }

    pub fn remove(&self, server_id: &str, generation: i64) {
        if let Ok(dir) = self.dir_for(server_id, generation) {
            remove_dir(&dir);
        }
    }

    /// Removes every directory of a server except the given generation's.
    pub fn remove_all_but(&self, server_id: &str, keep: Option<i64>) {
        if validate_path_component("server_id", server_id).is_err() {
            return;
        }
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(gen_s) = name.strip_prefix(&format!("{server_id}-"))
                && keep.map(|k| k.to_string()) != Some(gen_s.to_string())
            {
                remove_dir(&e.path());
            }
        }
    }
}

/// A server's directory is read-only (0500/0555): make it writable again to empty it.
/// `remove_dir_all` never follows symlinks.
fn remove_dir(dir: &Path) {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir()) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
