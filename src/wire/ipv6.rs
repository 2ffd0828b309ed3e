//! IPv6 headers (RFC 8200) and extension-header skipping: what AF_PACKET
//! delivers (raw IPv6 sockets strip the header; see `packet` for that
//! path), and the packet quoted inside an ICMPv6 error.
//!
//! Invariants: `Packet::new_checked` guarantees version 6, the 40-byte
//! header, and 40 + payload length <= buffer length; `new_checked_quote`
//! relaxes only the last bound. [`upper_layer`] walks at most
//! [`MAX_EXTENSION_HEADERS`] extension headers, each bounds-checked, and
//! refuses a hop-by-hop header anywhere but first: a chain of any length
//! or shape ends in a protocol and an in-bounds offset, or an error.

use std::net::Ipv6Addr;

use super::{BuildError, WireError, be16, be32, len16, room};

pub(super) mod field {
    use std::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

pub const HEADER_LEN: usize = field::DST.end;

/// Extension headers rawscan steps over.
pub mod ext {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AUTH: u8 = 51;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// Longest extension-header chain [`upper_layer`] follows. Real traffic
/// carries at most a few; anything longer is refused, not walked.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// A checked view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A received packet: the whole payload must be in `buffer`.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        Self::check(buffer, true)
    }

    /// The copy an ICMPv6 error quotes: the payload may be cut short.
    pub fn new_checked_quote(buffer: T) -> Result<Self, WireError> {
        Self::check(buffer, false)
    }

    fn check(buffer: T, whole: bool) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        let len = usize::from(be16(b, field::LENGTH.start));
        if whole && HEADER_LEN + len > b.len() {
            return Err(WireError::BadPayloadLength);
        }
        Ok(Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    pub fn traffic_class(&self) -> u8 {
        ((be32(self.b(), field::VER_TC_FLOW.start) >> 20) & 0xff) as u8
    }
    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        be32(self.b(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.b(), field::LENGTH.start))
    }
    pub fn next_header(&self) -> u8 {
        self.b()[field::NXT_HDR]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.b()[field::SRC])
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.b()[field::DST])
    }
    /// The bytes after the fixed header (extension headers included), up
    /// to the payload length or the end of the buffer.
    pub fn payload(&self) -> &[u8] {
        let end = (HEADER_LEN + self.payload_len()).min(self.b().len());
        &self.b()[HEADER_LEN..end]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
    Ipv6Addr::from(a)
}

/// Where the upper-layer header starts, after the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (TCP 6, UDP 17, ICMPv6 58, ...).
    pub protocol: u8,
    /// Offset of its header in the payload handed to [`upper_layer`].
    pub offset: usize,
}

/// Skip the extension headers of `payload` (the bytes after the fixed
/// header), starting from the fixed header's next-header value `first`.
///
/// Fragments: a non-first fragment is refused (`Fragment`); a first
/// fragment is refused too unless `allow_first_fragment` (quotes: the
/// transport header we need is in the first fragment). A chain longer than
/// [`MAX_EXTENSION_HEADERS`], a hop-by-hop header that is not first, or a
/// header running past the buffer gives `BadExtensionHeader`; ESP and "no
/// next header" give `Unsupported`.
pub fn upper_layer(
    first: u8,
    payload: &[u8],
    allow_first_fragment: bool,
) -> Result<UpperLayer, WireError> {
    let mut next = first;
    let mut at = 0usize;
    for i in 0..=MAX_EXTENSION_HEADERS {
        let len = match next {
            ext::HOP_BY_HOP if i > 0 => return Err(WireError::BadExtensionHeader),
            ext::HOP_BY_HOP
            | ext::ROUTING
            | ext::DEST_OPTS
            | ext::MOBILITY
            | ext::HIP
            | ext::SHIM6 => {
                let l = *payload.get(at + 1).ok_or(WireError::BadExtensionHeader)?;
                (usize::from(l) + 1) * 8
            }
            ext::AUTH => {
                let l = *payload.get(at + 1).ok_or(WireError::BadExtensionHeader)?;
                (usize::from(l) + 2) * 4
            }
            ext::FRAGMENT => {
                let f = payload
                    .get(at..at + 8)
                    .ok_or(WireError::BadExtensionHeader)?;
                let off_m = be16(f, 2);
                if off_m & 0xfff8 != 0 || (off_m & 1 != 0 && !allow_first_fragment) {
                    return Err(WireError::Fragment);
                }
                8
            }
            ext::ESP | ext::NO_NEXT_HEADER => return Err(WireError::Unsupported),
            protocol => {
                return Ok(UpperLayer {
                    protocol,
                    offset: at,
                });
            }
        };
        if i == MAX_EXTENSION_HEADERS {
            break;
        }
        let hdr = payload
            .get(at..at + len)
            .ok_or(WireError::BadExtensionHeader)?;
        next = hdr[0];
        at += len;
    }
    Err(WireError::BadExtensionHeader)
}

