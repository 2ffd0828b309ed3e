//! Raw-socket backend: a sender thread that writes SYN and UDP probes
//! through pnet, and a receiver thread that reads TCP, UDP and ICMP from
//! raw sockets, parses with `wire`, and validates with `validate`.
//!
//! Invariants: the sender builds every packet into one reused buffer; the
//! receiver never believes an unvalidated packet; neither prints.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::RawFd;
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use pnet::transport::{
    TransportChannelType, TransportReceiver, TransportSender, transport_channel,
};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;

use super::{Backend, Counters, OpenError, PROBE_QUEUE, Probe, REPLY_QUEUE};
use crate::probe::{Cookies, Proto};
use crate::validate::{Drop, Reply, validate};
use crate::wire::{self, IpRepr, Transport, payloads, tcp, udp};

/// The addresses probes have been sent from: the sender adds each new one
/// before its first probe leaves, the receiver believes only replies to them.
type Sources = Arc<RwLock<Vec<IpAddr>>>;

fn open(
    proto: pnet_packet::ip::IpNextHeaderProtocol,
) -> Result<(TransportSender, TransportReceiver), OpenError> {
    match transport_channel(0, TransportChannelType::Layer3(proto)) {
        Ok(c) => Ok(c),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
            Err(OpenError::Permission(e))
        }
        Err(e) => Err(OpenError::Other(
            anyhow::Error::new(e).context("opening a raw socket"),
        )),
    }
}

fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: libc::c_int,
) -> io::Result<()> {
    // SAFETY: fd is an open socket owned by a pnet FileDesc that outlives
    // this call; the option value is a plain int.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Open raw sockets and start the sender and receiver threads.
/// `udp` adds a raw UDP receive socket.
/// `counters` may be shared with other backends of the same scan.
pub fn start(cookies: Cookies, udp: bool, counters: Arc<Counters>) -> Result<Backend, OpenError> {
    let (tx, tcp_rx) = open(IpNextHeaderProtocols::Tcp)?;
    let (_icmp_tx, icmp_rx) = open(IpNextHeaderProtocols::Icmp)?;
    let mut rx = vec![tcp_rx, icmp_rx];
    if udp {
        rx.push(open(IpNextHeaderProtocols::Udp)?.1);
    }
    for r in &rx {
        // Bigger receive buffers ride out bursts of replies; best effort
        // (FORCE needs CAP_NET_ADMIN, the plain option is capped).
        let fd = r.socket.fd;
        if set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20).is_err() {
            let _ = set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20);
        }
    }
    let (probe_tx, probe_rx) = bounded::<Vec<Probe>>(PROBE_QUEUE);
    let (reply_tx, reply_rx) = bounded::<Vec<Reply>>(REPLY_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);

    let sources: Sources = Arc::default();
    let c = counters.clone();
    let s = sources.clone();
    let sender = thread::Builder::new()
        .name("rawscan-send".into())
        .spawn(move || send_loop(tx, probe_rx, cookies, &c, &s))
        .map_err(|e| OpenError::Other(e.into()))?;
    let c = counters.clone();
    let receiver = thread::Builder::new()
        .name("rawscan-recv".into())
        .spawn(move || recv_loop(rx, reply_tx, stop_rx, cookies, &c, &sources))
        .map_err(|e| OpenError::Other(e.into()))?;
    Ok(Backend {
        probes: probe_tx,
        replies: reply_rx,
        counters,
        max_inflight: None,
        stop: stop_tx,
        threads: vec![sender, receiver],
    })
}

/// The local address the kernel would use to reach `dst`.
fn source_for(dst: IpAddr) -> io::Result<Ipv4Addr> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.connect(SocketAddr::new(dst, 9))?;
    match s.local_addr()?.ip() {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "IPv6 source")),
    }
}

