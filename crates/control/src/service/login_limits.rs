//! The throttle in front of every login (see [`super::session`] for the whole design):
//! which keys an attempt counts against, and the settings.

use super::error::{Result, ServiceError};
use crate::passwords::HashingLimits;
use crate::state::AppState;
use std::net::IpAddr;
use std::time::Duration;
use toolbelt_model::throttle::Backoff;
use toolbelt_model::token::TokenDigest;
use toolbelt_store::throttle::{self, Key, Verdict};

/// The login settings (`TOOLBELT_LOGIN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Per client address (an IPv6 client by its /64): generous, several people may share
    /// an address behind NAT.
    pub per_address: Backoff,
    /// Per account (by email, known or not): strict.
    pub per_account: Backoff,
    /// Anonymous MCP client registrations (RFC 7591) per client address
    /// (`TOOLBELT_REGISTER_LIMIT_ADDRESS`); counted in the same table as logins.
    pub registrations: Backoff,
    pub hashing: HashingLimits,
    /// How often anonymous failures are summed up into the audit log.
    pub failure_window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let quarter_hour = Duration::from_secs(15 * 60);
        LoginLimits {
            per_address: Backoff {
                free: 20,
                base: Duration::from_secs(1),
                max: quarter_hour,
                forget: quarter_hour,
            },
            per_account: Backoff {
                free: 5,
                base: Duration::from_secs(1),
                max: quarter_hour,
                forget: quarter_hour,
            },
            registrations: crate::service::mcp_auth::REGISTER_LIMIT,
            hashing: HashingLimits::default(),
            failure_window: Duration::from_secs(60),
        }
    }
}

/// The throttle key of a client address. IPv6 clients get a /64 each from their provider,
/// so they are counted by it; unknown (in-process) callers share one key.
pub fn address_key(from: Option<IpAddr>) -> String {
    match from.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => format!("addr:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "addr:unknown".into(),
    }
}

/// The throttle key of an account: a digest of the (validated, lowercased) email, so the
/// table holds no email an attacker typed.
pub fn account_key(email: &str) -> String {
    format!("acct:{}", TokenDigest::of(email).hash)
}

/// An attempt that was let through, and counted. Tell it when it succeeded.
pub struct Admitted {
    address: String,
    account: Option<String>,
}

/// Counts one attempt from `from` (at `email`'s account, when given) or refuses it with
/// [`ServiceError::TooManyAttempts`] — before anything is looked up or hashed.
pub async fn admit(st: &AppState, from: Option<IpAddr>, email: Option<&str>) -> Result<Admitted> {
    let limits = &st.config.login;
    let address = address_key(from);
    let account = email.map(account_key);
    let mut keys = vec![Key {
        key: &address,
        policy: &limits.per_address,
    }];
    if let Some(a) = &account {
        keys.push(Key {
            key: a,
            policy: &limits.per_account,
        });
    }
    let now = toolbelt_model::now().timestamp_millis();
    match throttle::attempt(&st.store, &keys, now).await? {
        Verdict::Allowed => Ok(Admitted {
            address: address.clone(),
            account,
        }),
        Verdict::Refused { until_ms } => {
            st.failures.throttled_login(from);
            st.metrics.login_throttled.inc();
            let wait = u64::try_from(until_ms.saturating_sub(now)).unwrap_or(0);
            Err(ServiceError::TooManyAttempts {
                retry_after: Duration::from_millis(wait.max(1)),
            })
        }
    }
}

impl Admitted {
    /// The credentials checked out: the attempt stops counting against the address (its
    /// other failures stay: logging in to one's own account must not clear an address),
    /// and the account starts over.
    pub async fn succeeded(self, st: &AppState) -> Result<()> {
        let policy = &st.config.login.per_address;
        throttle::undo(
            &st.store,
            Key {
                key: &self.address,
                policy,
            },
        )
        .await?;
        if let Some(a) = &self.account {
            let mut c = st.store.conn().await?;
            throttle::reset(&mut c, a).await?;
        }
        Ok(())
    }
}

/// Deletes throttle rows nobody has touched for longer than both policies remember.
pub async fn sweep(st: &AppState) -> Result<u64> {
    let l = &st.config.login;
    let forget = l.per_address.forget.max(l.per_account.forget);
    let cutoff = toolbelt_model::now().timestamp_millis()
        - i64::try_from(forget.as_millis()).unwrap_or(i64::MAX / 2);
    let mut c = st.store.conn().await?;
    Ok(throttle::sweep(&mut c, cutoff).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_v4_is_v4() {
        let a = address_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = address_key(Some("2001:db8:1:2:ffff::9".parse().unwrap()));
        assert_eq!(a, b);
        assert_eq!(a, "addr:2001:db8:1:2::/64");
        assert_eq!(
            address_key(Some("::ffff:198.51.100.7".parse().unwrap())),
            "addr:198.51.100.7"
        );
        assert_eq!(address_key(None), "addr:unknown");
        assert!(account_key("ann@example.com").starts_with("acct:"));
        assert!(!account_key("ann@example.com").contains("ann"));
    }
}
