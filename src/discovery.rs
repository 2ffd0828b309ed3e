//! Host discovery (`-sn`, and the phase before a port scan unless `-Pn`):
//! which targets are up, by nmap's rules, through the same engine, probe
//! modules, rate control, timeouts and retries as a port scan.
//!
//! - The probes (`Discovery::probes`), as nmap chooses them: privileged on
//!   a local Ethernet segment, ARP (IPv4) or Neighbour Discovery (IPv6)
//!   unless `--disable-arp-ping`; privileged elsewhere, the `-P` options
//!   given or by default ICMP echo, TCP SYN to 443, TCP ACK to 80 and ICMP
//!   timestamp; unprivileged, TCP connect to the `-PS`/`-PA` ports or by
//!   default 80 and 443 (a refused connection proves the host too).
//! - A discovery pass is a `Plan` over every target and those probe
//!   "ports": the plan never lists its keys, so a sweep's memory does not
//!   grow with the number of targets. `Tally` (the pass's `Sink`) keeps
//!   the live hosts (few) and, per host, a count of decided probes only
//!   while some are undecided; a host is down once all its probes are
//!   decided without proof, and only counted (listed only under `-v`).
//! - Proof (`proves_up`): a result the host itself must have sent: an
//!   echo or timestamp reply, a SYN-ACK or RST, a UDP answer or a port
//!   unreachable from the target, a refused connection, an ARP reply or
//!   Neighbour Advertisement. Filtered results (silence, or an ICMP error
//!   from a router) prove nothing.
//!
//! Invariants: no I/O here besides what the engine does through the
//! backend; nothing prints.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;

use crate::control::retry::Budget;
use crate::engine::{self, HostInfo, Progress, Sink, Summary};
use crate::net::Backend;
use crate::plan::{Plan, Shard};
use crate::probe::{PortResult, PortState, Proto, Reason};
use crate::probes::icmp;
use crate::scan::Settings;
use crate::targets::HostSet;

/// Default port of `-PS` (nmap's).
pub const SYN_PORT: u16 = 443;
/// Default port of `-PA` (nmap's).
pub const ACK_PORT: u16 = 80;
/// Default port of `-PU` (nmap's).
pub const UDP_PORT: u16 = 40125;
/// Tries per discovery probe (without `--max-retries`).
pub const DISCOVERY_TRIES: u32 = 2;

/// What discovery was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// `-sn`: discovery only, no port scan.
    pub only: bool,
    /// `-PE`.
    pub echo: bool,
    /// `-PP`.
    pub timestamp: bool,
    /// `-PS` ports.
    pub syn: Vec<u16>,
    /// `-PA` ports.
    pub ack: Vec<u16>,
    /// `-PU` ports.
    pub udp: Vec<u16>,
    /// `-PR`.
    pub arp: bool,
    /// `--disable-arp-ping`.
    pub disable_arp: bool,
}

impl Discovery {
    /// Were any IP-level probe types chosen (`-PE -PP -PS -PA -PU`)?
    fn explicit_ip(&self) -> bool {
        self.echo
            || self.timestamp
            || !self.syn.is_empty()
            || !self.ack.is_empty()
            || !self.udp.is_empty()
    }

    /// Does the pass need raw UDP sockets?
    pub fn wants_udp(&self) -> bool {
        !self.udp.is_empty()
    }

