//! UDP pacing under ICMP rate limiting.
//!
//! Linux (and most stacks) answer closed UDP ports with ICMP
//! port-unreachable, but only about once per second per peer after a small
//! burst (`icmp_ratelimit`, `icmp_msgs_per_sec`). A UDP probe that gets no
//! answer is therefore ambiguous: open|filtered, or closed but throttled.
//!
//! Linux keeps one budget per peer address (burst 6, one token per
//! second by default) and one per target for all peers (`icmp_msgs_per_sec`
//! 1000, burst 50). The pacer resolves the ambiguity per peer, that is per
//! (source address, target): with `-S` each pair is paced as a host of its
//! own. In passes:
//! 1. The fast stage is the engine's ordinary send + retries. A key still
//!    unanswered after it joins the peer's slow queue: even when the peer
//!    answered most of its ports, its bucket (or the target's global one)
//!    may have been empty at that moment.
//! 2. A slow pass re-probes every queued key once, one at a time, paced by
//!    a model of the peer's token bucket. A pass that drew some answers but
//!    not all measures the peer's ICMP service interval (the 75th
//!    percentile of the gaps between answers, a possible burst of 6 left
//!    out); the next pass is paced just slower, so the bucket never runs
//!    dry. A probe that draws no answer gives its token back.
//! 3. A pass with no answer at all proves the rest are not closed (they are
//!    open|filtered) only if it was paced at a measured interval and no
//!    faster than the longest gap ever seen between two of the peer's
//!    answers (its bucket surely refilled before each probe), or at the
//!    slowest pace, and if a second such pass a refill window later
//!    (`CONFIRM`) is silent too: the target's global budget, shared by all
//!    sources, may have been empty during the first. Otherwise the pace
//!    doubles and the keys are tried again. Silence gives the peer's token
//!    back (an unanswered probe spent none of the peer's budget).
//! 4. A peer that has sent no ICMP at all is probed for `SILENT_WINDOW`
//!    before its silence is believed (its budget may be spent).
//!
//! With `--defeat-icmp-ratelimit`, unanswered keys are reported
//! closed|filtered after the fast stage instead, as nmap does.
//!
//! Invariants: pure (every method takes `now`); it decides only keys the
//! engine hands it; each key handed in comes out exactly once, as a
//! result or through `undecided`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::sources::Sources;
use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};

/// Pacing of the first slow pass, before the host's interval is measured.
const FIRST_PACE: Duration = Duration::from_millis(100);
/// Pace this much slower than the measured service interval (the target
/// counts tokens in jiffies; a few percent absorbs the rounding).
const MARGIN: f64 = 1.03;
/// How long a host that has sent no ICMP at all is probed before its
/// silence is believed (Linux refills one ICMP token per second).
const SILENT_WINDOW: Duration = Duration::from_secs(3);
/// A silent pass is confirmed by another at least this much later (and
/// twice the longest gap between answers) before silence is believed: a
/// Linux peer bucket refills one token a second, the global one every
/// 20 ms.
const CONFIRM: Duration = Duration::from_millis(1100);
/// Slow probes to one target go at least this far apart, whatever their
/// source: the target's global ICMP budget (Linux: 1000 a second in 20 ms
/// steps, burst 50) is shared by every source, and the passes of many
/// peers would otherwise hit it in bursts, the same peers always last.
const TARGET_GAP: Duration = Duration::from_millis(2);
/// Answers a host may give back to back from a refilled bucket (Linux's
/// ICMP burst is 6).
const BURST: usize = 6;
/// Slowest pacing considered (a host answering less than this is treated
/// as not answering).
const MAX_PACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Host {
    sent: u32,
    answered: u32,
    icmp: u32,
    slow: Option<Slow>,
}

