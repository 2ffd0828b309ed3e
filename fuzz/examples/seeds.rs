//! Writes the seed corpora for the fuzz targets, built with rawscan's own
//! packet emitters (`wire::emit_packet`), plus the frames captured from
//! real Linux traffic in `src/wire/fixtures/`:
//!
//! - `corpus/parse_reply/`: IP packets as a socket delivers them (IPv4, and
//!   full IPv6): SYN-ACK and RST-ACK replies that carry the cookie, ones that
//!   do not, our own SYN, ICMP and ICMPv6 errors quoting TCP and UDP probes,
//!   UDP replies to payload probes, malformed/truncated variants of each,
//!   and every captured IP frame without its Ethernet header.
//! - `corpus/parse_frame/`: every captured frame (Ethernet first: ARP, NDP,
//!   IPv4, IPv6) and a few damaged ones.
//! - `corpus/ipv6_payload/`: `[next header][hop limit][transport...]`, what
//!   a raw IPv6 socket delivers, from the IPv6 captures and seeds.
//! - `corpus/wire_reprs/`: `[pick][bytes...]` for each protocol's
//!   `Repr::parse` (TCP options, NDP options, ARP, ...).
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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rawscan::probe::{Cookies, ProbeKey, Proto};
use rawscan::validate::validate;
use rawscan::wire::{
    IpRepr, Transport, emit_packet, flags, icmpv4, icmpv6, parse_ip, payloads, tcp, udp,
};

/// Must match `KEY` in fuzz_targets/parse_reply.rs.
const KEY: [u8; 16] = *b"0123456789abcdef";
const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TGT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
const ME6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const TGT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);

fn key(port: u16, proto: Proto) -> ProbeKey {
    ProbeKey {
        ip: IpAddr::V4(TGT),
        port,
        proto,
    }
}

fn key6(port: u16, proto: Proto) -> ProbeKey {
    ProbeKey {
        ip: IpAddr::V6(TGT6),
        port,
        proto,
    }
}

fn packet(src: IpAddr, dst: IpAddr, hop: u8, ident: u16, flow: u32, t: Transport<'_>) -> Vec<u8> {
    let mut b = vec![0u8; 1500];
    let ip = IpRepr {
        src,
        dst,
        hop_limit: hop,
        ident,
        flow_label: flow,
    };
    let n = emit_packet(&mut b, &ip, &t).expect("packet fits");
    b.truncate(n);
    b
}

fn icmp(icmp_type: u8, code: u8, from: Ipv4Addr, quote: &[u8]) -> Vec<u8> {
    let m = match icmp_type {
        3 => icmpv4::Repr::DstUnreachable {
            reason: code.into(),
            next_hop_mtu: 0,
            quote,
        },
        11 => icmpv4::Repr::TimeExceeded { code, quote },
        t => icmpv4::Repr::Other {
            msg_type: t,
            code,
            rest: quote,
        },
    };
    packet(from.into(), ME.into(), 250, 0, 0, Transport::Icmpv4(m))
}

fn icmp6(icmp_type: u8, code: u8, from: Ipv6Addr, quote: &[u8]) -> Vec<u8> {
    let m = match icmp_type {
        1 => icmpv6::Repr::DstUnreachable {
            reason: code.into(),
            quote,
        },
        2 => icmpv6::Repr::PktTooBig { mtu: 1280, quote },
        3 => icmpv6::Repr::TimeExceeded { code, quote },
        _ => icmpv6::Repr::ParamProblem {
            code,
            pointer: 6,
            quote,
        },
    };
    packet(from.into(), ME6.into(), 250, 0, 0, Transport::Icmpv6(m))
}

/// Our SYN probe to `k`, as the raw backend builds it.
fn syn_to(c: &Cookies, k: ProbeKey, from: IpAddr) -> Vec<u8> {
    let seq = c.seq(&k);
    packet(
        from,
        k.ip,
        64,
        (seq >> 16) as u16,
        c.udp_flow_label(&k),
        Transport::Tcp(tcp::syn_probe(c.src_port(&k), k.port, seq)),
    )
}

fn syn_probe(c: &Cookies, port: u16) -> Vec<u8> {
    syn_to(c, key(port, Proto::Tcp), ME.into())
}

/// Our UDP probe to `k` (IP ID / flow label carry the cookie).
fn udp_to(c: &Cookies, k: ProbeKey, from: IpAddr, payload: &[u8]) -> Vec<u8> {
    packet(
        from,
        k.ip,
        64,
        c.udp_ip_id(&k),
        c.udp_flow_label(&k),
        Transport::Udp(udp::Repr {
            src_port: c.src_port(&k),
            dst_port: k.port,
            payload,
        }),
    )
}

