//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages rawscan needs
//! (RFC 4861): echo request/reply; destination unreachable (every code),
//! packet too big, time exceeded and parameter problem, each with the
//! packet it quotes; neighbor solicitation and advertisement with their
//! link-layer address options.
//!
//! Invariants: `Packet::new_checked` guarantees the 8-byte header;
//! `Repr::parse` checks the length each type needs (NDP: 24 bytes) and
//! walks NDP options with bounds: an option of length 0 or running past the
//! message is `BadOption` (RFC 4861 §4.6 says to discard such a message).
//! The checksum covers the IPv6 pseudo-header, so it needs both addresses.

use std::net::{IpAddr, Ipv6Addr};

use super::ethernet::EthernetAddress;
use super::{BuildError, WireError, be16, be32, checksum, proto, room};

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo: identifier and sequence number.
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ_NO: Range<usize> = 6..8;
    /// Packet too big: MTU; parameter problem: pointer; NA: flags byte.
    pub const MTU: Range<usize> = 4..8;
    pub const POINTER: Range<usize> = 4..8;
    pub const NA_FLAGS: usize = 4;
    /// Echo data, or the quoted packet of an error.
    pub const DATA: usize = 8;
    /// NS / NA target address, then options.
    pub const TARGET: Range<usize> = 8..24;
    pub const NDP_OPTIONS: usize = 24;
}

pub const HEADER_LEN: usize = field::DATA;
/// Length of a neighbor solicitation or advertisement without options.
pub const NDP_LEN: usize = field::NDP_OPTIONS;

/// Message types rawscan reads or writes.
pub mod msg_type {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PKT_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// NDP option types.
mod ndp_opt {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
}

const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

/// Destination unreachable codes (RFC 4443 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: no route to destination.
    NoRoute,
    /// 1: communication administratively prohibited.
    AdminProhibited,
    /// 2: beyond the scope of the source address.
    BeyondScope,
    /// 3: address unreachable.
    AddrUnreachable,
    /// 4: port unreachable.
    PortUnreachable,
    /// 5: source address failed ingress/egress policy.
    FailedPolicy,
    /// 6: reject route to destination.
    RejectRoute,
    Unknown(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        use DstUnreachable::*;
        match c {
            0 => NoRoute,
            1 => AdminProhibited,
            2 => BeyondScope,
            3 => AddrUnreachable,
            4 => PortUnreachable,
            5 => FailedPolicy,
            6 => RejectRoute,
            c => Unknown(c),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        use DstUnreachable::*;
        match c {
            NoRoute => 0,
            AdminProhibited => 1,
            BeyondScope => 2,
            AddrUnreachable => 3,
            PortUnreachable => 4,
            FailedPolicy => 5,
            RejectRoute => 6,
            Unknown(c) => c,
        }
    }
}

/// A checked view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    pub fn msg_code(&self) -> u8 {
        self.b()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM.start)
    }
    /// The checksum verifies with the pseudo-header of `src` → `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::verify_transport(IpAddr::V6(src), IpAddr::V6(dst), proto::ICMPV6, self.b())
    }
}

/// An ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    DstUnreachable {
        reason: DstUnreachable,
        /// As much of the offending packet as fit (an IPv6 packet).
        quote: &'a [u8],
    },
    PktTooBig {
        mtu: u32,
        quote: &'a [u8],
    },
    TimeExceeded {
        /// 0: hop limit exceeded in transit; 1: reassembly time exceeded.
        code: u8,
        quote: &'a [u8],
    },
    ParamProblem {
        /// 0: erroneous header field; 1: unrecognized next header; 2:
        /// unrecognized IPv6 option.
        code: u8,
        pointer: u32,
        quote: &'a [u8],
    },
    NeighborSolicit {
        target: Ipv6Addr,
        source_lladdr: Option<EthernetAddress>,
    },
    NeighborAdvert {
        router: bool,
        solicited: bool,
        override_: bool,
        target: Ipv6Addr,
        target_lladdr: Option<EthernetAddress>,
    },
    /// Any other type: its type and code, and the bytes after the first 4.
    Other {
        msg_type: u8,
        code: u8,
        rest: &'a [u8],
    },
}

/// The Ethernet address in the first link-layer address option of type
/// `want`, after checking every option's length.
fn lladdr_option(mut o: &[u8], want: u8) -> Result<Option<EthernetAddress>, WireError> {
    let mut found = None;
    while !o.is_empty() {
        let (ty, units) = match o {
            [ty, units, ..] => (*ty, usize::from(*units)),
            _ => return Err(WireError::BadOption),
        };
        if units == 0 {
            return Err(WireError::BadOption);
        }
        let opt = o.get(..units * 8).ok_or(WireError::BadOption)?;
        // An Ethernet address option is one 8-byte unit (RFC 4861 §4.6.1);
        // other sizes belong to other link layers and are skipped.
        if ty == want && units == 1 && found.is_none() {
            found = EthernetAddress::from_bytes(&opt[2..]);
        }
        o = &o[units * 8..];
    }
    Ok(found)
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let a: [u8; 16] = b.try_into().unwrap_or([0; 16]);
    Ipv6Addr::from(a)
}