/// The fields of an IPv6 header rawscan reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits; higher bits are ignored by `emit`.
    pub flow_label: u32,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        }
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the 40-byte header into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let len = len16(self.payload_len)?;
        let b = room(buf, HEADER_LEN)?;
        let w = 6 << 28 | u32::from(self.traffic_class) << 20 | (self.flow_label & 0x000f_ffff);
        b[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
        b[field::LENGTH].copy_from_slice(&len.to_be_bytes());
        b[field::NXT_HDR] = self.next_header;
        b[field::HOP_LIMIT] = self.hop_limit;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(next: u8, len: usize) -> Repr {
        Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: next,
            payload_len: len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0xabcde,
        }
    }

    #[test]
    fn round_trip() {
        let mut b = vec![0u8; 48];
        repr(17, 8).emit(&mut b).unwrap();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), repr(17, 8));
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.flow_label(), 0xabcde);
    }

    #[test]
    fn lengths_are_checked() {
        let mut b = vec![0u8; 48];
        repr(17, 8).emit(&mut b).unwrap();
        for n in 0..40 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        for n in 40..48 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::BadPayloadLength)
            );
            assert_eq!(
                Packet::new_checked_quote(&b[..n]).unwrap().payload().len(),
                n - 40
            );
        }
        b[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::BadVersion)
        );
    }

    #[test]
    fn extension_headers_are_skipped() {
        // Hop-by-hop (8 bytes) → destination options (16) → fragment (8,
        // offset 0, M=0) → UDP.
        let mut p = vec![ext::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        p.extend_from_slice(&[ext::FRAGMENT, 1]);
        p.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]);
        assert_eq!(
            upper_layer(ext::HOP_BY_HOP, &p, false),
            Ok(UpperLayer {
                protocol: 17,
                offset: 32
            })
        );
        // AH counts in 4-byte units, plus 2.
        let ah = [6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            upper_layer(ext::AUTH, &ah, false),
            Ok(UpperLayer {
                protocol: 6,
                offset: 12
            })
        );
    }

    #[test]
    fn bad_chains_are_refused() {
        // Truncated at every length.
        let p = [ext::ROUTING, 1, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        for n in 0..p.len() {
            assert_eq!(
                upper_layer(ext::DEST_OPTS, &p[..n], false),
                Err(WireError::BadExtensionHeader),
                "cut at {n}"
            );
        }
        // A chain of destination options that never ends ("loops" back to
        // itself): refused after MAX_EXTENSION_HEADERS.
        let lots = [ext::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(100);
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &lots, false),
            Err(WireError::BadExtensionHeader)
        );
        // Exactly MAX_EXTENSION_HEADERS headers is fine.
        let mut ok = [ext::DEST_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_EXTENSION_HEADERS - 1);
        ok.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &ok, false),
            Ok(UpperLayer {
                protocol: 6,
                offset: 8 * MAX_EXTENSION_HEADERS
            })
        );
        // Hop-by-hop after the first header.
        let hbh = [ext::HOP_BY_HOP, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &hbh, false),
            Err(WireError::BadExtensionHeader)
        );
        // Fragments: non-first always refused, first only for quotes.
        let first = [17, 0, 0, 1, 0, 0, 0, 9];
        assert_eq!(
            upper_layer(ext::FRAGMENT, &first, false),
            Err(WireError::Fragment)
        );
        assert_eq!(
            upper_layer(ext::FRAGMENT, &first, true),
            Ok(UpperLayer {
                protocol: 17,
                offset: 8
            })
        );
        let later = [17, 0, 0, 8, 0, 0, 0, 9];
        assert_eq!(
            upper_layer(ext::FRAGMENT, &later, true),
            Err(WireError::Fragment)
        );
        assert_eq!(
            upper_layer(ext::ESP, &[0; 16], false),
            Err(WireError::Unsupported)
        );
        assert_eq!(
            upper_layer(ext::NO_NEXT_HEADER, &[], false),
            Err(WireError::Unsupported)
        );
    }
}
