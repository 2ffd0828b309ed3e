//! Hand-built packets through the top-level parsers: round trips (emit →
//! parse), and malformed variants (truncated at every length, bad IHL,
//! data offset and lengths, wrong versions, broken quotes, extension-header
//! chains) that must give an error, never a panic. Real bytes captured from
//! Linux are in `fixtures`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::probe::Proto;

const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SCANNER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const TARGET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn ip(src: IpAddr, dst: IpAddr, hop: u8, ident: u16, flow: u32) -> IpRepr {
    IpRepr {
        src,
        dst,
        hop_limit: hop,
        ident,
        flow_label: flow,
    }
}

fn build(ipr: IpRepr, t: Transport<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = emit_packet(&mut buf, &ipr, &t).unwrap();
    buf.truncate(n);
    buf
}

fn syn(v6: bool) -> Vec<u8> {
    let (s, d) = if v6 {
        (IpAddr::V6(SCANNER6), IpAddr::V6(TARGET6))
    } else {
        (IpAddr::V4(SCANNER), IpAddr::V4(TARGET))
    };
    build(
        IpRepr::probe(s, d, 0x1234, 0xabcde),
        Transport::Tcp(tcp::syn_probe(40000, 22, 0xdead_beef)),
    )
}

/// The reply a target sends for `syn()`, with the given flags.
fn reply(v6: bool, fl: u8) -> Vec<u8> {
    let (s, d) = if v6 {
        (IpAddr::V6(TARGET6), IpAddr::V6(SCANNER6))
    } else {
        (IpAddr::V4(TARGET), IpAddr::V4(SCANNER))
    };
    build(
        ip(s, d, 63, 0, 0),
        Transport::Tcp(tcp::Repr {
            src_port: 22,
            dst_port: 40000,
            seq: 777,
            ack: 0xdead_beef_u32.wrapping_add(1),
            flags: fl,
            ..tcp::Repr::default()
        }),
    )
}

fn udp_probe(v6: bool, payload: &[u8]) -> Vec<u8> {
    let (s, d) = if v6 {
        (IpAddr::V6(SCANNER6), IpAddr::V6(TARGET6))
    } else {
        (IpAddr::V4(SCANNER), IpAddr::V4(TARGET))
    };
    build(
        IpRepr::probe(s, d, 99, 0x54321),
        Transport::Udp(udp::Repr {
            src_port: 5000,
            dst_port: 53,
            payload,
        }),
    )
}

fn icmp4_about(quote: &[u8], icmp_type: u8, code: u8) -> Vec<u8> {
    let m = match icmp_type {
        3 => icmpv4::Repr::DstUnreachable {
            reason: code.into(),
            next_hop_mtu: 0,
            quote,
        },
        11 => icmpv4::Repr::TimeExceeded { code, quote },
        t => icmpv4::Repr::Other {
            msg_type: t,
            code,
            rest: quote,
        },
    };
    build(
        ip(IpAddr::V4(TARGET), IpAddr::V4(SCANNER), 64, 0, 0),
        Transport::Icmpv4(m),
    )
}

fn icmp6_about(quote: &[u8], m: fn(&[u8]) -> icmpv6::Repr<'_>) -> Vec<u8> {
    build(
        ip(IpAddr::V6(TARGET6), IpAddr::V6(SCANNER6), 64, 0, 0),
        Transport::Icmpv6(m(quote)),
    )
}

fn port_unreach6(q: &[u8]) -> icmpv6::Repr<'_> {
    icmpv6::Repr::DstUnreachable {
        reason: icmpv6::DstUnreachable::PortUnreachable,
        quote: q,
    }
}

