//! The scan: a sans-I/O state machine that decides every (host, port) of
//! a plan. It owns the plan's order, the probe table, per-host timing, the
//! UDP ICMP pacer and the congestion controller, and holds no clock,
//! thread, channel or socket: drivers (`engine::run`, the simulator in the
//! tests) call it with the time.
//!
//! - `poll_probe(now)`: the next probe to send, if the controller and the
//!   in-flight bound allow one. Priority: a paced UDP re-probe, a retry, a
//!   key carried over from an interrupted run, then the next new key in
//!   permutation order. A key enters the table when it is handed out.
//! - `handle_reply(now, reply)`: a validated reply; only a key still in
//!   the table is decided (duplicates and late replies change nothing).
//! - `handle_timeout(now)`: tries past their deadline are retried while
//!   the host's retry budget allows, else decided (TCP filtered; UDP goes
//!   to the pacer, which tells open|filtered from ICMP rate limiting).
//! - `poll_result()`: decided results, in the order they were decided.
//! - `next_wakeup()`: when the scan next needs a call.
//! - `handle_wake_delay(now, late)`: the driver's timed wake-up came
//!   `late` after the time it asked for (the scanner's CPU is contended);
//!   the controller discounts that much delay from what it reads as
//!   queueing.
//!
//! Invariants: every key of the plan is decided exactly once, unless the
//! scan is stopped, in which case `undecided()` hands back every key sent
//! and not decided; together with `next_index()` that is all a resume
//! needs. Nothing here prints, sleeps or reads a clock.

pub mod hosts;
pub mod pacing;
pub mod sources;
pub mod table;

#[cfg(test)]
mod sim;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::control::adaptive::Adaptive;
use crate::control::retry::Budget;
use crate::control::{Controller, Limits};
use crate::plan::Plan;
use crate::probe::{PortResult, PortState, ProbeKey, Reason, TRY_PORTS};
use crate::probes::{self, Silence};
use crate::validate::Reply;

use hosts::{Hosts, Timing};
use pacing::Pacer;
use sources::Sources;
use table::{Entry, Table};

/// The try (of `latest + 1` so far) that an answer naming try `m` modulo
/// `TRY_PORTS` answers: the latest such try.
fn answered_try(latest: u8, m: u8) -> Option<u8> {
    let n = TRY_PORTS as u8;
    let m = m % n;
    if latest < m {
        return None;
    }
    Some(latest - (latest - m) % n)
}

/// How the scan paces itself and decides silence.
#[derive(Clone, Debug)]
pub struct Settings {
    pub timing: Timing,
    pub budget: Budget,
    pub limits: Limits,
    /// Report UDP ports still unanswered after the fast stage as
    /// closed|filtered instead of pacing to the ICMP rate limit.
    pub defeat_icmp_ratelimit: bool,
    /// Most keys in flight at once (connect backends: file descriptors;
    /// raw backends: a memory bound).
    pub max_inflight: usize,
    /// The scanner's source addresses (`-S`); empty: the kernel chooses.
    pub sources: Sources,
    /// A host that has not answered gets the scan-wide timeout once there
    /// is one, not the initial timeout (host discovery: most addresses of
    /// a sweep never answer, and nmap times them by the group's round
    /// trips too).
    pub group_timing: bool,
    /// Round trips already measured per host (host discovery's, handed to
    /// the port scan that follows it, as nmap does).
    pub known_rtts: Vec<(IpAddr, Duration)>,
}

/// One transmission for a driver to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub key: ProbeKey,
    /// How long the scan will wait for this try (connect backends close
    /// the socket then).
    pub timeout: Duration,
    /// The address to send from (`-S`); None: the kernel's choice for the
    /// route to the target.
    pub src: Option<IpAddr>,
    /// Which try this is (0 = the first).
    pub attempt: u8,
}

/// Per-host facts for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// Smallest first-try round trip seen from this host.
    pub latency: Option<Duration>,
    /// Host discovery: what proved the host up (None: a port scan's
    /// answers did, or discovery was skipped).
    pub reason: Option<Reason>,
    /// The TTL or hop limit of that proof, if it had one.
    pub ttl: Option<u8>,
    /// The hardware address it answered ARP or Neighbour Discovery from.
    pub mac: Option<crate::wire::ethernet::EthernetAddress>,
}

