//! `meta.json`: what a stream is (name, link type, source, state). Everything countable
//! (packets, bytes, time range) comes from the index instead, so the two never disagree.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub const META_FILE: &str = "meta.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Being written (or the writer died and recovery has not run yet).
    Open,
    /// Closed by its writer.
    Sealed,
    /// The writer died; recovery kept every whole chunk and sealed it.
    Recovered,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMeta {
    /// Store format version.
    pub format: u32,
    /// The stored name (base name + `_YYYYMMDD_HHMM`).
    pub name: String,
    /// The name the user gave.
    pub base_name: String,
    /// Creation time, ns since the epoch.
    pub created_ns: u64,
    pub link_type: u16,
    pub snaplen: u32,
    /// Where the packets came from: `import`, `capture:eth0`, `replay:file.pcap`, …
    pub source: String,
    pub state: StreamState,
    pub closed_ns: Option<u64>,
    /// Bytes of each chunk summary in `summary.idx`; 0 when chunks are not summarized.
    #[serde(default)]
    pub summary_len: u32,
    /// Chunks start at multiples of this in their segment (4096 for direct I/O; 0 or 1
    /// means packed back to back).
    #[serde(default)]
    pub chunk_align: u32,
    /// Free-form attributes recorded with the stream (capture mode, importer notes, …).
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

impl StreamMeta {
    /// The alignment of chunk starts in segments, at least 1.
    pub fn align(&self) -> u64 {
        u64::from(self.chunk_align.max(1))
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).at(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path,
            why: e.to_string(),
        })
    }

    /// Replaces `meta.json` atomically: a crash leaves the old or the new file, never half.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let path = dir.join(META_FILE);
        let tmp = dir.join(".meta.json.tmp");
        let mut json =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        json.push(b'\n');
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(&json).at(&tmp)?;
        f.sync_data().at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)?;
        sync_dir(dir)
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
