//! Which address a request comes from, for login throttling and the audit of failures.
//!
//! The socket's peer (axum `ConnectInfo`, which the app serves with), unless that peer is a
//! trusted proxy (`TOOLBELT_TRUSTED_PROXIES`): then `X-Forwarded-For` is read from the
//! right — each proxy appends the address it received from — and the first address that is
//! not itself a trusted proxy is the client ("rightmost untrusted"). Entries left of it were
//! written by the client and are never believed. Without trusted proxies the header is
//! ignored, so a client cannot pick the address it is throttled as.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or a CIDR (10.0.0.0/8, 2001:db8::/32, 127.0.0.1)")]
pub struct BadCidr(pub String);

impl TrustedProxies {
    /// `CIDR[,CIDR…]`; a bare address is its own /32 or /128.
    pub fn parse(s: &str) -> Result<TrustedProxies, BadCidr> {
        let nets = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| BadCidr(p.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// The client's address: see the module doc. `None` when the request did not come over a
/// socket (an in-process call).
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut hop = peer?.to_canonical();
    if !trusted.contains(hop) {
        return Some(hop);
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        // A trusted proxy wrote this entry; one that does not parse leaves the client
        // unknown, and the last trusted hop stands for it (never a client-chosen value).
        let Some(ip) = parse_entry(entry) else {
            return Some(hop);
        };
        if !trusted.contains(ip) {
            return Some(ip);
        }
        hop = ip;
    }
    Some(hop)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The calling client's address, as [`client_ip`] finds it (an extractor for handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Infallible> {
        if let Some(known) = parts.extensions.get::<ClientIp>() {
            return Ok(*known);
        }
        Ok(ClientIp::of(parts, &st.config.trusted_proxies))
    }
}

impl ClientIp {
    /// From a request's parts (its `ConnectInfo` and headers).
    pub fn of(parts: &Parts, trusted: &TrustedProxies) -> ClientIp {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        ClientIp(client_ip(peer, &parts.headers, trusted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let h = xff(&["203.0.113.9"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.5")), &h, &none),
            Some(ip("10.0.0.5"))
        );
        assert_eq!(client_ip(None, &h, &none), None, "no socket, no address");
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_then_the_rightmost_untrusted_entry_wins() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        // The client spoofed 1.1.1.1; the edge proxy 10.0.0.2 appended what it saw.
        let h = xff(&["1.1.1.1, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &t),
            Some(ip("198.51.100.7"))
        );
        // An untrusted peer sending the same header is itself the client.
        assert_eq!(
            client_ip(Some(ip("198.51.100.8")), &h, &t),
            Some(ip("198.51.100.8"))
        );
        // Every hop trusted: the leftmost one.
        let h = xff(&["192.168.1.1, 10.1.1.1"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &t),
            Some(ip("192.168.1.1"))
        );
        // No header from a trusted peer: the peer.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &HeaderMap::new(), &t),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn ports_brackets_mapped_addresses_and_garbage() {
        let t = TrustedProxies::parse("127.0.0.1/32").unwrap();
        let peer = Some(ip("::ffff:127.0.0.1"));
        assert_eq!(
            client_ip(peer, &xff(&["[2001:db8::1]:443"]), &t),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            client_ip(peer, &xff(&["198.51.100.7:5000"]), &t),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(peer, &xff(&["::ffff:198.51.100.7"]), &t),
            Some(ip("198.51.100.7"))
        );
        // Garbage written by the trusted proxy's own client: the proxy stands for it.
        assert_eq!(
            client_ip(peer, &xff(&["198.51.100.7, not-an-ip"]), &t),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn cidrs_parse_or_are_refused_by_value() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let t = TrustedProxies::parse("10.1.2.3/8,::1").unwrap();
        assert!(t.contains(ip("10.200.0.1")) && t.contains(ip("::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, nope").unwrap_err(),
            BadCidr("nope".into())
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
