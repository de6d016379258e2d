//! The HTTPS certificate: the operator's (`[tls] cert`/`key` in the config), or a
//! self-signed one generated on first start and kept in `DIR/tls/` (key mode 0600).

use std::path::{Path, PathBuf};

use wirecap_appliance::error::{Error, IoContext};

pub const TLS_DIR: &str = "tls";

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
    if cert.is_file() && key.is_file() {
        return Ok(CertFiles {
            cert,
            key,
            generated: false,
            self_signed: true,
        });
    }
    std::fs::create_dir_all(&tls).at(&tls)?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    names.extend(host_name());
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Tls(format!("cannot generate a certificate: {e}")))?;
    write_file(&key, ck.key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert, ck.cert.pem().as_bytes(), 0o644)?;
    Ok(CertFiles {
        cert,
        key,
        generated: true,
        self_signed: true,
    })
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
}
