//! Hostile inputs through the real binary (issue 12): every one ends with
//! exit code 2 (usage) or 1 (runtime), exactly one stderr line, no panic
//! or backtrace, no output file left behind (and nothing written through
//! a planted symlink), in bounded time and under RLIMIT_AS = 1 GiB.
//!
//! Like tests/cli.rs, rawscan runs in a brand-new empty network namespace
//! (`unshare --net`), so even a rawscan that wrongly accepted an input
//! could not send a packet anywhere.
mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use rawscan::cli::Args;
use rawscan::config;
use rawscan::resume::ResumeState;

const USAGE: i32 = 2;
const RUNTIME: i32 = 1;
/// Address space for rawscan: a hostile input that makes it allocate
/// more dies of it and fails the case.
const ADDRESS_SPACE: u64 = 1 << 30;
/// Per case; the slowest take well under a second.
const TIME_BOUND: Duration = Duration::from_secs(15);

struct Case {
    what: &'static str,
    args: Vec<String>,
    code: i32,
    /// stderr must contain this.
    says: &'static str,
}

fn case(what: &'static str, args: &[&str], code: i32, says: &'static str) -> Case {
    Case {
        what,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        says,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run rawscan isolated in `dir`, under the address-space limit.
fn run(dir: &Path, args: &[String]) -> Option<(std::process::Output, Duration)> {
    let Some(unshare) = find_tool("unshare") else {
        return unavailable("`unshare` (util-linux) is not installed");
    };
    let mut cmd = Command::new(unshare);
    if !is_root() {
        cmd.arg("--map-root-user");
    }
    cmd.args(["--net", "--", RAWSCAN_BIN])
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1");
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let t = Instant::now();
    let out = run_with_timeout(cmd, TIME_BOUND * 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.starts_with("unshare:") {
        return unavailable(&format!(
            "cannot create a network namespace: {}",
            stderr.trim()
        ));
    }
    Some((out, t.elapsed()))
}

/// Every file under `dir` with its bytes (to see that nothing changed).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p.clone());
                m.insert(p, None);
            } else if meta.is_file() && meta.len() < (1 << 20) {
                m.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
            } else {
                m.insert(p, Some(format!("{:?}", meta.len()).into_bytes()));
            }
        }
    }
    m
}

