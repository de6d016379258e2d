//! The space of the file system a store lives on: the one `statvfs(3)` call of the
//! workspace, for retention, the system page and `wirecap doctor`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Sizes in bytes of the file system holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Size of the file system.
    pub total: u64,
    /// Free, counting the blocks reserved for root.
    pub free: u64,
    /// Free for an unprivileged writer (what a capture can still fill).
    pub avail: u64,
}

/// The space of the file system holding `path`.
pub fn space(path: &Path) -> io::Result<Space> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `s` points to writable memory of the right
    // type; statvfs fills it completely when it returns 0, and only then is it read.
    if unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so `s` is initialised.
    let s = unsafe { s.assume_init() };
    // c_ulong / fsblkcnt_t are 32 bits wide on some targets.
    #[allow(clippy::unnecessary_cast)]
    let (frag, blocks, free, avail) = (
        s.f_frsize as u64,
        s.f_blocks as u64,
        s.f_bfree as u64,
        s.f_bavail as u64,
    );
    Ok(Space {
        total: blocks * frag,
        free: free * frag,
        avail: avail * frag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_real_file_system() {
        let d = tempfile::tempdir().unwrap();
        let s = space(d.path()).unwrap();
        assert!(s.total > 0);
        assert!(s.avail <= s.free && s.free <= s.total, "{s:?}");
        assert!(space(&d.path().join("missing")).is_err());
    }
}
