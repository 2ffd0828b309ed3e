//! Reply validation: turns a parsed packet into a believed reply about one
//! probe key, or a counted reason to drop it.
//!
//! Invariants: pure (no I/O, no table). A reply is believed only if it
//! proves it answers our probe: a SYN-ACK or RST must acknowledge the
//! cookie (ack == seq + 1) on the cookie's source port; an ICMP error must
//! quote our probe's header (addresses, ports, and for TCP the sequence
//! number); a UDP reply must come from the probed port to the cookie's
//! source port, and echo the cookie where the protocol has an ID field.

use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason, classify_icmp};
use crate::wire::payloads;
use crate::wire::{Packet, flags};

/// A believed reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub key: ProbeKey,
    pub state: PortState,
    pub reason: Reason,
    pub ttl: Option<u8>,
}

/// Why a packet was not believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Not a reply shape (our own outgoing SYN on loopback, a bare ACK...).
    NotAReply,
    /// Right shape, but not to our cookie's source port.
    WrongPort,
    /// Right port, wrong acknowledgement number or payload cookie.
    BadCookie,
    /// An ICMP error that does not quote one of our probes.
    BadQuote,
    /// An ICMP code that decides nothing.
    IgnoredIcmp,
}

pub fn validate(pkt: &Packet<'_>, cookies: &Cookies) -> Result<Reply, Drop> {
    match pkt {
        Packet::Tcp(t) => {
            let key = ProbeKey {
                ip: t.ip.src,
                port: t.src_port,
                proto: Proto::Tcp,
            };
            let (state, reason) = if t.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK
            {
                (PortState::Open, Reason::SynAck)
            } else if t.flags & (flags::RST | flags::ACK) == flags::RST | flags::ACK {
                (PortState::Closed, Reason::Reset)
            } else {
                return Err(Drop::NotAReply);
            };
            if t.dst_port != cookies.src_port(&key) {
                return Err(Drop::WrongPort);
            }
            if t.ack != cookies.seq(&key).wrapping_add(1) {
                return Err(Drop::BadCookie);
            }
            Ok(Reply {
                key,
                state,
                reason,
                ttl: Some(t.ip.ttl),
            })
        }
        Packet::Udp(u) => {
            let key = ProbeKey {
                ip: u.ip.src,
                port: u.src_port,
                proto: Proto::Udp,
            };
            if u.dst_port != cookies.src_port(&key) {
                return Err(Drop::WrongPort);
            }
            if let Some(p) = payloads::payload_for(key.port)
                && !p.accepts(cookies.seq(&key), u.payload)
            {
                return Err(Drop::BadCookie);
            }
            Ok(Reply {
                key,
                state: PortState::Open,
                reason: Reason::UdpResponse,
                ttl: Some(u.ip.ttl),
            })
        }
        Packet::IcmpError(e) => {
            let q = &e.quoted;
            let key = ProbeKey {
                ip: q.dst,
                port: q.dst_port,
                proto: q.proto,
            };
            // The quote must be our probe: our cookie's source port, our
            // sequence number (TCP) or IP ID (UDP), sent from the address
            // the ICMP error was delivered to.
            if q.src_port != cookies.src_port(&key) || q.src != e.ip.dst {
                return Err(Drop::BadQuote);
            }
            let seq = cookies.seq(&key);
            let cookie_ok = match q.seq {
                Some(s) => s == seq,
                None => q.id == seq as u16,
            };
            if !cookie_ok {
                return Err(Drop::BadQuote);
            }
            let from_target = e.ip.src == q.dst;
            let (state, reason) =
                classify_icmp(e.kind, q.proto, from_target).ok_or(Drop::IgnoredIcmp)?;
            Ok(Reply {
                key,
                state,
                reason,
                ttl: Some(e.ip.ttl),
            })
        }
        Packet::IcmpOther => Err(Drop::NotAReply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IcmpErrorSpec, TcpSpec, build_icmp_error_v4, build_tcp_v4, parse_ip};
    use std::net::{IpAddr, Ipv4Addr};

    const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const TGT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn cookies() -> Cookies {
        Cookies::new(*b"0123456789abcdef")
    }

    fn key(port: u16) -> ProbeKey {
        ProbeKey {
            ip: IpAddr::V4(TGT),
            port,
            proto: Proto::Tcp,
        }
    }

    fn probe(port: u16) -> Vec<u8> {
        let c = cookies();
        let k = key(port);
        let mut b = vec![0u8; 64];
        let n = build_tcp_v4(
            &mut b,
            &TcpSpec {
                src: ME,
                dst: TGT,
                src_port: c.src_port(&k),
                dst_port: port,
                seq: c.seq(&k),
                ack: 0,
                flags: flags::SYN,
                window: 1024,
                ttl: 64,
                ip_id: 1,
                mss: Some(1460),
            },
        )
        .unwrap();
        b.truncate(n);
        b
    }

    fn answer(port: u16, fl: u8, ack_delta: u32, dst_port_delta: u16) -> Vec<u8> {
        let c = cookies();
        let k = key(port);
        let mut b = vec![0u8; 64];
        let n = build_tcp_v4(
            &mut b,
            &TcpSpec {
                src: TGT,
                dst: ME,
                src_port: port,
                dst_port: c.src_port(&k).wrapping_add(dst_port_delta),
                seq: 5,
                ack: c.seq(&k).wrapping_add(1).wrapping_add(ack_delta),
                flags: fl,
                window: 0,
                ttl: 61,
                ip_id: 0,
                mss: None,
            },
        )
        .unwrap();
        b.truncate(n);
        b
    }

    fn check(bytes: &[u8]) -> Result<Reply, Drop> {
        validate(&parse_ip(bytes).unwrap(), &cookies())
    }

    #[test]
    fn syn_ack_with_the_cookie_is_open() {
        let r = check(&answer(22, flags::SYN | flags::ACK, 0, 0)).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason, r.ttl),
            (key(22), PortState::Open, Reason::SynAck, Some(61))
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
        assert_eq!(
            check(&answer(22, flags::SYN | flags::ACK, 0, 1)),
            Err(Drop::WrongPort)
        );
        // A RST without ACK (what our own kernel sends back) proves nothing.
        assert_eq!(check(&answer(22, flags::RST, 0, 0)), Err(Drop::NotAReply));
        // Our own SYN seen on loopback is not a reply.
        assert_eq!(check(&probe(22)), Err(Drop::NotAReply));
    }

    fn icmp(quote: &[u8], from: Ipv4Addr, code: u8) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        let n = build_icmp_error_v4(
            &mut b,
            &IcmpErrorSpec {
                src: from,
                dst: ME,
                icmp_type: 3,
                code,
                ttl: 64,
            },
            quote,
        )
        .unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn icmp_errors_are_attributed_through_the_quote() {
        let r = check(&icmp(&probe(81)[..28], TGT, 13)).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason),
            (key(81), PortState::Filtered, Reason::AdminProhibited)
        );
        // A quote of a probe we never sent (wrong sequence number) is dropped.
        let mut forged = probe(81)[..28].to_vec();
        forged[24] ^= 0xff;
        assert_eq!(check(&icmp(&forged, TGT, 13)), Err(Drop::BadQuote));
        // Unknown codes decide nothing.
        assert_eq!(
            check(&icmp(&probe(81)[..28], TGT, 5)),
            Err(Drop::IgnoredIcmp)
        );
    }
}
