//! THE table of service probes: what `-sV` sends, where, in what order,
//! and which matchers read the reply.
//!
//! Role: data, in the manner of `wire/payloads.rs`. Each `Probe` names the
//! bytes it sends (or `Listen` for the NULL probe, `Tls` for a TLS
//! handshake), the ports where it is likely to hit (tried first there, at
//! any intensity), its rarity (1 common … 9 rare: elsewhere it is tried only
//! when rarity <= `--version-intensity`), the matchers tried first on its
//! reply, and the specification its bytes follow. Every request here was
//! written from the protocol's specification; none comes from another
//! scanner's probe file.
//!
//! Invariants (asserted by the tests below):
//! - The NULL probe is first; probe names are unique; rarity is 1..=9.
//! - Every request parses as its protocol (BER lengths, packet lengths).
//! - `order` is deterministic, starts with the NULL probe for TCP, lists
//!   each probe at most once, and always includes the probes whose ports
//!   contain the scanned port.
//! - Replies are matched by the probe's own matchers first, then by
//!   `TCP_FALLBACK` (strong text matchers only, so that binary garbage is
//!   not mistaken for a binary protocol).

use super::matchers::{self as m, Found, MatchFn};
use crate::probe::Proto;

/// One matcher: the service it recognises and the function that reads a reply.
#[derive(Clone, Copy)]
pub struct Matcher {
    pub service: &'static str,
    pub check: MatchFn,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.service)
    }
}

const fn mt(service: &'static str, check: MatchFn) -> Matcher {
    Matcher { service, check }
}

/// What a probe does on a fresh connection (or datagram socket).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Send nothing; read what the service says first (the NULL probe).
    Listen,
    /// Send these bytes, read the reply.
    Send(&'static [u8]),
    /// Complete a TLS handshake, then probe again inside it.
    Tls,
}

#[derive(Debug)]
pub struct Probe {
    pub name: &'static str,
    pub proto: Proto,
    pub kind: Kind,
    /// Ports where this probe is likely to hit, in cleartext.
    pub ports: &'static [u16],
    /// Ports where it is likely to hit inside TLS.
    pub tls_ports: &'static [u16],
    /// 1 (common) ..= 9 (rare).
    pub rarity: u8,
    /// Tried first on this probe's reply.
    pub matchers: &'static [Matcher],
    /// The specification the request follows.
    pub spec: &'static str,
}

/// DNS ID of the version.bind query (echoed by the server).
pub const DNS_ID: u16 = 0x7273;
/// NTP transmit timestamp we send; a server echoes it as the origin timestamp.
pub const NTP_ORIGIN: &[u8; 8] = b"rawscan!";
/// MongoDB requestID we send; the reply's responseTo echoes it.
pub const MONGO_REQ_ID: u32 = u32::from_le_bytes(*b"swar");

const M_SSH: Matcher = mt("ssh", m::ssh);
const M_SMTP: Matcher = mt("smtp", m::smtp);
const M_FTP: Matcher = mt("ftp", m::ftp);
const M_POP3: Matcher = mt("pop3", m::pop3);
const M_IMAP: Matcher = mt("imap", m::imap);
const M_MYSQL: Matcher = mt("mysql", m::mysql);
const M_VNC: Matcher = mt("vnc", m::vnc);
const M_TELNET: Matcher = mt("telnet", m::telnet);
const M_RSYNC: Matcher = mt("rsync", m::rsync);
const M_NNTP: Matcher = mt("nntp", m::nntp);
const M_HTTP: Matcher = mt("http", m::http);
const M_DOCKER: Matcher = mt("docker", m::http);
const M_K8S: Matcher = mt("kubernetes", m::http);
const M_RTSP: Matcher = mt("rtsp", m::rtsp);
const M_SIP: Matcher = mt("sip", m::sip);
const M_REDIS: Matcher = mt("redis", m::redis);
const M_MEMCACHED: Matcher = mt("memcached", m::memcached);