fn udp_probe(c: &Cookies, port: u16, payload: &[u8]) -> Vec<u8> {
    udp_to(c, key(port, Proto::Udp), ME.into(), payload)
}

/// A TCP reply from the target's port to the cookie's source port.
fn tcp_reply_to(c: &Cookies, k: ProbeKey, to: IpAddr, fl: u8, ack_delta: u32) -> Vec<u8> {
    packet(
        k.ip,
        to,
        57,
        7,
        0,
        Transport::Tcp(tcp::Repr {
            src_port: k.port,
            dst_port: c.src_port(&k),
            seq: 0x1000_0000,
            ack: c.seq(&k).wrapping_add(1).wrapping_add(ack_delta),
            flags: fl,
            window: 65535,
            mss: (fl & flags::SYN != 0).then_some(1400),
            ..tcp::Repr::default()
        }),
    )
}

fn tcp_reply(c: &Cookies, port: u16, fl: u8, ack_delta: u32) -> Vec<u8> {
    tcp_reply_to(c, key(port, Proto::Tcp), ME.into(), fl, ack_delta)
}

/// A UDP reply from the target's port to the cookie's source port.
fn udp_reply_to(c: &Cookies, k: ProbeKey, to: IpAddr, payload: &[u8]) -> Vec<u8> {
    packet(
        k.ip,
        to,
        57,
        9,
        0,
        Transport::Udp(udp::Repr {
            src_port: k.port,
            dst_port: c.src_port(&k),
            payload,
        }),
    )
}

fn udp_reply(c: &Cookies, port: u16, payload: &[u8]) -> Vec<u8> {
    udp_reply_to(c, key(port, Proto::Udp), ME.into(), payload)
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

    // IPv6: the same shapes over the other family.
    let syn6 = syn_to(&c, key6(80, Proto::Tcp), ME6.into());
    add(
        "v6-tcp-synack-valid",
        tcp_reply_to(&c, key6(22, Proto::Tcp), ME6.into(), flags::SYN | flags::ACK, 0),
    );
    add(
        "v6-tcp-rstack-bad-cookie",
        tcp_reply_to(&c, key6(23, Proto::Tcp), ME6.into(), flags::RST | flags::ACK, 1),
    );
    add("v6-tcp-own-syn", syn6.clone());
    add("v6-icmp6-admin-prohibited-tcp", icmp6(1, 1, TGT6, &syn6));
    let udp6 = udp_to(&c, key6(53, Proto::Udp), ME6.into(), &dns_probe);
    add("v6-icmp6-port-unreach-udp-target", icmp6(1, 4, TGT6, &udp6));
    add("v6-icmp6-port-unreach-udp-router", icmp6(1, 4, ROUTER6, &udp6));
    add("v6-icmp6-time-exceeded-udp", icmp6(3, 0, ROUTER6, &udp6));
    add("v6-icmp6-too-big-udp", icmp6(2, 0, ROUTER6, &udp6));
    add("v6-icmp6-param-problem-udp", icmp6(4, 1, TGT6, &udp6));
    add("v6-icmp6-quote-bad-flow", {
        let mut q = udp6.clone();
        q[3] ^= 1;
        icmp6(1, 4, TGT6, &q)
    });
    add("v6-icmp6-quote-47-bytes", icmp6(1, 4, TGT6, &udp6[..47]));
    add(
        "v6-udp-reply-dns",
        udp_reply_to(&c, key6(53, Proto::Udp), ME6.into(), &{
            let mut r = dns_probe.clone();
            r[2] |= 0x80;
            r
        }),
    );
    add(
        "v6-udp-reply-empty-unknown-port",
        udp_reply_to(&c, key6(9999, Proto::Udp), ME6.into(), &[]),
    );
    add("v6-payload-len-past-buffer", {
        let mut t = syn6.clone();
        t[5] = 0xff;
        t
    });
    add("v6-ext-dest-opts-then-tcp", {
        // Destination options (8 bytes) inserted before the TCP header.
        let mut t = syn6[..40].to_vec();
        t[5] += 8;
        t[6] = 60;
        t.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        t.extend_from_slice(&syn6[40..]);
        t
    });
    add("v6-ext-chain-too-long", {
        let mut t = syn6[..40].to_vec();
        let chain = [60u8, 0, 0, 0, 0, 0, 0, 0].repeat(20);
        t[4..6].copy_from_slice(&((chain.len() + 24) as u16).to_be_bytes());
        t[6] = 60;
        t.extend_from_slice(&chain);
        t.extend_from_slice(&syn6[40..]);
        t
    });

    // Real Linux traffic: every captured IP frame, without Ethernet.
    for (name, frame) in captured() {
        if frame.len() > 14 && matches!(frame[12..14], [0x08, 0x00] | [0x86, 0xdd]) {
            add(&format!("linux-{name}"), frame[14..].to_vec());
        }
    }

    for (name, b) in &s {
        write(dir, &format!("{name}.bin"), b);
        if verbose() {
            let r = parse_ip(b).map(|p| validate(&p, &c, &[ME.into(), ME6.into()]));
            println!("{name:36} {r:?}");
        }
    }
    s.len()
}

