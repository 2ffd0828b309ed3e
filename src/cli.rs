//! Command-line flags (clap) and nmap-style flag spelling.
//!
//! Invariants: this module only describes flags and rewrites nmap's
//! multi-letter short options (`-sS`, `-iL`, `-oX`, `-p-`, `-Pn`, `-T4`)
//! into long ones clap understands; all validation is in `config`.
//! `Args::to_argv` writes any `Args` back as a canonical command line
//! (`--long=value`, targets after `--`) that parses to the same `Args`:
//! resume files store that form, and read it back with this same parser.

use std::ffi::OsString;

use clap::{ArgAction, Parser};

#[derive(Parser, Debug, Default, Clone, PartialEq)]
#[command(
    name = "rawscan",
    version,
    about = "Fast, trustworthy port scanner: SYN and UDP scans over raw sockets, TCP connect fallback",
    after_help = "nmap spellings are accepted: -sS -sT -sU -sV (and -sSV, -sSUV…) -iL FILE -oN/-oX/-oG/-oJ/-oA FILE -p- -Pn -sn -PE -PP -PS[ports] -PA[ports] -PU[ports] -PR -T0..-T5.\n\
                  Scan only networks you are authorized to test."
)]
pub struct Args {
    /// Targets: addresses, CIDR blocks, nmap octet ranges (198.18.0.1-20), hostnames
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read targets from FILE ('-' for stdin) [nmap: -iL]
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_list: Option<String>,

    /// Exclude hosts (comma-separated targets)
    #[arg(long, value_name = "LIST")]
    pub exclude: Vec<String>,

    /// Exclude hosts listed in FILE
    #[arg(long = "exclude-file", alias = "excludefile", value_name = "FILE")]
    pub exclude_file: Option<String>,

    /// Also scan multicast, reserved (240/4), 0.0.0.0/8, broadcast, :: and
    /// ff00::/8 addresses, which are skipped by default
    #[arg(long = "no-default-excludes")]
    pub no_default_excludes: bool,

    /// Allow more than 16777216 (2^24) target addresses
    #[arg(long = "allow-large-target-set")]
    pub allow_large_target_set: bool,