/// Tried on every TCP reply after the probe's own matchers: text
/// protocols that announce themselves unmistakably.
pub static TCP_FALLBACK: &[Matcher] = &[
    M_SSH,
    M_SMTP,
    M_FTP,
    M_POP3,
    M_IMAP,
    M_MYSQL,
    M_VNC,
    M_RSYNC,
    M_NNTP,
    M_HTTP,
    M_RTSP,
    M_SIP,
    M_REDIS,
    M_MEMCACHED,
];

const BANNERS: &[Matcher] = &[
    M_SSH, M_SMTP, M_FTP, M_POP3, M_IMAP, M_MYSQL, M_VNC, M_TELNET, M_RSYNC, M_NNTP,
];

/// PostgreSQL StartupMessage, protocol 3.0, user/database "rawscan".
const PG_STARTUP: &[u8] = b"\x00\x00\x00\x40\x00\x03\x00\x00\
user\0rawscan\0database\0rawscan\0application_name\0rawscan\0\0";

/// DNS query: ID 0x7273, no flags, one question version.bind CH TXT.
const DNS_VERSION_BIND: &[u8] = b"\x72\x73\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x07version\x04bind\x00\x00\x10\x00\x03";
/// The same behind the 2-byte TCP length.
const DNS_VERSION_BIND_TCP: &[u8] = b"\x00\x1e\x72\x73\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x07version\x04bind\x00\x00\x10\x00\x03";

/// SNMPv1 GetRequest, community "public", request-id 0x7273, for
/// sysDescr.0 (1.3.6.1.2.1.1.1.0) and sysObjectID.0 (1.3.6.1.2.1.1.2.0).
const SNMP_GET: &[u8] = b"\x30\x35\x02\x01\x00\x04\x06public\xa0\x28\x02\x02\x72\x73\x02\x01\x00\
\x02\x01\x00\x30\x1c\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x05\x00\
\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x02\x00\x05\x00";

/// NTPv4 client request (mode 3) whose transmit timestamp is `NTP_ORIGIN`.
const NTP_CLIENT: &[u8] = b"\x23\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\
\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0rawscan!";
/// NTP control message (mode 6) READVAR of the system variables.
const NTP_READVAR: &[u8] = b"\x16\x02\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00";

/// LDAPv3 searchRequest for the root DSE (base "", scope base, filter
/// (objectClass=*)), attributes vendorName, vendorVersion, objectClass.
const LDAP_ROOTDSE: &[u8] = b"\x30\x4d\x02\x01\x01\x63\x48\x04\x00\x0a\x01\x00\x0a\x01\x00\
\x02\x01\x00\x02\x01\x00\x01\x01\x00\x87\x0bobjectClass\x30\x28\x04\x0avendorName\
\x04\x0dvendorVersion\x04\x0bobjectClass";

/// MongoDB OP_MSG {buildinfo: 1, $db: "admin"}.
const MONGO_BUILDINFO: &[u8] = b"\x38\x00\x00\x00swar\x00\x00\x00\x00\xdd\x07\x00\x00\
\x00\x00\x00\x00\x00\x23\x00\x00\x00\x10buildinfo\x00\x01\x00\x00\x00\x02$db\x00\
\x06\x00\x00\x00admin\x00\x00";

/// SMB2 NEGOTIATE (dialects 2.0.2, 2.1, 3.0, 3.0.2) behind a NetBIOS
/// session header.
const SMB2_NEGOTIATE: &[u8] = b"\x00\x00\x00\x6c\xfeSMB\x40\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x24\x00\x04\x00\x01\x00\x00\x00\x00\x00\x00\x00rawscan-version!\
\x00\x00\x00\x00\x00\x00\x00\x00\x02\x02\x10\x02\x00\x03\x02\x03";

/// X.224 Connection Request with RDP_NEG_REQ (TLS | CredSSP).
const RDP_NEG: &[u8] =
    b"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00";

