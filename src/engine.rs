//! The driver: runs a `Scan` (the sans-I/O state machine) against a
//! backend's channels with the real clock, and handles interrupts.
//!
//! Each turn of the loop reads the clock once, applies waiting replies,
//! lets the scan retry and expire timed-out tries, hands its results to
//! the `Sink`, then moves the probes the scan allows to the backend in
//! batches (only while the backend's queue has room, so a probe's send
//! time is the time it really leaves), and sleeps until the next reply or
//! the scan's next wake-up (at least `TICK` between sending turns, so each
//! wake-up sends a batch). A timed wake-up that comes late (the machine's
//! cores are busy with other work) is reported to the scan with how late
//! it was.
//!
//! Invariants: every (host, port) of the plan is decided exactly once
//! unless the scan is interrupted. On the first SIGINT/SIGTERM the scan
//! stops sending and replies are drained for `DRAIN`; on the second the
//! loop stops at once. Either way the undecided keys come back in the
//! `Summary`, so a resume can finish them. The driver decides nothing
//! about ports and never prints; the sink does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use crate::net::{Backend, Counters, PROBE_BATCH};
use crate::plan::Plan;
use crate::probe::{PortResult, ProbeKey};
use crate::scan::{Scan, Settings};

pub use crate::scan::HostInfo;

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

#[derive(Debug, Default)]
pub struct Summary {
    pub elapsed: Duration,
    pub total: u64,
    pub decided: u64,
    /// Hosts that sent any reply.
    pub up: HashMap<IpAddr, HostInfo>,
    pub sent: u64,
    /// Retransmissions among the probes sent.
    pub retries: u64,
    pub received: u64,
    pub malformed: u64,
    pub bad_cookie: u64,
    /// Probes the backend failed to send (they time out and are retried).
    pub send_errors: u64,
    /// Validated replies dropped because the engine fell behind.
    pub dropped: u64,
    /// The controller's final rate (probes per second).
    pub final_rate: f64,
    /// Times the controller backed off on congestion.
    pub congestion_events: u64,
    /// Measured share of tries to responsive ports that drew no answer.
    pub loss: f64,
    pub interrupted: bool,
    /// Where the permutation stopped (== total when finished).
    pub next_index: u64,
    /// Keys sent but not decided when interrupted.
    pub undecided: Vec<ProbeKey>,
}

/// How long to keep listening for in-flight replies after an interrupt.
const DRAIN: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Memory bound on keys in the table for raw backends.
pub const MAX_OUTSTANDING: usize = 1 << 20;
/// Shortest sleep between sending turns: each turn sends a batch.
const TICK: Duration = Duration::from_millis(1);
/// How soon a turn that left the probe queue full looks again.
const QUEUE_POLL: Duration = Duration::from_micros(100);
/// Longest sleep when nothing is due.
const IDLE: Duration = Duration::from_millis(50);

fn progress(scan: &Scan, counters: &Counters, elapsed: Duration) -> Progress {
    let st = scan.stats();
    Progress {
        decided: st.decided,
        total: st.total,
        sent: Counters::get(&counters.sent),
        open: st.open,
        elapsed,
    }
}

/// Run the scan. `interrupts` counts SIGINT/SIGTERM: at 1 the scan stops
/// sending and drains replies briefly; at 2 it stops at once.
pub fn run(
    plan: &Plan,
    settings: Settings,
    backend: Backend,
    sink: &mut dyn Sink,
    interrupts: &AtomicUsize,
) -> Summary {
    let summary = run_on(plan, settings, &backend, sink, interrupts);
    backend.join();
    summary
}

