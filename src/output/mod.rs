//! Output: the result collector (the engine's `Sink`), the report it
//! builds, and every output format.
//!
//! Invariants: formats only format; they never decide a state. Results go
//! to stdout or files; progress and `-v` discoveries go to stderr.

pub mod grepable;
pub mod merge;
pub mod ndjson;
pub mod normal;
pub mod progress;
pub mod report;
pub mod time;
pub mod xml;

pub use report::{Host, Report};

use std::io::Write;
use std::time::SystemTime;

use crate::engine::{Progress, Sink, Summary};
use crate::plan::Shard;
use crate::probe::{PortResult, PortState, Proto, Reason};
use crate::services;

/// Facts about the run that every format prints.
#[derive(Clone, Debug)]
pub struct ScanInfo {
    pub start: SystemTime,
    /// The command line, as typed.
    pub args: String,
    /// The arguments as given, without the program name.
    pub argv: Vec<String>,
    pub version: String,
    /// nmap's scaninfo type: "syn", "connect", "udp".
    pub tcp_type: Option<&'static str>,
    pub udp: bool,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    pub hosts_total: u128,
    /// The seed of the scan order.
    pub seed: u64,
    /// This run's slice of the scan.
    pub shard: Shard,
    /// (host, port) pairs in this run's slice.
    pub pairs: u64,
}

impl ScanInfo {
    /// Every (protocol, port) the scan probes on each host.
    pub fn ports(&self) -> impl Iterator<Item = (Proto, u16)> + '_ {
        self.tcp_ports
            .iter()
            .map(|&p| (Proto::Tcp, p))
            .chain(self.udp_ports.iter().map(|&p| (Proto::Udp, p)))
    }
}

/// Display choices shared by the human formats.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    pub reason: bool,
    pub open_only: bool,
    pub verbose: u8,
}

pub fn service(proto: Proto, port: u16) -> &'static str {
    services::service_name(proto, port).unwrap_or("unknown")
}

/// A port list in nmap's compressed form: sorted, deduplicated, runs
/// collapsed into ranges (`1-21,23,80-81`). Empty input gives "".
pub fn port_ranges(ports: impl IntoIterator<Item = u16>) -> String {
    let mut v: Vec<u16> = ports.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end.wrapping_add(1) && end != u16::MAX {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// `1 IP address (1 host up)` / `3 IP addresses (2 hosts up)`, as in
/// nmap's closing lines.
pub fn hosts_phrase(total: u128, up: usize) -> String {
    format!(
        "{total} IP address{} ({up} host{} up)",
        if total == 1 { "" } else { "es" },
        if up == 1 { "" } else { "s" }
    )
}

/// Ports "shown" under --open: open, open|filtered, unfiltered (as nmap).
pub fn shown_with_open(s: PortState) -> bool {
    matches!(
        s,
        PortState::Open | PortState::OpenFiltered | PortState::Unfiltered
    )
}

/// A group of ports collapsed into a "Not shown" line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Collapsed {
    pub state: PortState,
    pub proto: Proto,
    pub reason: Reason,
    pub count: usize,
}

/// nmap collapses uninteresting groups with more than this many ports.
pub const COLLAPSE_OVER: usize = 25;

/// Split a host's results into rows to print (port order) and collapsed
/// groups (largest first), as nmap: a group of (state, proto, reason) with
/// more than `COLLAPSE_OVER` ports is collapsed unless its state is open,
/// and `--open` hides every state it does not show.
pub fn collapse(host: &Host<'_>, view: &View) -> (Vec<PortResult>, Vec<Collapsed>) {
    let groups = host.groups();
    let hidden = |s: PortState, p: Proto, why: Reason| {
        if view.open_only && !shown_with_open(s) {
            return true;
        }
        s != PortState::Open && groups.get(&(s, p, why)).copied().unwrap_or(0) > COLLAPSE_OVER
    };
    let rows = host
        .results()
        .filter(|r| !hidden(r.state, r.key.proto, r.reason))
        .collect();
    let mut collapsed: Vec<Collapsed> = groups
        .iter()
        .filter(|((s, p, why), _)| hidden(*s, *p, *why))
        .map(|(&(state, proto, reason), &count)| Collapsed {
            state,
            proto,
            reason,
            count,
        })
        .collect();
    collapsed.sort_by(|a, b| b.count.cmp(&a.count).then(a.cmp(b)));
    (rows, collapsed)
}

/// The engine's sink: collects the report, streams NDJSON, prints `-v`
/// discoveries and progress to stderr.
pub struct Collector<'a> {
    pub report: Report,
    view: View,
    stderr: &'a mut dyn Write,
    ndjson: Option<ndjson::Ndjson<Box<dyn Write + 'a>>>,
    progress: progress::ProgressLine,
    stats: Option<progress::StatsEvery>,
    /// `--stats-every` during host discovery (its own clock and label).
    ping_stats: Option<progress::StatsEvery>,
    /// The first error writing the NDJSON stream (reported at the end).
    pub stream_error: Option<std::io::Error>,
    /// Results the report refused (a port outside the scan's list, or a
    /// second result for a key): never expected from the engine.
    pub rejected: u64,
}

