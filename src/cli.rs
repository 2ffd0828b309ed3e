//! Command-line flags (clap) and nmap-style flag spelling.
//!
//! Invariants: this module only describes flags and rewrites nmap's
//! multi-letter short options (`-sS`, `-iL`, `-oX`, `-p-`, `-Pn`, `-T4`)
//! into long ones clap understands; all validation is in `config`.

use std::ffi::OsString;

use clap::{ArgAction, Parser};

#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "rawscan",
    version,
    about = "Fast, trustworthy port scanner: SYN and UDP scans over raw sockets, TCP connect fallback",
    after_help = "nmap spellings are accepted: -sS -sT -sU -sV (and -sSV, -sSUV…) -iL FILE -oN/-oX/-oG/-oJ/-oA FILE -p- -Pn -T0..-T5.\n\
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

    /// Probes per second [default: by timing template; -T3: 10000]
    #[arg(long, value_name = "PPS")]
    pub rate: Option<u64>,

    /// Timing template 0-5, as nmap's -T (sets rate, timeouts, retries)
    #[arg(long = "timing", value_name = "0-5")]
    pub timing: Option<u8>,

    /// Retransmissions before a probe counts as unanswered
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

    /// Treat all hosts as up (rawscan does no host discovery; accepted for nmap habits)
    #[arg(long = "no-ping", hide = true)]
    pub no_ping: bool,
}

/// Rewrite nmap's spellings into ones clap parses.
pub fn nmap_compat(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    for a in args {
        let Some(s) = a.to_str() else {
            out.push(a);
            continue;
        };
        let mapped: Option<Vec<String>> = match s {
            "-p-" => Some(vec!["-p".into(), "1-65535".into()]),
            "-iL" => Some(vec!["--input-list".into()]),
            "-Pn" => Some(vec!["--no-ping".into()]),
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
            _ if s.len() == 3 && s.starts_with("-o") && "NXGJA".contains(&s[2..]) => {
                Some(vec![format!("--output-{}", &s[2..].to_lowercase())])
            }
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
    }
}
