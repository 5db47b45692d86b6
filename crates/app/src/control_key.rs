//! The control plane's Ed25519 key: a file (mode 0600, hex seed), created on first start
//! and shared by replicas through `TOOLBELT_CONTROL_KEY_FILE`. Never in the database.

use crate::error::AppError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use toolbelt_model::signed::ControlKey;

/// Reads the key at `path`, or creates it there when there is no file yet.
pub fn load_or_create(path: &Path) -> Result<ControlKey, AppError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AppError::BadControlKey { path: path.into() })?;
        return Ok(ControlKey::from_seed(seed));
    }
    let key = ControlKey::generate();
    let created = |source| AppError::ControlKeyFile {
        path: path.into(),
        source,
    };
    // create_new: two replicas starting at once never overwrite each other's key.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(created)?;
    f.write_all(hex::encode(key.seed()).as_bytes())
        .map_err(created)?;
    Ok(key)
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
}
