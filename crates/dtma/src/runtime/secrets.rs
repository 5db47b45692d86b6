//! Secret files for servers: written to a DTMA-owned tmpfs directory (never to disk),
//! bound read-only into containers at `/run/secrets` — the one allowed bind, as Docker
//! Swarm and Kubernetes do it. Removed with the server.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The uid:gid hardened containers run as.
pub const CONTAINER_UID: u32 = 65534;

pub struct SecretStore {
    root: PathBuf,
}

impl SecretStore {
    /// A directory on a tmpfs: `/dev/shm` is one on Linux, so no mount privilege is needed.
    pub fn new(toolbox_id: &str) -> std::io::Result<SecretStore> {
        let base = std::env::var_os("TOOLBELT_SECRETS_TMPFS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/dev/shm"));
        SecretStore::under(&base, toolbox_id)
    }

    /// The toolbox's directory under `base` (tests give a temporary one).
    pub fn under(base: &Path, toolbox_id: &str) -> std::io::Result<SecretStore> {
        let root = base.join(format!("toolbelt-{toolbox_id}"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&root)?;
        // Traversable but not listable: names of other servers' directories stay hidden.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))?;
        Ok(SecretStore { root })
    }

    pub fn dir_for(&self, server_id: &str, generation: i64) -> PathBuf {
        self.root.join(format!("{server_id}-{generation}"))
    }

    /// Writes one file per secret (mode 0400, owned by the container user when we are
    /// root; otherwise 0444 inside an unlistable directory).
    pub fn write(
        &self,
        server_id: &str,
        generation: i64,
        secrets: &BTreeMap<String, String>,
    ) -> std::io::Result<PathBuf> {
        let dir = self.dir_for(server_id, generation);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let root = unsafe { libc::geteuid() } == 0;
        for (name, value) in secrets {
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&path)?;
            f.write_all(value.as_bytes())?;
            if root {
                chown(&path, CONTAINER_UID)?;
            } else {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
            }
        }
        if root {
            chown(&dir, CONTAINER_UID)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500))?;
        } else {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        }
        Ok(dir)
    }

    pub fn remove(&self, server_id: &str, generation: i64) {
        let _ = std::fs::remove_dir_all(self.dir_for(server_id, generation));
    }

    /// Removes every directory of a server except the given generation's.
    pub fn remove_all_but(&self, server_id: &str, keep: Option<i64>) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(gen_s) = name.strip_prefix(&format!("{server_id}-"))
                && keep.map(|k| k.to_string()) != Some(gen_s.to_string())
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
}
