//! The default congestion controller: a paced rate that measures the path.
//!
//! A port scan is not a TCP flow: many probes legitimately draw no answer
//! (filtered ports), and random loss on a path is not congestion. What the
//! scan does have is a **stationary answer ratio**: the seeded permutation
//! spreads every host's open, closed and filtered ports evenly over time,
//! so the share of first tries that get an answer stays the same whatever
//! the rate, as long as the path delivers what is sent. Random loss lowers
//! that share by the same factor at every rate. A bottleneck lowers it
//! only when the rate exceeds it, and it adds queueing delay first.
//!
//! The algorithm:
//! - Time is cut into **epochs** of at least 5 ms and half a round trip,
//!   each at one target rate, holding at least 32 sampled first tries (TCP
//!   probes to hosts whose round trip is known; UDP silence is mostly the
//!   target's ICMP limit). An epoch is **judged** once the fate of each of
//!   its samples is known: answered, or its first try timed out (under its
//!   own host's timeout, so near and far hosts mix without confusion).
//! - Its **answer ratio** is compared with the **base ratio** (an envelope
//!   of the ratios of uncongested epochs: it rises quickly and sinks
//!   slowly). Its **queueing delay** is the mean, over its answered
//!   probes, of the round trip above the smallest one seen from the same
//!   host (so a far host is not mistaken for a queue).
//! - The epoch shows **congestion** when its ratio falls more than 10 %
//!   and more than three standard deviations below the base, or when its
//!   queueing delay exceeds `max(5 ms, floor / 2)` (a standing queue).
//! - The path's **delivery rate** is measured as BBR does: answers that
//!   arrived per second in each epoch, divided by the base ratio, the
//!   largest of the last few epochs. On congestion the rate drops to 90 %
//!   of the smaller of that and of what the epoch itself got through
//!   (`sent rate × ratio / base`); epochs sent before the drop are not
//!   judged.
//! - **Startup** doubles the rate for every uncongested epoch judged at the
//!   current rate (about once per round trip, as TCP's slow start). It
//!   ends at the first congestion, or as soon as queueing delay starts to
//!   rise (half the congestion threshold), as TCP's HyStart does.
//! - **Steady state** grows by the template's `growth` per feedback delay
//!   (an epoch plus a round trip) while epochs are uncongested: short probes for more bandwidth, undone by
//!   the next congested epoch.
//! - An epoch that sent well below its target rate (nothing to send, or a
//!   sender that cannot keep up) is **app-limited**: it never grows the rate.
//! - **The scanner's own CPU.** On a machine with more busy threads than
//!   cores, the scanner's threads wait to run: every round trip it
//!   measures then carries milliseconds of delay that no queue on the path
//!   caused (measured here: timer wake-ups 11-23 ms late with seven busy
//!   loops on two cores, 0.07 ms on a quiet machine). The driver reports
//!   how late each timed wake-up came (`on_wake_delay`); the controller
//!   keeps a decaying maximum of it (`jitter`, half-life 100 ms), raises
//!   the queueing threshold to at least twice that, and lets the token
//!   bucket hold that much sending so late wake-ups can catch up. Delay
//!   then says nothing while the CPU is contended; loss still does.
//! - Random loss leaves the ratio flat as the rate changes and adds no
//!   delay, so it never slows the scan; retries (see `retry`) pay for it.
//!
//! Invariants: pure; the rate stays within the limits; epochs are judged
//! in order, each once; an epoch whose samples never all resolve is judged
//! `STALE` after it ended, its unresolved samples counted unanswered.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::bucket::TokenBucket;
use super::{Controller, Limits};

