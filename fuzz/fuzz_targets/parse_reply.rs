//! Fuzz target: everything a received packet goes through.
//!
//! `parse_ip` (IPv4 or full IPv6 with extension headers; TCP, UDP, ICMP and
//! ICMPv6 messages and the packet an error quotes), then `validate` with a
//! fixed scan key (the packet's own destination counts as ours, so every
//! check after the address check is reached), then, for a UDP reply,
//! every UDP payload's `check_reply` on the datagram's payload with the
//! cookie the scanner would have used for that (host, port) plus one taken
//! from the packet's own bytes. The property checked is "never panics"
//! (house rule: bytes from the network never panic), plus the documented
//! invariant that a payload without an ID field never claims a match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawscan::probe::{Cookies, ProbeKey, Proto};
use rawscan::validate::validate;
use rawscan::wire::payloads::{self, CookieCheck};
use rawscan::wire::{Packet, parse_ip};

/// The scan secret. The same key as the unit tests in src/validate.rs and
/// as fuzz/examples/seeds.rs, so seeds built with it reach the accept paths.
const KEY: [u8; 16] = *b"0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let cookies = Cookies::new(KEY);
    let Ok(pkt) = parse_ip(data) else {
        return;
    };
    let _ = validate(&pkt, &cookies, &[pkt.ip().dst]);
    let _ = validate(&pkt, &cookies, &[]);
    if let Packet::Udp(u) = pkt {
        let key = ProbeKey {
            ip: u.ip.src,
            port: u.src_port,
            proto: Proto::Udp,
        };
        let scan_cookie = cookies.seq(&key);
        // A cookie chosen by the input itself (IP ID or flow label, and the
        // destination port), so the fuzzer can steer the comparison too.
        let id = u.ip.ip_id.map(u32::from).or(u.ip.flow_label).unwrap_or(0);
        let raw_cookie = id << 16 | u32::from(u.dst_port);
        for p in payloads::all() {
            for c in [scan_cookie, raw_cookie] {
                let r = p.check_reply(c, u.payload);
                if !p.has_id_field() {
                    assert_eq!(r, CookieCheck::NoIdField, "{}", p.name);
                }
            }
        }
    }
});