/// The frames in src/wire/fixtures/, by name (without `.bin`), sorted.
fn captured() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../src/wire/fixtures");
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .expect("src/wire/fixtures")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".bin")?.to_string();
            Some((name, fs::read(&p).ok()?))
        })
        .collect();
    v.sort();
    v
}

fn parse_frame_seeds(dir: &Path) -> usize {
    let mut n = 0;
    for (name, frame) in captured() {
        write(dir, &format!("{name}.bin"), &frame);
        n += 1;
        if name == "arp-reply" {
            let mut f = frame.clone();
            f[18] = 255; // hardware address length past the frame
            write(dir, "arp-hlen-255.bin", &f);
            write(dir, "arp-truncated.bin", &frame[..30]);
            n += 2;
        }
        if name == "ndp-na" {
            let mut f = frame.clone();
            let last = f.len() - 7;
            f[last] = 0; // option length 0
            write(dir, "ndp-na-option-len-0.bin", &f);
            n += 1;
        }
    }
    write(dir, "ethernet-13-bytes.bin", &[0xff; 13]);
    write(dir, "ethernet-vlan.bin", &[[0u8; 12].as_slice(), &[0x81, 0, 0, 1, 8, 0]].concat());
    n + 2
}

fn ipv6_payload_seeds(dir: &Path) -> usize {
    let mut n = 0;
    for (name, frame) in captured() {
        if frame.len() < 54 || frame[12..14] != [0x86, 0xdd] {
            continue;
        }
        let ip = &frame[14..];
        let mut input = vec![ip[6], ip[7]];
        input.extend_from_slice(&ip[40..]);
        write(dir, &format!("{name}.bin"), &input);
        n += 1;
    }
    n
}

fn wire_reprs_seeds(dir: &Path) -> usize {
    // Pick byte: see fuzz_targets/wire_reprs.rs (0 ethernet, 1 arp, 2 ipv4,
    // 3 ipv6, 4 tcp, 5 udp, 6 icmpv4, 7 icmpv6).
    let mut n = 0;
    for (name, frame) in captured() {
        let et = &frame[12..14];
        let l3 = &frame[14..];
        let mut put = |pick: u8, tag: &str, bytes: &[u8]| {
            let mut input = vec![pick];
            input.extend_from_slice(bytes);
            write(dir, &format!("{pick}-{name}{tag}.bin"), &input);
            n += 1;
        };
        put(0, "", &frame);
        match et {
            [0x08, 0x06] => put(1, "", l3),
            [0x08, 0x00] => {
                put(2, "", l3);
                let ihl = usize::from(l3[0] & 15) * 4;
                let pick = match l3[9] {
                    6 => 4,
                    17 => 5,
                    _ => 6,
                };
                put(pick, "-l4", &l3[ihl..]);
            }
            [0x86, 0xdd] => {
                put(3, "", l3);
                let pick = match l3[6] {
                    6 => 4,
                    17 => 5,
                    _ => 7,
                };
                put(pick, "-l4", &l3[40..]);
            }
            _ => {}
        }
    }
    n
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
    let targets: [(&str, fn(&Path) -> usize); 5] = [
        ("parse_reply", parse_reply_seeds),
        ("parse_frame", parse_frame_seeds),
        ("ipv6_payload", ipv6_payload_seeds),
        ("wire_reprs", wire_reprs_seeds),
        ("udp_payloads", udp_payload_seeds),
    ];
    for (name, seeds) in targets {
        let dir = root.join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        let n = seeds(&dir);
        println!("wrote {n} seeds to {}", dir.display());
    }
}
