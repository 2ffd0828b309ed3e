//! TCP connect technique (`-sT`, and the fallback without raw sockets):
//! a non-blocking `connect()` per probe, run by the shared `worker`.
//!
//! Invariants: states follow nmap's -sT: connected = open (syn-ack),
//! ECONNREFUSED = closed (conn-refused), an ICMP error = filtered with the
//! reason the raw backend gives it (read from the socket's error queue,
//! `sys`; the connect's errno when the queue holds nothing), silence =
//! filtered after the engine's retries. Open ports are closed with an RST
//! (SO_LINGER 0) so targets keep no half-dead connections.
//!
//! Every socket has `IP_RECVERR` / `IPV6_RECVERR` set before it connects.
//! Without it, an ICMP error that reaches the socket while the connect()
//! call still holds it (a veth reply can be that fast) is kept only as a
//! soft error: no wake-up, and the kernel gives up only at its own SYN
//! retransmission (1 s), after the scan has called the port
//! filtered (no-response). With it, the kernel also queues the error, and
//! the socket polls with an error at once.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use mio::Interest;
use mio::net::TcpStream;

use super::sys::{self, Got};
use super::worker::{self, Ready, Technique};
use super::{Backend, Counters, Probe};
use crate::probe::{PortState, Proto, Reason};
use crate::validate::Reply;

/// Map a connect error to a state, as nmap's -sT does.
pub fn classify(e: &io::Error) -> Option<(PortState, Reason)> {
    match e.raw_os_error()? {
        libc::ECONNREFUSED => Some((PortState::Closed, Reason::ConnRefused)),
        libc::EHOSTUNREACH => Some((PortState::Filtered, Reason::HostUnreach)),
        libc::ENETUNREACH => Some((PortState::Filtered, Reason::NetUnreach)),
        libc::ENOPROTOOPT => Some((PortState::Filtered, Reason::ProtoUnreach)),
        libc::EACCES | libc::EPERM => Some((PortState::Filtered, Reason::AdminProhibited)),
        _ => None,
    }
}

fn reply(p: &Probe, (state, reason): (PortState, Reason)) -> Reply {
    Reply {
        key: p.key,
        state,
        reason,
        ttl: None,
        attempt: None,
    }
}

/// The reply an ICMP error queued on `sock` decides, if it holds one.
fn queued_icmp(sock: &TcpStream, p: &Probe) -> Option<Reply> {
    let mut buf = [0u8; 64];
    match sys::recv(sock.as_raw_fd(), &mut buf, true) {
        Ok(Got::Icmp {
            v6,
            icmp_type,
            code,
            from,
            ..
        }) => sys::icmp_reply(&p.key, Proto::Tcp, v6, icmp_type, code, from),
        _ => None,
    }
}

/// Open a non-blocking TCP socket with `IP_RECVERR` / `IPV6_RECVERR` set
/// and start connecting it to `to` (see the header for why the option
/// must be set before connect()).
fn connect_with_recverr(to: SocketAddr) -> io::Result<TcpStream> {
    let (domain, level, opt) = match to {
        SocketAddr::V4(_) => (libc::AF_INET, libc::SOL_IP, libc::IP_RECVERR),
        SocketAddr::V6(_) => (libc::AF_INET6, libc::SOL_IPV6, libc::IPV6_RECVERR),
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(domain, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    sys::set_opt(fd, level, opt, &1)?;
    let (addr, len) = sys::sockaddr_of(to);
    // SAFETY: addr holds a sockaddr of `len` bytes for fd's family.
    let r = unsafe { libc::connect(fd, addr.as_ptr(), len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(owned)))
}

#[derive(Clone, Copy)]
pub struct Connect;

/// Reset instead of FIN on close (SO_LINGER 0), so the target keeps no
/// half-dead connection.
fn abort_on_close(sock: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // Best effort: without it the socket closes with a FIN.
    let _ = sys::set_opt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &linger);
}

impl Technique for Connect {
    type Sock = TcpStream;
    const INTEREST: Interest = Interest::WRITABLE;
    /// The kernel retransmits a pending SYN itself: a retry that only
    /// queued behind other probes need not open another socket.
    const REUSE_PENDING: bool = true;

    fn open(&mut self, p: &Probe) -> Result<TcpStream, Result<Reply, io::Error>> {
        match connect_with_recverr(SocketAddr::new(p.key.ip, p.key.port)) {
            Ok(s) => Ok(s),
            Err(e) => Err(classify(&e).map(|sr| reply(p, sr)).ok_or(e)),
        }
    }

    fn ready(&mut self, sock: &mut TcpStream, p: &Probe) -> Ready {
        let outcome = match sock.take_error() {
            Ok(Some(e)) | Err(e) => match queued_icmp(sock, p) {
                Some(r) => return Ready::Done(r),
                None => classify(&e),
            },
            Ok(None) => match sock.peer_addr() {
                Ok(_) => {
                    abort_on_close(sock);
                    Some((PortState::Open, Reason::SynAck))
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ready::Pending,
                Err(e) => classify(&e),
            },
        };
        match outcome {
            Some(sr) => Ready::Done(reply(p, sr)),
            None => Ready::Failed,
        }
    }

    /// A soft error (see the header) that somehow came without a wake-up
    /// is still read when the probe times out: SO_ERROR returns it.
    fn expired(&mut self, sock: &mut TcpStream, p: &Probe) -> Option<Reply> {
        match sock.take_error() {
            Ok(Some(e)) => queued_icmp(sock, p).or_else(|| classify(&e).map(|sr| reply(p, sr))),
            _ => None,
        }
    }

    fn close(&mut self, sock: &mut TcpStream, answered: bool) {
        // A refused or answered socket needs nothing more (an open one was
        // set to reset when it was read); one closed at its timeout may
        // have connected since.
        if !answered {
            abort_on_close(sock);
        }
    }
}

pub fn start(counters: Arc<Counters>) -> anyhow::Result<Backend> {
    worker::start_pool(Connect, "rawscan-connect", counters)
}
