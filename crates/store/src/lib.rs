//! wirecap's packet store: where captured packets live, and how any slice of them comes
//! back as a pcap in O(log n).
//!
//! ```text
//!  packets ─► Chunk (pcap-ns records) ─► StreamWriter ─► segment files + index files
//!                                                              │
//!                        StreamReader ◄── snapshot of chunks.idx, time.idx, size-*.idx
//!                          │  views & splits (index only)  │  write_pcap / pcap_reader
//! ```
//!
//! * A **stream** is one capture or import, a directory under `DATA/streams/` named
//!   `<name>_YYYYMMDD_HHMM` (see [`layout`]).
//! * Packets are stored in time order as pcap nanosecond records inside **chunks**; a
//!   download is a pcap header plus byte ranges of segment files, copied by the kernel.
//! * The **index** ([`index`]) records every chunk, the first packet of every second and
//!   every size-split cut, so all views ([`View`]) — `single`, `split_1sec` …
//!   `split_1hour`, `split_1MB` … `split_1TB` — exist at once, exact to the packet,
//!   computed without reading packet data, even while the stream is being written.
//! * **Recovery** ([`StreamWriter`] docs): a killed writer loses at most the chunk it was
//!   filling; what came before is intact and indexed.
//!
//! The store does no networking and knows nothing of filters or HTTP.

pub mod chunk;
mod error;
pub mod index;
pub mod layout;
mod meta;
mod name;
mod reader;
mod reorder;
pub mod timefmt;
mod view;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use chunk::{Chunk, DEFAULT_CHUNK_BYTES};
pub use error::{Error, Result};
pub use meta::{StreamMeta, StreamState};
pub use name::{sanitize, stored_name, validate_base_name, validate_stored_name};
pub use reader::{PcapReader, ScanStats, Slice, Slices, StreamInfo, StreamReader};
pub use reorder::{DEFAULT_WINDOW_BYTES, Reorder};
pub use view::{PacketRange, Split, View};
pub use writer::{ChunkSummarizer, Recovery, StreamSummary, StreamWriter, WriterOptions};

use error::IoContext;
use time::OffsetDateTime;
use wirecap_pcap::LinkType;

/// Current time in ns since the epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a new stream records about itself.
#[derive(Clone, Debug)]
pub struct StreamParams {
    pub link_type: LinkType,
    pub snaplen: u32,
    /// Where the packets come from (`import`, `capture:eth0`, …).
    pub source: String,
}

/// The data directory: every stream under `DIR/streams`.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    streams: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let streams = dir.join(layout::STREAMS_DIR);
        fs::create_dir_all(&streams).at(&streams)?;
        Ok(Self { dir, streams })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn stream_dir(&self, name: &str) -> Result<PathBuf> {
        validate_stored_name(name)?;
        Ok(self.streams.join(name))
    }

    /// Creates a stream named `base` + `_YYYYMMDD_HHMM` of `created` (UTC).
    pub fn create_stream(
        &self,
        base: &str,
        params: &StreamParams,
        created: SystemTime,
    ) -> Result<StreamWriter> {
        self.create_stream_with(base, params, created, WriterOptions::default())
    }

    pub fn create_stream_with(
        &self,
        base: &str,
        params: &StreamParams,
        created: SystemTime,
        opts: WriterOptions,
    ) -> Result<StreamWriter> {
        validate_base_name(base)?;
        let created = OffsetDateTime::from(created);
        let name = stored_name(base, created);
        let dir = self.streams.join(&name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::StreamExists(name));
            }
            Err(e) => return Err(e).at(&dir),
        }
        let meta = StreamMeta {
            format: 1,
            name,
            base_name: base.to_owned(),
            created_ns: created.unix_timestamp_nanos().max(0) as u64,
            link_type: params.link_type.0,
            snaplen: params.snaplen,
            source: params.source.clone(),
            state: StreamState::Open,
            closed_ns: None,
            summary_len: 0,
            chunk_align: 0,
            attrs: Default::default(),
        };
        let w = StreamWriter::create(dir.clone(), meta, opts);
        if w.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        w
    }

    /// Opens a read-only snapshot of stream `name` (the full stored name).
    pub fn open_stream(&self, name: &str) -> Result<StreamReader> {
        let dir = self.stream_dir(name)?;
        if !dir.join(meta::META_FILE).exists() {
            return Err(Error::NoSuchStream(name.to_owned()));
        }
        StreamReader::open(dir)
    }

    /// Names of every stream, newest first.
    pub fn stream_names(&self) -> Result<Vec<String>> {
        let mut v: Vec<(u64, String)> = Vec::new();
        for e in fs::read_dir(&self.streams).at(&self.streams)? {
            let e = e.at(&self.streams)?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if validate_stored_name(&name).is_err() {
                continue;
            }
            match StreamMeta::load(&e.path()) {
                Ok(m) => v.push((m.created_ns, name)),
                Err(_) => continue,
            }
        }
        v.sort_by(|a, b| b.cmp(a));
        Ok(v.into_iter().map(|(_, n)| n).collect())
    }

    /// Every stream with its totals, newest first.
    pub fn list(&self) -> Result<Vec<StreamInfo>> {
        self.stream_names()?
            .iter()
            .map(|n| self.open_stream(n).and_then(|r| r.info()))
            .collect()
    }

    /// Deletes a stream (data and index together). Refused while it is being written.
    pub fn delete_stream(&self, name: &str) -> Result<()> {
        let dir = self.stream_dir(name)?;
        if !dir.exists() {
            return Err(Error::NoSuchStream(name.to_owned()));
        }
        if layout::is_locked(&dir) {
            return Err(Error::Locked(name.to_owned()));
        }
        // Renamed first so that the stream disappears at once and whole, even if removing
        // its files is interrupted.
        let trash = self.streams.join(format!(".deleting-{name}"));
        fs::rename(&dir, &trash).at(&dir)?;
        fs::remove_dir_all(&trash).at(&trash)
    }

    /// Repairs and seals every stream whose writer died (state `open`, lock free).
    /// Returns what was done per stream.
    pub fn recover(&self) -> Result<Vec<(String, Recovery)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.streams).at(&self.streams)? {
            let e = e.at(&self.streams)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".deleting-") {
                let _ = fs::remove_dir_all(e.path());
                continue;
            }
            let Ok(meta) = StreamMeta::load(&e.path()) else {
                continue;
            };
            if meta.state != StreamState::Open || layout::is_locked(&e.path()) {
                continue;
            }
            let (w, rec) = StreamWriter::resume(e.path(), WriterOptions::default())?;
            w.finish(StreamState::Recovered)?;
            out.push((name, rec));
        }
        Ok(out)
    }
}
