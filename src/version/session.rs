//! One port's conversation: connect, listen, probe, maybe TLS, decide.
//!
//! Invariants: every socket operation has a timeout no later than the
//! port's deadline; replies are read into a buffer of at most `READ_CAP`
//! bytes; a connection refused ends the conversation (the port closed);
//! a reset, a close or silence only ends the current probe.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::matchers::{self, Found};
use super::table::{self, Kind, Probe};
use super::tls::{self, TlsInfo, TlsStream};
use super::{Options, READ_CAP, Service, Target, Waits};
use crate::probe::Proto;

struct Ctx<'a> {
    addr: SocketAddr,
    port: u16,
    intensity: u8,
    waits: Waits,
    deadline: Instant,
    stop: &'a AtomicUsize,
}

impl Ctx<'_> {
    fn over(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.load(Ordering::Relaxed) > 0
    }
    /// `d`, cut to what is left before the deadline (at least 1 ms, as a
    /// zero socket timeout means "forever").
    fn cap(&self, d: Duration) -> Duration {
        d.min(self.deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1))
    }
}

/// Identify one port.
pub fn identify_port(t: &Target, opts: &Options, stop: &AtomicUsize) -> Service {
    let ctx = Ctx {
        addr: SocketAddr::new(t.key.ip, t.key.port),
        port: t.key.port,
        intensity: opts.intensity,
        waits: Waits::for_rtt(t.rtt),
        deadline: Instant::now() + opts.port_limit,
        stop,
    };
    let (found, tls) = match t.key.proto {
        Proto::Tcp => tcp(&ctx),
        Proto::Udp => (udp(&ctx), None),
        Proto::Icmp | Proto::TcpAck | Proto::Arp => (None, None),
    };
    match (found, tls) {
        (Some(f), tls) => Service::from_found(f, tls),
        (None, Some(info)) => {
            // TLS, and nothing recognisable inside it.
            let mut s = Service::from_table(t.key.proto, t.key.port);
            s.name = "ssl".into();
            s.method = super::Method::Probed;
            s.conf = 10;
            s.tls = Some(info);
            s
        }
        (None, None) => Service::from_table(t.key.proto, t.key.port),
    }
}

/// A connection, in clear or inside TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
    fn send(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(b),
            Conn::Tls(s) => {
                s.write_all(b)?;
                s.flush()
            }
        }
    }
}

/// Why a connection attempt failed.
enum ConnectError {
    /// Refused: the port is closed now; stop.
    Refused,
    /// Anything else (timeout, TLS failure): this layer cannot go on.
    Other,
}

fn connect(ctx: &Ctx, tls_layer: bool) -> Result<Conn, ConnectError> {
    let tcp = TcpStream::connect_timeout(&ctx.addr, ctx.cap(ctx.waits.connect)).map_err(|e| {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            ConnectError::Refused
        } else {
            ConnectError::Other
        }
    })?;
    let _ = tcp.set_nodelay(true);
    if !tls_layer {
        return Ok(Conn::Plain(tcp));
    }
    let hs_deadline = ctx.deadline.min(Instant::now() + ctx.waits.reply * 2);
    tls::handshake(tcp, ctx.addr.ip(), false, hs_deadline)
        .map(|(s, _)| Conn::Tls(Box::new(s)))
        .map_err(|_| ConnectError::Other)
}

/// Send `send` (if any) and read the reply: until the peer closes or
/// resets, `first` passes with no data, `idle` passes after data, the
/// deadline, or `READ_CAP` bytes.
fn exchange(ctx: &Ctx, conn: &mut Conn, send: &[u8], first: Duration) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    let mut open = true;
    if !send.is_empty() {
        let _ = conn.tcp().set_write_timeout(Some(ctx.cap(ctx.waits.reply)));
        if conn.send(send).is_err() {
            return (data, false);
        }
    }
    let mut chunk = [0u8; 4096];
    let mut wait = first;
    loop {
        if Instant::now() >= ctx.deadline {
            break;
        }
        if conn.tcp().set_read_timeout(Some(ctx.cap(wait))).is_err() {
            open = false;
            break;
        }
        match conn.read(&mut chunk) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => {
                let room = READ_CAP - data.len();
                data.extend_from_slice(&chunk[..n.min(room)]);
                if data.len() >= READ_CAP {
                    break;
                }
                wait = ctx.waits.idle;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                open = false;
                break;
            }
        }
    }
    (data, open)
}

/// The TCP conversation: the cleartext sequence, and TLS when the port or
/// a reply asks for it. Returns what was found and the TLS layer's facts.
fn tcp(ctx: &Ctx) -> (Option<Found>, Option<TlsInfo>) {
    let mut tls_info = None;
    let found = sequence(ctx, false, &mut tls_info, None);
    (found, tls_info)
}

