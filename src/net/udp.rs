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
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use mio::Interest;
use mio::net::UdpSocket;

use super::worker::{self, Ready, Technique};
use super::{Backend, Counters, Probe};
use crate::probe::{Cookies, PortState, ProbeKey, Proto, Reason, classify_icmp};
use crate::probes::udp::TFTP_PORT;
use crate::validate::Reply;
use crate::wire::payloads::{self, Evidence};
use crate::wire::{IcmpErrorKind, tftp};

fn set_int(fd: i32, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: fd is an open socket; the value is a plain int.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What one `recvmsg` returned.
enum Got {
    Data {
        len: usize,
        ttl: Option<u8>,
        /// The datagram's sender.
        peer: Option<SocketAddr>,
    },
    Icmp {
        /// Reported by ICMPv6 (SO_EE_ORIGIN_ICMP6) rather than ICMP.
        v6: bool,
        icmp_type: u8,
        code: u8,
        from: Option<IpAddr>,
        /// Where the datagram the error is about was sent.
        dest: Option<SocketAddr>,
    },
    Nothing,
}

/// The address in a `sockaddr_storage` the kernel filled.
fn sockaddr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(ss.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in, and the kernel wrote at
            // least that many bytes; sockaddr_storage is aligned for it.
            let sa = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))),
                u16::from_be(sa.sin_port),
            ))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sa =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)),
                u16::from_be(sa.sin6_port),
            ))
        }
        _ => None,
    }
}

/// `recvmsg` with control messages; `errqueue` reads the error queue.
fn recv(fd: i32, buf: &mut [u8], errqueue: bool) -> io::Result<Got> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 64];
    // SAFETY: both are plain data; zeroed is a valid initial state.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    let flags = libc::MSG_DONTWAIT | if errqueue { libc::MSG_ERRQUEUE } else { 0 };
    // SAFETY: msg points to valid iovec and control buffers for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(Got::Nothing)
        } else {
            Err(e)
        };
    }
    let mut ttl = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
    // bounded by msg_controllen; each payload is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            let data = libc::CMSG_DATA(c);
            let is_err = (level == libc::SOL_IP && ty == libc::IP_RECVERR)
                || (level == libc::SOL_IPV6 && ty == libc::IPV6_RECVERR);
            if is_err {
                let ee: libc::sock_extended_err = std::ptr::read_unaligned(data.cast());
                if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP
                    || ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6
                {
                    // SO_EE_OFFENDER: the sockaddr right after the struct.
                    let off = data.add(mem::size_of::<libc::sock_extended_err>());
                    let family = std::ptr::read_unaligned(off.cast::<libc::sa_family_t>());
                    let from = match i32::from(family) {
                        libc::AF_INET => {
                            let sa: libc::sockaddr_in = std::ptr::read_unaligned(off.cast());
                            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))))
                        }
                        libc::AF_INET6 => {
                            let sa: libc::sockaddr_in6 = std::ptr::read_unaligned(off.cast());
                            Some(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)))
                        }
                        _ => None,
                    };
                    return Ok(Got::Icmp {
                        v6: ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6,
                        icmp_type: ee.ee_type,
                        code: ee.ee_code,
                        from,
                        dest: sockaddr(&name, msg.msg_namelen),
                    });
                }
            } else if (level == libc::SOL_IP && ty == libc::IP_TTL)
                || (level == libc::SOL_IPV6 && ty == libc::IPV6_HOPLIMIT)
            {
                let v: i32 = std::ptr::read_unaligned(data.cast());
                ttl = u8::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if errqueue {
        return Ok(Got::Nothing);
    }
    Ok(Got::Data {
        len: n as usize,
        ttl,
        peer: sockaddr(&name, msg.msg_namelen),
    })
}

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
            IpAddr::V4(_) => set_int(fd, libc::SOL_IP, libc::IP_RECVERR, 1)
                .and_then(|_| set_int(fd, libc::SOL_IP, libc::IP_RECVTTL, 1)),
            IpAddr::V6(_) => set_int(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, 1)
                .and_then(|_| set_int(fd, libc::SOL_IPV6, libc::IPV6_RECVHOPLIMIT, 1)),
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
                    if ours && let Some(reply) = icmp_reply(&p.key, v6, icmp_type, code, from) {
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
fn icmp_reply(
    key: &ProbeKey,
    v6: bool,
    icmp_type: u8,
    code: u8,
    from: Option<IpAddr>,
) -> Option<Reply> {
    let kind = if v6 {
        IcmpErrorKind::from_icmpv6(icmp_type, code)?
    } else {
        IcmpErrorKind::from_icmpv4(icmp_type, code)?
    };
    let from_target = from == Some(key.ip);
    let (state, reason) = classify_icmp(kind, Proto::Udp, from_target)?;
    Some(Reply {
        key: *key,
        state,
        reason,
        ttl: None,
        attempt: None,
    })
}

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
        icmp_reply(&key(ip), v6, t, c, Some(from)).map(|r| (r.state, r.reason.as_str()))
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
