//! The kernel's own reading of ICMP errors for the unprivileged backends:
//! a socket with `IP_RECVERR` / `IPV6_RECVERR` gets each ICMP error about
//! its traffic queued on its error queue, with type, code and sender
//! (`SO_EE_OFFENDER`), and polls as readable-with-error at once.
//!
//! Invariants: `recv` never blocks and never reads past what the kernel
//! wrote (`msg_controllen`, `msg_namelen`); an error queue entry that did
//! not come from ICMP or ICMPv6 (a local error) is not reported as one.
//! `icmp_reply` decides through `probe::classify_icmp`, the raw backend's
//! mapping, so both backends give a port the same state and reason.

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
