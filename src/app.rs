//! The program: parse flags, choose a backend, run the engine, write the
//! outputs, and decide the exit code. `main` only calls `app::main`.
//!
//! Invariants: exit codes are decided here alone (0 success, 1 runtime
//! error, 2 usage error, 130 interrupted); a closed stdout (broken pipe)
//! ends the program quietly with 0. The raw-vs-connect decision is made in
//! `start_backend` and nowhere else.
//!
//! Order of a scan (`scan`): every check that can fail on user input, then
//! the output files (`safefile::create_output`), then the resume file's
//! directory (and, if root will be given up, the forked resume writer,
//! while the process has one thread), then the signal counter, then
//! `start_backend` (raw sockets, SO_RCVBUFFORCE, backend threads), then
//! `privs::drop_privileges` for every thread. Only then is a probe sent.
//! On interrupt the resume file is written before any output, so a
//! failing output cannot lose it, and the exit code stays 130.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Args, nmap_compat};
use crate::config::{self, Config, Dest, TcpScan};
use crate::echo;
use crate::engine;
use crate::net::{self, Backend, Counters, OpenError};
use crate::output::{Collector, ScanInfo, View, grepable, normal, progress, xml};
use crate::plan::Plan;
use crate::privs::{self, DropPlan, PlanError};
use crate::probe::Cookies;
use crate::resume::{self, ResumeState};
use crate::safefile::{self, LaterWriter};

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
    echo::line(text.trim_start_matches("error: "))
}

/// Run with these arguments; returns the exit code.
pub fn main_with(argv: Vec<OsString>, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let (args, given) = match parse_args(argv.clone(), stdout, stderr) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // --resume: the saved command line, with this run's output and
    // display flags applied; any other flag is refused.
    let (args, resume) = match &args.resume {
        None => (args, None),
        Some(path) => {
            if let Err(e) = resume::check_flags(&given) {
                let _ = writeln!(stderr, "rawscan: {e}");
                return EXIT_USAGE;
            }
            let loaded = ResumeState::load(path).and_then(|st| Ok((st.saved_args()?, st)));
            match loaded {
                Ok((saved, st)) => (resume::merge(saved, &args, &given), Some(st)),
                Err(e) => {
                    let _ = writeln!(stderr, "rawscan: {e:#}");
                    return EXIT_ERROR;
                }
            }
        }
    };
    let cfg = match config::build(&args, &config::system_resolve) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {e}");
            return if resume.is_some() {
                EXIT_ERROR
            } else {
                EXIT_USAGE
            };
        }
    };
    let mut plan = cfg.plan();
    if let Some(st) = &resume
        && let Err(e) = st.apply(&mut plan)
    {
        let _ = writeln!(stderr, "rawscan: {e:#}");
        return EXIT_ERROR;
    }
    let drop_plan = match DropPlan::new(cfg.user.as_deref()) {
        Ok(p) => p,
        Err(PlanError::Usage(e)) => {
            let _ = writeln!(stderr, "rawscan: {e}");
            return EXIT_USAGE;
        }
        Err(PlanError::Other(e)) => {
            let _ = writeln!(stderr, "rawscan: {e}");
            return EXIT_ERROR;
        }
    };
    for note in &cfg.notes {
        let _ = writeln!(stderr, "rawscan: {note}");
    }
    // The command line a resume file records: canonical, seed written out.
    let mut to_save = args.clone();
    to_save.seed = Some(cfg.seed);
    to_save.resume = None;
    let saved_args = to_save.to_argv();
    let shown_args: Vec<String> = if resume.is_some() {
        saved_args.clone()
    } else {
        argv.iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    match scan(
        &cfg,
        &plan,
        &drop_plan,
        &saved_args,
        &shown_args,
        stdout,
        stderr,
    ) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {}", echo::line(&format!("{e:#}")));
            EXIT_ERROR
        }
    }
}

