//! nmap's grepable output (`-oG`): one line per host and record, fields
//! separated by tabs, ports as `port/state/proto/owner/service/rpc/version/`
//! joined by ", ", with `#` comment lines before and after.
//!
//! Invariants: this module only formats a finished `Report`; it never
//! decides a state. Hosts come from `reported_hosts` and hidden ports from
//! `collapse`, as in the normal output. As in nmap, "Ignored State" is
//! written only when the hidden ports are all of one state. No text we
//! write can break the line/field structure: tabs and line breaks in the
//! command line become spaces, and '/' in a service name becomes '|'.

use std::io::{self, Write};

use super::{Report, ScanInfo, View, collapse, hosts_phrase, reported_hosts, time};
use crate::engine::Summary;
use crate::probe::PortState;
use crate::services;

/// Replace characters that would split a line or a field.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn write(
    w: &mut dyn Write,
    info: &ScanInfo,
    report: &Report,
    summary: &Summary,
    view: &View,
) -> io::Result<()> {
    writeln!(
        w,
        "# rawscan {} scan initiated {} as: {}",
        one_line(&info.version),
        time::ctime(info.start),
        one_line(&info.args)
    )?;
    for host in reported_hosts(report, summary, view) {
        let ip = &host.ip;
        let status = if summary.up.contains_key(ip) {
            "Up"
        } else {
            "Down"
        };
        writeln!(w, "Host: {ip} ()\tStatus: {status}")?;
        if host.total() == 0 {
            // Host discovery only: nmap writes the status line alone.
            continue;
        }
        let (rows, groups) = collapse(&host, view);
        let ports: Vec<String> = rows
            .iter()
            .map(|r| {
                // -sV: the service it named ("ssl|http" inside TLS) and the
                // version in the sixth slot, as nmap writes them.
                let (name, version) = match report.services.get(&r.key) {
                    Some(s) => (s.display_name(), s.version_line()),
                    None => (
                        services::service_name(r.key.proto, r.key.port)
                            .unwrap_or("")
                            .to_string(),
                        String::new(),
                    ),
                };
                let slot = |t: &str| one_line(t).replace('/', "|");
                format!(
                    "{}/{}/{}//{}//{}/",
                    r.key.port,
                    r.state,
                    r.key.proto,
                    slot(&name),
                    slot(&version)
                )
            })
            .collect();
        write!(w, "Host: {ip} ()\tPorts: {}", ports.join(", "))?;
        let mut states: Vec<PortState> = groups.iter().map(|g| g.state).collect();
        states.sort();
        states.dedup();
        if let [state] = states[..] {
            let count: usize = groups.iter().map(|g| g.count).sum();
            write!(w, "\tIgnored State: {state} ({count})")?;
        }
        writeln!(w)?;
    }
    let end = info
        .start
        .checked_add(summary.elapsed)
        .unwrap_or(info.start);
    writeln!(
        w,
        "# rawscan done at {} -- {} scanned in {:.2} seconds{}",
        time::ctime(end),
        hosts_phrase(info.hosts_total, summary.up.len()),
        summary.elapsed.as_secs_f64(),
        if summary.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::xml::tests::{info, scan};

    /// A parsed `Ports:` entry.
    #[derive(Debug, PartialEq)]
    struct Entry {
        port: u16,
        state: String,
        proto: String,
        owner: String,
        service: String,
        rpc: String,
        version: String,
    }

    fn parse_ports(field: &str) -> Vec<Entry> {
        let list = field.strip_prefix("Ports: ").expect("a Ports field");
        if list.is_empty() {
            return Vec::new();
        }
        list.split(", ")
            .map(|e| {
                let f: Vec<&str> = e.split('/').collect();
                assert_eq!(f.len(), 8, "7 slash-terminated fields in {e:?}");
                assert_eq!(f[7], "", "entry ends with '/': {e:?}");
                Entry {
                    port: f[0].parse().unwrap(),
                    state: f[1].into(),
                    proto: f[2].into(),
                    owner: f[3].into(),
                    service: f[4].into(),
                    rpc: f[5].into(),
                    version: f[6].into(),
                }
            })
            .collect()
    }

    fn entry(port: u16, state: &str, proto: &str, service: &str) -> Entry {
        Entry {
            port,
            state: state.into(),
            proto: proto.into(),
            owner: String::new(),
            service: service.into(),
            rpc: String::new(),
            version: String::new(),
        }
    }

    fn render(view: View, interrupted: bool) -> String {
        let (report, mut summary) = scan(PortState::Open);
        summary.interrupted = interrupted;
        let mut out = Vec::new();
        write(&mut out, &info(), &report, &summary, &view).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_back_field_by_field() {
        let text = render(View::default(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(
            lines[0],
            "# rawscan 0.1.0 scan initiated Sun Nov 29 04:05:00 2026 as: rawscan -sS -sU -p 1-100,443 --reason \"<x>&'y'\" 198.18.0.2-3"
        );
        assert_eq!(
            lines[5],
            "# rawscan done at Sun Nov 29 04:05:01 2026 -- 3 IP addresses (2 hosts up) scanned in 1.23 seconds"
        );

        let fields = |l: &str| l.split('\t').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(fields(lines[1]), ["Host: 198.18.0.2 ()", "Status: Up"]);
        let f = fields(lines[2]);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0], "Host: 198.18.0.2 ()");
        assert_eq!(
            parse_ports(&f[1]),
            [
                entry(22, "open", "tcp", "ssh"),
                entry(53, "open", "udp", "domain"),
                entry(80, "open", "tcp", "http"),
                entry(81, "filtered", "tcp", ""), // not in the services table
                entry(161, "open|filtered", "udp", "snmp"),
                entry(443, "filtered", "tcp", "https"),
            ]
        );
        assert_eq!(f[2], "Ignored State: closed (97)");

        assert_eq!(fields(lines[3]), ["Host: 2001:db8::7 ()", "Status: Up"]);
        let f = fields(lines[4]);
        assert_eq!(f.len(), 2, "nothing hidden, no Ignored State: {f:?}");
        assert_eq!(
            parse_ports(&f[1]),
            [
                entry(22, "open", "tcp", "ssh"),
                entry(23, "closed", "tcp", "telnet")
            ]
        );
    }

    #[test]
    fn silent_host_shows_down_with_everything_ignored() {
        let view = View {
            verbose: 1,
            ..View::default()
        };
        let text = render(view, true);
        assert!(
            text.contains("Host: 198.18.0.3 ()\tStatus: Down\n"),
            "{text}"
        );
        assert!(
            text.contains("Host: 198.18.0.3 ()\tPorts: \tIgnored State: filtered (101)\n"),
            "{text}"
        );
        assert!(
            text.ends_with("scanned in 1.23 seconds (interrupted)\n"),
            "{text}"
        );
    }

    #[test]
    fn several_hidden_states_give_no_ignored_state() {
        let view = View {
            open_only: true,
            ..View::default()
        };
        let text = render(view, false);
        let line = text
            .lines()
            .find(|l| l.starts_with("Host: 198.18.0.2 ()\tPorts:"))
            .unwrap();
        // closed and filtered are both hidden: nmap writes no Ignored State.
        assert!(!line.contains("Ignored State"), "{line}");
        let ports = parse_ports(line.split('\t').nth(1).unwrap());
        let shown: Vec<u16> = ports.iter().map(|e| e.port).collect();
        assert_eq!(shown, [22, 53, 80, 161]);
    }

    #[test]
    fn version_goes_in_the_sixth_slot() {
        let (mut report, summary) = scan(PortState::Open);
        crate::output::xml::tests::with_services(&mut report);
        let mut out = Vec::new();
        write(&mut out, &info(), &report, &summary, &View::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("Host: 198.18.0.2 ()\tPorts:"))
            .unwrap();
        assert!(
            line.contains("22/open/tcp//ssh//OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)/"),
            "{line}"
        );
        assert!(
            line.contains("80/open/tcp//ssl|http//nginx \"<&>\" 1.22.1/"),
            "{line}"
        );
        assert!(
            line.contains("53/open/udp//domain//dnsmasq 2.90/"),
            "{line}"
        );
        let ports = parse_ports(line.split('\t').nth(1).unwrap());
        assert_eq!(
            ports[0].version,
            "OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)"
        );
    }

    #[test]
    fn control_characters_cannot_split_lines() {
        let mut i = info();
        i.args = "rawscan\n-p\t22".into();
        let (report, summary) = scan(PortState::Open);
        let mut out = Vec::new();
        write(&mut out, &i, &report, &summary, &View::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "# rawscan 0.1.0 scan initiated Sun Nov 29 04:05:00 2026 as: rawscan -p 22\n"
        ));
    }
}
