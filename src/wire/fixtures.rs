//! Real bytes: frames captured from Linux in a namespace lab by
//! `scripts/capture-fixtures.sh` (see `fixtures/MANIFEST` for what was sent
//! for each). Each test parses a capture and checks every field against
//! what the capture script sent (the constants below mirror those at the top
//! of `scripts/capture_fixtures.py`) or what the kernel must answer. A
//! mistake made the same way in rawscan's emitter and parser cannot pass
//! here: these bytes came from the kernel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ethernet::{EthernetAddress, ethertype};
use super::packet::FramePayload;
use super::*;
use crate::probe::{PortState, Proto, Reason, classify_icmp};

const SCANNER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const TARGET_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const S4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const T4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const FAR4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const UNREACH4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const S6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const T6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const FAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const UNREACH6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

macro_rules! fx {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("fixtures/", $name, ".bin")).as_slice(),
        )
    };
}

/// Every captured frame.
const ALL: &[(&str, &[u8])] = &[
    fx!("arp-reply"),
    fx!("arp-request-kernel"),
    fx!("icmp4-admin-prohibited-tcp"),
    fx!("icmp4-echo-reply"),
    fx!("icmp4-port-unreach"),
    fx!("icmp4-time-exceeded"),
    fx!("icmp4-timestamp-reply"),
    fx!("icmp4-too-big"),
    fx!("icmp4-unreach-code0"),
    fx!("icmp4-unreach-code1"),
    fx!("icmp4-unreach-code2"),
    fx!("icmp4-unreach-code3"),
    fx!("icmp4-unreach-code9"),
    fx!("icmp4-unreach-code10"),
    fx!("icmp4-unreach-code13"),
    fx!("icmp4-unreachable-route"),
    fx!("icmp6-admin-prohibited-tcp"),
    fx!("icmp6-echo-reply"),
    fx!("icmp6-param-problem"),
    fx!("icmp6-port-unreach"),
    fx!("icmp6-time-exceeded"),
    fx!("icmp6-too-big"),
    fx!("icmp6-unreach-code0"),
    fx!("icmp6-unreach-code1"),
    fx!("icmp6-unreach-code3"),
    fx!("icmp6-unreach-code4"),
    fx!("icmp6-unreach-code5"),
    fx!("icmp6-unreach-code6"),
    fx!("icmp6-unreachable-route"),
    fx!("ndp-na"),
    fx!("ndp-ns-kernel"),
    fx!("tcp4-rst"),
    fx!("tcp4-syn-kernel"),
    fx!("tcp4-synack"),
    fx!("tcp4-synack-kernel"),
    fx!("tcp6-rst"),
    fx!("tcp6-syn-kernel"),
    fx!("tcp6-synack"),
    fx!("tcp6-synack-kernel"),
    fx!("udp4-echo"),
    fx!("udp6-echo"),
];

fn get(name: &str) -> &'static [u8] {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

/// The IPv6 transport bytes (none of the captures has extension headers).
fn v6_transport(ip: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    &ip[40..40 + len]
}

