//! TFTP (RFC 1350, options RFC 2347): what a server sends in answer to a
//! read request. A TFTP server answers from a new port, its transfer ID,
//! so a reply cannot be matched on the probed port; it is recognised by
//! its shape instead: `Reply::parse` accepts exactly the three packets a
//! read request can draw.
//! - DATA (3) of block 1 with at most 512 bytes of data;
//! - ERROR (5) with a code of 0-8 and a NUL-terminated message;
//! - OACK (6) with one or more NUL-terminated option/value pairs.
//!
//! Invariants: pure; never panics (every read is length-checked first);
//! anything else (a request, an ACK, a block other than 1, a packet too
//! long for one block, a string without its NUL) is `None`.

/// Opcodes (RFC 1350 §5, RFC 2347).
mod opcode {
    pub const DATA: u16 = 3;
    pub const ERROR: u16 = 5;
    pub const OACK: u16 = 6;
}

/// Longest answer to a read request: opcode, block, 512 bytes of data.
pub const MAX_REPLY: usize = 4 + 512;
/// Highest error code RFC 1350 and RFC 2347 define.
const MAX_ERROR: u16 = 8;

/// A server's answer to a read request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The first block of the file, with this many bytes of data.
    Data { len: usize },
    /// An error (1: file not found, 2: access violation, ...).
    Error { code: u16 },
    /// The server acknowledges options, with this many pairs.
    Oack { options: usize },
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

impl Reply {
    /// The answer `b` (a UDP payload) is, if it is one.
    pub fn parse(b: &[u8]) -> Option<Reply> {
        if b.len() > MAX_REPLY {
            return None;
        }
        match u16_at(b, 0)? {
            opcode::DATA => (u16_at(b, 2)? == 1).then_some(Reply::Data { len: b.len() - 4 }),
            opcode::ERROR => {
                let code = u16_at(b, 2)?;
                let msg = b.get(4..)?;
                let ok =
                    code <= MAX_ERROR && msg.iter().position(|&c| c == 0) == Some(msg.len() - 1);
                ok.then_some(Reply::Error { code })
            }
            opcode::OACK => {
                let rest = b.get(2..)?;
                if rest.last() != Some(&0) {
                    return None;
                }
                // Strings separated by NULs, the last one ended by the
                // final NUL: an even number of non-empty ones.
                let strings: Vec<&[u8]> = rest[..rest.len() - 1].split(|&c| c == 0).collect();
                let ok = strings.len().is_multiple_of(2)
                    && strings.iter().step_by(2).all(|s| !s.is_empty());
                ok.then_some(Reply::Oack {
                    options: strings.len() / 2,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tftpd-hpa 5.2's answer to a read request for a missing file, as
    /// captured in the lab (from its new port to the client's).
    const NOT_FOUND: &[u8] = b"\x00\x05\x00\x01File not found\x00";

    #[test]
    fn the_three_answers_to_a_read_request_parse() {
        assert_eq!(Reply::parse(NOT_FOUND), Some(Reply::Error { code: 1 }));
        assert_eq!(
            Reply::parse(b"\x00\x05\x00\x00\x00"),
            Some(Reply::Error { code: 0 })
        );
        let mut data = vec![0, 3, 0, 1];
        data.extend_from_slice(&[0x41; 512]);
        assert_eq!(Reply::parse(&data), Some(Reply::Data { len: 512 }));
        assert_eq!(
            Reply::parse(b"\x00\x03\x00\x01"),
            Some(Reply::Data { len: 0 })
        );
        assert_eq!(
            Reply::parse(b"\x00\x06blksize\x001428\x00tsize\x000\x00"),
            Some(Reply::Oack { options: 2 })
        );
    }

    #[test]
    fn malformed_or_other_packets_do_not() {
        let mut long = vec![0, 3, 0, 1];
        long.extend_from_slice(&[0; 513]);
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x05",
            b"\x00\x05\x00",
            b"\x00\x05\x00\x01",                 // no message, no NUL
            b"\x00\x05\x00\x01File not found",   // no NUL
            b"\x00\x05\x00\x01File\x00not\x00",  // NUL inside
            b"\x00\x05\x00\x09odd code\x00",     // unknown error code
            b"\x00\x03\x00\x02data",             // block 2
            b"\x00\x04\x00\x01",                 // ACK
            b"\x00\x01rawscan.txt\x00octet\x00", // our own RRQ
            b"\x00\x06",                         // OACK without options
            b"\x00\x06blksize\x00",              // option without value
            b"\x00\x06blksize\x001428",          // no final NUL
            b"\x00\x06\x001428\x00",             // empty option name
            &long,
        ] {
            assert_eq!(Reply::parse(bad), None, "{bad:02x?}");
        }
    }
}
