//! Round trips (emit → parse → compare) and malformed-packet fixtures.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::probe::{IcmpKind, Proto};

const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn syn() -> TcpSpec {
    TcpSpec {
        src: SCANNER,
        dst: TARGET,
        src_port: 40000,
        dst_port: 22,
        seq: 0xdead_beef,
        ack: 0,
        flags: flags::SYN,
        window: 1024,
        ttl: 64,
        ip_id: 0x1234,
        mss: Some(1460),
    }
}

fn built_syn() -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let n = build_tcp_v4(&mut buf, &syn()).unwrap();
    buf.truncate(n);
    buf
}

/// The reply a target sends for `syn()`, with the given flags.
fn reply(flags_: u8) -> Vec<u8> {
    let s = syn();
    let mut buf = vec![0u8; 64];
    let n = build_tcp_v4(
        &mut buf,
        &TcpSpec {
            src: s.dst,
            dst: s.src,
            src_port: s.dst_port,
            dst_port: s.src_port,
            seq: 777,
            ack: s.seq.wrapping_add(1),
            flags: flags_,
            window: 0,
            ttl: 63,
            ip_id: 0,
            mss: None,
        },
    )
    .unwrap();
    buf.truncate(n);
    buf
}

fn icmp_about(quote: &[u8], icmp_type: u8, code: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 128];
    let n = build_icmp_error_v4(
        &mut buf,
        &IcmpErrorSpec {
            src: TARGET,
            dst: SCANNER,
            icmp_type,
            code,
            ttl: 64,
        },
        quote,
    )
    .unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn syn_round_trip() {
    let pkt = built_syn();
    assert_eq!(pkt.len(), 44);
    match parse_ip(&pkt).unwrap() {
        Packet::Tcp(t) => {
            assert_eq!(t.ip.src, IpAddr::V4(SCANNER));
            assert_eq!(t.ip.dst, IpAddr::V4(TARGET));
            assert_eq!(t.ip.ttl, 64);
            assert_eq!(t.ip.id, 0x1234);
            assert_eq!((t.src_port, t.dst_port), (40000, 22));
            assert_eq!(t.seq, 0xdead_beef);
            assert_eq!(t.flags, flags::SYN);
        }
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn built_checksums_verify() {
    let pkt = built_syn();
    // IPv4 header checksum over the header sums to 0xffff (one's complement).
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
    assert_eq!(sum(&pkt[..20]), 0xffff);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&SCANNER.octets());
    pseudo.extend_from_slice(&TARGET.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 24]);
    pseudo.extend_from_slice(&pkt[20..]);
    assert_eq!(sum(&pseudo), 0xffff);
}

