//! Streaming NDJSON output (`-oJ`): one JSON object per line, written
//! and flushed as each result is decided, so a consumer can follow a long
//! scan live and keep what it got if the scan dies.
//!
//! Invariants: this module only formats; it never decides a state. Every
//! line is one complete JSON object with a `"type"` field: `"port"` for a
//! result, `"service"` for a `-sV` result (after the port scan, one per
//! probed port), `"summary"` once, last, from `finish`. Absent values (a TTL, a
//! service name not in the table) are `null`, never invented.
//!
//! serde + serde_json do the encoding: JSON string escaping and number
//! formatting are easy to get subtly wrong by hand, and serde_json is the
//! ecosystem's standard, well-maintained encoder.

use std::io::{self, Write};

use serde::Serialize;

use super::ScanInfo;
use super::time;
use crate::engine::Summary;
use crate::probe::PortResult;
use crate::services;

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
    elapsed: f64,
    interrupted: bool,
    hosts_total: u128,
    hosts_up: usize,
    ports_total: u64,
    ports_decided: u64,
    sent: u64,
    received: u64,
    malformed: u64,
    bad_cookie: u64,
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
        self.w.write_all(b"\n")?;
        self.w.flush()
    }

    /// Write one decided result as a line, and flush.
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

    /// Write the closing summary line, and flush. Call once, last.
    pub fn finish(&mut self, info: &ScanInfo, summary: &Summary) -> io::Result<()> {
        self.line(&SummaryLine {
            r#type: "summary",
            scanner: "rawscan",
            version: info.version,
            args: &info.args,
            start: time::epoch(info.start),
            elapsed: summary.elapsed.as_secs_f64(),
            interrupted: summary.interrupted,
            hosts_total: info.hosts_total,
            hosts_up: summary.up.len(),
            ports_total: summary.total,
            ports_decided: summary.decided,
            sent: summary.sent,
            received: summary.received,
            malformed: summary.malformed,
            bad_cookie: summary.bad_cookie,
        })
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostInfo;
    use crate::output::testutil::res;
    use crate::probe::{PortState, Proto, Reason};
    use serde_json::Value;
    use std::time::{Duration, UNIX_EPOCH};

    /// Counts flushes, to show each line is flushed as it is written.
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

    #[test]
    fn every_line_is_json_and_the_summary_is_last() {
        let results = [
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
        ];
        let mut nd = Ndjson::new(Flushes::default());
        for r in &results {
            nd.result(r).unwrap();
        }
        let info = ScanInfo {
            start: UNIX_EPOCH + Duration::from_secs(1_795_925_100),
            args: "rawscan -p 22 \"q\\\"\n".into(),
            version: "0.1.0",
            tcp_type: Some("syn"),
            udp: true,
            tcp_ports: vec![22, 443, 49991],
            udp_ports: vec![161],
            hosts_total: 2,
        };
        let mut summary = Summary {
            elapsed: Duration::from_millis(1500),
            total: 8,
            decided: 4,
            sent: 9,
            received: 3,
            malformed: 1,
            bad_cookie: 2,
            interrupted: true,
            ..Summary::default()
        };
        summary
            .up
            .insert("198.18.0.2".parse().unwrap(), HostInfo::default());
        nd.finish(&info, &summary).unwrap();
        let sink = nd.into_inner();

        let text = String::from_utf8(sink.data.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        // Flushed after each line, not only at the end.
        let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        assert_eq!(sink.flushed_at, ends);

        let v: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("valid JSON"))
            .collect();
        assert_eq!(
            v[0],
            serde_json::json!({"type":"port","ip":"198.18.0.2","port":22,"proto":"tcp",
                "state":"open","reason":"syn-ack","ttl":64,"service":"ssh"})
        );
        assert_eq!(v[1]["ttl"], Value::Null);
        assert_eq!(v[1]["state"], "filtered");
        assert_eq!(v[1]["reason"], "no-response");
        assert_eq!(v[2]["ip"], "2001:db8::7");
        assert_eq!(v[2]["port"], 49991);
        assert_eq!(v[2]["service"], Value::Null, "not in the services table");
        assert_eq!(v[3]["proto"], "udp");
        assert_eq!(v[3]["state"], "open|filtered");
        assert_eq!(v[3]["service"], "snmp");
        assert!(v[..4].iter().all(|x| x["type"] == "port"));

        let s = &v[4];
        assert_eq!(s["type"], "summary");
        assert_eq!(s["args"], "rawscan -p 22 \"q\\\"\n");
        assert_eq!(s["start"], 1_795_925_100u64);
        assert_eq!(s["elapsed"], 1.5);
        assert_eq!(s["interrupted"], true);
        assert_eq!(s["hosts_total"], 2);
        assert_eq!(s["hosts_up"], 1);
        assert_eq!(s["ports_total"], 8);
        assert_eq!(s["ports_decided"], 4);
        assert_eq!(s["sent"], 9);
        assert_eq!(s["received"], 3);
        assert_eq!(s["malformed"], 1);
        assert_eq!(s["bad_cookie"], 2);
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

    #[test]
    fn huge_host_counts_stay_exact() {
        let mut nd = Ndjson::new(Vec::new());
        let info = ScanInfo {
            start: UNIX_EPOCH,
            args: String::new(),
            version: "0.1.0",
            tcp_type: None,
            udp: false,
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            hosts_total: 1u128 << 64,
        };
        nd.finish(&info, &Summary::default()).unwrap();
        let text = String::from_utf8(nd.into_inner()).unwrap();
        assert!(
            text.contains("\"hosts_total\":18446744073709551616,"),
            "{text}"
        );
    }
}
