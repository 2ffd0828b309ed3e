//! `-sV` against real daemons from Debian packages in the target namespace
//! (see tests/common and tests/common/tcp_services.rs).
//!
//! The target runs OpenSSH, nginx (HTTP on 80 and on the unusual port 2222,
//! HTTPS on 443 with a self-signed certificate made here), vsftpd, Exim,
//! MariaDB, PostgreSQL, Redis, memcached, dnsmasq (53 TCP and UDP), chronyd
//! (NTP) and snmpd. For every daemon the test asserts that rawscan names the
//! service, and that product and version agree with the daemon's own
//! package version (dpkg-query) and with `nmap -sV` run in the same lab
//! wherever nmap identifies it. A second lab runs hostile services
//! (endless data, silence, garbage, resets) and asserts that `-sV` ends
//! within its per-port limit with a result for each.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_version -- --nocapture`
mod common;

use common::tcp_services::{package_of, revision, upstream};
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TCP_PORTS: &[u16] = &[21, 22, 25, 53, 80, 443, 2222, 3306, 5432, 6379, 11211];
const UDP_PORTS: &[u16] = &[53, 123, 161];

/// One service result, from rawscan's NDJSON or nmap's XML.
#[derive(Clone, Debug, Default, PartialEq)]
struct Svc {
    name: String,
    product: Option<String>,
    version: Option<String>,
    extrainfo: Option<String>,
    tunnel: Option<String>,
    method: String,
    tls_cn: Option<String>,
}

type Key = (String, u16);

fn ndjson_services(text: &str) -> BTreeMap<Key, Svc> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad NDJSON {line:?}: {e}"));
        if v["type"] != "service" {
            continue;
        }
        let s = |k: &str| v[k].as_str().map(str::to_string);
        out.insert(
            (s("proto").unwrap(), v["port"].as_u64().unwrap() as u16),
            Svc {
                name: s("service").unwrap(),
                product: s("product"),
                version: s("version"),
                extrainfo: s("extrainfo"),
                tunnel: s("tunnel"),
                method: s("method").unwrap(),
                tls_cn: v["tls"]["subject_cn"].as_str().map(str::to_string),
            },
        );
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `name="value"` in one tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let end = tag[i..].find('"')?;
    Some(unescape(&tag[i..i + end]))
}

/// The `<service>` of every `<port>` in an nmap(-style) XML document.
fn xml_services(xml: &str) -> BTreeMap<Key, Svc> {
    let mut out = BTreeMap::new();
    for chunk in xml.split("<port ").skip(1) {
        let chunk = &chunk[..chunk.find("</port>").unwrap_or(chunk.len())];
        let head = &chunk[..chunk.find('>').unwrap_or(chunk.len())];
        let (Some(proto), Some(port)) = (
            attr(&format!(" {head}"), "protocol"),
            attr(&format!(" {head}"), "portid"),
        ) else {
            continue;
        };
        let Some(si) = chunk.find("<service ") else {
            continue;
        };
        let tag = &chunk[si..];
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        out.insert(
            (proto, port.parse().unwrap()),
            Svc {
                name: attr(tag, "name").unwrap_or_default(),
                product: attr(tag, "product"),
                version: attr(tag, "version"),
                extrainfo: attr(tag, "extrainfo"),
                tunnel: attr(tag, "tunnel"),
                method: attr(tag, "method").unwrap_or_default(),
                tls_cn: None,
            },
        );
    }
    out
}

/// The first dotted number in a version string (`10.11.19` of
/// `5.5.5-10.11.19-MariaDB…` is not first, so callers compare containment).
fn leading_number(v: &str) -> String {
    v.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect()
}

