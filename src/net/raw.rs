//! Raw-socket backend, both IP families: a sender thread that writes the
//! probes the probe modules make, in batches, and a receiver thread that
//! reads TCP, UDP and ICMP/ICMPv6, parses with `wire` and believes only
//! what `probes::validate` proves.
//!
//! Sockets (all opened in `start`, before the privilege drop):
//! - IPv4 send: a pnet layer-3 raw socket (`IP_HDRINCL`): whole IPv4
//!   packets as the modules build them.
//! - IPv6 send: `AF_INET6`/`SOCK_RAW`/`IPPROTO_RAW`, which on Linux takes
//!   the whole IPv6 header from us, so the flow label that carries a UDP
//!   probe's cookie and the hop limit are ours.
//! - IPv4 receive: raw TCP and ICMP sockets (and UDP for `-sU`): whole
//!   packets, header first.
//! - IPv6 receive: raw TCP and ICMPv6 sockets (and UDP). The kernel strips
//!   the IPv6 header, so each datagram is read with `recvmsg` asking for
//!   `IPV6_PKTINFO` (its destination, which must be one of our sources) and
//!   `IPV6_HOPLIMIT` (for `reason_ttl`); its source is the message's
//!   address. The ICMPv6 socket passes only error types, echo replies and
//!   Neighbour Advertisements (`ICMP6_FILTER`).
//!   An `AF_PACKET` socket would also give the header, but it copies every
//!   frame of an interface (the whole link's traffic, one socket per
//!   interface); raw sockets get only the protocols probed, from every
//!   interface, with the kernel's own reassembly and checks.
//!
//! Sending is batched: the probes of a channel batch are built into one
//! arena and handed to the kernel with `sendmmsg`, one system call per up
//! to 64 packets and family. `ENOBUFS` (a full queue) waits briefly and
//! tries again.
//!
//! Invariants: the sender adds each source address to the shared set
//! before the first probe from it leaves; the receiver never believes an
//! unvalidated packet; neither prints; per-packet failures are counters.

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};
use pnet::transport::{
    TransportChannelType, TransportReceiver, TransportSender, transport_channel,
};
use pnet_packet::ip::IpNextHeaderProtocols;

use super::route::Link;
use super::sys::{SockAddr, cmsgs, read_pod, set_opt, sockaddr_of};
use super::{Backend, Counters, OpenError, PROBE_BATCH, PROBE_QUEUE, Probe, REPLY_QUEUE};
use crate::probe::{Cookies, Proto, Reason};
use crate::probes::{self, Drop, Reply};
use crate::wire::Frame;
use crate::wire::ethernet::{EthernetAddress, ethertype};
use crate::wire::packet::FramePayload;
use crate::wire::{self, Ipv6Meta, proto};

/// The addresses probes have been sent from: the sender adds each new one
/// before its first probe leaves, the receiver believes only replies to them.
type Sources = Arc<RwLock<Vec<IpAddr>>>;

/// `<netinet/icmp6.h>`: the ICMPv6 socket option that filters by type.
const ICMP6_FILTER: libc::c_int = 1;

/// Room for one probe in the send arena (the largest UDP payload plus
/// headers fits).
const SLOT: usize = 1600;

fn permission_or(e: io::Error, what: &str) -> OpenError {
    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        OpenError::Permission(e)
    } else {
        OpenError::Other(anyhow::Error::new(e).context(format!("opening {what}")))
    }
}

fn open4(
    proto: pnet_packet::ip::IpNextHeaderProtocol,
) -> Result<(TransportSender, TransportReceiver), OpenError> {
    transport_channel(0, TransportChannelType::Layer3(proto))
        .map_err(|e| permission_or(e, "a raw IPv4 socket"))
}

