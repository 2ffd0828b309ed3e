//! TCP segments (RFC 9293): the SYN probe, and the SYN-ACK or RST that
//! answers it; also the 8 bytes of a segment an ICMP error quotes.
//!
//! Invariants: `Packet::new_checked` guarantees the 20-byte header, and a
//! data offset of at least 5 words that lies inside the buffer. Option
//! parsing (`Repr::parse`) is strict: an option running past the header or
//! with a wrong length for its kind is `BadOption`. The top-level parse in
//! `packet` reads only fixed fields, so odd options never hide a reply.
//!
//! The SYN probe's shape is defined here once: [`syn_probe`] (window
//! [`SYN_WINDOW`], one MSS option of [`SYN_MSS`]), sent with hop limit
//! [`super::PROBE_HOP_LIMIT`] and, over IPv4, DF set.

use std::net::IpAddr;

use super::{BuildError, WireError, be16, be32, checksum, proto, room};

pub(super) mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// Window of the SYN probe (nmap's `-sS` default too).
pub const SYN_WINDOW: u16 = 1024;
/// MSS option of the SYN probe.
pub const SYN_MSS: u16 = 1460;

/// The SYN probe: `seq` is the cookie, no other option than the MSS.
pub fn syn_probe(src_port: u16, dst_port: u16, seq: u32) -> Repr {
    Repr {
        src_port,
        dst_port,
        seq,
        ack: 0,
        flags: super::flags::SYN,
        window: SYN_WINDOW,
        mss: Some(SYN_MSS),
        ..Repr::default()
    }
}

mod opt {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const TIMESTAMP: u8 = 8;
}

/// A checked view of a TCP segment.
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
        let doff = usize::from(b[field::DATA_OFF] >> 4) * 4;
        if doff < HEADER_LEN || doff > b.len() {
            return Err(WireError::BadDataOffset);
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
    pub fn seq_number(&self) -> u32 {
        be32(self.b(), field::SEQ.start)
    }
    pub fn ack_number(&self) -> u32 {
        be32(self.b(), field::ACK.start)
    }
    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::DATA_OFF] >> 4) * 4
    }
    /// The eight flag bits (CWR ... FIN; see `wire::flags`).
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }
    pub fn window_len(&self) -> u16 {
        be16(self.b(), field::WINDOW.start)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM.start)
    }
    pub fn urgent_at(&self) -> u16 {
        be16(self.b(), field::URGENT.start)
    }
    pub fn options(&self) -> &[u8] {
        &self.b()[field::OPTIONS..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
    /// The checksum verifies over the whole buffer (header and payload)
    /// with the pseudo-header of `src` → `dst`.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        checksum::verify_transport(src, dst, proto::TCP, self.b())
    }
}

/// Ports and sequence number from the first 8 bytes of a segment (what an
/// ICMP error is guaranteed to quote). None if fewer than 8 bytes.
pub(crate) fn quoted_ports_seq(b: &[u8]) -> Option<(u16, u16, u32)> {
    b.get(..field::ACK.start)?;
    Some((
        be16(b, field::SRC_PORT.start),
        be16(b, field::DST_PORT.start),
        be32(b, field::SEQ.start),
    ))
}

