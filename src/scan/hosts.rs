//! Per-host timing: round-trip estimates (and so timeouts) and loss
//! figures for each host that has answered, beside the scan-wide ones.
//!
//! One slow or lossy host must not slow the others nor make their
//! timeouts wrong: a host's own figures are used once it has answered,
//! and the scan-wide ones until then.
//!
//! Invariants: pure; an entry exists only for a host that answered at
//! least once, so silent addresses of a sweep cost no memory here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::control::retry::{Budget, LossStats};

/// Timeout bounds, nmap style: `srtt + 4 · rttvar`, clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(100),
            max: Duration::from_millis(10_000),
        }
    }
}

/// Shortest wait before a retransmission that is not a probe's last try.
pub const RTO_MIN: Duration = Duration::from_millis(10);

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

    pub fn rttvar(&self) -> Duration {
        Duration::from_secs_f64(self.rttvar)
    }

    pub fn timeout(&self, t: &Timing) -> Duration {
        match self.srtt {
            None => t.initial,
            Some(s) => Duration::from_secs_f64(s + 4.0 * self.rttvar).clamp(t.min, t.max),
        }
    }
}

/// What the scan knows of one host that answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Host {
    pub rtt: Rtt,
    pub loss: LossStats,
    /// Smallest first-try round trip seen.
    pub latency: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct Hosts {
    map: HashMap<IpAddr, Host, foldhash::fast::RandomState>,
    rtt: Rtt,
    loss: LossStats,
    timing: Timing,
    group: bool,
}

impl Hosts {
    pub fn new(timing: Timing) -> Self {
        Hosts {
            timing,
            ..Hosts::default()
        }
    }

    /// Unmeasured hosts take the scan-wide estimate (host discovery).
    pub fn group_timing(mut self, on: bool) -> Self {
        self.group = on;
        self
    }

    /// The round-trip estimate that applies to `ip`: its own once it has
    /// one. A host that has not been measured may be much farther than
    /// the others: the initial timeout stands for it (as nmap's
    /// `--initial-rtt-timeout`), unless group timing is on and the scan
    /// has an estimate.
    fn rtt_for(&self, ip: &IpAddr) -> Option<&Rtt> {
        let own = self
            .map
            .get(ip)
            .map(|h| &h.rtt)
            .filter(|r| r.srtt.is_some());
        match own {
            None if self.group && self.rtt.srtt.is_some() => Some(&self.rtt),
            o => o,
        }
    }

    /// The timeout for a try sent to `ip` now.
    pub fn timeout(&self, ip: &IpAddr) -> Duration {
        self.rtt_for(ip)
            .map_or(self.timing.initial, |r| r.timeout(&self.timing))
    }

    /// When to retransmit a try to `ip` that may not be its last: the
    /// round-trip estimate (`max(srtt + 4·rttvar, 2·srtt)`). For a host
    /// measured itself, without the template's minimum (a floor of
    /// `RTO_MIN`), so a lossy path costs round trips, not timeouts. For a
    /// host that has not answered yet and takes the scan-wide estimate
    /// (group timing, in discovery), with it, as nmap's min_rtt_timeout:
    /// a host that answers ARP or ND later than the others (a device
    /// waking from power save, a stack still coming up) is not called down
    /// after a few of the others' round trips.
    pub fn rto(&self, ip: &IpAddr) -> Duration {
        let Some(rtt) = self.rtt_for(ip) else {
            return self.timing.initial;
        };
        let own = self.map.get(ip).is_some_and(|h| h.rtt.srtt.is_some());
        let floor = if own {
            RTO_MIN.min(self.timing.min)
        } else {
            self.timing.min
        };
        match rtt.srtt {
            None => self.timing.initial,
            Some(s) => Duration::from_secs_f64((s + 4.0 * rtt.rttvar).max(2.0 * s))
                .clamp(floor, self.timing.max),
        }
    }

