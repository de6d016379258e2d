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
//! * **Retention** deletes whole streams ([`Store::delete_stream`]) or the oldest segments
//!   of one, even while it is written ([`Store::trim_head`], [`head`]); index and data go
//!   together, and a crash in between is completed by [`Store::recover`]. A stream can be
//!   pinned ([`Store::set_pinned`]) so that retention leaves it alone.
//!
//! The store does no networking and knows nothing of filters or HTTP.

mod check;
pub mod chunk;
mod error;
pub mod head;
pub mod index;
pub mod layout;
mod mapped;
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
pub use head::Head;
pub use mapped::{Mapped, MappedRanges};
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

/// A stream as retention sees it.
#[derive(Clone, Debug)]
pub struct StreamLayout {
    pub name: String,
    pub info: StreamInfo,
    /// A writer holds the stream's lock right now.
    pub writing: bool,
    /// Segment files on disk, `(number, bytes)`, in order.
    pub segments: Vec<(u32, u64)>,
    /// Segment of the last indexed chunk: a trim may not go past it.
    pub last_segment: Option<u32>,
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

    /// Every stream with its totals, newest first. A stream deleted meanwhile (retention,
    /// another client) is left out rather than failing the whole list.
    pub fn list(&self) -> Result<Vec<StreamInfo>> {
        let mut out = Vec::new();
        for n in self.stream_names()? {
            match self.open_stream(&n).and_then(|r| r.info()) {
                Ok(i) => out.push(i),
                Err(Error::NoSuchStream(_)) => {}
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && !self.streams.join(&n).exists() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
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

    /// Pins (or unpins) a stream: retention never deletes a pinned stream or any part of
    /// it. Kept as an empty `pinned` file in the stream's directory rather than in
    /// `meta.json`, so that pinning a stream being written is not undone when its writer
    /// seals it.
    pub fn set_pinned(&self, name: &str, pinned: bool) -> Result<()> {
        let dir = self.stream_dir(name)?;
        if !dir.join(meta::META_FILE).exists() {
            return Err(Error::NoSuchStream(name.to_owned()));
        }
        let p = dir.join(layout::PIN);
        if pinned {
            fs::File::create(&p).at(&p)?;
        } else {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(&p),
            }
        }
        meta::sync_dir(&dir)
    }

    /// Whether stream `name` is pinned (see [`Self::set_pinned`]).
    pub fn is_pinned(&self, name: &str) -> Result<bool> {
        Ok(self.stream_dir(name)?.join(layout::PIN).exists())
    }

    /// What retention needs to know of a stream: its segments and whether it is written.
    pub fn layout_of(&self, name: &str) -> Result<StreamLayout> {
        let r = self.open_stream(name)?;
        let dir = r.dir().to_path_buf();
        let last_segment = (r.chunk_count() > r.head().chunk)
            .then(|| r.chunk(r.chunk_count() - 1).map(|c| c.segment))
            .transpose()?;
        Ok(StreamLayout {
            name: name.to_owned(),
            info: r.info()?,
            writing: layout::is_locked(&dir),
            segments: head::segment_files(&dir)?,
            last_segment,
        })
    }

    /// Deletes the segments of stream `name` below segment `keep_from`, moving its head to
    /// the first chunk in `keep_from` (see [`head`] for the order of steps). Works on a
    /// stream being written: the writer only appends to its last segment, which a trim
    /// never touches (`keep_from` may not be past the segment of the last indexed chunk).
    /// Returns the bytes freed, 0 when there was nothing before `keep_from`.
    pub fn trim_head(&self, name: &str, keep_from: u32) -> Result<u64> {
        let r = self.open_stream(name)?;
        let old = r.head();
        let n = r.chunk_count();
        if keep_from <= old.segment {
            return Ok(0);
        }
        if n <= old.chunk || r.chunk(n - 1)?.segment < keep_from {
            return Err(Error::Invalid(format!(
                "stream {name:?}: cannot trim to segment {keep_from}: no indexed chunk there"
            )));
        }
        // First live chunk in segment >= keep_from (segments grow with the chunk index).
        let (mut lo, mut hi) = (old.chunk, n - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if r.chunk(mid)?.segment < keep_from {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let c = r.chunk(lo)?;
        let head = Head {
            chunk: lo,
            packet: c.first_packet,
            pos: c.pos,
            segment: c.segment,
            first_ts: c.first_ts,
            trimmed_ns: now_ns(),
        };
        head.store(r.dir())?;
        head::delete_dead_segments(r.dir(), &head)
    }

    /// Repairs and seals every stream whose writer died (state `open`, lock free), and
    /// completes head trims cut short by a crash. Returns what was done per stream.
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
            // Segments below a trim point are dead whether or not the stream is written.
            let head = Head::load(&e.path())?;
            let freed = head::delete_dead_segments(&e.path(), &head)?;
            if freed > 0 && meta.state != StreamState::Open {
                out.push((
                    name.clone(),
                    Recovery {
                        bytes_cut: freed,
                        ..Recovery::default()
                    },
                ));
            }
            if meta.state != StreamState::Open || layout::is_locked(&e.path()) {
                continue;
            }
            let (w, mut rec) = StreamWriter::resume(e.path(), WriterOptions::default())?;
            rec.bytes_cut += freed;
            w.finish(StreamState::Recovered)?;
            out.push((name, rec));
        }
        Ok(out)
    }
}
