//! Fuzz target: what a raw IPv6 socket delivers (no IPv6 header).
//!
//! Input: `[next header][hop limit][transport bytes...]`; the addresses
//! are fixed (as `IPV6_PKTINFO` and the socket address would give them).
//! `parse_ipv6_payload` (TCP, UDP, ICMPv6 including NDP and the IPv6 packet
//! an error quotes, extension headers skipped with bounds), then
//! `validate`. Property: never panics.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use rawscan::probe::Cookies;
use rawscan::validate::validate;
use rawscan::wire::{Ipv6Meta, parse_ipv6_payload};

const KEY: [u8; 16] = *b"0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let (Some(&nh), Some(&hop), Some(payload)) = (data.first(), data.get(1), data.get(2..)) else {
        return;
    };
    let meta = Ipv6Meta {
        src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        hop_limit: hop,
    };
    if let Ok(pkt) = parse_ipv6_payload(meta, nh, payload) {
        let _ = validate(&pkt, &Cookies::new(KEY), &[meta.dst.into()]);
    }
});
