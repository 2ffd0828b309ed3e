//! Prebuilt TCP probe packets (the trick of masscan's and zmap's
//! senders): a probe shape's bytes are laid out once, by the same `Repr`
//! emitters every other packet goes through, with every per-probe field
//! zero; the sums of the fixed words of the IPv4 header and of the TCP
//! segment (with its pseudo-header's protocol and length) are kept. A probe
//! is then a copy of those bytes, the addresses, IPv4 identification,
//! ports, sequence and acknowledgement numbers written at their offsets,
//! and the two checksums finished from the kept sums plus the new words.
//!
//! Invariants: [`TcpTemplate::fill`] writes byte for byte what
//! [`super::emit_packet`] writes for the same fields (the tests compare the
//! two over many random probes of both families); it is pure, and checks
//! the family and the buffer's room like the emitters.

use std::net::IpAddr;

use super::{BuildError, IpRepr, Transport, checksum, emit_packet, ipv4, ipv6, tcp};

/// The longest template: an IPv6 header and a TCP header with 40 bytes of
/// options.
const MAX_LEN: usize = ipv6::HEADER_LEN + 60;

/// The per-probe fields of a TCP probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFields {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification (unused over IPv6).
    pub ident: u16,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
}

/// One TCP probe shape, laid out for one IP family.
#[derive(Clone, Debug)]
pub struct TcpTemplate {
    bytes: [u8; MAX_LEN],
    len: usize,
    ip_len: usize,
    v4: bool,
    /// Sum of the IPv4 header's words with the per-probe fields and the
    /// checksum zero (0 over IPv6, which has no header checksum).
    ip_sum: u64,
    /// Sum of the segment's words with the per-probe fields and the
    /// checksum zero, plus the pseudo-header's protocol and length.
    tcp_sum: u64,
}

