//! The scan loop. The engine alone owns the probe table and the target
//! order; it feeds probes to a backend at the configured rate, applies
//! validated replies, retries and expires probes on the timeout sweep, and
//! streams each decided result to a `Sink`.
//!
//! Invariants: every (host, port) of the plan is decided exactly once (a
//! reply, or no-response after the retries) unless the scan is
//! interrupted, in which case the undecided keys are returned so a resume
//! can finish them. The engine never prints; the sink does.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TrySendError};

use crate::net::{Backend, Counters, Probe};
use crate::permute::Permutation;
use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};
use crate::rate::TokenBucket;
use crate::table::{Table, Timing};
use crate::targets::HostSet;

/// What to scan and how fast.
#[derive(Clone, Debug)]
pub struct Plan {
    pub hosts: HostSet,
    /// Every (protocol, port) to probe on each host.
    pub ports: Vec<(Proto, u16)>,
    pub seed: u64,
    pub rate: u64,
    pub timing: Timing,
    /// Start at this position of the permutation (resume); 0 normally.
    pub start: u64,
    /// Keys left undecided by an interrupted run, probed first (resume).
    pub carry: Vec<ProbeKey>,
}

impl Plan {
    /// Number of (host, port) pairs; None if it overflows u64.
    pub fn total(&self) -> Option<u64> {
        let t = self.hosts.len().checked_mul(self.ports.len() as u128)?;
        u64::try_from(t).ok()
    }

    fn key_at(&self, idx: u64) -> Option<ProbeKey> {
        let n = self.ports.len() as u64;
        let (proto, port) = *self.ports.get((idx % n) as usize)?;
        let ip = self.hosts.get(u128::from(idx / n))?;
        Some(ProbeKey { ip, port, proto })
    }
}

/// Live numbers for progress displays.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub decided: u64,
    pub total: u64,
    pub sent: u64,
    pub open: u64,
    pub elapsed: Duration,
}

/// Receives results as they are decided.
pub trait Sink {
    fn result(&mut self, r: &PortResult);
    fn progress(&mut self, _p: &Progress) {}
}

/// Per-host facts for the report.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostInfo {
    /// Smallest first-attempt round trip seen from this host.
    pub latency: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub elapsed: Duration,
    pub total: u64,
    pub decided: u64,
    /// Hosts that sent any reply.
    pub up: HashMap<IpAddr, HostInfo>,
    pub sent: u64,
    pub received: u64,
    pub malformed: u64,
    pub bad_cookie: u64,
    pub interrupted: bool,
    /// Where the permutation stopped (== total when finished).
    pub next_index: u64,
    /// Keys sent but not decided when interrupted.
    pub undecided: Vec<ProbeKey>,
}

/// How long to keep listening for in-flight replies after an interrupt.
const DRAIN: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Memory bound on outstanding probes for raw backends.
const MAX_OUTSTANDING: usize = 1 << 20;

