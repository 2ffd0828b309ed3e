//! The result collector's memory: every decided port of every host, kept
//! compact enough for sweeps of whole networks.
//!
//! A scan's ports are known before it starts, so each (port, protocol) has
//! an index in the scan's `PortSpace` (sorted by port, then protocol: the
//! order every format lists ports in). Per host, the report keeps:
//! - `classes`: the distinct (state, protocol, reason, TTL) outcomes seen on
//!   that host, each with a count. A sweep host has a handful (closed by
//!   reset with TTL 64, open by SYN-ACK with TTL 64, ...);
//! - `codes`: one small number per port index, 0 for "not decided" (an
//!   interrupted scan) or 1 + the index of the port's class, packed in 4
//!   bits while the host has at most 15 classes, widened to 8 bits, then
//!   16 (the most classes a host can have, 6 states x 2 protocols x 13
//!   reasons x 257 TTLs, fits in 16 bits).
//!
//! So a result costs half a byte instead of a `PortResult` (about 30 bytes
//! with its map and vector overhead), and a host costs about 100 bytes of
//! fixed overhead plus half a byte per scanned port, however many results
//! are "closed".
//!
//! Why per-port codes rather than only counts per (state, proto, reason)
//! and entries for listed ports: nmap's XML lists the ports of each
//! collapsed group (`<extrareasons ports="1-21,23-79"/>`), and tools read
//! states back from those lists (ndiff, our bench, the merge of shards).
//! With two large hidden groups of one protocol (closed by reset and
//! filtered by no-response, say), which port is in which group is
//! information that no count can carry. The codes carry it at 4 bits per
//! port, and keep the report independent of the view: `--open`, `-v`,
//! the 25-port collapse rule and single-host scans are applied when
//! formatting (`collapse`, `reported_hosts`), exactly as before, from the
//! same facts. Every row, "Not shown" count, extraports list, host status
//! reason and TTL is a function of (port, state, proto, reason, ttl) per
//! decided port, which the codes reproduce exactly; the unit tests compare
//! against the former full `Vec<PortResult>` over many random result sets.
//!
//! Invariants: a (host, port, protocol) is counted at most once (a second
//! result for it is refused with `AddError::Duplicate`, which the merge of
//! shard outputs relies on); results for ports outside the scan's port
//! space are refused (`AddError::NotInScan`), never stored elsewhere.
//! Nothing here panics on any input.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};

/// Every (port, protocol) of a scan, sorted by port then protocol.
#[derive(Clone, Debug, Default)]
pub struct PortSpace {
    ports: Vec<(u16, Proto)>,
    /// For large spaces, a rank index so that recording a result is O(1)
    /// (a binary search over `-p-` was a fifth of the engine's time at
    /// -T5): bit `slot(proto, port)` is set for each pair in the scan, and
    /// `before[w]` counts the set bits of the words before `w`. Pairs sort
    /// as slots do, so a pair's index is its rank: 24 KiB for any space.
    present: Vec<u64>,
    before: Vec<u32>,
}

/// Spaces with more ports than this get the rank index.
const DIRECT_MIN: usize = 4096;
const SLOTS: usize = 65536 * 2;

fn slot(proto: Proto, port: u16) -> usize {
    // Exhaustive on purpose: a new protocol must choose its slot here.
    let p = match proto {
        Proto::Tcp => 0,
        Proto::Udp => 1,
        // Host-discovery probes never enter a report's port space (a -sn
        // report has no ports); slot 0 keeps this total.
        Proto::Icmp | Proto::TcpAck | Proto::Arp => 0,
    };
    usize::from(port) * 2 + p
}

impl PortSpace {
    pub fn new(ports: impl IntoIterator<Item = (Proto, u16)>) -> Self {
        let mut v: Vec<(u16, Proto)> = ports.into_iter().map(|(pr, p)| (p, pr)).collect();
        v.sort_unstable();
        v.dedup();
        let (mut present, mut before) = (Vec::new(), Vec::new());
        if v.len() > DIRECT_MIN {
            present = vec![0u64; SLOTS / 64];
            for &(port, proto) in &v {
                let i = slot(proto, port);
                present[i / 64] |= 1 << (i % 64);
            }
            let mut n = 0u32;
            before = present
                .iter()
                .map(|w| {
                    let b = n;
                    n += w.count_ones();
                    b
                })
                .collect();
        }
        PortSpace {
            ports: v,
            present,
            before,
        }
    }