    /// `ip` answered a try. `rtt`: the round trip of an unretransmitted
    /// try (Karn's rule: none for retransmissions). `loss`: the answered
    /// key's attempt number, when the answer says something about loss on
    /// the path (not ICMP, which the target rate-limits).
    pub fn answered(&mut self, ip: IpAddr, rtt: Option<Duration>, loss: Option<u8>) {
        let h = self.map.entry(ip).or_default();
        if let Some(r) = rtt {
            h.rtt.sample(r);
            h.latency = Some(h.latency.map_or(r, |l| l.min(r)));
            self.rtt.sample(r);
        }
        if let Some(a) = loss {
            h.loss.record(a);
            self.loss.record(a);
        }
    }

    /// The smallest round trip seen from `ip`.
    pub fn floor(&self, ip: &IpAddr) -> Option<Duration> {
        self.map.get(ip).and_then(|h| h.latency)
    }

    /// Tries a probe to `ip` gets, in a scan of `keys` keys.
    pub fn tries(&self, ip: &IpAddr, budget: &Budget, keys: u64) -> u32 {
        let own = self.map.get(ip).map(|h| h.loss).unwrap_or_default();
        budget.tries(&own, &self.loss, keys)
    }

    /// The scan-wide round-trip estimate.
    pub fn rtt(&self) -> &Rtt {
        &self.rtt
    }

    pub fn loss(&self) -> &LossStats {
        &self.loss
    }

    /// Every host that answered.
    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &Host)> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn timeouts_adapt_to_each_hosts_round_trip() {
        let timing = Timing {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(10),
            max: Duration::from_millis(5000),
        };
        let mut h = Hosts::new(timing);
        let (near, far, new) = (ip("198.18.0.2"), ip("198.18.0.3"), ip("198.18.0.4"));
        assert_eq!(h.timeout(&near), Duration::from_millis(1000));
        for _ in 0..50 {
            h.answered(near, Some(Duration::from_millis(2)), Some(0));
            h.answered(far, Some(Duration::from_millis(300)), Some(0));
        }
        let tn = h.timeout(&near);
        let tf = h.timeout(&far);
        assert!(tn < Duration::from_millis(20), "{tn:?}");
        assert!(tf >= Duration::from_millis(300), "{tf:?}");
        // A host with no answers of its own may be farther than both:
        // it gets the initial timeout.
        assert_eq!(h.timeout(&new), Duration::from_millis(1000));
    }

    /// In discovery (group timing) a host that had not answered was
    /// retried after the LAN's 10 ms RTO floor and called down 50 ms later:
    /// two tries within 60 ms, where nmap waits at least its
    /// min_rtt_timeout before each. Its retry now waits the template's
    /// minimum.
    #[test]
    fn an_unmeasured_host_is_retried_no_sooner_than_the_minimum() {
        let timing = Timing {
            initial: Duration::from_millis(1000),
            min: Duration::from_millis(50),
            max: Duration::from_millis(10_000),
        };
        let mut h = Hosts::new(timing).group_timing(true);
        let (near, new) = (ip("198.18.0.2"), ip("2001:db8::2"));
        for _ in 0..20 {
            h.answered(near, Some(Duration::from_micros(200)), Some(0));
        }
        assert_eq!(h.rto(&near), RTO_MIN);
        assert_eq!(h.rto(&new), timing.min);
        assert_eq!(h.timeout(&new), timing.min);
    }

    #[test]
    fn a_lossy_host_does_not_raise_the_others_budget() {
        let mut h = Hosts::new(Timing::default());
        let (clean, lossy) = (ip("198.18.0.2"), ip("198.18.0.3"));
        for i in 0..2000u32 {
            h.answered(clean, None, Some(0));
            h.answered(lossy, None, Some(if i % 2 == 0 { 0 } else { 1 }));
        }
        let b = Budget {
            min_tries: 2,
            max_tries: 30,
        };
        let tc = h.tries(&clean, &b, 4000);
        let tl = h.tries(&lossy, &b, 4000);
        assert_eq!(tc, 2);
        assert!(tl > 10, "{tl}");
    }

    #[test]
    fn silent_hosts_cost_nothing() {
        let mut h = Hosts::new(Timing::default());
        let _ = h.timeout(&ip("198.18.0.9"));
        let _ = h.tries(
            &ip("198.18.0.9"),
            &Budget {
                min_tries: 2,
                max_tries: 3,
            },
            10,
        );
        h.answered(ip("198.18.0.2"), None, None);
        assert_eq!(h.iter().count(), 1);
    }
}
