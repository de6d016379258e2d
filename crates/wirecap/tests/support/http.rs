//! The tests' one HTTP client: HTTP/1.1 on a fresh connection per request, plain or over
//! TLS (any certificate is accepted: the server's is self-signed). The request target is
//! sent as given, byte for byte, so a probe such as `/plain/../x` or `%2e%2e` reaches the
//! server as written (curl and most clients normalise it first).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

/// Who a request is from.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
    /// The session cookie's value and its CSRF token (sent with the UI's header).
    Session(String, String),
}

/// An answer: the status, the header block as text, the body (de-chunked).
#[derive(Debug)]
pub struct Resp {
    pub code: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.code, self.text()))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// One request, built up then sent with [`Request::send`].
#[derive(Clone, Debug)]
pub struct Request {
    tls: bool,
    port: u16,
    method: String,
    target: Vec<u8>,
    auth: Auth,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

impl Request {
    /// `method target` to 127.0.0.1:`port`; `target` goes on the wire unchanged.
    pub fn new(tls: bool, port: u16, method: &str, target: impl AsRef<[u8]>) -> Self {
        Self {
            tls,
            port,
            method: method.to_owned(),
            target: target.as_ref().to_vec(),
            auth: Auth::None,
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
    pub fn auth(mut self, a: Auth) -> Self {
        self.auth = a;
        self
    }
    pub fn basic(self, user: &str, pw: &str) -> Self {
        self.auth(Auth::Basic(user.into(), pw.into()))
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    /// A JSON body (`None`: an empty one, still with its content type on writes).
    pub fn json(mut self, body: Option<&str>) -> Self {
        let b = body.unwrap_or("");
        if !b.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            self.headers
                .push(("Content-Type".into(), "application/json".into()));
        }
        self.body = b.as_bytes().to_vec();
        self
    }
    pub fn body(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.body = bytes;
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The request's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(self.method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(&self.target);
        let mut h = format!(
            " HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        match &self.auth {
            Auth::None => {}
            Auth::Basic(u, p) => {
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                h.push_str(&format!("Authorization: Basic {b}\r\n"));
            }
            Auth::Bearer(t) => h.push_str(&format!("Authorization: Bearer {t}\r\n")),
            Auth::Session(cookie, csrf) => h.push_str(&format!(
                "Cookie: wirecap_session={cookie}\r\nX-CSRF-Token: {csrf}\r\nX-Wirecap-UI: 1\r\n"
            )),
        }
        for (k, v) in &self.headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            h.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        h.push_str("\r\n");
        r.extend_from_slice(h.as_bytes());
        r.extend_from_slice(&self.body);
        r
    }

    pub fn send(&self) -> Resp {
        self.try_send().unwrap_or_else(|e| {
            panic!(
                "{} {}: {e}",
                self.method,
                String::from_utf8_lossy(&self.target)
            )
        })
    }

    /// [`Request::send`], with a dropped connection as an error (the server may be
    /// killed meanwhile).
    pub fn try_send(&self) -> std::io::Result<Resp> {
        let mut s = connect(self.tls, self.port, self.timeout)?;
        // A server may answer (413, say) and close before reading the whole body: a
        // failed write still leaves its answer to read.
        let wrote = s.write_all(&self.bytes()).and_then(|()| s.flush());
        let mut raw = Vec::new();
        match s.read_to_end(&mut raw) {
            Ok(_) => {}
            // A TLS peer that closes without close_notify after a full answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) if raw.is_empty() => return Err(wrote.err().unwrap_or(e)),
            Err(_) => {}
        }
        parse(&raw).map_err(|e| wrote.err().unwrap_or(e))
    }
}

/// A connection to 127.0.0.1:`port`, TLS when `tls` (handshake done on first use).
pub fn connect(tls: bool, port: u16, timeout: Duration) -> std::io::Result<Box<dyn ReadWrite>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    if !tls {
        return Ok(Box::new(tcp));
    }
    let conn = rustls::ClientConnection::new(tls_config(), "localhost".try_into().unwrap())
        .map_err(std::io::Error::other)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn parse(raw: &[u8]) -> std::io::Result<Resp> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of the header"))?;
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let code = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Resp {
        code,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if n == 0 || b.len() < eol + 2 + n {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
}

/// The server's certificate is self-signed: these tests check HTTP over TLS, not the
/// chain (which `https_with_a_self_signed_certificate` does with curl).
fn tls_config() -> Arc<rustls::ClientConfig> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Arc::new(cfg)
}
