//! Signed audit checkpoints: evidence of the chain that lives outside the database.
//!
//! The chain alone proves only that rows agree with each other: someone who can write the
//! database can rewrite an event, recompute every later hash and move the head, and
//! `audit verify` still passes. A checkpoint is the head at one moment — sequence number
//! and hash — signed with the audit key (`audit.key`, its own key, not the one that signs
//! DTMA tokens) and appended as a JSON line to a file meant to live outside the database
//! and its backups. A chain whose hash at a checkpoint's sequence number differs from the
//! signed one was rewritten; a chain shorter than a checkpoint was truncated.
//!
//! One line: `{"seq":5,"hash":"…","time":"2026-12-03T08:40:00.123Z","key":"…","sig":"…"}`.
//! The signature (Ed25519, base64url) covers [`signing_input`]: a domain tag, then seq,
//! hash and time as written. `key` names the public key that signed it, for people; the
//! verifier checks with the key it was given, never with the one in the line.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Separates checkpoint signatures from anything else a key might sign.
const DOMAIN: &str = "toolbelt audit checkpoint v1";

/// One signed checkpoint, as a line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// The chain's head sequence number when it was signed.
    pub seq: i64,
    /// The hash of event `seq` (hex SHA-256).
    pub hash: String,
    /// When it was signed, RFC 3339 (signed as written).
    pub time: String,
    /// The verifying key (base64url), for people reading the file.
    pub key: String,
    /// Ed25519 signature over [`signing_input`], base64url.
    pub sig: String,
}

/// What a checkpoint's signature covers.
pub fn signing_input(seq: i64, hash: &str, time: &str) -> String {
    format!("{DOMAIN}\n{seq}\n{hash}\n{time}")
}

/// The audit key: signs checkpoints. Its seed lives in a 0600 file, never in the database,
/// never in a log or a reply.
pub struct AuditKey(SigningKey);

impl AuditKey {
    pub fn generate() -> AuditKey {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        AuditKey(SigningKey::from_bytes(&seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> AuditKey {
        AuditKey(SigningKey::from_bytes(&seed))
    }

    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The verifying key, base64url (what `toolbelt audit public-key` prints).
    pub fn public_b64(&self) -> String {
        B64.encode(self.0.verifying_key().to_bytes())
    }

    /// Signs the head `(seq, hash)` at `time`.
    pub fn sign(&self, seq: i64, hash: &str, time: chrono::DateTime<chrono::Utc>) -> Checkpoint {
        let time = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let sig = self.0.sign(signing_input(seq, hash, &time).as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_string(),
            time,
            key: self.public_b64(),
            sig: B64.encode(sig.to_bytes()),
        }
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

/// What a verifier trusts: the audit key's public half, from somewhere the database's
/// writers cannot reach (printed at install, kept with the checkpoint file's reader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey(VerifyingKey);

impl AuditPublicKey {
    /// base64url (padding and surrounding space tolerated).
    pub fn parse(s: &str) -> Result<AuditPublicKey, CheckpointError> {
        let bad = || CheckpointError::BadPublicKey;
        let bytes: [u8; 32] = B64
            .decode(s.trim().trim_end_matches('='))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes)
            .map(AuditPublicKey)
            .map_err(|_| bad())
    }

    pub fn b64(&self) -> String {
        B64.encode(self.0.to_bytes())
    }

    /// Whether `cp` was signed by this key, over exactly its seq, hash and time.
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let Some(sig) = B64
            .decode(&cp.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        self.0
            .verify(
                signing_input(cp.seq, &cp.hash, &cp.time).as_bytes(),
                &Signature::from_bytes(&sig),
            )
            .is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the public key is not an Ed25519 key in base64url (43 characters)")]
    BadPublicKey,
    #[error("line {line}: not a checkpoint ({why})")]
    Malformed { line: usize, why: String },
    #[error(
        "line {line}: the signature of the checkpoint at event {seq} does not verify with the given public key"
    )]
    BadSignature { line: usize, seq: i64 },
    #[error("the checkpoint file holds no checkpoints")]
    Empty,
}

/// Reads a checkpoint file (JSON lines; blank lines skipped) and checks every signature
/// with `key`. Any line that does not parse or verify fails the whole file, naming the
/// line: a forged line must not be taken for evidence, nor skipped quietly.
pub fn read_verified(text: &str, key: &AuditPublicKey) -> Result<Vec<Checkpoint>, CheckpointError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let cp: Checkpoint = serde_json::from_str(l).map_err(|e| CheckpointError::Malformed {
            line,
            why: e.to_string(),
        })?;
        if cp.seq < 1 || cp.hash.len() != 64 || !cp.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CheckpointError::Malformed {
                line,
                why: "seq must be 1 or more and hash 64 hex digits".into(),
            });
        }
        if !key.verifies(&cp) {
            return Err(CheckpointError::BadSignature { line, seq: cp.seq });
        }
        out.push(cp);
    }
    if out.is_empty() {
        return Err(CheckpointError::Empty);
    }
    Ok(out)
}

