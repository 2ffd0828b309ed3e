//! The retry budget: how many tries a probe gets before its silence is
//! believed.
//!
//! A port is called filtered (TCP) or open|filtered (UDP) only when the
//! evidence makes a mistake unlikely. The loss that matters is the chance
//! `p` that one try to a *responsive* port draws no answer (lost probe or
//! lost reply). It is measured from the ports that did answer: a key
//! answered at its `a`-th retransmission saw `a` failed tries and one
//! success. With `n` responsive keys in the scan, `k` tries leave about
//! `n · p^k` of them wrongly unanswered; the budget is the smallest `k`
//! that keeps that below [`TARGET_WRONG`] (0.01). At 20 % loss each way
//! (`p` = 0.36) and 65,535 ports that is 16 tries; on a clean LAN, 2.
//!
//! `p` is estimated from above (the posterior mean of a uniform prior
//! plus two standard deviations), so a few lucky answers never shrink the
//! budget. A host with `OWN_EVIDENCE` tries of its own uses the scan's
//! figure or its own measured share, whichever is higher, but never more
//! than its own upper bound: a lossy host raises its budget as soon as its
//! losses show, a clean host beside a lossy one keeps a small one, and a
//! quiet host of a sweep with a few dozen clean tries is not given the
//! wide bound of so few samples (eight tries instead of three). A host
//! with less evidence uses the scan's figure; with no answers anywhere
//! the budget is two tries.
//!
//! Invariants: pure arithmetic; the budget is at least `min_tries` and at
//! most `max_tries`.

/// Expected number of responsive ports wrongly left unanswered per scan.
pub const TARGET_WRONG: f64 = 0.01;
/// Answered tries below which a host's own loss figure is not trusted.
pub const OWN_EVIDENCE: u32 = 30;
/// Tries when nothing at all has answered yet.
pub const DEFAULT_TRIES: u32 = 2;

/// Failed and total tries of the keys that were answered, over the last
/// few thousand tries (two windows: the current one and the one before),
/// so loss early in a scan (a burst of congestion) does not inflate the
/// budget for the rest of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossStats {
    cur: Count,
    prev: Count,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    tries: u32,
    failed: u32,
}

/// Tries per window.
const WINDOW: u32 = 8192;

impl LossStats {
    /// A key was answered at retransmission `attempt` (0 = first try).
    pub fn record(&mut self, attempt: u8) {
        if self.cur.tries >= WINDOW {
            self.prev = self.cur;
            self.cur = Count::default();
        }
        self.cur.tries = self.cur.tries.saturating_add(u32::from(attempt) + 1);
        self.cur.failed = self.cur.failed.saturating_add(u32::from(attempt));
    }

    /// Tries counted (both windows).
    pub fn tries(&self) -> u32 {
        self.cur.tries.saturating_add(self.prev.tries)
    }

    fn failed(&self) -> u32 {
        self.cur.failed.saturating_add(self.prev.failed)
    }

    /// An upper estimate of the per-try failure probability.
    pub fn upper(&self) -> Option<f64> {
        if self.tries() == 0 {
            return None;
        }
        let n = f64::from(self.tries()) + 2.0;
        let mean = (f64::from(self.failed()) + 1.0) / n;
        Some((mean + 2.0 * (mean * (1.0 - mean) / n).sqrt()).min(0.999))
    }

    /// The measured failure share (for reports).
    pub fn share(&self) -> f64 {
        if self.tries() == 0 {
            0.0
        } else {
            f64::from(self.failed()) / f64::from(self.tries())
        }
    }
}

/// Bounds of the budget: `--max-retries N` sets both to N + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub min_tries: u32,
    pub max_tries: u32,
}

impl Budget {
    /// Tries a probe gets, given its host's and the whole scan's loss
    /// figures and the number of keys in the scan.
    pub fn tries(&self, host: &LossStats, scan: &LossStats, keys: u64) -> u32 {
        if self.min_tries >= self.max_tries {
            return self.max_tries;
        }
        // The scan's figure, or the host's measured share if that is
        // higher (a lossy host raises its own budget as soon as its losses
        // show); but never above the host's own upper bound (a clean host
        // beside a lossy one keeps its small budget). A host's few clean
        // samples alone give a wide bound, which would over-probe every
        // quiet host of a sweep: they only lower, never raise, the figure.
        let scan_p = scan.upper();
        let p = match (host.tries() >= OWN_EVIDENCE, host.upper(), scan_p) {
            (true, Some(own), Some(g)) => Some(own.min(g.max(host.share()))),
            (true, Some(own), None) => Some(own),
            (_, _, g) => g,
        };
        let k = p.map_or(DEFAULT_TRIES, |p| tries_for(p, keys));
        k.clamp(self.min_tries, self.max_tries)
    }
}

