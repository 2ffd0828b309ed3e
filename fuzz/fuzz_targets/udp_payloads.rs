//! Fuzz target: every UDP payload's reply checker on its own.
//!
//! Input layout: byte 0 picks the payload (`payloads::all()[b0 % len]`),
//! bytes 1..5 are the probe's cookie (big-endian), the rest is the reply
//! datagram handed to `Payload::check_reply`. Besides "never panics", it
//! checks that a payload without an ID field always answers `NoIdField`
//! and that the answer does not depend on anything but (cookie, reply).
//! The same reply also goes through `tftp::Reply::parse` (what a TFTP
//! server sends from its new port), which must accept only the three
//! answers to a read request and nothing longer than one block.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawscan::wire::payloads::{self, CookieCheck};
use rawscan::wire::tftp;

fuzz_target!(|data: &[u8]| {
    let all = payloads::all();
    let (Some(&pick), Some(cookie), Some(reply)) = (data.first(), data.get(1..5), data.get(5..))
    else {
        return;
    };
    let p = &all[usize::from(pick) % all.len()];
    let cookie = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
    let r = p.check_reply(cookie, reply);
    if !p.has_id_field() {
        assert_eq!(r, CookieCheck::NoIdField, "{}", p.name);
    }
    assert_eq!(
        r,
        p.check_reply(cookie, reply),
        "{}: not deterministic",
        p.name
    );
    if tftp::Reply::parse(reply).is_some() {
        assert!(reply.len() <= tftp::MAX_REPLY);
        assert!(matches!(reply.get(..2), Some([0, 3 | 5 | 6])));
    }
});