/// A checkpoint as the server compares it: the hash expected at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Expected {
    pub seq: i64,
    pub hash: String,
}

/// Sorted by seq, one per seq, at most `max` (the last always kept; the rest evenly
/// thinned). A consistent chain matching a later checkpoint matches every earlier one,
/// so thinning loses only how narrowly a rewrite is located, never whether it is found.
pub fn thin(cps: &[Checkpoint], max: usize) -> Vec<Expected> {
    let mut v: Vec<Expected> = cps
        .iter()
        .map(|c| Expected {
            seq: c.seq,
            hash: c.hash.clone(),
        })
        .collect();
    v.sort_by_key(|e| e.seq);
    v.dedup_by_key(|e| e.seq);
    if v.len() <= max || max < 2 {
        return v;
    }
    let last = v.len() - 1;
    let step = last as f64 / (max - 1) as f64;
    (0..max)
        .map(|i| v[((i as f64 * step).round() as usize).min(last)].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(s, 0).unwrap()
    }

    const H: &str = "ab00000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn a_checkpoint_verifies_only_unchanged_and_with_its_key() {
        let key = AuditKey::generate();
        let public = AuditPublicKey::parse(&key.public_b64()).unwrap();
        let cp = key.sign(7, H, at(1_800_000_000));
        assert!(public.verifies(&cp));
        assert_eq!(cp.key, public.b64());
        // Every signed field counts; the informational key field does not help a forger.
        for forged in [
            Checkpoint {
                seq: 8,
                ..cp.clone()
            },
            Checkpoint {
                hash: H.replace("ab", "cd"),
                ..cp.clone()
            },
            Checkpoint {
                time: "2030-01-01T00:00:00.000Z".into(),
                ..cp.clone()
            },
            Checkpoint {
                sig: "AAAA".into(),
                ..cp.clone()
            },
        ] {
            assert!(!public.verifies(&forged), "{forged:?}");
        }
        let other = AuditKey::generate();
        let by_other = other.sign(7, H, at(1_800_000_000));
        let with_our_name = Checkpoint {
            key: key.public_b64(),
            ..by_other
        };
        assert!(!public.verifies(&with_our_name));
        assert!(!format!("{key:?}").contains(&hex::encode(key.seed())));
    }

    #[test]
    fn a_file_with_one_forged_line_is_refused_naming_the_line() {
        let key = AuditKey::generate();
        let public = AuditPublicKey::parse(&key.public_b64()).unwrap();
        let good: Vec<String> = [2, 5]
            .iter()
            .map(|s| serde_json::to_string(&key.sign(*s, H, at(1_800_000_000 + s))).unwrap())
            .collect();
        let text = format!("{}\n\n{}\n", good[0], good[1]);
        assert_eq!(read_verified(&text, &public).unwrap().len(), 2);
        let forged = good[1].replace(H, &H.replace("ab", "cd"));
        let e = read_verified(&format!("{}\n{forged}\n", good[0]), &public).unwrap_err();
        assert_eq!(e, CheckpointError::BadSignature { line: 2, seq: 5 });
        let e = read_verified("{\"seq\":1}\n", &public).unwrap_err();
        assert!(
            matches!(e, CheckpointError::Malformed { line: 1, .. }),
            "{e}"
        );
        assert_eq!(
            read_verified("\n", &public).unwrap_err(),
            CheckpointError::Empty
        );
        assert_eq!(
            AuditPublicKey::parse("not a key").unwrap_err(),
            CheckpointError::BadPublicKey
        );
    }

    #[test]
    fn thinning_keeps_the_last_and_spreads_the_rest() {
        let key = AuditKey::generate();
        let cps: Vec<_> = (1..=100).rev().map(|s| key.sign(s, H, at(s))).collect();
        let t = thin(&cps, 10);
        assert_eq!(t.len(), 10);
        assert_eq!((t[0].seq, t[9].seq), (1, 100));
        assert!(t.windows(2).all(|w| w[0].seq < w[1].seq));
        let dup = [cps[0].clone(), cps[0].clone()];
        assert_eq!(thin(&dup, 10).len(), 1);
    }
}
