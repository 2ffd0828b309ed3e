//! Security promises checked against the network-namespace lab (issue 12):
//! a root scan gives up root and every capability in every thread once
//! probing has started (and becomes the sudo user under sudo); file
//! capabilities are dropped too; an interrupt writes the resume file
//! even when an output fails; forged SYN-ACKs, RSTs and ICMP errors
//! sprayed from the target during a scan change no result.
//! Run: `RAWSCAN_REQUIRE_LAB=1 cargo test --release --test lab_security`
mod common;

use common::*;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rawscan::privs::{Status, parse_status};
use rawscan::resume::ResumeState;
use rawscan::wire::{IpRepr, Transport, emit_packet, flags, icmpv4, tcp};

const OPEN: &[u16] = &[22, 80, 443, 1999, 8080];
const DROPPED: &[u16] = &[81, 1500];
const ADMIN: u16 = 113;
const CAP_DAC_OVERRIDE: u64 = 1 << 1;

fn security_lab(tools: &[&str]) -> Option<Lab> {
    let mut lab = lab_with_tools(tools)?;
    lab.tcp_listen(OPEN);
    lab.drop_tcp(DROPPED);
    lab.reject_admin_prohibited_tcp(&[ADMIN]);
    Some(lab)
}

/// A scratch directory, world-traversable (an unprivileged rawscan may
/// need to reach a binary in it), removed unless the test failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("rawscan-sec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Scratch(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn s(&self, f: &str) -> String {
        self.path(f).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test failed: files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// rawscan running in the background in the scanner namespace; `prefix`
/// programs (env, setpriv) exec into it, so the pid is rawscan's.
struct Running {
    child: Child,
    pid: libc::pid_t,
    stderr: PathBuf,
}

