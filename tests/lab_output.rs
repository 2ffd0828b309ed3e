//! Output-format, interruption/resume and progress tests against the
//! network-namespace lab (see tests/common).
//!
//! Target (as in lab_tcp.rs): listeners on `OPEN`, nftables drops on
//! `DROPPED`, ICMP admin-prohibited on `ADMIN`, every other port closed.
//! Every test writes its files into its own temporary directory (kept, and
//! its path printed, when the test fails).
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_output -- --nocapture --test-threads=1`
mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const OPEN: &[u16] = &[1, 22, 80, 443, 1999, 8080, 31337, 65535];
const DROPPED: &[u16] = &[81, 1500, 40000];
const ADMIN: u16 = 113;
const NMAP_DTD: &str = "/usr/share/nmap/nmap.dtd";

// ---------------------------------------------------------------------------
// Local helpers.
// ---------------------------------------------------------------------------

fn output_lab(tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_with_tools(tools)?;
    if !Path::new(NMAP_DTD).is_file() && tools.contains(&"xmllint") {
        return unavailable(&format!("{NMAP_DTD} (package nmap-common) is missing"));
    }
    lab.tcp_listen(OPEN);
    lab.drop_tcp(DROPPED);
    lab.reject_admin_prohibited_tcp(&[ADMIN]);
    Some(lab)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn range(a: u16, b: u16) -> Vec<u16> {
    (a..=b).collect()
}

/// A scratch directory per test, removed on success, kept on failure.
struct TempDir(PathBuf);

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("rawscan-output-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn s(&self, f: &str) -> String {
        self.path(f).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test failed: files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn ip_tool() -> PathBuf {
    find_tool("ip").expect("ip (iproute2) is not installed")
}

/// `ip netns exec <scanner> <program> args...` with `dir` as the working
/// directory (so nothing lands in the crate root), killed after `timeout`.
fn scanner_cmd(lab: &Lab, dir: &TempDir, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(ip_tool());
    c.args(["netns", "exec", &lab.scanner_ns, program])
        .args(args)
        .current_dir(&dir.0);
    c
}

fn rawscan_in(lab: &Lab, dir: &TempDir, args: &[&str], timeout: Duration) -> Output {
    let t = Instant::now();
    let out = run_with_timeout(scanner_cmd(lab, dir, RAWSCAN_BIN, args), timeout);
    eprintln!(
        "rawscan {}: {:.2}s, {}",
        args.join(" "),
        t.elapsed().as_secs_f64(),
        out.status
    );
    out
}

/// A host-side tool (xmllint, ndiff, python3, ...), no network involved.
fn run_tool(tool: &str, args: &[&str]) -> Output {
    let path = find_tool(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
    let mut c = Command::new(path);
    c.args(args);
    run_with_timeout(c, Duration::from_secs(60))
}

/// `xmllint --noout --dtdvalid nmap.dtd FILE` must exit 0.
fn assert_xml_valid(path: &Path) {
    let p = path.to_string_lossy();
    let out = run_tool("xmllint", &["--noout", "--dtdvalid", NMAP_DTD, &p]);
    assert!(
        out.status.success(),
        "xmllint --noout --dtdvalid {NMAP_DTD} {p} failed ({}):\n{}\n--- file (first 6000 bytes) ---\n{}",
        out.status,
        text(&out.stderr),
        read(path).chars().take(6000).collect::<String>()
    );
}

// ----- XML (through python3's xml.etree: a real XML parser) ----------------

const XML_TO_JSON: &str = r#"
import sys, json, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
out = {"root": root.tag, "hosts": [], "finished": None}
for h in root.findall("host"):
    st = h.find("status")
    host = {"addr": [a.get("addr") for a in h.findall("address")],
            "status": st.get("state") if st is not None else None,
            "ports": [], "extraports": []}
    ps = h.find("ports")
    if ps is not None:
        for p in ps.findall("port"):
            s = p.find("state")
            svc = p.find("service")
            host["ports"].append({"port": int(p.get("portid")), "proto": p.get("protocol"),
                "state": s.get("state"), "reason": s.get("reason"),
                "service": svc.get("name") if svc is not None else None})
        for e in ps.findall("extraports"):
            host["extraports"].append({"state": e.get("state"), "count": int(e.get("count")),
                "reasons": [dict(x.attrib) for x in e.findall("extrareasons")]})
    out["hosts"].append(host)
f = root.find("runstats/finished")
out["finished"] = dict(f.attrib) if f is not None else None
print(json.dumps(out))
"#;

#[derive(Debug)]
struct XmlRow {
    state: String,
    reason: Option<String>,
    service: Option<String>,
}

#[derive(Debug)]
struct XmlExtra {
    state: String,
    count: usize,
    /// Union of the `ports` attributes of its extrareasons, when given.
    ports: Option<BTreeSet<u16>>,
}

#[derive(Debug)]
struct XmlScan {
    rows: BTreeMap<u16, XmlRow>,
    extra: Vec<XmlExtra>,
    finished: BTreeMap<String, String>,
}

/// "2-21,23,81-442" → set.
fn parse_port_list(s: &str) -> Result<BTreeSet<u16>, String> {
    let mut set = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u16 = a.parse().map_err(|_| format!("bad port list {s:?}"))?;
        let b: u16 = b.parse().map_err(|_| format!("bad port list {s:?}"))?;
        if a > b {
            return Err(format!("bad range {part:?} in {s:?}"));
        }
        set.extend(a..=b);
    }
    Ok(set)
}

/// The TARGET_IP/tcp host of an nmap XML file.
fn parse_xml(path: &Path) -> XmlScan {
    let out = run_tool("python3", &["-c", XML_TO_JSON, &path.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{} is not well-formed XML (python3 xml.etree): {}\n--- file (first 6000 bytes) ---\n{}",
        path.display(),
        text(&out.stderr),
        read(path).chars().take(6000).collect::<String>()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("python3 printed JSON");
    assert_eq!(v["root"], "nmaprun", "{}: root element", path.display());
    let hosts = v["hosts"].as_array().expect("hosts array");
    let host = hosts
        .iter()
        .find(|h| {
            h["addr"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == TARGET_IP))
        })
        .unwrap_or_else(|| panic!("{}: no <host> for {TARGET_IP}:\n{v}", path.display()));
    assert_eq!(
        hosts.len(),
        1,
        "{}: exactly one host expected",
        path.display()
    );
    let mut rows = BTreeMap::new();
    for p in host["ports"].as_array().expect("ports") {
        assert_eq!(p["proto"], "tcp", "{}: {p}", path.display());
        let port = u16::try_from(p["port"].as_u64().expect("portid")).expect("u16 port");
        let row = XmlRow {
            state: p["state"].as_str().expect("state").to_string(),
            reason: p["reason"].as_str().map(str::to_string),
            service: p["service"].as_str().map(str::to_string),
        };
        assert!(
            rows.insert(port, row).is_none(),
            "{}: <port portid=\"{port}\"> twice",
            path.display()
        );
    }
    let mut extra = Vec::new();
    for e in host["extraports"].as_array().expect("extraports") {
        let reasons = e["reasons"].as_array().expect("reasons");
        let mut ports: Option<BTreeSet<u16>> = None;
        for r in reasons {
            if let Some(list) = r["ports"].as_str() {
                let set =
                    parse_port_list(list).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
                ports.get_or_insert_with(BTreeSet::new).extend(set);
            }
        }
        extra.push(XmlExtra {
            state: e["state"].as_str().expect("state").to_string(),
            count: e["count"].as_u64().expect("count") as usize,
            ports,
        });
    }
    let finished = v["finished"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: no <runstats><finished>", path.display()))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    XmlScan {
        rows,
        extra,
        finished,
    }
}

fn assert_xml_interrupted(path: &Path, xml: &XmlScan) {
    let exit = xml.finished.get("exit").map(String::as_str);
    let msg = xml.finished.get("errormsg").cloned().unwrap_or_default();
    assert!(
        exit == Some("error") && msg.starts_with("Interrupted"),
        "{}: expected <finished exit=\"error\" errormsg=\"Interrupted: ...\">, got {:?}",
        path.display(),
        xml.finished
    );
}

// ----- NDJSON ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct NdPort {
    state: String,
    reason: String,
    service: Option<String>,
}

struct Ndjson {
    ports: BTreeMap<u16, NdPort>,
    summary: Value,
}

/// Every line must be a JSON object; port objects carry all contract fields;
/// exactly one summary, and it is the last line; no port twice.
fn parse_ndjson(path: &Path) -> Ndjson {
    let body = read(path);
    let ctx = |msg: String| -> String { format!("{}: {msg}", path.display()) };
    assert!(
        body.ends_with('\n'),
        "{}",
        ctx("does not end with a newline (truncated?)".into())
    );
    let lines: Vec<&str> = body.lines().collect();
    let mut ports = BTreeMap::new();
    let mut summary = None;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}", ctx(format!("line {n} is not JSON ({e}): {line:?}"))));
        assert!(
            summary.is_none(),
            "{}",
            ctx(format!("line {n} follows the summary: {line}"))
        );
        match v["type"].as_str() {
            Some("port") => {
                for key in ["ip", "port", "proto", "state", "reason", "ttl", "service"] {
                    assert!(
                        v.get(key).is_some(),
                        "{}",
                        ctx(format!("line {n} lacks {key:?}: {line}"))
                    );
                }
                assert_eq!(v["ip"], TARGET_IP, "{}", ctx(format!("line {n}")));
                assert_eq!(v["proto"], "tcp", "{}", ctx(format!("line {n}")));
                assert!(
                    v["ttl"].is_u64() || v["ttl"].is_null(),
                    "{}",
                    ctx(format!("line {n}: ttl {}", v["ttl"]))
                );
                let port = v["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|&p| p != 0)
                    .unwrap_or_else(|| panic!("{}", ctx(format!("line {n}: bad port: {line}"))));
                let p = NdPort {
                    state: v["state"].as_str().expect("state string").to_string(),
                    reason: v["reason"].as_str().expect("reason string").to_string(),
                    service: v["service"].as_str().map(str::to_string),
                };
                assert!(
                    ports.insert(port, p).is_none(),
                    "{}",
                    ctx(format!("line {n}: port {port}/tcp reported twice"))
                );
            }
            Some("summary") => summary = Some(v),
            // The opening scan line and the closing host lines (for
            // `rawscan merge`): checked in tests/lab_sweep.rs.
            Some("scan") => assert_eq!(n, 1, "{}", ctx(format!("scan line at line {n}"))),
            Some("host") => {}
            _ => panic!("{}", ctx(format!("line {n}: unknown type: {line}"))),
        }
    }
    let summary = summary.unwrap_or_else(|| {
        panic!(
            "{}",
            ctx(format!(
                "no final summary line; last line: {:?}",
                lines.last()
            ))
        )
    });
    for key in ["interrupted", "ports_total", "ports_decided"] {
        assert!(
            summary.get(key).is_some(),
            "{}",
            ctx(format!("summary lacks {key:?}: {summary}"))
        );
    }
    assert_eq!(
        summary["ports_decided"].as_u64(),
        Some(ports.len() as u64),
        "{}",
        ctx(format!(
            "summary ports_decided disagrees with the {} port lines: {summary}",
            ports.len()
        ))
    );
    Ndjson { ports, summary }
}

// ----- Grepable ----------------------------------------------------------------

struct Gnmap {
    status: Option<String>,
    /// port → (state, service)
    rows: BTreeMap<u16, (String, String)>,
    ignored: Option<(String, usize)>,
}

/// Parse the grepable output for TARGET_IP: `Host: IP (name)<TAB>Status: Up`
/// and `Host: IP (name)<TAB>Ports: p/state/proto//service///, ...<TAB>Ignored
/// State: closed (N)`.
fn parse_gnmap(path: &Path) -> Gnmap {
    let body = read(path);
    let fail = |msg: String| -> ! { panic!("{}: {msg}\n--- file ---\n{body}", path.display()) };
    let mut g = Gnmap {
        status: None,
        rows: BTreeMap::new(),
        ignored: None,
    };
    let mut port_lines = 0;
    for line in body.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let host = fields[0]
            .strip_prefix("Host: ")
            .unwrap_or_else(|| fail(format!("line does not start with 'Host: ': {line:?}")));
        if host.split_whitespace().next() != Some(TARGET_IP) {
            fail(format!("unexpected host {host:?}"));
        }
        for f in &fields[1..] {
            let (key, val) = f
                .split_once(": ")
                .unwrap_or_else(|| fail(format!("field without 'Key: ' {f:?}")));
            match key {
                "Status" => g.status = Some(val.to_string()),
                "Ports" => {
                    port_lines += 1;
                    for entry in val.split(", ") {
                        let parts: Vec<&str> = entry.split('/').collect();
                        if parts.len() != 8 || !parts[7].is_empty() || !parts[3].is_empty() {
                            fail(format!(
                                "bad port entry {entry:?} (want port/state/proto//service///)"
                            ));
                        }
                        let port: u16 = parts[0]
                            .parse()
                            .unwrap_or_else(|_| fail(format!("bad port in {entry:?}")));
                        if parts[2] != "tcp" {
                            fail(format!("bad proto in {entry:?}"));
                        }
                        if g.rows
                            .insert(port, (parts[1].to_string(), parts[4].to_string()))
                            .is_some()
                        {
                            fail(format!("port {port} listed twice"));
                        }
                    }
                }
                "Ignored State" => {
                    // "closed (1995)"
                    let (state, count) = val
                        .trim_end_matches(')')
                        .split_once(" (")
                        .unwrap_or_else(|| fail(format!("bad Ignored State {val:?}")));
                    let count = count
                        .parse()
                        .unwrap_or_else(|_| fail(format!("bad Ignored State count {val:?}")));
                    g.ignored = Some((state.to_string(), count));
                }
                other => fail(format!("unknown field {other:?}")),
            }
        }
    }
    if port_lines != 1 {
        fail(format!(
            "{port_lines} 'Ports:' fields for {TARGET_IP}, want 1"
        ));
    }
    g
}

