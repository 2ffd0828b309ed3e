//! Resume files: where an interrupted scan stopped, so `--resume FILE`
//! can finish it with no (host, port) scanned twice and none missed, and
//! without the file being able to widen the scan.
//!
//! Invariants:
//! - The file records the canonical command line (`Args::to_argv`, with
//!   the seed written out), the permutation position reached, the total,
//!   a hash binding it to the expanded hosts, ports and seed (`plan_hash`:
//!   a changed `-iL` file or re-resolved name is caught even when the
//!   count is the same), and every key that was sent but not decided.
//! - Loading trusts nothing: the file must be a regular file owned by the
//!   user and not writable by others (`safefile::read_owned`), at most
//!   `MAX_FILE_BYTES`; its command line is parsed by the same clap parser
//!   as a real one; every undecided key must lie inside the resumed plan
//!   (its hosts, ports and protocols) and there are at most `MAX_KEYS`.
//! - Beside `--resume`, only the flags in `RESUME_FLAGS` may be given
//!   (outputs and display); any other is a usage error, never ignored.
//! - The union of the interrupted run's results and the resumed run's
//!   results is exactly the full scan.

use std::collections::HashSet;
use std::hash::Hasher;
use std::net::IpAddr;

use anyhow::{Context, bail};
use clap::Parser;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::cli::{self, Args};
use crate::config::UsageError;
use crate::echo;
use crate::plan::Plan;
use crate::probe::{ProbeKey, Proto};
use crate::safefile;

pub const FORMAT: u32 = 2;
/// Largest resume file read.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Most undecided keys a resume file may carry (an interrupted scan has
/// at most about a million in flight).
pub const MAX_KEYS: usize = 1 << 22;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeState {
    pub format: u32,
    pub rawscan: String,
    /// The canonical command line (without argv[0]).
    pub args: Vec<String>,
    pub seed: u64,
    /// The shard this run scanned (`K/N`; `1/1` for a whole scan).
    pub shard: String,
    /// Keys in this run's slice.
    pub total: u64,
    pub next_index: u64,
    /// `plan_hash` of the interrupted scan's plan.
    pub plan_hash: String,
    /// Keys sent but undecided: "ip port proto".
    pub undecided: Vec<String>,
}

/// A hash of what a plan covers and in which order: every host range,
/// every (protocol, port), the seed and the shard. It binds a resume file to its
/// scan; it is not a MAC (the file's ownership protects it).
pub fn plan_hash(plan: &Plan) -> String {
    let mut h = SipHasher13::new_with_keys(0x7261_7773_6361_6e31, 0x706c_616e_6861_7368);
    // Fixed-width little-endian fields: the same on every machine.
    h.write(b"rawscan plan v2");
    h.write(&plan.seed().to_le_bytes());
    h.write(&plan.shard().k().to_le_bytes());
    h.write(&plan.shard().n().to_le_bytes());
    for (v6, start, end) in plan.hosts().ranges() {
        h.write(&[u8::from(v6)]);
        h.write(&start.to_le_bytes());
        h.write(&end.to_le_bytes());
    }
    h.write(&[0xff]);
    h.write(&(plan.ports().len() as u64).to_le_bytes());
    for (proto, port) in plan.ports() {
        h.write(&[match proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            // Discovery probes are never part of a port plan.
            Proto::Icmp => 1,
            Proto::TcpAck => 0x86,
            Proto::Arp => 0xfe,
        }]);
        h.write(&port.to_le_bytes());
    }
    format!("{:032x}", h.finish128().as_u128())
}

impl ResumeState {
    /// The state of an interrupted scan of `plan` run with `args`.
    pub fn new(args: Vec<String>, plan: &Plan, next_index: u64, undecided: &[ProbeKey]) -> Self {
        ResumeState {
            format: FORMAT,
            rawscan: env!("CARGO_PKG_VERSION").into(),
            args,
            seed: plan.seed(),
            shard: plan.shard().to_string(),
            total: plan.len(),
            next_index,
            plan_hash: plan_hash(plan),
            undecided: Self::encode_keys(undecided),
        }
    }

