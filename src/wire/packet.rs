//! The top level: what a socket delivers, parsed into one [`Packet`] for
//! both IP families; and [`emit_packet`], which lays out a whole probe.
//!
//! Receive paths, one function each:
//! - [`parse_ipv4`]: a raw IPv4 socket's packet, IPv4 header first;
//! - [`parse_ipv6`]: a full IPv6 packet (AF_PACKET), extension headers
//!   skipped with bounds;
//! - [`parse_ipv6_payload`]: what a raw IPv6 socket delivers (no IPv6
//!   header): the transport bytes, with source, destination and hop limit
//!   taken from the socket address and ancillary data ([`Ipv6Meta`]);
//! - [`parse_ip`]: IPv4 or full IPv6, by the version nibble;
//! - [`parse_frame`]: an Ethernet frame (ARP, or IP as above).
//!
//! ICMP and ICMPv6 errors expose the probe they quote ([`Quoted`]:
//! addresses, protocol, ports, TCP sequence number, IPv4 ID, IPv6 flow
//! label) so that a probe module can check it against its cookie. An error
//! quoting something other than TCP or UDP is handed out whole as
//! [`Packet::Icmp`], like any other ICMP message.
//!
//! Invariants: never panics; every length is checked by the protocol
//! views before a field is read. Fragments are refused (a reply to a probe
//! is never fragmented). Transport checksums are not verified (see `wire`).

use std::net::{IpAddr, Ipv6Addr};

use super::ethernet::{self, ethertype};
use super::{BuildError, WireError, arp, icmpv4, icmpv6, ipv4, ipv6, proto, tcp, udp};
use crate::probe::Proto;

/// The parts of an IP header a scanner reads, either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification; None over IPv6.
    pub ip_id: Option<u16>,
    /// IPv6 flow label; None over IPv4, and for a raw IPv6 socket's
    /// payload (the header is not delivered).
    pub flow_label: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub ip: IpInfo,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpInfo<'a> {
    pub ip: IpInfo,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// The probe an ICMP or ICMPv6 error quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// The probe's source: must be one of ours.
    pub src: IpAddr,
    /// The probe's destination: the scanned host.
    pub dst: IpAddr,
    pub proto: Proto,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP sequence number (in the 8 quoted bytes); None for UDP.
    pub seq: Option<u32>,
    /// IPv4 identification of the probe; None over IPv6.
    pub ip_id: Option<u16>,
    /// IPv6 flow label of the probe; None over IPv4.
    pub flow_label: Option<u32>,
    /// The quoted transport bytes (at least 8: the UDP header, or TCP up to
    /// the sequence number), as much as the error carried.
    pub transport: &'a [u8],
}

/// The error kinds that are about a probe, both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpErrorKind {
    /// ICMP type 3.
    V4Unreachable(icmpv4::DstUnreachable),
    /// ICMP type 11.
    V4TimeExceeded { code: u8 },
    /// ICMPv6 type 1.
    V6Unreachable(icmpv6::DstUnreachable),
    /// ICMPv6 type 2.
    V6PktTooBig { mtu: u32 },
    /// ICMPv6 type 3.
    V6TimeExceeded { code: u8 },
    /// ICMPv6 type 4.
    V6ParamProblem { code: u8 },
}

impl IcmpErrorKind {
    /// An ICMP (IPv4) type and code, as `IP_RECVERR` reports them.
    pub fn from_icmpv4(icmp_type: u8, code: u8) -> Option<Self> {
        match icmp_type {
            icmpv4::msg_type::DST_UNREACHABLE => Some(Self::V4Unreachable(code.into())),
            icmpv4::msg_type::TIME_EXCEEDED => Some(Self::V4TimeExceeded { code }),
            _ => None,
        }
    }

    /// An ICMPv6 type and code, as `IPV6_RECVERR` reports them (the MTU of
    /// a packet-too-big is not reported there: 0).
    pub fn from_icmpv6(icmp_type: u8, code: u8) -> Option<Self> {
        match icmp_type {
            icmpv6::msg_type::DST_UNREACHABLE => Some(Self::V6Unreachable(code.into())),
            icmpv6::msg_type::PKT_TOO_BIG => Some(Self::V6PktTooBig { mtu: 0 }),
            icmpv6::msg_type::TIME_EXCEEDED => Some(Self::V6TimeExceeded { code }),
            icmpv6::msg_type::PARAM_PROBLEM => Some(Self::V6ParamProblem { code }),
            _ => None,
        }
    }
}

/// An ICMP or ICMPv6 error about a TCP or UDP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError<'a> {
    pub ip: IpInfo,
    pub kind: IcmpErrorKind,
    pub quoted: Quoted<'a>,
}

