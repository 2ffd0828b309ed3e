//! Matchers: what a service's reply bytes say about it.
//!
//! Role: one small pure function per protocol, `fn(&[u8]) -> Option<Found>`,
//! written from the protocol's specification and from what real servers
//! send (the fixtures under `fixtures/` are replies captured from the lab's
//! Debian daemons). The probe table (`table.rs`) says which matcher runs on
//! which probe's reply.
//!
//! Invariants:
//! - No I/O, no clock, no allocation beyond the `Found` returned.
//! - Never panics on any input: every access is `get`-based or follows an
//!   explicit length check; binary walkers (BER, BSON, DNS names, AMQP
//!   tables) are bounded by the input and by fixed depth/count limits.
//! - Text copied out of a reply is bounded (`MAX_TEXT`) and has control
//!   characters replaced, so outputs can print it as is.
//! - `None` means "not this protocol". A `Found` with `soft` set names the
//!   service but leaves room for a more specific probe to add product and
//!   version.

/// A matcher: reply bytes in, what they say about the service out.
pub type MatchFn = fn(&[u8]) -> Option<Found>;

/// Every matcher by name (for the fuzz target and robustness tests).
pub static ALL: &[(&str, MatchFn)] = &[
    ("ssh", ssh),
    ("ftp", ftp),
    ("smtp", smtp),
    ("pop3", pop3),
    ("imap", imap),
    ("mysql", mysql),
    ("vnc", vnc),
    ("telnet", telnet),
    ("rsync", rsync),
    ("nntp", nntp),
    ("http", http),
    ("rtsp", rtsp),
    ("sip", sip),
    ("redis", redis),
    ("memcached", memcached),
    ("zookeeper", zookeeper),
    ("postgresql", postgresql),
    ("dns", dns),
    ("dns_tcp", dns_tcp),
    ("snmp", snmp),
    ("ntp", ntp),
    ("ntp_control", ntp_control),
    ("ldap", ldap),
    ("smb", smb),
    ("rdp", rdp),
    ("mqtt", mqtt),
    ("amqp", amqp),
    ("mongodb", mongodb),
    ("mssql", mssql),
    ("socks5", socks5),
];

/// Longest text kept from a reply for one field.
pub const MAX_TEXT: usize = 160;

/// What a matcher learned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Service name, nmap's vocabulary (`ssh`, `http`, `domain`, ...).
    pub service: &'static str,
    pub product: Option<String>,
    pub version: Option<String>,
    pub extrainfo: Option<String>,
    pub hostname: Option<String>,
    pub ostype: Option<String>,
    pub cpe: Vec<String>,
    /// Extra facts shown like nmap script lines: (`http-title`, "…").
    pub details: Vec<(&'static str, String)>,
    /// The service is known but a later probe may say more.
    pub soft: bool,
    /// The reply says the port speaks TLS (e.g. nginx's "plain HTTP
    /// request was sent to HTTPS port"): try TLS next.
    pub wants_tls: bool,
}

impl Found {
    fn new(service: &'static str) -> Found {
        Found {
            service,
            ..Found::default()
        }
    }
    fn product(mut self, p: impl Into<String>) -> Found {
        self.product = Some(p.into());
        self
    }
    fn version_opt(mut self, v: Option<String>) -> Found {
        self.version = v.filter(|s| !s.is_empty());
        self
    }
    fn extra(mut self, e: impl Into<String>) -> Found {
        let e = e.into();
        if !e.is_empty() {
            self.extrainfo = Some(e);
        }
        self
    }
    fn cpe(mut self, base: &str) -> Found {
        let c = match &self.version {
            Some(v) => format!("{base}:{}", cpe_version(v)),
            None => base.to_string(),
        };
        self.cpe.push(c);
        self
    }
    fn soft(mut self) -> Found {
        self.soft = true;
        self
    }
}

/// The version part of a CPE: the first word, lower case.
fn cpe_version(v: &str) -> String {
    v.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Printable text from bytes: lossy UTF-8, control characters become
/// spaces, trimmed, at most `MAX_TEXT` characters.
pub fn text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let t: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    t.trim().to_string()
}

/// The first line (without CR/LF), at most 512 bytes looked at.
fn first_line(b: &[u8]) -> &[u8] {
    let b = &b[..b.len().min(512)];
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let l = &b[..end];
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// The word (up to whitespace, ';' or ',') that follows `after` in `s`.
fn word_after<'a>(s: &'a str, after: &str) -> Option<&'a str> {
    let i = s.find(after)? + after.len();
    let rest = s.get(i..)?.trim_start();
    let w = rest
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .next()?;
    (!w.is_empty()).then_some(w)
}

/// A leading dotted version number (`1.22.1` from `1.22.1-Debian`).
fn leading_version(s: &str) -> Option<String> {
    let v: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    (v.chars().next().is_some_and(|c| c.is_ascii_digit())).then_some(v)
}

fn u16be(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn linux_os(s: &str) -> Option<String> {
    ["Debian", "Ubuntu", "Linux", "Raspbian", "Fedora", "Red Hat"]
        .iter()
        .any(|k| s.contains(k))
        .then(|| "Linux".to_string())
}

// ---------------------------------------------------------------------------
// Banner protocols (the service speaks first)
// ---------------------------------------------------------------------------

/// SSH identification string (RFC 4253 §4.2): `SSH-protoversion-softwareversion SP comments`.
pub fn ssh(b: &[u8]) -> Option<Found> {
    let line = first_line(b);
    let rest = line.strip_prefix(b"SSH-")?;
    let s = std::str::from_utf8(rest).ok()?;
    let (proto, soft) = s.split_once('-')?;
    if !proto.chars().all(|c| c.is_ascii_digit() || c == '.') || proto.is_empty() {
        return None;
    }
    let proto = if proto == "1.99" { "2.0" } else { proto };
    let (software, comment) = match soft.split_once(' ') {
        Some((a, c)) => (a, c.trim()),
        None => (soft, ""),
    };
    let mut f = Found::new("ssh").extra(format!("protocol {proto}"));
    if let Some(v) = software.strip_prefix("OpenSSH_") {
        let mut version = v.to_string();
        if !comment.is_empty() {
            // "Debian-2+deb12u3" is written "Debian 2+deb12u3", as nmap does.
            version.push(' ');
            version.push_str(&comment.replacen('-', " ", 1));
        }
        f = f
            .product("OpenSSH")
            .version_opt(Some(text(version.as_bytes())));
        f.cpe
            .push(format!("cpe:/a:openbsd:openssh:{}", cpe_version(v)));
    } else if let Some(v) = software.strip_prefix("dropbear_") {
        f = f
            .product("Dropbear sshd")
            .version_opt(Some(text(v.as_bytes())))
            .cpe("cpe:/a:matt_johnston:dropbear_ssh_server");
    } else if let Some((p, v)) = software.split_once('_') {
        f = f
            .product(text(p.as_bytes()))
            .version_opt(Some(text(v.as_bytes())));
    } else {
        f = f.product(text(software.as_bytes()));
    }
    f.ostype = linux_os(comment);
    Some(f)
}

/// FTP greeting (RFC 959): `220 text` (or a `220-` multi-line greeting).
pub fn ftp(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    if let Some(r) = line.strip_prefix("500 OOPS: ") {
        // vsftpd's refusal still names it.
        return Some(
            Found::new("ftp")
                .product("vsftpd")
                .extra(format!("broken: {}", r.trim_start_matches("vsftpd: "))),
        );
    }
    if !(line.starts_with("220 ") || line.starts_with("220-")) {
        return None;
    }
    let f = Found::new("ftp");
    if let Some(v) = word_after(&line, "vsFTPd ") {
        let v = v.trim_end_matches(')');
        return Some(
            f.product("vsftpd")
                .version_opt(Some(v.into()))
                .cpe("cpe:/a:beasts:vsftpd"),
        );
    }
    if let Some(v) = word_after(&line, "ProFTPD ") {
        let f = f.product("ProFTPD").version_opt(Some(v.into()));
        let f = if line.contains("(Debian)") {
            f.extra("Debian")
        } else {
            f
        };
        return Some(f.cpe("cpe:/a:proftpd:proftpd"));
    }
    if line.contains("Pure-FTPd") {
        return Some(f.product("Pure-FTPd"));
    }
    if let Some(v) = word_after(&line, "FileZilla Server ") {
        return Some(f.product("FileZilla ftpd").version_opt(leading_version(v)));
    }
    if line.contains("Microsoft FTP Service") {
        return Some(f.product("Microsoft ftpd"));
    }
    find_ci(line.as_bytes(), b"ftp").map(|_| f)
}

/// SMTP greeting (RFC 5321 §4.2): `220 domain ESMTP text`.
pub fn smtp(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    let rest = line
        .strip_prefix("220 ")
        .or_else(|| line.strip_prefix("220-"))?;
    if !rest.contains("SMTP") && !rest.contains("smtp") && !rest.contains("Postfix") {
        return None;
    }
    let host = rest.split_whitespace().next().map(str::to_string);
    let mut f = Found::new("smtp");
    if let Some(v) = word_after(rest, "ESMTP Exim ") {
        f = f
            .product("Exim smtpd")
            .version_opt(Some(v.into()))
            .cpe("cpe:/a:exim:exim");
    } else if rest.contains("ESMTP Postfix") {
        f = f.product("Postfix smtpd").cpe("cpe:/a:postfix:postfix");
        if rest.contains("(Debian") || rest.contains("(Ubuntu") {
            f.ostype = Some("Linux".into());
        }
    } else if let Some(v) = word_after(rest, "ESMTP Sendmail ") {
        f = f
            .product("Sendmail")
            .version_opt(Some(v.split('/').next().unwrap_or(v).into()))
            .cpe("cpe:/a:sendmail:sendmail");
    } else if rest.contains("OpenSMTPD") {
        f = f.product("OpenSMTPD");
    } else if rest.contains("Microsoft ESMTP MAIL Service") {
        f = f.product("Microsoft ESMTP");
    }
    // A domain, not a word of the greeting, is a host name.
    f.hostname = host.filter(|h| h.contains('.') || h.chars().all(|c| c.is_ascii_alphanumeric()));
    Some(f)
}

/// POP3 greeting (RFC 1939 §4): `+OK text`.
pub fn pop3(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    let rest = line.strip_prefix("+OK")?;
    let f = Found::new("pop3");
    if rest.contains("Dovecot") {
        let f = f.product("Dovecot pop3d").cpe("cpe:/a:dovecot:dovecot");
        return Some(if rest.contains("(Debian)") || rest.contains("(Ubuntu)") {
            Found {
                ostype: Some("Linux".into()),
                ..f
            }
        } else {
            f
        });
    }
    if let Some(v) = word_after(rest, "Cyrus POP3 v") {
        return Some(f.product("Cyrus pop3d").version_opt(leading_version(v)));
    }
    if rest.contains("Courier") {
        return Some(f.product("Courier pop3d"));
    }
    Some(f)
}

/// IMAP greeting (RFC 9051 §7.1): `* OK [CAPABILITY …] text`.
pub fn imap(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    let rest = line
        .strip_prefix("* OK")
        .or_else(|| line.strip_prefix("* PREAUTH"))?;
    let f = Found::new("imap");
    if rest.contains("Dovecot") {
        let mut f = f.product("Dovecot imapd").cpe("cpe:/a:dovecot:dovecot");
        if rest.contains("(Debian)") || rest.contains("(Ubuntu)") {
            f.ostype = Some("Linux".into());
        }
        return Some(f);
    }
    if let Some(v) = word_after(rest, "Cyrus IMAP v") {
        return Some(f.product("Cyrus imapd").version_opt(leading_version(v)));
    }
    if rest.contains("Courier-IMAP") {
        return Some(f.product("Courier Imapd"));
    }
    if rest.contains("Microsoft Exchange") {
        return Some(f.product("Microsoft Exchange imapd"));
    }
    Some(f)
}

/// MySQL/MariaDB initial handshake (protocol 10) or an early error packet.
pub fn mysql(b: &[u8]) -> Option<Found> {
    let len =
        usize::from(*b.first()?) | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?) << 16;
    if *b.get(3)? != 0 || !(3..=4096).contains(&len) {
        return None;
    }
    let body = b.get(4..)?;
    match *body.first()? {
        0x0a => {
            let v = body.get(1..)?;
            let end = v.iter().take(64).position(|&c| c == 0)?;
            let ver = std::str::from_utf8(&v[..end]).ok()?;
            if ver.is_empty() || !ver.chars().all(|c| c.is_ascii_graphic()) {
                return None;
            }
            let f = Found::new("mysql");
            if let Some(i) = ver.find("-MariaDB") {
                // "5.5.5-10.11.6-MariaDB-0+deb12u1": the 5.5.5- prefix is a
                // compatibility marker; the real version follows.
                let core = ver[..i].trim_start_matches("5.5.5-");
                let mut version = core.to_string();
                if let Some(tail) = ver[i + "-MariaDB".len()..].strip_prefix('-') {
                    version.push('-');
                    version.push_str(tail);
                }
                let mut f = f
                    .product("MariaDB")
                    .version_opt(Some(version))
                    .cpe("cpe:/a:mariadb:mariadb");
                f.ostype = linux_os(ver);
                Some(f)
            } else {
                Some(
                    f.product("MySQL")
                        .version_opt(Some(ver.into()))
                        .cpe("cpe:/a:mysql:mysql"),
                )
            }
        }
        0xff => {
            // Error before the handshake, e.g. 1130 "Host … is not allowed".
            let code = u16::from_le_bytes([*body.get(1)?, *body.get(2)?]);
            let msg = text(body.get(3..)?);
            let product = if msg.contains("MariaDB") {
                "MariaDB"
            } else {
                "MySQL"
            };
            Some(
                Found::new("mysql")
                    .product(product)
                    .extra(format!("unauthorized; error {code}")),
            )
        }
        _ => None,
    }
}

