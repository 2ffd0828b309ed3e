//! IPv6 scans against a dual-stack lab (issue 9, section 3; see
//! tests/common, `lab_v6`).
//!
//! The target has the same profile on both families: TCP listeners on
//! `TCP_OPEN` (plus dnsmasq's 53/tcp when the UDP services run), nftables
//! drops on `TCP_DROPPED` / `UDP_DROPPED`, one TCP and one UDP port answered
//! with admin-prohibited (ICMP 3/13, ICMPv6 1/1), the UDP services (echo 7,
//! dnsmasq 53, chronyd 123, snmpd 161) listening on 2001:db8::2 too, and
//! every other port closed.  Every test asserts the exact state (and reason)
//! of every scanned port against the lab's truth.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_ipv6 -- --nocapture --test-threads=1`
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TCP_OPEN: &[u16] = &[1, 22, 80, 443, 8080, 31337, 65535];
const TCP_DROPPED: &[u16] = &[81, 1500, 40000];
const TCP_ADMIN: u16 = 113;
/// Answered by the services `start_udp_services` runs.
const UDP_OPEN: &[u16] = &[7, 53, 123, 161];
const UDP_DROPPED: &[u16] = &[49, 69, 500];
const UDP_ADMIN: u16 = 138;
const DAEMONS: &[&str] = &["dnsmasq", "chronyd", "snmpd", "ss"];
const NMAP_DTD: &str = "/usr/share/nmap/nmap.dtd";

fn tcp_lab(tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_v6(tools)?;
    lab.tcp_listen(TCP_OPEN);
    lab.drop_tcp(TCP_DROPPED);
    lab.reject_admin_prohibited_tcp(TCP_ADMIN);
    Some(lab)
}

fn udp_lab(tools: &[&str]) -> Option<Lab> {
    let all: Vec<&str> = DAEMONS.iter().chain(tools).copied().collect();
    let mut lab = lab_v6(&all)?;
    lab.start_udp_services();
    lab.drop_udp(UDP_DROPPED);
    lab.reject_admin_prohibited_udp(UDP_ADMIN);
    assert_eq!(
        lab.open_udp().iter().copied().collect::<Vec<_>>(),
        UDP_OPEN,
        "services started"
    );
    Some(lab)
}

/// Both: the TCP and the UDP profile.
fn full_lab(tools: &[&str]) -> Option<Lab> {
    let mut lab = udp_lab(tools)?;
    lab.tcp_listen(TCP_OPEN);
    lab.drop_tcp(TCP_DROPPED);
    lab.reject_admin_prohibited_tcp(TCP_ADMIN);
    Some(lab)
}

fn range(lo: u16, hi: u16) -> Vec<u16> {
    (lo..=hi).collect()
}

