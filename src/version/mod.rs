//! Service and version detection (`-sV`): what listens on each open port.
//!
//! Role: after the port scan, every open TCP port and every UDP port that
//! answered gets a short conversation: first the NULL probe (listen: SSH,
//! FTP, SMTP, POP3, IMAP, MySQL… announce themselves), then the protocol
//! probes of `table.rs` in order of likelihood for the port, stopping at the
//! first hard match; TLS (rustls) where the port or a reply asks for it,
//! with the same probes inside. What each reply means is decided by the
//! pure matchers of `matchers.rs`.
//!
//! Invariants:
//! - Only connect() and UDP sockets: no privileges needed.
//! - Bounded: at most `Options::parallel` ports at once; every read has a
//!   timeout derived from the host's measured round trip (`Waits`) and
//!   never goes past the port's deadline (`Options::port_limit`); at most
//!   `READ_CAP` bytes are kept per reply, so a service that streams forever
//!   or never closes costs bounded time and memory.
//! - A port always gets a result: what was learned (`method: probed`), or
//!   the port-number name (`method: table`). Nothing here panics on
//!   network data; a panic in a worker would still give the table result.
//! - No printing: results go to the caller's callback and return value.

pub mod matchers;
mod session;
pub mod table;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use crate::probe::{ProbeKey, Proto};
pub use tls::TlsInfo;

/// Most bytes kept from one reply.
pub const READ_CAP: usize = 16 * 1024;

/// How the service name was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// From what the service said.
    Probed,
    /// From the port number alone (nothing recognisable came back).
    Table,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Probed => "probed",
            Method::Table => "table",
        }
    }
}

/// What `-sV` found on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// nmap's service vocabulary: `ssh`, `http`, `domain`, `mysql`…
    pub name: String,
    pub product: Option<String>,
    pub version: Option<String>,
    pub extrainfo: Option<String>,
    pub hostname: Option<String>,
    pub ostype: Option<String>,
    pub cpe: Vec<String>,
    pub method: Method,
    /// 10 = hard match, 8 = the service is known but not its product,
    /// 3 = port-number table.
    pub conf: u8,
    /// The service was found inside TLS (`ssl/http`).
    pub tunnel_tls: bool,
    pub tls: Option<TlsInfo>,
    /// Extra facts, shown like nmap script output: (`http-title`, "…").
    pub details: Vec<(String, String)>,
}

impl Service {
    /// The port-number fallback.
    pub fn from_table(proto: Proto, port: u16) -> Service {
        Service {
            name: crate::services::service_name(proto, port)
                .unwrap_or("unknown")
                .to_string(),
            product: None,
            version: None,
            extrainfo: None,
            hostname: None,
            ostype: None,
            cpe: Vec::new(),
            method: Method::Table,
            conf: 3,
            tunnel_tls: false,
            tls: None,
            details: Vec::new(),
        }
    }

    fn from_found(f: matchers::Found, tls: Option<TlsInfo>) -> Service {
        Service {
            name: f.service.to_string(),
            product: f.product,
            version: f.version,
            extrainfo: f.extrainfo,
            hostname: f.hostname,
            ostype: f.ostype,
            cpe: f.cpe,
            method: Method::Probed,
            conf: if f.soft { 8 } else { 10 },
            tunnel_tls: tls.is_some(),
            tls,
            details: f
                .details
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }

    /// The SERVICE column: `ssl/http` for a service inside TLS.
    pub fn display_name(&self) -> String {
        if self.tunnel_tls {
            format!("ssl/{}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The VERSION column, as nmap writes it: `product version (extrainfo)`.
    pub fn version_line(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = &self.product {
            parts.push(p.clone());
        }
        if let Some(v) = &self.version {
            parts.push(v.clone());
        }
        if let Some(e) = &self.extrainfo {
            parts.push(format!("({e})"));
        }
        parts.join(" ")
    }

    /// Script-like lines: details, then the certificate summary.
    pub fn script_lines(&self) -> Vec<(String, String)> {
        let mut v = self.details.clone();
        if let Some(t) = &self.tls {
            v.push(("ssl-cert".into(), t.summary()));
        }
        v
    }
}

/// Results per (host, port, protocol).
pub type Services = BTreeMap<ProbeKey, Service>;

/// `-sV` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// 0..=9: probes rarer than this are skipped (except those meant for the port).
    pub intensity: u8,
    /// The most time one port may take, all probes included.
    pub port_limit: Duration,
    /// Ports probed at once.
    pub parallel: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            intensity: 7,
            port_limit: Duration::from_secs(10),
            parallel: 64,
        }
    }
}

/// Waits derived from a host's round-trip time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waits {
    pub connect: Duration,
    /// NULL probe on a port where the service usually speaks first (or unknown).
    pub banner: Duration,
    /// NULL probe on a port where the client usually speaks first.
    pub banner_short: Duration,
    /// First byte of a reply after a request.
    pub reply: Duration,
    /// Silence that ends a reply once data has arrived.
    pub idle: Duration,
}

