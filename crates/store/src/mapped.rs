//! Verified, zero-copy byte ranges of a stream: the bytes of a packet range as slices of
//! mapped segment files, each chunk checked against its header and CRC32C before any of
//! its bytes are handed out — or, for reads of a few packets ([`LazyChunk`]), the pieces
//! of the chunk those packets are in, against the chunk's piece checksums
//! ([`crate::pieces`]).
//!
//! Readers outside the store (the HTTP download, exports) get [`Mapped`] slices that own
//! their mapping: they can be sent to a socket without a copy (`bytes::Bytes::from_owner`)
//! and stay valid after retention unlinks the file. The `unsafe` of the mapping lives
//! here, next to the invariant it rests on.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::chunk::{CHUNK_HEADER_LEN, ChunkHeader};
use crate::error::{Error, IoContext, Result};
use crate::index::ChunkRecord;
use crate::layout;
use crate::reader::{Slice, Slices, StreamReader};
use crate::writer::read_exact_at;

/// A whole segment file mapped read-only, or (where mapping is refused) the one chunk
/// read into memory.
enum Backing {
    Map(memmap2::Mmap),
    Heap(Vec<u8>),
}

/// Bytes of a segment file starting at file offset `base`.
pub(crate) struct Region {
    backing: Backing,
    base: u64,
}

impl Region {
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Map(m) => m,
            Backing::Heap(v) => v,
        }
    }

    /// File bytes `[at, at + len)` will be read a few scattered packets at a time (an
    /// indexed read): no read-ahead there. The segment is mapped for sequential reading,
    /// and with the disk's read-ahead (8 MiB on this project's VMs) every fault of a
    /// cold indexed read then pulled in megabytes it did not need: 616 MB from disk for
    /// a query of 371 packets, before this advice.
    fn advise_random(&self, at: u64, len: u64) {
        if let Backing::Map(m) = &self.backing
            && let Some(off) = at
                .checked_sub(self.base)
                .and_then(|o| usize::try_from(o).ok())
                .filter(|&o| o < m.len())
        {
            let len = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(m.len() - off);
            let _ = m.advise_range(memmap2::Advice::Random, off, len);
        }
    }

    /// File bytes `[at, at + len)`, `None` when the file is shorter.
    fn get(&self, at: u64, len: u64) -> Option<&[u8]> {
        let from = usize::try_from(at.checked_sub(self.base)?).ok()?;
        let to = from.checked_add(usize::try_from(len).ok()?)?;
        self.bytes().get(from..to)
    }
}

/// Maps segment file `path`. `None` when the file cannot be mapped (empty, or a file
/// system without mmap); the caller then reads what it needs.
pub(crate) fn map(path: &Path) -> Result<Option<Region>> {
    let f = File::open(path).at(path)?;
    // SAFETY: a mapping is unsound only if the file shrinks while mapped pages are
    // touched. Segment files only grow while readers exist: the writer appends, and the
    // two places that cut a segment (a writer's failed append, and recovery of a dead
    // writer's torn tail) only cut bytes past the last chunk `chunks.idx` names, which
    // no reader's snapshot covers. Bytes are only touched after the chunk's range was
    // checked against the mapping's length. Retention deletes whole files, which leaves
    // existing mappings valid. (An operator truncating segment files by hand breaks
    // this, as it would break any reader that mmaps.)
    match unsafe { memmap2::Mmap::map(&f) } {
        Ok(m) => {
            let _ = m.advise(memmap2::Advice::Sequential);
            Ok(Some(Region {
                backing: Backing::Map(m),
                base: 0,
            }))
        }
        Err(_) => Ok(None),
    }
}

/// Record bytes of one chunk (or part of it), checked, borrowed from a mapping it keeps
/// alive. Cheap to clone; `Send + Sync + 'static`, so it can back a `bytes::Bytes`.
#[derive(Clone)]
pub struct Mapped {
    region: Arc<Region>,
    start: usize,
    len: usize,
}

impl Mapped {
    /// Bytes `[from, to)` of this slice.
    pub fn sub(&self, from: usize, to: usize) -> Self {
        assert!(from <= to && to <= self.len, "sub-slice out of bounds");
        Self {
            region: self.region.clone(),
            start: self.start + from,
            len: to - from,
        }
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.region.bytes()[self.start..self.start + self.len]
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.len)
    }
}