/// Run the scan on a backend that stays up afterwards (host discovery,
/// then the port scan, on one set of sockets). The summary's packet
/// counters are this run's share of the backend's.
pub fn run_on(
    plan: &Plan,
    settings: Settings,
    backend: &Backend,
    sink: &mut dyn Sink,
    interrupts: &AtomicUsize,
) -> Summary {
    let started = Instant::now();
    let base = Snapshot::of(&backend.counters);
    let settings = Settings {
        max_inflight: settings
            .max_inflight
            .min(backend.max_inflight.unwrap_or(MAX_OUTSTANDING)),
        ..settings
    };
    let mut scan = Scan::new(plan.clone(), settings, started);
    let counters = backend.counters.clone();
    let mut last_progress = started;
    let mut last_send: Option<Instant> = None;
    let mut drain_until: Option<Instant> = None;
    let mut batch = Vec::with_capacity(PROBE_BATCH);
    // The last sending turn stopped on a full queue with probes to spare.
    let mut queue_bound = false;

    loop {
        let now = Instant::now();
        let signals = interrupts.load(Ordering::Relaxed);
        if signals >= 2 {
            break;
        }
        if drain_until.is_none() && signals >= 1 {
            drain_until = Some(now + DRAIN);
            scan.stop_sending();
        }

        // 1. Replies already waiting, then timeouts, then results.
        while let Ok(replies) = backend.replies.try_recv() {
            for r in replies {
                scan.handle_reply(now, r);
            }
        }
        scan.handle_timeout(now);
        while let Some(r) = scan.poll_result() {
            sink.result(&r);
        }

        // 2. Send what the scan allows, a batch at a time, while the
        //    backend's queue has room.
        if last_send.is_none_or(|t| now >= t + TICK) || (queue_bound && !backend.probes.is_full()) {
            last_send = Some(now);
            queue_bound = false;
            while !backend.probes.is_full() {
                while batch.len() < PROBE_BATCH {
                    match scan.poll_probe(now) {
                        Some(p) => batch.push(p),
                        None => break,
                    }
                }
                if batch.is_empty() {
                    break;
                }
                let full = batch.len() == PROBE_BATCH;
                let out = std::mem::replace(&mut batch, Vec::with_capacity(PROBE_BATCH));
                if backend.probes.try_send(out).is_err() {
                    // Disconnected (the backend died) or, impossibly for a
                    // single producer, full: nothing more can be sent.
                    scan.stop_sending();
                    drain_until.get_or_insert(now);
                    break;
                }
                if !full {
                    break;
                }
                // The scan had more to send than the queue took: the
                // sender, not the scan, is the limit, so the next turn
                // comes as soon as the queue has room, not a TICK later.
                queue_bound = backend.probes.is_full();
            }
        }

        if now.duration_since(last_progress) >= PROGRESS_EVERY {
            last_progress = now;
            sink.progress(&progress(&scan, &counters, now.duration_since(started)));
        }

        // 3. Done?
        if scan.is_finished() || drain_until.is_some_and(|d| now >= d) {
            break;
        }

        // 4. Sleep until a reply, the scan's next wake-up, or the drain's end.
        let mut wake = now + IDLE;
        if let Some(w) = scan.next_wakeup() {
            let turn = last_send.map_or(now, |t| t + TICK);
            wake = wake.min(w.max(turn));
        }
        if queue_bound {
            // The sender drains a batch in a fraction of TICK at high rates.
            wake = wake.min(now + QUEUE_POLL);
        }
        if let Some(d) = drain_until {
            wake = wake.min(d);
        }
        match backend
            .replies
            .recv_timeout(wake.saturating_duration_since(now))
        {
            Ok(replies) => {
                let now = Instant::now();
                for r in replies {
                    scan.handle_reply(now, r);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // How late the timed wake-up came: the CPU's contention,
                // which the controller must not read as a queue.
                let woke = Instant::now();
                scan.handle_wake_delay(woke, woke.saturating_duration_since(wake));
            }
            Err(RecvTimeoutError::Disconnected) => {
                if drain_until.is_some() {
                    break;
                }
                // No reply can come any more: the scan's timeouts decide.
                std::thread::sleep(wake.saturating_duration_since(now));
            }
        }
    }
    while let Some(r) = scan.poll_result() {
        sink.result(&r);
    }
    // A last progress call: the display reaches its end and streamed
    // outputs are flushed before whatever follows the port scan.
    sink.progress(&progress(&scan, &counters, started.elapsed()));

    let interrupted = interrupts.load(Ordering::Relaxed) > 0;
    let st = scan.stats();
    let now = Snapshot::of(&counters);
    Summary {
        elapsed: started.elapsed(),
        total: st.total,
        decided: st.decided,
        up: scan.hosts_up().collect(),
        sent: now.sent - base.sent,
        retries: st.retries,
        received: now.received - base.received,
        malformed: now.malformed - base.malformed,
        bad_cookie: now.bad_cookie - base.bad_cookie,
        send_errors: now.send_errors - base.send_errors,
        dropped: now.dropped - base.dropped,
        final_rate: st.rate,
        congestion_events: st.congestion_events,
        loss: st.loss,
        interrupted,
        next_index: scan.next_index(),
        undecided: if interrupted {
            scan.undecided()
        } else {
            Vec::new()
        },
    }
}

/// The backend's packet counters at one moment.
#[derive(Clone, Copy)]
struct Snapshot {
    sent: u64,
    received: u64,
    malformed: u64,
    bad_cookie: u64,
    send_errors: u64,
    dropped: u64,
}

impl Snapshot {
    fn of(c: &Counters) -> Snapshot {
        Snapshot {
            sent: Counters::get(&c.sent),
            received: Counters::get(&c.received),
            malformed: Counters::get(&c.malformed),
            bad_cookie: Counters::get(&c.bad_cookie),
            send_errors: Counters::get(&c.send_errors),
            dropped: Counters::get(&c.dropped_late),
        }
    }
}

impl Summary {
    /// Fold an earlier pass (host discovery) into this summary: its time
    /// and packets count toward the run's.
    pub fn absorb(&mut self, earlier: &Summary) {
        self.elapsed += earlier.elapsed;
        self.sent += earlier.sent;
        self.retries += earlier.retries;
        self.received += earlier.received;
        self.malformed += earlier.malformed;
        self.bad_cookie += earlier.bad_cookie;
        self.send_errors += earlier.send_errors;
        self.dropped += earlier.dropped;
        self.interrupted |= earlier.interrupted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Limits;
    use crate::control::retry::Budget;
    use crate::net::{Counters, Probe};
    use crate::probe::{PortState, Proto, Reason};
    use crate::scan::hosts::Timing;
    use crate::targets::parse_hosts;
    use crate::validate::Reply;
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
                            attempt: None,
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

    fn plan(ports: u16) -> Plan {
        let hosts = parse_hosts(&["198.18.0.1-3".into()], &[], &|_| Err("no dns".into())).unwrap();
        let ports = (1..=ports).map(|p| (Proto::Tcp, p)).collect();
        Plan::new(hosts, ports, 1, crate::plan::Shard::WHOLE).unwrap()
    }

    fn settings() -> Settings {
        Settings {
            timing: Timing {
                initial: Duration::from_millis(30),
                min: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
            budget: Budget {
                min_tries: 4,
                max_tries: 4,
            },
            limits: Limits::fixed(1_000_000.0),
            defeat_icmp_ratelimit: false,
            max_inflight: usize::MAX,
            sources: Default::default(),
            group_timing: false,
            known_rtts: Vec::new(),
        }
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
        let p = plan(400);
        let mut rec = Record(Vec::new());
        let s = run(
            &p,
            settings(),
            fake(by_port, true),
            &mut rec,
            &AtomicUsize::new(0),
        );
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
            let base = plan(50);
            let p = Plan::new(
                base.hosts().clone(),
                base.ports().to_vec(),
                seed,
                crate::plan::Shard::WHOLE,
            )
            .unwrap();
            let mut rec = Record(Vec::new());
            run(
                &p,
                settings(),
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
        let p = plan(400);
        let mut rec = Record(Vec::new());
        let stop = AtomicUsize::new(1);
        let s = run(&p, settings(), fake(|_, _| None, false), &mut rec, &stop);
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
