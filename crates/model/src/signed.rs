//! Short-lived tokens the control plane signs for one toolbox's DTMA (control plane →
//! DTMA calls). A JWT in compact form with EdDSA (Ed25519): `header.claims.signature`,
//! verifiable by any JWT library. The DTMA holds only the public key, learned at join;
//! nothing in the database can mint these.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::Rng;
use serde::{Deserialize, Serialize};

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;
pub const ISSUER: &str = "toolbelt-control-plane";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The toolbox id the token is for.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("token for another toolbox")]
    WrongAudience,
    #[error("token expired")]
    Expired,
}

/// The control plane's signing key.
pub struct ControlKey(pub(crate) SigningKey);

impl ControlKey {
    pub fn generate() -> ControlKey {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        ControlKey(SigningKey::from_bytes(&seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> ControlKey {
        ControlKey(SigningKey::from_bytes(&seed))
    }

    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half, as base64url, for the DTMA.
    pub fn public_b64(&self) -> String {
        B64.encode(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, audience: &str, now_s: i64, ttl_s: i64) -> String {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: audience.into(),
            iat: now_s,
            exp: now_s + ttl_s,
        };
        let body = serde_json::to_vec(&claims).expect("claims serialise");
        let signing_input = format!("{}.{}", B64.encode(HEADER), B64.encode(body));
        let sig = self.0.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(sig.to_bytes()))
    }
}

impl std::fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlKey([redacted])")
    }
}

/// What a DTMA verifies with.
#[derive(Debug, Clone)]
pub struct ControlPublicKey(pub(crate) VerifyingKey);

impl ControlPublicKey {
    pub fn from_b64(s: &str) -> Option<ControlPublicKey> {
        let bytes: [u8; 32] = B64.decode(s).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(ControlPublicKey)
    }

    /// Checks signature, audience and expiry (with 30 s of clock skew allowed).
    pub fn verify(&self, token: &str, audience: &str, now_s: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = B64.decode(h).map_err(|_| TokenError::Malformed)?;
        if header != HEADER.as_bytes() {
            return Err(TokenError::Malformed);
        }
        let sig_bytes: [u8; 64] = B64
            .decode(s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(TokenError::Malformed)?;
        self.0
            .verify(
                format!("{h}.{c}").as_bytes(),
                &Signature::from_bytes(&sig_bytes),
            )
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = B64
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.iss != ISSUER || claims.aud != audience {
            return Err(TokenError::WrongAudience);
        }
        if claims.exp + 30 < now_s || claims.iat - 30 > now_s {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_toolbox_key_and_time() {
        let key = ControlKey::generate();
        let public = ControlPublicKey::from_b64(&key.public_b64()).unwrap();
        let t = key.sign("tbx_a", 1000, 60);
        assert_eq!(public.verify(&t, "tbx_a", 1010).unwrap().aud, "tbx_a");
        assert_eq!(
            public.verify(&t, "tbx_b", 1010),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(public.verify(&t, "tbx_a", 1200), Err(TokenError::Expired));
        let other = ControlPublicKey::from_b64(&ControlKey::generate().public_b64()).unwrap();
        assert_eq!(
            other.verify(&t, "tbx_a", 1010),
            Err(TokenError::BadSignature)
        );
        // Swapping in other claims breaks the signature.
        let forged_claims =
            B64.encode(br#"{"iss":"toolbelt-control-plane","aud":"tbx_b","iat":1000,"exp":9999}"#);
        let mut p: Vec<&str> = t.split('.').collect();
        p[1] = &forged_claims;
        assert_eq!(
            public.verify(&p.join("."), "tbx_b", 1010),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            public.verify("a.b", "tbx_a", 1010),
            Err(TokenError::Malformed)
        );
        assert!(!format!("{key:?}").contains(&key.public_b64()));
    }
}
