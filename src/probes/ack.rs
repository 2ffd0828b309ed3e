//! The TCP ACK discovery probe (`-PA`), both IP families.
//!
//! - make: a bare ACK from the try's source port (`Cookies::tcp_try_port`,
//!   as the SYN probe), its acknowledgement number the cookie, window
//!   1024, IPv4 ID from the cookie, hop limit 64.
//! - validate: a RST (without ACK, RFC 793: its sequence number is the
//!   ACK's acknowledgement number) to one of the key's try ports whose
//!   sequence number is the cookie. An open or closed port both answer an
//!   unexpected ACK with such a RST, so it proves the host is up.
//! - classify: the RST is `Unfiltered`, reason `reset`; silence is
//!   `Filtered`. ICMP errors prove nothing about the host (not believed).

use std::net::IpAddr;

use super::{Drop, Module, Reply};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
use crate::wire::{BuildError, IpRepr, Packet, Transport, emit_packet, flags, tcp};

pub struct AckPing;

impl Module for AckPing {
    fn make(
        &self,
        key: &ProbeKey,
        src: IpAddr,
        attempt: u8,
        cookies: &Cookies,
        buf: &mut [u8],
    ) -> Result<usize, BuildError> {
        let cookie = cookies.seq(key);
        let segment = tcp::Repr {
            src_port: cookies.tcp_try_port(key, attempt),
            dst_port: key.port,
            seq: cookie.rotate_left(16),
            ack: cookie,
            flags: flags::ACK,
            window: tcp::SYN_WINDOW,
            ..tcp::Repr::default()
        };
        let ip = IpRepr::probe(src, key.ip, (cookie >> 16) as u16, 0);
        emit_packet(buf, &ip, &Transport::Tcp(segment))
    }

    fn validate(&self, pkt: &Packet<'_>, cookies: &Cookies) -> Result<Reply, Drop> {
        let Packet::Tcp(t) = pkt else {
            return Err(Drop::NotAReply);
        };
        if t.flags & (flags::RST | flags::ACK | flags::SYN) != flags::RST {
            return Err(Drop::NotAReply);
        }
        let key = ProbeKey {
            ip: t.ip.src,
            port: t.src_port,
            proto: Proto::TcpAck,
        };
        let Some(attempt) = cookies.tcp_try_of(&key, t.dst_port) else {
            return Err(Drop::WrongPort);
        };
        if t.seq != cookies.seq(&key) {
            return Err(Drop::BadCookie);
        }
        Ok(Reply {
            key,
            state: PortState::Unfiltered,
            reason: Reason::Reset,
            ttl: Some(t.ip.ttl),
            attempt: Some(attempt),
        })
    }

    fn our_port(&self, key: &ProbeKey, port: u16, cookies: &Cookies) -> Option<Option<u8>> {
        cookies.tcp_try_of(key, port).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_ip;
    use std::net::Ipv4Addr;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const TGT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

    fn c() -> Cookies {
        Cookies::new(*b"ack-ping-cookie!")
    }

    fn rst(k: &ProbeKey, fl: u8, seq_delta: u32, try_no: u8) -> Vec<u8> {
        let t = Transport::Tcp(tcp::Repr {
            src_port: k.port,
            dst_port: c().tcp_try_port(k, try_no),
            seq: c().seq(k).wrapping_add(seq_delta),
            ack: 0,
            flags: fl,
            ..tcp::Repr::default()
        });
        let mut b = vec![0u8; 128];
        let n = emit_packet(&mut b, &IpRepr::probe(TGT, ME, 0, 0), &t).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn the_probe_acknowledges_the_cookie() {
        let k = ProbeKey {
            ip: TGT,
            port: 80,
            proto: Proto::TcpAck,
        };
        let mut b = vec![0u8; 128];
        let n = AckPing.make(&k, ME, 2, &c(), &mut b).unwrap();
        let Packet::Tcp(t) = parse_ip(&b[..n]).unwrap() else {
            panic!("not tcp")
        };
        assert_eq!(t.flags, flags::ACK);
        assert_eq!(t.ack, c().seq(&k));
        assert_eq!(t.dst_port, 80);
        assert_eq!(c().tcp_try_of(&k, t.src_port), Some(2));
    }

    #[test]
    fn a_rst_carrying_the_cookie_proves_the_host_and_nothing_else_does() {
        let k = ProbeKey {
            ip: TGT,
            port: 80,
            proto: Proto::TcpAck,
        };
        let ok_bytes = rst(&k, flags::RST, 0, 1);
        let ok = parse_ip(&ok_bytes).unwrap();
        let r = crate::probes::validate(&ok, &c(), &[ME]).unwrap();
        assert_eq!(
            (r.key, r.state, r.reason, r.attempt),
            (k, PortState::Unfiltered, Reason::Reset, Some(1))
        );
        let bad_bytes = rst(&k, flags::RST, 1, 0);
        let bad = parse_ip(&bad_bytes).unwrap();
        assert_eq!(AckPing.validate(&bad, &c()), Err(Drop::BadCookie));
        // A RST-ACK is the SYN probe's business, not this one's.
        let rst_ack_bytes = rst(&k, flags::RST | flags::ACK, 0, 0);
        let rst_ack = parse_ip(&rst_ack_bytes).unwrap();
        assert_eq!(AckPing.validate(&rst_ack, &c()), Err(Drop::NotAReply));
        // Not to us: not believed.
        assert_eq!(
            crate::probes::validate(&ok, &c(), &[TGT]),
            Err(Drop::NotToUs)
        );
    }
}
