//! Replies the control plane signs for a DTMA: the heartbeat reply (the desired set) and a
//! secret delivery. TLS keeps them private on the wire, but whoever holds a TLS position
//! (a proxy that terminates TLS, a certificate misissued for the control plane's name)
//! could rewrite what a DTMA runs; a signature with the control plane's Ed25519 key — the
//! one whose public half the DTMA pinned at join, and which already signs the tokens of
//! control plane → DTMA calls — makes any change to the body detectable.
//!
//! The DTMA sends a fresh random nonce with each request ([`NONCE_HEADER`]); the control
//! plane signs `context ‖ body` where the context names the reply's kind, the toolbox and
//! that nonce ([`SIGNATURE_HEADER`], base64url). So a reply cannot be moved to another
//! toolbox, passed off as the other kind, or replayed later (an old desired set put back).
//! The signature covers the exact body bytes: no canonical JSON is needed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, Verifier};
use rand::Rng;

use crate::signed::{ControlKey, ControlPublicKey};

/// The request header carrying the DTMA's nonce.
pub const NONCE_HEADER: &str = "toolbelt-nonce";
/// The reply header carrying the control plane's signature.
pub const SIGNATURE_HEADER: &str = "toolbelt-signature";
/// The longest nonce the control plane signs over (a DTMA sends 22 characters).
pub const NONCE_MAX: usize = 64;

/// What a signed reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Heartbeat,
    Secrets,
}

impl ReplyKind {
    fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Heartbeat => "heartbeat",
            ReplyKind::Secrets => "secrets",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply carries no signature ({SIGNATURE_HEADER})")]
    Unsigned,
    #[error("the reply's signature is malformed")]
    Malformed,
    #[error(
        "the reply's signature does not verify with the control plane's key pinned at join: its body was altered or it answers another request"
    )]
    BadSignature,
}

/// A fresh nonce for one request: 128 random bits, base64url.
pub fn new_nonce() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    B64.encode(b)
}

/// Whether a nonce may be signed over: short, base64url characters only (it is part of the
/// signed context, separated by newlines, so it must not hold one).
pub fn valid_nonce(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= NONCE_MAX
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn message(kind: ReplyKind, toolbox: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "toolbelt-dtma-reply/1\n{}\n{toolbox}\n{nonce}\n",
        kind.as_str()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

impl ControlKey {
    /// The signature of a reply body for one toolbox's request with `nonce`.
    pub fn sign_reply(&self, kind: ReplyKind, toolbox: &str, nonce: &str, body: &[u8]) -> String {
        let sig = self.0.sign(&message(kind, toolbox, nonce, body));
        B64.encode(sig.to_bytes())
    }
}

impl ControlPublicKey {
    /// Checks a reply body against the signature its header carried.
    pub fn verify_reply(
        &self,
        kind: ReplyKind,
        toolbox: &str,
        nonce: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), ReplyError> {
        let sig = signature.ok_or(ReplyError::Unsigned)?;
        let bytes: [u8; 64] = B64
            .decode(sig.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ReplyError::Malformed)?;
        self.0
            .verify(
                &message(kind, toolbox, nonce, body),
                &Signature::from_bytes(&bytes),
            )
            .map_err(|_| ReplyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_verifies_only_unaltered_for_its_toolbox_kind_and_nonce() {
        let key = ControlKey::generate();
        let public = ControlPublicKey::from_b64(&key.public_b64()).unwrap();
        let body = br#"{"desired":[],"heartbeat_interval_ms":5000}"#;
        let nonce = new_nonce();
        assert!(valid_nonce(&nonce), "{nonce}");
        let sig = key.sign_reply(ReplyKind::Heartbeat, "tbx_a", &nonce, body);
        let check =
            |kind, tb, n: &str, b: &[u8], s: Option<&str>| public.verify_reply(kind, tb, n, b, s);
        assert_eq!(
            check(ReplyKind::Heartbeat, "tbx_a", &nonce, body, Some(&sig)),
            Ok(())
        );
        // One byte of the body changed.
        let tampered = br#"{"desired":[],"heartbeat_interval_ms":5001}"#;
        assert_eq!(
            check(ReplyKind::Heartbeat, "tbx_a", &nonce, tampered, Some(&sig)),
            Err(ReplyError::BadSignature)
        );
        // Another toolbox, the other kind, an earlier request's nonce (a replay).
        assert_eq!(
            check(ReplyKind::Heartbeat, "tbx_b", &nonce, body, Some(&sig)),
            Err(ReplyError::BadSignature)
        );
        assert_eq!(
            check(ReplyKind::Secrets, "tbx_a", &nonce, body, Some(&sig)),
            Err(ReplyError::BadSignature)
        );
        assert_eq!(
            check(
                ReplyKind::Heartbeat,
                "tbx_a",
                &new_nonce(),
                body,
                Some(&sig)
            ),
            Err(ReplyError::BadSignature)
        );
        // Signed by another key, unsigned, garbage.
        let other = ControlKey::generate().sign_reply(ReplyKind::Heartbeat, "tbx_a", &nonce, body);
        assert_eq!(
            check(ReplyKind::Heartbeat, "tbx_a", &nonce, body, Some(&other)),
            Err(ReplyError::BadSignature)
        );
        assert_eq!(
            check(ReplyKind::Heartbeat, "tbx_a", &nonce, body, None),
            Err(ReplyError::Unsigned)
        );
        assert_eq!(
            check(ReplyKind::Heartbeat, "tbx_a", &nonce, body, Some("x")),
            Err(ReplyError::Malformed)
        );
    }

    #[test]
    fn nonces_are_short_plain_and_fresh() {
        assert_ne!(new_nonce(), new_nonce());
        for bad in ["", "a\nb", "a b", &"a".repeat(NONCE_MAX + 1)] {
            assert!(!valid_nonce(bad), "{bad:?}");
        }
        assert!(valid_nonce("AZaz09-_"));
    }
}
