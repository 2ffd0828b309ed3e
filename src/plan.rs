//! The scan plan: which (host, port, protocol) keys a scan covers, in
//! which order, which slice of them this run owns (`--shard K/N`), and
//! where an interrupted run resumes.
//!
//! Invariants: a plan never lists its keys. The whole space of a scan is
//! `hosts x ports` (index `h * ports + p`), put in a seeded order by a
//! `Permutation` of the whole space; shard K of N owns the positions
//! `j * N + (K - 1)` of that order. So, for the same targets, ports and
//! seed, the N shards partition the space exactly (no gap, no duplicate),
//! whatever N is, even larger than the space (some shards are then
//! empty). `len()` and `key(i)` are all a driver needs: the `i`-th key of
//! this run's slice, for `i < len()`. Memory is O(1) in the scan's size.
//! The identity of the order (hosts, ports, seed, shard) is fixed by
//! `Plan::new`; only the resume position is public.

use std::fmt;

use crate::permute::Permutation;
use crate::probe::{ProbeKey, Proto};
use crate::targets::HostSet;

/// One slice of a scan: the K-th (1-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    k: u64,
    n: u64,
}

impl Shard {
    /// The whole scan: shard 1 of 1.
    pub const WHOLE: Shard = Shard { k: 1, n: 1 };

    /// Shard `k` of `n` (1 ≤ k ≤ n).
    pub fn new(k: u64, n: u64) -> Result<Shard, String> {
        if n == 0 {
            return Err("N must be at least 1".into());
        }
        if k == 0 || k > n {
            return Err(format!(
                "K must be between 1 and N ({n}): shards are numbered from 1"
            ));
        }
        Ok(Shard { k, n })
    }

    /// Parse masscan's spelling `K/N`. The error is one line that names
    /// the spec.
    pub fn parse(spec: &str) -> Result<Shard, String> {
        let bad = |why: &str| format!("invalid --shard '{spec}': {why}");
        let mut it = spec.split('/');
        let (Some(k), Some(n), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad("expected K/N, two whole numbers such as 1/4"));
        };
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let (Some(k), Some(n)) = (num(k), num(n)) else {
            return Err(bad("expected K/N, two whole numbers such as 1/4"));
        };
        Shard::new(k, n).map_err(|e| bad(&e))
    }

    /// K, 1-based.
    pub fn k(&self) -> u64 {
        self.k
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    pub fn is_whole(&self) -> bool {
        self.n == 1
    }

    /// How many of the positions `0..total` this shard owns.
    pub fn len_of(&self, total: u64) -> u64 {
        let first = self.k - 1;
        if total <= first {
            return 0;
        }
        (total - first).div_ceil(self.n)
    }

    /// The position in the whole order of this shard's `i`-th key. For
    /// `i < len_of(total)` it is below `total`, so it cannot overflow.
    pub fn position(&self, i: u64) -> Option<u64> {
        i.checked_mul(self.n)?.checked_add(self.k - 1)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// What to scan, and in which order.
#[derive(Clone, Debug)]
pub struct Plan {
    hosts: HostSet,
    /// Every (protocol, port) to probe on each host.
    ports: Vec<(Proto, u16)>,
    seed: u64,
    shard: Shard,
    /// hosts x ports, the whole space of every shard.
    total: u64,
    order: Permutation,
    /// This shard's number of keys.
    len: u64,
    /// Start at this position of this run's slice (resume); 0 normally.
    pub start: u64,
    /// Keys left undecided by an interrupted run, probed first (resume).
    pub carry: Vec<ProbeKey>,
}

/// The scan has more (host, port) pairs than the order can index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge;

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many (host, port) pairs: split the scan")
    }
}

impl std::error::Error for TooLarge {}

impl Plan {
    /// A plan of `hosts x ports` in the order of `seed`, owning `shard`'s
    /// slice.
    pub fn new(
        hosts: HostSet,
        ports: Vec<(Proto, u16)>,
        seed: u64,
        shard: Shard,
    ) -> Result<Plan, TooLarge> {
        let total = hosts
            .len()
            .checked_mul(ports.len() as u128)
            .and_then(|t| u64::try_from(t).ok())
            .ok_or(TooLarge)?;
        Ok(Plan {
            hosts,
            ports,
            seed,
            shard,
            total,
            order: Permutation::new(total, seed),
            len: shard.len_of(total),
            start: 0,
            carry: Vec::new(),
        })
    }

