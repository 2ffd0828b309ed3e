//! ICMP discovery probes (`-PE`, `-PP`), both IP families.
//!
//! - make: key port 8 is an echo request, 13 a timestamp request (over
//!   IPv6, where there is no timestamp message, both are ICMPv6 echo
//!   requests with their own cookies). The cookie is the identifier (high
//!   16 bits) and sequence number (low 16 bits); IPv4 ID from the cookie,
//!   hop limit 64, no data. Every try carries the same cookie.
//! - validate: an echo reply (ICMP 0, ICMPv6 129) or timestamp reply
//!   (ICMP 14) from the key's address whose identifier and sequence
//!   number are the key's cookie. Nothing else about an ICMP query is
//!   believed: an error quoting our request (a router's host-unreachable)
//!   proves nothing about the host and is not handed to this module.
//! - classify: an answer is `Open` with reason `echo-reply` or
//!   `timestamp-reply`; silence is `Filtered`, `no-response`.

use std::net::IpAddr;

use super::{Drop, Module, Reply};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
use crate::wire::{
    BuildError, IcmpMessage, IpRepr, Packet, Transport, emit_packet, icmpv4, icmpv6,
};

/// Key port of an echo probe.
pub const ECHO: u16 = 8;
/// Key port of a timestamp probe.
pub const TIMESTAMP: u16 = 13;

pub struct IcmpPing;

/// The (identifier, sequence number) of the probe for `key`.
pub fn ident_seq(key: &ProbeKey, cookies: &Cookies) -> (u16, u16) {
    let c = cookies.seq(key);
    ((c >> 16) as u16, c as u16)
}

fn key(ip: IpAddr, port: u16) -> ProbeKey {
    ProbeKey {
        ip,
        port,
        proto: Proto::Icmp,
    }
}

impl Module for IcmpPing {
    fn make(
        &self,
        key: &ProbeKey,
        src: IpAddr,
        _attempt: u8,
        cookies: &Cookies,
        buf: &mut [u8],
    ) -> Result<usize, BuildError> {
        let (ident, seq_no) = ident_seq(key, cookies);
        let t = match key.ip {
            IpAddr::V4(_) if key.port == TIMESTAMP => {
                Transport::Icmpv4(icmpv4::Repr::TimestampRequest {
                    ident,
                    seq_no,
                    originate: 0,
                    receive: 0,
                    transmit: 0,
                })
            }
            IpAddr::V4(_) => Transport::Icmpv4(icmpv4::Repr::EchoRequest {
                ident,
                seq_no,
                data: &[],
            }),
            IpAddr::V6(_) => Transport::Icmpv6(icmpv6::Repr::EchoRequest {
                ident,
                seq_no,
                data: &[],
            }),
        };
        let ip = IpRepr::probe(src, key.ip, seq_no, 0);
        emit_packet(buf, &ip, &t)
    }