    pub fn len(&self) -> usize {
        self.ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    fn index(&self, proto: Proto, port: u16) -> Option<usize> {
        if !self.present.is_empty() {
            let i = slot(proto, port);
            let (w, bit) = (i / 64, i % 64);
            let word = self.present[w];
            if word & (1 << bit) == 0 {
                return None;
            }
            let below = (word & ((1u64 << bit) - 1)).count_ones();
            return Some((self.before[w] + below) as usize);
        }
        self.ports.binary_search(&(port, proto)).ok()
    }

    /// The ports of one protocol, ascending.
    pub fn ports(&self, proto: Proto) -> impl Iterator<Item = u16> + '_ {
        self.ports
            .iter()
            .filter(move |(_, pr)| *pr == proto)
            .map(|(p, _)| *p)
    }
}

/// One distinct outcome on a host, and how many of its ports had it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Class {
    state: PortState,
    proto: Proto,
    reason: Reason,
    ttl: Option<u8>,
    count: u32,
}

/// Per port index: 0 (undecided) or 1 + class index, in 4, 8 or 16 bits.
#[derive(Clone, Debug)]
struct Codes {
    bits: u8,
    data: Box<[u8]>,
}

impl Codes {
    fn new(n: usize) -> Self {
        Codes {
            bits: 4,
            data: vec![0u8; n.div_ceil(2)].into_boxed_slice(),
        }
    }

    /// How many indices the storage holds (at least the space's length).
    fn capacity(&self) -> usize {
        match self.bits {
            4 => self.data.len() * 2,
            8 => self.data.len(),
            _ => self.data.len() / 2,
        }
    }

    fn max_code(&self) -> u32 {
        match self.bits {
            4 => 0xF,
            8 => 0xFF,
            _ => 0xFFFF,
        }
    }

    fn get(&self, i: usize) -> u32 {
        match self.bits {
            4 => self.data.get(i / 2).map_or(0, |b| {
                u32::from(if i.is_multiple_of(2) { b & 0xF } else { b >> 4 })
            }),
            8 => self.data.get(i).map_or(0, |&b| u32::from(b)),
            _ => match (self.data.get(2 * i), self.data.get(2 * i + 1)) {
                (Some(&lo), Some(&hi)) => u32::from(u16::from_le_bytes([lo, hi])),
                _ => 0,
            },
        }
    }

    /// Store `c` at `i`; the caller widened the storage for `c` first.
    fn set(&mut self, i: usize, c: u32) {
        match self.bits {
            4 => {
                if let Some(b) = self.data.get_mut(i / 2) {
                    let c = (c & 0xF) as u8;
                    *b = if i.is_multiple_of(2) {
                        (*b & 0xF0) | c
                    } else {
                        (*b & 0x0F) | (c << 4)
                    };
                }
            }
            8 => {
                if let Some(b) = self.data.get_mut(i) {
                    *b = (c & 0xFF) as u8;
                }
            }
            _ => {
                let [lo, hi] = ((c & 0xFFFF) as u16).to_le_bytes();
                if let Some(b) = self.data.get_mut(2 * i) {
                    *b = lo;
                }
                if let Some(b) = self.data.get_mut(2 * i + 1) {
                    *b = hi;
                }
            }
        }
    }

    /// Double the width (4 → 8 → 16 bits), keeping every code.
    fn widen(&mut self) {
        let n = self.capacity();
        let bits = if self.bits == 4 { 8 } else { 16 };
        let bytes = if bits == 8 { n } else { 2 * n };
        let mut wider = Codes {
            bits,
            data: vec![0u8; bytes].into_boxed_slice(),
        };
        for i in 0..n {
            wider.set(i, self.get(i));
        }
        *self = wider;
    }
}

/// One host's decided ports.
#[derive(Clone, Debug)]
struct HostPorts {
    classes: Vec<Class>,
    codes: Codes,
}

/// Why a result was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The (port, protocol) is not in the scan's port list.
    NotInScan,
    /// This (host, port, protocol) already has a result.
    Duplicate,
}

/// Every decided result, per host (see the module header).
#[derive(Clone, Debug, Default)]
pub struct Report {
    space: PortSpace,
    hosts: BTreeMap<IpAddr, HostPorts>,
    decided: u64,
    /// `-sV` results, kept apart from the port states: formats print them
    /// in the service columns of the ports they name.
    pub services: crate::version::Services,
}

