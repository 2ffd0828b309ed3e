//! Turns parsed flags into a checked `Config`. Every user-facing error
//! message about flags, targets and ports is made here.
//!
//! Invariants: a `Config` is complete and consistent (at least one host
//! and one port, one TCP scan type, a total that fits the permutation);
//! the only I/O is DNS resolution (once per name) and reading -iL and
//! --exclude-file files.

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use crate::cli::Args;
use crate::plan::Plan;
use crate::probe::Proto;
use crate::table::Timing;
use crate::targets::{self, HostSet, PortList, SpecError};

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
        let mut o = Outputs {
            normal: a.out_normal.as_deref().map(Dest::parse),
            xml: a.out_xml.as_deref().map(Dest::parse),
            grepable: a.out_grepable.as_deref().map(Dest::parse),
            ndjson: a.out_ndjson.as_deref().map(Dest::parse),
        };
        if let Some(base) = &a.out_all {
            if base == "-" {
                return Err(UsageError("-oA needs a file name base, not '-'".into()));
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
    pub rate: u64,
    pub timing: Timing,
    pub seed: u64,
    pub cookie_key: [u8; 16],
    pub reason: bool,
    pub open_only: bool,
    pub verbose: u8,
    pub defeat_icmp_ratelimit: bool,
    pub outputs: Outputs,
    /// Where an interrupted scan saves its resume state.
    pub resume_file: String,
    pub stats_every: Option<Duration>,
    /// `-sV`: service and version detection after the port scan.
    pub version: Option<crate::version::Options>,
}

impl Config {
    pub fn plan(&self) -> Plan {
        let mut ports: Vec<(Proto, u16)> = Vec::new();
        if self.tcp.is_some() {
            ports.extend(self.ports.tcp.iter().map(|&p| (Proto::Tcp, p)));
        }
        if self.udp {
            ports.extend(self.ports.udp.iter().map(|&p| (Proto::Udp, p)));
        }
        Plan {
            hosts: self.hosts.clone(),
            ports,
            seed: self.seed,
            rate: self.rate,
            timing: self.timing,
            start: 0,
            carry: Vec::new(),
            defeat_icmp_ratelimit: self.defeat_icmp_ratelimit,
        }
    }
}

/// nmap-like timing templates: (rate pps, initial, min, max timeout ms, retries).
fn template(t: u8) -> Option<(u64, u64, u64, u64, u8)> {
    Some(match t {
        0 => (1, 5000, 1000, 10_000, 10),
        1 => (10, 2000, 500, 10_000, 10),
        2 => (100, 1000, 100, 10_000, 10),
        3 => (10_000, 1000, 100, 10_000, 10),
        4 => (100_000, 500, 100, 1250, 6),
        5 => (500_000, 250, 50, 300, 2),
        _ => return None,
    })
}

/// `500ms`, `1s`, `2m`, `0.5s`, or a plain number of seconds (as nmap).
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

fn read_list(path: &str) -> Result<Vec<String>, UsageError> {
    let mut text = String::new();
    let r = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    r.map_err(|e| UsageError(format!("cannot read '{path}': {e}")))?;
    Ok(targets::split_tokens(&text))
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
    let mut tokens = args.targets.clone();
    if let Some(f) = &args.input_list {
        tokens.extend(read_list(f)?);
    }
    if tokens.is_empty() {
        return Err(UsageError("no targets given (see rawscan --help)".into()));
    }
    let mut excludes: Vec<String> = args
        .exclude
        .iter()
        .flat_map(|e| targets::split_tokens(e))
        .collect();
    if let Some(f) = &args.exclude_file {
        excludes.extend(read_list(f)?);
    }
    let hosts = targets::parse_hosts(&tokens, &excludes, resolve)?;
    if hosts.is_empty() {
        return Err(UsageError("no targets left after excludes".into()));
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
    let (rate, initial, min, max, retries) =
        template(t).ok_or_else(|| UsageError(format!("invalid timing template '-T{t}' (0-5)")))?;
    let time_flag = |v: &Option<String>, name: &str, dflt: u64| -> Result<Duration, UsageError> {
        match v {
            None => Ok(Duration::from_millis(dflt)),
            Some(s) => parse_time(s).ok_or_else(|| UsageError(format!("invalid {name} '{s}'"))),
        }
    };
    let mut timing = Timing {
        initial: time_flag(&args.initial_rtt_timeout, "--initial-rtt-timeout", initial)?,
        min: time_flag(&args.min_rtt_timeout, "--min-rtt-timeout", min)?,
        max: time_flag(&args.max_rtt_timeout, "--max-rtt-timeout", max)?,
        max_retries: args.max_retries.unwrap_or(retries),
        adaptive_retries: args.max_retries.is_none(),
    };
    if timing.min > timing.max {
        return Err(UsageError(
            "--min-rtt-timeout is larger than --max-rtt-timeout".into(),
        ));
    }
    timing.initial = timing.initial.clamp(timing.min, timing.max);
    let rate = args.rate.unwrap_or(rate);
    if rate == 0 {
        return Err(UsageError("invalid --rate '0'".into()));
    }

    let version = version_options(args)?;

    let cfg = Config {
        hosts,
        ports,
        tcp,
        udp: args.udp,
        rate,
        timing,
        seed: args.seed.unwrap_or_else(rand::random),
        cookie_key: rand::random(),
        reason: args.reason,
        open_only: args.open,
        verbose: args.verbose,
        defeat_icmp_ratelimit: args.defeat_icmp_ratelimit,
        outputs: Outputs::from_args(args)?,
        resume_file: args.resume_file.clone(),
        stats_every: match &args.stats_every {
            None => None,
            Some(s) => Some(
                parse_time(s)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| UsageError(format!("invalid --stats-every '{s}'")))?,
            ),
        },
        version,
    };
    if cfg.plan().total().is_none() {
        return Err(UsageError(
            "too many (host, port) pairs: split the scan".into(),
        ));
    }
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
        assert_eq!(c.rate, 10_000);
        assert_eq!(c.timing.max_retries, 10);
        assert_eq!(c.plan().total(), Some(1000));
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
        assert_eq!(c.rate, 100_000);
        assert_eq!(c.timing.max_retries, 2);
        assert_eq!(c.plan().total(), Some(8));
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
        assert_eq!(c.plan().ports.len(), 1026);
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
