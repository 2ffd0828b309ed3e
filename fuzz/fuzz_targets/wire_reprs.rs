//! Fuzz target: each protocol's checked view and `Repr::parse` on its own.
//!
//! Input: `[pick][bytes...]`; `pick % 8` chooses Ethernet, ARP, IPv4,
//! IPv6 (with `upper_layer`), TCP (strict option parsing), UDP, ICMP or
//! ICMPv6 (NDP options). Properties: never panics; and where a `Repr`
//! parses, emitting it and parsing the result gives the same `Repr` (for
//! ARP, TCP, UDP, ICMP and ICMPv6).
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rawscan::wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp};

const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const D6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, b)) = data.split_first() else {
        return;
    };
    let mut out = vec![0u8; b.len() + 64];
    match pick % 8 {
        0 => {
            if let Ok(f) = ethernet::Frame::new_checked(b) {
                let r = ethernet::Repr::parse(&f);
                let n = r.emit(&mut out).expect("room");
                assert_eq!(ethernet::Repr::parse(&ethernet::Frame::new_checked(&out[..n]).unwrap()), r);
            }
        }
        1 => {
            if let Ok(r) = arp::Packet::new_checked(b).and_then(|p| arp::Repr::parse(&p)) {
                let n = r.emit(&mut out).expect("room");
                let again = arp::Repr::parse(&arp::Packet::new_checked(&out[..n]).unwrap());
                assert_eq!(again, Ok(r));
            }
        }
        2 => {
            for p in [ipv4::Packet::new_checked(b), ipv4::Packet::new_checked_quote(b)]
                .into_iter()
                .flatten()
            {
                let _ = ipv4::Repr::parse(&p);
                let _ = (p.verify_checksum(), p.payload());
            }
        }
        3 => {
            for p in [ipv6::Packet::new_checked(b), ipv6::Packet::new_checked_quote(b)]
                .into_iter()
                .flatten()
            {
                let _ = ipv6::Repr::parse(&p);
                for allow in [false, true] {
                    if let Ok(ul) = ipv6::upper_layer(p.next_header(), p.payload(), allow) {
                        assert!(ul.offset <= p.payload().len());
                    }
                }
            }
        }
        4 => {
            if let Ok(r) = tcp::Packet::new_checked(b).and_then(|p| tcp::Repr::parse(&p)) {
                let (s, d) = (IpAddr::V6(S6), IpAddr::V6(D6));
                let n = r.emit(&mut out, s, d).expect("room");
                let p = tcp::Packet::new_checked(&out[..n]).unwrap();
                assert!(p.verify_checksum(s, d));
                assert_eq!(tcp::Repr::parse(&p), Ok(r));
            }
        }
        5 => {
            if let Ok(p) = udp::Packet::new_checked(b) {
                let r = udp::Repr::parse(&p);
                let (s, d) = (IpAddr::V6(S6), IpAddr::V6(D6));
                let n = r.emit(&mut out, s, d).expect("room");
                let p2 = udp::Packet::new_checked(&out[..n]).unwrap();
                assert!(p2.verify_checksum(s, d));
                assert_eq!(udp::Repr::parse(&p2), r);
            }
        }
        6 => {
            if let Ok(p) = icmpv4::Packet::new_checked(b) {
                if let Ok(r) = icmpv4::Repr::parse(&p) {
                    let n = r.emit(&mut out).expect("room");
                    let p2 = icmpv4::Packet::new_checked(&out[..n]).unwrap();
                    assert!(p2.verify_checksum());
                    assert_eq!(icmpv4::Repr::parse(&p2), Ok(r));
                }
            }
        }
        _ => {
            if let Ok(p) = icmpv6::Packet::new_checked(b) {
                if let Ok(r) = icmpv6::Repr::parse(&p) {
                    let n = r.emit(&mut out, S6, D6).expect("room");
                    let p2 = icmpv6::Packet::new_checked(&out[..n]).unwrap();
                    assert!(p2.verify_checksum(S6, D6));
                    assert_eq!(icmpv6::Repr::parse(&p2), Ok(r));
                }
            }
        }
    }
});
