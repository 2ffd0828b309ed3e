//! Unprivileged UDP technique (`-sU` without raw sockets): one connected
//! UDP socket per probe, with IP_RECVERR so the kernel hands us the ICMP
//! errors it receives for that socket, run by the shared `worker`.
//!
//! Invariants: a datagram counts only if it comes from the probed port
//! to our address and port (the kernel checks both for a connected socket)
//! and passes the payload's evidence check (`udp-response` with the cookie,
//! `udp-response-unverified` without an ID field or for an empty probe); an
//! ICMP error is read from the socket's error queue with its type, code
//! and sender, so "closed" needs a port-unreachable from the target itself,
//! exactly as the raw backend decides.
//!
//! TFTP is the exception, as in the raw backend: its server answers from a
//! new port (RFC 1350 transfer IDs), which a connected socket would never
//! see. A TFTP probe's socket is bound but not connected; a datagram on it
//! counts when it comes from the target (any port) and parses as a TFTP
//! answer to a read request (or comes from port 69 itself), and an ICMP
//! error only when it is about our datagram to (target, 69).
//!
//! The worker keeps each probe's socket open for `LINGER` after its
//! timeout, so a reply to an earlier attempt that comes after the retry was
//! sent (freeradius holds an Access-Reject for a second) is still read,
//! as the raw backend reads it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use mio::Interest;
use mio::net::UdpSocket;

use super::sys::{Got, icmp_reply, recv, set_opt};
use super::worker::{self, Ready, Technique};
use super::{Backend, Counters, Probe};
use crate::probe::{Cookies, PortState, Proto, Reason};
use crate::probes::udp::TFTP_PORT;
use crate::validate::Reply;
use crate::wire::payloads::{self, Evidence};
use crate::wire::tftp;

pub struct ConnectedUdp {
    cookies: Cookies,
    buf: Vec<u8>,
    payload: Vec<u8>,
}

/// How long a probe's socket stays open after its timeout for a late
/// reply (the scan's grace for late replies is 1 s after the last try).
pub const LINGER: Duration = Duration::from_secs(2);

impl Technique for ConnectedUdp {
    type Sock = UdpSocket;
    const INTEREST: Interest = Interest::READABLE;
    const LINGER: Duration = LINGER;

    fn open(&mut self, p: &Probe) -> Result<UdpSocket, Result<Reply, io::Error>> {
        // Bound to the probe's source (`-S`), so the target's ICMP budget
        // is the one of that (source, target) pair the pacer counts on.
        let any: SocketAddr = match (p.src, p.key.ip) {
            (Some(src), _) => (src, 0).into(),
            (None, IpAddr::V4(_)) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (None, IpAddr::V6(_)) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(any).map_err(Err)?;
        let fd = sock.as_raw_fd();
        let opts = match p.key.ip {
            IpAddr::V4(_) => set_opt(fd, libc::SOL_IP, libc::IP_RECVERR, &1)
                .and_then(|_| set_opt(fd, libc::SOL_IP, libc::IP_RECVTTL, &1)),
            IpAddr::V6(_) => set_opt(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, &1)
                .and_then(|_| set_opt(fd, libc::SOL_IPV6, libc::IPV6_RECVHOPLIMIT, &1)),
        };
        opts.map_err(Err)?;
        let to = SocketAddr::new(p.key.ip, p.key.port);
        self.payload.clear();
        if let Some(pl) = payloads::payload_for(p.key.port) {
            pl.write(self.cookies.seq(&p.key), &mut self.payload);
        }
        let sent = if p.key.port == TFTP_PORT {
            // Unconnected: the answer comes from the server's new port.
            sock.send_to(&self.payload, to)
        } else {
            sock.connect(to).map_err(Err)?;
            sock.send(&self.payload)
        };
        match sent {
            Ok(_) => Ok(sock),
            Err(e) => Err(Err(e)),
        }
    }

    fn ready(&mut self, sock: &mut UdpSocket, p: &Probe) -> Ready {
        let fd = sock.as_raw_fd();
        for _ in 0..16 {
            match recv(fd, &mut self.buf, true) {
                Ok(Got::Icmp {
                    v6,
                    icmp_type,
                    code,
                    from,
                    dest,
                }) => {
                    // Only about our datagram to the probed port (the
                    // kernel makes sure of it for a connected socket).
                    let ours = dest.is_none_or(|d| d == SocketAddr::new(p.key.ip, p.key.port));
                    if ours
                        && let Some(reply) =
                            icmp_reply(&p.key, Proto::Udp, v6, icmp_type, code, from)
                    {
                        return Ready::Done(reply);
                    }
                }
                Ok(_) => break,
                Err(_) => break,
            }
        }
        for _ in 0..16 {
            match recv(fd, &mut self.buf, false) {
                Ok(Got::Data { len, ttl, peer }) => {
                    let data = &self.buf[..len];
                    let from_port = match peer {
                        Some(a) if a.ip() == p.key.ip => a.port(),
                        Some(_) => continue, // another host (unconnected socket)
                        None => p.key.port,
                    };
                    if from_port != p.key.port {
                        // Only TFTP sockets are unconnected: the server's
                        // answer from its new port.
                        if p.key.port == TFTP_PORT && tftp::Reply::parse(data).is_some() {
                            return Ready::Done(Reply {
                                key: p.key,
                                state: PortState::Open,
                                reason: Reason::UdpResponseUnverified,
                                ttl,
                                attempt: None,
                            });
                        }
                        continue;
                    }
                    let evidence = payloads::payload_for(p.key.port)
                        .map(|pl| pl.evidence(self.cookies.seq(&p.key), data));
                    let reason = match evidence {
                        Some(Evidence::Verified) => Reason::UdpResponse,
                        Some(Evidence::Unverified) | None => Reason::UdpResponseUnverified,
                        Some(Evidence::Rejected) => continue,
                    };
                    return Ready::Done(Reply {
                        key: p.key,
                        state: PortState::Open,
                        reason,
                        ttl,
                        attempt: None,
                    });
                }
                Ok(_) => return Ready::Pending,
                // The error was reported through the error queue above;
                // a bare ECONNREFUSED without it still means port-unreach
                // from the connected peer.
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    return Ready::Done(Reply {
                        key: p.key,
                        state: PortState::Closed,
                        reason: Reason::PortUnreach,
                        ttl: None,
                        attempt: None,
                    });
                }
                Err(_) => return Ready::Pending,
            }
        }
        Ready::Pending
    }
}

