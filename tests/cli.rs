//! Usage errors: exit status 2, ONE stderr line naming the bad token, no
//! panic.  No lab is needed, but rawscan runs in a brand-new, empty network
//! namespace (`unshare --net`: only a down `lo`), so even a rawscan that
//! wrongly accepted the arguments could not send a packet anywhere.
mod common;

use common::*;
use std::process::{Command, Output};
use std::time::Duration;

fn rawscan_isolated(args: &[&str]) -> Option<Output> {
    let Some(unshare) = find_tool("unshare") else {
        return unavailable("`unshare` (util-linux) is not installed");
    };
    let mut cmd = Command::new(unshare);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cmd.arg("--map-root-user");
    }
    cmd.args(["--net", "--", RAWSCAN_BIN])
        .args(args)
        .env("RUST_BACKTRACE", "1");
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.starts_with("unshare:") {
        return unavailable(&format!(
            "cannot create a network namespace: {}",
            stderr.trim()
        ));
    }
    Some(out)
}

fn assert_usage_error(args: &[&str], token: &str) {
    let Some(out) = rawscan_isolated(args) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("rawscan {args:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "exit status must be 2: {ctx}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr must be exactly one line: {ctx}");
    assert!(
        lines[0].contains(token),
        "stderr must name {token:?}: {ctx}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        !lower.contains("panicked") && !lower.contains("backtrace"),
        "panic on a usage error: {ctx}"
    );
    assert!(!stdout.contains("scan report for"), "scanned anyway: {ctx}");
}

#[test]
fn port_out_of_range() {
    assert_usage_error(&["-p", "70000", TARGET_IP], "70000");
}

#[test]
fn port_range_end_out_of_range() {
    assert_usage_error(&["-p", "1-70000", TARGET_IP], "70000");
}

#[test]
fn bad_target() {
    assert_usage_error(&["-p", "80", "300.1.1.1"], "300.1.1.1");
}

#[test]
fn unknown_flag() {
    assert_usage_error(&["--bogus-flag", "-p", "80", TARGET_IP], "--bogus-flag");
}

#[test]
fn non_numeric_rate() {
    assert_usage_error(
        &["--rate", "notanumber", "-p", "80", TARGET_IP],
        "notanumber",
    );
}

#[test]
fn bad_shard_specs() {
    for spec in ["0/3", "4/3", "3/0", "a/b", "1/3/4"] {
        assert_usage_error(
            &["--shard", spec, "--seed", "1", "-p", "80", TARGET_IP],
            spec,
        );
    }
}

#[test]
fn shard_without_seed() {
    assert_usage_error(&["--shard", "1/2", "-p", "80", TARGET_IP], "--seed");
}

/// `merge` is a command only as the first word; anywhere else it is a
/// target (here a host name that cannot resolve in an empty namespace).
#[test]
fn merge_is_a_command_only_first() {
    assert_usage_error(&["merge"], "FILE");
    assert_usage_error(&["merge", "--bogus", "a.ndjson"], "--bogus");
    assert_usage_error(&["-p", "80", "merge"], "'merge'");
}
