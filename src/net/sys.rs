//! The few libc calls the backends share: an int `setsockopt`, socket
//! addresses to and from the kernel's form (`sockaddr_in`/`sockaddr_in6`),
//! and `recvmsg` with the kernel's own reading of ICMP errors: a socket
//! with `IP_RECVERR` / `IPV6_RECVERR` gets each ICMP error about its
//! traffic queued on its error queue, with type, code and sender
//! (`SO_EE_OFFENDER`), and polls with an error at once.
//!
//! Invariants: `recv` never blocks and never reads past what the kernel
//! wrote (`cmsgs` bounds each control message by its `cmsg_len` and by
//! `msg_controllen`, `read_pod` checks the length; `msg_namelen`); an error queue entry that did
//! not come from ICMP or ICMPv6 (a local error) is not reported as one.
//! `icmp_reply` decides through `probe::classify_icmp`, the raw backend's
//! mapping, so every backend gives a port the same state and reason.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::probe::{ProbeKey, Proto, classify_icmp};
use crate::validate::Reply;
use crate::wire::IcmpErrorKind;

pub fn set_opt<T: Pod>(fd: i32, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: fd is an open socket; val points to a plain value of its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Plain kernel data: every bit pattern of its size is a valid value, so
/// it may be read from bytes the kernel wrote (`read_pod`) and passed to
/// `setsockopt` (`set_opt`).
pub trait Pod: Copy {}
impl Pod for i32 {}
impl Pod for u16 {}
impl Pod for libc::linger {}
/// `struct icmp6_filter` (RFC 3542), which libc does not name.
impl Pod for [u32; 8] {}
impl Pod for libc::in6_pktinfo {}
impl Pod for libc::sock_extended_err {}
impl Pod for libc::sockaddr_in {}
impl Pod for libc::sockaddr_in6 {}

/// A `T` from the start of `b`, if `b` holds one.
pub fn read_pod<T: Pod>(b: &[u8]) -> Option<T> {
    // SAFETY: b holds at least size_of::<T>() bytes, and any bytes are a
    // valid T (Pod); the read is unaligned.
    (b.len() >= mem::size_of::<T>()).then(|| unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) })
}

/// The control messages `recvmsg` left in `msg`, as (level, type,
/// payload), each payload bounded by its `cmsg_len` and by the control
/// buffer's end (`msg_controllen`, as the kernel updated it).
pub fn cmsgs(msg: &libc::msghdr) -> impl Iterator<Item = (i32, i32, &[u8])> {
    // SAFETY: msg's control buffer is the one the kernel filled;
    // CMSG_FIRSTHDR/CMSG_NXTHDR return a header inside it or null.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    let end = (msg.msg_control as *const u8).wrapping_add(msg.msg_controllen);
    std::iter::from_fn(move || {
        if c.is_null() {
            return None;
        }
        // SAFETY: c is a header inside the control buffer (above); its
        // payload starts at CMSG_DATA and is cut at cmsg_len and at the
        // buffer's end, so the slice stays within what the kernel wrote.
        unsafe {
            let (level, ty, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len);
            let data = libc::CMSG_DATA(c) as *const u8;
            let header = data.offset_from(c as *const u8) as usize;
            let room = end.offset_from(data).max(0) as usize;
            let n = len.saturating_sub(header).min(room);
            let payload = std::slice::from_raw_parts(data, n);
            c = libc::CMSG_NXTHDR(msg, c);
            Some((level, ty, payload))
        }
    })
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
    for (level, ty, data) in cmsgs(&msg) {
        let is_err = (level == libc::SOL_IP && ty == libc::IP_RECVERR)
            || (level == libc::SOL_IPV6 && ty == libc::IPV6_RECVERR);
        if is_err {
            let Some(ee) = read_pod::<libc::sock_extended_err>(data) else {
                continue;
            };
            if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP || ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6 {
                // SO_EE_OFFENDER: the sockaddr right after the struct.
                let off = data
                    .get(mem::size_of::<libc::sock_extended_err>()..)
                    .unwrap_or(&[]);
                let from = match read_pod::<libc::sa_family_t>(off).map(i32::from) {
                    Some(libc::AF_INET) => read_pod::<libc::sockaddr_in>(off)
                        .map(|sa| IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))),
                    Some(libc::AF_INET6) => read_pod::<libc::sockaddr_in6>(off)
                        .map(|sa| IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr))),
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
            ttl = read_pod::<i32>(data).and_then(|v| u8::try_from(v).ok());
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

    /// A control buffer as `recvmsg` leaves it: the messages come back
    /// with their payloads, and one whose `cmsg_len` runs past the buffer
    /// is cut at the buffer's end (no read beyond it).
    #[test]
    fn control_messages_are_bounded_by_their_length_and_the_buffer() {
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&control);
        // SAFETY: the headers are written inside `control`, as the CMSG_*
        // macros place them.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_HOPLIMIT;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), 64);
            let d = libc::CMSG_NXTHDR(&msg, c);
            (*d).cmsg_level = libc::SOL_IP;
            (*d).cmsg_type = libc::IP_TTL;
            (*d).cmsg_len = 4096; // lies: longer than the buffer
        }
        let got: Vec<(i32, i32, usize)> = cmsgs(&msg).map(|(l, t, p)| (l, t, p.len())).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, 4));
        let first = cmsgs(&msg).next().unwrap().2;
        assert_eq!(read_pod::<i32>(first), Some(64));
        // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes.
        let (space, header) = unsafe { (libc::CMSG_SPACE(4), libc::CMSG_LEN(0)) };
        let room = mem::size_of_val(&control) - space as usize - header as usize;
        assert_eq!(got[1], (libc::SOL_IP, libc::IP_TTL, room));
        assert!(read_pod::<libc::sockaddr_in6>(&[0u8; 4]).is_none());
    }

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
