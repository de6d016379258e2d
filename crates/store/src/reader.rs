//! Reading a stream: totals, views and splits from the index alone; packet bytes only
//! when they are downloaded.
//!
//! A reader takes a snapshot when it opens: the chunks `chunks.idx` names at that moment.
//! A writer may go on appending; the reader's view stays a consistent prefix because
//! marks for packets beyond the snapshot are ignored. Open a new reader to see more.
//!
//! A stream whose head was trimmed by retention (see [`crate::head`]) starts at its
//! [`Head`]: the chunks, marks and packets before it are dead, and every total, view,
//! split and range here covers only what is live. Packet numbers and logical positions
//! keep counting from the stream's start, so a split of what remains is the split it was
//! before the trim, cut at the head.

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wirecap_pcap::{LinkType, PCAP_NS_HEADER_LEN, Packet, pcap_ns_header};

use crate::chunk::record_lengths;
use crate::error::{Error, IoContext, Result};
use crate::head::Head;
use crate::index::{CHUNK_RECORD_LEN, ChunkRecord, MARK_LEN, Mark};
use crate::layout;
use crate::mapped::{Mapped, MappedRanges};
use crate::meta::{StreamMeta, StreamState};
use crate::timefmt::{NS_PER_SEC, split_name};
use crate::view::{PacketRange, Split, View};
use crate::writer::{read_chunk_record, read_exact_at};

/// A consistent, read-only snapshot of one stream. Cheap to clone.
#[derive(Clone)]
pub struct StreamReader {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    meta: StreamMeta,
    /// Closed by its writer or by recovery: its files no longer change (but a trim).
    sealed: bool,
    chunks: File,
    chunks_path: PathBuf,
    n_chunks: u64,
    head: Head,
    first: Option<ChunkRecord>,
    last: Option<ChunkRecord>,
    /// Where segments kept elsewhere come from (see [`crate::remote`]).
    source: Option<crate::Source>,
}

/// Totals of a stream, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub meta: StreamMeta,
    pub packets: u64,
    /// Size of the whole stream as one pcap file.
    pub bytes: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    pub chunks: u64,
    /// Bytes the stream takes on disk (segments and index).
    pub disk_bytes: u64,
    /// Retention never deletes any of it (see [`crate::Store::set_pinned`]).
    pub pinned: bool,
    /// Where retention trimmed the stream's head (all zero when it never did).
    pub head: Head,
}