/// Any ICMP message, either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpMessage<'a> {
    V4(icmpv4::Repr<'a>),
    V6(icmpv6::Repr<'a>),
}

/// An ICMP message that is not an error about a TCP or UDP packet: echo
/// and timestamp replies, NDP, redirects, errors quoting other protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpInfo<'a> {
    pub ip: IpInfo,
    pub message: IcmpMessage<'a>,
}

/// A parsed IP packet, either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Tcp(TcpInfo),
    Udp(UdpInfo<'a>),
    IcmpError(IcmpError<'a>),
    Icmp(IcmpInfo<'a>),
}

impl Packet<'_> {
    pub fn ip(&self) -> &IpInfo {
        match self {
            Packet::Tcp(t) => &t.ip,
            Packet::Udp(u) => &u.ip,
            Packet::IcmpError(e) => &e.ip,
            Packet::Icmp(i) => &i.ip,
        }
    }
}

/// What a raw IPv6 socket tells besides the payload: the source (its
/// address argument), the destination (`IPV6_PKTINFO`) and the hop limit
/// (`IPV6_HOPLIMIT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Meta {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
}

/// One received IPv4 packet, header first (a raw IPv4 socket).
pub fn parse_ipv4(buf: &[u8]) -> Result<Packet<'_>, WireError> {
    let p = ipv4::Packet::new_checked(buf)?;
    let r = ipv4::Repr::parse(&p)?;
    let ip = IpInfo {
        src: IpAddr::V4(r.src),
        dst: IpAddr::V4(r.dst),
        ttl: r.ttl,
        ip_id: Some(r.ident),
        flow_label: None,
    };
    let payload = &buf[p.header_len()..p.total_len()];
    transport(ip, r.protocol, payload)
}

/// One full IPv6 packet, header first (AF_PACKET, or a test's bytes).
pub fn parse_ipv6(buf: &[u8]) -> Result<Packet<'_>, WireError> {
    let p = ipv6::Packet::new_checked(buf)?;
    let ip = IpInfo {
        src: IpAddr::V6(p.src_addr()),
        dst: IpAddr::V6(p.dst_addr()),
        ttl: p.hop_limit(),
        ip_id: None,
        flow_label: Some(p.flow_label()),
    };
    let end = ipv6::HEADER_LEN + p.payload_len();
    let payload = &buf[ipv6::HEADER_LEN..end];
    let ul = ipv6::upper_layer(p.next_header(), payload, false)?;
    transport(ip, ul.protocol, &payload[ul.offset..])
}

/// The transport bytes a raw IPv6 socket of protocol `next_header`
/// delivers (the kernel has removed the IPv6 and extension headers).
pub fn parse_ipv6_payload(
    meta: Ipv6Meta,
    next_header: u8,
    payload: &[u8],
) -> Result<Packet<'_>, WireError> {
    let ip = IpInfo {
        src: IpAddr::V6(meta.src),
        dst: IpAddr::V6(meta.dst),
        ttl: meta.hop_limit,
        ip_id: None,
        flow_label: None,
    };
    transport(ip, next_header, payload)
}

/// An IPv4 packet or a full IPv6 packet, by its version nibble.
pub fn parse_ip(buf: &[u8]) -> Result<Packet<'_>, WireError> {
    match buf.first().map(|b| b >> 4) {
        None => Err(WireError::Truncated),
        Some(4) => parse_ipv4(buf),
        Some(6) => parse_ipv6(buf),
        Some(_) => Err(WireError::BadVersion),
    }
}

/// What an Ethernet frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramePayload<'a> {
    Arp(arp::Repr),
    Ip(Packet<'a>),
    /// Another EtherType (see `Frame::ethernet`).
    Other,
}

/// A parsed Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub ethernet: ethernet::Repr,
    pub payload: FramePayload<'a>,
}

/// One Ethernet frame (AF_PACKET, SOCK_RAW): ARP, IPv4 or IPv6 inside.
pub fn parse_frame(buf: &[u8]) -> Result<Frame<'_>, WireError> {
    let f = ethernet::Frame::new_checked(buf)?;
    let eth = ethernet::Repr::parse(&f);
    let body = &buf[ethernet::HEADER_LEN..];
    let payload = match eth.ethertype {
        ethertype::ARP => FramePayload::Arp(arp::Repr::parse(&arp::Packet::new_checked(body)?)?),
        ethertype::IPV4 => FramePayload::Ip(parse_ipv4(body)?),
        ethertype::IPV6 => FramePayload::Ip(parse_ipv6(body)?),
        _ => FramePayload::Other,
    };
    Ok(Frame {
        ethernet: eth,
        payload,
    })
}

