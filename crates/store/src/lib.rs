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
//! * **Damage never answers silently**: every chunk is checked (header and CRC32C) before
//!   any of its bytes leave the store ([`StreamReader::mapped`], the verified, zero-copy
//!   byte ranges every read path uses); index records are checked against each other and
//!   the segments (`check`); [`Store::verify`] and [`Store::rebuild_index`] derive the
//!   index again from the self-describing segments; [`Store::listing`] names damaged
//!   streams.
//! * **Retention** deletes whole streams ([`Store::delete_stream`]) or the oldest segments
//!   of one, even while it is written ([`Store::trim_head`], [`head`]); index and data go
//!   together, and a crash in between is completed by [`Store::recover`]. A stream can be
//!   pinned ([`Store::set_pinned`]) so that retention leaves it alone.
//! * **Flows** ([`flows`]): as packets are written, a summarizer that classifies them
//!   ([`ChunkSummarizer::flows`]) makes the writer keep a flow index — flow records and
//!   the positions of their packets — so that a query for a host or a connection reads
//!   only its packets; [`Store::reindex_flows`] builds it for streams written without.
//! * **Disk space** of the file system under a store: [`disk::space`], the one `statvfs`.
//!
//! The store does no networking and knows nothing of filters or HTTP.

mod check;
pub mod chunk;
pub mod disk;
mod error;
pub mod flows;
pub mod head;
pub mod index;
pub mod layout;
pub mod lut;
mod mapped;
mod meta;
mod name;
pub mod pieces;
mod reader;
pub mod remote;
mod reorder;
mod repair;
pub mod timefmt;
mod view;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use chunk::{Chunk, DEFAULT_CHUNK_BYTES};
pub use error::{Error, Result};
pub use flows::{
    FlowIndex, FlowKey, FlowKind, FlowRun, Fragment, PackedKey, PacketFlow, RebuildFlows,
};
pub use head::Head;
pub use mapped::{Got, LazyChunk, Mapped, MappedRanges, ReadAs};
pub use meta::{StreamMeta, StreamState};
pub use name::{sanitize, stored_name, validate_base_name, validate_stored_name};
pub use reader::{PcapReader, ScanStats, Slice, Slices, StreamInfo, StreamReader};
pub use reorder::{DEFAULT_WINDOW_BYTES, Reorder};
pub use repair::{Rebuild, VerifyReport};
pub use view::{PacketRange, Split, View};
pub use writer::{ChunkSummarizer, Recovery, StreamSummary, StreamWriter, WriterOptions};

use error::IoContext;
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
    source: Option<Source>,
}