    pub fn encode_keys(keys: &[ProbeKey]) -> Vec<String> {
        keys.iter()
            .map(|k| format!("{} {} {}", k.ip, k.port, k.proto))
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Read and check a resume file (see the module invariants).
    pub fn load(path: &str) -> anyhow::Result<ResumeState> {
        let bytes = safefile::read_owned(path, MAX_FILE_BYTES, "resume file")?;
        let shown = echo::token(path);
        let s: ResumeState = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{shown} is not a rawscan resume file ({})",
                echo::bare(&e.to_string())
            )
        })?;
        if s.format != FORMAT {
            bail!(
                "resume file {shown} has format {}, this rawscan reads {FORMAT}",
                s.format
            );
        }
        if s.undecided.len() > MAX_KEYS {
            bail!(
                "resume file {shown} lists {} undecided keys, more than {MAX_KEYS}: refusing it",
                s.undecided.len()
            );
        }
        Ok(s)
    }

    /// The saved command line, parsed exactly as a real one (nmap
    /// spellings, then clap).
    pub fn saved_args(&self) -> anyhow::Result<Args> {
        let argv = std::iter::once("rawscan".to_string())
            .chain(self.args.iter().cloned())
            .map(std::ffi::OsString::from);
        let a = Args::try_parse_from(cli::nmap_compat(argv)).map_err(|e| {
            anyhow::anyhow!(
                "the resume file's command line is invalid: {}",
                echo::line(e.render().to_string().trim_start_matches("error: "))
            )
        })?;
        if a.resume.is_some() {
            bail!("the resume file's command line contains --resume");
        }
        if a.seed != Some(self.seed) {
            bail!("the resume file's seed does not match its command line");
        }
        Ok(a)
    }

    /// Check that the file belongs to `plan` and set where it resumes.
    pub fn apply(&self, plan: &mut Plan) -> anyhow::Result<()> {
        if self.shard != plan.shard().to_string() {
            bail!(
                "the resume file is for shard {}, the saved command line for shard {}: cannot resume",
                echo::token(&self.shard),
                plan.shard()
            );
        }
        if plan.len() != self.total || plan_hash(plan) != self.plan_hash || plan.seed() != self.seed
        {
            bail!(
                "the targets or ports no longer expand to those of the interrupted scan (a changed -iL file or a re-resolved name?): cannot resume"
            );
        }
        if self.next_index > self.total {
            bail!("the resume file's position is past the end of the scan");
        }
        let keys = self.keys()?;
        if keys.len() as u64 > self.total {
            bail!("the resume file lists more undecided keys than the scan has");
        }
        let ports: HashSet<(Proto, u16)> = plan.ports().iter().copied().collect();
        let mut seen = HashSet::with_capacity(keys.len());
        let mut carry = Vec::with_capacity(keys.len());
        for k in keys {
            if !plan.hosts().contains(k.ip) || !ports.contains(&(k.proto, k.port)) || !plan.owns(&k)
            {
                bail!(
                    "the resume file lists {} {}/{}, which is not part of the scan: refusing it",
                    k.ip,
                    k.port,
                    k.proto
                );
            }
            if seen.insert(k) {
                carry.push(k);
            }
        }
        plan.start = self.next_index;
        plan.carry = carry;
        Ok(())
    }

    pub fn keys(&self) -> anyhow::Result<Vec<ProbeKey>> {
        self.undecided
            .iter()
            .map(|s| {
                let bad = || format!("bad key {} in resume file", echo::token(s));
                let mut it = s.split(' ');
                let (Some(ip), Some(port), Some(proto), None) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    bail!("{}", bad());
                };
                let proto = match proto {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => bail!("{}", bad()),
                };
                Ok(ProbeKey {
                    ip: ip.parse::<IpAddr>().with_context(bad)?,
                    port: port.parse().with_context(bad)?,
                    proto,
                })
            })
            .collect()
    }
}

/// Flags (clap ids) a resumed run may set; they change only where results
/// go and how they are shown. Output flags replace all the saved outputs.
pub const RESUME_FLAGS: &[&str] = &[
    "resume",
    "out_normal",
    "out_xml",
    "out_grepable",
    "out_ndjson",
    "out_all",
    "resume_file",
    "verbose",
    "reason",
    "open",
    "stats_every",
    "no_dns",
];

const OUTPUT_IDS: &[&str] = &[
    "out_normal",
    "out_xml",
    "out_grepable",
    "out_ndjson",
    "out_all",
];

