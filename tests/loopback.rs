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

/// A loopback TCP service that runs `serve` on each connection.
fn loopback_service(serve: fn(std::net::TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            std::thread::spawn(move || serve(c));
        }
    });
    port
}

/// -sV end to end, unprivileged: a banner service on loopback is named
/// from what it says, in every format.
#[test]
fn version_detection_names_a_loopback_banner() {
    use std::io::Write;
    let port = loopback_service(|mut c| {
        let _ = c.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let p = port.to_string();
    let out = Command::new(BIN)
        .args(["-sTV", "-p", &p, "-oG", "-", "127.0.0.1"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "{port}/open/tcp//ssh//OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)/"
        )),
        "{stdout}"
    );
}

/// SIGINT while -sV waits on a silent service: it stops at once, writes
/// what it has (the port-number name) and exits 130.
#[test]
fn an_interrupt_during_version_detection_ends_it_promptly() {
    let port = loopback_service(|c| {
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(c);
    });
    let p = port.to_string();
    let dir = std::env::temp_dir().join(format!("rawscan-sv-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nd = dir.join("out.ndjson");
    let child = Command::new(BIN)
        .args(["-sTV", "--version-timeout", "30s", "-p", &p, "-oJ"])
        .arg(&nd)
        .arg("--resume-file")
        .arg(dir.join("resume"))
        .arg("127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the port scan is over and -sV is talking to the service.
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&nd)
        .unwrap_or_default()
        .contains("\"port\"")
        && t0.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sent = std::time::Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        took < std::time::Duration::from_secs(3),
        "took {took:?} to stop"
    );
    let lines = std::fs::read_to_string(&nd).unwrap();
    assert!(
        lines.contains("\"type\":\"service\"") && lines.contains("\"method\":\"table\""),
        "{lines}"
    );
    assert!(lines.contains("\"interrupted\":true"), "{lines}");
    let _ = std::fs::remove_dir_all(&dir);
}
