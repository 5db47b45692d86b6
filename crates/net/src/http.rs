//! Every outbound HTTP client of the binary is built here, so they all speak TLS the same
//! way: rustls with the `ring` provider (no C toolchain beyond `cc`, quick to build), the
//! platform's trust store, plus the private CAs of `TOOLBELT_CA_FILE`.
//!
//! [`Outbound`] is that configuration; [`Outbound::builder`] gives a reqwest builder the
//! caller finishes (timeouts, pools), [`Outbound::guarded`] one behind the SSRF guard.
//! [`Outbound::check_scheme`] refuses plain `http://` to anything but loopback unless an
//! admin allowed it (`TOOLBELT_ALLOW_PLAIN_HTTP`): tokens and tool calls are not sent in
//! clear by accident. [`describe`] renders a reqwest error with its causes, so "invalid
//! peer certificate: UnknownIssuer" reaches the API instead of "error sending request".
//!
//! Building a reqwest client anywhere else is refused by clippy (`clippy.toml`): a client
//! built before the crypto provider is installed would panic.

use crate::dtma_address::DtmaAddresses;
use crate::ssrf::Guard;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

/// How outbound clients verify servers and which schemes they may use.
#[derive(Clone, Default)]
pub struct Outbound {
    /// Trust anchors added to the platform's (parsed once, from `TOOLBELT_CA_FILE`).
    extra_roots: Arc<Vec<reqwest::Certificate>>,
    ca_file: Option<PathBuf>,
    /// `http://` to non-loopback hosts allowed (`TOOLBELT_ALLOW_PLAIN_HTTP`).
    pub allow_plain_http: bool,
    /// Where DTMAs may be (`TOOLBELT_DTMA_ALLOW`): checked when a DTMA reports its
    /// address and on every connection to it ([`Outbound::dtma_builder`]).
    pub dtma: DtmaAddresses,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("ca_file", &self.ca_file)
            .field("extra_roots", &self.extra_roots.len())
            .field("allow_plain_http", &self.allow_plain_http)
            .field("dtma", &self.dtma)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not PEM certificates: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path} holds no certificate")]
    Empty { path: PathBuf },
}

/// A URL refused because it would go out in clear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused plain http:// to {host} for {what}: use https://, or allow plain HTTP explicitly (TOOLBELT_ALLOW_PLAIN_HTTP=1)"
)]
pub struct PlainHttp {
    pub host: String,
    pub what: String,
}

impl Outbound {
    /// The platform's roots plus every certificate of a PEM file (one or more).
    pub fn with_ca_file(path: &Path) -> Result<Outbound, CaFileError> {
        let pem = std::fs::read(path).map_err(|source| CaFileError::Read {
            path: path.into(),
            source,
        })?;
        let mut o = Outbound::with_ca_pem(&pem).map_err(|e| match e {
            CaPem::Empty => CaFileError::Empty { path: path.into() },
            CaPem::Parse(reason) => CaFileError::Parse {
                path: path.into(),
                reason,
            },
        })?;
        o.ca_file = Some(path.into());
        Ok(o)
    }