fn open6(protocol: libc::c_int) -> Result<OwnedFd, OpenError> {
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET6,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(permission_or(
            io::Error::last_os_error(),
            "a raw IPv6 socket",
        ));
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Bigger receive buffers ride out bursts of replies; best effort (FORCE
/// needs CAP_NET_ADMIN, the plain option is capped).
fn big_rcvbuf(fd: RawFd) {
    let size: libc::c_int = 8 << 20;
    if set_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
        let _ = set_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
    }
}

/// A big send buffer: a probe to an on-link address whose neighbour
/// entry is unresolved waits in the kernel's neighbour queue, charged to
/// the socket, until resolution fails (3 s on Linux); a small buffer would
/// block the sender on a sweep of mostly silent local addresses
/// (`--disable-arp-ping`). Best effort, as `big_rcvbuf`.
fn big_sndbuf(fd: RawFd) {
    let size: libc::c_int = 16 << 20;
    if set_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &size).is_err() {
        let _ = set_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &size);
    }
}

/// A receive socket and how to read it.
enum RxSock {
    /// Raw IPv4: whole packets.
    V4(TransportReceiver),
    /// Raw IPv6 of this protocol: payloads plus ancillary data.
    V6(OwnedFd, u8),
    /// AF_PACKET bound to one interface, ARP frames only; the
    /// interface's MAC address (ARP replies must be to it).
    Arp(OwnedFd, EthernetAddress),
}

impl RxSock {
    fn fd(&self) -> RawFd {
        match self {
            RxSock::V4(r) => r.socket.fd,
            RxSock::V6(fd, _) => fd.as_raw_fd(),
            RxSock::Arp(fd, _) => fd.as_raw_fd(),
        }
    }
}

/// What the scan needs from the raw backend.
#[derive(Clone, Debug)]
pub struct Needs {
    pub udp: bool,
    pub v4: bool,
    pub v6: bool,
    /// Host discovery by ARP / Neighbour Discovery on this link.
    pub link: Option<Link>,
}

/// An AF_PACKET socket on `link`: `ethertype` 0 receives nothing (a
/// sending socket), else frames of that type.
fn open_packet(link: &Link, ethertype: u16) -> Result<OwnedFd, OpenError> {
    let proto = ethertype.to_be();
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(proto),
        )
    };
    if fd < 0 {
        return Err(permission_or(
            io::Error::last_os_error(),
            "a packet socket for ARP",
        ));
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zeroed is valid.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = proto;
    sll.sll_ifindex = link.index as libc::c_int;
    // SAFETY: sll is a valid sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(permission_or(
            io::Error::last_os_error(),
            "binding the packet socket",
        ));
    }
    Ok(fd)
}

/// The layer-2 sender of ARP requests and Neighbour Solicitations.
struct L2 {
    fd: OwnedFd,
    link: Link,
    frame: Vec<u8>,
}

impl L2 {
    fn send(&mut self, target: IpAddr, src: IpAddr, c: &Counters) {
        let Ok(n) = probes::arp::make_frame(target, src, self.link.mac, &mut self.frame) else {
            Counters::inc(&c.send_errors);
            return;
        };
        // SAFETY: sockaddr_ll is plain data; zeroed is valid.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_ifindex = self.link.index as libc::c_int;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&self.frame[..6]);
        // SAFETY: the frame buffer holds n bytes; sll is a valid address.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                self.frame.as_ptr().cast(),
                n,
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            Counters::inc(&c.send_errors);
        } else {
            Counters::inc(&c.sent);
        }
    }
}

