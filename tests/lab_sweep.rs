//! Sweeps of many hosts, shards run with GNU parallel, and `rawscan merge`,
//! against the network-namespace lab (see tests/common).
//!
//! Target: local routes make a whole range answer inside the target
//! namespace (`ip route add local RANGE dev lo`; the scanner routes RANGE
//! via the target), and the TCP listeners, bound to 0.0.0.0, answer on
//! every address of it. nftables makes hosts differ:
//! - `SILENT` (a /24): every packet dropped, so its hosts are down (the
//!   sweeps run with `-Pn`: they test the port scan, silent hosts
//!   included; host discovery has its own tests in lab_discovery.rs);
//! - port 81 dropped everywhere (filtered, no-response);
//! - port 113 rejected with ICMP admin-prohibited on `ADMIN` (a /24),
//!   closed elsewhere;
//! - `OPEN` ports open everywhere else, every other port closed.
//!
//! With 34 ports per host, the closed group (29 or 30 ports) passes nmap's
//! 25-port collapse, so the compact report's "Not shown" counts and
//! `<extrareasons ports=...>` lists are exercised on every host.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_sweep -- --nocapture --test-threads=1`
mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const OPEN: &[u16] = &[22, 80, 443];
const DROPPED: u16 = 81;
const ADMIN_PORT: u16 = 113;
/// 1-30 plus 80, 81, 113, 443: 34 ports.
const PORTS: &str = "1-30,80,81,113,443";
const SILENT: &str = "198.18.16.0/24";
const ADMIN: &str = "198.18.17.0/24";
const NMAP_DTD: &str = "/usr/share/nmap/nmap.dtd";

fn ports() -> Vec<u16> {
    (1..=30).chain([80, 81, 113, 443]).collect()
}

/// (host index, first address) of a /N inside 198.18.16.0/20.
fn hosts_of(cidr: &str) -> Vec<Ipv4Addr> {
    let (base, len) = cidr.split_once('/').expect("a CIDR");
    let base: Ipv4Addr = base.parse().expect("an IPv4 address");
    let len: u32 = len.parse().expect("a prefix length");
    let n = 1u32 << (32 - len);
    (0..n)
        .map(|i| Ipv4Addr::from(u32::from(base) + i))
        .collect()
}

fn in_net(ip: Ipv4Addr, cidr: &str) -> bool {
    hosts_of(cidr).first().is_some_and(|first| {
        let len: u32 = cidr.split_once('/').unwrap().1.parse().unwrap();
        let mask = u32::MAX << (32 - len);
        u32::from(ip) & mask == u32::from(*first) & mask
    })
}

/// (state, reason) a correct SYN scan reports.
fn truth(ip: Ipv4Addr, port: u16) -> (&'static str, &'static str) {
    if in_net(ip, SILENT) || port == DROPPED {
        ("filtered", "no-response")
    } else if port == ADMIN_PORT && in_net(ip, ADMIN) {
        ("filtered", "admin-prohibited")
    } else if OPEN.contains(&port) {
        ("open", "syn-ack")
    } else {
        ("closed", "reset")
    }
}

/// A lab whose target answers on every address of `range` (inside
/// 198.18.16.0/20, away from the lab link 198.18.0.0/24).
fn sweep_lab(range: &str, tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_with_tools(tools)?;
    if tools.contains(&"xmllint") && !Path::new(NMAP_DTD).is_file() {
        return unavailable(&format!("{NMAP_DTD} (package nmap-common) is missing"));
    }
    let out = lab.run_in_target("ip", &["route", "add", "local", range, "dev", "lo"]);
    assert_success("ip route add local (target)", &out);
    let out = lab.run_in_scanner("ip", &["route", "add", range, "via", TARGET_IP]);
    assert_success("ip route add via target (scanner)", &out);
    lab.tcp_listen(OPEN);
    lab.icmp_unlimited();
    lab.nft(&format!(
        "add rule inet {NFT_TABLE} input ip daddr {SILENT} drop\n\
         add rule inet {NFT_TABLE} input tcp dport {DROPPED} drop\n\
         add rule inet {NFT_TABLE} input ip daddr {ADMIN} tcp dport {ADMIN_PORT} reject with icmp type admin-prohibited\n"
    ));
    Some(lab)
}