/// Where segments kept elsewhere are read from (see [`remote`]).
#[derive(Clone)]
pub(crate) struct Source(pub(crate) std::sync::Arc<dyn remote::SegmentSource>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SegmentSource")
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let streams = dir.join(layout::STREAMS_DIR);
        fs::create_dir_all(&streams).at(&streams)?;
        Ok(Self {
            dir,
            streams,
            source: None,
        })
    }

    /// This store, reading the segments kept elsewhere (see [`remote`]) from `source`.
    pub fn with_source(mut self, source: std::sync::Arc<dyn remote::SegmentSource>) -> Self {
        self.source = Some(Source(source));
        self
    }

    /// Where stream `name`'s files are (it need not exist).
    pub fn stream_path(&self, name: &str) -> Result<PathBuf> {
        self.stream_dir(name)
    }

    /// Replaces sealed segment `segment` of stream `name` by a marker (see [`remote`]):
    /// only once a copy is kept elsewhere. Refused for the segment a writer appends to.
    /// Returns the bytes freed (0 when it was not on disk).
    pub fn evict_segment(&self, name: &str, segment: u32) -> Result<u64> {
        let l = self.layout_of(name)?;
        let open = l.writing || l.info.meta.state == StreamState::Open;
        if open && l.last_segment.is_none_or(|last| segment >= last) {
            return Err(Error::Invalid(format!(
                "stream {name:?}: {} is being written",
                layout::segment(segment)
            )));
        }
        remote::evict(&self.stream_dir(name)?, name, segment)
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
        let name = stored_name(base, created);
        let dir = self.streams.join(&name);
        if dir.exists() {
            // An orphan of a creation killed by an older version (no meta.json, no
            // writer) does not block its name.
            if !self.remove_orphan(&name)? {
                return Err(Error::StreamExists(name));
            }
        }
        let meta = StreamMeta {
            format: 1,
            name: name.clone(),
            base_name: base.to_owned(),
            created_ns: created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            link_type: params.link_type.0,
            snaplen: params.snaplen,
            source: params.source.clone(),
            state: StreamState::Open,
            closed_ns: None,
            summary_len: 0,
            chunk_align: 0,
            attrs: Default::default(),
        };
        // Built under a temporary name and renamed into place, locked and with its
        // meta.json: a creation killed halfway leaves only a `.creating-*` directory,
        // which no listing shows and recovery removes, never a half stream.
        let tmp = self
            .streams
            .join(format!("{CREATING}{name}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).at(&tmp)?;
        let w = StreamWriter::create_at(tmp.clone(), dir.clone(), meta, opts);
        if w.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        w
    }

    /// Removes directory `name` when it is an orphan: no meta.json, no writer, no
    /// packet data. Returns whether it is gone.
    fn remove_orphan(&self, name: &str) -> Result<bool> {
        let dir = self.streams.join(name);
        if dir.join(meta::META_FILE).exists() || layout::is_locked(&dir) {
            return Ok(false);
        }
        let holds_data = fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok())
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 0));
        if holds_data {
            return Ok(false);
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e).at(&dir),
        }
    }

    /// Opens a read-only snapshot of stream `name` (the full stored name).
    pub fn open_stream(&self, name: &str) -> Result<StreamReader> {
        let dir = self.stream_dir(name)?;
        if !dir.join(meta::META_FILE).exists() {
            return Err(Error::NoSuchStream(name.to_owned()));
        }
        StreamReader::open(dir, self.source.clone())
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

    /// Every readable stream with its totals, newest first. A stream deleted meanwhile
    /// (retention, another client) is left out rather than failing the whole list; so is
    /// a damaged one: [`Self::listing`] names those.
    pub fn list(&self) -> Result<Vec<StreamInfo>> {
        Ok(self
            .listing()?
            .into_iter()
            .filter_map(|e| match e {
                Listed::Stream(i) => Some(i),
                Listed::Damaged { .. } => None,
            })
            .collect())
    }

    /// Every stream, newest first, then every damaged one (by name) with the reason: a
    /// directory under `streams/` that holds a stream but cannot be read as one is
    /// never hidden.
    pub fn listing(&self) -> Result<Vec<Listed>> {
        let mut ok: Vec<(u64, StreamInfo)> = Vec::new();
        let mut bad: Vec<Listed> = Vec::new();
        for e in fs::read_dir(&self.streams).at(&self.streams)? {
            let e = e.at(&self.streams)?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if validate_stored_name(&name).is_err() || !e.path().is_dir() {
                continue;
            }
            let damaged = |why: String| Listed::Damaged {
                name: name.clone(),
                why,
            };
            if !e.path().join(meta::META_FILE).exists() {
                if !layout::is_locked(&e.path()) && e.path().exists() {
                    bad.push(damaged(
                        "no meta.json: its creation was interrupted (`wirecap recover` removes it when it holds no packets)".into(),
                    ));
                }
                continue;
            }
            match self.open_stream(&name).and_then(|r| r.info()) {
                Ok(i) => ok.push((i.meta.created_ns, i)),
                Err(Error::NoSuchStream(_)) => {}
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && !e.path().exists() => {}
                Err(err) => bad.push(damaged(err.to_string())),
            }
        }
        ok.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.meta.name.cmp(&a.1.meta.name))
        });
        bad.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(ok
            .into_iter()
            .map(|(_, i)| Listed::Stream(i))
            .chain(bad)
            .collect())
    }

    /// Builds the flow index of stream `name` again from its packets, with `classify`
    /// (a summarizer whose [`ChunkSummarizer::flows`] is true): for streams written
    /// before flows were indexed, or whose index was lost. Refused while the stream is
    /// being written.
    pub fn reindex_flows(
        &self,
        name: &str,
        classify: &dyn ChunkSummarizer,
    ) -> Result<RebuildFlows> {
        let dir = self.stream_dir(name)?;
        if !dir.join(meta::META_FILE).exists() {
            return Err(Error::NoSuchStream(name.to_owned()));
        }
        if !classify.flows() {
            return Err(Error::Invalid(
                "this summarizer does not classify flows".into(),
            ));
        }
        let _lock = layout::lock(&dir, name)?;
        let r = StreamReader::open(dir, self.source.clone())?;
        flows::rebuild(&r, classify)
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

    /// Repairs and seals every stream whose writer died (state `open`, lock free),
    /// completes head trims cut short by a crash, removes what interrupted creations
    /// left, and rebuilds from the segments the index of any stream, sealed or not, that
    /// fails the index checks (see [`Self::rebuild_index`]). A stream that cannot be
    /// repaired is reported with [`Recovery::failed`] rather than stopping the others.
    /// Returns what was done per stream.
    pub fn recover(&self) -> Result<Vec<(String, Recovery)>> {
        self.recover_with(None)
    }

    /// [`Self::recover`], rebuilding chunk summaries with `summarizer` when an index is
    /// rebuilt.
    pub fn recover_with(
        &self,
        summarizer: Option<&dyn ChunkSummarizer>,
    ) -> Result<Vec<(String, Recovery)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.streams).at(&self.streams)? {
            let e = e.at(&self.streams)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".deleting-") {
                let _ = fs::remove_dir_all(e.path());
                continue;
            }
            if name.starts_with(CREATING) {
                if !layout::is_locked(&e.path()) {
                    let _ = fs::remove_dir_all(e.path());
                }
                continue;
            }
            if validate_stored_name(&name).is_err() {
                continue;
            }
            if !e.path().join(meta::META_FILE).exists() {
                if self.remove_orphan(&name)? {
                    out.push((
                        name,
                        Recovery {
                            orphan_removed: true,
                            ..Recovery::default()
                        },
                    ));
                }
                continue;
            }
            match self.recover_one(&name, &e.path(), summarizer) {
                Ok(Some(rec)) => out.push((name, rec)),
                Ok(None) => {}
                Err(err) => out.push((
                    name,
                    Recovery {
                        failed: Some(err.to_string()),
                        ..Recovery::default()
                    },
                )),
            }
        }
        Ok(out)
    }

    fn recover_one(
        &self,
        name: &str,
        dir: &Path,
        summarizer: Option<&dyn ChunkSummarizer>,
    ) -> Result<Option<Recovery>> {
        let meta = StreamMeta::load(dir)?;
        if layout::is_locked(dir) {
            return Ok(None);
        }
        // Segments below a trim point are dead whether or not the stream is written.
        let head = Head::load(dir)?;
        let freed = head::delete_dead_segments(dir, &head)?;
        let mut rec = Recovery {
            bytes_cut: freed,
            ..Recovery::default()
        };
        let mut did = freed > 0;
        if meta.state == StreamState::Open {
            let (w, r) = StreamWriter::resume(dir.to_path_buf(), WriterOptions::default())?;
            w.finish(StreamState::Recovered)?;
            rec.chunks_kept = r.chunks_kept;
            rec.chunks_reindexed = r.chunks_reindexed;
            rec.bytes_cut += r.bytes_cut;
            did = true;
        }
        if let Err(e) = self.check_index(name)
            && e.is_damage()
        {
            let r = self.rebuild_index(name, summarizer)?;
            rec.index_rebuilt = Some(e.to_string());
            rec.chunks_kept = r.chunks;
            rec.chunks_dropped = r.chunks_dropped;
            did = true;
        }
        Ok(did.then_some(rec))
    }

    /// The index checks a reader makes, all of them at once: on open, and over every
    /// mark file. Reads the index files, not the packet data.
    pub fn check_index(&self, name: &str) -> Result<()> {
        self.open_stream(name)?.check_all()
    }
}

/// Prefix of the directory a stream is built in before it is renamed into place.
const CREATING: &str = ".creating-";

/// One entry of [`Store::listing`].
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // a listing holds a few hundred entries at most
pub enum Listed {
    Stream(StreamInfo),
    /// A stream that cannot be read, and why.
    Damaged {
        name: String,
        why: String,
    },
}

impl Listed {
    pub fn name(&self) -> &str {
        match self {
            Self::Stream(i) => &i.meta.name,
            Self::Damaged { name, .. } => name,
        }
    }
}