/// Open raw sockets and start the sender and receiver threads.
/// `counters` may be shared with other backends of the same scan.
pub fn start(
    cookies: Cookies,
    needs: Needs,
    counters: Arc<Counters>,
) -> Result<Backend, OpenError> {
    // IPv4 sockets first: they decide whether raw sockets are allowed at
    // all (the fallback asks for Permission).
    let (tx4, tcp_rx) = open4(IpNextHeaderProtocols::Tcp)?;
    let mut rx = vec![RxSock::V4(tcp_rx)];
    if needs.v4 {
        rx.push(RxSock::V4(open4(IpNextHeaderProtocols::Icmp)?.1));
        if needs.udp {
            rx.push(RxSock::V4(open4(IpNextHeaderProtocols::Udp)?.1));
        }
    }
    let mut tx6 = None;
    if needs.v6 {
        tx6 = Some(open6(libc::IPPROTO_RAW)?);
        let mut protos = vec![proto::TCP, proto::ICMPV6];
        if needs.udp {
            protos.push(proto::UDP);
        }
        for p in protos {
            let fd = open6(libc::c_int::from(p))?;
            let on: libc::c_int = 1;
            set_opt(
                fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVPKTINFO,
                &on,
            )
            .and_then(|_| {
                set_opt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_RECVHOPLIMIT,
                    &on,
                )
            })
            .map_err(|e| permission_or(e, "IPv6 receive options"))?;
            if p == proto::ICMPV6 {
                // Block every type but the errors (1 to 4), echo replies
                // (129, discovery) and Neighbour Advertisements (136,
                // discovery on-link).
                let mut filter = [u32::MAX; 8];
                filter[0] &= !((1 << 1) | (1 << 2) | (1 << 3) | (1 << 4));
                filter[129 / 32] &= !(1 << (129 % 32));
                filter[136 / 32] &= !(1 << (136 % 32));
                set_opt(fd.as_raw_fd(), libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)
                    .map_err(|e| permission_or(e, "the ICMPv6 filter"))?;
            }
            rx.push(RxSock::V6(fd, p));
        }
    }
    let mut l2 = None;
    if let Some(link) = &needs.link {
        rx.push(RxSock::Arp(open_packet(link, ethertype::ARP)?, link.mac));
        l2 = Some(L2 {
            fd: open_packet(link, 0)?,
            link: link.clone(),
            frame: vec![0u8; 128],
        });
    }
    for r in &rx {
        big_rcvbuf(r.fd());
    }
    big_sndbuf(tx4.socket.fd);
    if let Some(fd) = &tx6 {
        big_sndbuf(fd.as_raw_fd());
    }
    let (probe_tx, probe_rx) = bounded::<Vec<Probe>>(PROBE_QUEUE);
    let (reply_tx, reply_rx) = bounded::<Vec<Reply>>(REPLY_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);

    let sources: Sources = Arc::default();
    let c = counters.clone();
    let s = sources.clone();
    let sender = thread::Builder::new()
        .name("rawscan-send".into())
        .spawn(move || {
            let mut sender = Sender2 {
                tx4,
                tx6,
                cookies,
                l2,
                sources: HashMap::new(),
                shared: s,
                v4: Arena::new(),
                v6: Arena::new(),
            };
            for batch in probe_rx.iter() {
                sender.send(&batch, &c);
            }
        })
        .map_err(|e| OpenError::Other(e.into()))?;
    let c = counters.clone();
    let neighbours = super::Neighbours::default();
    let n = neighbours.clone();
    let receiver = thread::Builder::new()
        .name("rawscan-recv".into())
        .spawn(move || recv_loop(rx, reply_tx, stop_rx, cookies, &c, &sources, &n))
        .map_err(|e| OpenError::Other(e.into()))?;
    Ok(Backend {
        neighbours,
        probes: probe_tx,
        replies: reply_rx,
        counters,
        max_inflight: None,
        stop: stop_tx,
        threads: vec![sender, receiver],
    })
}

/// The local address the kernel would use to reach `dst`.
fn source_for(dst: IpAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match dst {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any)?;
    s.connect(SocketAddr::new(dst, 9))?;
    Ok(s.local_addr()?.ip())
}

/// Packets built for one `sendmmsg`, of one family.
struct Arena {
    buf: Vec<u8>,
    lens: Vec<usize>,
    dsts: Vec<IpAddr>,
}

impl Arena {
    fn new() -> Self {
        Arena {
            buf: vec![0u8; SLOT * PROBE_BATCH],
            lens: Vec::with_capacity(PROBE_BATCH),
            dsts: Vec::with_capacity(PROBE_BATCH),
        }
    }

    fn slot(&mut self) -> Option<&mut [u8]> {
        let i = self.lens.len();
        (i < PROBE_BATCH).then(|| &mut self.buf[i * SLOT..(i + 1) * SLOT])
    }
}

/// A socket address for `sendmmsg`, either family.
#[repr(C)]
struct Sender2 {
    tx4: TransportSender,
    tx6: Option<OwnedFd>,
    cookies: Cookies,
    l2: Option<L2>,
    sources: HashMap<IpAddr, IpAddr>,
    shared: Sources,
    v4: Arena,
    v6: Arena,
}

