//! TCP scanner tests against the network-namespace lab (see tests/common).
//!
//! Every test builds its own lab: listeners in the target namespace on
//! `OPEN`, nftables drops on `DROPPED`, ICMP admin-prohibited on `ADMIN`,
//! everything else closed; then asserts the EXACT state of every scanned port.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_tcp -- --nocapture`
mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

/// Spread over the whole range, including both ends.
const OPEN: &[u16] = &[1, 22, 80, 443, 1999, 8080, 31337, 65535];
const DROPPED: &[u16] = &[81, 1500, 40000];
const ADMIN: u16 = 113;
const FALLBACK: &str = "falling back to TCP connect scan (-sT)";

fn tcp_lab() -> Option<Lab> {
    tcp_lab_with_tools(&[])
}

fn tcp_lab_with_tools(tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_with_tools(tools)?;
    setup_target(&mut lab);
    Some(lab)
}

fn setup_target(lab: &mut Lab) {
    lab.tcp_listen(OPEN);
    lab.drop_tcp(DROPPED);
    lab.reject_admin_prohibited_tcp(&[ADMIN]);
}

/// 1-2000 plus the special ports above 2000.
fn partial_ports() -> Vec<u16> {
    let mut v: Vec<u16> = (1..=2000).collect();
    v.extend(
        OPEN.iter()
            .chain(DROPPED)
            .chain([&ADMIN])
            .copied()
            .filter(|&p| p > 2000),
    );
    v.sort_unstable();
    v.dedup();
    v
}

fn all_ports() -> Vec<u16> {
    (1..=65535).collect()
}

/// Exit 0, output parses, and every port in `ports` has the true state (and
/// reason, when `reasons`).  Returns the port map.
fn check_scan(
    lab: &Lab,
    what: &str,
    out: &Output,
    ports: &[u16],
    scan: TcpScan,
    reasons: bool,
) -> BTreeMap<u16, PortResult> {
    assert_success(what, out);
    let map = tcp_port_map(&out.stdout, ports);
    let bad = lab.mismatches(&map, ports, scan, reasons);
    assert_no_mismatches(what, &bad, out);
    map
}

fn timed(what: &str, f: impl FnOnce() -> Output) -> Output {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:.2}s", t.elapsed().as_secs_f64());
    out
}

/// (1) Full-range SYN scan: all 65535 ports exactly right, reasons included.
#[test]
fn syn_scan_full_range_exact() {
    let Some(lab) = tcp_lab() else { return };
    let args = ["-sS", "-p-", "--reason", "-n", TARGET_IP];
    let out = timed("rawscan -sS -p- --reason", || lab.rawscan(&args));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains(FALLBACK),
        "fell back to connect scan although CAP_NET_RAW is available:\n{stderr}"
    );
    let map = check_scan(
        &lab,
        "rawscan -sS -p-",
        &out,
        &all_ports(),
        TcpScan::Syn,
        true,
    );
    assert_eq!(map.len(), 65535);

    // The rest of the normal-output contract.
    let stdout = text(&out.stdout);
    let parsed = parse_normal(&stdout).expect("parsed above");
    assert!(
        parsed
            .starting_line
            .as_deref()
            .is_some_and(|l| l.starts_with("Starting rawscan ")),
        "no 'Starting rawscan' line:\n{stdout}"
    );
    assert!(
        parsed
            .done_line
            .as_deref()
            .is_some_and(|l| l.contains("1 IP address (1 host up)")),
        "no 'rawscan done: 1 IP address (1 host up) ...' line:\n{stdout}"
    );
    let host = parsed.host(TARGET_IP).expect("parsed above");
    assert!(
        host.has_reason_column,
        "--reason but no REASON column:\n{stdout}"
    );
    assert_eq!(
        host.not_shown.len(),
        1,
        "expected one 'Not shown: N closed tcp ports (reset)' line:\n{stdout}"
    );
    for (port, service) in [(22, "ssh"), (80, "http"), (443, "https")] {
        let row = host.rows.iter().find(|r| r.port == port).expect("open row");
        assert_eq!(row.service, service, "service of {port}/tcp:\n{stdout}");
    }
}

/// (2) Connect scan and SYN scan agree on every port (and both are right).
#[test]
fn connect_scan_agrees_with_syn_scan() {
    let Some(lab) = tcp_lab() else { return };
    let ports = partial_ports();
    let spec = port_spec(&ports);
    let syn_args = ["-sS", "-p", &spec, "--reason", "-n", TARGET_IP];
    let con_args = ["-sT", "-p", &spec, "--reason", "-n", TARGET_IP];
    let syn = timed("rawscan -sS (2004 ports)", || lab.rawscan(&syn_args));
    let con = timed("rawscan -sT (2004 ports)", || lab.rawscan(&con_args));
    let syn_map = check_scan(&lab, "rawscan -sS", &syn, &ports, TcpScan::Syn, true);
    let con_map = check_scan(&lab, "rawscan -sT", &con, &ports, TcpScan::Connect, true);
    let disagree: Vec<String> = ports
        .iter()
        .filter(|p| syn_map[p].state != con_map[p].state)
        .map(|p| {
            format!(
                "port {p}: -sS {} / -sT {}",
                syn_map[p].state, con_map[p].state
            )
        })
        .collect();
    assert!(
        disagree.is_empty(),
        "-sS and -sT disagree:\n{}",
        disagree.join("\n")
    );
}

/// (3) Without CAP_NET_RAW: exactly one stderr line announcing the fallback,
/// and a correct connect scan.
#[test]
fn without_cap_net_raw_falls_back_to_connect_scan() {
    let Some(lab) = tcp_lab_with_tools(&["capsh"]) else {
        return;
    };
    lab.assert_no_raw_really_drops_cap();
    let ports = partial_ports();
    let spec = port_spec(&ports);
    let args = ["-p", &spec, "--reason", "-n", TARGET_IP];
    let out = timed("rawscan without CAP_NET_RAW", || lab.rawscan_no_raw(&args));
    let stderr = text(&out.stderr);
    let fallback_lines = stderr.lines().filter(|l| l.contains(FALLBACK)).count();
    assert_eq!(
        fallback_lines, 1,
        "expected exactly one stderr line containing {FALLBACK:?}, got {fallback_lines}:\n{stderr}"
    );
    check_scan(
        &lab,
        "rawscan (fallback -sT)",
        &out,
        &ports,
        TcpScan::Connect,
        true,
    );
}

/// (4) 10% random loss in EACH direction on the target's veth, --max-retries 10.
///
/// Why 10 retries: an attempt gets no answer when the probe is lost (0.1) or
/// the answer is (0.9 × 0.1), so P(miss) = 0.19 per attempt; with 1 + 10
/// attempts a responsive port is misreported as filtered with probability
/// 0.19^11 ≈ 1.2e-8, i.e. ≈ 2.5e-5 for the ~2000 ports of this test.
#[test]
fn exact_under_ten_percent_loss_with_retries() {
    let Some(lab) = tcp_lab() else { return };
    lab.random_loss(10);
    let ports = partial_ports();
    let spec = port_spec(&ports);
    let args = [
        "-sS",
        "-p",
        &spec,
        "--max-retries",
        "10",
        "--reason",
        "-n",
        TARGET_IP,
    ];
    let out = timed("rawscan -sS with 10% loss", || {
        lab.rawscan_timeout(&args, Duration::from_secs(300))
    });
    check_scan(
        &lab,
        "rawscan -sS (10% loss)",
        &out,
        &ports,
        TcpScan::Syn,
        true,
    );
}