impl Report {
    /// An empty report for a scan of these (protocol, port) pairs.
    pub fn new(ports: impl IntoIterator<Item = (Proto, u16)>) -> Self {
        Report {
            space: PortSpace::new(ports),
            hosts: BTreeMap::new(),
            decided: 0,
            services: Default::default(),
        }
    }

    pub fn space(&self) -> &PortSpace {
        &self.space
    }

    /// Record one decided result.
    pub fn add(&mut self, r: &PortResult) -> Result<(), AddError> {
        let i = self
            .space
            .index(r.key.proto, r.key.port)
            .ok_or(AddError::NotInScan)?;
        let n = self.space.len();
        let host = self.hosts.entry(r.key.ip).or_insert_with(|| HostPorts {
            classes: Vec::new(),
            codes: Codes::new(n),
        });
        if host.codes.get(i) != 0 {
            return Err(AddError::Duplicate);
        }
        let c = match host.classes.iter().position(|c| {
            c.state == r.state && c.proto == r.key.proto && c.reason == r.reason && c.ttl == r.ttl
        }) {
            Some(c) => c,
            None => {
                // Most hosts have one to three classes: grow one at a time
                // (a default Vec would reserve 4 at once).
                host.classes.reserve_exact(1);
                host.classes.push(Class {
                    state: r.state,
                    proto: r.key.proto,
                    reason: r.reason,
                    ttl: r.ttl,
                    count: 0,
                });
                while host.classes.len() as u32 > host.codes.max_code() {
                    host.codes.widen();
                }
                host.classes.len() - 1
            }
        };
        host.classes[c].count = host.classes[c].count.saturating_add(1);
        host.codes.set(i, c as u32 + 1);
        self.decided += 1;
        Ok(())
    }

    /// Hosts with at least one result, in address order.
    /// List `ip` even with no port decided (host discovery: a live host
    /// of `-sn`, or a down host shown under `-v`).
    pub fn add_host(&mut self, ip: IpAddr) {
        let n = self.space.len();
        self.hosts.entry(ip).or_insert_with(|| HostPorts {
            classes: Vec::new(),
            codes: Codes::new(n),
        });
    }

    pub fn hosts(&self) -> impl Iterator<Item = Host<'_>> + '_ {
        self.hosts.iter().map(|(ip, ports)| Host {
            ip: *ip,
            ports,
            space: &self.space,
        })
    }

    pub fn host(&self, ip: &IpAddr) -> Option<Host<'_>> {
        self.hosts.get_key_value(ip).map(|(ip, ports)| Host {
            ip: *ip,
            ports,
            space: &self.space,
        })
    }

    /// Number of hosts with at least one result.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Number of results recorded.
    pub fn decided(&self) -> u64 {
        self.decided
    }
}

/// A read-only view of one host's results.
#[derive(Clone, Copy)]
pub struct Host<'a> {
    pub ip: IpAddr,
    ports: &'a HostPorts,
    space: &'a PortSpace,
}

impl<'a> Host<'a> {
    /// Number of decided ports.
    pub fn total(&self) -> usize {
        self.ports.classes.iter().map(|c| c.count as usize).sum()
    }