fn transport(ip: IpInfo, protocol: u8, bytes: &[u8]) -> Result<Packet<'_>, WireError> {
    match (protocol, ip.src) {
        (proto::TCP, _) => {
            let t = tcp::Packet::new_checked(bytes)?;
            Ok(Packet::Tcp(TcpInfo {
                ip,
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                seq: t.seq_number(),
                ack: t.ack_number(),
                flags: t.flags(),
                window: t.window_len(),
            }))
        }
        (proto::UDP, _) => {
            let u = udp::Packet::new_checked(bytes)?;
            let r = udp::Repr::parse(&u);
            Ok(Packet::Udp(UdpInfo {
                ip,
                src_port: r.src_port,
                dst_port: r.dst_port,
                payload: r.payload,
            }))
        }
        (proto::ICMP, IpAddr::V4(_)) => {
            let m = icmpv4::Repr::parse(&icmpv4::Packet::new_checked(bytes)?)?;
            let err = match m {
                icmpv4::Repr::DstUnreachable { reason, quote, .. } => {
                    Some((IcmpErrorKind::V4Unreachable(reason), quote))
                }
                icmpv4::Repr::TimeExceeded { code, quote } => {
                    Some((IcmpErrorKind::V4TimeExceeded { code }, quote))
                }
                _ => None,
            };
            if let Some((kind, quote)) = err
                && let Some(quoted) = quoted_v4(quote)?
            {
                return Ok(Packet::IcmpError(IcmpError { ip, kind, quoted }));
            }
            Ok(Packet::Icmp(IcmpInfo {
                ip,
                message: IcmpMessage::V4(m),
            }))
        }
        (proto::ICMPV6, IpAddr::V6(_)) => {
            let m = icmpv6::Repr::parse(&icmpv6::Packet::new_checked(bytes)?)?;
            let kind = match m {
                icmpv6::Repr::DstUnreachable { reason, .. } => {
                    Some(IcmpErrorKind::V6Unreachable(reason))
                }
                icmpv6::Repr::PktTooBig { mtu, .. } => Some(IcmpErrorKind::V6PktTooBig { mtu }),
                icmpv6::Repr::TimeExceeded { code, .. } => {
                    Some(IcmpErrorKind::V6TimeExceeded { code })
                }
                icmpv6::Repr::ParamProblem { code, .. } => {
                    Some(IcmpErrorKind::V6ParamProblem { code })
                }
                _ => None,
            };
            if let (Some(kind), Some(quote)) = (kind, m.quote())
                && let Some(quoted) = quoted_v6(quote)?
            {
                return Ok(Packet::IcmpError(IcmpError { ip, kind, quoted }));
            }
            Ok(Packet::Icmp(IcmpInfo {
                ip,
                message: IcmpMessage::V6(m),
            }))
        }
        _ => Err(WireError::Unsupported),
    }
}

/// Protocol, ports and TCP sequence number of a quoted header.
type QuotedPorts = (Proto, u16, u16, Option<u32>);

/// Ports (and TCP sequence number) of a quoted TCP or UDP header; None for
/// other protocols; `BadQuote` when fewer than 8 bytes are quoted.
fn quoted_transport(protocol: u8, t: &[u8]) -> Result<Option<QuotedPorts>, WireError> {
    let (src_port, dst_port, seq) = match protocol {
        proto::TCP | proto::UDP => tcp::quoted_ports_seq(t).ok_or(WireError::BadQuote)?,
        _ => return Ok(None),
    };
    Ok(Some(if protocol == proto::TCP {
        (Proto::Tcp, src_port, dst_port, Some(seq))
    } else {
        (Proto::Udp, src_port, dst_port, None)
    }))
}

/// The IPv4 probe quoted in an ICMP error (RFC 792: the IP header and at
/// least 8 bytes of what followed).
fn quoted_v4(quote: &[u8]) -> Result<Option<Quoted<'_>>, WireError> {
    let q = ipv4::Packet::new_checked_quote(quote).map_err(|_| WireError::BadQuote)?;
    if q.frag_offset() != 0 {
        return Err(WireError::BadQuote);
    }
    // Up to the total length, or the end of the quote if it was cut short.
    let t = &quote[q.header_len()..q.total_len().min(quote.len())];
    let Some((proto, src_port, dst_port, seq)) = quoted_transport(q.protocol(), t)? else {
        return Ok(None);
    };
    Ok(Some(Quoted {
        src: IpAddr::V4(q.src_addr()),
        dst: IpAddr::V4(q.dst_addr()),
        proto,
        src_port,
        dst_port,
        seq,
        ip_id: Some(q.ident()),
        flow_label: None,
        transport: t,
    }))
}

