//! nmap's "normal" human-readable format.

use std::io::{self, Write};
use std::time::Duration;

use super::{Collapsed, Report, ScanInfo, View, collapse, reported_hosts, service, time};
use crate::engine::Summary;

pub fn header(w: &mut dyn Write, info: &ScanInfo) -> io::Result<()> {
    writeln!(
        w,
        "Starting rawscan {} at {}",
        info.version,
        time::short(info.start)
    )
}

/// Two significant digits, as nmap's `%.2g` latency.
fn latency(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        return "0s".into();
    }
    let digits = (1 - s.log10().floor() as i32).max(0) as usize;
    format!("{s:.digits$}s")
}

fn collapsed_line(groups: &[Collapsed]) -> String {
    let parts: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {} {} ports ({})", g.count, g.state, g.proto, g.reason))
        .collect();
    format!("Not shown: {}", parts.join(", "))
}

pub fn hosts(w: &mut dyn Write, report: &Report, summary: &Summary, view: &View) -> io::Result<()> {
    for host in reported_hosts(report, summary, view) {
        let ip = &host.ip;
        writeln!(w, "rawscan scan report for {ip}")?;
        match summary.up.get(ip).and_then(|h| h.latency) {
            Some(l) => writeln!(w, "Host is up ({} latency).", latency(l))?,
            None if summary.up.contains_key(ip) => writeln!(w, "Host is up.")?,
            None => writeln!(w, "Host did not answer any probe.")?,
        }
        let (rows, groups) = collapse(&host, view);
        if rows.is_empty() {
            writeln!(
                w,
                "All {} scanned ports on {ip} are in ignored states.",
                host.total()
            )?;
        }
        if !groups.is_empty() {
            writeln!(w, "{}", collapsed_line(&groups))?;
        }
        if !rows.is_empty() {
            let cells: Vec<[String; 4]> = rows
                .iter()
                .map(|r| {
                    let why = match r.ttl {
                        Some(t) => format!("{} ttl {t}", r.reason),
                        None => r.reason.to_string(),
                    };
                    [
                        format!("{}/{}", r.key.port, r.key.proto),
                        r.state.to_string(),
                        service(r.key.proto, r.key.port).to_string(),
                        why,
                    ]
                })
                .collect();
            let head = ["PORT", "STATE", "SERVICE", "REASON"];
            let ncol = if view.reason { 4 } else { 3 };
            let width: Vec<usize> = (0..ncol)
                .map(|i| {
                    cells
                        .iter()
                        .map(|c| c[i].len())
                        .chain([head[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cols: [&str; 4]| -> String {
                let mut s = String::new();
                for i in 0..ncol {
                    if i + 1 == ncol {
                        s.push_str(cols[i]);
                    } else {
                        s.push_str(&format!("{:<w$} ", cols[i], w = width[i]));
                    }
                }
                s
            };
            writeln!(w, "{}", line(head))?;
            for c in &cells {
                writeln!(w, "{}", line([&c[0], &c[1], &c[2], &c[3]]))?;
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

pub fn footer(w: &mut dyn Write, info: &ScanInfo, summary: &Summary) -> io::Result<()> {
    let n = info.hosts_total;
    let up = summary.up.len();
    let interrupted = if summary.interrupted {
        " (interrupted)"
    } else {
        ""
    };
    writeln!(
        w,
        "rawscan done: {n} IP address{} ({up} host{} up) scanned in {:.2} seconds{interrupted}",
        if n == 1 { "" } else { "es" },
        if up == 1 { "" } else { "s" },
        summary.elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostInfo;
    use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};

    fn res(port: u16, state: PortState, reason: Reason) -> PortResult {
        PortResult {
            key: ProbeKey {
                ip: "198.18.0.2".parse().unwrap(),
                port,
                proto: Proto::Tcp,
            },
            state,
            reason,
            ttl: Some(64),
        }
    }

    #[test]
    fn collapses_the_dominant_state_and_aligns_columns() {
        let mut report = Report::new((1..=100).map(|p| (Proto::Tcp, p)));
        for p in (1..=100).filter(|p| ![22, 81].contains(p)) {
            report
                .add(&res(p, PortState::Closed, Reason::Reset))
                .unwrap();
        }
        report
            .add(&res(22, PortState::Open, Reason::SynAck))
            .unwrap();
        report
            .add(&res(81, PortState::Filtered, Reason::AdminProhibited))
            .unwrap();
        let mut summary = Summary::default();
        summary.up.insert(
            "198.18.0.2".parse().unwrap(),
            HostInfo {
                latency: Some(Duration::from_micros(52)),
            },
        );
        let mut out = Vec::new();
        let view = View {
            reason: true,
            ..View::default()
        };
        hosts(&mut out, &report, &summary, &view).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Host is up (0.000052s latency)."), "{text}");
        assert!(
            text.contains("Not shown: 98 closed tcp ports (reset)"),
            "{text}"
        );
        assert!(text.contains("PORT   STATE    SERVICE REASON\n"), "{text}");
        assert!(
            text.contains("22/tcp open     ssh     syn-ack ttl 64\n"),
            "{text}"
        );
        assert!(text.contains("81/tcp filtered"), "{text}");
        assert!(!text.contains("23/tcp"), "{text}");
    }

    #[test]
    fn latency_has_two_significant_digits() {
        assert_eq!(latency(Duration::from_micros(52)), "0.000052s");
        assert_eq!(latency(Duration::from_millis(15)), "0.015s");
        assert_eq!(latency(Duration::from_millis(1500)), "1.5s");
    }
}
