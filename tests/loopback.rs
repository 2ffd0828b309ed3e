//! Connect-scan promises checked against loopback (127.0.0.1 only), which
//! needs no privileges and no lab: a tiny file-descriptor limit never
//! kills the scan, and a closed stdout ends it quietly.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rawscan");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs under `prlimit` so both the soft and hard RLIMIT_NOFILE are 40:
/// the scan keeps at most a few dozen sockets open and must still finish
/// with every port decided.
#[test]
fn connect_scan_survives_a_tiny_fd_limit() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        assert!(
            std::env::var("RAWSCAN_REQUIRE_LAB").as_deref() != Ok("1"),
            "prlimit (util-linux) missing"
        );
        eprintln!("skipping: prlimit not installed");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = format!("1-1500,{port}");
    let out = Command::new("prlimit")
        .args([
            "--nofile=40:40",
            "--",
            BIN,
            "-sT",
            "--reason",
            "-p",
            &spec,
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("Too many open files") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{port}/tcp")) && l.contains(" open ")),
        "listener port {port} not open:\n{stdout}"
    );
    // Every port is accounted for: listed rows plus the collapsed count.
    let rows = stdout.lines().filter(|l| l.contains("/tcp ")).count();
    let hidden: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Not shown: "))
        .flat_map(|l| l.split(", "))
        .filter_map(|g| g.split(' ').next()?.parse::<usize>().ok())
        .sum();
    let total = if port <= 1500 { 1500 } else { 1501 };
    assert_eq!(rows + hidden, total, "{stdout}");
    drop(listener);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = Command::new(BIN)
        .args(["-sT", "-p", "1-3000", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then hang up, as `| head -c1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
