//! Turns parsed flags into a checked `Config`. Every user-facing error
//! message about flags, targets and ports is made here.
//!
//! Invariants: a `Config` is complete and consistent (at least one host
//! and one port, one TCP scan type, a total that fits the permutation,
//! timeouts within [MIN_TIMEOUT, MAX_TIMEOUT], no two outputs on one
//! file); the only I/O is DNS resolution (once per name) and reading -iL
//! and --exclude-file files (regular files or stdin, size-capped). User
//! input echoed in a message goes through `echo`.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use crate::cli::{Args, OutputArgs};
use crate::control::Limits;
use crate::control::retry::Budget;
use crate::discovery::Discovery;
use crate::echo;
use crate::plan::{Plan, Shard};
use crate::probe::Proto;
use crate::safefile;
use crate::scan::Settings;
use crate::scan::hosts::Timing;
use crate::scan::sources::Sources;
use crate::targets::{self, HostSet, PortList, SpecError, TargetOptions, parse_ports};

/// Shortest probe timeout accepted (`--min-rtt-timeout` and friends).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Longest probe timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(100);
/// Shortest `--stats-every` interval.
pub const MIN_STATS_EVERY: Duration = Duration::from_millis(100);

/// A mistake in the command line: exit code 2, one line naming the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<SpecError> for UsageError {
    fn from(e: SpecError) -> Self {
        UsageError(e.0)
    }
}

/// Where one output format goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    File(String),
}

impl Dest {
    fn parse(s: &str) -> Dest {
        if s == "-" {
            Dest::Stdout
        } else {
            Dest::File(s.to_string())
        }
    }
}

/// Requested output formats. Normal output goes to stdout unless another
/// format claims stdout with '-'.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    pub normal: Option<Dest>,
    pub xml: Option<Dest>,
    pub grepable: Option<Dest>,
    pub ndjson: Option<Dest>,
}

impl Outputs {
    fn from_args(a: &Args) -> Result<Outputs, UsageError> {
        Outputs::from_flags(&a.outputs)
    }

    /// From the -oN, -oX, -oG, -oJ and -oA values.
    pub fn from_flags(f: &OutputArgs) -> Result<Outputs, UsageError> {
        let normal = f.out_normal.as_deref();
        let xml = f.out_xml.as_deref();
        let grepable = f.out_grepable.as_deref();
        let ndjson = f.out_ndjson.as_deref();
        let all = f.out_all.as_deref();
        let mut o = Outputs {
            normal: normal.map(Dest::parse),
            xml: xml.map(Dest::parse),
            grepable: grepable.map(Dest::parse),
            ndjson: ndjson.map(Dest::parse),
        };
        if let Some(base) = all {
            if base == "-" {
                return Err(UsageError("-oA needs a file name base, not '-'".into()));
            }
            for (flag, given) in [
                ("-oN", normal),
                ("-oX", xml),
                ("-oG", grepable),
                ("-oJ", ndjson),
            ] {
                if given.is_some_and(|p| p != "-") {
                    return Err(UsageError(format!(
                        "-oA and {flag} both name a file for the same format: use one"
                    )));
                }
            }
            for (slot, ext) in [
                (&mut o.normal, "nmap"),
                (&mut o.xml, "xml"),
                (&mut o.grepable, "gnmap"),
                (&mut o.ndjson, "ndjson"),
            ] {
                slot.get_or_insert_with(|| Dest::File(format!("{base}.{ext}")));
            }
        }
        if o.all().filter(|d| **d == Dest::Stdout).count() > 1 {
            return Err(UsageError(
                "only one output format can go to stdout ('-')".into(),
            ));
        }
        Ok(o)
    }

    fn all(&self) -> impl Iterator<Item = &Dest> {
        [&self.normal, &self.xml, &self.grepable, &self.ndjson]
            .into_iter()
            .flatten()
    }

    /// Does some format other than normal output claim stdout?
    pub fn stdout_taken(&self) -> bool {
        [&self.xml, &self.grepable, &self.ndjson]
            .into_iter()
            .flatten()
            .any(|d| *d == Dest::Stdout)
    }

    pub fn is_empty(&self) -> bool {
        self.all().next().is_none()
    }

    /// (flag, path) of every output that goes to a file.
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        [
            ("-oN", &self.normal),
            ("-oX", &self.xml),
            ("-oG", &self.grepable),
            ("-oJ", &self.ndjson),
        ]
        .into_iter()
        .filter_map(|(flag, d)| match d {
            Some(Dest::File(p)) => Some((flag, p.as_str())),
            _ => None,
        })
        .collect()
    }
}