/// Live numbers for progress displays and summaries.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub decided: u64,
    pub total: u64,
    pub open: u64,
    /// Probes handed to the driver (first tries and retries).
    pub probes: u64,
    pub retries: u64,
    /// The controller's rate now, probes per second.
    pub rate: f64,
    pub congestion_events: u64,
    /// Measured share of tries to responsive ports that drew no answer.
    pub loss: f64,
}

pub struct Scan {
    plan: Plan,
    settings: Settings,
    total: u64,
    next_index: u64,
    carry: VecDeque<ProbeKey>,
    retries: VecDeque<ProbeKey>,
    table: Table,
    hosts: Hosts,
    pacer: Pacer,
    ctl: Box<dyn Controller>,
    results: VecDeque<PortResult>,
    sending: bool,
    /// The latest `now` seen (for `next_wakeup`).
    now: Instant,
    stats: Stats,
    due: Vec<(ProbeKey, Entry)>,
}

impl Scan {
    pub fn new(plan: Plan, settings: Settings, now: Instant) -> Self {
        let ctl = Box::new(Adaptive::new(settings.limits, now));
        Scan::with_controller(plan, settings, ctl, now)
    }

    /// A scan with another congestion controller.
    pub fn with_controller(
        plan: Plan,
        settings: Settings,
        ctl: Box<dyn Controller>,
        now: Instant,
    ) -> Self {
        let total = plan.len();
        Scan {
            total,
            next_index: plan.start.min(total),
            carry: plan.carry.iter().copied().collect(),
            retries: VecDeque::new(),
            table: Table::new(),
            hosts: {
                let mut h = Hosts::new(settings.timing).group_timing(settings.group_timing);
                for (ip, rtt) in &settings.known_rtts {
                    h.answered(*ip, Some(*rtt), None);
                }
                h
            },
            pacer: Pacer::with_sources(settings.defeat_icmp_ratelimit, settings.sources.clone()),
            ctl,
            results: VecDeque::new(),
            sending: true,
            now,
            stats: Stats {
                total,
                ..Stats::default()
            },
            due: Vec::new(),
            plan,
            settings,
        }
    }

    fn timeout(&self, ip: &IpAddr) -> Duration {
        self.hosts.timeout(ip)
    }

    /// Tries a probe to `ip` gets under the budget, now.
    fn tries(&self, ip: &IpAddr) -> u32 {
        self.hosts
            .tries(ip, &self.settings.budget, self.total.max(1))
    }

    /// How long to wait for try number `attempt` (0-based) to `ip`: the
    /// full timeout for a last try, the retransmission timeout otherwise.
    fn wait(&self, ip: &IpAddr, attempt: u32) -> Duration {
        let timeout = self.timeout(ip);
        if attempt + 1 >= self.tries(ip) {
            timeout
        } else {
            self.hosts.rto(ip).min(timeout)
        }
    }

    /// The next probe to send at `now`, if any may go.
    pub fn poll_probe(&mut self, now: Instant) -> Option<Probe> {
        self.now = self.now.max(now);
        if !self.sending || self.table.inflight() >= self.settings.max_inflight {
            return None;
        }
        // Paced UDP re-probes follow the target's ICMP budget, not the
        // path's: they are few and slow, and skip the controller.
        if let Some(key) = self.pacer.next_probe(now) {
            let timeout = self.timeout(&key.ip);
            self.table.sent_once(key, now, timeout);
            self.ctl.on_send(now, false);
            return Some(self.handed(key, timeout, true));
        }
        if !self.has_work() || !self.ctl.try_send(now) {
            return None;
        }
        while let Some(key) = self.retries.pop_front() {
            // A retry resolved while it waited is dropped here.
            if self.table.is_waiting(&key) {
                let attempt = self.table.attempt(&key).map_or(0, |a| u32::from(a) + 1);
                let timeout = self.wait(&key.ip, attempt);
                self.table.sent(key, now, timeout);
                self.ctl.on_send(now, false);
                return Some(self.handed(key, timeout, true));
            }
        }
        let next = if self.table.len() >= self.settings.max_inflight {
            None
        } else {
            self.next_new()
        };
        let Some(key) = next else {
            self.ctl.refund();
            return None;
        };
        self.pacer.on_first_send(&key, now);
        let timeout = self.wait(&key.ip, 0);
        // TCP first tries to measured hosts sample the path (an unmeasured
        // host's first tries wait out the initial timeout: too slow to
        // steer by).
        let sampled =
            probes::module(key.proto).measures_path() && self.hosts.floor(&key.ip).is_some();
        let token = self.ctl.on_send(now, sampled);
        if sampled {
            self.table.sent_sampled(key, now, timeout, token);
        } else {
            self.table.sent(key, now, timeout);
        }
        Some(self.handed(key, timeout, false))
    }

