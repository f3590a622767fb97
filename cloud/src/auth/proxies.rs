//! Who the client is behind a reverse proxy: `trusted_proxies` (CIDRs, `VIGIE_TRUSTED_PROXIES`)
//! names the proxies whose `X-Forwarded-For` is believed. The client is the rightmost hop of that
//! header that is not a trusted proxy; a request whose TCP peer is not trusted is its own client
//! (its header is ignored, so nobody can pick their address by sending one). Pure: no IO.
//!
//! Throttling and lockouts count per [`client_key`]: an IPv4 address, or the /64 of an IPv6 one (a
//! single host usually has a whole /64).

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// A CIDR block such as `10.0.0.0/8` or `fd00::/64` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A CIDR that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CIDR block: expected ADDRESS/PREFIX, such as 10.0.0.0/8 or fd00::/64")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr {
            network: mask(network, prefix),
            prefix,
        })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & keep).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & keep).into())
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// What failed logins are counted against: the IPv4 address, or the IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty: none (the TCP peer is the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(blocks)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client of a request from TCP peer `peer` carrying these `X-Forwarded-For` values (every
    /// header, in order). A hop that does not parse ends the walk at the proxy that added it.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = canonical(ip);
            if !self.trusted(client) {
                return client;
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|c| c.parse().unwrap()).collect())
    }

    #[test]
    fn cidrs_parse_and_match_their_addresses_only() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.200.3")) && !c.contains(ip("10.2.0.1")));
        assert!(
            c.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped counts as IPv4"
        );
        let v6: Cidr = "fd00:1::/32".parse().unwrap();
        assert!(v6.contains(ip("fd00:1:ffff::1")) && !v6.contains(ip("fd00:2::1")));
        assert!("127.0.0.1"
            .parse::<Cidr>()
            .unwrap()
            .contains(ip("127.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            let err = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("CIDR"), "{err}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_forwarded_hop_that_is_not_a_trusted_proxy() {
        let p = proxies(&["10.0.0.0/8"]);
        let xff = ["203.0.113.9, 198.51.100.7, 10.0.0.2"];
        assert_eq!(
            p.client(ip("10.0.0.1"), xff.into_iter()),
            ip("198.51.100.7")
        );
        // Spread over two headers, with ports.
        let two = ["198.51.100.7:4000", "10.0.0.2"];
        assert_eq!(
            p.client(ip("10.0.0.1"), two.into_iter()),
            ip("198.51.100.7")
        );
        // A peer that is not a proxy is the client, whatever it forwards.
        assert_eq!(p.client(ip("192.0.2.1"), xff.into_iter()), ip("192.0.2.1"));
        // No proxies configured: the peer, always.
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.1"), xff.into_iter()), ip("10.0.0.1"));
        // A trusted proxy without the header, or with garbage: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.1"), std::iter::empty()), ip("10.0.0.1"));
        assert_eq!(
            p.client(ip("10.0.0.1"), ["junk"].into_iter()),
            ip("10.0.0.1")
        );
        assert_eq!(
            p.client(ip("10.0.0.1"), ["[2001:db8::5]:443"].into_iter()),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_slash_64_and_ipv4_per_address() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff::9")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:3::1")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
