//! The probe table: keys sent and not yet decided, with their deadlines.
//!
//! Invariants: pure (every method takes `now` where time matters); owned
//! by the scan alone. A key is in the table from its first transmission
//! until it is resolved by a reply or removed by the scan once its last
//! try expired. A key is either *in flight* (a try is out, with a
//! deadline) or *waiting* (its try timed out; the scan decides whether it
//! is retried or given up). Deadlines live in a min-heap with lazy
//! deletion: stale heap entries (resolved or retransmitted since) are
//! skipped by comparing the attempt number and deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::probe::ProbeKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 0 for the first transmission.
    pub attempt: u8,
    /// When the latest try went out.
    pub sent: Instant,
    /// When the first try went out.
    pub first_sent: Instant,
    /// None while waiting for a retry decision or a retransmission.
    deadline: Option<Instant>,
    /// Expire at the deadline without retries (a paced UDP re-probe).
    pub once: bool,
    /// The first try measures the path for the congestion controller,
    /// which named it with this token.
    pub sample: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Table {
    /// foldhash: keys are our own probes (a reply's key is looked up only
    /// after its cookie checked out), and SipHash cost a tenth of the
    /// engine's time at -T5.
    map: HashMap<ProbeKey, Entry, foldhash::fast::RandomState>,
    heap: BinaryHeap<Reverse<(Instant, u8, ProbeKey)>>,
    inflight: usize,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }

    /// Keys in the table (in flight or waiting).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keys with a try out.
    pub fn inflight(&self) -> usize {
        self.inflight
    }

    /// Is `key` waiting for a retransmission?
    pub fn is_waiting(&self, key: &ProbeKey) -> bool {
        self.map.get(key).is_some_and(|e| e.deadline.is_none())
    }

    /// The attempt number of `key`'s latest try.
    pub fn attempt(&self, key: &ProbeKey) -> Option<u8> {
        self.map.get(key).map(|e| e.attempt)
    }

    /// Record a transmission of `key` at `now` (first or retry).
    pub fn sent(&mut self, key: ProbeKey, now: Instant, timeout: Duration) {
        self.record(key, now, timeout, false, None);
    }

    /// Record the first transmission of `key`, which the congestion
    /// controller samples under `token`.
    pub fn sent_sampled(&mut self, key: ProbeKey, now: Instant, timeout: Duration, token: u32) {
        self.record(key, now, timeout, false, Some(token));
    }

    /// Record a single-shot transmission: the scan does not retry it (the
    /// UDP pacer re-probes on its own schedule).
    pub fn sent_once(&mut self, key: ProbeKey, now: Instant, timeout: Duration) {
        self.record(key, now, timeout, true, None);
    }

    fn record(
        &mut self,
        key: ProbeKey,
        now: Instant,
        timeout: Duration,
        once: bool,
        sample: Option<u32>,
    ) {
        let deadline = now + timeout;
        let mut newly_inflight = true;
        let e = self
            .map
            .entry(key)
            .and_modify(|e| {
                newly_inflight = e.deadline.is_none();
                e.attempt = e.attempt.saturating_add(1);
                e.sent = now;
                e.deadline = Some(deadline);
                e.once = once;
            })
            .or_insert(Entry {
                attempt: 0,
                sent: now,
                first_sent: now,
                deadline: Some(deadline),
                once,
                sample,
            });
        let attempt = e.attempt;
        if newly_inflight {
            self.inflight += 1;
        }
        self.heap.push(Reverse((deadline, attempt, key)));
    }

    /// A validated reply for `key` arrived. Returns the entry if the key
    /// was in the table (None: a duplicate, or late for a decided key).
    pub fn resolve(&mut self, key: &ProbeKey) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if e.deadline.is_some() {
            self.inflight -= 1;
        }
        Some(e)
    }

    /// Remove a waiting key whose last try expired.
    pub fn remove(&mut self, key: &ProbeKey) {
        if let Some(e) = self.map.remove(key)
            && e.deadline.is_some()
        {
            self.inflight -= 1;
        }
    }

    /// Keep waiting for a waiting key's latest try until `deadline` (its
    /// last try: the retransmission timeout passed, the give-up timeout
    /// has not).
    pub fn extend(&mut self, key: &ProbeKey, deadline: Instant) {
        if let Some(e) = self.map.get_mut(key)
            && e.deadline.is_none()
        {
            e.deadline = Some(deadline);
            self.inflight += 1;
            self.heap.push(Reverse((deadline, e.attempt, *key)));
        }
    }

    /// Bring forward the deadlines of keys in flight to what `deadline`
    /// says for them now (used once the first round trip is measured, so
    /// tries sent under the initial timeout do not wait it out).
    pub fn rearm(&mut self, deadline: impl Fn(&ProbeKey, &Entry) -> Instant) {
        for (key, e) in self.map.iter_mut() {
            if let Some(d) = e.deadline {
                let new = deadline(key, e);
                if new < d {
                    e.deadline = Some(new);
                    self.heap.push(Reverse((new, e.attempt, *key)));
                }
            }
        }
    }

    /// Every key still in the table.
    pub fn keys(&self) -> impl Iterator<Item = ProbeKey> + '_ {
        self.map.keys().copied()
    }

    /// Tries whose deadline is at or before `now`: each key becomes
    /// waiting, and comes back with its entry.
    pub fn due(&mut self, now: Instant, out: &mut Vec<(ProbeKey, Entry)>) {
        while let Some(Reverse((deadline, attempt, key))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let Some(e) = self.map.get_mut(&key) else {
                continue;
            };
            if e.attempt != attempt || e.deadline != Some(deadline) {
                continue; // stale: resolved or retransmitted since
            }
            e.deadline = None;
            self.inflight -= 1;
            out.push((key, *e));
        }
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

    const T: Duration = Duration::from_millis(1000);

    fn due(t: &mut Table, now: Instant) -> Vec<ProbeKey> {
        let mut v = Vec::new();
        t.due(now, &mut v);
        v.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn tries_come_due_once_and_again_after_a_retransmission() {
        let t0 = Instant::now();
        let mut t = Table::new();
        t.sent(key(1), t0, T);
        assert_eq!(t.inflight(), 1);
        assert!(due(&mut t, t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(due(&mut t, t0 + T), vec![key(1)]);
        assert!(t.is_waiting(&key(1)));
        assert_eq!(t.inflight(), 0);
        // Nothing more until it is actually resent.
        assert!(due(&mut t, t0 + Duration::from_secs(60)).is_empty());
        t.sent(key(1), t0 + T, T);
        assert_eq!(t.inflight(), 1);
        let mut v = Vec::new();
        t.due(t0 + 2 * T, &mut v);
        assert_eq!(v[0].1.attempt, 1);
        t.remove(&key(1));
        assert!(t.is_empty());
        assert_eq!(t.inflight(), 0);
    }

    #[test]
    fn a_reply_resolves_and_late_replies_are_ignored() {
        let t0 = Instant::now();
        let mut t = Table::new();
        t.sent(key(1), t0, T);
        t.sent(key(2), t0, T);
        assert!(t.resolve(&key(1)).is_some());
        assert!(t.resolve(&key(1)).is_none());
        assert_eq!(t.inflight(), 1);
        assert_eq!(
            due(&mut t, t0 + Duration::from_secs(2)),
            vec![key(2)],
            "a resolved key must not come due"
        );
    }

    #[test]
    fn single_shot_tries_say_so() {
        let t0 = Instant::now();
        let mut t = Table::new();
        t.sent_once(key(7), t0, T);
        let mut v = Vec::new();
        t.due(t0 + T, &mut v);
        assert!(v[0].1.once);
    }
}
