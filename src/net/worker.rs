//! A socket-per-probe worker for the unprivileged backends (TCP connect
//! and connected UDP): one thread multiplexes non-blocking sockets with mio.
//! The connect scan runs a pool of them, one per core (`start_pool`): its
//! cost is the kernel's socket, connect and close, which one thread
//! serialises on one core.
//!
//! Each turn of the loop opens at most `OPEN_BATCH` sockets, then reads
//! what became ready (without waiting while probes are queued), hands the
//! replies over as one batch and closes what expired. Interleaving keeps a
//! reply's latency, and so the scan's round-trip estimate, close to the
//! path's: opening thousands of sockets before reading any made answered
//! probes look late, and the scan retried them for nothing.
//!
//! Invariants:
//! - At most `limit` sockets are open at once, sized from RLIMIT_NOFILE; if
//!   the kernel still says EMFILE/ENFILE the probe waits and the limit
//!   shrinks (then grows back one by one), so a scan never dies of "too
//!   many open files".
//! - A decisive answer on any socket of a key closes every socket of that
//!   key. Otherwise a socket closes when its probe's timeout passes, or,
//!   for techniques with a `LINGER` (UDP), it stays open that much longer
//!   for a late reply to an earlier attempt (a server that answers after
//!   the retry was sent), and is the first to go when a new probe needs a
//!   descriptor.
//! - With `REUSE_PENDING` (TCP), a retry for a key whose socket is still
//!   waiting, and was opened less than the retry's timeout ago, extends
//!   that socket instead of opening another: the retry was early only
//!   because it queued, and the kernel retransmits the SYN itself.
//! - Sockets are closed without deregistering: closing the last descriptor
//!   removes it from epoll (one system call less per probe).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use mio::{Events, Interest, Poll, Token};

use super::{Backend, Counters, PROBE_QUEUE, Probe, REPLY_QUEUE};
use crate::probe::ProbeKey;
use crate::validate::Reply;

/// What a probe's socket said when it became ready.
pub enum Ready {
    /// Nothing conclusive yet (spurious wake-up, or a reply that failed
    /// validation): keep waiting.
    Pending,
    /// Decided: report this reply and close the key's sockets.
    Done(Reply),
    /// The socket failed in a way that decides nothing: close it.
    Failed,
}

/// How one kind of unprivileged probe opens and reads its socket.
pub trait Technique: Send + 'static {
    type Sock: mio::event::Source + Send;
    const INTEREST: Interest;
    /// How long a socket stays open after its probe's timeout for a late
    /// reply (zero: it closes at the timeout).
    const LINGER: Duration = Duration::ZERO;
    /// A retry may reuse the key's socket still waiting (see the header).
    const REUSE_PENDING: bool = false;
    /// Open a socket and send the probe. `Err(Ok(reply))`: the attempt
    /// itself decided the port (e.g. an immediate ECONNREFUSED).
    fn open(&mut self, p: &Probe) -> Result<Self::Sock, Result<Reply, io::Error>>;
    fn ready(&mut self, sock: &mut Self::Sock, p: &Probe) -> Ready;
    /// At the probe's timeout, before the socket closes or lingers: a
    /// reply the socket holds without having signalled readiness (a
    /// connect's soft error, see connect.rs).
    fn expired(&mut self, _sock: &mut Self::Sock, _p: &Probe) -> Option<Reply> {
        None
    }
    /// Called before the socket is dropped; `answered` when it gave the
    /// reply that decided the key.
    fn close(&mut self, _sock: &mut Self::Sock, _answered: bool) {}
}

/// Sockets opened per turn before replies are read.
const OPEN_BATCH: usize = 64;
/// Longest wait in epoll while sockets are open or probes may come.
const BUSY_WAIT: Duration = Duration::from_millis(1);
/// Longest wait in epoll when idle.
const IDLE_WAIT: Duration = Duration::from_millis(5);
/// Most worker threads of a pool (`start_pool`).
const MAX_WORKERS: usize = 4;

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

/// Start a worker thread for `tech`.
pub fn start<T: Technique>(
    tech: T,
    name: &str,
    counters: Arc<Counters>,
) -> anyhow::Result<Backend> {
    start_with_budget(tech, name, counters, socket_budget())
}