/// MQTT 3.1.1 CONNECT, clean session, client id "rawscan".
const MQTT_CONNECT: &[u8] = b"\x10\x13\x00\x04MQTT\x04\x02\x00\x3c\x00\x07rawscan";

/// TDS PRELOGIN with VERSION (zero) and ENCRYPTION = not supported.
const MSSQL_PRELOGIN: &[u8] = b"\x12\x01\x00\x1a\x00\x00\x00\x00\x00\x00\x0b\x00\x06\
\x01\x00\x11\x00\x01\xff\x00\x00\x00\x00\x00\x00\x02";

const SIP_OPTIONS_UDP: &[u8] = b"OPTIONS sip:rawscan.invalid SIP/2.0\r\n\
Via: SIP/2.0/UDP rawscan.invalid;branch=z9hG4bK-rawscan-1;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:rawscan.invalid>\r\n\
From: <sip:rawscan@rawscan.invalid>;tag=rawscan\r\nCall-ID: rawscan-version-probe\r\n\
CSeq: 1 OPTIONS\r\nContact: <sip:rawscan@rawscan.invalid>\r\nAccept: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

const SIP_OPTIONS_TCP: &[u8] = b"OPTIONS sip:rawscan.invalid SIP/2.0\r\n\
Via: SIP/2.0/TCP rawscan.invalid;branch=z9hG4bK-rawscan-1\r\n\
Max-Forwards: 70\r\nTo: <sip:rawscan.invalid>\r\n\
From: <sip:rawscan@rawscan.invalid>;tag=rawscan\r\nCall-ID: rawscan-version-probe\r\n\
CSeq: 1 OPTIONS\r\nContact: <sip:rawscan@rawscan.invalid>\r\nAccept: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

/// Ports where a TLS handshake is tried right after the NULL probe.
pub const TLS_PORTS: &[u16] = &[
    443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 2376, 4443, 5061, 5671, 5986, 6443,
    8443, 8883, 9443, 10250,
];

const HTTP_PORTS: &[u16] = &[
    80, 81, 280, 591, 2375, 3000, 5000, 5601, 5984, 7001, 8000, 8008, 8080, 8081, 8088, 8888, 9000,
    9090, 9200, 9201,
];
const HTTPS_PORTS: &[u16] = &[443, 2376, 4443, 6443, 8443, 9443, 10250];

