//! ARP over Ethernet for IPv4 (RFC 826): requests and replies, for host
//! discovery on a local link.
//!
//! Invariants: `Packet::new_checked` checks the fixed 8 bytes and then that
//! the buffer holds both address pairs at the sizes the packet declares;
//! `Repr::parse` accepts only hardware type Ethernet (1) with 6-byte
//! addresses and protocol IPv4 (0x0800) with 4-byte addresses.

use std::net::Ipv4Addr;

use super::ethernet::{EthernetAddress, ethertype};
use super::{BuildError, WireError, be16, room};

mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    /// Variable part starts here: SHA, SPA, THA, TPA.
    pub const ADDRS: usize = 8;
    // For Ethernet/IPv4 (hlen 6, plen 4):
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;
const HTYPE_ETHERNET: u16 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            o => Operation::Unknown(o),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A checked view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Check the fixed part and that both address pairs fit.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < field::ADDRS {
            return Err(WireError::Truncated);
        }
        let need = field::ADDRS + 2 * (usize::from(b[field::HLEN]) + usize::from(b[field::PLEN]));
        if b.len() < need {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }

    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE.start)
    }
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE.start)
    }
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    pub fn operation(&self) -> Operation {
        be16(self.buffer.as_ref(), field::OPER.start).into()
    }
}

/// An Ethernet/IPv4 ARP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

fn ipv4_at(b: &[u8], r: std::ops::Range<usize>) -> Ipv4Addr {
    let a: [u8; 4] = b.get(r).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]);
    Ipv4Addr::from(a)
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != ethertype::IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        // new_checked saw 8 + 2 * (6 + 4) = 28 bytes.
        let b = p.buffer.as_ref();
        let mac = |r: std::ops::Range<usize>| {
            b.get(r)
                .and_then(EthernetAddress::from_bytes)
                .unwrap_or_default()
        };
        Ok(Repr {
            operation: p.operation(),
            source_hardware_addr: mac(field::SHA),
            source_protocol_addr: ipv4_at(b, field::SPA),
            target_hardware_addr: mac(field::THA),
            target_protocol_addr: ipv4_at(b, field::TPA),
        })
    }

    /// Write the 28-byte packet into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let b = room(buf, PACKET_LEN)?;
        b[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        b[field::SHA].copy_from_slice(&self.source_hardware_addr.0);
        b[field::SPA].copy_from_slice(&self.source_protocol_addr.octets());
        b[field::THA].copy_from_slice(&self.target_hardware_addr.0);
        b[field::TPA].copy_from_slice(&self.target_protocol_addr.octets());
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Repr {
        Repr {
            operation: Operation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: Ipv4Addr::new(198, 18, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(198, 18, 0, 2),
        }
    }

    #[test]
    fn round_trip() {
        let mut b = [0u8; 28];
        assert_eq!(request().emit(&mut b), Ok(28));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(request()));
    }

    #[test]
    fn short_or_foreign_packets_are_rejected() {
        let mut b = [0u8; 28];
        request().emit(&mut b).unwrap();
        for n in 0..28 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        // Declared address sizes larger than the buffer.
        let mut big = b;
        big[4] = 255;
        assert_eq!(
            Packet::new_checked(&big[..]).err(),
            Some(WireError::Truncated)
        );
        // Another hardware type, or IPv6-sized protocol addresses.
        let mut other = b;
        other[1] = 6;
        let p = Packet::new_checked(&other[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::Unsupported));
        let mut small = b;
        small[5] = 2; // plen 2: fits, but not IPv4
        let p = Packet::new_checked(&small[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::Unsupported));
    }
}