/// VNC (RFB 6143 §7.1.1): `RFB 003.008\n`.
pub fn vnc(b: &[u8]) -> Option<Found> {
    let v = b.get(..12)?;
    if !v.starts_with(b"RFB ") || v[7] != b'.' || v[11] != b'\n' {
        return None;
    }
    let major: u32 = std::str::from_utf8(&v[4..7]).ok()?.parse().ok()?;
    let minor: u32 = std::str::from_utf8(&v[8..11]).ok()?.parse().ok()?;
    Some(
        Found::new("vnc")
            .product("VNC")
            .extra(format!("protocol {major}.{minor}")),
    )
}

/// Telnet (RFC 854): the server opens with IAC option negotiation.
pub fn telnet(b: &[u8]) -> Option<Found> {
    let mut i = 0;
    let mut cmds = 0;
    while b.get(i) == Some(&0xff) {
        match b.get(i + 1)? {
            0xfb..=0xfe => i += 3,
            0xfa => {
                // Subnegotiation: up to IAC SE.
                let end = b.get(i..)?.windows(2).position(|w| w == [0xff, 0xf0])?;
                i += end + 2;
            }
            0xf0..=0xf9 => i += 2,
            _ => return None,
        }
        cmds += 1;
    }
    if cmds == 0 {
        return None;
    }
    let mut f = Found::new("telnet");
    let rest = text(b.get(i..).unwrap_or(&[]));
    if let Some(p) = rest.find(" login:") {
        let host = rest[..p].split_whitespace().last().unwrap_or("");
        if !host.is_empty() {
            f.hostname = Some(host.to_string());
        }
    }
    if rest.contains("Debian") || rest.contains("Ubuntu") || rest.contains("Linux") {
        f = f.product("Linux telnetd");
        f.ostype = Some("Linux".into());
    }
    Some(f)
}

/// rsync daemon greeting: `@RSYNCD: 31.0`.
pub fn rsync(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    // "@RSYNCD: 32.0 sha512 sha256 …": the version, then (3.2+) checksums.
    let v = line.strip_prefix("@RSYNCD: ")?.split_whitespace().next()?;
    leading_version(v)?;
    Some(Found::new("rsync").extra(format!("protocol version {v}")))
}

/// NNTP greeting (RFC 3977 §5.1): `200`/`201` text.
pub fn nntp(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    if !(line.starts_with("200 ") || line.starts_with("201 ")) {
        return None;
    }
    if !line.contains("NNTP") && !line.contains("INN") && !line.contains("news") {
        return None;
    }
    let mut f = Found::new("nntp");
    if let Some(v) = word_after(&line, "INN ") {
        f = f.product("INN").version_opt(leading_version(v));
    }
    f.hostname = line.split_whitespace().nth(1).map(str::to_string);
    Some(f)
}

// ---------------------------------------------------------------------------
// Text request/response protocols
// ---------------------------------------------------------------------------

/// Split an HTTP-like message (`HTTP/1.1 200 OK`, `RTSP/1.0 …`,
/// `SIP/2.0 …`) into status line, headers and body.
struct Message<'a> {
    status: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

