//! Files rawscan reads and writes on a user's behalf, opened so that a
//! planted symlink, hard link, FIFO or someone else's file cannot turn a
//! root scan into a write (or a hang, or an out-of-memory) elsewhere.
//!
//! Invariants:
//! - Input lists (`-iL`, `--exclude-file`) and resume files are read from
//!   regular files (or stdin for '-') and never beyond a size cap.
//! - Output files are opened with `O_NOFOLLOW`: a new file is created with
//!   `O_CREAT|O_EXCL`; an existing one is reused only if it is a regular
//!   file owned by the effective user with a single link (then truncated),
//!   or a character device such as /dev/null. `/dev/stdout`, `/dev/stderr`
//!   and `/dev/fd/N` name this process's own descriptors and are followed.
//! - The resume file is written late (on interrupt), so its directory is
//!   opened early and the file is written as a new `O_EXCL` temporary file
//!   (mode 0600) renamed over the final name: nothing at that name is ever
//!   followed or written into. When the scan will give up root, a small
//!   forked helper that keeps only CAP_DAC_OVERRIDE does that write (the
//!   unprivileged scanner may not be allowed to write the directory).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

use crate::echo;

/// Largest `-iL` or `--exclude-file` list read.
pub const MAX_LIST_BYTES: u64 = 32 << 20;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Read `path` ('-' = stdin) as UTF-8 text of at most `cap` bytes; only
/// regular files. `what` names the flag in errors.
pub fn read_text(path: &str, cap: u64, what: &str) -> Result<String, String> {
    let shown = echo::token(path);
    let fail = |why: String| format!("cannot read {what} {shown}: {why}");
    let mut bytes = Vec::new();
    if path == "-" {
        io::stdin()
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
    } else {
        let f = std::fs::OpenOptions::new()
            .read(true)
            // A FIFO must not block the open; it is refused below.
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        let m = f.metadata().map_err(|e| fail(e.to_string()))?;
        if !m.file_type().is_file() {
            return Err(fail(format!("not a regular file ({})", kind(&m))));
        }
        if m.len() > cap {
            return Err(fail(format!("larger than {} MiB", cap >> 20)));
        }
        (&f).take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
    }
    if bytes.len() as u64 > cap {
        return Err(fail(format!("larger than {} MiB", cap >> 20)));
    }
    if bytes.contains(&0) {
        return Err(fail("not a text file (it contains NUL bytes)".into()));
    }
    String::from_utf8(bytes).map_err(|_| fail("not a text file (invalid UTF-8)".into()))
}

fn kind(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "a regular file"
    }
}

/// Read a file this user owns (a resume file): no symlink, a regular file
/// of at most `cap` bytes, owned by the effective user and not writable by
/// group or others.
pub fn read_owned(path: &str, cap: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let shown = echo::token(path);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow::anyhow!("{what} {shown} is a symbolic link: refusing it")
            } else {
                anyhow::anyhow!("cannot read {what} {shown}: {e}")
            }
        })?;
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        bail!("{what} {shown} is not a regular file ({})", kind(&m));
    }
    if m.uid() != euid() {
        bail!(
            "{what} {shown} belongs to uid {}, not to you (uid {}): refusing it",
            m.uid(),
            euid()
        );
    }
    if m.mode() & 0o022 != 0 {
        bail!(
            "{what} {shown} is writable by other users (mode {:o}): refusing it",
            m.mode() & 0o7777
        );
    }
    if m.len() > cap {
        bail!("{what} {shown} is larger than {} MiB", cap >> 20);
    }
    let mut bytes = Vec::new();
    (&f).take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {shown}"))?;
    if bytes.len() as u64 > cap {
        bail!("{what} {shown} is larger than {} MiB", cap >> 20);
    }
    Ok(bytes)
}

/// `path` made absolute and cleaned lexically (`.` and repeated `/`
/// removed), to tell whether two flags name the same file.
pub fn lexical(path: &str) -> PathBuf {
    let p = Path::new(path);
    let base = if p.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().unwrap_or_default()
    };
    let mut out = base;
    for c in p.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Paths that name this process's own descriptors (magic links the kernel
