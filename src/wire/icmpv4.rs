//! ICMP for IPv4 (RFC 792): echo and timestamp requests and replies (host
//! discovery), destination unreachable and time exceeded (errors about a
//! probe, with the packet they quote).
//!
//! Invariants: `Packet::new_checked` guarantees the 8-byte header;
//! `Repr::parse` checks the length each message type needs (timestamps: 20
//! bytes) before reading it. Quoted bytes are handed out as a slice; the
//! quote itself is parsed in `packet` (it is an IPv4 packet).

use super::{BuildError, WireError, be16, be32, checksum, room};

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo and timestamp: identifier and sequence number.
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ_NO: Range<usize> = 6..8;
    /// Destination unreachable, code 4: next-hop MTU (RFC 1191).
    pub const MTU: Range<usize> = 6..8;
    /// Echo data, or the quoted packet of an error.
    pub const DATA: usize = 8;
    pub const ORIGINATE: Range<usize> = 8..12;
    pub const RECEIVE: Range<usize> = 12..16;
    pub const TRANSMIT: Range<usize> = 16..20;
}

pub const HEADER_LEN: usize = field::DATA;
/// Length of a timestamp request or reply.
pub const TIMESTAMP_LEN: usize = field::TRANSMIT.end;

/// Message types rawscan reads or writes.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const TIMESTAMP_REQUEST: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
}

/// Destination unreachable codes (RFC 792, RFC 1812 §5.2.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    FragRequired,
    SrcRouteFailed,
    DstNetUnknown,
    DstHostUnknown,
    SrcHostIsolated,
    NetProhibited,
    HostProhibited,
    NetUnreachToS,
    HostUnreachToS,
    CommProhibited,
    HostPrecedenceViolation,
    PrecedenceCutoff,
    Unknown(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        use DstUnreachable::*;
        match c {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtoUnreachable,
            3 => PortUnreachable,
            4 => FragRequired,
            5 => SrcRouteFailed,
            6 => DstNetUnknown,
            7 => DstHostUnknown,
            8 => SrcHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachToS,
            12 => HostUnreachToS,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            c => Unknown(c),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        use DstUnreachable::*;
        match c {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtoUnreachable => 2,
            PortUnreachable => 3,
            FragRequired => 4,
            SrcRouteFailed => 5,
            DstNetUnknown => 6,
            DstHostUnknown => 7,
            SrcHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachToS => 11,
            HostUnreachToS => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
            Unknown(c) => c,
        }
    }
}

/// A checked view of an ICMP message.
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
    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT.start)
    }
    pub fn seq_no(&self) -> u16 {
        be16(self.b(), field::SEQ_NO.start)
    }
    /// Echo data, or the quote of an error message.
    pub fn data(&self) -> &[u8] {
        &self.b()[field::DATA..]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.b())) == 0xffff
    }
}