impl<'a> Collector<'a> {
    /// Collect into `report` (empty, made for the scan's ports).
    pub fn new(report: Report, view: View, stderr: &'a mut dyn Write) -> Self {
        Collector {
            report,
            view,
            stderr,
            ndjson: None,
            progress: progress::ProgressLine::new(false),
            stats: None,
            ping_stats: None,
            stream_error: None,
            rejected: 0,
        }
    }

    /// Stream each result as NDJSON to `w` as it is decided, after the
    /// opening `scan` line.
    pub fn with_ndjson(mut self, w: Box<dyn Write + 'a>, info: &ScanInfo) -> Self {
        let mut n = ndjson::Ndjson::new(w);
        if let Err(e) = n.start(info, &self.view) {
            self.stream_error = Some(e);
        }
        self.ndjson = Some(n);
        self
    }

    /// Draw a live progress line (the caller checks stderr is a TTY).
    pub fn with_progress(mut self, enabled: bool) -> Self {
        self.progress = progress::ProgressLine::new(enabled);
        self
    }

    pub fn with_stats_every(mut self, s: Option<progress::StatsEvery>) -> Self {
        self.stats = s;
        self
    }

    /// Host discovery's progress: the same bar, and `--stats-every`
    /// lines labelled "Ping Scan" (nmap's name for the phase).
    pub fn discovery_progress(&mut self, p: &Progress) {
        self.progress.update(p);
        if self.ping_stats.is_none() {
            self.ping_stats = self.stats.clone().map(|s| s.label("Ping Scan"));
        }
        if let Some(s) = self.ping_stats.as_mut() {
            let _ = s.maybe_print(p, self.stderr);
        }
    }

    /// A line on stderr (above the progress line, if one is drawn).
    pub fn note(&mut self, line: &str) {
        if self.progress.is_drawn() {
            self.progress.println(line);
        } else {
            let _ = writeln!(self.stderr, "{line}");
        }
    }

    /// Stream one `-sV` result (NDJSON `"type":"service"` line).
    pub fn service(&mut self, key: &crate::probe::ProbeKey, s: &crate::version::Service) {
        if let Some(n) = self.ndjson.as_mut()
            && self.stream_error.is_none()
            && let Err(e) = n.service(key, s)
        {
            self.stream_error = Some(e);
        }
    }

    /// Clear the progress line and close the NDJSON stream with its summary.
    pub fn finish(&mut self, info: &ScanInfo, summary: &Summary) {
        self.progress.finish();
        if let Some(n) = self.ndjson.as_mut()
            && self.stream_error.is_none()
            && let Err(e) = n.finish(info, &self.report, summary)
        {
            self.stream_error.get_or_insert(e);
        }
        self.ndjson = None;
    }
}