    /// Ports: 22,80,8000-8100  -  ssh,http  T:1-1024,U:53 [default: top 1000]
    #[arg(
        short = 'p',
        long = "ports",
        value_name = "SPEC",
        allow_hyphen_values = true
    )]
    pub ports: Option<String>,

    /// Scan the N most common ports
    #[arg(long = "top-ports", value_name = "N")]
    pub top_ports: Option<usize>,

    /// Do not scan these ports
    #[arg(long = "exclude-ports", value_name = "SPEC")]
    pub exclude_ports: Option<String>,

    /// TCP SYN scan (default with raw-socket privileges) [nmap: -sS]
    #[arg(long = "syn")]
    pub syn: bool,

    /// TCP connect scan [nmap: -sT]
    #[arg(long = "connect")]
    pub connect: bool,

    /// UDP scan [nmap: -sU]
    #[arg(long = "udp")]
    pub udp: bool,

    /// Never send faster than this many probes per second [default: as
    /// fast as the path allows, measured while scanning]
    #[arg(long = "max-rate", visible_alias = "rate", value_name = "PPS")]
    pub max_rate: Option<f64>,

    /// Probe open ports to name the service and its version [nmap: -sV]
    #[arg(long = "version-scan")]
    pub version_scan: bool,

    /// -sV: how many probes to try, 0 (few) to 9 (all) [default: 7]
    #[arg(long = "version-intensity", value_name = "0-9")]
    pub version_intensity: Option<u8>,

    /// -sV: the likeliest probes only (intensity 2)
    #[arg(long = "version-light")]
    pub version_light: bool,

    /// -sV: every probe (intensity 9)
    #[arg(long = "version-all")]
    pub version_all: bool,

    /// -sV: the most time one port may take, all probes included [default: 10s]
    #[arg(long = "version-timeout", value_name = "TIME")]
    pub version_timeout: Option<String>,

    /// Never send slower than this many probes per second, whatever the
    /// path shows [default: none]
    #[arg(long = "min-rate", value_name = "PPS")]
    pub min_rate: Option<f64>,

    /// Timing template 0-5, as nmap's -T (sets rate caps, how eagerly the
    /// rate grows, timeouts and the retry cap)
    #[arg(long = "timing", value_name = "0-5")]
    pub timing: Option<u8>,

    /// Retransmissions before a probe counts as unanswered, exactly
    /// [default: as many as the measured loss needs]
    #[arg(long = "max-retries", value_name = "N")]
    pub max_retries: Option<u8>,

    /// Initial probe timeout (e.g. 500ms, 1s)
    #[arg(long = "initial-rtt-timeout", value_name = "TIME")]
    pub initial_rtt_timeout: Option<String>,

    /// Smallest probe timeout
    #[arg(long = "min-rtt-timeout", value_name = "TIME")]
    pub min_rtt_timeout: Option<String>,

    /// Largest probe timeout
    #[arg(long = "max-rtt-timeout", value_name = "TIME")]
    pub max_rtt_timeout: Option<String>,

    /// Seed for the scan order (repeatable order)
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Scan only the K-th of N disjoint slices of the (host, port) order,
    /// 1-based, as masscan; needs --seed, the same on every shard
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// UDP: report ports unanswered after a short wait as closed|filtered
    /// instead of pacing re-probes to the target's ICMP rate limit
    #[arg(long = "defeat-icmp-ratelimit")]
    pub defeat_icmp_ratelimit: bool,

    /// Show why each port has its state (and the reply's TTL)
    #[arg(long)]
    pub reason: bool,

    /// Show only open (or possibly open) ports
    #[arg(long)]
    pub open: bool,

    /// More output (repeat for more); -v prints open ports as found
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Never do DNS resolution of results (rawscan does no reverse DNS)
    #[arg(short = 'n')]
    pub no_dns: bool,

    /// Resolve hostnames to IPv6 (AAAA) addresses only, as nmap -6 does;
    /// address and CIDR targets of either family are scanned as given
    #[arg(short = '6')]
    pub ipv6: bool,

    #[command(flatten)]
    pub outputs: OutputArgs,

    /// Print a status line to stderr at this interval (e.g. 10s)
    #[arg(long = "stats-every", value_name = "TIME")]
    pub stats_every: Option<String>,

    /// Continue an interrupted scan from its resume file
    #[arg(long, value_name = "FILE")]
    pub resume: Option<String>,

    /// Where an interrupted scan writes its resume file
    #[arg(
        long = "resume-file",
        value_name = "FILE",
        default_value = "rawscan.resume"
    )]
    pub resume_file: String,

    /// As root: the user to become once sockets and files are open
    /// [default: the sudo user, else nobody]
    #[arg(long = "user", value_name = "NAME")]
    pub user: Option<String>,

    /// Send from these addresses of this host (a list, range or CIDR,
    /// e.g. 198.18.1.1-32): UDP scans get each target's ICMP budget once
    /// per address [nmap: -S]
    #[arg(short = 'S', long = "source-ip", value_name = "ADDRS")]
    pub source_ip: Option<String>,

    /// Skip host discovery: treat every target as up [nmap: -Pn]
    #[arg(long = "no-ping")]
    pub no_ping: bool,

    /// Host discovery only, no port scan [nmap: -sn]
    #[arg(long = "ping-scan")]
    pub ping_scan: bool,

    /// Discovery: ICMP echo [nmap: -PE]
    #[arg(long = "ping-echo")]
    pub ping_echo: bool,

    /// Discovery: ICMP timestamp [nmap: -PP]
    #[arg(long = "ping-timestamp")]
    pub ping_timestamp: bool,

    /// Discovery: TCP SYN to these ports [nmap: -PS[ports], default 443]
    #[arg(long = "ping-syn", value_name = "PORTS")]
    pub ping_syn: Option<String>,

    /// Discovery: TCP ACK to these ports [nmap: -PA[ports], default 80]
    #[arg(long = "ping-ack", value_name = "PORTS")]
    pub ping_ack: Option<String>,

    /// Discovery: UDP to these ports [nmap: -PU[ports], default 40125]
    #[arg(long = "ping-udp", value_name = "PORTS")]
    pub ping_udp: Option<String>,

    /// Discovery: ARP / Neighbour Discovery on the local segment [nmap: -PR]
    #[arg(long = "ping-arp")]
    pub ping_arp: bool,

    /// Discovery: no ARP / ND even on a local segment (IP-level probes)
    #[arg(long = "disable-arp-ping")]
    pub disable_arp_ping: bool,
}