/// A TCP header with the options rawscan reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        let mut r = Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window_len(),
            ..Repr::default()
        };
        let mut o = p.options();
        while let Some((&kind, rest)) = o.split_first() {
            match kind {
                opt::END => break,
                opt::NOP => {
                    o = rest;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*rest.first().ok_or(WireError::BadOption)?);
            let body = o.get(2..len).ok_or(WireError::BadOption)?;
            match (kind, body.len()) {
                (opt::MSS, 2) => r.mss = Some(be16(body, 0)),
                (opt::WSCALE, 1) => r.window_scale = Some(body[0]),
                (opt::SACK_PERM, 0) => r.sack_permitted = true,
                (opt::TIMESTAMP, 8) => r.timestamp = Some((be32(body, 0), be32(body, 4))),
                (opt::MSS | opt::WSCALE | opt::SACK_PERM | opt::TIMESTAMP, _) => {
                    return Err(WireError::BadOption);
                }
                _ => {} // SACK blocks, MD5, TFO...: skipped
            }
            o = &o[len..];
        }
        Ok(r)
    }

    fn options_len(&self) -> usize {
        let raw: usize = self.mss.map_or(0, |_| 4)
            + self.window_scale.map_or(0, |_| 3)
            + if self.sack_permitted { 2 } else { 0 }
            + self.timestamp.map_or(0, |_| 10);
        raw.div_ceil(4) * 4
    }

    /// Header length with options, padded to 4 bytes.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// Write the segment (header and options, no payload) into `buf` with
    /// its checksum for `src` → `dst`; returns its length.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize, BuildError> {
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(BuildError::FamilyMismatch);
        }
        let len = self.header_len();
        let b = room(buf, len)?;
        b[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        b[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        b[field::ACK].copy_from_slice(&self.ack.to_be_bytes());
        b[field::DATA_OFF] = ((len / 4) as u8) << 4;
        b[field::FLAGS] = self.flags;
        b[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        b[field::URGENT].copy_from_slice(&[0, 0]);
        let mut opts = [opt::END; 20];
        let mut o = 0;
        let mut put = |bytes: &[u8]| {
            opts[o..o + bytes.len()].copy_from_slice(bytes);
            o += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[opt::MSS, 4, m[0], m[1]]);
        }
        if let Some(ws) = self.window_scale {
            put(&[opt::WSCALE, 3, ws]);
        }
        if self.sack_permitted {
            put(&[opt::SACK_PERM, 2]);
        }
        if let Some((val, ecr)) = self.timestamp {
            put(&[opt::TIMESTAMP, 10]);
            put(&val.to_be_bytes());
            put(&ecr.to_be_bytes());
        }
        // Padded with END (zero) bytes up to the data offset.
        b[field::OPTIONS..len].copy_from_slice(&opts[..len - field::OPTIONS]);
        let sum = checksum::transport(src, dst, proto::TCP, b);
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::flags;

    fn addrs() -> (IpAddr, IpAddr) {
        ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap())
    }

    #[test]
    fn syn_probe_round_trips_with_a_valid_checksum() {
        let (s, d) = addrs();
        let r = syn_probe(40000, 22, 0xdead_beef);
        let mut b = [0u8; 64];
        let n = r.emit(&mut b, s, d).unwrap();
        assert_eq!(n, 24);
        let p = Packet::new_checked(&b[..n]).unwrap();
        assert!(p.verify_checksum(s, d));
        assert!(!p.verify_checksum(d, "198.18.0.3".parse().unwrap()));
        assert_eq!(Repr::parse(&p), Ok(r));
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!((p.window_len(), r.mss), (1024, Some(1460)));
    }

    #[test]
    fn all_options_round_trip_over_ipv6() {
        let s: IpAddr = "2001:db8::1".parse().unwrap();
        let d: IpAddr = "2001:db8::2".parse().unwrap();
        let r = Repr {
            src_port: 80,
            dst_port: 40000,
            seq: 1,
            ack: 2,
            flags: flags::SYN | flags::ACK,
            window: 65_160,
            mss: Some(1440),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((3, 4)),
        };
        let mut b = [0u8; 64];
        let n = r.emit(&mut b, s, d).unwrap();
        assert_eq!(n, 20 + 20);
        let p = Packet::new_checked(&b[..n]).unwrap();
        assert!(p.verify_checksum(s, d));
        assert_eq!(Repr::parse(&p), Ok(r));
        assert_eq!(
            r.emit(&mut b, s, "198.18.0.1".parse().unwrap()),
            Err(BuildError::FamilyMismatch)
        );
    }

    #[test]
    fn bad_data_offsets_and_options_are_rejected() {
        let (s, d) = addrs();
        let mut b = [0u8; 24];
        syn_probe(1, 2, 3).emit(&mut b, s, d).unwrap();
        for n in 0..20 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        for n in 20..24 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::BadDataOffset)
            );
        }
        let mut bad = b;
        bad[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::BadDataOffset)
        );
        // Option length 0, 1, past the header, wrong for MSS.
        for o in [
            [2, 0, 0, 0],
            [2, 1, 0, 0],
            [8, 10, 0, 0],
            [2, 3, 5, 0],
            [3, 2, 0, 0],
        ] {
            let mut bad = b;
            bad[20..24].copy_from_slice(&o);
            let p = Packet::new_checked(&bad[..]).unwrap();
            assert_eq!(Repr::parse(&p), Err(WireError::BadOption), "{o:?}");
        }
        // Unknown options are skipped, NOPs and END too.
        for o in [[30, 4, 0, 0], [1, 1, 1, 0], [0, 9, 9, 9]] {
            let mut ok = b;
            ok[20..24].copy_from_slice(&o);
            let p = Packet::new_checked(&ok[..]).unwrap();
            assert_eq!(Repr::parse(&p).map(|r| r.mss), Ok(None), "{o:?}");
        }
    }

    #[test]
    fn quoted_prefix() {
        let q = [0x9c, 0x40, 0x00, 0x16, 0xde, 0xad, 0xbe, 0xef];
        assert_eq!(quoted_ports_seq(&q), Some((40000, 22, 0xdead_beef)));
        assert_eq!(quoted_ports_seq(&q[..7]), None);
    }
}
