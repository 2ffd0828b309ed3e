//! Reply validation: turns a parsed packet (either IP family) into a
//! believed reply about one probe key, or a counted reason to drop it.
//! The work is done by the probe modules (`crate::probes`): this module
//! names the entry point and holds the tests of what is believed.
//!
//! Invariants: pure (no I/O, no table). A reply is believed only if it is
//! addressed to one of the scanner's own source addresses and proves it
//! answers our probe:
//! - a SYN-ACK or RST must acknowledge the cookie (ack == seq + 1) on the
//!   cookie's source port;
//! - an ICMP or ICMPv6 error must quote our probe: sent from the address the
//!   error was delivered to, to the cookie's source port, with our TCP
//!   sequence number, or for UDP our IPv4 ID or IPv6 flow label;
//! - a UDP datagram must come from the probed port to the cookie's source
//!   port. Where the probe's protocol has an ID field, the reply must parse
//!   as that protocol and echo the cookie (`udp-response`); where it has none,
//!   or the probe was an empty datagram, nothing in the reply can prove it,
//!   and it is believed with the distinct reason `udp-response-unverified`.
//!   TFTP is the one protocol whose server answers from another port (RFC
//!   1350 transfer IDs): a TFTP answer to a read request from any port of
//!   the target, to the cookie's source port of (target, 69/udp), answers
//!   that key (`udp-response-unverified`: TFTP has no ID field).