const EPOCH_MIN: Duration = Duration::from_millis(5);
/// An epoch ends after this long even with few samples (then it is judged
/// only if it has `JUDGE_MIN`).
const EPOCH_MAX: Duration = Duration::from_millis(500);
const CLOSE_SAMPLES: u32 = 32;
const JUDGE_MIN: u32 = 16;
/// An epoch is judged this long after its end even if some of its
/// samples never resolved (a stopped scan, a lost callback).
const STALE: Duration = Duration::from_secs(3);
const QUEUE_MIN: Duration = Duration::from_millis(5);
/// Epochs whose delivery rate is remembered.
const DELIVERY_WINDOW: usize = 8;
/// Share of the target rate below which an epoch was app-limited.
const APP_LIMITED: f64 = 0.7;
/// Half-life of the remembered wake-up delay.
const JITTER_HALF_LIFE: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
struct Epoch {
    /// Sequence number (wrapping): the token of the samples sent in it.
    id: u32,
    start: Instant,
    end: Option<Instant>,
    rate: f64,
    /// Every probe sent in the epoch.
    sent: u32,
    /// Sampled first tries.
    samples: u32,
    answered: u32,
    /// Samples whose first try timed out.
    timed_out: u32,
    /// Answers (to any try) that arrived during the epoch.
    arrived: u32,
    /// Sum of queueing delays and of floors of the answered samples.
    queue_sum: Duration,
    floor_sum: Duration,
    /// The same for samples sent in the epoch's second half (a queue that
    /// is growing shows there first).
    late_sum: Duration,
    late_n: u32,
}

impl Epoch {
    fn new(id: u32, start: Instant, rate: f64) -> Self {
        Epoch {
            id,
            start,
            end: None,
            rate,
            sent: 0,
            samples: 0,
            answered: 0,
            timed_out: 0,
            arrived: 0,
            queue_sum: Duration::ZERO,
            floor_sum: Duration::ZERO,
            late_sum: Duration::ZERO,
            late_n: 0,
        }
    }
}

#[derive(Debug)]
pub struct Adaptive {
    limits: Limits,
    bucket: TokenBucket,
    startup: bool,
    epochs: VecDeque<Epoch>,
    srtt: Option<Duration>,
    rttvar: Duration,
    /// Round trip of the latest answered sample.
    latest_rtt: Duration,
    base: Option<f64>,
    /// Arrival rates (answers per second) of recently closed epochs.
    delivery: VecDeque<f64>,
    /// Epochs that started before this are not judged (sent at a rate
    /// already abandoned).
    hold_until: Option<Instant>,
    events: u64,
    /// The largest recent wake-up delay, and when it was last raised.
    jitter: Duration,
    jitter_at: Instant,
}

impl Adaptive {
    pub fn new(limits: Limits, now: Instant) -> Self {
        let limits = limits.normalized();
        Adaptive {
            limits,
            bucket: TokenBucket::new(limits.initial, now),
            startup: limits.min < limits.max,
            epochs: VecDeque::from([Epoch::new(0, now, limits.initial)]),
            srtt: None,
            rttvar: Duration::ZERO,
            latest_rtt: Duration::ZERO,
            base: None,
            delivery: VecDeque::new(),
            hold_until: None,
            events: 0,
            jitter: Duration::ZERO,
            jitter_at: now,
        }
    }

    /// The remembered wake-up delay at `now`, decayed.
    fn jitter(&self, now: Instant) -> Duration {
        let age = now.saturating_duration_since(self.jitter_at).as_secs_f64();
        let halvings = age / JITTER_HALF_LIFE.as_secs_f64();
        self.jitter.mul_f64(0.5f64.powf(halvings.min(64.0)))
    }

    fn fixed(&self) -> bool {
        self.limits.min >= self.limits.max
    }

    fn epoch_len(&self) -> Duration {
        self.srtt.map_or(EPOCH_MIN, |s| (s / 2).max(EPOCH_MIN))
    }

    /// A round trip and its variation: how long feedback takes.
    fn round_trip(&self) -> Duration {
        self.srtt
            .map_or(EPOCH_MIN, |s| s.max(self.latest_rtt) + 4 * self.rttvar)
    }

