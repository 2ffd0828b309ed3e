//! Protocol-correct UDP probe payloads for UDP scanning (`-sU`).
//!
//! Role: an empty datagram rarely draws an answer from a UDP service, so for
//! well-known ports we send a small, valid request of that port's protocol.
//! Each request carries the probe's 32-bit cookie in the protocol's own
//! transaction-ID field wherever one exists, so that a reply can be tied to
//! the probe that caused it ([`Payload::check_reply`]).
//!
//! Everything lives in ONE table, `PAYLOADS`: per protocol its name, ports,
//! the spec it follows, a byte template, where the cookie is written
//! (`Field`: offset + `Enc`oding) and where a reply echoes it (`Reply`).
//! Adding a protocol means adding one entry (plus its validator and reply
//! builder in the tests, which fail until both exist).
//!
//! Invariants:
//! - Building is pure: [`Payload::write`] only copies the template and writes
//!   the cookie into the caller's buffer. No sockets, clocks or randomness.
//! - Reply checks never panic: every access to reply bytes is bounds-checked
//!   (`get`, `split_first`, explicit length tests); short or malformed input
//!   yields `Mismatch`, never a panic or an `unwrap`.
//! - A port appears in at most one entry, so [`payload_for`] is unambiguous.
//!   Port 443/udp gets the QUIC probe (HTTP/3 is by far its most common use);
//!   DTLS is probed on 4433 and 5684 (CoAPs). A DTLS-only service on 443
//!   (some SSL VPNs) will ignore the QUIC probe.
//! - Cookie fields narrower than 32 bits take the cookie's low bits; fields
//!   that must not be zero or must avoid a reserved value use an encoding
//!   that guarantees it (see `Enc`). 64-bit fields get `cookie, !cookie`,
//!   which is never all-zero.
//! - `NoIdField` means the reply carries no echo of anything we chose (the
//!   engine then matches on addresses and ports alone). Note that TFTP
//!   answers from a fresh server port (RFC 1350 TIDs).

use std::ops::Deref;

/// Result of checking a reply datagram against a probe's cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieCheck {
    /// The reply echoes the ID field we sent.
    Match,
    /// The reply is malformed, truncated, not a reply, or echoes another ID.
    Mismatch,
    /// The protocol (or, for DTLS, this kind of reply) echoes nothing of ours.
    NoIdField,
}

/// What a reply datagram from the probed port proves (see `validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// It echoes the cookie as the protocol does, or reflects the probe
    /// with the cookie in it: it answers our probe.
    Verified,
    /// The protocol echoes nothing of ours (`NoIdField`), so the reply is
    /// believed on addresses and ports alone: an off-path sender who
    /// guesses the source port could forge it.
    Unverified,
    /// It does not parse as this protocol's reply, or echoes another ID.
    Rejected,
}

/// One well-known UDP service's probe.
#[derive(Debug)]
pub struct Payload {
    /// Short protocol name, e.g. `"dns"`.
    pub name: &'static str,
    /// Ports this payload is sent to.
    pub ports: &'static [u16],
    /// The specification the bytes follow.
    spec: &'static str,
    /// The request with every cookie field zeroed.
    template: &'static [u8],
    /// Where `write` places the cookie. Reply checks compare against field 0
    /// (CoAP also uses field 1, its token).
    cookie: &'static [Field],
    /// How a reply echoes the cookie.
    reply: Reply,
    /// Zero-pad the datagram to this length (QUIC requires 1200 bytes).
    pad_to: usize,
}

/// Where the cookie goes in a template.
#[derive(Debug, Clone, Copy)]
struct Field {
    at: usize,
    enc: Enc,
}

const fn field(at: usize, enc: Enc) -> Field {
    Field { at, enc }
}

/// How the 32-bit cookie is squeezed into an ID field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    /// Low 8 bits.
    Lo8,
    /// `cookie % 255` (0..=254), for tags where 0xFF is reserved.
    Tag8,
    /// Low 16 bits, big-endian.
    Be16,
    /// `cookie % 0xFFFF + 1` (1..=0xFFFF), big-endian: IDs that must be non-zero.
    Nz16,
    /// All 32 bits, big-endian.
    Be32,
    /// `cookie` then `!cookie`, big-endian: 64-bit IDs; never all-zero.
    Be64,
    /// `0x4000_0000 | (cookie & 0x3FFF_FFFF)`, big-endian: the contents of a
    /// BER INTEGER that is positive and minimally encoded in exactly 4 octets
    /// (so enclosing lengths stay fixed); carries 30 cookie bits.
    Ber4,
    /// The cookie as 8 lowercase ASCII hex digits.
    Hex8,
}

/// Encoded cookie bytes (at most 8).
#[derive(Debug, Clone, Copy)]
struct IdBytes {
    b: [u8; 8],
    n: usize,
}

impl Deref for IdBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

impl Enc {
    fn encode(self, c: u32) -> IdBytes {
        let mut b = [0u8; 8];
        let n = match self {
            Enc::Lo8 => {
                b[0] = c as u8;
                1
            }
            Enc::Tag8 => {
                b[0] = (c % 255) as u8;
                1
            }
            Enc::Be16 => {
                b[..2].copy_from_slice(&(c as u16).to_be_bytes());
                2
            }
            Enc::Nz16 => {
                b[..2].copy_from_slice(&((c % 0xFFFF) as u16 + 1).to_be_bytes());
                2
            }
            Enc::Be32 => {
                b[..4].copy_from_slice(&c.to_be_bytes());
                4
            }
            Enc::Be64 => {
                b[..4].copy_from_slice(&c.to_be_bytes());
                b[4..].copy_from_slice(&(!c).to_be_bytes());
                8
            }
            Enc::Ber4 => {
                b[..4].copy_from_slice(&(0x4000_0000 | (c & 0x3FFF_FFFF)).to_be_bytes());
                4
            }
            Enc::Hex8 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for (i, d) in b.iter_mut().enumerate() {
                    *d = HEX[((c >> (28 - 4 * i)) & 0xF) as usize];
                }
                8
            }
        };
        IdBytes { b, n }
    }
}

/// A condition on one reply byte.
#[derive(Debug, Clone, Copy)]
enum Guard {
    /// `reply[at] == v`
    Eq(usize, u8),
    /// `reply[at] & mask == v`
    Mask(usize, u8, u8),
    /// `reply[at]` is one of the values.
    OneOf(usize, &'static [u8]),
}

impl Guard {
    fn holds(self, r: &[u8]) -> bool {
        match self {
            Guard::Eq(at, v) => r.get(at) == Some(&v),
            Guard::Mask(at, m, v) => r.get(at).is_some_and(|&b| b & m == v),
            Guard::OneOf(at, vs) => r.get(at).is_some_and(|b| vs.contains(b)),
        }
    }
}

/// Where a reply echoes the cookie (field 0 unless noted).
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Nothing is echoed: `NoIdField`.
    None,
    /// Reply has at least `min` bytes, every guard holds, and field 0 is
    /// echoed at offset `at`.
    At {
        min: usize,
        when: &'static [Guard],
        at: usize,
    },
    /// Reply starts with `starts` and contains `needle` immediately followed
    /// by field 0 (text protocols, bencode).
    Contains {
        starts: &'static [u8],
        needle: &'static [u8],
    },
    /// The whole datagram is echoed verbatim (echo service).
    Whole,
    /// SNMP GetResponse-PDU request-id (BER walk).
    Snmp,
    /// LDAP search response messageID (BER walk).
    Ldap,
    /// CoAP message ID (ACK/RST) or token (separate response); uses fields 0 and 1.
    Coap,
    /// L2TP control header Tunnel ID = our Assigned Tunnel ID.
    L2tp,
    /// OpenVPN hard-reset reply acknowledging our session ID.
    OpenVpn,
    /// DTLS HelloVerifyRequest record sequence number.
    Dtls,
    /// QUIC Version Negotiation source connection ID = our destination CID.
    Quic,
    /// BACnet APDU invoke ID behind a variable-length NPDU.
    Bacnet,
}

