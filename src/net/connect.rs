//! TCP connect technique (`-sT`, and the fallback without raw sockets):
//! a non-blocking `connect()` per probe, run by the shared `worker`.
//!
//! Invariants: states follow nmap's -sT: connected = open (syn-ack),
//! ECONNREFUSED = closed (conn-refused), unreachable errors = filtered
//! with the matching reason (also when the kernel kept it as a soft
//! error, read at the probe's timeout), silence = filtered after the
//! engine's retries. Open ports are closed with an RST (SO_LINGER 0) so targets
//! keep no half-dead connections.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use mio::Interest;
use mio::net::TcpStream;

use super::worker::{self, Ready, Technique};
use super::{Backend, Counters, Probe};
use crate::probe::{PortState, Reason};
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

#[derive(Clone, Copy)]
pub struct Connect;

/// Reset instead of FIN on close (SO_LINGER 0), so the target keeps no
/// half-dead connection.
fn abort_on_close(sock: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open (owned by sock); linger is a valid struct.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

impl Technique for Connect {
    type Sock = TcpStream;
    const INTEREST: Interest = Interest::WRITABLE;
    /// The kernel retransmits a pending SYN itself: a retry that only
    /// queued behind other probes need not open another socket.
    const REUSE_PENDING: bool = true;

    fn open(&mut self, p: &Probe) -> Result<TcpStream, Result<Reply, io::Error>> {
        match TcpStream::connect(SocketAddr::new(p.key.ip, p.key.port)) {
            Ok(s) => Ok(s),
            Err(e) => Err(classify(&e).map(|sr| reply(p, sr)).ok_or(e)),
        }
    }

    fn ready(&mut self, sock: &mut TcpStream, p: &Probe) -> Ready {
        let outcome = match sock.take_error() {
            Ok(Some(e)) | Err(e) => classify(&e),
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

    /// A connect whose SYN drew an ICMP error while the socket was busy
    /// (locked by the connect() call itself, as a veth reply can be) gets
    /// it only as a soft error: no wakeup, and the kernel aborts only at
    /// its own retransmission (1 s). IPv6 admin-prohibited showed it: the
    /// port came out filtered (no-response). SO_ERROR returns the soft
    /// error, so it is read when the probe times out.
    fn expired(&mut self, sock: &mut TcpStream, p: &Probe) -> Option<Reply> {
        match sock.take_error() {
            Ok(Some(e)) => classify(&e).map(|sr| reply(p, sr)),
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
