//! nmap-compatible XML output (`-oX`), shaped after nmap 7.x and
//! `/usr/share/nmap/nmap.dtd` (xmloutputversion 1.05), so ndiff, Zenmap
//! and nmap XML parsers read it.
//!
//! Invariants: this module only formats a finished `Report`; it never
//! decides a state. Hosts are chosen by `reported_hosts` and hidden ports by
//! `collapse`, exactly as in the normal output, so `<extraports>` match the
//! "Not shown" line. Every attribute value goes through `esc`, which also
//! replaces characters XML 1.0 cannot carry; nothing here panics on any data.
//!
//! `scanner` is "nmap": nmap.dtd enumerates only that value, and tools that
//! import nmap XML (ndiff, Metasploit's db_import, xmllint --dtdvalid)
//! expect it. The real generator is named in the comment at the top and in
//! `args`, which holds rawscan's own command line.
//!
//! Written by hand rather than with an XML crate: the document is a fixed,
//! shallow shape with nmap's exact line breaks, and the only hazard —
//! escaping attribute text — is one small, tested function.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::{
    Host, Report, ScanInfo, View, collapse, hosts_phrase, port_ranges, reported_hosts, time,
};
use crate::engine::Summary;
use crate::probe::{PortState, Reason};
use crate::services;

/// The message `finished` carries when the scan was interrupted.
pub const INTERRUPTED_MSG: &str = "Interrupted: scan stopped before completion";

/// nmap's floor for a host's probe timeout, in microseconds.
const MIN_TIMEOUT_US: u128 = 100_000;

