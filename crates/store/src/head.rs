//! Trimming a stream's head: retention deletes the oldest segments of a stream (even one
//! still being written) while every reader, split, export and recovery keeps seeing a
//! consistent stream.
//!
//! The trim point lives in its own file, `head.json`, not in `meta.json`, because the
//! stream's writer rewrites `meta.json` from its own copy when it seals; a trim point kept
//! there could be lost. Order of a trim, which is what makes a crash harmless:
//!
//! 1. `head.json` is replaced atomically with the new first live chunk (its index, first
//!    packet, logical position, segment and first timestamp). From this moment every new
//!    reader treats the chunks before it, their marks and summaries as dead.
//! 2. The segments before the head's segment are deleted.
//!
//! A crash between 1 and 2 leaves segments that no live index entry reaches; recovery
//! ([`crate::Store::recover`]) deletes them. The index files are never rewritten: their
//! records before the head stay as dead entries (64 bytes per chunk of up to 1 MiB), so
//! the packet numbers and logical positions of what remains never change and every split
//! of what remains is the same split it was before the trim, cut at the head.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::meta::sync_dir;

pub const HEAD_FILE: &str = "head.json";

/// The first live chunk of a stream. All zero for a stream that was never trimmed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Index in `chunks.idx` of the first live chunk.
    pub chunk: u64,
    /// Stream index of its first packet.
    pub packet: u64,
    /// Logical position of its first record.
    pub pos: u64,
    /// Its segment: every segment below this one is dead.
    pub segment: u32,
    /// Timestamp of its first packet (the oldest packet still on disk).
    pub first_ts: u64,
    /// When the trim happened, ns since the epoch.
    pub trimmed_ns: u64,
}

impl Head {
    /// The stream's trim point; a stream without `head.json` starts at chunk 0.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(HEAD_FILE);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                path,
                why: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Replaces `head.json` atomically and durably (see the module doc for why first).
    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        let path = dir.join(HEAD_FILE);
        let tmp = dir.join(".head.json.tmp");
        let json = serde_json::to_vec(self).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(&json).at(&tmp)?;
        f.sync_data().at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)?;
        sync_dir(dir)
    }
}

/// Segment files of a stream directory: `(number, bytes)`, in order.
pub(crate) fn segment_files(dir: &Path) -> Result<Vec<(u32, u64)>> {
    numbered_files(dir, ".wcs", |e, _| {
        Some(e.metadata().map(|m| m.len()).unwrap_or(0))
    })
}

/// Files `seg-NNNNNNNN{suffix}` of `dir` with what `len` says of them (`None`: left
/// out), by number.
pub(crate) fn numbered_files(
    dir: &Path,
    suffix: &str,
    len: impl Fn(&fs::DirEntry, u32) -> Option<u64>,
) -> Result<Vec<(u32, u64)>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(l) = len(&e, n) {
            v.push((n, l));
        }
    }
    v.sort_unstable();
    Ok(v)
}

/// Deletes the segments below the head: step 2 of a trim, and its completion after a
/// crash. Returns the bytes freed.
pub(crate) fn delete_dead_segments(dir: &Path, head: &Head) -> Result<u64> {
    let mut freed = 0;
    for (n, len) in segment_files(dir)? {
        if n >= head.segment {
            break;
        }
        let p = dir.join(crate::layout::segment(n));
        match fs::remove_file(&p) {
            Ok(()) => freed += len,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at(&p),
        }
    }
    // Markers of segments kept elsewhere (crate::remote) below the head are dead too.
    if let Ok(remote) = crate::remote::remote_segments(dir) {
        for (n, _) in remote.into_iter().filter(|(n, _)| *n < head.segment) {
            let _ = fs::remove_file(dir.join(crate::remote::marker(n)));
        }
    }
    if freed > 0 {
        sync_dir(dir)?;
    }
    Ok(freed)
}