/// Parse the command line; also returns the clap ids of the flags given
/// on it (to tell what may go beside --resume).
fn parse_args(
    argv: Vec<OsString>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(Args, Vec<String>), i32> {
    let parsed = Args::command()
        .try_get_matches_from(nmap_compat(argv))
        .and_then(|m| Ok((Args::from_arg_matches(&m)?, m)));
    match parsed {
        Ok((a, m)) => {
            // Argument ids only (the derive also adds a group named "Args").
            let cmd = Args::command();
            let given = m
                .ids()
                .filter(|id| cmd.get_arguments().any(|a| a.get_id() == *id))
                .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.as_str().to_string())
                .collect();
            Ok((a, given))
        }
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
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

/// Output files, opened before any probe.
struct Files {
    opened: Vec<(&'static str, safefile::Output)>,
}

impl Files {
    fn open(cfg: &Config) -> anyhow::Result<Files> {
        let mut files = Files { opened: Vec::new() };
        for (flag, path) in cfg.outputs.files() {
            match safefile::create_output(path) {
                Ok(o) => files.opened.push((flag, o)),
                Err(e) => {
                    files.discard();
                    return Err(e);
                }
            }
        }
        Ok(files)
    }

    /// Two flags naming one file through different paths.
    fn same_file(&self) -> Option<String> {
        for (i, (fa, a)) in self.opened.iter().enumerate() {
            for (fb, b) in &self.opened[i + 1..] {
                if a.identity().is_some() && a.identity() == b.identity() {
                    return Some(format!(
                        "{fa} and {fb} both write the same file ({} and {}): give each its own file",
                        echo::token(&a.path),
                        echo::token(&b.path)
                    ));
                }
            }
        }
        None
    }

    /// Remove the files this run created (the scan never started).
    fn discard(&mut self) {
        let outs: Vec<safefile::Output> = self.opened.drain(..).map(|(_, o)| o).collect();
        safefile::remove_created(&outs);
    }

    fn take(&mut self, flag: &str) -> Option<BufWriter<File>> {
        let i = self.opened.iter().position(|(f, _)| *f == flag)?;
        Some(BufWriter::new(self.opened.remove(i).1.file))
    }
}

fn scan(
    cfg: &Config,
    plan: &Plan,
    drop_plan: &DropPlan,
    saved_args: &[String],
    shown_args: &[String],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    // Open every output file and prepare the resume file before sending a
    // packet (and while still privileged).
    let mut files = Files::open(cfg)?;
    if let Some(e) = files.same_file() {
        files.discard();
        writeln!(stderr, "rawscan: {e}")?;
        return Ok(EXIT_USAGE);
    }
    let started = (|| {
        let resume_writer =
            LaterWriter::new(&cfg.resume_file, "resume file", drop_plan.changes_uid())?;
        let interrupts = install_signal_counter()?;
        let (backend, backed) = start_backend(cfg)?;
        // The drop point: raw sockets, SO_RCVBUFFORCE, output files and the
        // resume writer are all in place, the backend's threads running.
        privs::drop_privileges(drop_plan)?;
        anyhow::Ok((resume_writer, interrupts, backend, backed))
    })();
    let (resume_writer, interrupts, backend, backed) = match started {
        Ok(s) => s,
        Err(e) => {
            files.discard();
            return Err(e);
        }
    };
    let mut normal_file = files.take("-oN");
    let mut xml_file = files.take("-oX");
    let mut grep_file = files.take("-oG");
    let ndjson_file = files.take("-oJ");
    let o = &cfg.outputs;
    let normal_on_stdout = !o.stdout_taken();

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
            .chain(shown_args.iter().cloned())
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
    let mut errors: Vec<anyhow::Error> = Vec::new();
    if let Some(f) = normal_file.as_mut()
        && let Err(e) = normal::header(f, &info)
    {
        errors.push(anyhow::Error::new(e).context("writing normal output"));
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
    let summary = engine::run(plan, backend, &mut collector, &interrupts);
    collector.finish(&info, &summary);
    let stream_error = collector.stream_error.take();
    let mut report = std::mem::take(&mut collector.report);
    drop(collector);
    report.finish();

    // Interrupted: the resume file comes first, so that no failing output
    // can keep it from being written.
    let resume_line = if summary.interrupted {
        let state = ResumeState::new(
            saved_args.to_vec(),
            plan,
            summary.next_index,
            &summary.undecided,
        );
        Some(match resume_writer.write(&state.to_bytes()) {
            Ok(()) => format!(
                "rawscan: interrupted; {} of {} ports decided. Resume with: rawscan --resume {}",
                summary.decided, summary.total, cfg.resume_file
            ),
            Err(e) => format!(
                "rawscan: interrupted; {} of {} ports decided; the resume file was NOT written: {}",
                summary.decided,
                summary.total,
                echo::line(&format!("{e:#}"))
            ),
        })
    } else {
        drop(resume_writer);
        None
    };

    // Every requested output gets every result, interrupted or not; one
    // failing output does not stop the others.
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
    if let Some(e) = stream_error {
        errors.push(anyhow::Error::new(e).context("writing NDJSON output"));
    }
    if let Some(f) = normal_file.as_mut()
        && let Err(e) = normal_body(f)
    {
        errors.push(anyhow::Error::new(e).context("writing normal output"));
    }
    if let Some(f) = xml_file.as_mut()
        && let Err(e) = xml_body(f)
    {
        errors.push(anyhow::Error::new(e).context("writing XML output"));
    }
    if let Some(f) = grep_file.as_mut()
        && let Err(e) = grep_body(f)
    {
        errors.push(anyhow::Error::new(e).context("writing grepable output"));
    }
    if let Some(out) = final_stdout {
        let r = if o.xml == Some(Dest::Stdout) {
            xml_body(out)
        } else if o.grepable == Some(Dest::Stdout) {
            grep_body(out)
        } else {
            normal_body(out)
        };
        if let Err(e) = r {
            errors.push(anyhow::Error::new(e).context("writing output"));
        }
    }
    // A closed stdout (or pipe) ends the program quietly.
    errors.retain(|e| !is_broken_pipe(e));
    if cfg.verbose > 0 {
        let _ = writeln!(
            stderr,
            "rawscan: {} probes sent ({} send errors), {} packets received ({} malformed, {} failed validation, {} dropped while busy)",
            summary.sent,
            summary.send_errors,
            summary.received,
            summary.malformed,
            summary.bad_cookie,
            summary.dropped
        );
    }
    for e in &errors {
        let _ = writeln!(stderr, "rawscan: {}", echo::line(&format!("{e:#}")));
    }
    if let Some(line) = resume_line {
        let _ = writeln!(stderr, "{line}");
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