/// Length of the concatenation of `parts` (for `bytes!`).
const fn total_len(parts: &[&[u8]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// Concatenate `parts` at compile time (for `bytes!`).
const fn concat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let mut j = 0;
        while j < p.len() {
            out[k] = p[j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// Offset just past the first `needle` in `hay`; a compile error if absent.
const fn after(hay: &[u8], needle: &[u8]) -> usize {
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let mut j = 0;
        while j < needle.len() && hay[i + j] == needle[j] {
            j += 1;
        }
        if j == needle.len() {
            return i + needle.len();
        }
        i += 1;
    }
    panic!("needle not found in template")
}

/// A `&'static [u8]` template built from parts (byte arrays and byte
/// strings), so each protocol field can sit on its own commented line.
macro_rules! bytes {
    ($($part:expr),* $(,)?) => {{
        const PARTS: &[&[u8]] = &[$($part),*];
        const OUT: [u8; total_len(PARTS)] = concat(PARTS);
        &OUT
    }};
}

// ---------------------------------------------------------------------------
// Text templates (named so that cookie offsets can be found at compile time).
// Cookie placeholders are "00000000".

/// RFC 862 echo: the service returns the datagram verbatim.
const ECHO: &[u8] = b"rawscan echo 00000000\r\n";

/// RFC 3261 §8.1.1 OPTIONS with all mandatory headers; `rport` (RFC 3581)
/// makes the server answer our source port. Branch, From tag and Call-ID
/// carry the cookie.
const SIP: &[u8] = b"OPTIONS sip:rawscan.invalid SIP/2.0\r\n\
Via: SIP/2.0/UDP rawscan.invalid:5060;branch=z9hG4bK00000000;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@rawscan.invalid>;tag=00000000\r\n\
To: <sip:rawscan.invalid>\r\n\
Call-ID: 00000000@rawscan.invalid\r\n\
CSeq: 1 OPTIONS\r\n\
Contact: <sip:probe@rawscan.invalid>\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\
\r\n";

/// UPnP Device Architecture 1.1 §1.3.2 M-SEARCH (no transaction ID).
const SSDP: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
HOST: 239.255.255.250:1900\r\n\
MAN: \"ssdp:discover\"\r\n\
MX: 1\r\n\
ST: ssdp:all\r\n\
\r\n";

/// WS-Discovery (2005/04, as used by Windows and ONVIF) Probe over SOAP 1.2.
/// The first group of the MessageID UUID (version 4 layout) is the cookie;
/// ProbeMatches echo it in `RelatesTo`.
const WSD: &[u8] = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\
<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" \
xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
xmlns:wsd=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\">\
<soap:Header>\
<wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>\
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action>\
<wsa:MessageID>urn:uuid:00000000-7261-4773-a361-6e2d70726f62</wsa:MessageID>\
</soap:Header>\
<soap:Body><wsd:Probe/></soap:Body>\
</soap:Envelope>";

/// BEP 5 KRPC `ping` query; the 4-byte transaction ID `t` is the cookie.
const DHT: &[u8] = b"d1:ad2:id20:rawscan-dht-probe-ide1:q4:ping1:t4:\0\0\0\x001:y1:qe";

// ---------------------------------------------------------------------------

/// The payload table, ordered by port.
/// An ONC RPC reply (RFC 5531 §9): msg_type REPLY, xid echoed at offset 0.
const RPC_REPLY: Reply = Reply::At {
    min: 12,
    when: &[
        Guard::Eq(4, 0),
        Guard::Eq(5, 0),
        Guard::Eq(6, 0),
        Guard::Eq(7, 1), // msg_type REPLY
    ],
    at: 0,
};

static PAYLOADS: &[Payload] = &[
    Payload {
        name: "echo",
        ports: &[7],
        spec: "RFC 862",
        template: ECHO,
        cookie: &[field(after(ECHO, b"echo "), Enc::Hex8)],
        reply: Reply::Whole,
        pad_to: 0,
    },
    Payload {
        name: "daytime",
        ports: &[13],
        spec: "RFC 867 (any datagram; contents ignored)",
        template: b"\r\n",
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "chargen",
        ports: &[19],
        spec: "RFC 864 (any datagram; contents ignored)",
        template: b"\r\n",
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "time",
        ports: &[37],
        spec: "RFC 868 (the request is an empty datagram)",
        template: b"",
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    // Answered locally (no recursion) by BIND, dnsmasq, Unbound, PowerDNS;
    // servers hiding their version still answer REFUSED/NOTIMP.
    Payload {
        name: "dns",
        ports: &[53],
        spec: "RFC 1035 §4.1: QUERY version.bind CH TXT",
        template: bytes![
            &[0x00, 0x00],             // ID (cookie)
            &[0x00, 0x00],             // QR=0 OPCODE=QUERY RD=0
            &[0x00, 0x01, 0x00, 0x00], // QDCOUNT=1 ANCOUNT=0
            &[0x00, 0x00, 0x00, 0x00], // NSCOUNT=0 ARCOUNT=0
            b"\x07version\x04bind\x00",
            &[0x00, 0x10, 0x00, 0x03], // QTYPE=TXT QCLASS=CH
        ],
        cookie: &[field(0, Enc::Be16)],
        reply: Reply::At {
            min: 12,
            when: &[Guard::Mask(2, 0x80, 0x80)], // QR=1
            at: 0,
        },
        pad_to: 0,
    },
    // Replies come from a new server port (the server's TID).
    Payload {
        name: "tftp",
        ports: &[69],
        spec: "RFC 1350 §5: RRQ, octet mode",
        template: bytes![
            &[0x00, 0x01], // opcode RRQ
            b"rawscan.txt\0",
            b"octet\0",
        ],
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    // KRB-ERROR replies echo no client-chosen field; the nonce still carries
    // the cookie (AS-REP hides it in the encrypted part).
    Payload {
        name: "kerberos",
        ports: &[88],
        spec: "RFC 4120 §5.4.1: AS-REQ (DER)",
        template: bytes![
            &[0x6A, 0x81, 0x93],                   // [APPLICATION 10] AS-REQ
            &[0x30, 0x81, 0x90],                   // KDC-REQ SEQUENCE
            &[0xA1, 0x03, 0x02, 0x01, 0x05],       // pvno [1] 5
            &[0xA2, 0x03, 0x02, 0x01, 0x0A],       // msg-type [2] 10 (AS-REQ)
            &[0xA4, 0x81, 0x83, 0x30, 0x81, 0x80], // req-body [4] SEQUENCE
            // kdc-options [0] BIT STRING: forwardable, proxiable, renewable
            &[0xA0, 0x07, 0x03, 0x05, 0x00, 0x50, 0x80, 0x00, 0x00],
            // cname [1] PrincipalName { NT-PRINCIPAL, "rawscan" }
            &[0xA1, 0x14, 0x30, 0x12, 0xA0, 0x03, 0x02, 0x01, 0x01],
            &[0xA1, 0x0B, 0x30, 0x09, 0x1B, 0x07],
            b"rawscan",
            &[0xA2, 0x11, 0x1B, 0x0F], // realm [2]
            b"RAWSCAN.INVALID",
            // sname [3] PrincipalName { NT-SRV-INST, "krbtgt"/REALM }
            &[0xA3, 0x24, 0x30, 0x22, 0xA0, 0x03, 0x02, 0x01, 0x02],
            &[0xA1, 0x1B, 0x30, 0x19, 0x1B, 0x06],
            b"krbtgt",
            &[0x1B, 0x0F],
            b"RAWSCAN.INVALID",
            &[0xA5, 0x11, 0x18, 0x0F], // till [5] GeneralizedTime
            b"20370913024805Z",
            &[0xA7, 0x06, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00], // nonce [7] (cookie)
            // etype [8]: aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96, rc4-hmac
            &[0xA8, 0x0B, 0x30, 0x09],
            &[0x02, 0x01, 0x12, 0x02, 0x01, 0x11, 0x02, 0x01, 0x17],
        ],
        cookie: &[field(133, Enc::Ber4)],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "portmap",
        ports: &[111],
        spec: "RFC 5531 §9 CALL, RFC 1833 PMAPPROC_NULL (program 100000 v2)",
        template: bytes![
            &[0x00, 0x00, 0x00, 0x00], // xid (cookie)
            &[0x00, 0x00, 0x00, 0x00], // msg_type CALL
            &[0x00, 0x00, 0x00, 0x02], // rpcvers 2
            &[0x00, 0x01, 0x86, 0xA0], // prog 100000 (portmapper)
            &[0x00, 0x00, 0x00, 0x02], // vers 2
            &[0x00, 0x00, 0x00, 0x00], // proc NULL
            &[0, 0, 0, 0, 0, 0, 0, 0], // cred AUTH_NONE, length 0
            &[0, 0, 0, 0, 0, 0, 0, 0], // verf AUTH_NONE, length 0
        ],
        cookie: &[field(0, Enc::Be32)],
        reply: RPC_REPLY,
        pad_to: 0,
    },
    // Transmit timestamp = cookie, !cookie (never zero); servers copy it into
    // the reply's origin timestamp (RFC 5905 §8; chrony and ntpd do).
    Payload {
        name: "ntp",
        ports: &[123],
        spec: "RFC 5905: NTPv4 client-mode packet",
        template: bytes![
            &[0x23, 0x00, 0x00, 0x00], // LI=0 VN=4 Mode=3, stratum, poll, precision
            &[0, 0, 0, 0],             // root delay
            &[0, 0, 0, 0],             // root dispersion
            &[0, 0, 0, 0],             // reference ID
            &[0, 0, 0, 0, 0, 0, 0, 0], // reference timestamp
            &[0, 0, 0, 0, 0, 0, 0, 0], // origin timestamp
            &[0, 0, 0, 0, 0, 0, 0, 0], // receive timestamp
            &[0, 0, 0, 0, 0, 0, 0, 0], // transmit timestamp (cookie)
        ],
        cookie: &[field(40, Enc::Be64)],
        reply: Reply::At {
            min: 48,
            when: &[Guard::Mask(0, 0x07, 0x04)], // Mode=4 (server)
            at: 24,                              // origin timestamp
        },
        pad_to: 0,
    },
    Payload {
        name: "netbios-ns",
        ports: &[137],
        spec: "RFC 1002 §4.2.17: NODE STATUS REQUEST for \"*\"",
        template: bytes![
            &[0x00, 0x00],             // NAME_TRN_ID (cookie)
            &[0x00, 0x00],             // R=0 OPCODE=query, no flags
            &[0x00, 0x01, 0x00, 0x00], // QDCOUNT=1 ANCOUNT=0
            &[0x00, 0x00, 0x00, 0x00], // NSCOUNT=0 ARCOUNT=0
            // "*" + 15 NULs, first-level encoded (RFC 1001 §14.1)
            b"\x20CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00",
            &[0x00, 0x21, 0x00, 0x01], // QUESTION_TYPE=NBSTAT QUESTION_CLASS=IN
        ],
        cookie: &[field(0, Enc::Be16)],
        reply: Reply::At {
            min: 12,
            when: &[Guard::Mask(2, 0x80, 0x80)], // R=1 (response)
            at: 0,
        },
        pad_to: 0,
    },
    Payload {
        name: "snmp",
        ports: &[161],
        spec: "RFC 1157 SNMPv1 GetRequest (RFC 3416 PDU), community public, sysDescr.0",
        template: bytes![
            &[0x30, 0x29],       // Message SEQUENCE
            &[0x02, 0x01, 0x00], // version-1 (0)
            &[0x04, 0x06],       // community
            b"public",
            &[0xA0, 0x1C],                         // GetRequest-PDU
            &[0x02, 0x04, 0x00, 0x00, 0x00, 0x00], // request-id (cookie)
            &[0x02, 0x01, 0x00],                   // error-status 0
            &[0x02, 0x01, 0x00],                   // error-index 0
            &[0x30, 0x0E, 0x30, 0x0C],             // VarBindList { VarBind
            &[0x06, 0x08, 0x2B, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00], // 1.3.6.1.2.1.1.1.0
            &[0x05, 0x00],                         // NULL }
        ],
        cookie: &[field(17, Enc::Ber4)],
        reply: Reply::Snmp,
        pad_to: 0,
    },
    Payload {
        name: "xdmcp",
        ports: &[177],
        spec: "XDMCP 1.1 §10: Query with no authentication names",
        template: bytes![
            &[0x00, 0x01], // version 1
            &[0x00, 0x02], // opcode Query
            &[0x00, 0x01], // length of the rest
            &[0x00],       // ARRAYofARRAY8 authentication-names: 0 entries
        ],
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    // Connectionless LDAP rootDSE search, as Active Directory answers it.
    Payload {
        name: "cldap",
        ports: &[389],
        spec: "RFC 4511 §4.5.1 searchRequest over UDP (RFC 1798, MS-ADTS 3.1.1.3)",
        template: bytes![
            &[0x30, 0x4B],                         // LDAPMessage SEQUENCE
            &[0x02, 0x04, 0x00, 0x00, 0x00, 0x00], // messageID (cookie)
            &[0x63, 0x43],                         // [APPLICATION 3] SearchRequest
            &[0x04, 0x00],                         // baseObject ""
            &[0x0A, 0x01, 0x00],                   // scope baseObject
            &[0x0A, 0x01, 0x00],                   // derefAliases never
            &[0x02, 0x01, 0x00],                   // sizeLimit 0
            &[0x02, 0x01, 0x00],                   // timeLimit 0
            &[0x01, 0x01, 0x00],                   // typesOnly FALSE
            &[0x87, 0x0B],                         // filter: present
            b"objectClass",
            &[0x30, 0x23, 0x04, 0x0B], // attributes
            b"dnsHostName",
            &[0x04, 0x14],
            b"defaultNamingContext",
        ],
        cookie: &[field(4, Enc::Ber4)],
        reply: Reply::Ldap,
        pad_to: 0,
    },
    Payload {
        name: "slp",
        ports: &[427],
        spec: "RFC 2608 §8.1: SLPv2 SrvRqst for service:service-agent",
        template: bytes![
            &[0x02, 0x01],       // version 2, function SrvRqst
            &[0x00, 0x00, 0x36], // length 54
            &[0x00, 0x00],       // flags
            &[0x00, 0x00, 0x00], // next extension offset
            &[0x00, 0x00],       // XID (cookie)
            &[0x00, 0x02],       // language tag
            b"en",
            &[0x00, 0x00], // <PRList>
            &[0x00, 0x15], // <service-type>
            b"service:service-agent",
            &[0x00, 0x07], // <scope-list>
            b"DEFAULT",
            &[0x00, 0x00], // <predicate>
            &[0x00, 0x00], // <SLP SPI>
        ],
        cookie: &[field(10, Enc::Be16)],
        reply: Reply::At {
            min: 14,
            when: &[Guard::Eq(0, 2), Guard::OneOf(1, &[2, 8, 11])], // SrvRply, DAAdvert, SAAdvert
            at: 10,
        },
        pad_to: 0,
    },
    // A version reserved for negotiation forces a Version Negotiation reply,
    // which copies our DCID into its SCID. Servers ignore datagrams < 1200 bytes.
    Payload {
        name: "quic",
        ports: &[443],
        spec: "RFC 9000 §6, §15, §17.2.1 (RFC 8999 invariants): long header, version 0x1a2a3a4a",
        template: bytes![
            &[0xC0],                         // long header, fixed bit, Initial
            &[0x1A, 0x2A, 0x3A, 0x4A],       // version 0x?a?a?a?a: forces Version Negotiation
            &[0x08, 0, 0, 0, 0, 0, 0, 0, 0], // DCID length 8, DCID (cookie)
            &[0x08],                         // SCID length 8
            b"rawscan0",                     // SCID
            &[0x00],                         // token length 0
            &[0x44, 0x96],                   // length 1174 (varint): rest of the datagram
        ],
        cookie: &[field(6, Enc::Be64)],
        reply: Reply::Quic,
        pad_to: 1200,
    },
    // Initiator SPI = cookie, !cookie. Any answer (SA_INIT response,
    // NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, COOKIE, even IKEv1
    // INVALID-MAJOR-VERSION) echoes it.
    Payload {
        name: "ike",
        ports: &[500],
        spec: "RFC 7296 §1.2, §3: IKEv2 IKE_SA_INIT (SA, KE x25519, Ni)",
        template: bytes![
            &[0, 0, 0, 0, 0, 0, 0, 0],                         // initiator SPI (cookie)
            &[0, 0, 0, 0, 0, 0, 0, 0],                         // responder SPI
            &[0x21, 0x20, 0x22, 0x08], // next SA, version 2.0, IKE_SA_INIT, flags I
            &[0x00, 0x00, 0x00, 0x00], // message ID 0
            &[0x00, 0x00, 0x00, 0xC4], // length 196
            &[0x22, 0x00, 0x00, 0x5C], // SA: next KE, length 92
            &[0x00, 0x00, 0x00, 0x58, 0x01, 0x01, 0x00, 0x09], // last proposal #1, IKE, no SPI, 9 transforms
            &[
                0x03, 0x00, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x0C, 0x80, 0x0E, 0x00, 0x80
            ], // ENCR AES-CBC-128
            &[
                0x03, 0x00, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x0C, 0x80, 0x0E, 0x01, 0x00
            ], // ENCR AES-CBC-256
            &[0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x05], // PRF HMAC-SHA2-256
            &[0x03, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x02], // PRF HMAC-SHA1
            &[0x03, 0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x0C], // INTEG HMAC-SHA2-256-128
            &[0x03, 0x00, 0x00, 0x08, 0x03, 0x00, 0x00, 0x02], // INTEG HMAC-SHA1-96
            &[0x03, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x1F], // D-H Curve25519
            &[0x03, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x13], // D-H ECP-256
            &[0x00, 0x00, 0x00, 0x08, 0x04, 0x00, 0x00, 0x0E], // D-H MODP-2048 (last)
            &[0x28, 0x00, 0x00, 0x28, 0x00, 0x1F, 0x00, 0x00], // KE: next Ni, length 40, group 31
            // x25519 public key: the base point u=9 (a valid, non-small-order point)
            &[9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x00, 0x00, 0x00, 0x24], // Ni: last payload, length 36
            b"rawscan-ikev2-nonce-0123456789ab",
        ],
        cookie: &[field(0, Enc::Be64)],
        reply: Reply::At {
            min: 28,
            when: &[Guard::Mask(19, 0x08, 0x00)], // not sent by an initiator
            at: 0,
        },
        pad_to: 0,
    },
    Payload {
        name: "rip",
        ports: &[520],
        spec: "RFC 2453 §3.9.1: RIPv2 request for the whole table",
        template: bytes![
            &[0x01, 0x02, 0x00, 0x00], // command request, version 2
            &[0x00, 0x00, 0x00, 0x00], // AFI 0, route tag 0
            &[0, 0, 0, 0],             // IP address
            &[0, 0, 0, 0],             // subnet mask
            &[0, 0, 0, 0],             // next hop
            &[0x00, 0x00, 0x00, 0x10], // metric 16 (infinity)
        ],
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "asf-rmcp",
        ports: &[623],
        spec: "DMTF DSP0136 (ASF 2.0) §3.2.4.2: RMCP Presence Ping (IPMI BMCs answer)",
        template: bytes![
            &[0x06, 0x00, 0xFF, 0x06], // RMCP v1.0, reserved, seq 0xFF (no ACK), class ASF
            &[0x00, 0x00, 0x11, 0xBE], // IANA enterprise 4542 (ASF)
            &[0x80],                   // Presence Ping
            &[0x00],                   // message tag (cookie; 0xFF is reserved)
            &[0x00, 0x00],             // reserved, data length 0
        ],
        cookie: &[field(9, Enc::Tag8)],
        reply: Reply::At {
            min: 12,
            when: &[
                Guard::Eq(0, 0x06),
                Guard::Mask(3, 0x1F, 0x06), // class ASF (ACK bit ignored)
                Guard::Eq(8, 0x40),         // Presence Pong
            ],
            at: 9,
        },
        pad_to: 0,
    },
    Payload {
        name: "openvpn",
        ports: &[1194],
        spec: "OpenVPN wire protocol: P_CONTROL_HARD_RESET_CLIENT_V2 (no tls-auth)",
        template: bytes![
            &[0x38],                   // opcode 7 << 3 | key_id 0
            &[0, 0, 0, 0, 0, 0, 0, 0], // session ID (cookie)
            &[0x00],                   // ACK array length 0
            &[0x00, 0x00, 0x00, 0x00], // message packet-ID 0
        ],
        cookie: &[field(1, Enc::Be64)],
        reply: Reply::OpenVpn,
        pad_to: 0,
    },
    Payload {
        name: "ms-sql-browser",
        ports: &[1434],
        spec: "[MC-SQLR] §2.2.2: CLNT_UCAST_EX",
        template: &[0x03],
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    // The reply authenticator is keyed by the shared secret, so only the
    // identifier can be checked.
    Payload {
        name: "radius",
        ports: &[1812, 1645],
        spec: "RFC 2865 §4.1: Access-Request",
        template: bytes![
            &[0x01, 0x00, 0x00, 0x38], // Access-Request, identifier (cookie), length 56
            &[0, 0, 0, 0, 0, 0, 0, 0], // request authenticator (cookie) ...
            b"rawscan!",               // ... and a fixed tail
            &[0x01, 0x09],             // User-Name
            b"rawscan",
            &[0x02, 0x12], // User-Password: one 16-octet block
            b"rawscan-password",
            &[0x20, 0x09], // NAS-Identifier
            b"rawscan",
        ],
        cookie: &[field(1, Enc::Lo8), field(4, Enc::Be64)],
        reply: Reply::At {
            min: 20,
            when: &[Guard::OneOf(0, &[2, 3, 11])], // Accept, Reject, Challenge
            at: 1,
        },
        pad_to: 0,
    },
    Payload {
        name: "l2tp",
        ports: &[1701],
        spec: "RFC 2661 §6.1: L2TPv2 SCCRQ",
        template: bytes![
            &[0xC8, 0x02, 0x00, 0x3B], // T L S, version 2, length 59
            &[0x00, 0x00, 0x00, 0x00], // tunnel ID 0, session ID 0
            &[0x00, 0x00, 0x00, 0x00], // Ns 0, Nr 0
            &[0x80, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01], // Message Type: SCCRQ
            &[0x80, 0x08, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00], // Protocol Version 1.0
            &[0x80, 0x0A, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03], // Framing: sync+async
            &[0x80, 0x0D, 0x00, 0x00, 0x00, 0x07], // Host Name
            b"rawscan",
            &[0x80, 0x08, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00], // Assigned Tunnel ID (cookie)
        ],
        cookie: &[field(57, Enc::Nz16)],
        reply: Reply::L2tp,
        pad_to: 0,
    },
    Payload {
        name: "ssdp",
        ports: &[1900],
        spec: "UPnP Device Architecture 1.1 §1.3.2: M-SEARCH",
        template: SSDP,
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "nfs",
        ports: &[2049],
        spec: "RFC 5531 §9 CALL, RFC 1813 NFSPROC3_NULL (program 100003 v3)",
        template: bytes![
            &[0x00, 0x00, 0x00, 0x00], // xid (cookie)
            &[0x00, 0x00, 0x00, 0x00], // msg_type CALL
            &[0x00, 0x00, 0x00, 0x02], // rpcvers 2
            &[0x00, 0x01, 0x86, 0xA3], // prog 100003 (nfs)
            &[0x00, 0x00, 0x00, 0x03], // vers 3
            &[0x00, 0x00, 0x00, 0x00], // proc NULL
            &[0, 0, 0, 0, 0, 0, 0, 0], // cred AUTH_NONE, length 0
            &[0, 0, 0, 0, 0, 0, 0, 0], // verf AUTH_NONE, length 0
        ],
        cookie: &[field(0, Enc::Be32)],
        reply: RPC_REPLY,
        pad_to: 0,
    },
    Payload {
        name: "stun",
        ports: &[3478],
        spec: "RFC 8489 (RFC 5389) §5, §6: Binding request",
        template: bytes![
            &[0x00, 0x01, 0x00, 0x00], // Binding request, length 0
            &[0x21, 0x12, 0xA4, 0x42], // magic cookie
            &[0, 0, 0, 0, 0, 0, 0, 0], // transaction ID (cookie) ...
            b"rscn",                   // ... and a fixed tail
        ],
        cookie: &[field(8, Enc::Be64)],
        reply: Reply::At {
            min: 20,
            when: &[
                Guard::Eq(0, 0x01),
                Guard::Mask(1, 0xEF, 0x01), // Binding success (0x0101) or error (0x0111)
                Guard::Eq(4, 0x21),
                Guard::Eq(5, 0x12),
                Guard::Eq(6, 0xA4),
                Guard::Eq(7, 0x42),
            ],
            at: 8,
        },
        pad_to: 0,
    },
    Payload {
        name: "ws-discovery",
        ports: &[3702],
        spec: "WS-Discovery 2005/04 §5.2: Probe (SOAP 1.2)",
        template: WSD,
        cookie: &[field(after(WSD, b"<wsa:MessageID>urn:uuid:"), Enc::Hex8)],
        reply: Reply::Contains {
            starts: b"",
            needle: b"RelatesTo>urn:uuid:",
        },
        pad_to: 0,
    },
    // A HelloVerifyRequest copies the ClientHello's record sequence number
    // (RFC 6347 §4.2.1), so the cookie goes there.
    Payload {
        name: "dtls",
        ports: &[4433, 5684],
        spec: "RFC 6347 §4.2: DTLS 1.2 ClientHello",
        template: bytes![
            &[0x16, 0xFE, 0xFF],       // handshake record, DTLS 1.0 record version
            &[0x00, 0x00],             // epoch 0
            &[0x00, 0x00, 0, 0, 0, 0], // sequence number (low 32 bits: cookie)
            &[0x00, 0x6A],             // record length 106
            &[0x01, 0x00, 0x00, 0x5E], // ClientHello, length 94
            &[0x00, 0x00],             // message_seq 0
            &[0x00, 0x00, 0x00, 0x00, 0x00, 0x5E], // fragment offset 0, length 94
            &[0xFE, 0xFD],             // client_version DTLS 1.2
            b"rawscan-dtls-client-hello-random",
            &[0x00],       // session_id: empty
            &[0x00],       // cookie: empty
            &[0x00, 0x12], // cipher suites (9)
            &[0xC0, 0x2B, 0xC0, 0x2F, 0xC0, 0x2C, 0xC0, 0x30, 0xC0, 0xAE],
            &[0xC0, 0xA8, 0x00, 0x9C, 0x00, 0x2F, 0x00, 0xFF],
            &[0x01, 0x00], // compression: null
            &[0x00, 0x22], // extensions length 34
            &[0x00, 0x0A, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1D, 0x00, 0x17], // groups x25519, P-256
            &[0x00, 0x0B, 0x00, 0x02, 0x01, 0x00], // ec_point_formats: uncompressed
            &[0x00, 0x0D, 0x00, 0x0A, 0x00, 0x08], // signature_algorithms (4)
            &[0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03],
            &[0x00, 0x17, 0x00, 0x00], // extended_master_secret
        ],
        cookie: &[field(7, Enc::Be32)],
        reply: Reply::Dtls,
        pad_to: 0,
    },
    Payload {
        name: "sip",
        ports: &[5060],
        spec: "RFC 3261 §8.1.1, §11: OPTIONS (rport per RFC 3581)",
        template: SIP,
        cookie: &[
            field(after(SIP, b"branch=z9hG4bK"), Enc::Hex8),
            field(after(SIP, b";tag="), Enc::Hex8),
            field(after(SIP, b"Call-ID: "), Enc::Hex8),
        ],
        reply: Reply::Contains {
            starts: b"SIP/2.0 ",
            needle: b"branch=z9hG4bK",
        },
        pad_to: 0,
    },
    Payload {
        name: "nat-pmp",
        ports: &[5351],
        spec: "RFC 6886 §3.2: external address request",
        template: &[0x00, 0x00], // version 0, opcode 0
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    // Responders answer a query from a port other than 5353 with a
    // conventional unicast reply repeating the ID (RFC 6762 §6.7).
    Payload {
        name: "mdns",
        ports: &[5353],
        spec: "RFC 6762 §6.7 legacy unicast query, RFC 6763 §9 service enumeration",
        template: bytes![
            &[0x00, 0x00],             // ID (cookie)
            &[0x00, 0x00],             // standard query
            &[0x00, 0x01, 0x00, 0x00], // QDCOUNT=1 ANCOUNT=0
            &[0x00, 0x00, 0x00, 0x00], // NSCOUNT=0 ARCOUNT=0
            b"\x09_services\x07_dns-sd\x04_udp\x05local\x00",
            &[0x00, 0x0C, 0x00, 0x01], // QTYPE=PTR QCLASS=IN
        ],
        cookie: &[field(0, Enc::Be16)],
        reply: Reply::At {
            min: 12,
            when: &[Guard::Mask(2, 0x80, 0x80)], // QR=1
            at: 0,
        },
        pad_to: 0,
    },
    Payload {
        name: "coap",
        ports: &[5683],
        spec: "RFC 7252 §3, RFC 6690 §4: CON GET /.well-known/core",
        template: bytes![
            &[0x44, 0x01],             // Ver 1, CON, TKL 4; code 0.01 GET
            &[0x00, 0x00],             // message ID (cookie)
            &[0x00, 0x00, 0x00, 0x00], // token (cookie)
            &[0xBB],                   // Uri-Path (11), length 11
            b".well-known",
            &[0x04], // Uri-Path, length 4
            b"core",
        ],
        cookie: &[field(2, Enc::Be16), field(4, Enc::Be32)],
        reply: Reply::Coap,
        pad_to: 0,
    },
    Payload {
        name: "bittorrent-dht",
        ports: &[6881],
        spec: "BEP 5: KRPC ping query",
        template: DHT,
        cookie: &[field(after(DHT, b"1:t4:"), Enc::Be32)],
        reply: Reply::Contains {
            starts: b"d",
            needle: b"1:t4:",
        },
        pad_to: 0,
    },
    Payload {
        name: "ubiquiti",
        ports: &[10001],
        spec: "Ubiquiti discovery v1 request (vendor protocol, no public spec)",
        template: &[0x01, 0x00, 0x00, 0x00], // version 1, command 0, payload length 0
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    // Requests are independent datagrams; the frame's request ID is echoed.
    Payload {
        name: "memcached",
        ports: &[11211],
        spec: "memcached protocol.txt \"UDP protocol\": frame header + version",
        template: bytes![
            &[0x00, 0x00], // request ID (cookie)
            &[0x00, 0x00], // sequence number 0
            &[0x00, 0x01], // total datagrams 1
            &[0x00, 0x00], // reserved
            b"version\r\n",
        ],
        cookie: &[field(0, Enc::Be16)],
        reply: Reply::At {
            min: 8,
            when: &[],
            at: 0,
        },
        pad_to: 0,
    },
    Payload {
        name: "source-engine",
        ports: &[27015],
        spec: "Valve Server Queries: A2S_INFO",
        template: bytes![&[0xFF, 0xFF, 0xFF, 0xFF], b"TSource Engine Query\0"],
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "quake3",
        ports: &[27960],
        spec: "id Tech 3 connectionless packet: getstatus",
        template: bytes![&[0xFF, 0xFF, 0xFF, 0xFF], b"getstatus"],
        cookie: &[],
        reply: Reply::None,
        pad_to: 0,
    },
    Payload {
        name: "enip",
        ports: &[44818],
        spec: "ODVA CIP Vol. 2 (EtherNet/IP) §2-4.2: ListIdentity",
        template: bytes![
            &[0x63, 0x00],             // command ListIdentity (LE)
            &[0x00, 0x00],             // length 0
            &[0x00, 0x00, 0x00, 0x00], // session handle
            &[0x00, 0x00, 0x00, 0x00], // status
            &[0, 0, 0, 0, 0, 0, 0, 0], // sender context (cookie)
            &[0x00, 0x00, 0x00, 0x00], // options
        ],
        cookie: &[field(12, Enc::Be64)],
        reply: Reply::At {
            min: 24,
            when: &[Guard::Eq(0, 0x63), Guard::Eq(1, 0x00)],
            at: 12,
        },
        pad_to: 0,
    },
    // ReadProperty(Device 4194303 = "this device", Object_Identifier).
    Payload {
        name: "bacnet",
        ports: &[47808],
        spec: "ASHRAE 135 Annex J, §15.5: BACnet/IP ReadProperty",
        template: bytes![
            &[0x81, 0x0A, 0x00, 0x11], // BVLC: BACnet/IP, Original-Unicast-NPDU, length 17
            &[0x01, 0x04],             // NPDU version 1, expecting reply
            &[0x00, 0x05],             // Confirmed-Request, max APDU 1476
            &[0x00],                   // invoke ID (cookie)
            &[0x0C],                   // service ReadProperty
            &[0x0C, 0x02, 0x3F, 0xFF, 0xFF], // [0] object: device, instance 4194303
            &[0x19, 0x4B],             // [1] property: object-identifier (75)
        ],
        cookie: &[field(8, Enc::Lo8)],
        reply: Reply::Bacnet,
        pad_to: 0,
    },
];

/// The payload to send to `port`, if any (unknown ports get an empty datagram: None).
pub fn payload_for(port: u16) -> Option<&'static Payload> {
    PAYLOADS.iter().find(|p| p.ports.contains(&port))
}

/// All payloads (for docs and tests).
pub fn all() -> &'static [Payload] {
    PAYLOADS
}

impl Payload {
    /// The specification (RFC or vendor document) the probe follows.
    pub fn spec(&self) -> &'static str {
        self.spec
    }

    /// Whether replies can be tied to the cookie (`check_reply` can return `Match`).
    pub fn has_id_field(&self) -> bool {
        !matches!(self.reply, Reply::None)
    }

    /// Write the probe into `buf` (cleared first), embedding `cookie` where the protocol has an ID field.
    pub fn write(&self, cookie: u32, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(self.template);
        for f in self.cookie {
            let id = f.enc.encode(cookie);
            if let Some(dst) = buf.get_mut(f.at..f.at + id.len()) {
                dst.copy_from_slice(&id);
            }
        }
        if buf.len() < self.pad_to {
            buf.resize(self.pad_to, 0);
        }
    }

    /// What this datagram from the probed port proves. `Verified` when it
    /// carries our cookie as the protocol echoes it, or is our probe
    /// reflected back byte for byte with a cookie in it (an echo-like
    /// service: nmap calls that open too); `Unverified` when the protocol
    /// has no ID field (or the reflected probe carries none); `Rejected`
    /// when it is not this protocol's reply to our probe.
    pub fn evidence(&self, cookie: u32, reply: &[u8]) -> Evidence {
        match self.check_reply(cookie, reply) {
            CookieCheck::Match => Evidence::Verified,
            CookieCheck::NoIdField => Evidence::Unverified,
            CookieCheck::Mismatch => {
                let mut probe = Vec::with_capacity(reply.len());
                self.write(cookie, &mut probe);
                if probe != reply {
                    Evidence::Rejected
                } else if self.cookie.is_empty() {
                    Evidence::Unverified
                } else {
                    Evidence::Verified
                }
            }
        }
    }

    /// Is this datagram from the probed port believed at all (verified or
    /// not)? See [`Payload::evidence`].
    pub fn accepts(&self, cookie: u32, reply: &[u8]) -> bool {
        self.evidence(cookie, reply) != Evidence::Rejected
    }

    /// Does this reply datagram (UDP payload bytes from the target port) belong to a probe sent with `cookie`?
    pub fn check_reply(&self, cookie: u32, reply: &[u8]) -> CookieCheck {
        let id = |i: usize| self.cookie.get(i).map(|f| f.enc.encode(cookie));
        let Some(want) = id(0) else {
            return CookieCheck::NoIdField;
        };
        let ok = match self.reply {
            Reply::None => return CookieCheck::NoIdField,
            Reply::At { min, when, at } => {
                reply.len() >= min
                    && when.iter().all(|g| g.holds(reply))
                    && reply.get(at..at + want.len()) == Some(&want[..])
            }
            Reply::Contains { starts, needle } => {
                reply.starts_with(starts) && contains_pair(reply, needle, &want)
            }
            Reply::Whole => {
                let mut sent = Vec::with_capacity(self.template.len().max(self.pad_to));
                self.write(cookie, &mut sent);
                reply == sent.as_slice()
            }
            Reply::Snmp => snmp_request_id(reply).is_some_and(|rid| ber_int_eq(rid, &want)),
            Reply::Ldap => ldap_message_id(reply).is_some_and(|mid| ber_int_eq(mid, &want)),
            Reply::Coap => match id(1) {
                Some(token) => coap_matches(reply, &want, &token),
                None => false,
            },
            Reply::L2tp => l2tp_tunnel_id(reply) == Some(&want[..]),
            Reply::OpenVpn => openvpn_acked_session(reply) == Some(&want[..]),
            Reply::Dtls => return dtls_check(reply, &want),
            Reply::Quic => quic_vn_scid(reply) == Some(&want[..]),
            Reply::Bacnet => bacnet_invoke_id(reply) == Some(&want[..]),
        };
        if ok {
            CookieCheck::Match
        } else {
            CookieCheck::Mismatch
        }
    }
}

// ---------------------------------------------------------------------------
// Reply parsers: each returns None on anything short or malformed.

/// Does `hay` contain `needle` immediately followed by `id`?
fn contains_pair(hay: &[u8], needle: &[u8], id: &[u8]) -> bool {
    let w = needle.len() + id.len();
    w > 0
        && hay.len() >= w
        && hay
            .windows(w)
            .any(|x| x.starts_with(needle) && x.ends_with(id))
}

/// One BER TLV: `(tag, contents, rest)`. Low tag numbers only; definite
/// lengths of up to 4 length octets.
fn ber(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&l, b) = b.split_first()?;
    let (len, b) = if l < 0x80 {
        (usize::from(l), b)
    } else {
        let n = usize::from(l & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(..n)?
            .iter()
            .fold(0usize, |a, &x| a << 8 | usize::from(x));
        (len, b.get(n..)?)
    };
    Some((tag, b.get(..len)?, b.get(len..)?))
}

/// Value of BER INTEGER contents of 1..=8 octets.
fn ber_int(c: &[u8]) -> Option<i64> {
    let first = *c.first()?;
    if c.len() > 8 {
        return None;
    }
    let init: i64 = if first & 0x80 != 0 { -1 } else { 0 };
    Some(c.iter().fold(init, |a, &x| (a << 8) | i64::from(x)))
}

/// Do two BER INTEGER contents encode the same value (tolerating
/// non-minimal encodings from sloppy agents)?
fn ber_int_eq(got: &[u8], want: &[u8]) -> bool {
    matches!((ber_int(got), ber_int(want)), (Some(a), Some(b)) if a == b)
}

/// request-id of an SNMP Message{version, community, GetResponse-PDU}.
fn snmp_request_id(r: &[u8]) -> Option<&[u8]> {
    let (0x30, msg, _) = ber(r)? else { return None };
    let (0x02, _version, msg) = ber(msg)? else {
        return None;
    };
    let (0x04, _community, msg) = ber(msg)? else {
        return None;
    };
    let (0xA2, pdu, _) = ber(msg)? else {
        return None;
    };
    let (0x02, rid, _) = ber(pdu)? else {
        return None;
    };
    Some(rid)
}

/// messageID of an LDAPMessage carrying a search response.
fn ldap_message_id(r: &[u8]) -> Option<&[u8]> {
    let (0x30, msg, _) = ber(r)? else { return None };
    let (0x02, mid, msg) = ber(msg)? else {
        return None;
    };
    // searchResEntry, searchResDone, searchResRef
    let (0x64 | 0x65 | 0x73, _, _) = ber(msg)? else {
        return None;
    };
    Some(mid)
}

/// CoAP: an empty or piggybacked ACK/RST echoes the message ID (and the
/// token, if any); a separate response (CON/NON) echoes the token.
fn coap_matches(r: &[u8], mid: &[u8], token: &[u8]) -> bool {
    let (Some(&b0), Some(&code), Some(m)) = (r.first(), r.get(1), r.get(2..4)) else {
        return false;
    };
    let tkl = usize::from(b0 & 0x0F);
    if b0 >> 6 != 1 || tkl > 8 {
        return false;
    }
    let tok = r.get(4..4 + tkl);
    let response = code >> 5 >= 2; // classes 2.xx..5.xx
    match (b0 >> 4) & 0x03 {
        2 | 3 => (code == 0 || response) && m == mid && (tkl == 0 || tok == Some(token)),
        _ => response && tok == Some(token),
    }
}

/// Tunnel ID of an L2TPv2 control message.
fn l2tp_tunnel_id(r: &[u8]) -> Option<&[u8]> {
    let (&flags, rest) = r.split_first()?;
    if flags & 0x80 == 0 || rest.first()? & 0x0F != 2 {
        return None;
    }
    let at = if flags & 0x40 != 0 { 4 } else { 2 };
    r.get(at..at + 2)
}

/// Remote session ID in a P_CONTROL_HARD_RESET_SERVER_V2 (ACKs our packet).
fn openvpn_acked_session(r: &[u8]) -> Option<&[u8]> {
    if r.first()? >> 3 != 8 {
        return None;
    }
    let acks = usize::from(*r.get(9)?);
    if acks == 0 {
        return None;
    }
    let at = 10 + 4 * acks;
    r.get(at..at + 8)
}

/// DTLS: a HelloVerifyRequest echoes the record sequence number; other
/// complete handshake/alert records echo nothing (NoIdField).
fn dtls_check(r: &[u8], want: &[u8]) -> CookieCheck {
    let Some(hdr) = r.get(..13) else {
        return CookieCheck::Mismatch;
    };
    let len = usize::from(u16::from_be_bytes([hdr[11], hdr[12]]));
    let Some(body) = r.get(13..13 + len) else {
        return CookieCheck::Mismatch;
    };
    if !matches!(hdr[0], 21 | 22) || hdr[1] != 0xFE {
        return CookieCheck::Mismatch;
    }
    if hdr[0] == 22 && body.first() == Some(&3) {
        return if hdr[3..7] == [0, 0, 0, 0] && hdr[7..11] == *want {
            CookieCheck::Match
        } else {
            CookieCheck::Mismatch
        };
    }
    CookieCheck::NoIdField
}

/// Source connection ID of a QUIC Version Negotiation packet.
fn quic_vn_scid(r: &[u8]) -> Option<&[u8]> {
    if r.first()? & 0x80 == 0 || r.get(1..5)? != [0, 0, 0, 0] {
        return None;
    }
    let dcil = usize::from(*r.get(5)?);
    let scil = usize::from(*r.get(6 + dcil)?);
    r.get(7 + dcil..7 + dcil + scil)
}

/// Invoke ID of a BACnet/IP reply APDU (SimpleACK, ComplexACK, Error,
/// Reject, Abort), skipping the BVLC header and the NPDU's optional fields.
fn bacnet_invoke_id(r: &[u8]) -> Option<&[u8]> {
    if *r.first()? != 0x81 {
        return None;
    }
    let mut i = match *r.get(1)? {
        0x0A | 0x0B => 4, // Original-Unicast/Broadcast-NPDU
        0x04 => 10,       // Forwarded-NPDU: + original B/IP address
        _ => return None,
    };
    let control = *r.get(i + 1)?;
    if *r.get(i)? != 0x01 || control & 0x80 != 0 {
        return None; // not version 1, or a network-layer message
    }
    i += 2;
    if control & 0x20 != 0 {
        i += 3 + usize::from(*r.get(i + 2)?); // DNET, DLEN, DADR
    }
    if control & 0x08 != 0 {
        i += 3 + usize::from(*r.get(i + 2)?); // SNET, SLEN, SADR
    }
    if control & 0x20 != 0 {
        i += 1; // hop count
    }
    if !matches!(*r.get(i)? >> 4, 2 | 3 | 5 | 6 | 7) {
        return None;
    }
    r.get(i + 1..i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIES: [u32; 7] = [
        0,
        1,
        0x1234_5678,
        0x7FFF_FFFF,
        0x8000_0000,
        0xDEAD_BEEF,
        u32::MAX,
    ];

    // ---- helpers ---------------------------------------------------------

    fn get(name: &str) -> &'static Payload {
        all()
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no payload named {name}"))
    }

    fn probe(name: &str, c: u32) -> Vec<u8> {
        let mut v = vec![0xAA; 7]; // must be cleared by write
        get(name).write(c, &mut v);
        v
    }

    fn hex(c: u32) -> String {
        format!("{c:08x}")
    }

    fn be64(c: u32) -> [u8; 8] {
        let mut b = [0; 8];
        b[..4].copy_from_slice(&c.to_be_bytes());
        b[4..].copy_from_slice(&(!c).to_be_bytes());
        b
    }

    fn u16at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn u32at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    fn ber4(c: u32) -> i64 {
        i64::from(0x4000_0000 | (c & 0x3FFF_FFFF))
    }

    fn find(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
    }

    /// Test-side DER reader: (tag, contents, rest); asserts minimal lengths.
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        assert!(b.len() >= 2, "truncated TLV");
        assert_ne!(b[0] & 0x1F, 0x1F, "high tag number");
        let (len, hdr) = match b[1] {
            n @ 0..=0x7F => (usize::from(n), 2),
            0x81 => {
                assert!(b[2] >= 0x80, "non-minimal length");
                (usize::from(b[2]), 3)
            }
            0x82 => {
                let n = usize::from(u16at(b, 2));
                assert!(n >= 0x100, "non-minimal length");
                (n, 4)
            }
            x => panic!("unexpected length octet {x:#x}"),
        };
        assert!(b.len() >= hdr + len, "TLV overruns its container");
        (b[0], &b[hdr..hdr + len], &b[hdr + len..])
    }

    /// Test-side DER INTEGER: minimal, 1..=8 octets.
    fn der_int(c: &[u8]) -> i64 {
        assert!(!c.is_empty() && c.len() <= 8, "INTEGER length {}", c.len());
        if c.len() > 1 {
            assert!(!(c[0] == 0x00 && c[1] & 0x80 == 0), "non-minimal INTEGER");
            assert!(!(c[0] == 0xFF && c[1] & 0x80 != 0), "non-minimal INTEGER");
        }
        let init: i64 = if c[0] & 0x80 != 0 { -1 } else { 0 };
        c.iter().fold(init, |a, &x| (a << 8) | i64::from(x))
    }

    /// Test-side DER encoder.
    fn t(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        match content.len() {
            n @ 0..=0x7F => v.push(n as u8),
            n @ 0x80..=0xFF => v.extend([0x81, n as u8]),
            n => v.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        v.extend_from_slice(content);
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    // ---- DNS-family parser -------------------------------------------------

    struct Query {
        id: u16,
        flags: u16,
        labels: Vec<Vec<u8>>,
        qtype: u16,
        qclass: u16,
    }

    fn parse_query(b: &[u8]) -> Query {
        assert!(b.len() >= 12, "header");
        assert_eq!(u16at(b, 4), 1, "QDCOUNT");
        assert_eq!(u16at(b, 6), 0, "ANCOUNT");
        assert_eq!(u16at(b, 8), 0, "NSCOUNT");
        assert_eq!(u16at(b, 10), 0, "ARCOUNT");
        let mut i = 12;
        let mut labels = Vec::new();
        let mut total = 1;
        loop {
            let l = usize::from(b[i]);
            i += 1;
            if l == 0 {
                break;
            }
            assert!(l <= 63, "label length {l} (no compression in queries)");
            labels.push(b[i..i + l].to_vec());
            total += l + 1;
            i += l;
        }
        assert!(total <= 255, "name too long");
        assert_eq!(i + 4, b.len(), "question must end the message exactly");
        Query {
            id: u16at(b, 0),
            flags: u16at(b, 2),
            labels,
            qtype: u16at(b, i),
            qclass: u16at(b, i + 2),
        }
    }

    fn labels(q: &Query) -> Vec<&str> {
        q.labels
            .iter()
            .map(|l| std::str::from_utf8(l).expect("ascii label"))
            .collect()
    }

    fn v_dns(b: &[u8], c: u32) {
        let q = parse_query(b);
        assert_eq!(q.id, c as u16, "ID = cookie low 16 bits");
        assert_eq!(q.flags, 0, "standard query");
        assert_eq!(labels(&q), ["version", "bind"]);
        assert_eq!((q.qtype, q.qclass), (16, 3), "TXT CH");
    }

    fn v_mdns(b: &[u8], c: u32) {
        let q = parse_query(b);
        assert_eq!(q.id, c as u16);
        assert_eq!(q.flags, 0);
        assert_eq!(labels(&q), ["_services", "_dns-sd", "_udp", "local"]);
        assert_eq!((q.qtype, q.qclass), (12, 1), "PTR IN, QU bit clear");
    }

    fn v_netbios(b: &[u8], c: u32) {
        let q = parse_query(b);
        assert_eq!(q.id, c as u16);
        assert_eq!(q.flags, 0, "query, not broadcast, not recursive");
        assert_eq!(q.labels.len(), 1);
        let enc = &q.labels[0];
        assert_eq!(enc.len(), 32, "first-level encoded NetBIOS name");
        assert!(enc.iter().all(|x| (b'A'..=b'P').contains(x)));
        let name: Vec<u8> = enc
            .chunks(2)
            .map(|p| ((p[0] - b'A') << 4) | (p[1] - b'A'))
            .collect();
        assert_eq!(name[0], b'*');
        assert!(name[1..].iter().all(|&x| x == 0));
        assert_eq!((q.qtype, q.qclass), (0x21, 1), "NBSTAT IN");
    }

    // ---- binary protocols ----------------------------------------------------

    fn v_ntp(b: &[u8], c: u32) {
        assert_eq!(b.len(), 48);
        assert_eq!(b[0] >> 6, 0, "LI");
        assert_eq!((b[0] >> 3) & 7, 4, "VN");
        assert_eq!(b[0] & 7, 3, "mode client");
        assert!(b[1..40].iter().all(|&x| x == 0));
        assert_eq!(b[40..48], be64(c), "transmit timestamp carries the cookie");
        assert_ne!(b[40..48], [0; 8], "transmit timestamp must be non-zero");
    }

    fn v_snmp(b: &[u8], c: u32) {
        let (tag, msg, rest) = tlv(b);
        assert_eq!((tag, rest.len()), (0x30, 0));
        let (tag, ver, msg) = tlv(msg);
        assert_eq!((tag, der_int(ver)), (0x02, 0), "version-1");
        let (tag, community, msg) = tlv(msg);
        assert_eq!((tag, community), (0x04, &b"public"[..]));
        let (tag, pdu, msg) = tlv(msg);
        assert_eq!(
            (tag, msg.len()),
            (0xA0, 0),
            "GetRequest-PDU ends the message"
        );
        let (tag, rid, pdu) = tlv(pdu);
        assert_eq!(tag, 0x02);
        assert!(der_int(rid) > 0, "request-id positive");
        assert_eq!(der_int(rid), ber4(c));
        let (tag, es, pdu) = tlv(pdu);
        assert_eq!((tag, der_int(es)), (0x02, 0), "error-status");
        let (tag, ei, pdu) = tlv(pdu);
        assert_eq!((tag, der_int(ei)), (0x02, 0), "error-index");
        let (tag, vbl, pdu) = tlv(pdu);
        assert_eq!((tag, pdu.len()), (0x30, 0));
        let (tag, vb, vbl) = tlv(vbl);
        assert_eq!((tag, vbl.len()), (0x30, 0), "one varbind");
        let (tag, oid, vb) = tlv(vb);
        assert_eq!(tag, 0x06);
        assert_eq!(
            oid,
            [0x2B, 6, 1, 2, 1, 1, 1, 0],
            "1.3.6.1.2.1.1.1.0 sysDescr.0"
        );
        assert_eq!(vb, [0x05, 0x00], "NULL value");
    }

    fn v_rpc(b: &[u8], c: u32, prog: u32, vers: u32) {
        assert_eq!(b.len(), 40);
        assert_eq!(u32at(b, 0), c, "xid");
        assert_eq!(u32at(b, 4), 0, "CALL");
        assert_eq!(u32at(b, 8), 2, "rpcvers");
        assert_eq!(u32at(b, 12), prog);
        assert_eq!(u32at(b, 16), vers);
        assert_eq!(u32at(b, 20), 0, "NULL procedure");
        assert_eq!((u32at(b, 24), u32at(b, 28)), (0, 0), "cred AUTH_NONE");
        assert_eq!((u32at(b, 32), u32at(b, 36)), (0, 0), "verf AUTH_NONE");
    }

    fn v_portmap(b: &[u8], c: u32) {
        v_rpc(b, c, 100_000, 2);
    }

    fn v_nfs(b: &[u8], c: u32) {
        v_rpc(b, c, 100_003, 3);
    }

    fn v_ike(b: &[u8], c: u32) {
        assert!(b.len() >= 28);
        assert_eq!(b[0..8], be64(c), "initiator SPI");
        assert_eq!(b[8..16], [0; 8], "responder SPI zero in IKE_SA_INIT");
        assert_eq!(b[17], 0x20, "version 2.0");
        assert_eq!(b[18], 34, "IKE_SA_INIT");
        assert_eq!(b[19], 0x08, "Initiator flag only");
        assert_eq!(u32at(b, 20), 0, "message ID");
        assert_eq!(u32at(b, 24) as usize, b.len(), "length");
        let (mut next, mut off, mut kinds) = (b[16], 28, Vec::new());
        while next != 0 {
            let (n, crit, len) = (b[off], b[off + 1], usize::from(u16at(b, off + 2)));
            assert_eq!(crit, 0, "critical/reserved bits");
            assert!(len >= 4 && off + len <= b.len());
            let body = &b[off + 4..off + len];
            match next {
                33 => {
                    // one proposal
                    assert_eq!(body[0], 0, "last proposal");
                    assert_eq!(usize::from(u16at(body, 2)), body.len());
                    assert_eq!((body[4], body[5], body[6]), (1, 1, 0), "#1, IKE, no SPI");
                    let ntrans = usize::from(body[7]);
                    let (mut t, mut types, mut count) = (8, Vec::new(), 0);
                    while t < body.len() {
                        let tlen = usize::from(u16at(body, t + 2));
                        assert!(tlen >= 8 && t + tlen <= body.len());
                        count += 1;
                        assert_eq!(body[t], if count == ntrans { 0 } else { 3 });
                        types.push(body[t + 4]);
                        if body[t + 4] == 1 {
                            assert_eq!(tlen, 12, "AES-CBC needs a key length attribute");
                            assert_eq!(u16at(body, t + 8), 0x800E);
                        }
                        t += tlen;
                    }
                    assert_eq!(t, body.len());
                    assert_eq!(count, ntrans);
                    for ty in 1..=4 {
                        assert!(types.contains(&ty), "transform type {ty} missing");
                    }
                }
                34 => {
                    assert_eq!(u16at(body, 0), 31, "KE group Curve25519");
                    assert_eq!(u16at(body, 2), 0);
                    assert_eq!(body.len() - 4, 32, "x25519 public value");
                }
                40 => assert!((16..=256).contains(&body.len()), "nonce size"),
                x => panic!("unexpected payload {x}"),
            }
            kinds.push(next);
            next = n;
            off += len;
        }
        assert_eq!(off, b.len(), "payloads fill the message");
        assert_eq!(kinds, [33, 34, 40], "SA, KE, Ni");
    }

    fn v_memcached(b: &[u8], c: u32) {
        assert_eq!(u16at(b, 0), c as u16, "request ID");
        assert_eq!(u16at(b, 2), 0, "sequence number");
        assert_eq!(u16at(b, 4), 1, "total datagrams");
        assert_eq!(u16at(b, 6), 0, "reserved");
        assert_eq!(&b[8..], b"version\r\n");
    }

    fn v_stun(b: &[u8], c: u32) {
        assert_eq!(b.len(), 20);
        assert_eq!(b[0] & 0xC0, 0, "top bits zero");
        assert_eq!(u16at(b, 0), 0x0001, "Binding request");
        assert_eq!(usize::from(u16at(b, 2)), b.len() - 20, "message length");
        assert_eq!(u16at(b, 2) % 4, 0);
        assert_eq!(u32at(b, 4), 0x2112_A442, "magic cookie");
        assert_eq!(b[8..16], be64(c), "transaction ID");
    }

    fn v_coap(b: &[u8], c: u32) {
        assert_eq!(b[0] >> 6, 1, "version");
        assert_eq!((b[0] >> 4) & 3, 0, "CON");
        let tkl = usize::from(b[0] & 0x0F);
        assert_eq!(tkl, 4);
        assert_eq!(b[1], 0x01, "0.01 GET");
        assert_eq!(u16at(b, 2), c as u16, "message ID");
        assert_eq!(b[4..8], c.to_be_bytes(), "token");
        let (mut i, mut num, mut opts) = (4 + tkl, 0u32, Vec::new());
        while i < b.len() {
            assert_ne!(b[i], 0xFF, "no payload expected");
            let (mut d, mut l) = (u32::from(b[i] >> 4), usize::from(b[i] & 0x0F));
            i += 1;
            match d {
                13 => {
                    d = u32::from(b[i]) + 13;
                    i += 1;
                }
                14 => {
                    d = u32::from(u16at(b, i)) + 269;
                    i += 2;
                }
                15 => panic!("reserved delta"),
                _ => {}
            }
            match l {
                13 => {
                    l = usize::from(b[i]) + 13;
                    i += 1;
                }
                14 => {
                    l = usize::from(u16at(b, i)) + 269;
                    i += 2;
                }
                15 => panic!("reserved length"),
                _ => {}
            }
            num += d;
            opts.push((num, b[i..i + l].to_vec()));
            i += l;
        }
        assert_eq!(i, b.len());
        assert_eq!(
            opts,
            [(11, b".well-known".to_vec()), (11, b"core".to_vec())],
            "Uri-Path /.well-known/core"
        );
    }

    fn v_radius(b: &[u8], c: u32) {
        assert_eq!(b[0], 1, "Access-Request");
        assert_eq!(b[1], c as u8, "identifier");
        assert_eq!(usize::from(u16at(b, 2)), b.len(), "length");
        assert!((20..=4096).contains(&b.len()));
        assert_eq!(b[4..12], be64(c), "authenticator carries the cookie");
        let (mut i, mut seen) = (20, Vec::new());
        while i < b.len() {
            let (ty, len) = (b[i], usize::from(b[i + 1]));
            assert!(len >= 2 && i + len <= b.len());
            if ty == 2 {
                assert!(len - 2 >= 16 && (len - 2) % 16 == 0 && len - 2 <= 128);
            }
            seen.push(ty);
            i += len;
        }
        assert_eq!(i, b.len());
        assert!(seen.contains(&1), "User-Name");
        assert!(seen.contains(&2), "User-Password");
        assert!(
            seen.contains(&32) || seen.contains(&4),
            "NAS-Identifier or NAS-IP"
        );
    }

    fn v_tftp(b: &[u8], _c: u32) {
        assert_eq!(u16at(b, 0), 1, "RRQ");
        let parts: Vec<&[u8]> = b[2..].split(|&x| x == 0).collect();
        assert_eq!(parts.len(), 3, "filename NUL mode NUL");
        assert!(!parts[0].is_empty() && parts[0].iter().all(u8::is_ascii_graphic));
        assert!(parts[1].eq_ignore_ascii_case(b"octet"));
        assert!(parts[2].is_empty(), "nothing after the mode");
    }

    fn v_asf(b: &[u8], c: u32) {
        assert_eq!(b.len(), 12);
        assert_eq!(b[0], 0x06, "RMCP version 1.0");
        assert_eq!(b[2], 0xFF, "no RMCP ACK");
        assert_eq!(b[3], 0x06, "class ASF");
        assert_eq!(u32at(b, 4), 4542, "ASF IANA");
        assert_eq!(b[8], 0x80, "Presence Ping");
        assert_eq!(b[9], (c % 255) as u8, "message tag");
        assert_ne!(b[9], 0xFF, "0xFF tag means no response");
        assert_eq!((b[10], b[11]), (0, 0), "reserved, data length");
    }

    fn v_mssql(b: &[u8], _c: u32) {
        assert_eq!(b, [0x03], "CLNT_UCAST_EX");
    }

    fn v_natpmp(b: &[u8], _c: u32) {
        assert_eq!(b, [0, 0], "version 0, opcode 0 (external address)");
    }

    fn v_l2tp(b: &[u8], c: u32) {
        assert_eq!(b[0] & 0xCB, 0xC8, "T, L, S set; O, P clear");
        assert_eq!(b[1] & 0x0F, 2, "version 2");
        assert_eq!(usize::from(u16at(b, 2)), b.len(), "length");
        assert_eq!(u32at(b, 4), 0, "tunnel/session 0");
        assert_eq!(u32at(b, 8), 0, "Ns/Nr 0");
        let (mut i, mut avps) = (12, Vec::new());
        while i < b.len() {
            let hdr = u16at(b, i);
            let len = usize::from(hdr & 0x03FF);
            assert_eq!(hdr & 0xFC00, 0x8000, "M set, H and reserved clear");
            assert!(len >= 6 && i + len <= b.len());
            assert_eq!(u16at(b, i + 2), 0, "IETF vendor");
            avps.push((u16at(b, i + 4), b[i + 6..i + len].to_vec()));
            i += len;
        }
        assert_eq!(i, b.len());
        assert_eq!(avps[0], (0, vec![0, 1]), "first AVP: Message Type SCCRQ");
        let get = |ty: u16| avps.iter().find(|a| a.0 == ty).map(|a| a.1.clone());
        assert_eq!(get(2), Some(vec![1, 0]), "Protocol Version 1.0");
        assert_eq!(get(3).map(|v| v.len()), Some(4), "Framing Capabilities");
        assert!(get(7).is_some_and(|v| !v.is_empty()), "Host Name");
        let tid = get(9).expect("Assigned Tunnel ID");
        let tid = u16::from_be_bytes([tid[0], tid[1]]);
        assert_ne!(tid, 0);
        assert_eq!(tid, (c % 0xFFFF) as u16 + 1);
    }

    fn v_openvpn(b: &[u8], c: u32) {
        assert_eq!(b.len(), 14);
        assert_eq!(b[0] >> 3, 7, "P_CONTROL_HARD_RESET_CLIENT_V2");
        assert_eq!(b[0] & 7, 0, "key_id 0");
        assert_eq!(b[1..9], be64(c), "session ID");
        assert_eq!(b[9], 0, "ACK array empty");
        assert_eq!(u32at(b, 10), 0, "message packet-ID");
    }

    fn v_dtls(b: &[u8], c: u32) {
        assert_eq!(b[0], 22, "handshake record");
        assert_eq!(b[1], 0xFE, "DTLS");
        assert_eq!(u16at(b, 3), 0, "epoch 0");
        assert_eq!(
            b[5..11],
            [&[0, 0][..], &c.to_be_bytes()].concat()[..],
            "sequence"
        );
        assert_eq!(usize::from(u16at(b, 11)), b.len() - 13, "record length");
        let h = &b[13..];
        assert_eq!(h[0], 1, "ClientHello");
        let len = u32at(h, 0) as usize & 0xFF_FFFF;
        assert_eq!(len, h.len() - 12);
        assert_eq!(u16at(h, 4), 0, "message_seq");
        assert_eq!(u32at(h, 5) >> 8, 0, "fragment_offset");
        assert_eq!(u32at(h, 8) as usize & 0xFF_FFFF, len, "unfragmented");
        let m = &h[12..];
        assert_eq!(u16at(m, 0), 0xFEFD, "client_version DTLS 1.2");
        let mut i = 2 + 32;
        let sid = usize::from(m[i]);
        assert!(sid <= 32);
        i += 1 + sid;
        let ck = usize::from(m[i]);
        assert_eq!(ck, 0, "no cookie in the first ClientHello");
        i += 1;
        let cs = usize::from(u16at(m, i));
        assert!(cs >= 2 && cs % 2 == 0);
        i += 2 + cs;
        let comp = usize::from(m[i]);
        assert!(m[i + 1..i + 1 + comp].contains(&0), "null compression");
        i += 1 + comp;
        let ext_len = usize::from(u16at(m, i));
        i += 2;
        assert_eq!(i + ext_len, m.len(), "extensions end the message");
        let mut types = Vec::new();
        while i < m.len() {
            let (ty, l) = (u16at(m, i), usize::from(u16at(m, i + 2)));
            assert!(i + 4 + l <= m.len());
            if ty == 0x0A || ty == 0x0D {
                assert_eq!(usize::from(u16at(m, i + 4)), l - 2, "list length");
            }
            assert!(!types.contains(&ty), "duplicate extension");
            types.push(ty);
            i += 4 + l;
        }
        assert_eq!(i, m.len());
    }

    fn v_quic(b: &[u8], c: u32) {
        assert_eq!(
            b.len(),
            1200,
            "client datagrams carrying Initials are >= 1200 bytes"
        );
        assert_eq!(b[0] & 0xC0, 0xC0, "long header, fixed bit");
        assert_eq!(u32at(b, 1) & 0x0F0F_0F0F, 0x0A0A_0A0A, "reserved version");
        assert_eq!(b[5], 8, "DCID length");
        assert_eq!(b[6..14], be64(c), "DCID");
        let scil = usize::from(b[14]);
        assert!(scil <= 20);
        assert!(15 + scil < b.len());
    }

    fn v_bacnet(b: &[u8], c: u32) {
        assert_eq!(b[0], 0x81, "BVLL BACnet/IP");
        assert_eq!(b[1], 0x0A, "Original-Unicast-NPDU");
        assert_eq!(usize::from(u16at(b, 2)), b.len());
        assert_eq!(b[4], 0x01, "NPDU version");
        assert_eq!(b[5], 0x04, "expecting reply, no DNET/SNET, APDU follows");
        let a = &b[6..];
        assert_eq!(a[0], 0x00, "Confirmed-Request, unsegmented");
        assert_eq!(a[1] & 0x0F, 5, "max APDU 1476");
        assert_eq!(a[2], c as u8, "invoke ID");
        assert_eq!(a[3], 12, "ReadProperty");
        assert_eq!(a[4], 0x0C, "context tag 0, length 4");
        let oid = u32at(a, 5);
        assert_eq!(oid >> 22, 8, "object type device");
        assert_eq!(oid & 0x3F_FFFF, 4_194_303, "wildcard instance");
        assert_eq!(a[9..], [0x19, 75], "context tag 1: Object_Identifier");
    }

    fn v_echo(b: &[u8], c: u32) {
        assert_eq!(b, format!("rawscan echo {}\r\n", hex(c)).as_bytes());
    }

    fn v_ignored(b: &[u8], _c: u32) {
        assert_eq!(b, b"\r\n", "any datagram triggers a reply");
    }

    fn v_time(b: &[u8], _c: u32) {
        assert!(b.is_empty(), "RFC 868: the request is an empty datagram");
    }

    fn v_kerberos(b: &[u8], c: u32) {
        let (tag, req, rest) = tlv(b);
        assert_eq!((tag, rest.len()), (0x6A, 0), "[APPLICATION 10]");
        let (tag, kdc, rest) = tlv(req);
        assert_eq!((tag, rest.len()), (0x30, 0));
        let (tag, pvno, kdc) = tlv(kdc);
        assert_eq!((tag, tlv(pvno).0, der_int(tlv(pvno).1)), (0xA1, 0x02, 5));
        let (tag, mt, kdc) = tlv(kdc);
        assert_eq!((tag, der_int(tlv(mt).1)), (0xA2, 10), "AS-REQ");
        let (tag, body, kdc) = tlv(kdc);
        assert_eq!((tag, kdc.len()), (0xA4, 0), "req-body (no padata)");
        let (tag, mut body, rest) = tlv(body);
        assert_eq!((tag, rest.len()), (0x30, 0));
        let mut fields = Vec::new();
        while !body.is_empty() {
            let (tag, inner, rest) = tlv(body);
            assert_eq!(tag & 0xE0, 0xA0, "context-specific constructed");
            fields.push((tag & 0x1F, inner));
            body = rest;
        }
        let nums: Vec<u8> = fields.iter().map(|f| f.0).collect();
        assert_eq!(nums, [0, 1, 2, 3, 5, 7, 8], "fields in order");
        let f = |n: u8| {
            fields
                .iter()
                .find(|x| x.0 == n)
                .map(|x| x.1)
                .expect("field")
        };
        let (tag, opts, _) = tlv(f(0));
        assert_eq!(
            (tag, opts.len(), opts[0]),
            (0x03, 5, 0),
            "KDCOptions 32 bits"
        );
        for n in [1, 3] {
            let (tag, pn, _) = tlv(f(n));
            assert_eq!(tag, 0x30, "PrincipalName");
            let (tag, nt, pn) = tlv(pn);
            assert_eq!((tag, tlv(nt).0), (0xA0, 0x02), "name-type");
            let (tag, strings, _) = tlv(pn);
            let (stag, mut strings, _) = tlv(strings);
            assert_eq!((tag, stag), (0xA1, 0x30));
            while !strings.is_empty() {
                let (tag, s, rest) = tlv(strings);
                assert_eq!(tag, 0x1B, "KerberosString");
                assert!(!s.is_empty());
                strings = rest;
            }
        }
        let (tag, realm, _) = tlv(f(2));
        assert_eq!((tag, realm), (0x1B, &b"RAWSCAN.INVALID"[..]));
        let (tag, till, _) = tlv(f(5));
        assert_eq!(
            (tag, till.len(), till[14]),
            (0x18, 15, b'Z'),
            "KerberosTime"
        );
        assert!(till[..14].iter().all(u8::is_ascii_digit));
        let (tag, nonce, _) = tlv(f(7));
        assert_eq!(tag, 0x02);
        assert_eq!(der_int(nonce), ber4(c), "nonce carries the cookie");
        let (tag, mut et, _) = tlv(f(8));
        assert_eq!(tag, 0x30);
        let mut etypes = Vec::new();
        while !et.is_empty() {
            let (tag, e, rest) = tlv(et);
            assert_eq!(tag, 0x02);
            etypes.push(der_int(e));
            et = rest;
        }
        assert_eq!(etypes, [18, 17, 23]);
    }

    fn v_cldap(b: &[u8], c: u32) {
        let (tag, msg, rest) = tlv(b);
        assert_eq!((tag, rest.len()), (0x30, 0));
        let (tag, mid, msg) = tlv(msg);
        assert_eq!(tag, 0x02);
        assert_eq!(der_int(mid), ber4(c), "messageID");
        assert!(der_int(mid) > 0 && der_int(mid) <= i64::from(i32::MAX));
        let (tag, sr, msg) = tlv(msg);
        assert_eq!((tag, msg.len()), (0x63, 0), "SearchRequest, no controls");
        let (tag, base, sr) = tlv(sr);
        assert_eq!((tag, base.len()), (0x04, 0), "rootDSE");
        let (tag, scope, sr) = tlv(sr);
        assert_eq!((tag, scope), (0x0A, &[0][..]), "baseObject");
        let (tag, deref, sr) = tlv(sr);
        assert_eq!((tag, deref), (0x0A, &[0][..]));
        let (tag, size, sr) = tlv(sr);
        assert_eq!((tag, der_int(size)), (0x02, 0));
        let (tag, time, sr) = tlv(sr);
        assert_eq!((tag, der_int(time)), (0x02, 0));
        let (tag, types_only, sr) = tlv(sr);
        assert_eq!((tag, types_only), (0x01, &[0][..]));
        let (tag, filter, sr) = tlv(sr);
        assert_eq!((tag, filter), (0x87, &b"objectClass"[..]), "present filter");
        let (tag, mut attrs, sr) = tlv(sr);
        assert_eq!((tag, sr.len()), (0x30, 0));
        let mut names = Vec::new();
        while !attrs.is_empty() {
            let (tag, a, rest) = tlv(attrs);
            assert_eq!(tag, 0x04);
            names.push(a);
            attrs = rest;
        }
        assert_eq!(names, [&b"dnsHostName"[..], b"defaultNamingContext"]);
    }

    fn v_xdmcp(b: &[u8], _c: u32) {
        assert_eq!(u16at(b, 0), 1, "version");
        assert_eq!(u16at(b, 2), 2, "Query");
        assert_eq!(usize::from(u16at(b, 4)), b.len() - 6, "length");
        assert_eq!(b[6], 0, "no authentication names");
        assert_eq!(b.len(), 7);
    }

    fn v_slp(b: &[u8], c: u32) {
        assert_eq!((b[0], b[1]), (2, 1), "SLPv2 SrvRqst");
        assert_eq!(u32at(b, 1) as usize & 0xFF_FFFF, b.len(), "length");
        assert_eq!(u16at(b, 5), 0, "flags");
        assert_eq!(u32at(b, 6) >> 8, 0, "no extensions");
        assert_eq!(u16at(b, 10), c as u16, "XID");
        let mut i = 12;
        let mut next = || {
            let l = usize::from(u16at(b, i));
            let s = &b[i + 2..i + 2 + l];
            i += 2 + l;
            s
        };
        assert_eq!(next(), b"en", "language tag");
        assert_eq!(next(), b"", "PRList");
        let st = next();
        assert!(st.starts_with(b"service:"), "service type");
        assert_eq!(next(), b"DEFAULT", "scope");
        assert_eq!(next(), b"", "predicate");
        assert_eq!(next(), b"", "SPI");
        assert_eq!(i, b.len());
    }

    fn v_rip(b: &[u8], _c: u32) {
        assert_eq!(b.len(), 24);
        assert_eq!(b[..4], [1, 2, 0, 0], "request, version 2");
        assert_eq!(u16at(b, 4), 0, "AFI 0: whole table");
        assert!(b[6..20].iter().all(|&x| x == 0));
        assert_eq!(u32at(b, 20), 16, "metric infinity");
    }

    fn v_ubiquiti(b: &[u8], _c: u32) {
        assert_eq!(b, [1, 0, 0, 0], "v1, discovery, no payload");
    }

    fn v_a2s(b: &[u8], _c: u32) {
        assert_eq!(b[..4], [0xFF; 4], "connectionless header");
        assert_eq!(b[4], b'T', "A2S_INFO");
        assert_eq!(&b[5..], b"Source Engine Query\0");
    }

    fn v_quake3(b: &[u8], _c: u32) {
        assert_eq!(b[..4], [0xFF; 4], "connectionless header");
        assert_eq!(&b[4..], b"getstatus");
    }

    fn v_enip(b: &[u8], c: u32) {
        assert_eq!(b.len(), 24);
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x0063, "ListIdentity");
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 0, "length");
        assert_eq!(u32at(b, 4), 0, "session");
        assert_eq!(u32at(b, 8), 0, "status");
        assert_eq!(b[12..20], be64(c), "sender context");
        assert_eq!(u32at(b, 20), 0, "options");
    }

    // ---- text protocols --------------------------------------------------

    fn split_http(b: &[u8]) -> (String, Vec<(String, String)>) {
        let s = std::str::from_utf8(b).expect("ASCII");
        assert!(s.is_ascii());
        let (head, body) = s
            .split_once("\r\n\r\n")
            .expect("CRLF CRLF ends the headers");
        assert_eq!(body, "", "no body");
        let mut lines = head.split("\r\n");
        let first = lines.next().expect("start line").to_string();
        let headers = lines
            .map(|l| {
                assert!(!l.starts_with([' ', '\t']), "no folding");
                let (n, v) = l.split_once(':').expect("header line");
                assert!(!n.is_empty() && !n.contains(' '));
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        (first, headers)
    }

    fn one<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
        let v: Vec<&str> = h
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(v.len(), 1, "exactly one {name} header");
        v[0]
    }

    fn v_sip(b: &[u8], c: u32) {
        let (rl, h) = split_http(b);
        let parts: Vec<&str> = rl.split(' ').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "OPTIONS");
        assert!(parts[1].starts_with("sip:"));
        assert_eq!(parts[2], "SIP/2.0");
        let via = one(&h, "via");
        assert!(via.starts_with("SIP/2.0/UDP "));
        let params: Vec<&str> = via.split(';').skip(1).collect();
        assert!(params.contains(&format!("branch=z9hG4bK{}", hex(c)).as_str()));
        assert!(params.contains(&"rport"));
        assert_eq!(one(&h, "max-forwards"), "70");
        let from = one(&h, "from");
        assert!(from.starts_with("<sip:") && from.ends_with(&format!(";tag={}", hex(c))));
        assert!(one(&h, "to").starts_with("<sip:"));
        assert_eq!(one(&h, "call-id"), format!("{}@rawscan.invalid", hex(c)));
        assert_eq!(one(&h, "cseq"), "1 OPTIONS", "CSeq method matches");
        assert_eq!(one(&h, "content-length"), "0");
        one(&h, "contact");
    }

    fn v_ssdp(b: &[u8], _c: u32) {
        let (rl, h) = split_http(b);
        assert_eq!(rl, "M-SEARCH * HTTP/1.1");
        assert_eq!(one(&h, "host"), "239.255.255.250:1900");
        assert_eq!(one(&h, "man"), "\"ssdp:discover\"");
        let mx: u8 = one(&h, "mx").parse().expect("MX integer");
        assert!((1..=5).contains(&mx));
        assert_eq!(one(&h, "st"), "ssdp:all");
    }

    /// Tag names of an XML document, checking that tags balance.
    fn xml_tags(s: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = s;
        let mut roots = 0;
        while let Some(open) = rest.find('<') {
            assert!(!rest[..open].contains('>'), "stray '>'");
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if tag.starts_with('?') {
                assert!(tag.ends_with('?') && stack.is_empty() && roots == 0);
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched close");
                continue;
            }
            let name = tag
                .split_whitespace()
                .next()
                .expect("tag name")
                .trim_end_matches('/');
            if stack.is_empty() {
                roots += 1;
            }
            seen.push(name.to_string());
            if !tag.ends_with('/') {
                stack.push(name.to_string());
            }
        }
        assert!(stack.is_empty(), "unclosed elements {stack:?}");
        assert_eq!(roots, 1);
        assert!(rest.trim().is_empty());
        seen
    }

    fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
        let a = s.find(open).expect("open") + open.len();
        &s[a..a + s[a..].find(close).expect("close")]
    }

    fn v_wsd(b: &[u8], c: u32) {
        let s = std::str::from_utf8(b).expect("UTF-8");
        assert!(s.starts_with("<?xml version=\"1.0\""));
        let tags = xml_tags(s);
        assert_eq!(tags[0], "soap:Envelope");
        for t in [
            "soap:Header",
            "wsa:To",
            "wsa:Action",
            "wsa:MessageID",
            "soap:Body",
            "wsd:Probe",
        ] {
            assert!(tags.iter().any(|x| x == t), "{t} missing");
        }
        assert!(s.contains("xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\""));
        assert_eq!(
            between(s, "<wsa:Action>", "</wsa:Action>"),
            "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
        );
        assert_eq!(
            between(s, "<wsa:To>", "</wsa:To>"),
            "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
        );
        let id = between(s, "<wsa:MessageID>", "</wsa:MessageID>");
        let uuid = id.strip_prefix("urn:uuid:").expect("urn:uuid:");
        let groups: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            groups
                .iter()
                .all(|g| g.bytes().all(|x| x.is_ascii_hexdigit()))
        );
        assert_eq!(groups[0], hex(c));
        assert!(groups[2].starts_with('4'), "version 4");
        assert!("89ab".contains(&groups[3][..1]), "RFC 4122 variant");
    }

    // ---- bencode (BEP 3) -------------------------------------------------

    #[derive(Debug, PartialEq)]
    enum Bv {
        Int(i64),
        Str(Vec<u8>),
        List(Vec<Bv>),
        Dict(Vec<(Vec<u8>, Bv)>),
    }

    fn bdecode(b: &[u8], i: &mut usize) -> Bv {
        match b[*i] {
            b'i' => {
                let end = *i + b[*i..].iter().position(|&x| x == b'e').expect("e");
                let v = std::str::from_utf8(&b[*i + 1..end])
                    .unwrap()
                    .parse()
                    .unwrap();
                *i = end + 1;
                Bv::Int(v)
            }
            b'l' => {
                *i += 1;
                let mut v = Vec::new();
                while b[*i] != b'e' {
                    v.push(bdecode(b, i));
                }
                *i += 1;
                Bv::List(v)
            }
            b'd' => {
                *i += 1;
                let mut v: Vec<(Vec<u8>, Bv)> = Vec::new();
                while b[*i] != b'e' {
                    let Bv::Str(k) = bdecode(b, i) else {
                        panic!("key must be a string")
                    };
                    if let Some(last) = v.last() {
                        assert!(last.0 < k, "keys sorted and unique");
                    }
                    let val = bdecode(b, i);
                    v.push((k, val));
                }
                *i += 1;
                Bv::Dict(v)
            }
            b'0'..=b'9' => {
                let colon = *i + b[*i..].iter().position(|&x| x == b':').expect(":");
                let n: usize = std::str::from_utf8(&b[*i..colon]).unwrap().parse().unwrap();
                *i = colon + 1 + n;
                Bv::Str(b[colon + 1..colon + 1 + n].to_vec())
            }
            x => panic!("bad bencode byte {x}"),
        }
    }

    fn v_dht(b: &[u8], c: u32) {
        let mut i = 0;
        let v = bdecode(b, &mut i);
        assert_eq!(i, b.len(), "one value, nothing after");
        let s = |x: &[u8]| Bv::Str(x.to_vec());
        let Bv::Dict(d) = v else {
            panic!("top level dict")
        };
        let keys: Vec<&[u8]> = d.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"a"[..], b"q", b"t", b"y"]);
        let Bv::Dict(a) = &d[0].1 else {
            panic!("a is a dict")
        };
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, b"id");
        assert!(
            matches!(&a[0].1, Bv::Str(id) if id.len() == 20),
            "20-byte node ID"
        );
        assert_eq!(d[1].1, s(b"ping"));
        assert_eq!(d[2].1, s(&c.to_be_bytes()), "transaction ID");
        assert_eq!(d[3].1, s(b"q"), "query");
    }

    macro_rules! validators {
        ($($test:ident: $name:literal => $check:ident;)*) => {
            $(
                #[test]
                fn $test() {
                    for c in COOKIES {
                        $check(&probe($name, c), c);
                    }
                }
            )*
            const VALIDATED: &[&str] = &[$($name),*];
        };
    }

    validators! {
        probe_echo: "echo" => v_echo;
        probe_daytime: "daytime" => v_ignored;
        probe_chargen: "chargen" => v_ignored;
        probe_time: "time" => v_time;
        probe_dns: "dns" => v_dns;
        probe_tftp: "tftp" => v_tftp;
        probe_kerberos: "kerberos" => v_kerberos;
        probe_portmap: "portmap" => v_portmap;
        probe_ntp: "ntp" => v_ntp;
        probe_netbios: "netbios-ns" => v_netbios;
        probe_snmp: "snmp" => v_snmp;
        probe_xdmcp: "xdmcp" => v_xdmcp;
        probe_cldap: "cldap" => v_cldap;
        probe_slp: "slp" => v_slp;
        probe_quic: "quic" => v_quic;
        probe_ike: "ike" => v_ike;
        probe_rip: "rip" => v_rip;
        probe_asf: "asf-rmcp" => v_asf;
        probe_openvpn: "openvpn" => v_openvpn;
        probe_mssql: "ms-sql-browser" => v_mssql;
        probe_radius: "radius" => v_radius;
        probe_l2tp: "l2tp" => v_l2tp;
        probe_ssdp: "ssdp" => v_ssdp;
        probe_nfs: "nfs" => v_nfs;
        probe_stun: "stun" => v_stun;
        probe_wsd: "ws-discovery" => v_wsd;
        probe_dtls: "dtls" => v_dtls;
        probe_sip: "sip" => v_sip;
        probe_natpmp: "nat-pmp" => v_natpmp;
        probe_mdns: "mdns" => v_mdns;
        probe_coap: "coap" => v_coap;
        probe_dht: "bittorrent-dht" => v_dht;
        probe_ubiquiti: "ubiquiti" => v_ubiquiti;
        probe_memcached: "memcached" => v_memcached;
        probe_source_engine: "source-engine" => v_a2s;
        probe_quake3: "quake3" => v_quake3;
        probe_enip: "enip" => v_enip;
        probe_bacnet: "bacnet" => v_bacnet;
    }

    // ---- plausible replies -----------------------------------------------

    /// A plausible reply echoing the ID of the probe sent with `c`, and the
    /// length below which every prefix must be rejected.
    fn reply_for(name: &str, c: u32) -> (Vec<u8>, usize) {
        let p = probe(name, c);
        match name {
            "dns" => {
                let mut r = p.clone();
                r[2] = 0x84; // QR AA
                r[7] = 1; // ANCOUNT
                r.extend([0xC0, 0x0C, 0x00, 0x10, 0x00, 0x03, 0, 0, 0, 0, 0x00, 0x0A]);
                r.extend(b"\x09dnsmasq-2");
                (r, 12)
            }
            "mdns" => {
                let mut r = p.clone();
                r[2] = 0x84;
                r[7] = 1;
                r.extend([
                    0xC0, 0x0C, 0x00, 0x0C, 0x00, 0x01, 0, 0, 0x11, 0x94, 0x00, 0x0E,
                ]);
                r.extend(b"\x05_http\x04_tcp\xC0\x23");
                (r, 12)
            }
            "netbios-ns" => {
                let mut r = cat(&[&p[..2], &[0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0]]);
                r.extend(&p[12..46]); // RR_NAME
                r.extend([0x00, 0x21, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x2F, 0x00]);
                r.extend([0u8; 46]); // no names, statistics
                (r, 12)
            }
            "ntp" => {
                let mut r = vec![0u8; 48];
                r[..4].copy_from_slice(&[0x24, 2, 6, 0xE9]);
                r[12..16].copy_from_slice(&[192, 0, 2, 1]);
                r[24..32].copy_from_slice(&p[40..48]); // origin = our transmit
                r[32..48].copy_from_slice(&[0xE9, 1, 2, 3, 4, 5, 6, 7, 0xE9, 1, 2, 3, 4, 5, 6, 8]);
                (r, 48)
            }
            "snmp" => {
                let (_, msg, _) = tlv(&p);
                let (_, _, msg) = tlv(msg);
                let (_, _, msg) = tlv(msg);
                let (_, pdu, _) = tlv(msg);
                let (_, rid, _) = tlv(pdu);
                let vb = t(
                    0x30,
                    &cat(&[
                        &t(0x06, &[0x2B, 6, 1, 2, 1, 1, 1, 0]),
                        &t(0x04, b"Linux box"),
                    ]),
                );
                let pdu = t(
                    0xA2,
                    &cat(&[&t(0x02, rid), &t(0x02, &[0]), &t(0x02, &[0]), &t(0x30, &vb)]),
                );
                let r = t(0x30, &cat(&[&t(0x02, &[0]), &t(0x04, b"public"), &pdu]));
                let n = r.len();
                (r, n)
            }
            "portmap" | "nfs" => {
                let r = cat(&[&p[..4], &[0, 0, 0, 1], &[0; 16]]);
                (r, 12)
            }
            "ike" => {
                let mut r = p[..8].to_vec();
                r.extend([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
                r.extend([41, 0x20, 34, 0x20, 0, 0, 0, 0, 0, 0, 0, 36]);
                r.extend([0, 0, 0, 8, 0, 0, 0, 14]); // N(NO_PROPOSAL_CHOSEN)
                (r, 28)
            }
            "sip" => {
                let s = String::from_utf8(p).unwrap();
                let line = |n: &str| s.lines().find(|l| l.starts_with(n)).unwrap().to_string();
                let via = line("Via:").replace(";rport", ";rport=40000;received=198.18.0.7");
                let r = format!(
                    "SIP/2.0 200 OK\r\n{via}\r\n{}\r\nTo: <sip:rawscan.invalid>;tag=as5e1d\r\n{}\r\n{}\r\nAllow: INVITE, ACK, OPTIONS\r\nContent-Length: 0\r\n\r\n",
                    line("From:"),
                    line("Call-ID:"),
                    line("CSeq:")
                )
                .into_bytes();
                let cut = find(&r, format!("z9hG4bK{}", hex(c)).as_bytes()) + 15;
                (r, cut)
            }
            "memcached" => {
                let r = cat(&[&p[..2], &[0, 0, 0, 1, 0, 0], b"VERSION 1.6.21\r\n"]);
                (r, 8)
            }
            "stun" => {
                let r = cat(&[
                    &[0x01, 0x01, 0x00, 0x0C],
                    &p[4..20],
                    &[
                        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xA1, 0x47, 0xE1, 0x12, 0xA6, 0x43,
                    ],
                ]);
                (r, 20)
            }
            "coap" => {
                let r = cat(&[
                    &[0x64, 0x45],
                    &p[2..8],
                    &[0xFF],
                    b"</sensors/temp>;rt=\"t\"",
                ]);
                (r, 8)
            }
            "radius" => {
                let r = cat(&[&[0x03, p[1], 0x00, 0x14], &[0x5A; 16]]);
                (r, 20)
            }
            "asf-rmcp" => {
                let r = cat(&[
                    &[
                        0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x40, p[9], 0x00, 0x10,
                    ],
                    &[
                        0x00, 0x00, 0x11, 0xBE, 0, 0, 0, 0, 0x81, 0x00, 0, 0, 0, 0, 0, 0,
                    ],
                ]);
                (r, 12)
            }
            "ws-discovery" => {
                let s = String::from_utf8(p).unwrap();
                let mid = between(&s, "<wsa:MessageID>", "</wsa:MessageID>");
                let r = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                     <SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" \
                     xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
                     xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\">\
                     <SOAP-ENV:Header>\
                     <wsa:MessageID>urn:uuid:0badc0de-0000-4000-8000-000000000001</wsa:MessageID>\
                     <wsa:RelatesTo>{mid}</wsa:RelatesTo>\
                     <wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>\
                     <wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>\
                     </SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>\
                     <d:Types>dn:NetworkVideoTransmitter</d:Types></d:ProbeMatch></d:ProbeMatches>\
                     </SOAP-ENV:Body></SOAP-ENV:Envelope>"
                )
                .into_bytes();
                let cut = find(&r, format!("RelatesTo>urn:uuid:{}", hex(c)).as_bytes()) + 27;
                (r, cut)
            }
            "l2tp" => {
                let mut r = cat(&[&[0xC8, 0x02, 0x00, 0x1C], &p[57..59], &[0, 0, 0, 0, 0, 1]]);
                r.extend([0x80, 0x08, 0, 0, 0, 0, 0x00, 0x02]); // SCCRP
                r.extend([0x80, 0x08, 0, 0, 0, 9, 0x12, 0x34]); // server's tunnel ID
                (r, 6)
            }
            "openvpn" => {
                let r = cat(&[
                    &[0x40, 9, 8, 7, 6, 5, 4, 3, 2],
                    &[0x01, 0, 0, 0, 0],
                    &p[1..9],
                    &[0, 0, 0, 0],
                ]);
                (r, 22)
            }
            "dtls" => {
                let hs = cat(&[
                    &[0x03, 0, 0, 23, 0, 0, 0, 0, 0, 0, 0, 23, 0xFE, 0xFF, 20],
                    &[0xC5; 20],
                ]);
                let r = cat(&[
                    &[0x16, 0xFE, 0xFF],
                    &p[3..11],
                    &(hs.len() as u16).to_be_bytes(),
                    &hs,
                ]);
                let n = r.len();
                (r, n)
            }
            "quic" => {
                let r = cat(&[
                    &[0xC5, 0, 0, 0, 0, 8],
                    &p[15..23], // DCID = our SCID
                    &[8],
                    &p[6..14], // SCID = our DCID
                    &[0, 0, 0, 1, 0x6B, 0x33, 0x43, 0xCF],
                ]);
                (r, 23)
            }
            "bacnet" => {
                let apdu = [
                    0x30, p[8], 0x0C, 0x0C, 0x02, 0x00, 0x00, 0x7B, 0x19, 0x4B, 0x3E, 0xC4, 0x02,
                    0x00, 0x00, 0x7B, 0x3F,
                ];
                let r = cat(&[&[0x81, 0x0A, 0x00, 6 + apdu.len() as u8, 0x01, 0x00], &apdu]);
                (r, 8)
            }
            "echo" => {
                let n = p.len();
                (p, n)
            }
            "cldap" => {
                let mid = &p[4..8];
                let entry = t(
                    0x64,
                    &cat(&[
                        &t(0x04, b""),
                        &t(
                            0x30,
                            &t(
                                0x30,
                                &cat(&[
                                    &t(0x04, b"dnsHostName"),
                                    &t(0x31, &t(0x04, b"dc1.example.test")),
                                ]),
                            ),
                        ),
                    ]),
                );
                let first = t(0x30, &cat(&[&t(0x02, mid), &entry]));
                let done = t(
                    0x30,
                    &cat(&[
                        &t(0x02, mid),
                        &t(0x65, &cat(&[&t(0x0A, &[0]), &t(0x04, b""), &t(0x04, b"")])),
                    ]),
                );
                let n = first.len();
                (cat(&[&first, &done]), n)
            }
            "slp" => {
                let body = cat(&[
                    &[0x00, 0x00, 0x00, 0x21],
                    b"service:service-agent://198.18.0.9",
                    &[0x00, 0x07],
                    b"DEFAULT",
                    &[0x00, 0x00, 0x00],
                ]);
                let len = (16 + body.len()) as u32;
                let r = cat(&[
                    &[0x02, 0x0B],
                    &len.to_be_bytes()[1..],
                    &[0, 0, 0, 0, 0],
                    &p[10..12],
                    &[0x00, 0x02],
                    b"en",
                    &body,
                ]);
                (r, 14)
            }
            "enip" => {
                let item = [0x0C, 0x00, 0x04, 0x00, 0x01, 0x00, 0xAF, 0x12];
                let data = cat(&[&[0x01, 0x00], &item]);
                let r = cat(&[
                    &[0x63, 0x00],
                    &(data.len() as u16).to_le_bytes(),
                    &[0; 8],
                    &p[12..20],
                    &[0; 4],
                    &data,
                ]);
                (r, 24)
            }
            "bittorrent-dht" => {
                let r = cat(&[
                    b"d1:rd2:id20:abcdefghij0123456789e1:t4:",
                    &c.to_be_bytes(),
                    b"1:y1:re",
                ]);
                let cut = find(&r, b"1:t4:") + 9;
                (r, cut)
            }
            other => panic!("no reply builder for {other}"),
        }
    }

    #[test]
    fn every_payload_has_a_validator() {
        for p in all() {
            assert!(VALIDATED.contains(&p.name), "{} has no validator", p.name);
        }
        assert_eq!(VALIDATED.len(), all().len());
    }

    #[test]
    fn echoed_id_matches_and_wrong_or_truncated_id_does_not() {
        for p in all().iter().filter(|p| p.has_id_field()) {
            for c in COOKIES {
                let (r, cut) = reply_for(p.name, c);
                assert_eq!(
                    p.check_reply(c, &r),
                    CookieCheck::Match,
                    "{} echo, cookie {c:#x}",
                    p.name
                );
                let same_id = |w: u32| *p.cookie[0].enc.encode(w) == *p.cookie[0].enc.encode(c);
                // (An 8-bit field cannot tell 0 from u32::MAX % 255; skip true collisions.)
                let wrongs: Vec<u32> = [c.wrapping_add(1), c.wrapping_sub(1), !c]
                    .into_iter()
                    .filter(|&w| !same_id(w))
                    .collect();
                assert!(!wrongs.is_empty());
                for wrong in wrongs {
                    assert_eq!(
                        p.check_reply(wrong, &r),
                        CookieCheck::Mismatch,
                        "{} wrong cookie {wrong:#x}",
                        p.name
                    );
                }
                for n in 0..cut {
                    assert_eq!(
                        p.check_reply(c, &r[..n]),
                        CookieCheck::Mismatch,
                        "{} truncated to {n}",
                        p.name
                    );
                }
                for n in cut..r.len() {
                    let _ = p.check_reply(c, &r[..n]); // must not panic
                }
            }
        }
    }

    #[test]
    fn garbage_is_a_mismatch_for_id_protocols() {
        let c = 0x1234_5678;
        let junk: [&[u8]; 6] = [
            b"",
            &[0; 64],
            &[0xFF; 64],
            &[0x30; 3],
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            b"SIP/2.0 400 Bad Request\r\n\r\n",
        ];
        for p in all().iter().filter(|p| p.has_id_field()) {
            for j in junk {
                assert_eq!(
                    p.check_reply(c, j),
                    CookieCheck::Mismatch,
                    "{} on {j:?}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn reflected_probe_is_not_a_reply() {
        // A copy of our own request (e.g. from a reflecting middlebox) must
        // not count as an answer, except for the echo service.
        for p in all().iter().filter(|p| p.has_id_field()) {
            let c = 0x0BAD_F00D;
            let own = probe(p.name, c);
            let want = match p.name {
                "echo" => CookieCheck::Match,
                // Same shape in both directions; nothing distinguishes them.
                "memcached" | "enip" | "bittorrent-dht" | "ws-discovery" => continue,
                "dtls" => CookieCheck::NoIdField, // a ClientHello is not a HelloVerifyRequest
                _ => CookieCheck::Mismatch,
            };
            assert_eq!(p.check_reply(c, &own), want, "{}", p.name);
        }
    }

    #[test]
    fn no_id_protocols_report_no_id_field() {
        for p in all().iter().filter(|p| !p.has_id_field()) {
            for r in [&b""[..], b"\x00", b"anything at all", &probe(p.name, 7)] {
                assert_eq!(p.check_reply(7, r), CookieCheck::NoIdField, "{}", p.name);
            }
        }
    }

    #[test]
    fn coap_reply_variants() {
        let p = get("coap");
        let c: u32 = 0xCAFE_0042;
        let mid = (c as u16).to_be_bytes();
        let tok = c.to_be_bytes();
        let empty_ack = [0x60, 0x00, mid[0], mid[1]];
        let rst = [0x70, 0x00, mid[0], mid[1]];
        let separate = cat(&[&[0x54, 0x45, 0x12, 0x34], &tok, &[0xFF, b'x']]);
        let bad_token = cat(&[&[0x64, 0x45], &mid, &[1, 2, 3, 4]]);
        let request_shaped = cat(&[&[0x54, 0x01, 0x12, 0x34], &tok]);
        assert_eq!(p.check_reply(c, &empty_ack), CookieCheck::Match);
        assert_eq!(p.check_reply(c, &rst), CookieCheck::Match);
        assert_eq!(p.check_reply(c, &separate), CookieCheck::Match);
        assert_eq!(p.check_reply(c, &bad_token), CookieCheck::Mismatch);
        assert_eq!(p.check_reply(c, &request_shaped), CookieCheck::Mismatch);
        assert_eq!(p.check_reply(c + 1, &empty_ack), CookieCheck::Mismatch);
    }

    #[test]
    fn bacnet_reply_variants() {
        let p = get("bacnet");
        let c = 0x77;
        // Routed reply: NPDU with SNET/SLEN/SADR.
        let routed = [
            0x81, 0x0A, 0x00, 0x12, 0x01, 0x08, 0x00, 0x05, 0x06, 1, 2, 3, 4, 5, 6, 0x50, 0x77,
            0x0C,
        ];
        // Error-PDU, Forwarded-NPDU, with DNET (and hop count).
        let forwarded = [
            0x81, 0x04, 0x00, 0x15, 192, 0, 2, 1, 0xBA, 0xC0, 0x01, 0x20, 0xFF, 0xFF, 0x00, 0xFF,
            0x50, 0x77, 0x0C, 0x91, 0x00,
        ];
        let network_msg = [0x81, 0x0A, 0x00, 0x07, 0x01, 0x80, 0x01];
        assert_eq!(p.check_reply(c, &routed), CookieCheck::Match);
        assert_eq!(p.check_reply(c, &forwarded), CookieCheck::Match);
        assert_eq!(p.check_reply(c, &network_msg), CookieCheck::Mismatch);
        assert_eq!(p.check_reply(c + 1, &routed), CookieCheck::Mismatch);
    }

    #[test]
    fn dtls_non_hvr_records_have_no_id() {
        let p = get("dtls");
        let alert = [0x15, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 40];
        let server_hello = cat(&[
            &[0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4],
            &[2, 0, 0, 0],
        ]);
        assert_eq!(p.check_reply(5, &alert), CookieCheck::NoIdField);
        assert_eq!(p.check_reply(5, &server_hello), CookieCheck::NoIdField);
        assert_eq!(
            p.check_reply(5, &alert[..14]),
            CookieCheck::Mismatch,
            "truncated record"
        );
        let (mut hvr, _) = reply_for("dtls", 5);
        hvr[4] = 1; // epoch 1 is not ours
        assert_eq!(p.check_reply(5, &hvr), CookieCheck::Mismatch);
    }

    #[test]
    fn snmp_accepts_non_minimal_request_id_from_sloppy_agents() {
        let p = get("snmp");
        let c = 0x0000_0005;
        let rid = [0x00, 0x40, 0x00, 0x00, 0x05];
        let pdu = t(
            0xA2,
            &cat(&[
                &t(0x02, &rid),
                &t(0x02, &[0]),
                &t(0x02, &[0]),
                &t(0x30, &[]),
            ]),
        );
        let r = t(0x30, &cat(&[&t(0x02, &[1]), &t(0x04, b"public"), &pdu]));
        assert_eq!(p.check_reply(c, &r), CookieCheck::Match);
        let neg = t(
            0xA2,
            &cat(&[&t(0x02, &[0xC0, 0, 0, 5]), &t(0x02, &[0]), &t(0x02, &[0])]),
        );
        let r = t(0x30, &cat(&[&t(0x02, &[1]), &t(0x04, b"public"), &neg]));
        assert_eq!(p.check_reply(c, &r), CookieCheck::Mismatch, "sign matters");
    }

    #[test]
    fn l2tp_reply_without_length_field() {
        let p = get("l2tp");
        let c = 41;
        let tid = ((c % 0xFFFF) as u16 + 1).to_be_bytes();
        let r = [0x88, 0x02, tid[0], tid[1], 0, 0, 0, 0, 0, 1];
        assert_eq!(p.check_reply(c, &r), CookieCheck::Match);
        let data = [0x08, 0x02, tid[0], tid[1], 0, 0]; // T=0: data message
        assert_eq!(p.check_reply(c, &data), CookieCheck::Mismatch);
    }

    // ---- fuzz-ish --------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn check_reply_never_panics_on_random_input() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut buf = Vec::new();
        for p in all() {
            for round in 0..3000 {
                let max = if round % 10 == 0 { 1500 } else { 80 };
                let len = (rng.next() % max) as usize;
                buf.clear();
                buf.extend((0..len).map(|_| rng.next() as u8));
                let _ = p.check_reply(rng.next() as u32, &buf);
            }
        }
    }

    #[test]
    fn check_reply_never_panics_on_mutated_replies() {
        let mut rng = XorShift(0x0123_4567_89AB_CDEF);
        for p in all().iter().filter(|p| p.has_id_field()) {
            for _ in 0..2000 {
                let c = rng.next() as u32;
                let (mut r, _) = reply_for(p.name, c);
                for _ in 0..=(rng.next() % 4) {
                    let i = (rng.next() as usize) % r.len();
                    r[i] = match rng.next() % 3 {
                        0 => rng.next() as u8,
                        1 => 0xFF,
                        _ => 0x80,
                    };
                }
                let keep = (rng.next() as usize) % (r.len() + 1);
                r.truncate(keep);
                if rng.next().is_multiple_of(4) {
                    r.extend((0..rng.next() % 40).map(|_| rng.next() as u8));
                }
                let _ = p.check_reply(c, &r);
                let _ = p.check_reply(!c, &r);
            }
        }
    }

    // ---- table invariants ------------------------------------------------

    #[test]
    fn at_least_25_distinct_protocols() {
        let mut names: Vec<&str> = all().iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all().len(), "names are unique");
        assert!(names.len() >= 25, "only {} protocols", names.len());
        assert!(
            all()
                .iter()
                .all(|p| !p.spec().is_empty() && !p.ports.is_empty())
        );
    }

    #[test]
    fn every_port_maps_to_exactly_one_payload() {
        let mut seen = std::collections::HashMap::new();
        for p in all() {
            for &port in p.ports {
                if let Some(other) = seen.insert(port, p.name) {
                    panic!("port {port} in both {other} and {}", p.name);
                }
                assert_eq!(payload_for(port).map(|x| x.name), Some(p.name));
            }
        }
        for port in [0, 1, 9, 22, 80, 8080, 65535] {
            assert!(payload_for(port).is_none(), "port {port}");
        }
        assert_eq!(payload_for(443).map(|p| p.name), Some("quic"));
        assert_eq!(payload_for(4433).map(|p| p.name), Some("dtls"));
        for (port, name) in [
            (53, "dns"),
            (123, "ntp"),
            (161, "snmp"),
            (137, "netbios-ns"),
        ] {
            assert_eq!(payload_for(port).map(|p| p.name), Some(name));
        }
    }

    #[test]
    fn cookie_fields_fit_and_do_not_overlap() {
        for p in all() {
            let mut spans: Vec<(usize, usize)> = p
                .cookie
                .iter()
                .map(|f| (f.at, f.at + f.enc.encode(0).len()))
                .collect();
            spans.sort_unstable();
            for s in &spans {
                assert!(
                    s.1 <= p.template.len(),
                    "{}: field past template end",
                    p.name
                );
            }
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "{}: overlapping fields", p.name);
            }
            if p.has_id_field() {
                assert!(
                    !p.cookie.is_empty(),
                    "{}: checks replies without a field",
                    p.name
                );
            }
        }
    }

    #[test]
    fn write_is_pure_and_changes_only_cookie_bytes() {
        for p in all() {
            let (mut a, mut b) = (vec![1, 2, 3], Vec::new());
            p.write(0x1357_9BDF, &mut a);
            p.write(0x1357_9BDF, &mut b);
            assert_eq!(a, b, "{}: deterministic, buffer cleared", p.name);
            assert!(
                a.len() <= 1472,
                "{}: fits one unfragmented datagram",
                p.name
            );
            let in_field = |i: usize| {
                p.cookie
                    .iter()
                    .any(|f| (f.at..f.at + f.enc.encode(0).len()).contains(&i))
            };
            for c in [0x2468_ACE0, 0x1357_9BDE, 0xFFFF_FFFF] {
                let mut o = Vec::new();
                p.write(c, &mut o);
                assert_eq!(o.len(), a.len());
                for i in (0..a.len()).filter(|&i| a[i] != o[i]) {
                    assert!(
                        in_field(i),
                        "{}: byte {i} changed outside a cookie field",
                        p.name
                    );
                }
                if !p.cookie.is_empty() {
                    assert_ne!(o, a, "{}: cookie must change the probe", p.name);
                }
            }
        }
    }

    #[test]
    fn encodings_respect_field_constraints() {
        let mut rng = XorShift(42);
        let specials = [
            0,
            1,
            254,
            255,
            256,
            0xFFFE,
            0xFFFF,
            0x1_0000,
            0x3FFF_FFFF,
            u32::MAX,
        ];
        let randoms: Vec<u32> = (0..10_000).map(|_| rng.next() as u32).collect();
        for c in specials.into_iter().chain(randoms) {
            assert_ne!(Enc::Tag8.encode(c)[0], 0xFF);
            assert_ne!(*Enc::Nz16.encode(c), [0, 0]);
            assert_ne!(*Enc::Be64.encode(c), [0; 8]);
            let b = Enc::Ber4.encode(c);
            assert_eq!(b[0] & 0xC0, 0x40, "positive and minimal in 4 octets");
            assert_eq!(u32at(&b, 0) & 0x3FFF_FFFF, c & 0x3FFF_FFFF);
            assert_eq!(*Enc::Hex8.encode(c), *hex(c).as_bytes());
            assert_eq!(*Enc::Be16.encode(c), (c as u16).to_be_bytes());
            assert_eq!(*Enc::Be32.encode(c), c.to_be_bytes());
            assert_eq!(Enc::Lo8.encode(c)[0], c as u8);
        }
    }

    #[test]
    fn reflected_probes_prove_an_open_port_but_forgeries_do_not() {
        let dns = payload_for(53).unwrap();
        let mut probe = Vec::new();
        dns.write(0x1234_5678, &mut probe);
        assert_eq!(dns.check_reply(0x1234_5678, &probe), CookieCheck::Mismatch);
        assert!(
            dns.accepts(0x1234_5678, &probe),
            "a reflection carries our cookie"
        );
        assert!(
            !dns.accepts(0x1234_5679, &probe),
            "a reflection of another probe does not"
        );
        assert!(!dns.accepts(0x1234_5678, &probe[..probe.len() - 1]));
    }
}
