//! Probe identities, port states and reasons, and the SYN cookie.
//!
//! Invariants: this module does no I/O. A `ProbeKey` names one (host, port,
//! protocol) target; the cookie and source port of a probe are pure functions
//! of the key and the scan's secret, so a reply can be validated without
//! consulting any table.

use std::fmt;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

/// Transport protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The protocol named `s` (as `as_str` writes it).
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
    UdpResponse,
    NoResponse,
    NetUnreach,
    HostUnreach,
    ProtoUnreach,
    PortUnreach,
    NetProhibited,
    HostProhibited,
    AdminProhibited,
    TimeExceeded,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::ConnRefused => "conn-refused",
            Reason::UdpResponse => "udp-response",
            Reason::NoResponse => "no-response",
            Reason::NetUnreach => "net-unreach",
            Reason::HostUnreach => "host-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::PortUnreach => "port-unreach",
            Reason::NetProhibited => "net-prohibited",
            Reason::HostProhibited => "host-prohibited",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::TimeExceeded => "time-exceeded",
        }
    }

    pub const ALL: [Reason; 13] = [
        Reason::SynAck,
        Reason::Reset,
        Reason::ConnRefused,
        Reason::UdpResponse,
        Reason::NoResponse,
        Reason::NetUnreach,
        Reason::HostUnreach,
        Reason::ProtoUnreach,
        Reason::PortUnreach,
        Reason::NetProhibited,
        Reason::HostProhibited,
        Reason::AdminProhibited,
        Reason::TimeExceeded,
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

/// ICMP destination-unreachable / time-exceeded, reduced to what decides a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    /// Type 3 (v4) with this code.
    Unreach(u8),
    /// Type 11 (v4).
    TimeExceeded,
}

/// Map an ICMP error about a probe to a state, as nmap does. `from_target`
/// says whether the error came from the probed host itself (a router's
/// port-unreachable does not make a UDP port closed). `None`: not a code
/// that decides anything; the reply is ignored.
pub fn classify_icmp(
    kind: IcmpKind,
    proto: Proto,
    from_target: bool,
) -> Option<(PortState, Reason)> {
    let (code, reason) = match kind {
        IcmpKind::TimeExceeded => return Some((PortState::Filtered, Reason::TimeExceeded)),
        IcmpKind::Unreach(code) => (
            code,
            match code {
                0 => Reason::NetUnreach,
                1 => Reason::HostUnreach,
                2 => Reason::ProtoUnreach,
                3 => Reason::PortUnreach,
                9 => Reason::NetProhibited,
                10 => Reason::HostProhibited,
                13 => Reason::AdminProhibited,
                _ => return None,
            },
        ),
    };
    if code == 3 && proto == Proto::Udp && from_target {
        return Some((PortState::Closed, Reason::PortUnreach));
    }
    Some((PortState::Filtered, reason))
}

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

    /// Sequence number (TCP) or ID cookie (UDP payloads, IP ID) for `key`.
    pub fn seq(&self, key: &ProbeKey) -> u32 {
        self.hash(key, 0x5345) as u32
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
    use std::net::Ipv4Addr;

    fn key(port: u16) -> ProbeKey {
        ProbeKey {
            ip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            port,
            proto: Proto::Tcp,
        }
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
        let c = |k, p, t| classify_icmp(k, p, t).map(|(s, r)| (s, r.as_str()));
        assert_eq!(
            c(IcmpKind::Unreach(13), Proto::Tcp, true),
            Some((Filtered, "admin-prohibited"))
        );
        assert_eq!(
            c(IcmpKind::Unreach(3), Proto::Tcp, true),
            Some((Filtered, "port-unreach"))
        );
        assert_eq!(
            c(IcmpKind::Unreach(3), Proto::Udp, true),
            Some((Closed, "port-unreach"))
        );
        assert_eq!(
            c(IcmpKind::Unreach(3), Proto::Udp, false),
            Some((Filtered, "port-unreach"))
        );
        assert_eq!(
            c(IcmpKind::Unreach(1), Proto::Udp, true),
            Some((Filtered, "host-unreach"))
        );
        assert_eq!(
            c(IcmpKind::TimeExceeded, Proto::Tcp, false),
            Some((Filtered, "time-exceeded"))
        );
        assert_eq!(c(IcmpKind::Unreach(4), Proto::Tcp, true), None);
    }
}