    /// [`Outbound::with_ca_file`] from PEM text (tests hand over a generated CA).
    pub fn with_ca_pem(pem: &[u8]) -> Result<Outbound, CaPem> {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| CaPem::Parse(describe(&e)))?;
        if certs.is_empty() {
            return Err(CaPem::Empty);
        }
        Ok(Outbound {
            extra_roots: Arc::new(certs),
            ..Outbound::default()
        })
    }

    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// A reqwest builder with this TLS configuration; the caller adds timeouts and pools.
    #[allow(clippy::disallowed_methods)] // the one place clients are built
    pub fn builder(&self) -> reqwest::ClientBuilder {
        install_provider();
        let b = reqwest::Client::builder().tcp_nodelay(true);
        if self.extra_roots.is_empty() {
            b
        } else {
            b.tls_certs_merge(self.extra_roots.iter().cloned())
        }
    }

    /// A builder for clients that reach addresses users chose (remote servers): every
    /// address through the guard — in the resolver (so DNS rebinding cannot slip past a
    /// check) and at every redirect hop. IP-literal URLs the resolver never sees: check
    /// them with [`Guard::check_url`] before the request.
    pub fn guarded(&self, guard: Arc<Guard>) -> reqwest::ClientBuilder {
        let g = guard.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match g.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => {
                    tracing::warn!(url = %attempt.url(), reason = %e, "redirect refused by the SSRF guard");
                    attempt.error(e)
                }
            }
        });
        self.builder()
            .dns_resolver(Arc::new(crate::ssrf::GuardedResolver(guard)))
            .redirect(redirects)
    }

    /// A builder for clients that call DTMAs: [`Outbound::guarded`] with the DTMA guard, so
    /// a DTMA's name cannot resolve to an address its reported URL would have been refused for.
    pub fn dtma_builder(&self) -> reqwest::ClientBuilder {
        self.guarded(self.dtma.guard())
    }

    /// Refuses `http://` to a host that is not loopback, unless allowed. `what` names the
    /// thing in the error ("the OAuth provider's token_endpoint", "remote server notes").
    pub fn check_scheme(&self, url: &url::Url, what: &str) -> Result<(), PlainHttp> {
        if url.scheme() != "http" || self.allow_plain_http || is_loopback(url) {
            return Ok(());
        }
        Err(PlainHttp {
            host: url.host_str().unwrap_or("").to_string(),
            what: what.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaPem {
    #[error("not PEM certificates: {0}")]
    Parse(String),
    #[error("no certificate in it")]
    Empty,
}

/// `localhost` (and its subdomains, RFC 6761) and loopback IP literals: traffic that never
/// leaves the host.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// rustls needs one process-wide crypto provider before any client is built; `ring`
/// (reqwest's own default, aws-lc-rs, would need a large C build). Idempotent; a provider
/// installed earlier by someone else is kept.
pub(crate) fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A plain client: platform roots, no private CA (the CLI, tests, benchmarks).
pub fn client() -> reqwest::Client {
    builder().build().expect("an HTTP client builds")
}

/// [`client`]'s builder.
pub fn builder() -> reqwest::ClientBuilder {
    Outbound::default().builder()
}

/// An error with its causes, "a: b: c" — the cause (a certificate the roots do not
/// vouch for, a refused connection) is several levels below reqwest's own message.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        // hyper and reqwest sometimes repeat their source in their own message.
        if !s.ends_with(&next) {
            s = format!("{s}: {next}");
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_goes_only_to_loopback_unless_allowed() {
        let o = Outbound::default();
        for ok in [
            "https://192.0.2.1/x",
            "http://127.0.0.1:9/x",
            "http://127.1.2.3/x",
            "http://[::1]/x",
            "http://localhost:8080/x",
            "http://a.localhost/x",
        ] {
            assert_eq!(o.check_scheme(&ok.parse().unwrap(), "t"), Ok(()), "{ok}");
        }
        for bad in [
            "http://192.0.2.1/x",
            "http://10.0.0.1/x",
            "http://example.com/x",
            "http://localhost.example.com/x",
        ] {
            let e = o.check_scheme(&bad.parse().unwrap(), "t").unwrap_err();
            assert!(e.to_string().contains("TOOLBELT_ALLOW_PLAIN_HTTP"), "{e}");
        }
        let allowed = Outbound {
            allow_plain_http: true,
            ..Outbound::default()
        };
        assert_eq!(
            allowed.check_scheme(&"http://192.0.2.1/x".parse().unwrap(), "t"),
            Ok(())
        );
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("tb-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            Outbound::with_ca_file(&empty),
            Err(CaFileError::Empty { .. })
        ));
        assert!(matches!(
            Outbound::with_ca_file(&dir.join("missing.pem")),
            Err(CaFileError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
