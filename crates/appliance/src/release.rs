//! Release archives: `wirecap-<version>.tar.gz` holding the `wirecap` binary and a
//! `manifest.toml`, how to make one, and how to check one before it is installed.
//!
//! ```toml
//! version   = "0.2.0"                 # what `wirecap --version` of the binary prints
//! sha256    = "9f86d0…"               # of the binary, lowercase hex
//! signature = "base64…"               # optional: ed25519 over `signed_bytes(version, sha256)`
//! ```
//!
//! The signature covers the version and the checksum, not the archive: the archive can be
//! recompressed, the binary cannot change without its checksum changing. Trusted public
//! keys (base64 of the 32-byte key) come from `[update] trusted_keys` in the config.
//!
//! Checks, in order, each a clear error and nothing installed: the archive is a gzip'd tar
//! of exactly those two regular files; the manifest parses; the checksum matches; the
//! signature verifies with a trusted key (when present, or when required); the binary is
//! an ELF executable for this machine; and running it with `--version` (bounded in time)
//! prints `wirecap <version>`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Name of the binary inside an archive and inside an installed release's directory.
pub const BINARY: &str = "wirecap";
/// Name of the manifest inside an archive and inside an installed release's directory.
pub const MANIFEST: &str = "manifest.toml";
/// Longest manifest accepted.
const MAX_MANIFEST: u64 = 64 * 1024;
/// Largest binary an archive may unpack to: a small archive must not fill the disk.
pub const MAX_BINARY: u64 = 2 << 30;
/// How long `BINARY --version` may take before the release is refused.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a release archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("not a release archive: {0}")]
    Archive(String),
    #[error("manifest.toml: {0}")]
    Manifest(String),
    #[error(
        "checksum mismatch: the manifest says sha256 {expected}, the binary has {actual}; the archive is damaged or was altered"
    )]
    Checksum { expected: String, actual: String },
    #[error("signature: {0}")]
    Signature(String),
    #[error("the binary is not a wirecap for this machine: {0}")]
    Binary(String),
    #[error(
        "{binary} reports version {reported:?}, not {wanted:?}: pack the binary of version {wanted}, or give --version {reported}"
    )]
    VersionMismatch {
        binary: String,
        reported: String,
        wanted: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ReleaseError {
    let what = what.into();
    move |source| ReleaseError::Io { what, source }
}

/// What an archive says about its binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The bytes a release signature covers.
pub fn signed_bytes(version: &str, sha256: &str) -> Vec<u8> {
    format!("wirecap release\nversion {version}\nsha256 {sha256}\n").into_bytes()
}

/// A version is also a directory name and a URL path segment.
pub fn validate_version(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('.')
        && !v.starts_with('-')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "version {v:?}: use 1 to 64 of A-Z a-z 0-9 . _ + -, not starting with . or -"
        ))
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        let m: Self = toml::from_str(text).map_err(|e| ReleaseError::Manifest(e.to_string()))?;
        validate_version(&m.version).map_err(ReleaseError::Manifest)?;
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReleaseError::Manifest(
                "sha256 must be 64 hex digits".into(),
            ));
        }
        Ok(m)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ReleaseError> {
    let mut f = std::fs::File::open(path).map_err(io(path.display().to_string()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path.display().to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A new signing key: (secret seed, public key), both base64.
pub fn keygen() -> Result<(String, String), ReleaseError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| ReleaseError::Signature(format!("no randomness for a key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        b64().encode(seed),
        b64().encode(key.verifying_key().to_bytes()),
    ))
}

/// Reads a secret key as `keygen` writes it (base64 of the 32-byte seed).
pub fn read_signing_key(text: &str) -> Result<SigningKey, ReleaseError> {
    let raw = b64()
        .decode(text.trim())
        .map_err(|e| ReleaseError::Signature(format!("secret key is not base64: {e}")))?;
    let seed: [u8; 32] = raw
        .try_into()
        .map_err(|_| ReleaseError::Signature("secret key must be 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key as `keygen` prints it.
pub fn read_public_key(text: &str) -> Result<VerifyingKey, String> {
    let raw = b64()
        .decode(text.trim())
        .map_err(|e| format!("public key {text:?} is not base64: {e}"))?;
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| format!("public key {text:?} must be 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("public key {text:?}: {e}"))
}

/// Writes `out` (a `.tar.gz`) with `binary` and its manifest, signed when `key` is given.
/// Refuses a binary that does not report `version` (`binary --version`), which every
/// appliance would refuse after the upload (issue 14.11): it runs the binary, so pack
/// on a machine of the binary's architecture.
pub fn pack(
    binary: &Path,
    version: &str,
    key: Option<&SigningKey>,
    out: &Path,
) -> Result<Manifest, ReleaseError> {
    validate_version(version).map_err(ReleaseError::Manifest)?;
    let reported = reported_version(binary, VERSION_TIMEOUT)?;
    if reported != version {
        return Err(ReleaseError::VersionMismatch {
            binary: binary.display().to_string(),
            reported,
            wanted: version.to_owned(),
        });
    }
    pack_unchecked(binary, version, key, out)
}

/// [`pack`] without running the binary: for archives that must be refused (tests of the
/// appliance's checks), and binaries of another architecture.
pub fn pack_unchecked(
    binary: &Path,
    version: &str,
    key: Option<&SigningKey>,
    out: &Path,
) -> Result<Manifest, ReleaseError> {
    validate_version(version).map_err(ReleaseError::Manifest)?;
    let sha256 = sha256_file(binary)?;
    let signature = key.map(|k| b64().encode(k.sign(&signed_bytes(version, &sha256)).to_bytes()));
    let m = Manifest {
        version: version.to_owned(),
        sha256,
        signature,
    };
    let text = m.to_toml();
    let part = out.with_extension("part");
    let write = || -> std::io::Result<()> {
        let f = std::fs::File::create(&part)?;
        // Fast compression: the archive crosses a LAN once; packing speed matters more.
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, MANIFEST, text.as_bytes())?;
        let mut bin = std::fs::File::open(binary)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(bin.metadata()?.len());
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, BINARY, &mut bin)?;
        let gz = t.into_inner()?;
        let f = gz.finish()?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&part, out)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&part);
        ReleaseError::Io {
            what: format!("writing {}", out.display()),
            source: e,
        }
    })?;
    Ok(m)
}

/// Unpacks `archive` into the empty directory `into` (only the binary and the manifest)
/// and returns the manifest. Refuses anything else in the archive.
pub fn unpack(archive: &Path, into: &Path) -> Result<Manifest, ReleaseError> {
    let f = std::fs::File::open(archive).map_err(io(archive.display().to_string()))?;
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
    let mut manifest = None;
    let mut have_binary = false;
    let entries = t
        .entries()
        .map_err(|e| ReleaseError::Archive(format!("not a gzip'd tar: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| ReleaseError::Archive(format!("not a gzip'd tar: {e}")))?;
        let name = e
            .path()
            .map_err(|e| ReleaseError::Archive(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if name.is_empty() && e.header().entry_type().is_dir() {
            continue;
        }
        if !e.header().entry_type().is_file() {
            return Err(ReleaseError::Archive(format!(
                "{name:?} is not a regular file; an archive holds only {BINARY} and {MANIFEST}"
            )));
        }
        match name.as_str() {
            MANIFEST if manifest.is_none() => {
                let mut text = String::new();
                e.by_ref()
                    .take(MAX_MANIFEST)
                    .read_to_string(&mut text)
                    .map_err(|e| ReleaseError::Manifest(format!("not UTF-8 text: {e}")))?;
                manifest = Some(Manifest::parse(&text)?);
            }
            BINARY if !have_binary => {
                let path = into.join(BINARY);
                let mut out =
                    std::fs::File::create(&path).map_err(io(path.display().to_string()))?;
                let n = std::io::copy(&mut e.by_ref().take(MAX_BINARY + 1), &mut out)
                    .map_err(|e| ReleaseError::Archive(format!("reading {BINARY}: {e}")))?;
                if n > MAX_BINARY {
                    return Err(ReleaseError::Archive(format!(
                        "{BINARY} unpacks to more than {} GiB",
                        MAX_BINARY >> 30
                    )));
                }
                // On disk before the release directory is renamed into place: a crash
                // must not leave a truncated binary that looks installed.
                out.sync_all().map_err(io(path.display().to_string()))?;
                have_binary = true;
            }
            other => {
                return Err(ReleaseError::Archive(format!(
                    "unexpected entry {other:?}; an archive holds only {BINARY} and {MANIFEST}, once each"
                )));
            }
        }
    }
    let m = manifest.ok_or_else(|| ReleaseError::Archive(format!("no {MANIFEST} in it")))?;
    if !have_binary {
        return Err(ReleaseError::Archive(format!("no {BINARY} in it")));
    }
    std::fs::write(into.join(MANIFEST), m.to_toml()).map_err(io("writing the manifest"))?;
    Ok(m)
}

/// Which key signed a release, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Signed {
    No,
    By(String),
}

/// Checks the signature: a signature present must verify with a trusted key; a missing
/// one is refused when `require` is set.
pub fn check_signature(
    m: &Manifest,
    trusted: &[String],
    require: bool,
) -> Result<Signed, ReleaseError> {
    let Some(sig) = &m.signature else {
        return if require {
            Err(ReleaseError::Signature(
                "this server requires signed releases ([update] require_signature) and the archive is not signed; sign it with `wirecap release pack --sign-key FILE`".into(),
            ))
        } else {
            Ok(Signed::No)
        };
    };
    if trusted.is_empty() {
        return Err(ReleaseError::Signature(
            "the archive is signed but no trusted keys are configured ([update] trusted_keys = [\"<public key>\"])".into(),
        ));
    }
    let raw = b64()
        .decode(sig.trim())
        .map_err(|e| ReleaseError::Signature(format!("not base64: {e}")))?;
    let sig = ed25519_dalek::Signature::from_slice(&raw)
        .map_err(|e| ReleaseError::Signature(format!("malformed: {e}")))?;
    let msg = signed_bytes(&m.version, &m.sha256);
    for k in trusted {
        let key = read_public_key(k).map_err(ReleaseError::Signature)?;
        if key.verify(&msg, &sig).is_ok() {
            return Ok(Signed::By(k.clone()));
        }
    }
    Err(ReleaseError::Signature(
        "no trusted key verifies it (wrong key, or the manifest was altered)".into(),
    ))
}

/// The ELF machine number of this build's architecture.
fn this_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        "x86" => Some(3),
        "arm" => Some(40),
        "riscv64" => Some(243),
        _ => None,
    }
}

/// Checks the ELF header: 64/32-bit and byte order of this build, this machine, executable.
pub fn check_elf(head: &[u8]) -> Result<(), String> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let class = if cfg!(target_pointer_width = "64") {
        2
    } else {
        1
    };
    if head[4] != class {
        return Err("ELF of the wrong word size for this machine".into());
    }
    let little = head[5] == 1;
    if little != cfg!(target_endian = "little") {
        return Err("ELF of the wrong byte order for this machine".into());
    }
    let rd16 = |o: usize| {
        let b = [head[o], head[o + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let (etype, machine) = (rd16(16), rd16(18));
    // ET_EXEC, or ET_DYN for position-independent executables.
    if etype != 2 && etype != 3 {
        return Err(format!("ELF type {etype} is not an executable"));
    }
    if let Some(m) = this_machine()
        && m != machine
    {
        return Err(format!(
            "ELF for machine {machine}, this is {} (machine {m})",
            std::env::consts::ARCH
        ));
    }
    Ok(())
}

/// Runs `binary --version` (bounded by `timeout`) and returns the version it reports.
pub fn reported_version(binary: &Path, timeout: Duration) -> Result<String, ReleaseError> {
    // A clean environment: an unproven binary gets no secrets (WIRECAP_ADMIN_PASSWORD).
    let mut child = Command::new(binary)
        .arg("--version")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ReleaseError::Binary(format!("cannot run it: {e}")))?;
    let mut out = child.stdout.take().expect("piped stdout");
    // Read on a thread so that a binary which prints forever cannot block the deadline.
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.by_ref().take(4096).read_to_end(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| ReleaseError::Binary(e.to_string()))?
        {
            break s;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ReleaseError::Binary(format!(
                "`wirecap --version` did not answer within {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(ReleaseError::Binary(format!(
            "`wirecap --version` failed ({status})"
        )));
    }
    let text = String::from_utf8_lossy(&text);
    text.trim()
        .strip_prefix("wirecap ")
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| {
            ReleaseError::Binary(format!(
                "`--version` printed {:?}, not `wirecap <version>`",
                text.trim()
            ))
        })
}

/// Everything checked about an unpacked release in `dir`.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub signed: Signed,
    pub binary: PathBuf,
}