fn timed(what: &str, f: impl FnOnce() -> Output) -> Output {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:.2}s, {}", t.elapsed().as_secs_f64(), out.status);
    eprintln!(
        "--- stdout ---\n{}--- stderr ---\n{}--------------",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Exit 0 and every `proto` port of `host` exact (reasons included).
fn check(
    lab: &Lab,
    what: &str,
    out: &Output,
    host: &str,
    proto: &str,
    ports: &[u16],
    scan: TcpScan,
) {
    assert_success(what, out);
    let map = port_map_for(&out.stdout, host, proto, ports);
    let bad = if proto == "udp" {
        lab.mismatches_udp(&map, ports, true)
    } else {
        lab.mismatches(&map, ports, scan, true)
    };
    assert_no_mismatches(&format!("{what} ({host}/{proto})"), &bad, out);
}

/// A scratch directory, removed on success, kept on failure.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("rawscan-ipv6-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }
    fn s(&self, f: &str) -> String {
        self.0.join(f).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A host-side tool (xmllint, ndiff), no network involved.
fn run_tool(tool: &str, args: &[&str]) -> Output {
    let path = find_tool(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
    let mut c = Command::new(path);
    c.args(args);
    run_with_timeout(c, Duration::from_secs(60))
}

fn assert_xml_valid(path: &str) {
    let out = run_tool("xmllint", &["--noout", "--dtdvalid", NMAP_DTD, path]);
    assert!(
        out.status.success(),
        "xmllint --dtdvalid {NMAP_DTD} {path} failed:\n{}\n--- file ---\n{}",
        text(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------

/// `-sS -p-` over IPv6: open, closed, dropped (no-response) and ICMPv6
/// admin-prohibited ports, all 65,535 exact with reasons.
#[test]
fn syn_scan_all_ports_over_ipv6_exact() {
    let Some(lab) = tcp_lab(&[]) else { return };
    let ports = range(1, 65535);
    let args = ["-sS", "-p-", "--reason", "-n", TARGET_IP6];
    let out = timed("rawscan -sS -p- (IPv6)", || lab.rawscan(&args));
    check(
        &lab,
        "rawscan -sS -p- (IPv6)",
        &out,
        TARGET_IP6,
        "tcp",
        &ports,
        TcpScan::Syn,
    );
    // The admin-prohibited row is listed with its reason.
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{TCP_ADMIN}/tcp")) && l.contains("admin-prohibited")),
        "no admin-prohibited row for {TCP_ADMIN}/tcp:\n{stdout}"
    );
}

/// `-sU -p 1-1024` over IPv6 with the target's ICMPv6 rate limit off.
#[test]
fn udp_scan_over_ipv6_exact_without_icmp6_ratelimit() {
    let Some(lab) = udp_lab(&[]) else { return };
    lab.icmp6_unlimited();
    let ports = range(1, 1024);
    let args = ["-sU", "-p", "1-1024", "--reason", "-n", TARGET_IP6];
    let out = timed("rawscan -sU -p 1-1024 (IPv6, no ICMPv6 limit)", || {
        lab.rawscan(&args)
    });
    check(
        &lab,
        "rawscan -sU (IPv6)",
        &out,
        TARGET_IP6,
        "udp",
        &ports,
        TcpScan::Syn,
    );
}

/// A mixed IPv4 + IPv6 `-sS -sU` scan: both hosts exact in one report, and
/// the XML valid against nmap.dtd with `addrtype="ipv6"` for the v6 host.
#[test]
fn mixed_ipv4_and_ipv6_syn_and_udp_scan_exact_in_one_report() {
    let Some(lab) = full_lab(&["xmllint"]) else {
        return;
    };
    if !Path::new(NMAP_DTD).is_file() {
        unavailable::<()>(&format!("{NMAP_DTD} (package nmap-common) is missing"));
        return;
    }
    lab.icmp_unlimited();
    lab.icmp6_unlimited();
    let dir = TempDir::new("mixed");
    let xml = dir.s("mixed.xml");
    let tcp = range(1, 1024);
    let udp = range(1, 1024);
    let args = [
        "-sS",
        "-sU",
        "-p",
        "T:1-1024,U:1-1024",
        "--reason",
        "-n",
        "-oX",
        &xml,
        TARGET_IP,
        TARGET_IP6,
    ];
    let out = timed("rawscan -sS -sU (IPv4 + IPv6)", || lab.rawscan(&args));
    for host in [TARGET_IP, TARGET_IP6] {
        check(
            &lab,
            "rawscan -sS -sU",
            &out,
            host,
            "tcp",
            &tcp,
            TcpScan::Syn,
        );
        check(
            &lab,
            "rawscan -sS -sU",
            &out,
            host,
            "udp",
            &udp,
            TcpScan::Syn,
        );
    }
    assert_xml_valid(&xml);
    let x = std::fs::read_to_string(&xml).expect("read xml");
    assert!(
        x.contains(&format!("<address addr=\"{TARGET_IP6}\" addrtype=\"ipv6\"")),
        "no ipv6 address element:\n{x}"
    );
    assert!(
        x.contains(&format!("<address addr=\"{TARGET_IP}\" addrtype=\"ipv4\"")),
        "no ipv4 address element:\n{x}"
    );
}
