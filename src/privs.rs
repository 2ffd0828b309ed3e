//! Giving up privileges once the raw sockets and files are open.
//!
//! Invariants:
//! - `DropPlan::new` decides who to become before anything is opened:
//!   as root (real uid 0), `--user NAME`, else the sudo user
//!   (`SUDO_UID`/`SUDO_GID`), else `nobody`; as a set-uid root program,
//!   the real user (`--user` and the environment are not trusted then);
//!   otherwise the uid stays and only capabilities go.
//! - `drop_privileges` applies to every thread of the process: the
//!   supplementary groups, gid and uid change through glibc, which
//!   broadcasts set*id calls to all threads; the uid change from 0 clears
//!   each thread's capabilities; then every thread is signalled in turn
//!   and, in the handler, sets PR_SET_NO_NEW_PRIVS, clears its ambient set
//!   and sets its permitted and effective (and inheritable) capabilities
//!   to empty (capset is per-thread). `verify` then reads
//!   /proc/self/task/*/status and fails unless every thread shows it.
//! - Nothing here prints; errors are one line.

use std::collections::HashSet;
use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::echo;

/// Who to become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// What `drop_privileges` will do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropPlan {
    /// A new uid/gid (root or set-uid root); None: keep the uid, drop
    /// capabilities only.
    pub target: Option<Target>,
}

/// Why a plan could not be made.
#[derive(Debug)]
pub enum PlanError {
    /// A bad `--user` (exit code 2).
    Usage(String),
    /// The system has no user to become (exit code 1).
    Other(String),
}

fn passwd(name: Option<&str>, uid: Option<u32>) -> Option<(u32, u32, String)> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 1 << 16];
    let r = match (name, uid) {
        (Some(n), _) => {
            let c = CString::new(n).ok()?;
            // SAFETY: valid pointers and buffer length; result checked.
            unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) }
        }
        (None, Some(u)) => {
            // SAFETY: as above.
            unsafe { libc::getpwuid_r(u, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) }
        }
        _ => return None,
    };
    if r != 0 || out.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated, set by libc.
    let n = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) }
        .to_string_lossy()
        .into_owned();
    Some((pw.pw_uid, pw.pw_gid, n))
}

impl DropPlan {
    pub fn new(user: Option<&str>) -> Result<DropPlan, PlanError> {
        // SAFETY: these getters have no preconditions.
        let (ruid, euid, rgid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
        if euid != 0 {
            if user.is_some() {
                return Err(PlanError::Usage(
                    "--user needs root: rawscan keeps your own user and drops only capabilities"
                        .into(),
                ));
            }
            return Ok(DropPlan { target: None });
        }
        if ruid != 0 {
            // Set-uid root: go back to the real user; trust no input.
            if user.is_some() {
                return Err(PlanError::Usage(
                    "--user is not accepted when rawscan is installed set-uid root".into(),
                ));
            }
            let name = passwd(None, Some(ruid)).map_or_else(|| ruid.to_string(), |p| p.2);
            return Ok(DropPlan {
                target: Some(Target {
                    uid: ruid,
                    gid: rgid,
                    name,
                }),
            });
        }
        let target = if let Some(u) = user {
            let found = if !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()) {
                let uid: u32 = u
                    .parse()
                    .map_err(|_| PlanError::Usage(format!("invalid --user {}", echo::token(u))))?;
                Some(passwd(None, Some(uid)).unwrap_or((uid, uid, u.to_string())))
            } else {
                passwd(Some(u), None)
            };
            let Some((uid, gid, name)) = found else {
                return Err(PlanError::Usage(format!(
                    "invalid --user {}: no such user",
                    echo::token(u)
                )));
            };
            if uid == 0 {
                return Err(PlanError::Usage(format!(
                    "--user {} is root: name an unprivileged user",
                    echo::token(u)
                )));
            }
            Target { uid, gid, name }
        } else if let Some(t) = sudo_user() {
            t
        } else {
            match passwd(Some("nobody"), None) {
                Some((uid, gid, name)) if uid != 0 => Target { uid, gid, name },
                _ => {
                    return Err(PlanError::Other(
                        "cannot give up root: there is no user 'nobody' (use --user NAME)".into(),
                    ));
                }
            }
        };
        Ok(DropPlan {
            target: Some(target),
        })
    }

    /// Will the uid change (so files can be written only through
    /// descriptors opened before)?
    pub fn changes_uid(&self) -> bool {
        self.target.is_some()
    }
}

fn sudo_user() -> Option<Target> {
    let num = |k: &str| std::env::var(k).ok()?.parse::<u32>().ok();
    let (uid, gid) = (num("SUDO_UID")?, num("SUDO_GID")?);
    if uid == 0 {
        return None;
    }
    let name = std::env::var("SUDO_USER").unwrap_or_else(|_| uid.to_string());
    Some(Target { uid, gid, name })
}

fn os_err(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error())
}

/// Give up privileges now, in every thread, and check that they are gone.
pub fn drop_privileges(plan: &DropPlan) -> anyhow::Result<()> {
    if let Some(t) = &plan.target {
        let who = format!("{} (uid {}, gid {})", echo::bare(&t.name), t.uid, t.gid);
        // SAFETY: plain set*id calls; glibc applies them to all threads.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(os_err("cannot clear supplementary groups"));
            }
            if libc::setresgid(t.gid, t.gid, t.gid) != 0 {
                return Err(os_err(&format!("cannot switch to the group of {who}")));
            }
            if libc::setresuid(t.uid, t.uid, t.uid) != 0 {
                return Err(os_err(&format!("cannot switch to user {who}")));
            }
        }
    }
    every_thread()?;
    verify(plan).map_err(|e| anyhow::anyhow!("privileges not fully dropped: {e}"))
}