pub static TCP_PROBES: &[Probe] = &[
    Probe {
        name: "NULL",
        proto: Proto::Tcp,
        kind: Kind::Listen,
        ports: &[
            21, 22, 23, 25, 110, 119, 143, 587, 873, 2222, 3306, 5900, 5901,
        ],
        tls_ports: &[465, 563, 990, 992, 993, 995],
        rarity: 1,
        matchers: BANNERS,
        spec: "listen only: RFC 4253 §4.2, RFC 959, RFC 5321 §4.2, RFC 1939, RFC 9051, MySQL protocol 10, RFC 6143",
    },
    Probe {
        name: "GetRequest",
        proto: Proto::Tcp,
        kind: Kind::Send(b"GET / HTTP/1.0\r\n\r\n"),
        ports: HTTP_PORTS,
        tls_ports: HTTPS_PORTS,
        rarity: 1,
        matchers: &[M_HTTP],
        spec: "RFC 9112 (HTTP/1.0 request, no Host: the server closes after replying)",
    },
    Probe {
        name: "TLS",
        proto: Proto::Tcp,
        kind: Kind::Tls,
        ports: TLS_PORTS,
        tls_ports: &[],
        rarity: 1,
        matchers: &[],
        spec: "RFC 8446 / RFC 5246 ClientHello (rustls), ALPN h2, http/1.1",
    },
    Probe {
        name: "GetVersion",
        proto: Proto::Tcp,
        kind: Kind::Send(b"GET /version HTTP/1.0\r\n\r\n"),
        ports: &[2375],
        tls_ports: &[2376, 6443, 10250],
        rarity: 8,
        matchers: &[M_K8S, M_DOCKER],
        spec: "Docker Engine API and Kubernetes API GET /version",
    },
    Probe {
        name: "RedisInfo",
        proto: Proto::Tcp,
        kind: Kind::Send(b"*1\r\n$4\r\nINFO\r\n"),
        ports: &[6379, 6380],
        tls_ports: &[6380],
        rarity: 4,
        matchers: &[M_REDIS],
        spec: "RESP2 array with the INFO command",
    },
    Probe {
        name: "MemcachedVersion",
        proto: Proto::Tcp,
        kind: Kind::Send(b"version\r\n"),
        ports: &[11211],
        tls_ports: &[],
        rarity: 5,
        matchers: &[M_MEMCACHED],
        spec: "memcached protocol.txt, `version`",
    },
    Probe {
        name: "PostgresStartup",
        proto: Proto::Tcp,
        kind: Kind::Send(PG_STARTUP),
        ports: &[5432, 5433],
        tls_ports: &[],
        rarity: 5,
        matchers: &[mt("postgresql", m::postgresql)],
        spec: "PostgreSQL frontend/backend protocol 3.0, StartupMessage",
    },
    Probe {
        name: "DNSVersionBindTCP",
        proto: Proto::Tcp,
        kind: Kind::Send(DNS_VERSION_BIND_TCP),
        ports: &[53],
        tls_ports: &[],
        rarity: 5,
        matchers: &[mt("domain", m::dns_tcp)],
        spec: "RFC 1035 §4.2.2, CHAOS TXT version.bind",
    },
    Probe {
        name: "RTSPOptions",
        proto: Proto::Tcp,
        kind: Kind::Send(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
        ports: &[554, 8554],
        tls_ports: &[],
        rarity: 5,
        matchers: &[M_RTSP],
        spec: "RFC 2326 §10.1 OPTIONS",
    },
    Probe {
        name: "MongoBuildInfo",
        proto: Proto::Tcp,
        kind: Kind::Send(MONGO_BUILDINFO),
        ports: &[27017, 27018, 27019],
        tls_ports: &[],
        rarity: 6,
        matchers: &[mt("mongodb", m::mongodb)],
        spec: "MongoDB wire protocol OP_MSG, buildInfo command",
    },
    Probe {
        name: "LDAPRootDSE",
        proto: Proto::Tcp,
        kind: Kind::Send(LDAP_ROOTDSE),
        ports: &[389, 3268],
        tls_ports: &[636, 3269],
        rarity: 6,
        matchers: &[mt("ldap", m::ldap)],
        spec: "RFC 4511 §4.5.1 searchRequest, RFC 4512 §5.1 root DSE",
    },
    Probe {
        name: "SMB2Negotiate",
        proto: Proto::Tcp,
        kind: Kind::Send(SMB2_NEGOTIATE),
        ports: &[445],
        tls_ports: &[],
        rarity: 6,
        matchers: &[mt("microsoft-ds", m::smb)],
        spec: "MS-SMB2 2.2.3 NEGOTIATE over RFC 1002 session framing",
    },
    Probe {
        name: "RDPNegotiate",
        proto: Proto::Tcp,
        kind: Kind::Send(RDP_NEG),
        ports: &[3389],
        tls_ports: &[],
        rarity: 6,
        matchers: &[mt("ms-wbt-server", m::rdp)],
        spec: "MS-RDPBCGR 2.2.1.1 X.224 Connection Request with RDP_NEG_REQ",
    },
    Probe {
        name: "MQTTConnect",
        proto: Proto::Tcp,
        kind: Kind::Send(MQTT_CONNECT),
        ports: &[1883],
        tls_ports: &[8883],
        rarity: 7,
        matchers: &[mt("mqtt", m::mqtt)],
        spec: "MQTT 3.1.1 §3.1 CONNECT",
    },
    Probe {
        name: "AMQPHeader",
        proto: Proto::Tcp,
        kind: Kind::Send(b"AMQP\x00\x00\x09\x01"),
        ports: &[5672],
        tls_ports: &[5671],
        rarity: 7,
        matchers: &[mt("amqp", m::amqp)],
        spec: "AMQP 0-9-1 §4.2.2 protocol header",
    },
    Probe {
        name: "SIPOptionsTCP",
        proto: Proto::Tcp,
        kind: Kind::Send(SIP_OPTIONS_TCP),
        ports: &[5060],
        tls_ports: &[5061],
        rarity: 7,
        matchers: &[M_SIP],
        spec: "RFC 3261 §11 OPTIONS",
    },
    Probe {
        name: "MSSQLPrelogin",
        proto: Proto::Tcp,
        kind: Kind::Send(MSSQL_PRELOGIN),
        ports: &[1433],
        tls_ports: &[],
        rarity: 7,
        matchers: &[mt("ms-sql-s", m::mssql)],
        spec: "MS-TDS 2.2.6.5 PRELOGIN",
    },
    Probe {
        name: "ZookeeperSrvr",
        proto: Proto::Tcp,
        kind: Kind::Send(b"srvr"),
        ports: &[2181],
        tls_ports: &[],
        rarity: 8,
        matchers: &[mt("zookeeper", m::zookeeper)],
        spec: "ZooKeeper four-letter word `srvr`",
    },
    Probe {
        name: "SOCKS5",
        proto: Proto::Tcp,
        kind: Kind::Send(b"\x05\x01\x00"),
        ports: &[1080],
        tls_ports: &[],
        rarity: 8,
        matchers: &[mt("socks5", m::socks5)],
        spec: "RFC 1928 §3 method selection (no authentication)",
    },
];

pub static UDP_PROBES: &[Probe] = &[
    Probe {
        name: "DNSVersionBind",
        proto: Proto::Udp,
        kind: Kind::Send(DNS_VERSION_BIND),
        ports: &[53, 5353],
        tls_ports: &[],
        rarity: 1,
        matchers: &[mt("domain", m::dns)],
        spec: "RFC 1035 §4.1, CHAOS TXT version.bind",
    },
    Probe {
        name: "SNMPv1Get",
        proto: Proto::Udp,
        kind: Kind::Send(SNMP_GET),
        ports: &[161],
        tls_ports: &[],
        rarity: 2,
        matchers: &[mt("snmp", m::snmp)],
        spec: "RFC 1157 / RFC 3416 GetRequest sysDescr.0, sysObjectID.0",
    },
    Probe {
        name: "NTPClient",
        proto: Proto::Udp,
        kind: Kind::Send(NTP_CLIENT),
        ports: &[123],
        tls_ports: &[],
        rarity: 2,
        matchers: &[mt("ntp", m::ntp)],
        spec: "RFC 5905 client mode",
    },
    Probe {
        name: "NTPReadVar",
        proto: Proto::Udp,
        kind: Kind::Send(NTP_READVAR),
        ports: &[123],
        tls_ports: &[],
        rarity: 8,
        matchers: &[mt("ntp", m::ntp_control)],
        spec: "RFC 1305 appendix B control message READVAR",
    },
    Probe {
        name: "SIPOptions",
        proto: Proto::Udp,
        kind: Kind::Send(SIP_OPTIONS_UDP),
        ports: &[5060],
        tls_ports: &[],
        rarity: 5,
        matchers: &[M_SIP],
        spec: "RFC 3261 §11 OPTIONS",
    },
];

/// The probe list of a protocol.
pub fn probes(proto: Proto) -> &'static [Probe] {
    match proto {
        Proto::Tcp => TCP_PROBES,
        Proto::Udp => UDP_PROBES,
        Proto::Icmp | Proto::TcpAck | Proto::Arp => &[],
    }
}