/// Iterator over the verified byte ranges of a packet range, one per chunk touched
/// (see [`StreamReader::mapped`]). Every chunk is checked whole (header and CRC32C of
/// its body) before any part of it is yielded, so damaged bytes never leave the store.
pub struct MappedRanges {
    slices: Slices,
    reader: StreamReader,
    /// Segments mapped so far; the first ones are mapped up front (see `hold`).
    maps: BTreeMap<u32, Arc<Region>>,
    /// `pieces.idx`, opened at the first lazy read (`Some(None)`: the stream has none).
    pieces: Option<Option<File>>,
    /// The last bytes read from a segment kept elsewhere (see [`crate::remote`]): the
    /// source may have read ahead, so the next chunks may be in it already.
    fetched: Option<(u32, Arc<Region>)>,
}

/// How [`MappedRanges::next_with`] reads a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAs {
    /// Not at all (nothing read, nothing checked).
    Skip,
    /// The whole chunk, checked against its CRC32C.
    Whole,
    /// Packet by packet ([`LazyChunk::record_at`]), checking only the pieces they are in.
    Lazy,
}

/// A slice as [`MappedRanges::next_with`] read it.
pub enum Got {
    Skipped,
    Whole(Mapped),
    Lazy(LazyChunk),
}

/// A chunk whose header agrees with its index record, read packet by packet: the bytes
/// of a packet are handed out only once the pieces they lie in check out (or, for a
/// stream without piece checksums, the whole chunk).
pub struct LazyChunk {
    region: Arc<Region>,
    reader: StreamReader,
    slice: Slice,
    c: ChunkRecord,
    pieces: Option<crate::pieces::Pieces>,
    verified: Vec<bool>,
    whole: bool,
    checked: u64,
}

impl LazyChunk {
    /// Bytes of the chunk checked (and so read) so far.
    pub fn bytes_checked(&self) -> u64 {
        self.checked
    }

    fn damaged(&self, why: String) -> Error {
        Error::DamagedChunk {
            stream: self.reader.name().to_owned(),
            segment: layout::segment(self.c.segment),
            chunk: self.slice.chunk,
            offset: self.c.file_offset,
            why,
        }
    }

    /// Checks bytes `[from, to)` of the body.
    fn ensure(&mut self, from: u64, to: u64) -> Result<()> {
        if self.whole {
            return Ok(());
        }
        let region = self.region.clone();
        let body = region
            .get(self.c.body_offset(), u64::from(self.c.body_len))
            .unwrap_or(&[]);
        let Some(p) = &self.pieces else {
            let header = region.get(self.c.file_offset, CHUNK_HEADER_LEN as u64);
            check_chunk(&self.reader, self.slice.chunk, &self.c, header, Some(body))?;
            self.whole = true;
            self.checked += body.len() as u64;
            return Ok(());
        };
        for k in p.span(from, to) {
            if self.verified.get(k).copied().unwrap_or(true) {
                continue;
            }
            if !p.check(body, k) {
                return Err(self.damaged(format!(
                    "piece {k} ({} bytes at body offset {}) does not match its CRC32C",
                    p.piece_len(),
                    k as u64 * u64::from(p.piece_len())
                )));
            }
            self.verified[k] = true;
            let pl = u64::from(p.piece_len());
            self.checked += pl.min(body.len() as u64 - k as u64 * pl);
        }
        Ok(())
    }

    /// The packet whose record starts `off` bytes into the slice, its bytes checked.
    /// A position that is not a record of this chunk is a damaged index.
    pub fn record_at(&mut self, off: u64) -> Result<wirecap_pcap::Packet<'_>> {
        let start = self.slice.offset - self.c.body_offset() + off;
        let body_len = u64::from(self.c.body_len);
        let (stream, chunk) = (self.reader.name().to_owned(), self.slice.chunk);
        let bad = |why: &str| Error::DamagedIndex {
            stream: stream.clone(),
            file: layout::FLOWS.to_owned(),
            why: format!("position {off} of chunk {chunk}: {why}"),
        };
        if start + 16 > body_len {
            return Err(bad("past the chunk's end"));
        }
        self.ensure(start, start + 16)?;
        let body = self
            .region
            .get(self.c.body_offset(), body_len)
            .unwrap_or(&[]);
        let h = wirecap_pcap::RecordHeader::parse_le(&body[start as usize..])
            .ok_or_else(|| bad("no record header"))?;
        let end = start + h.record_len() as u64;
        if end > body_len
            || h.caplen > wirecap_pcap::MAX_PACKET_LEN
            || h.ts_ns() < self.c.first_ts
            || h.ts_ns() > self.c.last_ts
        {
            return Err(bad("not the start of a record"));
        }
        self.ensure(start, end)?;
        let body = self
            .region
            .get(self.c.body_offset(), body_len)
            .unwrap_or(&[]);
        wirecap_pcap::records(&body[start as usize..end as usize])
            .next()
            .ok_or_else(|| bad("no record"))
    }
}