/// The slow stage of one throttled host. It models the host's ICMP token
/// bucket (one token per `interval`, assumed burst of one): a probe goes
/// when a token should be there, and a probe that draws no answer gives
/// its token back (it went to a silent port and spent nothing).
#[derive(Debug)]
struct Slow {
    queue: VecDeque<ProbeKey>,
    inflight: HashSet<ProbeKey>,
    unanswered: Vec<ProbeKey>,
    /// Measured ICMP service interval of the host.
    interval: Option<Duration>,
    tokens: f64,
    tok_time: Instant,
    /// When this peer last sent a slow probe (fairness among peers).
    tok_since: Instant,
    pass_sent: u32,
    pass_answered: u32,
    /// Was this pass paced at a measured interval (so silence proves)?
    pass_measured: bool,
    /// The pace of this pass.
    pass_pace: Duration,
    /// The longest gap seen between two consecutive answers of a pass.
    max_gap: Duration,
    /// When this pass began.
    pass_start: Instant,
    /// The start of the first silent pass that could prove the rest are
    /// not closed; a second one a refill window later decides.
    quiet_since: Option<Instant>,
    /// No slow probe before this (waiting out a refill window).
    hold_until: Option<Instant>,
    answers: Vec<Instant>,
    created: Instant,
}

impl Slow {
    fn new(now: Instant) -> Self {
        Slow {
            created: now,
            queue: VecDeque::new(),
            inflight: HashSet::new(),
            unanswered: Vec::new(),
            interval: None,
            tokens: 1.0,
            tok_time: now,
            tok_since: now,
            pass_sent: 0,
            pass_answered: 0,
            pass_measured: false,
            pass_pace: FIRST_PACE,
            max_gap: Duration::ZERO,
            pass_start: now,
            quiet_since: None,
            hold_until: None,
            answers: Vec::new(),
        }
    }

    fn pace(&self) -> Duration {
        self.interval
            .map_or(FIRST_PACE, |i| i.mul_f64(MARGIN))
            .min(MAX_PACE)
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.tok_time).as_secs_f64();
        self.tokens = (self.tokens + dt / self.pace().as_secs_f64()).min(1.0);
        self.tok_time = now;
    }

    fn pass_done(&self) -> bool {
        self.queue.is_empty() && self.inflight.is_empty()
    }

    /// The host's service interval from the spacing of this pass's
    /// answers: the 75th percentile of the gaps after the first `BURST`
    /// answers, so a burst refilled while the host was not probed (answers
    /// back to back) cannot make it look faster than it is.
    fn measured_interval(&self) -> Option<Duration> {
        let n = self.pass_answered;
        if n == 0 || n >= self.pass_sent {
            return None; // not saturated: says nothing about the budget
        }
        let mut gaps: Vec<Duration> = self
            .answers
            .windows(2)
            .skip(BURST)
            .map(|w| w[1].saturating_duration_since(w[0]))
            .collect();
        if gaps.len() < 3 {
            // Too few answers past a possible burst to time the budget.
            return None;
        }
        gaps.sort();
        Some(gaps[gaps.len() * 3 / 4])
    }
}

#[derive(Debug, Default)]
pub struct Pacer {
    defeat: bool,
    /// Per (source, target): Linux keeps one ICMP budget per peer address.
    hosts: HashMap<(Option<IpAddr>, IpAddr), Host>,
    sources: Sources,
    /// When each target last got a slow probe (from any source).
    last_to: HashMap<IpAddr, Instant>,
}

impl Pacer {
    pub fn new(defeat_icmp_ratelimit: bool) -> Self {
        Pacer::with_sources(defeat_icmp_ratelimit, Sources::default())
    }

    /// A pacer for probes sent from `sources` (`-S`): each (source,
    /// target) pair is paced as a host of its own.
    pub fn with_sources(defeat_icmp_ratelimit: bool, sources: Sources) -> Self {
        Pacer {
            defeat: defeat_icmp_ratelimit,
            hosts: HashMap::new(),
            sources,
            last_to: HashMap::new(),
        }
    }

    fn peer(&self, key: &ProbeKey) -> (Option<IpAddr>, IpAddr) {
        (self.sources.pick(key), key.ip)
    }

    /// A UDP key was sent for the first time.
    pub fn on_first_send(&mut self, key: &ProbeKey) {
        if key.proto == Proto::Udp {
            let peer = self.peer(key);
            self.hosts.entry(peer).or_default().sent += 1;
        }
    }

