//! Target and port specifications: parsing, excludes, and index → address.
//!
//! Invariants: a `HostSet` is a sorted list of disjoint inclusive address
//! ranges with excludes already removed; it never holds one entry per
//! address or per (host, port), so `get(i)` is a binary search. Parsers
//! return a `SpecError` naming the offending token; they never panic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnetwork::IpNetwork;

use crate::probe::Proto;
use crate::services;

/// A user error in a target or port spec; the message names the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn err<T>(msg: String) -> Result<T, SpecError> {
    Err(SpecError(msg))
}

/// An inclusive range of addresses of one family, as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    v6: bool,
    start: u128,
    end: u128,
}

fn to_int(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn from_int(v6: bool, x: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(x))
    } else {
        IpAddr::V4(Ipv4Addr::from(x as u32))
    }
}

/// The set of hosts to scan.
#[derive(Clone, Debug, Default)]
pub struct HostSet {
    ranges: Vec<Range>,
    /// `starts[i]`: index of the first address of `ranges[i]`.
    starts: Vec<u128>,
    len: u128,
}

fn normalize(mut rs: Vec<Range>) -> Vec<Range> {
    rs.sort();
    let mut out: Vec<Range> = Vec::with_capacity(rs.len());
    for r in rs {
        match out.last_mut() {
            Some(last) if last.v6 == r.v6 && r.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

fn subtract(include: Vec<Range>, exclude: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    for r in include {
        let mut pieces = vec![r];
        for x in exclude.iter().filter(|x| x.v6 == r.v6) {
            let mut next = Vec::new();
            for p in pieces {
                if x.end < p.start || x.start > p.end {
                    next.push(p);
                    continue;
                }
                if x.start > p.start {
                    next.push(Range {
                        end: x.start - 1,
                        ..p
                    });
                }
                if x.end < p.end {
                    next.push(Range {
                        start: x.end + 1,
                        ..p
                    });
                }
            }
            pieces = next;
        }
        out.extend(pieces);
    }
    out
}

impl HostSet {
    fn from_ranges(include: Vec<Range>, exclude: Vec<Range>) -> Self {
        let ranges = subtract(normalize(include), &normalize(exclude));
        let mut starts = Vec::with_capacity(ranges.len());
        let mut len: u128 = 0;
        for r in &ranges {
            starts.push(len);
            len = len.saturating_add(r.end - r.start + 1);
        }
        HostSet {
            ranges,
            starts,
            len,
        }
    }

    /// Number of addresses.
    pub fn len(&self) -> u128 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th address in ascending order (`i < len`).
    pub fn get(&self, i: u128) -> Option<IpAddr> {
        if i >= self.len {
            return None;
        }
        let k = self.starts.partition_point(|&s| s <= i) - 1;
        let r = self.ranges[k];
        Some(from_int(r.v6, r.start + (i - self.starts[k])))
    }

    pub fn has_v6(&self) -> bool {
        self.ranges.iter().any(|r| r.v6)
    }
}

/// Parse target tokens (addresses, CIDR blocks, nmap octet ranges,
/// hostnames) and exclude tokens into a `HostSet`. `resolve` turns a
/// hostname into addresses (injected so tests need no DNS).
pub fn parse_hosts(
    targets: &[String],
    excludes: &[String],
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<HostSet, SpecError> {
    let mut inc = Vec::new();
    for t in targets {
        parse_host_token(t, resolve, &mut inc)?;
    }
    let mut exc = Vec::new();
    for t in excludes {
        parse_host_token(t, resolve, &mut exc)?;
    }
    Ok(HostSet::from_ranges(inc, exc))
}

/// Split a list of tokens on commas and whitespace (for `--exclude` and
/// files given with `-iL`); `#` starts a comment that runs to the end of
/// its line.
pub fn split_tokens(s: &str) -> Vec<String> {
    s.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn looks_numeric_v4(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | ',' | '*'))
}

fn parse_host_token(
    tok: &str,
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
    out: &mut Vec<Range>,
) -> Result<(), SpecError> {
    if let Ok(ip) = IpAddr::from_str(tok) {
        let (v6, x) = to_int(ip);
        out.push(Range {
            v6,
            start: x,
            end: x,
        });
        return Ok(());
    }
    if let Some((host, prefix)) = tok.split_once('/') {
        let prefix: u8 = match prefix.parse() {
            Ok(p) => p,
            Err(_) => return err(format!("invalid CIDR prefix in target '{tok}'")),
        };
        let ip = match IpAddr::from_str(host) {
            Ok(ip) => ip,
            Err(_) if looks_numeric_v4(host) => return err(format!("invalid target '{tok}'")),
            Err(_) => first_address(host, tok, resolve)?,
        };
        let net = match IpNetwork::new(ip, prefix) {
            Ok(n) => n,
            Err(_) => return err(format!("invalid CIDR prefix in target '{tok}'")),
        };
        let (v6, start) = to_int(net.network());
        let (_, end) = to_int(net.broadcast_or_last());
        out.push(Range { v6, start, end });
        return Ok(());
    }
    if looks_numeric_v4(tok) {
        return octet_ranges(tok, out);
    }
    if tok.contains(':') {
        return err(format!("invalid target '{tok}'"));
    }
    let ip = first_address(tok, tok, resolve)?;
    let (v6, x) = to_int(ip);
    out.push(Range {
        v6,
        start: x,
        end: x,
    });
    Ok(())
}

trait LastAddr {
    fn broadcast_or_last(&self) -> IpAddr;
}

impl LastAddr for IpNetwork {
    fn broadcast_or_last(&self) -> IpAddr {
        match self {
            IpNetwork::V4(n) => IpAddr::V4(n.broadcast()),
            IpNetwork::V6(n) => {
                let host_bits = 128 - u32::from(n.prefix());
                let base = u128::from(n.network());
                let last = if host_bits >= 128 {
                    u128::MAX
                } else {
                    base | ((1u128 << host_bits) - 1)
                };
                IpAddr::V6(Ipv6Addr::from(last))
            }
        }
    }
}

fn first_address(
    name: &str,
    tok: &str,
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<IpAddr, SpecError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return err(format!("invalid target '{tok}'"));
    }
    match resolve(name) {
        Ok(addrs) => {
            // Prefer IPv4, as nmap does without -6.
            let pick = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied();
            pick.ok_or_else(|| SpecError(format!("failed to resolve target '{tok}'")))
        }
        Err(e) => err(format!("failed to resolve target '{tok}': {e}")),
    }
}

/// nmap octet ranges: `198.18.0.1-20`, `198.18.0-1.1-5`, `198.18.0.*`,
/// `198.18.0.1,3,5`.
fn octet_ranges(tok: &str, out: &mut Vec<Range>) -> Result<(), SpecError> {
    let parts: Vec<&str> = tok.split('.').collect();
    if parts.len() != 4 {
        return err(format!("invalid target '{tok}'"));
    }
    let mut sets: Vec<Vec<(u8, u8)>> = Vec::with_capacity(4);
    for p in parts {
        let mut items = Vec::new();
        for item in p.split(',') {
            let (a, b) = if item == "*" {
                (Some(0), Some(255))
            } else if let Some((a, b)) = item.split_once('-') {
                let a = if a.is_empty() {
                    Some(0)
                } else {
                    a.parse::<u8>().ok()
                };
                let b = if b.is_empty() {
                    Some(255)
                } else {
                    b.parse::<u8>().ok()
                };
                (a, b)
            } else {
                let v = item.parse::<u8>().ok();
                (v, v)
            };
            match (a, b) {
                (Some(a), Some(b)) if a <= b => items.push((a, b)),
                _ => return err(format!("invalid target '{tok}'")),
            }
        }
        sets.push(items);
    }
    // Expand the first three octets; the last octet's runs stay ranges.
    let count: usize = sets[..3]
        .iter()
        .map(|s| s.iter().map(|(a, b)| usize::from(b - a) + 1).sum::<usize>())
        .product();
    if count.saturating_mul(sets[3].len()) > 1 << 24 {
        return err(format!(
            "target '{tok}' expands to too many ranges; use CIDR notation"
        ));
    }
    let expand = |s: &Vec<(u8, u8)>| -> Vec<u8> { s.iter().flat_map(|&(a, b)| a..=b).collect() };
    for a in expand(&sets[0]) {
        for b in expand(&sets[1]) {
            for c in expand(&sets[2]) {
                for &(d0, d1) in &sets[3] {
                    let base = u32::from_be_bytes([a, b, c, 0]);
                    out.push(Range {
                        v6: false,
                        start: u128::from(base | u32::from(d0)),
                        end: u128::from(base | u32::from(d1)),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Ports to scan per protocol, sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
}

impl PortList {
    pub fn get(&self, proto: Proto) -> &[u16] {
        match proto {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
        }
    }

    fn get_mut(&mut self, proto: Proto) -> &mut Vec<u16> {
        match proto {
            Proto::Tcp => &mut self.tcp,
            Proto::Udp => &mut self.udp,
        }
    }

    fn finish(mut self) -> Self {
        for v in [&mut self.tcp, &mut self.udp] {
            v.sort_unstable();
            v.dedup();
        }
        self
    }

    /// Remove every port of `other` from `self`.
    pub fn subtract(&mut self, other: &PortList) {
        for p in [Proto::Tcp, Proto::Udp] {
            let ex = other.get(p);
            self.get_mut(p).retain(|x| ex.binary_search(x).is_err());
        }
    }

    /// The `n` most common ports for each protocol in `protos`.
    pub fn top(n: usize, protos: &[Proto]) -> Self {
        let mut l = PortList::default();
        for &p in protos {
            let top = services::top_ports(p);
            l.get_mut(p).extend_from_slice(&top[..n.min(top.len())]);
        }
        l.finish()
    }

    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }
}

/// Parse an nmap port spec (`22,80,8000-8100`, `-`, `1-`, `ssh,http`,
/// `T:1-1024,U:53,161`). Unprefixed items apply to every protocol in
/// `protos` (the scan types asked for); prefixed ones only to theirs.
pub fn parse_ports(spec: &str, protos: &[Proto]) -> Result<PortList, SpecError> {
    let mut list = PortList::default();
    let mut current: Vec<Proto> = protos.to_vec();
    if spec.trim().is_empty() {
        return err("empty port specification".to_string());
    }
    for raw in spec.split(',') {
        let mut item = raw.trim();
        for (prefix, proto) in [("T:", Proto::Tcp), ("U:", Proto::Udp)] {
            if let Some(rest) = item
                .strip_prefix(prefix)
                .or_else(|| item.strip_prefix(&prefix.to_lowercase()))
            {
                current = vec![proto];
                item = rest;
            }
        }
        if item.is_empty() {
            return err(format!("invalid port '{raw}'"));
        }
        let range = parse_port_range(item);
        for &proto in &current {
            match range {
                Some((a, b)) => list.get_mut(proto).extend(a..=b),
                None => {
                    let ports = services::ports_by_name(proto, item);
                    let any_name = !services::ports_by_name(Proto::Tcp, item).is_empty()
                        || !services::ports_by_name(Proto::Udp, item).is_empty();
                    if ports.is_empty() && !any_name {
                        return err(format!("invalid port '{raw}'"));
                    }
                    list.get_mut(proto).extend(ports);
                }
            }
        }
    }
    Ok(list.finish())
}

/// `22`, `1-100`, `-100` (1-100), `100-` (100-65535), `-` (1-65535).
fn parse_port_range(item: &str) -> Option<(u16, u16)> {
    if !item.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return None;
    }
    let port = |s: &str, dflt: u16| -> Option<u16> {
        if s.is_empty() {
            Some(dflt)
        } else {
            s.parse::<u16>().ok()
        }
    };
    let (a, b) = match item.split_once('-') {
        Some((a, b)) => (port(a, 1)?, port(b, 65535)?),
        None => {
            let p = port(item, 0).filter(|_| !item.is_empty())?;
            (p, p)
        }
    };
    (a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dns(name: &str) -> Result<Vec<IpAddr>, String> {
        match name {
            "lab-target" => Ok(vec![
                "2001:db8::2".parse().unwrap(),
                "198.18.0.2".parse().unwrap(),
            ]),
            _ => Err("no such host".into()),
        }
    }

    fn hosts(t: &[&str], x: &[&str]) -> Result<Vec<IpAddr>, SpecError> {
        let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        let x: Vec<String> = x.iter().map(|s| s.to_string()).collect();
        let h = parse_hosts(&t, &x, &no_dns)?;
        Ok((0..h.len()).map(|i| h.get(i).unwrap()).collect())
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn addresses_cidr_and_ranges() {
        assert_eq!(hosts(&["198.18.0.2"], &[]).unwrap(), ips(&["198.18.0.2"]));
        assert_eq!(hosts(&["198.18.0.0/30"], &[]).unwrap().len(), 4);
        assert_eq!(
            hosts(&["198.18.0.1-3"], &[]).unwrap(),
            ips(&["198.18.0.1", "198.18.0.2", "198.18.0.3"])
        );
        assert_eq!(
            hosts(&["198.18.0-1.1-2"], &[]).unwrap(),
            ips(&["198.18.0.1", "198.18.0.2", "198.18.1.1", "198.18.1.2"])
        );
        assert_eq!(
            hosts(&["198.18.0.1,5"], &[]).unwrap(),
            ips(&["198.18.0.1", "198.18.0.5"])
        );
        assert_eq!(hosts(&["198.18.0.*"], &[]).unwrap().len(), 256);
        assert_eq!(hosts(&["2001:db8::/126"], &[]).unwrap().len(), 4);
    }

    #[test]
    fn duplicates_merge_and_excludes_apply() {
        assert_eq!(
            hosts(&["198.18.0.1-4", "198.18.0.3-6"], &[]).unwrap().len(),
            6
        );
        assert_eq!(
            hosts(&["198.18.0.0/29"], &["198.18.0.0", "198.18.0.2-5"]).unwrap(),
            ips(&["198.18.0.1", "198.18.0.6", "198.18.0.7"])
        );
        assert!(
            hosts(&["198.18.0.1"], &["198.18.0.0/24"])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn hostnames_resolve_once_preferring_ipv4() {
        assert_eq!(hosts(&["lab-target"], &[]).unwrap(), ips(&["198.18.0.2"]));
        let e = hosts(&["nonexistent.invalid"], &[]).unwrap_err();
        assert!(e.0.contains("'nonexistent.invalid'"), "{e}");
    }

    #[test]
    fn bad_targets_name_the_token() {
        for bad in [
            "300.1.1.1",
            "198.18.0.1/33",
            "198.18.0.5-1",
            "1.2.3",
            "198.18.0.1/x",
            "a b",
            "::g",
        ] {
            let e = hosts(&[bad], &[]).unwrap_err();
            assert!(e.0.contains(bad), "{bad}: {e}");
        }
    }

    /// Regression: words of a comment line were taken for hostnames.
    #[test]
    fn target_lists_skip_comments() {
        let text =
            "198.18.0.1\n# lab hosts follow\n198.18.0.2, 198.18.0.3 # two more\n\n  198.18.0.4\n";
        assert_eq!(
            split_tokens(text),
            vec!["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"]
        );
    }

    #[test]
    fn huge_sets_are_not_materialized() {
        let h = parse_hosts(&["198.18.0.0/8".into()], &[], &no_dns).unwrap();
        assert_eq!(h.len(), 1 << 24);
        assert_eq!(
            h.get((1 << 24) - 1),
            Some("198.255.255.255".parse().unwrap())
        );
        assert_eq!(h.get(1 << 24), None);
    }

    #[test]
    fn port_specs() {
        let t = [Proto::Tcp];
        assert_eq!(
            parse_ports("22,80,8000-8002", &t).unwrap().tcp,
            vec![22, 80, 8000, 8001, 8002]
        );
        assert_eq!(parse_ports("-", &t).unwrap().tcp.len(), 65535);
        assert_eq!(parse_ports("0-65535", &t).unwrap().tcp.len(), 65536);
        assert_eq!(
            parse_ports("65530-", &t).unwrap().tcp,
            vec![65530, 65531, 65532, 65533, 65534, 65535]
        );
        assert_eq!(parse_ports("-3", &t).unwrap().tcp, vec![1, 2, 3]);
        assert_eq!(parse_ports("80,22,80", &t).unwrap().tcp, vec![22, 80]);
        let named = parse_ports("ssh,http", &t).unwrap().tcp;
        assert!(named.contains(&22) && named.contains(&80));
    }

    #[test]
    fn protocol_prefixes() {
        let both = [Proto::Tcp, Proto::Udp];
        let l = parse_ports("T:1-3,U:53,161", &both).unwrap();
        assert_eq!(l.tcp, vec![1, 2, 3]);
        assert_eq!(l.udp, vec![53, 161]);
        let l = parse_ports("53", &both).unwrap();
        assert_eq!((l.tcp.clone(), l.udp.clone()), (vec![53], vec![53]));
    }

    #[test]
    fn bad_ports_name_the_token() {
        for bad in ["70000", "5-1", "abc-def", "nosuchservice", "1,,2", "T:"] {
            let e = parse_ports(bad, &[Proto::Tcp]).unwrap_err();
            assert!(
                e.0.contains("invalid port") || e.0.contains("empty"),
                "{bad}: {e}"
            );
        }
        assert!(
            parse_ports("70000", &[Proto::Tcp])
                .unwrap_err()
                .0
                .contains("'70000'")
        );
    }

    #[test]
    fn top_ports_and_exclusion() {
        let mut l = PortList::top(1000, &[Proto::Tcp]);
        assert_eq!(l.tcp.len(), 1000);
        assert!(l.tcp.contains(&22) && l.tcp.contains(&443));
        l.subtract(&parse_ports("22,443", &[Proto::Tcp]).unwrap());
        assert_eq!(l.tcp.len(), 998);
        assert!(!l.tcp.contains(&22));
    }
}
