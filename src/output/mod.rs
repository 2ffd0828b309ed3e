//! Output: the result collector (the engine's `Sink`), the report it
//! builds, and every output format.
//!
//! Invariants: formats only format; they never decide a state. Results go
//! to stdout or files; progress and `-v` discoveries go to stderr.

pub mod grepable;
pub mod ndjson;
pub mod normal;
pub mod progress;
pub mod time;
pub mod xml;

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
    /// `-sV` results, kept apart from the port states: formats print them
    /// in the service columns of the ports they name.
    pub services: crate::version::Services,
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

/// The engine's sink: collects the report, streams NDJSON, prints `-v`
/// discoveries and progress to stderr.
pub struct Collector<'a> {
    pub report: Report,
    view: View,
    stderr: &'a mut dyn Write,
    ndjson: Option<ndjson::Ndjson<Box<dyn Write + 'a>>>,
    progress: progress::ProgressLine,
    stats: Option<progress::StatsEvery>,
    /// The first error writing the NDJSON stream (reported at the end).
    pub stream_error: Option<std::io::Error>,
}

impl<'a> Collector<'a> {
    pub fn new(view: View, stderr: &'a mut dyn Write) -> Self {
        Collector {
            report: Report::default(),
            view,
            stderr,
            ndjson: None,
            progress: progress::ProgressLine::new(false),
            stats: None,
            stream_error: None,
        }
    }

    /// Stream each result as NDJSON to `w` as it is decided.
    pub fn with_ndjson(mut self, w: Box<dyn Write + 'a>) -> Self {
        self.ndjson = Some(ndjson::Ndjson::new(w));
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
            && let Err(e) = n.finish(info, summary)
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
        self.report.add(*r);
    }

    fn progress(&mut self, p: &Progress) {
        self.progress.update(p);
        if let Some(s) = self.stats.as_mut() {
            let _ = s.maybe_print(p, self.stderr);
        }
    }
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
}
