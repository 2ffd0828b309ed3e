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
//! 4. A peer that has sent no ICMP at all (its replies, if any, are all
//!    UDP) may be throttled from the start (a budget another scan spent)
//!    or send none. Its bucket holds a token `TOKEN_WAIT` after our first
//!    probe to it at the latest (Linux refills one a second), and a probe
//!    to a port that is not closed spends none. So once that time has
//!    passed, one *proof pass* sends every key it holds, without waiting
//!    for tokens: if no ICMP error comes back, each of them was probed
//!    while a token was there, and none is closed: they are open|filtered
//!    with no window of silence to wait out. Any ICMP error voids the
//!    proof, and the peer is paced as in 1-3. The proof needs the target
//!    to be probed from one source only (with `-S`, other peers may spend
//!    its global budget meanwhile) and at most `PROOF_MAX` held keys;
//!    otherwise the peer is probed for `SILENT_WINDOW` before its silence
//!    is believed.
//!
//! Keys the pacer holds between tries (slow queue, grace) can still be
//! decided by a late reply to an earlier try: `release` hands them back.
//! No key is called open|filtered sooner than `GRACE` after it came to the
//! pacer (its last fast try expired), so a server that answers a second
//! late (freeradius's `reject_delay`) is not missed.
//!
//! With `--defeat-icmp-ratelimit`, unanswered keys are reported
//! closed|filtered after the fast stage instead, as nmap does.
//!
//! Invariants: pure (every method takes `now`); it decides only keys the
//! engine hands it; each key handed in comes out exactly once, as a
//! result, through `release`, or through `undecided`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
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
/// A peer that sent us no ICMP error since our first probe to it has a
/// token in its ICMP bucket this long after that probe (Linux: one per
/// `icmp_ratelimit`, 1000 ms by default; the rest absorbs its jiffies).
const TOKEN_WAIT: Duration = Duration::from_millis(1250);
/// Most keys a silent peer may hold for a proof pass.
const PROOF_MAX: usize = 256;
/// How long a key whose tries ran out waits, at least, for a late reply
/// before it is open|filtered.
const GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Host {
    sent: u32,
    answered: u32,
    icmp: u32,
    /// Our first UDP probe to the peer.
    first_send: Option<Instant>,
    slow: Option<Slow>,
}

impl Host {
    /// A token must be in the bucket of this peer, which has sent no ICMP
    /// error at all.
    fn token_due(&self, now: Instant) -> bool {
        self.icmp == 0 && self.first_send.is_some_and(|f| now >= f + TOKEN_WAIT)
    }
}

/// The slow stage of one throttled host. It models the host's ICMP token
/// bucket (one token per `interval`, assumed burst of one): a probe goes
/// when a token should be there, and a probe that draws no answer gives
/// its token back (it went to a silent port and spent nothing).
#[derive(Debug)]
struct Slow {
    queue: VecDeque<ProbeKey>,
    /// Keys with a slow probe out; true for a proof probe.
    inflight: HashMap<ProbeKey, bool>,
    unanswered: Vec<ProbeKey>,
    /// Keys whose proof probe drew no answer (the peer is still silent).
    proven: Vec<ProbeKey>,
    /// Keys in `queue`, `unanswered` or `proven`: not in flight, and still
    /// open to a late reply.
    held: HashSet<ProbeKey>,
    /// When each key of the stage came to the pacer.
    entered: HashMap<ProbeKey, Instant>,
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
            inflight: HashMap::new(),
            unanswered: Vec::new(),
            proven: Vec::new(),
            held: HashSet::new(),
            entered: HashMap::new(),
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

    fn is_empty(&self) -> bool {
        self.pass_done() && self.unanswered.is_empty() && self.proven.is_empty()
    }

    /// Keys held, or in flight.
    fn holds(&self) -> usize {
        self.held.len() + self.inflight.len()
    }

    fn enqueue(&mut self, key: ProbeKey, now: Instant) {
        self.entered.entry(key).or_insert(now);
        self.held.insert(key);
        self.queue.push_back(key);
    }