    /// The open epoch (there is always one at the back).
    fn current(&mut self, now: Instant) -> &mut Epoch {
        if self.epochs.back().is_none_or(|e| e.end.is_some()) {
            self.push(now);
        }
        self.epochs.back_mut().expect("an open epoch")
    }

    fn push(&mut self, now: Instant) {
        let id = self.epochs.back().map_or(0, |e| e.id.wrapping_add(1));
        let rate = self.bucket.rate();
        self.epochs.push_back(Epoch::new(id, now, rate));
    }

    /// Close the current epoch at `now` and open the next at the current rate.
    fn roll(&mut self, now: Instant) {
        if let Some(e) = self.epochs.back_mut()
            && e.end.is_none()
        {
            e.end = Some(now);
            let dur = now.saturating_duration_since(e.start).as_secs_f64();
            if dur >= EPOCH_MIN.as_secs_f64() / 2.0 && e.arrived > 0 {
                let arrival = f64::from(e.arrived) / dur;
                if self.delivery.len() == DELIVERY_WINDOW {
                    self.delivery.pop_front();
                }
                self.delivery.push_back(arrival);
            }
        }
        self.push(now);
    }

    fn set_rate(&mut self, rate: f64, now: Instant) {
        let rate = rate.clamp(self.limits.min, self.limits.max);
        if (rate - self.bucket.rate()).abs() > f64::EPSILON {
            self.bucket.set_rate(rate, now);
            self.roll(now);
        }
    }

    /// Roll the current epoch if it is long enough, and judge the epochs
    /// whose answers have all had time to arrive.
    fn tick(&mut self, now: Instant) {
        let len = self.epoch_len();
        let c = self.current(now);
        let age = now.saturating_duration_since(c.start);
        if (age >= len && c.samples >= CLOSE_SAMPLES) || age >= EPOCH_MAX {
            self.roll(now);
        }
        while let Some(front) = self.epochs.front() {
            let Some(end) = front.end else { break };
            let resolved = front.answered + front.timed_out >= front.samples;
            if !resolved && now < end + STALE {
                break;
            }
            let e = self.epochs.pop_front().expect("front exists");
            self.judge(&e, now);
        }
    }

    fn judge(&mut self, e: &Epoch, now: Instant) {
        if self.fixed() || e.samples < JUDGE_MIN {
            return;
        }
        if self.hold_until.is_some_and(|h| e.start < h) {
            return;
        }
        let Some(end) = e.end else { return };
        let dur = end
            .saturating_duration_since(e.start)
            .as_secs_f64()
            .max(1e-4);
        let actual = f64::from(e.sent) / dur;
        let ratio = f64::from(e.answered) / f64::from(e.samples);
        let Some(base) = self.base else {
            self.base = Some(ratio);
            self.grow(e, actual, now);
            return;
        };
        let sigma = (base * (1.0 - base) / f64::from(e.samples)).sqrt();
        let lossy = ratio < base - (3.0 * sigma).max(0.1 * base);
        let (queue, threshold) = if e.answered >= 8 {
            let n = e.answered;
            let threshold = QUEUE_MIN.max(e.floor_sum / n / 2).max(self.jitter(now) * 2);
            (e.queue_sum / n, threshold)
        } else {
            (Duration::ZERO, Duration::MAX)
        };
        let queued = queue > threshold;
        if lossy || queued {
            // What the path delivers: the measured delivery rate when
            // there is one, else what this epoch got through. One event
            // at most halves the rate.
            let through = match self.delivered(base) {
                Some(bw) => bw,
                None if lossy => actual * ratio / base.max(1e-9),
                None => actual * 0.8 / 0.9,
            };
            let rate = self.bucket.rate();
            let new = (through * 0.9).max(rate * 0.5).min(rate);
            self.startup = false;
            self.events += 1;
            self.set_rate(new, now);
            self.hold_until = Some(now);
            return;
        }
        if self.startup && e.late_n >= 4 {
            let late = e.late_sum / e.late_n;
            if late > (threshold / 2).max(Duration::from_millis(2)) {
                // Delay is starting to rise: the path is nearly full.
                self.startup = false;
            }
        }
        let w = if ratio > base { 0.25 } else { 0.05 };
        self.base = Some(base + w * (ratio - base));
        self.grow(e, actual, now);
    }

