//! The UDP probe (`-sU`), both IP families.
//!
//! - make: a datagram from the key's cookie source port carrying the
//!   port's protocol payload (`wire::payloads`, with the cookie in the
//!   protocol's own ID field) or nothing; the cookie also goes where an
//!   ICMP error quotes it back: the IPv4 ID, or the IPv6 flow label (IPv6
//!   has no ID; Linux quotes the flow label unchanged).
//! - validate: a datagram from the probed port to the cookie's source
//!   port; where the payload has an ID field the reply must parse as that
//!   protocol and echo the cookie (`udp-response`), else it is believed
//!   as `udp-response-unverified`. One exception, TFTP (RFC 1350): a
//!   server answers a read request from a new port (its transfer ID), so
//!   a datagram from any port of the target to the cookie's source port of
//!   (target, 69/udp) answers that key when it parses as a TFTP answer to
//!   a read request (ERROR, DATA of block 1, OACK: `wire::tftp`). TFTP has
//!   no ID field, so it is `udp-response-unverified` too. An ICMP error
//!   must quote the cookie's IPv4 ID or flow label.
//! - classify: a datagram open; a port-unreachable from the target itself
//!   closed (from a router: filtered); other errors filtered.

use std::net::IpAddr;

use super::{Drop, Module, Reply, Silence, icmp_state};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason};
use crate::wire::payloads::{self, Evidence};
use crate::wire::{BuildError, IcmpError, IpRepr, Packet, Transport, emit_packet, tftp, udp};

pub struct Udp;

/// The TFTP port: its server answers from another (see the header).
pub const TFTP_PORT: u16 = 69;

/// The largest payload in the table fits this with room to spare.
const PAYLOAD_MAX: usize = 1400;

impl Module for Udp {
    fn silence(&self) -> Silence {
        Silence::Paced
    }

    fn measures_path(&self) -> bool {
        false
    }

    fn shows_loss(&self, reason: Reason) -> bool {
        !reason.is_icmp()
    }

    fn make(
        &self,
        key: &ProbeKey,
        src: IpAddr,
        _attempt: u8,
        cookies: &Cookies,
        buf: &mut [u8],
    ) -> Result<usize, BuildError> {
        let mut payload = [0u8; PAYLOAD_MAX];
        let n = match payloads::payload_for(key.port) {
            Some(p) => {
                let mut v = Vec::with_capacity(64);
                p.write(cookies.seq(key), &mut v);
                let n = v.len().min(PAYLOAD_MAX);
                payload[..n].copy_from_slice(&v[..n]);
                n
            }
            None => 0,
        };
        let ip = IpRepr::probe(
            src,
            key.ip,
            cookies.udp_ip_id(key),
            cookies.udp_flow_label(key),
        );
        let dgram = udp::Repr {
            src_port: cookies.src_port(key),
            dst_port: key.port,
            payload: &payload[..n],
        };
        emit_packet(buf, &ip, &Transport::Udp(dgram))
    }

    fn validate(&self, pkt: &Packet<'_>, cookies: &Cookies) -> Result<Reply, Drop> {
        let Packet::Udp(u) = pkt else {
            return Err(Drop::NotAReply);
        };
        let key = ProbeKey {
            ip: u.ip.src,
            port: u.src_port,
            proto: Proto::Udp,
        };
        if u.dst_port != cookies.src_port(&key) {
            // A TFTP server's answer, from its new port.
            let tftp = ProbeKey {
                port: TFTP_PORT,
                ..key
            };
            if u.dst_port == cookies.src_port(&tftp) && tftp::Reply::parse(u.payload).is_some() {
                return Ok(Reply {
                    key: tftp,
                    state: PortState::Open,
                    reason: Reason::UdpResponseUnverified,
                    ttl: Some(u.ip.ttl),
                    attempt: None,
                });
            }
            return Err(Drop::WrongPort);
        }
        let reason = match payloads::payload_for(key.port)
            .map(|p| p.evidence(cookies.seq(&key), u.payload))
        {
            Some(Evidence::Verified) => Reason::UdpResponse,
            Some(Evidence::Unverified) | None => Reason::UdpResponseUnverified,
            Some(Evidence::Rejected) => return Err(Drop::BadCookie),
        };
        Ok(Reply {
            key,
            state: PortState::Open,
            reason,
            ttl: Some(u.ip.ttl),
            attempt: None,
        })
    }

    fn our_port(&self, key: &ProbeKey, port: u16, cookies: &Cookies) -> Option<Option<u8>> {
        (port == cookies.src_port(key)).then_some(None)
    }

    fn quotes_ours(&self, key: &ProbeKey, e: &IcmpError<'_>, cookies: &Cookies) -> bool {
        let q = &e.quoted;
        match (q.ip_id, q.flow_label) {
            (Some(id), _) => id == cookies.udp_ip_id(key),
            (None, Some(fl)) => fl == cookies.udp_flow_label(key),
            (None, None) => false,
        }
    }

    fn classify_error(&self, e: &IcmpError<'_>, from_target: bool) -> Option<(PortState, Reason)> {
        icmp_state(e, Proto::Udp, from_target)
    }
}
