//! A socket-per-probe worker for the unprivileged backends (TCP connect
//! and connected UDP): one thread multiplexes non-blocking sockets with mio.
//!
//! Invariants: at most `limit` sockets are open at once, sized from
//! RLIMIT_NOFILE; if the kernel still says EMFILE/ENFILE the probe waits
//! and the limit shrinks (then grows back one by one), so a scan never
//! dies of "too many open files". A socket is closed when its probe is
//! answered or when the probe's timeout passes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use mio::{Events, Interest, Poll, Token};

use super::{Backend, Counters, PROBE_QUEUE, Probe, REPLY_QUEUE};
use crate::validate::Reply;

/// What a probe's socket said when it became ready.
pub enum Ready {
    /// Nothing conclusive yet (spurious wake-up, or a reply that failed
    /// validation): keep waiting.
    Pending,
    /// Decided: report this reply and close the socket.
    Done(Reply),
    /// The socket failed in a way that decides nothing: close it.
    Failed,
}

/// How one kind of unprivileged probe opens and reads its socket.
pub trait Technique: Send + 'static {
    type Sock: mio::event::Source + Send;
    const INTEREST: Interest;
    /// Open a socket and send the probe. `Err(Ok(reply))`: the attempt
    /// itself decided the port (e.g. an immediate ECONNREFUSED).
    fn open(&mut self, p: &Probe) -> Result<Self::Sock, Result<Reply, io::Error>>;
    fn ready(&mut self, sock: &mut Self::Sock, p: &Probe) -> Ready;
    /// Called before the socket is dropped.
    fn close(&mut self, _sock: &mut Self::Sock) {}
}

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
    let max = socket_budget();
    let (probe_tx, probe_rx) = bounded::<Vec<Probe>>(PROBE_QUEUE);
    let (reply_tx, reply_rx) = bounded::<Vec<Reply>>(REPLY_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let poll = Poll::new()?;
    let c = counters.clone();
    let worker = thread::Builder::new()
        .name(name.into())
        .spawn(move || Worker::new(tech, poll, max).run(probe_rx, reply_tx, stop_rx, &c))?;
    Ok(Backend::new(
        probe_tx,
        reply_rx,
        counters,
        Some(max),
        stop_tx,
        vec![worker],
    ))
}

struct Conn<S> {
    sock: S,
    probe: Probe,
    deadline: Instant,
}

struct Worker<T: Technique> {
    tech: T,
    poll: Poll,
    limit: usize,
    max: usize,
    conns: HashMap<Token, Conn<T::Sock>>,
    deadlines: BinaryHeap<Reverse<(Instant, usize)>>,
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
            let mut out: Vec<Reply> = Vec::new();
            // Admit probes while there is room.
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
            let wait = Duration::from_millis(5);
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
                        self.close(token);
                    }
                    Ready::Failed => {
                        Counters::inc(&c.send_errors);
                        self.close(token);
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
            // Close sockets whose probe the engine has given up on.
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
                let deadline = Instant::now() + p.timeout;
                self.deadlines.push(Reverse((deadline, token.0)));
                self.conns.insert(
                    token,
                    Conn {
                        sock,
                        probe: p,
                        deadline,
                    },
                );
            }
            Err(Ok(reply)) => {
                Counters::inc(&c.sent);
                out.push(reply);
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

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            // Grow back slowly after an EMFILE shrink.
            self.limit = (self.limit + 1).min(self.max);
            let _ = self.poll.registry().deregister(&mut conn.sock);
            self.tech.close(&mut conn.sock);
        }
    }
}