/// The IPv6 probe quoted in an ICMPv6 error (RFC 4443: as much of the
/// packet as fits in the minimum MTU), extension headers skipped.
fn quoted_v6(quote: &[u8]) -> Result<Option<Quoted<'_>>, WireError> {
    let q = ipv6::Packet::new_checked_quote(quote).map_err(|_| WireError::BadQuote)?;
    let end = (ipv6::HEADER_LEN + q.payload_len()).min(quote.len());
    let payload = &quote[ipv6::HEADER_LEN..end];
    let ul = match ipv6::upper_layer(q.next_header(), payload, true) {
        Ok(ul) => ul,
        Err(WireError::Unsupported) => return Ok(None),
        Err(_) => return Err(WireError::BadQuote),
    };
    let t = &payload[ul.offset..];
    let Some((proto, src_port, dst_port, seq)) = quoted_transport(ul.protocol, t)? else {
        return Ok(None);
    };
    Ok(Some(Quoted {
        src: IpAddr::V6(q.src_addr()),
        dst: IpAddr::V6(q.dst_addr()),
        proto,
        src_port,
        dst_port,
        seq,
        ip_id: None,
        flow_label: Some(q.flow_label()),
        transport: t,
    }))
}

// ---------------------------------------------------------------------------
// Building.

/// The IP layer of a packet to build, either family. Fields of the other
/// family are ignored (`ident` over IPv6, `flow_label` over IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRepr {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub hop_limit: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// IPv6 flow label (20 bits).
    pub flow_label: u32,
}

impl IpRepr {
    /// A probe's IP layer: hop limit [`super::PROBE_HOP_LIMIT`] (and DF set
    /// over IPv4, as every IPv4 packet `emit_packet` writes).
    pub fn probe(src: IpAddr, dst: IpAddr, ident: u16, flow_label: u32) -> IpRepr {
        IpRepr {
            src,
            dst,
            hop_limit: super::PROBE_HOP_LIMIT,
            ident,
            flow_label,
        }
    }

    pub fn header_len(&self) -> usize {
        match self.src {
            IpAddr::V4(_) => ipv4::HEADER_LEN,
            IpAddr::V6(_) => ipv6::HEADER_LEN,
        }
    }
}

/// The transport layer of a packet to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(tcp::Repr),
    Udp(udp::Repr<'a>),
    Icmpv4(icmpv4::Repr<'a>),
    Icmpv6(icmpv6::Repr<'a>),
}

impl Transport<'_> {
    pub fn protocol(&self) -> u8 {
        match self {
            Transport::Tcp(_) => proto::TCP,
            Transport::Udp(_) => proto::UDP,
            Transport::Icmpv4(_) => proto::ICMP,
            Transport::Icmpv6(_) => proto::ICMPV6,
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Transport::Tcp(t) => t.header_len(),
            Transport::Udp(u) => u.buffer_len(),
            Transport::Icmpv4(m) => m.buffer_len(),
            Transport::Icmpv6(m) => m.buffer_len(),
        }
    }

    /// Write the transport bytes alone into `buf` (what a raw IPv6 socket
    /// sends: the kernel adds the IPv6 header), checksum for `src` → `dst`.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize, BuildError> {
        match (self, src, dst) {
            (Transport::Tcp(t), _, _) => t.emit(buf, src, dst),
            (Transport::Udp(u), _, _) => u.emit(buf, src, dst),
            (Transport::Icmpv4(m), IpAddr::V4(_), IpAddr::V4(_)) => m.emit(buf),
            (Transport::Icmpv6(m), IpAddr::V6(s), IpAddr::V6(d)) => m.emit(buf, s, d),
            _ => Err(BuildError::FamilyMismatch),
        }
    }
}

/// Build a whole packet (IP header first, as a raw IPv4 socket with
/// IP_HDRINCL or an IPv6 one with IPV6_HDRINCL sends it) into `buf`;
/// returns its length. Pure: no socket, clock or randomness.
pub fn emit_packet(buf: &mut [u8], ip: &IpRepr, t: &Transport<'_>) -> Result<usize, BuildError> {
    let hdr = ip.header_len();
    let total = hdr + t.buffer_len();
    if buf.len() < total {
        return Err(BuildError::BufferTooSmall {
            need: total,
            have: buf.len(),
        });
    }
    let (head, rest) = buf.split_at_mut(hdr);
    let n = t.emit(rest, ip.src, ip.dst)?;
    match (ip.src, ip.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
            src,
            dst,
            protocol: t.protocol(),
            payload_len: n,
            ttl: ip.hop_limit,
            ident: ip.ident,
            dont_frag: true,
        }
        .emit(head)?,
        (IpAddr::V6(src), IpAddr::V6(dst)) => ipv6::Repr {
            src,
            dst,
            next_header: t.protocol(),
            payload_len: n,
            hop_limit: ip.hop_limit,
            traffic_class: 0,
            flow_label: ip.flow_label,
        }
        .emit(head)?,
        _ => return Err(BuildError::FamilyMismatch),
    };
    Ok(hdr + n)
}
