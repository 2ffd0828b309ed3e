//! Network-namespace LAB for rawscan's integration tests.
//!
//! Every lab is a pair of network namespaces created by this file and joined
//! by a veth pair: the scanner namespace (198.18.0.1) and the target namespace
//! (198.18.0.2), in 198.18.0.0/24, with **no default route** in either.  The
//! host's own network namespace is never touched: the veth ends are created
//! directly inside the lab namespaces.  Tests must scan only `TARGET_IP`.
//!
//! * Names are unique: `rs-<pid>-<n>-s` / `rs-<pid>-<n>-t` (namespaces and the
//!   veth ends inside them, at most 15 characters).  They are deleted by
//!   `Drop`, also when a test panics; leftovers of dead processes (killed
//!   test runs) are deleted when the next lab is built.
//! * Labs are serialised machine-wide by an exclusive `flock` on
//!   `/tmp/rawscan-lab.lock`, held for the whole life of a `Lab` (the machine
//!   has 2 cores and scans are timing-sensitive; several test binaries may run
//!   at once under nextest).  Consequence: never build two labs at once in one
//!   test, it would deadlock.
//! * `lab()` is the one place that decides what happens when the lab cannot
//!   be built: with `RAWSCAN_REQUIRE_LAB=1` the test fails with the reason,
//!   otherwise it prints `skipping: <why>` to stderr and the test returns.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const SCANNER_IP: &str = "198.18.0.1";
pub const TARGET_IP: &str = "198.18.0.2";
const PREFIX_LEN: u8 = 24;
/// IPv6 addresses of an IPv6 lab ([`lab_v6`]), on the same veth ends, in
/// 2001:db8::/64 (documentation prefix), with no default route.
pub const SCANNER_IP6: &str = "2001:db8::1";
pub const TARGET_IP6: &str = "2001:db8::2";
const PREFIX_LEN6: u8 = 64;
/// Kernel default of `net.ipv6.icmp.ratelimit` (ms per token, per peer;
/// measured in the lab: a burst of 6, then one ICMPv6 error per second).
pub const KERNEL_ICMP6_RATELIMIT_MS: u32 = 1000;
/// Name prefix of every namespace this harness (and scripts/bench.sh) creates.
pub const NS_PREFIX: &str = "rs-";
const LOCK_PATH: &str = "/tmp/rawscan-lab.lock";
/// nftables table loaded into the target namespace.
pub const NFT_TABLE: &str = "rawscan_lab";
/// A command run through the lab is killed after this long (a hang must fail
/// the test, not block CI).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Path of the binary under test.
pub const RAWSCAN_BIN: &str = env!("CARGO_BIN_EXE_rawscan");

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Real TCP daemons and hostile services for the -sV tests.
pub mod discovery;
pub mod tcp_services;
pub mod udp_services;

// ---------------------------------------------------------------------------
// The skip-or-fail decision.
// ---------------------------------------------------------------------------

/// True when `RAWSCAN_REQUIRE_LAB=1`: a lab that cannot be built is a failure.
pub fn lab_required() -> bool {
    std::env::var("RAWSCAN_REQUIRE_LAB").is_ok_and(|v| v.trim() == "1")
}

