//! The TCP SYN probe (`-sS`), both IP families.
//!
//! - make: a SYN from the try's source port (the key's cookie port plus
//!   the try number, `Cookies::tcp_try_port`: each retry is a new
//!   connection to the target), its sequence number the cookie; window 1024 and one MSS option of 1460 (the shape nmap's
//!   `-sS` sends: `wire::tcp::syn_probe`), hop limit 64, IPv4 ID from the
//!   cookie, DF over IPv4. The bytes come from a prebuilt template per
//!   family (`wire::template`), with only the addresses, ports, cookie and
//!   checksums written per probe.
//! - validate: a SYN-ACK or RST-ACK to one of the key's try ports that
//!   acknowledges the cookie (ack = seq + 1); an ICMP error whose quote
//!   carries the cookie as the sequence number.
//! - classify: SYN-ACK open (`syn-ack`), RST closed (`reset`), ICMP
//!   unreachable or time exceeded filtered with nmap's reason names.

use std::net::IpAddr;
use std::sync::OnceLock;

use super::{Drop, Module, Reply, icmp_state};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
use crate::wire::template::{TcpFields, TcpTemplate};
use crate::wire::{BuildError, IcmpError, Packet, flags, tcp};

pub struct Syn;

/// The SYN probe's bytes per family (IPv4, IPv6), laid out once.
fn template(v4: bool) -> Result<&'static TcpTemplate, BuildError> {
    static T: OnceLock<Result<[TcpTemplate; 2], BuildError>> = OnceLock::new();
    let shape = tcp::syn_probe(0, 0, 0);
    let t = T.get_or_init(|| {
        Ok([
            TcpTemplate::new(shape, true)?,
            TcpTemplate::new(shape, false)?,
        ])
    });
    match t {
        Ok(t) => Ok(&t[usize::from(!v4)]),
        Err(e) => Err(*e),
    }
}

impl Module for Syn {
    fn make(
        &self,
        key: &ProbeKey,
        src: IpAddr,
        attempt: u8,
        cookies: &Cookies,
        buf: &mut [u8],
    ) -> Result<usize, BuildError> {
        let seq = cookies.seq(key);
        template(key.ip.is_ipv4())?.fill(
            buf,
            &TcpFields {
                src,
                dst: key.ip,
                ident: (seq >> 16) as u16,
                src_port: cookies.tcp_try_port(key, attempt),
                dst_port: key.port,
                seq,
                ack: 0,
            },
        )
    }

    fn validate(&self, pkt: &Packet<'_>, cookies: &Cookies) -> Result<Reply, Drop> {
        let Packet::Tcp(t) = pkt else {
            return Err(Drop::NotAReply);
        };
        let key = ProbeKey {
            ip: t.ip.src,
            port: t.src_port,
            proto: Proto::Tcp,
        };
        let (state, reason) = if t.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK {
            (PortState::Open, Reason::SynAck)
        } else if t.flags & (flags::RST | flags::ACK) == flags::RST | flags::ACK {
            (PortState::Closed, Reason::Reset)
        } else {
            return Err(Drop::NotAReply);
        };
        let Some(attempt) = cookies.tcp_try_of(&key, t.dst_port) else {
            return Err(Drop::WrongPort);
        };
        if t.ack != cookies.seq(&key).wrapping_add(1) {
            return Err(Drop::BadCookie);
        }
        Ok(Reply {
            key,
            state,
            reason,
            ttl: Some(t.ip.ttl),
            attempt: Some(attempt),
        })
    }

    fn our_port(&self, key: &ProbeKey, port: u16, cookies: &Cookies) -> Option<Option<u8>> {
        cookies.tcp_try_of(key, port).map(Some)
    }

    fn quotes_ours(&self, key: &ProbeKey, e: &IcmpError<'_>, cookies: &Cookies) -> bool {
        e.quoted.seq == Some(cookies.seq(key))
    }

    fn classify_error(&self, e: &IcmpError<'_>, from_target: bool) -> Option<(PortState, Reason)> {
        icmp_state(e, Proto::Tcp, from_target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IpRepr, Transport, emit_packet};

    /// The template-built SYN is the packet the wire emitters lay out for
    /// the same probe: both families, several tries.
    #[test]
    fn make_writes_the_emitters_syn() {
        let cookies = Cookies::new(*b"syn-template-key");
        let pairs: [(IpAddr, IpAddr); 2] = [
            ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap()),
            (
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ),
        ];
        for (src, dst) in pairs {
            for port in [1u16, 22, 443, 65535] {
                let key = ProbeKey {
                    ip: dst,
                    port,
                    proto: Proto::Tcp,
                };
                for attempt in 0..3 {
                    let mut got = [0u8; 128];
                    let n = Syn.make(&key, src, attempt, &cookies, &mut got).unwrap();
                    let seq = cookies.seq(&key);
                    let seg = tcp::syn_probe(cookies.tcp_try_port(&key, attempt), port, seq);
                    let ip = IpRepr::probe(src, dst, (seq >> 16) as u16, 0);
                    let mut want = [0u8; 128];
                    let m = emit_packet(&mut want, &ip, &Transport::Tcp(seg)).unwrap();
                    assert_eq!(&got[..n], &want[..m], "{key:?} try {attempt}");
                }
            }
        }
    }
}
