//! argon2id password hashes, computed off the async runtime.

use crate::service::ServiceError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

pub async fn hash(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| ServiceError::Internal)?
    .map_err(|e| {
        tracing::error!(error = %e, "argon2 hash failed");
        ServiceError::Internal
    })
}

/// Verifies `password` against a stored PHC string. Without a stored hash it still spends
/// the time of one verification, so timing does not reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let dummy;
        let phc = match &stored {
            Some(s) => s.as_str(),
            None => {
                dummy = Argon2::default()
                    .hash_password(b"not-a-password")
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                dummy.as_str()
            }
        };
        let ok = PasswordHash::new(phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && stored.is_some()
    })
    .await
    .unwrap_or(false)
}
