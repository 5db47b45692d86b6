//! `/mcp` as a browser may reach it. A web page can make the user's browser post to
//! `/mcp` (an agent token it got hold of, or a local gateway through DNS rebinding), so:
//! a request with an `Origin` header comes from a browser and is refused (403) unless that
//! origin is the public URL's or allow-listed; a request without one is a non-browser
//! client. The `Host` must be one the gateway answers to: by default the public URL's host
//! and loopback, so a rebound name never reaches it.

use crate::error::CallError;
use axum::http::{HeaderMap, HeaderValue, header};

/// Who may reach `/mcp`, resolved once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Doors {
    /// `Host` authorities answered to; None: any.
    hosts: Option<Vec<Authority>>,
    /// Browser origins allowed, normalized (`scheme://host:port`); `*`: any.
    origins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

fn authority(s: &str) -> Option<Authority> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    match s.parse::<axum::http::uri::Authority>() {
        Ok(a) => Some(Authority {
            host: bare(a.host()),
            port: a.port_u16(),
        }),
        // `::1` without brackets is a host, not an authority.
        Err(_) => Some(Authority {
            host: bare(s),
            port: None,
        }),
    }
}

fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `scheme://host:port` with the scheme's default port made explicit (RFC 6454); None
/// for anything that is not a tuple origin (`null`, garbage).
pub fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let a = uri.authority()?;
    let port = a.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    let host = a.host().to_ascii_lowercase();
    Some(format!("{scheme}://{host}:{port}"))
}

/// The hosts every gateway answers to besides its public one.
pub const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "::1"];

impl Doors {
    /// `hosts`: the configured allow-list (empty: the public URL's host plus loopback;
    /// `*`: any). `origins`: allowed browser origins besides the public URL's (`*`: any).
    pub fn new(public_url: Option<&str>, hosts: &[String], origins: &[String]) -> Doors {
        let public_host = public_url
            .and_then(|u| u.parse::<axum::http::Uri>().ok())
            .and_then(|u| u.host().map(bare));
        let hosts = if hosts.iter().any(|h| h.trim() == "*") {
            None
        } else if hosts.is_empty() {
            let mut v: Vec<Authority> = LOOPBACK.iter().filter_map(|h| authority(h)).collect();
            v.extend(public_host.map(|host| Authority { host, port: None }));
            Some(v)
        } else {
            Some(hosts.iter().filter_map(|h| authority(h)).collect())
        };
        let mut allowed: Vec<String> = origins
            .iter()
            .filter_map(|o| match o.trim() {
                "*" => Some("*".to_string()),
                "null" => Some("null".to_string()),
                o => origin_of(o),
            })
            .collect();
        allowed.extend(public_url.and_then(origin_of));
        Doors {
            hosts,
            origins: allowed,
        }
    }

    /// The host names rmcp's own check gets (the same list; empty: any).
    pub fn rmcp_hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .flatten()
            .map(|a| match a.port {
                Some(p) if a.host.contains(':') => format!("[{}]:{p}", a.host),
                Some(p) => format!("{}:{p}", a.host),
                None => a.host.clone(),
            })
            .collect()
    }

    /// Whether a browser page of origin `o` may call `/mcp` (CORS answers it the same way).
    pub fn allows_origin(&self, o: &HeaderValue) -> bool {
        let text = o.to_str().unwrap_or("").trim();
        let norm = if text.eq_ignore_ascii_case("null") {
            Some("null".to_string())
        } else {
            origin_of(text)
        };
        self.origins.iter().any(|a| a == "*") || norm.is_some_and(|n| self.origins.contains(&n))
    }

    /// CORS for browser-based MCP clients: a preflight from an allowed origin is answered
    /// (a refused one gets no `Access-Control-Allow-Origin`, and its request the 403 of
    /// [`Doors::check`]); the client may read the session id and the 401's challenge.
    /// No credentials: the bearer token is the client's, never a cookie.
    pub fn cors(&self) -> tower_http::cors::CorsLayer {
        use axum::http::{HeaderName, Method};
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let doors = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |o, _| doors.allows_origin(o)))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("mcp-session-id"),
                HeaderName::from_static("mcp-protocol-version"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                HeaderName::from_static("mcp-session-id"),
                HeaderName::from_static("mcp-protocol-version"),
            ])
            .max_age(std::time::Duration::from_secs(600))
    }

    /// Refuses a browser origin that is not allowed and a host the gateway does not
    /// answer to.
    pub fn check(&self, h: &HeaderMap) -> Result<(), CallError> {
        if let Some(o) = h.get(header::ORIGIN)
            && !self.allows_origin(o)
        {
            let text = o.to_str().unwrap_or("").trim();
            return Err(CallError::OriginNotAllowed(
                text.chars().take(200).collect(),
            ));
        }
        if let Some(allowed) = &self.hosts {
            let host = h
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .and_then(authority);
            let ok = host.as_ref().is_some_and(|got| {
                allowed
                    .iter()
                    .any(|a| a.host == got.host && a.port.is_none_or(|p| got.port == Some(p)))
            });
            if !ok {
                let shown = h
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                return Err(CallError::HostNotAllowed(shown.chars().take(200).collect()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn browsers_need_an_allowed_origin_and_others_send_none() {
        let d = Doors::new(
            Some("https://tb.example.com"),
            &[],
            &["http://localhost:5173".into()],
        );
        let host = ("host", "tb.example.com");
        assert!(
            d.check(&headers(&[host])).is_ok(),
            "no Origin: not a browser"
        );
        for ok in [
            "https://tb.example.com",
            "https://TB.example.com:443",
            "http://localhost:5173",
        ] {
            assert!(d.check(&headers(&[host, ("origin", ok)])).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://tb.example.com",
            "null",
            "http://localhost:5174",
            "garbage",
        ] {
            let e = d.check(&headers(&[host, ("origin", bad)])).unwrap_err();
            assert!(matches!(e, CallError::OriginNotAllowed(_)), "{bad}: {e}");
        }
        let any = Doors::new(None, &[], &["*".into()]);
        assert!(
            any.check(&headers(&[
                ("host", "localhost"),
                ("origin", "https://x.y")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn hosts_default_to_the_public_host_and_loopback() {
        let d = Doors::new(Some("https://tb.example.com"), &[], &[]);
        for ok in [
            "tb.example.com",
            "tb.example.com:8443",
            "localhost:3000",
            "127.0.0.1:9",
            "[::1]:80",
        ] {
            assert!(d.check(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in ["evil.example", "tb.example.com.evil.example", "10.0.0.1:80"] {
            let e = d.check(&headers(&[("host", bad)])).unwrap_err();
            assert!(matches!(e, CallError::HostNotAllowed(_)), "{bad}: {e}");
        }
        assert!(d.check(&HeaderMap::new()).is_err(), "no Host at all");
        let listed = Doors::new(None, &["a.example:8080".into()], &[]);
        assert!(
            listed
                .check(&headers(&[("host", "a.example:8080")]))
                .is_ok()
        );
        assert!(
            listed
                .check(&headers(&[("host", "a.example:8081")]))
                .is_err()
        );
        assert!(
            listed.check(&headers(&[("host", "localhost")])).is_err(),
            "a list replaces the default"
        );
        let any = Doors::new(None, &["*".into()], &[]);
        assert!(any.check(&headers(&[("host", "whatever")])).is_ok());
        assert!(any.rmcp_hosts().is_empty());
    }
}