/// An ICMP message.
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
    TimestampRequest {
        ident: u16,
        seq_no: u16,
        originate: u32,
        receive: u32,
        transmit: u32,
    },
    TimestampReply {
        ident: u16,
        seq_no: u16,
        originate: u32,
        receive: u32,
        transmit: u32,
    },
    DstUnreachable {
        reason: DstUnreachable,
        /// Next-hop MTU (code 4 only; else whatever the sender put there).
        next_hop_mtu: u16,
        /// The quoted IP header and the start of its payload.
        quote: &'a [u8],
    },
    TimeExceeded {
        /// 0: TTL exceeded in transit; 1: reassembly time exceeded.
        code: u8,
        quote: &'a [u8],
    },
    /// Any other type: its type and code, and the bytes after the first 4.
    Other {
        msg_type: u8,
        code: u8,
        rest: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Repr<'a>, WireError> {
        let b: &'a [u8] = p.buffer;
        let (ty, code) = (p.msg_type(), p.msg_code());
        let (ident, seq_no) = (p.ident(), p.seq_no());
        let data = &b[field::DATA..];
        let ts = || -> Result<(u32, u32, u32), WireError> {
            if b.len() < TIMESTAMP_LEN {
                return Err(WireError::BadLength);
            }
            Ok((
                be32(b, field::ORIGINATE.start),
                be32(b, field::RECEIVE.start),
                be32(b, field::TRANSMIT.start),
            ))
        };
        Ok(match ty {
            msg_type::ECHO_REQUEST if code == 0 => Repr::EchoRequest {
                ident,
                seq_no,
                data,
            },
            msg_type::ECHO_REPLY if code == 0 => Repr::EchoReply {
                ident,
                seq_no,
                data,
            },
            msg_type::TIMESTAMP_REQUEST | msg_type::TIMESTAMP_REPLY if code == 0 => {
                let (originate, receive, transmit) = ts()?;
                if ty == msg_type::TIMESTAMP_REQUEST {
                    Repr::TimestampRequest {
                        ident,
                        seq_no,
                        originate,
                        receive,
                        transmit,
                    }
                } else {
                    Repr::TimestampReply {
                        ident,
                        seq_no,
                        originate,
                        receive,
                        transmit,
                    }
                }
            }
            msg_type::DST_UNREACHABLE => Repr::DstUnreachable {
                reason: code.into(),
                next_hop_mtu: be16(b, field::MTU.start),
                quote: data,
            },
            msg_type::TIME_EXCEEDED => Repr::TimeExceeded { code, quote: data },
            _ => Repr::Other {
                msg_type: ty,
                code,
                rest: &b[field::IDENT.start..],
            },
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Repr::TimestampRequest { .. } | Repr::TimestampReply { .. } => TIMESTAMP_LEN,
            Repr::DstUnreachable { quote, .. } | Repr::TimeExceeded { quote, .. } => {
                HEADER_LEN + quote.len()
            }
            Repr::Other { rest, .. } => field::IDENT.start + rest.len(),
        }
    }

    /// Write the message with its checksum into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, BuildError> {
        let len = self.buffer_len();
        let b = room(buf, len)?;
        b[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let echo = |b: &mut [u8], ty: u8, ident: u16, seq_no: u16| {
            b[field::TYPE] = ty;
            b[field::CODE] = 0;
            b[field::IDENT].copy_from_slice(&ident.to_be_bytes());
            b[field::SEQ_NO].copy_from_slice(&seq_no.to_be_bytes());
        };
        match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let ty = if matches!(self, Repr::EchoRequest { .. }) {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                };
                echo(b, ty, ident, seq_no);
                b[field::DATA..].copy_from_slice(data);
            }
            Repr::TimestampRequest {
                ident,
                seq_no,
                originate,
                receive,
                transmit,
            }
            | Repr::TimestampReply {
                ident,
                seq_no,
                originate,
                receive,
                transmit,
            } => {
                let ty = if matches!(self, Repr::TimestampRequest { .. }) {
                    msg_type::TIMESTAMP_REQUEST
                } else {
                    msg_type::TIMESTAMP_REPLY
                };
                echo(b, ty, ident, seq_no);
                b[field::ORIGINATE].copy_from_slice(&originate.to_be_bytes());
                b[field::RECEIVE].copy_from_slice(&receive.to_be_bytes());
                b[field::TRANSMIT].copy_from_slice(&transmit.to_be_bytes());
            }
            Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                quote,
            } => {
                b[field::TYPE] = msg_type::DST_UNREACHABLE;
                b[field::CODE] = reason.into();
                b[field::IDENT].copy_from_slice(&[0, 0]);
                b[field::MTU].copy_from_slice(&next_hop_mtu.to_be_bytes());
                b[field::DATA..].copy_from_slice(quote);
            }
            Repr::TimeExceeded { code, quote } => {
                b[field::TYPE] = msg_type::TIME_EXCEEDED;
                b[field::CODE] = code;
                b[field::IDENT.start..field::DATA].copy_from_slice(&[0; 4]);
                b[field::DATA..].copy_from_slice(quote);
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
        let sum = checksum::finish(checksum::sum(b));
        b[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: Repr<'_>) {
        let mut b = [0u8; 64];
        let n = r.emit(&mut b).unwrap();
        assert_eq!(n, r.buffer_len());
        let p = Packet::new_checked(&b[..n]).unwrap();
        assert!(p.verify_checksum(), "{r:?}");
        assert_eq!(Repr::parse(&p), Ok(r));
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Repr::EchoRequest {
            ident: 7,
            seq_no: 9,
            data: b"ping",
        });
        round_trip(Repr::EchoReply {
            ident: 7,
            seq_no: 9,
            data: b"",
        });
        round_trip(Repr::TimestampRequest {
            ident: 1,
            seq_no: 2,
            originate: 3,
            receive: 0,
            transmit: 0,
        });
        round_trip(Repr::TimestampReply {
            ident: 1,
            seq_no: 2,
            originate: 3,
            receive: 4,
            transmit: 5,
        });
        round_trip(Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired,
            next_hop_mtu: 1280,
            quote: &[0x45; 28],
        });
        round_trip(Repr::TimeExceeded {
            code: 0,
            quote: &[0x45; 28],
        });
        round_trip(Repr::Other {
            msg_type: 5,
            code: 1,
            rest: &[198, 18, 0, 9],
        });
        for c in 0..=255u8 {
            assert_eq!(u8::from(DstUnreachable::from(c)), c);
        }
    }

    #[test]
    fn short_messages_are_rejected() {
        let mut b = [0u8; 20];
        let r = Repr::TimestampReply {
            ident: 1,
            seq_no: 2,
            originate: 3,
            receive: 4,
            transmit: 5,
        };
        r.emit(&mut b).unwrap();
        for n in 0..8 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        for n in 8..20 {
            let p = Packet::new_checked(&b[..n]).unwrap();
            assert_eq!(Repr::parse(&p), Err(WireError::BadLength));
        }
    }
}