/// THE decision for "the lab (or a tool a test needs) is not available":
/// panics under `RAWSCAN_REQUIRE_LAB=1`, else prints `skipping: <why>` to
/// stderr and returns `None` so the caller can `return`.
pub fn unavailable<T>(why: &str) -> Option<T> {
    if lab_required() {
        panic!("RAWSCAN_REQUIRE_LAB=1 but the network lab cannot be used: {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// Build a lab, or skip/fail (see [`unavailable`]).
///
/// ```ignore
/// let Some(lab) = common::lab() else { return };
/// ```
pub fn lab() -> Option<Lab> {
    lab_with_tools(&[])
}

/// Like [`lab`], but also requires the given programs (e.g. `capsh`, `nmap`).
pub fn lab_with_tools(tools: &[&str]) -> Option<Lab> {
    lab_family(tools, false)
}

/// A dual-stack lab: as [`lab_with_tools`], plus [`SCANNER_IP6`] and
/// [`TARGET_IP6`] on the veth ends; every listener, daemon and nftables
/// rule of the helpers below then covers both families.
pub fn lab_v6(tools: &[&str]) -> Option<Lab> {
    lab_family(tools, true)
}

fn lab_family(tools: &[&str], ipv6: bool) -> Option<Lab> {
    for tool in tools {
        if find_tool(tool).is_none() {
            return unavailable(&format!("`{tool}` is not installed (not found in PATH)"));
        }
    }
    match Lab::new_with(ipv6) {
        Ok(lab) => Some(lab),
        Err(why) => unavailable(&why),
    }
}

/// Find an executable in PATH (plus the sbin directories, which a non-login
/// root shell may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------
// Running commands with a timeout.
// ---------------------------------------------------------------------------

/// Run `cmd` with stdin closed and stdout/stderr captured; kill its whole
/// process group and panic (with what it printed so far) after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
        if start.elapsed() > timeout {
            // The child leads its own process group (process_group(0)).
            // SAFETY: plain kill(2) on the child's process group.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "TIMEOUT: {desc} still running after {timeout:?}, killed.\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Run a setup command; Err carries the command line, status and stderr.
fn run_checked(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<Output, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let desc = format!("{} {}", program.display(), args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{desc}`: {e}"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("writing stdin of `{desc}`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{desc}`: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{desc}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

// ---------------------------------------------------------------------------
// The lab.
// ---------------------------------------------------------------------------

/// Which TCP scan technique a result came from (reasons differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpScan {
    Syn,
    Connect,
}

/// The state rawscan must report for a port, and the reasons accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub state: &'static str,
    pub reasons: &'static [&'static str],
}

/// Listeners bound inside the target namespace plus the thread that accepts
/// (and immediately closes) connections on them, so a connect scan can never
/// fill the accept backlog.
struct Acceptor {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub struct Lab {
    /// `rs-<pid>-<n>`; namespaces are `<id>-s` and `<id>-t`.
    pub id: String,
    pub scanner_ns: String,
    pub target_ns: String,
    /// veth end inside the scanner namespace (same name as the namespace).
    pub scanner_if: String,
    /// veth end inside the target namespace (same name as the namespace).
    pub target_if: String,
    ip: PathBuf,
    nft: PathBuf,
    acceptors: Vec<Acceptor>,
    open_tcp: BTreeSet<u16>,
    dropped_tcp: BTreeSet<u16>,
    admin_prohibited_tcp: BTreeSet<u16>,
    open_udp: BTreeSet<u16>,
    dropped_udp: BTreeSet<u16>,
    admin_prohibited_udp: BTreeSet<u16>,
    /// Dual-stack lab (IPv6 addresses on both ends); otherwise IPv6 is
    /// disabled in both namespaces.
    ipv6: bool,
    /// Service daemons running inside the target namespace (killed first
    /// on drop).
    daemons: Vec<Daemon>,
    /// Scratch directory for daemon configs, pidfiles and state
    /// (`/tmp/rawscan-lab-<id>`), created on first use, removed on drop.
    workdir: Option<PathBuf>,
    /// Held (flock) for the life of the lab; released when dropped last.
    _lock: File,
}

impl Lab {
    /// Create the two namespaces, the veth pair, addresses, `lo` up, an empty
    /// nftables table in the target and `net.ipv4.icmp_ratelimit=0` there.
    /// Blocks until no other lab exists on the machine.
    pub fn new() -> Result<Lab, String> {
        Lab::new_with(false)
    }

    /// [`Lab::new`], dual-stack when `ipv6` (see [`lab_v6`]).
    pub fn new_with(ipv6: bool) -> Result<Lab, String> {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(format!(
                "not root (euid {euid}): network namespaces need root"
            ));
        }
        let ip = find_tool("ip").ok_or("`ip` (iproute2) is not installed")?;
        let nft = find_tool("nft").ok_or("`nft` (nftables) is not installed")?;

        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .map_err(|e| format!("cannot open {LOCK_PATH}: {e}"))?;
        lock.lock()
            .map_err(|e| format!("cannot flock {LOCK_PATH}: {e}"))?;

        cleanup_stale_namespaces(&ip);

        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{NS_PREFIX}{}-{}", std::process::id(), base36(n));
        let scanner_ns = format!("{id}-s");
        let target_ns = format!("{id}-t");
        if scanner_ns.len() > 15 {
            return Err(format!("lab name {scanner_ns} longer than 15 characters"));
        }
        // From here on, Drop deletes whatever was created.
        let mut lab = Lab {
            id,
            scanner_if: scanner_ns.clone(),
            target_if: target_ns.clone(),
            scanner_ns,
            target_ns,
            ip,
            nft,
            acceptors: Vec::new(),
            open_tcp: BTreeSet::new(),
            dropped_tcp: BTreeSet::new(),
            admin_prohibited_tcp: BTreeSet::new(),
            open_udp: BTreeSet::new(),
            dropped_udp: BTreeSet::new(),
            admin_prohibited_udp: BTreeSet::new(),
            ipv6,
            daemons: Vec::new(),
            workdir: None,
            _lock: lock,
        };
        lab.setup()?;
        Ok(lab)
    }

    fn setup(&mut self) -> Result<(), String> {
        let (s, t) = (self.scanner_ns.clone(), self.target_ns.clone());
        let (sif, tif) = (self.scanner_if.clone(), self.target_if.clone());
        let s_addr = format!("{SCANNER_IP}/{PREFIX_LEN}");
        let t_addr = format!("{TARGET_IP}/{PREFIX_LEN}");
        self.ip(&["netns", "add", &s])?;
        self.ip(&["netns", "add", &t])?;
        // Both veth ends are born inside the lab namespaces: the host
        // namespace never sees them.
        self.ip(&[
            "link", "add", &sif, "netns", &s, "type", "veth", "peer", "name", &tif, "netns", &t,
        ])?;
        let s_addr6 = format!("{SCANNER_IP6}/{PREFIX_LEN6}");
        let t_addr6 = format!("{TARGET_IP6}/{PREFIX_LEN6}");
        for (ns, ifname, addr, addr6) in
            [(&s, &sif, &s_addr, &s_addr6), (&t, &tif, &t_addr, &t_addr6)]
        {
            self.ip(&["-n", ns, "link", "set", "lo", "up"])?;
            self.ip(&["-n", ns, "addr", "add", addr, "dev", ifname])?;
            if self.ipv6 {
                // Keep the wire quiet: no router solicitations or
                // advertisements taken, no DAD (addresses usable at once).
                for key in [
                    "accept_ra",
                    "router_solicitations",
                    "accept_dad",
                    "autoconf",
                ] {
                    for dev in ["all", "default", ifname.as_str()] {
                        self.try_sysctl(ns, &format!("net.ipv6.conf.{dev}.{key}"), "0")?;
                    }
                }
                self.try_sysctl(ns, &format!("net.ipv6.conf.{ifname}.disable_ipv6"), "0")?;
                self.ip(&["-n", ns, "addr", "add", addr6, "dev", ifname, "nodad"])?;
            }
            self.ip(&["-n", ns, "link", "set", ifname, "up"])?;
            if !self.ipv6 {
                // Keep the wire quiet (no IPv6 router solicitations, DAD, ...).
                let _ = self.ip(&[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.disable_ipv6=1",
                ]);
            }
        }
        for ns in [&s, &t] {
            for fam in ["-4", "-6"] {
                let out = self.ip(&["-n", ns, fam, "route", "show", "default"])?;
                if !out.stdout.is_empty() {
                    return Err(format!(
                        "namespace {ns} unexpectedly has a default route ({fam})"
                    ));
                }
            }
        }
        if self.ipv6 {
            self.wait_ipv6_up(&s)?;
        }
        self.try_nft(&format!(
            "table inet {NFT_TABLE} {{\n\
             \tchain input {{ type filter hook input priority 0; policy accept; }}\n\
             \tchain output {{ type filter hook output priority 0; policy accept; }}\n\
             }}\n"
        ))?;
        // Per-namespace ICMP rate limit: off, so admin-prohibited (and later
        // port-unreachable) replies are never throttled per peer.
        self.try_sysctl(&t, "net.ipv4.icmp_ratelimit", "0")?;
        if self.ipv6 {
            self.try_sysctl(&t, "net.ipv6.icmp.ratelimit", "0")?;
        }
        Ok(())
    }

    /// Is this a dual-stack lab ([`lab_v6`])?
    pub fn ipv6(&self) -> bool {
        self.ipv6
    }

    /// The target's addresses: [`TARGET_IP`], and [`TARGET_IP6`] in a
    /// dual-stack lab.
    pub fn target_addrs(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::from(TARGET_IP.parse::<Ipv4Addr>().expect("v4"))];
        if self.ipv6 {
            v.push(IpAddr::from(TARGET_IP6.parse::<Ipv6Addr>().expect("v6")));
        }
        v
    }

    /// `net.ipv6.icmp.ratelimit` of the target (ms per ICMPv6 error per
    /// peer; 0 = off).  Dual-stack labs only.
    pub fn set_icmp6_ratelimit(&self, ms: u32) {
        assert!(self.ipv6, "set_icmp6_ratelimit needs a dual-stack lab");
        self.sysctl_target("net.ipv6.icmp.ratelimit", &ms.to_string());
    }

    /// ICMPv6 errors unthrottled: per-peer limit 0 and the (shared with
    /// IPv4) global budget out of reach.
    pub fn icmp6_unlimited(&self) {
        self.set_icmp6_ratelimit(0);
        self.set_icmp_global_limit(100_000_000, 100_000_000);
    }

    /// The kernel's default ICMPv6 limits in the target
    /// (`net.ipv6.icmp.ratelimit=1000`, global 1000/s burst 50), then waits
    /// [`ICMP_REFILL`] so the per-peer bucket is full.
    pub fn icmp6_kernel_default(&self) {
        self.set_icmp6_ratelimit(KERNEL_ICMP6_RATELIMIT_MS);
        self.set_icmp_global_limit(KERNEL_ICMP_MSGS_PER_SEC, KERNEL_ICMP_MSGS_BURST);
        thread::sleep(ICMP_REFILL);
    }

    fn ip(&self, args: &[&str]) -> Result<Output, String> {
        run_checked(&self.ip, args, None)
    }

    // ----- target configuration -------------------------------------------

    /// Open TCP listeners on `ports` IN THE TARGET namespace.  A dedicated
    /// thread `setns()`es into the target, binds the sockets (a socket stays
    /// in the namespace it was created in) and then accepts and closes
    /// connections until the lab is dropped.
    pub fn tcp_listen(&mut self, ports: &[u16]) {
        let ns_path = format!("/run/netns/{}", self.target_ns);
        let ports_v = ports.to_vec();
        let addrs = self.target_bind_addrs();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let handle = thread::spawn(move || {
            let listeners = match bind_in_namespace(&ns_path, &ports_v, &addrs) {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            accept_loop(&listeners, &stop2);
        });
        let res = rx
            .recv()
            .unwrap_or_else(|_| Err("listener thread died".to_string()));
        let acceptor = Acceptor {
            stop,
            handle: Some(handle),
        };
        if let Err(e) = res {
            drop(acceptor);
            panic!("tcp_listen({ports:?}) in {}: {e}", self.target_ns);
        }
        self.acceptors.push(acceptor);
        self.open_tcp.extend(ports);
    }

    /// Addresses the harness's own listeners bind in the target: the IPv4
    /// wildcard (as always), plus [`TARGET_IP6`] in a dual-stack lab (a
    /// specific IPv6 address does not clash with 0.0.0.0 on the same port).
    fn target_bind_addrs(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::from(Ipv4Addr::UNSPECIFIED)];
        if self.ipv6 {
            v.push(IpAddr::from(TARGET_IP6.parse::<Ipv6Addr>().expect("v6")));
        }
        v
    }

    /// Load an nftables script (`nft -f -`) into the TARGET namespace.
    pub fn nft(&self, script: &str) {
        if let Err(e) = self.try_nft(script) {
            panic!("nft in {}: {e}\nscript:\n{script}", self.target_ns);
        }
    }

    fn try_nft(&self, script: &str) -> Result<(), String> {
        let nft = self.nft.to_string_lossy().into_owned();
        run_checked(
            &self.ip,
            &["netns", "exec", &self.target_ns, &nft, "-f", "-"],
            Some(script),
        )
        .map(|_| ())
    }

    /// The target silently drops inbound TCP to these ports (→ filtered,
    /// no-response).
    pub fn drop_tcp(&mut self, ports: &[u16]) {
        self.nft_drop("tcp", ports);
        self.dropped_tcp.extend(ports);
    }

    /// The target answers TCP to `ports` with ICMP admin-prohibited
    /// (type 3 code 13, ICMPv6 1/1) (→ filtered, admin-prohibited).
    pub fn reject_admin_prohibited_tcp(&mut self, ports: &[u16]) {
        self.nft_reject_admin_prohibited("tcp", ports);
        self.admin_prohibited_tcp.extend(ports);
    }

    /// Drop `percent`% of ALL IP packets on the target's veth, independently
    /// in each direction (nftables `numgen random`; this kernel has no netem).
    /// Runs before the port rules (priority -10).  Calling it again replaces
    /// the previous loss rate; 0 removes the loss.
    pub fn random_loss(&self, percent: u8) {
        assert!(percent <= 100);
        let mut script = format!(
            "add chain inet {NFT_TABLE} loss_in {{ type filter hook input priority -10; policy accept; }}\n\
             add chain inet {NFT_TABLE} loss_out {{ type filter hook output priority -10; policy accept; }}\n\
             flush chain inet {NFT_TABLE} loss_in\n\
             flush chain inet {NFT_TABLE} loss_out\n"
        );
        if percent > 0 {
            script += &format!(
                "add rule inet {NFT_TABLE} loss_in iifname \"{tif}\" numgen random mod 100 < {percent} drop\n\
                 add rule inet {NFT_TABLE} loss_out oifname \"{tif}\" numgen random mod 100 < {percent} drop\n",
                tif = self.target_if
            );
        }
        self.nft(&script);
    }

    /// Drop the first `n` SYN-ACKs the target sends from each of its TCP
    /// ports to each scanner address, whatever the scanner's source port
    /// (so a scanner that retries from new source ports and one that
    /// retries from the same one meet the same losses); the later ones
    /// pass.  nftables dynamic sets `synack_1..=n` keyed on (destination
    /// address, source port) in an output chain of the target (priority
    /// -20).  Calling it again forgets the SYN-ACKs already counted and
    /// sets the new `n`; 0 removes the rule.
    pub fn lose_first_syn_acks(&self, n: u8) {
        let t = NFT_TABLE;
        let synack = "tcp flags & (syn | ack) == syn | ack";
        let key = "ip daddr . tcp sport";
        let mut script = format!(
            "add chain inet {t} synack_out {{ type filter hook output priority -20; policy accept; }}\n\
             flush chain inet {t} synack_out\n"
        );
        for k in 1..=n {
            script += &format!(
                "add set inet {t} synack_{k} {{ type ipv4_addr . inet_service; flags dynamic; }}\n\
                 flush set inet {t} synack_{k}\n"
            );
        }
        if n > 0 {
            // Seen n times already: pass.  Seen k < n times: count, drop.
            script += &format!("add rule inet {t} synack_out {synack} {key} @synack_{n} accept\n");
            for k in (1..n).rev() {
                script += &format!(
                    "add rule inet {t} synack_out {synack} {key} @synack_{k} add @synack_{} {{ {key} }} counter drop\n",
                    k + 1
                );
            }
            script += &format!(
                "add rule inet {t} synack_out {synack} add @synack_1 {{ {key} }} counter drop\n"
            );
        }
        self.nft(&script);
    }

    /// SYN-ACKs dropped by [`Lab::lose_first_syn_acks`] since it was last
    /// called (the rules' counters).
    pub fn lost_syn_acks(&self) -> u64 {
        let out = self.run_in_target(
            &self.nft.to_string_lossy(),
            &["list", "chain", "inet", NFT_TABLE, "synack_out"],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "nft list chain synack_out failed: {text}"
        );
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.position(|x| x == "counter")?;
                (w.next()? == "packets").then_some(())?;
                w.next()?.parse::<u64>().ok()
            })
            .sum()
    }

    /// A token-bucket bottleneck on the SCANNER's veth end (its egress, so
    /// the probes queue there): `tc qdisc replace dev <scanner_if> root tbf
    /// rate <rate> burst <burst> latency <latency>`, e.g. `("2mbit",
    /// "16kb", "20ms")`.  This kernel has no netem; tbf is the bottleneck.
    pub fn scanner_tbf(&self, rate: &str, burst: &str, latency: &str) {
        let Some(tc) = find_tool("tc") else {
            panic!("`tc` (iproute2) is not installed");
        };
        let tc = tc.to_string_lossy().into_owned();
        let args = [
            "netns",
            "exec",
            &self.scanner_ns,
            &tc,
            "qdisc",
            "replace",
            "dev",
            &self.scanner_if,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            burst,
            "latency",
            latency,
        ];
        if let Err(e) = self.ip(&args) {
            panic!("tbf on {}: {e}", self.scanner_if);
        }
    }

    /// Counters of the scanner veth's root qdisc (`tc -s qdisc show`), to
    /// prove that a scan really went through the bottleneck.
    pub fn scanner_qdisc_stats(&self) -> QdiscStats {
        let tc = find_tool("tc").expect("`tc` (iproute2) is not installed");
        let tc = tc.to_string_lossy().into_owned();
        let out = self
            .ip(&[
                "netns",
                "exec",
                &self.scanner_ns,
                &tc,
                "-s",
                "qdisc",
                "show",
                "dev",
                &self.scanner_if,
                "root",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        QdiscStats::parse(&text).unwrap_or_else(|| panic!("cannot parse tc -s output:\n{text}"))
    }

    /// `net.ipv4.icmp_ratelimit` in the target namespace (ms between ICMP
    /// errors per peer for the types in icmp_ratemask; 0 = off).
    pub fn set_icmp_ratelimit(&self, ms: u32) {
        self.sysctl_target("net.ipv4.icmp_ratelimit", &ms.to_string());
    }

    /// The per-namespace global ICMP budget (`icmp_msgs_per_sec`,
    /// `icmp_msgs_burst`) of the target, which applies even when
    /// icmp_ratelimit is 0.
    pub fn set_icmp_global_limit(&self, per_sec: u32, burst: u32) {
        self.sysctl_target("net.ipv4.icmp_msgs_per_sec", &per_sec.to_string());
        self.sysctl_target("net.ipv4.icmp_msgs_burst", &burst.to_string());
    }

    pub fn sysctl_target(&self, key: &str, value: &str) {
        if let Err(e) = self.try_sysctl(&self.target_ns, key, value) {
            panic!("{e}");
        }
    }

    pub fn sysctl_scanner(&self, key: &str, value: &str) {
        if let Err(e) = self.try_sysctl(&self.scanner_ns, key, value) {
            panic!("{e}");
        }
    }

    /// Wait until IPv6 works between the namespaces: a TCP connection
    /// from the scanner to a closed port of the target is refused, which
    /// takes Neighbour Discovery both ways. Right after the veth comes up
    /// the target's stack can drop IPv6 for up to about a second (it counted the
    /// scanner's first Neighbour Solicitations as Ip6InNoRoutes), and a
    /// scan started at once found the target down.
    fn wait_ipv6_up(&self, s: &str) -> Result<(), String> {
        let probe = format!("exec 3<>/dev/tcp/{TARGET_IP6}/9");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new(&self.ip)
                .args(["netns", "exec", s, "timeout", "0.5", "bash", "-c", &probe])
                .output()
                .map_err(|e| format!("ip netns exec: {e}"))?;
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("refused") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "IPv6 to {TARGET_IP6} did not come up in 5 s: {err}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_sysctl(&self, ns: &str, key: &str, value: &str) -> Result<(), String> {
        let kv = format!("{key}={value}");
        self.ip(&["netns", "exec", ns, "sysctl", "-q", "-w", &kv])?;
        let out = self.ip(&["netns", "exec", ns, "sysctl", "-n", key])?;
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got != value {
            return Err(format!("sysctl {key} in {ns}: wrote {value}, reads {got}"));
        }
        Ok(())
    }

    // ----- truth -----------------------------------------------------------

    pub fn open_tcp(&self) -> &BTreeSet<u16> {
        &self.open_tcp
    }
    pub fn dropped_tcp(&self) -> &BTreeSet<u16> {
        &self.dropped_tcp
    }
    pub fn admin_prohibited_tcp(&self) -> &BTreeSet<u16> {
        &self.admin_prohibited_tcp
    }

    /// What a correct TCP scan of `port` reports, given how the target was
    /// set up through this struct (raw `nft()` rules are not tracked).
    pub fn expected_tcp(&self, port: u16, scan: TcpScan) -> Expected {
        if self.dropped_tcp.contains(&port) {
            Expected {
                state: "filtered",
                reasons: &["no-response"],
            }
        } else if self.admin_prohibited_tcp.contains(&port) {
            Expected {
                state: "filtered",
                reasons: match scan {
                    TcpScan::Syn => &["admin-prohibited"],
                    // connect(2) sees ICMP 3/13 as EHOSTUNREACH (nmap -sT
                    // says host-unreach); rawscan's connect scan reads the
                    // exact code through IP_RECVERR (lab_ipv6 asserts it).
                    TcpScan::Connect => &["admin-prohibited", "host-unreach"],
                },
            }
        } else if self.open_tcp.contains(&port) {
            Expected {
                state: "open",
                reasons: &["syn-ack"],
            }
        } else {
            Expected {
                state: "closed",
                reasons: match scan {
                    TcpScan::Syn => &["reset"],
                    TcpScan::Connect => &["conn-refused"],
                },
            }
        }
    }

    /// Compare a port map (from [`HostReport::port_map`]) against the truth.
    /// Returns one line per mismatch ("port 81: expected filtered
    /// (no-response), got closed (reset)").  Reasons are compared only when
    /// `check_reasons`.
    pub fn mismatches(
        &self,
        got: &BTreeMap<u16, PortResult>,
        ports: &[u16],
        scan: TcpScan,
        check_reasons: bool,
    ) -> Vec<String> {
        mismatches_against(got, ports, check_reasons, |p| self.expected_tcp(p, scan))
    }

    // ----- running things in the scanner namespace -------------------------

    /// `ip netns exec <scanner> cmd args...` (killed after DEFAULT_TIMEOUT).
    pub fn run_in_scanner(&self, cmd: &str, args: &[&str]) -> Output {
        self.run_in_scanner_timeout(cmd, args, DEFAULT_TIMEOUT)
    }

    pub fn run_in_scanner_timeout(&self, cmd: &str, args: &[&str], timeout: Duration) -> Output {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", &self.scanner_ns, cmd]).args(args);
        run_with_timeout(c, timeout)
    }

    /// `ip netns exec <target> cmd args...` (killed after DEFAULT_TIMEOUT).
    pub fn run_in_target(&self, cmd: &str, args: &[&str]) -> Output {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", &self.target_ns, cmd]).args(args);
        run_with_timeout(c, DEFAULT_TIMEOUT)
    }

    /// Run the rawscan under test in the scanner namespace (as root, with
    /// CAP_NET_RAW), killed after DEFAULT_TIMEOUT.
    pub fn rawscan(&self, args: &[&str]) -> Output {
        self.rawscan_timeout(args, DEFAULT_TIMEOUT)
    }

    pub fn rawscan_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        self.run_in_scanner_timeout(RAWSCAN_BIN, args, timeout)
    }

    /// Run rawscan in the scanner namespace WITHOUT CAP_NET_RAW:
    /// `capsh --drop=cap_net_raw -- -c 'exec "$0" "$@"' rawscan args...`
    /// (the cap leaves the bounding set, so even root cannot get it back on
    /// exec; arguments are passed positionally, no shell quoting involved).
    pub fn rawscan_no_raw(&self, args: &[&str]) -> Output {
        self.run_no_raw(RAWSCAN_BIN, args, DEFAULT_TIMEOUT)
    }

    /// Any command in the scanner namespace without CAP_NET_RAW.
    pub fn run_no_raw(&self, cmd: &str, args: &[&str], timeout: Duration) -> Output {
        let capsh = find_tool("capsh").expect("capsh (libcap2-bin) is not installed");
        let capsh = capsh.to_string_lossy().into_owned();
        let mut full = vec![
            capsh.as_str(),
            "--drop=cap_net_raw",
            "--",
            "-c",
            "exec \"$0\" \"$@\"",
            cmd,
        ];
        full.extend_from_slice(args);
        self.run_in_scanner_timeout(full[0], &full[1..], timeout)
    }

    /// Proves that `run_no_raw` really removes CAP_NET_RAW: CapEff lacks bit
    /// 13 and (when python3 exists) opening a raw socket fails with EPERM.
    /// Panics otherwise.
    pub fn assert_no_raw_really_drops_cap(&self) {
        let out = self.run_no_raw("grep", &["^CapEff:", "/proc/self/status"], DEFAULT_TIMEOUT);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let hex = text.trim().trim_start_matches("CapEff:").trim();
        let caps = u64::from_str_radix(hex, 16)
            .unwrap_or_else(|_| panic!("cannot parse CapEff from {text:?}"));
        assert_eq!(
            caps & (1 << 13),
            0,
            "CAP_NET_RAW still effective under capsh: {text}"
        );
        if find_tool("python3").is_some() {
            let out = self.run_no_raw(
                "python3",
                &[
                    "-c",
                    "import socket\n\
                     try:\n\
                     \x20   socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)\n\
                     \x20   print('RAW-OK')\n\
                     except PermissionError as e:\n\
                     \x20   print('EPERM', e.errno)\n",
                ],
                DEFAULT_TIMEOUT,
            );
            let so = String::from_utf8_lossy(&out.stdout);
            assert!(
                so.contains("EPERM 1"),
                "raw socket creation without CAP_NET_RAW did not fail with EPERM: stdout={so:?} stderr={:?}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// MAC address of a veth end (`ip -n NS link show IF`).
    pub fn mac_of(&self, ns: &str, ifname: &str) -> String {
        let out = self
            .ip(&["-n", ns, "-o", "link", "show", ifname])
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut it = text.split_whitespace();
        while let Some(w) = it.next() {
            if w == "link/ether" {
                return it.next().unwrap_or_default().to_string();
            }
        }
        panic!("no MAC in {text:?}")
    }
}

/// What `tc -s qdisc show` says about a root qdisc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QdiscStats {
    /// "tbf", "noqueue", ...
    pub kind: String,
    pub sent_packets: u64,
    pub dropped: u64,
    pub overlimits: u64,
}

impl QdiscStats {
    /// From `qdisc tbf 8001: root ... \n Sent 3801234 bytes 65538 pkt
    /// (dropped 0, overlimits 12345 requeues 0)`.
    pub fn parse(text: &str) -> Option<QdiscStats> {
        let kind = text
            .lines()
            .find_map(|l| l.strip_prefix("qdisc "))?
            .split_whitespace()
            .next()?
            .to_string();
        let words: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
            .filter(|w| !w.is_empty())
            .collect();
        let before = |name: &str| -> Option<u64> {
            let i = words.iter().position(|w| *w == name)?;
            words.get(i.checked_sub(1)?)?.parse().ok()
        };
        let after = |name: &str| -> Option<u64> {
            let i = words.iter().position(|w| *w == name)?;
            words.get(i + 1)?.parse().ok()
        };
        Some(QdiscStats {
            kind,
            sent_packets: before("pkt")?,
            dropped: after("dropped")?,
            overlimits: after("overlimits")?,
        })
    }
}

// ---------------------------------------------------------------------------
// UDP: services, echo, drops and the ICMP rate limit of the target.
// ---------------------------------------------------------------------------

/// Kernel defaults of the per-peer and global ICMP limits (set explicitly by
/// [`Lab::icmp_kernel_default`]: a namespace's values may differ).
pub const KERNEL_ICMP_RATELIMIT_MS: u32 = 1000;
pub const KERNEL_ICMP_MSGS_PER_SEC: u32 = 1000;
pub const KERNEL_ICMP_MSGS_BURST: u32 = 50;
/// Kernel default `icmp_ratemask` (dest-unreachable, source-quench,
/// time-exceeded, parameter-problem are rate limited).
pub const KERNEL_ICMP_RATEMASK: u32 = 6168;
/// Time for the per-peer ICMP bucket to refill to its burst (6 tokens at
/// one per `icmp_ratelimit` = 1 s), plus a margin.
pub const ICMP_REFILL: Duration = Duration::from_millis(6300);

/// A program running inside the target namespace (`ip netns exec` execs it,
/// so the child IS the daemon).  Dropping it sends SIGTERM to its process
/// group, then SIGKILL after 3 s.  PR_SET_PDEATHSIG kills it if the test
/// process dies without unwinding.
struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: plain kill(2) on the daemon's own process group.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        // SAFETY: as above; harmless if the group is already gone.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Move the CALLING THREAD into the network namespace at `ns_path`.
fn setns_current_thread(ns_path: &str) -> Result<(), String> {
    let ns = File::open(ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
    // SAFETY: setns on a valid fd; only the calling thread changes namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns({ns_path}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn udp_echo_loop(socks: &[UdpSocket], stop: &AtomicBool) {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if n > 0 {
            for s in socks {
                while let Ok((len, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..len], from);
                }
            }
        }
    }
}

/// Probes the harness uses to check that a UDP service really answers
/// (built here, independently of rawscan's payloads, and matched on the
/// request's ID so a stray datagram cannot pass).
pub mod udp_probe {
    /// DNS QUERY version.bind CH TXT (the question rawscan asks).
    pub fn dns(id: u16) -> Vec<u8> {
        let mut v = id.to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(b"\x07version\x04bind\x00");
        v.extend_from_slice(&[0x00, 0x10, 0x00, 0x03]);
        v
    }
    pub fn dns_ok(id: u16, r: &[u8]) -> bool {
        r.len() >= 12 && r[..2] == id.to_be_bytes() && r[2] & 0x80 != 0
    }
    /// NTPv4 client-mode request; the server copies `ts` into the origin
    /// timestamp of its mode-4 reply.
    pub fn ntp(ts: u64) -> Vec<u8> {
        let mut v = vec![0u8; 48];
        v[0] = 0x23;
        v[40..48].copy_from_slice(&ts.to_be_bytes());
        v
    }
    pub fn ntp_ok(ts: u64, r: &[u8]) -> bool {
        r.len() >= 48 && r[0] & 0x07 == 4 && r[24..32] == ts.to_be_bytes()
    }
    /// The request-id actually sent for `rid`: bit 30 set, so the agent's
    /// minimal BER encoding of it keeps all 4 bytes.
    fn snmp_rid(rid: u32) -> [u8; 4] {
        ((rid & 0x3fff_ffff) | 0x4000_0000).to_be_bytes()
    }
    /// SNMPv1 GetRequest sysDescr.0, community "public".
    pub fn snmp(rid: u32) -> Vec<u8> {
        let mut v = vec![0x30, 0x29, 0x02, 0x01, 0x00, 0x04, 0x06];
        v.extend_from_slice(b"public");
        v.extend_from_slice(&[0xA0, 0x1C, 0x02, 0x04]);
        v.extend_from_slice(&snmp_rid(rid));
        v.extend_from_slice(&[0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0E, 0x30, 0x0C]);
        v.extend_from_slice(&[0x06, 0x08, 0x2B, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00]);
        v.extend_from_slice(&[0x05, 0x00]);
        v
    }
    pub fn snmp_ok(rid: u32, r: &[u8]) -> bool {
        let mut want = vec![0x02, 0x04];
        want.extend_from_slice(&snmp_rid(rid));
        // GetResponse-PDU tag, and our request-id in it.
        r.contains(&0xA2) && r.windows(want.len()).any(|w| w == want.as_slice())
    }
}

impl Lab {
    /// Scratch directory of this lab (created on first use, removed on drop).
    pub fn workdir(&mut self) -> PathBuf {
        if let Some(d) = &self.workdir {
            return d.clone();
        }
        let d = std::env::temp_dir().join(format!("rawscan-lab-{}", self.id));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        self.workdir = Some(d.clone());
        d
    }

    /// UDP echo (RFC 862) on `ports` IN THE TARGET namespace: a thread
    /// `setns()`es into the target, binds the sockets and echoes every
    /// datagram until the lab is dropped.
    pub fn udp_echo(&mut self, ports: &[u16]) {
        let ns_path = format!("/run/netns/{}", self.target_ns);
        let ports_v = ports.to_vec();
        let addrs = self.target_bind_addrs();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let handle = thread::spawn(move || {
            let bound = setns_current_thread(&ns_path).and_then(|()| {
                ports_v
                    .iter()
                    .flat_map(|&p| addrs.iter().map(move |&a| (a, p)))
                    .map(|(a, p)| {
                        let s = UdpSocket::bind((a, p))
                            .map_err(|e| format!("bind {a} udp port {p}: {e}"))?;
                        s.set_nonblocking(true)
                            .map_err(|e| format!("nonblocking {p}: {e}"))?;
                        Ok(s)
                    })
                    .collect::<Result<Vec<_>, String>>()
            });
            match bound {
                Ok(socks) => {
                    let _ = tx.send(Ok(()));
                    udp_echo_loop(&socks, &stop2);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let res = rx
            .recv()
            .unwrap_or_else(|_| Err("udp echo thread died".to_string()));
        let acceptor = Acceptor {
            stop,
            handle: Some(handle),
        };
        if let Err(e) = res {
            drop(acceptor);
            panic!("udp_echo({ports:?}) in {}: {e}", self.target_ns);
        }
        self.acceptors.push(acceptor);
        self.open_udp.extend(ports);
        for &p in ports {
            let payload = format!("rawscan-lab echo {p}").into_bytes();
            self.wait_udp_answer(&format!("udp echo {p}"), p, None, |_| {
                let want = payload.clone();
                (
                    payload.clone(),
                    Box::new(move |r: &[u8]| r == want.as_slice()),
                )
            });
        }
    }

    /// The target silently drops inbound UDP to these ports (→ open|filtered,
    /// no-response).
    pub fn drop_udp(&mut self, ports: &[u16]) {
        self.nft_drop("udp", ports);
        self.dropped_udp.extend(ports);
    }

    /// The target answers UDP to `port` with ICMP admin-prohibited
    /// (type 3 code 13) (→ filtered, admin-prohibited).
    pub fn reject_admin_prohibited_udp(&mut self, port: u16) {
        self.nft_reject_admin_prohibited("udp", &[port]);
        self.admin_prohibited_udp.insert(port);
    }

    /// Drop inbound `proto` ("tcp"/"udp") to `ports` in the target.
    fn nft_drop(&mut self, proto: &str, ports: &[u16]) {
        if !ports.is_empty() {
            self.nft(&format!(
                "add rule inet {NFT_TABLE} input {proto} dport {{ {} }} drop\n",
                join(ports)
            ));
        }
    }

    /// Answer inbound `proto` to `ports` with ICMP admin-prohibited.
    fn nft_reject_admin_prohibited(&mut self, proto: &str, ports: &[u16]) {
        // In an inet table, `reject with icmp ...` applies to IPv4 only;
        // IPv6 needs its own rule (ICMPv6 type 1 code 1).
        let set = join(ports);
        self.nft(&format!(
            "add rule inet {NFT_TABLE} input {proto} dport {{ {set} }} reject with icmp type admin-prohibited\n\
             add rule inet {NFT_TABLE} input meta nfproto ipv6 {proto} dport {{ {set} }} reject with icmpv6 type admin-prohibited\n"
        ));
    }

    /// Start `program args...` inside the target namespace, output to
    /// `<workdir>/<name>.log`.
    fn spawn_daemon(
        &mut self,
        name: &str,
        program: &str,
        args: &[String],
        envs: &[(&str, String)],
    ) {
        let path = find_tool(program)
            .unwrap_or_else(|| panic!("`{program}` is not installed (needed for {name})"));
        let log = self.workdir().join(format!("{name}.log"));
        let log_file = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let log_err = log_file.try_clone().expect("clone log fd");
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.target_ns])
            .arg(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .process_group(0);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs in pre_exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", path.display()));
        self.daemons.push(Daemon {
            name: name.to_string(),
            child,
            log,
        });
    }

    /// Until `timeout` (15 s) passes: send the probe `make(i)` returns to
    /// `port` from the scanner namespace and accept the first reply its
    /// check passes.  Panics (with the daemon's log) on failure or when the
    /// daemon `daemon` (index in self.daemons) exits.
    fn wait_udp_answer(
        &mut self,
        what: &str,
        port: u16,
        daemon: Option<usize>,
        make: impl Fn(u32) -> (Vec<u8>, Box<dyn Fn(&[u8]) -> bool>),
    ) {
        let start = Instant::now();
        // First wait until the port is bound, so the checks below do not
        // draw ICMP port-unreachables (they would spend the target's ICMP
        // budget before the test sets its rate limit).
        loop {
            if let Some(d) = daemon.and_then(|i| self.daemons.get_mut(i))
                && let Ok(Some(status)) = d.child.try_wait()
            {
                panic!(
                    "{what}: {} exited ({status}) before binding {port}/udp; its log:\n{}",
                    d.name,
                    d.log_text()
                );
            }
            if self.udp_bound_in_target(port) {
                break;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let log = daemon
                    .and_then(|i| self.daemons.get(i))
                    .map(|d| d.log_text())
                    .unwrap_or_default();
                panic!("{what}: {port}/udp not bound in the target after 15 s; log:\n{log}");
            }
            thread::sleep(Duration::from_millis(50));
        }
        for dst in self.target_addrs() {
            self.wait_udp_answer_from(what, dst, port, daemon, &make, start);
        }
    }

    /// The answering half of [`Lab::wait_udp_answer`], for one target
    /// address.
    fn wait_udp_answer_from(
        &mut self,
        what: &str,
        dst: IpAddr,
        port: u16,
        daemon: Option<usize>,
        make: &impl Fn(u32) -> (Vec<u8>, Box<dyn Fn(&[u8]) -> bool>),
        start: Instant,
    ) {
        let mut last;
        for i in 1u32.. {
            if let Some(d) = daemon.and_then(|i| self.daemons.get_mut(i))
                && let Ok(Some(status)) = d.child.try_wait()
            {
                panic!(
                    "{what}: {} exited ({status}) before answering on {port}/udp; its log:\n{}",
                    d.name,
                    d.log_text()
                );
            }
            let (payload, ok) = make(i.wrapping_mul(0x9E37_79B9) | 1);
            match self.udp_query_to(dst, port, &payload, Duration::from_millis(300)) {
                Ok(r) if ok(&r) => return,
                Ok(r) => last = format!("unexpected reply {:02x?}", &r[..r.len().min(64)]),
                Err(e) => last = e,
            }
            if start.elapsed() > Duration::from_secs(15) {
                let log = daemon
                    .and_then(|i| self.daemons.get(i))
                    .map(|d| d.log_text())
                    .unwrap_or_default();
                panic!(
                    "{what}: no valid answer on {}/udp after 15 s ({last}); log:\n{log}",
                    SocketAddr::new(dst, port)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Send one datagram from the scanner namespace (198.18.0.1, a fresh
    /// connected UDP socket) to TARGET_IP:`port` and return the first reply.
    pub fn udp_query(
        &self,
        port: u16,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let dst = IpAddr::from(TARGET_IP.parse::<Ipv4Addr>().expect("v4"));
        self.udp_query_to(dst, port, payload, timeout)
    }

    /// [`Lab::udp_query`] to `dst` (TARGET_IP or TARGET_IP6), from the
    /// scanner's address of the same family.
    pub fn udp_query_to(
        &self,
        dst: IpAddr,
        port: u16,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let ns_path = format!("/run/netns/{}", self.scanner_ns);
        let payload = payload.to_vec();
        let src: IpAddr = if dst.is_ipv6() {
            SCANNER_IP6.parse().expect("v6")
        } else {
            SCANNER_IP.parse().expect("v4")
        };
        thread::spawn(move || -> Result<Vec<u8>, String> {
            setns_current_thread(&ns_path)?;
            let s = UdpSocket::bind((src, 0)).map_err(|e| format!("bind: {e}"))?;
            s.connect((dst, port))
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(timeout))
                .map_err(|e| format!("timeout: {e}"))?;
            s.send(&payload).map_err(|e| format!("send: {e}"))?;
            let mut buf = vec![0u8; 65_536];
            let n = s.recv(&mut buf).map_err(|e| format!("recv: {e}"))?;
            buf.truncate(n);
            Ok(buf)
        })
        .join()
        .unwrap_or_else(|_| Err("udp query thread panicked".to_string()))
    }

    /// dnsmasq on 53/udp (and, as dnsmasq always does, 53/tcp) of the
    /// target, no upstream, answering `version.bind`.  Waits until it
    /// answers a version.bind CH TXT query.
    pub fn start_dnsmasq(&mut self) {
        let wd = self.workdir();
        let args: Vec<String> = [
            "--no-daemon",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=53",
            &format!("--listen-address={TARGET_IP}"),
            "--bind-interfaces",
            &format!("--pid-file={}", wd.join("dnsmasq.pid").display()),
            "--user=root",
            "--group=root",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(self.ipv6.then(|| format!("--listen-address={TARGET_IP6}")))
        .collect();
        self.spawn_daemon("dnsmasq", "dnsmasq", &args, &[]);
        let idx = self.daemons.len() - 1;
        self.wait_udp_answer("dnsmasq", 53, Some(idx), |i| {
            let id = i as u16;
            (
                udp_probe::dns(id),
                Box::new(move |r: &[u8]| udp_probe::dns_ok(id, r)),
            )
        });
        self.open_udp.insert(53);
        self.open_tcp.insert(53);
    }

    /// chronyd serving NTP on 123/udp of the target (unsynchronised, no
    /// sources, no clock control, no command port).  Waits until it answers
    /// a client-mode request.
    pub fn start_chronyd(&mut self) {
        let wd = self.workdir();
        let conf = wd.join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port 123\nbindaddress {TARGET_IP}\n{}allow all\ncmdport 0\nbindcmdaddress /\n\
                 pidfile {}\ndriftfile {}\n",
                if self.ipv6 {
                    format!("bindaddress {TARGET_IP6}\n")
                } else {
                    String::new()
                },
                wd.join("chronyd.pid").display(),
                wd.join("chrony.drift").display()
            ),
        )
        .expect("write chrony.conf");
        let family = if self.ipv6 {
            [].as_slice()
        } else {
            ["-4"].as_slice()
        };
        let args: Vec<String> = family
            .iter()
            .chain(&["-d", "-x", "-u", "root", "-f"])
            .map(|s| s.to_string())
            .chain([conf.display().to_string()])
            .collect();
        self.spawn_daemon("chronyd", "chronyd", &args, &[]);
        let idx = self.daemons.len() - 1;
        self.wait_udp_answer("chronyd", 123, Some(idx), |i| {
            let ts = (u64::from(i) << 32) | u64::from(!i);
            (
                udp_probe::ntp(ts),
                Box::new(move |r: &[u8]| udp_probe::ntp_ok(ts, r)),
            )
        });
        self.open_udp.insert(123);
    }

    /// snmpd (SNMPv1/v2c, rocommunity public) on 161/udp of the target; no
    /// SMUX (so no 199/tcp), state and config under the lab's workdir.
    /// Waits until it answers a GetRequest for sysDescr.0.
    pub fn start_snmpd(&mut self) {
        let wd = self.workdir();
        let conf = wd.join("snmpd.conf");
        let conf_text = if self.ipv6 {
            "rocommunity public\nrocommunity6 public\n"
        } else {
            "rocommunity public\n"
        };
        std::fs::write(&conf, conf_text).expect("write snmpd.conf");
        let mut agent = format!("udp:{TARGET_IP}:161");
        if self.ipv6 {
            agent += &format!(",udp6:[{TARGET_IP6}]:161");
        }
        let args: Vec<String> = [
            "-f",
            "-Lo",
            "-C",
            "-c",
            &conf.display().to_string(),
            "-p",
            &wd.join("snmpd.pid").display().to_string(),
            "-I",
            "-smux",
            &agent,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let envs = [
            ("SNMP_PERSISTENT_DIR", wd.join("snmp").display().to_string()),
            ("SNMPCONFPATH", wd.display().to_string()),
            ("MIBDIRS", wd.join("no-mibs").display().to_string()),
            ("MIBS", String::new()),
        ];
        self.spawn_daemon("snmpd", "snmpd", &args, &envs);
        let idx = self.daemons.len() - 1;
        self.wait_udp_answer("snmpd", 161, Some(idx), |rid| {
            (
                udp_probe::snmp(rid),
                Box::new(move |r: &[u8]| udp_probe::snmp_ok(rid, r)),
            )
        });
        self.open_udp.insert(161);
    }

    /// The standard UDP target: echo on 7 (harness thread), dnsmasq on 53,
    /// chronyd on 123, snmpd on 161, each checked to answer.
    pub fn start_udp_services(&mut self) {
        self.udp_echo(&[7]);
        self.start_dnsmasq();
        self.start_chronyd();
        self.start_snmpd();
    }

    /// Switch the target's ICMP rate limits off: no per-peer limit and a
    /// global budget no scan can exhaust.
    pub fn icmp_unlimited(&self) {
        self.set_icmp_ratelimit(0);
        self.set_icmp_global_limit(100_000_000, 100_000_000);
    }

    /// The kernel's default ICMP limits in the target (~1 error per second
    /// per peer after a burst of ~6): icmp_ratelimit=1000,
    /// icmp_msgs_per_sec=1000, icmp_msgs_burst=50, icmp_ratemask=6168.
    ///
    /// Then waits [`ICMP_REFILL`] so the per-peer token bucket for the
    /// scanner is full (burst of 6), as for a host nobody has probed for a
    /// while: every ICMP error sent while `icmp_ratelimit` was 0 left that
    /// bucket EMPTY (tokens = 0, refilled at 1 per second from then on).
    /// Use [`Lab::drain_icmp_budget`] to start a scan with an empty bucket.
    pub fn icmp_kernel_default(&self) {
        self.sysctl_target("net.ipv4.icmp_ratemask", &KERNEL_ICMP_RATEMASK.to_string());
        self.set_icmp_ratelimit(KERNEL_ICMP_RATELIMIT_MS);
        self.set_icmp_global_limit(KERNEL_ICMP_MSGS_PER_SEC, KERNEL_ICMP_MSGS_BURST);
        thread::sleep(ICMP_REFILL);
    }

    /// Empty the target's per-peer ICMP token bucket for the scanner, as a
    /// scan that just ended (or any other prober) leaves it: 20 datagrams
    /// to the closed port `closed_port` from the scanner, then 100 ms for
    /// the errors to arrive.  The next ICMP error comes ~1 s later.
    pub fn drain_icmp_budget(&self, closed_port: u16) {
        assert_eq!(
            self.expected_udp(closed_port).state,
            "closed",
            "drain_icmp_budget needs a closed port"
        );
        let ns_path = format!("/run/netns/{}", self.scanner_ns);
        thread::spawn(move || -> Result<(), String> {
            setns_current_thread(&ns_path)?;
            let s = UdpSocket::bind((SCANNER_IP, 0)).map_err(|e| format!("bind: {e}"))?;
            for _ in 0..20 {
                s.send_to(b"drain", (TARGET_IP, closed_port))
                    .map_err(|e| format!("send: {e}"))?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err("drain thread panicked".to_string()))
        .unwrap_or_else(|e| panic!("drain_icmp_budget: {e}"));
        thread::sleep(Duration::from_millis(100));
    }

    /// Is some socket in the target bound to `port`/udp (`ss -Hlnu`)?
    pub fn udp_bound_in_target(&self, port: u16) -> bool {
        let out = self.run_in_target("ss", &["-Hlnu"]);
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|local| local.rsplit_once(':'))
                .is_some_and(|(_, p)| p == port.to_string())
        })
    }

    pub fn open_udp(&self) -> &BTreeSet<u16> {
        &self.open_udp
    }
    pub fn dropped_udp(&self) -> &BTreeSet<u16> {
        &self.dropped_udp
    }
    pub fn admin_prohibited_udp(&self) -> &BTreeSet<u16> {
        &self.admin_prohibited_udp
    }

    /// What a correct UDP scan (raw or connected sockets) of `port` reports.
    pub fn expected_udp(&self, port: u16) -> Expected {
        if self.dropped_udp.contains(&port) {
            Expected {
                state: "open|filtered",
                reasons: &["no-response"],
            }
        } else if self.admin_prohibited_udp.contains(&port) {
            Expected {
                state: "filtered",
                reasons: &["admin-prohibited"],
            }
        } else if self.open_udp.contains(&port) {
            Expected {
                state: "open",
                reasons: &["udp-response"],
            }
        } else {
            Expected {
                state: "closed",
                reasons: &["port-unreach"],
            }
        }
    }

    /// [`Lab::mismatches`] for UDP.
    pub fn mismatches_udp(
        &self,
        got: &BTreeMap<u16, PortResult>,
        ports: &[u16],
        check_reasons: bool,
    ) -> Vec<String> {
        mismatches_against(got, ports, check_reasons, |p| self.expected_udp(p))
    }

    /// The sockets listening in the target (`ss -ln`, loopback excluded)
    /// must be exactly the open ports of the truth: no daemon opened
    /// something the truth does not know about.
    pub fn assert_listeners_match_truth(&self) {
        for (flag, proto, want) in [
            ("-Hlnt", "tcp", &self.open_tcp),
            ("-Hlnu", "udp", &self.open_udp),
        ] {
            let out = self.run_in_target("ss", &[flag]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let mut got = BTreeSet::new();
            for line in text.lines() {
                let Some(local) = line.split_whitespace().nth(3) else {
                    continue;
                };
                let Some((addr, port)) = local.rsplit_once(':') else {
                    continue;
                };
                if addr.starts_with("127.") || addr.contains("::1") {
                    continue;
                }
                if let Ok(p) = port.parse::<u16>() {
                    got.insert(p);
                }
            }
            assert_eq!(
                &got, want,
                "{proto} listeners in the target differ from the truth:\n{text}"
            );
        }
    }
}

/// Parse `stdout` and return the port map for TARGET_IP/`proto`,
/// panicking with the whole output on any parse error.
pub fn port_map_of(stdout: &[u8], proto: &str, scanned: &[u16]) -> BTreeMap<u16, PortResult> {
    port_map_for(stdout, TARGET_IP, proto, scanned)
}

/// [`port_map_of`] for the host `target` (e.g. [`TARGET_IP6`]).
pub fn port_map_for(
    stdout: &[u8],
    target: &str,
    proto: &str,
    scanned: &[u16],
) -> BTreeMap<u16, PortResult> {
    let text = String::from_utf8_lossy(stdout);
    let parsed = parse_normal(&text).unwrap_or_else(|e| panic!("cannot parse output: {e}\n{text}"));
    let host = parsed
        .host(target)
        .unwrap_or_else(|e| panic!("{e}\n--- output ---\n{text}"));
    host.port_map(proto, scanned)
        .unwrap_or_else(|e| panic!("{e}\n--- output ---\n{text}"))
}

pub fn udp_port_map(stdout: &[u8], scanned: &[u16]) -> BTreeMap<u16, PortResult> {
    port_map_of(stdout, "udp", scanned)
}

/// Port lines of rawscan's NDJSON stream (`-oJ`) for TARGET_IP/`proto`:
/// port → state and reason.  Errors on malformed JSON or a port reported
/// twice.
pub fn parse_ndjson_ports(text: &str, proto: &str) -> Result<BTreeMap<u16, PortResult>, String> {
    parse_ndjson_ports_for(text, TARGET_IP, proto)
}

/// [`parse_ndjson_ports`] for the host `ip` (e.g. [`TARGET_IP6`]).
pub fn parse_ndjson_ports_for(
    text: &str,
    ip: &str,
    proto: &str,
) -> Result<BTreeMap<u16, PortResult>, String> {
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}: {line:?}", i + 1))?;
        if v["type"] != "port" || v["proto"] != proto || v["ip"] != ip {
            continue;
        }
        let port = v["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("line {}: bad port: {line:?}", i + 1))?;
        let state = v["state"]
            .as_str()
            .ok_or_else(|| format!("line {}: no state: {line:?}", i + 1))?;
        let r = PortResult {
            state: state.to_string(),
            reason: v["reason"].as_str().map(str::to_string),
        };
        if map.insert(port, r).is_some() {
            return Err(format!("line {}: {port}/{proto} reported twice", i + 1));
        }
    }
    Ok(map)
}

/// Compare a port map against `expected(port)`; one line per mismatch
/// ("port 81: expected filtered (no-response), got closed (reset)").
/// Reasons are compared only when `check_reasons`.
pub fn mismatches_against(
    got: &BTreeMap<u16, PortResult>,
    ports: &[u16],
    check_reasons: bool,
    expected: impl Fn(u16) -> Expected,
) -> Vec<String> {
    let mut bad = Vec::new();
    for &p in ports {
        let exp = expected(p);
        match got.get(&p) {
            None => bad.push(format!(
                "port {p}: expected {}, missing from output",
                exp.state
            )),
            Some(r) => {
                let reason_ok = !check_reasons
                    || r.reason
                        .as_deref()
                        .is_some_and(|x| exp.reasons.contains(&x));
                if r.state != exp.state || !reason_ok {
                    bad.push(format!(
                        "port {p}: expected {} ({}), got {} ({})",
                        exp.state,
                        exp.reasons.join("|"),
                        r.state,
                        r.reason.as_deref().unwrap_or("no reason")
                    ));
                }
            }
        }
    }
    bad
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop the daemons and acceptors first (their sockets pin the
        // target namespace).
        self.daemons.clear();
        self.acceptors.clear();
        // Deleting the namespaces also deletes the veth pair.  Never panic
        // here (we may already be unwinding).
        for ns in [&self.scanner_ns, &self.target_ns] {
            if let Err(e) = self.ip(&["netns", "del", ns])
                && Path::new("/run/netns").join(ns).exists()
            {
                eprintln!("warning: could not delete namespace {ns}: {e}");
            }
        }
        if let Some(dir) = self.workdir.take() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn bind_in_namespace(
    ns_path: &str,
    ports: &[u16],
    addrs: &[IpAddr],
) -> Result<Vec<TcpListener>, String> {
    let ns = File::open(ns_path).map_err(|e| format!("open {ns_path}: {e}"))?;
    // SAFETY: setns on a valid fd; only this thread changes namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns({ns_path}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut v = Vec::new();
    for &p in ports {
        for &a in addrs {
            let l = TcpListener::bind((a, p)).map_err(|e| format!("bind {a} port {p}: {e}"))?;
            l.set_nonblocking(true)
                .map_err(|e| format!("nonblocking {p}: {e}"))?;
            v.push(l);
        }
    }
    Ok(v)
}

fn accept_loop(listeners: &[TcpListener], stop: &AtomicBool) {
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if n > 0 {
            for l in listeners {
                while let Ok((conn, _)) = l.accept() {
                    drop(conn);
                }
            }
        }
    }
}

/// Delete `rs-<pid>-<tag>-{s,t}` namespaces whose process is gone (a killed
/// earlier test run or bench).
fn cleanup_stale_namespaces(ip: &Path) {
    let Ok(out) = run_checked(ip, &["netns", "list"], None) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = stale_candidate_pid(name) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("lab: removing leftover namespace {name} (pid {pid} is gone)");
            let _ = run_checked(ip, &["netns", "del", name], None);
        }
    }
}

/// `rs-<pid>-<tag>-s` / `-t` → pid.
fn stale_candidate_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let rest = rest
        .strip_suffix("-s")
        .or_else(|| rest.strip_suffix("-t"))?;
    let (pid, tag) = rest.split_once('-')?;
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = Vec::new();
    loop {
        v.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    v.reverse();
    String::from_utf8(v).expect("ascii")
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names of all network namespaces (`ip netns list`).
pub fn netns_list() -> Vec<String> {
    let ip = find_tool("ip").expect("ip not installed");
    let out = run_checked(&ip, &["netns", "list"], None).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------
// Port lists.
// ---------------------------------------------------------------------------

/// Compact nmap-style port spec: [1,2,3,7] → "1-3,7".
pub fn port_spec(ports: &[u16]) -> String {
    let set: BTreeSet<u16> = ports.iter().copied().collect();
    let mut parts = Vec::new();
    let mut it = set.into_iter().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end.wrapping_add(1))) && end != u16::MAX {
            end = it.next().expect("peeked");
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

// ---------------------------------------------------------------------------
// Parser for rawscan's (nmap-style) normal output.
// ---------------------------------------------------------------------------

/// One `PORT STATE SERVICE [REASON]` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRow {
    pub port: u16,
    pub proto: String,
    pub state: String,
    pub service: String,
    /// Whole REASON column, e.g. "syn-ack ttl 64".
    pub reason_text: Option<String>,
}

/// One group of a `Not shown: N <state> <proto> ports (<reason>)` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotShown {
    pub count: usize,
    pub state: String,
    pub proto: String,
    /// Text inside the parentheses, e.g. "reset" or "60 resets, 2 ...".
    pub reason_text: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostReport {
    /// Whatever follows "scan report for ".
    pub target: String,
    pub host_up_line: Option<String>,
    pub has_reason_column: bool,
    pub not_shown: Vec<NotShown>,
    pub rows: Vec<PortRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NormalOutput {
    pub starting_line: Option<String>,
    pub hosts: Vec<HostReport>,
    pub done_line: Option<String>,
}

/// State and reason (first word of the REASON column, or the single reason
/// of a uniform "Not shown" group) of one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortResult {
    pub state: String,
    pub reason: Option<String>,
}

const STATES: &[&str] = &[
    "open",
    "closed",
    "filtered",
    "unfiltered",
    "open|filtered",
    "closed|filtered",
];

/// Parse rawscan's normal output (stdout).  Strict: an unknown state, a
/// duplicate row or a row outside a host section is an error.
pub fn parse_normal(text: &str) -> Result<NormalOutput, String> {
    let mut out = NormalOutput::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let lineno = i + 1;
        if line.starts_with("Starting rawscan") {
            out.starting_line = Some(line.to_string());
        } else if let Some(rest) = line.strip_prefix("rawscan scan report for ") {
            out.hosts.push(HostReport {
                target: rest.trim().to_string(),
                ..HostReport::default()
            });
        } else if line.starts_with("rawscan done:") {
            out.done_line = Some(line.to_string());
        } else if line.starts_with("Host is up") {
            current(&mut out, lineno)?.host_up_line = Some(line.to_string());
        } else if let Some(rest) = line.strip_prefix("Not shown:") {
            let groups =
                parse_not_shown(rest).map_err(|e| format!("line {lineno}: {e}: {line:?}"))?;
            current(&mut out, lineno)?.not_shown.extend(groups);
        } else if line.starts_with("All ") && line.contains(" scanned ports on ") {
            // "All N scanned ports on H are <state> (<reason>)" or "... are in
            // ignored states." (then a Not shown line follows).
            if let Some(g) = parse_all_ports(line) {
                current(&mut out, lineno)?.not_shown.push(g);
            }
        } else if line.starts_with("PORT ") {
            let host = current(&mut out, lineno)?;
            let cols: Vec<&str> = line.split_whitespace().collect();
            host.has_reason_column = cols.contains(&"REASON");
        } else if let Some(row) = parse_row(line) {
            let row = row.map_err(|e| format!("line {lineno}: {e}: {line:?}"))?;
            let host = current(&mut out, lineno)?;
            if host
                .rows
                .iter()
                .any(|r| r.port == row.port && r.proto == row.proto)
            {
                return Err(format!(
                    "line {lineno}: duplicate row for {}/{}",
                    row.port, row.proto
                ));
            }
            host.rows.push(row);
        }
    }
    Ok(out)
}

fn current(out: &mut NormalOutput, lineno: usize) -> Result<&mut HostReport, String> {
    out.hosts
        .last_mut()
        .ok_or_else(|| format!("line {lineno}: port data before any 'scan report for' line"))
}

/// `Some(Err)` for a line that looks like a port row but is malformed.
fn parse_row(line: &str) -> Option<Result<PortRow, String>> {
    let mut it = line.split_whitespace();
    let first = it.next()?;
    let (port, proto) = first.split_once('/')?;
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if proto != "tcp" && proto != "udp" {
        return None;
    }
    Some((|| {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("bad port number {port}"))?;
        let state = it.next().ok_or("row without STATE")?;
        if !STATES.contains(&state) {
            return Err(format!("unknown state {state:?}"));
        }
        let service = it.next().ok_or("row without SERVICE")?;
        let reason: Vec<&str> = it.collect();
        Ok(PortRow {
            port,
            proto: proto.to_string(),
            state: state.to_string(),
            service: service.to_string(),
            reason_text: (!reason.is_empty()).then(|| reason.join(" ")),
        })
    })())
}

/// " 65530 closed tcp ports (reset), 3 filtered tcp ports (no-response)"
fn parse_not_shown(rest: &str) -> Result<Vec<NotShown>, String> {
    // Split on commas outside parentheses.
    let mut groups = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            groups.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    groups.push(cur);
    groups
        .iter()
        .map(|g| {
            let g = g.trim().trim_end_matches('.');
            let (head, reason) = match g.find('(') {
                Some(i) => (
                    g[..i].trim(),
                    Some(g[i + 1..].trim_end_matches(')').trim().to_string()),
                ),
                None => (g, None),
            };
            let w: Vec<&str> = head.split_whitespace().collect();
            if w.len() != 4 || !(w[3] == "ports" || w[3] == "port") {
                return Err(format!("bad 'Not shown' group {g:?}"));
            }
            let count = w[0].parse().map_err(|_| format!("bad count in {g:?}"))?;
            if !STATES.contains(&w[1]) {
                return Err(format!("unknown state {:?}", w[1]));
            }
            Ok(NotShown {
                count,
                state: w[1].to_string(),
                proto: w[2].to_string(),
                reason_text: reason,
            })
        })
        .collect()
}

fn parse_all_ports(line: &str) -> Option<NotShown> {
    // All 65535 scanned ports on 198.18.0.2 are closed (reset)
    let w: Vec<&str> = line.split_whitespace().collect();
    let count = w.get(1)?.parse().ok()?;
    let are = w.iter().position(|x| *x == "are")?;
    let state = w.get(are + 1)?.trim_end_matches('.');
    if !STATES.contains(&state) {
        return None;
    }
    let reason = line.find('(').map(|i| {
        line[i + 1..]
            .trim_end_matches('.')
            .trim_end_matches(')')
            .to_string()
    });
    Some(NotShown {
        count,
        state: state.to_string(),
        proto: "tcp".to_string(),
        reason_text: reason,
    })
}

/// First word of a reason text: "syn-ack ttl 64" → "syn-ack".  A "Not
/// shown" reason made of several counted reasons ("60 resets, 2 ...") yields
/// None.
fn reason_word(text: &str) -> Option<String> {
    let w = text.split_whitespace().next()?;
    if w.chars().any(|c| c.is_ascii_digit()) || text.contains(',') {
        return None;
    }
    Some(w.to_string())
}

impl NormalOutput {
    /// The report for `target` (matched against "scan report for ...").
    pub fn host(&self, target: &str) -> Result<&HostReport, String> {
        self.hosts
            .iter()
            .find(|h| {
                h.target == target
                    || h.target.ends_with(&format!("({target})"))
                    || h.target.split_whitespace().next() == Some(target)
            })
            .ok_or_else(|| format!("no 'rawscan scan report for {target}' in output"))
    }
}

impl HostReport {
    /// State/reason of EVERY port in `scanned` for protocol `proto`: listed
    /// rows, plus the "Not shown" group for the rest.  Errors when a row is
    /// for an unscanned port, when the "Not shown" counts do not add up to
    /// the unlisted ports, or when unlisted ports could belong to more than
    /// one "Not shown" state.
    pub fn port_map(
        &self,
        proto: &str,
        scanned: &[u16],
    ) -> Result<BTreeMap<u16, PortResult>, String> {
        let scanned_set: BTreeSet<u16> = scanned.iter().copied().collect();
        let mut map = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r.proto == proto) {
            if !scanned_set.contains(&r.port) {
                return Err(format!("row for {}/{proto}, which was not scanned", r.port));
            }
            map.insert(
                r.port,
                PortResult {
                    state: r.state.clone(),
                    reason: r.reason_text.as_deref().and_then(reason_word),
                },
            );
        }
        let groups: Vec<&NotShown> = self.not_shown.iter().filter(|g| g.proto == proto).collect();
        let unlisted: Vec<u16> = scanned_set
            .iter()
            .copied()
            .filter(|p| !map.contains_key(p))
            .collect();
        let hidden: usize = groups.iter().map(|g| g.count).sum();
        if hidden != unlisted.len() {
            return Err(format!(
                "{} {proto} ports scanned, {} listed as rows, but 'Not shown' accounts for {hidden} (should be {})",
                scanned_set.len(),
                map.len(),
                unlisted.len()
            ));
        }
        if !unlisted.is_empty() {
            if groups.len() != 1 {
                return Err(format!(
                    "{} unlisted ports but {} 'Not shown' groups: cannot tell their states",
                    unlisted.len(),
                    groups.len()
                ));
            }
            let g = groups[0];
            let reason = g.reason_text.as_deref().and_then(reason_word);
            for p in unlisted {
                map.insert(
                    p,
                    PortResult {
                        state: g.state.clone(),
                        reason: reason.clone(),
                    },
                );
            }
        }
        Ok(map)
    }
}

/// Parse `stdout` and return the port map for TARGET_IP/tcp, panicking with
/// the whole output on any parse error.
pub fn tcp_port_map(stdout: &[u8], scanned: &[u16]) -> BTreeMap<u16, PortResult> {
    let text = String::from_utf8_lossy(stdout);
    let parsed = parse_normal(&text).unwrap_or_else(|e| panic!("cannot parse output: {e}\n{text}"));
    let host = parsed
        .host(TARGET_IP)
        .unwrap_or_else(|e| panic!("{e}\n--- output ---\n{text}"));
    host.port_map("tcp", scanned)
        .unwrap_or_else(|e| panic!("{e}\n--- output ---\n{text}"))
}

/// Output bytes as text, for assertions and messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Panics with both streams unless the command exited 0.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Panics listing (up to 50) mismatches.
pub fn assert_no_mismatches(what: &str, bad: &[String], output: &Output) {
    if bad.is_empty() {
        return;
    }
    let shown: Vec<&String> = bad.iter().take(50).collect();
    panic!(
        "{what}: {} port(s) wrong:\n  {}\n{}--- stdout (first 4000 bytes) ---\n{}\n--- stderr ---\n{}",
        bad.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        if bad.len() > 50 { "  ...\n" } else { "" },
        String::from_utf8_lossy(&output.stdout)
            .chars()
            .take(4000)
            .collect::<String>(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Unit check of the parser on the contract's sample output (call it from a
/// test; it needs no lab).
pub fn self_test_parser() {
    let sample = "Starting rawscan 0.1.0 at 2026-11-29 04:20 UTC\n\
rawscan scan report for 198.18.0.2\n\
Host is up (0.000050s latency).\n\
Not shown: 65531 closed tcp ports (reset)\n\
PORT     STATE    SERVICE  REASON\n\
22/tcp   open     ssh      syn-ack ttl 64\n\
80/tcp   open     http     syn-ack ttl 64\n\
81/tcp   filtered hosts2-ns no-response\n\
82/tcp   filtered xfer     admin-prohibited ttl 64\n\
\n\
rawscan done: 1 IP address (1 host up) scanned in 0.52 seconds\n";
    let parsed = parse_normal(sample).expect("sample parses");
    assert!(parsed.starting_line.is_some() && parsed.done_line.is_some());
    let host = parsed.host(TARGET_IP).expect("host");
    assert!(host.has_reason_column);
    let all: Vec<u16> = (1..=65535).collect();
    let map = host.port_map("tcp", &all).expect("port map");
    assert_eq!(map.len(), 65535);
    let get = |p: u16| {
        let r = &map[&p];
        (r.state.as_str(), r.reason.as_deref())
    };
    assert_eq!(get(22), ("open", Some("syn-ack")));
    assert_eq!(get(81), ("filtered", Some("no-response")));
    assert_eq!(get(82), ("filtered", Some("admin-prohibited")));
    assert_eq!(get(1), ("closed", Some("reset")));
    assert_eq!(get(65535), ("closed", Some("reset")));
    // Count mismatch is detected.
    let short: Vec<u16> = (1..=1000).collect();
    assert!(host.port_map("tcp", &short).is_err());
    // Multi-group Not shown and rows without REASON.
    let two = "rawscan scan report for 198.18.0.2\n\
Not shown: 30 closed tcp ports (reset), 30 filtered tcp ports (no-response)\n\
PORT   STATE SERVICE\n\
22/tcp open  ssh\n";
    let p = parse_normal(two).expect("parses");
    let h = p.host(TARGET_IP).expect("host");
    assert!(!h.has_reason_column);
    assert_eq!(h.not_shown.len(), 2);
    let ports: Vec<u16> = (1..=61).collect();
    assert!(
        h.port_map("tcp", &ports)
            .unwrap_err()
            .contains("cannot tell")
    );
    assert!(parse_normal("rawscan scan report for x\n22/tcp weird ssh\n").is_err());
    assert_eq!(port_spec(&[1, 2, 3, 7, 65534, 65535]), "1-3,7,65534-65535");
    assert_eq!(stale_candidate_pid("rs-123-0-s"), Some(123));
    assert_eq!(stale_candidate_pid("rs-123-b-t"), Some(123));
    assert_eq!(stale_candidate_pid("other-123-0-s"), None);
    let tc = "qdisc tbf 8001: root refcnt 2 rate 2Mbit burst 16Kb lat 20ms \n \
 Sent 3801234 bytes 65538 pkt (dropped 7, overlimits 12345 requeues 0) \n \
 backlog 0b 0p requeues 0\n";
    assert_eq!(
        QdiscStats::parse(tc),
        Some(QdiscStats {
            kind: "tbf".to_string(),
            sent_packets: 65538,
            dropped: 7,
            overlimits: 12345,
        })
    );
    assert_eq!(QdiscStats::parse("no qdisc here"), None);
}
