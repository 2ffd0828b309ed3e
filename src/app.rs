//! The program: parse flags, choose a backend, run the engine, write the
//! outputs, and decide the exit code. `main` only calls `app::main`.
//!
//! Invariants: exit codes are decided here alone (0 success, 1 runtime
//! error, 2 usage error, 130 interrupted); a closed stdout (broken pipe)
//! ends the program quietly with 0. The raw-vs-connect decision is made in
//! `start_backend` and nowhere else.

use std::ffi::OsString;
use std::io::{self, Write};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Args, nmap_compat};
use crate::config::{self, Config, TcpScan};
use crate::engine;
use crate::net::{self, Backend, OpenError};
use crate::output::{Collector, ScanInfo, View, normal};
use crate::probe::Cookies;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// How the scan runs, once privileges are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backed {
    /// Raw sockets are in use (SYN and/or raw UDP).
    pub raw: bool,
    /// SYN was wanted but raw sockets were refused: TCP connect instead.
    pub tcp_fallback: bool,
    /// UDP without raw sockets: connected UDP sockets.
    pub udp_unprivileged: bool,
}

/// Open the backend(s) the config asks for. The one place that decides
/// raw versus unprivileged techniques.
pub fn start_backend(cfg: &Config) -> anyhow::Result<(Backend, Backed)> {
    let cookies = Cookies::new(cfg.cookie_key);
    let wants_raw = cfg.tcp == Some(TcpScan::Syn) || cfg.udp;
    let raw = if wants_raw {
        match net::raw::start(cookies, cfg.udp) {
            Ok(b) => Some(b),
            Err(OpenError::Permission(_)) => None,
            Err(OpenError::Other(e)) => return Err(e),
        }
    } else {
        None
    };
    let privileged = raw.is_some();
    let backed = Backed {
        raw: privileged,
        tcp_fallback: !privileged && cfg.tcp == Some(TcpScan::Syn),
        udp_unprivileged: !privileged && cfg.udp,
    };
    let tcp_connect = || net::connect::start().context("starting the TCP connect scan");
    let udp_connected = || net::udp::start(cookies).context("starting the unprivileged UDP scan");
    let backend = match (cfg.tcp, cfg.udp, raw) {
        (Some(TcpScan::Connect), true, Some(raw)) => net::mux::mux(tcp_connect()?, raw)?,
        (_, _, Some(raw)) => raw,
        (Some(_), true, None) => net::mux::mux(tcp_connect()?, udp_connected()?)?,
        (Some(_), false, None) => tcp_connect()?,
        (None, _, None) => udp_connected()?,
    };
    Ok((backend, backed))
}

fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    first.trim_start_matches("error: ").to_string()
}

/// Run with these arguments; returns the exit code.
pub fn main_with(argv: Vec<OsString>, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let args = match Args::try_parse_from(nmap_compat(argv.clone())) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(stdout, "{}", e.render());
                    EXIT_OK
                }
                _ => {
                    let _ = writeln!(stderr, "rawscan: {}", one_line(&e));
                    EXIT_USAGE
                }
            };
        }
    };
    let cfg = match config::build(&args, &config::system_resolve) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {e}");
            return EXIT_USAGE;
        }
    };
    let cmdline = argv
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    match scan(&cfg, cmdline, stdout, stderr) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {e:#}");
            EXIT_ERROR
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn scan(
    cfg: &Config,
    cmdline: String,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    let (backend, backed) = start_backend(cfg)?;
    if backed.tcp_fallback {
        writeln!(
            stderr,
            "rawscan: raw sockets need root or CAP_NET_RAW; falling back to TCP connect scan (-sT)"
        )?;
    }
    if backed.udp_unprivileged {
        writeln!(
            stderr,
            "rawscan: raw sockets need root or CAP_NET_RAW; UDP scan uses connected UDP sockets (unprivileged mode)"
        )?;
    }
    let info = ScanInfo {
        start: SystemTime::now(),
        args: cmdline,
        version: env!("CARGO_PKG_VERSION"),
        tcp_type: cfg.tcp.map(|t| {
            if t == TcpScan::Syn && backed.raw {
                "syn"
            } else {
                "connect"
            }
        }),
        udp: cfg.udp,
        tcp_ports: if cfg.tcp.is_some() {
            cfg.ports.tcp.clone()
        } else {
            Vec::new()
        },
        udp_ports: if cfg.udp {
            cfg.ports.udp.clone()
        } else {
            Vec::new()
        },
        hosts_total: cfg.hosts.len(),
    };
    let view = View {
        reason: cfg.reason,
        open_only: cfg.open_only,
        verbose: cfg.verbose,
    };
    normal::header(stdout, &info).context("writing output")?;
    let interrupt = AtomicBool::new(false);
    let plan = cfg.plan();
    let mut collector = Collector::new(view, stderr);
    let summary = engine::run(&plan, backend, &mut collector, &interrupt);
    let mut report = collector.report;
    report.finish();
    normal::hosts(stdout, &report, &summary, &view).context("writing output")?;
    normal::footer(stdout, &info, &summary).context("writing output")?;
    stdout.flush().context("writing output")?;
    Ok(EXIT_OK)
}