/// `rawscan merge [OPTIONS] FILE...`: one report from the NDJSON files of
/// the shards of a scan (or of an interrupted run and its resume).
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "rawscan merge",
    version,
    about = "Merge the NDJSON outputs (-oJ) of a scan's shards (--shard K/N), or of an interrupted run and its --resume, into one report",
    after_help = "Example: rawscan merge -oX all.xml -oN all.nmap shard-*.ndjson\n\
                  Normal output goes to stdout unless another format is sent there with '-'."
)]
pub struct MergeArgs {
    /// NDJSON files written with -oJ ('-' for stdin)
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,

    /// Show why each port has its state (added to the parts' own choice)
    #[arg(long)]
    pub reason: bool,

    /// Show only open (or possibly open) ports
    #[arg(long)]
    pub open: bool,

    /// More output
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// The output flags, shared by a scan and by `rawscan merge`.
#[derive(clap::Args, Debug, Default, Clone, PartialEq, Eq)]
pub struct OutputArgs {
    /// Normal output to FILE ('-' = stdout) [nmap: -oN]
    #[arg(long = "output-n", value_name = "FILE")]
    pub out_normal: Option<String>,

    /// nmap XML output to FILE [nmap: -oX]
    #[arg(long = "output-x", value_name = "FILE")]
    pub out_xml: Option<String>,

    /// Grepable output to FILE [nmap: -oG]
    #[arg(long = "output-g", value_name = "FILE")]
    pub out_grepable: Option<String>,

    /// NDJSON output to FILE, one line per port as decided [-oJ]
    #[arg(long = "output-j", value_name = "FILE")]
    pub out_ndjson: Option<String>,