/// makes, not files anyone can plant).
fn is_own_fd_path(path: &str) -> bool {
    if matches!(path, "/dev/stdout" | "/dev/stderr") {
        return true;
    }
    ["/dev/fd/", "/proc/self/fd/"].iter().any(|pre| {
        path.strip_prefix(pre)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// An output file opened by `create_output`.
#[derive(Debug)]
pub struct Output {
    pub file: File,
    /// This run created it (so it is removed if the scan never starts).
    pub created: bool,
    pub path: String,
}

impl Output {
    /// (device, inode) of a regular file, to spot two flags naming one file.
    pub fn identity(&self) -> Option<(u64, u64)> {
        let m = self.file.metadata().ok()?;
        m.file_type().is_file().then(|| (m.dev(), m.ino()))
    }
}

/// Open an output file safely (see the module invariants). Errors are one
/// line naming the path.
pub fn create_output(path: &str) -> anyhow::Result<Output> {
    let shown = echo::token(path);
    let open_err = |e: io::Error| anyhow::anyhow!("cannot write output file {shown}: {e}");
    if is_own_fd_path(path) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(open_err)?;
        return Ok(Output {
            file,
            created: false,
            path: path.to_string(),
        });
    }
    for _ in 0..5 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => {
                return Ok(Output {
                    file,
                    created: true,
                    path: path.to_string(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_err(e)),
        }
        // It exists: reuse it only if it is plainly ours.
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
                "output file {shown} is a symbolic link: rawscan does not write through symlinks (use '-' for stdout)"
            ),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                bail!("output file {shown} is a FIFO or socket: refusing it")
            }
            Err(e) => return Err(open_err(e)),
        };
        let m = file.metadata().map_err(open_err)?;
        let t = m.file_type();
        if t.is_file() {
            if m.uid() != euid() {
                bail!(
                    "output file {shown} exists and belongs to uid {}, not to you (uid {}): refusing to overwrite it",
                    m.uid(),
                    euid()
                );
            }
            if m.nlink() != 1 {
                bail!(
                    "output file {shown} has {} hard links: refusing to overwrite it",
                    m.nlink()
                );
            }
            file.set_len(0).map_err(open_err)?;
        } else if !t.is_char_device() {
            bail!("output file {shown} is {}: refusing it", kind(&m));
        }
        clear_nonblock(&file);
        return Ok(Output {
            file,
            created: false,
            path: path.to_string(),
        });
    }
    bail!("output file {shown} keeps appearing and disappearing: refusing it")
}

fn clear_nonblock(f: &File) {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on an open descriptor owned by `f`.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
}

// ---------------------------------------------------------------------------
// The resume file: written late, as a new file renamed into place.
// ---------------------------------------------------------------------------

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Where a file will be written by rename: its directory, already open,
/// and its name in it.
#[derive(Debug)]
pub struct Later {
    dir: OwnedFd,
    name: CString,
    tmp: CString,
    shown: String,
}

