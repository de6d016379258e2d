//! Appending to a stream, and recovering one whose writer died.
//!
//! Order of writes for every chunk, which is what makes recovery simple:
//! 1. the chunk (header + records) is appended to the current segment;
//! 2. its time and size marks are appended to `time.idx` / `size-*.idx`;
//! 3. its [`ChunkRecord`] is appended to `chunks.idx`.
//!
//! A reader trusts only what `chunks.idx` names, and marks only for packets it names, so
//! it always sees a consistent prefix. After a crash, [`StreamWriter::resume`] keeps
//! every indexed chunk whose bytes check out, re-indexes whole chunks that reached the
//! segment but not the index (their headers carry length and CRC), and cuts the rest.
//! A crash therefore loses at most the chunk being written.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wirecap_pcap::Packet;

use crate::chunk::{CHUNK_HEADER_LEN, Chunk, ChunkHeader, DEFAULT_CHUNK_BYTES, record_lengths};
use crate::error::{Error, IoContext, Result};
use crate::flows::{FlowFile, FlowTable};
use crate::index::{CHUNK_RECORD_LEN, ChunkRecord, Indexer, MARK_LEN, Mark, Marks, SIZE_LEVELS};
use crate::layout;
use crate::meta::{StreamMeta, StreamState};

/// Computes a fixed-size summary of every chunk, kept beside the index in `summary.idx`
/// so that readers can skip chunks a filter cannot match without reading them. The store
/// treats summaries as opaque bytes: what they mean belongs to the filter layer.
pub trait ChunkSummarizer: Send + Sync {
    /// Bytes per summary (the same for every chunk of a stream).
    fn summary_len(&self) -> usize;
    /// Summarizes a chunk body (pcap-ns records) of a stream of link type `link`.
    fn summarize(&self, link: wirecap_pcap::LinkType, body: &[u8], out: &mut [u8]);

    /// Whether [`summarize_flows`](Self::summarize_flows) classifies packets into flows:
    /// then the writer keeps a flow index (`flows.idx`, see [`crate::flows`]).
    fn flows(&self) -> bool {
        false
    }

    /// [`summarize`](Self::summarize), and also the flow of every record of the body, in
    /// order, handed to `flows` ([`FlowTable::run`]) as packets numbered from
    /// `first.0` at position `first.1` (one pass over the packets for both, with no
    /// per-packet record in between).
    fn summarize_flows(
        &self,
        link: wirecap_pcap::LinkType,
        body: &[u8],
        out: &mut [u8],
        flows: &mut FlowTable,
        first: (u64, u64),
    ) {
        let _ = (flows, first);
        self.summarize(link, body, out);
    }
}

/// How a writer lays out and syncs its files.
#[derive(Clone)]
pub struct WriterOptions {
    /// Body size at which [`StreamWriter::append`] commits a chunk.
    pub chunk_bytes: usize,
    /// A segment file is closed (and never changes again) once it reaches this size.
    pub segment_bytes: u64,
    /// `fdatasync` data and index at most this often; `None` syncs only when sealing.
    pub sync_interval: Option<Duration>,
    /// Per-chunk summaries for skipping (none by default).
    pub summarizer: Option<Arc<dyn ChunkSummarizer>>,
    /// Write segments with O_DIRECT, chunks padded to 4096 bytes: about a tenth of the
    /// CPU of writing through the page cache, for live capture. Falls back to buffered
    /// writes (still aligned) where the file system refuses O_DIRECT.
    pub direct_io: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            segment_bytes: 1 << 30,
            sync_interval: None,
            summarizer: None,
            direct_io: false,
        }
    }
}

impl std::fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOptions")
            .field("chunk_bytes", &self.chunk_bytes)
            .field("segment_bytes", &self.segment_bytes)
            .field("sync_interval", &self.sync_interval)
            .field(
                "summarizer",
                &self.summarizer.as_ref().map(|s| s.summary_len()),
            )
            .finish()
    }
}