impl TcpTemplate {
    /// Lay out `shape` (its ports, sequence and acknowledgement numbers are
    /// ignored) as a probe's IP layer (`IpRepr::probe`, flow label 0) of
    /// the family `v4` says.
    pub fn new(shape: tcp::Repr, v4: bool) -> Result<TcpTemplate, BuildError> {
        let unspecified = if v4 {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u8; 16])
        };
        let seg = tcp::Repr {
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            ..shape
        };
        let mut bytes = [0u8; MAX_LEN];
        let ip = IpRepr::probe(unspecified, unspecified, 0, 0);
        let len = emit_packet(&mut bytes, &ip, &Transport::Tcp(seg))?;
        let ip_len = ip.header_len();
        let tcp_len = len - ip_len;
        let ip_sum = if v4 {
            bytes[ipv4::field::CHECKSUM].fill(0);
            checksum::sum(&bytes[..ip_len])
        } else {
            0
        };
        bytes[ip_len..][tcp::field::CHECKSUM].fill(0);
        let tcp_sum = checksum::sum(&bytes[ip_len..len])
            + checksum::pseudo_header(unspecified, unspecified, super::proto::TCP, tcp_len as u32);
        Ok(TcpTemplate {
            bytes,
            len,
            ip_len,
            v4,
            ip_sum,
            tcp_sum,
        })
    }

    /// Length of every packet this template makes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: a template holds at least the two headers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write the probe with fields `f` into `buf`; returns its length.
    pub fn fill(&self, buf: &mut [u8], f: &TcpFields) -> Result<usize, BuildError> {
        let n = self.len;
        if buf.len() < n {
            return Err(BuildError::BufferTooSmall {
                need: n,
                have: buf.len(),
            });
        }
        let b = &mut buf[..n];
        b.copy_from_slice(&self.bytes[..n]);
        let addr_sum = match (self.v4, f.src, f.dst) {
            (true, IpAddr::V4(s), IpAddr::V4(d)) => {
                let (s, d) = (s.octets(), d.octets());
                b[ipv4::field::SRC].copy_from_slice(&s);
                b[ipv4::field::DST].copy_from_slice(&d);
                b[ipv4::field::IDENT].copy_from_slice(&f.ident.to_be_bytes());
                let a = checksum::sum(&s) + checksum::sum(&d);
                let ip = checksum::finish(self.ip_sum + a + u64::from(f.ident));
                b[ipv4::field::CHECKSUM].copy_from_slice(&ip.to_be_bytes());
                a
            }
            (false, IpAddr::V6(s), IpAddr::V6(d)) => {
                let (s, d) = (s.octets(), d.octets());
                b[ipv6::field::SRC].copy_from_slice(&s);
                b[ipv6::field::DST].copy_from_slice(&d);
                checksum::sum(&s) + checksum::sum(&d)
            }
            _ => return Err(BuildError::FamilyMismatch),
        };
        let t = &mut b[self.ip_len..];
        t[tcp::field::SRC_PORT].copy_from_slice(&f.src_port.to_be_bytes());
        t[tcp::field::DST_PORT].copy_from_slice(&f.dst_port.to_be_bytes());
        t[tcp::field::SEQ].copy_from_slice(&f.seq.to_be_bytes());
        t[tcp::field::ACK].copy_from_slice(&f.ack.to_be_bytes());
        let words = |v: u32| u64::from(v >> 16) + u64::from(v & 0xffff);
        let sum = self.tcp_sum
            + addr_sum
            + u64::from(f.src_port)
            + u64::from(f.dst_port)
            + words(f.seq)
            + words(f.ack);
        t[tcp::field::CHECKSUM].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::flags;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use crate::testutil::SplitMix64 as Rng;

    fn shapes() -> Vec<tcp::Repr> {
        vec![
            tcp::syn_probe(0, 0, 0),
            tcp::Repr {
                flags: flags::ACK,
                window: tcp::SYN_WINDOW,
                ..tcp::Repr::default()
            },
            tcp::Repr {
                flags: flags::SYN,
                window: 65535,
                mss: Some(1400),
                window_scale: Some(7),
                sack_permitted: true,
                timestamp: Some((1, 2)),
                ..tcp::Repr::default()
            },
        ]
    }

    /// Random lab addresses (198.18.0.0/15, 2001:db8::/32) and fields.
    fn random_fields(rng: &mut Rng, v4: bool) -> TcpFields {
        let (src, dst) = if v4 {
            let a = |r: &mut Rng| {
                IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (r.next() as u32 & 0x1_FFFF)))
            };
            (a(rng), a(rng))
        } else {
            let a = |r: &mut Rng| {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8u128 << 96)
                        | (u128::from(r.next()) << 32) >> 32
                        | u128::from(r.next()) >> 32,
                ))
            };
            (a(rng), a(rng))
        };
        TcpFields {
            src,
            dst,
            ident: if v4 { rng.next() as u16 } else { 0 },
            src_port: rng.next() as u16,
            dst_port: rng.next() as u16,
            seq: rng.next() as u32,
            ack: rng.next() as u32,
        }
    }

    #[test]
    fn fill_matches_the_emitters_byte_for_byte() {
        let mut rng = Rng(7);
        for shape in shapes() {
            for v4 in [true, false] {
                let t = TcpTemplate::new(shape, v4).unwrap();
                for _ in 0..2000 {
                    let f = random_fields(&mut rng, v4);
                    let mut want = [0u8; 128];
                    let ip = IpRepr::probe(f.src, f.dst, f.ident, 0);
                    let seg = tcp::Repr {
                        src_port: f.src_port,
                        dst_port: f.dst_port,
                        seq: f.seq,
                        ack: f.ack,
                        ..shape
                    };
                    let n = emit_packet(&mut want, &ip, &Transport::Tcp(seg)).unwrap();
                    let mut got = [0xAAu8; 128];
                    assert_eq!(t.fill(&mut got, &f), Ok(n));
                    assert_eq!(t.len(), n);
                    assert_eq!(&got[..n], &want[..n], "{f:?} {shape:?}");
                    assert_eq!(got[n], 0xAA, "wrote past the packet");
                }
            }
        }
    }

    #[test]
    fn the_checksums_verify() {
        let mut rng = Rng(8);
        for v4 in [true, false] {
            let t = TcpTemplate::new(tcp::syn_probe(0, 0, 0), v4).unwrap();
            for _ in 0..500 {
                let f = random_fields(&mut rng, v4);
                let mut b = [0u8; 128];
                let n = t.fill(&mut b, &f).unwrap();
                let hdr = if v4 {
                    assert_eq!(checksum::fold(checksum::sum(&b[..20])), 0xffff);
                    20
                } else {
                    40
                };
                let seg = tcp::Packet::new_checked(&b[hdr..n]).unwrap();
                assert!(seg.verify_checksum(f.src, f.dst));
                assert_eq!(seg.seq_number(), f.seq);
            }
        }
    }

    #[test]
    fn refuses_a_short_buffer_and_a_mixed_family() {
        let t = TcpTemplate::new(tcp::syn_probe(0, 0, 0), true).unwrap();
        let mut rng = Rng(9);
        let f = random_fields(&mut rng, true);
        let mut small = [0u8; 43];
        assert_eq!(
            t.fill(&mut small, &f),
            Err(BuildError::BufferTooSmall { need: 44, have: 43 })
        );
        let v6 = random_fields(&mut rng, false);
        let mut b = [0u8; 128];
        assert_eq!(t.fill(&mut b, &v6), Err(BuildError::FamilyMismatch));
        let t6 = TcpTemplate::new(tcp::syn_probe(0, 0, 0), false).unwrap();
        assert_eq!(t6.fill(&mut b, &f), Err(BuildError::FamilyMismatch));
        let mixed = TcpFields { dst: v6.dst, ..f };
        assert_eq!(t.fill(&mut b, &mixed), Err(BuildError::FamilyMismatch));
    }
}
