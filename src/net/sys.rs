//! The few libc calls the backends share: an int `setsockopt`, socket
//! addresses to and from the kernel's form (`sockaddr_in`/`sockaddr_in6`),
//! and `recvmsg` with the kernel's own reading of ICMP errors: a socket
//! with `IP_RECVERR` / `IPV6_RECVERR` gets each ICMP error about its
//! traffic queued on its error queue, with type, code and sender
//! (`SO_EE_OFFENDER`), and polls with an error at once.
//!
//! Invariants: `recv` never blocks and never reads past what the kernel
//! wrote (`msg_controllen`, `msg_namelen`); an error queue entry that did
//! not come from ICMP or ICMPv6 (a local error) is not reported as one.
//! `icmp_reply` decides through `probe::classify_icmp`, the raw backend's
//! mapping, so every backend gives a port the same state and reason.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::probe::{ProbeKey, Proto, classify_icmp};
use crate::validate::Reply;
use crate::wire::IcmpErrorKind;

pub fn set_int(fd: i32, level: i32, name: i32, v: i32) -> io::Result<()> {
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

/// A socket address in the kernel's form, for `connect` or `sendmmsg`.
pub union SockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl SockAddr {
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (self as *const SockAddr).cast()
    }
}

/// `to` in the kernel's form, with its length.
pub fn sockaddr_of(to: SocketAddr) -> (SockAddr, libc::socklen_t) {
    match to {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in is plain data; zeroed is valid.
            let mut s: libc::sockaddr_in = unsafe { mem::zeroed() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            let len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            (SockAddr { v4: s }, len)
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain data; zeroed is valid.
            let mut s: libc::sockaddr_in6 = unsafe { mem::zeroed() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_scope_id = a.scope_id();
            let len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            (SockAddr { v6: s }, len)
        }
    }
}

/// What one `recvmsg` returned.
pub enum Got {
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
pub fn sockaddr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
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
pub fn recv(fd: i32, buf: &mut [u8], errqueue: bool) -> io::Result<Got> {
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

pub fn icmp_reply(
    key: &ProbeKey,
    proto: Proto,
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
    let (state, reason) = classify_icmp(kind, proto, from_target)?;
    Some(Reply {
        key: *key,
        state,
        reason,
        ttl: None,
        attempt: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sockaddr_of` writes what `sockaddr` reads back, for both families,
    /// with the length of the family's struct.
    #[test]
    fn socket_addresses_round_trip_through_the_kernel_form() {
        for to in ["198.18.0.2:443", "[2001:db8::2]:65535", "127.0.0.1:0"] {
            let to: SocketAddr = to.parse().unwrap();
            let (addr, len) = sockaddr_of(to);
            // SAFETY: zeroed storage is valid; the copy stays within both
            // (len is at most the size of sockaddr_in6).
            let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
            unsafe {
                std::ptr::copy_nonoverlapping(
                    addr.as_ptr().cast::<u8>(),
                    (&mut ss as *mut libc::sockaddr_storage).cast::<u8>(),
                    len as usize,
                );
            }
            let want = match to {
                SocketAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
                SocketAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
            };
            assert_eq!(len as usize, want);
            assert_eq!(sockaddr(&ss, len), Some(to));
        }
    }
}
