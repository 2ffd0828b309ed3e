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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, TrySendError};

use crate::net::{Backend, Counters, PROBE_BATCH, Probe};
use crate::pacing::Pacer;
use crate::plan::Plan;
use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};
use crate::rate::TokenBucket;
use crate::table::Table;
use crate::validate::Reply;

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
    /// Probes the backend failed to send (they time out and are retried).
    pub send_errors: u64,
    /// Validated replies dropped because the engine fell behind.
    pub dropped: u64,
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
/// Shortest sleep between sending rounds: each round sends a batch.
const TICK: Duration = Duration::from_millis(1);

/// Where the next probe's key comes from, in priority order: a paced UDP
/// re-probe, a retry, a key carried over from an interrupted run, then
/// the next new key in permutation order.
struct Feed<'p> {
    plan: &'p Plan,
    next_index: u64,
    total: u64,
    carry: VecDeque<ProbeKey>,
    retries: VecDeque<ProbeKey>,
    /// Most keys in the table at once (the backend's limit).
    cap: usize,
}

impl Feed<'_> {
    /// The next key to send, recorded in the table as sent at `now`.
    fn next(&mut self, table: &mut Table, pacer: &mut Pacer, now: Instant) -> Option<ProbeKey> {
        if let Some(k) = pacer.next_probe(now) {
            table.sent_once(k, now);
            return Some(k);
        }
        while let Some(k) = self.retries.pop_front() {
            // A retry resolved while it waited is dropped here.
            if table.contains(&k) {
                table.sent(k, now);
                return Some(k);
            }
        }
        if table.len() >= self.cap {
            return None;
        }
        let key = match self.carry.pop_front() {
            Some(k) => k,
            None if self.next_index < self.total => {
                self.next_index += 1;
                self.plan.key(self.next_index - 1)?
            }
            None => return None,
        };
        pacer.on_first_send(&key);
        table.sent(key, now);
        Some(key)
    }

    /// Is there something to send once the rate allows?
    fn ready(&self, table: &Table) -> bool {
        !self.retries.is_empty()
            || (table.len() < self.cap && (!self.carry.is_empty() || self.next_index < self.total))
    }

    /// No retry, carried or new key is left.
    fn exhausted(&self) -> bool {
        self.retries.is_empty() && self.carry.is_empty() && self.next_index >= self.total
    }
}

/// Decided-result bookkeeping shared by the loop's steps.
struct Tally<'a> {
    sink: &'a mut dyn Sink,
    up: HashMap<IpAddr, HostInfo>,
    decided: u64,
    open: u64,
}

impl Tally<'_> {
    fn emit(&mut self, r: PortResult) {
        self.decided += 1;
        if r.state == PortState::Open {
            self.open += 1;
        }
        self.sink.result(&r);
    }

    /// Apply a validated reply: only a key still in the table is decided.
    fn reply(&mut self, table: &mut Table, pacer: &mut Pacer, reply: Reply, now: Instant) {
        let Some(entry) = table.resolve(&reply.key, now) else {
            return; // duplicate, or late for a decided key
        };
        pacer.on_reply(&reply.key, reply.reason, now);
        let host = self.up.entry(reply.key.ip).or_default();
        if entry.attempt == 0 {
            let rtt = now.saturating_duration_since(entry.sent);
            host.latency = Some(host.latency.map_or(rtt, |l| l.min(rtt)));
        }
        self.emit(PortResult {
            key: reply.key,
            state: reply.state,
            reason: reply.reason,
            ttl: reply.ttl,
        });
    }
}

