//! Bearer tokens: generated with 192 bits of randomness, shown once, stored only as
//! SHA-256 digests and compared in constant time.
//!
//! A token is looked up by a short prefix of its digest (an index), then the full digest
//! is compared with `subtle`, so a lookup's timing reveals nothing usable.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

str_enum!(
    TokenKind {
        /// A user's API token (CLI, scripts).
        Api = "api",
        /// A dashboard login session (cookie).
        Session = "session",
        /// An agent's token for the gateway.
        Agent = "agent",
        /// A toolbox's DTMA → control plane credential.
        Dtma = "dtma",
        /// A one-time token a DTMA exchanges for its credential.
        Join = "join",
        /// A one-time admin login printed by `toolbelt up`.
        Login = "login",
    }
);

impl TokenKind {
    /// A recognisable prefix, so leaked tokens are easy to spot and scan for.
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Api => "tbu_",
            TokenKind::Session => "tbs_",
            TokenKind::Agent => "tba_",
            TokenKind::Dtma => "tbd_",
            TokenKind::Join => "tbj_",
            TokenKind::Login => "tbl_",
        }
    }
}

/// What the store keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDigest {
    /// Indexed lookup key: the first 16 hex digits of the digest.
    pub lookup: String,
    /// Full SHA-256 digest, hex.
    pub hash: String,
}

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        TokenDigest {
            lookup: hash[..16].to_string(),
            hash,
        }
    }

    /// Constant-time comparison against a stored digest.
    pub fn matches(&self, stored_hash: &str) -> bool {
        self.hash.as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

/// A freshly issued token: `secret` is shown to its holder once and then forgotten.
pub struct IssuedToken {
    pub secret: String,
    pub digest: TokenDigest,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("secret", &"[redacted]")
            .finish()
    }
}

pub fn issue(kind: TokenKind) -> IssuedToken {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{}{}", kind.prefix(), hex::encode(bytes));
    let digest = TokenDigest::of(&secret);
    IssuedToken { secret, digest }
}

/// A secret with a prefix of its own, for credentials kept outside the `tokens` table
/// (the MCP authorization server's codes, access and refresh tokens).
pub fn issue_prefixed(prefix: &str) -> IssuedToken {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", hex::encode(bytes));
    let digest = TokenDigest::of(&secret);
    IssuedToken { secret, digest }
}

/// The shortest token accepted from outside (bootstrap tokens chosen by an operator).
pub const MIN_TOKEN_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_unique_prefixed_and_match_their_digest() {
        let a = issue(TokenKind::Agent);
        let b = issue(TokenKind::Agent);
        assert!(a.secret.starts_with("tba_"));
        assert_ne!(a.secret, b.secret);
        assert!(TokenDigest::of(&a.secret).matches(&a.digest.hash));
        assert!(!TokenDigest::of(&b.secret).matches(&a.digest.hash));
        assert_eq!(a.digest.lookup.len(), 16);
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
