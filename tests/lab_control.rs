//! Congestion control and loss-aware retries on real sockets (issue 7):
//! rawscan at its DEFAULT settings (no -T, no rate flag) must be exact on
//! every path the lab can build.  The unit tests' simulator is where the
//! controller's speed is judged; here only results are: every test asserts
//! the exact state and reason of every scanned port against the lab's
//! truth, never a time (speed is in scripts/bench.sh, scenario `control`).
//!
//! Target (same shape as tests/lab_tcp.rs): listeners on `OPEN`, nftables
//! drops on `DROPPED`, ICMP admin-prohibited on `ADMIN`, the rest closed.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_control -- --nocapture`
mod common;

use common::*;
use std::process::Output;
use std::time::{Duration, Instant};

const OPEN: &[u16] = &[1, 22, 80, 443, 1999, 8080, 31337, 65535];
const DROPPED: &[u16] = &[81, 1500, 40000];
const ADMIN: u16 = 113;
const FALLBACK: &str = "falling back to TCP connect scan (-sT)";

fn control_lab(tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_with_tools(tools)?;
    lab.tcp_listen(OPEN);
    lab.drop_tcp(DROPPED);
    lab.reject_admin_prohibited_tcp(&[ADMIN]);
    Some(lab)
}

fn all_ports() -> Vec<u16> {
    (1..=65535).collect()
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

/// The figures of rawscan's `-v` summary line ("rawscan: N probes sent in
/// Xs (R probes/s achieved, K retries, final rate F/s after C congestion
/// back-offs, L% of tries to answering ports lost; E send errors) ...").
#[derive(Debug, PartialEq)]
struct Summary {
    sent: u64,
    retries: u64,
    final_rate: u64,
    backoffs: u64,
    loss_pct: f64,
    send_errors: u64,
}

/// The number just before `word` in `line` (`"12 retries"`, `"4.5%"`).
fn number_before(line: &str, word: &str) -> Option<f64> {
    let i = line.find(word)?;
    let head = line[..i].trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |j| j + 1);
    head[start..].parse().ok()
}

fn parse_summary(stderr: &str) -> Option<Summary> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("rawscan: ") && l.contains(" probes sent in "))?;
    let rate = line.split("final rate ").nth(1)?;
    let rate = rate.split('/').next()?.trim().parse().ok()?;
    Some(Summary {
        sent: number_before(line, " probes sent")? as u64,
        retries: number_before(line, " retries")? as u64,
        final_rate: rate,
        backoffs: number_before(line, " congestion back-offs")? as u64,
        loss_pct: number_before(line, "% of tries")?,
        send_errors: number_before(line, " send errors")? as u64,
    })
}

/// The `-v` summary of `out` (panics with stderr when there is none), after
/// checking that every one of `ports` was probed at least once.
fn summary(what: &str, out: &Output, ports: usize) -> Summary {
    let stderr = text(&out.stderr);
    let s = parse_summary(&stderr)
        .unwrap_or_else(|| panic!("{what}: no -v summary line on stderr:\n{stderr}"));
    eprintln!("{what}: {s:?}");
    assert!(
        s.sent >= ports as u64,
        "{what}: {} probes sent for {ports} ports:\n{stderr}",
        s.sent
    );
    s
}

/// Exit 0, output parses, every port in `ports` has the true state and
/// reason.
fn assert_exact(lab: &Lab, what: &str, out: &Output, ports: &[u16], scan: TcpScan) {
    assert_success(what, out);
    let map = tcp_port_map(&out.stdout, ports);
    let bad = lab.mismatches(&map, ports, scan, true);
    assert_no_mismatches(what, &bad, out);
}

fn timed(what: &str, f: impl FnOnce() -> Output) -> Output {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:.2}s", t.elapsed().as_secs_f64());
    out
}

fn assert_raw(what: &str, out: &Output) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains(FALLBACK),
        "{what}: fell back to a connect scan although CAP_NET_RAW is available:\n{stderr}"
    );
}

/// Default settings, lossless veth, all 65535 ports: exact.  No -sS either:
/// as root the default scan is the SYN scan.
#[test]
fn default_full_range_exact_lossless() {
    let Some(lab) = control_lab(&[]) else { return };
    let args = ["-p-", "-v", "--reason", "-n", TARGET_IP];
    let out = timed("rawscan -p- (default, lossless)", || lab.rawscan(&args));
    assert_raw("rawscan -p-", &out);
    assert_exact(&lab, "rawscan -p-", &out, &all_ports(), TcpScan::Syn);
    let s = summary("rawscan -p- (default, lossless)", &out, 65535);
    assert_eq!(s.send_errors, 0, "send errors on a lossless veth: {s:?}");
}