/// XML, NDJSON and (optionally) grepable output agree port by port; `ports`
/// is the set NDJSON must cover (None: do not check coverage).
fn assert_formats_agree(xml: &XmlScan, nd: &Ndjson, gn: Option<&Gnmap>, ports: Option<&[u16]>) {
    let mut bad = Vec::new();
    if let Some(ports) = ports {
        let want: BTreeSet<u16> = ports.iter().copied().collect();
        let got: BTreeSet<u16> = nd.ports.keys().copied().collect();
        let missing: Vec<_> = want.difference(&got).take(20).collect();
        let extra: Vec<_> = got.difference(&want).take(20).collect();
        if !missing.is_empty() || !extra.is_empty() {
            bad.push(format!(
                "NDJSON coverage: missing {missing:?}, unexpected {extra:?} (first 20)"
            ));
        }
    }
    // XML: rows + one extraports group must account for every NDJSON port.
    if xml.extra.len() > 1 {
        bad.push(format!("more than one <extraports>: {:?}", xml.extra));
    }
    let extra_state = xml.extra.first().map(|e| e.state.clone());
    let xml_total = xml.rows.len() + xml.extra.iter().map(|e| e.count).sum::<usize>();
    if xml_total != nd.ports.len() {
        bad.push(format!(
            "XML accounts for {xml_total} ports ({} rows + extraports {:?}), NDJSON has {}",
            xml.rows.len(),
            xml.extra,
            nd.ports.len()
        ));
    }
    for (port, row) in &xml.rows {
        match nd.ports.get(port) {
            None => bad.push(format!("port {port}: XML row {row:?}, absent from NDJSON")),
            Some(p) => {
                if p.state != row.state || Some(&p.reason) != row.reason.as_ref() {
                    bad.push(format!(
                        "port {port}: XML {}/{:?}, NDJSON {}/{}",
                        row.state, row.reason, p.state, p.reason
                    ));
                }
                if p.service != row.service {
                    bad.push(format!(
                        "port {port}: XML service {:?}, NDJSON service {:?}",
                        row.service, p.service
                    ));
                }
            }
        }
    }
    let nd_hidden: BTreeSet<u16> = nd
        .ports
        .keys()
        .copied()
        .filter(|p| !xml.rows.contains_key(p))
        .collect();
    if let Some(es) = &extra_state {
        let wrong: Vec<String> = nd_hidden
            .iter()
            .filter(|p| &nd.ports[p].state != es)
            .take(20)
            .map(|p| format!("{p}={}", nd.ports[p].state))
            .collect();
        if !wrong.is_empty() {
            bad.push(format!(
                "ports not listed in the XML are extraports {es}, but NDJSON says {wrong:?}"
            ));
        }
        if let Some(list) = &xml.extra[0].ports
            && list != &nd_hidden
        {
            bad.push(format!(
                "<extrareasons ports=...> lists {} ports, NDJSON has {} unlisted ports (first differences: {:?})",
                list.len(),
                nd_hidden.len(),
                list.symmetric_difference(&nd_hidden).take(20).collect::<Vec<_>>()
            ));
        }
    } else if !nd_hidden.is_empty() {
        bad.push(format!(
            "{} NDJSON ports absent from the XML (no <extraports>)",
            nd_hidden.len()
        ));
    }
    if let Some(g) = gn {
        if g.status.as_deref() != Some("Up") {
            bad.push(format!("gnmap Status: {:?}", g.status));
        }
        let xml_rows: BTreeMap<u16, (String, String)> = xml
            .rows
            .iter()
            .map(|(p, r)| (*p, (r.state.clone(), r.service.clone().unwrap_or_default())))
            .collect();
        if g.rows != xml_rows {
            bad.push(format!(
                "gnmap Ports {:?} != XML rows {:?}",
                g.rows, xml_rows
            ));
        }
        let xml_ignored = xml.extra.first().map(|e| (e.state.clone(), e.count));
        if g.ignored != xml_ignored {
            bad.push(format!(
                "gnmap Ignored State {:?} != XML extraports {:?}",
                g.ignored, xml_ignored
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "output formats disagree:\n  {}",
        bad.join("\n  ")
    );
}

/// NDJSON ports → the harness's PortResult map (for `Lab::mismatches`).
fn as_port_results(ports: &BTreeMap<u16, NdPort>) -> BTreeMap<u16, PortResult> {
    ports
        .iter()
        .map(|(p, r)| {
            (
                *p,
                PortResult {
                    state: r.state.clone(),
                    reason: Some(r.reason.clone()),
                },
            )
        })
        .collect()
}

fn assert_matches_truth(lab: &Lab, what: &str, ports: &BTreeMap<u16, NdPort>, scanned: &[u16]) {
    let bad = lab.mismatches(&as_port_results(ports), scanned, TcpScan::Syn, true);
    assert!(
        bad.is_empty(),
        "{what}: {} port(s) wrong:\n  {}",
        bad.len(),
        bad.iter()
            .take(50)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

// ----- A rawscan running in the background (for signals) ---------------------

struct Bg {
    child: Child,
    pid: libc::pid_t,
    what: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Bg {
    /// Start rawscan in the scanner namespace, stdout/stderr to files in
    /// `dir`.  `ip netns exec` execs the program (no fork), so the child IS
    /// rawscan: this is checked through /proc/PID/exe before returning.
    fn spawn(lab: &Lab, dir: &TempDir, name: &str, args: &[&str]) -> Bg {
        let stdout = dir.path(&format!("{name}.stdout"));
        let stderr = dir.path(&format!("{name}.stderr"));
        let mut cmd = scanner_cmd(lab, dir, RAWSCAN_BIN, args);
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout file"))
            .stderr(File::create(&stderr).expect("create stderr file"))
            .process_group(0);
        let what = format!("rawscan {}", args.join(" "));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
        let pid = child.id() as libc::pid_t;
        let mut bg = Bg {
            child,
            pid,
            what,
            stdout,
            stderr,
        };
        let want = std::fs::canonicalize(RAWSCAN_BIN).expect("canonical rawscan path");
        let t = Instant::now();
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref() == Some(want.as_path()) {
                break;
            }
            if t.elapsed() > Duration::from_secs(5) {
                bg.kill_group();
                panic!("pid {pid} did not become {} (exe {exe:?})", want.display());
            }
            thread::sleep(Duration::from_millis(5));
        }
        bg
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of our own, not yet reaped, child.
        let r = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(r, 0, "kill({}, {sig}) failed", self.pid);
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill_group(&mut self) {
        // SAFETY: the child leads its own process group (process_group(0)).
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn logs(&self) -> String {
        format!(
            "--- stdout (first 3000 bytes) ---\n{}\n--- stderr ---\n{}",
            std::fs::read_to_string(&self.stdout)
                .unwrap_or_default()
                .chars()
                .take(3000)
                .collect::<String>(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Wait for exit; kill the group and panic after `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let t = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return st,
                Ok(None) => {}
                Err(e) => panic!("waiting for {}: {e}", self.what),
            }
            if t.elapsed() > timeout {
                self.kill_group();
                panic!(
                    "TIMEOUT: {} still running after {timeout:?}, killed\n{}",
                    self.what,
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.running() {
            self.kill_group();
        }
    }
}

fn assert_exit_130(bg: &Bg, st: ExitStatus) {
    assert_eq!(
        st.code(),
        Some(130),
        "{}: expected exit code 130 after SIGINT, got {st}\n{}",
        bg.what,
        bg.logs()
    );
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

/// (1) The XML of a lab scan validates against nmap's DTD.
#[test]
fn xml_validates_against_nmap_dtd() {
    let Some(lab) = output_lab(&["xmllint", "python3"]) else {
        return;
    };
    let dir = TempDir::new("dtd");
    let xml = dir.s("f.xml");
    let args = [
        "-sS", "-p", "1-2000", "-n", "--reason", "-oX", &xml, TARGET_IP,
    ];
    let out = rawscan_in(&lab, &dir, &args, DEFAULT_TIMEOUT);
    assert_success("rawscan -oX", &out);
    assert_xml_valid(&dir.path("f.xml"));
    let parsed = parse_xml(&dir.path("f.xml"));
    assert_eq!(
        parsed.finished.get("exit").map(String::as_str),
        Some("success"),
        "finished: {:?}",
        parsed.finished
    );
    // The normal output still goes to stdout with -oX FILE.
    assert!(
        text(&out.stdout).contains("rawscan scan report for 198.18.0.2"),
        "no normal output on stdout:\n{}",
        text(&out.stdout)
    );
}

/// One `[-+]PORT STATE SERVICE` line of ndiff's text output.
fn ndiff_port_line(line: &str) -> Option<(char, u16, String, String)> {
    let sign = line.chars().next().filter(|c| *c == '-' || *c == '+')?;
    let mut w = line[1..].split_whitespace();
    let (port, proto) = w.next()?.split_once('/')?;
    if proto != "tcp" && proto != "udp" {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let state = w.next()?.to_string();
    let service = w.next().unwrap_or("").to_string();
    Some((sign, port, state, service))
}

/// Port-state differences in ndiff's text output (service-only differences
/// and host/address/time details are reported in `notes`, not failures).
fn ndiff_state_differences(diff: &str) -> (Vec<String>, Vec<String>) {
    let mut minus: BTreeMap<u16, (String, String)> = BTreeMap::new();
    let mut plus: BTreeMap<u16, (String, String)> = BTreeMap::new();
    let mut not_shown = (Vec::new(), Vec::new());
    let mut host_state = (Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for line in diff.lines() {
        if let Some((sign, port, state, service)) = ndiff_port_line(line) {
            let m = if sign == '-' { &mut minus } else { &mut plus };
            m.insert(port, (state, service));
        } else if let Some(rest) = line.strip_prefix("-Not shown: ") {
            not_shown.0.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("+Not shown: ") {
            not_shown.1.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("-Host is ") {
            host_state.0.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("+Host is ") {
            host_state.1.push(rest.to_string());
        } else if line.starts_with('-') || line.starts_with('+') {
            notes.push(format!("ignored: {line}"));
        }
    }
    let mut bad = Vec::new();
    if not_shown.0 != not_shown.1 {
        bad.push(format!(
            "'Not shown' differs: nmap {:?}, rawscan {:?}",
            not_shown.0, not_shown.1
        ));
    }
    if host_state.0 != host_state.1 {
        bad.push(format!(
            "host state differs: nmap {:?}, rawscan {:?}",
            host_state.0, host_state.1
        ));
    }
    let all: BTreeSet<u16> = minus.keys().chain(plus.keys()).copied().collect();
    for port in all {
        match (minus.get(&port), plus.get(&port)) {
            (Some((sa, va)), Some((sb, vb))) => {
                if sa != sb {
                    bad.push(format!("port {port}: nmap {sa}, rawscan {sb}"));
                } else if va != vb {
                    notes.push(format!(
                        "service name only: port {port}: nmap {va:?}, rawscan {vb:?}"
                    ));
                }
            }
            (Some((sa, _)), None) => bad.push(format!(
                "port {port}: nmap {sa}, rawscan does not list it (in its 'Not shown' state)"
            )),
            (None, Some((sb, _))) => bad.push(format!(
                "port {port}: rawscan {sb}, nmap does not list it (in its 'Not shown' state)"
            )),
            (None, None) => unreachable!(),
        }
    }
    (bad, notes)
}

#[test]
fn ndiff_parser_self_test() {
    let sample = "-Nmap 7.93 scan initiated X as: nmap\n+Nmap 0.1.0 scan initiated X as: rawscan\n\n\
-198.18.0.2, DA:16:52:79:4B:F5:\n+198.18.0.2:\n-Not shown: 1995 closed ports\n+Not shown: 1994 closed ports\n\
 PORT   STATE    SERVICE VERSION\n-22/tcp open     ssh\n+22/tcp filtered ssh\n-80/tcp open     http\n+80/tcp open     www\n\
-443/tcp open  https\n";
    let (bad, notes) = ndiff_state_differences(sample);
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].contains("Not shown"));
    assert!(bad[1].contains("port 22: nmap open, rawscan filtered"));
    assert!(bad[2].contains("port 443"));
    assert!(notes.iter().any(|n| n.contains("port 80")), "{notes:?}");
    let (bad, _) = ndiff_state_differences(
        "-198.18.0.2, DA:16:52:79:4B:F5:\n+198.18.0.2:\n PORT STATE SERVICE VERSION\n-80/tcp open http\n+80/tcp open www\n",
    );
    assert!(bad.is_empty(), "{bad:?}");
}

/// (2) ndiff between nmap's and rawscan's XML shows no port-state change.
#[test]
fn ndiff_against_nmap_shows_no_state_difference() {
    let Some(lab) = output_lab(&["nmap", "ndiff", "xmllint", "python3"]) else {
        return;
    };
    let dir = TempDir::new("ndiff");
    let nmap_xml = dir.s("nmap.xml");
    let raw_xml = dir.s("rawscan.xml");
    let t = Instant::now();
    let nmap = run_with_timeout(
        scanner_cmd(
            &lab,
            &dir,
            "nmap",
            &[
                "-sS", "-p", "1-2000", "-n", "-Pn", "--reason", "-oX", &nmap_xml, TARGET_IP,
            ],
        ),
        DEFAULT_TIMEOUT,
    );
    eprintln!("nmap: {:.2}s", t.elapsed().as_secs_f64());
    assert_success("nmap", &nmap);
    let args = [
        "-sS", "-p", "1-2000", "-n", "-Pn", "--reason", "-oX", &raw_xml, TARGET_IP,
    ];
    let out = rawscan_in(&lab, &dir, &args, DEFAULT_TIMEOUT);
    assert_success("rawscan", &out);
    assert_xml_valid(&dir.path("rawscan.xml"));

    let diff = run_tool("ndiff", &[&nmap_xml, &raw_xml]);
    let diff_text = text(&diff.stdout);
    assert!(
        matches!(diff.status.code(), Some(0 | 1)),
        "ndiff failed ({}): {}\n{diff_text}",
        diff.status,
        text(&diff.stderr)
    );
    eprintln!("--- ndiff nmap.xml rawscan.xml ---\n{diff_text}---");
    let (bad, notes) = ndiff_state_differences(&diff_text);
    for n in &notes {
        eprintln!("ndiff note: {n}");
    }
    assert!(
        bad.is_empty(),
        "ndiff shows port-state differences between nmap and rawscan:\n  {}\n--- ndiff ---\n{diff_text}",
        bad.join("\n  ")
    );
    // Belt and braces: both XML files, parsed, agree port by port, and nmap
    // itself sees the lab as set up.
    let n = parse_xml(&dir.path("nmap.xml"));
    let r = parse_xml(&dir.path("rawscan.xml"));
    let states = |x: &XmlScan| -> BTreeMap<u16, String> {
        x.rows.iter().map(|(p, r)| (*p, r.state.clone())).collect()
    };
    assert_eq!(
        states(&n),
        states(&r),
        "listed ports differ (nmap, rawscan)"
    );
    let extras = |x: &XmlScan| -> Vec<(String, usize)> {
        x.extra.iter().map(|e| (e.state.clone(), e.count)).collect()
    };
    assert_eq!(extras(&n), extras(&r), "extraports differ (nmap, rawscan)");
}

/// (3) -oG and -oJ parse and agree with -oX port by port; all match the lab.
#[test]
fn grepable_and_ndjson_agree_with_xml() {
    let Some(lab) = output_lab(&["xmllint", "python3"]) else {
        return;
    };
    let dir = TempDir::new("formats");
    let (x, g, j, n) = (
        dir.s("f.xml"),
        dir.s("f.gnmap"),
        dir.s("f.ndjson"),
        dir.s("f.nmap"),
    );
    let ports = range(1, 2000);
    let args = [
        "-sS", "-p", "1-2000", "-n", "--reason", "-oX", &x, "-oG", &g, "-oJ", &j, "-oN", &n,
        TARGET_IP,
    ];
    let out = rawscan_in(&lab, &dir, &args, DEFAULT_TIMEOUT);
    assert_success("rawscan -oX -oG -oJ -oN", &out);
    assert_xml_valid(&dir.path("f.xml"));
    let xml = parse_xml(&dir.path("f.xml"));
    let nd = parse_ndjson(&dir.path("f.ndjson"));
    let gn = parse_gnmap(&dir.path("f.gnmap"));
    assert_eq!(nd.summary["interrupted"], false, "summary: {}", nd.summary);
    assert_eq!(nd.summary["ports_total"], 2000, "summary: {}", nd.summary);
    assert_formats_agree(&xml, &nd, Some(&gn), Some(&ports));
    assert_matches_truth(&lab, "NDJSON", &nd.ports, &ports);
    // The lab's filtered ports are rows, not hidden.
    for p in [81u16, 113, 1500] {
        assert_eq!(
            xml.rows.get(&p).map(|r| r.state.as_str()),
            Some("filtered"),
            "XML port {p}"
        );
    }
    // -oN FILE holds the same normal output as stdout.
    let file_map = tcp_port_map(read(&dir.path("f.nmap")).as_bytes(), &ports);
    let stdout_map = tcp_port_map(&out.stdout, &ports);
    assert_eq!(file_map, stdout_map, "-oN file and stdout differ");
    assert_eq!(
        as_port_results(&nd.ports)
            .into_iter()
            .map(|(p, r)| (p, r.state))
            .collect::<BTreeMap<_, _>>(),
        file_map
            .into_iter()
            .map(|(p, r)| (p, r.state))
            .collect::<BTreeMap<_, _>>(),
        "NDJSON and normal output disagree"
    );

    // -oA BASE writes the four files, consistent with each other.
    let base = dir.s("all");
    let args = [
        "-sS", "-p", "1-2000", "-n", "--reason", "-oA", &base, TARGET_IP,
    ];
    let out = rawscan_in(&lab, &dir, &args, DEFAULT_TIMEOUT);
    assert_success("rawscan -oA", &out);
    for ext in ["nmap", "xml", "gnmap", "ndjson"] {
        assert!(
            dir.path(&format!("all.{ext}")).is_file(),
            "-oA {base}: all.{ext} missing"
        );
    }
    assert_xml_valid(&dir.path("all.xml"));
    let xml = parse_xml(&dir.path("all.xml"));
    let nd = parse_ndjson(&dir.path("all.ndjson"));
    let gn = parse_gnmap(&dir.path("all.gnmap"));
    assert_formats_agree(&xml, &nd, Some(&gn), Some(&ports));
    tcp_port_map(read(&dir.path("all.nmap")).as_bytes(), &ports);

    // `-oJ -`: NDJSON on stdout, and no normal output there.
    let args = ["-sS", "-p", "1-2000", "-n", "-oJ", "-", TARGET_IP];
    let out = rawscan_in(&lab, &dir, &args, DEFAULT_TIMEOUT);
    assert_success("rawscan -oJ -", &out);
    let stdout = text(&out.stdout);
    std::fs::write(dir.path("stdout.ndjson"), &stdout).expect("write");
    assert!(
        !stdout.contains("scan report for"),
        "-oJ - but normal output on stdout too:\n{}",
        stdout.chars().take(3000).collect::<String>()
    );
    let nd = parse_ndjson(&dir.path("stdout.ndjson"));
    assert_matches_truth(&lab, "-oJ - (stdout)", &nd.ports, &ports);
}

/// Union of two NDJSON runs: every port of `all` exactly once.
fn union_exactly_once(a: &Ndjson, b: &Ndjson, all: &[u16]) -> BTreeMap<u16, NdPort> {
    let dup: Vec<u16> = a
        .ports
        .keys()
        .filter(|p| b.ports.contains_key(p))
        .copied()
        .collect();
    assert!(
        dup.is_empty(),
        "{} port(s) reported by both the interrupted and the resumed run (first 30: {:?})",
        dup.len(),
        &dup[..dup.len().min(30)]
    );
    let mut u = a.ports.clone();
    u.extend(b.ports.clone());
    let gaps: Vec<u16> = all.iter().filter(|p| !u.contains_key(p)).copied().collect();
    assert!(
        gaps.is_empty(),
        "{} port(s) in neither run (first 30: {:?}); interrupted run had {}, resumed run {}",
        gaps.len(),
        &gaps[..gaps.len().min(30)],
        a.ports.len(),
        b.ports.len()
    );
    assert_eq!(u.len(), all.len(), "union has ports outside the range");
    u
}

/// (4) SIGINT mid-scan → 130, well-formed partial outputs, resume file;
/// `--resume` finishes; union = full scan, each port exactly once.
#[test]
fn sigint_then_resume_covers_every_port_exactly_once() {
    let Some(lab) = output_lab(&["xmllint", "python3"]) else {
        return;
    };
    let dir = TempDir::new("resume");
    let all = range(1, 65535);
    let (ax, aj, r) = (dir.s("a.xml"), dir.s("a.ndjson"), dir.s("R"));
    let args = [
        "-p",
        "1-65535",
        "--rate",
        "3000",
        "--seed",
        "5",
        "-n",
        "-oX",
        &ax,
        "-oJ",
        &aj,
        "--resume-file",
        &r,
        TARGET_IP,
    ];
    let t = Instant::now();
    let mut bg = Bg::spawn(&lab, &dir, "a", &args);
    thread::sleep(Duration::from_secs(3));
    assert!(bg.running(), "scan ended before SIGINT\n{}", bg.logs());
    bg.signal(libc::SIGINT);
    let t_sig = Instant::now();
    let st = bg.wait(Duration::from_secs(20));
    eprintln!(
        "interrupted run: {:.2}s total, exit {:.2}s after SIGINT",
        t.elapsed().as_secs_f64(),
        t_sig.elapsed().as_secs_f64()
    );
    assert_exit_130(&bg, st);
    let stderr = std::fs::read_to_string(&bg.stderr).unwrap_or_default();
    assert!(
        stderr.to_lowercase().contains("interrupt"),
        "no stderr line about the interruption:\n{stderr}"
    );
    assert!(
        dir.path("R").is_file(),
        "no resume file at {r}\n{}",
        bg.logs()
    );
    assert_xml_valid(&dir.path("a.xml"));
    let a_xml = parse_xml(&dir.path("a.xml"));
    assert_xml_interrupted(&dir.path("a.xml"), &a_xml);
    let a = parse_ndjson(&dir.path("a.ndjson"));
    assert_eq!(
        a.summary["interrupted"], true,
        "a.ndjson summary: {}",
        a.summary
    );
    assert_eq!(
        a.summary["ports_total"], 65535,
        "a.ndjson summary: {}",
        a.summary
    );
    assert!(
        !a.ports.is_empty() && a.ports.len() < 65535,
        "interrupted run decided {} ports: the SIGINT was not mid-scan",
        a.ports.len()
    );
    // Every result so far is in every output.
    assert_formats_agree(&a_xml, &a, None, None);
    eprintln!("interrupted run decided {} ports", a.ports.len());

    let (bx, bj) = (dir.s("b.xml"), dir.s("b.ndjson"));
    let out = rawscan_in(
        &lab,
        &dir,
        &["--resume", &r, "-oJ", &bj, "-oX", &bx],
        DEFAULT_TIMEOUT,
    );
    assert_success("rawscan --resume", &out);
    assert!(
        !dir.path("a.xml.resumed").exists() && !dir.path("a.ndjson.resumed").exists(),
        "output flags were given on the --resume command line, yet .resumed files were written"
    );
    assert_xml_valid(&dir.path("b.xml"));
    let b_xml = parse_xml(&dir.path("b.xml"));
    assert_eq!(
        b_xml.finished.get("exit").map(String::as_str),
        Some("success"),
        "b.xml finished: {:?}",
        b_xml.finished
    );
    let b = parse_ndjson(&dir.path("b.ndjson"));
    assert_eq!(
        b.summary["interrupted"], false,
        "b.ndjson summary: {}",
        b.summary
    );
    let union = union_exactly_once(&a, &b, &all);

    let fj = dir.s("full.ndjson");
    let out = rawscan_in(
        &lab,
        &dir,
        &[
            "-p",
            "1-65535",
            "-T4",
            "-n",
            "-oJ",
            &fj,
            "--resume-file",
            &dir.s("R.full"),
            TARGET_IP,
        ],
        DEFAULT_TIMEOUT,
    );
    assert_success("rawscan full scan", &out);
    let full = parse_ndjson(&dir.path("full.ndjson"));
    assert_eq!(full.ports.len(), 65535, "full scan NDJSON");
    let differ: Vec<String> = all
        .iter()
        .filter(|p| union[p].state != full.ports[p].state)
        .take(50)
        .map(|p| {
            format!(
                "port {p}: interrupted+resumed {} / full {}",
                union[p].state, full.ports[p].state
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "interrupted+resumed scan disagrees with the full scan:\n  {}",
        differ.join("\n  ")
    );
    assert_matches_truth(&lab, "interrupted+resumed", &union, &all);
    assert_matches_truth(&lab, "full scan", &full.ports, &all);
}

/// Resuming without output flags writes the saved paths + `.resumed`.
#[test]
fn resume_without_output_flags_writes_resumed_files() {
    let Some(lab) = output_lab(&["xmllint", "python3"]) else {
        return;
    };
    let dir = TempDir::new("resumed-suffix");
    let all = range(1, 65535);
    let (ax, aj, r) = (dir.s("a.xml"), dir.s("a.ndjson"), dir.s("R"));
    let args = [
        "-p",
        "1-65535",
        "--rate",
        "10000",
        "-n",
        "-oX",
        &ax,
        "-oJ",
        &aj,
        "--resume-file",
        &r,
        TARGET_IP,
    ];
    let mut bg = Bg::spawn(&lab, &dir, "a", &args);
    thread::sleep(Duration::from_millis(1500));
    assert!(bg.running(), "scan ended before SIGINT\n{}", bg.logs());
    bg.signal(libc::SIGTERM);
    let st = bg.wait(Duration::from_secs(20));
    assert_eq!(
        st.code(),
        Some(130),
        "SIGTERM: expected exit 130, got {st}\n{}",
        bg.logs()
    );
    let a = parse_ndjson(&dir.path("a.ndjson"));
    assert_eq!(a.summary["interrupted"], true, "summary: {}", a.summary);
    let out = rawscan_in(&lab, &dir, &["--resume", &r], DEFAULT_TIMEOUT);
    assert_success("rawscan --resume (no output flags)", &out);
    for f in ["a.xml.resumed", "a.ndjson.resumed"] {
        assert!(
            dir.path(f).is_file(),
            "--resume without output flags: {f} not written\n--- stderr ---\n{}",
            text(&out.stderr)
        );
    }
    assert_xml_valid(&dir.path("a.xml.resumed"));
    let b = parse_ndjson(&dir.path("a.ndjson.resumed"));
    // The interrupted run's own files are left as they were.
    let a_again = parse_ndjson(&dir.path("a.ndjson"));
    assert_eq!(
        a_again.ports, a.ports,
        "a.ndjson was modified by the resumed run"
    );
    let union = union_exactly_once(&a, &b, &all);
    assert_matches_truth(&lab, "interrupted(SIGTERM)+resumed", &union, &all);
}

/// (5) A second SIGINT during the drain stops at once; files well-formed.
#[test]
fn second_sigint_exits_at_once_with_wellformed_files() {
    let Some(lab) = output_lab(&["xmllint", "python3"]) else {
        return;
    };
    let dir = TempDir::new("double-sigint");
    let (cx, cj, r) = (dir.s("c.xml"), dir.s("c.ndjson"), dir.s("R"));
    let args = [
        "-p",
        "1-65535",
        "--rate",
        "3000",
        "-n",
        "-oX",
        &cx,
        "-oJ",
        &cj,
        "--resume-file",
        &r,
        TARGET_IP,
    ];
    let mut bg = Bg::spawn(&lab, &dir, "c", &args);
    thread::sleep(Duration::from_secs(2));
    assert!(bg.running(), "scan ended before SIGINT\n{}", bg.logs());
    bg.signal(libc::SIGINT);
    thread::sleep(Duration::from_millis(50));
    assert!(
        bg.running(),
        "exited within 50 ms of the first SIGINT (the contract drains ~0.5 s), cannot test the second\n{}",
        bg.logs()
    );
    bg.signal(libc::SIGINT);
    let t2 = Instant::now();
    let st = bg.wait(Duration::from_secs(20));
    let after = t2.elapsed();
    eprintln!("exit {:.3}s after the second SIGINT", after.as_secs_f64());
    assert_exit_130(&bg, st);
    assert!(
        after < Duration::from_millis(1000),
        "exited {:.3}s after the second SIGINT (want < 1 s)",
        after.as_secs_f64()
    );
    assert_xml_valid(&dir.path("c.xml"));
    let xml = parse_xml(&dir.path("c.xml"));
    assert_xml_interrupted(&dir.path("c.xml"), &xml);
    let nd = parse_ndjson(&dir.path("c.ndjson"));
    assert_eq!(nd.summary["interrupted"], true, "summary: {}", nd.summary);
    assert_formats_agree(&xml, &nd, None, None);
    assert!(
        nd.ports.len() < 65535,
        "{} ports decided: not interrupted",
        nd.ports.len()
    );
}

/// (6) Live progress on a TTY only; `--stats-every` plain lines without one;
/// `-v` "Discovered open port" lines.
#[test]
fn progress_only_on_a_tty_and_stats_lines_without() {
    let Some(lab) = output_lab(&["script"]) else {
        return;
    };
    let dir = TempDir::new("progress");

    // Under a pseudo-terminal (util-linux `script`): stdout+stderr are the pty.
    let cmd = format!("'{RAWSCAN_BIN}' -p 1-65535 --rate 20000 -n {TARGET_IP}");
    let t = Instant::now();
    let out = run_with_timeout(
        scanner_cmd(&lab, &dir, "script", &["-qfec", &cmd, "/dev/null"]),
        DEFAULT_TIMEOUT,
    );
    eprintln!("rawscan under a pty: {:.2}s", t.elapsed().as_secs_f64());
    assert_success("script -qfec rawscan", &out);
    let tty = text(&out.stdout);
    let tail: String = tty
        .chars()
        .rev()
        .take(1500)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let has_percent = tty
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'%');
    for (what, ok) in [
        ("a percentage (digits then %)", has_percent),
        ("'sent'", tty.contains(" sent")),
        ("'pkt/s'", tty.contains("pkt/s")),
        ("'open'", tty.contains(" open")),
        ("'elapsed'", tty.contains("elapsed")),
        ("'ETA'", tty.contains("ETA")),
        (
            "a redraw (\\r or ESC)",
            tty.contains('\r') || tty.contains('\x1b'),
        ),
        ("the report", tty.contains("rawscan done:")),
    ] {
        assert!(
            ok,
            "on a TTY: no {what} in the terminal output; last 1500 chars:\n{tail:?}"
        );
    }

    // Plain pipes: no progress line at all, -v lines present.
    let out = rawscan_in(
        &lab,
        &dir,
        &["-p", "1-65535", "--rate", "20000", "-n", "-v", TARGET_IP],
        DEFAULT_TIMEOUT,
    );
    assert_success("rawscan -v (pipes)", &out);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b') && !stderr.contains("pkt/s"),
        "stderr is not a TTY, yet it has a progress line / escapes:\n{stderr:?}"
    );
    for p in OPEN {
        let line = format!("Discovered open port {p}/tcp on {TARGET_IP}");
        let n = stderr.lines().filter(|l| l.trim_end() == line).count();
        assert_eq!(n, 1, "-v: {line:?} printed {n} times on stderr:\n{stderr}");
    }
    let discovered = stderr
        .lines()
        .filter(|l| l.starts_with("Discovered"))
        .count();
    assert_eq!(discovered, OPEN.len(), "-v: Discovered lines:\n{stderr}");
    assert!(
        !text(&out.stdout).contains("Discovered"),
        "-v lines belong on stderr, found on stdout"
    );

    // --stats-every 1s without a TTY: plain Stats lines.
    let out = rawscan_in(
        &lab,
        &dir,
        &[
            "-p",
            "1-65535",
            "--rate",
            "10000",
            "-n",
            "--stats-every",
            "1s",
            TARGET_IP,
        ],
        DEFAULT_TIMEOUT,
    );
    assert_success("rawscan --stats-every 1s", &out);
    let stderr = text(&out.stderr);
    let stats: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Stats:")).collect();
    assert!(
        !stats.is_empty(),
        "--stats-every 1s on a ~6 s scan: no 'Stats:' line on stderr:\n{stderr}"
    );
    assert!(
        stats.iter().all(|l| l.contains('%')),
        "Stats lines without a percentage: {stats:?}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "--stats-every without a TTY wrote escapes/\\r:\n{stderr:?}"
    );
    eprintln!("{} Stats lines, e.g. {:?}", stats.len(), stats[0]);
}