impl Sender2 {
    fn source(&mut self, p: &Probe) -> io::Result<IpAddr> {
        let src = match p.src {
            Some(s) => s,
            None => {
                if let Some(s) = self.sources.get(&p.key.ip) {
                    return Ok(*s);
                }
                if self.sources.len() > 4096 {
                    self.sources.clear();
                }
                let s = source_for(p.key.ip)?;
                self.sources.insert(p.key.ip, s);
                s
            }
        };
        let known = self
            .shared
            .read()
            .map(|v| v.contains(&src))
            .unwrap_or_else(|e| e.into_inner().contains(&src));
        if !known {
            let mut w = self.shared.write().unwrap_or_else(|e| e.into_inner());
            if !w.contains(&src) {
                w.push(src);
            }
        }
        Ok(src)
    }

    fn send(&mut self, batch: &[Probe], c: &Counters) {
        for p in batch {
            let Ok(src) = self.source(p) else {
                Counters::inc(&c.send_errors);
                continue;
            };
            if src.is_ipv4() != p.key.ip.is_ipv4() {
                Counters::inc(&c.send_errors);
                continue;
            }
            if p.key.proto == Proto::Arp {
                match self.l2.as_mut() {
                    Some(l2) => l2.send(p.key.ip, src, c),
                    None => Counters::inc(&c.send_errors),
                }
                continue;
            }
            let arena = if p.key.ip.is_ipv4() {
                &mut self.v4
            } else {
                &mut self.v6
            };
            let Some(slot) = arena.slot() else {
                continue; // cannot happen: a batch holds at most PROBE_BATCH
            };
            match probes::module(p.key.proto).make(&p.key, src, p.attempt, &self.cookies, slot) {
                Ok(n) => {
                    arena.lens.push(n);
                    arena.dsts.push(p.key.ip);
                }
                Err(_) => Counters::inc(&c.send_errors),
            }
        }
        let fd4 = self.tx4.socket.fd;
        flush(fd4, &mut self.v4, c);
        match &self.tx6 {
            Some(fd) => flush(fd.as_raw_fd(), &mut self.v6, c),
            None => {
                let n = self.v6.lens.len() as u64;
                c.send_errors
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                self.v6.lens.clear();
                self.v6.dsts.clear();
            }
        }
    }
}

/// Hand the arena's packets to the kernel with `sendmmsg`, and empty it.
fn flush(fd: RawFd, a: &mut Arena, c: &Counters) {
    let n = a.lens.len();
    if n == 0 {
        return;
    }
    let mut addrs: Vec<(SockAddr, libc::socklen_t)> = a
        .dsts
        .iter()
        .map(|d| sockaddr_of(SocketAddr::new(*d, 0)))
        .collect();
    let mut iovs: Vec<libc::iovec> = (0..n)
        .map(|i| libc::iovec {
            iov_base: a.buf[i * SLOT..].as_mut_ptr().cast(),
            iov_len: a.lens[i],
        })
        .collect();
    // SAFETY: mmsghdr is plain data; zeroed is a valid initial state.
    let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { mem::zeroed() }).collect();
    for i in 0..n {
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&mut addrs[i].0 as *mut SockAddr).cast();
        h.msg_namelen = addrs[i].1;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
    }
    let mut done = 0;
    let mut waits = 0;
    while done < n {
        // SAFETY: hdrs[done..n] point to live iovecs, buffers and
        // addresses owned by this frame and by the arena.
        let r =
            unsafe { libc::sendmmsg(fd, hdrs[done..].as_mut_ptr(), (n - done) as libc::c_uint, 0) };
        if r > 0 {
            done += r as usize;
            c.sent
                .fetch_add(r as u64, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOBUFS) && waits < 100 {
            // The queue is full: let it drain.
            waits += 1;
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        // This packet cannot go (a route error, say): count it, go on.
        Counters::inc(&c.send_errors);
        done += 1;
    }
    a.lens.clear();
    a.dsts.clear();
}

/// Read one datagram from a raw IPv6 socket with its ancillary data.
fn recv6(fd: RawFd, buf: &mut [u8]) -> Option<(usize, Ipv6Meta)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: sockaddr_in6 is plain data.
    let mut from: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; zeroed is a valid initial state.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    // SAFETY: msg points to valid buffers for the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n <= 0 {
        return None;
    }
    let mut dst = None;
    let mut hop_limit = None;
    for (level, ty, data) in cmsgs(&msg) {
        if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
            dst = read_pod::<libc::in6_pktinfo>(data).map(|i| Ipv6Addr::from(i.ipi6_addr.s6_addr));
        } else if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_HOPLIMIT {
            hop_limit = read_pod::<i32>(data).and_then(|v| u8::try_from(v).ok());
        }
    }
    let meta = Ipv6Meta {
        src: Ipv6Addr::from(from.sin6_addr.s6_addr),
        dst: dst?,
        hop_limit: hop_limit.unwrap_or(0),
    };
    Some((n as usize, meta))
}

