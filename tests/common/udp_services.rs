//! Real UDP daemons (Debian packages) for the issue-13 lab tests, run ONLY
//! inside the target namespace, bound to TARGET_IP, with their config and
//! state under the lab's workdir: tftpd-hpa (which answers from a new
//! port, RFC 1350) and freeradius (which holds an Access-Reject for its
//! `reject_delay` of one second).
//!
//! Each `start_*` waits until the daemon answers a real request from the
//! scanner namespace (panicking with its log if it exits or never does).

use super::*;

/// One datagram from the scanner namespace to TARGET_IP:`port` from an
/// UNCONNECTED socket (so an answer from any port of the target is seen);
/// returns the first answer and the port it came from.
pub fn udp_query_any_port(
    lab: &Lab,
    port: u16,
    payload: &[u8],
    timeout: Duration,
) -> Result<(Vec<u8>, u16), String> {
    let ns_path = format!("/run/netns/{}", lab.scanner_ns);
    let payload = payload.to_vec();
    thread::spawn(move || -> Result<(Vec<u8>, u16), String> {
        setns_current_thread(&ns_path)?;
        let s = UdpSocket::bind((SCANNER_IP, 0)).map_err(|e| format!("bind: {e}"))?;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| format!("timeout: {e}"))?;
        s.send_to(&payload, (TARGET_IP, port))
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = vec![0u8; 65_536];
        let (n, from) = s.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
        if from.ip().to_string() != TARGET_IP {
            return Err(format!("answer from {from}"));
        }
        buf.truncate(n);
        Ok((buf, from.port()))
    })
    .join()
    .unwrap_or_else(|_| Err("udp query thread panicked".to_string()))
}

/// A RADIUS Access-Request (RFC 2865) with identifier `id` and a
/// User-Name; any client secret: the server rejects it anyway.
pub fn radius_request(id: u8) -> Vec<u8> {
    let mut p = vec![1, id, 0, 0];
    p.extend_from_slice(b"rawscan-lab-auth");
    p.extend_from_slice(&[1, 6, b't', b'e', b's', b't']);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

impl Lab {
    /// Wait (15 s) until something in the target is bound to `port`/udp.
    fn wait_udp_bound(&mut self, what: &str, port: u16) {
        let idx = self.daemons.len() - 1;
        let start = Instant::now();
        while !self.udp_bound_in_target(port) {
            if let Ok(Some(status)) = self.daemons[idx].child.try_wait() {
                panic!(
                    "{what} exited ({status}) before binding {port}/udp; its log:\n{}",
                    self.daemons[idx].log_text()
                );
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!(
                    "{what}: {port}/udp not bound after 15 s; log:\n{}",
                    self.daemons[idx].log_text()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// tftpd-hpa on 69/udp with an empty root: a read request draws
    /// `ERROR 1 File not found`, sent from a new port of the server.
    /// Waits until it answers so (and checks the answer's port differs).
    pub fn start_tftpd(&mut self) {
        let root = self.workdir().join("tftp");
        std::fs::create_dir_all(&root).expect("mkdir tftp root");
        let args: Vec<String> = [
            "-L",
            "-v",
            "-u",
            "root",
            "-s",
            &root.display().to_string(),
            "-a",
            &format!("{TARGET_IP}:69"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.spawn_daemon("tftpd-hpa", "in.tftpd", &args, &[]);
        self.wait_udp_bound("tftpd-hpa", 69);
        let rrq = b"\x00\x01lab-check.txt\x00octet\x00";
        let (answer, from) = udp_query_any_port(self, 69, rrq, Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("tftpd-hpa does not answer a read request: {e}"));
        assert_eq!(&answer[..4], b"\x00\x05\x00\x01", "ERROR 1: {answer:02x?}");
        assert_ne!(from, 69, "tftpd-hpa answers from a new port (RFC 1350)");
        self.open_udp.insert(69);
    }

    /// freeradius on 1812 (auth) and 1813 (accounting) with a client entry
    /// for the lab and every request rejected after the default
    /// `reject_delay` of one second. Waits until it rejects a request.
    pub fn start_freeradius(&mut self) {
        let r = self.workdir().join("raddb");
        std::fs::create_dir_all(&r).expect("mkdir raddb");
        let d = r.display();
        let conf = format!(
            "prefix = /usr\nexec_prefix = /usr\nsysconfdir = /etc\nlocalstatedir = /var\n\
             sbindir = /usr/sbin\nlogdir = {d}\nraddbdir = {d}\nradacctdir = {d}\n\
             name = freeradius\nconfdir = {d}\nmodconfdir = {d}\nrun_dir = {d}\ndb_dir = {d}\n\
             libdir = /usr/lib/freeradius\npidfile = {d}/radiusd.pid\nmax_request_time = 30\n\
             cleanup_delay = 5\nmax_requests = 1024\nhostname_lookups = no\n\
             security {{\n allow_core_dumps = no\n max_attributes = 200\n reject_delay = 1\n \
             status_server = no\n}}\n\
             log {{\n destination = stdout\n}}\n\
             client lab {{\n ipaddr = 198.18.0.0/15\n secret = rawscan-lab\n}}\n\
             modules {{\n always reject {{\n  rcode = reject\n }}\n always ok {{\n  rcode = ok\n }}\n}}\n\
             server default {{\n\
              listen {{\n  type = auth\n  ipaddr = {TARGET_IP}\n  port = 1812\n }}\n\
              listen {{\n  type = acct\n  ipaddr = {TARGET_IP}\n  port = 1813\n }}\n\
              authorize {{\n  reject\n }}\n authenticate {{\n }}\n\
              preacct {{\n  ok\n }}\n accounting {{\n  ok\n }}\n}}\n"
        );
        std::fs::write(r.join("radiusd.conf"), conf).expect("write radiusd.conf");
        let args: Vec<String> = vec!["-f".into(), "-d".into(), d.to_string()];
        self.spawn_daemon("freeradius", "freeradius", &args, &[]);
        self.wait_udp_bound("freeradius", 1812);
        self.wait_udp_bound("freeradius", 1813);
        let t = Instant::now();
        let answer = self
            .udp_query(1812, &radius_request(7), Duration::from_secs(4))
            .unwrap_or_else(|e| {
                panic!(
                    "freeradius does not answer an Access-Request: {e}; log:\n{}",
                    self.daemons
                        .last()
                        .map(|d| d.log_text())
                        .unwrap_or_default()
                )
            });
        assert_eq!(
            &answer[..2],
            &[3, 7],
            "Access-Reject to id 7: {answer:02x?}"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "the reject came at once ({:?}): reject_delay is not in force",
            t.elapsed()
        );
        // 1813 drops rawscan's empty datagram (not accounting): silent.
        self.open_udp.insert(1812);
        self.dropped_udp.insert(1813);
    }
}