    pub fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    pub fn ports(&self) -> &[(Proto, u16)] {
        &self.ports
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Number of (host, port) pairs of the whole scan (every shard).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Number of keys in this run's slice (`total()` when not sharded).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Does the plan probe any TCP port?
    pub fn has_tcp(&self) -> bool {
        self.ports.iter().any(|(p, _)| *p == Proto::Tcp)
    }

    /// The `i`-th key of this run's slice, `i < len()`.
    pub fn key(&self, i: u64) -> Option<ProbeKey> {
        if i >= self.len {
            return None;
        }
        let pos = self.shard.position(i)?;
        self.key_at(self.order.get(pos))
    }

    /// Is `key` in this run's slice? (A key outside the hosts or ports
    /// is not.)
    pub fn owns(&self, key: &ProbeKey) -> bool {
        let Some(p) = self
            .ports
            .iter()
            .position(|&pp| pp == (key.proto, key.port))
        else {
            return false;
        };
        let Some(h) = self.hosts.index_of(key.ip) else {
            return false;
        };
        let idx = h
            .checked_mul(self.ports.len() as u128)
            .and_then(|x| x.checked_add(p as u128))
            .and_then(|x| u64::try_from(x).ok());
        match idx {
            Some(i) if i < self.total => {
                self.order.index_of(i) % self.shard.n() == self.shard.k() - 1
            }
            _ => false,
        }
    }

    /// The key at index `idx` of the whole space (before the order).
    fn key_at(&self, idx: u64) -> Option<ProbeKey> {
        let n = self.ports.len() as u64;
        let (proto, port) = *self.ports.get(usize::try_from(idx % n).ok()?)?;
        let ip = self.hosts.get(u128::from(idx / n))?;
        Some(ProbeKey { ip, port, proto })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::parse_hosts;
    use std::collections::HashSet;

    #[test]
    fn shards_partition_the_index_space() {
        for total in [0u64, 1, 2, 3, 7, 10, 64, 99, 100, 101, 1000, 4099] {
            for n in [1u64, 2, 3, 4, 5, 7, 16, 100, 1000, 5000] {
                let mut seen = vec![0u8; total as usize];
                let mut sum = 0;
                for k in 1..=n {
                    let s = Shard::new(k, n).unwrap();
                    let len = s.len_of(total);
                    sum += len;
                    for i in 0..len {
                        let p = s.position(i).unwrap();
                        assert!(p < total, "total {total}, shard {s}: position {p}");
                        seen[p as usize] += 1;
                    }
                    // Past the end, no position is inside the space.
                    assert!(s.position(len).unwrap() >= total);
                }
                assert_eq!(sum, total, "total {total}, n {n}");
                assert!(
                    seen.iter().all(|&c| c == 1),
                    "total {total}, n {n}: a gap or a duplicate"
                );
            }
        }
        // Near u64::MAX nothing overflows.
        let s = Shard::new(3, 3).unwrap();
        assert_eq!(s.len_of(u64::MAX), u64::MAX / 3);
        let last = s.position(s.len_of(u64::MAX) - 1).unwrap();
        assert!(last < u64::MAX);
    }

    fn plan(shard: Shard, seed: u64) -> Plan {
        let hosts = parse_hosts(&["198.18.0.0/28".into()], &[], &|_| Err("no dns".into())).unwrap();
        let ports = (1..=7)
            .map(|p| (Proto::Tcp, p))
            .chain([(Proto::Udp, 53)])
            .collect();
        Plan::new(hosts, ports, seed, shard).unwrap()
    }

    #[test]
    fn shard_keys_are_the_whole_scan_exactly_once() {
        let whole = plan(Shard::WHOLE, 7);
        assert_eq!(whole.total(), 128);
        assert_eq!(whole.len(), 128);
        let all: HashSet<ProbeKey> = (0..whole.len()).map(|i| whole.key(i).unwrap()).collect();
        assert_eq!(all.len(), 128);
        for n in [1u64, 2, 3, 4, 127, 128, 129, 500] {
            let mut union = HashSet::new();
            for k in 1..=n {
                let p = plan(Shard::new(k, n).unwrap(), 7);
                assert_eq!(p.total(), 128);
                for i in 0..p.len() {
                    assert!(union.insert(p.key(i).unwrap()), "n {n}: duplicate");
                }
                assert_eq!(p.key(p.len()), None);
            }
            assert_eq!(union, all, "n {n}");
        }
        // The slice follows the seeded order: another seed, another slice.
        let a: Vec<_> = (0..32)
            .map(|i| plan(Shard::new(1, 4).unwrap(), 7).key(i))
            .collect();
        let b: Vec<_> = (0..32)
            .map(|i| plan(Shard::new(1, 4).unwrap(), 8).key(i))
            .collect();
        assert_ne!(a, b);
    }

    #[test]
    fn shard_specs_parse_or_say_why_not() {
        assert_eq!(Shard::parse("1/1").unwrap(), Shard::WHOLE);
        let s = Shard::parse("3/4").unwrap();
        assert_eq!((s.k(), s.n()), (3, 4));
        assert_eq!(s.to_string(), "3/4");
        for (spec, why) in [
            ("0/3", "between 1 and N"),
            ("4/3", "between 1 and N"),
            ("3/0", "at least 1"),
            ("a/b", "K/N"),
            ("1/3/4", "K/N"),
            ("", "K/N"),
            ("1/", "K/N"),
            ("+1/3", "K/N"),
            ("1 /3", "K/N"),
            ("1/99999999999999999999999", "K/N"),
        ] {
            let e = Shard::parse(spec).unwrap_err();
            assert!(e.contains(&format!("'{spec}'")), "{spec}: {e}");
            assert!(e.contains(why), "{spec}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn too_large_is_an_error() {
        let hosts = parse_hosts(&["2001:db8::/64".into()], &[], &|_| Err("no dns".into())).unwrap();
        let ports = (1..=2).map(|p| (Proto::Tcp, p)).collect();
        assert_eq!(
            Plan::new(hosts, ports, 1, Shard::WHOLE).unwrap_err(),
            TooLarge
        );
    }
}
