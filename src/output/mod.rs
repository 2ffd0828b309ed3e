//! Output: the result collector (the engine's `Sink`), the report it
//! builds, and every output format.
//!
//! Invariants: formats only format; they never decide a state. Results go
//! to stdout or files; progress and `-v` discoveries go to stderr.

pub mod normal;
pub mod time;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::SystemTime;

use crate::engine::{Progress, Sink, Summary};
use crate::probe::{PortResult, PortState, Proto, Reason};
use crate::services;

/// Facts about the run that every format prints.
#[derive(Clone, Debug)]
pub struct ScanInfo {
    pub start: SystemTime,
    /// The command line, as typed.
    pub args: String,
    pub version: &'static str,
    /// nmap's scaninfo type: "syn", "connect", "udp".
    pub tcp_type: Option<&'static str>,
    pub udp: bool,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    pub hosts_total: u128,
}

/// Display choices shared by the human formats.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    pub reason: bool,
    pub open_only: bool,
    pub verbose: u8,
}

/// Every result, per host, in port order once `finish`ed.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub hosts: BTreeMap<IpAddr, Vec<PortResult>>,
}

impl Report {
    pub fn add(&mut self, r: PortResult) {
        self.hosts.entry(r.key.ip).or_default().push(r);
    }

    pub fn finish(&mut self) {
        for v in self.hosts.values_mut() {
            v.sort_by_key(|r| (r.key.port, r.key.proto));
        }
    }
}

pub fn service(proto: Proto, port: u16) -> &'static str {
    services::service_name(proto, port).unwrap_or("unknown")
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

/// Split a host's results into rows to print and collapsed groups.
pub fn collapse<'a>(
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

/// The engine's sink: collects the report, prints `-v` discoveries to
/// stderr, and forwards to streaming writers.
pub struct Collector<'a> {
    pub report: Report,
    view: View,
    stderr: &'a mut dyn Write,
}

impl<'a> Collector<'a> {
    pub fn new(view: View, stderr: &'a mut dyn Write) -> Self {
        Collector {
            report: Report::default(),
            view,
            stderr,
        }
    }
}

impl Sink for Collector<'_> {
    fn result(&mut self, r: &PortResult) {
        if self.view.verbose > 0 && r.state == PortState::Open {
            let _ = writeln!(
                self.stderr,
                "Discovered open port {}/{} on {}",
                r.key.port, r.key.proto, r.key.ip
            );
        }
        self.report.add(*r);
    }

    fn progress(&mut self, _p: &Progress) {}
}

/// Hosts to print: those that answered, or every host when few were scanned.
pub fn reported_hosts<'a>(
    report: &'a Report,
    summary: &Summary,
    view: &View,
) -> Vec<(&'a IpAddr, &'a Vec<PortResult>)> {
    report
        .hosts
        .iter()
        .filter(|(ip, res)| {
            let up = summary.up.contains_key(ip);
            let any_open = res.iter().any(|r| shown_with_open(r.state));
            if view.open_only {
                return any_open;
            }
            up || report.hosts.len() == 1 || view.verbose > 0
        })
        .collect()
}