    /// Put the unanswered keys back in the queue.
    fn requeue(&mut self) {
        let v: Vec<ProbeKey> = self.unanswered.drain(..).collect();
        self.queue.extend(v);
    }

    /// Every held key, decided, with the time it came to the pacer: the
    /// stage keeps only what is in flight.
    fn drain_held(&mut self, now: Instant) -> Vec<(ProbeKey, Instant)> {
        self.held.clear();
        let mut v: Vec<ProbeKey> = self.queue.drain(..).collect();
        v.append(&mut self.unanswered);
        v.append(&mut self.proven);
        v.into_iter()
            .map(|k| (k, self.entered.remove(&k).unwrap_or(now)))
            .collect()
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
    /// Keys decided open|filtered but waiting out their grace, by deadline
    /// (lazily cleaned: `graced` says which are still held).
    grace: BinaryHeap<Reverse<(Instant, ProbeKey)>>,
    graced: HashSet<ProbeKey>,
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
            grace: BinaryHeap::new(),
            graced: HashSet::new(),
        }
    }

    fn peer(&self, key: &ProbeKey) -> (Option<IpAddr>, IpAddr) {
        (self.sources.pick(key), key.ip)
    }

    /// A UDP key was sent for the first time, at `now`.
    pub fn on_first_send(&mut self, key: &ProbeKey, now: Instant) {
        if key.proto == Proto::Udp {
            let peer = self.peer(key);
            let h = self.hosts.entry(peer).or_default();
            h.sent += 1;
            h.first_send.get_or_insert(now);
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
        if let Some(s) = h.slow.as_mut() {
            s.entered.remove(key);
            // A proof probe's answer is no sample of the paced budget.
            if s.inflight.remove(key) == Some(false) {
                s.pass_answered += 1;
                s.answers.push(now);
            }
        }
    }

    /// A reply came for `key`, which is not in flight: if the pacer holds
    /// it (between slow passes, or in its grace), it lets go of it and the
    /// reply decides it. False: the key is not held (already decided).
    pub fn release(&mut self, key: &ProbeKey) -> bool {
        if key.proto != Proto::Udp {
            return false;
        }
        if self.graced.remove(key) {
            return true;
        }
        let peer = self.peer(key);
        let Some(s) = self.hosts.get_mut(&peer).and_then(|h| h.slow.as_mut()) else {
            return false;
        };
        if !s.held.remove(key) {
            return false;
        }
        s.entered.remove(key);
        s.queue.retain(|k| k != key);
        s.unanswered.retain(|k| k != key);
        s.proven.retain(|k| k != key);
        true
    }

    /// Is `key` a slow-stage probe in flight (sent once, never retried)?
    #[cfg(test)]
    fn is_slow(&self, key: &ProbeKey) -> bool {
        self.hosts
            .get(&self.peer(key))
            .and_then(|h| h.slow.as_ref())
            .is_some_and(|s| s.inflight.contains_key(key))
    }

    /// A UDP key ran out of attempts. Returns its result, or None when the
    /// pacer keeps it for a slow pass.
    pub fn on_expired(&mut self, key: ProbeKey, now: Instant) -> Option<PortResult> {
        let peer = self.peer(&key);
        let h = self.hosts.entry(peer).or_default();
        if let Some(s) = h.slow.as_mut()
            && let Some(proof) = s.inflight.remove(&key)
        {
            s.held.insert(key);
            if proof && h.icmp == 0 {
                s.proven.push(key);
            } else {
                s.unanswered.push(key);
            }
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
            .enqueue(key, now);
        None
    }

    /// A slow probe due at `now`, if any (the caller sends it once).
    pub fn next_probe(&mut self, now: Instant) -> Option<ProbeKey> {
        // Of the peers whose bucket has a token and whose target has not
        // had a slow probe within TARGET_GAP, the one that has waited
        // longest (so no peer is always last in a burst).
        let mut best: Option<((Option<IpAddr>, IpAddr), Instant, bool)> = None;
        // Targets probed from more than one source: their global ICMP
        // budget is shared, so a proof pass would prove nothing.
        let mut peers_of: HashMap<IpAddr, usize> = HashMap::new();
        for peer in self.hosts.keys() {
            *peers_of.entry(peer.1).or_default() += 1;
        }
        for (peer, h) in self.hosts.iter_mut() {
            let token_due = h.token_due(now);
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
            // A proof pass goes without waiting for tokens: silence spends
            // none.
            let proof = token_due && peers_of[&peer.1] == 1 && s.holds() <= PROOF_MAX;
            if !proof {
                s.refill(now);
                if s.tokens < 1.0 {
                    continue;
                }
            }
            if best.is_none_or(|(_, since, _)| s.tok_since < since) {
                best = Some((*peer, s.tok_since, proof));
            }
        }
        let (peer, _, proof) = best?;
        let s = self.hosts.get_mut(&peer)?.slow.as_mut()?;
        let k = s.queue.pop_front()?;
        s.held.remove(&k);
        self.last_to.insert(peer.1, now);
        if proof {
            s.tok_since = now;
            s.inflight.insert(k, true);
            return Some(k);
        }
        if s.pass_sent == 0 {
            s.pass_measured = s.interval.is_some();
            s.pass_pace = s.pace();
            s.pass_start = now;
            s.answers.clear();
        }
        s.tokens -= 1.0;
        s.tok_since = now;
        s.pass_sent += 1;
        s.inflight.insert(k, false);
        Some(k)
    }

    /// Close finished passes and graces; returns keys decided.
    pub fn poll(&mut self, now: Instant) -> Vec<PortResult> {
        let mut out = Vec::new();
        // Keys silence decides open|filtered, with when they came.
        let mut quiet: Vec<(ProbeKey, Instant)> = Vec::new();
        for h in self.hosts.values_mut() {
            let token_due = h.token_due(now);
            let Some(s) = h.slow.as_mut() else { continue };
            if h.icmp > 0 && !s.proven.is_empty() {
                // An ICMP error came: the proof is void; pace them.
                let v: Vec<ProbeKey> = s.proven.drain(..).collect();
                s.unanswered.extend(v);
            }
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
                let keys = s.drain_held(now);
                if state == PortState::OpenFiltered {
                    quiet.extend(keys);
                } else {
                    out.extend(keys.into_iter().map(|(k, _)| no_response(k, state)));
                }
                if s.inflight.is_empty() {
                    h.slow = None;
                }
                continue;
            }
            if h.icmp == 0 && s.pass_done() && !s.proven.is_empty() {
                if s.unanswered.is_empty() {
                    // The proof: every held key was probed with a token in
                    // the bucket, and no ICMP error came back.
                    quiet.extend(s.drain_held(now));
                    h.slow = None;
                    continue;
                }
                if token_due {
                    // Keys last probed before a token was due: prove them
                    // too.
                    s.requeue();
                    continue;
                }
            }
            if !s.pass_done() {
                continue;
            }
            if s.pass_sent == 0 {
                // Only proof probes went out (and the proof was void), or
                // none: pace what is left.
                s.requeue();
                s.pass_answered = 0;
                if s.is_empty() {
                    h.slow = None;
                }
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
                quiet.extend(s.drain_held(now));
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
            s.requeue();
            s.pass_sent = 0;
            s.pass_answered = 0;
            if s.is_empty() {
                h.slow = None;
            }
        }
        // Silence decides a key only once its grace is over.
        for (k, entered) in quiet {
            if now >= entered + GRACE {
                out.push(no_response(k, PortState::OpenFiltered));
            } else {
                self.graced.insert(k);
                self.grace.push(Reverse((entered + GRACE, k)));
            }
        }
        while let Some(&Reverse((due, key))) = self.grace.peek() {
            if due > now {
                break;
            }
            self.grace.pop();
            if self.graced.remove(&key) {
                out.push(no_response(key, PortState::OpenFiltered));
            }
        }
        out
    }

    /// When the pacer next needs a call: a slow probe due, a proof pass
    /// that may start, or a grace that ends.
    pub fn next_wake(&self) -> Option<Instant> {
        let slow = self
            .hosts
            .iter()
            .filter_map(|(peer, h)| Some((peer, h, h.slow.as_ref()?)))
            .filter(|(_, _, s)| !s.queue.is_empty())
            .map(|(peer, h, s)| {
                let mut token = s.tok_time + s.pace().mul_f64((1.0 - s.tokens).max(0.0));
                if let Some(h) = s.hold_until {
                    token = token.max(h);
                }
                if h.icmp == 0
                    && let Some(f) = h.first_send
                {
                    token = token.min(f + TOKEN_WAIT);
                }
                match self.last_to.get(&peer.1) {
                    Some(t) => token.max(*t + TARGET_GAP),
                    None => token,
                }
            });
        slow.chain(self.grace.peek().map(|Reverse((t, _))| *t))
            .min()
    }

    /// No key is held.
    pub fn is_idle(&self) -> bool {
        self.graced.is_empty() && self.hosts.values().all(|h| h.slow.is_none())
    }

    /// Keys still held (for an interrupted scan).
    pub fn undecided(&self) -> Vec<ProbeKey> {
        let mut v: Vec<ProbeKey> = self.graced.iter().copied().collect();
        for s in self.hosts.values().filter_map(|h| h.slow.as_ref()) {
            v.extend(s.held.iter().copied());
            v.extend(s.inflight.keys().copied());
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
            p.on_first_send(&key(port), now);
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
            p.on_first_send(&key(port), t0);
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

    /// Issue 13 §2: a key held between tries is decided by a late reply to
    /// an earlier try (freeradius answers a second late), and silence never
    /// decides a key sooner than `GRACE` after it came to the pacer.
    #[test]
    fn a_late_reply_decides_a_held_key_and_silence_waits_out_the_grace() {
        let mut p = Pacer::new(false);
        let t0 = Instant::now();
        for port in 1..=15 {
            p.on_first_send(&key(port), t0);
        }
        for port in 3..=15 {
            p.on_reply(&key(port), Reason::UdpResponse, t0);
        }
        let now = t0 + Duration::from_millis(100);
        assert!(p.on_expired(key(1), now).is_none());
        assert!(p.on_expired(key(2), now).is_none());
        // The answer to port 2's first try comes a second late.
        assert!(p.release(&key(2)));
        p.on_reply(&key(2), Reason::UdpResponse, t0 + Duration::from_secs(1));
        assert!(!p.release(&key(2)), "released once");
        assert!(!p.release(&key(3)), "never held");
        let (decided, took) = drive(&mut p, now, |_, _| false);
        assert_eq!(decided, vec![(1, PortState::OpenFiltered)]);
        assert!(took >= Duration::from_millis(100) + GRACE, "{took:?}");
        assert!(p.is_idle() && p.undecided().is_empty());
    }

    /// Run the slow stage from `now` with 100 ms timeouts; `answers(port,
    /// at)` says whether a slow probe draws an ICMP error. Returns the decided
    /// (port, state) sorted, and when the last decision came after `t0`
    /// (the time of the first send, `now` less 100 ms).
    fn drive(
        p: &mut Pacer,
        mut now: Instant,
        mut answers: impl FnMut(u16, Instant) -> bool,
    ) -> (Vec<(u16, PortState)>, Duration) {
        let t0 = now - Duration::from_millis(100);
        let timeout = Duration::from_millis(100);
        let mut decided = Vec::new();
        let mut inflight: Vec<(Instant, ProbeKey)> = Vec::new();
        while !p.is_idle() {
            while let Some(k) = p.next_probe(now) {
                if answers(k.port, now) {
                    p.on_reply(&k, Reason::PortUnreach, now);
                    decided.push((k.port, PortState::Closed));
                } else {
                    inflight.push((now + timeout, k));
                }
            }
            inflight.retain(|&(due, k)| {
                if due > now {
                    return true;
                }
                assert!(p.on_expired(k, now).is_none());
                false
            });
            decided.extend(p.poll(now).iter().map(|r| (r.key.port, r.state)));
            now += Duration::from_millis(5);
            assert!(now < t0 + Duration::from_secs(60), "no decision");
        }
        decided.sort();
        (decided, now - t0)
    }

    /// Issue 13 §3: a host whose replies are all UDP (no closed port among
    /// those scanned) is decided by one proof pass once a token must be in
    /// its bucket, not after a window of silence.
    #[test]
    fn a_host_with_only_udp_replies_is_decided_by_a_proof_pass() {
        let mut p = Pacer::new(false);
        let t0 = Instant::now();
        for port in 1..=15 {
            p.on_first_send(&key(port), t0);
        }
        for port in 3..=15 {
            p.on_reply(&key(port), Reason::UdpResponse, t0);
        }
        let now = t0 + Duration::from_millis(100);
        assert!(p.on_expired(key(1), now).is_none());
        assert!(p.on_expired(key(2), now).is_none());
        let (decided, took) = drive(&mut p, now, |_, _| false);
        assert_eq!(
            decided,
            [(1, PortState::OpenFiltered), (2, PortState::OpenFiltered)]
        );
        assert!(took < TOKEN_WAIT + Duration::from_millis(200), "{took:?}");
        assert!(took < SILENT_WINDOW, "{took:?}");
    }

    /// An ICMP error during the proof pass voids it: the other silent
    /// ports are paced afterwards, not decided by the proof (one of them
    /// is closed too: its error was throttled in the same pass).
    #[test]
    fn an_icmp_error_voids_the_proof() {
        let mut p = Pacer::new(false);
        let t0 = Instant::now();
        for port in 1..=15 {
            p.on_first_send(&key(port), t0);
        }
        for port in 5..=15 {
            p.on_reply(&key(port), Reason::UdpResponse, t0);
        }
        // The fast stage ended with 1-4 unanswered, and no probe was due
        // before the proof pass (a budget empty since before the scan).
        let mut now = t0 + TOKEN_WAIT;
        for port in 1..=4 {
            assert!(p.on_expired(key(port), t0 + TOKEN_WAIT).is_none());
        }
        let mut batch = Vec::new();
        while let Some(k) = p.next_probe(now) {
            batch.push(k.port);
            now += TARGET_GAP;
        }
        assert_eq!(batch, [1, 2, 3, 4], "one proof pass, back to back");
        // 2 and 3 are closed; the bucket had one token: 2 answers.
        p.on_reply(&key(2), Reason::PortUnreach, now);
        now += Duration::from_millis(100);
        for port in [1, 3, 4] {
            assert!(p.on_expired(key(port), now).is_none());
        }
        assert!(p.poll(now).is_empty(), "the proof is void");
        // From here the bucket refills once a second: paced probes find 3.
        let mut next_token = now + Duration::from_secs(1);
        let (decided, _) = drive(&mut p, now, |port, at| {
            if port == 3 && at >= next_token {
                next_token = at + Duration::from_secs(1);
                return true;
            }
            false
        });
        assert_eq!(
            decided,
            [
                (1, PortState::OpenFiltered),
                (3, PortState::Closed),
                (4, PortState::OpenFiltered)
            ]
        );
    }

    /// The proof must not be fooled by an ICMP budget that was empty at the
    /// start: mostly dropped ports, a few closed ones, no token for the
    /// first second. Whatever the proof pass sees, every state is exact.
    #[test]
    fn a_silent_start_with_few_closed_ports_is_still_exact() {
        let closed = [3u16, 17, 29, 41, 58];
        let dropped: Vec<u16> = (1..=60).filter(|p| !closed.contains(p)).collect();
        for start in [0.0, 0.3, 0.9] {
            let (r, _) = simulate_from(start, 60, &dropped, true, false);
            for port in 1..=60u16 {
                let want = if closed.contains(&port) {
                    PortState::Closed
                } else {
                    PortState::OpenFiltered
                };
                assert_eq!(r[&port], want, "port {port}, start tokens {start}");
            }
        }
    }
}