fn message<'a>(b: &'a [u8], proto: &str) -> Option<Message<'a>> {
    let head_end = find(b, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| find(b, b"\n\n").map(|i| (i, i + 2)));
    let (head, body) = match head_end {
        Some((h, s)) => (&b[..h], &b[s..]),
        None => (&b[..b.len().min(8192)], &b[b.len()..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let status = lines.next()?.trim_end();
    let rest = status.strip_prefix(proto)?;
    // "HTTP/1.1 200 OK": version digits, a space, a 3-digit code.
    let (ver, code) = rest.split_once(' ')?;
    if !ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let code = code.get(..3)?;
    if !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let headers = lines
        .take(100)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    Some(Message {
        status,
        headers,
        body,
    })
}

impl Message<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
    fn code(&self) -> &str {
        self.status.split_whitespace().nth(1).unwrap_or_default()
    }
}

/// `Product/1.2.3 (extra)` → (product, version, extra), as Server and
/// User-Agent headers are written (RFC 9110 §10.2.4).
fn product_token(s: &str) -> (String, Option<String>, Option<String>) {
    let s = s.trim();
    let (first, extra) = match s.find(" (") {
        Some(i) => (&s[..i], Some(s[i + 2..].trim_end_matches(')').to_string())),
        None => (s, None),
    };
    let first = first.split_whitespace().next().unwrap_or(first);
    match first.split_once('/') {
        Some((p, v)) => (text(p.as_bytes()), Some(text(v.as_bytes())), extra),
        None => (text(s.as_bytes()), None, None),
    }
}

/// The `<title>` of an HTML body.
fn html_title(body: &[u8]) -> Option<String> {
    let body = &body[..body.len().min(64 * 1024)];
    let start = find_ci(body, b"<title")?;
    let after = start + body.get(start..)?.iter().position(|&c| c == b'>')? + 1;
    let len = find_ci(body.get(after..)?, b"</title")?;
    let t = text(body.get(after..after + len)?);
    (!t.is_empty()).then_some(t)
}

/// A JSON string value `"key" : "value"` anywhere in `body` (no escapes in
/// the value; enough for the version fields APIs return).
fn json_str(body: &[u8], key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let i = find(body, pat.as_bytes())? + pat.len();
    let rest = body.get(i..)?;
    let rest = &rest[rest.iter().position(|c| !c.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b":")?;
    let rest = &rest[rest.iter().position(|c| !c.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().take(MAX_TEXT).position(|&c| c == b'"')?;
    Some(text(&rest[..end]))
}

/// HTTP response (RFC 9112): product from `Server`, the page title, and
/// the APIs that answer over HTTP (Elasticsearch, Docker, Kubernetes,
/// CouchDB).
pub fn http(b: &[u8]) -> Option<Found> {
    let m = message(b, "HTTP/")?;
    let body = m.body;
    let mut f = Found::new("http");
    if m.code() == "400" && find(body, b"plain HTTP request was sent to HTTPS port").is_some() {
        f.wants_tls = true;
    }
    if let Some(t) = html_title(body) {
        f.details.push(("http-title", t));
    }
    // APIs identified by their JSON.
    if find(body, b"You Know, for Search").is_some() {
        let mut f = f
            .product("Elasticsearch REST API")
            .version_opt(json_str(body, "number"))
            .cpe("cpe:/a:elastic:elasticsearch");
        if let Some(c) = json_str(body, "cluster_name") {
            f.extrainfo = Some(format!("cluster: {c}"));
        }
        return Some(f);
    }
    if json_str(body, "couchdb").is_some() {
        return Some(
            f.product("CouchDB httpd")
                .version_opt(json_str(body, "version"))
                .cpe("cpe:/a:apache:couchdb"),
        );
    }
    if let Some(gv) = json_str(body, "gitVersion") {
        let mut f = Found::new("kubernetes")
            .product("Kubernetes API server")
            .version_opt(Some(gv.trim_start_matches('v').to_string()))
            .cpe("cpe:/a:kubernetes:kubernetes");
        f.extrainfo = json_str(body, "platform");
        return Some(f);
    }
    let server = m.header("Server");
    if let Some(s) = server
        && let Some(v) = s.strip_prefix("Docker/")
    {
        let (ver, extra) = match v.split_once(' ') {
            Some((a, e)) => (a, Some(e.trim_matches(|c| c == '(' || c == ')'))),
            None => (v, None),
        };
        let mut f = Found::new("docker")
            .product("Docker")
            .version_opt(Some(text(ver.as_bytes())))
            .cpe("cpe:/a:docker:docker");
        let api = json_str(body, "ApiVersion");
        f.extrainfo = match (api, extra) {
            (Some(a), _) => Some(format!("API {a}")),
            (None, Some(e)) => Some(e.to_string()),
            _ => None,
        };
        return Some(f);
    }
    if json_str(body, "ApiVersion").is_some() && json_str(body, "Version").is_some() {
        return Some(
            Found::new("docker")
                .product("Docker")
                .version_opt(json_str(body, "Version"))
                .cpe("cpe:/a:docker:docker"),
        );
    }
    if find(body, b"\"kind\"").is_some()
        && find(body, b"\"Status\"").is_some()
        && find(body, b"system:anonymous").is_some()
    {
        // An API server refusing anonymous access: Kubernetes, version unknown.
        return Some(
            Found::new("kubernetes")
                .product("Kubernetes API server")
                .soft(),
        );
    }
    let Some(s) = server else {
        return Some(f);
    };
    let (p, v, extra) = product_token(s);
    let f = match p.as_str() {
        "nginx" => f
            .product("nginx")
            .version_opt(v)
            .cpe("cpe:/a:igor_sysoev:nginx"),
        "Apache" => f
            .product("Apache httpd")
            .version_opt(v)
            .extra(extra.unwrap_or_default())
            .cpe("cpe:/a:apache:http_server"),
        "Microsoft-IIS" => f
            .product("Microsoft IIS httpd")
            .version_opt(v)
            .cpe("cpe:/a:microsoft:internet_information_services"),
        "lighttpd" => f
            .product("lighttpd")
            .version_opt(v)
            .cpe("cpe:/a:lighttpd:lighttpd"),
        "Caddy" => f.product("Caddy httpd"),
        _ => f.product(p).version_opt(v).extra(extra.unwrap_or_default()),
    };
    Some(f)
}

/// RTSP (RFC 2326 / 7826) reply to OPTIONS.
pub fn rtsp(b: &[u8]) -> Option<Found> {
    let m = message(b, "RTSP/")?;
    let mut f = Found::new("rtsp");
    if let Some(s) = m.header("Server") {
        let (p, v, _) = product_token(s);
        f = f.product(p).version_opt(v);
    }
    Some(f)
}

/// SIP (RFC 3261) reply to OPTIONS, over UDP or TCP.
pub fn sip(b: &[u8]) -> Option<Found> {
    let m = message(b, "SIP/")?;
    let mut f = Found::new("sip");
    if let Some(s) = m.header("Server").or_else(|| m.header("User-Agent")) {
        if let Some(v) = s.strip_prefix("Asterisk PBX ") {
            f = f
                .product("Asterisk")
                .version_opt(Some(text(v.as_bytes())))
                .cpe("cpe:/a:digium:asterisk");
        } else {
            let (p, v, _) = product_token(s);
            f = f.product(p).version_opt(v);
        }
    }
    Some(f)
}

/// Redis (RESP) reply to INFO: a bulk string with `redis_version:`; or the
/// errors a locked-down server answers with.
pub fn redis(b: &[u8]) -> Option<Found> {
    let f = Found::new("redis").product("Redis key-value store");
    if b.starts_with(b"$") {
        let i = find(b, b"redis_version:")? + "redis_version:".len();
        let rest = b.get(i..)?;
        let end = rest
            .iter()
            .take(40)
            .position(|&c| c == b'\r' || c == b'\n')?;
        let v = text(&rest[..end]);
        return Some(f.version_opt(Some(v)).cpe("cpe:/a:redislabs:redis"));
    }
    let line = text(first_line(b));
    if line.starts_with("-NOAUTH") || line.starts_with("-ERR operation not permitted") {
        return Some(f.extra("authentication required"));
    }
    if line.starts_with("-DENIED Redis") {
        return Some(f.extra("protected mode"));
    }
    None
}

/// memcached text protocol: `VERSION 1.6.18`.
pub fn memcached(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    let v = line.strip_prefix("VERSION ")?;
    leading_version(v)?;
    Some(
        Found::new("memcached")
            .product("Memcached")
            .version_opt(Some(v.to_string()))
            .cpe("cpe:/a:memcached:memcached"),
    )
}

/// ZooKeeper four-letter word `srvr`: `Zookeeper version: 3.8.1-…, built on …`.
pub fn zookeeper(b: &[u8]) -> Option<Found> {
    let line = text(first_line(b));
    let v = line.strip_prefix("Zookeeper version: ")?;
    let v = v.split(',').next().unwrap_or(v);
    let v = v.split('-').next().unwrap_or(v);
    Some(
        Found::new("zookeeper")
            .product("Zookeeper")
            .version_opt(leading_version(v))
            .cpe("cpe:/a:apache:zookeeper"),
    )
}

// ---------------------------------------------------------------------------
// Binary protocols
// ---------------------------------------------------------------------------

/// PostgreSQL (protocol 3.0) reply to a StartupMessage: ErrorResponse 'E'
/// or an AuthenticationRequest 'R' (and, when the server lets us in, the
/// `server_version` ParameterStatus).
pub fn postgresql(b: &[u8]) -> Option<Found> {
    let tag = *b.first()?;
    let len = u32be(b, 1)? as usize;
    if !(8..=16 * 1024).contains(&len) {
        return None;
    }
    let f = Found::new("postgresql").product("PostgreSQL DB");
    match tag {
        b'E' => {
            // Fields: type byte + NUL-terminated string; S (severity) comes first.
            let fields = b.get(5..(1 + len).min(b.len()))?;
            let sev = fields.first()?;
            if *sev != b'S' && *sev != b'V' {
                return None;
            }
            find(fields, b"FATAL").or_else(|| find(fields, b"ERROR"))?;
            Some(f.cpe("cpe:/a:postgresql:postgresql"))
        }
        b'R' => {
            if len > 64 {
                return None;
            }
            let code = u32be(b, 5)?;
            if code > 12 {
                return None;
            }
            let mut f = f;
            // server_version arrives in a ParameterStatus ('S') after AuthenticationOk.
            if let Some(i) = find(b, b"server_version\0") {
                let rest = b.get(i + 15..)?;
                let end = rest.iter().take(80).position(|&c| c == 0)?;
                f = f.version_opt(Some(text(&rest[..end])));
            }
            Some(f.cpe("cpe:/a:postgresql:postgresql"))
        }
        _ => None,
    }
}

/// Skip a DNS name at `at` (labels or a compression pointer); the offset after it.
fn dns_skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let l = *b.get(at)?;
        match l {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l < 64 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
    None
}

/// The first TXT string of the first answer of a DNS response with our ID.
fn dns_txt(b: &[u8]) -> Option<Result<String, u8>> {
    if u16be(b, 0)? != crate::version::table::DNS_ID || b.get(2)? & 0x80 == 0 {
        return None;
    }
    let rcode = b.get(3)? & 0x0f;
    let qd = u16be(b, 4)?;
    let an = u16be(b, 6)?;
    if qd > 4 {
        return None;
    }
    let mut at = 12;
    for _ in 0..qd {
        at = dns_skip_name(b, at)? + 4;
    }
    if an == 0 {
        return Some(Err(rcode));
    }
    at = dns_skip_name(b, at)?;
    let rtype = u16be(b, at)?;
    let rdlen = usize::from(u16be(b, at + 8)?);
    let rdata = b.get(at + 10..at + 10 + rdlen)?;
    if rtype != 16 {
        return Some(Err(rcode));
    }
    let n = usize::from(*rdata.first()?);
    Some(Ok(text(rdata.get(1..1 + n)?)))
}

/// DNS (RFC 1035) reply to `version.bind` CH TXT, over UDP.
pub fn dns(b: &[u8]) -> Option<Found> {
    let f = Found::new("domain");
    let txt = match dns_txt(b)? {
        Ok(t) => t,
        Err(_) => return Some(f),
    };
    let f = if let Some(v) = txt.strip_prefix("dnsmasq-") {
        f.product("dnsmasq")
            .version_opt(Some(v.into()))
            .cpe("cpe:/a:thekelleys:dnsmasq")
    } else if let Some(v) = txt.strip_prefix("unbound ") {
        f.product("Unbound")
            .version_opt(Some(v.into()))
            .cpe("cpe:/a:nlnetlabs:unbound")
    } else if txt.starts_with("PowerDNS") {
        f.product("PowerDNS")
            .version_opt(txt.split_whitespace().find_map(leading_version))
    } else if txt.starts_with("9.") {
        // BIND: "9.18.24-1-Debian".
        let (v, extra) = match txt.split_once('-') {
            Some((v, e)) => (v.to_string(), e.to_string()),
            None => (txt.clone(), String::new()),
        };
        let mut f = f
            .product("ISC BIND")
            .version_opt(Some(v))
            .cpe("cpe:/a:isc:bind");
        if extra.contains("Debian") || extra.contains("Ubuntu") {
            f.ostype = Some("Linux".into());
            f.extrainfo = Some(
                extra
                    .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
                    .into(),
            );
        }
        f
    } else {
        f.extra(txt)
    };
    Some(f)
}

/// DNS over TCP: the same message behind a 2-byte length (RFC 1035 §4.2.2).
pub fn dns_tcp(b: &[u8]) -> Option<Found> {
    let len = usize::from(u16be(b, 0)?);
    dns(b.get(2..(2 + len).min(b.len()))?)
}

/// A BER TLV at `at`: (tag, value range, next offset).
fn ber(b: &[u8], at: usize) -> Option<(u8, std::ops::Range<usize>)> {
    let tag = *b.get(at)?;
    let l0 = *b.get(at + 1)?;
    let (len, hdr) = if l0 < 0x80 {
        (usize::from(l0), 2)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(at + 2 + i)?);
        }
        (len, 2 + n)
    };
    let start = at + hdr;
    let end = start.checked_add(len)?;
    (end <= b.len()).then_some((tag, start..end))
}

/// BER OBJECT IDENTIFIER contents as dotted text.
fn oid_text(v: &[u8]) -> Option<String> {
    let first = *v.first()?;
    let mut parts = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut acc: u64 = 0;
    for &c in v.get(1..)? {
        acc = acc.checked_mul(128)? | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            parts.push(acc);
            acc = 0;
        }
        if parts.len() > 64 {
            return None;
        }
    }
    Some(
        parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// SNMP (RFC 3416) GetResponse to sysDescr.0 and sysObjectID.0.
pub fn snmp(b: &[u8]) -> Option<Found> {
    let (t, msg) = ber(b, 0)?;
    if t != 0x30 {
        return None;
    }
    let (t, ver) = ber(b, msg.start)?;
    if t != 0x02 {
        return None;
    }
    let version = match b.get(ver.clone())? {
        [0] => "SNMPv1",
        [1] => "SNMPv2c",
        _ => return None,
    };
    let (t, comm) = ber(b, ver.end)?;
    if t != 0x04 {
        return None;
    }
    let community = text(b.get(comm.clone())?);
    let (t, pdu) = ber(b, comm.end)?;
    if t != 0xa2 {
        return None;
    }
    // request-id, error-status, error-index, varbind list.
    let (_, rid) = ber(b, pdu.start)?;
    let (_, es) = ber(b, rid.end)?;
    let (_, ei) = ber(b, es.end)?;
    let (t, vbl) = ber(b, ei.end)?;
    if t != 0x30 {
        return None;
    }
    let mut descr = None;
    let mut object_id = None;
    let mut at = vbl.start;
    for _ in 0..8 {
        if at >= vbl.end {
            break;
        }
        let (t, vb) = ber(b, at)?;
        if t != 0x30 {
            break;
        }
        let (t, oid) = ber(b, vb.start)?;
        if t != 0x06 {
            break;
        }
        let (vt, val) = ber(b, oid.end)?;
        match (oid_text(b.get(oid)?)?.as_str(), vt) {
            ("1.3.6.1.2.1.1.1.0", 0x04) => descr = Some(text(b.get(val)?)),
            ("1.3.6.1.2.1.1.2.0", 0x06) => object_id = oid_text(b.get(val)?),
            _ => {}
        }
        at = vb.end;
    }
    let product = match object_id.as_deref() {
        Some(o) if o.starts_with("1.3.6.1.4.1.8072.") => "net-snmp",
        Some(o) if o.starts_with("1.3.6.1.4.1.311.") => "Microsoft Windows SNMP",
        Some(o) if o.starts_with("1.3.6.1.4.1.9.") => "Cisco SNMP",
        _ => "SNMP agent",
    };
    let mut f = Found::new("snmp")
        .product(product)
        .extra(format!("{version}; community: {community}"));
    if product == "net-snmp" {
        f.cpe.push("cpe:/a:net-snmp:net-snmp".into());
    }
    if let Some(d) = descr {
        if let Some(rest) = d.strip_prefix("Linux ") {
            f.ostype = Some("Linux".into());
            f.hostname = rest.split_whitespace().next().map(str::to_string);
        }
        f.details.push(("snmp-sysdescr", d));
    }
    Some(f)
}

/// NTP (RFC 5905) mode-4 reply echoing our transmit timestamp.
pub fn ntp(b: &[u8]) -> Option<Found> {
    if b.len() < 48 {
        return None;
    }
    let li = b[0] >> 6;
    let vn = (b[0] >> 3) & 7;
    let mode = b[0] & 7;
    if mode != 4 || !(1..=4).contains(&vn) {
        return None;
    }
    if b.get(24..32)? != crate::version::table::NTP_ORIGIN {
        return None;
    }
    let stratum = b[1];
    let extra = if li == 3 || stratum == 0 || stratum >= 16 {
        "unsynchronized".to_string()
    } else {
        format!("stratum {stratum}")
    };
    // Soft: a mode-6 READVAR may still name the daemon and its version.
    // As nmap writes it: product "NTP", version "v4".
    Some(
        Found::new("ntp")
            .product("NTP")
            .version_opt(Some(format!("v{vn}")))
            .extra(extra)
            .soft(),
    )
}

/// NTP control message (mode 6) READVAR reply: `version="ntpd 4.2.8p15@…"`.
pub fn ntp_control(b: &[u8]) -> Option<Found> {
    if b.len() < 12 || b[0] & 7 != 6 || b[1] & 0x80 == 0 {
        return None;
    }
    let data = &b[12..];
    let i = find(data, b"version=\"")? + 9;
    let rest = data.get(i..)?;
    let end = rest.iter().take(MAX_TEXT).position(|&c| c == b'"')?;
    let v = text(&rest[..end]);
    let mut f = Found::new("ntp");
    if let Some(r) = v.strip_prefix("ntpd ") {
        let ver = r.split('@').next().unwrap_or(r).to_string();
        f = f
            .product("ntpd")
            .version_opt(Some(ver))
            .cpe("cpe:/a:ntp:ntp");
    } else {
        f = f.extra(v);
    }
    if find(data, b"system=\"Linux").is_some() {
        f.ostype = Some("Linux".into());
    }
    Some(f)
}

/// LDAP (RFC 4511) reply to a rootDSE search: searchResEntry (with
/// vendorName/vendorVersion when published) or searchResDone.
pub fn ldap(b: &[u8]) -> Option<Found> {
    let (t, msg) = ber(b, 0).or_else(|| {
        // A reply longer than what was read: accept the header alone.
        let l0 = *b.get(1)?;
        (b.first() == Some(&0x30) && l0 & 0x80 != 0).then_some((0x30, 2..b.len()))
    })?;
    if t != 0x30 {
        return None;
    }
    let (t, id) = ber(b, msg.start)?;
    if t != 0x02 || id.len() > 4 {
        return None;
    }
    let op = *b.get(id.end)?;
    if !matches!(op, 0x61 | 0x64 | 0x65 | 0x78) {
        return None;
    }
    let mut f = Found::new("ldap");
    let attr = |name: &[u8]| -> Option<String> {
        // "vendorVersion" OCTET STRING then SET { OCTET STRING value }.
        let i = find(b, name)? + name.len();
        let (t, set) = ber(b, i)?;
        if t != 0x31 {
            return None;
        }
        let (t, v) = ber(b, set.start)?;
        (t == 0x04).then(|| text(&b[v]))
    };
    if let Some(vendor) = attr(b"vendorName") {
        f = f.product(vendor);
        f.version = attr(b"vendorVersion");
    } else if find(b, b"OpenLDAProotDSE").is_some() {
        f = f.product("OpenLDAP").cpe("cpe:/a:openldap:openldap");
    }
    Some(f)
}

/// SMB2 NEGOTIATE response (MS-SMB2 2.2.4) behind a NetBIOS session header;
/// an SMB1 reply counts too.
pub fn smb(b: &[u8]) -> Option<Found> {
    if *b.first()? != 0 {
        return None;
    }
    let smb = b.get(4..)?;
    let f = Found::new("microsoft-ds");
    if smb.starts_with(b"\xffSMB") {
        return Some(f.extra("SMBv1"));
    }
    if !smb.starts_with(b"\xfeSMB") {
        return None;
    }
    let body = smb.get(64..)?;
    if u16::from_le_bytes([*body.first()?, *body.get(1)?]) != 65 {
        return None;
    }
    let dialect = u16::from_le_bytes([*body.get(4)?, *body.get(5)?]);
    let d = match dialect {
        0x0202 => "2.0.2",
        0x0210 => "2.1",
        0x0300 => "3.0",
        0x0302 => "3.0.2",
        0x0311 => "3.1.1",
        _ => "2.x",
    };
    Some(f.extra(format!("SMB dialect {d}")))
}

/// RDP (MS-RDPBCGR 2.2.1.2) X.224 Connection Confirm, with the negotiated
/// security protocol.
pub fn rdp(b: &[u8]) -> Option<Found> {
    if b.get(..2)? != [3, 0] {
        return None;
    }
    let len = usize::from(u16be(b, 2)?);
    if !(11..=512).contains(&len) || *b.get(5)? != 0xd0 {
        return None;
    }
    let f = Found::new("ms-wbt-server");
    let extra = match b.get(11) {
        Some(2) => match u32le(b, 15) {
            Some(0) => "security: standard RDP".to_string(),
            Some(1) => "security: TLS".to_string(),
            Some(2) => "security: CredSSP (NLA)".to_string(),
            Some(8) => "security: RDSTLS".to_string(),
            Some(n) => format!("security: {n:#x}"),
            None => String::new(),
        },
        Some(3) => "negotiation failure".to_string(),
        _ => String::new(),
    };
    Some(f.extra(extra))
}

/// MQTT (3.1.1 §3.2) CONNACK.
pub fn mqtt(b: &[u8]) -> Option<Found> {
    if b.get(..2)? != [0x20, 0x02] {
        return None;
    }
    let rc = *b.get(3)?;
    let extra = match rc {
        0 => "connection accepted",
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => return None,
    };
    Some(Found::new("mqtt").extra(extra))
}

/// AMQP 0-9-1 Connection.Start (class 10, method 10) with its
/// server-properties table (`product`, `version`, `platform`).
pub fn amqp(b: &[u8]) -> Option<Found> {
    if b.starts_with(b"AMQP") {
        // The server prefers another protocol version and says which.
        let v = b.get(4..8)?;
        return Some(Found::new("amqp").extra(format!("protocol {}-{}-{}", v[1], v[2], v[3])));
    }
    if *b.first()? != 1 || u16be(b, 1)? != 0 {
        return None;
    }
    let size = u32be(b, 3)? as usize;
    if u16be(b, 7)? != 10 || u16be(b, 9)? != 10 {
        return None;
    }
    let payload = b.get(7..(7 + size).min(b.len()))?;
    let maj = *payload.get(4)?;
    let min = *payload.get(5)?;
    let tlen = u32be(payload, 6)? as usize;
    let table = payload.get(10..(10 + tlen).min(payload.len()))?;
    let mut props: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    for _ in 0..64 {
        let Some(&nlen) = table.get(at) else { break };
        let name = text(table.get(at + 1..at + 1 + usize::from(nlen))?);
        at += 1 + usize::from(nlen);
        let ty = *table.get(at)?;
        at += 1;
        match ty {
            b'S' => {
                let l = u32be(table, at)? as usize;
                let v = table.get(at + 4..at + 4 + l);
                if let Some(v) = v {
                    props.push((name, text(v)));
                }
                at = at.checked_add(4 + l)?;
            }
            b'F' => at = at.checked_add(4 + u32be(table, at)? as usize)?,
            b't' | b'b' | b'B' => at += 1,
            b'u' | b's' => at += 2,
            b'I' | b'i' | b'f' => at += 4,
            b'l' | b'd' | b'T' => at += 8,
            b'D' => at += 5,
            b'V' => {}
            _ => break,
        }
    }
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut f = Found::new("amqp").extra(format!("AMQP {maj}-{min}"));
    if let Some(p) = get("product") {
        if p == "RabbitMQ" {
            f.cpe.push("cpe:/a:vmware:rabbitmq".into());
        }
        f.product = Some(p);
        f.version = get("version");
        if let (Some(c), Some(v)) = (f.cpe.first_mut(), &f.version) {
            *c = format!("{c}:{}", cpe_version(v));
        }
    }
    Some(f)
}

/// Walk a BSON document's top-level elements; the string value of `key`.
fn bson_str(doc: &[u8], key: &[u8]) -> Option<String> {
    let len = u32le(doc, 0)? as usize;
    let doc = doc.get(..len.min(doc.len()))?;
    let mut at = 4;
    for _ in 0..256 {
        let ty = *doc.get(at)?;
        if ty == 0 {
            return None;
        }
        let name_end = at + 1 + doc.get(at + 1..)?.iter().position(|&c| c == 0)?;
        let name = doc.get(at + 1..name_end)?;
        at = name_end + 1;
        let size = match ty {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x02 | 0x0d | 0x0e => 4 + u32le(doc, at)? as usize,
            0x03 | 0x04 => u32le(doc, at)? as usize,
            0x05 => 5 + u32le(doc, at)? as usize,
            0x07 => 12,
            0x08 => 1,
            0x0a | 0x7f | 0xff => 0,
            0x10 => 4,
            0x13 => 16,
            _ => return None,
        };
        if ty == 0x02 && name == key {
            let l = u32le(doc, at)? as usize;
            let s = doc.get(at + 4..(at + 4 + l).saturating_sub(1))?;
            return Some(text(s));
        }
        at = at.checked_add(size)?;
    }
    None
}

/// MongoDB OP_MSG (opcode 2013) reply to `buildInfo`.
pub fn mongodb(b: &[u8]) -> Option<Found> {
    let len = u32le(b, 0)? as usize;
    if !(21..=16 * 1024 * 1024).contains(&len)
        || u32le(b, 8)? != crate::version::table::MONGO_REQ_ID
    {
        return None;
    }
    let opcode = u32le(b, 12)?;
    let doc = match opcode {
        2013 if *b.get(20)? == 0 => b.get(21..)?,
        1 => b.get(36..)?, // OP_REPLY: flags, cursor, start, count, then documents.
        _ => return None,
    };
    let f = Found::new("mongodb").product("MongoDB");
    match bson_str(doc, b"version") {
        Some(v) => Some(f.version_opt(Some(v)).cpe("cpe:/a:mongodb:mongodb")),
        None => {
            let msg = bson_str(doc, b"errmsg").unwrap_or_default();
            Some(f.extra(if msg.contains("auth") {
                "authentication required".to_string()
            } else {
                msg
            }))
        }
    }
}

/// Microsoft SQL Server PRELOGIN response (MS-TDS 2.2.6.5): the VERSION option.
pub fn mssql(b: &[u8]) -> Option<Found> {
    if *b.first()? != 0x04 {
        return None;
    }
    let len = usize::from(u16be(b, 2)?);
    if len < 8 {
        return None;
    }
    let p = b.get(8..len.min(b.len()))?;
    let mut at = 0;
    for _ in 0..16 {
        let token = *p.get(at)?;
        if token == 0xff {
            return None;
        }
        let off = usize::from(u16be(p, at + 1)?);
        let l = usize::from(u16be(p, at + 3)?);
        if token == 0 && l >= 6 {
            let v = p.get(off..off + 6)?;
            let version = format!("{}.{}.{}", v[0], v[1], u16::from_be_bytes([v[2], v[3]]));
            let year = match v[0] {
                16 => Some("2022"),
                15 => Some("2019"),
                14 => Some("2017"),
                13 => Some("2016"),
                12 => Some("2014"),
                11 => Some("2012"),
                _ => None,
            };
            let product = match year {
                Some(y) => format!("Microsoft SQL Server {y}"),
                None => "Microsoft SQL Server".to_string(),
            };
            let mut f = Found::new("ms-sql-s")
                .product(product)
                .version_opt(Some(version));
            f.ostype = Some("Windows".into());
            return Some(f.cpe("cpe:/a:microsoft:sql_server"));
        }
        at += 5;
    }
    None
}

/// SOCKS5 (RFC 1928 §3) method selection reply.
pub fn socks5(b: &[u8]) -> Option<Found> {
    if b.len() != 2 || b[0] != 5 {
        return None;
    }
    let extra = match b[1] {
        0 => "no authentication",
        2 => "username/password authentication",
        0xff => "no acceptable methods",
        _ => return None,
    };
    Some(Found::new("socks5").extra(extra))
}

/// A TLS record header (handshake or alert) at the start of a reply.
pub fn looks_like_tls(b: &[u8]) -> bool {
    matches!(b, [0x15 | 0x16, 3, 0..=4, ..])
}

#[cfg(test)]
mod tests {
    //! Each service against the bytes a real server sends. `fixtures/*.bin`
    //! were captured from the lab's Debian 12 daemons (the file name says
    //! which); the others are written out here as those servers send them.
    use super::*;

    fn fx(name: &str) -> Vec<u8> {
        let path = format!("{}/src/version/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn pv(f: &Found) -> (&str, Option<&str>, Option<&str>, Option<&str>) {
        (
            f.service,
            f.product.as_deref(),
            f.version.as_deref(),
            f.extrainfo.as_deref(),
        )
    }

    // ----- captured from the lab's daemons --------------------------------

    #[test]
    fn openssh_9_2_debian() {
        let f = ssh(&fx("openssh-9.2p1-banner.bin")).unwrap();
        assert_eq!(
            pv(&f),
            (
                "ssh",
                Some("OpenSSH"),
                Some("9.2p1 Debian 2+deb12u10"),
                Some("protocol 2.0")
            )
        );
        assert_eq!(f.cpe, ["cpe:/a:openbsd:openssh:9.2p1"]);
        assert_eq!(f.ostype.as_deref(), Some("Linux"));
        // sshd's answer to an HTTP request still starts with its banner.
        assert_eq!(ssh(&fx("openssh-9.2p1-after-get.bin")).unwrap(), f);
        assert!(!f.soft);
    }

    #[test]
    fn dropbear() {
        let f = ssh(b"SSH-2.0-dropbear_2022.83\r\n").unwrap();
        assert_eq!(
            pv(&f),
            (
                "ssh",
                Some("Dropbear sshd"),
                Some("2022.83"),
                Some("protocol 2.0")
            )
        );
    }

    #[test]
    fn vsftpd_3_0_3() {
        let f = ftp(&fx("vsftpd-3.0.3-banner.bin")).unwrap();
        assert_eq!(pv(&f), ("ftp", Some("vsftpd"), Some("3.0.3"), None));
        assert_eq!(f.cpe, ["cpe:/a:beasts:vsftpd:3.0.3"]);
        let oops = ftp(b"500 OOPS: vsftpd: both local and anonymous access disabled!\r\n").unwrap();
        assert_eq!(oops.product.as_deref(), Some("vsftpd"));
        assert!(smtp(&fx("vsftpd-3.0.3-banner.bin")).is_none());
    }

    #[test]
    fn proftpd() {
        let f = ftp(b"220 ProFTPD 1.3.8 Server (Debian) [::ffff:198.18.0.2]\r\n").unwrap();
        assert_eq!(
            pv(&f),
            ("ftp", Some("ProFTPD"), Some("1.3.8"), Some("Debian"))
        );
    }

    #[test]
    fn exim_4_96() {
        let b = fx("exim-4.96-banner.bin");
        let f = smtp(&b).unwrap();
        assert_eq!(pv(&f), ("smtp", Some("Exim smtpd"), Some("4.96"), None));
        assert_eq!(f.hostname.as_deref(), Some("mail.rawscan.test"));
        assert_eq!(f.cpe, ["cpe:/a:exim:exim:4.96"]);
        assert!(ftp(&b).is_none(), "an SMTP greeting is not FTP");
    }

    #[test]
    fn postfix() {
        let f = smtp(b"220 mx.example.test ESMTP Postfix (Debian/GNU)\r\n").unwrap();
        assert_eq!(pv(&f), ("smtp", Some("Postfix smtpd"), None, None));
        assert_eq!(f.hostname.as_deref(), Some("mx.example.test"));
    }

    #[test]
    fn mariadb_10_11() {
        let f = mysql(&fx("mariadb-10.11-greeting.bin")).unwrap();
        assert_eq!(
            pv(&f),
            ("mysql", Some("MariaDB"), Some("10.11.19-0+deb12u1"), None)
        );
        assert_eq!(f.cpe, ["cpe:/a:mariadb:mariadb:10.11.19-0+deb12u1"]);
        assert_eq!(mysql(&fx("mariadb-10.11-after-get.bin")).unwrap(), f);
    }

    #[test]
    fn mysql_8_and_a_refused_host() {
        let mut g = vec![0x4a, 0, 0, 0, 0x0a];
        g.extend_from_slice(b"8.0.35\0");
        g.extend_from_slice(&[
            0x0e, 0, 0, 0, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 0,
        ]);
        let f = mysql(&g).unwrap();
        assert_eq!(pv(&f), ("mysql", Some("MySQL"), Some("8.0.35"), None));
        let mut e = vec![0x45, 0, 0, 0, 0xff, 0x6a, 0x04];
        e.extend_from_slice(b"Host '198.18.0.1' is not allowed to connect to this MariaDB server");
        let f = mysql(&e).unwrap();
        assert_eq!(f.product.as_deref(), Some("MariaDB"));
        assert_eq!(f.extrainfo.as_deref(), Some("unauthorized; error 1130"));
    }

    #[test]
    fn nginx_1_22_http_and_title() {
        let f = http(&fx("nginx-1.22.1-get.bin")).unwrap();
        assert_eq!(pv(&f), ("http", Some("nginx"), Some("1.22.1"), None));
        assert_eq!(f.cpe, ["cpe:/a:igor_sysoev:nginx:1.22.1"]);
        assert_eq!(f.details, [("http-title", "rawscan lab".to_string())]);
        assert!(!f.wants_tls && !f.soft);
        // The same page read through TLS.
        assert_eq!(http(&fx("nginx-1.22.1-tls-get.bin")).unwrap(), f);
    }

    #[test]
    fn nginx_says_when_a_port_wants_tls() {
        let f = http(&fx("nginx-1.22.1-plain-to-tls.bin")).unwrap();
        assert!(f.wants_tls);
        assert_eq!(f.product.as_deref(), Some("nginx"));
    }

    #[test]
    fn apache_httpd() {
        let b = b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 00:10:21 GMT\r\nServer: Apache/2.4.57 (Debian)\r\nContent-Length: 10\r\n\r\n<html></html>";
        let f = http(b).unwrap();
        assert_eq!(
            pv(&f),
            ("http", Some("Apache httpd"), Some("2.4.57"), Some("Debian"))
        );
    }

    #[test]
    fn redis_7_0_15() {
        let f = redis(&fx("redis-7.0.15-info.bin")).unwrap();
        assert_eq!(
            pv(&f),
            ("redis", Some("Redis key-value store"), Some("7.0.15"), None)
        );
        let a = redis(b"-NOAUTH Authentication required.\r\n").unwrap();
        assert_eq!(a.extrainfo.as_deref(), Some("authentication required"));
        assert!(redis(b"-ERR unknown command\r\n").is_none());
    }

    #[test]
    fn memcached_1_6_18() {
        let f = memcached(&fx("memcached-1.6.18-version.bin")).unwrap();
        assert_eq!(
            pv(&f),
            ("memcached", Some("Memcached"), Some("1.6.18"), None)
        );
    }

    #[test]
    fn postgresql_15_refusal_names_it() {
        let f = postgresql(&fx("postgresql-15-startup.bin")).unwrap();
        assert_eq!(pv(&f), ("postgresql", Some("PostgreSQL DB"), None, None));
        // AuthenticationSASL (code 10) is a PostgreSQL too.
        let mut r = vec![b'R', 0, 0, 0, 23, 0, 0, 0, 10];
        r.extend_from_slice(b"SCRAM-SHA-256\0\0");
        assert!(postgresql(&r).is_some());
        // AuthenticationOk then ParameterStatus server_version.
        let mut ok = vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'S', 0, 0, 0, 38];
        ok.extend_from_slice(b"server_version\x0015.10 (Debian 15.10-0+deb12u1)\0");
        let f = postgresql(&ok).unwrap();
        assert_eq!(f.version.as_deref(), Some("15.10 (Debian 15.10-0+deb12u1)"));
    }

    #[test]
    fn dnsmasq_2_90_over_tcp_and_udp() {
        let t = dns_tcp(&fx("dnsmasq-2.90-version-bind-tcp.bin")).unwrap();
        assert_eq!(pv(&t), ("domain", Some("dnsmasq"), Some("2.90"), None));
        assert_eq!(t.cpe, ["cpe:/a:thekelleys:dnsmasq:2.90"]);
        let u = dns(&fx("dnsmasq-2.90-version-bind-udp.bin")).unwrap();
        assert_eq!(u, t);
    }

    /// A version.bind answer carrying `txt` (as BIND, Unbound, … answer).
    fn dns_answer(txt: &str) -> Vec<u8> {
        let mut b = vec![0x72, 0x73, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(b"\x07version\x04bind\x00\x00\x10\x00\x03");
        b.extend_from_slice(&[0xc0, 0x0c, 0, 0x10, 0, 3, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, txt.len() as u8 + 1, txt.len() as u8]);
        b.extend_from_slice(txt.as_bytes());
        b
    }

    #[test]
    fn bind_and_unbound() {
        let f = dns(&dns_answer("9.18.28-1~deb12u2-Debian")).unwrap();
        assert_eq!(f.product.as_deref(), Some("ISC BIND"));
        assert_eq!(f.version.as_deref(), Some("9.18.28"));
        assert_eq!(f.ostype.as_deref(), Some("Linux"));
        let u = dns(&dns_answer("unbound 1.17.1")).unwrap();
        assert_eq!(pv(&u), ("domain", Some("Unbound"), Some("1.17.1"), None));
        // REFUSED, no answer: still DNS.
        let mut r = dns_answer("x")[..30].to_vec();
        r[3] = 0x05;
        r[7] = 0;
        assert_eq!(dns(&r).unwrap().product, None);
    }

    #[test]
    fn net_snmp_sysdescr() {
        let f = snmp(&fx("net-snmp-5.9.3-sysdescr.bin")).unwrap();
        assert_eq!(
            pv(&f),
            (
                "snmp",
                Some("net-snmp"),
                None,
                Some("SNMPv1; community: public")
            )
        );
        assert_eq!(f.hostname.as_deref(), Some("vm"));
        assert_eq!(f.ostype.as_deref(), Some("Linux"));
        assert_eq!(f.details[0].0, "snmp-sysdescr");
        assert!(f.details[0].1.starts_with("Linux vm 6."), "{:?}", f.details);
    }

    #[test]
    fn chrony_ntp_mode4() {
        let f = ntp(&fx("chrony-4.3-mode4.bin")).unwrap();
        assert_eq!(
            pv(&f),
            ("ntp", Some("NTP"), Some("v4"), Some("unsynchronized"))
        );
        assert!(f.soft, "a READVAR may still name the daemon");
        // A reply that does not echo our timestamp is not ours.
        let mut other = fx("chrony-4.3-mode4.bin");
        other[24] ^= 1;
        assert!(ntp(&other).is_none());
    }

    #[test]
    fn ntpd_readvar() {
        let mut b = vec![0x16, 0x82, 0, 1, 0x06, 0x15, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(
            b"version=\"ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020 (1)\", processor=\"x86_64\", system=\"Linux/6.1.0-18-amd64\", leap=11, stratum=16",
        );
        let f = ntp_control(&b).unwrap();
        assert_eq!(pv(&f), ("ntp", Some("ntpd"), Some("4.2.8p15"), None));
        assert_eq!(f.ostype.as_deref(), Some("Linux"));
    }

    // ----- written out as these servers send them ---------------------------

    #[test]
    fn dovecot_2_3_pop3_and_imap() {
        let p = pop3(&fx("dovecot-2.3.19-pop3-greeting.bin")).unwrap();
        assert_eq!(pv(&p), ("pop3", Some("Dovecot pop3d"), None, None));
        assert_eq!(p.ostype.as_deref(), Some("Linux"));
        let i = imap(&fx("dovecot-2.3.19-imap-greeting.bin")).unwrap();
        assert_eq!(pv(&i), ("imap", Some("Dovecot imapd"), None, None));
        assert!(pop3(b"* OK x\r\n").is_none() && imap(b"+OK x\r\n").is_none());
    }

    #[test]
    fn openldap_2_5_rootdse_capture() {
        let f = ldap(&fx("openldap-2.5-rootdse.bin")).unwrap();
        assert_eq!(pv(&f), ("ldap", Some("OpenLDAP"), None, None));
    }

    #[test]
    fn telnetd_rsync_mosquitto_dante_captures() {
        let t = telnet(&fx("inetutils-telnetd-2.4-negotiation.bin")).unwrap();
        assert_eq!(t.service, "telnet");
        let r = rsync(&fx("rsync-3.5.0-greeting.bin")).unwrap();
        assert_eq!(pv(&r), ("rsync", None, None, Some("protocol version 32.0")));
        let m = mqtt(&fx("mosquitto-2.0.11-connack.bin")).unwrap();
        assert_eq!(pv(&m), ("mqtt", None, None, Some("not authorized")));
        let s = socks5(&fx("dante-1.4.2-method.bin")).unwrap();
        assert_eq!(pv(&s), ("socks5", None, None, Some("no authentication")));
    }

    /// A BSON document from (name, value) string pairs plus `ok: 1.0`.
    fn bson(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut e = Vec::new();
        for (k, v) in pairs {
            e.push(0x02);
            e.extend_from_slice(k.as_bytes());
            e.push(0);
            e.extend_from_slice(&(v.len() as u32 + 1).to_le_bytes());
            e.extend_from_slice(v.as_bytes());
            e.push(0);
        }
        e.push(0x01);
        e.extend_from_slice(b"ok\0");
        e.extend_from_slice(&1.0f64.to_le_bytes());
        let mut d = ((e.len() + 5) as u32).to_le_bytes().to_vec();
        d.extend_from_slice(&e);
        d.push(0);
        d
    }

    fn op_msg(doc: &[u8]) -> Vec<u8> {
        let mut b = ((21 + doc.len()) as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 2, 3, 4]);
        b.extend_from_slice(&crate::version::table::MONGO_REQ_ID.to_le_bytes());
        b.extend_from_slice(&2013u32.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0]);
        b.extend_from_slice(doc);
        b
    }

    #[test]
    fn mongodb_buildinfo() {
        let doc = bson(&[
            ("version", "7.0.4"),
            ("gitVersion", "38f3e37057a43d2e9f41a39142681a76062d582e"),
        ]);
        let f = mongodb(&op_msg(&doc)).unwrap();
        assert_eq!(pv(&f), ("mongodb", Some("MongoDB"), Some("7.0.4"), None));
        let denied = bson(&[("errmsg", "command buildInfo requires authentication")]);
        let f = mongodb(&op_msg(&denied)).unwrap();
        assert_eq!(f.extrainfo.as_deref(), Some("authentication required"));
    }

    /// BER TLV with a short length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    #[test]
    fn openldap_rootdse_and_a_vendor() {
        // searchResEntry: objectName "", attributes { objectClass: top, OpenLDAProotDSE }.
        let vals = [tlv(0x04, b"top"), tlv(0x04, b"OpenLDAProotDSE")].concat();
        let attr = tlv(
            0x30,
            &[tlv(0x04, b"objectClass"), tlv(0x31, &vals)].concat(),
        );
        let entry = tlv(0x64, &[tlv(0x04, b""), tlv(0x30, &attr)].concat());
        let msg = tlv(0x30, &[tlv(0x02, &[1]), entry].concat());
        let f = ldap(&msg).unwrap();
        assert_eq!(pv(&f), ("ldap", Some("OpenLDAP"), None, None));
        let a = |k: &[u8], v: &[u8]| tlv(0x30, &[tlv(0x04, k), tlv(0x31, &tlv(0x04, v))].concat());
        let attrs = [
            a(b"vendorName", b"389 Project"),
            a(b"vendorVersion", b"389-Directory/2.3.4"),
        ]
        .concat();
        let entry = tlv(0x64, &[tlv(0x04, b""), tlv(0x30, &attrs)].concat());
        let msg = tlv(0x30, &[tlv(0x02, &[1]), entry].concat());
        let f = ldap(&msg).unwrap();
        assert_eq!(
            pv(&f),
            (
                "ldap",
                Some("389 Project"),
                Some("389-Directory/2.3.4"),
                None
            )
        );
    }

    #[test]
    fn smb2_negotiate_response() {
        let mut smb = b"\xfeSMB\x40\x00".to_vec();
        smb.resize(64, 0);
        smb[12] = 1; // flags: response
        let mut body = vec![0x41, 0, 0x01, 0, 0x02, 0x03, 0, 0];
        body.extend_from_slice(&[0x55; 16]); // server GUID
        body.resize(64, 0);
        smb.extend_from_slice(&body);
        let mut b = vec![0, 0, 0, smb.len() as u8];
        b.extend_from_slice(&smb);
        let f = smb2_or_none(&b);
        assert_eq!(
            pv(&f),
            ("microsoft-ds", None, None, Some("SMB dialect 3.0.2"))
        );
    }

    fn smb2_or_none(b: &[u8]) -> Found {
        smb(b).expect("an SMB2 negotiate response")
    }

    #[test]
    fn rdp_connection_confirm() {
        let cc = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00";
        let f = rdp(cc).unwrap();
        assert_eq!(
            pv(&f),
            ("ms-wbt-server", None, None, Some("security: CredSSP (NLA)"))
        );
    }

    #[test]
    fn vnc_rfb() {
        let f = vnc(b"RFB 003.008\n").unwrap();
        assert_eq!(pv(&f), ("vnc", Some("VNC"), None, Some("protocol 3.8")));
        assert!(vnc(b"RFB 003.00x\n").is_none());
    }

    #[test]
    fn linux_telnetd_negotiation() {
        // DO TERMINAL-TYPE, DO TSPEED, DO XDISPLOC, DO NEW-ENVIRON.
        let f = telnet(b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27").unwrap();
        assert_eq!(f.service, "telnet");
        let g = telnet(b"\xff\xfb\x01\xff\xfb\x03Debian GNU/Linux 12\r\nrouter login: ").unwrap();
        assert_eq!(g.hostname.as_deref(), Some("router"));
        assert!(telnet(b"hello").is_none());
    }

    #[test]
    fn mosquitto_connack() {
        assert_eq!(
            pv(&mqtt(b"\x20\x02\x00\x05").unwrap()),
            ("mqtt", None, None, Some("not authorized"))
        );
        assert_eq!(
            mqtt(b"\x20\x02\x00\x00").unwrap().extrainfo.as_deref(),
            Some("connection accepted")
        );
    }

    #[test]
    fn rabbitmq_connection_start() {
        let mut table = Vec::new();
        for (k, v) in [
            ("product", "RabbitMQ"),
            ("version", "3.12.1"),
            ("platform", "Erlang/OTP 25.3.2.3"),
        ] {
            table.push(k.len() as u8);
            table.extend_from_slice(k.as_bytes());
            table.push(b'S');
            table.extend_from_slice(&(v.len() as u32).to_be_bytes());
            table.extend_from_slice(v.as_bytes());
        }
        table.extend_from_slice(b"\x0ccapabilities\x46\x00\x00\x00\x00");
        let mut payload = vec![0, 10, 0, 10, 0, 9];
        payload.extend_from_slice(&(table.len() as u32).to_be_bytes());
        payload.extend_from_slice(&table);
        payload.extend_from_slice(b"\x00\x00\x00\x05PLAIN\x00\x00\x00\x05en_US");
        let mut b = vec![1, 0, 0];
        b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        b.extend_from_slice(&payload);
        b.push(0xce);
        let f = amqp(&b).unwrap();
        assert_eq!(
            pv(&f),
            ("amqp", Some("RabbitMQ"), Some("3.12.1"), Some("AMQP 0-9"))
        );
        assert_eq!(f.cpe, ["cpe:/a:vmware:rabbitmq:3.12.1"]);
        assert_eq!(
            amqp(b"AMQP\x00\x00\x09\x01").unwrap().extrainfo.as_deref(),
            Some("protocol 0-9-1")
        );
    }

    #[test]
    fn gstreamer_rtsp() {
        let f = rtsp(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, ANNOUNCE, GET_PARAMETER, PAUSE, PLAY, RECORD, SETUP, SET_PARAMETER, TEARDOWN\r\nServer: GStreamer RTSP server\r\nDate: Sun, 06 Dec 2026 00:10:21 GMT\r\n\r\n").unwrap();
        assert_eq!(pv(&f), ("rtsp", Some("GStreamer RTSP server"), None, None));
    }

    #[test]
    fn asterisk_sip() {
        let f = sip(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP rawscan.invalid;branch=z9hG4bK-rawscan-1;received=198.18.0.1;rport=40000\r\nFrom: <sip:rawscan@rawscan.invalid>;tag=rawscan\r\nTo: <sip:rawscan.invalid>;tag=as1d2c3b4a\r\nCall-ID: rawscan-version-probe\r\nCSeq: 1 OPTIONS\r\nServer: Asterisk PBX 20.5.0\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(pv(&f), ("sip", Some("Asterisk"), Some("20.5.0"), None));
    }

    #[test]
    fn elasticsearch_8() {
        let b = b"HTTP/1.1 200 OK\r\nX-elastic-product: Elasticsearch\r\ncontent-type: application/json\r\ncontent-length: 531\r\n\r\n{\n  \"name\" : \"node-1\",\n  \"cluster_name\" : \"lab\",\n  \"cluster_uuid\" : \"Vx0u0kM5Qz2aGm1C2Y6Yxg\",\n  \"version\" : {\n    \"number\" : \"8.11.1\",\n    \"build_flavor\" : \"default\",\n    \"build_type\" : \"deb\",\n    \"lucene_version\" : \"9.8.0\"\n  },\n  \"tagline\" : \"You Know, for Search\"\n}\n";
        let f = http(b).unwrap();
        assert_eq!(
            pv(&f),
            (
                "http",
                Some("Elasticsearch REST API"),
                Some("8.11.1"),
                Some("cluster: lab")
            )
        );
    }

    #[test]
    fn docker_engine_api() {
        let b = b"HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/24.0.7 (linux)\r\nDate: Sun, 06 Dec 2026 00:10:21 GMT\r\nConnection: close\r\n\r\n{\"Platform\":{\"Name\":\"Docker Engine - Community\"},\"Version\":\"24.0.7\",\"ApiVersion\":\"1.43\",\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\",\"Arch\":\"amd64\"}\n";
        let f = http(b).unwrap();
        assert_eq!(
            pv(&f),
            ("docker", Some("Docker"), Some("24.0.7"), Some("API 1.43"))
        );
        // GET / on the Docker socket port: a 404 that still names it.
        let nf = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nServer: Docker/24.0.7 (linux)\r\n\r\n{\"message\":\"page not found\"}\n";
        let g = http(nf).unwrap();
        assert_eq!(
            pv(&g),
            ("docker", Some("Docker"), Some("24.0.7"), Some("linux"))
        );
    }

    #[test]
    fn kubernetes_api_server() {
        let v = b"HTTP/1.1 200 OK\r\nAudit-Id: 5b3c\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\n\r\n{\n  \"major\": \"1\",\n  \"minor\": \"28\",\n  \"gitVersion\": \"v1.28.3\",\n  \"gitCommit\": \"a8a1abc25cad87333840cd7d54be2efaf31a3177\",\n  \"goVersion\": \"go1.20.10\",\n  \"compiler\": \"gc\",\n  \"platform\": \"linux/amd64\"\n}";
        let f = http(v).unwrap();
        assert_eq!(
            pv(&f),
            (
                "kubernetes",
                Some("Kubernetes API server"),
                Some("1.28.3"),
                Some("linux/amd64")
            )
        );
        let denied = b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"forbidden: User \\\"system:anonymous\\\" cannot get path \\\"/\\\"\",\"reason\":\"Forbidden\",\"details\":{},\"code\":403}";
        let g = http(denied).unwrap();
        assert_eq!(g.service, "kubernetes");
        assert!(g.soft, "GET /version may still give the version");
    }

    #[test]
    fn couchdb() {
        let b = b"HTTP/1.1 200 OK\r\nServer: CouchDB/3.3.3 (Erlang OTP/24)\r\nContent-Type: application/json\r\n\r\n{\"couchdb\":\"Welcome\",\"version\":\"3.3.3\",\"git_sha\":\"40afbcfc7\",\"vendor\":{\"name\":\"The Apache Software Foundation\"}}\n";
        assert_eq!(
            pv(&http(b).unwrap()),
            ("http", Some("CouchDB httpd"), Some("3.3.3"), None)
        );
    }

    #[test]
    fn rsync_nntp_zookeeper_socks() {
        assert_eq!(
            pv(&rsync(b"@RSYNCD: 31.0\n").unwrap()),
            ("rsync", None, None, Some("protocol version 31.0"))
        );
        let n =
            nntp(b"200 news.example.test InterNetNews server INN 2.7.1 ready (transit mode)\r\n")
                .unwrap();
        assert_eq!(pv(&n), ("nntp", Some("INN"), Some("2.7.1"), None));
        let z = zookeeper(b"Zookeeper version: 3.8.3-6ad6d364c7c0bcf0de452d54ebefa3058098ab56, built on 2023-10-05 10:34 UTC\nLatency min/avg/max: 0/0.0/0\nMode: standalone\n").unwrap();
        assert_eq!(
            pv(&z),
            ("zookeeper", Some("Zookeeper"), Some("3.8.3"), None)
        );
        assert_eq!(
            pv(&socks5(b"\x05\x00").unwrap()),
            ("socks5", None, None, Some("no authentication"))
        );
    }

    #[test]
    fn mssql_prelogin_version() {
        // Options: VERSION, ENCRYPTION, INSTOPT, THREADID, MARS, terminator.
        let mut p = Vec::new();
        let data_at = 5 * 5 + 1;
        for (tok, off, len) in [(0u8, 0, 6), (1, 6, 1), (2, 7, 1), (3, 8, 0), (4, 8, 1)] {
            p.push(tok);
            p.extend_from_slice(&((data_at + off) as u16).to_be_bytes());
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        p.push(0xff);
        p.extend_from_slice(&[15, 0, 0x07, 0xd0, 0, 0]); // 15.0.2000
        p.extend_from_slice(&[2, 0, 0]);
        let mut b = vec![0x04, 0x01];
        b.extend_from_slice(&((8 + p.len()) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0, 1, 0]);
        b.extend_from_slice(&p);
        let f = mssql(&b).unwrap();
        assert_eq!(
            pv(&f),
            (
                "ms-sql-s",
                Some("Microsoft SQL Server 2019"),
                Some("15.0.2000"),
                None
            )
        );
    }

    // ----- hostile and malformed input ---------------------------------------

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = format!("{}/src/version/fixtures", env!("CARGO_MANIFEST_DIR"));
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn no_prefix_or_mutation_of_any_fixture_panics() {
        let all = ALL;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for (_, b) in fixtures() {
            for cut in 0..=b.len().min(600) {
                for (_, m) in all {
                    let _ = m(&b[..cut]);
                }
            }
            for _ in 0..200 {
                let mut x = b.clone();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed as usize) % x.len().max(1);
                    if let Some(c) = x.get_mut(i) {
                        *c = (seed >> 32) as u8;
                    }
                }
                for (_, m) in all {
                    let _ = m(&x);
                }
            }
        }
    }

    #[test]
    fn garbage_and_hostile_replies_are_not_services() {
        let mut noise = vec![0u8; 4096];
        let mut s = 0x9e37_79b9u32;
        for c in noise.iter_mut() {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *c = s as u8;
        }
        for (name, m) in ALL {
            assert_eq!(m(&[]), None, "{name} on nothing");
            assert_eq!(m(&noise), None, "{name} on random bytes");
            assert_eq!(m(&[0xff; 4096]), None, "{name} on 0xff");
            assert_eq!(m(&[b'A'; 4096]), None, "{name} on endless text");
        }
    }

    #[test]
    fn each_captured_reply_is_claimed_by_its_own_matcher_only() {
        // Fallback matchers (tried on any TCP reply) must not claim another
        // protocol's reply.
        let fallback = crate::version::table::TCP_FALLBACK;
        for (name, b) in fixtures() {
            let claims: Vec<&str> = fallback
                .iter()
                .filter(|m| (m.check)(&b).is_some())
                .map(|m| m.service)
                .collect();
            assert!(claims.len() <= 1, "{name} claimed by {claims:?}");
        }
    }
}
