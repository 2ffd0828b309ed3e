//! Packets on the wire, one file per protocol (smoltcp's layout): the only
//! place bytes from the network are interpreted and probes are laid out.
//!
//! Each protocol file has the same shape:
//! - a private `field` module: every offset of the header, in one place;
//! - `Packet<T: AsRef<[u8]>>`, a view over a byte buffer whose
//!   `new_checked` validates every length the view will read before any
//!   field is read (accessors then index only inside checked bounds);
//! - a `Repr` with `parse` (view → plain values) and `emit` (values →
//!   bytes in a buffer the caller owns, with the checksum filled).
//!
//! Files: [`ethernet`], [`arp`] (Ethernet/IPv4), [`ipv4`], [`ipv6`] (with
//! bounded extension-header skipping), [`tcp`], [`udp`], [`icmpv4`],
//! [`icmpv6`] (errors, echo, NDP), [`checksum`], [`template`] (prebuilt TCP probes), [`payloads`] (the UDP probe
//! payload table), [`tftp`] (what a TFTP server answers from its new port), and [`packet`]: the top-level parse of what a socket
//! delivers (an IPv4 packet, a full IPv6 packet, an IPv6 transport payload
//! with its addresses from ancillary data, or an Ethernet frame) into one
//! [`Packet`] enum covering both families, and [`emit_packet`] to build a
//! whole probe.
//!
//! Invariants:
//! - Parsing never panics, whatever the bytes: lengths first, then fields.
//!   Parsers do not verify transport checksums (frames crossing a veth
//!   carry partial checksums, and a forger can compute a right one anyway);
//!   each view offers `verify_checksum` for tests and callers who want it.
//! - Building is pure: emitters write into the caller's buffer and hold no
//!   socket, clock or random number generator.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod packet;
pub mod payloads;
pub mod tcp;
pub mod template;
pub mod tftp;
pub mod udp;

pub use packet::{
    Frame, IcmpError, IcmpErrorKind, IcmpInfo, IcmpMessage, IpInfo, IpRepr, Ipv6Meta, Packet,
    Quoted, TcpInfo, Transport, UdpInfo, emit_packet, parse_frame, parse_ip, parse_ipv4,
    parse_ipv6, parse_ipv6_payload,
};

/// Hop limit (IPv4 TTL) of every probe rawscan sends, both families.
pub const PROBE_HOP_LIMIT: u8 = 64;

/// IP protocol numbers (IPv4 protocol, IPv6 next header).
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Why a buffer was rejected. Each becomes a counter, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Shorter than the header (or fixed part) it claims to hold.
    Truncated,
    /// IP version field is not the one the parser was asked for.
    BadVersion,
    /// IPv4 IHL below 5 or beyond the buffer.
    BadIhl,
    /// IPv4 total length below the header or beyond the buffer.
    BadTotalLength,
    /// IPv6 payload length beyond the buffer.
    BadPayloadLength,
    /// An IPv6 extension header cut short, out of place, or one too many.
    BadExtensionHeader,
    /// TCP data offset below 5 or beyond the segment.
    BadDataOffset,
    /// UDP length field below 8 or beyond the datagram.
    BadUdpLength,
    /// A TCP or NDP option with an impossible length.
    BadOption,
    /// A message too short for its type (ICMP timestamp, NDP, ARP sizes).
    BadLength,
    /// An ICMP error whose quoted header is cut short or malformed.
    BadQuote,
    /// A fragment: the transport header may be missing or partial.
    Fragment,
    /// Well-formed, but a protocol or layout rawscan does not parse.
    Unsupported,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for WireError {}

/// Why a packet could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The caller's buffer cannot hold the packet.
    BufferTooSmall { need: usize, have: usize },
    /// The packet would exceed its length field (65,535 bytes).
    TooLong { len: usize },
    /// Source and destination are of different IP families.
    FamilyMismatch,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::BufferTooSmall { need, have } => {
                write!(f, "packet needs {need} bytes, buffer has {have}")
            }
            BuildError::TooLong { len } => write!(f, "packet of {len} bytes exceeds 65535"),
            BuildError::FamilyMismatch => write!(f, "source and destination families differ"),
        }
    }
}

impl std::error::Error for BuildError {}

/// `buf[..need]`, or `BufferTooSmall`.
fn room(buf: &mut [u8], need: usize) -> Result<&mut [u8], BuildError> {
    let have = buf.len();
    buf.get_mut(..need)
        .ok_or(BuildError::BufferTooSmall { need, have })
}

/// A length that must fit a 16-bit length field.
fn len16(len: usize) -> Result<u16, BuildError> {
    u16::try_from(len).map_err(|_| BuildError::TooLong { len })
}

/// Read a big-endian u16 at `at` (callers checked the bounds).
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Read a big-endian u32 at `at` (callers checked the bounds).
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod malformed;
