//! Target and port specifications: parsing, excludes, and index → address.
//!
//! Invariants: a `HostSet` is a sorted list of disjoint inclusive address
//! ranges with excludes already removed; it never holds one entry per
//! address or per (host, port), so `get(i)` is a binary search. Parsers
//! return a `SpecError` naming the offending token (escaped and cut by
//! `echo`); they never panic and never overflow: address counts are
//! checked `u128` sums, octet patterns are counted before any range is
//! made, and all tokens together may make at most `MAX_RANGES` ranges.
//! Guarded addresses (multicast, reserved, unspecified, broadcast) are
//! removed unless the caller opts out, and counted so the user is told.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnetwork::IpNetwork;

use crate::echo;
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

/// `include` minus `exclude`, both normalized (sorted, disjoint): one
/// merge pass, linear in their lengths.
fn subtract(include: Vec<Range>, exclude: &[Range]) -> Vec<Range> {
    let mut out = Vec::with_capacity(include.len());
    let mut j = 0;
    for r in include {
        while j < exclude.len() && (exclude[j].v6, exclude[j].end) < (r.v6, r.start) {
            j += 1;
        }
        let mut k = j;
        let mut piece = r;
        loop {
            match exclude.get(k) {
                // Here x.end >= piece.start: earlier excludes were skipped.
                Some(x) if x.v6 == piece.v6 && x.start <= piece.end => {
                    if x.start > piece.start {
                        out.push(Range {
                            end: x.start - 1,
                            ..piece
                        });
                    }
                    if x.end >= piece.end {
                        break;
                    }
                    piece.start = x.end + 1;
                    k += 1;
                }
                _ => {
                    out.push(piece);
                    break;
                }
            }
        }
    }
    out
}

impl HostSet {
    /// A set from disjoint sorted ranges; an error if its size does not
    /// fit a `u128` (only `::/0` whole does that).
    fn from_disjoint(ranges: Vec<Range>) -> Result<Self, SpecError> {
        let mut starts = Vec::with_capacity(ranges.len());
        let mut len: u128 = 0;
        for r in &ranges {
            starts.push(len);
            len = (r.end - r.start)
                .checked_add(1)
                .and_then(|n| len.checked_add(n))
                .ok_or_else(|| {
                    SpecError(
                        "the targets cover 2^128 addresses or more, which rawscan cannot count: \
                         exclude part of them"
                            .to_string(),
                    )
                })?;
        }
        Ok(HostSet {
            ranges,
            starts,
            len,
        })
    }

    /// The set of these addresses (any order, duplicates allowed).
    pub fn from_addrs(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let ranges = normalize(
            ips.into_iter()
                .map(|ip| {
                    let (v6, x) = to_int(ip);
                    Range {
                        v6,
                        start: x,
                        end: x,
                    }
                })
                .collect(),
        );
        // A set of distinct single addresses always fits a u128 count.
        HostSet::from_disjoint(ranges).unwrap_or_default()
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

    pub fn has_v4(&self) -> bool {
        self.ranges.iter().any(|r| !r.v6)
    }

    pub fn has_v6(&self) -> bool {
        self.ranges.iter().any(|r| r.v6)
    }

    /// Is `ip` one of the hosts? (a binary search)
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.index_of(ip).is_some()
    }

    /// The index of `ip` in ascending order (`get(index_of(ip)) == ip`).
    pub fn index_of(&self, ip: IpAddr) -> Option<u128> {
        let (v6, x) = to_int(ip);
        let k = self.ranges.partition_point(|r| (r.v6, r.start) <= (v6, x));
        let r = self.ranges.get(k.checked_sub(1)?)?;
        (r.v6 == v6 && x <= r.end).then(|| self.starts[k - 1] + (x - r.start))
    }

    /// Split into the ranges whose first and last addresses `keep`
    /// accepts, and the rest.
    pub fn partition(&self, keep: impl Fn(IpAddr, IpAddr) -> bool) -> (HostSet, HostSet) {
        let (yes, no): (Vec<Range>, Vec<Range>) = self
            .ranges
            .iter()
            .partition(|r| keep(from_int(r.v6, r.start), from_int(r.v6, r.end)));
        // Subsets of a valid set always count.
        (
            HostSet::from_disjoint(yes).unwrap_or_default(),
            HostSet::from_disjoint(no).unwrap_or_default(),
        )
    }

