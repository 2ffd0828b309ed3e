//! `rawscan merge`: rebuild one report from the NDJSON files (`-oJ`) of
//! the shards of a scan (`--shard K/N`), or of an interrupted run and its
//! `--resume`, as if one scan had produced it.
//!
//! What each file gives (see `ndjson`): its `scan` line (ports, scan type,
//! seed, shard, pairs in its slice), every decided `port`, its `host`
//! lines (which hosts answered, their smallest round trip) and its
//! `summary` (end time, counters). The merge feeds the port lines into one
//! compact `Report` (the collector's own structure, so memory is that of
//! one scan of the same size), takes a host as up when any file says so,
//! with the smallest latency of all (the engine keeps the smallest
//! first-attempt round trip, so this is what one scan would have kept),
//! starts at the earliest start and ends at the latest end.
//!
//! Invariants: files that do not belong to the same scan (other ports,
//! scan type, targets count, seed or shard count) are refused, as is a
//! (host, port) decided in two files, a port outside the scan, a file
//! without its summary (a killed run) or whose port lines do not add up to
//! its summary (a truncated file), and a set of shards with one missing.
//! Several files of one shard are fine (an interrupted run and its resume).
//! The merged scan is "interrupted" exactly when fewer pairs were decided
//! than the scan has. Errors name the file and line; nothing panics.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::time::{Duration, SystemTime};

use super::ndjson::{Line, ScanIn, SummaryIn};
use super::report::AddError;
use super::{Report, ScanInfo, View, time};
use crate::engine::{HostInfo, Summary};
use crate::plan::Shard;
use crate::probe::Proto;
use crate::targets;

/// One scan rebuilt from its parts.
#[derive(Debug)]
pub struct Merged {
    pub info: ScanInfo,
    pub report: Report,
    pub summary: Summary,
    /// The view the parts were run with.
    pub view: View,
    /// Things worth saying on stderr (an incomplete merge).
    pub warnings: Vec<String>,
}

/// The identity a part must share with the others.
fn identity(s: &ScanIn) -> impl PartialEq + '_ {
    (
        &s.tcp_type,
        s.udp,
        &s.tcp_ports,
        &s.udp_ports,
        s.hosts_total,
        s.seed,
    )
}

fn port_list(spec: &str, proto: Proto) -> Result<Vec<u16>, String> {
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    let l = targets::parse_ports(spec, &[proto]).map_err(|e| e.0)?;
    Ok(l.get(proto).to_vec())
}

fn tcp_type(s: &Option<String>) -> Result<Option<&'static str>, String> {
    match s.as_deref() {
        None => Ok(None),
        Some("syn") => Ok(Some("syn")),
        Some("connect") => Ok(Some("connect")),
        Some(other) => Err(format!("unknown TCP scan type '{other}'")),
    }
}