#[test]
fn syn_round_trip_both_families() {
    for v6 in [false, true] {
        let pkt = syn(v6);
        assert_eq!(pkt.len(), if v6 { 64 } else { 44 });
        match parse_ip(&pkt).unwrap() {
            Packet::Tcp(t) => {
                assert_eq!(t.ip.ttl, PROBE_HOP_LIMIT);
                assert_eq!((t.src_port, t.dst_port), (40000, 22));
                assert_eq!((t.seq, t.flags, t.window), (0xdead_beef, flags::SYN, 1024));
                if v6 {
                    assert_eq!(t.ip.src, IpAddr::V6(SCANNER6));
                    assert_eq!((t.ip.ip_id, t.ip.flow_label), (None, Some(0xabcde)));
                } else {
                    assert_eq!(t.ip.src, IpAddr::V4(SCANNER));
                    assert_eq!((t.ip.ip_id, t.ip.flow_label), (Some(0x1234), None));
                }
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}

#[test]
fn built_checksums_verify_independently() {
    // Sum by hand, independent of wire::checksum.
    let sum = |b: &[u8]| {
        let mut s: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s
    };
    let pkt = syn(false);
    assert_eq!(sum(&pkt[..20]), 0xffff);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&SCANNER.octets());
    pseudo.extend_from_slice(&TARGET.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 24]);
    pseudo.extend_from_slice(&pkt[20..]);
    assert_eq!(sum(&pseudo), 0xffff);
    let pkt = syn(true);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&SCANNER6.octets());
    pseudo.extend_from_slice(&TARGET6.octets());
    pseudo.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, 6]);
    pseudo.extend_from_slice(&pkt[40..]);
    assert_eq!(sum(&pseudo), 0xffff);
}

#[test]
fn syn_ack_and_rst_round_trip() {
    for v6 in [false, true] {
        for f in [flags::SYN | flags::ACK, flags::RST | flags::ACK] {
            match parse_ip(&reply(v6, f)).unwrap() {
                Packet::Tcp(t) => {
                    assert_eq!(t.flags, f);
                    assert_eq!(t.ack, 0xdead_beef_u32.wrapping_add(1));
                    assert_eq!(t.ip.ttl, 63);
                    assert_eq!((t.src_port, t.dst_port), (22, 40000));
                }
                other => panic!("parsed as {other:?}"),
            }
        }
    }
}

