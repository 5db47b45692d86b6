//! A connection's tokens as one vault secret (JSON inside the sealed value), and when to
//! refresh them.

use crate::{OAuthConfig, OAuthError, Result};
use chrono::Duration as ChronoDuration;
use serde::{Deserialize, Serialize};
use toolbelt_model::{ConnectionId, Name, Timestamp};
use toolbelt_vault::SecretValue;
use zeroize::Zeroize;

/// Access and refresh token. Never logged (no Debug), zeroized on drop.
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenSet {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub token_type: String,
}

impl Drop for TokenSet {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(r) = self.refresh_token.as_mut() {
            r.zeroize();
        }
    }
}

impl TokenSet {
    pub fn to_secret(&self) -> SecretValue {
        SecretValue::new(serde_json::to_vec(self).expect("strings serialise"))
    }

    pub fn from_secret(v: &SecretValue) -> Result<TokenSet> {
        serde_json::from_slice(v.expose()).map_err(|_| {
            OAuthError::Malformed(
                "the stored token set does not parse (not a connection's tokens)".into(),
            )
        })
    }
}

/// What a token endpoint answered, besides the tokens.
pub(crate) struct Issued {
    pub tokens: TokenSet,
    pub expires_in: Option<std::time::Duration>,
    pub scopes: Option<Vec<String>>,
}

/// The vault secret name of a connection's tokens (a slug: `oauth-` + the id's ULID).
pub(crate) fn secret_name(id: &ConnectionId) -> Name {
    let ulid = id.as_str().trim_start_matches("con_");
    Name::from_db(format!("oauth-{ulid}"))
}

/// When to refresh a token expiring in `expires_in`: `lead` before expiry (at most half
/// the lifetime), minus a random jitter (at most a quarter of the lead). No expiry, no
/// scheduled refresh.
pub(crate) fn next_refresh(
    cfg: &OAuthConfig,
    now: Timestamp,
    expires_in: Option<std::time::Duration>,
) -> Option<Timestamp> {
    let life = expires_in?;
    let lead = cfg.refresh_lead.min(life / 2);
    let max_jitter = cfg.refresh_jitter.min(lead / 4);
    let jitter = if max_jitter.is_zero() {
        std::time::Duration::ZERO
    } else {
        max_jitter.mul_f64(rand::random::<f64>())
    };
    let at = life.saturating_sub(lead + jitter);
    Some(now + ChronoDuration::from_std(at).unwrap_or_default())
}

pub(crate) fn expiry(now: Timestamp, expires_in: Option<std::time::Duration>) -> Option<Timestamp> {
    expires_in.map(|d| now + ChronoDuration::from_std(d).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refresh_comes_before_expiry_with_bounded_jitter() {
        let cfg = OAuthConfig {
            refresh_lead: Duration::from_secs(300),
            refresh_jitter: Duration::from_secs(30),
            ..OAuthConfig::default()
        };
        let now = toolbelt_model::now();
        for _ in 0..100 {
            // An hour-long token: 5 min lead, up to 30 s jitter.
            let at = next_refresh(&cfg, now, Some(Duration::from_secs(3600))).unwrap();
            let before = (now + ChronoDuration::seconds(3600) - at).num_seconds();
            assert!((300..=330).contains(&before), "{before}");
            // A 4 s token: refreshed in its second half, jitter at most 0.5 s.
            let at = next_refresh(&cfg, now, Some(Duration::from_secs(4))).unwrap();
            let ms = (at - now).num_milliseconds();
            assert!((1500..=2000).contains(&ms), "{ms}");
        }
        assert!(next_refresh(&cfg, now, None).is_none());
    }

    #[test]
    fn token_sets_round_trip_and_names_are_slugs() {
        let t = TokenSet {
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            token_type: "Bearer".into(),
        };
        let back = TokenSet::from_secret(&t.to_secret()).unwrap();
        assert_eq!(back.refresh_token.as_deref(), Some("rt"));
        assert!(TokenSet::from_secret(&SecretValue::from("not json")).is_err());
        let id = ConnectionId::generate();
        let n = secret_name(&id);
        assert!(Name::parse("name", n.as_str(), 64).is_ok(), "{n}");
    }
}
