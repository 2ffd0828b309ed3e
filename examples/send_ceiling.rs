//! The machine's raw-send ceiling, for scripts/bench.sh (scenario
//! `control-ceiling`): a tight loop that builds rawscan's own SYN probes
//! (`probes::module(Proto::Tcp).make`, ports 1-65535 over and over, each
//! into one reused buffer) and writes each with one `sendto(2)` on a raw
//! IPv4 socket, for a few seconds, then prints packets per second.  No
//! pacing, no batching, no receiving: what one thread and the kernel can
//! push, the number a scanner's `-T5` rate is judged against. With BATCH
//! above 1, the packets go BATCH at a time through one `sendmmsg(2)` (as
//! rawscan's sender does): the batched ceiling, shown beside it.
//!
//!   ip netns exec <scanner ns> target/release/examples/send_ceiling SRC DST [SECONDS [BATCH]]
//!
//! Prints one line: `send_ceiling: N packets in S s = R packets/s (E
//! send errors)`.  DST must be in the lab's 198.18.0.0/15 (or loopback):
//! this floods it.  Needs CAP_NET_RAW.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rawscan::probe::{Cookies, ProbeKey, Proto};
use rawscan::probes;

fn usage() -> ! {
    eprintln!(
        "usage: send_ceiling SRC DST [SECONDS [BATCH]]   (DST in 198.18.0.0/15 or 127.0.0.0/8)"
    );
    std::process::exit(2);
}

/// The only destinations this tool will flood: the lab range and loopback.
fn lab_address(a: Ipv4Addr) -> bool {
    let o = a.octets();
    (o[0] == 198 && (o[1] & 0xFE) == 18) || a.is_loopback()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(2..=4).contains(&args.len()) {
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
    let batch: usize = match args.get(3).map(|s| s.parse()) {
        None => 1,
        Some(Ok(b)) if (1..=1024).contains(&b) => b,
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
    const SLOT: usize = 128;
    let mut bufs = vec![0u8; SLOT * batch];
    let mut lens = vec![0usize; batch];
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut port: u16 = 0;
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    loop {
        // The clock is read once per 1024 batches.
        for _ in 0..1024 {
            for (i, len) in lens.iter_mut().enumerate() {
                port = port.checked_add(1).unwrap_or(1);
                let key = ProbeKey {
                    ip: IpAddr::V4(dst),
                    port,
                    proto: Proto::Tcp,
                };
                let slot = &mut bufs[i * SLOT..(i + 1) * SLOT];
                *len = match module.make(&key, IpAddr::V4(src), 0, &cookies, slot) {
                    Ok(n) => n,
                    Err(_) => {
                        errors += 1;
                        0
                    }
                };
            }
            if batch == 1 {
                // SAFETY: bufs holds lens[0] initialised bytes; addr is a
                // valid sockaddr_in of the size given.
                let r = unsafe {
                    libc::sendto(
                        fd,
                        bufs.as_ptr().cast(),
                        lens[0],
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
                continue;
            }
            let mut iovs: Vec<libc::iovec> = (0..batch)
                .map(|i| libc::iovec {
                    iov_base: bufs[i * SLOT..].as_mut_ptr().cast(),
                    iov_len: lens[i],
                })
                .collect();
            // SAFETY: mmsghdr is plain data; zeroed is a valid start.
            let mut hdrs: Vec<libc::mmsghdr> =
                (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
            for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
                h.msg_hdr.msg_name = (&addr as *const libc::sockaddr_in).cast_mut().cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: hdrs point to live iovecs, buffers and the address.
            let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), batch as libc::c_uint, 0) };
            if r < 0 {
                errors += batch as u64;
            } else {
                sent += r as u64;
                errors += (batch - r as usize) as u64;
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
        "send_ceiling: {sent} packets in {elapsed:.2} s = {:.0} packets/s ({errors} send errors, batch {batch})",
        sent as f64 / elapsed
    );
}