impl Waits {
    /// `rtt`: the port scan's measured round trip to the host (None: unknown,
    /// taken as 100 ms). Floors cover a busy server's scheduling delay;
    /// multiples of the RTT cover a slow path.
    pub fn for_rtt(rtt: Option<Duration>) -> Waits {
        let r = rtt.unwrap_or(Duration::from_millis(100));
        let w = |mult: u32, floor_ms: u64, cap_ms: u64| {
            (r * mult + Duration::from_millis(floor_ms)).min(Duration::from_millis(cap_ms))
        };
        Waits {
            connect: w(10, 500, 5000),
            banner: w(4, 500, 5000),
            banner_short: w(4, 60, 2000),
            reply: w(6, 400, 5000),
            idle: w(2, 60, 1000),
        }
    }
}

/// One port to identify, with its host's measured round trip.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub key: ProbeKey,
    pub rtt: Option<Duration>,
}

/// Identify every target, at most `opts.parallel` at a time. `on_result`
/// is called on the calling thread as each port finishes (for streaming
/// outputs); the full map is returned. `stop` > 0 (an interrupt) ends
/// every port's conversation early with what it has learned.
pub fn detect(
    targets: &[Target],
    opts: &Options,
    stop: &AtomicUsize,
    on_result: &mut dyn FnMut(&ProbeKey, &Service),
) -> Services {
    let mut out = Services::new();
    if targets.is_empty() {
        return out;
    }
    let workers = opts.parallel.clamp(1, targets.len());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(ProbeKey, Service)>(workers);
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = targets.get(i) else { break };
                    let svc = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        session::identify_port(t, opts, stop)
                    }))
                    .unwrap_or_else(|_| Service::from_table(t.key.proto, t.key.port));
                    if tx.send((t.key, svc)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (key, svc) in rx {
            on_result(&key, &svc);
            out.insert(key, svc);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_the_rtt_within_bounds() {
        let lab = Waits::for_rtt(Some(Duration::from_micros(60)));
        assert!(
            lab.banner >= Duration::from_millis(500) && lab.banner < Duration::from_millis(501)
        );
        assert!(lab.banner_short < Duration::from_millis(61));
        let far = Waits::for_rtt(Some(Duration::from_millis(300)));
        assert_eq!(far.reply, Duration::from_millis(2200));
        assert_eq!(far.idle, Duration::from_millis(660));
        let lost = Waits::for_rtt(Some(Duration::from_secs(10)));
        assert_eq!(lost.banner, Duration::from_secs(5));
        assert_eq!(lost.idle, Duration::from_secs(1));
    }

    #[test]
    fn version_line_and_names_read_like_nmap() {
        let mut s = Service::from_table(Proto::Tcp, 22);
        assert_eq!(s.name, "ssh");
        assert_eq!(s.method, Method::Table);
        assert_eq!(s.version_line(), "");
        s.product = Some("OpenSSH".into());
        s.version = Some("9.2p1 Debian 2+deb12u3".into());
        s.extrainfo = Some("protocol 2.0".into());
        assert_eq!(
            s.version_line(),
            "OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)"
        );
        s.tunnel_tls = true;
        assert_eq!(s.display_name(), "ssl/ssh");
        assert_eq!(Service::from_table(Proto::Tcp, 40001).name, "unknown");
    }
}