    /// A UDP key was decided by a reply (any attempt, fast or slow).
    pub fn on_reply(&mut self, key: &ProbeKey, reason: Reason, now: Instant) {
        if key.proto != Proto::Udp {
            return;
        }
        let peer = self.peer(key);
        let h = self.hosts.entry(peer).or_default();
        h.answered += 1;
        if reason.is_icmp() {
            h.icmp += 1;
        }
        if let Some(s) = h.slow.as_mut()
            && s.inflight.remove(key)
        {
            s.pass_answered += 1;
            s.answers.push(now);
        }
    }

    /// Is `key` a slow-stage probe in flight (sent once, never retried)?
    #[cfg(test)]
    fn is_slow(&self, key: &ProbeKey) -> bool {
        self.hosts
            .get(&self.peer(key))
            .and_then(|h| h.slow.as_ref())
            .is_some_and(|s| s.inflight.contains(key))
    }

    /// A UDP key ran out of attempts. Returns its result, or None when the
    /// pacer keeps it for a slow pass.
    pub fn on_expired(&mut self, key: ProbeKey, now: Instant) -> Option<PortResult> {
        let peer = self.peer(&key);
        let h = self.hosts.entry(peer).or_default();
        if let Some(s) = h.slow.as_mut()
            && s.inflight.remove(&key)
        {
            s.unanswered.push(key);
            if s.interval.is_some() {
                // Silence spent no token of the host's: give it back.
                s.refill(now);
                s.tokens = (s.tokens + 1.0).min(1.0);
            }
            return None;
        }
        if h.icmp > 0 && self.defeat {
            return Some(no_response(key, PortState::ClosedFiltered));
        }
        // Silence in the fast stage proves nothing yet, even from a host
        // that answered most ports: its per-peer bucket, or the target's
        // global one (shared by every source), may have been empty just
        // then. The slow stage re-probes it when a token must be there.
        h.slow
            .get_or_insert_with(|| Slow::new(now))
            .queue
            .push_back(key);
        None
    }

    /// A slow probe due at `now`, if any (the caller sends it once).
    pub fn next_probe(&mut self, now: Instant) -> Option<ProbeKey> {
        // Of the peers whose bucket has a token and whose target has not
        // had a slow probe within TARGET_GAP, the one that has waited
        // longest (so no peer is always last in a burst).
        let mut best: Option<((Option<IpAddr>, IpAddr), Instant)> = None;
        for (peer, h) in self.hosts.iter_mut() {
            let Some(s) = h.slow.as_mut() else { continue };
            if s.queue.is_empty() || s.hold_until.is_some_and(|t| now < t) {
                continue;
            }
            if self
                .last_to
                .get(&peer.1)
                .is_some_and(|t| now < *t + TARGET_GAP)
            {
                continue;
            }
            s.refill(now);
            if s.tokens < 1.0 {
                continue;
            }
            if best.is_none_or(|(_, since)| s.tok_since < since) {
                best = Some((*peer, s.tok_since));
            }
        }
        let (peer, _) = best?;
        let s = self.hosts.get_mut(&peer)?.slow.as_mut()?;
        let k = s.queue.pop_front()?;
        if s.pass_sent == 0 {
            s.pass_measured = s.interval.is_some();
            s.pass_pace = s.pace();
            s.pass_start = now;
            s.answers.clear();
        }
        s.tokens -= 1.0;
        s.tok_since = now;
        s.pass_sent += 1;
        s.inflight.insert(k);
        self.last_to.insert(peer.1, now);
        Some(k)
    }

