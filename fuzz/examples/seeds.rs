//! Writes the seed corpora for the fuzz targets, built with rawscan's own
//! packet builders:
//!
//! - `corpus/parse_reply/`: IPv4 packets as a raw socket delivers them:
//!   SYN-ACK and RST-ACK replies that carry the cookie, ones that do not,
//!   our own SYN, ICMP errors quoting TCP and UDP probes, UDP replies to
//!   payload probes, and malformed/truncated variants of each.
//! - `corpus/udp_payloads/`: `[payload index][cookie, 4 bytes BE][reply]`
//!   inputs for the `udp_payloads` target, one per payload (its own probe
//!   as the reply: echo protocols match on it, the rest exercise their
//!   parsers), plus a few truncated ones.
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`
//! (`-- -v` prints what each seed parses and validates to).
//! Deterministic: the same files every run (existing files of the same
//! name are overwritten, other files are left alone).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rawscan::probe::{Cookies, ProbeKey, Proto};
use rawscan::validate::validate;
use rawscan::wire::{
    IcmpErrorSpec, TcpSpec, UdpSpec, build_icmp_error_v4, build_tcp_v4, build_udp_v4, flags,
    parse_ip, payloads,
};

/// Must match `KEY` in fuzz_targets/parse_reply.rs.
const KEY: [u8; 16] = *b"0123456789abcdef";
const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TGT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn key(port: u16, proto: Proto) -> ProbeKey {
    ProbeKey {
        ip: IpAddr::V4(TGT),
        port,
        proto,
    }
}

fn tcp(spec: &TcpSpec) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    let n = build_tcp_v4(&mut b, spec).expect("tcp fits");
    b.truncate(n);
    b
}

fn udp(spec: &UdpSpec, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 28 + payload.len()];
    let n = build_udp_v4(&mut b, spec, payload).expect("udp fits");
    b.truncate(n);
    b
}

fn icmp(icmp_type: u8, code: u8, from: Ipv4Addr, quote: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 28 + quote.len()];
    let n = build_icmp_error_v4(
        &mut b,
        &IcmpErrorSpec {
            src: from,
            dst: ME,
            icmp_type,
            code,
            ttl: 250,
        },
        quote,
    )
    .expect("icmp fits");
    b.truncate(n);
    b
}

/// Our SYN probe to `port`, as the engine builds it.
fn syn_probe(c: &Cookies, port: u16) -> Vec<u8> {
    let k = key(port, Proto::Tcp);
    tcp(&TcpSpec {
        src: ME,
        dst: TGT,
        src_port: c.src_port(&k),
        dst_port: port,
        seq: c.seq(&k),
        ack: 0,
        flags: flags::SYN,
        window: 1024,
        ttl: 64,
        ip_id: 1,
        mss: Some(1460),
    })
}

/// Our UDP probe to `port` (IP ID carries the cookie's low 16 bits).
fn udp_probe(c: &Cookies, port: u16, payload: &[u8]) -> Vec<u8> {
    let k = key(port, Proto::Udp);
    udp(
        &UdpSpec {
            src: ME,
            dst: TGT,
            src_port: c.src_port(&k),
            dst_port: port,
            ttl: 64,
            ip_id: c.seq(&k) as u16,
        },
        payload,
    )
}

/// A TCP reply from the target's `port` to the cookie's source port.
fn tcp_reply(c: &Cookies, port: u16, fl: u8, ack_delta: u32) -> Vec<u8> {
    let k = key(port, Proto::Tcp);
    tcp(&TcpSpec {
        src: TGT,
        dst: ME,
        src_port: port,
        dst_port: c.src_port(&k),
        seq: 0x1000_0000,
        ack: c.seq(&k).wrapping_add(1).wrapping_add(ack_delta),
        flags: fl,
        window: 65535,
        ttl: 57,
        ip_id: 7,
        mss: if fl & flags::SYN != 0 {
            Some(1400)
        } else {
            None
        },
    })
}

/// A UDP reply from the target's `port` to the cookie's source port.
fn udp_reply(c: &Cookies, port: u16, payload: &[u8]) -> Vec<u8> {
    let k = key(port, Proto::Udp);
    udp(
        &UdpSpec {
            src: TGT,
            dst: ME,
            src_port: port,
            dst_port: c.src_port(&k),
            ttl: 57,
            ip_id: 9,
        },
        payload,
    )
}

/// Insert 4 bytes of IPv4 options (NOPs) after the fixed header.
fn with_ip_options(p: &[u8]) -> Vec<u8> {
    let mut v = p[..20].to_vec();
    v[0] = 0x46;
    let total = (p.len() + 4) as u16;
    v[2..4].copy_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[1, 1, 1, 0]);
    v.extend_from_slice(&p[20..]);
    v
}

fn set(p: &[u8], at: usize, v: u8) -> Vec<u8> {
    let mut p = p.to_vec();
    p[at] = v;
    p
}

/// A minimal reply that echoes the cookie of `probe` (the bytes `write`
/// produced), for the protocols whose answer is a small edit of the request.
fn matching_reply(name: &str, probe: &[u8]) -> Option<Vec<u8>> {
    let mut r = probe.to_vec();
    match name {
        // Same header with QR / R set.
        "dns" | "netbios-ns" | "mdns" => r[2] |= 0x80,
        // Mode 4 (server); origin timestamp = our transmit timestamp.
        "ntp" => {
            r[0] = 0x24;
            r.copy_within(40..48, 24);
        }
        // GetRequest-PDU -> GetResponse-PDU, same request-id.
        "snmp" => r[13] = 0xA2,
        // Piggybacked ACK 2.05 Content: same message ID and token.
        "coap" => {
            r[0] = 0x64;
            r[1] = 0x45;
        }
        // Version Negotiation: DCID = our SCID, SCID = our DCID (cookie).
        "quic" => {
            r = vec![0x80, 0, 0, 0, 0, 8];
            r.extend_from_slice(probe.get(15..23)?);
            r.push(8);
            r.extend_from_slice(probe.get(6..14)?);
            r.extend_from_slice(&[0, 0, 0, 1]);
        }
        _ => return None,
    }
    Some(r)
}

/// `-v`: print what each seed parses and validates to.
fn verbose() -> bool {
    std::env::args().any(|a| a == "-v")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn parse_reply_seeds(dir: &Path) -> usize {
    let c = Cookies::new(KEY);
    let mut s: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, b: Vec<u8>| s.push((name.to_string(), b));

    // TCP replies.
    let synack = tcp_reply(&c, 22, flags::SYN | flags::ACK, 0);
    let rst = tcp_reply(&c, 23, flags::RST | flags::ACK, 0);
    add("tcp-synack-valid", synack.clone());
    add("tcp-rstack-valid", rst.clone());
    add(
        "tcp-synack-bad-cookie",
        tcp_reply(&c, 22, flags::SYN | flags::ACK, 1),
    );
    add("tcp-rst-no-ack", tcp_reply(&c, 23, flags::RST, 0));
    add("tcp-own-syn", syn_probe(&c, 80));
    {
        let mut wrong_port = synack.clone();
        wrong_port[22] ^= 0x01; // destination port
        add("tcp-synack-wrong-port", wrong_port);
    }
    add("tcp-synack-ip-options", with_ip_options(&synack));
    add("tcp-doff-15", set(&synack, 32, 0xf0)); // data offset beyond segment
    add("tcp-doff-4", set(&synack, 32, 0x40)); // data offset below 5
    add("tcp-truncated-header", {
        let mut t = synack[..30].to_vec();
        t[2..4].copy_from_slice(&30u16.to_be_bytes());
        t
    });
    add(
        "tcp-total-len-past-buffer",
        synack[..synack.len() - 1].to_vec(),
    );

    // IPv4 header damage (on the SYN-ACK).
    add("ip-19-bytes", synack[..19].to_vec());
    add("ip-ihl-4", set(&synack, 0, 0x44));
    add("ip-ihl-15", set(&synack, 0, 0x4f));
    add("ip-version-6", set(&synack, 0, 0x60));
    add("ip-version-5", set(&synack, 0, 0x55));
    add("ip-total-len-zero", {
        let mut t = synack.clone();
        t[2] = 0;
        t[3] = 0;
        t
    });
    add("ip-more-fragments", set(&synack, 6, 0x20));
    add("ip-fragment-offset", set(&synack, 7, 0x01));
    add("ip-proto-gre", set(&synack, 9, 47));
    add("ip-empty", Vec::new());

    // ICMP errors quoting our probes.
    let syn80 = syn_probe(&c, 80);
    let q_tcp = &syn80[..28];
    add("icmp-admin-prohibited-tcp", icmp(3, 13, TGT, q_tcp));
    add("icmp-host-unreach-tcp-router", icmp(3, 1, ROUTER, q_tcp));
    add("icmp-time-exceeded-tcp", icmp(11, 0, ROUTER, q_tcp));
    add("icmp-unreach-code5-ignored", icmp(3, 5, TGT, q_tcp));
    add("icmp-quote-whole-probe", icmp(3, 10, TGT, &syn80));
    {
        let mut forged = q_tcp.to_vec();
        forged[24] ^= 0xff; // quoted sequence number
        add("icmp-quote-bad-seq", icmp(3, 13, TGT, &forged));
    }
    let dns = payloads::payload_for(53).expect("dns payload");
    let mut dns_probe = Vec::new();
    dns.write(c.seq(&key(53, Proto::Udp)), &mut dns_probe);
    let udp53 = udp_probe(&c, 53, &dns_probe);
    let q_udp = &udp53[..28];
    add("icmp-port-unreach-udp-target", icmp(3, 3, TGT, q_udp));
    add("icmp-port-unreach-udp-router", icmp(3, 3, ROUTER, q_udp));
    {
        let mut bad_id = q_udp.to_vec();
        bad_id[5] ^= 0xff; // quoted IP ID
        add("icmp-quote-bad-ip-id", icmp(3, 3, TGT, &bad_id));
    }
    add("icmp-quote-7-bytes", icmp(3, 3, TGT, &udp53[..27]));
    add("icmp-quote-ip-only", icmp(3, 3, TGT, &udp53[..20]));
    add("icmp-quote-ihl-15", icmp(3, 3, TGT, &set(q_udp, 0, 0x4f)));
    add(
        "icmp-quote-version-6",
        icmp(3, 3, TGT, &set(q_udp, 0, 0x65)),
    );
    add("icmp-quote-total-len-3", {
        let mut q = q_udp.to_vec();
        q[2] = 0;
        q[3] = 3;
        icmp(3, 3, TGT, &q)
    });
    add("icmp-quote-proto-icmp", icmp(3, 3, TGT, &set(q_udp, 9, 1)));
    add(
        "icmp-quote-with-options",
        icmp(3, 3, TGT, &with_ip_options(&udp53)[..32]),
    );
    add(
        "icmp-echo-reply",
        icmp(0, 0, TGT, &[0, 1, 0, 1, b'p', b'i', b'n', b'g']),
    );
    add("icmp-header-only", icmp(3, 3, TGT, &[])[..24].to_vec());
    add("icmp-truncated", {
        let mut t = icmp(3, 3, TGT, q_udp)[..26].to_vec();
        t[2..4].copy_from_slice(&26u16.to_be_bytes());
        t
    });

    // UDP replies: well-formed answers that echo the cookie where the seed
    // knows how to build one (see `matching_reply`), else the probe's own
    // bytes sent back (which exercise the reply parser and mismatch).
    for port in [53u16, 123, 161, 137, 443, 5683, 1194, 47808] {
        let Some(p) = payloads::payload_for(port) else {
            continue;
        };
        let mut body = Vec::new();
        p.write(c.seq(&key(port, Proto::Udp)), &mut body);
        let (tag, body) = match matching_reply(p.name, &body) {
            Some(r) => ("match", r),
            None => ("echo", body),
        };
        add(
            &format!("udp-reply-{}-{port}-{tag}", p.name),
            udp_reply(&c, port, &body),
        );
    }
    add("udp-reply-empty-unknown-port", udp_reply(&c, 9999, &[]));
    add("udp-reply-wrong-port", {
        let mut t = udp_reply(&c, 53, &dns_probe);
        t[22] ^= 0x01;
        t
    });
    let u = udp_reply(&c, 53, &dns_probe);
    add("udp-len-7", {
        let mut t = u.clone();
        t[24] = 0;
        t[25] = 7;
        t
    });
    add("udp-len-past-datagram", {
        let mut t = u.clone();
        t[24] = 0xff;
        t
    });
    add("udp-truncated-header", {
        let mut t = u[..26].to_vec();
        t[2..4].copy_from_slice(&26u16.to_be_bytes());
        t
    });
    add("udp-trailing-bytes-past-udp-len", {
        let mut t = u.clone();
        t.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let total = t.len() as u16;
        t[2..4].copy_from_slice(&total.to_be_bytes());
        t
    });

    for (name, b) in &s {
        write(dir, &format!("{name}.bin"), b);
        if verbose() {
            let r = parse_ip(b).map(|p| validate(&p, &c));
            println!("{name:36} {r:?}");
        }
    }
    s.len()
}

fn udp_payload_seeds(dir: &Path) -> usize {
    let mut n = 0;
    for (i, p) in payloads::all().iter().enumerate() {
        let cookie: u32 = 0x1357_9bdf ^ (i as u32).wrapping_mul(0x9e37_79b9);
        let mut probe = Vec::new();
        p.write(cookie, &mut probe);
        let mut input = vec![i as u8];
        input.extend_from_slice(&cookie.to_be_bytes());
        input.extend_from_slice(&probe);
        write(dir, &format!("{i:02}-{}.bin", p.name), &input);
        if verbose() {
            println!("{:36} {:?}", p.name, p.check_reply(cookie, &probe));
        }
        n += 1;
        if let Some(reply) = matching_reply(p.name, &probe) {
            input.truncate(5);
            input.extend_from_slice(&reply);
            write(dir, &format!("{i:02}-{}-match.bin", p.name), &input);
            if verbose() {
                let r = p.check_reply(cookie, &reply);
                println!("{:36} {r:?}", format!("{} (reply)", p.name));
            }
            n += 1;
        }
    }
    n
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let pr = root.join("parse_reply");
    let up = root.join("udp_payloads");
    fs::create_dir_all(&pr).expect("mkdir");
    fs::create_dir_all(&up).expect("mkdir");
    let a = parse_reply_seeds(&pr);
    let b = udp_payload_seeds(&up);
    println!(
        "wrote {a} seeds to {} and {b} to {}",
        pr.display(),
        up.display()
    );
}
