//! Host discovery in the namespace lab (`tests/common/discovery.rs`): a /24
//! where five addresses are live, each in its own way, and the rest are
//! silent, plus a small IPv6 range.
//!
//! - `-sn` is exact on-link (ARP / NDP) and with `--disable-arp-ping` (the
//!   ARP-only host is then down), both families; nmap's summary line.
//! - A default scan covers only the live hosts, with the right states;
//!   `-Pn` still decides every (host, port) of its targets.
//! - Unprivileged discovery (TCP connect to 80 and 443) is exact.
//! - `-sn -oX` validates against nmap.dtd and ndiff against `nmap -sn`
//!   shows no host-state difference.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::discovery::*;
use common::{SCANNER_IP, TARGET_IP, assert_success, find_tool, run_with_timeout, text};

const NMAP_DTD: &str = "/usr/share/nmap/nmap.dtd";

fn timed(lab: &common::Lab, args: &[&str]) -> (std::process::Output, f64) {
    let t = Instant::now();
    let out = lab.rawscan(args);
    let secs = t.elapsed().as_secs_f64();
    eprintln!("rawscan {}: {secs:.2}s, {}", args.join(" "), out.status);
    (out, secs)
}

/// The hosts `nmap ARGS` (an `-sn` run in the scanner's namespace) reports.
fn nmap_sn_up(lab: &common::Lab, args: &[&str]) -> BTreeSet<String> {
    let nmap = lab.run_in_scanner("nmap", args);
    assert_success("nmap -sn", &nmap);
    text(&nmap.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Nmap scan report for "))
        .map(str::to_string)
        .collect()
}

/// `reason` of each host line of a normal `--reason` report.
fn reasons(normal: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut current = None;
    for line in normal.lines() {
        if let Some(h) = line.strip_prefix("rawscan scan report for ") {
            current = Some(h.to_string());
        } else if let Some(rest) = line.strip_prefix("Host is up, received ")
            && let Some(h) = current.take()
        {
            let r = rest.split([' ', '.']).next().unwrap_or("").to_string();
            m.insert(h, r);
        }
    }
    m
}

#[test]
fn sn_is_exact_on_link_and_with_disable_arp_ping() {
    let Some(lab) = discovery_lab(&[]) else {
        return;
    };
    // On-link: ARP finds every live host, the ARP-only one included.
    let (out, _) = timed(&lab, &["-sn", "--reason", SWEEP, "--exclude", SCANNER_IP]);
    assert_success("-sn", &out);
    let normal = text(&out.stdout);
    assert_eq!(up_hosts(&normal), live_on_link(), "{normal}");
    let r = reasons(&normal);
    assert!(r.values().all(|v| v == "arp-response"), "{r:?}\n{normal}");
    assert_eq!(summary_counts(&normal), Some((255, 5)), "{normal}");
    assert!(!normal.contains("PORT"), "-sn scans no port:\n{normal}");

    // IP-level probes only: the ARP-only host is down; the others are
    // found by what each lets through.
    let (out, _) = timed(
        &lab,
        &[
            "-sn",
            "--reason",
            "--disable-arp-ping",
            SWEEP,
            "--exclude",
            SCANNER_IP,
        ],
    );
    assert_success("-sn --disable-arp-ping", &out);
    let normal = text(&out.stdout);
    assert_eq!(up_hosts(&normal), live_by_ip(), "{normal}");
    let r = reasons(&normal);
    // ICMP dropped: proven by the SYN to 443 (open) or the ACK to 80.
    assert!(
        matches!(
            r.get(NO_ICMP).map(String::as_str),
            Some("syn-ack" | "reset")
        ),
        "{normal}"
    );
    assert_eq!(
        r.get(ONLY_CLOSED_80).map(String::as_str),
        Some("reset"),
        "{normal}"
    );
    assert_eq!(summary_counts(&normal), Some((255, 4)), "{normal}");

    // -v lists the down hosts as nmap does.
    let (out, _) = timed(&lab, &["-sn", "-v", "198.18.0.2-4"]);
    assert_success("-sn -v", &out);
    let normal = text(&out.stdout);
    assert!(
        normal.contains("rawscan scan report for 198.18.0.3 [host down]"),
        "{normal}"
    );

    // Grepable: the status line alone.
    let (out, _) = timed(&lab, &["-sn", "-oG", "-", SWEEP, "--exclude", SCANNER_IP]);
    assert_success("-sn -oG", &out);
    let g = text(&out.stdout);
    assert!(
        g.contains(&format!("Host: {ARP_ONLY} ()\tStatus: Up")),
        "{g}"
    );
    assert!(!g.contains("Ports:"), "{g}");

    // NDJSON: one host object per live host, with its reason.
    let (out, _) = timed(&lab, &["-sn", "-oJ", "-", SWEEP, "--exclude", SCANNER_IP]);
    assert_success("-sn -oJ", &out);
    let mut hosts = BTreeMap::new();
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("NDJSON line");
        if v["type"] == "host" {
            hosts.insert(
                v["ip"].as_str().unwrap().to_string(),
                (
                    v["status"].as_str().unwrap().to_string(),
                    v["reason"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
    }
    let want: BTreeMap<String, (String, String)> = live_on_link()
        .into_iter()
        .map(|h| (h, ("up".to_string(), "arp-response".to_string())))
        .collect();
    assert_eq!(hosts, want);
}

#[test]
fn sn_ipv6_neighbour_discovery_and_echo() {
    let Some(lab) = discovery_lab(&[]) else {
        return;
    };
    let (out, _) = timed(&lab, &["-sn", "--reason", SWEEP6, "--exclude", SCANNER6]);
    assert_success("-sn IPv6", &out);
    let normal = text(&out.stdout);
    assert_eq!(up_hosts(&normal), live6_on_link(), "{normal}");
    let r = reasons(&normal);
    assert!(r.values().all(|v| v == "nd-response"), "{r:?}\n{normal}");

    let (out, _) = timed(
        &lab,
        &[
            "-sn",
            "--reason",
            "--disable-arp-ping",
            SWEEP6,
            "--exclude",
            SCANNER6,
        ],
    );
    assert_success("-sn IPv6 --disable-arp-ping", &out);
    let normal = text(&out.stdout);
    assert_eq!(up_hosts(&normal), live6_by_ip(), "{normal}");
}

/// NDJSON port results by host: ip -> port -> state.
fn ndjson_ports(stdout: &[u8]) -> BTreeMap<String, BTreeMap<u16, String>> {
    let mut m: BTreeMap<String, BTreeMap<u16, String>> = BTreeMap::new();
    for line in text(stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("NDJSON line");
        if v["type"] == "port" {
            let ip = v["ip"].as_str().unwrap().to_string();
            let port = v["port"].as_u64().unwrap() as u16;
            let state = v["state"].as_str().unwrap().to_string();
            let prev = m.entry(ip).or_default().insert(port, state);
            assert!(prev.is_none(), "a port decided twice: {line}");
        }
    }
    m
}

#[test]
fn default_scan_covers_only_live_hosts_and_pn_is_unchanged() {
    let Some(lab) = discovery_lab(&[]) else {
        return;
    };
    let (out, _) = timed(
        &lab,
        &[
            "-p",
            "22,80,443",
            "-oJ",
            "-",
            SWEEP,
            "--exclude",
            SCANNER_IP,
        ],
    );
    assert_success("default scan", &out);
    let got = ndjson_ports(&out.stdout);
    let hosts: BTreeSet<String> = got.keys().cloned().collect();
    assert_eq!(hosts, live_on_link(), "only live hosts are port-scanned");
    let want = |h: &str| -> BTreeMap<u16, String> {
        let s = |x: &str| x.to_string();
        match h {
            ONLY_CLOSED_80 => [(22, s("filtered")), (80, s("closed")), (443, s("filtered"))],
            ARP_ONLY => [
                (22, s("filtered")),
                (80, s("filtered")),
                (443, s("filtered")),
            ],
            _ => [(22, s("open")), (80, s("closed")), (443, s("open"))],
        }
        .into()
    };
    for (h, ports) in &got {
        assert_eq!(ports, &want(h), "{h}");
    }

    // -Pn: every address of the range is port-scanned, live or not.
    let (out, _) = timed(
        &lab,
        &["-Pn", "-p", "22,80,443", "-oJ", "-", "198.18.0.2-9"],
    );
    assert_success("-Pn", &out);
    let got = ndjson_ports(&out.stdout);
    assert_eq!(got.len(), 8, "{got:?}");
    for (h, ports) in &got {
        assert_eq!(ports.len(), 3, "{h}: {ports:?}");
        if !live_on_link().contains(h) {
            assert!(ports.values().all(|s| s == "filtered"), "{h}: {ports:?}");
        }
    }
}

#[test]
fn unprivileged_discovery_connects_to_80_and_443() {
    let Some(lab) = discovery_lab(&["capsh"]) else {
        return;
    };
    lab.assert_no_raw_really_drops_cap();
    let out = lab.rawscan_no_raw(&["-sn", SWEEP, "--exclude", SCANNER_IP]);
    assert_success("unprivileged -sn", &out);
    let normal = text(&out.stdout);
    assert_eq!(up_hosts(&normal), live_by_connect(), "{normal}");
}

fn write(path: &str, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {path}: {e}"));
}

fn tool(name: &str, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(find_tool(name).expect(name));
    c.args(args);
    run_with_timeout(c, Duration::from_secs(60))
}

#[test]
fn sn_xml_is_valid_and_ndiff_against_nmap_shows_no_host_state_difference() {
    let Some(lab) = discovery_lab(&["nmap", "ndiff", "xmllint"]) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rawscan-disc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for extra in [&[][..], &["--disable-arp-ping"][..]] {
        let mut args = vec!["-sn", "-n", "-oX", "-", SWEEP, "--exclude", SCANNER_IP];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let nmap = lab.run_in_scanner("nmap", &args);
        eprintln!("nmap {}: {:.2}s", args.join(" "), t.elapsed().as_secs_f64());
        assert_success("nmap -sn", &nmap);
        let (raw, _) = timed(&lab, &args);
        assert_success("rawscan -sn", &raw);
        let nx = dir.join("nmap.xml").to_string_lossy().into_owned();
        let rx = dir.join("rawscan.xml").to_string_lossy().into_owned();
        write(&nx, &nmap.stdout);
        write(&rx, &raw.stdout);
        let v = tool("xmllint", &["--noout", "--dtdvalid", NMAP_DTD, &rx]);
        assert!(
            v.status.success(),
            "xmllint: {}\n{}",
            text(&v.stderr),
            text(&raw.stdout)
        );
        let xml = text(&raw.stdout);
        let want = if extra.is_empty() { 5 } else { 4 };
        assert!(
            xml.contains(&format!(
                "<hosts up=\"{want}\" down=\"{}\" total=\"255\"/>",
                255 - want
            )),
            "{xml}"
        );
        if extra.is_empty() {
            assert!(
                xml.contains("<status state=\"up\" reason=\"arp-response\" reason_ttl=\"0\"/>"),
                "{xml}"
            );
        }
        let d = tool("ndiff", &[&nx, &rx]);
        let diff = text(&d.stdout);
        eprintln!("--- ndiff {extra:?} ---\n{diff}---");
        assert!(matches!(d.status.code(), Some(0 | 1)), "ndiff: {diff}");
        let bad: Vec<&str> = diff
            .lines()
            .filter(|l| (l.starts_with('-') || l.starts_with('+')) && l.contains("Host is"))
            .collect();
        assert!(bad.is_empty(), "host-state differences:\n{diff}");
        let _ = TARGET_IP;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scanner's own address among the targets is up, as nmap says
/// (`localhost-response`, no probe: an ARP request for one's own address
/// draws no reply). Regression: it came out down, and a port scan of it
/// said "0 hosts up" after waiting 2 s.
#[test]
fn the_scanners_own_address_is_up_as_nmap_says() {
    let Some(lab) = discovery_lab(&["nmap"]) else {
        return;
    };
    let (out, _) = timed(&lab, &["-sn", "-n", "--reason", SWEEP]);
    assert_success("-sn", &out);
    let normal = text(&out.stdout);
    let mut want = live_on_link();
    want.insert(SCANNER_IP.to_string());
    assert_eq!(up_hosts(&normal), want, "{normal}");
    let r = reasons(&normal);
    assert_eq!(
        r.get(SCANNER_IP).map(String::as_str),
        Some("localhost-response"),
        "{normal}"
    );
    assert_eq!(summary_counts(&normal), Some((256, 6)), "{normal}");

    assert_eq!(up_hosts(&normal), nmap_sn_up(&lab, &["-sn", "-n", SWEEP]));

    // A port scan of it runs at once and answers like loopback.
    let (out, _) = timed(&lab, &["-p", "22,80", "-n", SCANNER_IP]);
    assert_success("port scan of the scanner's address", &out);
    let normal = text(&out.stdout);
    assert!(normal.contains("(1 host up)"), "{normal}");
    assert!(normal.contains("80/tcp"), "{normal}");
}

/// Host discovery shows its progress: `--stats-every` lines labelled as
/// nmap's phase ("Ping Scan") while the silent addresses time out.
/// Regression: discovery ran with no progress at all.
#[test]
fn discovery_reports_progress_with_stats_every() {
    let Some(lab) = discovery_lab(&[]) else {
        return;
    };
    let (out, secs) = timed(
        &lab,
        &[
            "-sn",
            "-n",
            "--disable-arp-ping",
            "--stats-every",
            "100ms",
            SWEEP,
            "--exclude",
            SCANNER_IP,
        ],
    );
    assert_success("-sn --stats-every", &out);
    let err = text(&out.stderr);
    // The silent addresses keep discovery busy for well over 100 ms.
    assert!(secs > 0.2, "discovery took only {secs:.2}s");
    assert!(
        err.lines()
            .any(|l| l.starts_with("Stats: ") && l.contains("Ping Scan")),
        "no Ping Scan stats line on stderr:\n{err}"
    );
}

/// Mixed targets: the ones on the local segment are found by ARP, the
/// others by IP-level probes, in one run (nmap's choice per target).
/// Loopback is not on an Ethernet segment; it is one of the machine's own
/// addresses, up without a probe as nmap says. Regression: one target off
/// the segment made every target go without ARP, and the ARP-only host
/// came out down.
#[test]
fn mixed_targets_use_arp_on_the_segment_and_ip_probes_elsewhere() {
    let Some(lab) = discovery_lab(&["nmap"]) else {
        return;
    };
    let args = ["-sn", "-n", "--reason", ARP_ONLY, PLAIN, "127.0.0.1"];
    let (out, _) = timed(&lab, &args);
    assert_success("-sn mixed", &out);
    let normal = text(&out.stdout);
    let want: BTreeSet<String> = [ARP_ONLY, PLAIN, "127.0.0.1"].map(String::from).into();
    assert_eq!(up_hosts(&normal), want, "{normal}");
    let r = reasons(&normal);
    assert_eq!(
        r.get(ARP_ONLY).map(String::as_str),
        Some("arp-response"),
        "{normal}"
    );
    assert_eq!(
        r.get("127.0.0.1").map(String::as_str),
        Some("localhost-response"),
        "{normal}"
    );
    assert_eq!(up_hosts(&normal), nmap_sn_up(&lab, &args));
}
