//! Length-checked parsing of received IPv4 packets (TCP, UDP, ICMP errors).

use std::net::IpAddr;

use pnet_packet::icmp::IcmpPacket;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;

use crate::probe::{IcmpKind, Proto};

/// Why a buffer was rejected. Each becomes a counter, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Shorter than the header it claims to hold.
    Truncated,
    /// IP version is neither 4 nor (later) 6.
    BadVersion,
    /// IPv4 IHL below 5 or beyond the buffer.
    BadIhl,
    /// IPv4 total length below the header or beyond the buffer.
    BadTotalLength,
    /// TCP data offset below 5 or beyond the segment.
    BadDataOffset,
    /// UDP length field below 8 or beyond the datagram.
    BadUdpLength,
    /// An ICMP error whose quoted header is cut short or malformed.
    BadQuote,
    /// A non-first fragment, or a first fragment: ports may be missing.
    Fragment,
    /// A protocol the scanner never probes (or IPv6, not parsed yet).
    Unsupported,
}

/// The parts of an IP header a scanner cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub id: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub ip: IpInfo,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpInfo<'a> {
    pub ip: IpInfo,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// The header an ICMP error quotes: the probe it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u16,
    pub proto: Proto,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP sequence number (the quote's 8 bytes include it); None for UDP.
    pub seq: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    pub ip: IpInfo,
    pub kind: IcmpKind,
    pub quoted: Quoted,
}

/// A parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Tcp(TcpInfo),
    Udp(UdpInfo<'a>),
    IcmpError(IcmpError),
    /// Well-formed ICMP that is not an error we act on (echo, redirect...).
    IcmpOther,
}

/// A checked IPv4 header: `header_len` bytes of header, then `payload`.
struct Ipv4Checked<'a> {
    info: IpInfo,
    proto: u8,
    payload: &'a [u8],
}

/// Check an IPv4 header. With `strict_total`, the total length must fit in
/// `buf` (a received packet); without, the payload is whatever `buf` holds
/// past the header (the truncated copy quoted inside an ICMP error).
fn ipv4(buf: &[u8], strict_total: bool) -> Result<Ipv4Checked<'_>, WireError> {
    if buf.len() < 20 {
        return Err(WireError::Truncated);
    }
    if buf[0] >> 4 != 4 {
        return Err(WireError::BadVersion);
    }
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    if ihl < 20 || ihl > buf.len() {
        return Err(WireError::BadIhl);
    }
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let end = if strict_total {
        if total < ihl || total > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        total
    } else {
        if total < ihl {
            return Err(WireError::BadTotalLength);
        }
        total.min(buf.len())
    };
    let view = Ipv4Packet::new(&buf[..ihl]).ok_or(WireError::Truncated)?;
    let frag = u16::from_be_bytes([buf[6], buf[7]]);
    let more_fragments = frag & 0x2000 != 0;
    if frag & 0x1fff != 0 || (strict_total && more_fragments) {
        return Err(WireError::Fragment);
    }
    Ok(Ipv4Checked {
        info: IpInfo {
            src: IpAddr::V4(view.get_source()),
            dst: IpAddr::V4(view.get_destination()),
            ttl: view.get_ttl(),
            id: view.get_identification(),
        },
        proto: view.get_next_level_protocol().0,
        payload: &buf[ihl..end],
    })
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn tcp(ip: IpInfo, seg: &[u8]) -> Result<TcpInfo, WireError> {
    if seg.len() < 20 {
        return Err(WireError::Truncated);
    }
    let doff = usize::from(seg[12] >> 4) * 4;
    if doff < 20 || doff > seg.len() {
        return Err(WireError::BadDataOffset);
    }
    let v = TcpPacket::new(&seg[..doff]).ok_or(WireError::Truncated)?;
    Ok(TcpInfo {
        ip,
        src_port: v.get_source(),
        dst_port: v.get_destination(),
        seq: v.get_sequence(),
        ack: v.get_acknowledgement(),
        flags: v.get_flags(),
    })
}

fn udp(ip: IpInfo, dgram: &[u8]) -> Result<UdpInfo<'_>, WireError> {
    if dgram.len() < 8 {
        return Err(WireError::Truncated);
    }
    let len = usize::from(u16::from_be_bytes([dgram[4], dgram[5]]));
    if len < 8 || len > dgram.len() {
        return Err(WireError::BadUdpLength);
    }
    let v = UdpPacket::new(&dgram[..8]).ok_or(WireError::Truncated)?;
    Ok(UdpInfo {
        ip,
        src_port: v.get_source(),
        dst_port: v.get_destination(),
        payload: &dgram[8..len],
    })
}

fn quoted(quote: &[u8]) -> Result<Quoted, WireError> {
    let q = ipv4(quote, false).map_err(|_| WireError::BadQuote)?;
    // RFC 792: the quote holds the IP header and at least 8 bytes after it.
    if q.payload.len() < 8 {
        return Err(WireError::BadQuote);
    }
    let p = q.payload;
    let src_port = u16::from_be_bytes([p[0], p[1]]);
    let dst_port = u16::from_be_bytes([p[2], p[3]]);
    let (proto, seq) = match q.proto {
        PROTO_TCP => (
            Proto::Tcp,
            Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]])),
        ),
        PROTO_UDP => (Proto::Udp, None),
        _ => return Err(WireError::Unsupported),
    };
    Ok(Quoted {
        src: q.info.src,
        dst: q.info.dst,
        id: q.info.id,
        proto,
        src_port,
        dst_port,
        seq,
    })
}

fn icmp(ip: IpInfo, msg: &[u8]) -> Result<Packet<'_>, WireError> {
    if msg.len() < 8 {
        return Err(WireError::Truncated);
    }
    let v = IcmpPacket::new(&msg[..8]).ok_or(WireError::Truncated)?;
    let kind = match (v.get_icmp_type().0, v.get_icmp_code().0) {
        (3, code) => IcmpKind::Unreach(code),
        (11, _) => IcmpKind::TimeExceeded,
        _ => return Ok(Packet::IcmpOther),
    };
    Ok(Packet::IcmpError(IcmpError {
        ip,
        kind,
        quoted: quoted(&msg[8..])?,
    }))
}

/// Parse one received IP packet (as a raw socket delivers it, IP header
/// first). Never panics, whatever the bytes.
pub fn parse_ip(buf: &[u8]) -> Result<Packet<'_>, WireError> {
    let ip = match buf.first().map(|b| b >> 4) {
        None => return Err(WireError::Truncated),
        Some(4) => ipv4(buf, true)?,
        Some(6) => return Err(WireError::Unsupported),
        Some(_) => return Err(WireError::BadVersion),
    };
    match ip.proto {
        PROTO_TCP => tcp(ip.info, ip.payload).map(Packet::Tcp),
        PROTO_UDP => udp(ip.info, ip.payload).map(Packet::Udp),
        PROTO_ICMP => icmp(ip.info, ip.payload),
        _ => Err(WireError::Unsupported),
    }
}