/// Refuse flags that cannot be given beside `--resume` (`given`: clap ids
/// set on the command line).
pub fn check_flags(given: &[String]) -> Result<(), UsageError> {
    match given.iter().find(|id| !RESUME_FLAGS.contains(&id.as_str())) {
        None => Ok(()),
        Some(id) => Err(UsageError(format!(
            "{} cannot be given with --resume: the resumed scan keeps the interrupted scan's targets and settings (only -oN/-oX/-oG/-oJ/-oA, --resume-file, -v, --reason, --open, --stats-every and -n may be given)",
            cli::flag_name(id)
        ))),
    }
}

/// The resumed run's arguments: the saved ones, with the flags given on
/// this command line applied. Without output flags of its own, the saved
/// output files get a `.resumed` suffix so the first run's files are kept.
pub fn merge(saved: Args, current: &Args, given: &[String]) -> Args {
    let has = |id: &str| given.iter().any(|g| g == id);
    let mut a = saved;
    if OUTPUT_IDS.iter().any(|id| has(id)) {
        a.outputs = current.outputs.clone();
    } else {
        for o in [
            &mut a.outputs.out_normal,
            &mut a.outputs.out_xml,
            &mut a.outputs.out_grepable,
            &mut a.outputs.out_ndjson,
            &mut a.outputs.out_all,
        ] {
            if let Some(p) = o.as_mut().filter(|p| *p != "-") {
                p.push_str(".resumed");
            }
        }
    }
    if has("resume_file") {
        a.resume_file = current.resume_file.clone();
    }
    if has("verbose") {
        a.verbose = current.verbose;
    }
    if has("stats_every") {
        a.stats_every = current.stats_every.clone();
    }
    a.reason |= current.reason;
    a.open |= current.open;
    a.no_dns |= current.no_dns;
    a.resume = None;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::parse_hosts;

    fn plan(hosts: &[&str], ports: &[(Proto, u16)], seed: u64) -> Plan {
        let h: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
        let hosts = parse_hosts(&h, &[], &|_| Err("no dns".into())).unwrap();
        Plan::new(hosts, ports.to_vec(), seed, crate::plan::Shard::WHOLE).unwrap()
    }

    fn key(ip: &str, port: u16, proto: Proto) -> ProbeKey {
        ProbeKey {
            ip: ip.parse().unwrap(),
            port,
            proto,
        }
    }

    const PORTS: &[(Proto, u16)] = &[(Proto::Tcp, 22), (Proto::Tcp, 80), (Proto::Udp, 53)];

    #[test]
    fn round_trips_and_applies() {
        let p = plan(&["198.18.0.0/30"], PORTS, 42);
        let keys = vec![
            key("198.18.0.2", 22, Proto::Tcp),
            key("198.18.0.3", 53, Proto::Udp),
        ];
        let st = ResumeState::new(vec!["--seed=42".into()], &p, 5, &keys);
        let back: ResumeState = serde_json::from_slice(&st.to_bytes()).unwrap();
        assert_eq!(back, st);
        let mut q = plan(&["198.18.0.0/30"], PORTS, 42);
        back.apply(&mut q).unwrap();
        assert_eq!((q.start, q.carry), (5, keys));
    }

    /// The hash catches a changed target list of the same size, other
    /// ports and another seed.
    #[test]
    fn bound_to_hosts_ports_and_seed() {
        let p = plan(&["198.18.0.0/30"], PORTS, 42);
        let st = ResumeState::new(vec![], &p, 0, &[]);
        for mut other in [
            plan(&["198.18.0.4/30"], PORTS, 42),
            plan(
                &["198.18.0.0/30"],
                &[(Proto::Tcp, 22), (Proto::Tcp, 81), (Proto::Udp, 53)],
                42,
            ),
            plan(&["198.18.0.0/30"], PORTS, 43),
        ] {
            assert_eq!(other.total(), p.total());
            let e = st.apply(&mut other).unwrap_err().to_string();
            assert!(e.contains("cannot resume"), "{e}");
        }
    }

    /// Regression: undecided keys were trusted and probed without checks.
    #[test]
    fn keys_outside_the_plan_are_refused() {
        let p = plan(&["198.18.0.0/30"], PORTS, 1);
        for bad in [
            key("198.18.0.9", 22, Proto::Tcp),
            key("198.18.0.2", 443, Proto::Tcp),
            key("198.18.0.2", 22, Proto::Udp),
            key("2001:db8::2", 22, Proto::Tcp),
        ] {
            let st = ResumeState::new(vec![], &p, 0, &[bad]);
            let e = st.apply(&mut p.clone()).unwrap_err().to_string();
            assert!(e.contains("not part of the scan"), "{bad:?}: {e}");
        }
        let mut st = ResumeState::new(vec![], &p, 0, &[]);
        st.next_index = st.total + 1;
        assert!(st.apply(&mut p.clone()).is_err());
        for s in [
            "198.18.0.2 99999 tcp",
            "198.18.0.2 22 sctp",
            "nonsense",
            "1 2 3 4",
        ] {
            st.next_index = 0;
            st.undecided = vec![s.into()];
            assert!(st.apply(&mut p.clone()).is_err(), "{s}");
        }
        // Duplicates are carried once.
        let k = key("198.18.0.1", 80, Proto::Tcp);
        let st = ResumeState::new(vec![], &p, 0, &[k, k, k]);
        let mut q = p.clone();
        st.apply(&mut q).unwrap();
        assert_eq!(q.carry, vec![k]);
    }

    #[test]
    fn only_output_and_display_flags_beside_resume() {
        assert!(check_flags(&["resume".into(), "out_xml".into(), "verbose".into()]).is_ok());
        let e = check_flags(&["resume".into(), "max_rate".into()])
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("--max-rate cannot be given with --resume"),
            "{e}"
        );
        let e = check_flags(&["resume".into(), "targets".into()])
            .unwrap_err()
            .0;
        assert!(e.starts_with("TARGET"), "{e}");
    }

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(cli::nmap_compat(
            std::iter::once("rawscan")
                .chain(v.iter().copied())
                .map(std::ffi::OsString::from),
        ))
        .unwrap()
    }

    /// A hand-written resume command line in nmap spellings parses as a
    /// real one would.
    #[test]
    fn saved_command_lines_parse_like_real_ones() {
        let p = plan(&["198.18.0.2"], PORTS, 9);
        let mut st = ResumeState::new(vec![], &p, 0, &[]);
        st.args = [
            "-sT",
            "-oXsaved.xml",
            "--output-j=s.ndjson",
            "--seed",
            "9",
            "198.18.0.2",
        ]
        .map(String::from)
        .to_vec();
        let a = st.saved_args().unwrap();
        assert!(a.connect);
        assert_eq!(a.outputs.out_xml.as_deref(), Some("saved.xml"));
        assert_eq!(a.outputs.out_ndjson.as_deref(), Some("s.ndjson"));
        st.args = vec!["--seed=9".into(), "--resume=x".into(), "198.18.0.2".into()];
        assert!(st.saved_args().is_err());
        st.args = vec!["--seed=10".into(), "198.18.0.2".into()];
        assert!(st.saved_args().is_err());
    }

    /// Regression: `--output-x=PATH` in a resume file was not recognised
    /// as an output flag (token-exact matching).
    #[test]
    fn outputs_are_renamed_or_replaced_whatever_their_spelling() {
        for spelling in [
            &["-oX", "scan.xml"][..],
            &["-oXscan.xml"],
            &["--output-x=scan.xml"],
        ] {
            let mut v = vec!["-sS", "-p", "1-10"];
            v.extend_from_slice(spelling);
            v.extend(["-oJ", "-", "198.18.0.2"]);
            let saved = args(&v);
            let m = merge(saved.clone(), &args(&["--resume", "R"]), &["resume".into()]);
            assert_eq!(
                m.outputs.out_xml.as_deref(),
                Some("scan.xml.resumed"),
                "{spelling:?}"
            );
            assert_eq!(m.outputs.out_ndjson.as_deref(), Some("-"));
            let cur = args(&["--resume", "R", "-oA", "part2"]);
            let m = merge(saved, &cur, &["resume".into(), "out_all".into()]);
            assert_eq!(
                (m.outputs.out_xml, m.outputs.out_ndjson),
                (None, None),
                "{spelling:?}"
            );
            assert_eq!(m.outputs.out_all.as_deref(), Some("part2"));
            assert_eq!(m.targets, vec!["198.18.0.2"]);
        }
    }
}
