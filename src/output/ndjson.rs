//! Streaming NDJSON output (`-oJ`): one JSON object per line, each result
//! written as it is decided, so a consumer can follow a long scan live,
//! and, closing the file, what `rawscan merge` needs to rebuild one report
//! from the files of several shards (or of an interrupted and a resumed
//! run).
//!
//! The lines, each a complete JSON object with a `"type"`:
//! - `"scan"`, first: what was scanned and how (version, args, start time,
//!   scan type, TCP and UDP port lists in nmap's range form, hosts total,
//!   seed, shard `"K/N"`, the number of (host, port) pairs in this run's
//!   slice, the view flags);
//! - `"port"`, one per decided result (ip, port, proto, state, reason, ttl,
//!   service): unchanged from earlier versions, so `select(.type=="port")`
//!   or `select(.state=="open")` filters keep working;
//! - `"host"`, one per host with a result or a reply, in address order,
//!   after the scan: status (`"up"` when it sent any reply), latency in
//!   seconds (or null), the number of its ports decided in this run and
//!   the counts per (state, proto, reason): the per-host totals of the
//!   "Not shown" line;
//! - `"service"`, one per `-sV` result (after the port scan, one per
//!   probed port);
//! - `"summary"`, last: elapsed, end time, counters, interrupted.
//!
//! Invariants: this module only formats and parses; it never decides a
//! state. Absent values (a TTL, a service name not in the table, a latency)
//! are `null`, never invented. Lines are flushed at every progress tick
//! (4 per second) and at the end, not after each result: a flush is a
//! write(2), and a sweep decides 100,000 results per second. Reading
//! (`parse_line`) never panics on any input; a bad line is an error that
//! names what is wrong.
//!
//! serde + serde_json do the encoding: JSON string escaping and number
//! formatting are easy to get subtly wrong by hand, and serde_json is the
//! ecosystem's standard, well-maintained encoder.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Report, ScanInfo, View, port_ranges, time};
use crate::engine::Summary;
use crate::probe::{PortResult, PortState, ProbeKey, Proto, Reason};
use crate::services;

#[derive(Serialize)]
struct ScanLine<'a> {
    r#type: &'static str,
    scanner: &'static str,
    version: &'a str,
    args: &'a str,
    argv: &'a [String],
    /// Start time, seconds since the Unix epoch (with microseconds).
    start: f64,
    tcp_type: Option<&'a str>,
    udp: bool,
    tcp_ports: String,
    udp_ports: String,
    hosts_total: u128,
    seed: u64,
    shard: String,
    pairs: u64,
    verbose: u8,
    open: bool,
    reason: bool,
}

#[derive(Serialize)]
struct PortLine<'a> {
    r#type: &'static str,
    ip: String,
    port: u16,
    proto: &'static str,
    state: &'static str,
    reason: &'static str,
    ttl: Option<u8>,
    service: Option<&'a str>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GroupCount {
    pub state: String,
    pub proto: String,
    pub reason: String,
    pub count: u64,
}

#[derive(Serialize)]
struct HostLine {
    r#type: &'static str,
    ip: String,
    status: &'static str,
    /// What proved the host up (host discovery), or `no-response`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_ttl: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    latency: Option<f64>,
    ports: u64,
    groups: Vec<GroupCount>,
}

#[derive(Serialize)]
struct ServiceLine<'a> {
    r#type: &'static str,
    ip: String,
    port: u16,
    proto: &'static str,
    service: &'a str,
    product: Option<&'a str>,
    version: Option<&'a str>,
    extrainfo: Option<&'a str>,
    hostname: Option<&'a str>,
    ostype: Option<&'a str>,
    cpe: &'a [String],
    method: &'static str,
    conf: u8,
    /// "ssl" when the service was found inside TLS.
    tunnel: Option<&'static str>,
    tls: Option<&'a crate::version::TlsInfo>,
    /// Extra facts by name (`http-title`, `snmp-sysdescr`).
    details: std::collections::BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    r#type: &'static str,
    scanner: &'static str,
    version: &'a str,
    args: &'a str,
    /// Start time, seconds since the Unix epoch.
    start: u64,
    /// End time, seconds since the Unix epoch (with microseconds).
    end: f64,
    elapsed: f64,
    interrupted: bool,
    shard: String,
    hosts_total: u128,
    hosts_up: usize,
    ports_total: u64,
    ports_decided: u64,
    sent: u64,
    received: u64,
    malformed: u64,
    bad_cookie: u64,
    send_errors: u64,
    dropped: u64,
}

