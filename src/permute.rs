//! A keyed bijection over `0..n`: the scan order.
//!
//! Invariants: O(1) memory whatever `n` is; `Permutation::new(n, seed)`
//! always yields the same order for the same `(n, seed)`; every index in
//! `0..n` comes out exactly once. Built as a balanced Feistel network over
//! the smallest even-bit power of two ≥ n, with cycle-walking to stay below
//! `n` (the zmap/masscan approach; no table of indices is ever built).

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

#[derive(Clone, Debug)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

const ROUNDS: usize = 4;

impl Permutation {
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut keys = [0u64; ROUNDS];
        for (i, k) in keys.iter_mut().enumerate() {
            let mut h = SipHasher13::new_with_keys(seed, 0x7261_7773_6361_6e00 | i as u64);
            h.write_u64(n);
            *k = h.finish();
        }
        Permutation { n, half_bits, keys }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn round(&self, i: usize, x: u64) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.keys[i], 0);
        h.write_u64(x);
        h.finish()
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for i in 0..ROUNDS {
            let t = l ^ (self.round(i, r) & mask);
            l = r;
            r = t;
        }
        (l << self.half_bits) | r
    }

    fn feistel_inv(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for i in (0..ROUNDS).rev() {
            let t = r ^ (self.round(i, l) & mask);
            r = l;
            l = t;
        }
        (l << self.half_bits) | r
    }

    /// The position of `x` in the order: `get(index_of(x)) == x` (`x < n`).
    pub fn index_of(&self, x: u64) -> u64 {
        debug_assert!(x < self.n);
        let mut i = self.feistel_inv(x);
        while i >= self.n {
            i = self.feistel_inv(i);
        }
        i
    }

    /// The `i`-th element of the order (`i < n`). Cycle-walking terminates
    /// because the Feistel network is a bijection of the enclosing domain,
    /// which is less than 4n.
    pub fn get(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = self.feistel(i);
        while x >= self.n {
            x = self.feistel(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: u64, seed: u64) -> Vec<u64> {
        let p = Permutation::new(n, seed);
        (0..n).map(|i| p.get(i)).collect()
    }

    #[test]
    fn is_a_bijection_for_many_sizes() {
        for n in [
            1u64, 2, 3, 5, 16, 17, 255, 256, 1000, 4097, 65535, 65536, 100_003,
        ] {
            let mut seen = vec![false; n as usize];
            for x in order(n, 42) {
                assert!(x < n);
                assert!(!seen[x as usize], "n={n}: {x} twice");
                seen[x as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "n={n}: gap");
        }
    }

    #[test]
    fn repeats_under_a_seed_and_differs_across_seeds() {
        assert_eq!(order(5000, 7), order(5000, 7));
        assert_ne!(order(5000, 7), order(5000, 8));
        // It actually shuffles: far from the identity.
        let fixed = order(5000, 7)
            .iter()
            .enumerate()
            .filter(|(i, x)| *i as u64 == **x)
            .count();
        assert!(fixed < 50, "{fixed} fixed points");
    }

    #[test]
    fn index_of_inverts_get() {
        for n in [1u64, 2, 5, 17, 1000, 4097, 65535] {
            let p = Permutation::new(n, 9);
            for i in 0..n.min(5000) {
                assert_eq!(p.index_of(p.get(i)), i, "n={n}");
            }
        }
    }

    #[test]
    fn huge_spaces_need_no_memory() {
        // A /16 times all ports: 2^32 indices, no allocation per index.
        let p = Permutation::new(65536 * 65535, 1);
        let a = p.get(0);
        let b = p.get(65536 * 65535 - 1);
        assert!(a < p.len() && b < p.len() && a != b);
    }
}