/// Two flags naming one file (lexically; `app` also compares the opened
/// files' inodes): outputs among themselves, with the resume file, and
/// with the input lists.
fn check_distinct_files(a: &Args, o: &Outputs) -> Result<(), UsageError> {
    let mut written: Vec<(&str, &str)> = o.files();
    written.push(("--resume-file", a.resume_file.as_str()));
    let read: Vec<(&str, &str)> = [("-iL", &a.input_list), ("--exclude-file", &a.exclude_file)]
        .into_iter()
        .filter_map(|(f, p)| p.as_deref().filter(|p| *p != "-").map(|p| (f, p)))
        .collect();
    for (i, (fa, pa)) in written.iter().enumerate() {
        let la = safefile::lexical(pa);
        for (fb, pb) in &written[i + 1..] {
            if la == safefile::lexical(pb) {
                return Err(UsageError(format!(
                    "{fa} and {fb} both write {}: give each its own file",
                    echo::token(pa)
                )));
            }
        }
        for (fb, pb) in &read {
            if la == safefile::lexical(pb) {
                return Err(UsageError(format!(
                    "{} is both read ({fb}) and written ({fa})",
                    echo::token(pa)
                )));
            }
        }
    }
    Ok(())
}

/// The TCP scan technique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpScan {
    /// Half-open SYN scan over raw sockets (falls back to Connect).
    Syn,
    Connect,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub hosts: HostSet,
    pub ports: PortList,
    /// None when only UDP is scanned.
    pub tcp: Option<TcpScan>,
    pub udp: bool,
    /// Timeout bounds.
    pub timing: Timing,
    /// Tries per probe.
    pub budget: Budget,
    /// Rate floor, cap, start and growth.
    pub limits: Limits,
    pub seed: u64,
    /// This run's slice of the scan (`--shard K/N`).
    pub shard: Shard,
    pub cookie_key: [u8; 16],
    pub reason: bool,
    pub open_only: bool,
    pub verbose: u8,
    pub defeat_icmp_ratelimit: bool,
    pub outputs: Outputs,
    /// Where an interrupted scan saves its resume state.
    pub resume_file: String,
    pub stats_every: Option<Duration>,
    /// `--user`: who to become after opening sockets (root only).
    pub user: Option<String>,
    /// `-S`: the source addresses probes leave from.
    pub sources: Vec<IpAddr>,
    /// One-line notes for stderr (what the default excludes removed).
    pub notes: Vec<String>,
    /// `-sV`: service and version detection after the port scan.
    pub version: Option<crate::version::Options>,
    /// Host discovery before the port scan (`-sn`: instead of it); None
    /// with `-Pn` (every target is treated as up).
    pub discovery: Option<Discovery>,
}

impl Config {
    /// The plan of this run (its shard of the scan, in the seed's order).
    pub fn plan(&self) -> Result<Plan, UsageError> {
        let mut ports: Vec<(Proto, u16)> = Vec::new();
        if self.tcp.is_some() {
            ports.extend(self.ports.tcp.iter().map(|&p| (Proto::Tcp, p)));
        }
        if self.udp {
            ports.extend(self.ports.udp.iter().map(|&p| (Proto::Udp, p)));
        }
        let plan = Plan::new(self.hosts.clone(), ports, self.seed, self.shard)
            .map_err(|e| UsageError(e.to_string()))?;
        Ok(plan)
    }

    /// How the scan paces itself (the backend may lower `max_inflight`).
    pub fn settings(&self) -> Settings {
        Settings {
            timing: self.timing,
            budget: self.budget,
            limits: self.limits,
            defeat_icmp_ratelimit: self.defeat_icmp_ratelimit,
            max_inflight: usize::MAX,
            sources: Sources::new(&self.sources),
            group_timing: false,
            known_rtts: Vec::new(),
        }
    }
}

/// No cap: the path and the sender set the pace.
pub const UNCAPPED: f64 = 10_000_000.0;

/// A timing template (nmap's -T0..-T5).
#[derive(Clone, Copy, Debug)]
struct Template {
    /// Rate floor, cap, start (TCP scans measure the path from there)
    /// and growth per round trip once the path's capacity is known.
    min: f64,
    max: f64,
    initial: f64,
    growth: f64,
    /// The fixed rate of UDP-only scans, which give the controller no
    /// evidence (their silence is mostly the target's ICMP limit).
    udp: f64,
    /// Timeouts, ms: initial, min, max.
    rtt: (u64, u64, u64),
    /// Most tries the loss-driven budget may give a probe.
    max_tries: u32,
}

