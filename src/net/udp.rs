//! Unprivileged UDP technique (`-sU` without raw sockets): one connected
//! UDP socket per probe, with IP_RECVERR so the kernel hands us the ICMP
//! errors it receives for that socket, run by the shared `worker`.
//!
//! Invariants: a datagram counts only if it comes from the probed port
//! (the socket is connected) and passes the payload's cookie check; an
//! ICMP error is read from the socket's error queue with its type, code
//! and sender, so "closed" needs a port-unreachable from the target itself,
//! exactly as the raw backend decides.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use mio::Interest;
use mio::net::UdpSocket;

use super::worker::{self, Ready, Technique};
use super::{Backend, Counters, Probe};
use crate::probe::{Cookies, IcmpKind, PortState, Proto, Reason, classify_icmp};
use crate::validate::Reply;
use crate::wire::payloads;

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
    },
    Icmp {
        icmp_type: u8,
        code: u8,
        from: Option<IpAddr>,
    },
    Nothing,
}

/// `recvmsg` with control messages; `errqueue` reads the error queue.
fn recv(fd: i32, buf: &mut [u8], errqueue: bool) -> io::Result<Got> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 64];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
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
                        icmp_type: ee.ee_type,
                        code: ee.ee_code,
                        from,
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
    })
}

pub struct ConnectedUdp {
    cookies: Cookies,
    buf: Vec<u8>,
    payload: Vec<u8>,
}

impl Technique for ConnectedUdp {
    type Sock = UdpSocket;
    const INTEREST: Interest = Interest::READABLE;

    fn open(&mut self, p: &Probe) -> Result<UdpSocket, Result<Reply, io::Error>> {
        let any: SocketAddr = match p.key.ip {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
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
        sock.connect(SocketAddr::new(p.key.ip, p.key.port))
            .map_err(Err)?;
        self.payload.clear();
        if let Some(pl) = payloads::payload_for(p.key.port) {
            pl.write(self.cookies.seq(&p.key), &mut self.payload);
        }
        match sock.send(&self.payload) {
            Ok(_) => Ok(sock),
            Err(e) => Err(Err(e)),
        }
    }

    fn ready(&mut self, sock: &mut UdpSocket, p: &Probe) -> Ready {
        let fd = sock.as_raw_fd();
        for _ in 0..16 {
            match recv(fd, &mut self.buf, true) {
                Ok(Got::Icmp {
                    icmp_type,
                    code,
                    from,
                }) => {
                    let kind = match icmp_type {
                        3 => IcmpKind::Unreach(code),
                        11 => IcmpKind::TimeExceeded,
                        // ICMPv6: destination unreachable (1) codes differ;
                        // port unreachable is 4, admin-prohibited 1.
                        1 if p.key.ip.is_ipv6() => IcmpKind::Unreach(match code {
                            4 => 3,
                            1 => 13,
                            3 => 1,
                            0 => 0,
                            other => other,
                        }),
                        _ => continue,
                    };
                    let from_target = from == Some(p.key.ip);
                    if let Some((state, reason)) = classify_icmp(kind, Proto::Udp, from_target) {
                        return Ready::Done(Reply {
                            key: p.key,
                            state,
                            reason,
                            ttl: None,
                        });
                    }
                }
                Ok(_) => break,
                Err(_) => break,
            }
        }
        for _ in 0..16 {
            match recv(fd, &mut self.buf, false) {
                Ok(Got::Data { len, ttl }) => {
                    let data = &self.buf[..len];
                    let ok = payloads::payload_for(p.key.port)
                        .is_none_or(|pl| pl.accepts(self.cookies.seq(&p.key), data));
                    if ok {
                        return Ready::Done(Reply {
                            key: p.key,
                            state: PortState::Open,
                            reason: Reason::UdpResponse,
                            ttl,
                        });
                    }
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
                    });
                }
                Err(_) => return Ready::Pending,
            }
        }
        Ready::Pending
    }
}

pub fn start(cookies: Cookies, counters: Arc<Counters>) -> anyhow::Result<Backend> {
    let tech = ConnectedUdp {
        cookies,
        buf: vec![0u8; 65_536],
        payload: Vec::with_capacity(1500),
    };
    worker::start(tech, "rawscan-udp", counters)
}