    /// Every result, in port order (then protocol).
    pub fn results(&self) -> impl Iterator<Item = PortResult> + 'a {
        let (ports, space, ip) = (self.ports, self.space, self.ip);
        space
            .ports
            .iter()
            .enumerate()
            .filter_map(move |(i, &(port, proto))| {
                let code = ports.codes.get(i) as usize;
                let c = ports.classes.get(code.checked_sub(1)?)?;
                Some(PortResult {
                    key: ProbeKey { ip, port, proto },
                    state: c.state,
                    reason: c.reason,
                    ttl: c.ttl,
                })
            })
    }

    /// Number of ports per (state, protocol, reason).
    pub fn groups(&self) -> BTreeMap<(PortState, Proto, Reason), usize> {
        let mut g = BTreeMap::new();
        for c in &self.ports.classes {
            *g.entry((c.state, c.proto, c.reason)).or_default() += c.count as usize;
        }
        g
    }

    /// The ports of one (state, protocol, reason) group, ascending.
    pub fn ports_in(
        &self,
        state: PortState,
        proto: Proto,
        reason: Reason,
    ) -> impl Iterator<Item = u16> + 'a {
        self.results()
            .filter(move |r| r.state == state && r.key.proto == proto && r.reason == reason)
            .map(|r| r.key.port)
    }

    /// Does any decided port have a state accepted by `f`?
    pub fn any_state(&self, f: impl Fn(PortState) -> bool) -> bool {
        self.ports.classes.iter().any(|c| c.count > 0 && f(c.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testutil::res;

    #[test]
    fn direct_index_agrees_with_the_sorted_ports() {
        // A large mixed space (direct index) and the same lookups by binary
        // search: the same index for every (proto, port), None outside.
        let mut ports: Vec<(Proto, u16)> = (1..=60_000).map(|p| (Proto::Tcp, p)).collect();
        ports.extend((0..=65535u16).step_by(7).map(|p| (Proto::Udp, p)));
        let big = PortSpace::new(ports.clone());
        assert!(!big.present.is_empty());
        let mut probe = [
            (Proto::Tcp, 0u16),
            (Proto::Tcp, 65535),
            (Proto::Udp, 1),
            (Proto::Udp, 7),
        ]
        .to_vec();
        probe.extend(ports.iter().copied().step_by(13));
        for (proto, port) in probe {
            let want = big.ports.binary_search(&(port, proto)).ok();
            assert_eq!(big.index(proto, port), want, "{proto:?}/{port}");
        }
        assert_eq!(big.index(Proto::Tcp, 0), None);
        assert_eq!(
            big.index(Proto::Udp, 7),
            Some(big.ports.binary_search(&(7, Proto::Udp)).unwrap())
        );
        // A small space keeps no direct index.
        assert!(PortSpace::new([(Proto::Tcp, 22)]).present.is_empty());
    }

    #[test]
    fn codes_widen_and_keep_every_value() {
        let mut c = Codes::new(7);
        for i in 0..7 {
            c.set(i, (i as u32 % 15) + 1);
        }
        c.widen();
        assert_eq!(c.bits, 8);
        for i in 0..7 {
            assert_eq!(c.get(i), (i as u32 % 15) + 1);
        }
        c.set(3, 200);
        c.widen();
        assert_eq!(c.bits, 16);
        c.set(6, 40_000);
        assert_eq!(c.get(3), 200);
        assert_eq!(c.get(6), 40_000);
        assert_eq!(c.get(0), 1);
        // Out of range reads are "undecided", writes are ignored.
        assert_eq!(c.get(1000), 0);
        c.set(1000, 5);
    }

    #[test]
    fn many_classes_on_one_host_widen_the_codes() {
        // 300 ports, each with its own TTL: 300 classes, 16-bit codes.
        let ports: Vec<(Proto, u16)> = (1..=300).map(|p| (Proto::Tcp, p)).collect();
        let mut r = Report::new(ports);
        for p in 1..=300u16 {
            let ttl = Some((p % 256) as u8);
            let state = if p % 2 == 0 {
                PortState::Closed
            } else {
                PortState::Filtered
            };
            r.add(&res("198.18.0.2", p, Proto::Tcp, state, Reason::Reset, ttl))
                .unwrap();
        }
        let h = r.hosts().next().unwrap();
        assert_eq!(h.total(), 300);
        for (i, x) in h.results().enumerate() {
            let p = i as u16 + 1;
            assert_eq!(x.key.port, p);
            assert_eq!(x.ttl, Some((p % 256) as u8));
        }
    }

    #[test]
    fn refuses_duplicates_and_unplanned_ports() {
        let mut r = Report::new([(Proto::Tcp, 22), (Proto::Udp, 53)]);
        let a = res(
            "198.18.0.2",
            22,
            Proto::Tcp,
            PortState::Open,
            Reason::SynAck,
            Some(64),
        );
        assert_eq!(r.add(&a), Ok(()));
        assert_eq!(r.add(&a), Err(AddError::Duplicate));
        let b = res(
            "198.18.0.2",
            53,
            Proto::Tcp,
            PortState::Open,
            Reason::SynAck,
            None,
        );
        assert_eq!(r.add(&b), Err(AddError::NotInScan));
        assert_eq!(r.decided(), 1);
        assert_eq!(r.hosts().next().unwrap().total(), 1);
    }
}