/// One datagram waiting on `fd` into `buf`, without blocking; None when
/// there is none (or on an error).
fn recv_now(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: buf is a valid writable buffer of buf.len() bytes.
    let len = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    (len > 0).then_some(len as usize)
}

fn recv_loop(
    rx: Vec<RxSock>,
    replies: Sender<Vec<Reply>>,
    stop: Receiver<()>,
    cookies: Cookies,
    c: &Counters,
    sources: &Sources,
    neighbours: &super::Neighbours,
) {
    let mut buf = vec![0u8; 65_536];
    let learn = |ip: IpAddr, mac: EthernetAddress| {
        let mut m = neighbours.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(ip, mac);
    };
    let mut fds: Vec<libc::pollfd> = rx
        .iter()
        .map(|r| libc::pollfd {
            fd: r.fd(),
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
        for (pfd, sock) in fds.iter_mut().zip(&rx) {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            pfd.revents = 0;
            for _ in 0..1024 {
                let parsed = match sock {
                    RxSock::V4(r) => {
                        let Some(len) = recv_now(r.socket.fd, &mut buf) else {
                            break;
                        };
                        Counters::inc(&c.received);
                        wire::parse_ipv4(&buf[..len])
                    }
                    RxSock::V6(fd, p) => {
                        let Some((len, meta)) = recv6(fd.as_raw_fd(), &mut buf) else {
                            break;
                        };
                        Counters::inc(&c.received);
                        wire::parse_ipv6_payload(meta, *p, &buf[..len])
                    }
                    RxSock::Arp(fd, mac) => {
                        let Some(len) = recv_now(fd.as_raw_fd(), &mut buf) else {
                            break;
                        };
                        Counters::inc(&c.received);
                        let reply = match wire::parse_frame(&buf[..len]) {
                            Ok(Frame {
                                payload: FramePayload::Arp(a),
                                ..
                            }) => probes::arp::validate_arp(&a, *mac, &sources)
                                .inspect(|r| learn(r.key.ip, a.source_hardware_addr)),
                            Ok(_) => Err(Drop::NotAReply),
                            Err(_) => {
                                Counters::inc(&c.malformed);
                                continue;
                            }
                        };
                        match reply {
                            Ok(r) => batch.push(r),
                            Err(Drop::NotAReply) => Counters::inc(&c.not_reply),
                            Err(_) => Counters::inc(&c.bad_cookie),
                        }
                        continue;
                    }
                };
                let reply = match parsed {
                    Err(_) => {
                        Counters::inc(&c.malformed);
                        continue;
                    }
                    Ok(pkt) => {
                        let r = probes::validate(&pkt, &cookies, &sources);
                        if let (
                            Ok(Reply {
                                reason: Reason::NdResponse,
                                key,
                                ..
                            }),
                            wire::Packet::Icmp(wire::IcmpInfo {
                                message:
                                    wire::IcmpMessage::V6(wire::icmpv6::Repr::NeighborAdvert {
                                        target_lladdr: Some(mac),
                                        ..
                                    }),
                                ..
                            }),
                        ) = (&r, &pkt)
                        {
                            learn(key.ip, *mac);
                        }
                        r
                    }
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