/// A valid resume file for `-sT -p 80 --seed 7 127.0.0.1`, as rawscan
/// writes it, edited by `tamper`.
fn resume_file(path: &Path, tamper: impl FnOnce(&mut ResumeState)) {
    let args = Args::try_parse_from([
        "rawscan",
        "--connect",
        "-p",
        "80",
        "--seed",
        "7",
        "127.0.0.1",
    ])
    .unwrap();
    let cfg = config::build(&args, &config::system_resolve).unwrap();
    let plan = cfg.plan().unwrap();
    let mut st = ResumeState::new(args.to_argv(), &plan, 0, &[]);
    tamper(&mut st);
    std::fs::write(path, st.to_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn fixtures(dir: &Path) {
    let w = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    w("wild3", b"*.*.*.*\n*.*.*.*\n*.*.*.*\n");
    w("nul", &vec![0u8; 1 << 20]);
    let mut bin = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..100_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bin.push((x >> 16) as u8);
    }
    w("binary", &bin);
    let mut long = "a".repeat(10_000_000);
    long.push_str("\x1b[2J\n");
    w("longline", long.as_bytes());
    // 33 MiB, sparse.
    let huge = std::fs::File::create(dir.join("huge")).unwrap();
    huge.set_len(33 << 20).unwrap();
    w("victim", b"precious");
    symlink(dir.join("victim"), dir.join("link.xml")).unwrap();
    symlink(dir.join("victim"), dir.join("link.resume")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::create_dir(dir.join("adir")).unwrap();

    resume_file(&dir.join("valid"), |_| {});
    let valid = std::fs::read(dir.join("valid")).unwrap();
    w("truncated", &valid[..valid.len() / 2]);
    std::fs::set_permissions(dir.join("truncated"), PermissionsExt::from_mode(0o600)).unwrap();
    resume_file(&dir.join("hostile-keys"), |s| {
        s.undecided = vec!["198.18.0.99 22 tcp".into()];
    });
    resume_file(&dir.join("hostile-port"), |s| {
        s.undecided = vec!["127.0.0.1 22 tcp".into()];
    });
    resume_file(&dir.join("tampered-hash"), |s| {
        s.plan_hash = "0".repeat(32);
    });
    resume_file(&dir.join("tampered-targets"), |s| {
        let n = s.args.len();
        s.args[n - 1] = "127.0.0.2".into();
    });
    resume_file(&dir.join("tampered-seed"), |s| s.seed = 8);
    resume_file(&dir.join("too-many-keys"), |s| {
        s.undecided = vec!["127.0.0.1 80 tcp".into(); 2];
    });
    resume_file(&dir.join("past-the-end"), |s| s.next_index = s.total + 1);
    resume_file(&dir.join("nested-resume"), |s| {
        s.args.insert(0, "--resume=valid".into());
    });
    resume_file(&dir.join("unknown-field"), |_| {});
    let text = std::fs::read_to_string(dir.join("unknown-field")).unwrap();
    w(
        "unknown-field",
        text.replacen('{', "{\"extra\": 1,", 1).as_bytes(),
    );
    resume_file(&dir.join("world-writable"), |_| {});
    std::fs::set_permissions(dir.join("world-writable"), PermissionsExt::from_mode(0o666)).unwrap();
    symlink(dir.join("valid"), dir.join("resume-link")).unwrap();
    w("resume-binary", &bin);
    std::fs::set_permissions(dir.join("resume-binary"), PermissionsExt::from_mode(0o600)).unwrap();
    if is_root() {
        resume_file(&dir.join("other-user"), |_| {});
        std::os::unix::fs::chown(dir.join("other-user"), Some(65534), Some(65534)).unwrap();
    }
}

fn cases() -> Vec<Case> {
    let long_token = format!("{}\x1b[31m", "a".repeat(100_000));
    let many_ports = format!("{},99999", vec!["1-65535"; 10_000].join(","));
    let mut v = vec![
        // Targets, CIDRs, ranges.
        case("bad address", &["300.1.1.1"], USAGE, "'300.1.1.1'"),
        case("prefix too long", &["198.18.0.1/33"], USAGE, "CIDR"),
        case("prefix not a number", &["198.18.0.1/x"], USAGE, "CIDR"),
        case("reversed range", &["198.18.0.5-1"], USAGE, "'198.18.0.5-1'"),
        case("three octets", &["1.2.3"], USAGE, "'1.2.3'"),
        case("bad ipv6", &["::g"], USAGE, "'::g'"),
        case("::/0", &["-sT", "::/0"], USAGE, "--allow-large-target-set"),
        case(
            "::/0 raw",
            &["-sS", "::/0"],
            USAGE,
            "--allow-large-target-set",
        ),
        case(
            "an IPv6 /64",
            &["-sS", "2001:db8::/64"],
            USAGE,
            "18446744073709551616 addresses",
        ),
        case(
            "an IPv6 /64, allowed: too many pairs, no overflow",
            &["-sS", "-p-", "--allow-large-target-set", "2001:db8::/64"],
            USAGE,
            "too many (host, port) pairs",
        ),
        case(
            "link-local without a scope",
            &["-sS", "-p", "22", "fe80::1"],
            USAGE,
            "link-local IPv6 target 'fe80::1' has no scope",
        ),
        case(
            "link-local block",
            &["-sT", "-p", "22", "fe80::/64"],
            USAGE,
            "link-local",
        ),
        case(
            "scoped link-local",
            &["-sS", "-p", "22", "fe80::1%lo"],
            USAGE,
            "scoped IPv6 target 'fe80::1%lo'",
        ),
        case(
            "::/0 and a host, no excludes",
            &[
                "-sT",
                "--no-default-excludes",
                "--allow-large-target-set",
                "::/0",
                "127.0.0.1",
            ],
            USAGE,
            "2^128",
        ),
        case(
            "every IPv4 address",
            &["*.*.*.*"],
            USAGE,
            "--allow-large-target-set",
        ),
        case(
            "octet pattern of 16 M ranges",
            &["--allow-large-target-set", "1-255.1-255.1-255.1-254"],
            USAGE,
            "ranges",
        ),
        case("long hostile token", &[&long_token], USAGE, "bytes"),
        case(
            "multicast only",
            &["224.0.0.1"],
            USAGE,
            "--no-default-excludes",
        ),
        case(
            "broadcast only",
            &["255.255.255.255"],
            USAGE,
            "no targets left",
        ),
        case(
            "everything excluded",
            &["--exclude", "0.0.0.0/0", "127.0.0.1"],
            USAGE,
            "no targets",
        ),
        case(
            "unresolvable name",
            &["no-such-host.invalid"],
            USAGE,
            "resolve",
        ),
        case("no targets", &["-p", "80"], USAGE, "no targets"),
        // Ports.
        case(
            "port too large",
            &["-p", "70000", "127.0.0.1"],
            USAGE,
            "'70000'",
        ),
        case(
            "reversed ports",
            &["-p", "5-1", "127.0.0.1"],
            USAGE,
            "'5-1'",
        ),
        case("empty port spec", &["-p", "", "127.0.0.1"], USAGE, "empty"),
        case(
            "bare protocol prefix",
            &["-p", "T:", "127.0.0.1"],
            USAGE,
            "port",
        ),
        case(
            "unknown service",
            &["-p", "nosuchservice", "127.0.0.1"],
            USAGE,
            "nosuchservice",
        ),
        case(
            "80 kB of port ranges",
            &["-p", &many_ports, "127.0.0.1"],
            USAGE,
            "'99999'",
        ),
        case(
            "top ports zero",
            &["--top-ports", "0", "127.0.0.1"],
            USAGE,
            "--top-ports",
        ),
        case(
            "all ports excluded",
            &["-p", "80", "--exclude-ports", "1-65535", "127.0.0.1"],
            USAGE,
            "no ports",
        ),
        // Rates, retries, timeouts, seeds, templates.
        case("rate zero", &["--rate", "0", "127.0.0.1"], USAGE, "--rate"),
        case("rate negative", &["--rate", "-5", "127.0.0.1"], USAGE, "-5"),
        case(
            "rate huge",
            &["--rate", "999999999999", "127.0.0.1"],
            USAGE,
            "--rate",
        ),
        case(
            "rate with escapes",
            &["--rate", "\x1b[31m1", "127.0.0.1"],
            USAGE,
            "--max-rate",
        ),
        case(
            "retries 256",
            &["--max-retries", "256", "127.0.0.1"],
            USAGE,
            "256",
        ),
        case(
            "retries negative",
            &["--max-retries", "-1", "127.0.0.1"],
            USAGE,
            "-1",
        ),
        case(
            "min rtt zero",
            &["--min-rtt-timeout", "0", "127.0.0.1"],
            USAGE,
            "--min-rtt-timeout",
        ),
        case(
            "max rtt huge",
            &["--max-rtt-timeout", "1000s", "127.0.0.1"],
            USAGE,
            "--max-rtt-timeout",
        ),
        case(
            "initial rtt nan",
            &["--initial-rtt-timeout", "nan", "127.0.0.1"],
            USAGE,
            "--initial-rtt-timeout",
        ),
        case(
            "min above max",
            &[
                "--min-rtt-timeout",
                "2s",
                "--max-rtt-timeout",
                "1s",
                "127.0.0.1",
            ],
            USAGE,
            "--min-rtt-timeout 2000ms is larger than --max-rtt-timeout",
        ),
        case("seed negative", &["--seed", "-1", "127.0.0.1"], USAGE, "-1"),
        case(
            "seed too large",
            &["--seed", "18446744073709551616", "127.0.0.1"],
            USAGE,
            "--seed",
        ),
        case("template 9", &["-T9", "127.0.0.1"], USAGE, "-T9"),
        case(
            "template 300",
            &["--timing", "300", "127.0.0.1"],
            USAGE,
            "300",
        ),
        case(
            "stats every zero",
            &["--stats-every", "0", "127.0.0.1"],
            USAGE,
            "--stats-every",
        ),
        case(
            "syn and connect",
            &["-sS", "-sT", "127.0.0.1"],
            USAGE,
            "-sT",
        ),
        case(
            "unknown user",
            &["--user", "no-such-user-rawscan", "127.0.0.1"],
            USAGE,
            "--user",
        ),
        case("unknown flag", &["--bogus", "127.0.0.1"], USAGE, "--bogus"),
        // Input files.
        case("missing -iL", &["-iL", "missing"], USAGE, "'missing'"),
        case("directory -iL", &["-iL", "adir"], USAGE, "'adir'"),
        case(
            "-iL /dev/zero",
            &["-iL", "/dev/zero"],
            USAGE,
            "not a regular file",
        ),
        case("-iL FIFO", &["-iL", "fifo"], USAGE, "FIFO"),
        case("huge -iL", &["-iL", "huge"], USAGE, "larger than"),
        case("binary -iL", &["-iL", "binary"], USAGE, "not a text file"),
        case("NUL-filled -iL", &["-iL", "nul"], USAGE, "NUL"),
        case("10 MB line in -iL", &["-iL", "longline"], USAGE, "bytes"),
        case(
            "three lines of *.*.*.*",
            &["-iL", "wild3"],
            USAGE,
            "--allow-large-target-set",
        ),
        case(
            "--exclude-file /dev/zero",
            &["--exclude-file", "/dev/zero", "127.0.0.1"],
            USAGE,
            "not a regular file",
        ),
        // Resume files.
        case(
            "missing resume file",
            &["--resume", "missing"],
            RUNTIME,
            "'missing'",
        ),
        case(
            "truncated resume file",
            &["--resume", "truncated"],
            RUNTIME,
            "not a rawscan resume file",
        ),
        case(
            "binary resume file",
            &["--resume", "resume-binary"],
            RUNTIME,
            "not a rawscan resume file",
        ),
        case(
            "resume key outside the hosts",
            &["--resume", "hostile-keys"],
            RUNTIME,
            "not part of the scan",
        ),
        case(
            "resume key outside the ports",
            &["--resume", "hostile-port"],
            RUNTIME,
            "not part of the scan",
        ),
        case(
            "tampered plan hash",
            &["--resume", "tampered-hash"],
            RUNTIME,
            "cannot resume",
        ),
        case(
            "tampered targets",
            &["--resume", "tampered-targets"],
            RUNTIME,
            "cannot resume",
        ),
        case(
            "tampered seed",
            &["--resume", "tampered-seed"],
            RUNTIME,
            "seed",
        ),
        case(
            "more keys than the scan",
            &["--resume", "too-many-keys"],
            RUNTIME,
            "more undecided keys",
        ),
        case(
            "position past the end",
            &["--resume", "past-the-end"],
            RUNTIME,
            "past the end",
        ),
        case(
            "--resume inside a resume file",
            &["--resume", "nested-resume"],
            RUNTIME,
            "--resume",
        ),
        case(
            "unknown field",
            &["--resume", "unknown-field"],
            RUNTIME,
            "extra",
        ),
        case(
            "world-writable resume file",
            &["--resume", "world-writable"],
            RUNTIME,
            "writable by other users",
        ),
        case(
            "resume file symlink",
            &["--resume", "resume-link"],
            RUNTIME,
            "symbolic link",
        ),
        case(
            "resume /dev/zero",
            &["--resume", "/dev/zero"],
            RUNTIME,
            "not a regular file",
        ),
        case("resume directory", &["--resume", "adir"], RUNTIME, "'adir'"),
        case(
            "flag beside --resume",
            &["--resume", "valid", "--rate", "5"],
            USAGE,
            "--max-rate cannot be given with --resume",
        ),
        case(
            "target beside --resume",
            &["--resume", "valid", "127.0.0.2"],
            USAGE,
            "cannot be given with --resume",
        ),
        // Outputs.
        case(
            "output in a missing directory",
            &["-sT", "-p", "80", "-oX", "nodir/out.xml", "127.0.0.1"],
            RUNTIME,
            "nodir/out.xml",
        ),
        case(
            "output onto a symlink",
            &["-sT", "-p", "80", "-oX", "link.xml", "127.0.0.1"],
            RUNTIME,
            "symbolic link",
        ),
        case(
            "second output fails, first is removed",
            &[
                "-sT",
                "-p",
                "80",
                "-oX",
                "ok.xml",
                "-oJ",
                "nodir/x",
                "127.0.0.1",
            ],
            RUNTIME,
            "nodir/x",
        ),
        case(
            "output is a directory",
            &["-sT", "-p", "80", "-oN", "adir", "127.0.0.1"],
            RUNTIME,
            "'adir'",
        ),
        case(
            "output is a FIFO",
            &["-sT", "-p", "80", "-oG", "fifo", "127.0.0.1"],
            RUNTIME,
            "FIFO",
        ),
        case(
            "two outputs, one file",
            &["-oN", "out", "-oX", "./out", "127.0.0.1"],
            USAGE,
            "-oN and -oX",
        ),
        case("-oA to stdout", &["-oA", "-", "127.0.0.1"], USAGE, "-oA"),
        case(
            "resume file onto a symlink",
            &[
                "-sT",
                "-p",
                "80",
                "-oX",
                "ok.xml",
                "--resume-file",
                "link.resume",
                "127.0.0.1",
            ],
            RUNTIME,
            "symbolic link",
        ),
        case(
            "resume file is an output",
            &["-oJ", "R", "--resume-file", "./R", "127.0.0.1"],
            USAGE,
            "--resume-file",
        ),
    ];
    if is_root() {
        v.push(case(
            "resume file of another user",
            &["--resume", "other-user"],
            RUNTIME,
            "belongs to uid 65534",
        ));
    }
    v
}

#[test]
fn hostile_inputs_fail_cleanly() {
    let dir = std::env::temp_dir().join(format!("rawscan-bad-input-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    fixtures(&dir);
    let before = snapshot(&dir);
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, "");
    for c in &cases {
        let Some((out, took)) = run(&dir, &c.args) else {
            return;
        };
        if took > slowest.0 {
            slowest = (took, c.what);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut why = Vec::new();
        if out.status.code() != Some(c.code) {
            why.push(format!("exit {:?}, want {}", out.status, c.code));
        }
        if lines.len() != 1 {
            why.push(format!("{} stderr lines, want 1", lines.len()));
        }
        if !stderr.contains(c.says) {
            why.push(format!("stderr lacks {:?}", c.says));
        }
        let lower = stderr.to_lowercase();
        if lower.contains("panicked") || lower.contains("backtrace") {
            why.push("panic".into());
        }
        if stderr.len() > 600 || stderr.contains('\x1b') || stderr.contains('\0') {
            why.push(format!(
                "stderr too long ({} bytes) or holds raw control bytes",
                stderr.len()
            ));
        }
        if took > TIME_BOUND {
            why.push(format!("took {took:?}"));
        }
        if String::from_utf8_lossy(&out.stdout).contains("scan report for") {
            why.push("scanned anyway".into());
        }
        let after = snapshot(&dir);
        if after != before {
            let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
            let changed: Vec<_> = before
                .iter()
                .filter(|(k, v)| after.get(*k) != Some(v))
                .map(|(k, _)| k)
                .collect();
            why.push(format!(
                "files added {added:?}, changed or removed {changed:?}"
            ));
            // Restore for the next cases.
            for k in added {
                let _ = std::fs::remove_file(k);
            }
        }
        if !why.is_empty() {
            failures.push(format!(
                "{} (rawscan {}): {}\n    stderr: {}",
                c.what,
                c.args
                    .iter()
                    .map(|a| a.chars().take(60).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(" "),
                why.join("; "),
                stderr.trim().chars().take(300).collect::<String>()
            ));
        }
    }
    eprintln!(
        "{} hostile inputs; slowest {:?} ({})",
        cases.len(),
        slowest.0,
        slowest.1
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
