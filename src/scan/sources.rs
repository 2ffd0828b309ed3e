//! The scanner's own source addresses (`-S`), and which one each probe
//! leaves from.
//!
//! Linux rate-limits ICMP errors per destination address: a target sends
//! each address it talks to about one port-unreachable per second after a
//! burst of six. With several source addresses the budget multiplies. Each
//! key is bound to one source for all its tries (a keyed choice among the
//! sources of its family), so the UDP pacer can treat every (source,
//! target) pair as a host of its own with its own token bucket.
//!
//! Invariants: pure; `pick` is a function of the key and the list alone;
//! an empty list (or none of the key's family) means the kernel chooses.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use siphasher::sip::SipHasher13;

use crate::probe::ProbeKey;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
}

impl Sources {
    pub fn new(list: &[IpAddr]) -> Self {
        let mut s = Sources::default();
        for a in list {
            let v = if a.is_ipv4() { &mut s.v4 } else { &mut s.v6 };
            if !v.contains(a) {
                v.push(*a);
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The source `key` is probed from (None: the kernel's choice).
    pub fn pick(&self, key: &ProbeKey) -> Option<IpAddr> {
        let v = if key.ip.is_ipv4() { &self.v4 } else { &self.v6 };
        match v.len() {
            0 => None,
            1 => Some(v[0]),
            n => {
                let mut h = SipHasher13::new_with_keys(0x736f_7572_6365_7321, 0);
                key.hash(&mut h);
                Some(v[(h.finish() % n as u64) as usize])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Proto;
    use std::collections::HashMap;

    #[test]
    fn keys_spread_over_their_familys_sources_and_stay_put() {
        let list: Vec<IpAddr> = (1..=32)
            .map(|i| format!("198.18.1.{i}").parse().unwrap())
            .chain(["2001:db8::1".parse().unwrap()])
            .collect();
        let s = Sources::new(&list);
        let mut count: HashMap<IpAddr, u32> = HashMap::new();
        for port in 1..=3200u16 {
            let k = ProbeKey {
                ip: "198.18.0.2".parse().unwrap(),
                port,
                proto: Proto::Udp,
            };
            let a = s.pick(&k).unwrap();
            assert!(a.is_ipv4());
            assert_eq!(s.pick(&k), Some(a), "the same key, the same source");
            *count.entry(a).or_default() += 1;
        }
        assert_eq!(count.len(), 32);
        assert!(
            count.values().all(|&n| (50..=150).contains(&n)),
            "{count:?}"
        );
        let k6 = ProbeKey {
            ip: "2001:db8::2".parse().unwrap(),
            port: 53,
            proto: Proto::Udp,
        };
        assert_eq!(s.pick(&k6), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(Sources::default().pick(&k6), None);
    }
}