pub use crate::probes::{Drop, Reply, validate};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
    use crate::wire::{
        IpRepr, Ipv6Meta, Transport, emit_packet, icmpv4, icmpv6, parse_ip, parse_ipv6_payload,
        proto, tcp, udp,
    };
    use crate::wire::{flags, payloads};
    use std::net::IpAddr;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const TGT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);
    const ME6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const TGT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const SOURCES: [IpAddr; 2] = [IpAddr::V4(ME), IpAddr::V6(ME6)];

    fn cookies() -> Cookies {
        Cookies::new(*b"0123456789abcdef")
    }

    fn key(ip: IpAddr, port: u16, proto: Proto) -> ProbeKey {
        ProbeKey { ip, port, proto }
    }

    fn tcp_key(port: u16) -> ProbeKey {
        key(IpAddr::V4(TGT), port, Proto::Tcp)
    }

    fn build(src: IpAddr, dst: IpAddr, ident: u16, flow: u32, t: Transport<'_>) -> Vec<u8> {
        let mut b = vec![0u8; 1500];
        let n = emit_packet(&mut b, &IpRepr::probe(src, dst, ident, flow), &t).unwrap();
        b.truncate(n);
        b
    }

    /// What rawscan sends for `k` (SYN or UDP with the port's payload).
    fn probe(k: ProbeKey, from: IpAddr) -> Vec<u8> {
        let c = cookies();
        let seq = c.seq(&k);
        let mut payload = Vec::new();
        if let Some(p) = payloads::payload_for(k.port) {
            p.write(seq, &mut payload);
        }
        let t = match k.proto {
            Proto::Tcp => Transport::Tcp(tcp::syn_probe(c.src_port(&k), k.port, seq)),
            Proto::Udp => Transport::Udp(udp::Repr {
                src_port: c.src_port(&k),
                dst_port: k.port,
                payload: &payload,
            }),
            _ => unreachable!("port-scan probes only"),
        };
        build(from, k.ip, c.udp_ip_id(&k), c.udp_flow_label(&k), t)
    }

    fn answer(port: u16, fl: u8, ack_delta: u32, dst_port_delta: u16) -> Vec<u8> {
        let c = cookies();
        let k = tcp_key(port);
        build(
            IpAddr::V4(TGT),
            IpAddr::V4(ME),
            0,
            0,
            Transport::Tcp(tcp::Repr {
                src_port: port,
                dst_port: c.src_port(&k).wrapping_add(dst_port_delta),
                seq: 5,
                ack: c.seq(&k).wrapping_add(1).wrapping_add(ack_delta),
                flags: fl,
                ..tcp::Repr::default()
            }),
        )
    }

    fn check(bytes: &[u8]) -> Result<Reply, Drop> {
        validate(&parse_ip(bytes).unwrap(), &cookies(), &SOURCES)
    }

    #[test]
    fn syn_ack_with_the_cookie_is_open() {
        let r = check(&answer(22, flags::SYN | flags::ACK, 0, 0)).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason, r.ttl),
            (tcp_key(22), PortState::Open, Reason::SynAck, Some(64))
        );
    }

    #[test]
    fn rst_ack_with_the_cookie_is_closed() {
        let r = check(&answer(23, flags::RST | flags::ACK, 0, 0)).unwrap();
        assert_eq!((r.state, r.reason), (PortState::Closed, Reason::Reset));
    }

    #[test]
    fn wrong_cookie_or_port_is_dropped() {
        assert_eq!(
            check(&answer(22, flags::SYN | flags::ACK, 1, 0)),
            Err(Drop::BadCookie)
        );
        // The port of a retry (each TCP try leaves from its own port) is
        // ours, and names the try; one past the last try port is not.
        assert_eq!(
            check(&answer(22, flags::SYN | flags::ACK, 0, 1)).map(|r| r.attempt),
            Ok(Some(1))
        );
        assert_eq!(
            check(&answer(
                22,
                flags::SYN | flags::ACK,
                0,
                crate::probe::TRY_PORTS
            )),
            Err(Drop::WrongPort)
        );
        // A RST without ACK (what our own kernel sends back) proves nothing
        // (it goes to the ACK ping module, whose cookie it does not carry).
        assert!(check(&answer(22, flags::RST, 0, 0)).is_err());
        // Our own SYN seen on loopback is not a reply (nor addressed to us).
        let own = probe(tcp_key(22), IpAddr::V4(ME));
        assert_eq!(
            validate(
                &parse_ip(&own).unwrap(),
                &cookies(),
                &[IpAddr::V4(ME), IpAddr::V4(TGT)]
            ),
            Err(Drop::NotAReply)
        );
    }

    #[test]
    fn replies_to_another_address_are_dropped() {
        // The right cookie, but delivered to an address we never sent from.
        let good = answer(22, flags::SYN | flags::ACK, 0, 0);
        assert!(check(&good).is_ok());
        assert_eq!(
            validate(&parse_ip(&good).unwrap(), &cookies(), &[IpAddr::V4(OTHER)]),
            Err(Drop::NotToUs)
        );
        assert_eq!(
            validate(&parse_ip(&good).unwrap(), &cookies(), &[]),
            Err(Drop::NotToUs)
        );
    }

    fn icmp(quote: &[u8], from: Ipv4Addr, code: u8) -> Vec<u8> {
        build(
            IpAddr::V4(from),
            IpAddr::V4(ME),
            0,
            0,
            Transport::Icmpv4(icmpv4::Repr::DstUnreachable {
                reason: code.into(),
                next_hop_mtu: 0,
                quote,
            }),
        )
    }

    #[test]
    fn icmp_errors_are_attributed_through_the_quote() {
        let p = probe(tcp_key(81), IpAddr::V4(ME));
        let r = check(&icmp(&p[..28], TGT, 13)).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason),
            (tcp_key(81), PortState::Filtered, Reason::AdminProhibited)
        );
        // A quote of a probe we never sent (wrong sequence number) is dropped.
        let mut forged = p[..28].to_vec();
        forged[24] ^= 0xff;
        assert_eq!(check(&icmp(&forged, TGT, 13)), Err(Drop::BadQuote));
        // A quote of a probe sent from another address than the error's
        // destination is dropped.
        let elsewhere = probe(tcp_key(81), IpAddr::V4(OTHER));
        assert_eq!(check(&icmp(&elsewhere[..28], TGT, 13)), Err(Drop::BadQuote));
        // Unknown codes decide nothing.
        assert_eq!(check(&icmp(&p[..28], TGT, 5)), Err(Drop::IgnoredIcmp));
    }

    #[test]
    fn udp_icmp_errors_check_the_ip_id() {
        let k = key(IpAddr::V4(TGT), 9999, Proto::Udp);
        let p = probe(k, IpAddr::V4(ME));
        let r = check(&icmp(&p[..28], TGT, 3)).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason),
            (k, PortState::Closed, Reason::PortUnreach)
        );
        let r = check(&icmp(&p[..28], OTHER, 3)).unwrap();
        assert_eq!(r.state, PortState::Filtered, "a router's port-unreach");
        let mut forged = p[..28].to_vec();
        forged[5] ^= 1; // IP ID
        assert_eq!(check(&icmp(&forged, TGT, 3)), Err(Drop::BadQuote));
    }

    fn icmp6(quote: &[u8], from: Ipv6Addr, m: fn(&[u8]) -> icmpv6::Repr<'_>) -> Vec<u8> {
        build(
            IpAddr::V6(from),
            IpAddr::V6(ME6),
            0,
            0,
            Transport::Icmpv6(m(quote)),
        )
    }

    #[test]
    fn icmpv6_errors_check_the_flow_label() {
        let k = key(IpAddr::V6(TGT6), 9999, Proto::Udp);
        let p = probe(k, IpAddr::V6(ME6));
        fn unreach(q: &[u8]) -> icmpv6::Repr<'_> {
            icmpv6::Repr::DstUnreachable {
                reason: icmpv6::DstUnreachable::PortUnreachable,
                quote: q,
            }
        }
        let r = check(&icmp6(&p, TGT6, unreach)).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason),
            (k, PortState::Closed, Reason::PortUnreach)
        );
        // Through a raw ICMPv6 socket (no IPv6 header): the same.
        let e = icmp6(&p, TGT6, unreach);
        let meta = Ipv6Meta {
            src: TGT6,
            dst: ME6,
            hop_limit: 64,
        };
        let pkt = parse_ipv6_payload(meta, proto::ICMPV6, &e[40..]).unwrap();
        assert_eq!(
            validate(&pkt, &cookies(), &SOURCES).map(|r| r.state),
            Ok(PortState::Closed)
        );
        // Type 3 is time exceeded.
        fn te(q: &[u8]) -> icmpv6::Repr<'_> {
            icmpv6::Repr::TimeExceeded { code: 0, quote: q }
        }
        let r = check(&icmp6(&p, TGT6, te)).unwrap();
        assert_eq!(
            (r.state, r.reason),
            (PortState::Filtered, Reason::TimeExceeded)
        );
        // A forged flow label is not our probe.
        let mut forged = p.clone();
        forged[3] ^= 1;
        assert_eq!(check(&icmp6(&forged, TGT6, unreach)), Err(Drop::BadQuote));
        // Packet too big decides nothing.
        fn ptb(q: &[u8]) -> icmpv6::Repr<'_> {
            icmpv6::Repr::PktTooBig {
                mtu: 1280,
                quote: q,
            }
        }
        assert_eq!(check(&icmp6(&p, TGT6, ptb)), Err(Drop::IgnoredIcmp));
    }

    /// A UDP reply from `port` of the target to the cookie's source port.
    fn udp_reply(ip: IpAddr, to: IpAddr, port: u16, payload: &[u8]) -> Vec<u8> {
        let k = key(ip, port, Proto::Udp);
        build(
            ip,
            to,
            0,
            0,
            Transport::Udp(udp::Repr {
                src_port: port,
                dst_port: cookies().src_port(&k),
                payload,
            }),
        )
    }

    #[test]
    fn udp_evidence_gives_the_reason() {
        let t = IpAddr::V4(TGT);
        let me = IpAddr::V4(ME);
        let c = cookies();
        // DNS (an ID field): the right ID is verified, another is dropped.
        let dns = payloads::payload_for(53).unwrap();
        let mut q = Vec::new();
        dns.write(c.seq(&key(t, 53, Proto::Udp)), &mut q);
        let mut resp = q.clone();
        resp[2] |= 0x80; // QR: a response
        let r = check(&udp_reply(t, me, 53, &resp)).unwrap();
        assert_eq!((r.state, r.reason), (PortState::Open, Reason::UdpResponse));
        resp[0] ^= 0xff;
        assert_eq!(check(&udp_reply(t, me, 53, &resp)), Err(Drop::BadCookie));
        // Something that does not parse as DNS at all is dropped too.
        assert_eq!(check(&udp_reply(t, me, 53, b"hello")), Err(Drop::BadCookie));
        // Daytime has no ID field: believed, but marked unverified.
        let r = check(&udp_reply(t, me, 13, b"Mon Jan  1 00:00:00 2029\r\n")).unwrap();
        assert_eq!(r.reason, Reason::UdpResponseUnverified);
        assert_eq!(r.reason.as_str(), "udp-response-unverified");
        // A port probed with an empty datagram: unverified.
        assert_eq!(payloads::payload_for(9999).map(|p| p.name), None);
        let r = check(&udp_reply(t, me, 9999, b"")).unwrap();
        assert_eq!(
            (r.state, r.reason),
            (PortState::Open, Reason::UdpResponseUnverified)
        );
        // Over IPv6 alike.
        let r = check(&udp_reply(IpAddr::V6(TGT6), IpAddr::V6(ME6), 9999, b"x")).unwrap();
        assert_eq!(r.reason, Reason::UdpResponseUnverified);
        // The destination address is always checked.
        let to_other = udp_reply(t, IpAddr::V4(OTHER), 9999, b"");
        assert_eq!(check(&to_other), Err(Drop::NotToUs));
    }

    /// A datagram from `from_port` of `ip` to the cookie's source port of
    /// (`ip`, `key_port`).
    fn udp_to_key(ip: IpAddr, from_port: u16, key_port: u16, payload: &[u8]) -> Vec<u8> {
        let me = if ip.is_ipv4() {
            IpAddr::V4(ME)
        } else {
            IpAddr::V6(ME6)
        };
        build(
            ip,
            me,
            0,
            0,
            Transport::Udp(udp::Repr {
                src_port: from_port,
                dst_port: cookies().src_port(&key(ip, key_port, Proto::Udp)),
                payload,
            }),
        )
    }

    /// Issue 13 §1: tftpd-hpa answers a read request from a new port (its
    /// transfer ID). Its ERROR, DATA or OACK, from any port of the target
    /// to the cookie's source port of (target, 69), opens 69/udp,
    /// unverified (TFTP has no ID field); nothing else from another port
    /// does.
    #[test]
    fn a_tftp_answer_from_the_servers_new_port_opens_69() {
        const NOT_FOUND: &[u8] = b"\x00\x05\x00\x01File not found\x00";
        for t in [IpAddr::V4(TGT), IpAddr::V6(TGT6)] {
            let r = check(&udp_to_key(t, 35137, 69, NOT_FOUND)).unwrap();
            assert_eq!(
                (r.key, r.state, r.reason),
                (
                    key(t, 69, Proto::Udp),
                    PortState::Open,
                    Reason::UdpResponseUnverified
                )
            );
            let data = check(&udp_to_key(t, 50308, 69, b"\x00\x03\x00\x01hello")).unwrap();
            assert_eq!(data.key.port, 69);
            let oack = check(&udp_to_key(t, 50308, 69, b"\x00\x06tsize\x000\x00")).unwrap();
            assert_eq!(oack.key.port, 69);
            // From port 69 itself: the ordinary rule (no ID field).
            let r = check(&udp_to_key(t, 69, 69, NOT_FOUND)).unwrap();
            assert_eq!(r.reason, Reason::UdpResponseUnverified);
            // Not a TFTP answer: dropped.
            for bad in [
                &b"hello"[..],
                b"\x00\x04\x00\x01",
                b"\x00\x05\x00\x01no nul",
            ] {
                assert_eq!(
                    check(&udp_to_key(t, 35137, 69, bad)),
                    Err(Drop::WrongPort),
                    "{bad:02x?}"
                );
            }
            // A TFTP answer to a port that is not 69's cookie port: dropped
            // (unless it happens to be that port's own, which it is not).
            let other = udp_to_key(t, 35137, 70, NOT_FOUND);
            assert_eq!(check(&other), Err(Drop::WrongPort));
        }
    }
}
