//! Ethernet II frames (IEEE 802.3 with an EtherType): what an AF_PACKET
//! socket delivers, and the carrier of ARP and NDP for host discovery.
//!
//! Invariants: `Frame::new_checked` guarantees the 14-byte header; the
//! payload is whatever follows (a short frame's padding included: inner
//! protocols carry their own lengths). 802.1Q tags are not unwrapped.

use std::fmt;

use super::{BuildError, WireError, be16, room};

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// EtherType values rawscan reads.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// From the first six bytes of `b`, if it has them.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        b.get(..6)?.try_into().ok().map(EthernetAddress)
    }

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A checked view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Check that the header fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Frame { buffer })
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DST]).unwrap_or_default()
    }

    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SRC]).unwrap_or_default()
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

/// An Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: EthernetAddress,
    pub dst: EthernetAddress,
    pub ethertype: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Repr {
        Repr {
            src: frame.src_addr(),
            dst: frame.dst_addr(),
            ethertype: frame.ethertype(),
        }
    }

    /// Write the 14-byte header into `buf`; returns its length. The caller
    /// writes the payload after it.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let b = room(buf, HEADER_LEN)?;
        b[field::DST].copy_from_slice(&self.dst.0);
        b[field::SRC].copy_from_slice(&self.src.0);
        b[field::ETHERTYPE].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_frames() {
        let r = Repr {
            src: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst: EthernetAddress::BROADCAST,
            ethertype: ethertype::ARP,
        };
        let mut b = [0u8; 20];
        assert_eq!(r.emit(&mut b), Ok(14));
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&f), r);
        assert_eq!(f.payload().len(), 6);
        assert!(f.dst_addr().is_multicast());
        assert_eq!(r.src.to_string(), "02:00:00:00:00:01");
        for n in 0..14 {
            assert_eq!(
                Frame::new_checked(&b[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        assert_eq!(
            r.emit(&mut [0u8; 13]),
            Err(BuildError::BufferTooSmall { need: 14, have: 13 })
        );
    }
}
