//! UDP scanner tests against the network-namespace lab (see tests/common).
//!
//! Every test builds its own lab whose target runs real services: a UDP
//! echo on 7 (harness thread), dnsmasq on 53, chronyd (NTP) on 123 and
//! snmpd (community public) on 161, each checked to answer before the scan;
//! nftables drops UDP to `DROPPED` (open|filtered) and rejects UDP to
//! `ADMIN` with ICMP admin-prohibited (filtered); every other port is closed
//! (ICMP port-unreachable).  The tests assert the EXACT state of every
//! scanned port, with and without the kernel's ICMP rate limit.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_udp -- --nocapture`
mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

/// Answered by the services `start_udp_services` runs.
const OPEN: &[u16] = &[7, 53, 123, 161];
/// Dropped by nftables: 49 lies inside the small range of the rate-limited
/// test, all three are in nmap's (and rawscan's) top-100 UDP ports.
const DROPPED: &[u16] = &[49, 69, 500];
/// Rejected with ICMP 3/13 (in the top-100 UDP ports too).
const ADMIN: u16 = 138;
/// Combined test: TCP listeners (plus dnsmasq's 53/tcp), a TCP drop and
/// a TCP admin-prohibited port.
const TCP_OPEN: &[u16] = &[22, 80];
const TCP_DROPPED: &[u16] = &[81];
const TCP_ADMIN: u16 = 113;
const UNPRIVILEGED: &str = "UDP scan uses connected UDP sockets (unprivileged mode)";
const DAEMONS: &[&str] = &["dnsmasq", "chronyd", "snmpd", "ss"];

fn udp_lab(tools: &[&str]) -> Option<Lab> {
    let all: Vec<&str> = DAEMONS.iter().chain(tools).copied().collect();
    let mut lab = lab_with_tools(&all)?;
    lab.start_udp_services();
    lab.drop_udp(DROPPED);
    lab.reject_admin_prohibited_udp(ADMIN);
    assert_eq!(
        lab.open_udp().iter().copied().collect::<Vec<_>>(),
        OPEN,
        "services started"
    );
    Some(lab)
}

fn range(lo: u16, hi: u16) -> Vec<u16> {
    (lo..=hi).collect()
}

fn timed(what: &str, f: impl FnOnce() -> Output) -> (Output, Duration) {
    let t = Instant::now();
    let out = f();
    let el = t.elapsed();
    eprintln!("{what}: {:.2}s", el.as_secs_f64());
    eprintln!(
        "--- stdout ---\n{}--- stderr ---\n{}--------------",
        text(&out.stdout),
        text(&out.stderr)
    );
    (out, el)
}

/// Exit 0, output parses, every UDP port in `ports` has the true state (and
/// reason, when `reasons`).
fn check_udp(
    lab: &Lab,
    what: &str,
    out: &Output,
    ports: &[u16],
    reasons: bool,
) -> BTreeMap<u16, PortResult> {
    assert_success(what, out);
    let map = udp_port_map(&out.stdout, ports);
    let bad = lab.mismatches_udp(&map, ports, reasons);
    assert_no_mismatches(what, &bad, out);
    map
}

/// The service column of the open UDP rows.
fn assert_udp_services_named(out: &Output) {
    let stdout = text(&out.stdout);
    let parsed = parse_normal(&stdout).expect("parsed before");
    let host = parsed.host(TARGET_IP).expect("parsed before");
    for (port, service) in [(7, "echo"), (53, "domain"), (123, "ntp"), (161, "snmp")] {
        let row = host
            .rows
            .iter()
            .find(|r| r.port == port && r.proto == "udp")
            .unwrap_or_else(|| panic!("no row for {port}/udp:\n{stdout}"));
        assert_eq!(row.service, service, "service of {port}/udp:\n{stdout}");
    }
}