    /// Close finished passes; returns keys decided open|filtered.
    pub fn poll(&mut self, now: Instant) -> Vec<PortResult> {
        let mut out = Vec::new();
        for h in self.hosts.values_mut() {
            let Some(s) = h.slow.as_mut() else { continue };
            let silent = h.icmp == 0 && now >= s.created + SILENT_WINDOW;
            if (self.defeat && h.icmp > 0) || silent {
                // Evidence is in: the host answers ICMP (defeat mode asks
                // for no waiting), or it stayed silent for the whole window
                // while being probed (ICMP filtered: open|filtered).
                let state = if silent {
                    PortState::OpenFiltered
                } else {
                    PortState::ClosedFiltered
                };
                out.extend(
                    s.queue
                        .drain(..)
                        .chain(s.unanswered.drain(..))
                        .map(|k| no_response(k, state)),
                );
                if s.inflight.is_empty() {
                    h.slow = None;
                }
                continue;
            }
            if !s.pass_done() || s.pass_sent == 0 {
                continue;
            }
            let answered = s.pass_answered;
            // Silence proves the rest are not closed only from a pass
            // paced no faster than the longest gap ever seen between two
            // of the host's answers (so its bucket surely refilled before
            // each probe), or at the slowest pace.
            let paced = s.pass_measured && !s.max_gap.is_zero() && s.pass_pace >= s.max_gap;
            let proven = h.icmp > 0 && (paced || s.pass_pace >= MAX_PACE);
            if answered == 0 && proven && s.quiet_since.is_none() {
                // Silent at the measured budget: wait a refill window and
                // ask once more (a target's global budget, shared by every
                // source, can be empty at the moment of a pass).
                s.quiet_since = Some(s.pass_start);
                s.hold_until = Some(s.pass_start + CONFIRM.max(s.max_gap * 2));
            } else if answered > 0 {
                s.quiet_since = None;
            }
            let confirmed = s
                .quiet_since
                .is_some_and(|q| s.pass_start >= q + CONFIRM.max(s.max_gap * 2));
            if answered == 0 && proven && confirmed {
                // Paced at the host's measured budget, silent twice, a
                // refill window apart.
                out.extend(
                    s.unanswered
                        .drain(..)
                        .map(|k| no_response(k, PortState::OpenFiltered)),
                );
                h.slow = None;
                continue;
            }
            if let Some(g) = s
                .answers
                .windows(2)
                .map(|w| w[1].saturating_duration_since(w[0]))
                .max()
            {
                s.max_gap = s.max_gap.max(g);
            }
            match s.measured_interval() {
                Some(m) => s.interval = Some(m),
                None if answered == 0 => s.interval = Some((s.pace() * 2).max(s.max_gap)),
                None => {}
            }
            s.queue.extend(s.unanswered.drain(..));
            s.pass_sent = 0;
            s.pass_answered = 0;
            if s.queue.is_empty() {
                h.slow = None;
            }
        }
        out
    }

    /// When the next slow probe may be due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.hosts
            .iter()
            .filter_map(|(peer, h)| Some((peer, h.slow.as_ref()?)))
            .filter(|(_, s)| !s.queue.is_empty())
            .map(|(peer, s)| {
                let mut token = s.tok_time + s.pace().mul_f64((1.0 - s.tokens).max(0.0));
                if let Some(h) = s.hold_until {
                    token = token.max(h);
                }
                match self.last_to.get(&peer.1) {
                    Some(t) => token.max(*t + TARGET_GAP),
                    None => token,
                }
            })
            .min()
    }

    /// No key is waiting in any slow stage.
    pub fn is_idle(&self) -> bool {
        self.hosts.values().all(|h| h.slow.is_none())
    }

    /// Keys still held (for an interrupted scan).
    pub fn undecided(&self) -> Vec<ProbeKey> {
        let mut v = Vec::new();
        for s in self.hosts.values().filter_map(|h| h.slow.as_ref()) {
            v.extend(s.queue.iter().copied());
            v.extend(s.inflight.iter().copied());
            v.extend(s.unanswered.iter().copied());
        }
        v
    }
}