pub fn run(plan: &Plan, backend: Backend, sink: &mut dyn Sink, interrupt: &AtomicBool) -> Summary {
    let started = Instant::now();
    let total = plan.total().unwrap_or(0);
    let perm = Permutation::new(total, plan.seed);
    let mut next_index = plan.start.min(total);
    let mut carry: VecDeque<ProbeKey> = plan.carry.iter().copied().collect();
    let mut table = Table::new(plan.timing);
    let mut bucket = TokenBucket::new(plan.rate, started);
    let mut retries: VecDeque<ProbeKey> = VecDeque::new();
    let mut pending: Option<Probe> = None;
    let cap = backend.max_inflight.unwrap_or(MAX_OUTSTANDING);
    let mut up: HashMap<IpAddr, HostInfo> = HashMap::new();
    let mut decided: u64 = 0;
    let mut open: u64 = 0;
    let mut last_progress = started;
    let mut drain_until: Option<Instant> = None;
    let counters = backend.counters.clone();

    let emit = |r: PortResult, sink: &mut dyn Sink, decided: &mut u64, open: &mut u64| {
        *decided += 1;
        if r.state == PortState::Open {
            *open += 1;
        }
        sink.result(&r);
    };

    loop {
        let now = Instant::now();
        if drain_until.is_none() && interrupt.load(Ordering::Relaxed) {
            drain_until = Some(now + DRAIN);
        }
        let sending = drain_until.is_none();

        // 1. Apply replies already waiting.
        while let Ok(reply) = backend.replies.try_recv() {
            apply(&mut table, &mut up, reply, now, &mut |r| {
                emit(r, sink, &mut decided, &mut open)
            });
        }

        // 2. Sweep timeouts.
        let swept = table.sweep(now);
        retries.extend(swept.retry);
        for key in swept.expired {
            let state = match key.proto {
                Proto::Tcp => PortState::Filtered,
                Proto::Udp => PortState::OpenFiltered,
            };
            emit(
                PortResult {
                    key,
                    state,
                    reason: Reason::NoResponse,
                    ttl: None,
                },
                sink,
                &mut decided,
                &mut open,
            );
        }

        // 3. Send what the rate allows: the stalled probe, retries, carried
        //    keys, then new keys in permutation order.
        let mut backlogged = false;
        while sending && bucket.wait(now).is_zero() {
            let probe = if let Some(p) = pending.take() {
                p
            } else {
                let key = loop {
                    match retries.pop_front() {
                        Some(k) if table.contains(&k) => break Some(k),
                        Some(_) => continue,
                        None => break None,
                    }
                };
                let key = match key {
                    Some(k) => Some(k),
                    None if table.len() >= cap => None,
                    None => match carry.pop_front() {
                        Some(k) => Some(k),
                        None if next_index < total => {
                            let k = plan.key_at(perm.get(next_index));
                            next_index += 1;
                            k
                        }
                        None => None,
                    },
                };
                let Some(key) = key else { break };
                Probe {
                    key,
                    timeout: table.timeout(),
                }
            };
            match backend.probes.try_send(probe) {
                Ok(()) => {
                    bucket.try_take(now);
                    table.sent(probe.key, now);
                }
                Err(TrySendError::Full(p)) => {
                    pending = Some(p);
                    backlogged = true;
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    // The backend died: nothing more can be sent.
                    drain_until = Some(now);
                    break;
                }
            }
        }

        if now.duration_since(last_progress) >= PROGRESS_EVERY {
            last_progress = now;
            sink.progress(&Progress {
                decided,
                total,
                sent: Counters::get(&counters.sent),
                open,
                elapsed: now.duration_since(started),
            });
        }

        // 4. Done?
        let finished = next_index >= total
            && carry.is_empty()
            && table.is_empty()
            && retries.is_empty()
            && pending.is_none();
        if finished || drain_until.is_some_and(|d| now >= d) {
            break;
        }

        // 5. Wait for a reply, the next token, or the next deadline.
        let mut wake = Duration::from_millis(50);
        if let Some(d) = table.next_deadline() {
            wake = wake.min(d.saturating_duration_since(now));
        }
        let has_work =
            pending.is_some() || !retries.is_empty() || !carry.is_empty() || next_index < total;
        if sending && has_work {
            wake = wake.min(if backlogged {
                Duration::from_micros(200)
            } else {
                bucket.wait(now)
            });
        }
        if let Some(d) = drain_until {
            wake = wake.min(d.saturating_duration_since(now));
        }
        match backend.replies.recv_timeout(wake) {
            Ok(reply) => {
                apply(&mut table, &mut up, reply, Instant::now(), &mut |r| {
                    emit(r, sink, &mut decided, &mut open)
                });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !sending {
                    break;
                }
            }
        }
    }

    let interrupted = drain_until.is_some() && interrupt.load(Ordering::Relaxed);
    let mut undecided: Vec<ProbeKey> = Vec::new();
    if interrupted {
        undecided.extend(pending.map(|p| p.key));
        undecided.extend(carry);
        undecided.extend(table.keys());
        undecided.sort();
        undecided.dedup();
    }
    let summary = Summary {
        elapsed: started.elapsed(),
        total,
        decided,
        up,
        sent: Counters::get(&counters.sent),
        received: Counters::get(&counters.received),
        malformed: Counters::get(&counters.malformed),
        bad_cookie: Counters::get(&counters.bad_cookie),
        interrupted,
        next_index,
        undecided,
    };
    backend.join();
    summary
}

fn apply(
    table: &mut Table,
    up: &mut HashMap<IpAddr, HostInfo>,
    reply: crate::validate::Reply,
    now: Instant,
    emit: &mut dyn FnMut(PortResult),
) {
    let Some(entry) = table.resolve(&reply.key, now) else {
        return; // duplicate, or late for a decided key
    };
    let host = up.entry(reply.key.ip).or_default();
    if entry.attempt == 0 {
        let rtt = now.saturating_duration_since(entry.sent);
        host.latency = Some(host.latency.map_or(rtt, |l| l.min(rtt)));
    }
    emit(PortResult {
        key: reply.key,
        state: reply.state,
        reason: reply.reason,
        ttl: reply.ttl,
    });
}
