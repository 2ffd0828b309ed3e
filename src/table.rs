//! The probe table: outstanding probes, their deadlines, retries, and the
//! round-trip-time estimate that sets timeouts.
//!
//! Invariants: pure (every method takes `now`); owned by the engine alone.
//! A key is in the table from its first transmission until it is resolved
//! by a reply or expires after `max_retries` retransmissions. Deadlines
//! live in a min-heap with lazy deletion: stale heap entries (resolved or
//! retransmitted since) are skipped by comparing the attempt number.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::probe::ProbeKey;

/// Timeout policy, nmap style: `srtt + 4 * rttvar`, clamped.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub initial: Duration,
    pub min: Duration,
    pub max: Duration,
    pub max_retries: u8,
    /// Retry only as much as the network has shown to need (nmap's
    /// max_successful_tryno): a probe expires after `highest attempt that
    /// ever got an answer + 2` retries, capped by `max_retries`. Off when
    /// the user gives --max-retries, which is then honoured exactly.
    pub adaptive_retries: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(100),
            max: Duration::from_millis(10_000),
            max_retries: 6,
            adaptive_retries: true,
        }
    }
}

/// Extra retries allowed beyond the highest attempt that got an answer.
const RETRY_MARGIN: u8 = 2;

/// Smoothed RTT (RFC 6298 gains, as nmap uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rtt {
    srtt: Option<f64>,
    rttvar: f64,
}

impl Rtt {
    pub fn sample(&mut self, d: Duration) {
        let r = d.as_secs_f64();
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(Duration::from_secs_f64)
    }

    pub fn timeout(&self, t: &Timing) -> Duration {
        match self.srtt {
            None => t.initial,
            Some(s) => Duration::from_secs_f64(s + 4.0 * self.rttvar).clamp(t.min, t.max),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 0 for the first transmission.
    pub attempt: u8,
    pub sent: Instant,
    /// None while a retransmission is queued but not yet sent.
    deadline: Option<Instant>,
    /// Expire at the deadline without retries (a paced UDP re-probe).
    once: bool,
}

/// What a sweep decided for timed-out probes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Send these again (they stay in the table).
    pub retry: Vec<ProbeKey>,
    /// Out of retries: removed; the caller reports them unanswered.
    pub expired: Vec<ProbeKey>,
}

#[derive(Debug)]
pub struct Table {
    map: HashMap<ProbeKey, Entry>,
    heap: BinaryHeap<Reverse<(Instant, u8, ProbeKey)>>,
    rtt: Rtt,
    timing: Timing,
    /// Highest attempt number that got an answer.
    max_answered: u8,
}

impl Table {
    pub fn new(timing: Timing) -> Self {
        Table {
            map: HashMap::new(),
            heap: BinaryHeap::new(),
            rtt: Rtt::default(),
            timing,
            max_answered: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, key: &ProbeKey) -> bool {
        self.map.contains_key(key)
    }

    pub fn rtt(&self) -> &Rtt {
        &self.rtt
    }

    /// The current timeout for a probe sent now.
    pub fn timeout(&self) -> Duration {
        self.rtt.timeout(&self.timing)
    }

    /// Record a transmission of `key` at `now` (first or retry).
    pub fn sent(&mut self, key: ProbeKey, now: Instant) {
        self.record(key, now, false);
    }

    /// Record a single-shot transmission: it expires at its deadline
    /// without retries (the UDP pacer retries on its own schedule).
    pub fn sent_once(&mut self, key: ProbeKey, now: Instant) {
        self.record(key, now, true);
    }

    fn record(&mut self, key: ProbeKey, now: Instant, once: bool) {
        let deadline = now + self.timeout();
        let e = self
            .map
            .entry(key)
            .and_modify(|e| {
                e.attempt = e.attempt.saturating_add(1);
                e.sent = now;
                e.deadline = Some(deadline);
                e.once = once;
            })
            .or_insert(Entry {
                attempt: 0,
                sent: now,
                deadline: Some(deadline),
                once,
            });
        self.heap.push(Reverse((deadline, e.attempt, key)));
    }

    /// A validated reply for `key` arrived at `now`. Returns the entry if
    /// the key was outstanding (None: a duplicate or late reply). The RTT
    /// is sampled only for unretransmitted probes (Karn's rule).
    pub fn resolve(&mut self, key: &ProbeKey, now: Instant) -> Option<Entry> {
        let e = self.map.remove(key)?;
        self.max_answered = self.max_answered.max(e.attempt);
        if e.attempt == 0 {
            self.rtt.sample(now.saturating_duration_since(e.sent));
        }
        Some(e)
    }

    /// Every key still in the table (sent, not decided).
    pub fn keys(&self) -> impl Iterator<Item = ProbeKey> + '_ {
        self.map.keys().copied()
    }

    /// Retransmissions a probe gets before it expires, now.
    pub fn allowed_retries(&self) -> u8 {
        if self.timing.adaptive_retries {
            self.max_answered
                .saturating_add(RETRY_MARGIN)
                .min(self.timing.max_retries)
        } else {
            self.timing.max_retries
        }
    }