/// A scratch directory per test, removed on success, kept on failure.
struct TempDir(PathBuf);

static TMP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("rawscan-sweep-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }
    fn s(&self, f: &str) -> String {
        self.0.join(f).to_string_lossy().into_owned()
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

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn scan(lab: &Lab, what: &str, args: &[&str]) {
    let t = Instant::now();
    let out = lab.rawscan(args);
    eprintln!("{what}: {:.2}s", t.elapsed().as_secs_f64());
    assert_success(what, &out);
}

fn assert_xml_valid(path: &str) {
    let out = run_with_timeout(
        {
            let mut c = Command::new(find_tool("xmllint").expect("xmllint"));
            c.args(["--noout", "--dtdvalid", NMAP_DTD, path]);
            c
        },
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "xmllint --dtdvalid {NMAP_DTD} {path}: {}",
        text(&out.stderr)
    );
}

type States = BTreeMap<String, BTreeMap<u16, String>>;

/// Every TCP port's state per host in an nmap XML file: `<port>` elements
/// plus the `ports=` lists of `<extrareasons>`.
fn xml_states(path: &str) -> States {
    let doc = read(path);
    // `tag` is what follows "<element " (or a whole tag).
    let attr = |tag: &str, name: &str| -> Option<String> {
        let tag = format!(" {tag}");
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = tag[at..].find('"')?;
        Some(tag[at..at + end].to_string())
    };
    let mut out = States::new();
    for block in doc.split("<host ").skip(1) {
        let block = &block[..block.find("</host>").expect("a closed host")];
        let addr_tag = &block[block.find("<address ").expect("an address")..];
        let ip = attr(addr_tag, "addr").expect("addr");
        let mut ports = BTreeMap::new();
        for p in block.split("<port ").skip(1) {
            let port: u16 = attr(p, "portid").unwrap().parse().unwrap();
            let st = &p[p.find("<state ").unwrap()..];
            assert!(
                ports.insert(port, attr(st, "state").unwrap()).is_none(),
                "{ip} {port} twice in {path}"
            );
        }
        for x in block.split("<extraports ").skip(1) {
            let state = attr(x, "state").unwrap();
            let body = &x[..x.find("</extraports>").unwrap()];
            for r in body.split("<extrareasons ").skip(1) {
                assert_eq!(attr(r, "proto").as_deref(), Some("tcp"));
                for part in attr(r, "ports").unwrap().split(',') {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    for port in a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap() {
                        assert!(
                            ports.insert(port, state.clone()).is_none(),
                            "{ip} {port} twice in {path}"
                        );
                    }
                }
            }
        }
        assert!(
            out.insert(ip.clone(), ports).is_none(),
            "{ip} twice in {path}"
        );
    }
    out
}

/// The `<hosts up= down= total=>` counts.
fn xml_hosts(path: &str) -> (u64, u64, u64) {
    let doc = read(path);
    let tag = &doc[doc.find("<hosts ").expect("runstats hosts")..];
    let num = |name: &str| -> u64 {
        let at = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        tag[at..at + tag[at..].find('"').unwrap()].parse().unwrap()
    };
    (num("up"), num("down"), num("total"))
}

struct Nd {
    /// (ip, port) → (state, reason)
    ports: BTreeMap<(String, u16), (String, String)>,
    scan: Value,
    hosts: BTreeMap<String, Value>,
    summary: Value,
}

/// Read an NDJSON file: one scan line first, port lines (no key twice),
/// host lines, one summary last.
fn ndjson(path: &str) -> Nd {
    let body = read(path);
    let mut nd = Nd {
        ports: BTreeMap::new(),
        scan: Value::Null,
        hosts: BTreeMap::new(),
        summary: Value::Null,
    };
    for (i, line) in body.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{path}:{}: not JSON ({e}): {line}", i + 1));
        assert!(nd.summary.is_null(), "{path}:{}: after the summary", i + 1);
        match v["type"].as_str() {
            Some("scan") => {
                assert_eq!(i, 0, "{path}: scan line not first");
                nd.scan = v;
            }
            Some("port") => {
                let key = (
                    v["ip"].as_str().unwrap().to_string(),
                    v["port"].as_u64().unwrap() as u16,
                );
                let val = (
                    v["state"].as_str().unwrap().to_string(),
                    v["reason"].as_str().unwrap().to_string(),
                );
                assert!(
                    nd.ports.insert(key.clone(), val).is_none(),
                    "{path}: {key:?} twice"
                );
            }
            Some("host") => {
                nd.hosts.insert(v["ip"].as_str().unwrap().to_string(), v);
            }
            Some("summary") => nd.summary = v,
            other => panic!("{path}:{}: type {other:?}", i + 1),
        }
    }
    assert!(!nd.scan.is_null() && !nd.summary.is_null(), "{path}");
    assert_eq!(
        nd.summary["ports_decided"].as_u64(),
        Some(nd.ports.len() as u64),
        "{path}"
    );
    nd
}

/// Mismatches of NDJSON port lines against the truth over `range`.
fn ndjson_mismatches(nd: &Nd, range: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let mut want = 0;
    for ip in hosts_of(range) {
        for port in ports() {
            want += 1;
            let (s, r) = truth(ip, port);
            match nd.ports.get(&(ip.to_string(), port)) {
                Some((gs, gr)) if gs == s && gr == r => {}
                got => bad.push(format!("{ip} {port}: want {s} ({r}), got {got:?}")),
            }
        }
    }
    if nd.ports.len() != want {
        bad.push(format!("{} port lines, want {want}", nd.ports.len()));
    }
    bad
}

/// Mismatches of XML port states against the truth: every host that
/// answered is reported with all its ports, silent hosts are not.
fn xml_mismatches(states: &States, range: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for ip in hosts_of(range) {
        let got = states.get(&ip.to_string());
        if in_net(ip, SILENT) {
            if got.is_some() {
                bad.push(format!("{ip}: silent host reported"));
            }
            continue;
        }
        let Some(got) = got else {
            bad.push(format!("{ip}: not reported"));
            continue;
        };
        for port in ports() {
            let (s, _) = truth(ip, port);
            if got.get(&port).map(String::as_str) != Some(s) {
                bad.push(format!("{ip} {port}: want {s}, got {:?}", got.get(&port)));
            }
        }
        if got.len() != ports().len() {
            bad.push(format!("{ip}: {} ports", got.len()));
        }
    }
    bad
}

fn assert_none(what: &str, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{what}: {} mismatches, first 20:\n  {}",
        bad.len(),
        bad.iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// The normal output's host blocks, without the line that carries the
/// latency (which differs from run to run).
fn normal_blocks(path: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for block in read(path).split("rawscan scan report for ").skip(1) {
        let mut lines = block.lines();
        let ip = lines.next().unwrap().to_string();
        let rest: Vec<String> = lines
            .take_while(|l| !l.is_empty())
            .filter(|l| !l.starts_with("Host is up"))
            .map(str::to_string)
            .collect();
        out.insert(ip, rest);
    }
    out
}

/// A /20 of 4,096 hosts x 34 ports (139,264 pairs): every port of every
/// host exact in NDJSON and XML, and the normal output's collapsed lines.
#[test]
fn sweep_of_a_slash_20_is_exact() {
    let range = "198.18.16.0/20";
    let Some(lab) = sweep_lab(range, &["xmllint"]) else {
        return;
    };
    let dir = TempDir::new("slash20");
    let (x, j, n) = (dir.s("s.xml"), dir.s("s.ndjson"), dir.s("s.nmap"));
    scan(
        &lab,
        "rawscan sweep /20",
        &[
            "-Pn", "-T4", "--rate", "50000", "-p", PORTS, "-v", "-oX", &x, "-oJ", &j, "-oN", &n,
            range,
        ],
    );
    let nd = ndjson(&j);
    assert_none("NDJSON vs truth", &ndjson_mismatches(&nd, range));
    // One host line per host, up exactly when not silent, with its counts.
    assert_eq!(nd.hosts.len(), 4096);
    for ip in hosts_of(range) {
        let h = &nd.hosts[&ip.to_string()];
        let want = if in_net(ip, SILENT) { "down" } else { "up" };
        assert_eq!(h["status"], want, "{h}");
        assert_eq!(h["ports"], 34, "{h}");
        let counted: u64 = h["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["count"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, 34, "{h}");
    }
    assert_xml_valid(&x);
    // -v reports silent hosts too: compare the answering ones to the truth.
    let mut states = xml_states(&x);
    for ip in hosts_of(SILENT) {
        let s = states
            .remove(&ip.to_string())
            .expect("-v reports silent hosts");
        assert!(s.values().all(|v| v == "filtered"), "{ip}: {s:?}");
    }
    assert_none("XML vs truth", &xml_mismatches(&states, range));
    assert_eq!(xml_hosts(&x), (3840, 256, 4096));
    let blocks = normal_blocks(&n);
    assert_eq!(blocks.len(), 4096);
    for ip in hosts_of(range) {
        let b = &blocks[&ip.to_string()];
        let not_shown = b.iter().find(|l| l.starts_with("Not shown:")).cloned();
        let want = if in_net(ip, SILENT) {
            "Not shown: 34 filtered tcp ports (no-response)"
        } else if in_net(ip, ADMIN) {
            "Not shown: 29 closed tcp ports (reset)"
        } else {
            "Not shown: 30 closed tcp ports (reset)"
        };
        assert_eq!(not_shown.as_deref(), Some(want), "{ip}: {b:?}");
    }
}

/// Four shards under GNU parallel, merged, equal the unsharded scan port
/// for port (NDJSON, XML and the normal output's host blocks); the shards
/// are disjoint and each has its own slice.
#[test]
fn shards_under_gnu_parallel_merge_to_the_unsharded_scan() {
    let range = "198.18.16.0/22";
    let Some(lab) = sweep_lab(range, &["xmllint", "parallel"]) else {
        return;
    };
    let dir = TempDir::new("parallel");
    let common = ["-Pn", "-T4", "-p", PORTS, "--seed", "7"];
    let (fx, fj, fn_) = (dir.s("full.xml"), dir.s("full.ndjson"), dir.s("full.nmap"));
    let mut args: Vec<&str> = common.to_vec();
    args.extend([
        "--rate", "50000", "-oX", &fx, "-oJ", &fj, "-oN", &fn_, range,
    ]);
    scan(&lab, "rawscan unsharded", &args);

    // parallel runs the 4 shards at a quarter of the rate each.
    let shard_out = dir.s("shard-{}.ndjson");
    let parallel = find_tool("parallel")
        .expect("parallel")
        .to_string_lossy()
        .into_owned();
    let mut pargs: Vec<&str> = vec![
        "--will-cite",
        "--halt",
        "now,fail=1",
        "-j4",
        RAWSCAN_BIN,
        "--shard",
        "{}/4",
    ];
    pargs.extend(common);
    pargs.extend([
        "--rate", "12500", "-oJ", &shard_out, range, ":::", "1", "2", "3", "4",
    ]);
    let t = Instant::now();
    let out = lab.run_in_scanner(&parallel, &pargs);
    eprintln!("parallel, 4 shards: {:.2}s", t.elapsed().as_secs_f64());
    assert_success("parallel rawscan --shard {}/4", &out);

    let full = ndjson(&fj);
    assert_none(
        "unsharded NDJSON vs truth",
        &ndjson_mismatches(&full, range),
    );
    let shards: Vec<String> = (1..=4)
        .map(|k| dir.s(&format!("shard-{k}.ndjson")))
        .collect();
    let mut union = BTreeMap::new();
    let mut pairs = 0;
    for (k, path) in shards.iter().enumerate() {
        let nd = ndjson(path);
        assert_eq!(nd.scan["shard"], format!("{}/4", k + 1));
        // Each shard counts its own slice.
        let slice = nd.scan["pairs"].as_u64().unwrap();
        assert_eq!(nd.summary["ports_total"].as_u64(), Some(slice));
        assert_eq!(nd.ports.len() as u64, slice, "{path}");
        pairs += slice;
        for (key, v) in nd.ports {
            assert!(
                union.insert(key.clone(), v).is_none(),
                "{key:?} in two shards"
            );
        }
    }
    assert_eq!(pairs, 1024 * 34);
    assert_eq!(
        union, full.ports,
        "the shards' union differs from the unsharded scan"
    );

    let (mx, mj, mn, mg) = (
        dir.s("all.xml"),
        dir.s("all.ndjson"),
        dir.s("all.nmap"),
        dir.s("all.gnmap"),
    );
    let mut margs: Vec<&str> = vec!["merge", "-oX", &mx, "-oJ", &mj, "-oN", &mn, "-oG", &mg];
    margs.extend(shards.iter().map(String::as_str));
    let out = run_with_timeout(
        {
            let mut c = Command::new(RAWSCAN_BIN);
            c.args(&margs);
            c
        },
        DEFAULT_TIMEOUT,
    );
    assert_success("rawscan merge", &out);
    assert!(out.stderr.is_empty(), "merge warned: {}", text(&out.stderr));
    assert_xml_valid(&mx);
    let merged = xml_states(&mx);
    assert_none("merged XML vs truth", &xml_mismatches(&merged, range));
    assert_eq!(merged, xml_states(&fx), "merged XML != unsharded XML");
    assert_eq!(xml_hosts(&mx), xml_hosts(&fx));
    assert_eq!(ndjson(&mj).ports, full.ports);
    assert_eq!(normal_blocks(&mn), normal_blocks(&fn_));
    let gn = read(&mg);
    assert_eq!(
        gn.matches("\tIgnored State: closed (30)").count(),
        768 - 256
    );
    assert_eq!(gn.matches("\tIgnored State: closed (29)").count(), 256);
}

/// --resume inside a shard: shard 1/2 interrupted by SIGINT, resumed from
/// its resume file, plus shard 2/2, merge to the whole scan, every pair
/// exactly once.
#[test]
fn an_interrupted_shard_resumes_and_merges() {
    let range = "198.18.16.0/22";
    let Some(lab) = sweep_lab(range, &[]) else {
        return;
    };
    let dir = TempDir::new("resume");
    let (a, b, c, resume) = (
        dir.s("s1a.ndjson"),
        dir.s("s1b.ndjson"),
        dir.s("s2.ndjson"),
        dir.s("s1.resume"),
    );
    // 17,408 pairs at 2,000 per second: about 9 s, interrupted after 2 s.
    let ip = find_tool("ip").expect("ip");
    let mut cmd = Command::new(&ip);
    cmd.args(["netns", "exec", &lab.scanner_ns, RAWSCAN_BIN])
        .args([
            "-Pn", "--shard", "1/2", "--seed", "9", "-p", PORTS, "--rate", "2000",
        ])
        .args([
            "-oJ",
            &a,
            "-oN",
            "/dev/null",
            "--resume-file",
            &resume,
            range,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn rawscan");
    thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child (ip netns exec execs rawscan).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rawscan did not stop after SIGINT");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "interrupted shard");
    let st: Value = serde_json::from_str(&read(&resume)).expect("resume file JSON");
    assert_eq!(st["shard"], "1/2", "{st}");
    let part = ndjson(&a);
    assert_eq!(part.summary["interrupted"], true);
    assert!(part.ports.len() < 8704, "not interrupted early enough");

    let out = lab.rawscan(&["--resume", &resume, "-oJ", &b, "-oN", "/dev/null"]);
    assert_success("rawscan --resume (shard 1/2)", &out);
    scan(
        &lab,
        "shard 2/2",
        &[
            "-Pn",
            "--shard",
            "2/2",
            "--seed",
            "9",
            "-p",
            PORTS,
            "-T4",
            "--rate",
            "50000",
            "-oJ",
            &c,
            "-oN",
            "/dev/null",
            range,
        ],
    );
    let m = dir.s("all.ndjson");
    let out = run_with_timeout(
        {
            let mut cmd = Command::new(RAWSCAN_BIN);
            cmd.args(["merge", "-oJ", &m, "-oN", "/dev/null", &a, &b, &c]);
            cmd
        },
        DEFAULT_TIMEOUT,
    );
    assert_success("rawscan merge (interrupted + resumed + other shard)", &out);
    let merged = ndjson(&m);
    assert_none("merged NDJSON vs truth", &ndjson_mismatches(&merged, range));
    assert_eq!(merged.summary["interrupted"], false);
    let keys: BTreeSet<_> = merged.ports.keys().collect();
    assert_eq!(keys.len(), 1024 * 34);
}
