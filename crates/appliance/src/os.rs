//! What the appliance asks of the operating system beyond plain file reads: atomic file
//! replacement, an exclusive lock across processes, capabilities, disk space.

use std::path::Path;

/// An exclusive lock on a file (`flock` on Linux), held until dropped; the kernel drops it
/// if the process dies.
pub(crate) struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    pub(crate) fn exclusive(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        loop {
            match f.lock() {
                Ok(()) => return Ok(Self { _file: f }),
                // A signal handler ran while waiting: wait again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Replaces `path` with `bytes` so that readers and a crash see the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_mode(path, bytes, 0o666)
}

/// [`write_atomically`] with the file created with `mode` (before the umask), so that a
/// private file (`users.json`, 0600) is never readable by others, not even for a moment.
pub fn write_atomically_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so a stale temp file from a killed writer never
    // collides with a live one; `cleanup_temp_files` removes the stale ones.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files left by writers killed before their rename; they hold nothing that
/// the real file lacks.
pub fn cleanup_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with('.') && n.contains(".tmp-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// `CAP_NET_RAW` of linux/capability.h (libc does not define the capability numbers).
pub const CAP_NET_RAW: u32 = 13;

/// `CAP_SYS_ADMIN` of linux/capability.h.
pub const CAP_SYS_ADMIN: u32 = 21;

/// Whether capability number `cap` is in this process's effective set (`CapEff` of
/// /proc/self/status).
pub fn has_capability(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1u64 << cap) != 0)
}

/// Total and free bytes of the file system that holds `dir` (the store owns the call).
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    wirecap_store::disk::space(dir)
        .ok()
        .map(|s| (s.total, s.avail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_created_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomically_mode(&p, b"{}", 0o600).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn disk_space_of_a_real_directory() {
        let (total, free) = disk_space(Path::new("/")).unwrap();
        assert!(total > 0 && free <= total);
        assert!(disk_space(Path::new("/no/such/dir")).is_none());
    }
}