/// (1) `-sU -p 1-1024 --reason`, target ICMP rate limit off: every port
/// exact, reasons included.
#[test]
fn udp_scan_exact_without_icmp_ratelimit() {
    let Some(lab) = udp_lab(&[]) else { return };
    lab.icmp_unlimited();
    lab.assert_listeners_match_truth();
    let ports = range(1, 1024);
    let args = ["-sU", "-p", "1-1024", "--reason", "-n", TARGET_IP];
    let (out, _) = timed("rawscan -sU -p 1-1024 (no ICMP rate limit)", || {
        lab.rawscan(&args)
    });
    check_udp(&lab, "rawscan -sU -p 1-1024", &out, &ports, true);
    assert_udp_services_named(&out);
    let stdout = text(&out.stdout);
    let closed = 1024 - OPEN.len() - DROPPED.len() - 1;
    assert!(
        stdout.contains(&format!(
            "Not shown: {closed} closed udp ports (port-unreach)"
        )),
        "expected 'Not shown: {closed} closed udp ports (port-unreach)':\n{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("unprivileged mode"),
        "used connected sockets although CAP_NET_RAW is available:\n{stderr}"
    );
}

/// (2) The kernel's DEFAULT ICMP rate limit in the target (~1 port-
/// unreachable per second after a burst of ~6): rawscan paces its
/// re-probes, so every closed port still comes out closed, and the dropped
/// ones open|filtered.  ~57 closed ports: about a minute.
#[test]
fn udp_scan_exact_under_default_icmp_ratelimit() {
    let Some(lab) = udp_lab(&[]) else { return };
    lab.icmp_kernel_default();
    let mut ports = range(1, 60);
    ports.extend([123, 161, ADMIN]);
    ports.extend(DROPPED);
    ports.sort_unstable();
    ports.dedup();
    let spec = port_spec(&ports);
    let closed = ports
        .iter()
        .filter(|&&p| lab.expected_udp(p).state == "closed")
        .count();
    let args = ["-sU", "-p", &spec, "--reason", "-n", TARGET_IP];
    let (out, elapsed) = timed(
        &format!(
            "rawscan -sU -p {spec} ({} ports, {closed} closed; default ICMP rate limit)",
            ports.len()
        ),
        || lab.rawscan_timeout(&args, Duration::from_secs(360)),
    );
    eprintln!(
        "  {:.2} s per closed port",
        elapsed.as_secs_f64() / closed as f64
    );
    check_udp(
        &lab,
        "rawscan -sU (default ICMP rate limit)",
        &out,
        &ports,
        true,
    );
}

/// (2b) As (2), but the target's per-peer ICMP budget is EMPTY when the scan
/// starts (as right after another scan of the same host): the first
/// port-unreachable arrives only ~1 s in.  Still exact.
#[test]
fn udp_scan_exact_when_icmp_budget_starts_empty() {
    let Some(lab) = udp_lab(&[]) else { return };
    lab.icmp_kernel_default();
    let mut ports = range(1, 30);
    ports.extend([49, 53, ADMIN]);
    let spec = port_spec(&ports);
    let closed = ports
        .iter()
        .filter(|&&p| lab.expected_udp(p).state == "closed")
        .count();
    lab.drain_icmp_budget(65000);
    let args = ["-sU", "-p", &spec, "--reason", "-n", TARGET_IP];
    let (out, _) = timed(
        &format!(
            "rawscan -sU -p {spec} ({} ports, {closed} closed; default ICMP rate limit, budget drained)",
            ports.len()
        ),
        || lab.rawscan_timeout(&args, Duration::from_secs(240)),
    );
    check_udp(
        &lab,
        "rawscan -sU (ICMP budget empty at start)",
        &out,
        &ports,
        true,
    );
}