/// Does rawscan's answer agree with nmap's? Names must be equal; products
/// equal, or one containing the other, or nmap's MySQL for a MariaDB whose
/// name nmap keeps in its version string; versions agree when rawscan's
/// leading version number appears in nmap's version (nmap prefixes
/// MariaDB's with 5.5.5-). When nmap has no version, rawscan may know more.
fn agrees(ours: &Svc, nmap: &Svc) -> Result<(), String> {
    if ours.name != nmap.name || ours.tunnel != nmap.tunnel {
        return Err(format!(
            "service {:?}/{:?} vs nmap {:?}/{:?}",
            ours.tunnel, ours.name, nmap.tunnel, nmap.name
        ));
    }
    let (Some(np), Some(op)) = (&nmap.product, &ours.product) else {
        return if nmap.product.is_some() {
            Err(format!("no product; nmap says {:?}", nmap.product))
        } else {
            Ok(())
        };
    };
    let (npl, opl) = (np.to_lowercase(), op.to_lowercase());
    let nv = nmap.version.clone().unwrap_or_default();
    let product_ok = npl == opl
        || npl.contains(&opl)
        || opl.contains(&npl)
        || (np == "MySQL" && nv.contains(op.as_str()));
    if !product_ok {
        return Err(format!("product {op:?} vs nmap {np:?}"));
    }
    match (&ours.version, &nmap.version) {
        (_, None) => Ok(()),
        // "9.6.0 or later": nmap's lower bound inferred from an error
        // message's source line, not a version the service states.
        (None, Some(v)) if v.ends_with("or later") => Ok(()),
        (None, Some(v)) => Err(format!("no version; nmap says {v:?}")),
        (Some(o), Some(n)) => {
            let core = leading_number(o);
            if !core.is_empty() && n.contains(&core) {
                Ok(())
            } else {
                Err(format!("version {o:?} vs nmap {n:?}"))
            }
        }
    }
}

/// What each daemon must be reported as: (proto, port, service, product,
/// required version prefix from the daemon's package, or None where the
/// protocol does not reveal a version).
fn truth() -> Vec<(
    &'static str,
    u16,
    &'static str,
    &'static str,
    Option<String>,
)> {
    let up = |bin: &str| Some(upstream(&package_of(bin).1));
    let (_, ssh_deb) = package_of("/usr/sbin/sshd");
    vec![
        ("tcp", 21, "ftp", "vsftpd", up("/usr/sbin/vsftpd")),
        (
            "tcp",
            22,
            "ssh",
            "OpenSSH",
            Some(format!(
                "{} Debian {}",
                upstream(&ssh_deb),
                revision(&ssh_deb)
            )),
        ),
        ("tcp", 25, "smtp", "Exim smtpd", up("/usr/sbin/exim4")),
        ("tcp", 53, "domain", "dnsmasq", up("/usr/sbin/dnsmasq")),
        ("tcp", 80, "http", "nginx", up("/usr/sbin/nginx")),
        ("tcp", 443, "http", "nginx", up("/usr/sbin/nginx")),
        ("tcp", 2222, "http", "nginx", up("/usr/sbin/nginx")),
        ("tcp", 3306, "mysql", "MariaDB", up("/usr/sbin/mariadbd")),
        ("tcp", 5432, "postgresql", "PostgreSQL DB", None),
        (
            "tcp",
            6379,
            "redis",
            "Redis key-value store",
            up("/usr/bin/redis-server"),
        ),
        (
            "tcp",
            11211,
            "memcached",
            "Memcached",
            up("/usr/bin/memcached"),
        ),
        ("udp", 53, "domain", "dnsmasq", up("/usr/sbin/dnsmasq")),
        ("udp", 123, "ntp", "NTP", None),
        ("udp", 161, "snmp", "net-snmp", None),
    ]
}

fn start_daemons(lab: &mut Lab) {
    lab.start_dnsmasq();
    lab.start_chronyd();
    lab.start_snmpd();
    lab.start_sshd(&[22]);
    lab.start_nginx(&[80, 2222], 443);
    lab.start_vsftpd();
    lab.start_exim();
    lab.start_redis();
    lab.start_memcached();
    lab.start_mariadb();
    lab.start_postgresql();
}

fn ports_arg() -> String {
    let j = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    format!("T:{},U:{}", j(TCP_PORTS), j(UDP_PORTS))
}

