//! Resume files: where an interrupted scan stopped, so `--resume FILE`
//! can finish it with no (host, port) scanned twice and none missed.
//!
//! Invariants: the file records the original command line, the seed (so
//! the permutation is the same), the permutation position reached, the
//! total (checked on resume, since targets are re-resolved) and every key
//! that was sent but not decided. The union of the interrupted run's
//! results and the resumed run's results is exactly the full scan.

use std::net::IpAddr;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::plan::Shard;
use crate::probe::{ProbeKey, Proto};

pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    pub format: u32,
    pub rawscan: String,
    /// The original arguments (without argv[0]).
    pub args: Vec<String>,
    pub seed: u64,
    /// The run's shard, `K/N` (absent in files of older versions: 1/1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Keys in the run's slice (the whole scan when not sharded).
    pub total: u64,
    /// Position reached in the run's slice.
    pub next_index: u64,
    /// Keys sent but undecided: "ip port proto".
    pub undecided: Vec<String>,
}

impl ResumeState {
    /// The shard this file belongs to.
    pub fn shard(&self) -> anyhow::Result<Shard> {
        match &self.shard {
            None => Ok(Shard::WHOLE),
            Some(s) => Shard::parse(s).map_err(|e| anyhow::anyhow!("resume file: {e}")),
        }
    }

    pub fn keys(&self) -> anyhow::Result<Vec<ProbeKey>> {
        self.undecided
            .iter()
            .map(|s| {
                let mut it = s.split(' ');
                let (Some(ip), Some(port), Some(proto), None) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    bail!("bad key '{s}' in resume file");
                };
                let proto = match proto {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => bail!("bad protocol in '{s}'"),
                };
                Ok(ProbeKey {
                    ip: ip
                        .parse::<IpAddr>()
                        .with_context(|| format!("bad address in '{s}'"))?,
                    port: port.parse().with_context(|| format!("bad port in '{s}'"))?,
                    proto,
                })
            })
            .collect()
    }

    pub fn encode_keys(keys: &[ProbeKey]) -> Vec<String> {
        keys.iter()
            .map(|k| format!("{} {} {}", k.ip, k.port, k.proto))
            .collect()
    }

    pub fn save(&self, path: &str) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing resume file '{path}'"))
    }

    pub fn load(path: &str) -> anyhow::Result<ResumeState> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading resume file '{path}'"))?;
        let s: ResumeState = serde_json::from_str(&text)
            .with_context(|| format!("'{path}' is not a rawscan resume file"))?;
        if s.format != FORMAT {
            bail!(
                "resume file '{path}' has format {}, this rawscan reads {FORMAT}",
                s.format
            );
        }
        Ok(s)
    }
}

/// Output flags are the ones a resumed run may change; all others come
/// from the resume file.
pub fn is_output_flag(a: &str) -> bool {
    matches!(
        a,
        "-oN"
            | "-oX"
            | "-oG"
            | "-oJ"
            | "-oA"
            | "--output-n"
            | "--output-x"
            | "--output-g"
            | "--output-j"
            | "--output-a"
    )
}

/// The saved arguments with their output files renamed `*.resumed`, for a
/// resumed run given no output flags of its own.
pub fn args_with_renamed_outputs(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rename_next = false;
    for a in args {
        if rename_next && a != "-" {
            out.push(format!("{a}.resumed"));
        } else {
            out.push(a.clone());
        }
        rename_next = is_output_flag(a);
    }
    out
}

/// The saved arguments without output flags, plus `new_outputs`.
pub fn args_with_outputs(args: &[String], new_outputs: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip_next = false;
    for a in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if is_output_flag(a) {
            skip_next = true;
            continue;
        }
        out.push(a.clone());
    }
    out.extend(new_outputs.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn round_trips_through_a_file() {
        let keys = vec![
            ProbeKey {
                ip: "198.18.0.2".parse().unwrap(),
                port: 22,
                proto: Proto::Tcp,
            },
            ProbeKey {
                ip: "2001:db8::2".parse().unwrap(),
                port: 53,
                proto: Proto::Udp,
            },
        ];
        let st = ResumeState {
            format: FORMAT,
            rawscan: "0.1.0".into(),
            args: s(&["-p-", "198.18.0.2"]),
            seed: 42,
            shard: Some("2/3".into()),
            total: 65535,
            next_index: 1234,
            undecided: ResumeState::encode_keys(&keys),
        };
        let path = std::env::temp_dir().join(format!("rawscan-resume-test-{}", std::process::id()));
        let path = path.to_str().unwrap();
        st.save(path).unwrap();
        let back = ResumeState::load(path).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(back, st);
        assert_eq!(back.keys().unwrap(), keys);
        assert_eq!(back.shard().unwrap(), Shard::new(2, 3).unwrap());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let mut st = ResumeState {
            format: FORMAT,
            rawscan: "0.1.0".into(),
            args: vec![],
            seed: 1,
            shard: None,
            total: 1,
            next_index: 0,
            undecided: s(&["198.18.0.2 99999 tcp"]),
        };
        assert!(st.keys().is_err());
        st.undecided = s(&["198.18.0.2 22 sctp"]);
        assert!(st.keys().is_err());
        st.undecided = s(&["nonsense"]);
        assert!(st.keys().is_err());
        assert_eq!(st.shard().unwrap(), Shard::WHOLE);
        st.shard = Some("5/4".into());
        assert!(st.shard().is_err());
    }

    #[test]
    fn output_flags_are_renamed_or_replaced() {
        let a = s(&[
            "-sS",
            "-oX",
            "scan.xml",
            "-oJ",
            "-",
            "-p",
            "1-10",
            "198.18.0.2",
        ]);
        assert_eq!(
            args_with_renamed_outputs(&a),
            s(&[
                "-sS",
                "-oX",
                "scan.xml.resumed",
                "-oJ",
                "-",
                "-p",
                "1-10",
                "198.18.0.2"
            ])
        );
        assert_eq!(
            args_with_outputs(&a, &s(&["-oA", "part2"])),
            s(&["-sS", "-p", "1-10", "198.18.0.2", "-oA", "part2"])
        );
    }
}