impl Probe {
    fn likely(&self, port: u16, tls: bool) -> bool {
        if tls {
            self.tls_ports.contains(&port)
        } else {
            self.ports.contains(&port)
        }
    }

    pub fn has_service(&self, service: &str) -> bool {
        self.matchers.iter().any(|m| m.service == service)
    }
}

/// The probes to try on `port`, in order: the NULL probe (TCP), the
/// probes likely for the port, then the rest whose rarity is within
/// `intensity`, most common first. `tls`: the order inside a TLS session
/// (no second TLS layer).
pub fn order(proto: Proto, port: u16, intensity: u8, tls: bool) -> Vec<&'static Probe> {
    let all = probes(proto);
    let usable = |p: &&Probe| !(tls && matches!(p.kind, Kind::Tls));
    let mut out: Vec<&'static Probe> = Vec::new();
    if proto == Proto::Tcp {
        out.extend(all.iter().filter(|p| matches!(p.kind, Kind::Listen)));
    }
    out.extend(
        all.iter()
            .filter(usable)
            .filter(|p| !matches!(p.kind, Kind::Listen) && p.likely(port, tls)),
    );
    let mut rest: Vec<&'static Probe> = all
        .iter()
        .filter(usable)
        .filter(|p| !matches!(p.kind, Kind::Listen) && !p.likely(port, tls))
        .filter(|p| p.rarity <= intensity)
        .collect();
    rest.sort_by_key(|p| p.rarity);
    out.extend(rest);
    out
}