/// Checks an unpacked release (see the module docs for the order).
pub fn verify(
    dir: &Path,
    manifest: Manifest,
    trusted: &[String],
    require_signature: bool,
) -> Result<Verified, ReleaseError> {
    let binary = dir.join(BINARY);
    let actual = sha256_file(&binary)?;
    if !actual.eq_ignore_ascii_case(&manifest.sha256) {
        return Err(ReleaseError::Checksum {
            expected: manifest.sha256.clone(),
            actual,
        });
    }
    let signed = check_signature(&manifest, trusted, require_signature)?;
    let mut head = [0u8; 20];
    let n = std::fs::File::open(&binary)
        .and_then(|mut f| f.read(&mut head))
        .map_err(io(binary.display().to_string()))?;
    check_elf(&head[..n]).map_err(ReleaseError::Binary)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .map_err(io(binary.display().to_string()))?;
    }
    let reported = reported_version(&binary, VERSION_TIMEOUT)?;
    if reported != manifest.version {
        return Err(ReleaseError::Binary(format!(
            "it reports version {reported:?}, the manifest says {:?}",
            manifest.version
        )));
    }
    Ok(Verified {
        manifest,
        signed,
        binary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_key_and_manifest() {
        let (secret, public) = keygen().unwrap();
        let (_, other) = keygen().unwrap();
        let key = read_signing_key(&secret).unwrap();
        let sha = "ab".repeat(32);
        let sig = b64().encode(key.sign(&signed_bytes("1.2.3", &sha)).to_bytes());
        let m = Manifest {
            version: "1.2.3".into(),
            sha256: sha.clone(),
            signature: Some(sig),
        };
        assert_eq!(
            check_signature(&m, std::slice::from_ref(&public), true).unwrap(),
            Signed::By(public.clone())
        );
        assert!(check_signature(&m, std::slice::from_ref(&other), false).is_err());
        assert!(check_signature(&m, &[], false).is_err());
        let altered = Manifest {
            version: "1.2.4".into(),
            ..m.clone()
        };
        assert!(check_signature(&altered, std::slice::from_ref(&public), false).is_err());
        let unsigned = Manifest {
            signature: None,
            ..m
        };
        assert_eq!(
            check_signature(&unsigned, std::slice::from_ref(&public), false).unwrap(),
            Signed::No
        );
        assert!(check_signature(&unsigned, &[public], true).is_err());
    }

    #[test]
    fn elf_check_accepts_this_binary_and_refuses_scripts() {
        let me = std::env::current_exe().unwrap();
        let mut head = [0u8; 20];
        std::fs::File::open(me)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        check_elf(&head).unwrap();
        assert!(check_elf(b"#!/bin/sh\nexit 1\n\0\0\0\0").is_err());
        let mut other = head;
        other[18] ^= 0x40;
        assert!(check_elf(&other).unwrap_err().contains("machine"));
    }

    /// Issue 14.11: an archive whose binary reports another version is not made.
    #[test]
    fn pack_refuses_a_binary_of_another_version() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("wirecap");
        std::fs::write(&bin, "#!/bin/sh\necho wirecap 1.2.3\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = d.path().join("r.tar.gz");
        let e = pack(&bin, "0.2.0", None, &out).unwrap_err().to_string();
        assert!(
            e.contains("reports version \"1.2.3\", not \"0.2.0\""),
            "{e}"
        );
        assert!(!out.exists());
        assert_eq!(pack(&bin, "1.2.3", None, &out).unwrap().version, "1.2.3");
    }

    #[test]
    fn versions_are_safe_path_segments() {
        for ok in ["0.1.0", "1.2.3-rc.1", "2.0+build5"] {
            validate_version(ok).unwrap();
        }
        for bad in ["", "..", "../x", "a/b", "-x", "a b", &"9".repeat(65)] {
            assert!(validate_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pack_then_unpack_round_trips_and_damage_is_caught() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::write(&bin, b"\x7fELF not really").unwrap();
        let out = d.path().join("r.tar.gz");
        let m = pack_unchecked(&bin, "1.0.0", None, &out).unwrap();
        let into = d.path().join("u");
        std::fs::create_dir(&into).unwrap();
        assert_eq!(unpack(&out, &into).unwrap(), m);
        assert_eq!(sha256_file(&into.join(BINARY)).unwrap(), m.sha256);
        // A damaged checksum is caught before anything runs the binary.
        let bad = Manifest {
            sha256: "00".repeat(32),
            ..m
        };
        let e = verify(&into, bad, &[], false).unwrap_err();
        assert!(matches!(e, ReleaseError::Checksum { .. }), "{e}");
        // Not an archive at all.
        std::fs::write(&out, b"hello").unwrap();
        let into2 = d.path().join("u2");
        std::fs::create_dir(&into2).unwrap();
        assert!(matches!(
            unpack(&out, &into2),
            Err(ReleaseError::Archive(_))
        ));
    }
}
