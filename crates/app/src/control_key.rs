//! The control plane's Ed25519 keys, each a file (mode 0600, hex seed) created on first
//! start and shared by replicas through its setting: the control key
//! (`TOOLBELT_CONTROL_KEY_FILE`, signs calls to DTMAs) and the audit key
//! (`TOOLBELT_AUDIT_KEY_FILE`, signs audit checkpoints). Never in the database.

use crate::error::AppError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use toolbelt_model::audit_checkpoint::AuditKey;
use toolbelt_model::signed::ControlKey;

/// Reads the key at `path`, or creates it there when there is no file yet.
pub fn load_or_create(path: &Path) -> Result<ControlKey, AppError> {
    let fresh = ControlKey::generate().seed();
    let bad = || AppError::BadControlKey { path: path.into() };
    let created = |source| AppError::ControlKeyFile {
        path: path.into(),
        source,
    };
    seed_file(path, fresh, bad, created).map(ControlKey::from_seed)
}

/// The audit key at `path`, created there when there is no file yet.
pub fn load_or_create_audit(path: &Path) -> Result<AuditKey, AppError> {
    let fresh = AuditKey::generate().seed();
    let bad = || AppError::BadAuditKey { path: path.into() };
    let created = |source| AppError::AuditKeyFile {
        path: path.into(),
        source,
    };
    seed_file(path, fresh, bad, created).map(AuditKey::from_seed)
}

fn seed_file(
    path: &Path,
    fresh: [u8; 32],
    bad: impl Fn() -> AppError,
    created: impl Fn(std::io::Error) -> AppError,
) -> Result<[u8; 32], AppError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad);
    }
    // create_new: two replicas starting at once never overwrite each other's key.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(&created)?;
    f.write_all(hex::encode(fresh).as_bytes())
        .map_err(&created)?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.key");
        let first = load_or_create(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap().seed(), first.seed());
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.key");
        std::fs::write(&path, "not hex").unwrap();
        let e = load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("is not a control key"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not hex");
    }

    #[test]
    fn the_audit_key_is_its_own_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let control = load_or_create(&dir.path().join("control.key")).unwrap();
        let path = dir.path().join("audit.key");
        let audit = load_or_create_audit(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(audit.seed(), control.seed());
        assert_eq!(load_or_create_audit(&path).unwrap().seed(), audit.seed());
        std::fs::write(&path, "00").unwrap();
        let e = load_or_create_audit(&path).unwrap_err();
        assert!(e.to_string().contains("is not an audit key"), "{e}");
    }
}
