//! The SSRF guard: Toolbelt refuses to connect to loopback, private, link-local, shared
//! and cloud-metadata addresses unless an admin allow-listed them. Enforced where the address is known — in the DNS resolver (so rebinding after
//! a check cannot slip through) and for IP-literal URLs and every redirect hop.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<(IpAddr, u8)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error("bad prefix length in {0}")]
    PrefixLength(String),
    #[error("bad address in {0}")]
    Address(String),
}

/// Why the guard refused an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("refused to connect to {ip}: {why} (an admin can allow-list it)")]
    Address { ip: IpAddr, why: &'static str },
    #[error("the URL has no host")]
    NoHost,
}

impl AllowList {
    /// `"127.0.0.1/32, 10.0.0.0/8"`; bad entries are reported, not ignored.
    pub fn parse(s: &str) -> Result<AllowList, AllowListError> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (ip, len) = match part.split_once('/') {
                Some((ip, len)) => (
                    ip,
                    len.parse::<u8>()
                        .map_err(|_| AllowListError::PrefixLength(part.to_string()))?,
                ),
                None => (part, if part.contains(':') { 128 } else { 32 }),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| AllowListError::Address(part.to_string()))?;
            // `10.0.0.0/33` would match nothing (or panic in a shift): an admin's typo.
            if len > if ip.is_ipv4() { 32 } else { 128 } {
                return Err(AllowListError::PrefixLength(part.to_string()));
            }
            v.push((ip, len));
        }
        Ok(AllowList(v))
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, len)| in_net(ip, *net, *len))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Why an address is refused, if it is.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || o[0] == 0 {
        Some("not a unicast host address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == "fd00:ec2::254".parse::<Ipv6Addr>().expect("literal") {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast host address")
    } else if ip.to_ipv4_mapped().is_some() {
        // ::ffff:a.b.c.d reaches the IPv4 host; spelled this way only to slip past a check.
        Some("an IPv4-mapped address")
    } else if s[..6] == [0; 6] {
        Some("an IPv4-compatible address")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
    {
        // NAT64 (RFC 6052 / 8215): the translator forwards to the embedded IPv4 address.
        Some("a NAT64 address")
    } else if s[0] == 0x2002 {
        Some("a 6to4 address")
    } else if s[0] == 0x2001 && s[1] == 0 {
        Some("a Teredo address")
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub struct Guard {
    pub allow: AllowList,
}

impl Guard {
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        match forbidden(ip) {
            Some(why) if !self.allow.allows(ip) => Err(Refused::Address { ip, why }),
            _ => Ok(()),
        }
    }

    /// For URLs whose host is an IP literal (the resolver never sees those).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refused::NoHost),
        }
    }
}

/// Resolves with the system resolver, then drops every refused address.
pub(crate) struct GuardedResolver(pub(crate) Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut reasons = Vec::new();
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        reasons.push(e);
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                return Err(match reasons.into_iter().next() {
                    Some(refused) => refused.into(),
                    None => format!("{host} did not resolve").into(),
                });
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling of the metadata address a URL parser accepts, and the IPv6 forms
    /// that tunnel to an IPv4 host, are refused even where the plain form would pass.
    #[test]
    fn odd_spellings_and_tunnelled_forms_are_refused() {
        let g = Guard {
            allow: AllowList::default(),
        };
        for url in [
            "http://2852039166/",          // decimal
            "http://0xa9fea9fe/",          // hex
            "http://0251.0376.0251.0376/", // octal
            "http://169.254.43518/",       // a.b.c with a 16-bit last part
            "http://0xa9.254.0xa9.0376/",  // mixed
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:8.8.8.8]/", // mapped: refused whatever it embeds
            "http://[::a9fe:a9fe]/",    // IPv4-compatible
            "http://[64:ff9b::a9fe:a9fe]/", // NAT64
            "http://[64:ff9b:1::808:808]/", // local-use NAT64
            "http://[2002:a9fe:a9fe::1]/", // 6to4
            "http://[2001:0:4136:e378::1]/", // Teredo
        ] {
            let u = reqwest::Url::parse(url).unwrap();
            assert!(g.check_url(&u).is_err(), "{url} was let through");
        }
        let ok = reqwest::Url::parse("http://[2606:4700::1111]/").unwrap();
        assert!(g.check_url(&ok).is_ok());
    }

    #[test]
    fn the_usual_suspects_are_refused_unless_allow_listed() {
        let g = Guard {
            allow: AllowList::default(),
        };
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
        ] {
            assert!(g.check(bad.parse().unwrap()).is_err(), "{bad}");
        }
        for good in ["93.184.216.34", "2606:4700::1111"] {
            assert!(g.check(good.parse().unwrap()).is_ok(), "{good}");
        }
        let g = Guard {
            allow: AllowList::parse("127.0.0.1/32, 10.0.0.0/8").unwrap(),
        };
        assert!(g.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(g.check("10.9.9.9".parse().unwrap()).is_ok());
        assert!(g.check("127.0.0.2".parse().unwrap()).is_err());
        assert!(g.check("169.254.169.254".parse().unwrap()).is_err());
        assert_eq!(
            AllowList::parse("10.0.0.0/33").unwrap_err(),
            AllowListError::PrefixLength("10.0.0.0/33".into())
        );
        assert!(AllowList::parse("::/129").is_err());
        assert_eq!(
            AllowList::parse("nonsense").unwrap_err(),
            AllowListError::Address("nonsense".into())
        );
        assert_eq!(
            AllowList::parse("10.0.0.0/x").unwrap_err(),
            AllowListError::PrefixLength("10.0.0.0/x".into())
        );
        assert_eq!(
            g.check_url(&"http://[::1]/mcp".parse().unwrap()),
            Err(Refused::Address {
                ip: "::1".parse().unwrap(),
                why: "a loopback address"
            })
        );
    }
}