fn no_flow(p: Packet<'_>) -> Packet<'_> {
    let mut p = p;
    match &mut p {
        Packet::Tcp(t) => t.ip.flow_label = None,
        Packet::Udp(u) => u.ip.flow_label = None,
        Packet::IcmpError(e) => e.ip.flow_label = None,
        Packet::Icmp(i) => i.ip.flow_label = None,
    }
    p
}

/// Checksums of every layer of an IP frame verify (offload was off).
fn checksums_verify(name: &str, ip: &[u8]) {
    let (src, dst, proto, t): (IpAddr, IpAddr, u8, &[u8]) = if ip[0] >> 4 == 4 {
        let p = ipv4::Packet::new_checked(ip).unwrap();
        assert!(p.verify_checksum(), "{name}: IPv4 header checksum");
        let t = &ip[p.header_len()..p.total_len()];
        (p.src_addr().into(), p.dst_addr().into(), p.protocol(), t)
    } else {
        let p = ipv6::Packet::new_checked(ip).unwrap();
        (
            p.src_addr().into(),
            p.dst_addr().into(),
            p.next_header(),
            v6_transport(ip),
        )
    };
    let ok = match (proto, src, dst) {
        (proto::TCP, _, _) => tcp::Packet::new_checked(t)
            .unwrap()
            .verify_checksum(src, dst),
        (proto::UDP, _, _) => udp::Packet::new_checked(t)
            .unwrap()
            .verify_checksum(src, dst),
        (proto::ICMP, _, _) => icmpv4::Packet::new_checked(t).unwrap().verify_checksum(),
        (proto::ICMPV6, IpAddr::V6(s), IpAddr::V6(d)) => icmpv6::Packet::new_checked(t)
            .unwrap()
            .verify_checksum(s, d),
        other => panic!("{name}: {other:?}"),
    };
    assert!(ok, "{name}: transport checksum");
}

/// Parse an IP frame every way rawscan can receive it (Ethernet frame, IP
/// packet, and for IPv6 the raw-socket payload with its metadata), check
/// that all agree and that the checksums verify; returns the packet.
fn ip(name: &str) -> (ethernet::Repr, Packet<'static>) {
    let frame = get(name);
    let f = parse_frame(frame).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let FramePayload::Ip(p) = f.payload else {
        panic!("{name}: not IP: {f:?}")
    };
    let ip_bytes = &frame[ethernet::HEADER_LEN..];
    assert_eq!(parse_ip(ip_bytes), Ok(p), "{name}");
    checksums_verify(name, ip_bytes);
    if let IpAddr::V6(src) = p.ip().src {
        assert_eq!(f.ethernet.ethertype, ethertype::IPV6);
        let IpAddr::V6(dst) = p.ip().dst else {
            panic!("{name}: mixed families")
        };
        let meta = Ipv6Meta {
            src,
            dst,
            hop_limit: p.ip().ttl,
        };
        let via_socket = parse_ipv6_payload(meta, ip_bytes[6], v6_transport(ip_bytes));
        assert_eq!(via_socket, Ok(no_flow(p)), "{name}: raw IPv6 socket path");
    } else {
        assert_eq!(f.ethernet.ethertype, ethertype::IPV4);
    }
    (f.ethernet, p)
}

/// An incoming frame: from the target's MAC to the scanner's.
fn incoming(name: &str) -> Packet<'static> {
    let (eth, p) = ip(name);
    assert_eq!((eth.src, eth.dst), (TARGET_MAC, SCANNER_MAC), "{name}");
    p
}

#[test]
fn every_capture_parses_without_error() {
    for (name, frame) in ALL {
        let f = parse_frame(frame).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        if let FramePayload::Ip(_) = f.payload {
            ip(name);
        }
        // Every prefix fails cleanly or parses.
        for n in 0..frame.len() {
            let _ = parse_frame(&frame[..n]);
            let _ = parse_ip(&frame[ethernet::HEADER_LEN.min(n)..n]);
        }
    }
}

