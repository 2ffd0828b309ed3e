//! Is a target on a local Ethernet segment? The routing table's answer,
//! read from `/proc/net/route` and `/proc/net/ipv6_route` (the main
//! table), with the interface's type, index and MAC address from
//! `/sys/class/net`.
//!
//! A target is on-link when its longest-prefix route (lowest metric among
//! equals) has no gateway, is up and is not a reject route, and its
//! interface is Ethernet (ARPHRD_ETHER, which veth is too). Host discovery
//! uses ARP / Neighbour Discovery for the targets on-link on one interface
//! (`split_segment`), and IP-level probes for the others.
//!
//! `local_addresses` lists the machine's own addresses (a target that is
//! one of them is up without a probe).
//!
//! Invariants: the parsers are pure and total (a malformed line is
//! skipped); nothing here sends a packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::targets::HostSet;
use crate::wire::ethernet::EthernetAddress;

/// A local Ethernet interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: EthernetAddress,
}

/// One route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub v6: bool,
    /// Destination as an integer (IPv4 in the low 32 bits).
    pub dest: u128,
    pub prefix: u8,
    pub gateway: bool,
    pub metric: u32,
    pub iface: String,
    /// Up, and not a reject (unreachable/prohibit/blackhole) route.
    pub usable: bool,
}

const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// Parse `/proc/net/route`.
pub fn parse_v4(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            // Addresses are in network order read as a host (little-endian)
            // number.
            let dest = u32::from_be_bytes(hex(f[1])?.to_le_bytes());
            let gw = hex(f[2])?;
            let flags = hex(f[3])?;
            let metric = f[6].parse().ok()?;
            let mask = u32::from_be_bytes(hex(f[7])?.to_le_bytes());
            Some(Route {
                v6: false,
                dest: u128::from(dest),
                prefix: mask.count_ones() as u8,
                gateway: gw != 0,
                metric,
                iface: f[0].to_string(),
                usable: flags & RTF_UP != 0 && flags & RTF_REJECT == 0,
            })
        })
        .collect()
}

/// Parse `/proc/net/ipv6_route`.
pub fn parse_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dest = u128::from_str_radix(f[0], 16).ok()?;
            let prefix = u8::from_str_radix(f[1], 16).ok()?;
            let gw = u128::from_str_radix(f[4], 16).ok()?;
            let metric = u32::from_str_radix(f[5], 16).ok()?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            Some(Route {
                v6: true,
                dest,
                prefix: prefix.min(128),
                gateway: gw != 0,
                metric,
                iface: f[9].to_string(),
                usable: flags & RTF_UP != 0 && flags & RTF_REJECT == 0,
            })
        })
        .collect()
}

fn to_int(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn matches(r: &Route, v6: bool, x: u128) -> bool {
    if r.v6 != v6 {
        return false;
    }
    let bits: u32 = if v6 { 128 } else { 32 };
    let p = u32::from(r.prefix).min(bits);
    if p == 0 {
        return true;
    }
    let shift = bits - p;
    (x >> shift) == (r.dest >> shift)
}

/// The route `ip` takes: longest prefix, then lowest metric.
pub fn lookup(routes: &[Route], ip: IpAddr) -> Option<&Route> {
    let (v6, x) = to_int(ip);
    routes
        .iter()
        .filter(|r| matches(r, v6, x))
        .max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
}

/// The interface `ip` is on-link through, by `routes`, if any.
pub fn on_link_iface(routes: &[Route], ip: IpAddr) -> Option<&str> {
    let r = lookup(routes, ip)?;
    (r.usable && !r.gateway && r.iface != "lo").then_some(r.iface.as_str())
}

/// Every route of the main table, both families (empty where unreadable).
pub fn routes() -> Vec<Route> {
    let mut v = std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_v4(&t))
        .unwrap_or_default();
    v.extend(
        std::fs::read_to_string("/proc/net/ipv6_route")
            .map(|t| parse_v6(&t))
            .unwrap_or_default(),
    );
    v
}

/// The Ethernet interface named `name`, if it is one.
pub fn link(name: &str) -> Option<Link> {
    if name.contains('/') || name.contains("..") {
        return None;
    }
    let read = |f: &str| std::fs::read_to_string(format!("/sys/class/net/{name}/{f}")).ok();
    if read("type")?.trim() != "1" {
        return None;
    }
    let index = read("ifindex")?.trim().parse().ok()?;
    let mac = parse_mac(read("address")?.trim())?;
    if mac == EthernetAddress([0; 6]) {
        return None;
    }
    Some(Link {
        name: name.to_string(),
        index,
        mac,
    })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(out))
}

/// Most target ranges looked at before giving up on ARP (a target list of
/// scattered addresses is rarely one segment).
const MAX_RANGES: usize = 4096;

/// The targets on one local Ethernet segment: whole ranges whose first
/// and last addresses are on-link through the same Ethernet interface (the
/// first such interface in address order), that interface, and the other
/// targets (routed, or on another segment), which discovery probes at the
/// IP level. None when no target is on a segment (or the set has more than
/// `MAX_RANGES` ranges).
pub fn split_segment(hosts: &HostSet) -> Option<(Link, HostSet, HostSet)> {
    if hosts.ranges().nth(MAX_RANGES).is_some() {
        return None;
    }
    let routes = routes();
    let ip = |v6: bool, x: u128| {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(x))
        } else {
            IpAddr::V4(Ipv4Addr::from(x as u32))
        }
    };
    let iface = hosts.ranges().find_map(|(v6, start, end)| {
        let a = on_link_iface(&routes, ip(v6, start))?;
        (on_link_iface(&routes, ip(v6, end)) == Some(a)).then(|| a.to_string())
    })?;
    let link = link(&iface)?;
    let (on, rest) = hosts.partition(|a, b| {
        on_link_iface(&routes, a) == Some(iface.as_str())
            && on_link_iface(&routes, b) == Some(iface.as_str())
    });
    Some((link, on, rest))
}

/// This machine's own addresses: every address of every interface,
/// loopback included, from `getifaddrs(3)`. Host discovery calls such a
/// target up without a probe, as nmap does (`localhost-response`): an ARP
/// request for one's own address draws no reply.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its type.
        let ip = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t000013C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        veth1\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        veth1\t000112C6\t020012C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        bad line\n";
    const V6: &str = "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     veth1\n\
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n";

    #[test]
    fn on_link_follows_the_longest_prefix_without_gateway() {
        let mut r = parse_v4(V4);
        r.extend(parse_v6(V6));
        assert_eq!(r.len(), 6);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(on_link_iface(&r, ip("198.18.0.77")), Some("veth1"));
        assert_eq!(on_link_iface(&r, ip("198.19.0.9")), Some("eth0"));
        // Via a gateway, or the default route: not on-link.
        assert_eq!(on_link_iface(&r, ip("198.18.1.5")), None);
        assert_eq!(on_link_iface(&r, ip("198.19.7.1")), None);
        assert_eq!(on_link_iface(&r, ip("2001:db8::9")), Some("veth1"));
        assert_eq!(on_link_iface(&r, ip("2001:db8:1::9")), None);
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("02:00:0a:FF:00:01"),
            Some(EthernetAddress([2, 0, 10, 255, 0, 1]))
        );
        assert_eq!(parse_mac("02:00:0a:ff:00"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:02"), None);
        assert_eq!(parse_mac("zz:00:0a:ff:00:01"), None);
    }
}