/// (3) Without CAP_NET_RAW: exactly one stderr line announcing the
/// connected-socket mode, and exact states (IP_RECVERR gives the ICMP
/// type and code, so admin-prohibited is filtered, not closed).
#[test]
fn udp_scan_unprivileged_exact() {
    let Some(lab) = udp_lab(&["capsh"]) else {
        return;
    };
    lab.icmp_unlimited();
    lab.assert_no_raw_really_drops_cap();
    let ports = range(1, 1024);
    let args = ["-sU", "-p", "1-1024", "--reason", "-n", TARGET_IP];
    let (out, _) = timed("rawscan -sU -p 1-1024 without CAP_NET_RAW", || {
        lab.rawscan_no_raw(&args)
    });
    let stderr = text(&out.stderr);
    let lines = stderr
        .lines()
        .filter(|l| l.contains("unprivileged mode"))
        .count();
    assert_eq!(
        lines, 1,
        "expected exactly one stderr line containing {UNPRIVILEGED:?}, got {lines}:\n{stderr}"
    );
    assert!(
        stderr.contains(UNPRIVILEGED),
        "stderr lacks {UNPRIVILEGED:?}:\n{stderr}"
    );
    check_udp(&lab, "rawscan -sU (unprivileged)", &out, &ports, true);
}

/// (4) `-sS -sU -p T:1-1024,U:1-1024`: both protocols exact in one run.
#[test]
fn combined_syn_and_udp_scan_exact() {
    let Some(mut lab) = udp_lab(&[]) else { return };
    lab.tcp_listen(TCP_OPEN);
    lab.drop_tcp(TCP_DROPPED);
    lab.reject_admin_prohibited_tcp(&[TCP_ADMIN]);
    lab.icmp_unlimited();
    lab.assert_listeners_match_truth();
    let ports = range(1, 1024);
    let args = [
        "-sS",
        "-sU",
        "-p",
        "T:1-1024,U:1-1024",
        "--reason",
        "-n",
        TARGET_IP,
    ];
    let (out, _) = timed("rawscan -sS -sU -p T:1-1024,U:1-1024", || {
        lab.rawscan(&args)
    });
    assert_success("rawscan -sS -sU", &out);
    let udp = udp_port_map(&out.stdout, &ports);
    let tcp = port_map_of(&out.stdout, "tcp", &ports);
    let mut bad: Vec<String> = lab
        .mismatches_udp(&udp, &ports, true)
        .into_iter()
        .map(|l| format!("udp {l}"))
        .collect();
    bad.extend(
        lab.mismatches(&tcp, &ports, TcpScan::Syn, true)
            .into_iter()
            .map(|l| format!("tcp {l}")),
    );
    assert_no_mismatches("rawscan -sS -sU", &bad, &out);
    assert_eq!(
        lab.open_tcp().iter().copied().collect::<Vec<_>>(),
        [22, 53, 80],
        "TCP truth: the listeners plus dnsmasq's 53/tcp"
    );
}

/// (5) `--defeat-icmp-ratelimit` under the default ICMP rate limit: no
/// pacing, so `-p 1-200` finishes in seconds.  Documented behaviour (as
/// nmap's): a port unanswered after the fast stage is closed|filtered;
/// answered ports keep their state (open; closed for the port-unreachables
/// that got through; filtered for admin-prohibited).  Nothing can be
/// open|filtered.  The NDJSON stream (-oJ) gives every port's state; the
/// normal output must agree with it.
#[test]
fn defeat_icmp_ratelimit_is_fast_and_reports_closed_filtered() {
    let Some(mut lab) = udp_lab(&[]) else { return };
    lab.icmp_kernel_default();
    check_defeat(&mut lab, "full ICMP budget", "defeat-1.ndjson");
    // Again, back to back: the first scan left the target's ICMP budget
    // empty, so the first port-unreachable comes ~1 s in.  Same rules.
    check_defeat(
        &mut lab,
        "ICMP budget emptied by the previous scan",
        "defeat-2.ndjson",
    );
}