    /// The same set without `ips`.
    pub fn without(&self, ips: &[IpAddr]) -> HostSet {
        let gone = HostSet::from_addrs(ips.iter().copied());
        HostSet::from_disjoint(subtract(self.ranges.clone(), &gone.ranges)).unwrap_or_default()
    }

    /// The ranges, ascending: (is IPv6, first, last) as integers.
    pub fn ranges(&self) -> impl Iterator<Item = (bool, u128, u128)> + '_ {
        self.ranges.iter().map(|r| (r.v6, r.start, r.end))
    }
}

/// Sets larger than this many addresses need `--allow-large-target-set`.
pub const LARGE_TARGET_SET: u128 = 1 << 24;
/// Most address ranges all target and exclude tokens together may make
/// (each is 48 bytes: 4 Mi ranges stay under 200 MB).
pub const MAX_RANGES: usize = 1 << 22;

/// Addresses never probed unless `--no-default-excludes`.
const GUARDED: &[(&str, bool, u128, u128)] = &[
    ("0.0.0.0/8 (\"this network\")", false, 0, 0x00ff_ffff),
    ("224.0.0.0/4 (multicast)", false, 0xe000_0000, 0xefff_ffff),
    (
        "255.255.255.255 (broadcast)",
        false,
        0xffff_ffff,
        0xffff_ffff,
    ),
    ("240.0.0.0/4 (reserved)", false, 0xf000_0000, 0xffff_fffe),
    ("::/128 (unspecified)", true, 0, 0),
    (
        "ff00::/8 (multicast)",
        true,
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        u128::MAX,
    ),
];

/// How targets are turned into a host set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetOptions {
    /// Remove the guarded addresses (multicast, reserved, ...).
    pub default_excludes: bool,
    /// Allow more than `LARGE_TARGET_SET` addresses.
    pub allow_large: bool,
}

/// A parsed target set and what the default excludes took out of it.
#[derive(Clone, Debug)]
pub struct Targets {
    pub hosts: HostSet,
    /// (which guarded block, how many of the targets were in it).
    pub guarded: Vec<(&'static str, u128)>,
}

impl Targets {
    /// One line telling what the default excludes removed, if anything.
    pub fn guarded_note(&self) -> Option<String> {
        if self.guarded.is_empty() {
            return None;
        }
        let total: u128 = self.guarded.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = self
            .guarded
            .iter()
            .map(|(what, n)| format!("{n} in {what}"))
            .collect();
        Some(format!(
            "not scanning {total} target address{} that {} never scanned by default: {} (--no-default-excludes scans them)",
            if total == 1 { "" } else { "es" },
            if total == 1 { "is" } else { "are" },
            parts.join(", ")
        ))
    }
}

/// Number of addresses of `set` inside [start, end] of one family.
fn overlap(set: &[Range], v6: bool, start: u128, end: u128) -> u128 {
    set.iter()
        .filter(|r| r.v6 == v6 && r.start <= end && r.end >= start)
        .map(|r| r.end.min(end) - r.start.max(start))
        // +1 cannot overflow: a guarded block is at most 2^120 addresses.
        .map(|d| d + 1)
        .sum()
}

/// Counts ranges made by all tokens together against `MAX_RANGES`.
struct Budget {
    left: usize,
    max: usize,
}

impl Budget {
    fn take(&mut self, n: u128, tok: &str) -> Result<(), SpecError> {
        match usize::try_from(n) {
            Ok(n) if n <= self.left => {
                self.left -= n;
                Ok(())
            }
            _ => err(format!(
                "target {} and the ones before it expand to more than {} separate address ranges: use CIDR notation or split the scan",
                echo::token(tok),
                self.max
            )),
        }
    }
}

/// Parse target tokens (addresses, CIDR blocks, nmap octet ranges,
/// hostnames) and exclude tokens into a `HostSet`, with no default
/// excludes and no size limit. `resolve` turns a hostname into addresses
/// (injected so tests need no DNS).
pub fn parse_hosts(
    targets: &[String],
    excludes: &[String],
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<HostSet, SpecError> {
    let opts = TargetOptions {
        default_excludes: false,
        allow_large: true,
    };
    parse_targets(
        targets.iter().map(String::as_str),
        excludes.iter().map(String::as_str),
        resolve,
        opts,
    )
    .map(|t| t.hosts)
}

/// Parse target and exclude tokens into a `Targets`: the user's excludes
/// and then (unless `opts` says not to) the guarded blocks are removed;
/// a set larger than `LARGE_TARGET_SET` is an error unless allowed.
pub fn parse_targets<'a>(
    targets: impl IntoIterator<Item = &'a str>,
    excludes: impl IntoIterator<Item = &'a str>,
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
    opts: TargetOptions,
) -> Result<Targets, SpecError> {
    parse_targets_within(targets, excludes, resolve, opts, MAX_RANGES)
}

fn parse_targets_within<'a>(
    targets: impl IntoIterator<Item = &'a str>,
    excludes: impl IntoIterator<Item = &'a str>,
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
    opts: TargetOptions,
    max_ranges: usize,
) -> Result<Targets, SpecError> {
    let mut budget = Budget {
        left: max_ranges,
        max: max_ranges,
    };
    let mut inc = Vec::new();
    for t in targets {
        parse_host_token(t, resolve, &mut inc, &mut budget)?;
    }
    let mut exc = Vec::new();
    for t in excludes {
        parse_host_token(t, resolve, &mut exc, &mut budget)?;
    }
    let mut set = subtract(normalize(inc), &normalize(exc));
    let mut guarded = Vec::new();
    if opts.default_excludes {
        let mut blocks = Vec::new();
        for &(what, v6, start, end) in GUARDED {
            let n = overlap(&set, v6, start, end);
            if n > 0 {
                guarded.push((what, n));
            }
            blocks.push(Range { v6, start, end });
        }
        set = subtract(set, &normalize(blocks));
    }
    let hosts = HostSet::from_disjoint(set)?;
    if !opts.allow_large && hosts.len() > LARGE_TARGET_SET {
        return err(format!(
            "the targets expand to {} addresses, more than {LARGE_TARGET_SET}: pass --allow-large-target-set to scan that many",
            hosts.len()
        ));
    }
    Ok(Targets { hosts, guarded })
}