/// Segments mapped when a range is opened: retention may trim the stream's head while a
/// long download runs, and a mapped file stays readable after it is unlinked.
const HELD_SEGMENTS: u32 = 64;

impl MappedRanges {
    pub(crate) fn new(reader: StreamReader, slices: Slices, first_segment: Option<u32>) -> Self {
        let mut maps = BTreeMap::new();
        if let Some(first) = first_segment {
            for n in first..first.saturating_add(HELD_SEGMENTS) {
                match map(&reader.dir().join(layout::segment(n))) {
                    Ok(Some(r)) => {
                        maps.insert(n, Arc::new(r));
                    }
                    _ => break,
                }
            }
        }
        Self {
            slices,
            reader,
            maps,
            pieces: None,
            fetched: None,
        }
    }

    /// The bytes of chunk `c` from the segment's source, when the segment is kept
    /// elsewhere and not on the local disk; `None` otherwise.
    fn fetch(&mut self, s: &Slice, c: &ChunkRecord) -> Option<Result<Arc<Region>>> {
        let len = CHUNK_HEADER_LEN as u64 + u64::from(c.body_len);
        if let Some((seg, r)) = &self.fetched
            && *seg == s.segment
            && r.get(c.file_offset, len).is_some()
        {
            return Some(Ok(r.clone()));
        }
        let path = self.reader.dir().join(layout::segment(s.segment));
        if path.exists() {
            return None;
        }
        let (src, _) = self.reader.remote(s.segment)?;
        let marker = self.reader.dir().join(crate::remote::marker(s.segment));
        Some(
            src.read(
                self.reader.dir(),
                self.reader.name(),
                s.segment,
                c.file_offset,
                len,
            )
            .at(&marker)
            .map(|v| {
                let r = Arc::new(Region {
                    backing: Backing::Heap(v),
                    base: c.file_offset,
                });
                self.fetched = Some((s.segment, r.clone()));
                r
            }),
        )
    }

    /// The piece checksums of chunk `i`, when the stream has a consistent record.
    fn pieces_of(&mut self, i: u64, c: &ChunkRecord) -> Option<crate::pieces::Pieces> {
        let dir = self.reader.dir().join(layout::PIECES);
        let f = self
            .pieces
            .get_or_insert_with(|| File::open(dir).ok())
            .as_ref()?;
        let mut b = vec![0u8; crate::pieces::RECORD_LEN];
        read_exact_at(f, &mut b, i * crate::pieces::RECORD_LEN as u64)
            .ok()
            .filter(|&whole| whole)?;
        crate::pieces::Pieces::decode(&b, c.body_len, c.body_crc)
    }

    fn region_for(&mut self, s: &Slice, c: &ChunkRecord) -> Result<Arc<Region>> {
        if let Some(r) = self.maps.get(&s.segment) {
            return Ok(r.clone());
        }
        if let Some(r) = self.fetch(s, c) {
            return r;
        }
        // Only the current segment stays mapped from here on: a long range must not hold
        // every file it passed.
        self.maps.retain(|n, _| *n > s.segment);
        let path = self.reader.dir().join(layout::segment(s.segment));
        let region = match self.reader.open_segment(s.segment).map(drop) {
            Err(e) => return Err(e),
            Ok(()) => match map(&path)? {
                Some(r) => r,
                None => {
                    let f = File::open(&path).at(&path)?;
                    let len = CHUNK_HEADER_LEN as u64 + u64::from(c.body_len);
                    let mut v = vec![0u8; len as usize];
                    if !read_exact_at(&f, &mut v, c.file_offset).at(&path)? {
                        v.clear();
                    }
                    let r = Arc::new(Region {
                        backing: Backing::Heap(v),
                        base: c.file_offset,
                    });
                    return Ok(r);
                }
            },
        };
        let r = Arc::new(region);
        self.maps.insert(s.segment, r.clone());
        Ok(r)
    }
}

/// Checks chunk `i` (record `c`) against the bytes of its segment: header fields equal
/// the record's, the body is whole and its CRC32C matches.
pub(crate) fn check_chunk(
    reader: &StreamReader,
    i: u64,
    c: &ChunkRecord,
    header: Option<&[u8]>,
    body: Option<&[u8]>,
) -> Result<()> {
    check_header(reader, i, c, header, body)?;
    let body = body.unwrap_or(&[]);
    let crc = crc32c::crc32c(body);
    if crc != c.body_crc {
        return Err(Error::DamagedChunk {
            stream: reader.name().to_owned(),
            segment: layout::segment(c.segment),
            chunk: i,
            offset: c.file_offset,
            why: format!(
                "CRC32C of its {} bytes is {crc:08x}, stored {:08x}",
                body.len(),
                c.body_crc
            ),
        });
    }
    Ok(())
}