fn check_defeat(lab: &mut Lab, budget: &str, file: &str) {
    let ports = range(1, 200);
    let json = lab.workdir().join(file);
    let json_s = json.display().to_string();
    let args = [
        "-sU",
        "-p",
        "1-200",
        "--defeat-icmp-ratelimit",
        "--reason",
        "-n",
        "-oJ",
        &json_s,
        TARGET_IP,
    ];
    let (out, elapsed) = timed(
        &format!(
            "rawscan -sU -p 1-200 --defeat-icmp-ratelimit (default ICMP rate limit, {budget})"
        ),
        || lab.rawscan_timeout(&args, Duration::from_secs(120)),
    );
    assert_success("rawscan --defeat-icmp-ratelimit", &out);
    let ndjson = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("cannot read {json_s}: {e}\n{}", text(&out.stderr)));
    let map = parse_ndjson_ports(&ndjson, "udp").unwrap_or_else(|e| panic!("{e}\n{ndjson}"));

    let mut bad = Vec::new();
    let mut closed_filtered_of_closed = 0;
    let mut closed_truth = 0;
    for &p in &ports {
        let Some(r) = map.get(&p) else {
            bad.push(format!("port {p}: missing from the NDJSON stream"));
            continue;
        };
        let got = (r.state.as_str(), r.reason.as_deref().unwrap_or("no reason"));
        let truth = lab.expected_udp(p);
        let ok = match truth.state {
            "open" => got == ("open", "udp-response"),
            "open|filtered" => got == ("closed|filtered", "no-response"),
            "filtered" => {
                got == ("filtered", "admin-prohibited") || got == ("closed|filtered", "no-response")
            }
            _ => {
                closed_truth += 1;
                if got.0 == "closed|filtered" {
                    closed_filtered_of_closed += 1;
                }
                got == ("closed", "port-unreach") || got == ("closed|filtered", "no-response")
            }
        };
        if !ok {
            bad.push(format!(
                "port {p} (truth {}): got {} ({})",
                truth.state, got.0, got.1
            ));
        }
    }
    let extra: Vec<u16> = map.keys().copied().filter(|p| !ports.contains(p)).collect();
    if !extra.is_empty() {
        bad.push(format!("ports not scanned but reported: {extra:?}"));
    }
    assert_no_mismatches(
        &format!("rawscan --defeat-icmp-ratelimit ({budget})"),
        &bad,
        &out,
    );
    eprintln!(
        "  {closed_filtered_of_closed}/{closed_truth} closed ports reported closed|filtered, {} closed",
        closed_truth - closed_filtered_of_closed
    );
    assert!(
        closed_filtered_of_closed * 2 > closed_truth,
        "rate-limited target, but only {closed_filtered_of_closed} of {closed_truth} closed ports are closed|filtered: did --defeat-icmp-ratelimit still pace?"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "--defeat-icmp-ratelimit ({budget}) took {elapsed:?} (limit 20 s)"
    );

    // The normal output agrees with the stream: same number of ports in
    // each state.
    let stdout = text(&out.stdout);
    let parsed = parse_normal(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    let host = parsed
        .host(TARGET_IP)
        .unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    let mut normal_counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in host.rows.iter().filter(|r| r.proto == "udp") {
        *normal_counts.entry(r.state.clone()).or_default() += 1;
        let want = &map[&r.port].state;
        assert_eq!(
            &r.state, want,
            "{}/udp: normal output says {}, NDJSON {want}",
            r.port, r.state
        );
    }
    for g in host.not_shown.iter().filter(|g| g.proto == "udp") {
        *normal_counts.entry(g.state.clone()).or_default() += g.count;
    }
    let mut json_counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in map.values() {
        *json_counts.entry(r.state.clone()).or_default() += 1;
    }
    assert_eq!(
        normal_counts, json_counts,
        "state counts differ between normal output and NDJSON:\n{stdout}"
    );
}

