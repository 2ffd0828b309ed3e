//! Token-bucket pacing for probe transmission.
//!
//! Invariants: pure; the caller passes `now`. Over any window the bucket
//! grants at most `rate * window + burst` tokens, where the burst is 5 ms
//! worth of the rate (at least one token), or more when the caller widens
//! the burst window (`set_burst_window`: a scanner whose own wake-ups come
//! late must be able to catch up, or it can never send at its rate). The
//! rate may change at any time; tokens already earned are kept (up to the
//! new burst).

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    /// Seconds of the rate a full bucket holds (at least `BURST`).
    window: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

/// How much sending a full bucket allows at once.
const BURST: f64 = 0.005;

impl TokenBucket {
    /// `rate` tokens per second (at least 0.1), starting with a full bucket.
    pub fn new(rate: f64, now: Instant) -> Self {
        let rate = rate.max(0.1);
        let burst = (rate * BURST).max(1.0);
        TokenBucket {
            rate,
            window: BURST,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Change the rate from `now` on.
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        self.rate = rate.max(0.1);
        self.burst = (self.rate * self.window).max(1.0);
        self.tokens = self.tokens.min(self.burst);
    }

    /// Let a full bucket hold `window` of the rate (never less than 5 ms).
    pub fn set_burst_window(&mut self, window: Duration, now: Instant) {
        self.refill(now);
        self.window = window.as_secs_f64().max(BURST);
        self.burst = (self.rate * self.window).max(1.0);
        self.tokens = self.tokens.min(self.burst);
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Take one token if one is available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Give back a token taken but not used.
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// How long after `now` until a token is available.
    pub fn wait(&self, now: Instant) -> Duration {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        let have = (self.tokens + dt * self.rate).min(self.burst);
        if have >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - have) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_rate_per_second_plus_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, t0);
        let mut granted = 0;
        // Ask every 100 µs for one simulated second.
        for i in 0..=10_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            while b.try_take(now) {
                granted += 1;
            }
        }
        assert!((1000..=1006).contains(&granted), "granted {granted}");
    }

    /// A sender that can only wake every 20 ms gets its rate with a
    /// 40 ms burst window, and about a quarter of it with the default 5 ms.
    #[test]
    fn a_wider_burst_window_lets_late_wake_ups_catch_up() {
        let granted = |window: Option<Duration>| {
            let t0 = Instant::now();
            let mut b = TokenBucket::new(1000.0, t0);
            if let Some(w) = window {
                b.set_burst_window(w, t0);
            }
            let mut n = 0;
            for i in 1..=50u64 {
                let now = t0 + Duration::from_millis(i * 20);
                while b.try_take(now) {
                    n += 1;
                }
            }
            n
        };
        let narrow = granted(None);
        let wide = granted(Some(Duration::from_millis(40)));
        assert!((250..=260).contains(&narrow), "{narrow}");
        assert!((995..=1040).contains(&wide), "{wide}");
        // Never below the default window.
        assert_eq!(granted(Some(Duration::from_millis(1))), narrow);
    }

    #[test]
    fn wait_says_when_the_next_token_comes() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        let w = b.wait(t0);
        assert!(
            w > Duration::from_millis(90) && w <= Duration::from_millis(100),
            "{w:?}"
        );
        assert!(b.try_take(t0 + w));
    }

    #[test]
    fn a_new_rate_applies_from_now_on() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, t0);
        while b.try_take(t0) {}
        b.set_rate(100_000.0, t0);
        let mut granted = 0;
        let now = t0 + Duration::from_millis(10);
        for i in 0..=100u64 {
            let t = t0 + Duration::from_micros(i * 100);
            while b.try_take(t.min(now)) {
                granted += 1;
            }
        }
        // 10 ms at 100k/s, plus at most the 5 ms burst.
        assert!((1000..=1501).contains(&granted), "granted {granted}");
    }
}
