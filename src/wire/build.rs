//! Pure packet builders: IPv4 + TCP, IPv4 + UDP, and ICMP errors (the last
//! for tests and fixtures). Each writes into the caller's buffer and returns
//! the packet length.

use std::net::Ipv4Addr;

use pnet_packet::icmp::{IcmpCode, IcmpType, MutableIcmpPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::{self, MutableIpv4Packet};
use pnet_packet::tcp::{self, MutableTcpPacket, TcpOption};
use pnet_packet::udp::{self, MutableUdpPacket};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The caller's buffer cannot hold the packet.
    BufferTooSmall { need: usize, have: usize },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::BufferTooSmall { need, have } => {
                write!(f, "packet needs {need} bytes, buffer has {have}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// A TCP segment to build. Probes are `flags::SYN` with `ack` 0 and an MSS
/// option; tests build replies (SYN-ACK, RST) with the same function.
#[derive(Clone, Copy, Debug)]
pub struct TcpSpec {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub ttl: u8,
    pub ip_id: u16,
    /// Add an MSS option (as real stacks and nmap do on a SYN).
    pub mss: Option<u16>,
}

#[derive(Clone, Copy, Debug)]
pub struct UdpSpec {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub ttl: u8,
    pub ip_id: u16,
}

/// An ICMP error (type 3 or 11) quoting `quote` (an IP header and at least
/// 8 bytes of what followed).
#[derive(Clone, Copy, Debug)]
pub struct IcmpErrorSpec {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub icmp_type: u8,
    pub code: u8,
    pub ttl: u8,
}

const IP_HDR: usize = 20;

fn check(buf: &[u8], need: usize) -> Result<(), BuildError> {
    if buf.len() < need {
        Err(BuildError::BufferTooSmall {
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

fn ip_header(
    buf: &mut [u8],
    total: usize,
    proto: pnet_packet::ip::IpNextHeaderProtocol,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
) {
    // Callers checked `buf.len() >= total >= IP_HDR`.
    if let Some(mut ip) = MutableIpv4Packet::new(&mut buf[..IP_HDR]) {
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_total_length(total as u16);
        ip.set_identification(id);
        ip.set_flags(ipv4::Ipv4Flags::DontFragment);
        ip.set_fragment_offset(0);
        ip.set_ttl(ttl);
        ip.set_next_level_protocol(proto);
        ip.set_source(src);
        ip.set_destination(dst);
        ip.set_checksum(0);
        let sum = ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(sum);
    }
}

/// Build IPv4 + TCP into `buf`; returns the length written.
pub fn build_tcp_v4(buf: &mut [u8], s: &TcpSpec) -> Result<usize, BuildError> {
    let opt_len = if s.mss.is_some() { 4 } else { 0 };
    let tcp_len = 20 + opt_len;
    let total = IP_HDR + tcp_len;
    check(buf, total)?;
    ip_header(
        buf,
        total,
        IpNextHeaderProtocols::Tcp,
        s.src,
        s.dst,
        s.ttl,
        s.ip_id,
    );
    if let Some(mut t) = MutableTcpPacket::new(&mut buf[IP_HDR..total]) {
        t.set_source(s.src_port);
        t.set_destination(s.dst_port);
        t.set_sequence(s.seq);
        t.set_acknowledgement(s.ack);
        t.set_data_offset((tcp_len / 4) as u8);
        t.set_reserved(0);
        t.set_flags(s.flags);
        t.set_window(s.window);
        t.set_urgent_ptr(0);
        if let Some(mss) = s.mss {
            t.set_options(&[TcpOption::mss(mss)]);
        }
        t.set_checksum(0);
        let sum = tcp::ipv4_checksum(&t.to_immutable(), &s.src, &s.dst);
        t.set_checksum(sum);
    }
    Ok(total)
}

/// Build IPv4 + UDP carrying `payload` into `buf`; returns the length written.
pub fn build_udp_v4(buf: &mut [u8], s: &UdpSpec, payload: &[u8]) -> Result<usize, BuildError> {
    let udp_len = 8 + payload.len();
    let total = IP_HDR + udp_len;
    if total > usize::from(u16::MAX) {
        return Err(BuildError::BufferTooSmall {
            need: total,
            have: usize::from(u16::MAX),
        });
    }
    check(buf, total)?;
    ip_header(
        buf,
        total,
        IpNextHeaderProtocols::Udp,
        s.src,
        s.dst,
        s.ttl,
        s.ip_id,
    );
    if let Some(mut u) = MutableUdpPacket::new(&mut buf[IP_HDR..total]) {
        u.set_source(s.src_port);
        u.set_destination(s.dst_port);
        u.set_length(udp_len as u16);
        u.set_payload(payload);
        u.set_checksum(0);
        let sum = udp::ipv4_checksum(&u.to_immutable(), &s.src, &s.dst);
        u.set_checksum(sum);
    }
    Ok(total)
}

/// Build an IPv4 ICMP error quoting `quote`; returns the length written.
pub fn build_icmp_error_v4(
    buf: &mut [u8],
    s: &IcmpErrorSpec,
    quote: &[u8],
) -> Result<usize, BuildError> {
    let icmp_len = 8 + quote.len();
    let total = IP_HDR + icmp_len;
    check(buf, total)?;
    ip_header(
        buf,
        total,
        IpNextHeaderProtocols::Icmp,
        s.src,
        s.dst,
        s.ttl,
        0,
    );
    if let Some(mut m) = MutableIcmpPacket::new(&mut buf[IP_HDR..total]) {
        m.set_icmp_type(IcmpType(s.icmp_type));
        m.set_icmp_code(IcmpCode(s.code));
        m.set_checksum(0);
        // Bytes 4..8 (unused / next-hop MTU) stay zero.
        m.set_payload(&[0u8; 4].iter().chain(quote).copied().collect::<Vec<u8>>());
        let sum = pnet_packet::icmp::checksum(&m.to_immutable());
        m.set_checksum(sum);
    }
    Ok(total)
}