/// Default settings through a 2 Mbit/s token bucket on the scanner's side
/// of the veth (about 4.3k SYN/s: a fixed rate above that loses probes in
/// the qdisc, and a scan that believes silence reports them filtered):
/// exact over all 65535 ports.  The full range costs about 16 s at the
/// path's floor (15.2 s); CI can afford it, and a shorter range would end
/// before the controller has left its start-up.
#[test]
fn default_full_range_exact_through_2mbit_bottleneck() {
    let Some(lab) = control_lab(&["tc"]) else {
        return;
    };
    lab.scanner_tbf("2mbit", "16kb", "20ms");
    let before = lab.scanner_qdisc_stats();
    assert_eq!(
        before.kind, "tbf",
        "no tbf on the scanner's veth: {before:?}"
    );
    let args = ["-p-", "-v", "--reason", "-n", TARGET_IP];
    let out = timed("rawscan -p- (default, 2 Mbit/s tbf)", || {
        lab.rawscan_timeout(&args, Duration::from_secs(300))
    });
    assert_raw("rawscan -p- through tbf", &out);
    assert_exact(
        &lab,
        "rawscan -p- through a 2 Mbit/s tbf",
        &out,
        &all_ports(),
        TcpScan::Syn,
    );
    summary("rawscan -p- (default, 2 Mbit/s tbf)", &out, 65535);
    // The probes really went through the bottleneck.
    let after = lab.scanner_qdisc_stats();
    eprintln!("scanner qdisc after the scan: {after:?}");
    assert_eq!(after.kind, "tbf");
    assert!(
        after.sent_packets >= before.sent_packets + 65535,
        "fewer than 65535 packets through the tbf: before {before:?}, after {after:?}"
    );
}

/// Default settings at 20 % random loss each way (nftables `numgen random`
/// on the target's veth; 36 % of probe-and-answer pairs fail): exact over
/// all 65535 ports, reasons included.  The retry budget follows the
/// measured loss (about 16 tries here), aiming at fewer than 0.01 wrong
/// ports per scan.
///
/// As of this commit this FAILS in about a third of runs: an open port is
/// reported filtered.  The cause is the target's SYN_RECV handling (see
/// `open_ports_exact_when_the_first_two_syn_acks_are_lost`, which shows it
/// deterministically).
#[test]
fn default_full_range_exact_at_20_percent_loss_each_way() {
    let Some(lab) = control_lab(&[]) else { return };
    lab.random_loss(20);
    let args = ["-p-", "-v", "--reason", "-n", TARGET_IP];
    let out = timed("rawscan -p- (default, 20% loss each way)", || {
        lab.rawscan_timeout(&args, Duration::from_secs(300))
    });
    assert_raw("rawscan -p- at 20% loss", &out);
    assert_exact(
        &lab,
        "rawscan -p- at 20% loss each way",
        &out,
        &all_ports(),
        TcpScan::Syn,
    );
    summary("rawscan -p- (default, 20% loss each way)", &out, 65535);
}

