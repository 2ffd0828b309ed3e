//! Fuzz target: an Ethernet frame as AF_PACKET delivers it.
//!
//! `parse_frame` (Ethernet, then ARP, IPv4 or full IPv6 with extension
//! headers, TCP, UDP, ICMP and ICMPv6 including NDP options and the packet
//! an error quotes), then `validate` for IP payloads. Property: never
//! panics (house rule: bytes from the network never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawscan::probe::Cookies;
use rawscan::validate::validate;
use rawscan::wire::packet::FramePayload;
use rawscan::wire::parse_frame;

const KEY: [u8; 16] = *b"0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(f) = parse_frame(data) else {
        return;
    };
    if let FramePayload::Ip(pkt) = f.payload {
        let _ = validate(&pkt, &Cookies::new(KEY), &[pkt.ip().dst]);
    }
});