/// Run the scan. `interrupts` counts SIGINT/SIGTERM: at 1 the engine
/// stops sending and drains replies briefly; at 2 it stops at once.
pub fn run(
    plan: &Plan,
    backend: Backend,
    sink: &mut dyn Sink,
    interrupts: &AtomicUsize,
) -> Summary {
    let started = Instant::now();
    let total = plan.len();
    let mut table = Table::new(plan.timing);
    let mut pacer = Pacer::new(plan.defeat_icmp_ratelimit);
    let mut bucket = TokenBucket::new(plan.rate, started);
    let mut feed = Feed {
        plan,
        next_index: plan.start.min(total),
        total,
        carry: plan.carry.iter().copied().collect(),
        retries: VecDeque::new(),
        cap: backend.max_inflight.unwrap_or(MAX_OUTSTANDING),
    };
    // A batch the backend had no room for; its keys are already in the table.
    let mut stalled: Option<Vec<Probe>> = None;
    let mut tally = Tally {
        sink,
        up: HashMap::new(),
        decided: 0,
        open: 0,
    };
    let mut last_progress = started;
    let mut drain_until: Option<Instant> = None;
    let counters = backend.counters.clone();

    loop {
        let now = Instant::now();
        let signals = interrupts.load(Ordering::Relaxed);
        if signals >= 2 {
            break;
        }
        if drain_until.is_none() && signals >= 1 {
            drain_until = Some(now + DRAIN);
        }
        let sending = drain_until.is_none();

        // 1. Apply replies already waiting.
        while let Ok(batch) = backend.replies.try_recv() {
            for reply in batch {
                tally.reply(&mut table, &mut pacer, reply, now);
            }
        }

        // 2. Sweep timeouts; UDP silence goes to the pacer, which decides
        //    whether it is open|filtered or ICMP rate limiting.
        let swept = table.sweep(now);
        feed.retries.extend(swept.retry);
        for key in swept.expired {
            match key.proto {
                Proto::Tcp => tally.emit(PortResult {
                    key,
                    state: PortState::Filtered,
                    reason: Reason::NoResponse,
                    ttl: None,
                }),
                Proto::Udp => {
                    if let Some(r) = pacer.on_expired(key, now) {
                        tally.emit(r);
                    }
                }
            }
        }
        for r in pacer.poll(now) {
            tally.emit(r);
        }

        // 3. Send what the rate allows, in batches: retries first, then
        //    carried keys, then new keys in permutation order. A key enters
        //    the table when it is put in a batch, never later, so a reply
        //    that resolves it while the batch waits cannot resurrect it.
        let mut backlogged = false;
        if sending {
            if let Some(b) = stalled.take() {
                match backend.probes.try_send(b) {
                    Ok(()) => {}
                    Err(TrySendError::Full(b)) => {
                        stalled = Some(b);
                        backlogged = true;
                    }
                    Err(TrySendError::Disconnected(_)) => drain_until = Some(now),
                }
            }
            while !backlogged && drain_until.is_none() {
                let mut batch = Vec::with_capacity(PROBE_BATCH);
                while batch.len() < PROBE_BATCH && bucket.try_take(now) {
                    let Some(key) = feed.next(&mut table, &mut pacer, now) else {
                        bucket.refund();
                        break;
                    };
                    batch.push(Probe {
                        key,
                        timeout: table.timeout(),
                    });
                }
                if batch.is_empty() {
                    break;
                }
                let full = batch.len() == PROBE_BATCH;
                match backend.probes.try_send(batch) {
                    Ok(()) => {}
                    Err(TrySendError::Full(b)) => {
                        stalled = Some(b);
                        backlogged = true;
                    }
                    Err(TrySendError::Disconnected(_)) => drain_until = Some(now),
                }
                if !full {
                    break;
                }
            }
        }

        if now.duration_since(last_progress) >= PROGRESS_EVERY {
            last_progress = now;
            tally.sink.progress(&Progress {
                decided: tally.decided,
                total,
                sent: Counters::get(&counters.sent),
                open: tally.open,
                elapsed: now.duration_since(started),
            });
        }

        // 4. Done?
        let finished = feed.exhausted() && table.is_empty() && stalled.is_none() && pacer.is_idle();
        if finished || drain_until.is_some_and(|d| now >= d) {
            break;
        }

        // 5. Wait for replies, the next tokens, or the next deadline. Sleep
        //    at least TICK between sends so each wake-up sends a batch.
        let mut wake = Duration::from_millis(50);
        if let Some(d) = table.next_deadline() {
            wake = wake.min(d.saturating_duration_since(now));
        }
        if let Some(d) = pacer.next_wake().filter(|_| sending) {
            wake = wake.min(d.saturating_duration_since(now));
        }
        if sending && feed.ready(&table) {
            wake = wake.min(bucket.wait(now).max(TICK));
        } else if backlogged || stalled.is_some() {
            wake = wake.min(TICK);
        }
        if let Some(d) = drain_until {
            wake = wake.min(d.saturating_duration_since(now));
        }
        match backend.replies.recv_timeout(wake) {
            Ok(batch) => {
                let now = Instant::now();
                for reply in batch {
                    tally.reply(&mut table, &mut pacer, reply, now);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !sending {
                    break;
                }
            }
        }
    }

    let interrupted = interrupts.load(Ordering::Relaxed) > 0;
    let mut undecided: Vec<ProbeKey> = Vec::new();
    if interrupted {
        undecided.extend(feed.carry.iter().copied());
        undecided.extend(table.keys());
        undecided.extend(pacer.undecided());
        undecided.sort();
        undecided.dedup();
    }
    let summary = Summary {
        elapsed: started.elapsed(),
        total,
        decided: tally.decided,
        up: tally.up,
        sent: Counters::get(&counters.sent),
        received: Counters::get(&counters.received),
        malformed: Counters::get(&counters.malformed),
        bad_cookie: Counters::get(&counters.bad_cookie),
        send_errors: Counters::get(&counters.send_errors),
        dropped: Counters::get(&counters.dropped_late),
        interrupted,
        next_index: feed.next_index,
        undecided,
    };
    backend.join();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Counters;
    use crate::plan::Shard;
    use crate::table::Timing;
    use crate::targets::parse_hosts;
    use crossbeam_channel::bounded;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::thread;

    /// A scripted backend: answers each probe according to `answer`
    /// (called with the key and how many times it was probed before),
    /// slowly, and twice, to provoke stalls, duplicates and late replies.
    fn fake(answer: fn(&ProbeKey, u32) -> Option<(PortState, Reason)>, slow: bool) -> Backend {
        let (ptx, prx) = bounded::<Vec<Probe>>(2);
        let (rtx, rrx) = bounded::<Vec<Reply>>(1024);
        let (stx, srx) = bounded::<()>(0);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let t = thread::spawn(move || {
            let mut seen: HashMap<ProbeKey, u32> = HashMap::new();
            for batch in prx.iter() {
                if slow {
                    thread::sleep(Duration::from_millis(3));
                }
                let mut out = Vec::new();
                for p in batch {
                    Counters::inc(&c.sent);
                    let n = seen.entry(p.key).or_insert(0);
                    if let Some((state, reason)) = answer(&p.key, *n) {
                        let r = Reply {
                            key: p.key,
                            state,
                            reason,
                            ttl: Some(64),
                        };
                        out.push(r);
                        out.push(r); // a duplicate
                    }
                    *n += 1;
                }
                if rtx.send(out).is_err() {
                    break;
                }
            }
            drop(srx);
        });
        Backend::new(ptx, rrx, counters, None, stx, vec![t])
    }

    struct Record(Vec<PortResult>);

    impl Sink for Record {
        fn result(&mut self, r: &PortResult) {
            self.0.push(*r);
        }
    }

    fn plan(ports: u16, seed: u64) -> Plan {
        let hosts = parse_hosts(&["198.18.0.1-3".into()], &[], &|_| Err("no dns".into())).unwrap();
        let ports = (1..=ports).map(|p| (Proto::Tcp, p)).collect();
        let mut p = Plan::new(hosts, ports, seed, Shard::WHOLE).unwrap();
        p.rate = 1_000_000;
        p.timing = Timing {
            initial: Duration::from_millis(30),
            min: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_retries: 3,
            adaptive_retries: false,
        };
        p
    }

    fn by_port(k: &ProbeKey, tries: u32) -> Option<(PortState, Reason)> {
        match k.port % 10 {
            0 => Some((PortState::Open, Reason::SynAck)),
            1 => None,               // filtered: never answers
            2 if tries == 0 => None, // lost once, answers the retry
            _ => Some((PortState::Closed, Reason::Reset)),
        }
    }

    /// Regression: a retry stalled behind a full channel, then resolved by
    /// a late reply, must not come back as a second result.
    #[test]
    fn every_key_is_decided_exactly_once_despite_stalls_and_duplicates() {
        let p = plan(400, 1);
        let mut rec = Record(Vec::new());
        let s = run(&p, fake(by_port, true), &mut rec, &AtomicUsize::new(0));
        assert_eq!(s.decided, 1200);
        let mut count: HashMap<ProbeKey, usize> = HashMap::new();
        for r in &rec.0 {
            *count.entry(r.key).or_default() += 1;
            let want = match r.key.port % 10 {
                0 => PortState::Open,
                1 => PortState::Filtered,
                _ => PortState::Closed,
            };
            assert_eq!(r.state, want, "{:?}", r.key);
        }
        assert_eq!(count.len(), 1200);
        assert!(count.values().all(|&n| n == 1), "a key was reported twice");
    }

    #[test]
    fn same_seed_same_order() {
        let order = |seed| {
            let p = plan(50, seed);
            let mut rec = Record(Vec::new());
            run(
                &p,
                fake(|_, _| Some((PortState::Closed, Reason::Reset)), false),
                &mut rec,
                &AtomicUsize::new(0),
            );
            rec.0.iter().map(|r| r.key).collect::<Vec<_>>()
        };
        // Replies come back in send order from this backend.
        assert_eq!(order(9), order(9));
        assert_ne!(order(9), order(10));
    }

    #[test]
    fn an_interrupt_returns_the_undecided_keys() {
        let p = plan(400, 1);
        let mut rec = Record(Vec::new());
        let stop = AtomicUsize::new(1);
        let s = run(&p, fake(|_, _| None, false), &mut rec, &stop);
        assert!(s.interrupted);
        // Nothing was sent, or what was sent is either decided or handed back.
        let decided: std::collections::HashSet<ProbeKey> = rec.0.iter().map(|r| r.key).collect();
        for k in &s.undecided {
            assert!(!decided.contains(k));
        }
        assert_eq!(
            s.decided as usize + s.undecided.len(),
            s.next_index as usize
        );
    }
}