impl Later {
    /// Open the directory of `path` now, and check that whatever already
    /// has the name is a regular file of ours (a planted symlink or someone
    /// else's file is refused now, before any probe, rather than at the
    /// interrupt).
    pub fn prepare(path: &str, what: &str) -> anyhow::Result<Later> {
        let shown = echo::token(path);
        let p = Path::new(path);
        let name = match p.file_name() {
            Some(n) if !path.ends_with('/') => n,
            _ => bail!("{what} {shown} does not name a file"),
        };
        let dir_path = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let dir_c = cstr(dir_path.as_os_str().as_bytes())?;
        // SAFETY: a valid C string; the result is checked.
        let dfd = check(unsafe {
            libc::open(
                dir_c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
        .with_context(|| format!("cannot use the directory of {what} {shown}"))?;
        // SAFETY: dfd is a fresh descriptor we own.
        let dir = unsafe { OwnedFd::from_raw_fd(dfd) };
        let name = cstr(name.as_bytes())?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dir fd, C string and stat buffer.
        let r = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFLNK {
                bail!("{what} {shown} is a symbolic link: refusing to replace it");
            }
            if fmt != libc::S_IFREG {
                bail!("{what} {shown} exists and is not a regular file: refusing it");
            }
            if st.st_uid != euid() {
                bail!(
                    "{what} {shown} exists and belongs to uid {}, not to you (uid {}): refusing to replace it",
                    st.st_uid,
                    euid()
                );
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let tmp = cstr(
            format!(
                ".rawscan-resume-{}-{}.tmp",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
            .as_bytes(),
        )?;
        Ok(Later {
            dir,
            name,
            tmp,
            shown,
        })
    }

    /// Write the file: a new 0600 temporary file next to it, synced, then
    /// renamed over the name. Uses only system calls (it also runs in the
    /// forked helper). On error, returns the step that failed.
    fn commit_from(
        &self,
        src: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> Result<(), (u8, i32)> {
        let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let dir = self.dir.as_raw_fd();
        // SAFETY: valid dir fd and C string; the result is checked.
        let fd = unsafe {
            libc::openat(
                dir,
                self.tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err((STEP_CREATE, errno()));
        }
        let fail = |step: u8, e: i32| {
            // SAFETY: fd is ours; the temp name is ours (created O_EXCL).
            unsafe {
                libc::close(fd);
                libc::unlinkat(dir, self.tmp.as_ptr(), 0);
            }
            Err((step, e))
        };
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match src(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return fail(STEP_SOURCE, e.raw_os_error().unwrap_or(libc::EIO)),
            };
            let mut off = 0;
            while off < n {
                // SAFETY: buf[off..n] is initialized and in bounds.
                let w = unsafe { libc::write(fd, buf[off..n].as_ptr().cast(), n - off) };
                if w < 0 {
                    let e = errno();
                    if e == libc::EINTR {
                        continue;
                    }
                    return fail(STEP_WRITE, e);
                }
                off += w as usize;
            }
        }
        // SAFETY: fd is open.
        if unsafe { libc::fsync(fd) } != 0 {
            return fail(STEP_SYNC, errno());
        }
        // SAFETY: fd is open and ours.
        unsafe { libc::close(fd) };
        // SAFETY: valid dir fd and C strings.
        if unsafe { libc::renameat(dir, self.tmp.as_ptr(), dir, self.name.as_ptr()) } != 0 {
            let e = errno();
            // SAFETY: the temp name is ours.
            unsafe { libc::unlinkat(dir, self.tmp.as_ptr(), 0) };
            return Err((STEP_RENAME, e));
        }
        Ok(())
    }

    fn describe(&self, failure: (u8, i32)) -> anyhow::Error {
        describe(&self.shown, failure)
    }
}

fn describe(shown: &str, (step, e): (u8, i32)) -> anyhow::Error {
    let what = match step {
        STEP_CREATE => "creating a temporary file next to",
        STEP_WRITE => "writing",
        STEP_SYNC => "syncing",
        STEP_RENAME => "renaming into place",
        _ => "receiving the data for",
    };
    anyhow::anyhow!("{what} {shown}: {}", io::Error::from_raw_os_error(e))
}

const STEP_CREATE: u8 = 1;
const STEP_WRITE: u8 = 2;
const STEP_SYNC: u8 = 3;
const STEP_RENAME: u8 = 4;
const STEP_SOURCE: u8 = 5;

/// Writes the resume file on interrupt: in this process, or through a
/// helper forked while still root (see the module invariants).
#[derive(Debug)]
pub enum LaterWriter {
    Direct(Later),
    Helper {
        pid: libc::pid_t,
        /// Length-prefixed data goes here; closing it without data tells
        /// the helper to exit without writing.
        data: Option<File>,
        /// 5 bytes back: step (0 = written) and errno.
        result: File,
        shown: String,
    },
}

/// Capability numbers kept by the helper.
const CAP_DAC_OVERRIDE: u32 = 1;

impl LaterWriter {
    /// Prepare `path`. With `helper`, fork the writer now: call this
    /// before any thread is started (the child runs single-threaded code
    /// only) and before privileges are dropped.
    pub fn new(path: &str, what: &str, helper: bool) -> anyhow::Result<LaterWriter> {
        let later = Later::prepare(path, what)?;
        if !helper {
            return Ok(LaterWriter::Direct(later));
        }
        let (data_r, data_w) = pipe()?;
        let (res_r, res_w) = pipe()?;
        // SAFETY: fork in a process that has no other thread yet (the
        // caller's contract); the child only makes system calls and exits
        // with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error()).context("starting the resume-file writer");
        }
        if pid == 0 {
            let keep = [data_r.as_raw_fd(), res_w.as_raw_fd(), later.dir.as_raw_fd()];
            // SAFETY: we are the single-threaded child; never returns.
            unsafe { helper_main(&later, &keep) }
        }
        drop(data_r);
        drop(res_w);
        Ok(LaterWriter::Helper {
            pid,
            data: Some(File::from(data_w)),
            result: File::from(res_r),
            shown: later.shown.clone(),
        })
    }

    /// Write `bytes` as the file.
    pub fn write(mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match &mut self {
            LaterWriter::Direct(later) => {
                let mut rest = bytes;
                let mut src = |buf: &mut [u8]| -> io::Result<usize> {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    Ok(n)
                };
                later.commit_from(&mut src).map_err(|e| later.describe(e))
            }
            LaterWriter::Helper {
                data,
                result,
                shown,
                ..
            } => {
                let shown = shown.clone();
                let mut w = data.take().expect("data pipe used once");
                let sent = w
                    .write_all(&(bytes.len() as u64).to_le_bytes())
                    .and_then(|_| w.write_all(bytes));
                drop(w);
                let mut r = [0u8; 5];
                let got = result.read_exact(&mut r);
                match (sent, got) {
                    (_, Ok(())) if r[0] == 0 => Ok(()),
                    (_, Ok(())) => Err(describe(
                        &shown,
                        (r[0], i32::from_le_bytes([r[1], r[2], r[3], r[4]])),
                    )),
                    (Err(e), _) | (_, Err(e)) => {
                        bail!("the resume-file writer failed for {shown}: {e}")
                    }
                }
            }
        }
    }
}

impl Drop for LaterWriter {
    fn drop(&mut self) {
        if let LaterWriter::Helper { pid, data, .. } = self {
            // EOF without data: the helper exits without writing.
            data.take();
            let mut status = 0;
            // SAFETY: pid is our child; waiting reaps it.
            unsafe { libc::waitpid(*pid, &mut status, 0) };
        }
    }
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }).context("pipe")?;
    // SAFETY: both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Set this thread's capabilities to exactly `caps` (bits of the low word)
/// in the effective and permitted sets.
///
/// # Safety
/// Only makes system calls; async-signal-safe.
pub unsafe fn capset_low(caps: u32) -> bool {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: caps,
            permitted: caps,
            inheritable: 0,
        },
        CapData::default(),
    ];
    // SAFETY: header and two data structs as capset(2) wants.
    unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) == 0 }
}