impl StreamReader {
    pub(crate) fn open(dir: PathBuf, source: Option<crate::Source>) -> Result<Self> {
        let meta = StreamMeta::load(&dir)?;
        // The head is read before the index: it only ever names chunks that were already
        // indexed, so it can never point past this snapshot.
        let head = Head::load(&dir)?;
        let chunks_path = dir.join(layout::CHUNKS);
        let chunks = match File::open(&chunks_path) {
            Ok(f) => f,
            // A stream created a moment ago may not have its index yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                File::open("/dev/null").at(&chunks_path)?
            }
            Err(e) => return Err(e).at(&chunks_path),
        };
        let len = chunks.metadata().at(&chunks_path)?.len();
        let whole = len / CHUNK_RECORD_LEN as u64;
        let mut n = whole;
        // A record torn by a crash (not yet recovered) ends the snapshot early.
        let mut last = None;
        while n > 0 {
            if let Some(r) = read_chunk_record(&chunks, &chunks_path, n - 1)? {
                last = Some(r);
                break;
            }
            n -= 1;
        }
        let sealed = meta.state != StreamState::Open;
        if sealed && (n != whole || len != whole * CHUNK_RECORD_LEN as u64) {
            // A sealed stream was closed by its writer or by recovery: nothing in its
            // index may be torn.
            return Err(Error::DamagedIndex {
                stream: meta.name.clone(),
                file: layout::CHUNKS.to_owned(),
                why: format!(
                    "{len} bytes, of which only the first {n} records are whole and intact"
                ),
            });
        }
        let head = if head.chunk > n {
            Head::default()
        } else {
            head
        };
        let first = if n > head.chunk {
            read_chunk_record(&chunks, &chunks_path, head.chunk)?
        } else {
            None
        };
        if first.is_none() {
            last = None;
        }
        let r = Self {
            inner: Arc::new(Inner {
                dir,
                meta,
                sealed,
                chunks,
                chunks_path,
                n_chunks: n,
                head,
                first,
                last,
                source,
            }),
        };
        r.check_on_open()?;
        Ok(r)
    }

    pub fn name(&self) -> &str {
        &self.inner.meta.name
    }
    pub fn meta(&self) -> &StreamMeta {
        &self.inner.meta
    }
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
    pub fn link_type(&self) -> LinkType {
        LinkType(self.inner.meta.link_type)
    }
    /// Live packets (those after the head).
    pub fn packets(&self) -> u64 {
        self.end_packet() - self.head().packet.min(self.end_packet())
    }
    /// Live record bytes (the whole stream as pcap is `24 +` this).
    pub fn record_bytes(&self) -> u64 {
        self.end_pos() - self.head().pos.min(self.end_pos())
    }
    /// Where the live part of the stream starts.
    pub fn head(&self) -> Head {
        self.inner.head
    }
    fn end_packet(&self) -> u64 {
        self.inner
            .last
            .map_or(self.inner.head.packet, |r| r.end_packet())
    }
    fn end_pos(&self) -> u64 {
        self.inner.last.map_or(self.inner.head.pos, |r| r.end_pos())
    }
    fn start(&self) -> (u64, u64) {
        (self.inner.head.packet, self.inner.head.pos)
    }
    pub fn first_ts(&self) -> Option<u64> {
        self.inner.first.map(|r| r.first_ts)
    }
    pub fn last_ts(&self) -> Option<u64> {
        self.inner.last.map(|r| r.last_ts)
    }
    pub fn chunk_count(&self) -> u64 {
        self.inner.n_chunks
    }
    pub(crate) fn is_sealed(&self) -> bool {
        self.inner.sealed
    }
    pub(crate) fn first_record(&self) -> Option<ChunkRecord> {
        self.inner.first
    }
    pub(crate) fn last_record(&self) -> Option<ChunkRecord> {
        self.inner.last
    }
    /// Where segment `n`'s bytes come from when it is kept elsewhere: the source and the
    /// segment's length, `None` when it is not (or no source is set).
    pub(crate) fn remote(&self, n: u32) -> Option<(&dyn crate::remote::SegmentSource, u64)> {
        let src = self.inner.source.as_ref()?;
        let len = crate::remote::remote_len(&self.inner.dir, n)?;
        Some((&*src.0, len))
    }

    pub(crate) fn end(&self) -> (u64, u64) {
        (self.end_packet(), self.end_pos())
    }

    pub fn info(&self) -> Result<StreamInfo> {
        let mut disk = 0;
        for e in std::fs::read_dir(&self.inner.dir).at(&self.inner.dir)? {
            if let Ok(m) = e.and_then(|e| e.metadata()) {
                disk += m.len();
            }
        }
        Ok(StreamInfo {
            meta: self.inner.meta.clone(),
            packets: self.packets(),
            bytes: self.full_range().pcap_bytes(),
            first_ts: self.first_ts(),
            last_ts: self.last_ts(),
            chunks: self.chunk_count(),
            disk_bytes: disk,
            pinned: self.inner.dir.join(layout::PIN).exists(),
            head: self.inner.head,
        })
    }

    /// The record of chunk `i` (`i < chunk_count()`).
    pub fn chunk(&self, i: u64) -> Result<ChunkRecord> {
        read_chunk_record(&self.inner.chunks, &self.inner.chunks_path, i)?.ok_or_else(|| {
            Error::Corrupt {
                path: self.inner.chunks_path.clone(),
                why: format!("chunk record {i} is damaged"),
            }
        })
    }

    /// Every live packet of the stream.
    pub fn full_range(&self) -> PacketRange {
        let (p, b) = self.start();
        PacketRange {
            first_packet: p,
            end_packet: self.end_packet(),
            start_pos: b,
            end_pos: self.end_pos(),
        }
    }

    /// The marks of `file` for packets in this snapshot, checked against each other and
    /// against the chunk records (see [`crate::check`]).
    fn marks(&self, file: &str) -> Result<Vec<Mark>> {
        let marks = self.marks_unchecked(file)?;
        self.check_marks(file, &marks)?;
        Ok(marks)
    }

    /// The marks of `file` below the snapshot's end; a missing or (when sealed) torn
    /// file is damage.
    pub(crate) fn marks_unchecked(&self, file: &str) -> Result<Vec<Mark>> {
        let path = self.inner.dir.join(file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.inner.first.is_none() => {
                Vec::new()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.damaged_index(file, "missing".into()));
            }
            Err(e) => return Err(e).at(&path),
        };
        if self.inner.sealed && !bytes.len().is_multiple_of(MARK_LEN) {
            return Err(self.damaged_index(
                file,
                format!("{} bytes is not a whole number of marks", bytes.len()),
            ));
        }
        let total = self.end_packet();
        let marks: Vec<Mark> = bytes
            .chunks_exact(MARK_LEN)
            .map(|b| Mark::decode(b.try_into().expect("chunks_exact")))
            .take_while(|m| m.packet < total)
            .collect();
        Ok(marks)
    }

    /// Every non-empty split of `view`, from the index alone.
    pub fn splits(&self, view: View) -> Result<Vec<Split>> {
        let mut all = self.splits_from_start(view)?;
        let (p, b) = self.start();
        if p == 0 {
            return Ok(all);
        }
        // A trimmed head: splits wholly before it are gone, the one it falls in is cut.
        all.retain(|s| s.range.end_packet > p);
        for (i, s) in all.iter_mut().enumerate() {
            s.index = i as u64;
            if s.range.first_packet < p {
                s.range.first_packet = p;
                s.range.start_pos = b;
                if matches!(view, View::Size { .. } | View::Single) {
                    s.start_ts = self.inner.head.first_ts;
                    s.name = split_name(s.start_ts);
                }
            }
        }
        Ok(all)
    }

    fn splits_from_start(&self, view: View) -> Result<Vec<Split>> {
        let end = Mark {
            key: u64::MAX,
            packet: self.end_packet(),
            pos: self.end_pos(),
        };
        let range = |a: &Mark, b: &Mark| PacketRange {
            first_packet: a.packet,
            end_packet: b.packet,
            start_pos: a.pos,
            end_pos: b.pos,
        };
        let mut out = Vec::new();
        match view {
            View::Single => {
                if let (Some(first), Some(last)) = (self.first_ts(), self.last_ts()) {
                    out.push(Split {
                        index: 0,
                        name: split_name(first),
                        start_ts: first,
                        stop_ts: last + 1,
                        range: self.full_range(),
                    });
                }
            }
            View::Time { secs } => {
                let marks = self.marks(layout::TIME)?;
                let mut starts: Vec<&Mark> = Vec::new();
                for m in &marks {
                    if starts.last().is_none_or(|s| s.key / secs != m.key / secs) {
                        starts.push(m);
                    }
                }
                for (i, s) in starts.iter().enumerate() {
                    let next = starts.get(i + 1).copied().unwrap_or(&end);
                    let start_ts = s.key / secs * secs * NS_PER_SEC;
                    out.push(Split {
                        index: i as u64,
                        name: split_name(start_ts),
                        start_ts,
                        stop_ts: start_ts + secs * NS_PER_SEC,
                        range: range(s, next),
                    });
                }
            }
            View::Size { level } => {
                let Some(first_ts) = self.first_ts() else {
                    return Ok(out);
                };
                let mut starts = vec![Mark {
                    key: first_ts,
                    packet: 0,
                    pos: 0,
                }];
                starts.extend(self.marks(&layout::size_file(level))?);
                let last_ts = self.last_ts().unwrap_or(first_ts);
                for (i, s) in starts.iter().enumerate() {
                    let next = starts.get(i + 1).unwrap_or(&end);
                    out.push(Split {
                        index: i as u64,
                        name: split_name(s.key),
                        start_ts: s.key,
                        stop_ts: if next.key == u64::MAX {
                            last_ts + 1
                        } else {
                            next.key
                        },
                        range: range(s, next),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Split `index` of `view`.
    pub fn split(&self, view: View, index: u64) -> Result<Split> {
        let mut all = self.splits(view)?;
        let count = all.len() as u64;
        if index >= count {
            return Err(Error::NoSuchSplit {
                view: view.to_string(),
                index,
                count,
            });
        }
        let s = all.swap_remove(index as usize);
        self.check_split(view, &s)?;
        Ok(s)
    }

    /// The packets with `start <= ts < stop` (either bound open when `None`).
    pub fn time_range(&self, start: Option<u64>, stop: Option<u64>) -> Result<PacketRange> {
        let (first_packet, start_pos) = match start {
            Some(t) => self.locate(t)?,
            None => self.start(),
        };
        let (end_packet, end_pos) = match stop {
            Some(t) => self.locate(t)?,
            None => (self.end_packet(), self.end_pos()),
        };
        if end_packet <= first_packet {
            return Ok(PacketRange {
                first_packet,
                end_packet: first_packet,
                start_pos,
                end_pos: start_pos,
            });
        }
        Ok(PacketRange {
            first_packet,
            end_packet,
            start_pos,
            end_pos,
        })
    }

    /// The first packet with a timestamp at or after `ts`: `(packet index, position)`.
    /// O(log n) index reads, plus at most one chunk of data when `ts` falls inside one.
    pub fn locate(&self, ts: u64) -> Result<(u64, u64)> {
        let end = (self.end_packet(), self.end_pos());
        let (Some(first), Some(last)) = (self.first_ts(), self.last_ts()) else {
            return Ok(end);
        };
        if ts <= first {
            return Ok(self.start());
        }
        if ts > last {
            return Ok(end);
        }
        if ts.is_multiple_of(NS_PER_SEC) {
            if let Some(m) = self.time_mark_at_or_after(ts / NS_PER_SEC)? {
                if m.packet >= end.0 {
                    // ts <= the last packet's time, so some packet is at or after it.
                    return Err(self.damaged_index(
                        layout::TIME,
                        format!(
                            "the mark for second {} names packet {}, past the last one",
                            m.key, m.packet
                        ),
                    ));
                }
                if m.packet >= self.inner.head.packet {
                    self.check_time_mark(&m, ts)?;
                }
                return Ok(if m.packet >= end.0 {
                    end
                } else if m.packet < self.inner.head.packet {
                    self.start()
                } else {
                    (m.packet, m.pos)
                });
            }
            return Err(self.damaged_index(
                layout::TIME,
                format!(
                    "no mark at or after second {}, yet packets are",
                    ts / NS_PER_SEC
                ),
            ));
        }
        // First live chunk whose last packet is at or after ts.
        let (mut lo, mut hi) = (self.inner.head.chunk, self.inner.n_chunks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.chunk(mid)?.last_ts < ts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == self.inner.n_chunks {
            return Ok(end);
        }
        let c = self.chunk(lo)?;
        if c.first_ts >= ts {
            return Ok((c.first_packet, c.pos));
        }
        let body = self.read_body_of(&c)?;
        let (mut packet, mut pos) = (c.first_packet, c.pos);
        for (t, len) in record_lengths(&body) {
            if t >= ts {
                return Ok((packet, pos));
            }
            packet += 1;
            pos += len;
        }
        Ok((c.end_packet(), c.end_pos()))
    }

    fn time_mark_at_or_after(&self, sec: u64) -> Result<Option<Mark>> {
        let path = self.inner.dir.join(layout::TIME);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.damaged_index(layout::TIME, "missing".into()));
            }
            Err(e) => return Err(e).at(&path),
        };
        let n = f.metadata().at(&path)?.len() / MARK_LEN as u64;
        let read = |i: u64| -> Result<Mark> {
            let mut b = [0u8; MARK_LEN];
            f.read_exact_at(&mut b, i * MARK_LEN as u64).at(&path)?;
            Ok(Mark::decode(&b))
        };
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if read(mid)?.key < sec {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == n {
            Ok(None)
        } else {
            read(lo).map(Some)
        }
    }

    fn segment_path(&self, n: u32) -> PathBuf {
        self.inner.dir.join(layout::segment(n))
    }

    /// Opens segment `n`; one that retention deleted after this snapshot was taken is
    /// reported as such rather than as a damaged store.
    pub(crate) fn open_segment(&self, n: u32) -> Result<File> {
        let p = self.segment_path(n);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if Head::load(&self.inner.dir).is_ok_and(|h| h.segment > n) {
                    Err(Error::Trimmed(self.inner.meta.name.clone()))
                } else {
                    Err(e).at(&p)
                }
            }
            Err(e) => Err(e).at(&p),
        }
    }

    /// The first chunk from `from` on that ends after logical position `pos`
    /// (`n_chunks` when none does): chunks tile the stream in order.
    fn first_chunk_ending_after(&self, pos: u64, from: u64) -> Result<u64> {
        let (mut lo, mut hi) = (from, self.inner.n_chunks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.chunk(mid)?.end_pos() <= pos {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Asks the kernel to start reading, all at once, the bytes of the packets at the
    /// logical positions `positions` (sorted) and their chunks' headers, ahead of an
    /// indexed read that will touch them one by one.
    ///
    /// Why: an indexed read of a few packets per chunk over a cold page cache was
    /// otherwise one synchronous random read per packet (each a fault on the mapping, with
    /// read-ahead the packet does not need), which made a cold selective query no faster
    /// than `tcpdump -r` reading the whole file. `POSIX_FADV_WILLNEED` queues the reads
    /// together, so the disk serves them in parallel. Only advice: segments kept
    /// elsewhere, or any error, leave the read to do its own I/O as before.
    pub fn prefetch(&self, positions: &[u64]) {
        /// Bytes asked per packet, from the start of the 4 KiB piece its record starts in
        /// (the piece is checked whole): the piece, which straddles two pages, and what
        /// a typical packet runs on into.
        const SPAN: u64 = 3 * 4096;
        /// Chunk records read at once: a query's candidates are sorted, so the next
        /// one's chunk is usually among the following records, found in memory instead
        /// of by a binary search of `pread`s per packet.
        const BATCH: u64 = 1024;
        let mut batch: Vec<ChunkRecord> = Vec::new();
        let mut from = 0u64;
        let mut file: Option<(u32, Option<File>)> = None;
        let mut last: Option<(u32, u64)> = None;
        for &p in positions {
            let k = batch.partition_point(|c| c.end_pos() <= p);
            let c = match batch.get(k) {
                Some(c) if c.pos <= p => *c,
                _ => {
                    // The first chunk ending after p, searched on disk from the batch on.
                    let Ok(lo) = self.first_chunk_ending_after(p, from) else {
                        return;
                    };
                    let n = BATCH.min(self.inner.n_chunks - lo);
                    let mut b = vec![0u8; n as usize * CHUNK_RECORD_LEN];
                    if !read_exact_at(&self.inner.chunks, &mut b, lo * CHUNK_RECORD_LEN as u64)
                        .unwrap_or(false)
                    {
                        return;
                    }
                    batch = b
                        .chunks_exact(CHUNK_RECORD_LEN)
                        .map_while(|r| ChunkRecord::decode(r.try_into().ok()?))
                        .collect();
                    from = lo;
                    match batch.first() {
                        Some(c) if c.pos <= p && p < c.end_pos() => *c,
                        _ => return,
                    }
                }
            };
            if file.as_ref().is_none_or(|(n, _)| *n != c.segment) {
                let local = self.remote(c.segment).is_none();
                let f = local
                    .then(|| File::open(self.segment_path(c.segment)).ok())
                    .flatten();
                file = Some((c.segment, f));
            }
            let Some((_, Some(f))) = &file else { continue };
            let at = (c.body_offset() + ((p - c.pos) & !4095)) & !4095;
            for (off, len) in [(c.file_offset & !4095, 4096), (at, SPAN)] {
                if last == Some((c.segment, off)) {
                    continue;
                }
                last = Some((c.segment, off));
                // SAFETY: plain advice on an open descriptor; no memory is passed.
                unsafe {
                    libc::posix_fadvise(
                        std::os::fd::AsRawFd::as_raw_fd(f),
                        off as libc::off_t,
                        len as libc::off_t,
                        libc::POSIX_FADV_WILLNEED,
                    );
                }
            }
        }
    }

    /// The records of chunk `c`, checked against its header and CRC.
    pub(crate) fn read_body_of(&self, c: &ChunkRecord) -> Result<Mapped> {
        let range = PacketRange {
            first_packet: c.first_packet,
            end_packet: c.end_packet(),
            start_pos: c.pos,
            end_pos: c.end_pos(),
        };
        // One chunk: nothing to hold mapped ahead.
        match MappedRanges::new(self.clone(), self.slices(range), None).next() {
            Some(r) => r.map(|(_, m)| m),
            None => Err(self.damaged_index(layout::CHUNKS, "an empty chunk".into())),
        }
    }

    pub(crate) fn damaged_index(&self, file: &str, why: String) -> Error {
        Error::DamagedIndex {
            stream: self.name().to_owned(),
            file: file.to_owned(),
            why,
        }
    }

    /// The bytes of `range`, one verified slice per chunk it touches, straight from the
    /// mapped segment files: every chunk is checked (header and CRC32C) before any of its
    /// bytes are yielded, and a damaged one ends the iteration with
    /// [`Error::DamagedChunk`]. The slices own their mapping (see [`Mapped`]).
    pub fn mapped(&self, range: PacketRange) -> MappedRanges {
        let first = self
            .slices(range)
            .next()
            .and_then(|s| s.ok())
            .map(|s| s.segment);
        MappedRanges::new(self.clone(), self.slices(range), first)
    }

    /// The file slices holding `range`, in order: `(segment, file offset, length)`.
    pub fn slices(&self, range: PacketRange) -> Slices {
        Slices {
            reader: self.clone(),
            range,
            orig: range,
            next: None,
            ahead: (0, Vec::new()),
        }
    }

    /// Writes `range` as a pcap file (nanosecond timestamps), every chunk checked first
    /// (see [`mapped`](Self::mapped)).
    pub fn write_pcap<W: Write>(&self, range: PacketRange, out: &mut W) -> Result<u64> {
        let hdr = pcap_ns_header(self.link_type(), self.inner.meta.snaplen);
        out.write_all(&hdr).map_err(out_err)?;
        let mut written = PCAP_NS_HEADER_LEN as u64;
        for r in self.mapped(range) {
            let (_, bytes) = r?;
            out.write_all(&bytes).map_err(out_err)?;
            written += bytes.len() as u64;
        }
        Ok(written)
    }

    /// A `Read` of `range` as a pcap file, for servers that stream with backpressure.
    pub fn pcap_reader(&self, range: PacketRange) -> PcapReader {
        PcapReader {
            header: pcap_ns_header(self.link_type(), self.inner.meta.snaplen),
            header_at: 0,
            ranges: self.mapped(range),
            cur: None,
            len: range.pcap_bytes(),
        }
    }

    /// Calls `f` for every packet of `range`, in order, until it breaks.
    pub fn for_each_packet<F>(&self, range: PacketRange, f: F) -> Result<()>
    where
        F: FnMut(&Packet<'_>) -> ControlFlow<()>,
    {
        self.scan(range, |_| true, f).map(|_| ())
    }

    /// The summary of chunk `i`, when the stream has summaries and chunk `i` has one.
    pub fn chunk_summary(&self, i: u64) -> Result<Option<Vec<u8>>> {
        let len = u64::from(self.inner.meta.summary_len);
        if len == 0 {
            return Ok(None);
        }
        let path = self.inner.dir.join(layout::SUMMARY);
        let Ok(f) = File::open(&path) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len as usize];
        Ok(read_exact_at(&f, &mut buf, i * len)
            .at(&path)?
            .then_some(buf))
    }

    /// Like [`for_each_packet`](Self::for_each_packet), but skips, without reading them,
    /// the chunks whose summary `may_match` rejects (chunks without a summary are read).
    pub fn scan<M, F>(&self, range: PacketRange, mut may_match: M, mut f: F) -> Result<ScanStats>
    where
        M: FnMut(&[u8]) -> bool,
        F: FnMut(&Packet<'_>) -> ControlFlow<()>,
    {
        let mut stats = ScanStats::default();
        let summaries = self.summaries()?;
        let mut ranges = self.mapped(range);
        let mut sum = vec![0u8; summaries.as_ref().map_or(0, |(_, len)| *len)];
        while let Some(r) = ranges.next_unless(|s| match &summaries {
            Some((file, len)) => {
                read_exact_at(file, &mut sum, s.chunk * *len as u64).unwrap_or(false)
                    && !may_match(&sum)
            }
            None => false,
        }) {
            let (s, bytes) = r?;
            let Some(bytes) = bytes else {
                stats.chunks_skipped += 1;
                stats.bytes_skipped += s.len;
                continue;
            };
            stats.chunks_read += 1;
            stats.bytes_read += s.len;
            for pkt in wirecap_pcap::records(&bytes) {
                if f(&pkt).is_break() {
                    return Ok(stats);
                }
            }
        }
        Ok(stats)
    }

    /// `summary.idx` and the length of its records, when the stream has summaries.
    pub fn summary_file(&self) -> Option<(File, usize)> {
        self.summaries().ok().flatten()
    }

    fn summaries(&self) -> Result<Option<(File, usize)>> {
        let len = self.inner.meta.summary_len as usize;
        if len == 0 {
            return Ok(None);
        }
        let path = self.inner.dir.join(layout::SUMMARY);
        match File::open(&path) {
            Ok(f) => Ok(Some((f, len))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }
}

/// What a [`StreamReader::scan`] read and what its summaries let it skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub chunks_read: u64,
    pub bytes_read: u64,
    pub chunks_skipped: u64,
    pub bytes_skipped: u64,
}

fn out_err(e: io::Error) -> Error {
    Error::Io {
        path: PathBuf::from("<output>"),
        source: e,
    }
}

/// A contiguous run of record bytes in one segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// Index of the chunk the slice belongs to.
    pub chunk: u64,
    pub segment: u32,
    pub offset: u64,
    pub len: u64,
}

/// Iterator over the slices of a range (see [`StreamReader::slices`]).
pub struct Slices {
    reader: StreamReader,
    range: PacketRange,
    orig: PacketRange,
    next: Option<u64>,
    /// Chunk records read ahead, from the first one's number: one `pread` for many
    /// chunks instead of one each (an indexed query walks every chunk of its range).
    ahead: (u64, Vec<ChunkRecord>),
}

impl Slices {
    /// The record of chunk `i` (`i < n_chunks`), from the records read ahead; a damaged
    /// record is read alone, for its error.
    fn record(&mut self, i: u64) -> Result<ChunkRecord> {
        const AHEAD: u64 = 256;
        let (from, recs) = &self.ahead;
        if let Some(c) = i.checked_sub(*from).and_then(|k| recs.get(k as usize)) {
            return Ok(*c);
        }
        let r = &self.reader;
        let n = AHEAD.min(r.inner.n_chunks.saturating_sub(i));
        let mut b = vec![0u8; n as usize * CHUNK_RECORD_LEN];
        if n > 1
            && read_exact_at(&r.inner.chunks, &mut b, i * CHUNK_RECORD_LEN as u64).unwrap_or(false)
        {
            let recs: Vec<ChunkRecord> = b
                .chunks_exact(CHUNK_RECORD_LEN)
                .map_while(|x| ChunkRecord::decode(x.try_into().ok()?))
                .collect();
            if let Some(c) = recs.first().copied() {
                self.ahead = (i, recs);
                return Ok(c);
            }
        }
        r.chunk(i)
    }

    /// The range asked for (`range` itself moves on as slices are taken).
    pub(crate) fn asked(&self) -> PacketRange {
        self.orig
    }

    /// The next slice and the record of the chunk it belongs to.
    pub(crate) fn next_with_record(&mut self) -> Option<Result<(Slice, ChunkRecord)>> {
        if self.range.start_pos >= self.range.end_pos {
            return None;
        }
        let r = &self.reader;
        let i = match self.next {
            Some(i) => i,
            None => {
                // First live chunk that ends after start_pos.
                self.range.start_pos = self.range.start_pos.max(r.inner.head.pos);
                if self.range.start_pos >= self.range.end_pos {
                    return None;
                }
                match r.first_chunk_ending_after(self.range.start_pos, r.inner.head.chunk) {
                    Ok(i) => i,
                    Err(e) => return Some(Err(e)),
                }
            }
        };
        if i >= r.inner.n_chunks {
            return Some(Err(r.damaged_index(
                layout::CHUNKS,
                format!(
                    "a range asks for stream bytes up to {} but the last chunk ends at {}",
                    self.range.end_pos, self.range.start_pos
                ),
            )));
        }
        let c = match self.record(i) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let r = &self.reader;
        let from = self.range.start_pos.max(c.pos);
        let to = self.range.end_pos.min(c.end_pos());
        if from >= to || c.pos > self.range.start_pos {
            // Records must tile the logical stream; a gap or overlap is a damaged index.
            return Some(Err(r.damaged_index(
                layout::CHUNKS,
                format!(
                    "chunk {i} covers bytes {}..{} of the stream, but the one before it ends at {}",
                    c.pos,
                    c.end_pos(),
                    self.range.start_pos
                ),
            )));
        }
        self.range.start_pos = to;
        self.next = Some(i + 1);
        Some(Ok((
            Slice {
                chunk: i,
                segment: c.segment,
                offset: c.body_offset() + (from - c.pos),
                len: to - from,
            },
            c,
        )))
    }
}

impl Iterator for Slices {
    type Item = Result<Slice>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with_record().map(|r| r.map(|(s, _)| s))
    }
}

/// A pcap file of a range, as a `Read`. See [`StreamReader::pcap_reader`].
pub struct PcapReader {
    header: [u8; PCAP_NS_HEADER_LEN],
    header_at: usize,
    ranges: MappedRanges,
    /// The current verified slice and how much of it was read.
    cur: Option<(Mapped, usize)>,
    len: u64,
}

impl PcapReader {
    /// Total bytes this reader yields (exact: a Content-Length).
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for PcapReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.header_at < PCAP_NS_HEADER_LEN {
            let n = (PCAP_NS_HEADER_LEN - self.header_at).min(buf.len());
            buf[..n].copy_from_slice(&self.header[self.header_at..self.header_at + n]);
            self.header_at += n;
            return Ok(n);
        }
        loop {
            if let Some((m, at)) = &mut self.cur
                && *at < m.len()
            {
                let n = (m.len() - *at).min(buf.len());
                buf[..n].copy_from_slice(&m[*at..*at + n]);
                *at += n;
                return Ok(n);
            }
            match self.ranges.next() {
                None => return Ok(0),
                Some(Err(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                Some(Ok((_, m))) => self.cur = Some((m, 0)),
            }
        }
    }
}