fn tls_probe() -> &'static Probe {
    table::TCP_PROBES
        .iter()
        .find(|p| matches!(p.kind, Kind::Tls))
        .expect("the table has a TLS probe")
}

/// Run the probes of one layer (cleartext, or inside TLS) in table order.
/// `kept`: an open connection of this layer the first probe may use.
fn sequence(
    ctx: &Ctx,
    in_tls: bool,
    tls_info: &mut Option<TlsInfo>,
    mut kept: Option<Conn>,
) -> Option<Found> {
    let mut queue: VecDeque<&'static Probe> =
        table::order(Proto::Tcp, ctx.port, ctx.intensity, in_tls).into();
    let mut soft: Option<Found> = None;
    let mut tls_tried = in_tls;
    while let Some(p) = queue.pop_front() {
        if ctx.over() {
            break;
        }
        if let Some(s) = &soft
            && !p.has_service(s.service)
            && !matches!(p.kind, Kind::Tls)
        {
            continue;
        }
        let send: &[u8] = match p.kind {
            Kind::Tls => {
                if tls_tried {
                    continue;
                }
                tls_tried = true;
                kept = None;
                if let Some(f) = tls_layer(ctx, tls_info) {
                    return Some(f);
                }
                if tls_info.is_some() {
                    // TLS, nothing recognised inside: what the cleartext
                    // layer learned (if anything) does not apply.
                    return None;
                }
                continue;
            }
            Kind::Listen => &[],
            Kind::Send(b) => b,
        };
        let mut conn = match kept.take() {
            Some(c) => c,
            None => match connect(ctx, in_tls) {
                Ok(c) => c,
                Err(ConnectError::Refused) => break,
                Err(ConnectError::Other) => break,
            },
        };
        let first = match p.kind {
            Kind::Listen if table::client_speaks_first(ctx.port, in_tls) => ctx.waits.banner_short,
            Kind::Listen => ctx.waits.banner,
            _ => ctx.waits.reply,
        };
        let (reply, open) = exchange(ctx, &mut conn, send, first);
        if reply.is_empty() {
            if matches!(p.kind, Kind::Listen) && open {
                // Silent so far: the next request goes on this connection.
                kept = Some(conn);
            }
            continue;
        }
        let mut want_tls = !in_tls && matchers::looks_like_tls(&reply);
        if let Some(f) = table::identify(p, &reply) {
            want_tls |= f.wants_tls && !in_tls;
            if !f.soft && !f.wants_tls {
                return Some(f);
            }
            if soft.is_none() || !f.wants_tls {
                soft = Some(f);
            }
        }
        if want_tls && !tls_tried {
            queue.push_front(tls_probe());
        }
    }
    soft
}

/// Handshake (offering h2 to learn the server's choice), then the probes
/// inside TLS on fresh http/1.1-only sessions.
fn tls_layer(ctx: &Ctx, tls_info: &mut Option<TlsInfo>) -> Option<Found> {
    let tcp = TcpStream::connect_timeout(&ctx.addr, ctx.cap(ctx.waits.connect)).ok()?;
    let _ = tcp.set_nodelay(true);
    let hs_deadline = ctx.deadline.min(Instant::now() + ctx.waits.reply * 2);
    let (stream, info) = tls::handshake(tcp, ctx.addr.ip(), true, hs_deadline).ok()?;
    // An h2 session cannot carry the HTTP/1 probes: later probes use fresh
    // http/1.1-only sessions; otherwise the first probe reuses this one.
    let kept = (info.alpn.as_deref() != Some("h2")).then(|| Conn::Tls(Box::new(stream)));
    *tls_info = Some(info);
    let mut none = None;
    sequence(ctx, true, &mut none, kept)
}

/// The UDP conversation: each probe on a fresh connected socket; probes
/// meant for the port get a second try.
fn udp(ctx: &Ctx) -> Option<Found> {
    let mut soft: Option<Found> = None;
    for p in table::order(Proto::Udp, ctx.port, ctx.intensity, false) {
        if ctx.over() {
            break;
        }
        if let Some(s) = &soft
            && !p.has_service(s.service)
        {
            continue;
        }
        let Kind::Send(payload) = p.kind else {
            continue;
        };
        let tries = if p.ports.contains(&ctx.port) && soft.is_none() {
            2
        } else {
            1
        };
        for _ in 0..tries {
            if ctx.over() {
                break;
            }
            match udp_exchange(ctx, payload) {
                Ok(Some(reply)) => {
                    if let Some(f) = table::identify(p, &reply) {
                        if !f.soft {
                            return Some(f);
                        }
                        soft = Some(f);
                    }
                    break;
                }
                Ok(None) => {}
                // ICMP port unreachable: the port closed.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return soft,
                Err(_) => break,
            }
        }
    }
    soft
}