/// What a sealed stream holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    pub name: String,
    pub packets: u64,
    /// Size of the stream as one pcap file.
    pub bytes: u64,
    pub chunks: u64,
}

/// What recovery did to a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub chunks_kept: u64,
    /// Whole chunks found in a segment beyond the index and indexed again.
    pub chunks_reindexed: u64,
    /// Bytes of torn data cut from segments and index files.
    pub bytes_cut: u64,
    /// The index was damaged (this says how) and was rebuilt from the segments.
    pub index_rebuilt: Option<String>,
    /// Damaged chunks left out of a rebuilt index.
    pub chunks_dropped: u64,
    /// A directory left by an interrupted creation, holding no packets, was removed.
    pub orphan_removed: bool,
    /// The stream could not be repaired: why.
    pub failed: Option<String>,
}

pub(crate) struct IndexFile {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

impl IndexFile {
    pub(crate) fn open(path: PathBuf) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .at(&path)?;
        let len = file.metadata().at(&path)?.len();
        Ok(Self { file, path, len })
    }
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes).at(&self.path)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
    pub(crate) fn truncate(&mut self, len: u64) -> Result<()> {
        self.file.set_len(len).at(&self.path)?;
        self.len = len;
        Ok(())
    }
}

/// The one writer of a stream. Holds the stream's lock file until dropped.
pub struct StreamWriter {
    dir: PathBuf,
    meta: StreamMeta,
    _lock: File,
    opts: WriterOptions,
    seg: File,
    seg_path: PathBuf,
    seg_no: u32,
    seg_len: u64,
    chunks: IndexFile,
    time: IndexFile,
    sizes: Vec<IndexFile>,
    /// `summary.idx` and its record length, when chunks are summarized.
    summary: Option<(IndexFile, usize)>,
    summary_buf: Vec<u8>,
    /// The flow index being written, when the summarizer classifies flows.
    flows: Option<FlowFile>,
    /// `pieces.idx`, while it stays aligned with the chunks (see [`crate::pieces`]).
    pieces: Option<IndexFile>,
    pieces_buf: Vec<u8>,
    /// Segments are written with O_DIRECT (through `staging`, a 4096-aligned copy).
    direct: bool,
    staging: Vec<u8>,
    indexer: Indexer,
    marks: Marks,
    enc: Vec<u8>,
    n_chunks: u64,
    last_ts: u64,
    pending: Chunk,
    last_sync: Instant,
}

impl StreamWriter {
    /// Starts a new, empty stream: built in `tmp` (which the store has just created),
    /// locked, then renamed to `dir` (which must not exist, or be an empty directory).
    pub(crate) fn create_at(
        tmp: PathBuf,
        dir: PathBuf,
        mut meta: StreamMeta,
        opts: WriterOptions,
    ) -> Result<Self> {
        // The lock is on the file, not the path: it holds across the rename, so
        // recovery never takes the new stream for one whose writer died.
        let lock = layout::lock(&tmp, &meta.name)?;
        meta.summary_len = opts
            .summarizer
            .as_ref()
            .map_or(0, |s| s.summary_len() as u32);
        meta.chunk_align = if opts.direct_io {
            DIRECT_ALIGN as u32
        } else {
            1
        };
        meta.store(&tmp)?;
        if let Err(e) = fs::rename(&tmp, &dir) {
            return Err(match e.raw_os_error() {
                Some(libc::ENOTEMPTY | libc::EEXIST) => Error::StreamExists(meta.name.clone()),
                _ => Error::Io {
                    path: dir,
                    source: e,
                },
            });
        }
        if let Some(parent) = dir.parent() {
            crate::meta::sync_dir(parent)?;
        }
        Self::open_files(dir, meta, lock, opts, Indexer::default(), 0, 0, 0, 0)
    }