fn template(level: u8) -> Option<Template> {
    let t = |min, max, initial, growth, udp, rtt, max_tries| Template {
        min,
        max,
        initial,
        growth,
        udp,
        rtt,
        max_tries,
    };
    Some(match level {
        0 => t(1.0, 1.0, 1.0, 0.0, 1.0, (5000, 1000, 10_000), 11),
        1 => t(1.0, 10.0, 10.0, 0.05, 10.0, (2000, 500, 10_000), 11),
        2 => t(10.0, 100.0, 100.0, 0.05, 100.0, (1000, 100, 10_000), 11),
        3 => t(1.0, UNCAPPED, 4000.0, 0.1, 10_000.0, (1000, 50, 10_000), 20),
        4 => t(
            1.0,
            UNCAPPED,
            10_000.0,
            0.25,
            100_000.0,
            (500, 50, 1250),
            20,
        ),
        5 => t(1.0, UNCAPPED, 200_000.0, 0.5, 500_000.0, (250, 30, 300), 6),
        _ => return None,
    })
}

/// `500ms`, `1s`, `2m`, `0.5s`, or a plain number of seconds (as nmap);
/// less than a day.
pub fn parse_time(s: &str) -> Option<Duration> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * mult < 86_400.0).then(|| Duration::from_secs_f64(v * mult))
}

fn read_list(path: &str, flag: &str) -> Result<String, UsageError> {
    safefile::read_text(path, safefile::MAX_LIST_BYTES, flag).map_err(UsageError)
}

/// The probe timeouts: each given value must lie in [MIN_TIMEOUT,
/// MAX_TIMEOUT]; a template bound gives way to a value the user set (so
/// `--max-rtt-timeout 50ms` lowers -T3's 100 ms minimum), and only two
/// user values that contradict each other are an error naming both.
fn timeouts(args: &Args, (initial, min, max): (u64, u64, u64)) -> Result<Timing, UsageError> {
    let flag = |v: &Option<String>, name: &str| -> Result<Option<Duration>, UsageError> {
        let Some(s) = v else { return Ok(None) };
        match parse_time(s) {
            Some(d) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) => Ok(Some(d)),
            _ => Err(UsageError(format!(
                "invalid {name} {} (from {}ms to {}s)",
                echo::token(s),
                MIN_TIMEOUT.as_millis(),
                MAX_TIMEOUT.as_secs()
            ))),
        }
    };
    let g_initial = flag(&args.initial_rtt_timeout, "--initial-rtt-timeout")?;
    let g_min = flag(&args.min_rtt_timeout, "--min-rtt-timeout")?;
    let g_max = flag(&args.max_rtt_timeout, "--max-rtt-timeout")?;
    let ms = Duration::from_millis;
    let show = |d: Duration| format!("{}ms", d.as_millis());
    if let (Some(a), Some(b)) = (g_min, g_max)
        && a > b
    {
        return Err(UsageError(format!(
            "--min-rtt-timeout {} is larger than --max-rtt-timeout {}",
            show(a),
            show(b)
        )));
    }
    if let Some(i) = g_initial {
        if let Some(a) = g_min.filter(|a| i < *a) {
            return Err(UsageError(format!(
                "--initial-rtt-timeout {} is smaller than --min-rtt-timeout {}",
                show(i),
                show(a)
            )));
        }
        if let Some(b) = g_max.filter(|b| i > *b) {
            return Err(UsageError(format!(
                "--initial-rtt-timeout {} is larger than --max-rtt-timeout {}",
                show(i),
                show(b)
            )));
        }
    }
    // Template values give way to the user's.
    let lowest = [g_min, g_initial, g_max].into_iter().flatten().min();
    let highest = [g_min, g_initial, g_max].into_iter().flatten().max();
    let min = g_min.unwrap_or_else(|| ms(min).min(lowest.unwrap_or(Duration::MAX)));
    let max = g_max.unwrap_or_else(|| ms(max).max(highest.unwrap_or(Duration::ZERO)));
    let initial = g_initial.unwrap_or_else(|| ms(initial).clamp(min, max));
    Ok(Timing { initial, min, max })
}

/// Most source addresses `-S` takes.
pub const MAX_SOURCES: u128 = 4096;

/// The `-S` addresses: a list, ranges or CIDR blocks (no names), each one
/// configured on this host (it can be bound).
fn source_addresses(spec: &str) -> Result<Vec<IpAddr>, UsageError> {
    let tokens = targets::split_tokens(spec);
    let set = targets::parse_hosts(&tokens, &[], &|name| {
        Err(format!("-S takes addresses, not names ('{name}')"))
    })
    .map_err(|e| UsageError(format!("invalid -S: {e}")))?;
    if set.is_empty() || set.len() > MAX_SOURCES {
        return Err(UsageError(format!(
            "invalid -S {}: give 1 to {MAX_SOURCES} addresses, not {}",
            echo::token(spec),
            set.len()
        )));
    }
    let list: Vec<IpAddr> = (0..set.len()).filter_map(|i| set.get(i)).collect();
    for a in &list {
        let bound = std::net::UdpSocket::bind(std::net::SocketAddr::new(*a, 0));
        if let Err(e) = bound {
            let why = if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                "it is not configured on this host (add it with `ip addr add`)".to_string()
            } else {
                e.to_string()
            };
            return Err(UsageError(format!(
                "-S {a}: cannot send from this address: {why}"
            )));
        }
    }
    Ok(list)
}