/// The streaming writer.
pub struct Ndjson<W: Write> {
    w: W,
}

impl<W: Write> Ndjson<W> {
    pub fn new(w: W) -> Self {
        Ndjson { w }
    }

    fn line<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, value).map_err(io::Error::other)?;
        self.w.write_all(b"\n")
    }

    /// Write the opening `scan` line, and flush.
    pub fn start(&mut self, info: &ScanInfo, view: &View) -> io::Result<()> {
        self.line(&ScanLine {
            r#type: "scan",
            scanner: "rawscan",
            version: &info.version,
            args: &info.args,
            argv: &info.argv,
            start: time::epoch_f64(info.start),
            tcp_type: info.tcp_type,
            udp: info.udp,
            tcp_ports: port_ranges(info.tcp_ports.iter().copied()),
            udp_ports: port_ranges(info.udp_ports.iter().copied()),
            hosts_total: info.hosts_total,
            seed: info.seed,
            shard: info.shard.to_string(),
            pairs: info.pairs,
            verbose: view.verbose,
            open: view.open_only,
            reason: view.reason,
        })?;
        self.flush()
    }

    /// Write one decided result as a line (flushed by `flush` or `finish`).
    pub fn result(&mut self, r: &PortResult) -> io::Result<()> {
        self.line(&PortLine {
            r#type: "port",
            ip: r.key.ip.to_string(),
            port: r.key.port,
            proto: r.key.proto.as_str(),
            state: r.state.as_str(),
            reason: r.reason.as_str(),
            ttl: r.ttl,
            service: services::service_name(r.key.proto, r.key.port),
        })
    }

    /// Write one `-sV` result as a line, and flush.
    pub fn service(
        &mut self,
        key: &crate::probe::ProbeKey,
        s: &crate::version::Service,
    ) -> io::Result<()> {
        self.line(&ServiceLine {
            r#type: "service",
            ip: key.ip.to_string(),
            port: key.port,
            proto: key.proto.as_str(),
            service: &s.name,
            product: s.product.as_deref(),
            version: s.version.as_deref(),
            extrainfo: s.extrainfo.as_deref(),
            hostname: s.hostname.as_deref(),
            ostype: s.ostype.as_deref(),
            cpe: &s.cpe,
            method: s.method.as_str(),
            conf: s.conf,
            tunnel: s.tunnel_tls.then_some("ssl"),
            tls: s.tls.as_ref(),
            details: s
                .details
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        })
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// Write the `host` lines and the closing `summary` line, and flush.
    /// Call once, last.
    pub fn finish(
        &mut self,
        info: &ScanInfo,
        report: &Report,
        summary: &Summary,
    ) -> io::Result<()> {
        let mut ips: Vec<IpAddr> = report.hosts().map(|h| h.ip).collect();
        ips.extend(
            summary
                .up
                .keys()
                .filter(|ip| report.host(ip).is_none())
                .copied(),
        );
        ips.sort_unstable();
        for ip in ips {
            let up = summary.up.get(&ip);
            let host = report.host(&ip);
            self.line(&HostLine {
                r#type: "host",
                ip: ip.to_string(),
                status: if up.is_some() { "up" } else { "down" },
                reason: match up {
                    Some(h) => h.reason.map(|r| r.as_str()),
                    None if host.is_some_and(|h| h.total() == 0) => Some("no-response"),
                    None => None,
                },
                reason_ttl: up.and_then(|h| h.reason.and(h.ttl)),
                mac: up.and_then(|h| h.mac).map(super::xml::mac_text),
                latency: up.and_then(|h| h.latency).map(|l| l.as_secs_f64()),
                ports: host.map_or(0, |h| h.total() as u64),
                groups: host.map_or_else(Vec::new, |h| {
                    h.groups()
                        .into_iter()
                        .map(|((state, proto, reason), count)| GroupCount {
                            state: state.as_str().into(),
                            proto: proto.as_str().into(),
                            reason: reason.as_str().into(),
                            count: count as u64,
                        })
                        .collect()
                }),
            })?;
        }
        let end = info
            .start
            .checked_add(summary.elapsed)
            .unwrap_or(info.start);
        self.line(&SummaryLine {
            r#type: "summary",
            scanner: "rawscan",
            version: &info.version,
            args: &info.args,
            start: time::epoch(info.start),
            end: time::epoch_f64(end),
            elapsed: summary.elapsed.as_secs_f64(),
            interrupted: summary.interrupted,
            shard: info.shard.to_string(),
            hosts_total: info.hosts_total,
            hosts_up: summary.up.len(),
            ports_total: summary.total,
            ports_decided: summary.decided,
            sent: summary.sent,
            received: summary.received,
            malformed: summary.malformed,
            bad_cookie: summary.bad_cookie,
            send_errors: summary.send_errors,
            dropped: summary.dropped,
        })?;
        self.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}

// ----- Reading (for `rawscan merge`) ---------------------------------------

/// The opening line of a file, as read back.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct ScanIn {
    pub version: String,
    pub args: String,
    #[serde(default)]
    pub argv: Vec<String>,
    pub start: f64,
    pub tcp_type: Option<String>,
    pub udp: bool,
    pub tcp_ports: String,
    pub udp_ports: String,
    pub hosts_total: u128,
    pub seed: u64,
    pub shard: String,
    pub pairs: u64,
    #[serde(default)]
    pub verbose: u8,
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub reason: bool,
}