/// Does the table expect a client-first protocol on this port (so the
/// NULL probe need only wait briefly)?
pub fn client_speaks_first(port: u16, tls: bool) -> bool {
    let null_likely = TCP_PROBES
        .iter()
        .any(|p| matches!(p.kind, Kind::Listen) && p.likely(port, tls));
    // A TLS handshake is client-first too.
    let other_likely = TCP_PROBES
        .iter()
        .any(|p| !matches!(p.kind, Kind::Listen) && p.likely(port, tls));
    other_likely && !null_likely
}

/// Match a reply: the probe's own matchers first, then (TCP) the fallback.
pub fn identify(probe: &Probe, reply: &[u8]) -> Option<Found> {
    if reply.is_empty() {
        return None;
    }
    let fallback: &[Matcher] = match probe.proto {
        Proto::Tcp => TCP_FALLBACK,
        Proto::Udp | Proto::Icmp | Proto::TcpAck | Proto::Arp => &[],
    };
    probe
        .matchers
        .iter()
        .chain(fallback)
        .find_map(|m| (m.check)(reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn send(p: &Probe) -> &'static [u8] {
        match p.kind {
            Kind::Send(b) => b,
            _ => &[],
        }
    }

    fn by_name(name: &str) -> &'static Probe {
        TCP_PROBES
            .iter()
            .chain(UDP_PROBES)
            .find(|p| p.name == name)
            .unwrap()
    }

    #[test]
    fn table_is_well_formed() {
        assert!(matches!(TCP_PROBES[0].kind, Kind::Listen));
        let mut names = BTreeSet::new();
        for p in TCP_PROBES.iter().chain(UDP_PROBES) {
            assert!(names.insert(p.name), "duplicate probe {}", p.name);
            assert!((1..=9).contains(&p.rarity), "{}", p.name);
            assert!(!p.spec.is_empty());
            if let Kind::Send(b) = p.kind {
                assert!(!b.is_empty(), "{}", p.name);
            }
        }
    }

    /// BER TLV: (tag, content length, total length).
    fn tlv(b: &[u8]) -> (u8, usize, usize) {
        let l = b[1] as usize;
        assert!(l < 0x80);
        (b[0], l, l + 2)
    }

    #[test]
    fn binary_requests_have_consistent_lengths() {
        let pg = send(by_name("PostgresStartup"));
        assert_eq!(
            u32::from_be_bytes(pg[..4].try_into().unwrap()) as usize,
            pg.len()
        );
        let dns = send(by_name("DNSVersionBindTCP"));
        assert_eq!(u16::from_be_bytes([dns[0], dns[1]]) as usize, dns.len() - 2);
        assert_eq!(&dns[2..], send(by_name("DNSVersionBind")));
        let snmp = send(by_name("SNMPv1Get"));
        assert_eq!(tlv(snmp).2, snmp.len());
        assert_eq!(tlv(&snmp[13..]).0, 0xa0);
        assert_eq!(13 + tlv(&snmp[13..]).2, snmp.len());
        let ldap = send(by_name("LDAPRootDSE"));
        assert_eq!(tlv(ldap).2, ldap.len());
        assert_eq!(5 + tlv(&ldap[5..]).2, ldap.len());
        let mongo = send(by_name("MongoBuildInfo"));
        assert_eq!(
            u32::from_le_bytes(mongo[..4].try_into().unwrap()) as usize,
            mongo.len()
        );
        assert_eq!(
            u32::from_le_bytes(mongo[21..25].try_into().unwrap()) as usize,
            mongo.len() - 21
        );
        let smb = send(by_name("SMB2Negotiate"));
        assert_eq!(
            u32::from_be_bytes(smb[..4].try_into().unwrap()) as usize,
            smb.len() - 4
        );
        // 64-byte SMB2 header, then the NEGOTIATE body (StructureSize 36).
        assert_eq!(&smb[4..8], b"\xfeSMB");
        assert_eq!(&smb[68..70], &[0x24, 0]);
        let rdp = send(by_name("RDPNegotiate"));
        assert_eq!(u16::from_be_bytes([rdp[2], rdp[3]]) as usize, rdp.len());
        let mqtt = send(by_name("MQTTConnect"));
        assert_eq!(mqtt[1] as usize, mqtt.len() - 2);
        let tds = send(by_name("MSSQLPrelogin"));
        assert_eq!(u16::from_be_bytes([tds[2], tds[3]]) as usize, tds.len());
        let ntp = send(by_name("NTPClient"));
        assert_eq!(ntp.len(), 48);
        assert_eq!(&ntp[40..], NTP_ORIGIN);
    }

    #[test]
    fn order_starts_with_null_and_puts_likely_probes_first() {
        let o = order(Proto::Tcp, 6379, 0, false);
        assert_eq!(o[0].name, "NULL");
        assert_eq!(o[1].name, "RedisInfo");
        // Intensity 0: nothing else.
        assert_eq!(o.len(), 2);
        let all = order(Proto::Tcp, 6379, 9, false);
        assert_eq!(all.len(), TCP_PROBES.len());
        let names: BTreeSet<_> = all.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), all.len(), "a probe listed twice");
        let light = order(Proto::Tcp, 40000, 2, false);
        let n: Vec<_> = light.iter().map(|p| p.name).collect();
        assert_eq!(n, ["NULL", "GetRequest", "TLS"]);
        let tls = order(Proto::Tcp, 443, 7, true);
        assert!(tls.iter().all(|p| !matches!(p.kind, Kind::Tls)));
        assert_eq!(tls[1].name, "GetRequest");
        assert_eq!(order(Proto::Udp, 161, 0, false)[0].name, "SNMPv1Get");
    }

    #[test]
    fn client_first_ports_come_from_the_table() {
        assert!(client_speaks_first(80, false));
        assert!(client_speaks_first(5432, false));
        assert!(!client_speaks_first(22, false));
        assert!(!client_speaks_first(40000, false));
        assert!(client_speaks_first(443, true));
        assert!(
            client_speaks_first(443, false),
            "TLS starts with the client"
        );
        // Implicit-TLS mail ports: short wait in clear, the greeting inside.
        assert!(client_speaks_first(993, false));
        assert!(!client_speaks_first(993, true));
    }
}