/// The arguments of the equivalent single scan: a part's, without its
/// `--shard` and output flags (which named the part's own files).
pub fn unsharded_args(argv: &[String]) -> Vec<String> {
    let takes_value = |a: &str| {
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
                | "--shard"
                | "--resume-file"
        )
    };
    let mut out = Vec::new();
    let mut skip = false;
    for a in argv {
        if skip {
            skip = false;
            continue;
        }
        if takes_value(a) {
            skip = true;
            continue;
        }
        if a.starts_with("--shard=")
            || a.starts_with("--resume-file=")
            || a.starts_with("--output-")
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

struct Part {
    name: String,
    scan: ScanIn,
    shard: Shard,
    summary: Option<SummaryIn>,
    ports: u64,
}

/// Merge the parts, given as (name, reader) in any order.
pub fn merge<R: BufRead>(parts: Vec<(String, R)>) -> Result<Merged, String> {
    if parts.is_empty() {
        return Err("no files to merge".into());
    }
    let mut report: Option<Report> = None;
    let mut up: HashMap<std::net::IpAddr, HostInfo> = HashMap::new();
    let mut done: Vec<Part> = Vec::new();
    for (name, mut r) in parts {
        let mut part: Option<Part> = None;
        let mut buf = String::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            let read = r
                .read_line(&mut buf)
                .map_err(|e| format!("{name}: cannot read: {e}"))?;
            if read == 0 {
                break;
            }
            n += 1;
            let at = |why: String| format!("{name}:{n}: {why}");
            let Some(line) = crate::output::ndjson::parse_line(&buf).map_err(at)? else {
                continue;
            };
            if part.as_ref().is_some_and(|p| p.summary.is_some()) {
                return Err(at("a line after the summary line".into()));
            }
            match line {
                Line::Scan(scan) => {
                    if part.is_some() {
                        return Err(at("a second scan line".into()));
                    }
                    let shard = Shard::parse(&scan.shard).map_err(at)?;
                    if let Some(first) = done.first() {
                        if identity(&first.scan) != identity(&scan) {
                            return Err(at(format!(
                                "not a part of the same scan as {}: the ports, scan type, number of targets or --seed differ",
                                first.name
                            )));
                        }
                        if first.shard.n() != shard.n() {
                            return Err(at(format!(
                                "shard {shard} does not split the scan like {} (shard {})",
                                first.name, first.shard
                            )));
                        }
                    }
                    if report.is_none() {
                        let tcp = port_list(&scan.tcp_ports, Proto::Tcp).map_err(at)?;
                        let udp = port_list(&scan.udp_ports, Proto::Udp).map_err(at)?;
                        report = Some(Report::new(
                            tcp.iter()
                                .map(|&p| (Proto::Tcp, p))
                                .chain(udp.iter().map(|&p| (Proto::Udp, p))),
                        ));
                    }
                    part = Some(Part {
                        name: name.clone(),
                        scan: *scan,
                        shard,
                        summary: None,
                        ports: 0,
                    });
                }
                other => {
                    let (Some(p), Some(rep)) = (part.as_mut(), report.as_mut()) else {
                        return Err(at(
                            "no scan line first: not written by this rawscan's -oJ".into()
                        ));
                    };
                    match other {
                        Line::Scan(_) => {}
                        Line::Port(res) => {
                            match rep.add(&res) {
                                Ok(()) => {}
                                Err(AddError::Duplicate) => {
                                    return Err(at(format!(
                                        "{} {}/{} was already decided (by this or an earlier file): these files overlap",
                                        res.key.ip, res.key.port, res.key.proto
                                    )));
                                }
                                Err(AddError::NotInScan) => {
                                    return Err(at(format!(
                                        "{}/{} is not one of the scan's ports",
                                        res.key.port, res.key.proto
                                    )));
                                }
                            }
                            p.ports += 1;
                        }
                        Line::Host(h) => {
                            if h.status == "up" {
                                let latency =
                                    h.latency.and_then(|l| Duration::try_from_secs_f64(l).ok());
                                let e = up.entry(h.ip).or_default();
                                e.latency = match (e.latency, latency) {
                                    (Some(a), Some(b)) => Some(a.min(b)),
                                    (a, b) => a.or(b),
                                };
                            }
                        }
                        Line::Summary(s) => p.summary = Some(s),
                    }
                }
            }
        }
        let Some(p) = part else {
            return Err(format!("{name}: empty: no scan line"));
        };
        let Some(s) = &p.summary else {
            return Err(format!(
                "{name}: no summary line: the scan was killed before it finished writing"
            ));
        };
        if s.ports_decided != p.ports {
            return Err(format!(
                "{name}: {} port lines, but its summary says {} were decided: truncated?",
                p.ports, s.ports_decided
            ));
        }
        done.push(p);
    }

    // Every shard is present, each with the same slice size in all its files.
    let n = done[0].shard.n();
    let mut slices: BTreeMap<u64, u64> = BTreeMap::new();
    for p in &done {
        if let Some(&pairs) = slices.get(&p.shard.k())
            && pairs != p.scan.pairs
        {
            return Err(format!(
                "{}: shard {} has {} pairs here and {pairs} in another file",
                p.name, p.shard, p.scan.pairs
            ));
        }
        slices.insert(p.shard.k(), p.scan.pairs);
    }
    if let Some(k) = (1..=n).find(|k| !slices.contains_key(k)) {
        return Err(format!(
            "shard {k}/{n} is missing: merge needs the files of all {n} shards"
        ));
    }
    let total: u64 = slices.values().sum();
    let report = report.unwrap_or_default();
    let decided = report.decided();

    done.sort_by_key(|p| p.shard.k());
    let first = &done[0];
    let start = done
        .iter()
        .map(|p| time::from_epoch_f64(p.scan.start))
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let end = done
        .iter()
        .filter_map(|p| p.summary.as_ref())
        .map(|s| time::from_epoch_f64(s.end))
        .max()
        .unwrap_or(start);
    let sum = |f: fn(&SummaryIn) -> u64| -> u64 {
        done.iter().filter_map(|p| p.summary.as_ref()).map(f).sum()
    };
    let mut warnings = Vec::new();
    if decided < total {
        warnings.push(format!(
            "{decided} of the scan's {total} (host, port) pairs were decided (a part was interrupted): the report says interrupted"
        ));
    }
    let argv = unsharded_args(&first.scan.argv);
    let info = ScanInfo {
        start,
        args: if first.scan.argv.is_empty() {
            first.scan.args.clone()
        } else {
            std::iter::once("rawscan".to_string())
                .chain(argv.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ")
        },
        argv,
        version: first.scan.version.clone(),
        tcp_type: tcp_type(&first.scan.tcp_type).map_err(|e| format!("{}: {e}", first.name))?,
        udp: first.scan.udp,
        tcp_ports: report.space().ports(Proto::Tcp).collect(),
        udp_ports: report.space().ports(Proto::Udp).collect(),
        hosts_total: first.scan.hosts_total,
        seed: first.scan.seed,
        shard: Shard::WHOLE,
        pairs: total,
    };
    let summary = Summary {
        elapsed: end.duration_since(start).unwrap_or_default(),
        total,
        decided,
        up,
        sent: sum(|s| s.sent),
        received: sum(|s| s.received),
        malformed: sum(|s| s.malformed),
        bad_cookie: sum(|s| s.bad_cookie),
        send_errors: sum(|s| s.send_errors),
        dropped: sum(|s| s.dropped),
        interrupted: decided < total,
        next_index: 0,
        undecided: Vec::new(),
        ..Summary::default()
    };
    let view = View {
        reason: done.iter().any(|p| p.scan.reason),
        open_only: done.iter().any(|p| p.scan.open),
        verbose: done.iter().map(|p| p.scan.verbose).max().unwrap_or(0),
    };
    Ok(Merged {
        info,
        report,
        summary,
        view,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostInfo;
    use crate::output::ndjson::Ndjson;
    use crate::output::testutil::res;
    use crate::probe::{PortResult, PortState, Reason};
    use std::time::UNIX_EPOCH;

    const PORTS: [u16; 3] = [22, 80, 443];

    fn info(shard: Shard, pairs: u64, start_ms: u64) -> ScanInfo {
        ScanInfo {
            start: UNIX_EPOCH + Duration::from_millis(1_795_925_100_000 + start_ms),
            args: format!(
                "rawscan --shard {shard} --seed 9 -p 22,80,443 -oJ s.ndjson 198.18.0.2-3"
            ),
            argv: [
                "--shard",
                "X",
                "--seed",
                "9",
                "-p",
                "22,80,443",
                "-oJ",
                "s.ndjson",
                "198.18.0.2-3",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            version: "0.1.0".into(),
            tcp_type: Some("syn"),
            udp: false,
            tcp_ports: PORTS.to_vec(),
            udp_ports: Vec::new(),
            hosts_total: 2,
            seed: 9,
            shard,
            pairs,
        }
    }

    /// The NDJSON file of one part that decided `results`.
    fn part(
        shard: Shard,
        pairs: u64,
        results: &[PortResult],
        up: &[(&str, u64)],
        start_ms: u64,
        elapsed_ms: u64,
    ) -> Vec<u8> {
        let info = info(shard, pairs, start_ms);
        let mut report = Report::new(info.ports());
        let mut nd = Ndjson::new(Vec::new());
        nd.start(&info, &View::default()).unwrap();
        for r in results {
            nd.result(r).unwrap();
            report.add(r).unwrap();
        }
        let mut summary = Summary {
            elapsed: Duration::from_millis(elapsed_ms),
            total: pairs,
            decided: results.len() as u64,
            sent: results.len() as u64 + 1,
            ..Summary::default()
        };
        for (ip, us) in up {
            summary.up.insert(
                ip.parse().unwrap(),
                HostInfo {
                    latency: Some(Duration::from_micros(*us)),
                    ..HostInfo::default()
                },
            );
        }
        nd.finish(&info, &report, &summary).unwrap();
        nd.into_inner()
    }

    fn r(ip: &str, port: u16, open: bool) -> PortResult {
        if open {
            res(
                ip,
                port,
                Proto::Tcp,
                PortState::Open,
                Reason::SynAck,
                Some(64),
            )
        } else {
            res(
                ip,
                port,
                Proto::Tcp,
                PortState::Closed,
                Reason::Reset,
                Some(64),
            )
        }
    }

    fn run(parts: Vec<(&str, Vec<u8>)>) -> Result<Merged, String> {
        merge(
            parts
                .into_iter()
                .map(|(n, b)| (n.to_string(), std::io::Cursor::new(b)))
                .collect(),
        )
    }

    #[test]
    fn shards_merge_into_the_whole_scan() {
        let s1 = Shard::new(1, 2).unwrap();
        let s2 = Shard::new(2, 2).unwrap();
        let a = part(
            s1,
            3,
            &[
                r("198.18.0.2", 22, true),
                r("198.18.0.3", 80, false),
                r("198.18.0.2", 443, false),
            ],
            &[("198.18.0.2", 90), ("198.18.0.3", 70)],
            500,
            2000,
        );
        let b = part(
            s2,
            3,
            &[
                r("198.18.0.3", 22, true),
                r("198.18.0.2", 80, false),
                r("198.18.0.3", 443, false),
            ],
            &[("198.18.0.2", 40), ("198.18.0.3", 80)],
            0,
            1000,
        );
        let m = run(vec![("b", b), ("a", a)]).unwrap();
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.report.decided(), 6);
        assert_eq!(m.summary.total, 6);
        assert!(!m.summary.interrupted);
        assert_eq!(m.summary.sent, 8);
        // Earliest start, latest end.
        assert_eq!(
            m.info.start,
            UNIX_EPOCH + Duration::from_millis(1_795_925_100_000)
        );
        assert_eq!(m.summary.elapsed, Duration::from_millis(2500));
        // Smallest latency of all parts.
        let l = |ip: &str| m.summary.up[&ip.parse().unwrap()].latency.unwrap();
        assert_eq!(l("198.18.0.2"), Duration::from_micros(40));
        assert_eq!(l("198.18.0.3"), Duration::from_micros(70));
        assert_eq!(m.info.shard, Shard::WHOLE);
        assert_eq!(m.info.args, "rawscan --seed 9 -p 22,80,443 198.18.0.2-3");
        let h = m.report.host(&"198.18.0.3".parse().unwrap()).unwrap();
        let ports: Vec<(u16, PortState)> = h.results().map(|r| (r.key.port, r.state)).collect();
        assert_eq!(
            ports,
            [
                (22, PortState::Open),
                (80, PortState::Closed),
                (443, PortState::Closed)
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_one_scan() {
        let s1 = Shard::new(1, 2).unwrap();
        let s2 = Shard::new(2, 2).unwrap();
        let a = || part(s1, 3, &[r("198.18.0.2", 22, true)], &[], 0, 10);
        let e = run(vec![("a", a())]).unwrap_err();
        assert!(e.contains("shard 2/2 is missing"), "{e}");
        let e = run(vec![("a", a()), ("a2", a())]).unwrap_err();
        assert!(e.contains("a2:2:") && e.contains("already decided"), "{e}");
        // Truncated: the summary is gone.
        let mut t = a();
        let cut = t[..t.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
        t.truncate(cut);
        let e = run(vec![("t", t)]).unwrap_err();
        assert!(e.contains("no summary line"), "{e}");
        // Another seed.
        let mut other = String::from_utf8(part(s2, 3, &[], &[], 0, 10)).unwrap();
        other = other.replace("\"seed\":9", "\"seed\":8");
        let e = run(vec![("a", a()), ("o", other.into_bytes())]).unwrap_err();
        assert!(e.contains("o:1:") && e.contains("--seed"), "{e}");
        // A file from before the scan line existed.
        let old = b"{\"type\":\"port\",\"ip\":\"198.18.0.2\",\"port\":22,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"ttl\":64,\"service\":\"ssh\"}\n".to_vec();
        let e = run(vec![("old", old)]).unwrap_err();
        assert!(e.contains("old:1: no scan line first"), "{e}");
        // A port line count that does not match the summary.
        let s = String::from_utf8(a()).unwrap();
        let s = s.replace("\"ports_decided\":1", "\"ports_decided\":2");
        let e = run(vec![
            ("s", s.into_bytes()),
            ("b", part(s2, 3, &[], &[], 0, 10)),
        ])
        .unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn an_interrupted_part_and_its_resume_merge() {
        // One unsharded scan of 6 pairs, interrupted after 2, resumed for 3:
        // one pair was never decided, so the merge says interrupted.
        let w = Shard::WHOLE;
        let a = part(
            w,
            6,
            &[r("198.18.0.2", 22, true), r("198.18.0.3", 22, false)],
            &[],
            0,
            10,
        );
        let b = part(
            w,
            6,
            &[
                r("198.18.0.2", 80, false),
                r("198.18.0.3", 80, false),
                r("198.18.0.2", 443, true),
            ],
            &[("198.18.0.2", 5)],
            100,
            10,
        );
        let m = run(vec![("a", a), ("b", b)]).unwrap();
        assert_eq!(m.report.decided(), 5);
        assert!(m.summary.interrupted);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    }

    #[test]
    fn unsharded_args_drop_shard_and_outputs() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            unsharded_args(&v(&[
                "--shard",
                "1/4",
                "-oJ",
                "a",
                "--shard=2/4",
                "-p",
                "80",
                "x"
            ])),
            v(&["-p", "80", "x"])
        );
    }
}