impl<'a> Repr<'a> {
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Repr<'a>, WireError> {
        let b: &'a [u8] = p.buffer;
        let (ty, code) = (p.msg_type(), p.msg_code());
        let data = &b[field::DATA..];
        let ndp = || -> Result<(Ipv6Addr, &'a [u8]), WireError> {
            if b.len() < NDP_LEN {
                return Err(WireError::BadLength);
            }
            Ok((addr(&b[field::TARGET]), &b[field::NDP_OPTIONS..]))
        };
        Ok(match ty {
            msg_type::ECHO_REQUEST if code == 0 => Repr::EchoRequest {
                ident: be16(b, field::IDENT.start),
                seq_no: be16(b, field::SEQ_NO.start),
                data,
            },
            msg_type::ECHO_REPLY if code == 0 => Repr::EchoReply {
                ident: be16(b, field::IDENT.start),
                seq_no: be16(b, field::SEQ_NO.start),
                data,
            },
            msg_type::DST_UNREACHABLE => Repr::DstUnreachable {
                reason: code.into(),
                quote: data,
            },
            msg_type::PKT_TOO_BIG => Repr::PktTooBig {
                mtu: be32(b, field::MTU.start),
                quote: data,
            },
            msg_type::TIME_EXCEEDED => Repr::TimeExceeded { code, quote: data },
            msg_type::PARAM_PROBLEM => Repr::ParamProblem {
                code,
                pointer: be32(b, field::POINTER.start),
                quote: data,
            },
            msg_type::NEIGHBOR_SOLICIT if code == 0 => {
                let (target, opts) = ndp()?;
                Repr::NeighborSolicit {
                    target,
                    source_lladdr: lladdr_option(opts, ndp_opt::SOURCE_LLADDR)?,
                }
            }
            msg_type::NEIGHBOR_ADVERT if code == 0 => {
                let (target, opts) = ndp()?;
                let f = b[field::NA_FLAGS];
                Repr::NeighborAdvert {
                    router: f & NA_ROUTER != 0,
                    solicited: f & NA_SOLICITED != 0,
                    override_: f & NA_OVERRIDE != 0,
                    target,
                    target_lladdr: lladdr_option(opts, ndp_opt::TARGET_LLADDR)?,
                }
            }
            _ => Repr::Other {
                msg_type: ty,
                code,
                rest: &b[field::IDENT.start..],
            },
        })
    }

    /// The quoted packet, for the four error types.
    pub fn quote(&self) -> Option<&'a [u8]> {
        match *self {
            Repr::DstUnreachable { quote, .. }
            | Repr::PktTooBig { quote, .. }
            | Repr::TimeExceeded { quote, .. }
            | Repr::ParamProblem { quote, .. } => Some(quote),
            _ => None,
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Repr::DstUnreachable { quote, .. }
            | Repr::PktTooBig { quote, .. }
            | Repr::TimeExceeded { quote, .. }
            | Repr::ParamProblem { quote, .. } => HEADER_LEN + quote.len(),
            Repr::NeighborSolicit {
                source_lladdr: l, ..
            }
            | Repr::NeighborAdvert {
                target_lladdr: l, ..
            } => NDP_LEN + l.map_or(0, |_| 8),
            Repr::Other { rest, .. } => field::IDENT.start + rest.len(),
        }
    }

    /// Write the message with its checksum for `src` → `dst` into `buf`;
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize, BuildError> {
        let len = self.buffer_len();
        let b = room(buf, len)?;
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let head = |b: &mut [u8], ty: u8, code: u8, word: u32| {
            b[field::TYPE] = ty;
            b[field::CODE] = code;
            b[field::IDENT.start..field::DATA].copy_from_slice(&word.to_be_bytes());
        };
        let lladdr = |b: &mut [u8], ty: u8, l: Option<EthernetAddress>| {
            if let Some(mac) = l {
                b[NDP_LEN] = ty;
                b[NDP_LEN + 1] = 1;
                b[NDP_LEN + 2..NDP_LEN + 8].copy_from_slice(&mac.0);
            }
        };
        match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                head(
                    b,
                    msg_type::ECHO_REQUEST,
                    0,
                    u32::from(ident) << 16 | u32::from(seq_no),
                );
                b[field::DATA..].copy_from_slice(data);
            }
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                head(
                    b,
                    msg_type::ECHO_REPLY,
                    0,
                    u32::from(ident) << 16 | u32::from(seq_no),
                );
                b[field::DATA..].copy_from_slice(data);
            }
            Repr::DstUnreachable { reason, quote } => {
                head(b, msg_type::DST_UNREACHABLE, reason.into(), 0);
                b[field::DATA..].copy_from_slice(quote);
            }
            Repr::PktTooBig { mtu, quote } => {
                head(b, msg_type::PKT_TOO_BIG, 0, mtu);
                b[field::DATA..].copy_from_slice(quote);
            }
            Repr::TimeExceeded { code, quote } => {
                head(b, msg_type::TIME_EXCEEDED, code, 0);
                b[field::DATA..].copy_from_slice(quote);
            }
            Repr::ParamProblem {
                code,
                pointer,
                quote,
            } => {
                head(b, msg_type::PARAM_PROBLEM, code, pointer);
                b[field::DATA..].copy_from_slice(quote);
            }
            Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                head(b, msg_type::NEIGHBOR_SOLICIT, 0, 0);
                b[field::TARGET].copy_from_slice(&target.octets());
                lladdr(b, ndp_opt::SOURCE_LLADDR, source_lladdr);
            }
            Repr::NeighborAdvert {
                router,
                solicited,
                override_,
                target,
                target_lladdr,
            } => {
                let f = (if router { NA_ROUTER } else { 0 })
                    | (if solicited { NA_SOLICITED } else { 0 })
                    | (if override_ { NA_OVERRIDE } else { 0 });
                head(b, msg_type::NEIGHBOR_ADVERT, 0, u32::from(f) << 24);
                b[field::TARGET].copy_from_slice(&target.octets());
                lladdr(b, ndp_opt::TARGET_LLADDR, target_lladdr);
            }
            Repr::Other {
                msg_type,
                code,
                rest,
            } => {
                b[field::TYPE] = msg_type;
                b[field::CODE] = code;
                b[field::IDENT.start..].copy_from_slice(rest);
            }
        }
        let sum = checksum::transport(IpAddr::V6(src), IpAddr::V6(dst), proto::ICMPV6, b);
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const D: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn round_trip(r: Repr<'_>) {
        let mut b = [0u8; 96];
        let n = r.emit(&mut b, S, D).unwrap();
        assert_eq!(n, r.buffer_len());
        let p = Packet::new_checked(&b[..n]).unwrap();
        assert!(p.verify_checksum(S, D), "{r:?}");
        assert!(!p.verify_checksum(D, D), "{r:?}");
        assert_eq!(Repr::parse(&p), Ok(r));
    }

    #[test]
    fn every_message_round_trips() {
        let q = [0x60u8; 48];
        round_trip(Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"x",
        });
        round_trip(Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: b"",
        });
        for c in 0..=7u8 {
            round_trip(Repr::DstUnreachable {
                reason: c.into(),
                quote: &q,
            });
        }
        round_trip(Repr::PktTooBig {
            mtu: 1280,
            quote: &q,
        });
        round_trip(Repr::TimeExceeded { code: 1, quote: &q });
        round_trip(Repr::ParamProblem {
            code: 1,
            pointer: 6,
            quote: &q,
        });
        round_trip(Repr::NeighborSolicit {
            target: D,
            source_lladdr: Some(MAC),
        });
        round_trip(Repr::NeighborSolicit {
            target: D,
            source_lladdr: None,
        });
        round_trip(Repr::NeighborAdvert {
            router: false,
            solicited: true,
            override_: true,
            target: D,
            target_lladdr: Some(MAC),
        });
        round_trip(Repr::Other {
            msg_type: 133,
            code: 0,
            rest: &[0; 4],
        });
        for c in 0..=255u8 {
            assert_eq!(u8::from(DstUnreachable::from(c)), c);
        }
    }

    #[test]
    fn bad_ndp_is_rejected() {
        let mut b = [0u8; 40];
        let r = Repr::NeighborAdvert {
            router: false,
            solicited: true,
            override_: false,
            target: D,
            target_lladdr: Some(MAC),
        };
        let n = r.emit(&mut b, S, D).unwrap();
        assert_eq!(n, 32);
        for k in 0..8 {
            assert_eq!(
                Packet::new_checked(&b[..k]).err(),
                Some(WireError::Truncated)
            );
        }
        for k in 8..24 {
            let p = Packet::new_checked(&b[..k]).unwrap();
            assert_eq!(Repr::parse(&p), Err(WireError::BadLength), "cut at {k}");
        }
        // Cut inside the option: the option runs past the message.
        for k in 25..32 {
            let p = Packet::new_checked(&b[..k]).unwrap();
            assert_eq!(Repr::parse(&p), Err(WireError::BadOption), "cut at {k}");
        }
        // Option length 0 (would loop forever if walked naively).
        let mut zero = b;
        zero[25] = 0;
        let p = Packet::new_checked(&zero[..n]).unwrap();
        assert_eq!(Repr::parse(&p), Err(WireError::BadOption));
        // A longer option of the right type is another link layer: skipped.
        let mut long = [0u8; 40];
        long[..32].copy_from_slice(&b[..32]);
        long[25] = 2;
        let p = Packet::new_checked(&long[..]).unwrap();
        assert!(matches!(
            Repr::parse(&p),
            Ok(Repr::NeighborAdvert {
                target_lladdr: None,
                ..
            })
        ));
    }
}