    /// The path's delivery rate in probes per second: the best recent
    /// arrival rate of answers over the share of probes that get one.
    fn delivered(&self, base: f64) -> Option<f64> {
        if base <= 0.01 {
            return None;
        }
        let best = self.delivery.iter().copied().fold(0.0, f64::max);
        (best > 0.0).then(|| best / base)
    }

    fn grow(&mut self, e: &Epoch, actual: f64, now: Instant) {
        let rate = self.bucket.rate();
        if actual < APP_LIMITED * e.rate {
            return;
        }
        let factor = if self.startup {
            // Doubling only on evidence about the current rate keeps the
            // overshoot to one doubling.
            if e.rate < rate * 0.99 {
                return;
            }
            2.0
        } else {
            // Growth in proportion to the time the epoch covers, `growth`
            // per feedback delay (an epoch plus the judging lag): the same
            // pace however the epochs are cut, and an overshoot is seen
            // before it compounds.
            let dur = e
                .end
                .map_or(Duration::ZERO, |end| end.saturating_duration_since(e.start));
            let feedback = self.epoch_len() + self.round_trip();
            let span = dur.as_secs_f64() / feedback.as_secs_f64();
            (1.0 + self.limits.growth).powf(span.min(4.0))
        };
        self.set_rate(rate * factor, now);
    }

    /// The epoch a sample's token names, if it is not judged yet.
    fn epoch_of(&mut self, token: u32) -> Option<&mut Epoch> {
        let front = self.epochs.front()?.id;
        let i = token.wrapping_sub(front) as usize;
        self.epochs.get_mut(i)
    }
}

impl Controller for Adaptive {
    fn try_send(&mut self, now: Instant) -> bool {
        self.bucket.try_take(now)
    }

    fn refund(&mut self) {
        self.bucket.refund();
    }

    fn next_send(&self, now: Instant) -> Instant {
        now + self.bucket.wait(now)
    }

    fn on_send(&mut self, now: Instant, sample: bool) -> u32 {
        self.tick(now);
        let c = self.current(now);
        c.sent += 1;
        if sample {
            c.samples += 1;
        }
        c.id
    }

    fn on_reply(&mut self, now: Instant, sent: Instant, token: u32, floor: Duration) {
        let rtt = now.saturating_duration_since(sent);
        self.latest_rtt = rtt;
        if let Some(e) = self.epoch_of(token) {
            let queue = rtt.saturating_sub(floor);
            e.answered += 1;
            e.queue_sum += queue;
            e.floor_sum += floor;
            if e.end
                .is_some_and(|end| sent >= e.start + (end - e.start) / 2)
            {
                e.late_sum += queue;
                e.late_n += 1;
            }
        }
        self.tick(now);
    }

    fn on_timeout(&mut self, now: Instant, token: u32) {
        if let Some(e) = self.epoch_of(token) {
            e.timed_out += 1;
        }
        self.tick(now);
    }

    fn on_arrival(&mut self, now: Instant) {
        self.tick(now);
        self.current(now).arrived += 1;
    }

    fn on_wake_delay(&mut self, now: Instant, late: Duration) {
        let j = self.jitter(now).max(late);
        self.jitter = j;
        self.jitter_at = now;
        self.bucket.set_burst_window(j * 2, now);
    }

    fn on_rtt(&mut self, srtt: Duration, rttvar: Duration) {
        self.srtt = Some(srtt);
        self.rttvar = rttvar;
    }

