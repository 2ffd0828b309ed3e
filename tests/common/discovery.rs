//! The host-discovery lab: one /24 (and a small IPv6 range) where some
//! addresses are live, each in its own way, and the rest are silent.
//!
//! Built on `Lab` (its namespaces, lock and cleanup): the live hosts are
//! extra addresses of the target namespace's veth, so they share the
//! segment with the scanner and answer ARP/NDP like real neighbours.
//! nftables rules in the target's `input` chain give each its behaviour:
//!
//! | address | behaviour | found by |
//! |---|---|---|
//! | .2 (`TARGET_IP`), .5 | answer everything; 22 and 443 open, 80 closed | any probe |
//! | .6 | drops ICMP; 443 open | SYN to 443 (`syn-ack`) |
//! | .7 | drops everything but TCP to 80 (closed) | ACK to 80 (`reset`), connect to 80 (`conn-refused`) |
//! | .8 | drops all IP | ARP only |
//! | IPv6 ::2, ::5 | answer everything | NDP, ICMPv6 echo |
//! | IPv6 ::8 | drops all IPv6 but NDP | NDP only |
//!
//! Every other address of 198.18.0.0/24 and 2001:db8::/124 is silent.
#![allow(dead_code)]

use std::collections::BTreeSet;

use super::{Lab, NFT_TABLE, TARGET_IP, lab_with_tools};

pub const PLAIN: &str = "198.18.0.5";
pub const NO_ICMP: &str = "198.18.0.6";
pub const ONLY_CLOSED_80: &str = "198.18.0.7";
pub const ARP_ONLY: &str = "198.18.0.8";
pub const SWEEP: &str = "198.18.0.0/24";

pub const SCANNER6: &str = "2001:db8::1";
pub const TARGET6: &str = "2001:db8::2";
pub const PLAIN6: &str = "2001:db8::5";
pub const ND_ONLY6: &str = "2001:db8::8";
pub const SWEEP6: &str = "2001:db8::/124";

/// Live by ARP (on-link, privileged).
pub fn live_on_link() -> BTreeSet<String> {
    [TARGET_IP, PLAIN, NO_ICMP, ONLY_CLOSED_80, ARP_ONLY]
        .map(String::from)
        .into()
}

/// Live by IP-level probes (`--disable-arp-ping`): the ARP-only host is down.
pub fn live_by_ip() -> BTreeSet<String> {
    [TARGET_IP, PLAIN, NO_ICMP, ONLY_CLOSED_80]
        .map(String::from)
        .into()
}

/// Live by TCP connect to 80 and 443 (unprivileged).
pub fn live_by_connect() -> BTreeSet<String> {
    live_by_ip()
}

pub fn live6_on_link() -> BTreeSet<String> {
    [TARGET6, PLAIN6, ND_ONLY6].map(String::from).into()
}

pub fn live6_by_ip() -> BTreeSet<String> {
    [TARGET6, PLAIN6].map(String::from).into()
}

/// Build the lab (None: skip, as `lab()` decides).
pub fn discovery_lab(tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_with_tools(tools)?;
    let tif = lab.target_if.clone();
    let sif = lab.scanner_if.clone();
    let (s, t) = (lab.scanner_ns.clone(), lab.target_ns.clone());
    for a in [PLAIN, NO_ICMP, ONLY_CLOSED_80, ARP_ONLY] {
        let out = lab.run_in_target("ip", &["addr", "add", &format!("{a}/24"), "dev", &tif]);
        assert!(out.status.success(), "ip addr add {a}: {:?}", out);
    }
    // IPv6 back on (the base lab turns it off), addresses without DAD.
    for (ns, ifname) in [(&s, &sif), (&t, &tif)] {
        for key in [
            "net.ipv6.conf.all.disable_ipv6=0".to_string(),
            "net.ipv6.conf.default.disable_ipv6=0".to_string(),
            format!("net.ipv6.conf.{ifname}.disable_ipv6=0"),
        ] {
            let out = if *ns == s {
                lab.run_in_scanner("sysctl", &["-q", "-w", &key])
            } else {
                lab.run_in_target("sysctl", &["-q", "-w", &key])
            };
            assert!(out.status.success(), "sysctl {key} in {ns}: {out:?}");
        }
    }
    let out = lab.run_in_scanner(
        "ip",
        &[
            "addr",
            "add",
            &format!("{SCANNER6}/64"),
            "dev",
            &sif,
            "nodad",
        ],
    );
    assert!(out.status.success(), "ip -6 addr add scanner: {out:?}");
    for a in [TARGET6, PLAIN6, ND_ONLY6] {
        let out = lab.run_in_target(
            "ip",
            &["addr", "add", &format!("{a}/64"), "dev", &tif, "nodad"],
        );
        assert!(out.status.success(), "ip -6 addr add {a}: {out:?}");
    }
    lab.nft(&format!(
        "add rule inet {NFT_TABLE} input ip daddr {NO_ICMP} meta l4proto icmp drop\n\
         add rule inet {NFT_TABLE} input ip daddr {ONLY_CLOSED_80} tcp dport != 80 drop\n\
         add rule inet {NFT_TABLE} input ip daddr {ONLY_CLOSED_80} meta l4proto != tcp drop\n\
         add rule inet {NFT_TABLE} input ip daddr {ARP_ONLY} drop\n\
         add rule inet {NFT_TABLE} input ip6 daddr {ND_ONLY6} drop\n"
    ));
    // 22 and 443 open on every address (bound to 0.0.0.0), 80 closed.
    lab.tcp_listen(&[22, 443]);
    Some(lab)
}

/// The hosts a normal-output report says are up.
pub fn up_hosts(normal: &str) -> BTreeSet<String> {
    let mut up = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in normal.lines() {
        if let Some(rest) = line.strip_prefix("rawscan scan report for ") {
            current = (!rest.ends_with("[host down]")).then(|| rest.trim().to_string());
        } else if line.starts_with("Host is up")
            && let Some(h) = current.take()
        {
            up.insert(h);
        }
    }
    up
}

/// nmap's summary: `N IP addresses (M hosts up)` from a normal report.
pub fn summary_counts(normal: &str) -> Option<(u64, u64)> {
    let line = normal.lines().find(|l| l.contains(" scanned in "))?;
    let (_, rest) = line.split_once(": ")?;
    let mut words = rest.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let _ip = words.next()?;
    let _addr = words.next()?;
    let m = words.next()?.trim_start_matches('(').parse().ok()?;
    Some((n, m))
}
