//! The Internet checksum (RFC 1071) and the TCP/UDP/ICMPv6 pseudo-headers
//! of both IP families (RFC 793, RFC 768, RFC 8200 §8.1).
//!
//! Invariants: pure arithmetic over byte slices; never panics (an odd
//! trailing byte is padded with zero, sums are kept in a u64).

use std::net::IpAddr;

/// Sum of the big-endian 16-bit words of `data` (an odd last byte is the
/// high half of a word), not yet folded.
pub fn sum(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut s: u64 = chunks
        .by_ref()
        .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

/// Fold a sum into 16 bits (one's complement addition), not inverted.
pub fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The value to write into a checksum field, given the sum of everything
/// it covers with the field itself zero.
pub fn finish(s: u64) -> u16 {
    !fold(s)
}

/// Sum of the pseudo-header for `protocol` carrying `length` bytes from
/// `src` to `dst`. IPv4 (RFC 793 §3.1): addresses, zero, protocol, 16-bit
/// length. IPv6 (RFC 8200 §8.1): addresses, 32-bit length, zeros, next
/// header. Callers pass two addresses of one family (the emitters check);
/// a mixed pair sums each address's own octets.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, length: u32) -> u64 {
    let addr = |a: IpAddr| match a {
        IpAddr::V4(a) => sum(&a.octets()),
        IpAddr::V6(a) => sum(&a.octets()),
    };
    // Both layouts sum to the same words: the length's two halves (the
    // IPv4 field is 16 bits, so its high half is zero) and the protocol.
    addr(src)
        + addr(dst)
        + u64::from(protocol)
        + (u64::from(length) >> 16)
        + (u64::from(length) & 0xffff)
}

/// Checksum field value for a transport segment `data` (its own checksum
/// field zeroed) of `protocol` between `src` and `dst`.
pub fn transport(src: IpAddr, dst: IpAddr, protocol: u8, data: &[u8]) -> u16 {
    finish(pseudo_header(src, dst, protocol, data.len() as u32) + sum(data))
}

/// Does `data` (checksum field as received) verify for `protocol` between
/// `src` and `dst`?
pub fn verify_transport(src: IpAddr, dst: IpAddr, protocol: u8, data: &[u8]) -> bool {
    fold(pseudo_header(src, dst, protocol, data.len() as u32) + sum(data)) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn a_filled_checksum_verifies() {
        let src: IpAddr = "2001:db8::1".parse().unwrap();
        let dst: IpAddr = "2001:db8::2".parse().unwrap();
        let mut seg = vec![0x12, 0x34, 0x00, 0x35, 0x00, 0x0b, 0, 0, b'a', b'b', b'c'];
        let c = transport(src, dst, 17, &seg);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
        assert!(verify_transport(src, dst, 17, &seg));
        seg[8] ^= 1;
        assert!(!verify_transport(src, dst, 17, &seg));
    }
}