/// The forked helper: keep only CAP_DAC_OVERRIDE, wait for the data, write
/// it, report, exit.
///
/// # Safety
/// Runs in a freshly forked child of a single-threaded process.
unsafe fn helper_main(later: &Later, keep: &[RawFd; 3]) -> ! {
    // SAFETY: plain system calls on our own process.
    unsafe {
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGPIPE,
            libc::SIGQUIT,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Close every descriptor but ours (sockets, output files, stdio).
        let mut sorted = *keep;
        sorted.sort_unstable();
        let mut from: libc::c_uint = 0;
        for &k in &sorted {
            let k = k as libc::c_uint;
            if k > from {
                libc::syscall(libc::SYS_close_range, from, k - 1, 0);
            }
            from = k + 1;
        }
        libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0);
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        capset_low(1 << CAP_DAC_OVERRIDE);
    }
    let (data, res) = (keep[0], keep[1]);
    let read_exact = |buf: &mut [u8]| -> bool {
        let mut off = 0;
        while off < buf.len() {
            // SAFETY: buf[off..] is valid writable memory.
            let n = unsafe { libc::read(data, buf[off..].as_mut_ptr().cast(), buf.len() - off) };
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n <= 0 {
                return false;
            }
            off += n as usize;
        }
        true
    };
    let mut len = [0u8; 8];
    if !read_exact(&mut len) {
        // SAFETY: exiting the child.
        unsafe { libc::_exit(0) };
    }
    let mut left = u64::from_le_bytes(len);
    let mut src = |buf: &mut [u8]| -> io::Result<usize> {
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if !read_exact(&mut buf[..want]) {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        left -= want as u64;
        Ok(want)
    };
    let reply = match later.commit_from(&mut src) {
        Ok(()) => [0u8; 5],
        Err((step, e)) => {
            let b = e.to_le_bytes();
            [step, b[0], b[1], b[2], b[3]]
        }
    };
    // SAFETY: writing 5 bytes from a valid buffer, then exiting the child.
    unsafe {
        libc::write(res, reply.as_ptr().cast(), reply.len());
        libc::_exit(0)
    }
}

