//! nmap's "normal" human-readable format.

use std::io::{self, Write};
use std::time::Duration;

use super::{Collapsed, Report, ScanInfo, View, collapse, reported_hosts, service, time};
use crate::engine::Summary;
use crate::probe::PortResult;
use crate::version::Service;

/// Text from a service on one line (it is printed as is otherwise).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// nmap's `Service Info: Host: …; OS: …` line from the host's services.
fn service_info<'a>(services: impl Iterator<Item = &'a Service>) -> Option<String> {
    let mut hosts: Vec<&str> = Vec::new();
    let mut oses: Vec<&str> = Vec::new();
    for s in services {
        if let Some(h) = s.hostname.as_deref()
            && !hosts.contains(&h)
        {
            hosts.push(h);
        }
        if let Some(o) = s.ostype.as_deref()
            && !oses.contains(&o)
        {
            oses.push(o);
        }
    }
    let mut parts = Vec::new();
    if !hosts.is_empty() {
        parts.push(format!(
            "Host{}: {}",
            if hosts.len() > 1 { "s" } else { "" },
            hosts.join(", ")
        ));
    }
    if !oses.is_empty() {
        parts.push(format!(
            "OS{}: {}",
            if oses.len() > 1 { "s" } else { "" },
            oses.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| one_line(&format!("Service Info: {}", parts.join("; "))))
}

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
        if host.total() == 0 {
            // Host discovery only (-sn), or a down host under -v.
            if let Some(h) = summary.up.get(ip) {
                writeln!(w, "rawscan scan report for {ip}")?;
                // --reason: nmap's "Host is up, received echo-reply ttl 64".
                let why = match (view.reason, h.reason, h.ttl) {
                    (true, Some(r), Some(t)) => format!(", received {r} ttl {t}"),
                    (true, Some(r), None) => format!(", received {r}"),
                    _ => String::new(),
                };
                match h.latency {
                    Some(l) => writeln!(w, "Host is up{why} ({} latency).", latency(l))?,
                    None => writeln!(w, "Host is up{why}.")?,
                }
                if let Some(mac) = h.mac {
                    writeln!(w, "MAC Address: {} (Unknown)", super::xml::mac_text(mac))?;
                }
            } else {
                writeln!(w, "rawscan scan report for {ip} [host down]")?;
            }
            continue;
        }
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
            // Columns: PORT STATE SERVICE [REASON] [VERSION] (nmap's order).
            let with_version = !report.services.is_empty();
            let mut head = vec!["PORT", "STATE", "SERVICE"];
            if view.reason {
                head.push("REASON");
            }
            if with_version {
                head.push("VERSION");
            }
            let found = |r: &PortResult| report.services.get(&r.key);
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let why = match r.ttl {
                        Some(t) => format!("{} ttl {t}", r.reason),
                        None => r.reason.to_string(),
                    };
                    let mut c = vec![
                        format!("{}/{}", r.key.port, r.key.proto),
                        r.state.to_string(),
                        match found(r) {
                            Some(s) => s.display_name(),
                            None => service(r.key.proto, r.key.port).to_string(),
                        },
                    ];
                    if view.reason {
                        c.push(why);
                    }
                    if with_version {
                        c.push(found(r).map(|s| s.version_line()).unwrap_or_default());
                    }
                    c
                })
                .collect();
            let ncol = head.len();
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
            let line = |cols: &[&str]| -> String {
                let mut s = String::new();
                for i in 0..ncol {
                    if i + 1 == ncol {
                        s.push_str(cols[i]);
                    } else {
                        s.push_str(&format!("{:<w$} ", cols[i], w = width[i]));
                    }
                }
                s.trim_end().to_string()
            };
            writeln!(w, "{}", line(&head))?;
            for (r, c) in rows.iter().zip(&cells) {
                let cols: Vec<&str> = c.iter().map(String::as_str).collect();
                writeln!(w, "{}", line(&cols))?;
                // Script-like lines under the port, as nmap prints them.
                if let Some(s) = found(r) {
                    let extra = s.script_lines();
                    for (i, (k, v)) in extra.iter().enumerate() {
                        let mark = if i + 1 == extra.len() { "|_" } else { "| " };
                        writeln!(w, "{mark}{k}: {}", one_line(v))?;
                    }
                }
            }
            if with_version && let Some(info) = service_info(rows.iter().filter_map(found)) {
                writeln!(w, "{info}")?;
            }
        }
        if let Some(mac) = summary.up.get(ip).and_then(|h| h.mac) {
            writeln!(w, "MAC Address: {} (Unknown)", super::xml::mac_text(mac))?;
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
                ..HostInfo::default()
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
    fn version_column_script_lines_and_service_info() {
        use crate::version::{Method, Service};
        let mut report = Report::new([22, 443, 8000].map(|p| (Proto::Tcp, p)));
        for p in [22, 443, 8000] {
            report
                .add(&res(p, PortState::Open, Reason::SynAck))
                .unwrap();
        }
        let mut ssh = Service::from_table(Proto::Tcp, 22);
        ssh.product = Some("OpenSSH".into());
        ssh.version = Some("9.2p1 Debian 2+deb12u3".into());
        ssh.extrainfo = Some("protocol 2.0".into());
        ssh.ostype = Some("Linux".into());
        ssh.method = Method::Probed;
        let mut web = Service::from_table(Proto::Tcp, 443);
        web.name = "http".into();
        web.product = Some("nginx".into());
        web.version = Some("1.22.1".into());
        web.tunnel_tls = true;
        web.hostname = Some("lab.rawscan.test".into());
        web.details = vec![("http-title".into(), "rawscan\nlab".into())];
        let key = |p| {
            report
                .hosts()
                .next()
                .unwrap()
                .results()
                .find(|r| r.key.port == p)
                .unwrap()
                .key
        };
        let (k22, k443) = (key(22), key(443));
        report.services.insert(k22, ssh);
        report.services.insert(k443, web);
        let mut summary = Summary::default();
        summary
            .up
            .insert("198.18.0.2".parse().unwrap(), HostInfo::default());
        let mut out = Vec::new();
        hosts(&mut out, &report, &summary, &View::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("PORT     STATE SERVICE  VERSION\n"), "{text}");
        assert!(
            text.contains(
                "22/tcp   open  ssh      OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("443/tcp  open  ssl/http nginx 1.22.1\n|_http-title: rawscan lab\n"),
            "{text}"
        );
        // A port -sV did not reach keeps its table name and an empty VERSION.
        assert!(text.contains("8000/tcp open  irdmi\n"), "{text}");
        assert!(
            text.contains("Service Info: Host: lab.rawscan.test; OS: Linux\n"),
            "{text}"
        );
    }

    #[test]
    fn latency_has_two_significant_digits() {
        assert_eq!(latency(Duration::from_micros(52)), "0.000052s");
        assert_eq!(latency(Duration::from_millis(15)), "0.015s");
        assert_eq!(latency(Duration::from_millis(1500)), "1.5s");
    }
}
