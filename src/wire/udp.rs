//! UDP datagrams (RFC 768): probes and the replies of UDP services.
//!
//! Invariants: `Packet::new_checked` guarantees the 8-byte header and
//! 8 <= length field <= buffer length; the payload ends at the length
//! field (bytes past it, e.g. Ethernet padding, are not payload).

use std::net::IpAddr;

use super::{BuildError, WireError, be16, checksum, len16, proto, room};

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const PAYLOAD: usize = 8;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// A checked view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(be16(b, field::LENGTH.start));
        if len < HEADER_LEN || len > b.len() {
            return Err(WireError::BadUdpLength);
        }
        Ok(Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        be16(self.b(), field::SRC_PORT.start)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), field::DST_PORT.start)
    }
    pub fn len(&self) -> usize {
        usize::from(be16(self.b(), field::LENGTH.start))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM.start)
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[field::PAYLOAD..self.len()]
    }
    /// The checksum verifies for `src` → `dst`. A zero checksum means "none"
    /// over IPv4 (accepted) and is invalid over IPv6 (RFC 8200 §8.1).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        checksum::verify_transport(src, dst, proto::UDP, &self.b()[..self.len()])
    }
}

/// A UDP datagram: ports and the payload it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    pub fn parse(p: &Packet<&'a [u8]>) -> Repr<'a> {
        let b: &'a [u8] = p.buffer;
        let len = usize::from(be16(b, field::LENGTH.start));
        Repr {
            src_port: be16(b, field::SRC_PORT.start),
            dst_port: be16(b, field::DST_PORT.start),
            payload: &b[field::PAYLOAD..len],
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Write header and payload into `buf` with the checksum for
    /// `src` → `dst` (a computed 0 is sent as 0xffff); returns the length.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize, BuildError> {
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(BuildError::FamilyMismatch);
        }
        let len = self.buffer_len();
        let len16 = len16(len)?;
        let b = room(buf, len)?;
        b[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        b[field::LENGTH].copy_from_slice(&len16.to_be_bytes());
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        b[field::PAYLOAD..].copy_from_slice(self.payload);
        let sum = match checksum::transport(src, dst, proto::UDP, b) {
            0 => 0xffff,
            s => s,
        };
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_families() {
        for (s, d) in [("198.18.0.1", "198.18.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let r = Repr {
                src_port: 5000,
                dst_port: 53,
                payload: b"hello",
            };
            let mut b = [0u8; 32];
            let n = r.emit(&mut b, s, d).unwrap();
            let p = Packet::new_checked(&b[..n]).unwrap();
            assert!(p.verify_checksum(s, d));
            assert_eq!(Repr::parse(&p), r);
        }
    }

    #[test]
    fn lengths_are_checked() {
        let s: IpAddr = "198.18.0.1".parse().unwrap();
        let mut b = [0u8; 16];
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            payload: b"abcd",
        };
        let n = r.emit(&mut b, s, s).unwrap();
        for k in 0..8 {
            assert_eq!(
                Packet::new_checked(&b[..k]).err(),
                Some(WireError::Truncated)
            );
        }
        for k in 8..n {
            assert_eq!(
                Packet::new_checked(&b[..k]).err(),
                Some(WireError::BadUdpLength)
            );
        }
        let mut bad = b;
        bad[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::BadUdpLength)
        );
        // Bytes past the length field are not payload.
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), b"abcd");
        // Zero checksum: "none" over IPv4, invalid over IPv6.
        let mut z = b;
        z[6..8].copy_from_slice(&[0, 0]);
        let p = Packet::new_checked(&z[..n]).unwrap();
        assert!(p.verify_checksum(s, s));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(!p.verify_checksum(v6, v6));
    }
}