fn send_loop(
    mut tx: TransportSender,
    probes: Receiver<Vec<Probe>>,
    cookies: Cookies,
    c: &Counters,
    shared_sources: &Sources,
) {
    let mut buf = vec![0u8; 2048];
    let mut payload = Vec::with_capacity(1500);
    let mut sources: HashMap<IpAddr, Ipv4Addr> = HashMap::new();
    for p in probes.iter().flatten() {
        let dst = match p.key.ip {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => {
                Counters::inc(&c.send_errors);
                continue;
            }
        };
        if sources.len() > 4096 {
            sources.clear();
        }
        let src = match sources.get(&p.key.ip) {
            Some(s) => *s,
            None => match source_for(p.key.ip) {
                Ok(s) => {
                    let mut shared = shared_sources.write().unwrap_or_else(|e| e.into_inner());
                    if !shared.contains(&IpAddr::V4(s)) {
                        shared.push(IpAddr::V4(s));
                    }
                    *sources.entry(p.key.ip).or_insert(s)
                }
                Err(_) => {
                    Counters::inc(&c.send_errors);
                    continue;
                }
            },
        };
        let src_port = cookies.src_port(&p.key);
        let seq = cookies.seq(&p.key);
        let (ip_id, transport) = match p.key.proto {
            Proto::Tcp => (
                (seq >> 16) as u16,
                Transport::Tcp(tcp::syn_probe(src_port, p.key.port, seq)),
            ),
            Proto::Udp => {
                payload.clear();
                if let Some(pl) = payloads::payload_for(p.key.port) {
                    pl.write(seq, &mut payload);
                }
                (
                    // ICMP errors quote the IP ID: it carries the cookie.
                    cookies.udp_ip_id(&p.key),
                    Transport::Udp(udp::Repr {
                        src_port,
                        dst_port: p.key.port,
                        payload: &payload,
                    }),
                )
            }
        };
        let ip = IpRepr::probe(IpAddr::V4(src), IpAddr::V4(dst), ip_id, 0);
        let built = wire::emit_packet(&mut buf, &ip, &transport);
        let Ok(n) = built else {
            Counters::inc(&c.send_errors);
            continue;
        };
        let Some(pkt) = Ipv4Packet::new(&buf[..n]) else {
            Counters::inc(&c.send_errors);
            continue;
        };
        // ENOBUFS means the qdisc is full: back off briefly and retry.
        let mut tries = 0;
        loop {
            match tx.send_to(&pkt, p.key.ip) {
                Ok(_) => {
                    Counters::inc(&c.sent);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && tries < 100 => {
                    tries += 1;
                    thread::sleep(Duration::from_micros(200));
                }
                Err(_) => {
                    Counters::inc(&c.send_errors);
                    break;
                }
            }
        }
    }
}

fn recv_loop(
    rx: Vec<TransportReceiver>,
    replies: Sender<Vec<Reply>>,
    stop: Receiver<()>,
    cookies: Cookies,
    c: &Counters,
    sources: &Sources,
) {
    let mut buf = vec![0u8; 65_536];
    let mut fds: Vec<libc::pollfd> = rx
        .iter()
        .map(|r| libc::pollfd {
            fd: r.socket.fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        if let Err(TryRecvError::Disconnected) = stop.try_recv() {
            return;
        }
        // SAFETY: fds points to fds.len() initialized pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 20) };
        if n <= 0 {
            continue;
        }
        let mut batch = Vec::new();
        let sources = sources.read().unwrap_or_else(|e| e.into_inner());
        for pfd in fds.iter_mut() {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            pfd.revents = 0;
            for _ in 0..1024 {
                // SAFETY: buf is a valid writable buffer of buf.len() bytes.
                let len = unsafe {
                    libc::recv(
                        pfd.fd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if len <= 0 {
                    break;
                }
                Counters::inc(&c.received);
                let bytes = &buf[..len as usize];
                let reply = match wire::parse_ipv4(bytes) {
                    Err(_) => {
                        Counters::inc(&c.malformed);
                        continue;
                    }
                    Ok(pkt) => validate(&pkt, &cookies, &sources),
                };
                match reply {
                    Ok(r) => batch.push(r),
                    Err(Drop::BadCookie | Drop::BadQuote | Drop::WrongPort | Drop::NotToUs) => {
                        Counters::inc(&c.bad_cookie)
                    }
                    Err(Drop::NotAReply | Drop::IgnoredIcmp) => Counters::inc(&c.not_reply),
                }
            }
        }
        drop(sources);
        // Under load, let replies gather for a moment: one wake-up per
        // millisecond instead of one per packet (the socket buffers are
        // large enough to hold them).
        let busy = batch.len() >= 8;
        if !batch.is_empty() {
            let n = batch.len() as u64;
            if replies
                .send_timeout(batch, Duration::from_millis(100))
                .is_err()
            {
                c.dropped_late
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                if let Err(TryRecvError::Disconnected) = stop.try_recv() {
                    return;
                }
            }
        }
        if busy {
            thread::sleep(Duration::from_millis(1));
        }
    }
}
