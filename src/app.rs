//! The program: parse flags, choose a backend, run the engine, write the
//! outputs, and decide the exit code. `main` only calls `app::main`.
//!
//! Invariants: exit codes are decided here alone (0 success, 1 runtime
//! error, 2 usage error, 130 interrupted); a closed stdout (broken pipe)
//! ends the program quietly with 0. The raw-vs-connect decision is made in
//! `start_backend` and nowhere else.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Args, nmap_compat};
use crate::config::{self, Config, Dest, TcpScan};
use crate::engine;
use crate::net::{self, Backend, Counters, OpenError};
use crate::output::{Collector, Report, ScanInfo, View, grepable, normal, progress, xml};
use crate::plan::Plan;
use crate::probe::{Cookies, PortState};
use crate::resume::{self, ResumeState};
use crate::version;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;

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
    let counters = Arc::new(Counters::default());
    let wants_raw = cfg.tcp == Some(TcpScan::Syn) || cfg.udp;
    if wants_raw && cfg.hosts.has_v6() {
        // Raw IPv6 probes are not built yet: refuse rather than report
        // every IPv6 port as unanswered.
        anyhow::bail!("IPv6 targets are supported by the connect scan only for now: use -sT");
    }
    let raw = if wants_raw {
        match net::raw::start(cookies, cfg.udp, counters.clone()) {
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
    let tcp_connect =
        || net::connect::start(counters.clone()).context("starting the TCP connect scan");
    let udp_connected =
        || net::udp::start(cookies, counters.clone()).context("starting the unprivileged UDP scan");
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
    let args = match parse_args(argv.clone(), stdout, stderr) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // --resume: the saved command line, with this run's output flags.
    let (args, argv, resume) = match &args.resume {
        None => (args, argv, None),
        Some(path) => match load_resume(path, &argv) {
            Ok((saved_argv, state)) => match parse_args(saved_argv.clone(), stdout, stderr) {
                Ok(a) => (a, saved_argv, Some(state)),
                Err(code) => return code,
            },
            Err(e) => {
                let _ = writeln!(stderr, "rawscan: {e:#}");
                return EXIT_ERROR;
            }
        },
    };
    let cfg = match config::build(&args, &config::system_resolve) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {e}");
            return EXIT_USAGE;
        }
    };
    let mut plan = cfg.plan();
    if let Some(st) = &resume {
        plan.seed = st.seed;
        if plan.total() != Some(st.total) {
            let _ = writeln!(
                stderr,
                "rawscan: the targets no longer expand to the {} (host, port) pairs of the interrupted scan; cannot resume",
                st.total
            );
            return EXIT_ERROR;
        }
        plan.start = st.next_index;
        plan.carry = match st.keys() {
            Ok(k) => k,
            Err(e) => {
                let _ = writeln!(stderr, "rawscan: {e:#}");
                return EXIT_ERROR;
            }
        };
    }
    let saved_args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match scan(&cfg, &plan, &saved_args, stdout, stderr) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {e:#}");
            EXIT_ERROR
        }
    }
}

fn parse_args(
    argv: Vec<OsString>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Args, i32> {
    match Args::try_parse_from(nmap_compat(argv)) {
        Ok(a) => Ok(a),
        Err(e) => {
            use clap::error::ErrorKind;
            Err(match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(stdout, "{}", e.render());
                    EXIT_OK
                }
                _ => {
                    let _ = writeln!(stderr, "rawscan: {}", one_line(&e));
                    EXIT_USAGE
                }
            })
        }
    }
}

/// Read a resume file; returns the argv to run (saved options, with this
/// command line's output flags if it has any, else the saved output files
/// renamed `*.resumed` so the first run's files are kept).
fn load_resume(path: &str, argv: &[OsString]) -> anyhow::Result<(Vec<OsString>, ResumeState)> {
    let state = ResumeState::load(path)?;
    let given: Vec<String> = nmap_compat(argv.iter().skip(1).cloned())
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut new_outputs = Vec::new();
    let mut it = given.iter();
    while let Some(a) = it.next() {
        if resume::is_output_flag(a)
            && let Some(v) = it.next()
        {
            new_outputs.push(a.clone());
            new_outputs.push(v.clone());
        }
    }
    let saved = nmap_compat(state.args.iter().map(OsString::from))
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    let args = if new_outputs.is_empty() {
        resume::args_with_renamed_outputs(&saved)
    } else {
        resume::args_with_outputs(&saved, &new_outputs)
    };
    let mut out = vec![
        argv.first()
            .cloned()
            .unwrap_or_else(|| OsString::from("rawscan")),
    ];
    out.extend(args.into_iter().map(OsString::from));
    Ok((out, state))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn create(path: &str) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).with_context(|| {
        format!("cannot create output file '{path}'")
    })?))
}

/// Count SIGINT and SIGTERM: the first asks for a graceful stop, the
/// second for an immediate one (the engine reads the count).
fn install_signal_counter() -> anyhow::Result<Arc<AtomicUsize>> {
    let count = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let c = count.clone();
        // SAFETY: the handler only does an atomic increment, which is
        // async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                c.fetch_add(1, Ordering::SeqCst);
            })
        }
        .context("installing signal handlers")?;
    }
    Ok(count)
}

/// The ports `-sV` probes: open TCP ports and UDP ports that answered
/// (`open`, not `open|filtered`), each with its host's measured round trip.
pub fn version_targets(report: &Report, summary: &engine::Summary) -> Vec<version::Target> {
    report
        .hosts
        .values()
        .flatten()
        .filter(|r| r.state == PortState::Open)
        .map(|r| version::Target {
            key: r.key,
            rtt: summary.up.get(&r.key.ip).and_then(|h| h.latency),
        })
        .collect()
}