/// Split a list of tokens on commas and whitespace (for `--exclude` and
/// files given with `-iL`); `#` starts a comment that runs to the end of
/// its line.
pub fn split_tokens(s: &str) -> Vec<String> {
    tokens(s).map(str::to_string).collect()
}

/// `split_tokens` without copying.
pub fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|t| !t.is_empty())
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
    budget: &mut Budget,
) -> Result<(), SpecError> {
    let bad = || err(format!("invalid target {}", echo::token(tok)));
    let bad_prefix = || {
        err(format!(
            "invalid CIDR prefix in target {}",
            echo::token(tok)
        ))
    };
    link_local_check(tok)?;
    if let Ok(ip) = IpAddr::from_str(tok) {
        budget.take(1, tok)?;
        let (v6, x) = to_int(ip);
        out.push(Range {
            v6,
            start: x,
            end: x,
        });
        return Ok(());
    }
    if let Some((host, prefix)) = tok.split_once('/') {
        let Ok(prefix) = prefix.parse::<u8>() else {
            return bad_prefix();
        };
        let ip = match IpAddr::from_str(host) {
            Ok(ip) => ip,
            Err(_) if looks_numeric_v4(host) => return bad(),
            Err(_) => first_address(host, tok, resolve)?,
        };
        let Ok(net) = IpNetwork::new(ip, prefix) else {
            return bad_prefix();
        };
        budget.take(1, tok)?;
        let (v6, start) = to_int(net.network());
        let (_, end) = to_int(net.broadcast_or_last());
        out.push(Range { v6, start, end });
        return Ok(());
    }
    if looks_numeric_v4(tok) {
        return octet_ranges(tok, out, budget);
    }
    if tok.contains(':') {
        return bad();
    }
    let ip = first_address(tok, tok, resolve)?;
    budget.take(1, tok)?;
    let (v6, x) = to_int(ip);
    out.push(Range {
        v6,
        start: x,
        end: x,
    });
    Ok(())
}