impl Running {
    fn spawn(lab: &Lab, dir: &Scratch, prefix: &[&str], bin: &Path, args: &[&str]) -> Running {
        let ip = find_tool("ip").expect("ip");
        let stderr = dir.path("stderr");
        let mut cmd = Command::new(ip);
        cmd.args(["netns", "exec", &lab.scanner_ns])
            .args(prefix)
            .arg(bin)
            .args(args)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(File::create(dir.path("stdout")).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .process_group(0);
        let child = cmd.spawn().expect("spawn rawscan");
        let pid = child.id() as libc::pid_t;
        let mut r = Running { child, pid, stderr };
        let want = std::fs::canonicalize(bin).unwrap();
        let t = Instant::now();
        while std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .as_deref()
            != Some(&want)
        {
            if t.elapsed() > Duration::from_secs(5) || !r.running() {
                r.kill();
                panic!("pid {pid} did not become {}", want.display());
            }
            thread::sleep(Duration::from_millis(5));
        }
        r
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        // SAFETY: our child leads its own process group.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0);
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if t.elapsed() > timeout {
                self.kill();
                panic!(
                    "rawscan still running after {timeout:?}:\n{}",
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Status of every thread.
    fn threads(&self) -> Vec<(String, Status)> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(format!("/proc/{}/task", self.pid)).unwrap() {
            let p = e.unwrap().path();
            let (Ok(status), Ok(comm)) = (
                std::fs::read_to_string(p.join("status")),
                std::fs::read_to_string(p.join("comm")),
            ) else {
                continue;
            };
            v.push((comm.trim().to_string(), parse_status(&status)));
        }
        v
    }

    /// Children of the scanner (the resume-file writer).
    fn children(&self) -> Vec<libc::pid_t> {
        let path = format!("/proc/{0}/task/{0}/children", self.pid);
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}

/// Wait until `file` has at least one line (a port was decided: probing
/// has started).
fn wait_probing(run: &mut Running, file: &Path) {
    let t = Instant::now();
    loop {
        if std::fs::metadata(file).is_ok_and(|m| m.len() > 0) {
            return;
        }
        assert!(run.running(), "rawscan ended early:\n{}", run.stderr_text());
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no result after 30 s:\n{}",
            run.stderr_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn assert_dropped(run: &Running, uid: u32, gid: u32) -> usize {
    let threads = run.threads();
    assert!(
        threads.len() >= 3,
        "expected the main, sender and receiver threads, got {threads:?}"
    );
    for (name, s) in &threads {
        let ctx = format!("thread {name}: {s:?}\n{}", run.stderr_text());
        assert_eq!(s.uid, vec![uid; 4], "{ctx}");
        assert_eq!(s.gid, vec![gid; 4], "{ctx}");
        assert!(s.groups.is_empty(), "{ctx}");
        assert_eq!((s.cap_prm, s.cap_eff, s.cap_amb), (0, 0, 0), "{ctx}");
        assert!(s.no_new_privs, "{ctx}");
    }
    threads.len()
}

/// A root scan runs as nobody with no capability in any thread once it
/// probes; the forked resume writer keeps only CAP_DAC_OVERRIDE; the
/// interrupt still writes a 0600 root-owned resume file from which the
/// scan resumes.
#[test]
fn root_scan_gives_up_root_in_every_thread() {
    let Some(lab) = security_lab(&[]) else { return };
    let dir = Scratch::new("drop");
    let bin = PathBuf::from(RAWSCAN_BIN);
    let args = [
        "-p",
        "1-30000",
        "--rate",
        "3000",
        "-n",
        "-oJ",
        "a.ndjson",
        "--resume-file",
        "R",
        TARGET_IP,
    ];
    let mut run = Running::spawn(&lab, &dir, &[], &bin, &args);
    wait_probing(&mut run, &dir.path("a.ndjson"));
    let nobody = 65534;
    let n = assert_dropped(&run, nobody, nobody);
    let helpers = run.children();
    assert_eq!(helpers.len(), 1, "one resume-file writer: {helpers:?}");
    let h = parse_status(&std::fs::read_to_string(format!("/proc/{}/status", helpers[0])).unwrap());
    assert_eq!(h.cap_eff & !CAP_DAC_OVERRIDE, 0, "writer: {h:?}");
    assert_eq!(h.cap_prm & !CAP_DAC_OVERRIDE, 0, "writer: {h:?}");
    assert!(h.no_new_privs, "writer: {h:?}");
    eprintln!(
        "{n} threads at uid {nobody}, CapEff 0; writer CapEff {:x}",
        h.cap_eff
    );

    run.signal(libc::SIGINT);
    let st = run.wait(Duration::from_secs(20));
    assert_eq!(st.code(), Some(130), "{}", run.stderr_text());
    let m = std::fs::symlink_metadata(dir.path("R")).expect("resume file written");
    assert!(m.file_type().is_file());
    assert_eq!(
        (m.uid(), m.mode() & 0o777),
        (0, 0o600),
        "resume file owner/mode"
    );
    let state = ResumeState::load(&dir.s("R")).unwrap();
    assert!(
        state.next_index > 0 && state.next_index < 30000,
        "{}",
        state.next_index
    );

    let out = lab.run_in_scanner(
        RAWSCAN_BIN,
        &["--resume", &dir.s("R"), "-oJ", &dir.s("b.ndjson")],
    );
    assert_success("rawscan --resume after a dropped-privilege run", &out);
    let a = parse_ndjson_ports(
        &std::fs::read_to_string(dir.path("a.ndjson")).unwrap(),
        "tcp",
    )
    .unwrap();
    let b = parse_ndjson_ports(
        &std::fs::read_to_string(dir.path("b.ndjson")).unwrap(),
        "tcp",
    )
    .unwrap();
    let both: Vec<&u16> = a.keys().filter(|p| b.contains_key(p)).collect();
    assert!(both.is_empty(), "ports in both runs: {both:?}");
    let mut union = a;
    union.extend(b);
    let ports: Vec<u16> = (1..=30000).collect();
    let bad = lab.mismatches(&union, &ports, TcpScan::Syn, false);
    assert_no_mismatches("interrupted + resumed", &bad, &out);
}

/// Under sudo, the scan becomes the invoking user.
#[test]
fn under_sudo_the_scan_becomes_the_invoking_user() {
    let Some(lab) = security_lab(&[]) else { return };
    let dir = Scratch::new("sudo");
    let bin = PathBuf::from(RAWSCAN_BIN);
    let args = [
        "-p",
        "1-30000",
        "--rate",
        "3000",
        "-n",
        "-oJ",
        "a.ndjson",
        "--resume-file",
        "R",
        TARGET_IP,
    ];
    let prefix = ["env", "SUDO_UID=4242", "SUDO_GID=4243", "SUDO_USER=someone"];
    let mut run = Running::spawn(&lab, &dir, &prefix, &bin, &args);
    wait_probing(&mut run, &dir.path("a.ndjson"));
    assert_dropped(&run, 4242, 4243);
    run.signal(libc::SIGINT);
    assert_eq!(run.wait(Duration::from_secs(20)).code(), Some(130));
    assert_eq!(std::fs::metadata(dir.path("R")).unwrap().uid(), 0);
}

/// With file capabilities (no root), CAP_NET_RAW is used to open the raw
/// sockets and then gone from every thread; the SYN scan is still exact.
#[test]
fn file_capabilities_are_dropped_after_the_sockets_open() {
    let Some(lab) = security_lab(&["setcap", "setpriv"]) else {
        return;
    };
    let dir = Scratch::new("fcaps");
    let tmp = std::ffi::CString::new(dir.0.to_str().unwrap()).unwrap();
    // SAFETY: statvfs with a valid path and out-struct.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(tmp.as_ptr(), &mut vfs) }, 0);
    if vfs.f_flag & libc::ST_NOSUID != 0 {
        unavailable::<()>("the temp directory is mounted nosuid: file capabilities are ignored");
        return;
    }
    let bin = dir.path("rawscan-fcaps");
    std::fs::copy(RAWSCAN_BIN, &bin).unwrap();
    let setcap = find_tool("setcap").unwrap();
    let out = Command::new(setcap)
        .args(["cap_net_raw+ep", bin.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "setcap: {}", text(&out.stderr));
    let setpriv = find_tool("setpriv").unwrap();
    let setpriv = setpriv.to_str().unwrap();
    let prefix = [
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    // Output to stdout only: nobody cannot write the scratch directory.
    let args = [
        "-sS", "-p", "1-30000", "--rate", "3000", "-n", "--reason", "-oJ", "-", TARGET_IP,
    ];
    let mut run = Running::spawn(&lab, &dir, &prefix, &bin, &args);
    wait_probing(&mut run, &dir.path("stdout"));
    assert_dropped(&run, 65534, 65534);
    let st = run.wait(Duration::from_secs(60));
    let stderr = run.stderr_text();
    assert_eq!(st.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("falling back"), "no raw sockets: {stderr}");
    let stdout = std::fs::read_to_string(dir.path("stdout")).unwrap();
    let map = parse_ndjson_ports(&stdout, "tcp").unwrap();
    let ports: Vec<u16> = (1..=30000).collect();
    let bad = lab.mismatches(&map, &ports, TcpScan::Syn, true);
    assert!(bad.is_empty(), "{bad:?}");
}

/// Regression: an output error (`-oJ /dev/full`) skipped the resume file.
#[test]
fn interrupt_writes_the_resume_file_even_when_an_output_fails() {
    let Some(lab) = security_lab(&[]) else { return };
    let dir = Scratch::new("full");
    let bin = PathBuf::from(RAWSCAN_BIN);
    let args = [
        "-p",
        "1-30000",
        "--rate",
        "3000",
        "-n",
        "-oJ",
        "/dev/full",
        "-oX",
        "a.xml",
        "-oN",
        "a.txt",
        "--resume-file",
        "R",
        TARGET_IP,
    ];
    let mut run = Running::spawn(&lab, &dir, &[], &bin, &args);
    thread::sleep(Duration::from_millis(1500));
    assert!(run.running(), "{}", run.stderr_text());
    run.signal(libc::SIGINT);
    let st = run.wait(Duration::from_secs(20));
    let stderr = run.stderr_text();
    assert_eq!(st.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("NDJSON"),
        "the output error is reported:\n{stderr}"
    );
    assert!(stderr.contains("Resume with"), "{stderr}");
    let state = ResumeState::load(&dir.s("R")).expect("a valid resume file");
    assert!(state.next_index > 0);
    // The other outputs were still written in full.
    let xml = std::fs::read_to_string(dir.path("a.xml")).unwrap();
    assert!(xml.trim_end().ends_with("</nmaprun>"), "{xml}");
}

// ----- forged replies ---------------------------------------------------

/// Move the calling thread into a network namespace.
fn setns(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: setns on a valid namespace fd, for this thread only.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
}

/// From the target namespace, send blind forgeries at the scanner as fast
/// as one core allows (up to `stop`): SYN-ACKs and RSTs from every
/// scanned port to random scanner ports with random sequence numbers,
/// and ICMP port-unreachable / admin-prohibited errors quoting random
/// SYNs to those ports.
fn spray(ns: String, ports: Vec<u16>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    setns(&ns);
    // SAFETY: a raw IPv4 socket (IPPROTO_RAW implies IP_HDRINCL).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let scanner: Ipv4Addr = SCANNER_IP.parse().unwrap();
    let target: Ipv4Addr = TARGET_IP.parse().unwrap();
    let dst = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(scanner).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut buf = [0u8; 128];
    let mut quote = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        for &port in &ports {
            let r = rnd();
            let sport = 1024 + (r % (65536 - 1024)) as u16;
            let seq = (r >> 16) as u32;
            let (t4, s4) = (IpAddr::V4(target), IpAddr::V4(scanner));
            let tcp = |flags: u8, buf: &mut [u8]| {
                let seg = tcp::Repr {
                    src_port: port,
                    dst_port: sport,
                    seq,
                    ack: (r >> 32) as u32,
                    flags,
                    window: 1024,
                    ..tcp::Repr::default()
                };
                emit_packet(buf, &IpRepr::probe(t4, s4, 0, 0), &Transport::Tcp(seg)).unwrap()
            };
            let send = |len: usize, buf: &[u8]| {
                // SAFETY: buf[..len] is initialized; dst is a valid sockaddr_in.
                let n = unsafe {
                    libc::sendto(
                        fd,
                        buf.as_ptr().cast(),
                        len,
                        0,
                        (&dst as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                };
                if n > 0 {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            };
            let n = tcp(flags::SYN | flags::ACK, &mut buf);
            send(n, &buf);
            let n = tcp(flags::RST | flags::ACK, &mut buf);
            send(n, &buf);
            // The SYN a port-unreachable would quote: scanner → target.
            let q = emit_packet(
                &mut quote,
                &IpRepr::probe(s4, t4, (seq >> 16) as u16, 0),
                &Transport::Tcp(tcp::Repr {
                    src_port: sport,
                    dst_port: port,
                    seq,
                    flags: flags::SYN,
                    window: 1024,
                    ..tcp::Repr::default()
                }),
            )
            .unwrap();
            let code: u8 = if r & 1 == 0 { 3 } else { 13 };
            let n = emit_packet(
                &mut buf,
                &IpRepr::probe(t4, s4, 0, 0),
                &Transport::Icmpv4(icmpv4::Repr::DstUnreachable {
                    reason: code.into(),
                    next_hop_mtu: 0,
                    quote: &quote[..q.min(28)],
                }),
            )
            .unwrap();
            send(n, &buf);
        }
    }
    // SAFETY: closing our socket.
    unsafe { libc::close(fd) };
}

fn failed_validation(stderr: &str) -> u64 {
    stderr
        .split(" failed validation")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn forged_replies_change_no_result() {
    let Some(lab) = security_lab(&[]) else { return };
    let mut ports: Vec<u16> = (1..=3000).collect();
    ports.extend([8080]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sprayer = {
        let (ns, p, s, n) = (
            lab.target_ns.clone(),
            ports.clone(),
            stop.clone(),
            sent.clone(),
        );
        thread::spawn(move || spray(ns, p, s, n))
    };
    let t = Instant::now();
    while sent.load(Ordering::Relaxed) < 10_000 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the sprayer does not send"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let spec = port_spec(&ports);
    let before = sent.load(Ordering::Relaxed);
    let out = lab.rawscan(&[
        "-sS", "-p", &spec, "--reason", "-n", "-v", "--rate", "5000", TARGET_IP,
    ]);
    let during = sent.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    sprayer.join().unwrap();
    assert_success("SYN scan under a spray of forged replies", &out);
    let map = tcp_port_map(&out.stdout, &ports);
    let bad = lab.mismatches(&map, &ports, TcpScan::Syn, true);
    assert_no_mismatches("SYN scan under a spray of forged replies", &bad, &out);
    let stderr = text(&out.stderr);
    let rejected = failed_validation(&stderr);
    eprintln!("{during} forged packets sent during the scan; {rejected} failed validation");
    assert!(
        during > 10_000,
        "the spray did not overlap the scan ({during} packets)"
    );
    assert!(
        rejected > 1000,
        "forgeries did not reach the scanner's validation ({rejected}):\n{stderr}"
    );
}