fn scan(
    cfg: &Config,
    plan: &Plan,
    saved_args: &[String],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    // Open every output file before sending a packet.
    let o = &cfg.outputs;
    let file = |d: &Option<Dest>| -> anyhow::Result<Option<BufWriter<File>>> {
        match d {
            Some(Dest::File(p)) => Ok(Some(create(p)?)),
            _ => Ok(None),
        }
    };
    let mut normal_file = file(&o.normal)?;
    let mut xml_file = file(&o.xml)?;
    let mut grep_file = file(&o.grepable)?;
    let ndjson_file = file(&o.ndjson)?;
    let normal_on_stdout = !o.stdout_taken();

    let interrupts = install_signal_counter()?;
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
        args: std::iter::once("rawscan".to_string())
            .chain(saved_args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
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
    if normal_on_stdout {
        normal::header(stdout, &info).context("writing output")?;
        stdout.flush().context("writing output")?;
    }
    if let Some(f) = normal_file.as_mut() {
        normal::header(f, &info).context("writing normal output")?;
    }

    // NDJSON streams while the scan runs, to its file or to stdout.
    let (stream_stdout, final_stdout): (Option<&mut dyn Write>, Option<&mut dyn Write>) =
        if o.ndjson == Some(Dest::Stdout) {
            (Some(stdout), None)
        } else {
            (None, Some(stdout))
        };
    let ndjson: Option<Box<dyn Write + '_>> = match (ndjson_file, stream_stdout) {
        (Some(f), _) => Some(Box::new(f)),
        (None, Some(s)) => Some(Box::new(s)),
        (None, None) => None,
    };
    let stats = cfg.stats_every.map(|d| {
        progress::StatsEvery::new(d).label(match (cfg.tcp.is_some(), cfg.udp, backed.raw) {
            (true, true, _) => "SYN and UDP scan",
            (false, true, _) => "UDP scan",
            (true, false, true) => "SYN Stealth Scan",
            _ => "Connect Scan",
        })
    });
    let mut collector = Collector::new(view, stderr)
        .with_progress(io::stderr().is_terminal())
        .with_stats_every(stats);
    if let Some(n) = ndjson {
        collector = collector.with_ndjson(n);
    }
    let mut summary = engine::run(plan, backend, &mut collector, &interrupts);
    // -sV: probe what the port scan found open, before any output is
    // written (NDJSON streams each result as it comes).
    if let Some(vopts) = &cfg.version
        && interrupts.load(Ordering::SeqCst) == 0
    {
        let targets = version_targets(&collector.report, &summary);
        if cfg.verbose > 0 {
            collector.note(&format!(
                "rawscan: service detection on {} port{}",
                targets.len(),
                if targets.len() == 1 { "" } else { "s" }
            ));
        }
        let started = std::time::Instant::now();
        let services = version::detect(&targets, vopts, &interrupts, &mut |k, s| {
            collector.service(k, s)
        });
        collector.report.services = services;
        summary.elapsed += started.elapsed();
        summary.interrupted |= interrupts.load(Ordering::SeqCst) > 0;
    }
    collector.finish(&info, &summary);
    let stream_error = collector.stream_error.take();
    let mut report = std::mem::take(&mut collector.report);
    drop(collector);
    report.finish();

    // Every requested output gets every result, interrupted or not.
    let normal_body = |w: &mut dyn Write| -> io::Result<()> {
        normal::hosts(w, &report, &summary, &view)?;
        normal::footer(w, &info, &summary)?;
        w.flush()
    };
    let xml_body =
        |w: &mut dyn Write| xml::write(w, &info, &report, &summary, &view).and_then(|_| w.flush());
    let grep_body = |w: &mut dyn Write| {
        grepable::write(w, &info, &report, &summary, &view).and_then(|_| w.flush())
    };
    if let Some(f) = normal_file.as_mut() {
        normal_body(f).context("writing normal output")?;
    }
    if let Some(f) = xml_file.as_mut() {
        xml_body(f).context("writing XML output")?;
    }
    if let Some(f) = grep_file.as_mut() {
        grep_body(f).context("writing grepable output")?;
    }
    if let Some(out) = final_stdout {
        if o.xml == Some(Dest::Stdout) {
            xml_body(out)
        } else if o.grepable == Some(Dest::Stdout) {
            grep_body(out)
        } else {
            normal_body(out)
        }
        .context("writing output")?;
    }
    if cfg.verbose > 0 {
        writeln!(
            stderr,
            "rawscan: {} probes sent ({} send errors), {} packets received ({} malformed, {} failed validation, {} dropped while busy)",
            summary.sent,
            summary.send_errors,
            summary.received,
            summary.malformed,
            summary.bad_cookie,
            summary.dropped
        )?;
    }
    if let Some(e) = stream_error {
        return Err(anyhow::Error::new(e).context("writing NDJSON output"));
    }

    if summary.interrupted {
        let state = ResumeState {
            format: resume::FORMAT,
            rawscan: env!("CARGO_PKG_VERSION").into(),
            args: saved_args.to_vec(),
            seed: plan.seed,
            total: summary.total,
            next_index: summary.next_index,
            undecided: ResumeState::encode_keys(&summary.undecided),
        };
        match state.save(&cfg.resume_file) {
            Ok(()) => {
                let _ = writeln!(
                    stderr,
                    "rawscan: interrupted; {} of {} ports decided. Resume with: rawscan --resume {}",
                    summary.decided, summary.total, cfg.resume_file
                );
            }
            Err(e) => {
                let _ = writeln!(stderr, "rawscan: interrupted; {e:#}");
            }
        }
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(EXIT_OK)
}