    /// The probe "ports" of a pass. `privileged`: raw sockets are open;
    /// `on_link`: every target is on a local Ethernet segment.
    pub fn probes(&self, privileged: bool, on_link: bool) -> Vec<(Proto, u16)> {
        if !privileged {
            let mut v: Vec<u16> = self.syn.iter().chain(&self.ack).copied().collect();
            if v.is_empty() {
                v = vec![ACK_PORT, SYN_PORT];
            }
            v.sort_unstable();
            v.dedup();
            return v.into_iter().map(|p| (Proto::Tcp, p)).collect();
        }
        if on_link && !self.disable_arp {
            return vec![(Proto::Arp, 0)];
        }
        if !self.explicit_ip() {
            return vec![
                (Proto::Icmp, icmp::ECHO),
                (Proto::Tcp, SYN_PORT),
                (Proto::TcpAck, ACK_PORT),
                (Proto::Icmp, icmp::TIMESTAMP),
            ];
        }
        let mut v = Vec::new();
        if self.echo {
            v.push((Proto::Icmp, icmp::ECHO));
        }
        if self.timestamp {
            v.push((Proto::Icmp, icmp::TIMESTAMP));
        }
        v.extend(self.syn.iter().map(|&p| (Proto::Tcp, p)));
        v.extend(self.ack.iter().map(|&p| (Proto::TcpAck, p)));
        v.extend(self.udp.iter().map(|&p| (Proto::Udp, p)));
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Does this result prove its host is up?
pub fn proves_up(r: &PortResult) -> bool {
    matches!(
        r.state,
        PortState::Open | PortState::Closed | PortState::Unfiltered
    )
}

/// What a discovery pass found.
#[derive(Debug, Default)]
pub struct Found {
    /// Live hosts: latency, and the reason and TTL of the first proof.
    pub up: HashMap<IpAddr, HostInfo>,
    /// Hosts found down (listed only when asked for: `-v`).
    pub down: Vec<IpAddr>,
    /// How many hosts were found down.
    pub down_count: u64,
}

impl Found {
    /// Add another pass's findings (over other hosts).
    pub fn absorb(&mut self, other: Found) {
        self.up.extend(other.up);
        self.down.extend(other.down);
        self.down_count += other.down_count;
    }

    /// `own` (the machine's own addresses among the targets) are up, as
    /// nmap reports them: `localhost-response`, no latency.
    pub fn add_own(&mut self, own: &[IpAddr]) {
        for ip in own {
            self.up.entry(*ip).or_insert(HostInfo {
                latency: None,
                reason: Some(Reason::LocalhostResponse),
                ttl: None,
                mac: None,
            });
        }
    }

    /// The live hosts as a target set (sorted, for a port-scan plan).
    pub fn live_set(&self) -> HostSet {
        HostSet::from_addrs(self.up.keys().copied())
    }
}

/// The discovery pass's sink: live hosts, and per host a count of
/// decided probes while some are still undecided.
struct Tally<'a> {
    per_host: u32,
    pending: HashMap<IpAddr, u32>,
    found: Found,
    keep_down: bool,
    progress: &'a mut dyn FnMut(&Progress),
}

impl Sink for Tally<'_> {
    fn result(&mut self, r: &PortResult) {
        let ip = r.key.ip;
        if proves_up(r) && !self.found.up.contains_key(&ip) {
            self.found.up.insert(
                ip,
                HostInfo {
                    latency: None,
                    reason: Some(r.reason),
                    ttl: r.ttl,
                    mac: None,
                },
            );
        }
        let n = self.pending.entry(ip).or_insert(0);
        *n += 1;
        if *n >= self.per_host {
            self.pending.remove(&ip);
            if !self.found.up.contains_key(&ip) {
                self.found.down_count += 1;
                if self.keep_down {
                    self.found.down.push(ip);
                }
            }
        }
    }

    fn progress(&mut self, p: &Progress) {
        (self.progress)(p);
    }
}