fn no_response(key: ProbeKey, state: PortState) -> PortResult {
    PortResult {
        key,
        state,
        reason: Reason::NoResponse,
        ttl: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulated Linux target: closed ports answer ICMP through a token
    /// bucket (burst, one token per `interval`); `dropped` ports never answer.
    struct Target {
        tokens: f64,
        burst: f64,
        interval: Duration,
        last: Instant,
        dropped: HashSet<u16>,
    }

    impl Target {
        fn answers(&mut self, port: u16, now: Instant) -> bool {
            let dt = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + dt / self.interval.as_secs_f64()).min(self.burst);
            self.last = now;
            if self.dropped.contains(&port) || self.tokens < 1.0 {
                return false;
            }
            self.tokens -= 1.0;
            true
        }
    }

    fn key(port: u16) -> ProbeKey {
        ProbeKey {
            ip: "198.18.0.2".parse().unwrap(),
            port,
            proto: Proto::Udp,
        }
    }

    /// Drive the pacer as the engine does: a fast stage that sends every
    /// port twice back to back, then slow passes with a 50 ms timeout.
    fn simulate(
        ports: u16,
        dropped: &[u16],
        limited: bool,
        defeat: bool,
    ) -> (HashMap<u16, PortState>, Duration) {
        simulate_from(6.0, ports, dropped, limited, defeat)
    }

    fn simulate_from(
        start_tokens: f64,
        ports: u16,
        dropped: &[u16],
        limited: bool,
        defeat: bool,
    ) -> (HashMap<u16, PortState>, Duration) {
        let t0 = Instant::now();
        let mut tgt = Target {
            tokens: start_tokens,
            burst: 6.0,
            interval: if limited {
                Duration::from_secs(1)
            } else {
                Duration::from_micros(1)
            },
            last: t0,
            dropped: dropped.iter().copied().collect(),
        };
        let mut p = Pacer::new(defeat);
        let mut result = HashMap::new();
        let mut now = t0;
        let mut unanswered = Vec::new();
        for port in 1..=ports {
            p.on_first_send(&key(port));
            now += Duration::from_micros(100);
            if tgt.answers(port, now) {
                p.on_reply(&key(port), Reason::PortUnreach, now);
                result.insert(port, PortState::Closed);
            } else {
                unanswered.push(port);
            }
        }
        now += Duration::from_millis(100);
        for port in unanswered {
            // The fast retry.
            if tgt.answers(port, now) {
                p.on_reply(&key(port), Reason::PortUnreach, now);
                result.insert(port, PortState::Closed);
            } else if let Some(r) = p.on_expired(key(port), now) {
                result.insert(port, r.state);
            }
        }
        let timeout = Duration::from_millis(50);
        let mut inflight: Vec<(Instant, ProbeKey, bool)> = Vec::new();
        for _ in 0..2_000_000 {
            if p.is_idle() {
                break;
            }
            while let Some(k) = p.next_probe(now) {
                assert!(p.is_slow(&k));
                let ok = tgt.answers(k.port, now);
                inflight.push((now + timeout, k, ok));
            }
            inflight.retain(|&(due, k, ok)| {
                if due > now {
                    return true;
                }
                if ok {
                    p.on_reply(&k, Reason::PortUnreach, now);
                    result.insert(k.port, PortState::Closed);
                } else if let Some(r) = p.on_expired(k, now) {
                    result.insert(k.port, r.state);
                }
                false
            });
            for r in p.poll(now) {
                result.insert(r.key.port, r.state);
            }
            now += Duration::from_millis(5);
        }
        assert!(p.is_idle() && p.undecided().is_empty());
        (result, now - t0)
    }

    #[test]
    fn rate_limited_closed_ports_come_out_closed() {
        let dropped = [5, 50, 77];
        let (r, took) = simulate(100, &dropped, true, false);
        assert_eq!(r.len(), 100);
        for port in 1..=100u16 {
            let want = if dropped.contains(&port) {
                PortState::OpenFiltered
            } else {
                PortState::Closed
            };
            assert_eq!(r[&port], want, "port {port}");
        }
        // The budget is ~1 ICMP/s after a burst of 6: ~91 s is the floor.
        eprintln!("simulated rate-limited scan took {took:?}");
        assert!(took < Duration::from_secs(100), "took {took:?}");
    }

    #[test]
    fn unlimited_hosts_finish_fast() {
        let (r, took) = simulate(1000, &[10, 20], false, false);
        assert_eq!(r[&10], PortState::OpenFiltered);
        assert_eq!(r[&11], PortState::Closed);
        assert_eq!(r.values().filter(|s| **s == PortState::Closed).count(), 998);
        // The filtered ports' silence is confirmed once, a refill window
        // (CONFIRM) after the first silent pass.
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    #[test]
    fn defeat_reports_closed_filtered_without_waiting() {
        let (r, took) = simulate(100, &[5], true, true);
        assert_eq!(r[&5], PortState::ClosedFiltered);
        assert_eq!(r.values().filter(|s| **s == PortState::Closed).count(), 6);
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }

    /// Regression: a target whose ICMP budget is already spent when the
    /// scan starts (a second scan right after a first) sends no ICMP during
    /// the fast stage; its closed ports must not be decided by that silence.
    #[test]
    fn an_empty_budget_at_the_start_is_not_taken_for_silence() {
        let dropped = [5, 40];
        let (r, _) = simulate_from(0.0, 60, &dropped, true, false);
        for port in 1..=60u16 {
            let want = if dropped.contains(&port) {
                PortState::OpenFiltered
            } else {
                PortState::Closed
            };
            assert_eq!(r[&port], want, "port {port}");
        }
        let (r, took) = simulate_from(0.0, 60, &dropped, true, true);
        assert!(r.values().all(|s| *s != PortState::OpenFiltered), "{r:?}");
        assert_eq!(r[&5], PortState::ClosedFiltered);
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    #[test]
    fn hosts_that_never_send_icmp_are_open_filtered_after_the_window() {
        // Every port dropped: no ICMP ever.
        let all: Vec<u16> = (1..=50).collect();
        let (r, took) = simulate(50, &all, true, false);
        assert!(r.values().all(|s| *s == PortState::OpenFiltered));
        assert!(
            took < SILENT_WINDOW + Duration::from_secs(2),
            "took {took:?}"
        );
    }

    /// Regression: with 32 source addresses each peer had a few ports;
    /// the target's global ICMP budget (shared by all sources) ran out for
    /// a moment, and a closed port of a peer that had answered its others
    /// was reported open|filtered at once. Silence in the fast stage must
    /// be re-probed first.
    #[test]
    fn fast_stage_silence_from_a_prompt_host_is_re_probed_before_it_is_believed() {
        let mut p = Pacer::new(false);
        let t0 = Instant::now();
        for port in 1..=10 {
            p.on_first_send(&key(port));
        }
        // 5 is filtered; 6 is closed but its error was lost to a momentary
        // empty bucket; the rest answered at once.
        for port in (1..=10).filter(|p| ![5, 6].contains(p)) {
            p.on_reply(&key(port), Reason::PortUnreach, t0);
        }
        let mut now = t0 + Duration::from_millis(20);
        assert!(p.on_expired(key(5), now).is_none());
        assert!(p.on_expired(key(6), now).is_none());
        let mut results = HashMap::new();
        let mut inflight: Vec<(Instant, ProbeKey)> = Vec::new();
        while !p.is_idle() {
            while let Some(k) = p.next_probe(now) {
                if k.port == 6 {
                    // The bucket has refilled: the closed port answers.
                    p.on_reply(&k, Reason::PortUnreach, now + Duration::from_millis(1));
                    results.insert(6, PortState::Closed);
                } else {
                    inflight.push((now + Duration::from_millis(50), k));
                }
            }
            inflight.retain(|&(due, k)| {
                if due > now {
                    return true;
                }
                if let Some(r) = p.on_expired(k, now) {
                    results.insert(k.port, r.state);
                }
                false
            });
            for r in p.poll(now) {
                results.insert(r.key.port, r.state);
            }
            now += Duration::from_millis(5);
            assert!(now < t0 + Duration::from_secs(10), "no decision");
        }
        assert_eq!(results[&6], PortState::Closed);
        assert_eq!(results[&5], PortState::OpenFiltered);
        // Two quick passes, not a long wait.
        assert!(now < t0 + Duration::from_secs(2), "{:?}", now - t0);
    }
}
