//! TLS for service detection: a rustls client that accepts any
//! certificate, and a summary of the certificate the server showed.
//!
//! Role: `-sV` identifies services; it does not trust them. The verifier
//! below therefore accepts every certificate and every handshake signature
//! (self-signed, expired, wrong name): nothing sent inside these sessions is
//! secret, and what the certificate says is reported, not believed. This is
//! stated in SECURITY.md.
//!
//! Invariants: the handshake is bounded by the caller's deadline (socket
//! timeouts); `cert_summary` is pure and never panics on malformed DER
//! (x509-parser is length-checked; a certificate it cannot parse gives
//! `None`).

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use serde::Serialize;

/// What the TLS layer of a port showed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    pub cipher: String,
    /// The ALPN protocol the server chose among `h2`, `http/1.1`.
    pub alpn: Option<String>,
    pub subject_cn: Option<String>,
    pub sans: Vec<String>,
    pub issuer: Option<String>,
    /// `2027-01-05T00:12:50` (UTC).
    pub not_before: Option<String>,
    pub not_after: Option<String>,
}

impl TlsInfo {
    /// One line in the manner of nmap's ssl-cert script.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(cn) = &self.subject_cn {
            parts.push(format!("Subject: commonName={cn}"));
        }
        if !self.sans.is_empty() {
            parts.push(format!(
                "Subject Alternative Name: {}",
                self.sans.join(", ")
            ));
        }
        if let Some(i) = &self.issuer {
            parts.push(format!("Issuer: {i}"));
        }
        if let Some(a) = &self.not_after {
            parts.push(format!("Not valid after: {a}"));
        }
        parts.push(format!("{} {}", self.version, self.cipher));
        if let Some(a) = &self.alpn {
            parts.push(format!("ALPN: {a}"));
        }
        parts.join("; ")
    }
}

/// Accepts any server certificate: identification, not authentication.
#[derive(Debug)]
struct AcceptAny(Vec<SignatureScheme>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// Client configurations, built once: offering ALPN h2 + http/1.1 (to
/// learn what the server prefers) and http/1.1 only (to talk HTTP/1 inside).
fn config(h2: bool) -> Arc<ClientConfig> {
    static BOTH: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static H1: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let make = |alpn: Vec<Vec<u8>>| {
        // ring rather than aws-lc-rs: it builds with only a C compiler. Its
        // provider is deprecated for lacking post-quantum key exchange,
        // which does not matter for identifying a service.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let schemes = provider
            .signature_verification_algorithms
            .supported_schemes();
        let mut c = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(schemes)))
            .with_no_client_auth();
        c.alpn_protocols = alpn;
        Arc::new(c)
    };
    if h2 {
        BOTH.get_or_init(|| make(vec![b"h2".to_vec(), b"http/1.1".to_vec()]))
            .clone()
    } else {
        H1.get_or_init(|| make(vec![b"http/1.1".to_vec()])).clone()
    }
}

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Complete a TLS handshake on `tcp` before `deadline`. `offer_h2`: offer
/// ALPN h2 as well as http/1.1.
pub fn handshake(
    tcp: TcpStream,
    ip: std::net::IpAddr,
    offer_h2: bool,
    deadline: Instant,
) -> io::Result<(TlsStream, TlsInfo)> {
    let name = ServerName::IpAddress(ip.into());
    let mut conn = ClientConnection::new(config(offer_h2), name).map_err(io::Error::other)?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        conn.complete_io(&mut tcp)?;
    }
    let mut info = TlsInfo {
        version: match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
            Some(v) => format!("{v:?}"),
            None => "TLS".into(),
        },
        cipher: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        alpn: conn
            .alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
        ..TlsInfo::default()
    };
    if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first())
        && let Some(c) = cert_summary(leaf.as_ref())
    {
        info.subject_cn = c.subject_cn;
        info.sans = c.sans;
        info.issuer = c.issuer;
        info.not_before = c.not_before;
        info.not_after = c.not_after;
    }
    Ok((StreamOwned::new(conn, tcp), info))
}

/// The fields of a certificate that `-sV` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertSummary {
    pub subject_cn: Option<String>,
    pub sans: Vec<String>,
    pub issuer: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
}

fn iso(t: &x509_parser::time::ASN1Time) -> String {
    let d = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Parse a DER certificate (x509-parser: a maintained, length-checked
/// parser; X.509 is too intricate to walk by hand safely).
pub fn cert_summary(der: &[u8]) -> Option<CertSummary> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let text = |s: &str| super::matchers::text(s.as_bytes());
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(text);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in ext.value.general_names.iter().take(32) {
            match n {
                GeneralName::DNSName(d) => sans.push(format!("DNS:{}", text(d))),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => sans.push(format!(
                        "IP Address:{}",
                        std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                    )),
                    16 => {
                        let a: [u8; 16] = (*ip).try_into().ok()?;
                        sans.push(format!("IP Address:{}", std::net::Ipv6Addr::from(a)));
                    }
                    _ => {}
                },
                GeneralName::RFC822Name(e) => sans.push(format!("email:{}", text(e))),
                _ => {}
            }
        }
    }
    let issuer = Some(text(&cert.issuer().to_string())).filter(|s| !s.is_empty());
    Some(CertSummary {
        subject_cn,
        sans,
        issuer,
        not_before: Some(iso(&cert.validity().not_before)),
        not_after: Some(iso(&cert.validity().not_after)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_a_self_signed_certificate_made_by_openssl() {
        // openssl req -x509 -newkey ec … -subj /CN=lab.rawscan.test
        //   -addext subjectAltName=DNS:lab.rawscan.test,IP:198.18.0.2
        let der = include_bytes!("fixtures/selfsigned-cert.der");
        let c = cert_summary(der).expect("parses");
        assert_eq!(c.subject_cn.as_deref(), Some("lab.rawscan.test"));
        assert_eq!(c.sans, ["DNS:lab.rawscan.test", "IP Address:198.18.0.2"]);
        assert_eq!(c.issuer.as_deref(), Some("CN=lab.rawscan.test"));
        assert_eq!(c.not_before.as_deref(), Some("2026-12-06T00:12:50"));
        assert_eq!(c.not_after.as_deref(), Some("2027-01-05T00:12:50"));
    }

    #[test]
    fn malformed_certificates_give_none() {
        let der = include_bytes!("fixtures/selfsigned-cert.der");
        for cut in [0, 1, 10, 100, der.len() - 1] {
            assert_eq!(cert_summary(&der[..cut]), None, "cut at {cut}");
        }
        let mut flipped = der.to_vec();
        flipped[1] ^= 0xff;
        assert_eq!(cert_summary(&flipped), None);
    }

    #[test]
    fn the_summary_line_reads_like_ssl_cert() {
        let t = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: Some("h2".into()),
            subject_cn: Some("lab.rawscan.test".into()),
            sans: vec!["DNS:lab.rawscan.test".into()],
            issuer: Some("CN=lab.rawscan.test".into()),
            not_before: None,
            not_after: Some("2027-01-05T00:12:50".into()),
        };
        assert_eq!(
            t.summary(),
            "Subject: commonName=lab.rawscan.test; Subject Alternative Name: DNS:lab.rawscan.test; Issuer: CN=lab.rawscan.test; Not valid after: 2027-01-05T00:12:50; TLSv1.3 TLS13_AES_256_GCM_SHA384; ALPN: h2"
        );
    }
}
