//! Which address a connection comes from. Behind a load balancer every
//! socket's peer is the balancer, so the per-address connection limit would
//! lump all users together. Proxies named with `--trusted-proxy` are
//! believed about `X-Forwarded-For`; nobody else is, since any client can
//! send that header.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed; empty (the default)
/// means the header is ignored.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From networks (`10.0.0.0/8`) and single addresses (`10.1.2.3`);
    /// empty entries (an empty variable, a trailing comma) are skipped.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| s.as_ref().trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(canonical_net)
                    .map_err(|_| format!("{s:?} is neither an address nor a network (a.b.c.d/n)"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// True when connections from `peer` come through a trusted proxy.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        self.trusts(canonical(peer))
    }

    /// `ip` is already [`canonical`].
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the socket's peer, or, while the hop in hand is
    /// a trusted proxy, the address that proxy appended to `X-Forwarded-For`
    /// (read right to left, every header of that name in order; an entry may
    /// carry a port). Stops at the first untrusted hop, and at anything that
    /// is not an address, keeping the last hop that was one.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        // Split the raw bytes: a value with a non-ASCII byte must stop the
        // walk at that entry, not vanish and let an earlier header speak.
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','));
        for hop in hops.rev() {
            match std::str::from_utf8(hop).ok().and_then(parse_hop) {
                Some(ip) => client = canonical(ip),
                None => break,
            }
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// A network written in IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`) as the
/// IPv4 network it is, since addresses are compared as plain IPv4.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

/// IPv4 seen through an IPv6 socket (`::ffff:a.b.c.d`) as plain IPv4, so one
/// client has one address however it arrived.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("10.0.0.5"), &headers(&["203.0.113.7"])),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let h = headers(&["203.0.113.7"]);
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.7"));
        // An untrusted peer's header is a claim anyone can make.
        assert_eq!(t.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn hops_are_read_right_to_left_up_to_the_first_untrusted_one() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1"]).unwrap();
        // The client forged the first entry; 198.51.100.9 is who reached our
        // edge proxy (192.0.2.1), which reached the balancer (10.0.0.5).
        let h = headers(&["1.2.3.4, 198.51.100.9", "192.0.2.1"]);
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("198.51.100.9"));
        // A hop that is not an address ends the walk at the last good one.
        let h = headers(&["198.51.100.9, garbage"]);
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("10.0.0.5"));
        // Everything trusted: the leftmost hop.
        let h = headers(&["10.9.9.9, 192.0.2.1"]);
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn hops_may_carry_ports() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let h = headers(&["203.0.113.7:51000"]);
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.7"));
        let h = headers(&["[2001:db8::7]:443"]);
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("2001:db8::7"));
    }

    #[test]
    fn mapped_ipv4_is_plain_ipv4() {
        let t = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        let h = headers(&["::ffff:203.0.113.7"]);
        assert_eq!(t.client_ip(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.7"));
        let t = TrustedProxies::parse(&["::ffff:10.0.0.0/104"]).unwrap();
        assert_eq!(t.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.7"));
    }

    #[test]
    fn a_value_that_is_not_text_stops_the_walk() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut h = headers(&["7.7.7.7"]);
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xc3\xa9, 198.51.100.9").unwrap(),
        );
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("198.51.100.9"));
        let h = {
            let mut h = HeaderMap::new();
            h.append("x-forwarded-for", HeaderValue::from_static("7.7.7.7"));
            h.append(
                "x-forwarded-for",
                HeaderValue::from_bytes(b"10.2.2.2, \xff").unwrap(),
            );
            h
        };
        assert_eq!(t.client_ip(ip("10.0.0.5"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn bad_entries_are_refused_with_the_culprit() {
        let err = TrustedProxies::parse(&["10.0.0.0/8", "10.0.0.0/33"]).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse(&["fd00::/8", "::1"]).is_ok());
        // An empty variable or a trailing comma names nothing.
        assert_eq!(TrustedProxies::parse(&["", " "]).unwrap().0, vec![]);
        assert_eq!(TrustedProxies::parse(&["10.0.0.1", ""]).unwrap().0.len(), 1);
    }
}