    fn handed(&mut self, key: ProbeKey, timeout: Duration, retry: bool) -> Probe {
        self.stats.probes += 1;
        if retry {
            self.stats.retries += 1;
        }
        Probe {
            key,
            timeout,
            src: self.settings.sources.pick(&key),
            attempt: self.table.attempt(&key).unwrap_or(0),
        }
    }

    fn next_new(&mut self) -> Option<ProbeKey> {
        if let Some(k) = self.carry.pop_front() {
            return Some(k);
        }
        while self.next_index < self.total {
            self.next_index += 1;
            if let Some(k) = self.plan.key(self.next_index - 1) {
                return Some(k);
            }
        }
        None
    }

    /// Is there a retry, carried or new key that could go now?
    fn has_work(&self) -> bool {
        !self.retries.is_empty()
            || (self.table.len() < self.settings.max_inflight
                && (!self.carry.is_empty() || self.next_index < self.total))
    }

    /// Apply a validated reply received at `now`.
    pub fn handle_reply(&mut self, now: Instant, reply: Reply) {
        self.now = self.now.max(now);
        let Some(entry) = self.table.resolve(&reply.key) else {
            // A late reply for a UDP key the pacer holds between tries
            // decides it; anything else is a duplicate, or late for a
            // decided key.
            if self.pacer.release(&reply.key) {
                self.hosts.answered(reply.key.ip, None, None);
                self.pacer.on_reply(&reply.key, reply.reason, now);
                self.emit(PortResult {
                    key: reply.key,
                    state: reply.state,
                    reason: reply.reason,
                    ttl: reply.ttl,
                });
            }
            return;
        };
        let key = reply.key;
        let first = entry.attempt == 0 && !entry.once;
        // Which try was answered: the latest, unless the answer names an
        // earlier one (TCP tries leave from their own ports). Karn's rule:
        // a round trip only when the answered try is known and is the
        // latest or the first.
        let answered = match reply.attempt {
            Some(m) => answered_try(entry.attempt, m),
            None if first => Some(0),
            None => None,
        };
        let rtt = match answered {
            _ if entry.once => None,
            Some(a) if a == entry.attempt => Some(now.saturating_duration_since(entry.sent)),
            Some(0) => Some(now.saturating_duration_since(entry.first_sent)),
            _ => None,
        };
        // Answers through the target's ICMP rate limit say nothing about
        // loss on the path; an answer to an earlier try that came late is
        // a slow answer, not a loss.
        let shows_loss = probes::module(key.proto).shows_loss(reply.reason);
        // When the answered try is unknown (UDP) and there were retries,
        // the answer may be a slow one to an earlier try (freeradius waits
        // a second): it says nothing either way.
        let loss = (!entry.once && shows_loss).then_some(answered).flatten();
        let unknown = self.hosts.rtt().srtt().is_none();
        self.hosts.answered(key.ip, rtt, loss);
        if unknown && self.hosts.rtt().srtt().is_some() {
            // The first round trip: tries sent under the initial timeout
            // need not wait it out.
            let hosts = &self.hosts;
            self.table.rearm(|k, e| e.sent + hosts.rto(&k.ip));
        }
        let global = self.hosts.rtt();
        if let Some(srtt) = global.srtt() {
            self.ctl.on_rtt(srtt, global.rttvar());
        }
        if entry.attempt > 0 {
            self.ctl.on_loss(now);
        }
        self.ctl.on_arrival(now);
        if let Some(token) = entry.sample.filter(|_| first) {
            let floor = self.hosts.floor(&key.ip).unwrap_or_default();
            self.ctl.on_reply(now, entry.sent, token, floor);
        }
        self.pacer.on_reply(&key, reply.reason, now);
        self.emit(PortResult {
            key,
            state: reply.state,
            reason: reply.reason,
            ttl: reply.ttl,
        });
    }