    fn validate(&self, pkt: &Packet<'_>, cookies: &Cookies) -> Result<Reply, Drop> {
        let Packet::Icmp(info) = pkt else {
            return Err(Drop::NotAReply);
        };
        let src = info.ip.src;
        // The keys this message could answer, and the reason it gives.
        let (ident, seq_no, candidates, reason): (u16, u16, &[u16], Reason) = match info.message {
            IcmpMessage::V4(icmpv4::Repr::EchoReply { ident, seq_no, .. }) => {
                (ident, seq_no, &[ECHO], Reason::EchoReply)
            }
            IcmpMessage::V4(icmpv4::Repr::TimestampReply { ident, seq_no, .. }) => {
                (ident, seq_no, &[TIMESTAMP], Reason::TimestampReply)
            }
            IcmpMessage::V6(icmpv6::Repr::EchoReply { ident, seq_no, .. }) => {
                (ident, seq_no, &[ECHO, TIMESTAMP], Reason::EchoReply)
            }
            _ => return Err(Drop::NotAReply),
        };
        for &port in candidates {
            let k = key(src, port);
            if ident_seq(&k, cookies) == (ident, seq_no) {
                return Ok(Reply {
                    key: k,
                    state: PortState::Open,
                    reason,
                    ttl: Some(info.ip.ttl),
                    attempt: None,
                });
            }
        }
        Err(Drop::BadCookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_ip;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const TGT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    const ME6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    const TGT6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

    fn c() -> Cookies {
        Cookies::new(*b"icmp-ping-cookie")
    }

    fn built(k: &ProbeKey, src: IpAddr) -> Vec<u8> {
        let mut b = vec![0u8; 256];
        let n = IcmpPing.make(k, src, 0, &c(), &mut b).unwrap();
        b.truncate(n);
        b
    }

    /// The target's answer to a probe: the reply type, same id and seq.
    fn answer(probe: &[u8], from: IpAddr, to: IpAddr, tamper: u16) -> Vec<u8> {
        let p = parse_ip(probe).unwrap();
        let Packet::Icmp(info) = p else {
            panic!("not icmp: {p:?}")
        };
        let t = match info.message {
            IcmpMessage::V4(icmpv4::Repr::EchoRequest { ident, seq_no, .. }) => {
                Transport::Icmpv4(icmpv4::Repr::EchoReply {
                    ident,
                    seq_no: seq_no ^ tamper,
                    data: &[],
                })
            }
            IcmpMessage::V4(icmpv4::Repr::TimestampRequest { ident, seq_no, .. }) => {
                Transport::Icmpv4(icmpv4::Repr::TimestampReply {
                    ident,
                    seq_no: seq_no ^ tamper,
                    originate: 0,
                    receive: 1,
                    transmit: 2,
                })
            }
            IcmpMessage::V6(icmpv6::Repr::EchoRequest { ident, seq_no, .. }) => {
                Transport::Icmpv6(icmpv6::Repr::EchoReply {
                    ident,
                    seq_no: seq_no ^ tamper,
                    data: &[],
                })
            }
            m => panic!("unexpected {m:?}"),
        };
        let mut b = vec![0u8; 256];
        let n = emit_packet(&mut b, &IpRepr::probe(from, to, 0, 0), &t).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn echo_and_timestamp_replies_with_the_cookie_prove_the_host() {
        for (k, src, reason) in [
            (key(TGT, ECHO), ME, Reason::EchoReply),
            (key(TGT, TIMESTAMP), ME, Reason::TimestampReply),
            (key(TGT6, ECHO), ME6, Reason::EchoReply),
            (key(TGT6, TIMESTAMP), ME6, Reason::EchoReply),
        ] {
            let a = answer(&built(&k, src), k.ip, src, 0);
            let r = IcmpPing.validate(&parse_ip(&a).unwrap(), &c()).unwrap();
            assert_eq!((r.key, r.state, r.reason), (k, PortState::Open, reason));
            let srcs = [src];
            assert_eq!(
                crate::probes::validate(&parse_ip(&a).unwrap(), &c(), &srcs),
                Ok(r)
            );
        }
    }

    #[test]
    fn a_wrong_cookie_or_another_sender_is_not_believed() {
        let k = key(TGT, ECHO);
        let bad = answer(&built(&k, ME), TGT, ME, 1);
        assert_eq!(
            IcmpPing.validate(&parse_ip(&bad).unwrap(), &c()),
            Err(Drop::BadCookie)
        );
        // The right cookie from another address: it answers that
        // address's key, not ours, and so fails its cookie.
        let other = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 9));
        let spoof = answer(&built(&k, ME), other, ME, 0);
        assert_eq!(
            IcmpPing.validate(&parse_ip(&spoof).unwrap(), &c()),
            Err(Drop::BadCookie)
        );
        // Our own request seen on loopback is not a reply.
        assert_eq!(
            IcmpPing.validate(&parse_ip(&built(&k, ME)).unwrap(), &c()),
            Err(Drop::NotAReply)
        );
    }

    #[test]
    fn a_routers_host_unreachable_about_an_echo_proves_nothing() {
        // ICMP 3/1 from a router quoting our echo request.
        let k = key(TGT, ECHO);
        let probe = built(&k, ME);
        let router = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 254));
        let t = Transport::Icmpv4(icmpv4::Repr::DstUnreachable {
            reason: icmpv4::DstUnreachable::HostUnreachable,
            next_hop_mtu: 0,
            quote: &probe,
        });
        let mut b = vec![0u8; 256];
        let n = emit_packet(&mut b, &IpRepr::probe(router, ME, 0, 0), &t).unwrap();
        let pkt = parse_ip(&b[..n]).unwrap();
        assert!(crate::probes::validate(&pkt, &c(), &[ME]).is_err());
    }
}
