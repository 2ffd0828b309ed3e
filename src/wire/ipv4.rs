//! IPv4 headers (RFC 791): what a raw IPv4 socket delivers, and the header
//! quoted inside an ICMP error.
//!
//! Invariants: `Packet::new_checked` guarantees version 4, 5 <= IHL, the
//! header inside the buffer, and IHL <= total length <= buffer length;
//! `new_checked_quote` relaxes only the last bound (an ICMP error quotes a
//! truncated copy). Options are skipped, never interpreted.

use std::net::Ipv4Addr;

use super::{BuildError, WireError, be16, checksum, len16, room};

pub(super) mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST.end;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A checked view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A received packet: the whole of it (total length) must be in `buffer`.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        Self::check(buffer, true)
    }

    /// The copy an ICMP error quotes: the header must be whole, the payload
    /// may be cut short of the total length.
    pub fn new_checked_quote(buffer: T) -> Result<Self, WireError> {
        Self::check(buffer, false)
    }

    fn check(buffer: T, whole: bool) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let ihl = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if ihl < HEADER_LEN || ihl > b.len() {
            return Err(WireError::BadIhl);
        }
        let total = usize::from(be16(b, field::LENGTH.start));
        if total < ihl || (whole && total > b.len()) {
            return Err(WireError::BadTotalLength);
        }
        Ok(Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.b(), field::LENGTH.start))
    }
    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT.start)
    }
    pub fn dont_frag(&self) -> bool {
        be16(self.b(), field::FLG_OFF.start) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        be16(self.b(), field::FLG_OFF.start) & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.b(), field::FLG_OFF.start) & OFFSET_MASK) * 8
    }
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM.start)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.b();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// The header checksum verifies (options included).
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.b()[..self.header_len()])) == 0xffff
    }
    /// The bytes after the header, up to the total length or the end of
    /// the buffer (for a quote), whichever comes first.
    pub fn payload(&self) -> &[u8] {
        let end = self.total_len().min(self.b().len());
        &self.b()[self.header_len()..end]
    }
}

/// The fields of an IPv4 header rawscan reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// Bytes after the header (total length - header length).
    pub payload_len: usize,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Read a header. Fragments are refused: a scanner never sends them, so
    /// any fragment is not a whole reply to a probe.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        if p.more_frags() || p.frag_offset() != 0 {
            return Err(WireError::Fragment);
        }
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len(),
            ttl: p.ttl(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write a 20-byte header (no options) with its checksum into `buf`;
    /// returns the header length. The payload goes after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let total = len16(HEADER_LEN + self.payload_len)?;
        let b = room(buf, HEADER_LEN)?;
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = 0;
        b[field::LENGTH].copy_from_slice(&total.to_be_bytes());
        b[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let flags = if self.dont_frag { FLAG_DF } else { 0 };
        b[field::FLG_OFF].copy_from_slice(&flags.to_be_bytes());
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        let sum = checksum::finish(checksum::sum(b));
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Repr {
        Repr {
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            protocol: 17,
            payload_len: 8,
            ttl: 64,
            ident: 0xbeef,
            dont_frag: true,
        }
    }

    fn bytes() -> Vec<u8> {
        let mut b = vec![0u8; 28];
        repr().emit(&mut b).unwrap();
        b
    }

    #[test]
    fn round_trip() {
        let b = bytes();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p), Ok(repr()));
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn lengths_are_checked() {
        let b = bytes();
        for n in 0..20 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        for n in 20..28 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::BadTotalLength)
            );
            // A quote may stop short of the total length.
            assert_eq!(
                Packet::new_checked_quote(&b[..n]).unwrap().payload().len(),
                n - 20
            );
        }
        let mut bad = b.clone();
        bad[0] = 0x44;
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(WireError::BadIhl));
        bad[0] = 0x48; // 32 > 28
        assert_eq!(Packet::new_checked(&bad[..]).err(), Some(WireError::BadIhl));
        bad[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::BadVersion)
        );
        let mut bad = b.clone();
        bad[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::BadTotalLength)
        );
        assert_eq!(
            Packet::new_checked_quote(&bad[..]).err(),
            Some(WireError::BadTotalLength)
        );
    }

    #[test]
    fn fragments_are_refused() {
        let mut b = bytes();
        b[6] = 0x20; // MF
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::Fragment));
        b[6] = 0x00;
        b[7] = 0x01; // offset 8
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.frag_offset(), 8);
        assert_eq!(Repr::parse(&p), Err(WireError::Fragment));
    }

    #[test]
    fn emit_checks_room_and_length() {
        assert_eq!(
            repr().emit(&mut [0u8; 19]),
            Err(BuildError::BufferTooSmall { need: 20, have: 19 })
        );
        let r = Repr {
            payload_len: 65_516,
            ..repr()
        };
        assert_eq!(
            r.emit(&mut [0u8; 20]),
            Err(BuildError::TooLong { len: 65_536 })
        );
    }
}