/// Resolve a hostname with the system resolver.
pub fn system_resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .map_err(|e| e.to_string())
}

/// `-sV` and its `--version-*` flags (which need `-sV`, as nmap ignores
/// them without it; here that is a usage error rather than a silent no-op).
fn version_options(args: &Args) -> Result<Option<crate::version::Options>, UsageError> {
    let chosen = [
        args.version_intensity.is_some(),
        args.version_light,
        args.version_all,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if !args.version_scan {
        if chosen > 0 || args.version_timeout.is_some() {
            return Err(UsageError(
                "--version-intensity, --version-light, --version-all and --version-timeout need -sV".into(),
            ));
        }
        return Ok(None);
    }
    if chosen > 1 {
        return Err(UsageError(
            "choose one of --version-intensity, --version-light, --version-all".into(),
        ));
    }
    let mut o = crate::version::Options::default();
    if let Some(i) = args.version_intensity {
        if i > 9 {
            return Err(UsageError(format!(
                "invalid --version-intensity '{i}' (0-9)"
            )));
        }
        o.intensity = i;
    }
    if args.version_light {
        o.intensity = 2;
    }
    if args.version_all {
        o.intensity = 9;
    }
    if let Some(t) = &args.version_timeout {
        o.port_limit = parse_time(t)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| UsageError(format!("invalid --version-timeout '{t}'")))?;
    }
    Ok(Some(o))
}

