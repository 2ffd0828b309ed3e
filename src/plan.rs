//! The scan plan: which (host, port, protocol) keys a scan covers, and
//! where an interrupted scan resumes.
//!
//! Invariants: a plan never lists its keys; key `i` of the scan order is
//! computed from the host set and the port list (`key_at`), so a plan's
//! size does not grow with the number of targets.

use crate::permute::Permutation;
use crate::probe::{ProbeKey, Proto};
use crate::targets::HostSet;

/// What to scan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub hosts: HostSet,
    /// Every (protocol, port) to probe on each host.
    pub ports: Vec<(Proto, u16)>,
    /// Seeds the scan order.
    pub seed: u64,
    /// Start at this position of the permutation (resume); 0 normally.
    pub start: u64,
    /// Keys left undecided by an interrupted run, probed first (resume).
    pub carry: Vec<ProbeKey>,
}

impl Plan {
    /// Number of (host, port) pairs; None if it overflows u64.
    pub fn total(&self) -> Option<u64> {
        let t = self.hosts.len().checked_mul(self.ports.len() as u128)?;
        u64::try_from(t).ok()
    }

    /// The seeded order of the scan's `total()` keys.
    pub fn order(&self) -> Permutation {
        Permutation::new(self.total().unwrap_or(0), self.seed)
    }

    /// Does the plan probe any TCP port?
    pub fn has_tcp(&self) -> bool {
        self.ports.iter().any(|(p, _)| *p == Proto::Tcp)
    }

    /// The key at position `idx` of the unpermuted (host, port) space.
    pub fn key_at(&self, idx: u64) -> Option<ProbeKey> {
        let n = self.ports.len() as u64;
        let (proto, port) = *self.ports.get((idx % n) as usize)?;
        let ip = self.hosts.get(u128::from(idx / n))?;
        Some(ProbeKey { ip, port, proto })
    }
}