    fn rate(&self) -> f64 {
        self.bucket.rate()
    }

    fn congestion_events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            min: 100.0,
            max: 1e6,
            initial: 1000.0,
            growth: 0.1,
        }
    }

    /// Drive the controller against a path that answers a share `answer`
    /// of what it is sent, minus whatever exceeds `capacity` per second,
    /// after `rtt`. Returns the rate after `secs` simulated seconds.
    fn drive(answer: f64, capacity: f64, rtt: Duration, secs: f64) -> (Adaptive, f64) {
        let t0 = Instant::now();
        let mut c = Adaptive::new(limits(), t0);
        let step = Duration::from_micros(100);
        // (due, sent, answered, token)
        let mut pending: VecDeque<(Instant, Instant, bool, u32)> = VecDeque::new();
        let mut credit = 0.0;
        let mut acc = 0.0;
        let mut sent_total = 0u64;
        let mut now = t0;
        c.on_rtt(rtt, rtt / 10);
        while now < t0 + Duration::from_secs_f64(secs) {
            while let Some(&(due, sent, answered, token)) = pending.front() {
                if due > now {
                    break;
                }
                pending.pop_front();
                if answered {
                    c.on_arrival(due);
                    c.on_reply(due, sent, token, rtt);
                } else {
                    c.on_timeout(due, token);
                }
            }
            credit = (credit + capacity * step.as_secs_f64()).min(capacity * 0.002);
            while c.try_send(now) {
                let token = c.on_send(now, true);
                sent_total += 1;
                // Deterministic thinning: every probe adds `answer` to an
                // accumulator; a whole unit is one answer.
                acc += answer;
                let mut answered = false;
                if credit >= 1.0 {
                    credit -= 1.0;
                    if acc >= 1.0 {
                        acc -= 1.0;
                        answered = true;
                    }
                }
                // Timeouts come at 3 round trips; answers after one.
                let due = now + if answered { rtt } else { rtt * 3 };
                pending.push_back((due, now, answered, token));
            }
            // Keep the queue in time order (answers and timeouts interleave).
            pending.make_contiguous().sort_by_key(|p| p.0);
            now += step;
        }
        let avg = sent_total as f64 / secs;
        (c, avg)
    }

    #[test]
    fn startup_reaches_a_fast_path_quickly() {
        let (c, _) = drive(0.9, 1e9, Duration::from_millis(1), 0.2);
        assert!(c.rate() >= 200_000.0, "rate {}", c.rate());
        assert_eq!(c.congestion_events(), 0);
    }

    #[test]
    fn random_loss_is_not_congestion() {
        // 36 % of probes draw no answer at every rate.
        let (c, _) = drive(0.64, 1e9, Duration::from_millis(1), 0.2);
        assert!(c.rate() >= 200_000.0, "rate {}", c.rate());
        assert_eq!(c.congestion_events(), 0);
    }

    #[test]
    fn a_bottleneck_holds_the_rate_near_its_capacity() {
        let (c, avg) = drive(1.0, 5000.0, Duration::from_millis(2), 3.0);
        assert!(c.congestion_events() > 0);
        assert!(
            (3500.0..7500.0).contains(&avg),
            "average send rate {avg} for a 5000/s path"
        );
    }

    #[test]
    fn equal_floor_and_cap_is_a_fixed_rate() {
        let (c, avg) = {
            let t0 = Instant::now();
            let mut c = Adaptive::new(Limits::fixed(2000.0), t0);
            let mut n = 0u32;
            for i in 0..10_000u64 {
                let now = t0 + Duration::from_micros(i * 100);
                while c.try_send(now) {
                    c.on_send(now, true);
                    n += 1;
                }
            }
            (c, f64::from(n))
        };
        assert_eq!(c.rate(), 2000.0);
        assert!((1990.0..=2011.0).contains(&avg), "{avg}");
    }
}