/// The discovery flags as a `Discovery` (None: `-Pn`).
fn discovery_options(args: &Args) -> Result<Option<Discovery>, UsageError> {
    if args.no_ping {
        if args.ping_scan {
            return Err(UsageError(
                "-sn and -Pn together scan nothing: -sn finds the live hosts, -Pn skips that"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let ports = |spec: &Option<String>, flag: &str, proto: Proto| -> Result<Vec<u16>, UsageError> {
        match spec {
            None => Ok(Vec::new()),
            Some(s) => {
                let list =
                    parse_ports(s, &[proto]).map_err(|e| UsageError(format!("{flag}: {e}")))?;
                let v = list.get(proto).to_vec();
                if v.contains(&0) {
                    return Err(UsageError(format!("{flag}: port 0 cannot be probed")));
                }
                Ok(v)
            }
        }
    };
    Ok(Some(Discovery {
        only: args.ping_scan,
        echo: args.ping_echo,
        timestamp: args.ping_timestamp,
        syn: ports(&args.ping_syn, "-PS", Proto::Tcp)?,
        ack: ports(&args.ping_ack, "-PA", Proto::Tcp)?,
        udp: ports(&args.ping_udp, "-PU", Proto::Udp)?,
        arp: args.ping_arp,
        disable_arp: args.disable_arp_ping,
    }))
}

pub fn build(
    args: &Args,
    resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<Config, UsageError> {
    if args.syn && args.connect {
        return Err(UsageError(
            "-sS and -sT cannot be combined: choose one TCP scan type".into(),
        ));
    }
    let tcp = if args.connect {
        Some(TcpScan::Connect)
    } else if args.syn || !args.udp {
        Some(TcpScan::Syn)
    } else {
        None
    };
    let mut protos = Vec::new();
    if tcp.is_some() {
        protos.push(Proto::Tcp);
    }
    if args.udp {
        protos.push(Proto::Udp);
    }

    // Targets.
    let list = match &args.input_list {
        Some(f) => read_list(f, "-iL file")?,
        None => String::new(),
    };
    let exclude_list = match &args.exclude_file {
        Some(f) => read_list(f, "--exclude-file")?,
        None => String::new(),
    };
    let tokens = args
        .targets
        .iter()
        .map(String::as_str)
        .chain(targets::tokens(&list));
    if args.targets.is_empty() && targets::tokens(&list).next().is_none() {
        return Err(UsageError("no targets given (see rawscan --help)".into()));
    }
    let excludes = args
        .exclude
        .iter()
        .flat_map(|e| targets::tokens(e))
        .chain(targets::tokens(&exclude_list));
    let opts = TargetOptions {
        default_excludes: !args.no_default_excludes,
        allow_large: args.allow_large_target_set,
    };
    // -6: a hostname stands for its IPv6 addresses only (nmap -6).
    let resolve_v6 = |name: &str| -> Result<Vec<IpAddr>, String> {
        let v6: Vec<IpAddr> = resolve(name)?.into_iter().filter(IpAddr::is_ipv6).collect();
        if v6.is_empty() {
            return Err("no IPv6 (AAAA) address (-6)".into());
        }
        Ok(v6)
    };
    let resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String> =
        if args.ipv6 { &resolve_v6 } else { resolve };
    let parsed = targets::parse_targets(tokens, excludes, resolve, opts)?;
    let note = parsed.guarded_note();
    let hosts = parsed.hosts;
    if hosts.is_empty() {
        return Err(UsageError(match note {
            Some(n) => format!("no targets left: {n}"),
            None => "no targets left after excludes".into(),
        }));
    }

    // Ports.
    if args.ports.is_some() && args.top_ports.is_some() {
        return Err(UsageError("-p and --top-ports cannot be combined".into()));
    }
    let mut ports = match (&args.ports, args.top_ports) {
        (Some(spec), _) => targets::parse_ports(spec, &protos)?,
        (None, Some(0)) => return Err(UsageError("invalid --top-ports '0'".into())),
        (None, Some(n)) => PortList::top(n, &protos),
        (None, None) => PortList::top(1000, &protos),
    };
    if let Some(x) = &args.exclude_ports {
        ports.subtract(&targets::parse_ports(x, &[Proto::Tcp, Proto::Udp])?);
    }
    let any = (tcp.is_some() && !ports.tcp.is_empty()) || (args.udp && !ports.udp.is_empty());
    if !any {
        return Err(UsageError("no ports to scan".into()));
    }

    // Timing.
    let t = args.timing.unwrap_or(3);
    let tpl =
        template(t).ok_or_else(|| UsageError(format!("invalid timing template '-T{t}' (0-5)")))?;
    let timing = timeouts(args, tpl.rtt)?;
    let budget = match args.max_retries {
        Some(n) => Budget {
            min_tries: u32::from(n) + 1,
            max_tries: u32::from(n) + 1,
        },
        None => Budget {
            min_tries: 2,
            max_tries: tpl.max_tries,
        },
    };
    let rate_flag = |v: Option<f64>, name: &str| -> Result<Option<f64>, UsageError> {
        match v {
            Some(r) if !(r.is_finite() && r > 0.0 && r <= UNCAPPED) => Err(UsageError(format!(
                "invalid {name} '{r}' (above 0, at most {UNCAPPED} probes per second)"
            ))),
            other => Ok(other),
        }
    };
    let max_rate = rate_flag(args.max_rate, "--max-rate (--rate)")?;
    let min_rate = rate_flag(args.min_rate, "--min-rate")?;
    if let (Some(lo), Some(hi)) = (min_rate, max_rate)
        && lo > hi
    {
        return Err(UsageError("--min-rate is larger than --max-rate".into()));
    }
    let udp_only = tcp.is_none();
    let start = if udp_only { tpl.udp } else { tpl.initial };
    let mut limits = Limits {
        min: min_rate.unwrap_or(tpl.min),
        max: max_rate.unwrap_or(tpl.max),
        initial: start,
        growth: tpl.growth,
    };
    if udp_only {
        // Nothing to measure the path with: a fixed rate within the flags.
        let r = start.clamp(limits.min, limits.max.max(limits.min));
        limits = Limits {
            min: r,
            max: r,
            initial: r,
            growth: 0.0,
        };
    }
    let limits = limits.normalized();
    let shard = match &args.shard {
        None => Shard::WHOLE,
        Some(spec) => Shard::parse(spec).map_err(UsageError)?,
    };
    if args.shard.is_some() && args.seed.is_none() {
        return Err(UsageError(
            "--shard needs --seed: every shard must walk the same scan order, so give all of them the same --seed N (or they overlap and leave gaps)".into(),
        ));
    }

    let version = version_options(args)?;
    let discovery = discovery_options(args)?;
    let sources = match &args.source_ip {
        None => Vec::new(),
        Some(spec) => source_addresses(spec)?,
    };

    let cfg =
        Config {
            version,
            hosts,
            ports,
            tcp,
            udp: args.udp,
            timing,
            budget,
            limits,
            seed: args.seed.unwrap_or_else(rand::random),
            shard,
            cookie_key: rand::random(),
            reason: args.reason,
            open_only: args.open,
            verbose: args.verbose,
            defeat_icmp_ratelimit: args.defeat_icmp_ratelimit,
            outputs: Outputs::from_args(args)?,
            resume_file: args.resume_file.clone(),
            stats_every: match &args.stats_every {
                None => None,
                Some(s) => Some(parse_time(s).filter(|d| *d >= MIN_STATS_EVERY).ok_or_else(
                    || {
                        UsageError(format!(
                            "invalid --stats-every {} (at least {}ms)",
                            echo::token(s),
                            MIN_STATS_EVERY.as_millis()
                        ))
                    },
                )?),
            },
            user: args.user.clone(),
            sources,
            notes: note.into_iter().collect(),
            discovery,
        };
    check_distinct_files(args, &cfg.outputs)?;
    cfg.plan()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(v: &[&str]) -> Result<Config, UsageError> {
        let args = Args::try_parse_from(crate::cli::nmap_compat(
            v.iter().map(std::ffi::OsString::from),
        ))
        .unwrap();
        build(&args, &|_| Err("no dns in tests".into()))
    }

    #[test]
    fn defaults_are_syn_top_1000_at_t3() {
        let c = cfg(&["rawscan", "198.18.0.2"]).unwrap();
        assert_eq!(c.tcp, Some(TcpScan::Syn));
        assert!(!c.udp);
        assert_eq!(c.ports.tcp.len(), 1000);
        assert_eq!(c.limits.max, UNCAPPED);
        assert_eq!(c.limits.initial, 4000.0);
        assert_eq!(c.budget.max_tries, 20);
        assert_eq!(c.plan().unwrap().total(), 1000);
    }

    #[test]
    fn discovery_flags_become_a_discovery() {
        let d = cfg(&["rawscan", "198.18.0.2"]).unwrap().discovery;
        assert_eq!(d, Some(Discovery::default()), "discovery runs by default");
        assert_eq!(
            cfg(&["rawscan", "-Pn", "198.18.0.2"]).unwrap().discovery,
            None
        );
        let d = cfg(&[
            "rawscan",
            "-sn",
            "-PE",
            "-PS22,443",
            "-PA",
            "-PU53",
            "--disable-arp-ping",
            "198.18.0.2",
        ])
        .unwrap()
        .discovery
        .unwrap();
        assert!(d.only && d.echo && !d.timestamp && d.disable_arp && !d.arp);
        assert_eq!((d.syn, d.ack, d.udp), (vec![22, 443], vec![80], vec![53]));
        let e = |v: &[&str]| cfg(v).unwrap_err().0;
        assert!(e(&["rawscan", "-sn", "-Pn", "198.18.0.2"]).contains("-sn and -Pn"));
        assert!(e(&["rawscan", "-PSx", "198.18.0.2"]).contains("-PS"));
        assert!(e(&["rawscan", "-PA0", "198.18.0.2"]).contains("port 0"));
    }

    #[test]
    fn seeds_repeat_and_flags_apply() {
        let c = cfg(&[
            "rawscan",
            "-sT",
            "-p",
            "22,80",
            "--seed",
            "7",
            "-T4",
            "--max-retries",
            "2",
            "198.18.0.0/30",
        ])
        .unwrap();
        assert_eq!(c.tcp, Some(TcpScan::Connect));
        assert_eq!(c.seed, 7);
        assert_eq!(c.limits.initial, 10_000.0);
        assert_eq!((c.budget.min_tries, c.budget.max_tries), (3, 3));
        assert_eq!(c.plan().unwrap().total(), 8);
    }

    #[test]
    fn combined_tcp_and_udp() {
        let c = cfg(&[
            "rawscan",
            "-sS",
            "-sU",
            "-p",
            "T:1-1024,U:53,161",
            "198.18.0.2",
        ])
        .unwrap();
        assert_eq!(c.plan().unwrap().ports().len(), 1026);
        let c = cfg(&["rawscan", "-sU", "-p", "53", "198.18.0.2"]).unwrap();
        assert_eq!(c.tcp, None);
    }

    #[test]
    fn usage_errors_name_the_token() {
        let e = |v: &[&str]| cfg(v).unwrap_err().0;
        assert!(e(&["rawscan", "-p", "70000", "198.18.0.2"]).contains("'70000'"));
        assert!(e(&["rawscan", "300.1.1.1"]).contains("'300.1.1.1'"));
        assert!(e(&["rawscan", "--initial-rtt-timeout", "fast", "198.18.0.2"]).contains("'fast'"));
        assert!(e(&["rawscan", "-T9", "198.18.0.2"]).contains("-T9"));
        assert!(e(&["rawscan"]).contains("no targets"));
        assert!(e(&["rawscan", "-sS", "-sT", "198.18.0.2"]).contains("-sT"));
        assert!(e(&["rawscan", "198.18.0.2", "--exclude", "198.18.0.0/24"]).contains("no targets"));
    }

    #[test]
    fn shards_need_a_seed_and_a_good_spec() {
        let c = cfg(&[
            "rawscan",
            "--shard",
            "2/3",
            "--seed",
            "5",
            "-p",
            "1-10",
            "198.18.0.0/30",
        ])
        .unwrap();
        assert_eq!(c.shard, Shard::new(2, 3).unwrap());
        let p = c.plan().unwrap();
        assert_eq!((p.total(), p.len()), (40, 13));
        let e = cfg(&["rawscan", "--shard", "1/2", "198.18.0.2"])
            .unwrap_err()
            .0;
        assert!(e.contains("--shard needs --seed"), "{e}");
        for spec in ["0/3", "4/3", "3/0", "a/b", "1/3/4"] {
            let e = cfg(&["rawscan", "--shard", spec, "--seed", "1", "198.18.0.2"])
                .unwrap_err()
                .0;
            assert!(e.contains(&format!("'{spec}'")), "{e}");
        }
    }

    #[test]
    fn source_addresses_must_be_local() {
        let c = cfg(&["rawscan", "-S", "127.0.0.1", "198.18.0.2"]).unwrap();
        assert_eq!(c.sources, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        let c = cfg(&["rawscan", "--source-ip", "127.0.0.1-3", "198.18.0.2"]).unwrap();
        assert_eq!(c.sources.len(), 3);
        // 198.18.77.1 is configured nowhere (the lab uses 198.18.0.0/24).
        let e = cfg(&["rawscan", "-S", "127.0.0.1,198.18.77.1", "198.18.0.2"])
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("-S 198.18.77.1: ") && !e.contains('\n'),
            "{e}"
        );
        let e = cfg(&["rawscan", "-S", "some.name", "198.18.0.2"])
            .unwrap_err()
            .0;
        assert!(e.contains("-S"), "{e}");
        let e = cfg(&["rawscan", "-S", "127.0.0.0/8", "198.18.0.2"])
            .unwrap_err()
            .0;
        assert!(e.contains("4096"), "{e}");
    }

    #[test]
    fn timeouts_have_bounds_and_name_the_flag() {
        let e = |v: &[&str]| cfg(v).unwrap_err().0;
        for f in [
            "--min-rtt-timeout",
            "--max-rtt-timeout",
            "--initial-rtt-timeout",
        ] {
            for bad in ["0", "0ms", "0.0001", "200s", "1x"] {
                let m = e(&["rawscan", f, bad, "198.18.0.2"]);
                assert!(m.starts_with(&format!("invalid {f} ")), "{f} {bad}: {m}");
            }
        }
        let m = e(&[
            "rawscan",
            "--min-rtt-timeout",
            "2s",
            "--max-rtt-timeout",
            "1s",
            "198.18.0.2",
        ]);
        assert!(
            m.contains("--min-rtt-timeout 2000ms") && m.contains("--max-rtt-timeout 1000ms"),
            "{m}"
        );
        let m = e(&[
            "rawscan",
            "--initial-rtt-timeout",
            "5s",
            "--max-rtt-timeout",
            "1s",
            "198.18.0.2",
        ]);
        assert!(m.starts_with("--initial-rtt-timeout"), "{m}");
        // One value alone moves the template's other bound.
        let c = cfg(&["rawscan", "--max-rtt-timeout", "50ms", "198.18.0.2"]).unwrap();
        assert_eq!(
            (c.timing.min, c.timing.max),
            (Duration::from_millis(50), Duration::from_millis(50))
        );
        let c = cfg(&["rawscan", "--min-rtt-timeout", "20s", "198.18.0.2"]).unwrap();
        assert_eq!(c.timing.max, Duration::from_secs(20));
        assert_eq!(c.timing.initial, Duration::from_secs(20));
        let c = cfg(&["rawscan", "--initial-rtt-timeout", "30s", "198.18.0.2"]).unwrap();
        assert_eq!(c.timing.initial, Duration::from_secs(30));
        assert!(e(&["rawscan", "--rate", "0", "198.18.0.2"]).contains("--rate"));
        assert!(e(&["rawscan", "--stats-every", "1ms", "198.18.0.2"]).contains("--stats-every"));
    }

    #[test]
    fn outputs_must_name_distinct_files() {
        let e = |v: &[&str]| cfg(v).unwrap_err().0;
        let m = e(&["rawscan", "-oN", "f", "-oX", "./f", "198.18.0.2"]);
        assert!(m.contains("-oN and -oX"), "{m}");
        let m = e(&["rawscan", "-oA", "s", "-oJ", "s.ndjson", "198.18.0.2"]);
        assert!(m.contains("-oA"), "{m}");
        let m = e(&["rawscan", "-oJ", "R", "--resume-file", "R", "198.18.0.2"]);
        assert!(m.contains("--resume-file"), "{m}");
        assert!(cfg(&["rawscan", "-oA", "s", "-oX", "-", "198.18.0.2"]).is_ok());
    }

    /// `-6`: a hostname stands for its AAAA addresses (nmap -6); without
    /// it IPv4 is preferred; a name without AAAA is a resolve error.
    #[test]
    fn dash_6_resolves_hostnames_to_ipv6() {
        let fake = |name: &str| -> Result<Vec<IpAddr>, String> {
            match name {
                "dual.lab" => Ok(vec![
                    "198.18.0.2".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                ]),
                "v4only.lab" => Ok(vec!["198.18.0.3".parse().unwrap()]),
                _ => Err("unknown".into()),
            }
        };
        let run = |v: &[&str]| {
            let args = Args::try_parse_from(crate::cli::nmap_compat(
                v.iter().map(std::ffi::OsString::from),
            ))
            .unwrap();
            build(&args, &fake)
        };
        let c = run(&["rawscan", "dual.lab"]).unwrap();
        assert_eq!(c.hosts.get(0), Some("198.18.0.2".parse().unwrap()));
        let c = run(&["rawscan", "-6", "dual.lab"]).unwrap();
        assert_eq!(c.hosts.get(0), Some("2001:db8::2".parse().unwrap()));
        assert_eq!(c.hosts.len(), 1);
        let m = run(&["rawscan", "-6", "v4only.lab"]).unwrap_err().0;
        assert!(m.contains("v4only.lab") && m.contains("IPv6"), "{m}");
        // Literal addresses and blocks are taken as given.
        let c = run(&["rawscan", "-6", "2001:db8::/126", "198.18.0.9"]).unwrap();
        assert_eq!(c.hosts.len(), 5);
    }

    #[test]
    fn guarded_targets_are_noted_or_refused() {
        let c = cfg(&["rawscan", "127.0.0.1", "224.0.0.1"]).unwrap();
        assert_eq!(c.hosts.len(), 1);
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("1 in 224.0.0.0/4"), "{:?}", c.notes);
        let m = cfg(&["rawscan", "255.255.255.255"]).unwrap_err().0;
        assert!(
            m.contains("no targets left") && m.contains("--no-default-excludes"),
            "{m}"
        );
        let c = cfg(&["rawscan", "--no-default-excludes", "255.255.255.255"]).unwrap();
        assert!(c.notes.is_empty());
        let m = cfg(&["rawscan", "2001:db8::/103"]).unwrap_err().0;
        assert!(
            m.contains("33554432") && m.contains("--allow-large-target-set"),
            "{m}"
        );
    }

    #[test]
    fn output_flags() {
        let c = cfg(&["rawscan", "-oA", "scan", "-oX", "-", "198.18.0.2"]).unwrap();
        assert_eq!(c.outputs.xml, Some(Dest::Stdout));
        assert_eq!(c.outputs.normal, Some(Dest::File("scan.nmap".into())));
        assert_eq!(c.outputs.ndjson, Some(Dest::File("scan.ndjson".into())));
        assert!(c.outputs.stdout_taken());
        let e = cfg(&["rawscan", "-oX", "-", "-oJ", "-", "198.18.0.2"])
            .unwrap_err()
            .0;
        assert!(e.contains("stdout"), "{e}");
        assert!(cfg(&["rawscan", "--stats-every", "0", "198.18.0.2"]).is_err());
        let e = cfg(&["rawscan", "-oA", "-", "198.18.0.2"]).unwrap_err().0;
        assert!(e.contains("-oA"), "{e}");
    }

    #[test]
    fn version_detection_flags() {
        assert_eq!(cfg(&["rawscan", "198.18.0.2"]).unwrap().version, None);
        let v = cfg(&["rawscan", "-sV", "198.18.0.2"])
            .unwrap()
            .version
            .unwrap();
        assert_eq!(v, crate::version::Options::default());
        assert_eq!(v.intensity, 7);
        let c = cfg(&["rawscan", "-sSV", "198.18.0.2"]).unwrap();
        assert_eq!(c.tcp, Some(TcpScan::Syn));
        assert!(c.version.is_some());
        let at = |v: &[&str]| cfg(v).unwrap().version.unwrap();
        assert_eq!(
            at(&["rawscan", "-sV", "--version-light", "198.18.0.2"]).intensity,
            2
        );
        assert_eq!(
            at(&["rawscan", "-sV", "--version-all", "198.18.0.2"]).intensity,
            9
        );
        assert_eq!(
            at(&["rawscan", "-sV", "--version-intensity", "0", "198.18.0.2"]).intensity,
            0
        );
        assert_eq!(
            at(&["rawscan", "-sV", "--version-timeout", "3s", "198.18.0.2"]).port_limit,
            Duration::from_secs(3)
        );
        let e = |v: &[&str]| cfg(v).unwrap_err().0;
        assert!(e(&["rawscan", "-sV", "--version-intensity", "10", "198.18.0.2"]).contains("'10'"));
        assert!(e(&["rawscan", "--version-all", "198.18.0.2"]).contains("need -sV"));
        assert!(
            e(&[
                "rawscan",
                "-sV",
                "--version-all",
                "--version-light",
                "198.18.0.2"
            ])
            .contains("choose one")
        );
        assert!(
            e(&["rawscan", "-sV", "--version-timeout", "0", "198.18.0.2"])
                .contains("--version-timeout")
        );
    }

    #[test]
    fn time_values() {
        assert_eq!(parse_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_time("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_time("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("x"), None);
    }
}