    /// The driver asked to wake at some time and woke at `now`, `late`
    /// after it.
    pub fn handle_wake_delay(&mut self, now: Instant, late: Duration) {
        self.now = self.now.max(now);
        self.ctl.on_wake_delay(now, late);
    }

    /// Retry or decide the tries whose deadline has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let mut due = std::mem::take(&mut self.due);
        self.table.due(now, &mut due);
        for (key, entry) in due.drain(..) {
            if let Some(token) = entry.sample.filter(|_| entry.attempt == 0) {
                self.ctl.on_timeout(now, token);
            }
            let tries = if entry.once { 0 } else { self.tries(&key.ip) };
            if u32::from(entry.attempt) + 1 < tries {
                self.retries.push_back(key);
                continue;
            }
            // The last try: it was sent with a retransmission timeout if
            // the budget shrank since; wait out the full timeout.
            let give_up = entry.sent + self.timeout(&key.ip);
            if !entry.once && now < give_up {
                self.table.extend(&key, give_up);
                continue;
            }
            self.table.remove(&key);
            match probes::module(key.proto).silence() {
                Silence::Means(state) => self.emit(PortResult {
                    key,
                    state,
                    reason: Reason::NoResponse,
                    ttl: None,
                }),
                Silence::Paced => {
                    if let Some(r) = self.pacer.on_expired(key, now) {
                        self.emit(r);
                    }
                }
            }
        }
        self.due = due;
        for r in self.pacer.poll(now) {
            self.emit(r);
        }
    }

    fn emit(&mut self, r: PortResult) {
        self.stats.decided += 1;
        if r.state == PortState::Open {
            self.stats.open += 1;
        }
        self.results.push_back(r);
    }

    /// The next decided result.
    pub fn poll_result(&mut self) -> Option<PortResult> {
        self.results.pop_front()
    }

    /// When the scan next wants to be called: a deadline, a paced
    /// re-probe, or the controller's next send when there is work.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let mut wake = self.table.next_deadline();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        if self.sending {
            consider(self.pacer.next_wake());
            if self.has_work() && self.table.inflight() < self.settings.max_inflight {
                consider(Some(self.ctl.next_send(self.now)));
            }
        }
        wake
    }

    /// Stop handing out probes (an interrupt): replies and timeouts are
    /// still applied while the driver drains.
    pub fn stop_sending(&mut self) {
        self.sending = false;
    }

    /// Every key is decided.
    pub fn is_finished(&self) -> bool {
        self.retries.is_empty()
            && self.carry.is_empty()
            && self.next_index >= self.total
            && self.table.is_empty()
            && self.pacer.is_idle()
            && self.results.is_empty()
    }

    /// Keys sent (or carried) and not decided, sorted.
    pub fn undecided(&self) -> Vec<ProbeKey> {
        let mut v: Vec<ProbeKey> = self.carry.iter().copied().collect();
        v.extend(self.table.keys());
        v.extend(self.pacer.undecided());
        v.sort();
        v.dedup();
        v
    }

    /// Where the permutation stopped (== total when every key was handed out).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    pub fn stats(&self) -> Stats {
        Stats {
            rate: self.ctl.rate(),
            congestion_events: self.ctl.congestion_events(),
            loss: self.hosts.loss().share(),
            ..self.stats
        }
    }

    /// Hosts that answered, with their latency.
    pub fn hosts_up(&self) -> impl Iterator<Item = (IpAddr, HostInfo)> + '_ {
        self.hosts.iter().map(|(ip, h)| {
            (
                *ip,
                HostInfo {
                    latency: h.latency,
                    ..HostInfo::default()
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::answered_try;

    #[test]
    fn the_answered_try_is_the_latest_with_its_port() {
        assert_eq!(answered_try(0, 0), Some(0));
        assert_eq!(answered_try(3, 3), Some(3));
        assert_eq!(answered_try(3, 0), Some(0));
        assert_eq!(answered_try(3, 5), None, "try 5 was never sent");
        // Ports repeat every 16 tries: the latest one that used it.
        assert_eq!(answered_try(20, 2), Some(18));
        assert_eq!(answered_try(20, 4), Some(20));
    }
}