/// Everything [`check_chunk`] checks but the CRC of the body.
fn check_header(
    reader: &StreamReader,
    i: u64,
    c: &ChunkRecord,
    header: Option<&[u8]>,
    body: Option<&[u8]>,
) -> Result<()> {
    let damaged = |why: String| Error::DamagedChunk {
        stream: reader.name().to_owned(),
        segment: layout::segment(c.segment),
        chunk: i,
        offset: c.file_offset,
        why,
    };
    let Some(h) = header.and_then(|h| <&[u8; CHUNK_HEADER_LEN]>::try_from(h).ok()) else {
        return Err(damaged("the segment file ends before the chunk".into()));
    };
    let Some(h) = ChunkHeader::decode(h) else {
        return Err(damaged(
            "no chunk header where the index says one is".into(),
        ));
    };
    if (h.body_len, h.packets, h.body_crc, h.first_ts, h.last_ts)
        != (c.body_len, c.packets, c.body_crc, c.first_ts, c.last_ts)
    {
        return Err(damaged(
            "the chunk header disagrees with its index record".into(),
        ));
    }
    if body.is_none() {
        return Err(damaged("the segment file ends inside the chunk".into()));
    }
    Ok(())
}

impl MappedRanges {
    /// The range this iterates over.
    pub fn range(&self) -> crate::PacketRange {
        self.slices.asked()
    }

    /// The next slice with its verified bytes, or without them (nothing read, nothing
    /// checked) when `skip` says the caller does not want the chunk (a filter that its
    /// summary rules out).
    pub fn next_unless<F>(&mut self, skip: F) -> Option<Result<(Slice, Option<Mapped>)>>
    where
        F: FnOnce(&Slice) -> bool,
    {
        self.next_with(|s| if skip(s) { ReadAs::Skip } else { ReadAs::Whole })
            .map(|r| {
                r.map(|(s, g)| match g {
                    Got::Whole(m) => (s, Some(m)),
                    _ => (s, None),
                })
            })
    }

    /// The next slice, read as `how` says.
    pub fn next_with<F>(&mut self, how: F) -> Option<Result<(Slice, Got)>>
    where
        F: FnOnce(&Slice) -> ReadAs,
    {
        let (s, c) = match self.slices.next_with_record()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let how = how(&s);
        if how == ReadAs::Skip {
            return Some(Ok((s, Got::Skipped)));
        }
        let region = match self.region_for(&s, &c) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let header = region.get(c.file_offset, CHUNK_HEADER_LEN as u64);
        let body = region.get(c.body_offset(), u64::from(c.body_len));
        if how == ReadAs::Lazy {
            region.advise_random(
                c.file_offset,
                CHUNK_HEADER_LEN as u64 + u64::from(c.body_len),
            );
            if let Err(e) = check_header(&self.reader, s.chunk, &c, header, body) {
                return Some(Err(e));
            }
            let pieces = self.pieces_of(s.chunk, &c);
            let n = pieces
                .as_ref()
                .map_or(0, |p| c.body_len.div_ceil(p.piece_len()) as usize);
            return Some(Ok((
                s,
                Got::Lazy(LazyChunk {
                    region,
                    reader: self.reader.clone(),
                    slice: s,
                    c,
                    pieces,
                    verified: vec![false; n],
                    whole: false,
                    checked: 0,
                }),
            )));
        }
        if let Err(mut e) = check_chunk(&self.reader, s.chunk, &c, header, body) {
            if let (Error::DamagedChunk { why, .. }, Some((seg, _))) = (&mut e, &self.fetched)
                && *seg == s.segment
                && !self.maps.contains_key(&s.segment)
            {
                why.push_str("; these bytes were read from the archive's copy of the segment");
            }
            return Some(Err(e));
        }
        let start = (s.offset - region.base) as usize;
        Some(Ok((
            s,
            Got::Whole(Mapped {
                region,
                start,
                len: s.len as usize,
            }),
        )))
    }
}

impl Iterator for MappedRanges {
    type Item = Result<(Slice, Mapped)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_unless(|_| false)
            .map(|r| r.map(|(s, m)| (s, m.expect("not skipped"))))
    }
}