/// (0) The lab itself: nmap (the reference) sees exactly the UDP truth
/// the lab was configured with (ICMP rate limit off), so a failure above
/// is rawscan's, not the lab's.
#[test]
fn lab_udp_truth_matches_nmap() {
    let Some(lab) = udp_lab(&["nmap"]) else {
        return;
    };
    lab.icmp_unlimited();
    let mut ports = range(1, 200);
    ports.push(500);
    let spec = port_spec(&ports);
    let (out, _) = timed("nmap -sU (lab check)", || {
        lab.run_in_scanner(
            "nmap",
            &["-sU", "-p", &spec, "-n", "-Pn", "--reason", TARGET_IP],
        )
    });
    assert_success("nmap -sU", &out);
    let text = text(&out.stdout)
        .replace("Nmap scan report for", "rawscan scan report for")
        .replace("Starting Nmap", "Starting rawscan")
        .replace("Nmap done:", "rawscan done:");
    let parsed = parse_normal(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let map = parsed
        .host(TARGET_IP)
        .and_then(|h| h.port_map("udp", &ports))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_no_mismatches("nmap -sU", &lab.mismatches_udp(&map, &ports, true), &out);
}

/// (7) Issue 12 §6: what a UDP "open" rests on is in its reason. Port 7
/// (echo: the reply reflects our probe, cookie included) is `udp-response`;
/// an echo listener on 9999, a port probed with an empty datagram, is
/// `udp-response-unverified`, with raw sockets and without; the XML with
/// the new reason is still valid against nmap's DTD (reason is CDATA).
#[test]
fn udp_reasons_tell_verified_from_unverified() {
    const DTD: &str = "/usr/share/nmap/nmap.dtd";
    let Some(mut lab) = lab_with_tools(&["capsh", "xmllint"]) else {
        return;
    };
    lab.udp_echo(&[7, 9999]);
    lab.icmp_unlimited();
    let ports = [7, 9998, 9999];
    let want = [
        (7, ("open", "udp-response")),
        (9998, ("closed", "port-unreach")),
        (9999, ("open", "udp-response-unverified")),
    ];
    let xml = lab.workdir().join("reasons.xml");
    let xml_s = xml.display().to_string();
    let raw = [
        "-sU",
        "-p",
        "7,9998,9999",
        "--reason",
        "-n",
        "-oX",
        &xml_s,
        TARGET_IP,
    ];
    let unpriv = ["-sU", "-p", "7,9998,9999", "--reason", "-n", TARGET_IP];
    let (out_raw, _) = timed("rawscan -sU -p 7,9998,9999 (raw)", || lab.rawscan(&raw));
    lab.assert_no_raw_really_drops_cap();
    let (out_unpriv, _) = timed("rawscan -sU -p 7,9998,9999 (unprivileged)", || {
        lab.rawscan_no_raw(&unpriv)
    });
    for (what, out) in [("raw", &out_raw), ("unprivileged", &out_unpriv)] {
        assert_success(what, out);
        let map = udp_port_map(&out.stdout, &ports);
        for (port, (state, reason)) in want {
            let got = map
                .get(&port)
                .map(|r| (r.state.as_str(), r.reason.as_deref()));
            assert_eq!(
                got,
                Some((state, Some(reason))),
                "{what}: port {port}\n{}",
                text(&out.stdout)
            );
        }
    }
    let xml_text = std::fs::read_to_string(&xml).expect("read -oX file");
    assert!(
        xml_text.contains(r#"reason="udp-response-unverified""#),
        "{xml_text}"
    );
    let v = std::process::Command::new(find_tool("xmllint").expect("xmllint"))
        .args(["--noout", "--dtdvalid", DTD, &xml_s])
        .output()
        .expect("run xmllint");
    assert!(
        v.status.success(),
        "xmllint --dtdvalid {DTD}: {}\n{xml_text}",
        text(&v.stderr)
    );
}
