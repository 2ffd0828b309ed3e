//! The machine's raw-send ceiling, for scripts/bench.sh (scenario
//! `control-ceiling`): a tight loop that builds rawscan's own SYN probes
//! (`probes::module(Proto::Tcp).make`, ports 1-65535 over and over, each
//! into one reused buffer) and writes each with one `sendto(2)` on a raw
//! IPv4 socket, for a few seconds, then prints packets per second.  No
//! pacing, no batching, no receiving: what one thread and the kernel can
//! push, the number a scanner's `-T5` rate is judged against.
//!
//!   ip netns exec <scanner ns> target/release/examples/send_ceiling SRC DST [SECONDS]
//!
//! Prints one line: `send_ceiling: N packets in S s = R packets/s (E
//! send errors)`.  DST must be in the lab's 198.18.0.0/15 (or loopback):
//! this floods it.  Needs CAP_NET_RAW.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rawscan::probe::{Cookies, ProbeKey, Proto};
use rawscan::probes;

fn usage() -> ! {
    eprintln!("usage: send_ceiling SRC DST [SECONDS]   (DST in 198.18.0.0/15 or 127.0.0.0/8)");
    std::process::exit(2);
}

/// The only destinations this tool will flood: the lab range and loopback.
fn lab_address(a: Ipv4Addr) -> bool {
    let o = a.octets();
    (o[0] == 198 && (o[1] & 0xFE) == 18) || a.is_loopback()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(2..=3).contains(&args.len()) {
        usage();
    }
    let (Ok(src), Ok(dst)) = (args[0].parse::<Ipv4Addr>(), args[1].parse::<Ipv4Addr>()) else {
        usage();
    };
    let secs: f64 = match args.get(2).map(|s| s.parse()) {
        None => 3.0,
        Some(Ok(s)) if s > 0.0 && s <= 60.0 => s,
        Some(_) => usage(),
    };
    if !lab_address(dst) {
        eprintln!("send_ceiling: {dst} is not a lab address (198.18.0.0/15 or loopback)");
        std::process::exit(2);
    }

    // SAFETY: plain socket(2); the descriptor is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        eprintln!(
            "send_ceiling: raw socket: {} (needs CAP_NET_RAW)",
            std::io::Error::last_os_error()
        );
        std::process::exit(1);
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };

    let module = probes::module(Proto::Tcp);
    let cookies = Cookies::new(*b"send-ceiling-key");
    let mut buf = [0u8; 128];
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut port: u16 = 0;
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    loop {
        // The clock is read once per 1024 packets.
        for _ in 0..1024 {
            port = port.checked_add(1).unwrap_or(1);
            let key = ProbeKey {
                ip: IpAddr::V4(dst),
                port,
                proto: Proto::Tcp,
            };
            let Ok(n) = module.make(&key, IpAddr::V4(src), 0, &cookies, &mut buf) else {
                errors += 1;
                continue;
            };
            // SAFETY: buf holds n initialised bytes; addr is a valid
            // sockaddr_in of the size given.
            let r = unsafe {
                libc::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    n,
                    0,
                    (&addr as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if r < 0 {
                errors += 1;
            } else {
                sent += 1;
            }
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // SAFETY: fd is ours and open.
    unsafe {
        libc::close(fd);
    }
    println!(
        "send_ceiling: {sent} packets in {elapsed:.2} s = {:.0} packets/s ({errors} send errors)",
        sent as f64 / elapsed
    );
}