#[test]
fn syn_ack_and_rst_to_rawscans_syn() {
    for (name, v6, mss) in [("tcp4-synack", false, 1460), ("tcp6-synack", true, 1440)] {
        let Packet::Tcp(t) = incoming(name) else {
            panic!("{name}")
        };
        let (s, d) = if v6 {
            (IpAddr::V6(T6), IpAddr::V6(S6))
        } else {
            (IpAddr::V4(T4), IpAddr::V4(S4))
        };
        assert_eq!((t.ip.src, t.ip.dst, t.ip.ttl), (s, d, 64), "{name}");
        assert_eq!((t.src_port, t.dst_port), (22, 40022), "{name}");
        assert_eq!(t.ack, 0x5ca1_ab1f, "{name}: ack = our seq + 1");
        assert_eq!(t.flags, flags::SYN | flags::ACK, "{name}");
        assert_eq!(t.ip.ip_id.is_some(), !v6);
        // Our SYN offered only an MSS: the answer carries only an MSS.
        let seg = &get(name)[ethernet::HEADER_LEN + if v6 { 40 } else { 20 }..];
        let r = tcp::Repr::parse(&tcp::Packet::new_checked(seg).unwrap()).unwrap();
        assert_eq!(
            (r.mss, r.window_scale, r.sack_permitted, r.timestamp),
            (Some(mss), None, false, None),
            "{name}"
        );
    }
    for (name, v6) in [("tcp4-rst", false), ("tcp6-rst", true)] {
        let Packet::Tcp(t) = incoming(name) else {
            panic!("{name}")
        };
        assert_eq!(t.ip.src.is_ipv6(), v6);
        assert_eq!((t.src_port, t.dst_port), (23, 40023), "{name}");
        assert_eq!((t.seq, t.ack), (0, 0x0bad_caff), "{name}");
        assert_eq!((t.flags, t.window), (flags::RST | flags::ACK, 0), "{name}");
    }
}

#[test]
fn the_kernels_own_syn_and_syn_ack_with_every_option() {
    for (name, v6, sport, mss) in [
        ("tcp4-syn-kernel", false, 45000, 1460),
        ("tcp6-syn-kernel", true, 45001, 1440),
    ] {
        let (eth, p) = ip(name);
        assert_eq!(
            (eth.src, eth.dst),
            (SCANNER_MAC, TARGET_MAC),
            "{name}: outgoing"
        );
        let Packet::Tcp(t) = p else { panic!("{name}") };
        assert_eq!(t.ip.src.is_ipv6(), v6);
        assert_eq!(
            (t.src_port, t.dst_port, t.flags, t.ack),
            (sport, 22, flags::SYN, 0)
        );
        let seg = &get(name)[ethernet::HEADER_LEN + if v6 { 40 } else { 20 }..];
        let r = tcp::Repr::parse(&tcp::Packet::new_checked(seg).unwrap()).unwrap();
        assert_eq!(r.mss, Some(mss), "{name}");
        assert!(
            r.sack_permitted && r.window_scale.is_some(),
            "{name}: {r:?}"
        );
        assert!(matches!(r.timestamp, Some((_, 0))), "{name}: {r:?}");
    }
    for (name, v6, dport, mss) in [
        ("tcp4-synack-kernel", false, 45002, 1460),
        ("tcp6-synack-kernel", true, 45003, 1440),
    ] {
        let Packet::Tcp(t) = incoming(name) else {
            panic!("{name}")
        };
        assert_eq!(t.ip.src.is_ipv6(), v6);
        assert_eq!((t.src_port, t.dst_port), (22, dport), "{name}");
        assert_eq!(t.flags, flags::SYN | flags::ACK);
        let seg = &get(name)[ethernet::HEADER_LEN + if v6 { 40 } else { 20 }..];
        let r = tcp::Repr::parse(&tcp::Packet::new_checked(seg).unwrap()).unwrap();
        assert_eq!(r.mss, Some(mss), "{name}");
        assert!(
            r.sack_permitted && r.window_scale.is_some(),
            "{name}: {r:?}"
        );
        assert!(
            matches!(r.timestamp, Some((_, e)) if e != 0),
            "{name}: echoes our TSval"
        );
    }
}

#[test]
fn udp_echo_replies() {
    for (name, src, dst, payload) in [
        (
            "udp4-echo",
            IpAddr::V4(T4),
            IpAddr::V4(S4),
            &b"rawscan fixture udp4"[..],
        ),
        (
            "udp6-echo",
            IpAddr::V6(T6),
            IpAddr::V6(S6),
            &b"rawscan fixture udp6"[..],
        ),
    ] {
        let Packet::Udp(u) = incoming(name) else {
            panic!("{name}")
        };
        assert_eq!((u.ip.src, u.ip.dst, u.ip.ttl), (src, dst, 64), "{name}");
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (7, 40007, payload),
            "{name}"
        );
    }
}

