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
        f = f.product("OpenSSH").version_opt(Some(text(version.as_bytes())));
        f.cpe.push(format!("cpe:/a:openbsd:openssh:{}", cpe_version(v)));
    } else if let Some(v) = software.strip_prefix("dropbear_") {
        f = f
            .product("Dropbear sshd")
            .version_opt(Some(text(v.as_bytes())))
            .cpe("cpe:/a:matt_johnston:dropbear_ssh_server");
    } else if let Some((p, v)) = software.split_once('_') {
        f = f.product(text(p.as_bytes())).version_opt(Some(text(v.as_bytes())));
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
    let len = usize::from(*b.first()?)
        | usize::from(*b.get(1)?) << 8
        | usize::from(*b.get(2)?) << 16;
    if *b.get(3)? != 0 || len < 3 || len > 4096 {
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
    let v = line.strip_prefix("@RSYNCD: ")?;
    Some(Found::new("rsync").extra(format!("protocol version {}", v.trim())))
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
        self.status
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
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
        return Some(Found::new("kubernetes").product("Kubernetes API server").soft());
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
        let end = rest.iter().take(40).position(|&c| c == b'\r' || c == b'\n')?;
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
            f.extrainfo = Some(extra.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-').into());
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
    Some(
        Found::new("ntp")
            .product(format!("NTP v{vn}"))
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
        f = f.product("ntpd").version_opt(Some(ver)).cpe("cpe:/a:ntp:ntp");
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
    let (t, msg) = ber(b, 0)
        .or_else(|| {
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
    if !(21..=16 * 1024 * 1024).contains(&len) || u32le(b, 8)? != crate::version::table::MONGO_REQ_ID
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
