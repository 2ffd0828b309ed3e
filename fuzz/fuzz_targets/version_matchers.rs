//! Fuzz target: every `-sV` matcher and the table's reply matching.
//!
//! Input layout: byte 0 picks the matcher (`matchers::ALL[b0 % len]`), the
//! rest is the reply a service sent. Besides "never panics", it checks that
//! the answer is deterministic, that text copied out of the reply stays
//! within `MAX_TEXT` characters, and runs `table::identify` (the probe's own
//! matchers, then the fallback) for every probe on the same reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawscan::version::matchers::{ALL, MAX_TEXT};
use rawscan::version::table;

fuzz_target!(|data: &[u8]| {
    let (Some(&pick), Some(reply)) = (data.first(), data.get(1..)) else {
        return;
    };
    let (name, m) = ALL[usize::from(pick) % ALL.len()];
    let f = m(reply);
    assert_eq!(f, m(reply), "{name}: not deterministic");
    if let Some(f) = f {
        for t in [&f.product, &f.version, &f.extrainfo, &f.hostname]
            .into_iter()
            .flatten()
        {
            // Versions may be built from two bounded pieces.
            assert!(t.chars().count() <= 2 * MAX_TEXT + 16, "{name}: {t:?}");
        }
    }
    for p in table::TCP_PROBES.iter().chain(table::UDP_PROBES) {
        let _ = table::identify(p, reply);
    }
});