/// One datagram out, the first datagram back (or None on silence).
fn udp_exchange(ctx: &Ctx, payload: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let local: IpAddr = match ctx.addr.ip() {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let s = UdpSocket::bind((local, 0))?;
    s.connect(ctx.addr)?;
    s.send(payload)?;
    s.set_read_timeout(Some(ctx.cap(ctx.waits.reply)))?;
    let mut buf = vec![0u8; 8192];
    match s.recv(&mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    //! The conversation against loopback services run by the test itself.
    use super::*;
    use crate::probe::ProbeKey;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::thread;

    /// A loopback TCP service: `serve(conn)` per connection, until dropped.
    struct Svc {
        port: u16,
        stop: Arc<AtomicBool>,
    }

    impl Drop for Svc {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn serve(f: fn(TcpStream, &AtomicBool)) -> Svc {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        let s3 = s2.clone();
                        let _ = c.set_nonblocking(false);
                        thread::spawn(move || f(c, &s3));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Svc { port, stop }
    }

    fn target(port: u16, proto: Proto) -> Target {
        Target {
            key: ProbeKey {
                ip: "127.0.0.1".parse().unwrap(),
                port,
                proto,
            },
            rtt: Some(Duration::from_micros(50)),
        }
    }

    fn run(t: Target, limit: Duration, stop: &AtomicUsize) -> (Service, Duration) {
        let opts = Options {
            port_limit: limit,
            ..Options::default()
        };
        let t0 = Instant::now();
        let s = identify_port(&t, &opts, stop);
        (s, t0.elapsed())
    }

    #[test]
    fn a_banner_is_read_first() {
        let svc = serve(|mut c, _| {
            let _ = c.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n");
            thread::sleep(Duration::from_secs(2));
        });
        let (s, _) = run(
            target(svc.port, Proto::Tcp),
            Duration::from_secs(5),
            &AtomicUsize::new(0),
        );
        assert_eq!(s.name, "ssh");
        assert_eq!(
            s.version_line(),
            "OpenSSH 9.2p1 Debian 2+deb12u10 (protocol 2.0)"
        );
        assert_eq!(s.method, super::super::Method::Probed);
    }

    #[test]
    fn a_silent_service_gets_the_request_on_the_same_connection() {
        // Answers only the first thing it reads, and only if it is a GET;
        // any later connection is a one-shot (so reuse is what makes it work).
        let svc = serve(|mut c, _| {
            let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
            let mut b = [0u8; 256];
            if let Ok(n) = c.read(&mut b)
                && b[..n].starts_with(b"GET / ")
            {
                let _ = c.write_all(b"HTTP/1.0 200 OK\r\nServer: Caddy\r\n\r\n<title>x</title>");
            }
        });
        let (s, took) = run(
            target(svc.port, Proto::Tcp),
            Duration::from_secs(5),
            &AtomicUsize::new(0),
        );
        assert_eq!(
            (s.name.as_str(), s.product.as_deref()),
            ("http", Some("Caddy httpd"))
        );
        assert_eq!(s.details, [("http-title".to_string(), "x".to_string())]);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn endless_data_stops_at_the_port_limit() {
        let svc = serve(|mut c, stop| {
            let junk = [0x41u8; 8192];
            while !stop.load(Ordering::SeqCst) && c.write_all(&junk).is_ok() {}
        });
        let (s, took) = run(
            target(svc.port, Proto::Tcp),
            Duration::from_millis(1500),
            &AtomicUsize::new(0),
        );
        assert_eq!(s.method, super::super::Method::Table);
        assert!(took < Duration::from_millis(2500), "{took:?}");
    }

    #[test]
    fn an_interrupt_ends_the_conversation() {
        let svc = serve(|_, stop| {
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
        });
        let (s, took) = run(
            target(svc.port, Proto::Tcp),
            Duration::from_secs(10),
            &AtomicUsize::new(1),
        );
        assert_eq!(s.method, super::super::Method::Table);
        assert!(took < Duration::from_millis(500), "{took:?}");
    }

    #[test]
    fn a_closed_port_ends_at_once() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (s, took) = run(
            target(port, Proto::Tcp),
            Duration::from_secs(10),
            &AtomicUsize::new(0),
        );
        assert_eq!(s.method, super::super::Method::Table);
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn udp_version_bind() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let reply = include_bytes!("fixtures/dnsmasq-2.90-version-bind-udp.bin");
        thread::spawn(move || {
            let mut b = [0u8; 512];
            if let Ok((_, peer)) = sock.recv_from(&mut b) {
                let _ = sock.send_to(reply, peer);
            }
        });
        let (s, _) = run(
            target(port, Proto::Udp),
            Duration::from_secs(5),
            &AtomicUsize::new(0),
        );
        assert_eq!(s.version_line(), "dnsmasq 2.90");
    }
}
