//! The appliance's hostname: validated as RFC 1123, kept in `wirecap.toml` (`hostname`),
//! shown in the status, the UI's title and the report's name, and applied to the OS
//! (sethostname(2) and `/etc/hostname`) only when the configuration allows it
//! (`apply_hostname_to_os = true`) and the process holds CAP_SYS_ADMIN.

use std::path::Path;

/// Longest hostname (RFC 1123 §2.1 and the kernel's `HOST_NAME_MAX`, 64, minus one).
pub const MAX_LEN: usize = 63;
/// Where the OS keeps the hostname across reboots.
pub const ETC_HOSTNAME: &str = "/etc/hostname";

/// Checks `name` as an RFC 1123 host name: dot-separated labels of letters, digits and
/// hyphens, no label empty, longer than 63 or starting or ending with a hyphen; at most
/// [`MAX_LEN`] characters in all (what sethostname accepts and a pcap report name keeps).
pub fn validate(name: &str) -> Result<(), String> {
    let shown = crate::short(name);
    if name.is_empty() {
        return Err("a hostname cannot be empty".into());
    }
    if name.len() > MAX_LEN {
        return Err(format!(
            "hostname {shown:?} is {} characters long; at most {MAX_LEN}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "hostname {shown:?} has an empty label (two dots, or a dot at an end)"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "hostname {shown:?} contains {c:?}: use letters a-z, digits and hyphens, labels separated by dots"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "hostname {shown:?}: a label cannot start or end with a hyphen"
            ));
        }
    }
    Ok(())
}

/// The OS's hostname now.
pub fn os_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "wirecap".to_owned())
}

/// The name to show: the configured one, else the OS's.
pub fn effective(configured: Option<&str>) -> String {
    configured.map_or_else(os_hostname, str::to_owned)
}

/// Whether the process's effective capabilities include CAP_SYS_ADMIN (bit 21), which
/// sethostname(2) needs (in the process's UTS namespace).
pub fn can_set_os_hostname() -> bool {
    crate::os::has_capability(crate::os::CAP_SYS_ADMIN)
}

/// What [`apply_to_os`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsApply {
    /// sethostname and /etc/hostname written.
    Applied,
    /// The configuration does not allow it (`apply_hostname_to_os` is false).
    NotAllowed,
    /// The process lacks CAP_SYS_ADMIN.
    NoCapability,
}

/// Sets the OS hostname to `name` (already validated) and writes `etc_hostname`, when
/// `allowed` and the process has the right to.
pub fn apply_to_os(name: &str, allowed: bool, etc_hostname: &Path) -> Result<OsApply, String> {
    if !allowed {
        return Ok(OsApply::NotAllowed);
    }
    if !can_set_os_hostname() {
        return Ok(OsApply::NoCapability);
    }
    validate(name)?;
    // SAFETY: the pointer and length describe `name`'s bytes, alive for the call;
    // sethostname copies them and needs no terminating NUL.
    let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(format!(
            "sethostname({name}): {}",
            std::io::Error::last_os_error()
        ));
    }
    write_in_place(etc_hostname, format!("{name}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", etc_hostname.display()))?;
    Ok(OsApply::Applied)
}

/// Rewrites a file in place. Not rename-over: in containers `/etc/hostname` is a bind
/// mount, which a rename cannot replace (EBUSY), and a temp file beside it would land in
/// the host's `/etc`. The running hostname is already set, so a torn file costs at most
/// the name after a reboot, and the next start applies the configured name again.
fn write_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1123_names() {
        for ok in [
            "a",
            "probe-1",
            "fra1.example.net",
            "0abc",
            "A-Z9",
            &"x".repeat(63),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "under_score",
            "sp ace",
            "ünï",
            "a/b",
            &"x".repeat(64),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn not_applied_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("hostname");
        assert_eq!(apply_to_os("x", false, &etc).unwrap(), OsApply::NotAllowed);
        assert!(!etc.exists());
    }
}