#[test]
fn echo_and_timestamp_replies() {
    let Packet::Icmp(i) = incoming("icmp4-echo-reply") else {
        panic!()
    };
    assert_eq!((i.ip.src, i.ip.dst, i.ip.ttl), (T4.into(), S4.into(), 64));
    assert_eq!(
        i.message,
        IcmpMessage::V4(icmpv4::Repr::EchoReply {
            ident: 0x4242,
            seq_no: 7,
            data: b"rawscan fixture echo4",
        })
    );
    let Packet::Icmp(i) = incoming("icmp6-echo-reply") else {
        panic!()
    };
    assert_eq!((i.ip.src, i.ip.dst, i.ip.ttl), (T6.into(), S6.into(), 64));
    assert_eq!(
        i.message,
        IcmpMessage::V6(icmpv6::Repr::EchoReply {
            ident: 0x4646,
            seq_no: 9,
            data: b"rawscan fixture echo6",
        })
    );
    let Packet::Icmp(i) = incoming("icmp4-timestamp-reply") else {
        panic!()
    };
    match i.message {
        IcmpMessage::V4(icmpv4::Repr::TimestampReply {
            ident,
            seq_no,
            originate,
            receive,
            transmit,
        }) => {
            assert_eq!((ident, seq_no, originate), (0x4343, 8, 0x0102_0304));
            // Milliseconds since midnight UT, the same for both (Linux).
            assert!(
                receive < 86_400_000 && transmit == receive,
                "{receive} {transmit}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn arp_request_and_reply() {
    let f = parse_frame(get("arp-reply")).unwrap();
    assert_eq!((f.ethernet.src, f.ethernet.dst), (TARGET_MAC, SCANNER_MAC));
    assert_eq!(
        f.payload,
        FramePayload::Arp(arp::Repr {
            operation: arp::Operation::Reply,
            source_hardware_addr: TARGET_MAC,
            source_protocol_addr: T4,
            target_hardware_addr: SCANNER_MAC,
            target_protocol_addr: S4,
        })
    );
    let f = parse_frame(get("arp-request-kernel")).unwrap();
    assert_eq!(
        (f.ethernet.src, f.ethernet.dst),
        (TARGET_MAC, EthernetAddress::BROADCAST)
    );
    assert_eq!(
        f.payload,
        FramePayload::Arp(arp::Repr {
            operation: arp::Operation::Request,
            source_hardware_addr: TARGET_MAC,
            source_protocol_addr: T4,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: S4,
        })
    );
}

#[test]
fn ndp_solicitation_and_advertisement() {
    let Packet::Icmp(i) = incoming("ndp-na") else {
        panic!()
    };
    assert_eq!((i.ip.src, i.ip.dst, i.ip.ttl), (T6.into(), S6.into(), 255));
    assert_eq!(
        i.message,
        IcmpMessage::V6(icmpv6::Repr::NeighborAdvert {
            // The target forwards (it is the lab's router too): R is set.
            router: true,
            solicited: true,
            override_: true,
            target: T6,
            target_lladdr: Some(TARGET_MAC),
        })
    );
    let (eth, p) = ip("ndp-ns-kernel");
    assert_eq!(
        (eth.src, eth.dst),
        (TARGET_MAC, EthernetAddress([0x33, 0x33, 0xff, 0, 0, 1]))
    );
    let Packet::Icmp(i) = p else { panic!() };
    let solicited_node: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
    assert_eq!(
        (i.ip.src, i.ip.dst, i.ip.ttl),
        (T6.into(), solicited_node.into(), 255)
    );
    assert_eq!(
        i.message,
        IcmpMessage::V6(icmpv6::Repr::NeighborSolicit {
            target: S6,
            source_lladdr: Some(TARGET_MAC),
        })
    );
}

/// What a capture script probe that drew an ICMP error was.
struct Sent {
    dst: IpAddr,
    proto: Proto,
    sport: u16,
    dport: u16,
    seq: Option<u32>,
    /// IPv4 ID or IPv6 flow label.
    id: u32,
}

fn udp4(dst: Ipv4Addr, sport: u16, dport: u16, id: u16) -> Sent {
    Sent {
        dst: dst.into(),
        proto: Proto::Udp,
        sport,
        dport,
        seq: None,
        id: id.into(),
    }
}

fn udp6(dst: Ipv6Addr, sport: u16, dport: u16, flow: u32) -> Sent {
    Sent {
        dst: dst.into(),
        proto: Proto::Udp,
        sport,
        dport,
        seq: None,
        id: flow,
    }
}

/// Check an error capture: from the target, to the scanner, of `kind`,
/// quoting exactly what was sent; and what nmap's rules make of it.
fn error(name: &str, kind: IcmpErrorKind, sent: Sent, verdict: Option<(PortState, Reason)>) {
    let Packet::IcmpError(e) = incoming(name) else {
        panic!("{name}: not an ICMP error")
    };
    let v6 = sent.dst.is_ipv6();
    let (from, to) = if v6 {
        (IpAddr::V6(T6), IpAddr::V6(S6))
    } else {
        (IpAddr::V4(T4), IpAddr::V4(S4))
    };
    assert_eq!((e.ip.src, e.ip.dst, e.ip.ttl), (from, to, 64), "{name}");
    assert_eq!(e.kind, kind, "{name}");
    let q = e.quoted;
    assert_eq!((q.src, q.dst), (to, sent.dst), "{name}");
    assert_eq!(
        (q.proto, q.src_port, q.dst_port, q.seq),
        (sent.proto, sent.sport, sent.dport, sent.seq),
        "{name}"
    );
    if v6 {
        assert_eq!((q.ip_id, q.flow_label), (None, Some(sent.id)), "{name}");
    } else {
        assert_eq!(
            (q.ip_id, q.flow_label),
            (Some(sent.id as u16), None),
            "{name}"
        );
    }
    let from_target = e.ip.src == q.dst;
    assert_eq!(
        classify_icmp(e.kind, q.proto, from_target),
        verdict,
        "{name}"
    );
}

#[test]
fn icmpv4_errors_quote_the_probe() {
    use PortState::*;
    use icmpv4::DstUnreachable as U;
    let un = |c: u8| IcmpErrorKind::V4Unreachable(c.into());
    error(
        "icmp4-port-unreach",
        un(3),
        udp4(T4, 41000, 33434, 0x4455),
        Some((Closed, Reason::PortUnreach)),
    );
    error(
        "icmp4-admin-prohibited-tcp",
        IcmpErrorKind::V4Unreachable(U::CommProhibited),
        Sent {
            dst: T4.into(),
            proto: Proto::Tcp,
            sport: 40081,
            dport: 81,
            seq: Some(0x8181_8181),
            id: 0x1102,
        },
        Some((Filtered, Reason::AdminProhibited)),
    );
    for (code, verdict) in [
        (0, (Filtered, Reason::NetUnreach)),
        (1, (Filtered, Reason::HostUnreach)),
        (2, (Filtered, Reason::ProtoUnreach)),
        (3, (Closed, Reason::PortUnreach)),
        (9, (Filtered, Reason::NetProhibited)),
        (10, (Filtered, Reason::HostProhibited)),
        (13, (Filtered, Reason::AdminProhibited)),
    ] {
        let name = format!("icmp4-unreach-code{code}");
        error(
            &name,
            un(code),
            udp4(
                T4,
                42000 + u16::from(code),
                30000 + u16::from(code),
                0x5500 + u16::from(code),
            ),
            Some(verdict),
        );
    }
    // The target as a router: errors about probes to hosts behind it.
    error(
        "icmp4-time-exceeded",
        IcmpErrorKind::V4TimeExceeded { code: 0 },
        udp4(FAR4, 43000, 33435, 0x6601),
        Some((Filtered, Reason::TimeExceeded)),
    );
    error(
        "icmp4-unreachable-route",
        IcmpErrorKind::V4Unreachable(U::HostUnreachable),
        udp4(UNREACH4, 43001, 33436, 0x6602),
        Some((Filtered, Reason::HostUnreach)),
    );
    error(
        "icmp4-too-big",
        IcmpErrorKind::V4Unreachable(U::FragRequired),
        udp4(FAR4, 43002, 33437, 0x6603),
        None,
    );
    // Linux quotes up to 576 bytes in all; the next-hop MTU is the link's.
    let ipb = &get("icmp4-too-big")[ethernet::HEADER_LEN..];
    assert_eq!(ipb.len(), 576);
    let m = icmpv4::Repr::parse(&icmpv4::Packet::new_checked(&ipb[20..]).unwrap()).unwrap();
    assert!(matches!(
        m,
        icmpv4::Repr::DstUnreachable {
            next_hop_mtu: 1280,
            ..
        }
    ));
}

#[test]
fn icmpv6_errors_quote_the_probe() {
    use PortState::*;
    use icmpv6::DstUnreachable as U;
    let un = |c: u8| IcmpErrorKind::V6Unreachable(c.into());
    error(
        "icmp6-port-unreach",
        IcmpErrorKind::V6Unreachable(U::PortUnreachable),
        udp6(T6, 41000, 33434, 0x44556),
        Some((Closed, Reason::PortUnreach)),
    );
    error(
        "icmp6-admin-prohibited-tcp",
        IcmpErrorKind::V6Unreachable(U::AdminProhibited),
        Sent {
            dst: T6.into(),
            proto: Proto::Tcp,
            sport: 40081,
            dport: 81,
            seq: Some(0x8181_8181),
            id: 0x12342,
        },
        Some((Filtered, Reason::AdminProhibited)),
    );
    for (code, verdict) in [
        (0, (Filtered, Reason::NoRoute)),
        (1, (Filtered, Reason::AdminProhibited)),
        (3, (Filtered, Reason::HostUnreach)),
        (4, (Closed, Reason::PortUnreach)),
        (5, (Filtered, Reason::AdminProhibited)),
        (6, (Filtered, Reason::RejectRoute)),
    ] {
        let name = format!("icmp6-unreach-code{code}");
        error(
            &name,
            un(code),
            udp6(
                T6,
                42100 + u16::from(code),
                30100 + u16::from(code),
                0x55000 + u32::from(code),
            ),
            Some(verdict),
        );
    }
    error(
        "icmp6-time-exceeded",
        IcmpErrorKind::V6TimeExceeded { code: 0 },
        udp6(FAR6, 43000, 33435, 0x66001),
        Some((Filtered, Reason::TimeExceeded)),
    );
    error(
        "icmp6-unreachable-route",
        IcmpErrorKind::V6Unreachable(U::NoRoute),
        udp6(UNREACH6, 43001, 33436, 0x66002),
        Some((Filtered, Reason::NoRoute)),
    );
    error(
        "icmp6-too-big",
        IcmpErrorKind::V6PktTooBig { mtu: 1280 },
        udp6(FAR6, 43002, 33437, 0x66003),
        None,
    );
    // RFC 4443: as much of the packet as fits in 1280 bytes.
    assert_eq!(get("icmp6-too-big").len() - ethernet::HEADER_LEN, 1280);
    // An unknown next header (253): the quote is not TCP or UDP, so the
    // error comes out whole, pointing at the next-header field.
    let Packet::Icmp(i) = incoming("icmp6-param-problem") else {
        panic!()
    };
    let IcmpMessage::V6(icmpv6::Repr::ParamProblem {
        code: 1,
        pointer: 6,
        quote,
    }) = i.message
    else {
        panic!("{:?}", i.message)
    };
    let q = ipv6::Packet::new_checked_quote(quote).unwrap();
    assert_eq!((q.src_addr(), q.dst_addr(), q.next_header()), (S6, T6, 253));
    assert_eq!((q.flow_label(), q.payload()), (0x66004, &b"rawscan!"[..]));
}