#[test]
fn real_daemons_are_named_with_their_package_versions_and_agree_with_nmap() {
    let Some(mut lab) = lab_with_tools(&[
        "nmap",
        "sshd",
        "nginx",
        "vsftpd",
        "exim4",
        "redis-server",
        "memcached",
        "mariadbd",
        "dnsmasq",
        "chronyd",
        "snmpd",
        "openssl",
        "xmllint",
    ]) else {
        return;
    };
    start_daemons(&mut lab);
    let wd = lab.workdir();
    let (nd, xml, gn) = (wd.join("sv.ndjson"), wd.join("sv.xml"), wd.join("sv.gnmap"));
    let ports = ports_arg();
    let t0 = Instant::now();
    let out = lab.rawscan(&[
        "-sSUV",
        "-p",
        &ports,
        "-T4",
        "-oJ",
        &nd.display().to_string(),
        "-oX",
        &xml.display().to_string(),
        "-oG",
        &gn.display().to_string(),
        TARGET_IP,
    ]);
    let rawscan_time = t0.elapsed();
    assert_success("rawscan -sSUV", &out);
    let normal = text(&out.stdout);
    let ours = ndjson_services(&std::fs::read_to_string(&nd).unwrap());

    let mut bad = Vec::new();
    for (proto, port, name, product, version) in truth() {
        let key = (proto.to_string(), port);
        let Some(s) = ours.get(&key) else {
            bad.push(format!("{port}/{proto}: no service line"));
            continue;
        };
        let want_tunnel = (port == 443).then(|| "ssl".to_string());
        if s.name != name || s.product.as_deref() != Some(product) || s.tunnel != want_tunnel {
            bad.push(format!("{port}/{proto}: {s:?}, want {name} {product}"));
        }
        if s.method != "probed" {
            bad.push(format!("{port}/{proto}: method {}", s.method));
        }
        match (&version, &s.version) {
            (Some(want), Some(got)) if got.starts_with(want.as_str()) => {}
            (None, _) => {}
            (w, g) => bad.push(format!("{port}/{proto}: version {g:?}, package says {w:?}")),
        }
    }
    // TLS facts of 443: the certificate made for the lab.
    let https = &ours[&("tcp".to_string(), 443)];
    if https.tls_cn.as_deref() != Some("lab.rawscan.test") {
        bad.push(format!("443/tcp certificate CN {:?}", https.tls_cn));
    }
    assert!(bad.is_empty(), "rawscan -sV:\n{}\n{normal}", bad.join("\n"));

    // The normal, grepable and XML outputs carry the same facts.
    let (_, ssh_deb) = package_of("/usr/sbin/sshd");
    let ssh_line = format!(
        "22/tcp open ssh OpenSSH {} Debian {} (protocol 2.0)",
        upstream(&ssh_deb),
        revision(&ssh_deb)
    );
    assert!(
        normal
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == ssh_line),
        "no line {ssh_line:?} in\n{normal}"
    );
    let grep = std::fs::read_to_string(&gn).unwrap();
    let ssh_slot = format!(
        "22/open/tcp//ssh//OpenSSH {} Debian {} (protocol 2.0)/",
        upstream(&ssh_deb),
        revision(&ssh_deb)
    );
    assert!(grep.contains(&ssh_slot), "{ssh_slot} not in\n{grep}");
    let doc = std::fs::read_to_string(&xml).unwrap();
    let xml_ours = xml_services(&doc);
    for (k, s) in &ours {
        let x = &xml_ours[k];
        assert_eq!(
            (&x.name, &x.product, &x.version, &x.extrainfo),
            (&s.name, &s.product, &s.version, &s.extrainfo),
            "{k:?}"
        );
    }
    let lint = std::process::Command::new(find_tool("xmllint").unwrap())
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "rawscan -sV XML is not valid against nmap.dtd: {}",
        text(&lint.stderr)
    );

    // nmap -sV over the same ports, in the same lab (TCP and UDP apart:
    // together, nmap's UDP service probes take minutes here).
    let mut theirs = BTreeMap::new();
    let mut nmap_text = String::new();
    let t1 = Instant::now();
    for (kind, list) in [("-sS", TCP_PORTS), ("-sU", UDP_PORTS)] {
        let nxml = wd.join(format!("nmap{kind}.xml"));
        let plist = list
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let nout = lab.run_in_scanner(
            "nmap",
            &[
                kind,
                "-sV",
                "-Pn",
                "-n",
                "-T4",
                "-p",
                &plist,
                "-oX",
                &nxml.display().to_string(),
                TARGET_IP,
            ],
        );
        assert_success("nmap -sV", &nout);
        nmap_text.push_str(&text(&nout.stdout));
        theirs.extend(xml_services(&std::fs::read_to_string(&nxml).unwrap()));
    }
    let nmap_time = t1.elapsed();

    // ndiff reads both documents and lines up the service versions.
    let nd_out = std::process::Command::new(find_tool("ndiff").expect("ndiff"))
        .arg(wd.join("nmap-sS.xml"))
        .arg(&xml)
        .output()
        .unwrap();
    let nd_text = text(&nd_out.stdout);
    assert!(
        matches!(nd_out.status.code(), Some(0 | 1)),
        "ndiff failed: {}",
        text(&nd_out.stderr)
    );
    assert!(
        !nd_text
            .lines()
            .any(|l| l.get(1..).is_some_and(|r| r.starts_with("22/tcp"))),
        "ndiff sees a difference on 22/tcp:\n{nd_text}"
    );
    assert!(
        nd_text
            .lines()
            .any(|l| l.starts_with('+') && l.contains("3306/tcp") && l.contains("MariaDB")),
        "ndiff does not show rawscan's 3306/tcp product:\n{nd_text}"
    );
    let mut compared = 0;
    let mut disagree = Vec::new();
    for (k, s) in &ours {
        let Some(n) = theirs.get(k) else { continue };
        if n.method != "probed" {
            continue; // nmap did not identify it
        }
        compared += 1;
        if let Err(e) = agrees(s, n) {
            disagree.push(format!("{}/{}: {e}", k.1, k.0));
        }
    }
    eprintln!(
        "rawscan -sSUV: {:.2}s; nmap -sV (-sS, then -sU): {:.2}s; compared {compared} services, {} disagree",
        rawscan_time.as_secs_f64(),
        nmap_time.as_secs_f64(),
        disagree.len()
    );
    assert!(
        compared >= 10,
        "nmap identified only {compared} services:\n{nmap_text}"
    );
    assert!(
        disagree.is_empty(),
        "rawscan and nmap disagree:\n{}\nnmap:\n{}\nrawscan:\n{normal}",
        disagree.join("\n"),
        nmap_text
    );

    // Without CAP_NET_RAW: connect + UDP sockets, same answers.
    let np = lab.rawscan_no_raw(&["-sV", "-p", "21,22,443,5432", "-oJ", "-", TARGET_IP]);
    assert_success("rawscan -sV without CAP_NET_RAW", &np);
    let unpriv = ndjson_services(&text(&np.stdout));
    for p in [21, 22, 443, 5432] {
        let k = ("tcp".to_string(), p);
        assert_eq!(unpriv.get(&k), ours.get(&k), "{p}/tcp without privileges");
    }
}