/// The smallest `k` with `keys · p^k < TARGET_WRONG`.
pub fn tries_for(p: f64, keys: u64) -> u32 {
    let keys = (keys.max(1)) as f64;
    if p <= 0.0 {
        return 1;
    }
    if p >= 1.0 {
        return u32::MAX;
    }
    let k = (TARGET_WRONG / keys).ln() / p.ln();
    // Strictly below the target: a whole k that lands exactly on it needs one more.
    (k.floor() as u32).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_percent_each_way_over_all_ports_needs_sixteen_tries() {
        assert_eq!(tries_for(0.36, 65_535), 16);
        // And the budget keeps the expected number of mistakes below 0.01.
        let k = tries_for(0.36, 65_535);
        assert!(65_535.0 * 0.36f64.powi(k as i32) < TARGET_WRONG);
        assert!(65_535.0 * 0.36f64.powi(k as i32 - 1) >= TARGET_WRONG);
    }

    #[test]
    fn a_clean_lan_needs_two_tries() {
        let mut s = LossStats::default();
        for _ in 0..65_000 {
            s.record(0);
        }
        let b = Budget {
            min_tries: 2,
            max_tries: 20,
        };
        assert_eq!(b.tries(&s, &s, 65_535), 2);
    }

    #[test]
    fn measured_loss_raises_the_budget() {
        let mut s = LossStats::default();
        // 36 % of tries fail: a key needs a geometric number of tries.
        for i in 0..10_000u32 {
            let attempt = match i % 100 {
                0..64 => 0,
                64..87 => 1,
                87..95 => 2,
                95..98 => 3,
                _ => 4,
            };
            s.record(attempt);
        }
        let p = s.upper().unwrap();
        assert!((0.33..0.40).contains(&p), "{p}");
        let b = Budget {
            min_tries: 2,
            max_tries: 30,
        };
        let k = b.tries(&s, &s, 65_535);
        assert!((15..=18).contains(&k), "{k}");
    }

    #[test]
    fn a_host_without_evidence_borrows_the_scans_figure() {
        let mut lossy = LossStats::default();
        for _ in 0..1000 {
            lossy.record(2);
        }
        let mut few = LossStats::default();
        few.record(0);
        few.record(0);
        few.record(0);
        let b = Budget {
            min_tries: 2,
            max_tries: 30,
        };
        assert!(b.tries(&few, &lossy, 1000) > 5);
        assert_eq!(
            b.tries(&LossStats::default(), &LossStats::default(), 1000),
            DEFAULT_TRIES
        );
    }

    #[test]
    fn old_loss_is_forgotten() {
        let mut s = LossStats::default();
        for _ in 0..3000 {
            s.record(3);
        }
        assert!(s.upper().unwrap() > 0.7);
        for _ in 0..(2 * WINDOW) {
            s.record(0);
        }
        assert!(s.upper().unwrap() < 0.001, "{:?}", s.upper());
    }

    /// Regression: a /18 sweep sent 150,000 retries to 32,768 filtered
    /// ports on a clean path: each quiet host's own 30 clean tries gave a
    /// wide upper bound (eight tries) instead of the scan's figure.
    #[test]
    fn a_quiet_host_with_little_evidence_uses_the_scans_figure() {
        let mut scan = LossStats::default();
        for _ in 0..100_000 {
            scan.record(0);
        }
        let mut quiet = LossStats::default();
        for _ in 0..40 {
            quiet.record(0);
        }
        let b = Budget {
            min_tries: 2,
            max_tries: 20,
        };
        assert_eq!(b.tries(&quiet, &scan, 1_600_000), 3);
        let mut lossy = LossStats::default();
        for i in 0..40 {
            lossy.record(u8::from(i % 3 == 0));
        }
        assert!(b.tries(&lossy, &scan, 1_600_000) > 8);
    }

    #[test]
    fn max_retries_is_exact() {
        let b = Budget {
            min_tries: 4,
            max_tries: 4,
        };
        let mut lossy = LossStats::default();
        lossy.record(9);
        assert_eq!(b.tries(&lossy, &lossy, 10), 4);
        assert_eq!(b.tries(&LossStats::default(), &LossStats::default(), 10), 4);
    }
}