impl Sink for Collector<'_> {
    fn result(&mut self, r: &PortResult) {
        if self.view.verbose > 0 && r.state == PortState::Open {
            let line = format!(
                "Discovered open port {}/{} on {}",
                r.key.port, r.key.proto, r.key.ip
            );
            if self.progress.is_drawn() {
                self.progress.println(&line);
            } else {
                let _ = writeln!(self.stderr, "{line}");
            }
        }
        if let Some(n) = self.ndjson.as_mut()
            && self.stream_error.is_none()
            && let Err(e) = n.result(r)
        {
            self.stream_error = Some(e);
        }
        if self.report.add(r).is_err() {
            self.rejected += 1;
        }
    }

    fn progress(&mut self, p: &Progress) {
        if let Some(n) = self.ndjson.as_mut()
            && self.stream_error.is_none()
            && let Err(e) = n.flush()
        {
            self.stream_error = Some(e);
        }
        self.progress.update(p);
        if let Some(s) = self.stats.as_mut() {
            let _ = s.maybe_print(p, self.stderr);
        }
    }
}

/// Hosts to print: those that answered, or every host when few were scanned.
pub fn reported_hosts<'a>(report: &'a Report, summary: &Summary, view: &View) -> Vec<Host<'a>> {
    let single = report.len() == 1;
    report
        .hosts()
        .filter(|h| {
            if h.total() == 0 {
                // Host discovery only: live hosts, and down ones under -v.
                return summary.up.contains_key(&h.ip) || view.verbose > 0;
            }
            if view.open_only {
                return h.any_state(shown_with_open);
            }
            summary.up.contains_key(&h.ip) || single || view.verbose > 0
        })
        .collect()
}

