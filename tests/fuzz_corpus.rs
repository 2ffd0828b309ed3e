//! Replays the fuzz corpora (fuzz/corpus/) through the same parsers the
//! fuzz targets drive, so every CI run checks that no stored input panics
//! or is mis-classified, without needing cargo-fuzz's nightly-flag build.

use rawscan::probe::Cookies;
use rawscan::validate::validate;
use rawscan::version::matchers::ALL as MATCHERS;
use rawscan::version::table;
use rawscan::wire::payloads::{self, CookieCheck};
use rawscan::wire::{Packet, parse_ip};
use std::path::Path;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn parse_reply_corpus_never_panics_and_mostly_parses() {
    let cookies = Cookies::new(*b"0123456789abcdef");
    let inputs = corpus("parse_reply");
    assert!(inputs.len() >= 20, "corpus too small: {}", inputs.len());
    let mut parsed = 0;
    let mut believed = 0;
    for data in &inputs {
        if let Ok(pkt) = parse_ip(data) {
            parsed += 1;
            if validate(&pkt, &cookies).is_ok() {
                believed += 1;
            }
            if let Packet::Udp(u) = pkt {
                for p in payloads::all() {
                    let _ = p.check_reply(0x0102_0304, u.payload);
                }
            }
        }
    }
    // The seeds hold both well-formed replies to the fixed key and
    // malformed packets; both kinds must be present.
    assert!(
        parsed > 0 && parsed < inputs.len(),
        "parsed {parsed} of {}",
        inputs.len()
    );
    assert!(believed > 0, "no seed validated against the fixed key");
}

#[test]
fn udp_payload_corpus_obeys_the_id_field_rule() {
    let all = payloads::all();
    for data in corpus("udp_payloads") {
        let (Some(&pick), Some(c), Some(reply)) = (data.first(), data.get(1..5), data.get(5..))
        else {
            continue;
        };
        let p = &all[usize::from(pick) % all.len()];
        let cookie = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let r = p.check_reply(cookie, reply);
        if !p.has_id_field() {
            assert_eq!(r, CookieCheck::NoIdField, "{}", p.name);
        }
    }
}

#[test]
fn version_matcher_corpus_never_panics_and_names_its_captures() {
    let inputs = corpus("version_matchers");
    assert!(inputs.len() >= 30, "corpus too small: {}", inputs.len());
    let mut named = 0;
    for data in &inputs {
        let (Some(&pick), Some(reply)) = (data.first(), data.get(1..)) else {
            continue;
        };
        let (_, m) = MATCHERS[usize::from(pick) % MATCHERS.len()];
        if m(reply).is_some() {
            named += 1;
        }
        for p in table::TCP_PROBES.iter().chain(table::UDP_PROBES) {
            let _ = table::identify(p, reply);
        }
    }
    // Whole captures are named by the matcher the seed picks.
    assert!(
        named * 2 >= inputs.len(),
        "only {named} of {} named",
        inputs.len()
    );
}
