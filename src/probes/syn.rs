//! The TCP SYN probe (`-sS`), both IP families.
//!
//! - make: a SYN from the try's source port (the key's cookie port plus
//!   the try number, `Cookies::tcp_try_port`: each retry is a new
//!   connection to the target), its sequence number the cookie; window 1024 and one MSS option of 1460 (the shape nmap's
//!   `-sS` sends: `wire::tcp::syn_probe`), hop limit 64, IPv4 ID from the
//!   cookie, DF over IPv4.
//! - validate: a SYN-ACK or RST-ACK to one of the key's try ports that
//!   acknowledges the cookie (ack = seq + 1); an ICMP error whose quote
//!   carries the cookie as the sequence number.
//! - classify: SYN-ACK open (`syn-ack`), RST closed (`reset`), ICMP
//!   unreachable or time exceeded filtered with nmap's reason names.

use std::net::IpAddr;

use super::{Drop, Module, Reply, Silence, icmp_state};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
use crate::wire::{BuildError, IcmpError, IpRepr, Packet, Transport, emit_packet, flags, tcp};

pub struct Syn;

impl Module for Syn {
    fn silence(&self) -> Silence {
        Silence::Means(PortState::Filtered)
    }

    fn measures_path(&self) -> bool {
        true
    }

    fn shows_loss(&self, _reason: Reason) -> bool {
        true
    }

    fn make(
        &self,
        key: &ProbeKey,
        src: IpAddr,
        attempt: u8,
        cookies: &Cookies,
        buf: &mut [u8],
    ) -> Result<usize, BuildError> {
        let seq = cookies.seq(key);
        let segment = tcp::syn_probe(cookies.tcp_try_port(key, attempt), key.port, seq);
        let ip = IpRepr::probe(src, key.ip, (seq >> 16) as u16, 0);
        emit_packet(buf, &ip, &Transport::Tcp(segment))
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