    /// Collect probes whose deadline is at or before `now`.
    pub fn sweep(&mut self, now: Instant) -> Sweep {
        let mut out = Sweep::default();
        let allowed = self.allowed_retries();
        while let Some(Reverse((deadline, attempt, key))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let Some(e) = self.map.get_mut(&key) else {
                continue;
            };
            if e.attempt != attempt || e.deadline != Some(deadline) {
                continue; // stale: retransmitted since
            }
            if e.attempt < allowed && !e.once {
                e.deadline = None;
                out.retry.push(key);
            } else {
                self.map.remove(&key);
                out.expired.push(key);
            }
        }
        out
    }

    /// The earliest pending deadline, if any (may be stale; harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Proto;

    fn key(port: u16) -> ProbeKey {
        ProbeKey {
            ip: "198.18.0.2".parse().unwrap(),
            port,
            proto: Proto::Tcp,
        }
    }

    fn timing(retries: u8) -> Timing {
        Timing {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(100),
            max: Duration::from_millis(10_000),
            max_retries: retries,
            adaptive_retries: false,
        }
    }

    #[test]
    fn unanswered_probes_retry_then_expire() {
        let t0 = Instant::now();
        let mut t = Table::new(timing(2));
        t.sent(key(1), t0);
        assert_eq!(t.sweep(t0 + Duration::from_millis(999)), Sweep::default());
        let mut now = t0 + Duration::from_millis(1000);
        for _ in 0..2 {
            let s = t.sweep(now);
            assert_eq!(s.retry, vec![key(1)]);
            assert!(s.expired.is_empty());
            // Nothing more until it is actually resent.
            assert_eq!(t.sweep(now + Duration::from_secs(60)), Sweep::default());
            t.sent(key(1), now);
            now += Duration::from_millis(1000);
        }
        let s = t.sweep(now);
        assert_eq!(s.expired, vec![key(1)]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_reply_resolves_and_late_replies_are_ignored() {
        let t0 = Instant::now();
        let mut t = Table::new(timing(2));
        t.sent(key(1), t0);
        t.sent(key(2), t0);
        assert!(t.resolve(&key(1), t0 + Duration::from_millis(5)).is_some());
        assert!(t.resolve(&key(1), t0 + Duration::from_millis(6)).is_none());
        let s = t.sweep(t0 + Duration::from_secs(2));
        assert_eq!(s.retry, vec![key(2)], "a resolved key must not retry");
    }

    #[test]
    fn timeouts_adapt_to_measured_rtt() {
        let t0 = Instant::now();
        let mut t = Table::new(timing(2));
        assert_eq!(t.timeout(), Duration::from_millis(1000));
        for i in 0..50u16 {
            let s = t0 + Duration::from_millis(u64::from(i));
            t.sent(key(i), s);
            t.resolve(&key(i), s + Duration::from_millis(40));
        }
        let to = t.timeout();
        assert!(
            to >= Duration::from_millis(100) && to < Duration::from_millis(200),
            "{to:?}"
        );
        // Tiny RTTs clamp to the minimum.
        let mut t2 = Table::new(timing(2));
        for i in 0..20u16 {
            t2.sent(key(i), t0);
            t2.resolve(&key(i), t0 + Duration::from_micros(50));
        }
        assert_eq!(t2.timeout(), Duration::from_millis(100));
    }

    #[test]
    fn adaptive_retries_follow_observed_loss() {
        let t0 = Instant::now();
        let mut t = Table::new(Timing {
            adaptive_retries: true,
            ..timing(6)
        });
        assert_eq!(t.allowed_retries(), 2, "no loss seen: two retries");
        // A probe answered only on its second retransmission shows loss.
        let mut now = t0;
        t.sent(key(1), now);
        for _ in 0..2 {
            now += Duration::from_secs(1);
            assert_eq!(t.sweep(now).retry, vec![key(1)]);
            t.sent(key(1), now);
        }
        t.resolve(&key(1), now);
        assert_eq!(t.allowed_retries(), 4);
        // Capped by max_retries.
        let mut u = Table::new(Timing {
            adaptive_retries: true,
            ..timing(1)
        });
        u.sent(key(2), t0);
        assert_eq!(u.sweep(t0 + Duration::from_secs(1)).retry, vec![key(2)]);
        u.sent(key(2), t0 + Duration::from_secs(1));
        assert_eq!(u.sweep(t0 + Duration::from_secs(3)).expired, vec![key(2)]);
    }

    #[test]
    fn single_shot_probes_expire_without_retry() {
        let t0 = Instant::now();
        let mut t = Table::new(timing(5));
        t.sent_once(key(7), t0);
        let s = t.sweep(t0 + Duration::from_secs(1));
        assert_eq!((s.retry.len(), s.expired), (0, vec![key(7)]));
    }

    #[test]
    fn retransmitted_replies_give_no_rtt_sample() {
        let t0 = Instant::now();
        let mut t = Table::new(timing(3));
        t.sent(key(1), t0);
        let s = t.sweep(t0 + Duration::from_secs(1));
        assert_eq!(s.retry.len(), 1);
        t.sent(key(1), t0 + Duration::from_secs(1));
        t.resolve(&key(1), t0 + Duration::from_millis(1001));
        assert!(
            t.rtt().srtt().is_none(),
            "Karn: no sample from a retransmission"
        );
    }
}