/// Helpers for format tests that call lab tools (xmllint, ndiff).
#[cfg(test)]
pub(crate) mod testutil {
    use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};
    use std::path::Path;

    /// A result for formatter tests.
    pub fn res(
        ip: &str,
        port: u16,
        proto: Proto,
        state: PortState,
        reason: Reason,
        ttl: Option<u8>,
    ) -> PortResult {
        PortResult {
            key: ProbeKey {
                ip: ip.parse().expect("test address"),
                port,
                proto,
            },
            state,
            reason,
            ttl,
        }
    }

    /// Whether a lab tool or file is present. Missing: skip with a note,
    /// unless RAWSCAN_REQUIRE_LAB=1, where a missing tool fails the test.
    pub fn lab_tool(path: &str) -> bool {
        if Path::new(path).exists() {
            return true;
        }
        assert!(
            std::env::var("RAWSCAN_REQUIRE_LAB").as_deref() != Ok("1"),
            "{path} is missing and RAWSCAN_REQUIRE_LAB=1"
        );
        eprintln!("note: {path} is missing; skipping this check");
        false
    }

    /// Write `data` to a file unique to this process and name; its path.
    pub fn scratch_file(name: &str, data: &[u8]) -> String {
        let path = std::env::temp_dir().join(format!("rawscan-test-{}-{name}", std::process::id()));
        std::fs::write(&path, data).expect("writing a scratch file");
        path.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_compress_into_ranges() {
        assert_eq!(port_ranges([]), "");
        assert_eq!(port_ranges([80]), "80");
        assert_eq!(
            port_ranges([3, 1, 2, 2, 80, 8080, 81, 5]),
            "1-3,5,80-81,8080"
        );
        assert_eq!(port_ranges([65534, 65535, 0]), "0,65534-65535");
    }

    #[test]
    fn host_phrases_pluralize() {
        assert_eq!(hosts_phrase(1, 1), "1 IP address (1 host up)");
        assert_eq!(hosts_phrase(256, 0), "256 IP addresses (0 hosts up)");
    }

    // ----- The compact report against the former full Vec<PortResult> -----

    use crate::engine::HostInfo;
    use crate::probe::ProbeKey;
    use std::collections::{BTreeMap, HashSet};
    use std::net::IpAddr;

    /// The collapse of rawscan before the compact report, verbatim: over a
    /// host's full, port-sorted result list.
    fn reference_collapse<'a>(
        results: &'a [PortResult],
        view: &View,
    ) -> (Vec<&'a PortResult>, Vec<Collapsed>) {
        let mut groups: BTreeMap<(PortState, Proto, Reason), usize> = BTreeMap::new();
        for r in results {
            *groups.entry((r.state, r.key.proto, r.reason)).or_default() += 1;
        }
        let hidden = |s: PortState, p: Proto, why: Reason| {
            if view.open_only && !shown_with_open(s) {
                return true;
            }
            s != PortState::Open && groups.get(&(s, p, why)).copied().unwrap_or(0) > COLLAPSE_OVER
        };
        let rows = results
            .iter()
            .filter(|r| !hidden(r.state, r.key.proto, r.reason))
            .collect();
        let mut collapsed: Vec<Collapsed> = groups
            .iter()
            .filter(|((s, p, why), _)| hidden(*s, *p, *why))
            .map(|(&(state, proto, reason), &count)| Collapsed {
                state,
                proto,
                reason,
                count,
            })
            .collect();
        collapsed.sort_by(|a, b| b.count.cmp(&a.count).then(a.cmp(b)));
        (rows, collapsed)
    }

    /// The former host filter of `reported_hosts`.
    fn reference_reported(
        hosts: &BTreeMap<IpAddr, Vec<PortResult>>,
        up: &HashSet<IpAddr>,
        view: &View,
    ) -> Vec<IpAddr> {
        hosts
            .iter()
            .filter(|(ip, res)| {
                let any_open = res.iter().any(|r| shown_with_open(r.state));
                if view.open_only {
                    return any_open;
                }
                up.contains(ip) || hosts.len() == 1 || view.verbose > 0
            })
            .map(|(ip, _)| *ip)
            .collect()
    }

    /// xorshift64*: a seeded, dependency-free generator for the tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A random outcome, skewed so that some groups pass 25 ports and
    /// others do not, with several TTLs per group.
    fn outcome(rng: &mut Rng, proto: Proto, skew: u64) -> (PortState, Reason, Option<u8>) {
        use PortState::*;
        use Reason::*;
        let ttl = [None, Some(64), Some(63), Some(250)][rng.below(4) as usize];
        let roll = rng.below(100);
        let (s, r) = match proto {
            Proto::Tcp => match roll {
                x if x < skew => (Closed, Reset),
                x if x < skew + 8 => (Filtered, NoResponse),
                x if x < skew + 12 => (Open, SynAck),
                x if x < skew + 15 => (Filtered, AdminProhibited),
                x if x < skew + 17 => (Unfiltered, Reset),
                _ => (Filtered, HostUnreach),
            },
            Proto::Udp => match roll {
                x if x < skew => (Closed, PortUnreach),
                x if x < skew + 10 => (OpenFiltered, NoResponse),
                x if x < skew + 14 => (Open, UdpResponse),
                x if x < skew + 16 => (ClosedFiltered, NoResponse),
                _ => (Filtered, AdminProhibited),
            },
            Proto::Icmp | Proto::TcpAck | Proto::Arp => (Open, EchoReply),
        };
        let ttl = if r == NoResponse { None } else { ttl };
        (s, r, ttl)
    }

    #[test]
    fn compact_report_reproduces_the_full_result_lists_exactly() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let views: Vec<View> = [false, true]
            .into_iter()
            .flat_map(|open_only| {
                [0u8, 1].map(|verbose| View {
                    reason: true,
                    open_only,
                    verbose,
                })
            })
            .collect();
        let mut checked_groups = 0;
        for round in 0..400 {
            // The scan's ports: a random subset of TCP 1-400 and UDP 1-120.
            let mut space: Vec<(Proto, u16)> = Vec::new();
            let keep = 20 + rng.below(80);
            for p in 1..=400u16 {
                if rng.below(100) < keep {
                    space.push((Proto::Tcp, p));
                }
            }
            if round % 3 == 0 {
                for p in 1..=120u16 {
                    if rng.below(100) < keep {
                        space.push((Proto::Udp, p));
                    }
                }
            }
            let nhosts = 1 + rng.below(4);
            let hosts: Vec<IpAddr> = (0..nhosts)
                .map(|i| {
                    if i == 3 {
                        "2001:db8::9".parse().unwrap()
                    } else {
                        format!("198.18.{}.{}", round % 200, i + 2).parse().unwrap()
                    }
                })
                .collect();
            let mut full: BTreeMap<IpAddr, Vec<PortResult>> = BTreeMap::new();
            let mut all = Vec::new();
            for ip in &hosts {
                // Some hosts are silent, some mostly closed, some mixed;
                // an interrupted scan leaves ports undecided.
                let skew = [0, 40, 75, 95][rng.below(4) as usize];
                let silent = rng.below(5) == 0;
                let decided = if rng.below(4) == 0 {
                    rng.below(100)
                } else {
                    100
                };
                for &(proto, port) in &space {
                    if rng.below(100) >= decided {
                        continue;
                    }
                    let (state, reason, ttl) = if silent {
                        let s = match proto {
                            Proto::Tcp => PortState::Filtered,
                            Proto::Udp => PortState::OpenFiltered,
                            _ => PortState::Filtered,
                        };
                        (s, Reason::NoResponse, None)
                    } else {
                        outcome(&mut rng, proto, skew)
                    };
                    let r = PortResult {
                        key: ProbeKey {
                            ip: *ip,
                            port,
                            proto,
                        },
                        state,
                        reason,
                        ttl,
                    };
                    full.entry(*ip).or_default().push(r);
                    all.push(r);
                }
            }
            // Results arrive in scan (random) order.
            for i in (1..all.len()).rev() {
                all.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut report = Report::new(space.iter().copied());
            for r in &all {
                report.add(r).unwrap();
            }
            for v in full.values_mut() {
                v.sort_by_key(|r| (r.key.port, r.key.proto));
            }
            // Up: hosts that sent a reply (any reason but no-response).
            let up: HashSet<IpAddr> = full
                .iter()
                .filter(|(_, v)| v.iter().any(|r| r.reason != Reason::NoResponse))
                .map(|(ip, _)| *ip)
                .collect();
            let mut summary = Summary::default();
            for ip in &up {
                summary.up.insert(*ip, HostInfo::default());
            }
            assert_eq!(report.len(), full.len());
            assert_eq!(report.decided() as usize, all.len());
            for view in &views {
                let got: Vec<IpAddr> = reported_hosts(&report, &summary, view)
                    .iter()
                    .map(|h| h.ip)
                    .collect();
                assert_eq!(got, reference_reported(&full, &up, view), "{view:?}");
            }
            for (ip, results) in &full {
                let host = report.host(ip).unwrap();
                assert_eq!(host.total(), results.len());
                assert_eq!(host.results().collect::<Vec<_>>(), *results);
                // The XML status reason: the first answered port.
                assert_eq!(
                    host.results().find(|r| r.reason != Reason::NoResponse),
                    results
                        .iter()
                        .find(|r| r.reason != Reason::NoResponse)
                        .copied()
                );
                for view in &views {
                    let (rows, groups) = collapse(&host, view);
                    let (want_rows, want_groups) = reference_collapse(results, view);
                    let want_rows: Vec<PortResult> = want_rows.into_iter().copied().collect();
                    assert_eq!(rows, want_rows, "{ip} {view:?}");
                    assert_eq!(groups, want_groups, "{ip} {view:?}");
                    // The "Not shown" line and <extraports> are made of these
                    // groups; <extrareasons ports=...> of these port lists.
                    for g in &groups {
                        let want = port_ranges(
                            results
                                .iter()
                                .filter(|r| {
                                    r.state == g.state
                                        && r.key.proto == g.proto
                                        && r.reason == g.reason
                                })
                                .map(|r| r.key.port),
                        );
                        assert_eq!(port_ranges(host.ports_in(g.state, g.proto, g.reason)), want);
                        checked_groups += 1;
                    }
                }
            }
        }
        assert!(
            checked_groups > 1000,
            "only {checked_groups} groups checked"
        );
    }
}
