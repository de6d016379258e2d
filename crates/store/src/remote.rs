//! Segments that live elsewhere: the one seam between the store and an archive tier.
//!
//! A sealed segment never changes, so its bytes may leave the local disk once a copy is
//! kept somewhere else (object storage). The stream's directory then holds, instead of
//! `seg-NNNNNNNN.wcs`, a marker `seg-NNNNNNNN.wcs.remote` whose text is the segment's
//! length in bytes; every index file stays local. Readers get a remote segment's chunks
//! from the [`SegmentSource`] given to [`crate::Store::with_source`], and check them
//! exactly as local ones (header and CRC32C) before any byte leaves the store: a damaged
//! object is a [`crate::Error::DamagedChunk`], never silently wrong packets.
//!
//! The store knows nothing of where the bytes are kept or how they are fetched.

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::layout;
use crate::meta::sync_dir;

/// Suffix of the marker of a segment kept elsewhere (after the segment's own name).
pub const MARKER_SUFFIX: &str = ".remote";

/// Where the bytes of segments that are not on the local disk come from.
pub trait SegmentSource: Send + Sync {
    /// Bytes of segment `segment` of stream `stream` (its directory is `dir`) starting
    /// at byte `offset`: at least `len` bytes (more when the source reads ahead), fewer
    /// only where the segment ends.
    fn read(
        &self,
        dir: &Path,
        stream: &str,
        segment: u32,
        offset: u64,
        len: u64,
    ) -> io::Result<Vec<u8>>;
}

/// Name of the marker of segment `n`.
pub fn marker(n: u32) -> String {
    format!("{}{MARKER_SUFFIX}", layout::segment(n))
}

/// Length of segment `n` of the stream in `dir` when it is kept elsewhere (a marker).
pub fn remote_len(dir: &Path, n: u32) -> Option<u64> {
    fs::read_to_string(dir.join(marker(n)))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// Segments of the stream in `dir` kept elsewhere: `(number, bytes)`, in order.
pub fn remote_segments(dir: &Path) -> Result<Vec<(u32, u64)>> {
    crate::head::numbered_files(dir, ".wcs.remote", |_, n| remote_len(dir, n))
}

/// Writes the marker of segment `n` (`len` bytes) durably, without touching the segment.
pub fn write_marker(dir: &Path, n: u32, len: u64) -> Result<()> {
    let path = dir.join(marker(n));
    let tmp = dir.join(format!(".{}.tmp", marker(n)));
    fs::write(&tmp, len.to_string()).at(&tmp)?;
    fs::File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
    fs::rename(&tmp, &path).at(&path)?;
    sync_dir(dir)
}

/// Replaces local segment `n` of the stream in `dir` by its marker: the marker is
/// written (durably) before the segment is unlinked, so a crash in between leaves both,
/// never neither. Readers that mapped the file keep reading it. Returns the bytes freed.
pub(crate) fn evict(dir: &Path, name: &str, n: u32) -> Result<u64> {
    let seg = dir.join(layout::segment(n));
    let len = match fs::metadata(&seg) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at(&seg),
    };
    if len == 0 {
        return Err(Error::Invalid(format!(
            "stream {name:?}: {} is empty, nothing to keep elsewhere",
            layout::segment(n)
        )));
    }
    write_marker(dir, n, len)?;
    fs::remove_file(&seg).at(&seg)?;
    sync_dir(dir)?;
    Ok(len)
}

/// Whether any segment of the stream in `dir` is kept elsewhere.
pub(crate) fn any_remote(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut it| {
        it.any(|e| {
            e.is_ok_and(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("seg-") && n.ends_with(MARKER_SUFFIX))
            })
        })
    })
}
