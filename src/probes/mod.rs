//! Probe modules, in the manner of zmap's: one module per probe type, each
//! with the three things that make a probe type.
//! - **make**: the probe's bytes for a key, from a source address, into a
//!   caller's buffer (a whole IP packet of either family; pure: no socket,
//!   clock or random number generator: the cookie comes from `Cookies`);
//! - **validate**: is a parsed packet an answer to one of our probes of
//!   this type (cookie, ports, and for ICMP errors the quoted probe)?
//! - **classify**: what the answer says (state, reason, TTL).
//!
//! The registry (`module`, `validate`) is the one place that maps a key's
//! protocol, or a received packet, to its module: the raw backend and the
//! engine dispatch through it and never match on protocol or family.
//! Adding a probe type is one module plus a line in `module` and in
//! `validate`.
//! The trait's defaults are what most types share: silence means
//! filtered, answers measure the path, and ICMP errors are not believed
//! (fail closed); a type overrides only where it differs.
//!
//! Invariants: modules hold no state across probes; a reply is believed
//! only when it is addressed to one of the scanner's source addresses and
//! carries the probe's cookie (or quotes a probe that does).

pub mod ack;
pub mod arp;
pub mod icmp;
pub mod syn;
pub mod udp;

use std::net::IpAddr;

use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason, classify_icmp};
use crate::wire::BuildError;
use crate::wire::{IcmpError, Packet, flags};

/// A believed reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub key: ProbeKey,
    pub state: PortState,
    pub reason: Reason,
    pub ttl: Option<u8>,
    /// Which try it answers, modulo `probe::TRY_PORTS`, when the probe
    /// type can tell (TCP: the try's own source port).
    pub attempt: Option<u8>,
}

/// Why a packet was not believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Not a reply shape (our own outgoing SYN on loopback, a bare ACK,
    /// an echo reply...).
    NotAReply,
    /// Not addressed to one of the addresses we send probes from.
    NotToUs,
    /// Right shape, but not to our cookie's source port.
    WrongPort,
    /// Right port, wrong acknowledgement number or payload cookie.
    BadCookie,
    /// An ICMP error that does not quote one of our probes.
    BadQuote,
    /// An ICMP code that decides nothing.
    IgnoredIcmp,
}

/// What it means when every try of a probe drew no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The port has this state (reason `no-response`).
    Means(PortState),
    /// Ambiguous: the target may be rate-limiting its ICMP errors; the
    /// scan's ICMP pacer decides (UDP).
    Paced,
}

/// One probe type.
pub trait Module: Sync {
    /// What silence after the last try means (by default: filtered, as
    /// for every probe type whose answers are not rate limited).
    fn silence(&self) -> Silence {
        Silence::Means(PortState::Filtered)
    }

    /// Do this type's first tries measure the path for the congestion
    /// controller? (Not when silence is often the target's ICMP limit.)
    fn measures_path(&self) -> bool {
        true
    }

    /// Does an answer with `reason` say something about loss on the path?
    /// (Rate-limited ICMP errors do not: their timing is the target's.)
    fn shows_loss(&self, _reason: Reason) -> bool {
        true
    }

    /// Write try `attempt` (0 = the first) of the probe for `key`, sent
    /// from `src`, into `buf` (a whole IP packet, IPv4 or IPv6 as `key.ip`
    /// is); returns its length.
    fn make(
        &self,
        key: &ProbeKey,
        src: IpAddr,
        attempt: u8,
        cookies: &Cookies,
        buf: &mut [u8],
    ) -> Result<usize, BuildError>;

    /// Does an answer's destination port (or the quoted probe's source
    /// port) belong to `key`? Which try it names, when it can tell. The
    /// default, for types without ports, fails closed: never.
    fn our_port(&self, _key: &ProbeKey, _port: u16, _cookies: &Cookies) -> Option<Option<u8>> {
        None
    }

    /// A direct answer (not an ICMP error): is it ours, and what does it say?
    fn validate(&self, pkt: &Packet<'_>, cookies: &Cookies) -> Result<Reply, Drop>;

    /// Does the probe an ICMP error quotes carry our cookie for `key`?
    /// The default fails closed: ICMP errors prove nothing about this type.
    fn quotes_ours(&self, _key: &ProbeKey, _e: &IcmpError<'_>, _cookies: &Cookies) -> bool {
        false
    }

    /// What an ICMP error about one of our probes says (None, the
    /// default: nothing).
    fn classify_error(
        &self,
        _e: &IcmpError<'_>,
        _from_target: bool,
    ) -> Option<(PortState, Reason)> {
        None
    }
}

/// The module that makes and reads probes of `proto`.
pub fn module(proto: Proto) -> &'static dyn Module {
    match proto {
        Proto::Tcp => &syn::Syn,
        Proto::Udp => &udp::Udp,
        Proto::Icmp => &icmp::IcmpPing,
        Proto::TcpAck => &ack::AckPing,
        Proto::Arp => &arp::Neighbor,
    }
}

/// Is `pkt` an answer to one of our probes? `sources` are the addresses
/// the scanner sends probes from (the answer's destination must be one).
pub fn validate(pkt: &Packet<'_>, cookies: &Cookies, sources: &[IpAddr]) -> Result<Reply, Drop> {
    if !sources.contains(&pkt.ip().dst) {
        return Err(Drop::NotToUs);
    }
    match pkt {
        // A bare RST answers an ACK ping; SYN-ACK and RST-ACK a SYN.
        Packet::Tcp(t) if t.flags & (flags::RST | flags::ACK) == flags::RST => {
            module(Proto::TcpAck).validate(pkt, cookies)
        }
        Packet::Tcp(_) => module(Proto::Tcp).validate(pkt, cookies),
        Packet::Udp(_) => module(Proto::Udp).validate(pkt, cookies),
        Packet::IcmpError(e) => {
            let q = &e.quoted;
            let key = ProbeKey {
                ip: q.dst,
                port: q.dst_port,
                proto: q.proto,
            };
            let m = module(q.proto);
            // The quote must be our probe: one of our source ports for the
            // key, sent from the address the error was delivered to, and
            // the cookie the module put in the quoted headers.
            let Some(attempt) = m.our_port(&key, q.src_port, cookies) else {
                return Err(Drop::BadQuote);
            };
            if q.src != e.ip.dst || !m.quotes_ours(&key, e, cookies) {
                return Err(Drop::BadQuote);
            }
            let from_target = e.ip.src == q.dst;
            let (state, reason) = m.classify_error(e, from_target).ok_or(Drop::IgnoredIcmp)?;
            Ok(Reply {
                key,
                state,
                reason,
                ttl: Some(e.ip.ttl),
                attempt,
            })
        }
        Packet::Icmp(_) => {
            // Echo and timestamp replies, and Neighbour Advertisements.
            match module(Proto::Icmp).validate(pkt, cookies) {
                Err(Drop::NotAReply) => module(Proto::Arp).validate(pkt, cookies),
                r => r,
            }
        }
    }
}

/// The nmap mapping of an ICMP or ICMPv6 error, shared by the port-probe
/// modules.
fn icmp_state(e: &IcmpError<'_>, proto: Proto, from_target: bool) -> Option<(PortState, Reason)> {
    classify_icmp(e.kind, proto, from_target)
}