#[test]
fn syn_ack_and_rst_round_trip() {
    for f in [flags::SYN | flags::ACK, flags::RST | flags::ACK] {
        match parse_ip(&reply(f)).unwrap() {
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

#[test]
fn udp_round_trip() {
    let mut buf = vec![0u8; 128];
    let spec = UdpSpec {
        src: SCANNER,
        dst: TARGET,
        src_port: 5000,
        dst_port: 53,
        ttl: 64,
        ip_id: 99,
    };
    let n = build_udp_v4(&mut buf, &spec, b"hello").unwrap();
    match parse_ip(&buf[..n]).unwrap() {
        Packet::Udp(u) => {
            assert_eq!((u.src_port, u.dst_port), (5000, 53));
            assert_eq!(u.payload, b"hello");
            assert_eq!(u.ip.id, 99);
        }
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn icmp_error_quotes_the_probe() {
    let probe = built_syn();
    for (t, c, kind) in [
        (3, 13, IcmpKind::Unreach(13)),
        (3, 3, IcmpKind::Unreach(3)),
        (11, 0, IcmpKind::TimeExceeded),
    ] {
        // Routers quote the IP header and the first 8 bytes.
        let pkt = icmp_about(&probe[..28], t, c);
        match parse_ip(&pkt).unwrap() {
            Packet::IcmpError(e) => {
                assert_eq!(e.kind, kind);
                assert_eq!(e.ip.src, IpAddr::V4(TARGET));
                assert_eq!(e.quoted.dst, IpAddr::V4(TARGET));
                assert_eq!(e.quoted.proto, Proto::Tcp);
                assert_eq!((e.quoted.src_port, e.quoted.dst_port), (40000, 22));
                assert_eq!(e.quoted.seq, Some(0xdead_beef));
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}

#[test]
fn build_rejects_small_buffers() {
    let mut buf = [0u8; 30];
    assert_eq!(
        build_tcp_v4(&mut buf, &syn()),
        Err(BuildError::BufferTooSmall { need: 44, have: 30 })
    );
}

// ---- malformed fixtures: each is rejected with the right error ----

#[test]
fn truncated_packets_are_rejected() {
    let pkt = built_syn();
    assert_eq!(parse_ip(&[]), Err(WireError::Truncated));
    assert_eq!(parse_ip(&pkt[..19]), Err(WireError::Truncated));
    // Total length says 44 but only 30 bytes arrived.
    assert_eq!(parse_ip(&pkt[..30]), Err(WireError::BadTotalLength));
}

#[test]
fn bad_ihl_is_rejected() {
    let mut pkt = built_syn();
    pkt[0] = 0x44; // IHL 4 (16 bytes) is below the minimum
    assert_eq!(parse_ip(&pkt), Err(WireError::BadIhl));
    pkt[0] = 0x4f; // IHL 15 (60 bytes) is beyond the 44-byte packet
    assert_eq!(parse_ip(&pkt), Err(WireError::BadIhl));
}

#[test]
fn bad_version_is_rejected() {
    let mut pkt = built_syn();
    pkt[0] = 0x55;
    assert_eq!(parse_ip(&pkt), Err(WireError::BadVersion));
}

#[test]
fn bad_total_length_is_rejected() {
    let mut pkt = built_syn();
    pkt[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(parse_ip(&pkt), Err(WireError::BadTotalLength));
}

#[test]
fn bad_data_offset_is_rejected() {
    let mut pkt = reply(flags::SYN | flags::ACK);
    pkt[20 + 12] = 0x40; // data offset 4
    assert_eq!(parse_ip(&pkt), Err(WireError::BadDataOffset));
    pkt[20 + 12] = 0xf0; // data offset 15 (60 bytes) > 20-byte segment
    assert_eq!(parse_ip(&pkt), Err(WireError::BadDataOffset));
}

#[test]
fn bad_udp_length_is_rejected() {
    let mut buf = vec![0u8; 64];
    let spec = UdpSpec {
        src: TARGET,
        dst: SCANNER,
        src_port: 53,
        dst_port: 5000,
        ttl: 64,
        ip_id: 0,
    };
    let n = build_udp_v4(&mut buf, &spec, b"abcd").unwrap();
    let mut pkt = buf[..n].to_vec();
    pkt[24..26].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse_ip(&pkt), Err(WireError::BadUdpLength));
    pkt[24..26].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(parse_ip(&pkt), Err(WireError::BadUdpLength));
}

#[test]
fn icmp_with_truncated_quote_is_rejected() {
    let probe = built_syn();
    // IP header but only 4 bytes of TCP: ports without the sequence number.
    assert_eq!(
        parse_ip(&icmp_about(&probe[..24], 3, 13)),
        Err(WireError::BadQuote)
    );
    // Half an IP header.
    assert_eq!(
        parse_ip(&icmp_about(&probe[..10], 3, 13)),
        Err(WireError::BadQuote)
    );
    // A quote whose IHL points past the quote.
    let mut q = probe[..28].to_vec();
    q[0] = 0x4f;
    assert_eq!(parse_ip(&icmp_about(&q, 3, 13)), Err(WireError::BadQuote));
}

#[test]
fn fragments_are_rejected() {
    let mut pkt = built_syn();
    pkt[6] = 0x00;
    pkt[7] = 0x10; // fragment offset 16
    assert_eq!(parse_ip(&pkt), Err(WireError::Fragment));
}

#[test]
fn icmp_echo_is_not_an_error() {
    let mut buf = vec![0u8; 64];
    let n = build_icmp_error_v4(
        &mut buf,
        &IcmpErrorSpec {
            src: TARGET,
            dst: SCANNER,
            icmp_type: 0,
            code: 0,
            ttl: 64,
        },
        &[0u8; 8],
    )
    .unwrap();
    assert_eq!(parse_ip(&buf[..n]), Ok(Packet::IcmpOther));
}

/// Every prefix and many random mutations of valid packets parse or fail
/// cleanly: bytes from the network never panic. (The fuzz target in
/// fuzz/ explores further.)
#[test]
fn random_mutations_never_panic() {
    let seeds = [
        built_syn(),
        reply(flags::RST | flags::ACK),
        icmp_about(&built_syn()[..28], 3, 3),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
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
        }
    }
}
