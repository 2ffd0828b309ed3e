//! Real TCP daemons (Debian packages) and hostile services for the `-sV`
//! lab tests, run ONLY inside the target namespace, bound to TARGET_IP,
//! with their config and state under the lab's workdir.
//!
//! Each `start_*` waits until the daemon accepts a connection from the
//! scanner namespace (panicking with its log if it exits or never does).
//! Package versions come from `dpkg-query` on the binary's own package.

use super::*;
use std::net::{SocketAddr, TcpStream};

/// The package that owns `path` and its version (`dpkg -S`, `dpkg-query`).
pub fn package_of(path: &str) -> (String, String) {
    let real = std::fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .display()
        .to_string();
    let dpkg = |args: &[&str]| -> String {
        let out = Command::new("dpkg-query")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("dpkg-query: {e}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // `dpkg -S` may list the path under /usr or the merged-/usr alias.
    let mut owner = dpkg(&["-S", &real]);
    if owner.is_empty() {
        owner = dpkg(&["-S", path]);
    }
    let pkg = owner
        .split(':')
        .next()
        .unwrap_or_else(|| panic!("no package owns {path}"))
        .trim()
        .to_string();
    let ver = dpkg(&["-W", "-f", "${Version}", &pkg]);
    assert!(!ver.is_empty(), "no version for package {pkg}");
    (pkg, ver)
}

/// Debian version → upstream version: no epoch, no Debian revision
/// (`1:9.2p1-2+deb12u10` → `9.2p1`).
pub fn upstream(debian: &str) -> String {
    let v = debian.split_once(':').map_or(debian, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u).to_string()
}

/// Debian revision (`1:9.2p1-2+deb12u10` → `2+deb12u10`).
pub fn revision(debian: &str) -> String {
    debian.rsplit_once('-').map_or("", |(_, r)| r).to_string()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Lab {
    /// Wait (30 s) until TARGET_IP:`port` accepts a TCP connection from
    /// the scanner namespace; panics with the daemon's log otherwise.
    pub fn wait_tcp(&mut self, what: &str, port: u16) {
        let idx = self.daemons.len().checked_sub(1);
        let start = Instant::now();
        let ns_path = format!("/run/netns/{}", self.scanner_ns);
        loop {
            if let Some(d) = idx.and_then(|i| self.daemons.get_mut(i))
                && let Ok(Some(status)) = d.child.try_wait()
            {
                panic!("{what} exited ({status}); its log:\n{}", d.log_text());
            }
            let ns = ns_path.clone();
            let ok = thread::spawn(move || {
                setns_current_thread(&ns).is_ok()
                    && TcpStream::connect_timeout(
                        &SocketAddr::new(TARGET_IP.parse().unwrap(), port),
                        Duration::from_millis(300),
                    )
                    .is_ok()
            })
            .join()
            .unwrap_or(false);
            if ok {
                self.open_tcp.insert(port);
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let log = idx
                    .and_then(|i| self.daemons.get(i))
                    .map(|d| d.log_text())
                    .unwrap_or_default();
                panic!("{what}: {TARGET_IP}:{port}/tcp not accepting after 30 s; log:\n{log}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run a set-up program (key generation, database init) in the host
    /// namespace: it only writes files under the workdir.
    fn setup_cmd(&self, program: &str, args: &[&str]) {
        let path = find_tool(program).unwrap_or_else(|| panic!("`{program}` is not installed"));
        if let Err(e) = run_checked(&path, args, None) {
            panic!("{e}");
        }
    }

    /// OpenSSH's sshd on `ports` (a fresh ed25519 host key).
    pub fn start_sshd(&mut self, ports: &[u16]) {
        let wd = self.workdir().join("sshd");
        std::fs::create_dir_all(&wd).unwrap();
        // sshd insists on its privilege-separation directory, as Debian's
        // unit creates it.
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let key = wd.join("host_ed25519");
        self.setup_cmd(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                &key.display().to_string(),
            ],
        );
        let mut conf = format!(
            "ListenAddress {TARGET_IP}\nHostKey {}\nPidFile {}\nUsePAM no\n",
            key.display(),
            wd.join("sshd.pid").display()
        );
        for p in ports {
            conf.push_str(&format!("Port {p}\n"));
        }
        let conf_path = wd.join("sshd_config");
        std::fs::write(&conf_path, conf).unwrap();
        let sshd = find_tool("sshd").expect("sshd (openssh-server) is not installed");
        self.spawn_daemon(
            "sshd",
            &sshd.display().to_string(),
            &strings(&["-D", "-e", "-f", &conf_path.display().to_string()]),
            &[],
        );
        for &p in ports {
            self.wait_tcp("sshd", p);
        }
    }

    /// nginx serving a page titled "rawscan lab" over HTTP on `http` and
    /// over HTTPS (self-signed certificate for lab.rawscan.test, made here)
    /// on `https`.
    pub fn start_nginx(&mut self, http: &[u16], https: u16) {
        let wd = self.workdir().join("nginx");
        std::fs::create_dir_all(wd.join("www")).unwrap();
        std::fs::write(
            wd.join("www/index.html"),
            "<html><head><title>rawscan lab</title></head><body>lab</body></html>\n",
        )
        .unwrap();
        let (crt, key) = (wd.join("tls.crt"), wd.join("tls.key"));
        self.setup_cmd(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "30",
                "-keyout",
                &key.display().to_string(),
                "-out",
                &crt.display().to_string(),
                "-subj",
                "/CN=lab.rawscan.test",
                "-addext",
                &format!("subjectAltName=DNS:lab.rawscan.test,IP:{TARGET_IP}"),
            ],
        );
        let d = wd.display();
        let mut listen = String::new();
        for p in http {
            listen.push_str(&format!("        listen {TARGET_IP}:{p};\n"));
        }
        listen.push_str(&format!("        listen {TARGET_IP}:{https} ssl;\n"));
        let conf = format!(
            "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n\
             client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             server {{\n{listen}        ssl_certificate {};\n        ssl_certificate_key {};\n\
             root {d}/www;\n    }}\n}}\n",
            crt.display(),
            key.display()
        );
        let conf_path = wd.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        self.spawn_daemon(
            "nginx",
            "nginx",
            &strings(&[
                "-e",
                &wd.join("error.log").display().to_string(),
                "-c",
                &conf_path.display().to_string(),
                "-g",
                "daemon off;",
            ]),
            &[],
        );
        for &p in http.iter().chain([&https]) {
            self.wait_tcp("nginx", p);
        }
    }

    /// vsftpd on 21 (anonymous greeting only, empty root).
    pub fn start_vsftpd(&mut self) {
        let wd = self.workdir().join("vsftpd");
        std::fs::create_dir_all(wd.join("root")).unwrap();
        let conf = format!(
            "listen=YES\nlisten_address={TARGET_IP}\nlisten_port=21\nbackground=NO\n\
             anonymous_enable=YES\nlocal_enable=NO\nno_anon_password=YES\nanon_root={}\n\
             seccomp_sandbox=NO\nsecure_chroot_dir=/var/run/vsftpd/empty\nvsftpd_log_file={}\n",
            wd.join("root").display(),
            wd.join("xfer.log").display()
        );
        // vsftpd's own secure_chroot_dir, as its package creates it.
        std::fs::create_dir_all("/var/run/vsftpd/empty").expect("mkdir /var/run/vsftpd/empty");
        let conf_path = wd.join("vsftpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        self.spawn_daemon("vsftpd", "vsftpd", &[conf_path.display().to_string()], &[]);
        self.wait_tcp("vsftpd", 21);
    }

    /// redis-server on 6379, no persistence, no protected mode.
    pub fn start_redis(&mut self) {
        let wd = self.workdir().join("redis");
        std::fs::create_dir_all(&wd).unwrap();
        self.spawn_daemon(
            "redis",
            "redis-server",
            &strings(&[
                "--bind",
                TARGET_IP,
                "--port",
                "6379",
                "--dir",
                &wd.display().to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ]),
            &[],
        );
        self.wait_tcp("redis", 6379);
    }

    /// memcached on 11211 (TCP only).
    pub fn start_memcached(&mut self) {
        self.spawn_daemon(
            "memcached",
            "memcached",
            &strings(&["-u", "root", "-l", TARGET_IP, "-p", "11211", "-U", "0"]),
            &[],
        );
        self.wait_tcp("memcached", 11211);
    }

    /// Exim on 25 as mail.rawscan.test: greets, refuses every recipient.
    pub fn start_exim(&mut self) {
        let wd = self.workdir().join("exim");
        let (spool, logs) = (wd.join("spool"), wd.join("log"));
        std::fs::create_dir_all(&spool).unwrap();
        std::fs::create_dir_all(&logs).unwrap();
        // Exim writes its spool and logs as its own user.
        for d in [&spool, &logs] {
            self.setup_cmd("chown", &["Debian-exim", &d.display().to_string()]);
        }
        let conf = format!(
            "primary_hostname = mail.rawscan.test\ndaemon_smtp_ports = 25\n\
             local_interfaces = {TARGET_IP}\nspool_directory = {}\nlog_file_path = {}/%slog\n\
             keep_environment =\nrfc1413_hosts =\nhost_lookup =\nacl_smtp_rcpt = acl_rcpt\n\
             begin acl\nacl_rcpt:\n  deny\n",
            spool.display(),
            logs.display()
        );
        let conf_path = wd.join("exim.conf");
        std::fs::write(&conf_path, conf).unwrap();
        self.spawn_daemon(
            "exim",
            "exim4",
            &strings(&["-bdf", "-C", &conf_path.display().to_string()]),
            &[],
        );
        self.wait_tcp("exim", 25);
    }

    /// MariaDB on 3306: a fresh datadir; `--skip-grant-tables` so a remote
    /// client is greeted (no account matches the scanner's address).
    pub fn start_mariadb(&mut self) {
        let wd = self.workdir().join("mariadb");
        std::fs::create_dir_all(&wd).unwrap();
        let data = wd.join("data").display().to_string();
        self.setup_cmd(
            "mariadb-install-db",
            &[
                "--no-defaults",
                &format!("--datadir={data}"),
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        self.spawn_daemon(
            "mariadb",
            "mariadbd",
            &strings(&[
                "--no-defaults",
                &format!("--datadir={data}"),
                "--user=root",
                &format!("--socket={}", wd.join("sock").display()),
                &format!("--pid-file={}", wd.join("pid").display()),
                &format!("--bind-address={TARGET_IP}"),
                "--port=3306",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ]),
            &[],
        );
        self.wait_tcp("mariadb", 3306);
    }

    /// PostgreSQL on 5432 (initdb and the server run as user postgres).
    pub fn start_postgresql(&mut self) {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("postgresql is not installed")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("postgres").exists())
            .expect("no /usr/lib/postgresql/*/bin/postgres");
        let wd = self.workdir().join("pg");
        let (data, sock) = (wd.join("data"), wd.join("sock"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&sock).unwrap();
        for d in [&data, &sock] {
            self.setup_cmd("chown", &["postgres", &d.display().to_string()]);
        }
        self.setup_cmd(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                &bin.join("initdb").display().to_string(),
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        self.spawn_daemon(
            "postgresql",
            "runuser",
            &strings(&[
                "-u",
                "postgres",
                "--",
                &bin.join("postgres").display().to_string(),
                "-D",
                &data.display().to_string(),
                "-c",
                &format!("listen_addresses={TARGET_IP}"),
                "-c",
                "port=5432",
                "-k",
                &sock.display().to_string(),
            ]),
            &[],
        );
        self.wait_tcp("postgresql", 5432);
    }

    /// Hostile services in the target (harness threads): `endless` sends
    /// data forever, `silent` accepts and never answers nor closes,
    /// `garbage` sends random bytes and stays open, `reset` resets each
    /// connection after at most 100 ms.
    pub fn hostile_tcp(&mut self, endless: u16, silent: u16, garbage: u16, reset: u16) {
        let ns_path = format!("/run/netns/{}", self.target_ns);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let ports = [endless, silent, garbage, reset];
        let handle = thread::spawn(move || {
            let v4_any = [std::net::IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED)];
            let listeners = match bind_in_namespace(&ns_path, &ports, &v4_any) {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut workers = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let mut idle = true;
                for (i, l) in listeners.iter().enumerate() {
                    while let Ok((conn, _)) = l.accept() {
                        idle = false;
                        let stop = stop2.clone();
                        workers.push(thread::spawn(move || hostile_conn(i, conn, &stop)));
                    }
                }
                if idle {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        let res = rx
            .recv()
            .unwrap_or_else(|_| Err("hostile service thread died".to_string()));
        let acceptor = Acceptor {
            stop,
            handle: Some(handle),
        };
        if let Err(e) = res {
            drop(acceptor);
            panic!("hostile_tcp in {}: {e}", self.target_ns);
        }
        self.acceptors.push(acceptor);
        self.open_tcp.extend(ports);
    }
}

/// One hostile connection: 0 endless, 1 silent, 2 garbage, 3 reset.
fn hostile_conn(kind: usize, mut conn: TcpStream, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut seed = 0x2545_f491u32 ^ (kind as u32);
    let mut noise = |buf: &mut [u8]| {
        for c in buf.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *c = seed as u8;
        }
    };
    let mut sink = [0u8; 4096];
    match kind {
        0 => {
            let chunk = vec![b'A'; 64 * 1024];
            while !stop.load(Ordering::SeqCst) {
                match conn.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        }
        1 | 2 => {
            if kind == 2 {
                let mut g = [0u8; 512];
                noise(&mut g);
                let _ = conn.write_all(&g);
            }
            while !stop.load(Ordering::SeqCst) {
                match conn.read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) if kind == 2 => {
                        let mut g = [0u8; 512];
                        noise(&mut g);
                        let _ = conn.write_all(&g);
                    }
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
        }
        _ => {
            let _ = conn.read(&mut sink);
            // SO_LINGER 0: close() sends a RST.
            let l = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: setsockopt on a valid fd with a correctly sized struct.
            unsafe {
                libc::setsockopt(
                    conn.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }
}
