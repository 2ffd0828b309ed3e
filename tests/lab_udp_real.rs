//! Issue 13: UDP against real servers from Debian packages, in the target
//! namespace of the lab (see tests/common and tests/common/udp_services.rs).
//!
//! - tftpd-hpa answers a read request from a NEW port (RFC 1350 transfer
//!   IDs): rawscan must call 69/udp open, with raw sockets and without.
//! - freeradius holds its Access-Reject for one second (`reject_delay`),
//!   longer than the scan's first timeouts: the answer to an earlier try
//!   comes after the retry was sent. Without privileges, 1812/udp must be
//!   open in every run, as it is with raw sockets.
//!
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_udp_real -- --nocapture`
mod common;

use common::*;
use std::process::Output;

fn show(what: &str, out: &Output) {
    eprintln!(
        "{what}:\n--- stdout ---\n{}--- stderr ---\n{}--------------",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// (state, reason) of each port, from the normal output.
fn states(out: &Output, ports: &[u16]) -> Vec<(u16, String, String)> {
    let map = udp_port_map(&out.stdout, ports);
    ports
        .iter()
        .map(|p| {
            let r = map
                .get(p)
                .unwrap_or_else(|| panic!("no state for {p}/udp:\n{}", text(&out.stdout)));
            (*p, r.state.clone(), r.reason.clone().unwrap_or_default())
        })
        .collect()
}

fn want(v: &[(u16, &str, &str)]) -> Vec<(u16, String, String)> {
    v.iter()
        .map(|(p, s, r)| (*p, s.to_string(), r.to_string()))
        .collect()
}

#[test]
fn tftp_answers_from_a_new_port_open_69_with_and_without_privileges() {
    let Some(mut lab) = lab_with_tools(&["in.tftpd", "capsh", "ss"]) else {
        return;
    };
    lab.start_tftpd();
    lab.icmp_unlimited();
    let ports = [68, 69];
    let args = ["-sU", "-p", "68,69", "--reason", "-n", TARGET_IP];
    let expected = want(&[
        (68, "closed", "port-unreach"),
        (69, "open", "udp-response-unverified"),
    ]);
    let raw = lab.rawscan(&args);
    show("rawscan -sU -p 68,69 (raw)", &raw);
    assert_success("raw", &raw);
    assert_eq!(states(&raw, &ports), expected, "raw sockets");
    lab.assert_no_raw_really_drops_cap();
    let unpriv = lab.rawscan_no_raw(&args);
    show("rawscan -sU -p 68,69 (unprivileged)", &unpriv);
    assert_success("unprivileged", &unpriv);
    assert!(
        text(&unpriv.stderr).contains("unprivileged mode"),
        "{}",
        text(&unpriv.stderr)
    );
    assert_eq!(states(&unpriv, &ports), expected, "connected UDP sockets");
}

#[test]
fn freeradius_is_open_without_privileges_in_every_run() {
    let Some(mut lab) = lab_with_tools(&["freeradius", "capsh", "ss"]) else {
        return;
    };
    lab.start_freeradius();
    // An echo on 7 answers at once: with 1812's answer a second late, the
    // host's round trip would otherwise stay unmeasured, and every try
    // wait the initial timeout (a two-port scan then takes 20 s).
    lab.udp_echo(&[7]);
    lab.icmp_unlimited();
    lab.assert_no_raw_really_drops_cap();
    // Runs 1, 3, 5 also scan a closed port (the host answers ICMP: keys
    // left unanswered wait out a grace for late replies); runs 2 and 4
    // do not (replies are all UDP: the silent-host proof decides 1813).
    for run in 1..=5 {
        let (spec, expected) = if run % 2 == 1 {
            (
                "1812-1814",
                want(&[
                    (1812, "open", "udp-response"),
                    (1813, "open|filtered", "no-response"),
                    (1814, "closed", "port-unreach"),
                ]),
            )
        } else {
            (
                "7,1812,1813",
                want(&[
                    (7, "open", "udp-response"),
                    (1812, "open", "udp-response"),
                    (1813, "open|filtered", "no-response"),
                ]),
            )
        };
        let ports: Vec<u16> = expected.iter().map(|(p, _, _)| *p).collect();
        let args = ["-sU", "-p", spec, "--reason", "-n", TARGET_IP];
        let out = lab.rawscan_no_raw(&args);
        show(
            &format!("run {run}: rawscan -sU -p {spec} (unprivileged)"),
            &out,
        );
        assert_success("unprivileged", &out);
        assert_eq!(states(&out, &ports), expected, "unprivileged run {run}");
    }
    // Raw sockets agree.
    let args = ["-sU", "-p", "1812-1814", "--reason", "-n", TARGET_IP];
    let out = lab.rawscan(&args);
    show("rawscan -sU -p 1812-1814 (raw)", &out);
    assert_success("raw", &out);
    assert_eq!(
        states(&out, &[1812, 1813, 1814]),
        want(&[
            (1812, "open", "udp-response"),
            (1813, "open|filtered", "no-response"),
            (1814, "closed", "port-unreach"),
        ]),
        "raw sockets"
    );
}
