//! Where a DTMA says it can be reached. A DTMA reports its own `advertise_url` at join and
//! on every heartbeat, and the control plane and the gateway then call it (deploys, logs,
//! stats, tool calls) and hand the replies to users — so a member who joins a toolbox with
//! `advertise_url=http://169.254.169.254/…` must not turn the control plane into a proxy
//! for the cloud's metadata service. The URL is checked when it is reported (a plain base:
//! http(s), a host, no credentials, no query or fragment, an IP literal the guard accepts)
//! and every connection to it goes through the same guard in the resolver, so a name that
//! resolves (or rebinds) to a refused address is refused at connect time.
//!
//! Private ranges are refused unless an admin lists them (`TOOLBELT_DTMA_ALLOW`); loopback
//! is allowed by default because the local toolbox `toolbelt up` starts lives there.

use crate::ssrf::{AllowList, Guard, Refused};
use std::sync::Arc;

/// The guard DTMA addresses go through.
#[derive(Debug, Clone)]
pub struct DtmaAddresses {
    guard: Arc<Guard>,
    /// Plain `http://` DTMAs refused (`TOOLBELT_DTMA_REQUIRE_TLS`): at join, at every
    /// heartbeat and before every call. Off by default, so DTMAs joined on plain HTTP
    /// before TLS keep working after an upgrade until an admin turns it on.
    pub require_tls: bool,
}

impl Default for DtmaAddresses {
    fn default() -> Self {
        DtmaAddresses::allowing(AllowList::parse(DEFAULT_ALLOW).expect("a valid literal"))
    }
}

/// Loopback only: the local toolbox, and DTMAs on the control plane's own host.
pub const DEFAULT_ALLOW: &str = "127.0.0.0/8, ::1/128";

/// Why an `advertise_url` is refused (the message reaches the DTMA's operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAdvertiseUrl {
    #[error("is not a URL: {0}")]
    Parse(String),
    #[error("must be http:// or https://")]
    Scheme,
    #[error("must have a host")]
    NoHost,
    #[error("must not carry credentials")]
    Credentials,
    #[error("must be a base URL without a query or fragment")]
    QueryOrFragment,
    #[error("{0}; set TOOLBELT_DTMA_ALLOW to the DTMAs' network")]
    Refused(Refused),
    #[error(
        "is plain http://, and this control plane requires TLS of its DTMAs (TOOLBELT_DTMA_REQUIRE_TLS): serve the DTMA with --tls-cert/--tls-key and join it again"
    )]
    PlainHttp,
    #[error(
        "is plain http://, but this DTMA joined with a pinned TLS key: a downgrade is refused (join it again to serve plain HTTP)"
    )]
    Downgrade,
}

impl DtmaAddresses {
    pub fn allowing(allow: AllowList) -> DtmaAddresses {
        DtmaAddresses {
            guard: Arc::new(Guard { allow }),
            require_tls: false,
        }
    }

    /// [`DtmaAddresses::check`], and the channel's TLS rules: no plain `http://` when TLS
    /// is required, nor for a DTMA whose key is pinned (whoever reports a plain address
    /// for it wants the calls out of TLS).
    pub fn check_channel(&self, raw: &str, pinned: bool) -> Result<url::Url, BadAdvertiseUrl> {
        let url = self.check(raw)?;
        if url.scheme() == "http" {
            if pinned {
                return Err(BadAdvertiseUrl::Downgrade);
            }
            if self.require_tls {
                return Err(BadAdvertiseUrl::PlainHttp);
            }
        }
        Ok(url)
    }

    /// The URL as the control plane will store and call it (normalised: `http://2852039166`
    /// is `http://169.254.169.254/`, and refused as such).
    pub fn check(&self, raw: &str) -> Result<url::Url, BadAdvertiseUrl> {
        let url = url::Url::parse(raw).map_err(|e| BadAdvertiseUrl::Parse(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BadAdvertiseUrl::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BadAdvertiseUrl::Credentials);
        }
        // `?` or `#` with nothing after them still count: they are how a crafted URL makes
        // the control plane's own path part of someone else's query.
        if url.query().is_some() || url.fragment().is_some() {
            return Err(BadAdvertiseUrl::QueryOrFragment);
        }
        match self.guard.check_url(&url) {
            Ok(()) => Ok(url),
            Err(Refused::NoHost) => Err(BadAdvertiseUrl::NoHost),
            Err(e) => Err(BadAdvertiseUrl::Refused(e)),
        }
    }

    pub(crate) fn guard(&self) -> Arc<Guard> {
        self.guard.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_private_and_crafted_urls_are_refused_loopback_is_not() {
        let d = DtmaAddresses::default();
        for ok in [
            "http://127.0.0.1:7700",
            "https://localhost:7700/",
            "http://[::1]:7700/base",
            "https://dtma.example.com:7700",
        ] {
            assert!(d.check(ok).is_ok(), "{ok}");
        }
        let refused = |u: &str| d.check(u).unwrap_err();
        assert!(matches!(
            refused("http://169.254.169.254/latest/meta-data/"),
            BadAdvertiseUrl::Refused(_)
        ));
        assert!(matches!(
            refused("http://2852039166/"),
            BadAdvertiseUrl::Refused(_)
        ));
        assert!(matches!(
            refused("http://10.0.0.5:7700"),
            BadAdvertiseUrl::Refused(_)
        ));
        assert!(matches!(
            refused("http://[::ffff:127.0.0.1]:7700"),
            BadAdvertiseUrl::Refused(_)
        ));
        assert_eq!(
            refused("http://127.0.0.1:7700/x?"),
            BadAdvertiseUrl::QueryOrFragment
        );
        assert_eq!(
            refused("http://127.0.0.1:7700/#"),
            BadAdvertiseUrl::QueryOrFragment
        );
        assert_eq!(
            refused("http://u:p@127.0.0.1/"),
            BadAdvertiseUrl::Credentials
        );
        assert_eq!(refused("file:///etc/passwd"), BadAdvertiseUrl::Scheme);
        assert!(matches!(refused("not a url"), BadAdvertiseUrl::Parse(_)));
    }

    #[test]
    fn plain_http_is_refused_when_tls_is_required_or_the_key_is_pinned() {
        let mut d = DtmaAddresses::default();
        assert!(d.check_channel("http://127.0.0.1:7700", false).is_ok());
        assert_eq!(
            d.check_channel("http://127.0.0.1:7700", true),
            Err(BadAdvertiseUrl::Downgrade)
        );
        assert!(d.check_channel("https://127.0.0.1:7700", true).is_ok());
        d.require_tls = true;
        let e = d.check_channel("http://127.0.0.1:7700", false).unwrap_err();
        assert_eq!(e, BadAdvertiseUrl::PlainHttp);
        assert!(e.to_string().contains("TOOLBELT_DTMA_REQUIRE_TLS"), "{e}");
        assert!(d.check_channel("https://127.0.0.1:7700", false).is_ok());
        // The address rules still come first.
        assert!(matches!(
            d.check_channel("https://169.254.169.254/", true),
            Err(BadAdvertiseUrl::Refused(_))
        ));
    }

    #[test]
    fn an_admin_allow_list_admits_the_dtmas_network() {
        let d = DtmaAddresses::allowing(AllowList::parse("10.0.0.0/8").unwrap());
        assert!(d.check("http://10.0.0.5:7700").is_ok());
        // Replacing the default drops loopback, and metadata stays refused.
        assert!(d.check("http://127.0.0.1:7700").is_err());
        assert!(d.check("http://169.254.169.254/").is_err());
    }
}
