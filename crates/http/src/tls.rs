//! The HTTPS certificate: the operator's (`[tls] cert`/`key` in the config), or a
//! self-signed one generated on first start and kept in `DIR/tls/` (key mode 0600). The
//! self-signed one names the host (subject and SANs: its name, `localhost`, its
//! addresses), is valid for [`SELF_SIGNED_DAYS`] and is made again at start-up when
//! fewer than [`RENEW_DAYS`] are left (its end is kept in `DIR/tls/not-after`; a
//! certificate without that file predates this and is replaced). Over HTTPS every
//! session cookie gets `Secure` ([`secure_cookies`]).

use std::path::{Path, PathBuf};

use wirecap_appliance::error::{Error, IoContext};

pub const TLS_DIR: &str = "tls";
/// How long a self-signed certificate is valid.
pub const SELF_SIGNED_DAYS: i32 = 365;
/// A self-signed certificate with fewer days left is made again at start-up.
pub const RENEW_DAYS: i64 = 30;
const NOT_AFTER_FILE: &str = "not-after";

/// Where the certificate and key are, and whether they were made just now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub generated: bool,
    pub self_signed: bool,
}

/// Installs the ring crypto provider as rustls' process default (once).
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The operator's files if configured, else `DIR/tls/{cert,key}.pem`, generated if absent.
pub fn cert_files(dir: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<CertFiles, Error> {
    if let (Some(c), Some(k)) = (cert, key) {
        for p in [c, k] {
            if !p.is_file() {
                return Err(Error::Tls(format!("{} does not exist", p.display())));
            }
        }
        return Ok(CertFiles {
            cert: c.to_path_buf(),
            key: k.to_path_buf(),
            generated: false,
            self_signed: false,
        });
    }
    let tls = dir.join(TLS_DIR);
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let now = jiff::Timestamp::now();
    let left = std::fs::read_to_string(tls.join(NOT_AFTER_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|end| (end - now.as_second()) / 86_400);
    if cert.is_file() && key.is_file() {
        match left {
            Some(days) if days >= RENEW_DAYS => {
                return Ok(CertFiles {
                    cert,
                    key,
                    generated: false,
                    self_signed: true,
                });
            }
            Some(days) => tracing::info!(days, "the self-signed certificate ends soon: made again"),
            None => tracing::info!(
                "the self-signed certificate has no recorded end (made by an older wirecap, valid for ever): made again"
            ),
        }
    }
    std::fs::create_dir_all(&tls).at(&tls)?;
    let host = host_name().unwrap_or_else(|| "localhost".to_owned());
    let mut names = vec![host.clone(), "localhost".to_owned()];
    let mut addrs: Vec<std::net::IpAddr> =
        vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    for a in host_addresses() {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    names.extend(addrs.iter().map(ToString::to_string));
    names.dedup();
    let (pem_cert, pem_key, not_after) = self_signed(&host, names, now)?;
    write_file(&key, pem_key.as_bytes(), 0o600)?;
    write_file(&cert, pem_cert.as_bytes(), 0o644)?;
    write_file(
        &tls.join(NOT_AFTER_FILE),
        format!("{not_after}\n").as_bytes(),
        0o644,
    )?;
    Ok(CertFiles {
        cert,
        key,
        generated: true,
        self_signed: true,
    })
}

/// A self-signed certificate for `host` with `names` as SANs, valid from yesterday for
/// [`SELF_SIGNED_DAYS`]: `(cert PEM, key PEM, end in Unix seconds)`.
fn self_signed(
    host: &str,
    names: Vec<String>,
    now: jiff::Timestamp,
) -> Result<(String, String, i64), Error> {
    let fail = |e: String| Error::Tls(format!("cannot generate a certificate: {e}"));
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(
            i32::from(d.year()),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    let start = today
        .checked_sub(jiff::Span::new().days(1))
        .map_err(|e| fail(e.to_string()))?;
    let end = today
        .checked_add(jiff::Span::new().days(SELF_SIGNED_DAYS))
        .map_err(|e| fail(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| fail(e.to_string()))?;
    params.not_before = ymd(start);
    params.not_after = ymd(end);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, host);
    dn.push(rcgen::DnType::OrganizationName, "wirecap (self-signed)");
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().map_err(|e| fail(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| fail(e.to_string()))?;
    let end_s = end
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| fail(e.to_string()))?
        .timestamp()
        .as_second();
    Ok((cert.pem(), key.serialize_pem(), end_s))
}

/// The host's addresses (but link-local IPv6, which needs a scope to be used).
fn host_addresses() -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below by freeifaddrs; each
    // entry's address is read only when present and of the family it says.
    unsafe {
        if libc::getifaddrs(&raw mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() {
                match i32::from((*a).sa_family) {
                    libc::AF_INET => {
                        let sin = &*a.cast::<libc::sockaddr_in>();
                        out.push(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                            u32::from_be(sin.sin_addr.s_addr),
                        )));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*a.cast::<libc::sockaddr_in6>();
                        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        if !ip.is_unicast_link_local() {
                            out.push(std::net::IpAddr::V6(ip));
                        }
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

/// Adds `Secure` to every cookie a response sets (layered on the HTTPS listener only:
/// the login route cannot tell from the request that it came over TLS).
pub async fn secure_cookies(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header::SET_COOKIE};
    let cookies: Vec<HeaderValue> = r.headers().get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return r;
    }
    r.headers_mut().remove(SET_COOKIE);
    for c in cookies {
        let text = c.to_str().unwrap_or("");
        let has = text
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case("secure"));
        let v = if has || text.is_empty() {
            c
        } else {
            HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(c)
        };
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .at(&tmp)?;
    f.write_all(bytes).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let a = cert_files(d.path(), None, None).unwrap();
        assert!(a.generated);
        let pem = std::fs::read_to_string(&a.cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = cert_files(d.path(), None, None).unwrap();
        assert!(!b.generated);
        assert_eq!(std::fs::read_to_string(&b.cert).unwrap(), pem);
        assert!(cert_files(d.path(), Some(Path::new("/nonexistent")), Some(&a.key)).is_err());
    }

    /// Issue 17.10: "rcgen self signed cert", valid 1975–4096, never renewed.
    #[test]
    fn the_self_signed_certificate_names_the_host_lasts_a_year_and_is_renewed() {
        let d = tempfile::tempdir().unwrap();
        let a = cert_files(d.path(), None, None).unwrap();
        let pem = std::fs::read_to_string(&a.cert).unwrap();
        let end: i64 = std::fs::read_to_string(d.path().join(TLS_DIR).join(NOT_AFTER_FILE))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let days = (end - jiff::Timestamp::now().as_second()) / 86_400;
        assert!((360..=366).contains(&days), "{days} days");
        // The DER holds the names as plain bytes: the host name, not rcgen's default.
        let der = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
        let has = |s: &[u8]| der.windows(s.len()).any(|w| w == s);
        assert!(!has(b"rcgen self signed cert"));
        if let Some(h) = host_name() {
            assert!(has(h.as_bytes()), "the host name {h} is in the certificate");
        }
        assert!(has(&[127, 0, 0, 1]), "127.0.0.1 is a SAN");
        // 10 days left: made again at the next start.
        let soon = jiff::Timestamp::now().as_second() + 10 * 86_400;
        std::fs::write(
            d.path().join(TLS_DIR).join(NOT_AFTER_FILE),
            soon.to_string(),
        )
        .unwrap();
        let b = cert_files(d.path(), None, None).unwrap();
        assert!(b.generated);
        assert_ne!(std::fs::read_to_string(&b.cert).unwrap(), pem);
        // A certificate from before (no recorded end) is replaced too.
        std::fs::remove_file(d.path().join(TLS_DIR).join(NOT_AFTER_FILE)).unwrap();
        assert!(cert_files(d.path(), None, None).unwrap().generated);
        assert!(!cert_files(d.path(), None, None).unwrap().generated);
    }

    #[tokio::test]
    async fn cookies_get_secure_over_https() {
        use axum::http::{HeaderValue, header::SET_COOKIE};
        let mut r = axum::response::Response::new(axum::body::Body::empty());
        r.headers_mut().append(
            SET_COOKIE,
            HeaderValue::from_static("wirecap_session=x; Path=/; HttpOnly"),
        );
        r.headers_mut()
            .append(SET_COOKIE, HeaderValue::from_static("a=b; Secure"));
        let r = secure_cookies(r).await;
        let all: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], "wirecap_session=x; Path=/; HttpOnly; Secure");
        assert_eq!(all[1], "a=b; Secure");
    }
}