/// Run rawscan in the scanner namespace under a python3 parent whose only
/// child it is, so the parent's RUSAGE_CHILDREN max RSS is rawscan's own
/// peak (KiB). Returns the output and that peak.
fn rawscan_with_peak_rss(lab: &Lab, args: &[&str]) -> (std::process::Output, i64) {
    const WRAP: &str = "import resource, subprocess, sys\n\
r = subprocess.run(sys.argv[1:])\n\
print('maxrss_kib=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
sys.exit(r.returncode)\n";
    let mut full = vec!["-c", WRAP, RAWSCAN_BIN];
    full.extend_from_slice(args);
    let out = lab.run_in_scanner("python3", &full);
    let err = text(&out.stderr);
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {err}"));
    (out, rss)
}

#[test]
fn hostile_services_end_within_the_port_limit() {
    let Some(mut lab) = lab_with_tools(&["python3"]) else {
        return;
    };
    // endless data, silence, binary garbage, reset mid-probe.
    let ports = [40001, 40002, 40003, 40004];
    lab.hostile_tcp(ports[0], ports[1], ports[2], ports[3]);
    let limit = Duration::from_secs(3);
    let t0 = Instant::now();
    let (out, rss) = rawscan_with_peak_rss(
        &lab,
        &[
            "-sSV",
            "--version-timeout",
            "3s",
            "-p",
            "40001-40004",
            "-oJ",
            "-",
            TARGET_IP,
        ],
    );
    let took = t0.elapsed();
    assert_success("rawscan -sV against hostile services", &out);
    let found = ndjson_services(&text(&out.stdout));
    for p in ports {
        let s = found
            .get(&("tcp".to_string(), p))
            .unwrap_or_else(|| panic!("no result for {p}/tcp:\n{}", text(&out.stdout)));
        // Nothing real answered: the port-number name, said so.
        assert_eq!(s.method, "table", "{p}: {s:?}");
    }
    // All four in parallel, each within its limit; the rest is the port
    // scan and process start (generous: the machine is shared).
    assert!(
        took < limit + Duration::from_secs(4),
        "-sV took {took:?} with a {limit:?} per-port limit"
    );
    // Reads are capped: an endless stream does not grow memory.
    assert!(rss < 64 * 1024, "rawscan peaked at {rss} KiB");
    eprintln!(
        "hostile services: {:.2}s, max RSS {rss} KiB",
        took.as_secs_f64()
    );
}