#[test]
fn udp_round_trip() {
    for v6 in [false, true] {
        match parse_ip(&udp_probe(v6, b"hello")).unwrap() {
            Packet::Udp(u) => {
                assert_eq!((u.src_port, u.dst_port), (5000, 53));
                assert_eq!(u.payload, b"hello");
                assert_eq!(u.ip.ip_id, if v6 { None } else { Some(99) });
                assert_eq!(u.ip.flow_label, if v6 { Some(0x54321) } else { None });
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}

#[test]
fn icmp_errors_quote_the_probe() {
    let probe = syn(false);
    for (t, c, kind) in [
        (
            3,
            13,
            IcmpErrorKind::V4Unreachable(icmpv4::DstUnreachable::CommProhibited),
        ),
        (
            3,
            3,
            IcmpErrorKind::V4Unreachable(icmpv4::DstUnreachable::PortUnreachable),
        ),
        (11, 0, IcmpErrorKind::V4TimeExceeded { code: 0 }),
    ] {
        // Routers quote the IP header and the first 8 bytes.
        let pkt = icmp4_about(&probe[..28], t, c);
        match parse_ip(&pkt).unwrap() {
            Packet::IcmpError(e) => {
                assert_eq!(e.kind, kind);
                assert_eq!(e.ip.src, IpAddr::V4(TARGET));
                let q = e.quoted;
                assert_eq!((q.src, q.dst), (IpAddr::V4(SCANNER), IpAddr::V4(TARGET)));
                assert_eq!(q.proto, Proto::Tcp);
                assert_eq!((q.src_port, q.dst_port), (40000, 22));
                assert_eq!(
                    (q.seq, q.ip_id, q.flow_label),
                    (Some(0xdead_beef), Some(0x1234), None)
                );
                assert_eq!(q.transport.len(), 8);
            }
            other => panic!("parsed as {other:?}"),
        }
    }
    // ICMPv6 quotes as much as fits: here the whole UDP probe.
    let probe = udp_probe(true, b"abc");
    let pkt = icmp6_about(&probe, port_unreach6);
    match parse_ip(&pkt).unwrap() {
        Packet::IcmpError(e) => {
            assert_eq!(
                e.kind,
                IcmpErrorKind::V6Unreachable(icmpv6::DstUnreachable::PortUnreachable)
            );
            let q = e.quoted;
            assert_eq!((q.src, q.dst), (IpAddr::V6(SCANNER6), IpAddr::V6(TARGET6)));
            assert_eq!((q.proto, q.src_port, q.dst_port), (Proto::Udp, 5000, 53));
            assert_eq!((q.seq, q.ip_id, q.flow_label), (None, None, Some(0x54321)));
            assert_eq!(&q.transport[8..], b"abc");
        }
        other => panic!("parsed as {other:?}"),
    }
    // The same error as a raw ICMPv6 socket delivers it (no IPv6 header).
    let meta = Ipv6Meta {
        src: TARGET6,
        dst: SCANNER6,
        hop_limit: 64,
    };
    let via_socket = parse_ipv6_payload(meta, proto::ICMPV6, &pkt[40..]).unwrap();
    match (via_socket, parse_ip(&pkt).unwrap()) {
        (Packet::IcmpError(a), Packet::IcmpError(b)) => {
            assert_eq!((a.kind, a.quoted), (b.kind, b.quoted));
            assert_eq!(a.ip.flow_label, None);
        }
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn quotes_of_other_protocols_are_plain_icmp() {
    // An error about an ICMP echo (host discovery, later) is not dropped:
    // it is handed out whole.
    let echo = build(
        ip(IpAddr::V4(SCANNER), IpAddr::V4(TARGET), 64, 7, 0),
        Transport::Icmpv4(icmpv4::Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"",
        }),
    );
    match parse_ip(&icmp4_about(&echo, 3, 1)).unwrap() {
        Packet::Icmp(IcmpInfo {
            message: IcmpMessage::V4(icmpv4::Repr::DstUnreachable { quote, .. }),
            ..
        }) => assert_eq!(quote, &echo[..]),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn build_rejects_small_buffers_and_mixed_families() {
    let mut buf = [0u8; 30];
    let t = Transport::Tcp(tcp::syn_probe(1, 2, 3));
    let ipr = IpRepr::probe(IpAddr::V4(SCANNER), IpAddr::V4(TARGET), 0, 0);
    assert_eq!(
        emit_packet(&mut buf, &ipr, &t),
        Err(BuildError::BufferTooSmall { need: 44, have: 30 })
    );
    let mixed = IpRepr::probe(IpAddr::V4(SCANNER), IpAddr::V6(TARGET6), 0, 0);
    assert_eq!(
        emit_packet(&mut [0u8; 100], &mixed, &t),
        Err(BuildError::FamilyMismatch)
    );
    let v6 = IpRepr::probe(IpAddr::V6(SCANNER6), IpAddr::V6(TARGET6), 0, 0);
    let icmp4 = Transport::Icmpv4(icmpv4::Repr::EchoRequest {
        ident: 0,
        seq_no: 0,
        data: b"",
    });
    assert_eq!(
        emit_packet(&mut [0u8; 100], &v6, &icmp4),
        Err(BuildError::FamilyMismatch)
    );
}

// ---- malformed fixtures: each is rejected with the right error ----

#[test]
fn truncated_packets_are_rejected_at_every_length() {
    for v6 in [false, true] {
        let seeds = [
            syn(v6),
            reply(v6, flags::RST | flags::ACK),
            udp_probe(v6, b"abcd"),
        ];
        for pkt in &seeds {
            for n in 0..pkt.len() {
                assert!(parse_ip(&pkt[..n]).is_err(), "v6 {v6}, cut at {n}");
            }
            assert!(parse_ip(pkt).is_ok());
        }
    }
    let pkt = syn(false);
    assert_eq!(parse_ip(&[]), Err(WireError::Truncated));
    assert_eq!(parse_ip(&pkt[..19]), Err(WireError::Truncated));
    // Total length says 44 but only 30 bytes arrived.
    assert_eq!(parse_ip(&pkt[..30]), Err(WireError::BadTotalLength));
    let pkt = syn(true);
    assert_eq!(parse_ip(&pkt[..39]), Err(WireError::Truncated));
    assert_eq!(parse_ip(&pkt[..50]), Err(WireError::BadPayloadLength));
}

#[test]
fn bad_ihl_is_rejected() {
    let mut pkt = syn(false);
    pkt[0] = 0x44; // IHL 4 (16 bytes) is below the minimum
    assert_eq!(parse_ip(&pkt), Err(WireError::BadIhl));
    pkt[0] = 0x4f; // IHL 15 (60 bytes) is beyond the 44-byte packet
    assert_eq!(parse_ip(&pkt), Err(WireError::BadIhl));
}

#[test]
fn wrong_versions_are_rejected() {
    let mut pkt = syn(false);
    pkt[0] = 0x55;
    assert_eq!(parse_ip(&pkt), Err(WireError::BadVersion));
    assert_eq!(parse_ipv6(&syn(false)), Err(WireError::BadVersion));
    assert_eq!(parse_ipv6(&syn(false)[..39]), Err(WireError::Truncated));
    assert_eq!(parse_ipv4(&syn(true)), Err(WireError::BadVersion));
}

#[test]
fn bad_total_and_payload_lengths_are_rejected() {
    let mut pkt = syn(false);
    pkt[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(parse_ip(&pkt), Err(WireError::BadTotalLength));
    let mut pkt = syn(true);
    pkt[4..6].copy_from_slice(&25u16.to_be_bytes());
    assert_eq!(parse_ip(&pkt), Err(WireError::BadPayloadLength));
    // Shorter payload length than the TCP header: the segment is cut.
    pkt[4..6].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(parse_ip(&pkt), Err(WireError::Truncated));
}

#[test]
fn bad_data_offset_is_rejected() {
    for (v6, at) in [(false, 20 + 12), (true, 40 + 12)] {
        let mut pkt = reply(v6, flags::SYN | flags::ACK);
        pkt[at] = 0x40; // data offset 4
        assert_eq!(parse_ip(&pkt), Err(WireError::BadDataOffset));
        pkt[at] = 0xf0; // data offset 15 (60 bytes) > 20-byte segment
        assert_eq!(parse_ip(&pkt), Err(WireError::BadDataOffset));
    }
}

#[test]
fn bad_udp_length_is_rejected() {
    for (v6, at) in [(false, 24), (true, 44)] {
        let mut pkt = udp_probe(v6, b"abcd");
        pkt[at..at + 2].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(parse_ip(&pkt), Err(WireError::BadUdpLength));
        pkt[at..at + 2].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(parse_ip(&pkt), Err(WireError::BadUdpLength));
    }
}

#[test]
fn icmp_with_truncated_quote_is_rejected() {
    let probe = syn(false);
    // IP header but only 4 bytes of TCP: ports without the sequence number.
    assert_eq!(
        parse_ip(&icmp4_about(&probe[..24], 3, 13)),
        Err(WireError::BadQuote)
    );
    // Half an IP header.
    assert_eq!(
        parse_ip(&icmp4_about(&probe[..10], 3, 13)),
        Err(WireError::BadQuote)
    );
    // A quote whose IHL points past the quote.
    let mut q = probe[..28].to_vec();
    q[0] = 0x4f;
    assert_eq!(parse_ip(&icmp4_about(&q, 3, 13)), Err(WireError::BadQuote));
    // A quote of a non-first fragment.
    let mut q = probe[..28].to_vec();
    q[7] = 1;
    assert_eq!(parse_ip(&icmp4_about(&q, 3, 13)), Err(WireError::BadQuote));
    // ICMPv6: the quote cut at every length short of IPv6 + 8 bytes.
    let probe6 = udp_probe(true, b"");
    for n in 0..48 {
        assert_eq!(
            parse_ip(&icmp6_about(&probe6[..n], port_unreach6)),
            Err(WireError::BadQuote),
            "quote of {n} bytes"
        );
    }
    // A quote whose extension-header chain runs past it.
    let mut q = probe6.clone();
    q[6] = ipv6::ext::DEST_OPTS;
    q[41] = 200;
    assert_eq!(
        parse_ip(&icmp6_about(&q, port_unreach6)),
        Err(WireError::BadQuote)
    );
}

#[test]
fn extension_header_chains_are_bounded() {
    // A full IPv6 packet whose destination-options headers chain to each
    // other past the limit ("a loop"), then one within it.
    let build_chain = |n: usize| {
        let mut payload = [ipv6::ext::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(n);
        let last = payload.len() - 8;
        payload[last] = proto::UDP;
        payload.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        let mut pkt = udp_probe(true, b"")[..40].to_vec();
        pkt[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        pkt[6] = ipv6::ext::DEST_OPTS;
        pkt.extend_from_slice(&payload);
        pkt
    };
    assert!(matches!(
        parse_ip(&build_chain(ipv6::MAX_EXTENSION_HEADERS)),
        Ok(Packet::Udp(_))
    ));
    assert_eq!(
        parse_ip(&build_chain(ipv6::MAX_EXTENSION_HEADERS + 1)),
        Err(WireError::BadExtensionHeader)
    );
    assert_eq!(
        parse_ip(&build_chain(500)),
        Err(WireError::BadExtensionHeader)
    );
}

#[test]
fn fragments_are_rejected() {
    let mut pkt = syn(false);
    pkt[6] = 0x00;
    pkt[7] = 0x10; // fragment offset 16
    assert_eq!(parse_ip(&pkt), Err(WireError::Fragment));
}

#[test]
fn icmp_that_is_not_an_error_is_plain_icmp() {
    let echo = build(
        ip(IpAddr::V4(TARGET), IpAddr::V4(SCANNER), 64, 0, 0),
        Transport::Icmpv4(icmpv4::Repr::EchoReply {
            ident: 5,
            seq_no: 6,
            data: b"x",
        }),
    );
    assert!(matches!(
        parse_ip(&echo),
        Ok(Packet::Icmp(IcmpInfo {
            message: IcmpMessage::V4(icmpv4::Repr::EchoReply {
                ident: 5,
                seq_no: 6,
                ..
            }),
            ..
        }))
    ));
    // ICMP over IPv6 and ICMPv6 over IPv4 are not parsed.
    let mut odd = echo.clone();
    odd[9] = proto::ICMPV6;
    assert_eq!(parse_ip(&odd), Err(WireError::Unsupported));
}

/// Every prefix and many random mutations of valid packets parse or fail
/// cleanly: bytes from the network never panic. (The fuzz targets in
/// fuzz/ explore further.)
#[test]
fn random_mutations_never_panic() {
    let seeds = [
        syn(false),
        syn(true),
        reply(false, flags::RST | flags::ACK),
        icmp4_about(&syn(false)[..28], 3, 3),
        icmp6_about(&udp_probe(true, b"xyz"), port_unreach6),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let meta = Ipv6Meta {
        src: TARGET6,
        dst: SCANNER6,
        hop_limit: 1,
    };
    for seed in &seeds {
        for cut in 0..=seed.len() {
            let _ = parse_ip(&seed[..cut]);
        }
        for _ in 0..20_000 {
            let mut p = seed.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % p.len();
                p[i] = next() as u8;
            }
            let cut = (next() as usize) % (p.len() + 1);
            let _ = parse_ip(&p[..cut]);
            let _ = parse_frame(&p[..cut]);
            let start = cut.min(40);
            for nh in [proto::TCP, proto::UDP, proto::ICMPV6] {
                let _ = parse_ipv6_payload(meta, nh, &p[start..cut]);
            }
        }
    }
}
