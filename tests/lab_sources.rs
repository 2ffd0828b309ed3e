//! `-S` with many source addresses: the target's per-peer ICMP budget
//! multiplies, and the UDP scan stays exact at the kernel's default ICMP
//! limit (issue 7, section 5). Runs as root in a lab (see tests/common).

mod common;

use common::*;
use rawscan::probe::Proto;
use rawscan::targets::PortList;
use std::time::{Duration, Instant};

const OPEN: &[u16] = &[7, 53, 123, 161];
const DROPPED: &[u16] = &[49, 69, 500];
const ADMIN: u16 = 138;
const SOURCES: u8 = 32;

/// 32 extra scanner addresses (198.18.0.100-131), every one used, and the
/// top-100 UDP ports exact against the truth at the default ICMP limit.
#[test]
fn udp_top_100_from_32_sources_is_exact_at_the_default_icmp_limit() {
    let Some(mut lab) = lab_with_tools(&["dnsmasq", "chronyd", "snmpd", "ss"]) else {
        return;
    };
    lab.start_udp_services();
    lab.drop_udp(DROPPED);
    lab.reject_admin_prohibited_udp(ADMIN);
    assert_eq!(lab.open_udp().iter().copied().collect::<Vec<_>>(), OPEN);
    lab.icmp_kernel_default();
    for i in 0..SOURCES {
        let addr = format!("198.18.0.{}/24", 100 + u16::from(i));
        let out = lab.run_in_scanner("ip", &["addr", "add", &addr, "dev", &lab.scanner_if]);
        assert_success("ip addr add", &out);
    }
    let ports = PortList::top(100, &[Proto::Udp]).udp;
    for p in OPEN.iter().chain(DROPPED).chain([&ADMIN]) {
        assert!(ports.contains(p), "{p}/udp is not in the top 100");
    }
    let sources = format!("198.18.0.100-{}", 99 + u16::from(SOURCES));
    let t = Instant::now();
    let out = lab.rawscan_timeout(
        &[
            "-sU",
            "--top-ports",
            "100",
            "-S",
            &sources,
            "--reason",
            "-n",
            "-v",
            TARGET_IP,
        ],
        Duration::from_secs(300),
    );
    eprintln!(
        "rawscan -sU --top-ports 100 -S {sources}: {:.1} s\n{}{}",
        t.elapsed().as_secs_f64(),
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_success("rawscan -sU -S", &out);
    let map = udp_port_map(&out.stdout, &ports);
    let bad = lab.mismatches_udp(&map, &ports, true);
    assert_no_mismatches("rawscan -sU --top-ports 100 -S (32 sources)", &bad, &out);
}

/// An address that is not configured on the scanning host is a usage
/// error naming it, before anything is sent.
#[test]
fn an_unconfigured_source_is_refused() {
    let Some(lab) = lab() else { return };
    let out = lab.rawscan(&["-S", "198.18.0.1,198.18.0.77", "-p", "22", TARGET_IP]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("198.18.0.77"), "{err}");
}
