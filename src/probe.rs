//! Probe identities, port states and reasons, and the SYN cookie.
//!
//! Invariants: this module does no I/O. A `ProbeKey` names one (host, port,
//! protocol) target; the cookie and source port of a probe are pure functions
//! of the key and the scan's secret, so a reply can be validated without
//! consulting any table.

use std::fmt;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::wire::{IcmpErrorKind, icmpv4, icmpv6};
use std::hash::Hasher;

/// Transport protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// Host discovery only: an ICMP query; the key's port is the ICMP
    /// type of the request (8 echo, 13 timestamp; over IPv6 both are
    /// ICMPv6 echoes with their own cookies).
    Icmp,
    /// Host discovery only: a TCP ACK to the key's port (a RST proves the
    /// host is up).
    TcpAck,
    /// Host discovery only: ARP (IPv4) or Neighbour Discovery (IPv6) on
    /// the local segment; the key's port is 0.
    Arp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::TcpAck => "tcp-ack",
            Proto::Arp => "arp",
        }
    }

    /// Is this a host-discovery probe type (never a port of a report)?
    pub fn is_discovery(self) -> bool {
        matches!(self, Proto::Icmp | Proto::TcpAck | Proto::Arp)
    }

    /// The protocol named `s` (as `as_str` writes it; port-scan protocols
    /// only).
    pub fn from_name(s: &str) -> Option<Proto> {
        [Proto::Tcp, Proto::Udp]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to scan: a port of a host over a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeKey {
    pub ip: IpAddr,
    pub port: u16,
    pub proto: Proto,
}

/// A port's state, with nmap's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortState {
    Open,
    Closed,
    Filtered,
    Unfiltered,
    OpenFiltered,
    ClosedFiltered,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::Unfiltered => "unfiltered",
            PortState::OpenFiltered => "open|filtered",
            PortState::ClosedFiltered => "closed|filtered",
        }
    }

    /// The state named `s` (as `as_str` writes it).
    pub fn from_name(s: &str) -> Option<PortState> {
        PortState::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub const ALL: [PortState; 6] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::Unfiltered,
        PortState::OpenFiltered,
        PortState::ClosedFiltered,
    ];
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a state was decided, with nmap's `--reason` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    SynAck,
    Reset,
    ConnRefused,
    /// A UDP datagram that carries the probe's cookie (or reflects the
    /// probe, cookie included).
    UdpResponse,
    /// A UDP datagram from the probed port to the probe's source port and
    /// address, with nothing in it that proves it answers the probe: the
    /// protocol has no ID field, or the probe was an empty datagram. An
    /// off-path sender that guesses the source port can forge it.
    UdpResponseUnverified,
    NoResponse,
    NetUnreach,
    HostUnreach,
    ProtoUnreach,
    PortUnreach,
    NetProhibited,
    HostProhibited,
    AdminProhibited,
    TimeExceeded,
    /// ICMPv6 1/0.
    NoRoute,
    /// ICMPv6 1/2.
    BeyondScope,
    /// ICMPv6 1/6.
    RejectRoute,
    /// Host discovery: an ICMP or ICMPv6 echo reply with our cookie.
    EchoReply,
    /// Host discovery: an ICMP timestamp reply with our cookie.
    TimestampReply,
    /// Host discovery: an ARP reply from the target address.
    ArpResponse,
    /// Host discovery: a Neighbour Advertisement for the target address.
    NdResponse,
    /// Host discovery: the target is one of this machine's own addresses
    /// (nmap's name; it is up without a probe).
    LocalhostResponse,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::ConnRefused => "conn-refused",
            Reason::UdpResponse => "udp-response",
            Reason::UdpResponseUnverified => "udp-response-unverified",
            Reason::NoResponse => "no-response",
            Reason::NetUnreach => "net-unreach",
            Reason::HostUnreach => "host-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::PortUnreach => "port-unreach",
            Reason::NetProhibited => "net-prohibited",
            Reason::HostProhibited => "host-prohibited",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::TimeExceeded => "time-exceeded",
            Reason::NoRoute => "no-route",
            Reason::BeyondScope => "beyond-scope",
            Reason::RejectRoute => "reject-route",
            Reason::EchoReply => "echo-reply",
            Reason::TimestampReply => "timestamp-reply",
            Reason::ArpResponse => "arp-response",
            Reason::NdResponse => "nd-response",
            Reason::LocalhostResponse => "localhost-response",
        }
    }

    /// Was this decided by an ICMP or ICMPv6 error (as opposed to a reply
    /// from the port, a connect() result, or silence)?
    pub fn is_icmp(self) -> bool {
        match self {
            Reason::SynAck
            | Reason::Reset
            | Reason::ConnRefused
            | Reason::UdpResponse
            | Reason::UdpResponseUnverified
            | Reason::NoResponse
            | Reason::EchoReply
            | Reason::TimestampReply
            | Reason::ArpResponse
            | Reason::NdResponse
            | Reason::LocalhostResponse => false,
            Reason::NetUnreach
            | Reason::HostUnreach
            | Reason::ProtoUnreach
            | Reason::PortUnreach
            | Reason::NetProhibited
            | Reason::HostProhibited
            | Reason::AdminProhibited
            | Reason::TimeExceeded
            | Reason::NoRoute
            | Reason::BeyondScope
            | Reason::RejectRoute => true,
        }
    }

    /// Every reason (`from_name` reads back any of them: `rawscan merge`
    /// and resume read the names NDJSON wrote).
    pub const ALL: [Reason; 22] = [
        Reason::SynAck,
        Reason::Reset,
        Reason::ConnRefused,
        Reason::UdpResponse,
        Reason::UdpResponseUnverified,
        Reason::NoResponse,
        Reason::NetUnreach,
        Reason::HostUnreach,
        Reason::ProtoUnreach,
        Reason::PortUnreach,
        Reason::NetProhibited,
        Reason::HostProhibited,
        Reason::AdminProhibited,
        Reason::TimeExceeded,
        Reason::NoRoute,
        Reason::BeyondScope,
        Reason::RejectRoute,
        Reason::EchoReply,
        Reason::TimestampReply,
        Reason::ArpResponse,
        Reason::NdResponse,
        Reason::LocalhostResponse,
    ];

    /// The reason named `s` (as `as_str` writes it).
    pub fn from_name(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decided state of one probe key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortResult {
    pub key: ProbeKey,
    pub state: PortState,
    pub reason: Reason,
    /// TTL (IPv4) or hop limit (IPv6) of the reply that decided it, if any.
    pub ttl: Option<u8>,
}

/// Map an ICMP or ICMPv6 error about a probe to a state, as nmap does
/// (scan_engine_raw.cc and reason.cc). `from_target` says whether the error
/// came from the probed host itself: a port-unreachable from a router does
/// not make a UDP port closed. `None`: not a kind that decides anything
/// (ICMP fragmentation-needed and other codes, ICMPv6 packet-too-big and
/// parameter-problem); the error is ignored.
///
/// | error | UDP | TCP |
/// |---|---|---|
/// | v4 3/3, v6 1/4 from the target | closed, port-unreach | filtered, port-unreach |
/// | v4 3/3, v6 1/4 from a router | filtered, port-unreach | filtered, port-unreach |
/// | v4 3/0, 3/1, 3/2, 3/9, 3/10, 3/13 | filtered: net-unreach, host-unreach, proto-unreach, net-prohibited, host-prohibited, admin-prohibited | same |
/// | v6 1/0, 1/1, 1/2, 1/3, 1/5, 1/6 | filtered: no-route, admin-prohibited, beyond-scope, host-unreach, admin-prohibited, reject-route | same |
/// | v4 type 11, v6 type 3 | filtered, time-exceeded | same |
pub fn classify_icmp(
    kind: IcmpErrorKind,
    proto: Proto,
    from_target: bool,
) -> Option<(PortState, Reason)> {
    use icmpv4::DstUnreachable as U4;
    use icmpv6::DstUnreachable as U6;
    let reason = match kind {
        IcmpErrorKind::V4TimeExceeded { .. } | IcmpErrorKind::V6TimeExceeded { .. } => {
            Reason::TimeExceeded
        }
        IcmpErrorKind::V4Unreachable(code) => match code {
            U4::NetUnreachable => Reason::NetUnreach,
            U4::HostUnreachable => Reason::HostUnreach,
            U4::ProtoUnreachable => Reason::ProtoUnreach,
            U4::PortUnreachable => Reason::PortUnreach,
            U4::NetProhibited => Reason::NetProhibited,
            U4::HostProhibited => Reason::HostProhibited,
            U4::CommProhibited => Reason::AdminProhibited,
            _ => return None,
        },
        IcmpErrorKind::V6Unreachable(code) => match code {
            U6::NoRoute => Reason::NoRoute,
            U6::AdminProhibited | U6::FailedPolicy => Reason::AdminProhibited,
            U6::BeyondScope => Reason::BeyondScope,
            U6::AddrUnreachable => Reason::HostUnreach,
            U6::PortUnreachable => Reason::PortUnreach,
            U6::RejectRoute => Reason::RejectRoute,
            U6::Unknown(_) => return None,
        },
        IcmpErrorKind::V6PktTooBig { .. } | IcmpErrorKind::V6ParamProblem { .. } => return None,
    };
    if reason == Reason::PortUnreach && proto == Proto::Udp && from_target {
        return Some((PortState::Closed, Reason::PortUnreach));
    }
    Some((PortState::Filtered, reason))
}

/// Source ports the tries of one TCP probe spread over.
pub const TRY_PORTS: u16 = 16;

/// The scan's secret: source ports and sequence numbers are keyed hashes of
/// the probe key, so replies can be validated statelessly (like masscan's
/// SYN cookies) and forged replies are rejected.
#[derive(Clone, Copy, Debug)]
pub struct Cookies {
    k0: u64,
    k1: u64,
}

impl Cookies {
    pub fn new(key: [u8; 16]) -> Self {
        let (a, b) = key.split_at(8);
        Cookies {
            k0: u64::from_le_bytes(a.try_into().unwrap_or([0; 8])),
            k1: u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
        }
    }

    fn hash(&self, key: &ProbeKey, salt: u32) -> u64 {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        match key.ip {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.write_u16(key.port);
        h.write_u8(key.proto as u8);
        h.write_u32(salt);
        h.finish()
    }

    /// Source port for probes to `key`: randomized per key, in 1024..=65535,
    /// the same for every retry so late replies still validate.
    pub fn src_port(&self, key: &ProbeKey) -> u16 {
        1024 + (self.hash(key, 0x5350) % (65536 - 1024)) as u16
    }

    /// Source port of TCP try `attempt` (0 = the first) to `key`: the key's
    /// port plus `attempt mod TRY_PORTS`, wrapping within 1024..=65535. A
    /// retry from a new port is a new connection to the target: Linux
    /// answers a repeated SYN for a connection still in SYN_RECV (its
    /// SYN-ACK was lost) at most once per `tcp_invalid_ratelimit` (500 ms),
    /// so retries from one port go unanswered (nmap, too, retries from a
    /// new port). The answer's port also says which try it answers.
    pub fn tcp_try_port(&self, key: &ProbeKey, attempt: u8) -> u16 {
        let base = u32::from(self.src_port(key) - 1024);
        let off = u32::from(attempt) % u32::from(TRY_PORTS);
        1024 + ((base + off) % (65536 - 1024)) as u16
    }

    /// Which try (mod `TRY_PORTS`) to `key` left from source `port`, if
    /// any did.
    pub fn tcp_try_of(&self, key: &ProbeKey, port: u16) -> Option<u8> {
        if port < 1024 {
            return None;
        }
        let base = u32::from(self.src_port(key) - 1024);
        let d = (u32::from(port - 1024) + (65536 - 1024) - base) % (65536 - 1024);
        (d < u32::from(TRY_PORTS)).then_some(d as u8)
    }

    /// Sequence number (TCP) or ID cookie (UDP payloads, IP ID) for `key`.
    pub fn seq(&self, key: &ProbeKey) -> u32 {
        self.hash(key, 0x5345) as u32
    }

    /// IPv4 ID of a UDP probe to `key`: the low 16 bits of the cookie, so
    /// that an ICMP error, which quotes the IP header, quotes the cookie.
    pub fn udp_ip_id(&self, key: &ProbeKey) -> u16 {
        self.seq(key) as u16
    }

    /// IPv6 flow label of a UDP probe to `key`: the low 20 bits of the
    /// cookie (IPv6 has no IP ID; an ICMPv6 error quotes the flow label).
    pub fn udp_flow_label(&self, key: &ProbeKey) -> u32 {
        self.seq(key) & 0x000f_ffff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for p in [Proto::Tcp, Proto::Udp] {
            assert_eq!(Proto::from_name(p.as_str()), Some(p));
        }
        for s in PortState::ALL {
            assert_eq!(PortState::from_name(s.as_str()), Some(s));
        }
        for r in Reason::ALL {
            assert_eq!(Reason::from_name(r.as_str()), Some(r));
        }
        assert_eq!(Reason::from_name("bogus"), None);
        assert_eq!(PortState::from_name("Open"), None);
    }

    /// Regression: `ALL` missed udp-response-unverified, no-route,
    /// beyond-scope and reject-route, so `rawscan merge` refused NDJSON
    /// lines an IPv6 or UDP scan wrote. The exhaustive match below stops
    /// compiling when a reason is added, and the count then checks `ALL`.
    #[test]
    fn all_lists_every_reason_once() {
        fn ordinal(r: Reason) -> usize {
            match r {
                Reason::SynAck => 0,
                Reason::Reset => 1,
                Reason::ConnRefused => 2,
                Reason::UdpResponse => 3,
                Reason::UdpResponseUnverified => 4,
                Reason::NoResponse => 5,
                Reason::NetUnreach => 6,
                Reason::HostUnreach => 7,
                Reason::ProtoUnreach => 8,
                Reason::PortUnreach => 9,
                Reason::NetProhibited => 10,
                Reason::HostProhibited => 11,
                Reason::AdminProhibited => 12,
                Reason::TimeExceeded => 13,
                Reason::NoRoute => 14,
                Reason::BeyondScope => 15,
                Reason::RejectRoute => 16,
                Reason::EchoReply => 17,
                Reason::TimestampReply => 18,
                Reason::ArpResponse => 19,
                Reason::NdResponse => 20,
                Reason::LocalhostResponse => 21,
            }
        }
        let mut seen = [false; Reason::ALL.len()];
        for r in Reason::ALL {
            let i = ordinal(r);
            assert!(!seen[i], "{r:?} twice");
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s));
        for name in [
            "no-route",
            "beyond-scope",
            "reject-route",
            "udp-response-unverified",
        ] {
            assert!(Reason::from_name(name).is_some(), "{name}");
        }
    }
    use std::net::Ipv4Addr;

    fn key(port: u16) -> ProbeKey {
        ProbeKey {
            ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            port,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn tcp_tries_leave_from_their_own_ports_and_say_which_try_they_are() {
        let c = Cookies::new([7; 16]);
        let k = key(443);
        assert_eq!(c.tcp_try_port(&k, 0), c.src_port(&k));
        let ports: std::collections::HashSet<u16> = (0..TRY_PORTS as u8)
            .map(|a| c.tcp_try_port(&k, a))
            .collect();
        assert_eq!(ports.len(), usize::from(TRY_PORTS));
        for a in 0..40u8 {
            let p = c.tcp_try_port(&k, a);
            assert!(p >= 1024);
            assert_eq!(c.tcp_try_of(&k, p), Some(a % TRY_PORTS as u8));
        }
        let valid = (0..=u16::MAX)
            .filter(|&p| c.tcp_try_of(&k, p).is_some())
            .count();
        assert_eq!(valid, usize::from(TRY_PORTS));
    }

    #[test]
    fn cookies_depend_on_key_and_secret() {
        let a = Cookies::new([1; 16]);
        let b = Cookies::new([2; 16]);
        assert_eq!(a.seq(&key(80)), a.seq(&key(80)));
        assert_ne!(a.seq(&key(80)), a.seq(&key(81)));
        assert_ne!(a.seq(&key(80)), b.seq(&key(80)));
        let ports: std::collections::HashSet<u16> =
            (1..2000).map(|p| a.src_port(&key(p))).collect();
        assert!(
            ports.len() > 1900,
            "source ports are not spread: {}",
            ports.len()
        );
        assert!(ports.iter().all(|&p| p >= 1024));
    }

    #[test]
    fn icmp_classification_matches_nmap() {
        use PortState::*;
        use icmpv4::DstUnreachable as U4;
        use icmpv6::DstUnreachable as U6;
        let c = |k, p, t| classify_icmp(k, p, t).map(|(s, r)| (s, r.as_str()));
        let v4 = |code: u8| IcmpErrorKind::V4Unreachable(code.into());
        let v6 = |code: u8| IcmpErrorKind::V6Unreachable(code.into());
        assert_eq!(
            c(v4(13), Proto::Tcp, true),
            Some((Filtered, "admin-prohibited"))
        );
        assert_eq!(c(v4(3), Proto::Tcp, true), Some((Filtered, "port-unreach")));
        assert_eq!(c(v4(3), Proto::Udp, true), Some((Closed, "port-unreach")));
        assert_eq!(
            c(v4(3), Proto::Udp, false),
            Some((Filtered, "port-unreach"))
        );
        assert_eq!(c(v4(1), Proto::Udp, true), Some((Filtered, "host-unreach")));
        assert_eq!(
            c(IcmpErrorKind::V4TimeExceeded { code: 0 }, Proto::Tcp, false),
            Some((Filtered, "time-exceeded"))
        );
        assert_eq!(c(v4(4), Proto::Tcp, true), None);
        assert_eq!(v4(13), IcmpErrorKind::V4Unreachable(U4::CommProhibited));
        // ICMPv6 (RFC 4443 codes; nmap's reason names).
        for (code, udp_target, any) in [
            (0, (Filtered, "no-route"), (Filtered, "no-route")),
            (
                1,
                (Filtered, "admin-prohibited"),
                (Filtered, "admin-prohibited"),
            ),
            (2, (Filtered, "beyond-scope"), (Filtered, "beyond-scope")),
            (3, (Filtered, "host-unreach"), (Filtered, "host-unreach")),
            (4, (Closed, "port-unreach"), (Filtered, "port-unreach")),
            (
                5,
                (Filtered, "admin-prohibited"),
                (Filtered, "admin-prohibited"),
            ),
            (6, (Filtered, "reject-route"), (Filtered, "reject-route")),
        ] {
            assert_eq!(c(v6(code), Proto::Udp, true), Some(udp_target), "1/{code}");
            assert_eq!(c(v6(code), Proto::Udp, false), Some(any), "1/{code} router");
            assert_eq!(c(v6(code), Proto::Tcp, true), Some(any), "1/{code} tcp");
        }
        assert_eq!(c(v6(7), Proto::Udp, true), None);
        assert_eq!(v6(4), IcmpErrorKind::V6Unreachable(U6::PortUnreachable));
        // Type 3 is time exceeded over IPv6, never "unreachable".
        for p in [Proto::Udp, Proto::Tcp] {
            assert_eq!(
                c(IcmpErrorKind::V6TimeExceeded { code: 0 }, p, true),
                Some((Filtered, "time-exceeded"))
            );
        }
        assert_eq!(
            c(IcmpErrorKind::V6PktTooBig { mtu: 1280 }, Proto::Udp, true),
            None
        );
        assert_eq!(
            c(IcmpErrorKind::V6ParamProblem { code: 1 }, Proto::Udp, true),
            None
        );
    }

    #[test]
    fn icmp_reasons_are_icmp() {
        assert!(Reason::PortUnreach.is_icmp() && Reason::NoRoute.is_icmp());
        assert!(!Reason::UdpResponse.is_icmp() && !Reason::UdpResponseUnverified.is_icmp());
        assert!(!Reason::NoResponse.is_icmp() && !Reason::SynAck.is_icmp());
    }
}
