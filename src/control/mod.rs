//! Control: how fast probes go out, and how many tries a probe gets.
//!
//! Two independent policies live here, both pure (every decision takes
//! `now`; no clock, socket or thread):
//! - a congestion [`Controller`] behind a small trait, called by the scan
//!   engine at its hook points (a probe sent, a first-try reply, a try
//!   timed out, a loss proven by the answer to a retransmission). It says
//!   when the next probe may go. The default is [`adaptive::Adaptive`],
//!   documented in its module; a fixed rate is the same controller with
//!   equal floor and cap.
//! - the retry budget ([`retry`]): from the measured chance that a try to
//!   a responsive port draws no answer, how many tries make a wrong
//!   "filtered" unlikely across the whole scan.
//!
//! Invariants: the rate always stays within `[Limits::min, Limits::max]`;
//! controllers never see ports or hosts, only times and outcomes.

pub mod adaptive;
pub mod bucket;
pub mod retry;

use std::time::{Duration, Instant};

/// Bounds and temperament of the controller, set by the timing template
/// and by `--min-rate` / `--max-rate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Probes per second the controller never goes below (`--min-rate`).
    pub min: f64,
    /// Probes per second it never exceeds (`--max-rate`, or the template's cap).
    pub max: f64,
    /// Where the rate starts, before the path is measured.
    pub initial: f64,
    /// Growth per round trip once the path's capacity has been found
    /// (0.1 = 10 % per round trip): the template's aggressiveness.
    pub growth: f64,
}

impl Limits {
    /// A fixed rate: floor, cap and start all equal.
    pub fn fixed(pps: f64) -> Self {
        Limits {
            min: pps,
            max: pps,
            initial: pps,
            growth: 0.0,
        }
    }

    /// The same limits with the start clamped into `[min, max]`.
    pub fn normalized(mut self) -> Self {
        self.min = self.min.max(0.1);
        self.max = self.max.max(self.min);
        self.initial = self.initial.clamp(self.min, self.max);
        self
    }
}

/// The congestion controller's hook points. Times are the engine's `now`.
pub trait Controller: Send {
    /// Take permission to send one probe at `now`; false if the rate does
    /// not allow one yet.
    fn try_send(&mut self, now: Instant) -> bool;

    /// Give back a permission taken but not used.
    fn refund(&mut self);

    /// When a probe may go next (`now` or later).
    fn next_send(&self, now: Instant) -> Instant;

    /// A probe went out at `now`. `sample`: it is a first try whose
    /// answer (or silence) measures the path (TCP probes; UDP silence is
    /// too often the target's ICMP rate limit to mean anything here).
    /// Returns a token the caller hands back with the sample's fate.
    fn on_send(&mut self, now: Instant, sample: bool) -> u32;

    /// A sampled first try (`token` from `on_send`), sent at `sent`, was
    /// answered at `now`. `floor` is the smallest round trip seen from the
    /// same host: what is above it is queueing (or the host being slow),
    /// not distance.
    fn on_reply(&mut self, now: Instant, sent: Instant, token: u32, floor: Duration);

    /// Any answer (first try or retransmission) arrived at `now`: the
    /// path's delivery rate.
    fn on_arrival(&mut self, _now: Instant) {}

    /// A sampled first try (`token` from `on_send`) drew no answer within
    /// its timeout. Every sample ends in exactly one `on_reply` or
    /// `on_timeout` (unless the scan stops first).
    fn on_timeout(&mut self, _now: Instant, _token: u32) {}

    /// A retransmission was answered: an earlier try was lost (or late).
    fn on_loss(&mut self, _now: Instant) {}

    /// The engine's driver woke up `late` after the time it asked for:
    /// the scanner's own CPU is contended, and every round trip it
    /// measures carries that much delay that is not the path's.
    fn on_wake_delay(&mut self, _now: Instant, _late: Duration) {}

    /// The engine's smoothed round trip and its variation, for pacing
    /// the controller's decisions.
    fn on_rtt(&mut self, srtt: Duration, rttvar: Duration);

    /// The current rate in probes per second.
    fn rate(&self) -> f64;

    /// Times the controller backed off because the path showed congestion.
    fn congestion_events(&self) -> u64 {
        0
    }
}