/// Start one worker thread for `tech` per core (at most `MAX_WORKERS`),
/// sharing the socket budget, the probe queue and the reply queue.
pub fn start_pool<T: Technique + Clone>(
    tech: T,
    name: &str,
    counters: Arc<Counters>,
) -> anyhow::Result<Backend> {
    let n = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    spawn(vec![tech; n], name, counters, socket_budget())
}

/// Start a worker thread for `tech` with at most `max` sockets open.
pub fn start_with_budget<T: Technique>(
    tech: T,
    name: &str,
    counters: Arc<Counters>,
    max: usize,
) -> anyhow::Result<Backend> {
    spawn(vec![tech], name, counters, max)
}

/// One thread per technique in `techs`, each with its own poll and an
/// equal share of `max` sockets, taking batches from one probe queue (a
/// retry may land on another worker than its first try: it opens its own
/// socket, and the engine ignores whichever answer comes second).
fn spawn<T: Technique>(
    techs: Vec<T>,
    name: &str,
    counters: Arc<Counters>,
    max: usize,
) -> anyhow::Result<Backend> {
    let workers = techs.len().max(1);
    let (probe_tx, probe_rx) = bounded::<Vec<Probe>>(PROBE_QUEUE);
    let (reply_tx, reply_rx) = bounded::<Vec<Reply>>(REPLY_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let share = (max / workers).max(8);
    let mut handles = Vec::with_capacity(workers);
    for tech in techs {
        let poll = Poll::new()?;
        let c = counters.clone();
        let (probes, replies, stop) = (probe_rx.clone(), reply_tx.clone(), stop_rx.clone());
        handles.push(
            thread::Builder::new()
                .name(name.into())
                .spawn(move || Worker::new(tech, poll, share).run(probes, replies, stop, &c))?,
        );
    }
    Ok(Backend::new(
        probe_tx,
        reply_rx,
        counters,
        Some(share * workers),
        stop_tx,
        handles,
    ))
}

struct Conn<S> {
    sock: S,
    probe: Probe,
    opened: Instant,
    /// When the probe's timeout passes.
    deadline: Instant,
    /// The pending timer (the deadline, or the end of lingering).
    timer: Instant,
    /// Past its deadline or superseded by a newer attempt: kept only for
    /// a late reply, and evicted first.
    lingering: bool,
}

struct Worker<T: Technique> {
    tech: T,
    poll: Poll,
    limit: usize,
    max: usize,
    conns: HashMap<Token, Conn<T::Sock>>,
    /// Open sockets of each key, oldest first.
    by_key: HashMap<ProbeKey, Vec<Token>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Lingering sockets, in the order they started to linger (lazily
    /// cleaned: an entry may name a socket closed since).
    lingering: VecDeque<Token>,
    /// Sockets not lingering.
    active: usize,
    waiting: VecDeque<Probe>,
    next_token: usize,
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::ENOBUFS)
    )
}

