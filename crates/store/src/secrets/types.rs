//! The vault's row types: ids, kinds, metadata and the sealed material.

use serde::{Deserialize, Serialize};
use toolbelt_model::{Name, Timestamp, UserId};

/// A secret's id (`sec_…`), one of the model's typed ids.
pub use toolbelt_model::SecretId;

/// What a secret is for; decides nothing about how it is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    Generic,
    ApiKey,
    Password,
    OauthClientSecret,
    OauthToken,
}

impl SecretKind {
    pub const ALL: &'static [SecretKind] = &[
        SecretKind::Generic,
        SecretKind::ApiKey,
        SecretKind::Password,
        SecretKind::OauthClientSecret,
        SecretKind::OauthToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Generic => "generic",
            SecretKind::ApiKey => "api_key",
            SecretKind::Password => "password",
            SecretKind::OauthClientSecret => "oauth_client_secret",
            SecretKind::OauthToken => "oauth_token",
        }
    }

    pub fn parse(s: &str) -> Option<SecretKind> {
        SecretKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// Everything about a secret but its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    pub id: SecretId,
    pub name: Name,
    /// None: a shared secret (owned by the admins).
    pub owner_id: Option<UserId>,
    pub kind: SecretKind,
    /// 1 when created; each new value adds one.
    pub version: i64,
    /// The key-encryption key that wraps this version's data key.
    pub kek_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A sealed value as stored: opaque bytes to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub kek_id: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// A row with its sealed material.
#[derive(Debug, Clone)]
pub struct SealedSecret {
    pub meta: SecretMeta,
    pub sealed: Sealed,
}

/// How a caller names a secret: its id, or its name in the caller's namespace (a member's
/// own; for an admin, their own first, then the shared one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Id(SecretId),
    Name(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> SecretRef {
        SecretId::parse(s).map_or_else(|| SecretRef::Name(s.to_string()), SecretRef::Id)
    }
}
