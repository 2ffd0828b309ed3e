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
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::cli::{Args, MergeArgs, nmap_compat};
use crate::config::{self, Config, Dest, Outputs, TcpScan};
use crate::discovery;
use crate::echo;
use crate::engine;
use crate::net::{self, Backend, Counters, OpenError};
use crate::output::ndjson::Ndjson;
use crate::output::{Collector, Report, ScanInfo, View, grepable, merge, normal, progress, xml};
use crate::plan::Plan;
use crate::privs::{self, DropPlan, PlanError};
use crate::probe::{Cookies, PortState};
use crate::resume::{self, ResumeState};
use crate::safefile::{self, LaterWriter};
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
    /// Host discovery uses raw sockets (else TCP connect to 80 and 443).
    pub discovery_raw: bool,
    /// Some targets are on one local Ethernet segment (ARP / ND for them).
    pub discovery_on_link: bool,
}

/// The backends of a run: the port scan's (with `-sn`, discovery's), and
/// host discovery's when it cannot share the port scan's.
pub struct Backends {
    pub scan: Backend,
    /// None: discovery (if any) runs on `scan`.
    pub discovery: Option<Backend>,
    pub backed: Backed,
    /// Host discovery's passes: the targets each covers (the machine's
    /// own addresses left out) and whether by ARP / ND (on the segment) or
    /// by IP-level probes (the rest). None: one IP-level pass over every
    /// target.
    pub discovery_passes: Option<Vec<(crate::targets::HostSet, bool)>>,
    /// The machine's own addresses among the targets (up without a probe).
    pub own: Vec<std::net::IpAddr>,
}

/// Open the backend(s) the config asks for. The one place that decides
/// raw versus unprivileged techniques.
/// The targets that are this machine's own addresses.
fn own_targets(hosts: &crate::targets::HostSet) -> Vec<std::net::IpAddr> {
    net::route::local_addresses()
        .into_iter()
        .filter(|ip| hosts.contains(*ip))
        .collect()
}

pub fn start_backend(cfg: &Config) -> anyhow::Result<Backends> {
    let cookies = Cookies::new(cfg.cookie_key);
    let counters = Arc::new(Counters::default());
    let disc = cfg.discovery.as_ref();
    let only = disc.is_some_and(|d| d.only);
    let scan_raw = !only && (cfg.tcp == Some(TcpScan::Syn) || cfg.udp);
    // ARP / Neighbour Discovery when every target is on one local
    // Ethernet segment (and not --disable-arp-ping).
    // Discovery's targets: the machine's own addresses need no probe.
    let own = if disc.is_some() {
        own_targets(&cfg.hosts)
    } else {
        Vec::new()
    };
    let without_own = (!own.is_empty()).then(|| cfg.hosts.without(&own));
    let targets = without_own.as_ref().unwrap_or(&cfg.hosts);
    let split = disc
        .filter(|d| !d.disable_arp)
        .and_then(|_| net::route::split_segment(targets));
    let (link, discovery_passes) = match split {
        Some((link, on, rest)) => {
            let mut passes = vec![(on, true)];
            if !rest.is_empty() {
                passes.push((rest, false));
            }
            (Some(link), Some(passes))
        }
        None => (None, without_own.map(|t| vec![(t, false)])),
    };
    let on_link = link.is_some();
    let needs = net::raw::Needs {
        udp: cfg.udp || disc.is_some_and(|d| d.wants_udp()),
        v4: cfg.hosts.has_v4(),
        v6: cfg.hosts.has_v6(),
        link,
    };
    let open_raw = || match net::raw::start(cookies, needs.clone(), counters.clone()) {
        Ok(b) => Ok(Some(b)),
        Err(OpenError::Permission(_)) => Ok(None),
        Err(OpenError::Other(e)) => Err(e),
    };
    let raw = if scan_raw || disc.is_some() {
        open_raw()?
    } else {
        None
    };
    let privileged = raw.is_some();
    let tcp_connect =
        || net::connect::start(counters.clone()).context("starting the TCP connect scan");
    let udp_connected =
        || net::udp::start(cookies, counters.clone()).context("starting the unprivileged UDP scan");
    if only {
        let scan = match raw {
            Some(r) => r,
            None => tcp_connect()?,
        };
        return Ok(Backends {
            discovery_passes,
            own,
            scan,
            discovery: None,
            backed: Backed {
                raw: privileged,
                tcp_fallback: false,
                udp_unprivileged: false,
                discovery_raw: privileged,
                discovery_on_link: on_link,
            },
        });
    }
    let backed = Backed {
        raw: privileged && scan_raw,
        tcp_fallback: !privileged && cfg.tcp == Some(TcpScan::Syn),
        udp_unprivileged: !privileged && cfg.udp,
        discovery_raw: privileged,
        discovery_on_link: on_link,
    };
    // The raw backend serves the port scan when it is a SYN or UDP scan,
    // and discovery too (one set of sockets); a connect scan leaves it to
    // discovery alone.
    let (scan, spare_raw, consumed) = match (cfg.tcp, cfg.udp, raw) {
        (Some(TcpScan::Connect), true, Some(raw)) => {
            (net::mux::mux(tcp_connect()?, raw)?, None, true)
        }
        (Some(TcpScan::Connect), false, Some(raw)) => (tcp_connect()?, Some(raw), false),
        (_, _, Some(raw)) => (raw, None, false),
        (Some(_), true, None) => (
            net::mux::mux(tcp_connect()?, udp_connected()?)?,
            None,
            false,
        ),
        (Some(_), false, None) => (tcp_connect()?, None, false),
        (None, _, None) => (udp_connected()?, None, false),
    };
    let discovery = match disc {
        None => None,
        Some(_) if !privileged => Some(tcp_connect()?),
        Some(_) if spare_raw.is_some() => spare_raw,
        // The raw sockets went into a mux with the connect scan: discovery
        // gets sockets of its own.
        Some(_) if consumed => open_raw()?,
        Some(_) => None,
    };
    Ok(Backends {
        scan,
        discovery,
        backed,
        discovery_passes,
        own,
    })
}

fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    echo::line(text.trim_start_matches("error: "))
}

/// Run with these arguments; returns the exit code.
pub fn main_with(argv: Vec<OsString>, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    // `rawscan merge ...` is a command only as the very first argument; a
    // host named "merge" is scanned with any option before it
    // (`rawscan -sS merge`) or as the FQDN `merge.`.
    if argv.get(1).is_some_and(|a| a == "merge") {
        return merge_main(&argv, stdout, stderr);
    }
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
        // A resumed scan finishes the port scan it was interrupted in:
        // no discovery (an interrupted scan that had found its live hosts
        // saved them as its targets, with -Pn).
        Ok(c) if resume.is_some() => Config {
            discovery: None,
            ..c
        },
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
    let mut plan = match cfg.plan() {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan: {e}");
            return EXIT_USAGE;
        }
    };
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
        &to_save,
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

/// `rawscan merge`: read the parts, write the merged report.
fn merge_main(argv: &[OsString], stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let words =
        std::iter::once(OsString::from("rawscan merge")).chain(argv.iter().skip(2).cloned());
    let args = match MergeArgs::try_parse_from(nmap_compat(words)) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = write!(stdout, "{}", e.render());
                    EXIT_OK
                }
                ErrorKind::MissingRequiredArgument => {
                    let _ = writeln!(
                        stderr,
                        "rawscan merge: no FILE given: name the NDJSON files (-oJ) of the shards to merge"
                    );
                    EXIT_USAGE
                }
                _ => {
                    let _ = writeln!(stderr, "rawscan merge: {}", one_line(&e));
                    EXIT_USAGE
                }
            };
        }
    };
    let outputs = match Outputs::from_flags(&args.outputs) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan merge: {e}");
            return EXIT_USAGE;
        }
    };
    for d in [
        &outputs.normal,
        &outputs.xml,
        &outputs.grepable,
        &outputs.ndjson,
    ]
    .into_iter()
    .flatten()
    {
        if let Dest::File(p) = d
            && args.files.iter().any(|f| f == p)
        {
            let _ = writeln!(
                stderr,
                "rawscan merge: '{p}' is both an input and an output file"
            );
            return EXIT_USAGE;
        }
    }
    match merge_run(&args, &outputs, stdout, stderr) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(stderr, "rawscan merge: {e:#}");
            EXIT_ERROR
        }
    }
}

