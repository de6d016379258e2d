//! Where a stream's files live. One directory per stream:
//!
//! ```text
//! DATA/streams/<name>_YYYYMMDD_HHMM/
//!     meta.json           what the stream is (StreamMeta)
//!     seg-00000000.wcs    segments: chunks back to back; a full segment never changes
//!     chunks.idx          one ChunkRecord per chunk
//!     time.idx            one Mark per second holding packets
//!     size-1MB.idx …      one Mark per size-split file after the first
//!     summary.idx         optional: one opaque summary per chunk, for skipping
//!     flows.idx           optional: flow records and packet positions (crate::flows)
//!     flows.lut           optional: lookup tables of flows.idx's blocks (crate::lut)
//!     pieces.idx          optional: per chunk, CRCs of its 4 KiB pieces (crate::pieces)
//!     writer.lock         flock(2)ed by the stream's one writer
//!     head.json           optional: where retention trimmed the head (crate::head)
//!     pinned              optional, empty: retention never deletes this stream
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::index::SIZE_LEVEL_NAMES;

pub const STREAMS_DIR: &str = "streams";
pub const CHUNKS: &str = "chunks.idx";
pub const TIME: &str = "time.idx";
pub const LOCK: &str = "writer.lock";
pub const SUMMARY: &str = "summary.idx";
pub const FLOWS: &str = "flows.idx";
/// Lookup tables of `flows.idx` (see `crate::lut`).
pub const FLOWS_LUT: &str = "flows.lut";
pub const PIECES: &str = "pieces.idx";
pub const PIN: &str = "pinned";

pub fn segment(n: u32) -> String {
    format!("seg-{n:08}.wcs")
}

pub fn size_file(level: usize) -> String {
    format!("size-{}.idx", SIZE_LEVEL_NAMES[level])
}

/// Opens (creating) a segment for writing at explicit offsets. With `direct`, the page
/// cache is bypassed (O_DIRECT); `Ok(None)` when the file system refuses that (tmpfs).
pub(crate) fn open_segment(path: &Path, direct: bool) -> Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    match o.open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

/// Takes the stream's writer lock; fails at once if another writer holds it. The lock is
/// released by the kernel when the file is closed, so a killed writer never leaves a
/// stale lock behind.
pub(crate) fn lock(dir: &Path, name: &str) -> Result<File> {
    let path = dir.join(LOCK);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    // std's lock is flock(2) on Linux: the same lock other wirecap versions take.
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(TryLockError::WouldBlock) => Err(Error::Locked(name.to_owned())),
        Err(TryLockError::Error(e)) => Err(e).at(&path),
    }
}

/// Whether some process holds the stream's writer lock right now.
pub(crate) fn is_locked(dir: &Path) -> bool {
    let Ok(f) = File::open(dir.join(LOCK)) else {
        return false;
    };
    // A shared probe lock, released at once by closing the file.
    f.try_lock_shared().is_err()
}