    /// Reopens a stream whose writer is gone, repairing a torn tail (see the module doc).
    pub(crate) fn resume(dir: PathBuf, opts: WriterOptions) -> Result<(Self, Recovery)> {
        let meta = StreamMeta::load(&dir)?;
        let lock = layout::lock(&dir, &meta.name)?;
        let mut rec = Recovery::default();

        // 1. Keep the index records whose own CRC and data check out.
        let cpath = dir.join(layout::CHUNKS);
        let cfile = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&cpath)
            .at(&cpath)?;
        let clen = cfile.metadata().at(&cpath)?.len();
        let mut n = clen / CHUNK_RECORD_LEN as u64;
        let mut last: Option<ChunkRecord> = None;
        while n > 0 {
            let r = read_chunk_record(&cfile, &cpath, n - 1)?;
            match r {
                Some(r) if chunk_data_ok(&dir, &r)? => {
                    last = Some(r);
                    break;
                }
                _ => n -= 1,
            }
        }
        rec.chunks_kept = n;
        if clen != n * CHUNK_RECORD_LEN as u64 {
            rec.bytes_cut += clen - n * CHUNK_RECORD_LEN as u64;
            cfile.set_len(n * CHUNK_RECORD_LEN as u64).at(&cpath)?;
        }
        drop(cfile);
        let (packets, pos) = last.map_or((0, 0), |r| (r.end_packet(), r.end_pos()));

        // Summaries and piece checksums of chunks that are gone are cut too.
        if meta.summary_len > 0 {
            rec.bytes_cut += cut_to(&dir.join(layout::SUMMARY), n * u64::from(meta.summary_len))?;
        }
        rec.bytes_cut += cut_to(
            &dir.join(layout::PIECES),
            n * crate::pieces::RECORD_LEN as u64,
        )?;

        // Flow blocks naming packets that are gone are cut (they would name the wrong
        // packets once new ones are appended).
        rec.bytes_cut += crate::flows::cut_blocks(&dir, packets)?;

        // 2. Marks for packets that are not indexed are cut; the indexer resumes from them.
        let tpath = dir.join(layout::TIME);
        rec.bytes_cut += cut_marks(&tpath, packets)?;
        let last_sec = last_mark(&tpath)?.map(|m| m.key);
        let mut starts = [0u64; SIZE_LEVELS.len()];
        for (i, s) in starts.iter_mut().enumerate() {
            let p = dir.join(layout::size_file(i));
            rec.bytes_cut += cut_marks(&p, packets)?;
            *s = last_mark(&p)?.map_or(0, |m| m.pos);
        }
        let indexer = Indexer::resume(packets, pos, last_sec, starts);

        let align = meta.align();
        let (seg_no, seg_off) = last.map_or((0, 0), |r| {
            (
                r.segment,
                align_up(r.body_offset() + u64::from(r.body_len), align),
            )
        });
        let last_ts = last.map_or(0, |r| r.last_ts);
        let mut w = Self::open_files(dir, meta, lock, opts, indexer, n, last_ts, seg_no, seg_off)?;

