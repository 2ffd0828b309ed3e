//! The result collector's memory does not grow with uninteresting
//! results: a counting allocator measures the heap bytes a `Report` holds
//! for sweeps of many hosts (a /16 x 100 ports, 131,072 hosts x 10 ports)
//! and for a single host with every port. No network is involved.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use rawscan::output::Report;
use rawscan::probe::{PortResult, PortState, ProbeKey, Proto, Reason};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same layout as requested.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p was allocated by System with l.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Heap bytes per host of a report of `hosts` x `ports` results, in a
/// random-looking order, mostly closed, a few open, one filtered port.
fn bytes_per_host(hosts: u32, ports: &[u16]) -> f64 {
    let space: Vec<(Proto, u16)> = ports.iter().map(|&p| (Proto::Tcp, p)).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut report = Report::new(space);
    let n = u64::from(hosts) * ports.len() as u64;
    // A multiplicative walk over 0..n: every pair once, spread over hosts.
    let step = (0..)
        .map(|k| 1_000_003u64 + 2 * k)
        .find(|s| gcd(*s, n) == 1)
        .unwrap();
    for i in 0..n {
        let j = (i * step) % n;
        let (h, p) = (
            (j / ports.len() as u64) as u32,
            ports[(j % ports.len() as u64) as usize],
        );
        let (state, reason, ttl) = match p {
            22 | 80 | 443 => (PortState::Open, Reason::SynAck, Some(64)),
            81 => (PortState::Filtered, Reason::NoResponse, None),
            _ => (PortState::Closed, Reason::Reset, Some(64)),
        };
        let r = PortResult {
            key: ProbeKey {
                ip: IpAddr::V4(Ipv4Addr::from(0xC612_0000 + h)),
                port: p,
                proto: Proto::Tcp,
            },
            state,
            reason,
            ttl,
        };
        report.add(&r).expect("each pair once");
    }
    assert_eq!(report.len(), hosts as usize);
    assert_eq!(report.decided(), n);
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    drop(report);
    bytes as f64 / f64::from(hosts)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[test]
fn sweeps_cost_a_few_bytes_per_result() {
    // /16 x 100 ports: 6.5 M results. The former Vec<PortResult> per host
    // held 100 x 24 bytes = 2,400 bytes per host, before map overhead.
    let top100: Vec<u16> = (1..=97).chain([443, 8080, 8443]).collect();
    let b = bytes_per_host(65_536, &top100);
    eprintln!("/16 x 100 ports: {b:.1} heap bytes per host");
    assert!(b < 200.0, "{b:.1} bytes per host");

    // 131,072 hosts x 10 ports.
    let ten: Vec<u16> = vec![21, 22, 23, 25, 80, 81, 110, 139, 443, 445];
    let b = bytes_per_host(131_072, &ten);
    eprintln!("/15 x 10 ports: {b:.1} heap bytes per host");
    assert!(b < 150.0, "{b:.1} bytes per host");

    // One host, every port: half a byte per port (the scan's port list,
    // 4 bytes a port once per scan, replaces the caller's own list and
    // nets out here); it was 24 bytes a port before.
    let all: Vec<u16> = (1..=65_535).collect();
    let b = bytes_per_host(1, &all);
    eprintln!("1 host x 65535 ports: {b:.0} heap bytes");
    assert!(b < 65_535.0 * 4.5 + 1_000.0, "{b}");
}
