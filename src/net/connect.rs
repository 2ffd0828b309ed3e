//! Connect-scan backend (`-sT`, and the fallback without raw sockets):
//! non-blocking `connect()`s multiplexed with mio on one worker thread.
//!
//! Invariants: at most `max_inflight` sockets are open at once, sized from
//! RLIMIT_NOFILE; if the kernel still says EMFILE/ENFILE the probe waits
//! and the limit shrinks, so the scan never dies of "too many open files".
//! A socket is closed when it answers or when its probe's timeout passes;
//! open ports are closed with an RST (SO_LINGER 0) so targets keep no
//! half-dead connections.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::{Backend, Counters, PROBE_QUEUE, Probe, REPLY_QUEUE};
use crate::probe::{PortState, Reason};
use crate::validate::Reply;

/// Raise the soft RLIMIT_NOFILE to the hard limit and return the number of
/// sockets the scan may keep open, leaving room for everything else.
pub fn socket_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max.min(1 << 20),
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
        } else {
            lim.rlim_cur = 1024;
        }
    }
    let soft = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
    soft.saturating_sub(32).clamp(8, 4096)
}

/// Map a connect error to a state, as nmap's -sT does.
fn classify(e: &io::Error) -> Option<(PortState, Reason)> {
    match e.raw_os_error()? {
        libc::ECONNREFUSED => Some((PortState::Closed, Reason::ConnRefused)),
        libc::EHOSTUNREACH => Some((PortState::Filtered, Reason::HostUnreach)),
        libc::ENETUNREACH => Some((PortState::Filtered, Reason::NetUnreach)),
        libc::ENOPROTOOPT => Some((PortState::Filtered, Reason::ProtoUnreach)),
        libc::EACCES | libc::EPERM => Some((PortState::Filtered, Reason::AdminProhibited)),
        _ => None,
    }
}

pub fn start() -> anyhow::Result<Backend> {
    let max = socket_budget();
    let counters = Arc::new(Counters::default());
    let (probe_tx, probe_rx) = bounded::<Vec<Probe>>(PROBE_QUEUE);
    let (reply_tx, reply_rx) = bounded::<Vec<Reply>>(REPLY_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let poll = Poll::new()?;
    let c = counters.clone();
    let worker = thread::Builder::new()
        .name("rawscan-connect".into())
        .spawn(move || Worker::new(poll, max).run(probe_rx, reply_tx, stop_rx, &c))?;
    Ok(Backend {
        probes: probe_tx,
        replies: reply_rx,
        counters,
        max_inflight: Some(max),
        stop: stop_tx,
        threads: vec![worker],
    })
}

struct Conn {
    stream: TcpStream,
    probe: Probe,
    deadline: Instant,
}

struct Worker {
    poll: Poll,
    limit: usize,
    max: usize,
    conns: HashMap<Token, Conn>,
    deadlines: BinaryHeap<Reverse<(Instant, usize)>>,
    waiting: VecDeque<Probe>,
    next_token: usize,
}

impl Worker {
    fn new(poll: Poll, limit: usize) -> Self {
        Worker {
            poll,
            limit,
            max: limit,
            conns: HashMap::new(),
            deadlines: BinaryHeap::new(),
            waiting: VecDeque::new(),
            next_token: 0,
        }
    }

    fn run(
        mut self,
        probes: Receiver<Vec<Probe>>,
        replies: Sender<Vec<Reply>>,
        stop: Receiver<()>,
        c: &Counters,
    ) {
        let mut events = Events::with_capacity(1024);
        let mut closed = false;
        loop {
            if let Err(TryRecvError::Disconnected) = stop.try_recv() {
                return;
            }
            // Admit probes while there is room.
            let mut out: Vec<Reply> = Vec::new();
            while self.conns.len() < self.limit {
                let p = match self.waiting.pop_front() {
                    Some(p) => p,
                    None => match probes.try_recv() {
                        Ok(batch) => {
                            self.waiting.extend(batch);
                            continue;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    },
                };
                self.open(p, &mut out, c);
            }
            if closed && self.conns.is_empty() && self.waiting.is_empty() {
                return;
            }
            let now = Instant::now();
            let wait = self
                .deadlines
                .peek()
                .map(|Reverse((d, _))| d.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(5))
                .min(Duration::from_millis(5));
            if self.poll.poll(&mut events, Some(wait)).is_err() {
                continue;
            }
            for ev in events.iter() {
                let token = ev.token();
                let Some(conn) = self.conns.get(&token) else {
                    continue;
                };
                let outcome = match conn.stream.take_error() {
                    Ok(Some(e)) | Err(e) => classify(&e),
                    Ok(None) => match conn.stream.peer_addr() {
                        Ok(_) => Some((PortState::Open, Reason::SynAck)),
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                        Err(e) => classify(&e),
                    },
                };
                if let Some(conn) = self.close(token) {
                    if let Some((state, reason)) = outcome {
                        out.push(Reply {
                            key: conn.probe.key,
                            state,
                            reason,
                            ttl: None,
                        });
                    } else {
                        Counters::inc(&c.send_errors);
                    }
                }
            }
            if !out.is_empty() {
                let n = out.len() as u64;
                if replies
                    .send_timeout(out, Duration::from_millis(100))
                    .is_err()
                {
                    c.dropped_late
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
            // Time out sockets whose probe the engine has given up on.
            let now = Instant::now();
            while let Some(Reverse((d, t))) = self.deadlines.peek().copied() {
                if d > now {
                    break;
                }
                self.deadlines.pop();
                let token = Token(t);
                if self.conns.get(&token).is_some_and(|cn| cn.deadline == d) {
                    self.close(token);
                }
            }
        }
    }

    fn open(&mut self, p: Probe, out: &mut Vec<Reply>, c: &Counters) {
        let addr = SocketAddr::new(p.key.ip, p.key.port);
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                let token = Token(self.next_token);
                self.next_token = self.next_token.wrapping_add(1);
                if self
                    .poll
                    .registry()
                    .register(&mut stream, token, Interest::WRITABLE)
                    .is_err()
                {
                    Counters::inc(&c.send_errors);
                    return;
                }
                Counters::inc(&c.sent);
                let deadline = Instant::now() + p.timeout;
                self.deadlines.push(Reverse((deadline, token.0)));
                self.conns.insert(
                    token,
                    Conn {
                        stream,
                        probe: p,
                        deadline,
                    },
                );
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL)
                ) =>
            {
                // Out of descriptors or ports: shrink the window and retry
                // this probe when a socket closes.
                self.limit = self.conns.len().max(1);
                self.waiting.push_front(p);
                if self.conns.is_empty() {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Err(e) => match classify(&e) {
                Some((state, reason)) => {
                    Counters::inc(&c.sent);
                    out.push(Reply {
                        key: p.key,
                        state,
                        reason,
                        ttl: None,
                    });
                }
                None => Counters::inc(&c.send_errors),
            },
        }
    }

    fn close(&mut self, token: Token) -> Option<Conn> {
        let mut conn = self.conns.remove(&token)?;
        // Grow back slowly after an EMFILE shrink.
        self.limit = (self.limit + 1).min(self.max);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the fd is open (owned by conn.stream); linger is a valid struct.
        unsafe {
            libc::setsockopt(
                conn.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        Some(conn)
    }
}