fn merge_run(
    args: &MergeArgs,
    o: &Outputs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut parts: Vec<(String, Box<dyn io::BufRead>)> = Vec::new();
    for f in &args.files {
        let r: Box<dyn io::BufRead> = if f == "-" {
            Box::new(io::BufReader::new(io::stdin()))
        } else {
            Box::new(io::BufReader::with_capacity(
                1 << 16,
                File::open(f).with_context(|| format!("cannot open {}", echo::token(f)))?,
            ))
        };
        parts.push((f.clone(), r));
    }
    let m = match merge::merge(parts) {
        Ok(m) => m,
        Err(e) => {
            writeln!(stderr, "rawscan merge: {e}")?;
            return Ok(EXIT_ERROR);
        }
    };
    for w in &m.warnings {
        writeln!(stderr, "rawscan merge: warning: {w}")?;
    }
    let view = View {
        reason: m.view.reason || args.reason,
        open_only: m.view.open_only || args.open,
        verbose: m.view.verbose.max(args.verbose),
    };
    let mut files = Files::open(o)?;
    if let Some(e) = files.same_file() {
        files.discard();
        writeln!(stderr, "rawscan merge: {e}")?;
        return Ok(EXIT_USAGE);
    }
    if let Some(mut f) = files.take("-oJ") {
        merged_ndjson(&mut f, &m, &view).context("writing NDJSON output")?;
    }
    let mut outs = Reports::take(&mut files);
    if let Some(f) = outs.normal.as_mut() {
        normal::header(f, &m.info).context("writing normal output")?;
    }
    let final_stdout: Option<&mut dyn Write> = if o.ndjson == Some(Dest::Stdout) {
        merged_ndjson(stdout, &m, &view).context("writing NDJSON output")?;
        None
    } else {
        if !o.stdout_taken() {
            normal::header(stdout, &m.info).context("writing output")?;
        }
        Some(stdout)
    };
    let errors = outs.write(o, final_stdout, &m.info, &m.report, &m.summary, &view);
    for e in &errors {
        writeln!(stderr, "rawscan merge: {}", echo::line(&format!("{e:#}")))?;
    }
    Ok(if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// The merged scan as one NDJSON file: the same lines one scan writes.
fn merged_ndjson(w: &mut dyn Write, m: &merge::Merged, view: &View) -> io::Result<()> {
    let mut nd = Ndjson::new(w);
    nd.start(&m.info, view)?;
    for host in m.report.hosts() {
        for r in host.results() {
            nd.result(&r)?;
        }
    }
    nd.finish(&m.info, &m.report, &m.summary)
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
    fn open(outputs: &Outputs) -> anyhow::Result<Files> {
        let mut files = Files { opened: Vec::new() };
        for (flag, path) in outputs.files() {
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

/// The finished-report outputs of a run (NDJSON streams on its own).
struct Reports {
    normal: Option<BufWriter<File>>,
    xml: Option<BufWriter<File>>,
    grepable: Option<BufWriter<File>>,
}

impl Reports {
    fn take(files: &mut Files) -> Reports {
        Reports {
            normal: files.take("-oN"),
            xml: files.take("-oX"),
            grepable: files.take("-oG"),
        }
    }

    /// Write the finished report to every requested file, and the one
    /// format that goes to stdout (normal output unless another claimed
    /// it) to `final_stdout` (None when NDJSON streamed to stdout). One
    /// failing output does not stop the others; the errors come back (a
    /// closed stdout is not one: it ends the program quietly).
    fn write(
        &mut self,
        o: &Outputs,
        final_stdout: Option<&mut dyn Write>,
        info: &ScanInfo,
        report: &Report,
        summary: &engine::Summary,
        view: &View,
    ) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        let normal_body = |w: &mut dyn Write| -> io::Result<()> {
            normal::hosts(w, report, summary, view)?;
            normal::footer(w, info, summary)?;
            w.flush()
        };
        let xml_body =
            |w: &mut dyn Write| xml::write(w, info, report, summary, view).and_then(|_| w.flush());
        let grep_body = |w: &mut dyn Write| {
            grepable::write(w, info, report, summary, view).and_then(|_| w.flush())
        };
        let mut note = |r: io::Result<()>, what: &'static str| {
            if let Err(e) = r {
                errors.push(anyhow::Error::new(e).context(what));
            }
        };
        if let Some(f) = self.normal.as_mut() {
            note(normal_body(f), "writing normal output");
        }
        if let Some(f) = self.xml.as_mut() {
            note(xml_body(f), "writing XML output");
        }
        if let Some(f) = self.grepable.as_mut() {
            note(grep_body(f), "writing grepable output");
        }
        if let Some(out) = final_stdout {
            let r = if o.xml == Some(Dest::Stdout) {
                xml_body(out)
            } else if o.grepable == Some(Dest::Stdout) {
                grep_body(out)
            } else {
                normal_body(out)
            };
            note(r, "writing output");
        }
        errors.retain(|e| !is_broken_pipe(e));
        errors
    }
}

/// The ports `-sV` probes: open TCP ports and UDP ports that answered
/// (`open`, not `open|filtered`), each with its host's measured round trip.
pub fn version_targets(report: &Report, summary: &engine::Summary) -> Vec<version::Target> {
    report
        .hosts()
        .flat_map(|h| h.results().collect::<Vec<_>>())
        .filter(|r| r.state == PortState::Open)
        .map(|r| version::Target {
            key: r.key,
            rtt: summary.up.get(&r.key.ip).and_then(|h| h.latency),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn scan(
    cfg: &Config,
    plan: &Plan,
    drop_plan: &DropPlan,
    to_save: &Args,
    saved_args: &[String],
    shown_args: &[String],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    // Open every output file and prepare the resume file before sending a
    // packet (and while still privileged).
    let mut files = Files::open(&cfg.outputs)?;
    if let Some(e) = files.same_file() {
        files.discard();
        writeln!(stderr, "rawscan: {e}")?;
        return Ok(EXIT_USAGE);
    }
    let started = (|| {
        let resume_writer =
            LaterWriter::new(&cfg.resume_file, "resume file", drop_plan.changes_uid())?;
        let interrupts = install_signal_counter()?;
        let backends = start_backend(cfg)?;
        // The drop point: raw sockets, SO_RCVBUFFORCE, output files and the
        // resume writer are all in place, the backend's threads running.
        privs::drop_privileges(drop_plan)?;
        anyhow::Ok((resume_writer, interrupts, backends))
    })();
    let (resume_writer, interrupts, backends) = match started {
        Ok(s) => s,
        Err(e) => {
            files.discard();
            return Err(e);
        }
    };
    let Backends {
        scan: backend,
        discovery: discovery_backend,
        backed,
        discovery_passes,
        own,
    } = backends;
    let ndjson_file = files.take("-oJ");
    let mut outs = Reports::take(&mut files);
    let o = &cfg.outputs;
    let normal_on_stdout = !o.stdout_taken();
    let ping_only = cfg.discovery.as_ref().is_some_and(|d| d.only);

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
        argv: saved_args.to_vec(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        tcp_type: cfg.tcp.filter(|_| !ping_only).map(|t| {
            if t == TcpScan::Syn && backed.raw {
                "syn"
            } else {
                "connect"
            }
        }),
        udp: cfg.udp && !ping_only,
        tcp_ports: if cfg.tcp.is_some() && !ping_only {
            cfg.ports.tcp.clone()
        } else {
            Vec::new()
        },
        udp_ports: if cfg.udp && !ping_only {
            cfg.ports.udp.clone()
        } else {
            Vec::new()
        },
        hosts_total: cfg.hosts.len(),
        seed: plan.seed(),
        shard: plan.shard(),
        pairs: if ping_only { 0 } else { plan.len() },
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
    if let Some(f) = outs.normal.as_mut()
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
    let report = Report::new(if ping_only {
        Vec::new()
    } else {
        plan.ports().to_vec()
    });
    let mut collector = Collector::new(report, view, stderr)
        .with_progress(io::stderr().is_terminal())
        .with_stats_every(stats);
    if let Some(n) = ndjson {
        collector = collector.with_ndjson(n, &info);
    }
    // Host discovery first (unless -Pn): the port scan then covers only
    // the live hosts, on a plan of its own (same ports, seed and shard).
    let mut live_plan: Option<Plan> = None;
    let mut found: Option<(discovery::Found, engine::Summary)> = None;
    if let Some(d) = &cfg.discovery {
        let on = discovery_backend.as_ref().unwrap_or(&backend);
        // ARP / ND for the targets on the local segment, IP-level probes
        // for the rest (nmap's choice per target), one pass each.
        let mut f = discovery::Found::default();
        let mut s = engine::Summary::default();
        let passes: Vec<(&crate::targets::HostSet, bool)> = match &discovery_passes {
            Some(p) => p.iter().map(|(h, l)| (h, *l)).collect(),
            None => vec![(&cfg.hosts, false)],
        };
        for (hosts, on_link) in passes {
            if interrupts.load(Ordering::SeqCst) > 0 {
                break;
            }
            if hosts.is_empty() {
                continue;
            }
            let probes = d.probes(backed.discovery_raw, on_link);
            let (pf, ps) = discovery::run(
                hosts,
                probes,
                plan.seed(),
                cfg.settings(),
                on,
                cfg.verbose > 0,
                &interrupts,
                &mut |p| collector.discovery_progress(p),
            )?;
            f.absorb(pf);
            s.absorb(&ps);
        }
        if let Some(b) = discovery_backend {
            b.join();
        }
        // The machine's own addresses are up without a probe (nmap's
        // localhost-response): no ARP reply ever names them.
        f.add_own(&own);
        if cfg.verbose > 0 {
            collector.note(&format!(
                "rawscan: host discovery: {} of {} hosts up in {:.2}s",
                f.up.len(),
                cfg.hosts.len(),
                s.elapsed.as_secs_f64()
            ));
        }
        if !ping_only && interrupts.load(Ordering::SeqCst) == 0 {
            live_plan = Some(
                Plan::new(
                    f.live_set(),
                    plan.ports().to_vec(),
                    plan.seed(),
                    plan.shard(),
                )
                .map_err(|e| anyhow::anyhow!("planning the port scan: {e}"))?,
            );
        }
        found = Some((f, s));
    } else if let Some(b) = discovery_backend {
        b.join();
    }
    let plan = live_plan.as_ref().unwrap_or(plan);
    let mut summary = if ping_only || (found.is_some() && live_plan.is_none()) {
        // -sn, or interrupted during discovery: no port scan.
        backend.join();
        engine::Summary::default()
    } else {
        let mut settings = cfg.settings();
        if let Some((f, _)) = &found {
            settings.known_rtts =
                f.up.iter()
                    .filter_map(|(ip, h)| h.latency.map(|l| (*ip, l)))
                    .collect();
        }
        engine::run(plan, settings, backend, &mut collector, &interrupts)
    };
    if let Some((f, s)) = &found {
        summary.absorb(s);
        for (ip, info) in &f.up {
            let e = summary.up.entry(*ip).or_default();
            e.reason = info.reason;
            e.ttl = info.ttl;
            e.mac = info.mac;
            e.latency = e.latency.or(info.latency);
        }
        for ip in f.up.keys().chain(&f.down) {
            collector.report.add_host(*ip);
        }
    }
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
    let rejected = collector.rejected;
    let report = std::mem::take(&mut collector.report);
    drop(collector);
    if rejected > 0 {
        errors.push(anyhow::anyhow!(
            "{rejected} results outside the scan's ports or decided twice were ignored"
        ));
    }

    // Interrupted: the resume file comes first, so that no failing output
    // can keep it from being written.
    let resume_line = if summary.interrupted && ping_only {
        drop(resume_writer);
        Some("rawscan: interrupted during host discovery (-sn: nothing to resume)".to_string())
    } else if summary.interrupted {
        // After discovery, the scan that was interrupted is the live
        // hosts' (-Pn): that is what a resume must redo.
        let saved_args = match (&found, live_plan.is_some()) {
            (Some((f, _)), true) => {
                let mut a = to_save.clone();
                let mut ips: Vec<std::net::IpAddr> = f.up.keys().copied().collect();
                ips.sort_unstable();
                a.targets = ips.iter().map(|ip| ip.to_string()).collect();
                a.input_list = None;
                a.exclude = Vec::new();
                a.exclude_file = None;
                a.no_ping = true;
                a.to_argv()
            }
            _ => saved_args.to_vec(),
        };
        let state = ResumeState::new(saved_args, plan, summary.next_index, &summary.undecided);
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
    if let Some(e) = stream_error {
        errors.push(anyhow::Error::new(e).context("writing NDJSON output"));
    }
    errors.extend(outs.write(o, final_stdout, &info, &report, &summary, &view));
    errors.retain(|e| !is_broken_pipe(e));
    if cfg.verbose > 0 {
        let _ = writeln!(
            stderr,
            "rawscan: {} probes sent in {:.2}s ({} probes/s achieved, {} retries, final rate {:.0}/s after {} congestion back-offs, {:.1}% of tries to answering ports lost; {} send errors), {} packets received ({} malformed, {} failed validation, {} dropped while busy)",
            summary.sent,
            summary.elapsed.as_secs_f64(),
            progress::achieved_rate(summary.sent, summary.elapsed),
            summary.retries,
            summary.final_rate,
            summary.congestion_events,
            summary.loss * 100.0,
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
