//! `SecretValue`: plaintext that is hard to leak by accident.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// A secret's plaintext. Debug and Display print `[redacted]`; serializing it fails (so a
/// struct holding one cannot end up in a response, a log line as JSON, or a queue by
/// mistake); its buffer is zeroed when it is dropped. The bytes are reached only through
/// [`SecretValue::expose`], which makes every use greppable.
///
/// Deserializing is allowed: it is how a value arrives in a request body.
pub struct SecretValue(Vec<u8>);

pub(crate) const REDACTED: &str = "[redacted]";

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> SecretValue {
        SecretValue(bytes)
    }

    /// The plaintext. Keep the borrow short; never log or serialize it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The plaintext as text, when it is UTF-8 (tokens and passwords are).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Zeroes the whole buffer (its spare capacity too) and empties it.
    fn wipe(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        self.wipe();
    }
}

// `From<String>` and `From<Vec<u8>>` move the buffer in, so no unwiped copy stays behind.
impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        SecretValue(s.into_bytes())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(b: Vec<u8>) -> Self {
        SecretValue(b)
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        SecretValue(s.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValue({REDACTED})")
    }
}

impl std::fmt::Display for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(ser::Error::custom(
            "a secret value is never serialized (use expose() where it must leave)",
        ))
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SecretValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SecretValue, E> {
                Ok(SecretValue::from(s))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<SecretValue, E> {
                Ok(SecretValue::from(s))
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<SecretValue, E> {
                Ok(SecretValue(b.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<SecretValue, E> {
                Ok(SecretValue(b))
            }
        }
        d.deserialize_string(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-7f3a9c";

    #[test]
    fn debug_and_display_are_redacted() {
        let v = SecretValue::from(CANARY);
        assert_eq!(format!("{v}"), "[redacted]");
        assert_eq!(format!("{v:?}"), "SecretValue([redacted])");
        assert!(!format!("{:?}", Some(&v)).contains(CANARY));
        assert_eq!(v.expose_str(), Some(CANARY));
    }

    #[test]
    fn serializing_is_refused_even_inside_a_struct() {
        #[derive(Serialize)]
        struct Body {
            name: &'static str,
            value: SecretValue,
        }
        let err = serde_json::to_string(&SecretValue::from(CANARY)).unwrap_err();
        assert!(err.to_string().contains("never serialized"), "{err}");
        let body = Body {
            name: "x",
            value: SecretValue::from(CANARY),
        };
        assert!(serde_json::to_string(&body).is_err());
        assert!(serde_json::to_value(&body).is_err());
    }

    #[test]
    fn values_deserialize_from_request_bodies() {
        #[derive(Deserialize)]
        struct Body {
            value: SecretValue,
        }
        let b: Body = serde_json::from_str(r#"{"value":"s3cr\"et"}"#).unwrap();
        assert_eq!(b.value.expose(), b"s3cr\"et");
    }

    #[test]
    fn wiping_zeroes_the_buffer() {
        let mut v = SecretValue::from(String::from(CANARY));
        let cap = v.0.capacity();
        v.wipe();
        assert!(v.is_empty());
        // Wiping keeps the allocation, so what it left there can be looked at.
        let spare = v.0.spare_capacity_mut();
        assert_eq!(spare.len(), cap);
        // SAFETY: zeroize wrote every byte of the capacity (volatile writes of 0), so the
        // spare capacity is initialised memory of this live allocation.
        let all_zero = spare.iter().all(|b| unsafe { b.assume_init() } == 0);
        assert!(all_zero, "every byte zeroed");
    }
}