/// Remove files this run created (a scan that never started).
pub fn remove_created(outputs: &[Output]) {
    for o in outputs.iter().filter(|o| o.created) {
        let _ = std::fs::remove_file(OsStr::new(&o.path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tmpdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("rawscan-safefile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn outputs_refuse_symlinks_and_reuse_own_files() {
        let d = tmpdir("out");
        let victim = d.join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = d.join("link");
        symlink(&victim, &link).unwrap();
        let e = create_output(link.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        // A dangling symlink is refused too (no file is created behind it).
        let dangling = d.join("dangling");
        symlink(d.join("nowhere"), &dangling).unwrap();
        assert!(create_output(dangling.to_str().unwrap()).is_err());
        assert!(!d.join("nowhere").exists());
        // A fresh file is created; an existing one of ours is truncated.
        let f = d.join("f");
        let o = create_output(f.to_str().unwrap()).unwrap();
        assert!(o.created);
        drop(o);
        std::fs::write(&f, "old").unwrap();
        let o = create_output(f.to_str().unwrap()).unwrap();
        assert!(!o.created);
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 0);
        // A file with a second hard link is refused.
        std::fs::hard_link(&f, d.join("f2")).unwrap();
        let e = create_output(f.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("hard links"), "{e}");
        // Devices such as /dev/null are fine; missing directories are not.
        create_output("/dev/null").unwrap();
        assert!(create_output(d.join("no/such/dir").to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lists_are_regular_bounded_text() {
        let d = tmpdir("read");
        let f = d.join("list");
        std::fs::write(&f, "198.18.0.1\n").unwrap();
        assert_eq!(
            read_text(f.to_str().unwrap(), 100, "-iL").unwrap(),
            "198.18.0.1\n"
        );
        let e = read_text(f.to_str().unwrap(), 5, "-iL").unwrap_err();
        assert!(e.contains("larger"), "{e}");
        let e = read_text("/dev/zero", 100, "-iL").unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_text(d.to_str().unwrap(), 100, "-iL").unwrap_err();
        assert!(
            e.contains("directory") || e.contains("Is a directory"),
            "{e}"
        );
        std::fs::write(&f, [0u8; 10]).unwrap();
        assert!(
            read_text(f.to_str().unwrap(), 100, "-iL")
                .unwrap_err()
                .contains("NUL")
        );
        std::fs::write(&f, [0xffu8, 0xfe]).unwrap();
        assert!(
            read_text(f.to_str().unwrap(), 100, "-iL")
                .unwrap_err()
                .contains("UTF-8")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn owned_files_only() {
        let d = tmpdir("owned");
        let f = d.join("r");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_owned(f.to_str().unwrap(), 100, "resume file").unwrap(),
            b"{}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_owned(f.to_str().unwrap(), 100, "resume file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("writable by other users"), "{e}");
        let l = d.join("l");
        symlink(&f, &l).unwrap();
        let e = read_owned(l.to_str().unwrap(), 100, "resume file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn later_files_replace_by_rename_and_never_follow() {
        let d = tmpdir("later");
        let victim = d.join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let link = d.join("R");
        symlink(&victim, &link).unwrap();
        let e = LaterWriter::new(link.to_str().unwrap(), "resume file", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::remove_file(&link).unwrap();
        let w = LaterWriter::new(link.to_str().unwrap(), "resume file", false).unwrap();
        // A symlink planted after the check is replaced, not followed.
        symlink(&victim, &link).unwrap();
        w.write(b"state").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "state");
        let m = std::fs::symlink_metadata(&link).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.mode() & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn own_fd_paths() {
        assert!(is_own_fd_path("/dev/stdout") && is_own_fd_path("/dev/fd/63"));
        assert!(!is_own_fd_path("/dev/fd/") && !is_own_fd_path("/dev/shm/x"));
        assert!(!is_own_fd_path("/proc/self/fd/1/../x"));
    }
}