/// The reply an ICMP or ICMPv6 error reported through the error queue
/// makes for `key`, if its type and code decide anything. The family comes
/// from the error's origin: ICMPv6 type 3 is time exceeded, not ICMP's
/// destination unreachable.
pub fn start(cookies: Cookies, counters: Arc<Counters>) -> anyhow::Result<Backend> {
    let tech = ConnectedUdp {
        cookies,
        buf: vec![0u8; 65_536],
        payload: Vec::with_capacity(1500),
    };
    worker::start(tech, "rawscan-udp", counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeKey;
    use std::net::Ipv6Addr;

    const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    const ROUTER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe));
    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

    fn key(ip: IpAddr) -> ProbeKey {
        ProbeKey {
            ip,
            port: 161,
            proto: Proto::Udp,
        }
    }

    fn got(ip: IpAddr, v6: bool, t: u8, c: u8, from: IpAddr) -> Option<(PortState, &'static str)> {
        icmp_reply(&key(ip), Proto::Udp, v6, t, c, Some(from)).map(|r| (r.state, r.reason.as_str()))
    }

    #[test]
    fn icmpv6_errors_map_through_the_icmpv6_codes() {
        use PortState::*;
        assert_eq!(got(V6, true, 1, 4, V6), Some((Closed, "port-unreach")));
        assert_eq!(
            got(V6, true, 1, 4, ROUTER6),
            Some((Filtered, "port-unreach"))
        );
        assert_eq!(
            got(V6, true, 1, 1, V6),
            Some((Filtered, "admin-prohibited"))
        );
        assert_eq!(got(V6, true, 1, 0, ROUTER6), Some((Filtered, "no-route")));
        assert_eq!(
            got(V6, true, 1, 3, ROUTER6),
            Some((Filtered, "host-unreach"))
        );
        assert_eq!(
            got(V6, true, 1, 2, ROUTER6),
            Some((Filtered, "beyond-scope"))
        );
        assert_eq!(
            got(V6, true, 1, 5, V6),
            Some((Filtered, "admin-prohibited"))
        );
        assert_eq!(got(V6, true, 1, 6, V6), Some((Filtered, "reject-route")));
        // The bug this replaces: ICMPv6 type 3 (time exceeded) fell into
        // the IPv4 "type 3 = unreachable" arm, so code 0 read as
        // net-unreach and code 1 as host-unreach.
        assert_eq!(
            got(V6, true, 3, 0, ROUTER6),
            Some((Filtered, "time-exceeded"))
        );
        assert_eq!(got(V6, true, 3, 1, V6), Some((Filtered, "time-exceeded")));
        // Packet too big and parameter problem decide nothing; neither do
        // ICMPv6 informational types.
        assert_eq!(got(V6, true, 2, 0, ROUTER6), None);
        assert_eq!(got(V6, true, 4, 1, V6), None);
        assert_eq!(got(V6, true, 129, 0, V6), None);
    }

    #[test]
    fn icmpv4_errors_keep_their_mapping() {
        use PortState::*;
        assert_eq!(got(V4, false, 3, 3, V4), Some((Closed, "port-unreach")));
        assert_eq!(
            got(V4, false, 3, 13, V4),
            Some((Filtered, "admin-prohibited"))
        );
        assert_eq!(got(V4, false, 3, 1, V4), Some((Filtered, "host-unreach")));
        assert_eq!(got(V4, false, 11, 0, V4), Some((Filtered, "time-exceeded")));
        // ICMP type 1 does not exist; type 4 (source quench) decides nothing.
        assert_eq!(got(V4, false, 1, 4, V4), None);
        assert_eq!(got(V4, false, 4, 0, V4), None);
    }
}