static HANDLED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

/// Drop what is per-thread in the calling thread. Only system calls:
/// async-signal-safe.
fn drop_this_thread() -> bool {
    // SAFETY: prctl and capset on the calling thread.
    unsafe {
        let nnp = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
        // EINVAL on kernels without ambient capabilities: nothing to clear.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let caps = crate::safefile::capset_low(0);
        nnp && caps
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    if !drop_this_thread() {
        FAILED.fetch_add(1, Ordering::SeqCst);
    }
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

fn thread_ids() -> anyhow::Result<Vec<libc::pid_t>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc/self/task")? {
        if let Some(t) = e?.file_name().to_str().and_then(|s| s.parse().ok()) {
            v.push(t);
        }
    }
    Ok(v)
}

/// Run `drop_this_thread` in this thread and, through a signal, in every
/// other thread, one at a time, until no thread is left undone.
fn every_thread() -> anyhow::Result<()> {
    let sig = libc::SIGRTMIN() + 5;
    // SAFETY: installing a handler that only makes system calls and
    // atomic increments; it stays installed (a late signal is harmless).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(os_err("cannot install the privilege-drop handler"));
        }
    }
    if !drop_this_thread() {
        return Err(os_err("cannot drop capabilities"));
    }
    let me = gettid();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut done: HashSet<libc::pid_t> = HashSet::from([me]);
    for _round in 0..100 {
        let todo: Vec<libc::pid_t> = thread_ids()?
            .into_iter()
            .filter(|t| !done.contains(t))
            .collect();
        if todo.is_empty() {
            return match FAILED.load(Ordering::SeqCst) {
                0 => Ok(()),
                n => bail!("{n} thread(s) could not drop capabilities"),
            };
        }
        for tid in todo {
            let before = HANDLED.load(Ordering::SeqCst);
            // SAFETY: signalling a thread of our own process.
            let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
            if r == 0 {
                let t0 = Instant::now();
                while HANDLED.load(Ordering::SeqCst) == before {
                    if t0.elapsed() > Duration::from_secs(5) {
                        bail!("thread {tid} did not drop its capabilities in time");
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            // ESRCH: the thread ended meanwhile.
            done.insert(tid);
        }
    }
    bail!("threads keep appearing while privileges are dropped")
}

/// The fields of one /proc/.../status file that matter here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub uid: Vec<u32>,
    pub gid: Vec<u32>,
    pub groups: Vec<u32>,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_amb: u64,
    pub no_new_privs: bool,
}

/// Parse a /proc/PID/status (or task status) text.
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    let nums = |v: &str| -> Vec<u32> {
        v.split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    let hex = |v: &str| u64::from_str_radix(v.trim(), 16).unwrap_or(u64::MAX);
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "Uid" => s.uid = nums(v),
            "Gid" => s.gid = nums(v),
            "Groups" => s.groups = nums(v),
            "CapPrm" => s.cap_prm = hex(v),
            "CapEff" => s.cap_eff = hex(v),
            "CapAmb" => s.cap_amb = hex(v),
            "NoNewPrivs" => s.no_new_privs = v.trim() == "1",
            _ => {}
        }
    }
    s
}

/// Check every thread of this process: no capability, no_new_privs set,
/// and (when the uid changed) the target's uid and gid everywhere and no
/// supplementary group.
pub fn verify(plan: &DropPlan) -> Result<(), String> {
    let tids = thread_ids().map_err(|e| format!("cannot list threads: {e}"))?;
    for tid in tids {
        let path = format!("/proc/self/task/{tid}/status");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // the thread ended
        };
        let s = parse_status(&text);
        if s.cap_prm != 0 || s.cap_eff != 0 || s.cap_amb != 0 {
            return Err(format!(
                "thread {tid} still has capabilities (CapPrm {:x}, CapEff {:x})",
                s.cap_prm, s.cap_eff
            ));
        }
        if !s.no_new_privs {
            return Err(format!("thread {tid} lacks no_new_privs"));
        }
        if let Some(t) = &plan.target
            && (s.uid.iter().any(|&u| u != t.uid)
                || s.gid.iter().any(|&g| g != t.gid)
                || !s.groups.is_empty()
                || s.uid.len() != 4)
        {
            return Err(format!(
                "thread {tid} has uids {:?}, gids {:?}, groups {:?}",
                s.uid, s.gid, s.groups
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = parse_status(
            "Name:\trawscan\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t\nCapPrm:\t0000000000000000\nCapEff:\t0000000000002000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
        );
        assert_eq!(s.uid, vec![65534; 4]);
        assert!(s.groups.is_empty());
        assert_eq!(s.cap_eff, 0x2000);
        assert!(s.no_new_privs);
    }

    /// Unprivileged, the plan keeps the uid and refuses --user; as root it
    /// refuses to "drop" to root.
    #[test]
    fn plans() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(DropPlan::new(None).unwrap(), DropPlan { target: None });
            assert!(matches!(
                DropPlan::new(Some("nobody")),
                Err(PlanError::Usage(_))
            ));
        } else {
            assert!(matches!(
                DropPlan::new(Some("root")),
                Err(PlanError::Usage(_))
            ));
            assert!(matches!(DropPlan::new(Some("0")), Err(PlanError::Usage(_))));
            assert!(matches!(
                DropPlan::new(Some("no-such-user-rawscan")),
                Err(PlanError::Usage(_))
            ));
            let p = DropPlan::new(Some("nobody")).unwrap();
            assert_ne!(p.target.unwrap().uid, 0);
        }
    }
}