/// The mechanism behind the misses at 20 % loss, made deterministic.  The
/// target drops the first two SYN-ACKs each open port sends to the scanner;
/// the later ones pass.  With 6 tries (`--max-retries 5`) a scanner must
/// find every open port: nmap does (checked here, in the same lab).
///
/// Linux answers a repeated SYN for a connection it holds in SYN_RECV (same
/// addresses, ports and sequence number) with a retransmitted SYN-ACK at
/// most once per `net.ipv4.tcp_invalid_ratelimit` (500 ms), counting
/// TcpExtTCPACKSkippedSynRecv for the rest.  A scanner that retries from
/// the SAME source port within 500 ms therefore gets no answer at all once
/// the first SYN-ACK (or the scanner's RST to it) is lost: the request
/// socket stays, and every retry hits it.  nmap retries from a new source
/// port, so each retry is a new connection.  As of this commit rawscan
/// retries from the same port, a few ms apart, and reports every open port
/// filtered here.
#[test]
fn open_ports_exact_when_the_first_two_syn_acks_are_lost() {
    let Some(lab) = control_lab(&["nmap"]) else {
        return;
    };
    let ports = partial_ports();
    let spec = port_spec(&ports);

    lab.lose_first_syn_acks(2);
    let args = [
        "-sS",
        "-p",
        &spec,
        "--max-retries",
        "5",
        "-v",
        "--reason",
        "-n",
        TARGET_IP,
    ];
    let ours = timed("rawscan, first two SYN-ACKs lost", || lab.rawscan(&args));
    let ours_lost = lab.lost_syn_acks();
    let ours_map = {
        assert_success("rawscan", &ours);
        tcp_port_map(&ours.stdout, &ports)
    };
    let ours_bad = lab.mismatches(&ours_map, &ports, TcpScan::Syn, true);

    // The target retransmits the SYN-ACKs it believes lost (1 s later):
    // wait until no connection of rawscan's is half-open there, or those
    // retransmissions would count among the drops of nmap's run (rawscan
    // can finish well within that second).
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(10) {
        let out = lab.run_in_target("ss", &["-Htn", "state", "syn-recv"]);
        if out.status.success() && out.stdout.iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The control: nmap, in the same lab, with the same losses.
    lab.lose_first_syn_acks(2);
    let nmap_args = [
        "-sS",
        "-p",
        &spec,
        "--max-retries",
        "5",
        "-n",
        "-Pn",
        "--reason",
        TARGET_IP,
    ];
    let theirs = timed("nmap, first two SYN-ACKs lost", || {
        lab.run_in_scanner("nmap", &nmap_args)
    });
    let theirs_lost = lab.lost_syn_acks();
    let theirs_map = {
        let t = nmap_as_rawscan(&theirs);
        let parsed = parse_normal(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
        parsed
            .host(TARGET_IP)
            .and_then(|h| h.port_map("tcp", &ports))
            .unwrap_or_else(|e| panic!("{e}\n{t}"))
    };
    let theirs_bad = lab.mismatches(&theirs_map, &ports, TcpScan::Syn, true);
    eprintln!(
        "SYN-ACKs dropped: {ours_lost} during rawscan, {theirs_lost} during nmap; \
         wrong ports: rawscan {}, nmap {}",
        ours_bad.len(),
        theirs_bad.len()
    );
    assert_no_mismatches("nmap (the lab's control)", &theirs_bad, &theirs);
    assert_eq!(
        theirs_lost,
        2 * OPEN.len() as u64,
        "the lab should have dropped exactly two SYN-ACKs per open port during nmap's scan"
    );
    assert_no_mismatches(
        "rawscan --max-retries 5, first two SYN-ACKs of each open port lost",
        &ours_bad,
        &ours,
    );
}

/// Without CAP_NET_RAW, default settings, all 65535 ports: the connect
/// fallback is exact (reasons included) and says so once on stderr.
#[test]
fn default_full_range_connect_fallback_exact() {
    let Some(lab) = control_lab(&["capsh"]) else {
        return;
    };
    lab.assert_no_raw_really_drops_cap();
    let args = ["-p-", "-v", "--reason", "-n", TARGET_IP];
    let out = timed("rawscan -p- without CAP_NET_RAW (default)", || {
        lab.rawscan_no_raw(&args)
    });
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.contains(FALLBACK)).count(),
        1,
        "expected exactly one stderr line containing {FALLBACK:?}:\n{stderr}"
    );
    assert_exact(
        &lab,
        "rawscan -p- (connect fallback)",
        &out,
        &all_ports(),
        TcpScan::Connect,
    );
    summary("rawscan -p- without CAP_NET_RAW (default)", &out, 65535);
}

/// nmap's normal output with nmap's name replaced, so the rawscan parser can
/// read it.
fn nmap_as_rawscan(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .replace("Nmap scan report for", "rawscan scan report for")
        .replace("Starting Nmap", "Starting rawscan")
        .replace("Nmap done:", "rawscan done:")
}

#[test]
fn summary_line_parses() {
    let line = "rawscan: 69138 probes sent in 15.98s (4326 probes/s achieved, 3603 retries, \
                final rate 4133/s after 607 congestion back-offs, 0.1% of tries to answering \
                ports lost; 0 send errors), 69130 packets received (0 malformed, 0 failed \
                validation, 0 dropped while busy)";
    let stderr = format!("Discovered open port 22/tcp on 198.18.0.2\n{line}\n");
    assert_eq!(
        parse_summary(&stderr),
        Some(Summary {
            sent: 69138,
            retries: 3603,
            final_rate: 4133,
            backoffs: 607,
            loss_pct: 0.1,
            send_errors: 0,
        })
    );
    assert_eq!(parse_summary("rawscan: 12 probes sent in 1s\n"), None);
}
