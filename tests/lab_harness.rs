//! Tests of the lab harness itself (tests/common): they need no rawscan, so
//! when a rawscan lab test fails these tell whether the lab is to blame.
mod common;

use common::*;
use std::process::Output;

/// nmap's normal output with nmap's name replaced, so the rawscan parser can
/// read it.
fn nmap_as_rawscan(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .replace("Nmap scan report for", "rawscan scan report for")
        .replace("Starting Nmap", "Starting rawscan")
        .replace("Nmap done:", "rawscan done:")
}

#[test]
fn parser_handles_contract_sample() {
    self_test_parser();
}

/// nmap (the reference) sees exactly the truth the lab was configured with,
/// with CAP_NET_RAW (-sS) and without it (-sT through capsh).
#[test]
fn lab_truth_matches_nmap() {
    let Some(mut lab) = lab_with_tools(&["nmap", "capsh"]) else {
        return;
    };
    lab.tcp_listen(&[22, 80, 443]);
    lab.drop_tcp(&[81, 99]);
    lab.reject_admin_prohibited_tcp(&[82]);
    let ports: Vec<u16> = (1..=100).chain([443]).collect();
    let spec = port_spec(&ports);

    let out = lab.run_in_scanner(
        "nmap",
        &["-sS", "-p", &spec, "-n", "-Pn", "--reason", TARGET_IP],
    );
    nmap_matches_truth(&lab, "nmap -sS", &out, &ports, TcpScan::Syn);

    lab.assert_no_raw_really_drops_cap();
    let out = lab.run_no_raw(
        "nmap",
        &["-sT", "-p", &spec, "-n", "-Pn", "--reason", TARGET_IP],
        DEFAULT_TIMEOUT,
    );
    nmap_matches_truth(&lab, "nmap -sT", &out, &ports, TcpScan::Connect);
}

/// nmap's normal output of `out` has the lab's true state for every port.
fn nmap_matches_truth(
    lab: &Lab,
    what: &str,
    out: &std::process::Output,
    ports: &[u16],
    scan: TcpScan,
) {
    let text = nmap_as_rawscan(out);
    let parsed = parse_normal(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let map = parsed
        .host(TARGET_IP)
        .unwrap()
        .port_map("tcp", ports)
        .unwrap();
    assert_no_mismatches(what, &lab.mismatches(&map, ports, scan, true), out);
}

/// `random_loss(10)` drops ~10% each way: with one probe per port and no
/// retries, a port looks filtered when the SYN or the RST is lost,
/// P = 1 - 0.9² = 0.19 → ~380 of 2000 (sd ≈ 18).
#[test]
fn loss_rule_drops_the_right_share() {
    let Some(lab) = lab_with_tools(&["nmap"]) else {
        return;
    };
    let args = [
        "-sS",
        "-p",
        "1-2000",
        "-n",
        "-Pn",
        "--max-retries",
        "0",
        TARGET_IP,
    ];
    lab.random_loss(10);
    let out = lab.run_in_scanner("nmap", &args);
    let text = nmap_as_rawscan(&out);
    let parsed = parse_normal(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let host = parsed.host(TARGET_IP).unwrap();
    let filtered: usize = host
        .not_shown
        .iter()
        .filter(|g| g.state == "filtered")
        .map(|g| g.count)
        .sum::<usize>()
        + host.rows.iter().filter(|r| r.state == "filtered").count();
    eprintln!("10% loss each way, no retries: {filtered}/2000 filtered (expected ~380)");
    assert!(
        (250..=520).contains(&filtered),
        "{filtered} filtered\n{text}"
    );

    lab.random_loss(0);
    let out = lab.run_in_scanner("nmap", &args);
    let text = nmap_as_rawscan(&out);
    assert!(text.contains("Not shown: 2000 closed tcp ports"), "{text}");
}

/// Names are unique per lab, and the namespaces are deleted when the test
/// using them panics.
#[test]
fn namespaces_unique_and_removed_on_panic() {
    let Some(first) = lab() else {
        return;
    };
    let first_names = (first.scanner_ns.clone(), first.target_ns.clone());
    assert!(first_names.0.len() <= 15 && first_names.1.len() <= 15);
    drop(first);
    let list = netns_list();
    assert!(
        !list.contains(&first_names.0) && !list.contains(&first_names.1),
        "{list:?}"
    );

    let result = std::panic::catch_unwind(|| {
        let mut lab = Lab::new().expect("second lab");
        lab.tcp_listen(&[22]);
        lab.drop_tcp(&[23]);
        let names = (lab.scanner_ns.clone(), lab.target_ns.clone());
        let list = netns_list();
        assert!(
            list.contains(&names.0) && list.contains(&names.1),
            "{list:?}"
        );
        std::panic::panic_any(names);
    });
    let names = *result
        .expect_err("the closure panics")
        .downcast::<(String, String)>()
        .expect("payload is the names");
    assert_ne!(names, first_names, "lab names must be unique");
    let list = netns_list();
    assert!(
        !list.contains(&names.0) && !list.contains(&names.1),
        "namespaces {names:?} survived the panic: {list:?}"
    );
}