#[derive(Deserialize)]
struct PortIn {
    ip: IpAddr,
    port: u16,
    proto: String,
    state: String,
    reason: String,
    ttl: Option<u8>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct HostIn {
    pub ip: IpAddr,
    pub status: String,
    pub latency: Option<f64>,
    pub ports: u64,
    #[serde(default)]
    pub groups: Vec<GroupCount>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct SummaryIn {
    pub end: f64,
    pub elapsed: f64,
    pub interrupted: bool,
    pub ports_total: u64,
    pub ports_decided: u64,
    pub sent: u64,
    pub received: u64,
    pub malformed: u64,
    pub bad_cookie: u64,
    #[serde(default)]
    pub send_errors: u64,
    #[serde(default)]
    pub dropped: u64,
}

#[derive(Deserialize)]
struct TypeOnly {
    r#type: String,
}

/// One line of an NDJSON file, as read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Scan(Box<ScanIn>),
    Port(PortResult),
    Host(HostIn),
    Summary(SummaryIn),
}

fn port_result(p: PortIn) -> Result<PortResult, String> {
    let proto = Proto::from_name(&p.proto).ok_or(format!("unknown proto '{}'", p.proto))?;
    let state = PortState::from_name(&p.state).ok_or(format!("unknown state '{}'", p.state))?;
    let reason = Reason::from_name(&p.reason).ok_or(format!("unknown reason '{}'", p.reason))?;
    Ok(PortResult {
        key: ProbeKey {
            ip: p.ip,
            port: p.port,
            proto,
        },
        state,
        reason,
        ttl: p.ttl,
    })
}

/// Parse one line. `Ok(None)` for a blank line; an error says why.
pub fn parse_line(line: &str) -> Result<Option<Line>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let bad = |e: serde_json::Error| e.to_string();
    // Port lines are nearly all of a file: read them in one pass.
    if line.starts_with("{\"type\":\"port\"") {
        let p: PortIn = serde_json::from_str(line).map_err(bad)?;
        return port_result(p).map(|r| Some(Line::Port(r)));
    }
    let t: TypeOnly = serde_json::from_str(line).map_err(bad)?;
    Ok(Some(match t.r#type.as_str() {
        "scan" => Line::Scan(Box::new(serde_json::from_str(line).map_err(bad)?)),
        "port" => Line::Port(port_result(serde_json::from_str(line).map_err(bad)?)?),
        "host" => Line::Host(serde_json::from_str(line).map_err(bad)?),
        "summary" => Line::Summary(serde_json::from_str(line).map_err(bad)?),
        other => return Err(format!("unknown line type '{other}'")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostInfo;
    use crate::output::testutil::res;
    use crate::plan::Shard;
    use serde_json::Value;
    use std::time::{Duration, UNIX_EPOCH};

    /// Records where flushes happen.
    #[derive(Default)]
    struct Flushes {
        data: Vec<u8>,
        flushed_at: Vec<usize>,
    }

    impl Write for Flushes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushed_at.push(self.data.len());
            Ok(())
        }
    }

    fn info() -> ScanInfo {
        ScanInfo {
            start: UNIX_EPOCH + Duration::from_micros(1_795_925_100_250_000),
            args: "rawscan -p 22 \"q\\\"\n".into(),
            argv: vec!["-p".into(), "22".into(), "q\\\"\n".into()],
            version: "0.1.0".into(),
            tcp_type: Some("syn"),
            udp: true,
            tcp_ports: vec![22, 443, 49991],
            udp_ports: vec![161],
            hosts_total: 2,
            seed: 42,
            shard: Shard::new(2, 3).unwrap(),
            pairs: 3,
        }
    }

    fn results() -> [PortResult; 4] {
        [
            res(
                "198.18.0.2",
                22,
                Proto::Tcp,
                PortState::Open,
                Reason::SynAck,
                Some(64),
            ),
            res(
                "198.18.0.2",
                443,
                Proto::Tcp,
                PortState::Filtered,
                Reason::NoResponse,
                None,
            ),
            res(
                "2001:db8::7",
                49991,
                Proto::Tcp,
                PortState::Closed,
                Reason::Reset,
                Some(57),
            ),
            res(
                "198.18.0.2",
                161,
                Proto::Udp,
                PortState::OpenFiltered,
                Reason::NoResponse,
                None,
            ),
        ]
    }

    #[test]
    fn every_line_is_json_scan_first_summary_last() {
        let info = info();
        let view = View {
            reason: true,
            open_only: false,
            verbose: 1,
        };
        let mut report = Report::new(info.ports());
        let mut nd = Ndjson::new(Flushes::default());
        nd.start(&info, &view).unwrap();
        for r in &results() {
            nd.result(r).unwrap();
            report.add(r).unwrap();
        }
        nd.flush().unwrap();
        let mut summary = Summary {
            elapsed: Duration::from_millis(1500),
            total: 8,
            decided: 4,
            sent: 9,
            received: 3,
            malformed: 1,
            bad_cookie: 2,
            send_errors: 5,
            dropped: 6,
            interrupted: true,
            ..Summary::default()
        };
        summary.up.insert(
            "198.18.0.2".parse().unwrap(),
            HostInfo {
                latency: Some(Duration::from_micros(52)),
                ..HostInfo::default()
            },
        );
        nd.finish(&info, &report, &summary).unwrap();
        let sink = nd.into_inner();

        let text = String::from_utf8(sink.data.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        // Flushed after the scan line, when asked, and at the very end.
        let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        assert_eq!(sink.flushed_at, [ends[0], ends[4], ends[7]]);

        let v: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("valid JSON"))
            .collect();
        let s = &v[0];
        assert_eq!(s["type"], "scan");
        assert_eq!(s["start"], 1_795_925_100.25);
        assert_eq!(s["tcp_ports"], "22,443,49991");
        assert_eq!(s["udp_ports"], "161");
        assert_eq!(s["tcp_type"], "syn");
        assert_eq!(s["shard"], "2/3");
        assert_eq!(s["seed"], 42);
        assert_eq!(s["pairs"], 3);
        assert_eq!(s["verbose"], 1);
        assert_eq!(s["reason"], true);
        assert_eq!(s["argv"][2], "q\\\"\n");
        // Port lines: the same objects as before the scan/host lines.
        assert_eq!(
            v[1],
            serde_json::json!({"type":"port","ip":"198.18.0.2","port":22,"proto":"tcp",
                "state":"open","reason":"syn-ack","ttl":64,"service":"ssh"})
        );
        assert_eq!(v[2]["ttl"], Value::Null);
        assert_eq!(v[2]["state"], "filtered");
        assert_eq!(v[2]["reason"], "no-response");
        assert_eq!(v[3]["ip"], "2001:db8::7");
        assert_eq!(v[3]["port"], 49991);
        assert_eq!(v[3]["service"], Value::Null, "not in the services table");
        assert_eq!(v[4]["proto"], "udp");
        assert_eq!(v[4]["state"], "open|filtered");
        assert_eq!(v[4]["service"], "snmp");
        assert!(v[1..5].iter().all(|x| x["type"] == "port"));
        // Host lines, in address order.
        assert_eq!(
            v[5],
            serde_json::json!({"type":"host","ip":"198.18.0.2","status":"up","latency":0.000052,
                "ports":3,"groups":[
                    {"state":"open","proto":"tcp","reason":"syn-ack","count":1},
                    {"state":"filtered","proto":"tcp","reason":"no-response","count":1},
                    {"state":"open|filtered","proto":"udp","reason":"no-response","count":1}]})
        );
        assert_eq!(v[6]["ip"], "2001:db8::7");
        assert_eq!(v[6]["status"], "down");
        assert_eq!(v[6]["latency"], Value::Null);

        let s = &v[7];
        assert_eq!(s["type"], "summary");
        assert_eq!(s["args"], "rawscan -p 22 \"q\\\"\n");
        assert_eq!(s["start"], 1_795_925_100u64);
        assert_eq!(s["end"], 1_795_925_101.75);
        assert_eq!(s["elapsed"], 1.5);
        assert_eq!(s["interrupted"], true);
        assert_eq!(s["shard"], "2/3");
        assert_eq!(s["hosts_total"], 2);
        assert_eq!(s["hosts_up"], 1);
        assert_eq!(s["ports_total"], 8);
        assert_eq!(s["ports_decided"], 4);
        assert_eq!(s["sent"], 9);
        assert_eq!(s["received"], 3);
        assert_eq!(s["malformed"], 1);
        assert_eq!(s["bad_cookie"], 2);
        assert_eq!(s["send_errors"], 5);
        assert_eq!(s["dropped"], 6);

        // Every line reads back.
        let back: Vec<Line> = lines
            .iter()
            .map(|l| parse_line(l).unwrap().unwrap())
            .collect();
        match &back[0] {
            Line::Scan(s) => {
                assert_eq!(s.pairs, 3);
                assert_eq!(s.argv, info.argv);
                assert_eq!(time::from_epoch_f64(s.start), info.start);
            }
            other => panic!("{other:?}"),
        }
        for (i, r) in results().iter().enumerate() {
            assert_eq!(back[i + 1], Line::Port(*r));
        }
        match &back[5] {
            Line::Host(h) => {
                assert_eq!(h.status, "up");
                assert_eq!(h.ports, 3);
                assert_eq!(h.groups.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        match &back[7] {
            Line::Summary(s) => {
                assert_eq!(s.ports_decided, 4);
                assert_eq!(s.end, 1_795_925_101.75);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert_eq!(parse_line("  "), Ok(None));
        for bad in [
            "{",
            "[]",
            "{\"type\":\"port\"}",
            "{\"type\":\"port\",\"ip\":\"x\",\"port\":1,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"ttl\":null}",
            "{\"type\":\"port\",\"ip\":\"198.18.0.2\",\"port\":70000,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"ttl\":null}",
            "{\"type\":\"port\",\"ip\":\"198.18.0.2\",\"port\":1,\"proto\":\"sctp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"ttl\":null}",
            "{\"type\":\"port\",\"ip\":\"198.18.0.2\",\"port\":1,\"proto\":\"tcp\",\"state\":\"shut\",\"reason\":\"syn-ack\",\"ttl\":null}",
            "{\"type\":\"weird\"}",
            "{\"type\":\"scan\"}",
            "\u{0}",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        // A port line in another key order (e.g. rewritten by a tool).
        let l = parse_line(
            "{\"ip\":\"198.18.0.2\",\"type\":\"port\",\"port\":1,\"proto\":\"udp\",\"state\":\"closed\",\"reason\":\"port-unreach\",\"ttl\":3}",
        )
        .unwrap()
        .unwrap();
        assert!(matches!(l, Line::Port(r) if r.key.port == 1 && r.ttl == Some(3)));
    }

    #[test]
    fn service_lines_carry_version_and_tls() {
        let mut nd = Ndjson::new(Vec::new());
        let key = crate::probe::ProbeKey {
            ip: "198.18.0.2".parse().unwrap(),
            port: 443,
            proto: Proto::Tcp,
        };
        let mut s = crate::version::Service::from_table(Proto::Tcp, 443);
        s.name = "http".into();
        s.product = Some("nginx".into());
        s.version = Some("1.22.1".into());
        s.cpe = vec!["cpe:/a:igor_sysoev:nginx:1.22.1".into()];
        s.method = crate::version::Method::Probed;
        s.conf = 10;
        s.tunnel_tls = true;
        s.details = vec![("http-title".into(), "rawscan lab".into())];
        s.tls = Some(crate::version::TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: Some("h2".into()),
            subject_cn: Some("lab.rawscan.test".into()),
            sans: vec!["DNS:lab.rawscan.test".into()],
            issuer: Some("CN=lab.rawscan.test".into()),
            not_before: None,
            not_after: Some("2027-01-05T00:12:50".into()),
        });
        nd.service(&key, &s).unwrap();
        let text = String::from_utf8(nd.into_inner()).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["type"], "service");
        assert_eq!(v["port"], 443);
        assert_eq!(v["service"], "http");
        assert_eq!(v["product"], "nginx");
        assert_eq!(v["version"], "1.22.1");
        assert_eq!(v["extrainfo"], Value::Null);
        assert_eq!(v["cpe"][0], "cpe:/a:igor_sysoev:nginx:1.22.1");
        assert_eq!(v["method"], "probed");
        assert_eq!(v["conf"], 10);
        assert_eq!(v["tunnel"], "ssl");
        assert_eq!(v["tls"]["alpn"], "h2");
        assert_eq!(v["tls"]["subject_cn"], "lab.rawscan.test");
        assert_eq!(v["tls"]["sans"][0], "DNS:lab.rawscan.test");
        assert_eq!(v["tls"]["issuer"], "CN=lab.rawscan.test");
        assert_eq!(v["tls"]["not_after"], "2027-01-05T00:12:50");
        assert_eq!(v["details"]["http-title"], "rawscan lab");
    }

    /// Regression: every reason an IPv6 or UDP scan writes reads back
    /// (`rawscan merge` refused "no-route" and three others).
    #[test]
    fn every_reason_written_reads_back() {
        for reason in Reason::ALL {
            let r = PortResult {
                key: ProbeKey {
                    ip: "2001:db8::2".parse().unwrap(),
                    port: 53,
                    proto: Proto::Udp,
                },
                state: PortState::Filtered,
                reason,
                ttl: Some(64),
            };
            let mut nd = Ndjson::new(Vec::new());
            nd.result(&r).unwrap();
            let text = String::from_utf8(nd.into_inner()).unwrap();
            assert_eq!(
                parse_line(text.trim()),
                Ok(Some(Line::Port(r))),
                "{reason:?}: {text}"
            );
        }
    }

    #[test]
    fn huge_host_counts_stay_exact() {
        let mut nd = Ndjson::new(Vec::new());
        let mut info = info();
        info.hosts_total = 1u128 << 64;
        nd.start(&info, &View::default()).unwrap();
        nd.finish(&info, &Report::default(), &Summary::default())
            .unwrap();
        let text = String::from_utf8(nd.into_inner()).unwrap();
        assert!(
            text.contains("\"hosts_total\":18446744073709551616,"),
            "{text}"
        );
        let first = parse_line(text.lines().next().unwrap()).unwrap().unwrap();
        assert!(matches!(first, Line::Scan(s) if s.hosts_total == 1u128 << 64));
    }
}