/// True for fe80::/10 (IPv6 unicast link-local).
fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// Link-local IPv6 targets (`fe80::1`, `fe80::/64`) mean nothing without
/// an interface, and rawscan sends raw probes by route (no scope id), so
/// they are refused with the reason; so is a scoped token (`fe80::1%eth0`),
/// which would otherwise be reported as an unparseable target.
fn link_local_check(tok: &str) -> Result<(), SpecError> {
    let (addr, scope) = match tok.split_once('%') {
        Some((a, s)) => (a, Some(s)),
        None => (tok, None),
    };
    let host = addr.split_once('/').map_or(addr, |(h, _)| h);
    let Ok(ip) = Ipv6Addr::from_str(host) else {
        return Ok(());
    };
    if scope.is_some() {
        return err(format!(
            "scoped IPv6 target {}: rawscan does not scan link-local (fe80::/10) addresses; scan the host's global or unique-local address",
            echo::token(tok)
        ));
    }
    if is_link_local_v6(IpAddr::V6(ip)) {
        return err(format!(
            "link-local IPv6 target {} has no scope (fe80::1%eth0) and rawscan does not scan link-local (fe80::/10) addresses; scan the host's global or unique-local address",
            echo::token(tok)
        ));
    }
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
        || name.len() > 253
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return err(format!("invalid target {}", echo::token(tok)));
    }
    match resolve(name) {
        Ok(addrs) => {
            // Prefer IPv4, as nmap does without -6.
            let pick = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied();
            pick.ok_or_else(|| SpecError(format!("failed to resolve target {}", echo::token(tok))))
        }
        Err(e) => err(format!(
            "failed to resolve target {}: {}",
            echo::token(tok),
            echo::bare(&e)
        )),
    }
}

/// Runs of one octet of an octet pattern, sorted and merged.
fn octet_runs(p: &str) -> Option<Vec<(u8, u8)>> {
    let mut seen = [false; 256];
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
            (Some(a), Some(b)) if a <= b => seen[usize::from(a)..=usize::from(b)].fill(true),
            _ => return None,
        }
    }
    let mut runs: Vec<(u8, u8)> = Vec::new();
    for v in 0..=255u8 {
        if !seen[usize::from(v)] {
            continue;
        }
        match runs.last_mut() {
            Some(last) if u16::from(last.1) + 1 == u16::from(v) => last.1 = v,
            _ => runs.push((v, v)),
        }
    }
    Some(runs)
}