    /// All formats: BASE.nmap BASE.xml BASE.gnmap BASE.ndjson [nmap: -oA]
    #[arg(long = "output-a", value_name = "BASE")]
    pub out_all: Option<String>,
}

impl Args {
    /// A command line (without argv[0]) that parses back to `self`, in
    /// canonical form: `--long=value`, repeated flags repeated, targets
    /// last after `--`. `--resume` is never written.
    pub fn to_argv(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut opt = |name: &str, val: &Option<String>| {
            if let Some(x) = val {
                v.push(format!("--{name}={x}"));
            }
        };
        opt("input-list", &self.input_list);
        opt("exclude-file", &self.exclude_file);
        opt("ports", &self.ports);
        opt("exclude-ports", &self.exclude_ports);
        opt("initial-rtt-timeout", &self.initial_rtt_timeout);
        opt("min-rtt-timeout", &self.min_rtt_timeout);
        opt("max-rtt-timeout", &self.max_rtt_timeout);
        let o = &self.outputs;
        opt("output-n", &o.out_normal);
        opt("output-x", &o.out_xml);
        opt("output-g", &o.out_grepable);
        opt("output-j", &o.out_ndjson);
        opt("output-a", &o.out_all);
        opt("stats-every", &self.stats_every);
        opt("user", &self.user);
        opt("shard", &self.shard);
        opt("source-ip", &self.source_ip);
        opt("version-timeout", &self.version_timeout);
        opt("resume-file", &Some(self.resume_file.clone()));
        let num = |name: &str, val: Option<String>| val.map(|x| format!("--{name}={x}"));
        v.extend(num("top-ports", self.top_ports.map(|n| n.to_string())));
        v.extend(num("max-rate", self.max_rate.map(|n| n.to_string())));
        v.extend(num("min-rate", self.min_rate.map(|n| n.to_string())));
        v.extend(num("timing", self.timing.map(|n| n.to_string())));
        v.extend(num("max-retries", self.max_retries.map(|n| n.to_string())));
        v.extend(num("seed", self.seed.map(|n| n.to_string())));
        v.extend(num(
            "version-intensity",
            self.version_intensity.map(|n| n.to_string()),
        ));
        for e in &self.exclude {
            v.push(format!("--exclude={e}"));
        }
        for (on, name) in [
            (self.syn, "--syn"),
            (self.connect, "--connect"),
            (self.udp, "--udp"),
            (self.version_scan, "--version-scan"),
            (self.version_light, "--version-light"),
            (self.version_all, "--version-all"),
            (self.no_default_excludes, "--no-default-excludes"),
            (self.allow_large_target_set, "--allow-large-target-set"),
            (self.defeat_icmp_ratelimit, "--defeat-icmp-ratelimit"),
            (self.reason, "--reason"),
            (self.open, "--open"),
            (self.no_dns, "-n"),
            (self.ipv6, "-6"),
            (self.no_ping, "--no-ping"),
            (self.ping_scan, "--ping-scan"),
            (self.ping_echo, "--ping-echo"),
            (self.ping_timestamp, "--ping-timestamp"),
            (self.ping_arp, "--ping-arp"),
            (self.disable_arp_ping, "--disable-arp-ping"),
        ] {
            if on {
                v.push(name.to_string());
            }
        }
        for (val, name) in [
            (&self.ping_syn, "--ping-syn"),
            (&self.ping_ack, "--ping-ack"),
            (&self.ping_udp, "--ping-udp"),
        ] {
            if let Some(p) = val {
                v.push(format!("{name}={p}"));
            }
        }
        v.extend((0..self.verbose).map(|_| "-v".to_string()));
        if !self.targets.is_empty() {
            v.push("--".into());
            v.extend(self.targets.iter().cloned());
        }
        v
    }
}

/// The long name of a flag by its clap id (`out_xml` → `--output-x`), or
/// the id itself for positional arguments.
pub fn flag_name(id: &str) -> String {
    use clap::CommandFactory;
    let cmd = Args::command();
    match cmd.get_arguments().find(|a| a.get_id() == id) {
        Some(a) => match (a.get_long(), a.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => a
                .get_value_names()
                .and_then(|n| n.first())
                .map(|n| n.to_string())
                .unwrap_or_else(|| id.to_string()),
        },
        None => id.to_string(),
    }
}

/// Rewrite nmap's spellings into ones clap parses.
pub fn nmap_compat(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut positional = false;
    for a in args {
        let Some(s) = a.to_str().filter(|_| !positional) else {
            out.push(a);
            continue;
        };
        if s == "--" {
            positional = true;
            out.push(a);
            continue;
        }
        let mapped: Option<Vec<String>> = match s {
            "-p-" => Some(vec!["-p".into(), "1-65535".into()]),
            "-iL" => Some(vec!["--input-list".into()]),
            "-Pn" => Some(vec!["--no-ping".into()]),
            "-sn" | "-sP" => Some(vec!["--ping-scan".into()]),
            "-PE" => Some(vec!["--ping-echo".into()]),
            "-PP" => Some(vec!["--ping-timestamp".into()]),
            "-PR" => Some(vec!["--ping-arp".into()]),
            _ if s.len() >= 3
                && s.starts_with("-P")
                && matches!(s.as_bytes()[2], b'S' | b'A' | b'U') =>
            {
                let (flag, default) = match s.as_bytes()[2] {
                    b'S' => ("--ping-syn", "443"),
                    b'A' => ("--ping-ack", "80"),
                    _ => ("--ping-udp", "40125"),
                };
                let ports = if s.len() == 3 { default } else { &s[3..] };
                Some(vec![format!("{flag}={ports}")])
            }
            _ if s.len() > 2
                && s.starts_with("-s")
                && s[2..].chars().all(|c| "STUV".contains(c)) =>
            {
                Some(
                    s[2..]
                        .chars()
                        .map(|c| match c {
                            'S' => "--syn".to_string(),
                            'T' => "--connect".to_string(),
                            'V' => "--version-scan".to_string(),
                            _ => "--udp".to_string(),
                        })
                        .collect(),
                )
            }
            _ if s.len() == 3 && s.starts_with("-T") && s.as_bytes()[2].is_ascii_digit() => {
                Some(vec!["--timing".into(), s[2..].into()])
            }
            _ if s.starts_with("-o")
                && s.as_bytes().get(2).is_some_and(|b| b"NXGJA".contains(b)) =>
            {
                // -oX FILE, -oXFILE and -oX=FILE.
                let flag = format!("--output-{}", &s[2..3].to_lowercase());
                match s[3..].strip_prefix('=').unwrap_or(&s[3..]) {
                    "" => Some(vec![flag]),
                    v => Some(vec![format!("{flag}={v}")]),
                }
            }
            _ if s.len() > 3 && s.starts_with("-iL") => Some(vec![format!(
                "--input-list={}",
                s[3..].strip_prefix('=').unwrap_or(&s[3..])
            )]),
            _ => None,
        };
        match mapped {
            Some(v) => out.extend(v.into_iter().map(OsString::from)),
            None => out.push(a),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Args {
        Args::try_parse_from(nmap_compat(v.iter().map(OsString::from))).unwrap()
    }

    #[test]
    fn nmap_spellings() {
        let a = parse(&[
            "rawscan",
            "-sS",
            "-sU",
            "-p-",
            "-Pn",
            "-T4",
            "-iL",
            "-",
            "-v",
            "-v",
            "198.18.0.2",
        ]);
        assert!(a.syn && a.udp && !a.connect);
        assert_eq!(a.ports.as_deref(), Some("1-65535"));
        assert_eq!(a.timing, Some(4));
        assert_eq!(a.input_list.as_deref(), Some("-"));
        assert_eq!(a.verbose, 2);
        assert_eq!(a.targets, vec!["198.18.0.2"]);
        let b = parse(&["rawscan", "-sT", "-p", "22,80", "--reason", "--open", "x"]);
        assert!(b.connect && b.reason && b.open);
        let c = parse(&["rawscan", "-sSU", "x"]);
        assert!(c.syn && c.udp && !c.version_scan);
        let v = parse(&["rawscan", "-sV", "--version-intensity", "3", "x"]);
        assert!(v.version_scan && !v.syn && !v.udp);
        assert_eq!(v.version_intensity, Some(3));
        let sv = parse(&["rawscan", "-sSV", "x"]);
        assert!(sv.syn && sv.version_scan);
        let suv = parse(&["rawscan", "-sSUV", "--version-all", "x"]);
        assert!(suv.syn && suv.udp && suv.version_scan && suv.version_all);
        let tv = parse(&["rawscan", "-sVT", "x"]);
        assert!(tv.connect && tv.version_scan);
        // Every spelling of an output flag is the same flag.
        for spelling in [
            &["-oX", "f.xml"][..],
            &["-oXf.xml"],
            &["-oX=f.xml"],
            &["--output-x", "f.xml"],
            &["--output-x=f.xml"],
        ] {
            let mut v = vec!["rawscan"];
            v.extend_from_slice(spelling);
            v.push("x");
            assert_eq!(
                parse(&v).outputs.out_xml.as_deref(),
                Some("f.xml"),
                "{spelling:?}"
            );
        }
        // Not a char boundary after -o: no panic, clap reports it.
        assert!(
            Args::try_parse_from(nmap_compat(["rawscan", "-oé", "x"].map(OsString::from))).is_err()
        );
        // Discovery flags, nmap's spellings.
        let d = parse(&[
            "rawscan", "-sn", "-PE", "-PP", "-PS", "-PA22,80", "-PU53", "x",
        ]);
        assert!(d.ping_scan && d.ping_echo && d.ping_timestamp);
        assert_eq!(d.ping_syn.as_deref(), Some("443"));
        assert_eq!(d.ping_ack.as_deref(), Some("22,80"));
        assert_eq!(d.ping_udp.as_deref(), Some("53"));
        let r = parse(&["rawscan", "-PR", "--disable-arp-ping", "-Pn", "x"]);
        assert!(r.ping_arp && r.disable_arp_ping && r.no_ping);
        // After `--`, nothing is rewritten.
        let d = parse(&["rawscan", "--", "-sS"]);
        assert_eq!(d.targets, vec!["-sS"]);
        assert!(!d.syn);
    }

    /// Every flag clap knows survives `to_argv` and parses back the same.
    #[test]
    fn canonical_argv_round_trips_every_flag() {
        use clap::CommandFactory;
        use clap::parser::ValueSource;
        let full = Args {
            targets: vec!["198.18.0.2".into(), "-weird".into()],
            input_list: Some("-".into()),
            exclude: vec!["198.18.0.9".into(), "198.18.0.10".into()],
            exclude_file: Some("x file".into()),
            no_default_excludes: true,
            allow_large_target_set: true,
            ports: Some("-".into()),
            top_ports: Some(5),
            exclude_ports: Some("-10".into()),
            syn: true,
            connect: true,
            udp: true,
            max_rate: Some(7.5),
            min_rate: Some(2.0),
            shard: Some("2/3".into()),
            source_ip: Some("127.0.0.1".into()),
            version_scan: true,
            version_intensity: Some(4),
            version_light: true,
            version_all: true,
            version_timeout: Some("3s".into()),
            timing: Some(4),
            max_retries: Some(3),
            initial_rtt_timeout: Some("1s".into()),
            min_rtt_timeout: Some("50ms".into()),
            max_rtt_timeout: Some("2s".into()),
            seed: Some(u64::MAX),
            defeat_icmp_ratelimit: true,
            reason: true,
            open: true,
            verbose: 3,
            no_dns: true,
            ipv6: true,
            outputs: OutputArgs {
                out_normal: Some("a=b".into()),
                out_xml: Some("-".into()),
                out_grepable: Some("g".into()),
                out_ndjson: Some("j".into()),
                out_all: Some("all".into()),
            },
            stats_every: Some("10s".into()),
            resume: None,
            resume_file: "R".into(),
            user: Some("nobody".into()),
            no_ping: true,
            ping_scan: true,
            ping_echo: true,
            ping_timestamp: true,
            ping_syn: Some("22,443".into()),
            ping_ack: Some("80".into()),
            ping_udp: Some("53".into()),
            ping_arp: true,
            disable_arp_ping: true,
        };
        let argv = full.to_argv();
        let back = Args::try_parse_from(std::iter::once("rawscan".to_string()).chain(argv.clone()))
            .unwrap();
        assert_eq!(back, full, "{argv:?}");
        let m = Args::command()
            .try_get_matches_from(std::iter::once("rawscan".to_string()).chain(argv))
            .unwrap();
        for a in Args::command().get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version" | "resume") {
                continue;
            }
            assert_eq!(
                m.value_source(id),
                Some(ValueSource::CommandLine),
                "{id} is not written by Args::to_argv (or missing from this test)"
            );
        }
        assert_eq!(flag_name("out_xml"), "--output-x");
        assert_eq!(flag_name("verbose"), "-v");
    }
}