/// Run a discovery pass over `hosts` with `probes` on `backend` (left
/// running: the caller joins it or scans on with it).
#[allow(clippy::too_many_arguments)]
pub fn run(
    hosts: &HostSet,
    probes: Vec<(Proto, u16)>,
    seed: u64,
    settings: Settings,
    backend: &Backend,
    keep_down: bool,
    interrupts: &AtomicUsize,
    progress: &mut dyn FnMut(&Progress),
) -> anyhow::Result<(Found, Summary)> {
    let per_host = probes.len() as u32;
    // nmap's host discovery: group timing (a silent address waits the
    // round trip the live ones show, not the initial timeout) and two
    // tries per probe, unless --max-retries fixed the tries.
    let fixed = settings.budget.min_tries >= settings.budget.max_tries;
    let settings = Settings {
        group_timing: true,
        budget: if fixed {
            settings.budget
        } else {
            Budget {
                min_tries: DISCOVERY_TRIES,
                max_tries: DISCOVERY_TRIES,
            }
        },
        ..settings
    };
    let plan = Plan::new(hosts.clone(), probes, seed, Shard::WHOLE)
        .map_err(|e| anyhow::anyhow!("host discovery: {e}"))?;
    let mut tally = Tally {
        per_host,
        pending: HashMap::new(),
        found: Found::default(),
        keep_down,
        progress,
    };
    let summary = engine::run_on(&plan, settings, backend, &mut tally, interrupts);
    let mut found = tally.found;
    for (ip, info) in found.up.iter_mut() {
        if let Some(h) = summary.up.get(ip) {
            info.latency = h.latency;
        }
        info.mac = backend.neighbour(ip);
    }
    found.down.sort_unstable();
    Ok((found, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{ProbeKey, Reason};

    #[test]
    fn probes_follow_nmaps_choice() {
        let d = Discovery::default();
        assert_eq!(
            d.probes(true, false),
            vec![
                (Proto::Icmp, 8),
                (Proto::Tcp, 443),
                (Proto::TcpAck, 80),
                (Proto::Icmp, 13)
            ]
        );
        assert_eq!(d.probes(true, true), vec![(Proto::Arp, 0)]);
        assert_eq!(
            d.probes(false, true),
            vec![(Proto::Tcp, 80), (Proto::Tcp, 443)]
        );
        let no_arp = Discovery {
            disable_arp: true,
            echo: true,
            syn: vec![22],
            ..Discovery::default()
        };
        assert_eq!(
            no_arp.probes(true, true),
            vec![(Proto::Tcp, 22), (Proto::Icmp, 8)]
        );
        assert_eq!(no_arp.probes(false, false), vec![(Proto::Tcp, 22)]);
    }

    #[test]
    fn a_host_is_down_once_every_probe_is_decided_without_proof() {
        let key = |ip: &str, proto, port| ProbeKey {
            ip: ip.parse().unwrap(),
            port,
            proto,
        };
        let res = |k, state, reason| PortResult {
            key: k,
            state,
            reason,
            ttl: Some(64),
        };
        let mut seen = 0;
        let mut progress = |_: &Progress| seen += 1;
        let mut t = Tally {
            per_host: 2,
            pending: HashMap::new(),
            found: Found::default(),
            keep_down: true,
            progress: &mut progress,
        };
        let a = "198.18.0.2";
        let b = "198.18.0.3";
        t.result(&res(
            key(b, Proto::Icmp, 8),
            PortState::Filtered,
            Reason::NoResponse,
        ));
        assert_eq!(t.found.down_count, 0, "one probe of two decided");
        t.result(&res(
            key(a, Proto::Icmp, 8),
            PortState::Filtered,
            Reason::HostUnreach,
        ));
        t.result(&res(
            key(a, Proto::TcpAck, 80),
            PortState::Unfiltered,
            Reason::Reset,
        ));
        t.result(&res(
            key(b, Proto::TcpAck, 80),
            PortState::Filtered,
            Reason::NoResponse,
        ));
        assert_eq!(t.found.down_count, 1);
        assert_eq!(t.found.down, vec![b.parse::<IpAddr>().unwrap()]);
        let up = t.found.up[&a.parse::<IpAddr>().unwrap()];
        assert_eq!((up.reason, up.ttl), (Some(Reason::Reset), Some(64)));
        assert!(t.pending.is_empty(), "nothing is kept for decided hosts");
    }

    #[test]
    fn only_answers_from_the_host_prove_it_up() {
        let r = |state, reason| PortResult {
            key: ProbeKey {
                ip: "198.18.0.2".parse().unwrap(),
                port: 80,
                proto: Proto::Tcp,
            },
            state,
            reason,
            ttl: None,
        };
        assert!(proves_up(&r(PortState::Open, Reason::EchoReply)));
        assert!(proves_up(&r(PortState::Closed, Reason::ConnRefused)));
        assert!(proves_up(&r(PortState::Unfiltered, Reason::Reset)));
        assert!(!proves_up(&r(PortState::Filtered, Reason::NoResponse)));
        // A router's host-unreachable or port-unreachable: filtered.
        assert!(!proves_up(&r(PortState::Filtered, Reason::HostUnreach)));
        assert!(!proves_up(&r(PortState::Filtered, Reason::PortUnreach)));
        assert!(!proves_up(&r(PortState::OpenFiltered, Reason::NoResponse)));
    }
}