/// nmap octet ranges: `198.18.0.1-20`, `198.18.0-1.1-5`, `198.18.0.*`,
/// `198.18.0.1,3,5`. Trailing octets that cover 0-255 make one range with
/// the octet before them, so `*.*.*.*` is a single range; the number of
/// ranges is computed and charged to `budget` before any is made.
fn octet_ranges(tok: &str, out: &mut Vec<Range>, budget: &mut Budget) -> Result<(), SpecError> {
    let bad = || err(format!("invalid target {}", echo::token(tok)));
    let parts: Vec<&str> = tok.split('.').collect();
    if parts.len() != 4 {
        return bad();
    }
    let mut sets: Vec<Vec<(u8, u8)>> = Vec::with_capacity(4);
    for p in parts {
        match octet_runs(p) {
            Some(r) => sets.push(r),
            None => return bad(),
        }
    }
    // Octets [split..4) are full (0-255); octet split-1 (if any) keeps its
    // runs; octets before it are expanded value by value.
    let full = |s: &Vec<(u8, u8)>| s.as_slice() == [(0, 255)];
    let split = 4 - sets.iter().rev().take_while(|s| full(s)).count();
    if split == 0 {
        budget.take(1, tok)?;
        out.push(Range {
            v6: false,
            start: 0,
            end: u128::from(u32::MAX),
        });
        return Ok(());
    }
    let values =
        |s: &Vec<(u8, u8)>| -> u128 { s.iter().map(|&(a, b)| u128::from(b - a) + 1).sum::<u128>() };
    let count: u128 =
        sets[..split - 1].iter().map(values).product::<u128>() * sets[split - 1].len() as u128;
    budget.take(count, tok)?;
    out.reserve(count as usize);
    let shift = 8 * (4 - split as u32);
    let low = if shift == 0 { 0 } else { (1u32 << shift) - 1 };
    let mut prefix: Vec<u32> = vec![0];
    for s in &sets[..split - 1] {
        let mut next = Vec::with_capacity(prefix.len() * values(s) as usize);
        for p in &prefix {
            for &(a, b) in s {
                next.extend((a..=b).map(|v| (p << 8) | u32::from(v)));
            }
        }
        prefix = next;
    }
    for p in prefix {
        for &(a, b) in &sets[split - 1] {
            let base = |v: u8| ((p << 8) | u32::from(v)) << shift;
            out.push(Range {
                v6: false,
                start: u128::from(base(a)),
                end: u128::from(base(b) | low),
            });
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
            Proto::Icmp | Proto::TcpAck | Proto::Arp => &[],
        }
    }

    fn get_mut(&mut self, proto: Proto) -> &mut Vec<u16> {
        match proto {
            // Port lists hold TCP and UDP only (discovery protocols
            // never reach here).
            Proto::Tcp | Proto::TcpAck => &mut self.tcp,
            Proto::Udp | Proto::Icmp | Proto::Arp => &mut self.udp,
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
/// Items are kept as ranges until the end, so repeating `1-65535` costs
/// no more than writing it once.
pub fn parse_ports(spec: &str, protos: &[Proto]) -> Result<PortList, SpecError> {
    let mut tcp: Vec<(u16, u16)> = Vec::new();
    let mut udp: Vec<(u16, u16)> = Vec::new();
    let mut current: Vec<Proto> = protos.to_vec();
    if spec.trim().is_empty() {
        return err("empty port specification".to_string());
    }
    for raw in spec.split(',') {
        let bad = || err(format!("invalid port {}", echo::token(raw)));
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
            return bad();
        }
        let range = parse_port_range(item);
        for &proto in &current {
            let runs = match proto {
                Proto::Tcp | Proto::TcpAck => &mut tcp,
                Proto::Udp | Proto::Icmp | Proto::Arp => &mut udp,
            };
            match range {
                Some(r) => runs.push(r),
                None => {
                    let ports = services::ports_by_name(proto, item);
                    let any_name = !services::ports_by_name(Proto::Tcp, item).is_empty()
                        || !services::ports_by_name(Proto::Udp, item).is_empty();
                    if ports.is_empty() && !any_name {
                        return bad();
                    }
                    runs.extend(ports.into_iter().map(|p| (p, p)));
                }
            }
        }
    }
    let expand = |mut runs: Vec<(u16, u16)>| -> Vec<u16> {
        runs.sort_unstable();
        let mut out: Vec<u16> = Vec::new();
        for (a, b) in runs {
            let from = match out.last() {
                Some(&last) if last >= b => continue,
                Some(&last) if last >= a => last + 1,
                _ => a,
            };
            out.extend(from..=b);
        }
        out
    };
    Ok(PortList {
        tcp: expand(tcp),
        udp: expand(udp),
    })
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
    fn partition_splits_whole_ranges() {
        let set = HostSet::from_addrs(
            [
                "198.18.0.1",
                "198.18.0.2",
                "198.18.0.3",
                "198.19.0.9",
                "2001:db8::1",
            ]
            .map(|s| s.parse::<IpAddr>().unwrap()),
        );
        let (lab, rest) = set.partition(|a, b| {
            let in18 = |ip: IpAddr| matches!(ip, IpAddr::V4(v) if v.octets()[1] == 18);
            in18(a) && in18(b)
        });
        assert_eq!((lab.len(), rest.len()), (3, 2));
        assert!(lab.contains("198.18.0.2".parse().unwrap()));
        assert!(rest.contains("198.19.0.9".parse().unwrap()));
        assert!(rest.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn without_removes_only_the_addresses_given() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let set = HostSet::from_addrs(
            (0..8u8)
                .map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 0, i)))
                .chain([ip("2001:db8::1")]),
        );
        let w = set.without(&[ip("198.18.0.1"), ip("198.18.0.7"), ip("198.19.0.1")]);
        assert_eq!(w.len(), 7);
        assert!(!w.contains(ip("198.18.0.1")) && !w.contains(ip("198.18.0.7")));
        assert!(w.contains(ip("198.18.0.0")) && w.contains(ip("198.18.0.2")));
        assert!(w.contains(ip("2001:db8::1")));
        assert_eq!(set.without(&[]).len(), set.len());
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
    fn link_local_targets_are_refused_with_the_reason() {
        for tok in ["fe80::1", "FE80::1", "fe80::/64", "febf::1"] {
            let e = parse_hosts(&[tok.into()], &[], &no_dns).unwrap_err();
            assert!(
                e.0.contains("link-local") && e.0.contains("no scope"),
                "{tok}: {e}"
            );
        }
        for tok in ["fe80::1%eth0", "fe80::1%1", "2001:db8::1%lo"] {
            let e = parse_hosts(&[tok.into()], &[], &no_dns).unwrap_err();
            assert!(e.0.starts_with("scoped IPv6 target"), "{tok}: {e}");
        }
        // Neighbours of fe80::/10 are ordinary addresses.
        for tok in ["fec0::1", "fe7f::1", "2001:db8::1", "2001:db8::/120"] {
            assert!(parse_hosts(&[tok.into()], &[], &no_dns).is_ok(), "{tok}");
        }
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

    fn opts(default_excludes: bool, allow_large: bool) -> TargetOptions {
        TargetOptions {
            default_excludes,
            allow_large,
        }
    }

    fn targets(t: &[&str], o: TargetOptions) -> Result<Targets, SpecError> {
        parse_targets(t.iter().copied(), [], &no_dns, o)
    }

    /// Regression: `::/0` wrapped to an empty set and `::/0 127.0.0.1`
    /// scanned one host.
    #[test]
    fn address_counts_never_wrap() {
        for t in [&["::/0"][..], &["::/0", "127.0.0.1"], &["::/1", "8000::/1"]] {
            let e = targets(t, opts(false, true)).map(|_| ()).unwrap_err();
            assert!(e.0.contains("2^128"), "{t:?}: {e}");
        }
        // Minus the guarded blocks it fits a u128 but needs the flag.
        let e = targets(&["::/0"], opts(true, false))
            .map(|_| ())
            .unwrap_err();
        assert!(e.0.contains("--allow-large-target-set"), "{e}");
        let t = targets(&["::/0"], opts(true, true)).unwrap();
        assert_eq!(t.hosts.len(), u128::MAX - (1u128 << 120));
    }

    #[test]
    fn large_sets_need_the_flag() {
        assert_eq!(
            targets(&["2001:db8::/104"], opts(true, false))
                .unwrap()
                .hosts
                .len(),
            1 << 24
        );
        let e = targets(&["2001:db8::/104", "2001:db8:1::1"], opts(true, false))
            .map(|_| ())
            .unwrap_err();
        assert!(
            e.0.contains("16777217") && e.0.contains("--allow-large-target-set"),
            "{e}"
        );
    }

    /// Regression: three lines of `*.*.*.*` allocated gigabytes.
    #[test]
    fn wildcards_are_counted_not_materialized() {
        let t = targets(&["*.*.*.*", "*.*.*.*", "*.*.*.*"], opts(false, true)).unwrap();
        assert_eq!(t.hosts.len(), 1 << 32);
        assert_eq!(t.hosts.ranges().count(), 1);
        let t = targets(&["198.*.*.*", "1-2.0-255.*.*"], opts(false, true)).unwrap();
        assert_eq!(t.hosts.len(), 3 << 24);
        let e = targets(&["1-255.1-255.1-255.1-254"], opts(false, true))
            .map(|_| ())
            .unwrap_err();
        assert!(e.0.contains("ranges"), "{e}");
        // The budget is shared by all tokens.
        let many: Vec<String> = (0..5).map(|i| format!("198.18.{i}.1,3,5,7")).collect();
        let e = parse_targets_within(
            many.iter().map(String::as_str),
            [],
            &no_dns,
            opts(false, true),
            17,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.0.contains("'198.18.4.1,3,5,7'"), "{e}");
        assert_eq!(
            hosts(&["198.18.0-1.*"], &[]).unwrap().len(),
            512,
            "a full last octet joins the octet before it"
        );
        assert_eq!(
            hosts(&["198.18.1,0.7,5-6"], &[]).unwrap(),
            ips(&[
                "198.18.0.5",
                "198.18.0.6",
                "198.18.0.7",
                "198.18.1.5",
                "198.18.1.6",
                "198.18.1.7"
            ])
        );
    }

    #[test]
    fn guarded_blocks_are_excluded_and_counted() {
        let t = targets(
            &[
                "224.0.0.1",
                "0.0.0.0/7",
                "255.255.255.254-255",
                "127.0.0.1",
                "ff02::1",
                "::",
            ],
            opts(true, true),
        )
        .unwrap();
        let got: Vec<IpAddr> = (0..t.hosts.len())
            .map(|i| t.hosts.get(i).unwrap())
            .collect();
        // 1.0.0.0/8 is not guarded; loopback stays.
        assert_eq!(t.hosts.len(), (1 << 24) + 1);
        assert!(got.contains(&"127.0.0.1".parse().unwrap()));
        assert!(!got.contains(&"255.255.255.254".parse().unwrap()));
        let total: u128 = t.guarded.iter().map(|g| g.1).sum();
        assert_eq!(total, 1 + (1 << 24) + 2 + 1 + 1);
        let note = t.guarded_note().unwrap();
        assert!(
            note.contains("--no-default-excludes") && !note.contains('\n'),
            "{note}"
        );
        let t = targets(&["224.0.0.1"], opts(false, true)).unwrap();
        assert_eq!(t.hosts.len(), 1);
        assert!(t.guarded_note().is_none());
    }

    #[test]
    fn contains_and_subtract_agree_with_a_naive_set() {
        let inc = [
            "198.18.0.0/28",
            "198.18.0.40-60",
            "198.18.1.1",
            "2001:db8::/126",
        ];
        let exc = ["198.18.0.3", "198.18.0.10-45", "198.18.0.60", "2001:db8::1"];
        let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let h = parse_hosts(&strs(&inc), &strs(&exc), &no_dns).unwrap();
        let mut naive = std::collections::BTreeSet::new();
        for x in 0..=15u8 {
            naive.insert(format!("198.18.0.{x}"));
        }
        for x in 40..=60u8 {
            naive.insert(format!("198.18.0.{x}"));
        }
        naive.insert("198.18.1.1".into());
        for x in ["3", "60"] {
            naive.remove(&format!("198.18.0.{x}"));
        }
        for x in 10..=45u8 {
            naive.remove(&format!("198.18.0.{x}"));
        }
        let want: Vec<IpAddr> = naive.iter().map(|s| s.parse().unwrap()).collect();
        let got: Vec<IpAddr> = (0..h.len()).map(|i| h.get(i).unwrap()).collect();
        let v4: Vec<IpAddr> = got.iter().copied().filter(|a| a.is_ipv4()).collect();
        let mut want_sorted = want.clone();
        want_sorted.sort_by_key(|a| to_int(*a));
        assert_eq!(v4, want_sorted);
        assert_eq!(got.len(), want.len() + 3);
        for a in &got {
            assert!(h.contains(*a), "{a}");
        }
        for a in [
            "198.18.0.3",
            "198.18.0.61",
            "2001:db8::1",
            "198.19.254.254",
            "::",
        ] {
            assert!(!h.contains(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn echoed_tokens_are_escaped_and_short() {
        let long = format!("{}\u{1b}[2J", "a".repeat(100_000));
        let e = hosts(&[long.as_str()], &[]).unwrap_err();
        assert!(e.0.len() < 200 && !e.0.contains('\u{1b}'), "{}", e.0.len());
        let e = hosts(&["\0\0\0"], &[]).unwrap_err();
        assert!(e.0.contains("\\0\\0"), "{e}");
        let e = parse_ports(&format!("{}\n", "9".repeat(1000)), &[Proto::Tcp]).unwrap_err();
        assert!(e.0.len() < 200 && !e.0.contains('\n'), "{e}");
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
        // Repeats cost nothing (no list of 65535 per item).
        let spec = vec!["1-65535"; 10_000].join(",");
        assert_eq!(parse_ports(&spec, &t).unwrap().tcp.len(), 65535);
        assert_eq!(
            parse_ports("5-9,1-3,2-6,9", &t).unwrap().tcp,
            (1..=9).collect::<Vec<u16>>()
        );
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
