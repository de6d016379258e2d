//! The manifest of one archived stream (`PREFIX/PROBE/STREAM/manifest.json`), the same
//! document kept locally as `archive.json` in the stream's directory: the writeback
//! queue's memory.
//!
//! ```json
//! {"format":1,"probe":"probe-1","stream":"cap_20261204_1800","sealed":false,
//!  "segments":{"0":{"bytes":268435456,"sha256":"…"}},
//!  "files":{"chunks.idx":{"bytes":16384,"sha256":"…","mtime_ns":…},"meta.json":{…}},
//!  "updated_ns":1764871200000000000}
//! ```
//! `flows` (absent until there is one) says which blocks of the flow index went out as
//! Parquet and where (see [`crate::flows`]).
//! `segments` are the sealed segments in the archive (`seg-NNNNNNNN.wcs`); `files` every
//! other file of the stream directory as last uploaded (files named `seg-NNNNNNNN.*`
//! belong to that segment and go with it); `sealed` is set once the stream is closed and
//! all of it is archived.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

pub const MANIFEST_FILE: &str = "manifest.json";
/// The local copy of the manifest, in the stream directory.
pub const LOCAL_FILE: &str = "archive.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub probe: String,
    pub stream: String,
    pub sealed: bool,
    pub segments: BTreeMap<u32, Entry>,
    pub files: BTreeMap<String, Entry>,
    pub updated_ns: u64,
    /// The stream's flow records exported as Parquet (see [`crate::flows`]).
    #[serde(default, skip_serializing_if = "FlowsExported::is_empty")]
    pub flows: FlowsExported,
}

/// How far the stream's flow index went out as Parquet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsExported {
    /// Blocks of `flows.idx` exported, from its start.
    pub blocks: u64,
    /// `(bytes, mtime_ns)` of `flows.idx` when last exported: a closed stream is done
    /// once its final index is.
    pub stamp: (u64, u64),
    /// Keys (under the prefix) of the objects written.
    pub objects: std::collections::BTreeSet<String>,
}

impl FlowsExported {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub bytes: u64,
    pub sha256: String,
    /// Modification time of the local file uploaded (how a change is seen).
    #[serde(default)]
    pub mtime_ns: u64,
    /// `zstd`: kept as per-chunk frames (`FILE.zst`) with a seek table (`FILE.zidx`),
    /// see [`crate::zchunks`]; absent: byte for byte as `FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Bytes kept in the archive for it (compressed object and seek table).
    #[serde(default)]
    pub stored_bytes: u64,
}

impl Manifest {
    pub fn new(probe: &str, stream: &str) -> Self {
        Self {
            format: crate::FORMAT,
            probe: probe.to_owned(),
            stream: stream.to_owned(),
            ..Self::default()
        }
    }

    /// The local copy in stream directory `dir`, if any.
    pub fn load_local(dir: &Path) -> Option<Self> {
        let t = fs::read(dir.join(LOCAL_FILE)).ok()?;
        serde_json::from_slice(&t).ok()
    }

    /// Replaces the local copy atomically and durably.
    pub fn store_local(&self, dir: &Path) -> Result<(), Error> {
        let io = |what: &str, e| Error::Io {
            what: format!("{what} {}", dir.join(LOCAL_FILE).display()),
            source: e,
        };
        let tmp = dir.join(format!(".{LOCAL_FILE}.tmp"));
        let json = serde_json::to_vec(self).expect("a manifest serializes");
        fs::write(&tmp, json).map_err(|e| io("cannot write", e))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("cannot sync", e))?;
        fs::rename(&tmp, dir.join(LOCAL_FILE)).map_err(|e| io("cannot replace", e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }

    pub fn from_json(b: &[u8]) -> Result<Self, Error> {
        let m: Self = serde_json::from_slice(b)
            .map_err(|e| Error::Verify(format!("unreadable manifest: {e}")))?;
        if m.format != crate::FORMAT {
            return Err(Error::Verify(format!(
                "manifest format {} (this version reads {})",
                m.format,
                crate::FORMAT
            )));
        }
        Ok(m)
    }
}

/// What a file of a stream directory is to writeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `seg-NNNNNNNN.wcs`: packet data.
    Segment(u32),
    /// `seg-NNNNNNNN.*`: belongs to that segment, goes with it.
    OfSegment(u32),
    /// Any other file of the stream: goes after each batch of segments.
    Stream,
    /// Local only: locks, pins, retention's head, markers, temporary files, our state.
    Local,
}

pub fn kind(name: &str) -> Kind {
    if name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(wirecap_store::remote::MARKER_SUFFIX)
        || [
            wirecap_store::layout::LOCK,
            wirecap_store::layout::PIN,
            "head.json",
            LOCAL_FILE,
            crate::fleet::ORIGIN_FILE,
        ]
        .contains(&name)
    {
        return Kind::Local;
    }
    if let Some(rest) = name.strip_prefix("seg-")
        && let Some((num, ext)) = rest.split_once('.')
        && num.len() == 8
        && let Ok(n) = num.parse::<u32>()
    {
        return if ext == "wcs" {
            Kind::Segment(n)
        } else {
            Kind::OfSegment(n)
        };
    }
    Kind::Stream
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_generically() {
        assert_eq!(kind("seg-00000003.wcs"), Kind::Segment(3));
        assert_eq!(kind("seg-00000003.flows"), Kind::OfSegment(3));
        assert_eq!(kind("seg-00000003.wcs.remote"), Kind::Local);
        assert_eq!(kind("chunks.idx"), Kind::Stream);
        assert_eq!(kind("flows.idx"), Kind::Stream);
        assert_eq!(kind("writer.lock"), Kind::Local);
        assert_eq!(kind("archive.json"), Kind::Local);
        assert_eq!(kind(".head.json.tmp"), Kind::Local);
    }

    #[test]
    fn manifest_round_trips_and_refuses_other_formats() {
        let mut m = Manifest::new("p", "s_20261204_1800");
        m.segments.insert(
            0,
            Entry {
                bytes: 5,
                sha256: "ab".into(),
                mtime_ns: 0,
                encoding: Some("zstd".into()),
                stored_bytes: 3,
            },
        );
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        m.format = 9;
        assert!(Manifest::from_json(&m.to_json()).is_err());
    }
}
