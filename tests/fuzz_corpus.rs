//! Replays the fuzz corpora (fuzz/corpus/: parse_reply, parse_frame,
//! ipv6_payload, wire_reprs, udp_payloads) through the same parsers the
//! fuzz targets drive, so every CI run checks that no stored input panics
//! or is mis-classified, without needing cargo-fuzz's nightly-flag build.

use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use rawscan::probe::Cookies;
use rawscan::validate::validate;
use rawscan::version::matchers::ALL as MATCHERS;
use rawscan::version::table;
use rawscan::wire::packet::FramePayload;
use rawscan::wire::payloads::{self, CookieCheck};
use rawscan::wire::{
    Ipv6Meta, Packet, arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, parse_frame, parse_ip,
    parse_ipv6_payload, tcp, tftp, udp,
};

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
            // Every address the seeds are sent to counts as ours, so that
            // the checks after the address check are reached.
            if validate(&pkt, &cookies, &[pkt.ip().dst]).is_ok() {
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
    // Both families are in the corpus, and the captured Linux traffic.
    let v6 = inputs
        .iter()
        .filter(|d| parse_ip(d).is_ok_and(|p| p.ip().src.is_ipv6()))
        .count();
    assert!(v6 >= 20, "only {v6} IPv6 seeds parse");
}

#[test]
fn parse_frame_corpus_never_panics() {
    let cookies = Cookies::new(*b"0123456789abcdef");
    let inputs = corpus("parse_frame");
    assert!(inputs.len() >= 40, "corpus too small: {}", inputs.len());
    let (mut arp, mut ip, mut bad) = (0, 0, 0);
    for data in &inputs {
        match parse_frame(data) {
            Ok(f) => match f.payload {
                FramePayload::Arp(_) => arp += 1,
                FramePayload::Ip(pkt) => {
                    ip += 1;
                    let _ = validate(&pkt, &cookies, &[pkt.ip().dst]);
                }
                FramePayload::Other => {}
            },
            Err(_) => bad += 1,
        }
    }
    assert!(
        arp >= 2 && ip >= 35 && bad >= 3,
        "arp {arp}, ip {ip}, bad {bad}"
    );
}

#[test]
fn ipv6_payload_corpus_never_panics() {
    let cookies = Cookies::new(*b"0123456789abcdef");
    let meta = Ipv6Meta {
        src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        dst: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        hop_limit: 64,
    };
    let inputs = corpus("ipv6_payload");
    assert!(inputs.len() >= 15, "corpus too small: {}", inputs.len());
    let mut parsed = 0;
    for data in &inputs {
        let (Some(&nh), Some(payload)) = (data.first(), data.get(2..)) else {
            continue;
        };
        if let Ok(pkt) = parse_ipv6_payload(meta, nh, payload) {
            parsed += 1;
            let _ = validate(&pkt, &cookies, &[IpAddr::V6(meta.dst)]);
        }
    }
    assert!(parsed >= 15, "parsed {parsed}");
}

/// The same checks as fuzz_targets/wire_reprs.rs: each protocol's parser
/// alone, and emit(parse(x)) parses back to the same Repr.
#[test]
fn wire_reprs_corpus_round_trips() {
    let inputs = corpus("wire_reprs");
    assert!(inputs.len() >= 80, "corpus too small: {}", inputs.len());
    let s6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let d6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let (s, d) = (IpAddr::V6(s6), IpAddr::V6(d6));
    let mut round_trips = 0;
    for data in &inputs {
        let Some((&pick, b)) = data.split_first() else {
            continue;
        };
        let mut out = vec![0u8; b.len() + 64];
        match pick % 8 {
            0 => {
                if let Ok(f) = ethernet::Frame::new_checked(b) {
                    let r = ethernet::Repr::parse(&f);
                    let n = r.emit(&mut out).unwrap();
                    let f2 = ethernet::Frame::new_checked(&out[..n]).unwrap();
                    assert_eq!(ethernet::Repr::parse(&f2), r);
                    round_trips += 1;
                }
            }
            1 => {
                if let Ok(r) = arp::Packet::new_checked(b).and_then(|p| arp::Repr::parse(&p)) {
                    let n = r.emit(&mut out).unwrap();
                    let p2 = arp::Packet::new_checked(&out[..n]).unwrap();
                    assert_eq!(arp::Repr::parse(&p2), Ok(r));
                    round_trips += 1;
                }
            }
            2 => {
                if let Ok(p) = ipv4::Packet::new_checked(b) {
                    let _ = ipv4::Repr::parse(&p);
                    assert!(p.verify_checksum(), "captured IPv4 header checksum");
                }
            }
            3 => {
                if let Ok(p) = ipv6::Packet::new_checked(b) {
                    let _ = ipv6::upper_layer(p.next_header(), p.payload(), false);
                }
            }
            4 => {
                if let Ok(r) = tcp::Packet::new_checked(b).and_then(|p| tcp::Repr::parse(&p)) {
                    let n = r.emit(&mut out, s, d).unwrap();
                    let p2 = tcp::Packet::new_checked(&out[..n]).unwrap();
                    assert!(p2.verify_checksum(s, d));
                    assert_eq!(tcp::Repr::parse(&p2), Ok(r));
                    round_trips += 1;
                }
            }
            5 => {
                if let Ok(p) = udp::Packet::new_checked(b) {
                    let r = udp::Repr::parse(&p);
                    let n = r.emit(&mut out, s, d).unwrap();
                    assert_eq!(
                        udp::Repr::parse(&udp::Packet::new_checked(&out[..n]).unwrap()),
                        r
                    );
                    round_trips += 1;
                }
            }
            6 => {
                if let Ok(r) = icmpv4::Packet::new_checked(b).and_then(|p| icmpv4::Repr::parse(&p))
                {
                    let n = r.emit(&mut out).unwrap();
                    let p2 = icmpv4::Packet::new_checked(&out[..n]).unwrap();
                    assert!(p2.verify_checksum());
                    assert_eq!(icmpv4::Repr::parse(&p2), Ok(r));
                    round_trips += 1;
                }
            }
            _ => {
                if let Ok(r) = icmpv6::Packet::new_checked(b).and_then(|p| icmpv6::Repr::parse(&p))
                {
                    let n = r.emit(&mut out, s6, d6).unwrap();
                    let p2 = icmpv6::Packet::new_checked(&out[..n]).unwrap();
                    assert!(p2.verify_checksum(s6, d6));
                    assert_eq!(icmpv6::Repr::parse(&p2), Ok(r));
                    round_trips += 1;
                }
            }
        }
    }
    assert!(round_trips >= 60, "only {round_trips} round trips");
}

#[test]
fn udp_payload_corpus_obeys_the_id_field_rule() {
    let all = payloads::all();
    let (mut tftp_answers, mut tftp_other) = (0, 0);
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
        // What a TFTP server sends from its new port (wire::tftp).
        match tftp::Reply::parse(reply) {
            Some(_) => {
                assert!(reply.len() <= tftp::MAX_REPLY);
                assert!(matches!(reply.get(..2), Some([0, 3 | 5 | 6])));
                tftp_answers += 1;
            }
            None if p.name == "tftp" => tftp_other += 1,
            None => {}
        }
    }
    // The corpus holds TFTP answers and malformed ones.
    assert!(
        tftp_answers >= 3,
        "{tftp_answers} TFTP answers in the corpus"
    );
    assert!(tftp_other >= 4, "{tftp_other} malformed TFTP inputs");
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