impl<T: Technique> Worker<T> {
    fn new(tech: T, poll: Poll, limit: usize) -> Self {
        Worker {
            tech,
            poll,
            limit,
            max: limit,
            conns: HashMap::new(),
            by_key: HashMap::new(),
            timers: BinaryHeap::new(),
            lingering: VecDeque::new(),
            active: 0,
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
            let mut out: Vec<Reply> = Vec::new();
            // Open a bounded batch of sockets while there is room.
            let mut full = false;
            for _ in 0..OPEN_BATCH {
                if self.waiting.is_empty() {
                    match probes.try_recv() {
                        Ok(batch) => self.waiting.extend(batch),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if self.conns.len() >= self.limit && !self.evict_one() {
                    full = true;
                    break;
                }
                let Some(p) = self.waiting.pop_front() else {
                    continue;
                };
                self.admit(p, &mut out, c);
            }
            // The engine is done: lingering sockets wait for nobody.
            if closed && self.waiting.is_empty() && self.active == 0 {
                return;
            }
            let queued = !self.waiting.is_empty() || !probes.is_empty();
            let now = Instant::now();
            let next_timer = self
                .timers
                .peek()
                .map(|Reverse((t, _))| t.saturating_duration_since(now));
            let wait = if queued && !full {
                Duration::ZERO
            } else if self.conns.is_empty() && !queued {
                IDLE_WAIT
            } else {
                next_timer.map_or(BUSY_WAIT, |t| t.min(BUSY_WAIT))
            };
            if self.poll.poll(&mut events, Some(wait)).is_err() {
                continue;
            }
            for ev in events.iter() {
                let token = ev.token();
                let Some(conn) = self.conns.get_mut(&token) else {
                    continue;
                };
                match self.tech.ready(&mut conn.sock, &conn.probe) {
                    Ready::Pending => {}
                    Ready::Done(r) => {
                        out.push(r);
                        self.close(token, true);
                        self.close_key(&r.key);
                    }
                    Ready::Failed => {
                        Counters::inc(&c.send_errors);
                        self.close(token, false);
                    }
                }
            }
            self.expire(Instant::now(), &mut out);
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
        }
    }

    /// Run the timers due at `now`: a probe's timeout starts its lingering
    /// (or closes it), the end of lingering closes it.
    fn expire(&mut self, now: Instant, out: &mut Vec<Reply>) {
        while let Some(Reverse((t, tok))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let token = Token(tok);
            let Some(conn) = self.conns.get(&token) else {
                continue;
            };
            if conn.timer != t {
                continue; // stale: rescheduled since
            }
            if !conn.lingering {
                let probe = conn.probe;
                let decided = self
                    .conns
                    .get_mut(&token)
                    .and_then(|c| self.tech.expired(&mut c.sock, &probe));
                if let Some(r) = decided {
                    out.push(r);
                    self.close(token, true);
                    self.close_key(&r.key);
                    continue;
                }
            }
            let Some(conn) = self.conns.get(&token) else {
                continue;
            };
            if conn.lingering || T::LINGER.is_zero() {
                self.close(token, false);
            } else {
                self.start_lingering(token);
            }
        }
    }

    fn start_lingering(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.lingering {
            return;
        }
        conn.lingering = true;
        conn.timer = conn.deadline + T::LINGER;
        self.active -= 1;
        self.timers.push(Reverse((conn.timer, token.0)));
        self.lingering.push_back(token);
    }

    /// Close the oldest lingering socket to make room; false if none.
    fn evict_one(&mut self) -> bool {
        while let Some(token) = self.lingering.pop_front() {
            if self.conns.get(&token).is_some_and(|c| c.lingering) {
                self.close(token, false);
                return true;
            }
        }
        false
    }

    fn admit(&mut self, p: Probe, out: &mut Vec<Reply>, c: &Counters) {
        let now = Instant::now();
        let earlier: Vec<Token> = self.by_key.get(&p.key).cloned().unwrap_or_default();
        if T::REUSE_PENDING {
            for &t in &earlier {
                if let Some(conn) = self.conns.get_mut(&t)
                    && !conn.lingering
                    && now.saturating_duration_since(conn.opened) < p.timeout
                {
                    conn.deadline = now + p.timeout;
                    conn.timer = conn.deadline;
                    conn.probe = p;
                    self.timers.push(Reverse((conn.timer, t.0)));
                    return;
                }
            }
        }
        match self.tech.open(&p) {
            Ok(mut sock) => {
                let token = Token(self.next_token);
                self.next_token = self.next_token.wrapping_add(1);
                if self
                    .poll
                    .registry()
                    .register(&mut sock, token, T::INTEREST)
                    .is_err()
                {
                    Counters::inc(&c.send_errors);
                    return;
                }
                Counters::inc(&c.sent);
                // Earlier attempts of the key now only wait for a late reply.
                if !T::LINGER.is_zero() {
                    for t in earlier {
                        self.start_lingering(t);
                    }
                }
                let deadline = now + p.timeout;
                self.timers.push(Reverse((deadline, token.0)));
                self.by_key.entry(p.key).or_default().push(token);
                self.active += 1;
                self.conns.insert(
                    token,
                    Conn {
                        sock,
                        probe: p,
                        opened: now,
                        deadline,
                        timer: deadline,
                        lingering: false,
                    },
                );
            }
            Err(Ok(reply)) => {
                Counters::inc(&c.sent);
                out.push(reply);
                self.close_key(&reply.key);
            }
            Err(Err(e)) if is_out_of_fds(&e) => {
                // Out of descriptors or ports: shrink the window and retry
                // this probe when a socket closes.
                self.limit = self.conns.len().max(1);
                self.waiting.push_front(p);
                if self.conns.is_empty() {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Err(Err(_)) => Counters::inc(&c.send_errors),
        }
    }

    /// Close every socket still open for `key` (it is decided).
    fn close_key(&mut self, key: &ProbeKey) {
        if let Some(tokens) = self.by_key.remove(key) {
            for t in tokens {
                self.close(t, false);
            }
        }
    }

    fn close(&mut self, token: Token, answered: bool) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        if !conn.lingering {
            self.active -= 1;
        }
        if let Some(v) = self.by_key.get_mut(&conn.probe.key) {
            v.retain(|t| *t != token);
            if v.is_empty() {
                self.by_key.remove(&conn.probe.key);
            }
        }
        // Grow back slowly after an EMFILE shrink.
        self.limit = (self.limit + 1).min(self.max);
        self.tech.close(&mut conn.sock, answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{PortState, Proto, Reason};
    use mio::net::UdpSocket;
    use std::net::{Ipv4Addr, SocketAddr};

    /// A scripted technique: each probe opens a UDP socket on loopback and
    /// sends its attempt number to `server`; any datagram back decides.
    struct Scripted {
        server: SocketAddr,
        attempts: u8,
    }

    impl Technique for Scripted {
        type Sock = UdpSocket;
        const INTEREST: Interest = Interest::READABLE;
        const LINGER: Duration = Duration::from_secs(2);

        fn open(&mut self, _p: &Probe) -> Result<UdpSocket, Result<Reply, io::Error>> {
            let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0).into()).map_err(Err)?;
            s.connect(self.server).map_err(Err)?;
            s.send(&[self.attempts]).map_err(Err)?;
            self.attempts += 1;
            Ok(s)
        }

        fn ready(&mut self, sock: &mut UdpSocket, p: &Probe) -> Ready {
            let mut b = [0u8; 16];
            match sock.recv(&mut b) {
                Ok(_) => Ready::Done(Reply {
                    key: p.key,
                    state: PortState::Open,
                    reason: Reason::UdpResponse,
                    ttl: None,
                    attempt: None,
                }),
                Err(_) => Ready::Pending,
            }
        }
    }

    /// Issue 13 §2: a server that answers the FIRST attempt only after the
    /// retry was sent (freeradius delays an Access-Reject by 1 s). The
    /// answer arrives on the first attempt's socket, after that probe's
    /// timeout: it must still be read.
    #[test]
    fn a_late_reply_to_an_earlier_attempt_is_not_lost() {
        let server = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let tech = Scripted {
            server: server.local_addr().unwrap(),
            attempts: 0,
        };
        let be = start_with_budget(tech, "test-worker", Arc::new(Counters::default()), 16)
            .expect("worker");
        let key = ProbeKey {
            ip: "127.0.0.1".parse().unwrap(),
            port: 1812,
            proto: Proto::Udp,
        };
        let timeout = Duration::from_millis(50);
        be.probes
            .send(vec![Probe {
                key,
                timeout,
                src: None,
                attempt: 0,
            }])
            .unwrap();
        let mut b = [0u8; 16];
        let (_, first) = server.recv_from(&mut b).unwrap();
        assert_eq!(b[0], 0);
        // The first attempt times out; the scan sends a retry.
        thread::sleep(timeout * 3);
        be.probes
            .send(vec![Probe {
                key,
                timeout,
                src: None,
                attempt: 0,
            }])
            .unwrap();
        let (_, second) = server.recv_from(&mut b).unwrap();
        assert_eq!(b[0], 1);
        assert_ne!(first, second, "each attempt has its own socket");
        // Only now does the server answer, and only the first attempt.
        server.send_to(b"late", first).unwrap();
        let got = be
            .replies
            .recv_timeout(Duration::from_secs(3))
            .expect("the late reply to the first attempt was lost");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].key, got[0].state), (key, PortState::Open));
        be.join();
    }

    /// The lingering sockets give way when a new probe needs a descriptor:
    /// a tiny budget still gets every probe out.
    #[test]
    fn lingering_sockets_make_room_for_new_probes() {
        let server = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let tech = Scripted {
            server: server.local_addr().unwrap(),
            attempts: 0,
        };
        let be = start_with_budget(tech, "test-worker", Arc::new(Counters::default()), 2)
            .expect("worker");
        for port in 1..=6u16 {
            let key = ProbeKey {
                ip: "127.0.0.1".parse().unwrap(),
                port,
                proto: Proto::Udp,
            };
            be.probes
                .send(vec![Probe {
                    key,
                    timeout: Duration::from_millis(20),
                    src: None,
                    attempt: 0,
                }])
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut b = [0u8; 16];
        for _ in 0..6 {
            server.recv_from(&mut b).expect("every probe goes out");
            seen.push(b[0]);
        }
        assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
        be.join();
    }
}