/// Escape text for an attribute value (double-quoted) or character data.
/// Tab, newline and CR are written as character references so attribute
/// normalization keeps them; characters XML 1.0 forbids become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text safe inside `<!-- -->`: escaped as an attribute, and "--" broken
/// up the way nmap does (`-&#45;`), since a comment may not contain it.
fn comment_text(s: &str) -> String {
    let e = esc(s);
    let mut out = String::with_capacity(e.len());
    let mut prev = '\0';
    for c in e.chars() {
        if c == '-' && prev == '-' {
            out.push_str("&#45;");
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn end_time(info: &ScanInfo, summary: &Summary) -> SystemTime {
    info.start
        .checked_add(summary.elapsed)
        .unwrap_or(info.start)
}

/// A MAC address as nmap writes it: `2E:B5:44:4D:34:C1`.
pub fn mac_text(m: crate::wire::ethernet::EthernetAddress) -> String {
    m.0.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The `<status>` of a host: "up" with the reason of its first answered
/// port (in port order), or "down" when it sent nothing.
fn status(host: &Host<'_>, summary: &Summary) -> (&'static str, String, u8) {
    let Some(info) = summary.up.get(&host.ip) else {
        return ("down", Reason::NoResponse.to_string(), 0);
    };
    if let Some(r) = info.reason {
        // Host discovery's proof.
        return ("up", r.to_string(), info.ttl.unwrap_or(0));
    }
    match host.results().find(|r| r.reason != Reason::NoResponse) {
        Some(r) => ("up", r.reason.to_string(), r.ttl.unwrap_or(0)),
        None => ("up", "unknown-response".to_string(), 0),
    }
}

/// A `-sV` result: `<service … method="probed" conf="10"><cpe>…</cpe></service>`.
/// Its details (page title, certificate, sysDescr) go to the host's
/// `<hostscript>` (see `write_hostscript`).
fn write_service(w: &mut dyn Write, s: &crate::version::Service) -> io::Result<()> {
    write!(w, "<service name=\"{}\"", esc(&s.name))?;
    for (attr, v) in [
        ("product", &s.product),
        ("version", &s.version),
        ("extrainfo", &s.extrainfo),
        ("hostname", &s.hostname),
        ("ostype", &s.ostype),
    ] {
        if let Some(v) = v {
            write!(w, " {attr}=\"{}\"", esc(v))?;
        }
    }
    if s.tunnel_tls {
        write!(w, " tunnel=\"ssl\"")?;
    }
    write!(w, " method=\"{}\" conf=\"{}\"", s.method.as_str(), s.conf)?;
    if s.cpe.is_empty() {
        write!(w, "/>")?;
    } else {
        write!(w, ">")?;
        for c in &s.cpe {
            write!(w, "<cpe>{}</cpe>", esc(c))?;
        }
        write!(w, "</service>")?;
    }
    Ok(())
}

fn write_ports(
    w: &mut dyn Write,
    host: &Host<'_>,
    view: &View,
    services: &crate::version::Services,
) -> io::Result<()> {
    let (rows, groups) = collapse(host, view);
    write!(w, "<ports>")?;
    // One <extraports> per state (as nmap), in the order `collapse` sorted
    // the groups; one <extrareasons> per (reason, proto) group inside it.
    let mut states: Vec<PortState> = Vec::new();
    for g in &groups {
        if !states.contains(&g.state) {
            states.push(g.state);
        }
    }
    for state in states {
        let count: usize = groups
            .iter()
            .filter(|g| g.state == state)
            .map(|g| g.count)
            .sum();
        writeln!(
            w,
            "<extraports state=\"{}\" count=\"{count}\">",
            esc(state.as_str())
        )?;
        for g in groups.iter().filter(|g| g.state == state) {
            let ports = port_ranges(host.ports_in(g.state, g.proto, g.reason));
            writeln!(
                w,
                "<extrareasons reason=\"{}\" count=\"{}\" proto=\"{}\" ports=\"{}\"/>",
                esc(g.reason.as_str()),
                g.count,
                g.proto,
                ports
            )?;
        }
        writeln!(w, "</extraports>")?;
    }
    for r in rows {
        write!(
            w,
            "<port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"/>",
            r.key.proto,
            r.key.port,
            esc(r.state.as_str()),
            esc(r.reason.as_str()),
            r.ttl.unwrap_or(0)
        )?;
        // nmap writes no <service> for a port missing from its table.
        if let Some(s) = services.get(&r.key) {
            write_service(w, s)?;
        } else if let Some(name) = services::service_name(r.key.proto, r.key.port) {
            write!(
                w,
                "<service name=\"{}\" method=\"table\" conf=\"3\"/>",
                esc(name)
            )?;
        }
        writeln!(w, "</port>")?;
    }
    writeln!(w, "</ports>")
}

/// The `-sV` details of a host's ports in ONE `<hostscript><script
/// id="rawscan-service">`, a line per fact (`443/tcp ssl-cert: …`). Not
/// per-port `<script>`s: ndiff 7.93 (Python 3) fails on a port whose
/// scripts differ while its service columns agree, and on two scripts in
/// one port or host, so anything else breaks `ndiff` against nmap -sV.
fn write_hostscript(
    w: &mut dyn Write,
    ip: &IpAddr,
    services: &crate::version::Services,
) -> io::Result<()> {
    let mut lines = Vec::new();
    for (k, s) in services.iter().filter(|(k, _)| k.ip == *ip) {
        for (id, out) in s.script_lines() {
            lines.push(format!("{}/{} {id}: {out}", k.port, k.proto));
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "<hostscript><script id=\"rawscan-service\" output=\"{}\"/></hostscript>",
        esc(&lines.join("\n"))
    )
}

/// `<times>`: srtt is the smallest first-attempt round trip the engine
/// measured (µs); rttvar is not measured (0); `to` follows nmap's rule
/// srtt + 4·rttvar with its 100 ms floor.
fn write_times(w: &mut dyn Write, latency: Duration) -> io::Result<()> {
    let srtt = latency.as_micros();
    writeln!(
        w,
        "<times srtt=\"{srtt}\" rttvar=\"0\" to=\"{}\"/>",
        srtt.max(MIN_TIMEOUT_US)
    )
}

/// Write a whole XML document for a finished scan.
pub fn write(
    w: &mut dyn Write,
    info: &ScanInfo,
    report: &Report,
    summary: &Summary,
    view: &View,
) -> io::Result<()> {
    let start = time::epoch(info.start);
    let startstr = time::ctime(info.start);
    let end = end_time(info, summary);
    let args = esc(&info.args);
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(w, "<!DOCTYPE nmaprun>")?;
    writeln!(
        w,
        "<!-- rawscan {} scan initiated {startstr} as: {} -->",
        comment_text(&info.version),
        comment_text(&info.args)
    )?;
    writeln!(
        w,
        "<nmaprun scanner=\"nmap\" args=\"{args}\" start=\"{start}\" startstr=\"{startstr}\" version=\"{}\" xmloutputversion=\"1.05\">",
        esc(&info.version)
    )?;
    if let Some(kind) = info.tcp_type {
        writeln!(
            w,
            "<scaninfo type=\"{}\" protocol=\"tcp\" numservices=\"{}\" services=\"{}\"/>",
            esc(kind),
            info.tcp_ports.len(),
            port_ranges(info.tcp_ports.iter().copied())
        )?;
    }
    if info.udp {
        writeln!(
            w,
            "<scaninfo type=\"udp\" protocol=\"udp\" numservices=\"{}\" services=\"{}\"/>",
            info.udp_ports.len(),
            port_ranges(info.udp_ports.iter().copied())
        )?;
    }
    writeln!(w, "<verbose level=\"{}\"/>", view.verbose)?;
    writeln!(w, "<debugging level=\"0\"/>")?;

    for host in reported_hosts(report, summary, view) {
        let ip = &host.ip;
        let (state, reason, ttl) = status(&host, summary);
        write!(
            w,
            "<host starttime=\"{start}\" endtime=\"{}\">",
            time::epoch(end)
        )?;
        writeln!(
            w,
            "<status state=\"{state}\" reason=\"{}\" reason_ttl=\"{ttl}\"/>",
            esc(&reason)
        )?;
        let addrtype = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        writeln!(w, "<address addr=\"{ip}\" addrtype=\"{addrtype}\"/>")?;
        if let Some(mac) = summary.up.get(ip).and_then(|h| h.mac) {
            writeln!(w, "<address addr=\"{}\" addrtype=\"mac\"/>", mac_text(mac))?;
        }
        writeln!(w, "<hostnames/>")?;
        if host.total() > 0 {
            write_ports(w, &host, view, &report.services)?;
        }
        write_hostscript(w, &host.ip, &report.services)?;
        if let Some(l) = summary.up.get(ip).and_then(|h| h.latency) {
            write_times(w, l)?;
        }
        writeln!(w, "</host>")?;
    }

    let endstr = time::ctime(end);
    let up = summary.up.len();
    let elapsed = format!("{:.2}", summary.elapsed.as_secs_f64());
    let done = format!(
        "rawscan done at {endstr}; {} scanned in {elapsed} seconds",
        hosts_phrase(info.hosts_total, up)
    );
    let exit = if summary.interrupted {
        format!("exit=\"error\" errormsg=\"{}\"", esc(INTERRUPTED_MSG))
    } else {
        "exit=\"success\"".to_string()
    };
    write!(
        w,
        "<runstats><finished time=\"{}\" timestr=\"{endstr}\" summary=\"{}\" elapsed=\"{elapsed}\" {exit}/>",
        time::epoch(end),
        esc(&done)
    )?;
    let down = info.hosts_total.saturating_sub(up as u128);
    writeln!(
        w,
        "<hosts up=\"{up}\" down=\"{down}\" total=\"{}\"/>",
        info.hosts_total
    )?;
    writeln!(w, "</runstats>")?;
    writeln!(w, "</nmaprun>")?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::HostInfo;
    use crate::output::testutil::res;
    use crate::output::testutil::{lab_tool, scratch_file};
    use crate::probe::Proto;
    use std::process::Command;
    use std::time::UNIX_EPOCH;

    const V4: &str = "198.18.0.2";
    const V4_DOWN: &str = "198.18.0.3";
    const V6: &str = "2001:db8::7";

    pub(crate) fn info() -> ScanInfo {
        ScanInfo {
            start: UNIX_EPOCH + Duration::from_secs(1_795_925_100),
            args: "rawscan -sS -sU -p 1-100,443 --reason \"<x>&'y'\" 198.18.0.2-3".into(),
            argv: Vec::new(),
            version: "0.1.0".into(),
            tcp_type: Some("syn"),
            udp: true,
            tcp_ports: (1..=100).chain([443]).collect(),
            udp_ports: vec![53, 161],
            hosts_total: 3,
            seed: 1,
            shard: crate::plan::Shard::WHOLE,
            pairs: 3 * 103,
        }
    }

    /// Three hosts: a v4 host with open/closed/filtered ports and 96
    /// closed-by-reset ports (collapsed), a silent v4 host, a v6 host.
    /// `ssh` sets the state of 198.18.0.2's port 22.
    pub(crate) fn scan(ssh: PortState) -> (Report, Summary) {
        use PortState::*;
        let i = info();
        let mut report = Report::new(
            i.tcp_ports
                .iter()
                .map(|&p| (Proto::Tcp, p))
                .chain(i.udp_ports.iter().map(|&p| (Proto::Udp, p))),
        );
        let add = |report: &mut Report, r| report.add(&r).expect("a new result of the scan");
        for p in (1..=100).filter(|p| ![22, 80, 81].contains(p)) {
            add(
                &mut report,
                res(V4, p, Proto::Tcp, Closed, Reason::Reset, Some(64)),
            );
        }
        let why22 = if ssh == Open {
            Reason::SynAck
        } else {
            Reason::Reset
        };
        add(&mut report, res(V4, 22, Proto::Tcp, ssh, why22, Some(64)));
        add(
            &mut report,
            res(V4, 80, Proto::Tcp, Open, Reason::SynAck, Some(64)),
        );
        add(
            &mut report,
            res(
                V4,
                81,
                Proto::Tcp,
                Filtered,
                Reason::AdminProhibited,
                Some(250),
            ),
        );
        add(
            &mut report,
            res(V4, 443, Proto::Tcp, Filtered, Reason::NoResponse, None),
        );
        add(
            &mut report,
            res(V4, 53, Proto::Udp, Open, Reason::UdpResponse, Some(63)),
        );
        add(
            &mut report,
            res(V4, 161, Proto::Udp, OpenFiltered, Reason::NoResponse, None),
        );
        for p in (1..=100).chain([443]) {
            add(
                &mut report,
                res(V4_DOWN, p, Proto::Tcp, Filtered, Reason::NoResponse, None),
            );
        }
        add(
            &mut report,
            res(V6, 22, Proto::Tcp, Open, Reason::SynAck, Some(57)),
        );
        add(
            &mut report,
            res(V6, 23, Proto::Tcp, Closed, Reason::Reset, Some(57)),
        );
        let mut summary = Summary {
            elapsed: Duration::from_millis(1234),
            total: 3 * 103,
            decided: 3 * 103,
            sent: 400,
            received: 120,
            ..Summary::default()
        };
        summary.up.insert(
            V4.parse().unwrap(),
            HostInfo {
                latency: Some(Duration::from_micros(52)),
                ..HostInfo::default()
            },
        );
        summary.up.insert(V6.parse().unwrap(), HostInfo::default());
        (report, summary)
    }

    /// `scan` plus -sV results on 22 (OpenSSH), 80 (nginx inside TLS, with
    /// a certificate) and 53/udp (dnsmasq), text chosen to need escaping.
    pub(crate) fn with_services(report: &mut Report) {
        use crate::probe::ProbeKey;
        use crate::version::{Method, Service, TlsInfo};
        let key = |port, proto| ProbeKey {
            ip: V4.parse().unwrap(),
            port,
            proto,
        };
        let mut ssh = Service::from_table(Proto::Tcp, 22);
        ssh.product = Some("OpenSSH".into());
        ssh.version = Some("9.2p1 Debian 2+deb12u3".into());
        ssh.extrainfo = Some("protocol 2.0".into());
        ssh.ostype = Some("Linux".into());
        ssh.cpe = vec!["cpe:/a:openbsd:openssh:9.2p1".into()];
        ssh.method = Method::Probed;
        ssh.conf = 10;
        let mut web = Service::from_table(Proto::Tcp, 80);
        web.product = Some("nginx \"<&>\"".into());
        web.version = Some("1.22.1".into());
        web.method = Method::Probed;
        web.conf = 10;
        web.tunnel_tls = true;
        web.details = vec![("http-title".into(), "a <b> & \u{1}".into())];
        web.tls = Some(TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: Some("h2".into()),
            subject_cn: Some("lab.rawscan.test".into()),
            sans: vec!["DNS:lab.rawscan.test".into()],
            issuer: Some("CN=lab.rawscan.test".into()),
            not_before: None,
            not_after: Some("2027-01-05T00:12:50".into()),
        });
        let mut dns = Service::from_table(Proto::Udp, 53);
        dns.product = Some("dnsmasq".into());
        dns.version = Some("2.90".into());
        dns.cpe = vec!["cpe:/a:thekelleys:dnsmasq:2.90".into()];
        dns.method = Method::Probed;
        dns.conf = 10;
        report.services.insert(key(22, Proto::Tcp), ssh);
        report.services.insert(key(80, Proto::Tcp), web);
        report.services.insert(key(53, Proto::Udp), dns);
    }

    #[test]
    fn service_elements_carry_versions_cpes_and_scripts() {
        let (mut report, summary) = scan(PortState::Open);
        with_services(&mut report);
        let mut out = Vec::new();
        write(&mut out, &info(), &report, &summary, &View::default()).unwrap();
        let doc = String::from_utf8(out).unwrap();
        assert!(doc.contains("<service name=\"ssh\" product=\"OpenSSH\" version=\"9.2p1 Debian 2+deb12u3\" extrainfo=\"protocol 2.0\" ostype=\"Linux\" method=\"probed\" conf=\"10\"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe></service></port>"), "{doc}");
        assert!(doc.contains("<service name=\"http\" product=\"nginx &quot;&lt;&amp;&gt;&quot;\" version=\"1.22.1\" tunnel=\"ssl\" method=\"probed\" conf=\"10\"/></port>"), "{doc}");
        assert!(doc.contains("</ports>\n<hostscript><script id=\"rawscan-service\" output=\"80/tcp http-title: a &lt;b&gt; &amp; \u{FFFD}&#10;80/tcp ssl-cert: Subject: commonName=lab.rawscan.test;"), "{doc}");
        assert_eq!(
            doc.matches("<script ").count(),
            1,
            "one script element per host: {doc}"
        );
        assert!(doc.contains("<service name=\"domain\" product=\"dnsmasq\" version=\"2.90\" method=\"probed\" conf=\"10\"><cpe>"), "{doc}");
        // Ports -sV did not probe keep the table name.
        assert!(doc.contains("portid=\"443\"><state state=\"filtered\" reason=\"no-response\" reason_ttl=\"0\"/><service name=\"https\" method=\"table\" conf=\"3\"/>"), "{doc}");
    }

    fn render(ssh: PortState, interrupted: bool, view: View) -> String {
        let (report, mut summary) = scan(ssh);
        summary.interrupted = interrupted;
        let mut out = Vec::new();
        write(&mut out, &info(), &report, &summary, &view).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn discovery_only_hosts_carry_their_proof_and_no_ports() {
        let mut report = Report::new(Vec::new());
        let up: IpAddr = "198.18.0.5".parse().unwrap();
        let down: IpAddr = "198.18.0.6".parse().unwrap();
        report.add_host(up);
        report.add_host(down);
        let mut summary = Summary::default();
        summary.up.insert(
            up,
            HostInfo {
                latency: Some(Duration::from_micros(210)),
                reason: Some(Reason::ArpResponse),
                ttl: None,
                mac: Some(crate::wire::ethernet::EthernetAddress([
                    0x2e, 0xb5, 0, 0, 0, 0xc1,
                ])),
            },
        );
        let mut i = info();
        i.tcp_type = None;
        i.udp = false;
        i.hosts_total = 256;
        let view = View {
            verbose: 1,
            ..View::default()
        };
        let mut out = Vec::new();
        write(&mut out, &i, &report, &summary, &view).unwrap();
        let doc = String::from_utf8(out).unwrap();
        let h = host_block(&doc, "198.18.0.5");
        assert!(
            h.contains("<status state=\"up\" reason=\"arp-response\" reason_ttl=\"0\"/>"),
            "{h}"
        );
        assert!(!h.contains("<ports"), "{h}");
        assert!(
            h.contains("<address addr=\"2E:B5:00:00:00:C1\" addrtype=\"mac\"/>"),
            "{h}"
        );
        let d = host_block(&doc, "198.18.0.6");
        assert!(
            d.contains("<status state=\"down\" reason=\"no-response\""),
            "{d}"
        );
        assert!(
            doc.contains("<hosts up=\"1\" down=\"255\" total=\"256\"/>"),
            "{doc}"
        );
        assert!(!doc.contains("<scaninfo"), "{doc}");
    }

    fn host_block<'a>(doc: &'a str, ip: &str) -> &'a str {
        let at = doc
            .find(&format!("<address addr=\"{ip}\""))
            .unwrap_or_else(|| panic!("no host {ip} in\n{doc}"));
        let begin = doc[..at].rfind("<host ").unwrap();
        let end = at + doc[at..].find("</host>").unwrap();
        &doc[begin..end]
    }

    #[test]
    fn escapes_attribute_text() {
        assert_eq!(
            esc("a&b<c>d\"e'f\tg\nh\u{1}i"),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h\u{FFFD}i"
        );
        assert_eq!(comment_text("--reason ---x"), "-&#45;reason -&#45;&#45;x");
    }

    #[test]
    fn document_has_nmaps_shape() {
        let doc = render(PortState::Open, false, View::default());
        assert!(
            doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n")
        );
        assert!(doc.contains(
            "args=\"rawscan -sS -sU -p 1-100,443 --reason &quot;&lt;x&gt;&amp;&apos;y&apos;&quot; 198.18.0.2-3\""
        ), "{doc}");
        assert!(doc.contains("start=\"1795925100\" startstr=\"Sun Nov 29 04:05:00 2026\" version=\"0.1.0\" xmloutputversion=\"1.05\">"));
        assert!(doc.contains(
            "<scaninfo type=\"syn\" protocol=\"tcp\" numservices=\"101\" services=\"1-100,443\"/>\n<scaninfo type=\"udp\" protocol=\"udp\" numservices=\"2\" services=\"53,161\"/>\n<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n"
        ), "{doc}");
        // The silent host is not reported without -v; the others are.
        assert_eq!(doc.matches("<host ").count(), 2, "{doc}");
        assert!(!doc.contains(V4_DOWN));

        let h = host_block(&doc, V4);
        assert!(h.starts_with("<host starttime=\"1795925100\" endtime=\"1795925101\"><status state=\"up\" reason=\"reset\" reason_ttl=\"64\"/>"), "{h}");
        assert!(h.contains("<address addr=\"198.18.0.2\" addrtype=\"ipv4\"/>\n<hostnames/>\n"));
        assert!(h.contains(
            "<ports><extraports state=\"closed\" count=\"97\">\n<extrareasons reason=\"reset\" count=\"97\" proto=\"tcp\" ports=\"1-21,23-79,82-100\"/>\n</extraports>\n"
        ), "{h}");
        assert!(h.contains("<port protocol=\"tcp\" portid=\"22\"><state state=\"open\" reason=\"syn-ack\" reason_ttl=\"64\"/><service name=\"ssh\" method=\"table\" conf=\"3\"/></port>\n"), "{h}");
        assert!(h.contains("<port protocol=\"tcp\" portid=\"81\"><state state=\"filtered\" reason=\"admin-prohibited\" reason_ttl=\"250\"/></port>\n"), "{h}");
        assert!(h.contains("<port protocol=\"tcp\" portid=\"443\"><state state=\"filtered\" reason=\"no-response\" reason_ttl=\"0\"/><service name=\"https\""), "{h}");
        assert!(h.contains("<port protocol=\"udp\" portid=\"53\"><state state=\"open\" reason=\"udp-response\" reason_ttl=\"63\"/><service name=\"domain\""), "{h}");
        assert!(h.contains("<port protocol=\"udp\" portid=\"161\"><state state=\"open|filtered\" reason=\"no-response\" reason_ttl=\"0\"/>"), "{h}");
        assert!(!h.contains("portid=\"23\""), "collapsed port listed: {h}");
        assert!(
            h.contains("<times srtt=\"52\" rttvar=\"0\" to=\"100000\"/>\n"),
            "{h}"
        );
        // Ports appear in report order.
        let p22 = h.find("portid=\"22\"").unwrap();
        let p80 = h.find("portid=\"80\"").unwrap();
        assert!(p22 < p80);

        let h6 = host_block(&doc, V6);
        assert!(
            h6.contains("<status state=\"up\" reason=\"syn-ack\" reason_ttl=\"57\"/>"),
            "{h6}"
        );
        assert!(h6.contains("<address addr=\"2001:db8::7\" addrtype=\"ipv6\"/>"));
        assert!(h6.contains("<port protocol=\"tcp\" portid=\"23\"><state state=\"closed\" reason=\"reset\" reason_ttl=\"57\"/><service name=\"telnet\""), "{h6}");
        assert!(!h6.contains("<extraports"));
        assert!(!h6.contains("<times"), "no latency measured: {h6}");

        assert!(doc.ends_with(
            "<runstats><finished time=\"1795925101\" timestr=\"Sun Nov 29 04:05:01 2026\" summary=\"rawscan done at Sun Nov 29 04:05:01 2026; 3 IP addresses (2 hosts up) scanned in 1.23 seconds\" elapsed=\"1.23\" exit=\"success\"/><hosts up=\"2\" down=\"1\" total=\"3\"/>\n</runstats>\n</nmaprun>\n"
        ), "{doc}");
    }

    #[test]
    fn silent_host_is_down_and_its_ports_collapse() {
        let view = View {
            verbose: 1,
            ..View::default()
        };
        let doc = render(PortState::Open, false, view);
        assert!(doc.contains("<verbose level=\"1\"/>"));
        let h = host_block(&doc, V4_DOWN);
        assert!(
            h.contains("<status state=\"down\" reason=\"no-response\" reason_ttl=\"0\"/>"),
            "{h}"
        );
        assert!(h.contains(
            "<extraports state=\"filtered\" count=\"101\">\n<extrareasons reason=\"no-response\" count=\"101\" proto=\"tcp\" ports=\"1-100,443\"/>\n</extraports>\n</ports>"
        ), "{h}");
        assert!(!h.contains("<port "));
    }

    #[test]
    fn open_only_hides_the_rest_as_extraports() {
        let view = View {
            open_only: true,
            ..View::default()
        };
        let doc = render(PortState::Open, false, view);
        let h = host_block(&doc, V4);
        assert!(
            h.contains("<extraports state=\"closed\" count=\"97\">"),
            "{h}"
        );
        // Both filtered groups (admin-prohibited, no-response) under one state.
        assert!(h.contains(
            "<extraports state=\"filtered\" count=\"2\">\n<extrareasons reason=\"no-response\" count=\"1\" proto=\"tcp\" ports=\"443\"/>\n<extrareasons reason=\"admin-prohibited\" count=\"1\" proto=\"tcp\" ports=\"81\"/>\n</extraports>"
        ), "{h}");
        assert!(
            h.contains("portid=\"161\""),
            "open|filtered is shown by --open"
        );
        assert!(!h.contains("portid=\"81\">"));
        let h6 = host_block(&doc, V6);
        assert!(
            h6.contains("<extraports state=\"closed\" count=\"1\">"),
            "{h6}"
        );
    }

    #[test]
    fn an_interrupted_scan_says_so() {
        let doc = render(PortState::Open, true, View::default());
        assert!(
            doc.contains(
                "exit=\"error\" errormsg=\"Interrupted: scan stopped before completion\"/>"
            ),
            "{doc}"
        );
        assert!(!doc.contains("exit=\"success\""));
    }

    fn xmllint(dtd: &str, file: &str) -> (bool, String) {
        let out = Command::new("/usr/bin/xmllint")
            .args(["--noout", "--dtdvalid", dtd, file])
            .output()
            .expect("running xmllint");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn validates_against_nmaps_dtd() {
        const DTD: &str = "/usr/share/nmap/nmap.dtd";
        if !lab_tool("/usr/bin/xmllint") || !lab_tool(DTD) {
            return;
        }
        let view = View {
            verbose: 1,
            reason: true,
            open_only: false,
        };
        let (mut report, summary) = scan(PortState::Open);
        with_services(&mut report);
        let mut out = Vec::new();
        write(&mut out, &info(), &report, &summary, &view).unwrap();
        let sv = String::from_utf8(out).unwrap();
        let file = scratch_file("dtd-sv.xml", sv.as_bytes());
        let (ok, err) = xmllint(DTD, &file);
        assert!(ok, "xmllint (-sV): {err}\n{sv}");
        let _ = std::fs::remove_file(&file);
        for interrupted in [false, true] {
            let doc = render(PortState::Open, interrupted, view);
            let file = scratch_file(&format!("dtd-{interrupted}.xml"), doc.as_bytes());
            // Valid against nmap's DTD exactly as installed.
            let (ok, err) = xmllint(DTD, &file);
            assert!(ok, "xmllint: {err}\n{doc}");
            let _ = std::fs::remove_file(&file);
        }
    }

    #[test]
    fn ndiff_reads_two_scans_and_reports_the_change() {
        if !lab_tool("/usr/bin/ndiff") {
            return;
        }
        let a = scratch_file(
            "ndiff-a.xml",
            render(PortState::Open, false, View::default()).as_bytes(),
        );
        let b = scratch_file(
            "ndiff-b.xml",
            render(PortState::Closed, false, View::default()).as_bytes(),
        );
        let run = |x: &str, y: &str| {
            Command::new("/usr/bin/ndiff")
                .args([x, y])
                .output()
                .expect("running ndiff")
        };
        // Same scan: no difference (exit 0), so ndiff parsed it.
        let same = run(&a, &a);
        assert_eq!(
            same.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&same.stderr)
        );
        // Port 22 open -> closed: exit 1 and a line about 22/tcp.
        let diff = run(&a, &b);
        let text = String::from_utf8_lossy(&diff.stdout);
        assert_eq!(
            diff.status.code(),
            Some(1),
            "{text}{}",
            String::from_utf8_lossy(&diff.stderr)
        );
        let line = text
            .lines()
            .find(|l| l.contains("22/tcp"))
            .unwrap_or_else(|| panic!("ndiff did not mention 22/tcp:\n{text}"));
        assert!(line.starts_with('-') && line.contains("open"), "{text}");
        assert!(text.contains("198.18.0.2"), "{text}");
        assert!(
            !text.contains("2001:db8::7"),
            "unchanged host listed:\n{text}"
        );
        // With -sV results (one port with several facts): ndiff still reads
        // it and shows the versions.
        let (mut report, summary) = scan(PortState::Open);
        with_services(&mut report);
        let mut out = Vec::new();
        write(&mut out, &info(), &report, &summary, &View::default()).unwrap();
        let c = scratch_file("ndiff-c.xml", &out);
        let sv = run(&a, &c);
        let text = String::from_utf8_lossy(&sv.stdout);
        assert_eq!(
            sv.status.code(),
            Some(1),
            "{text}{}",
            String::from_utf8_lossy(&sv.stderr)
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with('+') && l.contains("22/tcp") && l.contains("OpenSSH 9.2p1")),
            "{text}"
        );
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
        let _ = std::fs::remove_file(&c);
    }
}