        // 3. Whole chunks that reached a segment but not the index are indexed again.
        loop {
            let Some(body) = w.read_whole_chunk_at_tail()? else {
                // Nothing more in this segment: cut what is left, then look at the next one.
                let flen = w.seg.metadata().at(&w.seg_path)?.len();
                if flen > w.seg_len {
                    rec.bytes_cut += flen - w.seg_len;
                    w.seg.set_len(w.seg_len).at(&w.seg_path)?;
                }
                let next = w.dir.join(layout::segment(w.seg_no + 1));
                if !next.exists() {
                    break;
                }
                w.seg_no += 1;
                w.seg_path = next;
                w.seg = open_buffered(&w.seg_path)?;
                w.seg_len = 0;
                continue;
            };
            let saved = w.observe_body(&body.0);
            if w.pieces.is_some() {
                crate::pieces::encode(&body.0, &mut w.pieces_buf);
            }
            w.persist_index(saved, body.1, w.seg_len)?;
            w.seg_len += align_up((CHUNK_HEADER_LEN + body.0.len()) as u64, align);
            rec.chunks_reindexed += 1;
        }
        // Segments past the last one holding data are empty or torn: remove them.
        let mut k = w.seg_no + 1;
        loop {
            let p = w.dir.join(layout::segment(k));
            let Ok(m) = fs::metadata(&p) else { break };
            rec.bytes_cut += m.len();
            fs::remove_file(&p).at(&p)?;
            k += 1;
        }
        w.sync()?;
        Ok((w, rec))
    }

    #[allow(clippy::too_many_arguments)]
    fn open_files(
        dir: PathBuf,
        meta: StreamMeta,
        lock: File,
        opts: WriterOptions,
        indexer: Indexer,
        n_chunks: u64,
        last_ts: u64,
        seg_no: u32,
        seg_len: u64,
    ) -> Result<Self> {
        let seg_path = dir.join(layout::segment(seg_no));
        let (seg, direct) = open_segment(&seg_path, opts.direct_io)?;
        let chunks = IndexFile::open(dir.join(layout::CHUNKS))?;
        let time = IndexFile::open(dir.join(layout::TIME))?;
        let sizes = (0..SIZE_LEVELS.len())
            .map(|i| IndexFile::open(dir.join(layout::size_file(i))))
            .collect::<Result<Vec<_>>>()?;
        // Summaries are written only while they stay aligned with the chunks (a resumed
        // stream whose summaries fell behind gets none for its new chunks).
        let summary = match &opts.summarizer {
            Some(s) if meta.summary_len as usize == s.summary_len() && meta.summary_len > 0 => {
                let f = IndexFile::open(dir.join(layout::SUMMARY))?;
                let len = s.summary_len();
                (f.len == n_chunks * len as u64).then_some((f, len))
            }
            _ => None,
        };
        let flows = match &opts.summarizer {
            Some(s) if s.flows() => Some(FlowFile::open(&dir)?),
            _ => None,
        };
        // A stream written before pieces existed gets none (they must stay aligned).
        let pieces = {
            let f = IndexFile::open(dir.join(layout::PIECES))?;
            (f.len == n_chunks * crate::pieces::RECORD_LEN as u64).then_some(f)
        };
        Ok(Self {
            summary,
            summary_buf: Vec::new(),
            flows,
            pieces,
            pieces_buf: Vec::new(),
            direct,
            staging: Vec::new(),
            pending: Chunk::with_capacity(opts.chunk_bytes),
            dir,
            meta,
            _lock: lock,
            opts,
            seg,
            seg_path,
            seg_no,
            seg_len,
            chunks,
            time,
            sizes,
            indexer,
            marks: Marks::default(),
            enc: Vec::new(),
            n_chunks,
            last_ts,
            last_sync: Instant::now(),
        })
    }

    /// The stored name (base name + date suffix).
    pub fn name(&self) -> &str {
        &self.meta.name
    }
    pub fn meta(&self) -> &StreamMeta {
        &self.meta
    }
    /// Packets on disk and indexed.
    pub fn packets(&self) -> u64 {
        self.indexer.packets()
    }
    /// Record bytes on disk and indexed (the pcap file header excluded).
    pub fn bytes(&self) -> u64 {
        self.indexer.pos()
    }
    /// Whether segments are being written with O_DIRECT (asked for and supported).
    pub fn direct_io(&self) -> bool {
        self.direct
    }

    /// Bytes held in the pending chunk, not yet on disk.
    pub fn pending_bytes(&self) -> u64 {
        self.pending.len_bytes() as u64
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records an attribute with the stream (e.g. the capture mode).
    pub fn set_attr(&mut self, key: &str, value: &str) -> Result<()> {
        self.meta.attrs.insert(key.to_owned(), value.to_owned());
        self.meta.store(&self.dir)
    }

    /// Appends one packet through the writer's own chunk, committing it when full.
    pub fn append(&mut self, p: &Packet<'_>) -> Result<()> {
        let ts = p.ts_ns();
        if self.n_chunks > 0 && ts < self.last_ts {
            return Err(Error::OutOfOrder {
                ts_ns: ts,
                last_ns: self.last_ts,
            });
        }
        if !self.pending.is_empty()
            && self.pending.len_bytes() + 16 + p.data.len() > self.opts.chunk_bytes
        {
            self.commit()?;
        }
        self.pending.push(p)
    }

    /// Writes the pending chunk and makes it visible to readers.
    pub fn commit(&mut self) -> Result<()> {
        let mut chunk = std::mem::replace(&mut self.pending, Chunk::with_capacity(0));
        let r = self.write_chunk(&mut chunk);
        chunk.clear();
        self.pending = chunk;
        r
    }

    /// Appends a chunk built elsewhere (a capture thread). On error nothing of the chunk
    /// is visible and the stream is as it was; the caller may retry or drop it.
    pub fn write_chunk(&mut self, chunk: &mut Chunk) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.n_chunks > 0 && chunk.first_ts() < self.last_ts {
            return Err(Error::OutOfOrder {
                ts_ns: chunk.first_ts(),
                last_ns: self.last_ts,
            });
        }
        let total = (CHUNK_HEADER_LEN + chunk.len_bytes()) as u64;
        if self.seg_len > 0 && self.seg_len + total > self.opts.segment_bytes {
            self.roll_segment()?;
        }
        let at = self.seg_len;
        let align = self.meta.align();
        let padded = align_up(total, align);
        // Indexed from what the pushes noted, not by walking the records again.
        let saved = self.observe(
            chunk
                .index_entries()
                .iter()
                .map(|e| (e.ts_ns, u64::from(e.rec_len))),
        );
        let body_len = chunk.len_bytes();
        let with_pieces = self.pieces.is_some();
        let (crc, written) = if self.direct {
            let (bytes, crc) = if with_pieces {
                chunk.finish_with_pieces(align as usize, &mut self.pieces_buf)
            } else {
                chunk.finish(align as usize)
            };
            let r = if (bytes.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN) {
                self.seg.write_all_at(bytes, at)
            } else {
                // Not aligned in memory (cannot happen with Chunk's own buffers; kept as a
                // safe path): copy into an aligned staging area.
                let need = bytes.len() + DIRECT_ALIGN;
                if self.staging.len() < need {
                    self.staging = vec![0u8; need.next_power_of_two()];
                }
                let off = self.staging.as_ptr().align_offset(DIRECT_ALIGN);
                let buf = &mut self.staging[off..off + bytes.len()];
                buf.copy_from_slice(bytes);
                self.seg.write_all_at(buf, at)
            };
            chunk.unpad(body_len);
            (crc, r)
        } else {
            // Buffered: the padding (if any) stays a hole until the next chunk.
            let (bytes, crc) = if with_pieces {
                chunk.finish_with_pieces(1, &mut self.pieces_buf)
            } else {
                chunk.finish(1)
            };
            let r = self.seg.write_all_at(bytes, at);
            // Start writeback of what was just written without waiting for it, so that
            // a later fdatasync (seal, sync interval) has little left to do and dirty
            // pages never pile up into a throttling stall.
            if r.is_ok() {
                start_writeback(&self.seg, at, bytes.len() as u64);
            }
            (crc, r)
        };
        if let Err(e) = written {
            self.indexer = saved;
            let _ = self.seg.set_len(at);
            return Err(e).at(&self.seg_path);
        }
        self.seg_len += padded;
        let hdr = ChunkHeader {
            body_len: chunk.len_bytes() as u32,
            packets: chunk.packets(),
            body_crc: crc,
            first_ts: chunk.first_ts(),
            last_ts: chunk.last_ts(),
        };
        let link = wirecap_pcap::LinkType(self.meta.link_type);
        match (&mut self.flows, &self.opts.summarizer) {
            (Some(fl), Some(s)) => {
                self.summary_buf.clear();
                self.summary_buf.resize(s.summary_len(), 0);
                let first = (saved.packets(), saved.pos());
                s.summarize_flows(
                    link,
                    chunk.body(),
                    &mut self.summary_buf,
                    &mut fl.table,
                    first,
                );
            }
            (None, Some(s)) if self.summary.is_some() => {
                self.summary_buf.clear();
                self.summary_buf.resize(s.summary_len(), 0);
                s.summarize(link, chunk.body(), &mut self.summary_buf);
            }
            _ => {}
        }
        let first_packet = saved.packets();
        if let Err(e) = self.persist_index(saved, hdr, at) {
            let _ = self.seg.set_len(at);
            self.seg_len = at;
            // The flow table has seen the chunk's packets (while summarizing): they are
            // not there after all.
            if let Some(fl) = &mut self.flows {
                fl.table.abandon(first_packet);
            }
            return Err(e);
        }
        // The chunk is indexed: only now may a block name its packets.
        if let Some(fl) = &mut self.flows
            && fl.table.chunk_done()
        {
            fl.write_block(false);
        }
        self.maybe_sync()
    }

    /// Runs the indexer over a chunk's records given as `(ts_ns, record length)`, leaving
    /// its marks in `self.marks`; returns the indexer as it was before, for rollback.
    fn observe(&mut self, records: impl Iterator<Item = (u64, u64)>) -> Indexer {
        let saved = self.indexer.clone();
        self.marks.clear();
        for (ts, len) in records {
            self.indexer.observe(ts, len, &mut self.marks);
        }
        saved
    }

    /// [`observe`](Self::observe) over a body read back from disk (recovery).
    fn observe_body(&mut self, body: &[u8]) -> Indexer {
        self.observe(record_lengths(body))
    }

    /// Appends the observed marks and the chunk's record. On error the index files are
    /// cut back to where they were and the indexer is restored.
    fn persist_index(&mut self, saved: Indexer, hdr: ChunkHeader, offset: u64) -> Result<()> {
        let lens = (
            self.time.len,
            self.sizes.iter().map(|f| f.len).collect::<Vec<_>>(),
        );
        let record = ChunkRecord {
            pos: saved.pos(),
            first_packet: saved.packets(),
            first_ts: hdr.first_ts,
            last_ts: hdr.last_ts,
            file_offset: offset,
            segment: self.seg_no,
            body_len: hdr.body_len,
            packets: hdr.packets,
            body_crc: hdr.body_crc,
        };
        let summary_len = self.summary.as_ref().map(|(f, _)| f.len);
        let pieces_len = self.pieces.as_ref().map(|f| f.len);
        let r = self
            .persist_marks()
            .and_then(|()| match &mut self.summary {
                Some((f, _)) => f.append(&self.summary_buf),
                None => Ok(()),
            })
            .and_then(|()| match &mut self.pieces {
                Some(f) => f.append(&self.pieces_buf),
                None => Ok(()),
            })
            .and_then(|()| self.chunks.append(&record.encode()));
        if let Err(e) = r {
            self.indexer = saved;
            if let (Some((f, _)), Some(l)) = (&mut self.summary, summary_len) {
                let _ = f.truncate(l);
            }
            if let (Some(f), Some(l)) = (&mut self.pieces, pieces_len) {
                let _ = f.truncate(l);
            }
            let _ = self.time.truncate(lens.0);
            for (f, l) in self.sizes.iter_mut().zip(lens.1) {
                let _ = f.truncate(l);
            }
            let _ = self
                .chunks
                .truncate(self.n_chunks * CHUNK_RECORD_LEN as u64);
            return Err(e);
        }
        self.n_chunks += 1;
        self.last_ts = hdr.last_ts;
        Ok(())
    }

    fn persist_marks(&mut self) -> Result<()> {
        encode_marks(&self.marks.time, &mut self.enc);
        self.time.append(&self.enc)?;
        for (i, v) in self.marks.size.iter().enumerate() {
            encode_marks(v, &mut self.enc);
            self.sizes[i].append(&self.enc)?;
        }
        Ok(())
    }

    fn roll_segment(&mut self) -> Result<()> {
        // A full segment never changes again: make it durable before moving on.
        self.seg.sync_data().at(&self.seg_path)?;
        // Nothing changes until the new segment is open: a failure (a full disk) leaves
        // the writer on its old segment, consistent.
        let path = self.dir.join(layout::segment(self.seg_no + 1));
        (self.seg, self.direct) = open_segment(&path, self.direct)?;
        self.seg_no += 1;
        self.seg_path = path;
        self.seg_len = 0;
        Ok(())
    }

    /// Reads the chunk that starts at the current end of the segment, if a whole, valid
    /// one is there (recovery only).
    fn read_whole_chunk_at_tail(&mut self) -> Result<Option<(Vec<u8>, ChunkHeader)>> {
        let mut h = [0u8; CHUNK_HEADER_LEN];
        if !read_exact_at(&self.seg, &mut h, self.seg_len).at(&self.seg_path)? {
            return Ok(None);
        }
        let Some(hdr) = ChunkHeader::decode(&h) else {
            return Ok(None);
        };
        if hdr.body_len as u64 > self.opts.segment_bytes.max(1 << 30) {
            return Ok(None);
        }
        let mut body = vec![0u8; hdr.body_len as usize];
        if !read_exact_at(&self.seg, &mut body, self.seg_len + CHUNK_HEADER_LEN as u64)
            .at(&self.seg_path)?
        {
            return Ok(None);
        }
        if crc32c::crc32c(&body) != hdr.body_crc
            || (self.n_chunks > 0 && hdr.first_ts < self.last_ts)
            || record_lengths(&body).count() != hdr.packets as usize
        {
            return Ok(None);
        }
        Ok(Some((body, hdr)))
    }

    fn maybe_sync(&mut self) -> Result<()> {
        if let Some(every) = self.opts.sync_interval
            && self.last_sync.elapsed() >= every
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.seg.sync_data().at(&self.seg_path)?;
        for f in std::iter::once(&self.time)
            .chain(self.sizes.iter())
            .chain(self.summary.as_ref().map(|(f, _)| f))
            .chain(self.pieces.as_ref())
            .chain(std::iter::once(&self.chunks))
        {
            f.file.sync_data().at(&f.path)?;
        }
        if let Some(fl) = &self.flows {
            fl.sync()?;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Commits the pending chunk, syncs, and closes the stream for good.
    pub fn seal(self) -> Result<StreamSummary> {
        self.finish(StreamState::Sealed)
    }

    pub(crate) fn finish(mut self, state: StreamState) -> Result<StreamSummary> {
        self.commit()?;
        if let Some(fl) = &mut self.flows {
            fl.write_block(true);
        }
        self.sync()?;
        self.meta.state = state;
        self.meta.closed_ns = Some(crate::now_ns());
        self.meta.store(&self.dir)?;
        Ok(StreamSummary {
            name: self.meta.name.clone(),
            packets: self.indexer.packets(),
            bytes: self.indexer.pos() + wirecap_pcap::PCAP_NS_HEADER_LEN as u64,
            chunks: self.n_chunks,
        })
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        // A writer dropped without seal (an error path, a panic) still puts its pending
        // packets on disk; the stream stays `open` until recovery seals it.
        if !self.pending.is_empty() {
            let _ = self.commit();
        }
    }
}

/// Alignment of chunks written with O_DIRECT (the logical block size of every disk we
/// expect; 512-byte devices accept it too).
const DIRECT_ALIGN: usize = 4096;

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Asks the kernel to start writing `[offset, offset + len)` of `f` to disk, without
/// waiting (sync_file_range with SYNC_FILE_RANGE_WRITE). Best effort: an error only means
/// the data is written back later, as usual.
fn start_writeback(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor we own; no memory is passed.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Opens a segment, with O_DIRECT when asked and supported; says which it got.
fn open_segment(path: &Path, direct: bool) -> Result<(File, bool)> {
    if direct && let Some(f) = layout::open_segment(path, true)? {
        return Ok((f, true));
    }
    Ok((open_buffered(path)?, false))
}

fn open_buffered(path: &Path) -> Result<File> {
    layout::open_segment(path, false)?
        .ok_or_else(|| Error::Invalid(format!("cannot open {}", path.display())))
}

fn encode_marks(marks: &[Mark], out: &mut Vec<u8>) {
    out.clear();
    for m in marks {
        out.extend_from_slice(&m.encode());
    }
}

/// `pread` that reports a short file as `false` instead of an error.
pub(crate) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<bool> {
    match f.read_exact_at(buf, offset) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn read_chunk_record(f: &File, path: &Path, i: u64) -> Result<Option<ChunkRecord>> {
    let mut b = [0u8; CHUNK_RECORD_LEN];
    if !read_exact_at(f, &mut b, i * CHUNK_RECORD_LEN as u64).at(path)? {
        return Ok(None);
    }
    Ok(ChunkRecord::decode(&b))
}

fn chunk_data_ok(dir: &Path, r: &ChunkRecord) -> Result<bool> {
    let p = dir.join(layout::segment(r.segment));
    let Ok(f) = File::open(&p) else {
        return Ok(false);
    };
    let mut body = vec![0u8; r.body_len as usize];
    if !read_exact_at(&f, &mut body, r.body_offset()).at(&p)? {
        return Ok(false);
    }
    Ok(crc32c::crc32c(&body) == r.body_crc)
}

/// Cuts the file at `path` (if there is one) to `keep` bytes; returns the bytes cut.
fn cut_to(path: &Path, keep: u64) -> Result<u64> {
    let Ok(m) = fs::metadata(path) else {
        return Ok(0);
    };
    if m.len() <= keep {
        return Ok(0);
    }
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(keep))
        .at(path)?;
    Ok(m.len() - keep)
}

/// Cuts a mark file to whole records for packets below `packets`; returns bytes cut.
fn cut_marks(path: &Path, packets: u64) -> Result<u64> {
    let Ok(mut f) = OpenOptions::new().read(true).write(true).open(path) else {
        return Ok(0);
    };
    let len = f.metadata().at(path)?.len();
    let mut n = len / MARK_LEN as u64;
    while n > 0 {
        let mut b = [0u8; MARK_LEN];
        f.seek(SeekFrom::Start((n - 1) * MARK_LEN as u64))
            .at(path)?;
        f.read_exact(&mut b).at(path)?;
        if Mark::decode(&b).packet < packets {
            break;
        }
        n -= 1;
    }
    let keep = n * MARK_LEN as u64;
    if keep != len {
        f.set_len(keep).at(path)?;
    }
    Ok(len - keep)
}

fn last_mark(path: &Path) -> Result<Option<Mark>> {
    let Ok(f) = File::open(path) else {
        return Ok(None);
    };
    let n = f.metadata().at(path)?.len() / MARK_LEN as u64;
    if n == 0 {
        return Ok(None);
    }
    let mut b = [0u8; MARK_LEN];
    f.read_exact_at(&mut b, (n - 1) * MARK_LEN as u64)
        .at(path)?;
    Ok(Some(Mark::decode(&b)))
}
