//! Checking a whole stream against its segments, and rebuilding its index from them.
//!
//! Segments are self-describing: every chunk starts with a header holding its length,
//! packet count, time range and the CRC32C of its records, so the index files can be
//! derived again from the segments alone. [`Store::verify`] does that derivation and
//! compares it with the index on disk; [`Store::rebuild_index`] writes it in place of
//! the index. A chunk whose bytes fail their CRC is left out of a rebuilt index (its
//! packets are lost, the others stay readable) and its header is defaced so that it is
//! not taken for a chunk again.
//!
//! Segments are read with `pread`, not mapped: these walks go past what the index names,
//! where a writer may still cut a failed append.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::chunk::{CHUNK_HEADER_LEN, CHUNK_MAGIC, ChunkHeader, record_lengths};
use crate::error::{Error, IoContext, Result};
use crate::head::{self, Head};
use crate::index::{CHUNK_RECORD_LEN, ChunkRecord, Indexer, MARK_LEN, Mark, Marks, SIZE_LEVELS};
use crate::layout;
use crate::meta::{StreamMeta, sync_dir};
use crate::writer::{ChunkSummarizer, read_exact_at};
use crate::{Store, StreamState};

/// Bytes over which a damaged region is searched for the next chunk header at a time.
const WINDOW: usize = 1 << 20;
/// Problems listed per kind before the rest are only counted.
const MAX_LISTED: usize = 20;

/// What [`Store::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chunks found whole and intact in the segments.
    pub chunks: u64,
    pub packets: u64,
    /// Bytes of segment files read.
    pub bytes: u64,
    /// One line per problem; empty when the stream is intact.
    pub problems: Vec<String>,
}

/// What [`Store::rebuild_index`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebuild {
    pub chunks: u64,
    pub packets: u64,
    /// Damaged chunks left out of the new index.
    pub chunks_dropped: u64,
}

/// The index as the segments say it should be.
struct Derived {
    records: Vec<ChunkRecord>,
    marks: Marks,
    summaries: Vec<u8>,
    problems: Vec<String>,
    /// Offsets `(segment, offset)` of chunks with a header but damaged records.
    damaged: Vec<(u32, u64)>,
    bytes: u64,
}

/// Reads marks of a file, `None` when it is missing.
fn read_marks(path: &Path) -> Result<Option<(Vec<Mark>, u64)>> {
    match fs::read(path) {
        Ok(b) => Ok(Some((
            b.chunks_exact(MARK_LEN)
                .map(|m| Mark::decode(m.try_into().expect("chunks_exact")))
                .collect(),
            b.len() as u64,
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

/// Marks of `file` before the head (dead, kept as they are) when they are in order and
/// all before it; otherwise none.
fn dead_marks(dir: &Path, file: &str, head: &Head) -> Result<Vec<Mark>> {
    if head.packet == 0 {
        return Ok(Vec::new());
    }
    let marks = read_marks(&dir.join(file))?.map_or(Vec::new(), |(m, _)| m);
    let dead: Vec<Mark> = marks
        .into_iter()
        .take_while(|m| m.packet < head.packet)
        .collect();
    let ordered = dead
        .windows(2)
        .all(|w| w[1].key > w[0].key && w[1].packet > w[0].packet && w[1].pos > w[0].pos);
    Ok(if ordered { dead } else { Vec::new() })
}

/// An indexer that continues after the head as the original did, as far as the dead
/// marks still tell.
fn indexer_at_head(dir: &Path, head: &Head) -> Result<Indexer> {
    let last_sec = dead_marks(dir, layout::TIME, head)?.last().map(|m| m.key);
    let mut starts = [0u64; SIZE_LEVELS.len()];
    for (i, s) in starts.iter_mut().enumerate() {
        *s = dead_marks(dir, &layout::size_file(i), head)?
            .last()
            .map_or(0, |m| m.pos);
    }
    Ok(Indexer::resume(head.packet, head.pos, last_sec, starts))
}

/// Why the bytes at `at` of `f` (a segment of `len` bytes) are not a valid chunk
/// following one that ended at `last_ts`, or the chunk.
fn chunk_at(
    f: &File,
    path: &Path,
    at: u64,
    len: u64,
    last_ts: Option<u64>,
) -> Result<std::result::Result<(ChunkHeader, Vec<u8>), String>> {
    let mut h = [0u8; CHUNK_HEADER_LEN];
    if !read_exact_at(f, &mut h, at).at(path)? {
        return Ok(Err("a torn chunk header".into()));
    }
    let Some(hdr) = ChunkHeader::decode(&h) else {
        return Ok(Err("no chunk header".into()));
    };
    let end = at + CHUNK_HEADER_LEN as u64 + u64::from(hdr.body_len);
    if end > len {
        return Ok(Err(format!(
            "a chunk of {} bytes that the file ends inside",
            hdr.body_len
        )));
    }
    let mut body = vec![0u8; hdr.body_len as usize];
    if !read_exact_at(f, &mut body, at + CHUNK_HEADER_LEN as u64).at(path)? {
        return Ok(Err("a chunk cut short".into()));
    }
    let crc = crc32c::crc32c(&body);
    if crc != hdr.body_crc {
        return Ok(Err(format!(
            "a chunk whose records fail their CRC32C ({crc:08x}, stored {:08x})",
            hdr.body_crc
        )));
    }
    let (mut n, mut bytes, mut prev) = (0u64, 0u64, hdr.first_ts);
    for (ts, l) in record_lengths(&body) {
        if ts < prev || ts > hdr.last_ts {
            return Ok(Err("a chunk whose records are out of time order".into()));
        }
        prev = ts;
        n += 1;
        bytes += l;
    }
    if n != u64::from(hdr.packets) || bytes != u64::from(hdr.body_len) {
        return Ok(Err(
            "a chunk whose records do not add up to its header".into()
        ));
    }
    if last_ts.is_some_and(|t| hdr.first_ts < t) {
        return Ok(Err("a chunk older than the one before it".into()));
    }
    Ok(Ok((hdr, body)))
}

/// The magic a rebuild writes over the header of a damaged chunk it left out.
const DEFACED: [u8; 4] = *b"WCKX";

/// The length (header included) of a chunk defaced by an earlier rebuild at `at`.
fn defaced_len(f: &File, path: &Path, at: u64) -> Result<Option<u64>> {
    let mut h = [0u8; CHUNK_HEADER_LEN];
    if !read_exact_at(f, &mut h, at).at(path)? || h[..4] != DEFACED {
        return Ok(None);
    }
    h[..4].copy_from_slice(&CHUNK_MAGIC);
    Ok(ChunkHeader::decode(&h).map(|hdr| CHUNK_HEADER_LEN as u64 + u64::from(hdr.body_len)))
}

/// The next offset after `from`, a multiple of `align`, where the chunk magic is.
fn find_magic(f: &File, path: &Path, from: u64, len: u64, align: u64) -> Result<Option<u64>> {
    let mut at = from.div_ceil(align) * align;
    let mut buf = vec![0u8; WINDOW + CHUNK_MAGIC.len()];
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], at).at(path)?;
        let mut i = 0usize;
        while i + CHUNK_MAGIC.len() <= n {
            if buf[i..i + CHUNK_MAGIC.len()] == CHUNK_MAGIC {
                return Ok(Some(at + i as u64));
            }
            i += align as usize;
        }
        at += (WINDOW as u64).div_ceil(align) * align;
    }
    Ok(None)
}

fn all_zero(f: &File, path: &Path, from: u64, len: u64) -> Result<bool> {
    let mut buf = vec![0u8; WINDOW];
    let mut at = from;
    while at < len {
        let n = ((len - at) as usize).min(WINDOW);
        f.read_exact_at(&mut buf[..n], at).at(path)?;
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Derives the index of the live part of a stream from its segments.
fn derive(
    dir: &Path,
    meta: &StreamMeta,
    head: &Head,
    summarizer: Option<&dyn ChunkSummarizer>,
    progress: &mut dyn FnMut(u64),
) -> Result<Derived> {
    let mut ix = indexer_at_head(dir, head)?;
    let mut d = Derived {
        records: Vec::new(),
        marks: Marks::default(),
        summaries: Vec::new(),
        problems: Vec::new(),
        damaged: Vec::new(),
        bytes: 0,
    };
    let align = meta.align();
    let link = wirecap_pcap::LinkType(meta.link_type);
    let mut sum = vec![0u8; summarizer.map_or(0, |s| s.summary_len())];
    let mut last_ts = None;
    let mut expect = head.segment;
    for (n, len) in head::segment_files(dir)? {
        if n < head.segment {
            continue;
        }
        if n != expect {
            d.problems.push(format!(
                "{} to {} are missing",
                layout::segment(expect),
                layout::segment(n - 1)
            ));
        }
        expect = n + 1;
        let path = dir.join(layout::segment(n));
        let f = File::open(&path).at(&path)?;
        let mut at = 0u64;
        while at + CHUNK_HEADER_LEN as u64 <= len {
            match chunk_at(&f, &path, at, len, last_ts)? {
                Ok((hdr, body)) => {
                    let saved = ix.clone();
                    for (ts, l) in record_lengths(&body) {
                        ix.observe(ts, l, &mut d.marks);
                    }
                    d.records.push(ChunkRecord {
                        pos: saved.pos(),
                        first_packet: saved.packets(),
                        first_ts: hdr.first_ts,
                        last_ts: hdr.last_ts,
                        file_offset: at,
                        segment: n,
                        body_len: hdr.body_len,
                        packets: hdr.packets,
                        body_crc: hdr.body_crc,
                    });
                    if let Some(s) = summarizer {
                        s.summarize(link, &body, &mut sum);
                        d.summaries.extend_from_slice(&sum);
                    }
                    last_ts = Some(hdr.last_ts);
                    at = (at + CHUNK_HEADER_LEN as u64 + u64::from(hdr.body_len)).div_ceil(align)
                        * align;
                }
                Err(why) => {
                    if all_zero(&f, &path, at, len)? {
                        break;
                    }
                    if let Some(skip) = defaced_len(&f, &path, at)? {
                        // Dropped by an earlier rebuild: known, not a new problem.
                        at = (at + skip).div_ceil(align) * align;
                        continue;
                    }
                    let mut h = [0u8; CHUNK_HEADER_LEN];
                    if read_exact_at(&f, &mut h, at).at(&path)? && ChunkHeader::decode(&h).is_some()
                    {
                        d.damaged.push((n, at));
                    }
                    d.problems.push(format!(
                        "{} offset {at}: {why}; its packets are lost",
                        layout::segment(n)
                    ));
                    match find_magic(&f, &path, at + 1, len, align)? {
                        Some(next) => at = next,
                        None => break,
                    }
                }
            }
        }
        d.bytes += len;
        progress(d.bytes);
    }
    Ok(d)
}

/// Compares the records `[from, ..)` of an index file with what the segments say;
/// returns problem lines.
fn compare<T: PartialEq + std::fmt::Debug>(
    file: &str,
    found: &[Option<T>],
    want: &[T],
    what: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = 0usize;
    for (i, w) in want.iter().enumerate() {
        let ok = found.get(i).is_some_and(|f| f.as_ref() == Some(w));
        if !ok {
            differ += 1;
            if differ <= MAX_LISTED {
                out.push(match found.get(i) {
                    None => format!("{file}: {what} {i} is missing (the segments hold {w:?})"),
                    Some(None) => format!("{file}: {what} {i} is damaged (fails its CRC)"),
                    Some(Some(f)) => {
                        format!("{file}: {what} {i} is {f:?}, but the segments say {w:?}")
                    }
                });
            }
        }
    }
    if found.len() > want.len() {
        out.push(format!(
            "{file}: {} {what}s more than the segments hold",
            found.len() - want.len()
        ));
    }
    if differ > MAX_LISTED {
        out.push(format!(
            "{file}: {} more {what}s differ",
            differ - MAX_LISTED
        ));
    }
    out
}

fn tmp_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(format!(".{file}.rebuild"))
}

/// Writes `bytes` to `.FILE.rebuild` and syncs it (renamed over `file` afterwards).
fn write_tmp(dir: &Path, file: &str, bytes: &[u8]) -> Result<()> {
    let p = tmp_path(dir, file);
    let mut f = File::create(&p).at(&p)?;
    f.write_all(bytes).at(&p)?;
    f.sync_data().at(&p)
}

impl Store {
    /// Checks every chunk of stream `name` (header and CRC32C) and every index file
    /// against what the segments hold. `progress` is called with the segment bytes read
    /// so far. A stream being written is checked up to what its index names.
    pub fn verify(&self, name: &str, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport> {
        let dir = self.stream_dir_checked(name)?;
        let mut report = VerifyReport::default();
        let meta = match StreamMeta::load(&dir) {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(format!("meta.json: {e}"));
                return Ok(report);
            }
        };
        if let Err(e) = self.open_stream(name) {
            report.problems.push(e.to_string());
        }
        let head = match Head::load(&dir) {
            Ok(h) => h,
            Err(e) => {
                report.problems.push(e.to_string());
                Head::default()
            }
        };
        let d = derive(&dir, &meta, &head, None, progress)?;
        report.bytes = d.bytes;
        report.chunks = d.records.len() as u64;
        report.packets = d.records.iter().map(|r| u64::from(r.packets)).sum();
        report.problems.extend(d.problems);

        let cpath = dir.join(layout::CHUNKS);
        let raw = fs::read(&cpath).unwrap_or_default();
        let mut found: Vec<Option<ChunkRecord>> = raw
            .chunks(CHUNK_RECORD_LEN)
            .skip(head.chunk as usize)
            .map(|b| b.try_into().ok().and_then(ChunkRecord::decode))
            .collect();
        let sealed = meta.state != StreamState::Open;
        let mut want = d.records;
        if !sealed {
            // A writer may be ahead of its index: compare what the index names.
            want.truncate(found.len());
            found.truncate(want.len());
        }
        let indexed_end = want.last().map_or(head.packet, |r| r.end_packet());
        report
            .problems
            .extend(compare(layout::CHUNKS, &found, &want, "chunk record"));
        if sealed && !raw.len().is_multiple_of(CHUNK_RECORD_LEN) {
            report.problems.push(format!(
                "{}: {} bytes is not a whole number of records",
                layout::CHUNKS,
                raw.len()
            ));
        }
        let files = std::iter::once((layout::TIME.to_owned(), &d.marks.time))
            .chain((0..SIZE_LEVELS.len()).map(|i| (layout::size_file(i), &d.marks.size[i])));
        for (file, want) in files {
            let want: Vec<Mark> = want
                .iter()
                .copied()
                .filter(|m| m.packet < indexed_end)
                .collect();
            match read_marks(&dir.join(&file))? {
                None => report.problems.push(format!("{file}: missing")),
                Some((marks, len)) => {
                    if sealed && !len.is_multiple_of(MARK_LEN as u64) {
                        report.problems.push(format!(
                            "{file}: {len} bytes is not a whole number of marks"
                        ));
                    }
                    let live: Vec<Option<Mark>> = marks
                        .into_iter()
                        .skip_while(|m| m.packet < head.packet)
                        .filter(|m| sealed || m.packet < indexed_end)
                        .map(Some)
                        .collect();
                    report.problems.extend(compare(&file, &live, &want, "mark"));
                }
            }
        }
        Ok(report)
    }

    /// Rebuilds every index file of stream `name` from its segments (see the module
    /// doc). Takes the stream's writer lock: refused while a writer holds it. With
    /// `summarizer`, chunk summaries are rebuilt too; without one, they are removed.
    pub fn rebuild_index(
        &self,
        name: &str,
        summarizer: Option<&dyn ChunkSummarizer>,
    ) -> Result<Rebuild> {
        let dir = self.stream_dir_checked(name)?;
        if crate::remote::any_remote(&dir) {
            // Its segments are not all here: a rebuild from what is would drop them.
            return Err(Error::Invalid(format!(
                "stream {name:?}: some of its segments are kept in the archive; its index is not rebuilt from the local disk"
            )));
        }
        let mut meta = StreamMeta::load(&dir)?;
        let _lock = layout::lock(&dir, name)?;
        let head = Head::load(&dir)?;
        let summarizer = summarizer
            .filter(|s| meta.summary_len > 0 && s.summary_len() == meta.summary_len as usize);
        let d = derive(&dir, &meta, &head, summarizer, &mut |_| {})?;

        // Dead entries before the head keep their places, so that packet numbers and
        // the head's chunk index stay what they were.
        let cpath = dir.join(layout::CHUNKS);
        let mut chunks = fs::read(&cpath).unwrap_or_default();
        chunks.resize(head.chunk as usize * CHUNK_RECORD_LEN, 0);
        for r in &d.records {
            chunks.extend_from_slice(&r.encode());
        }
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let enc = |dead: Vec<Mark>, live: &[Mark]| -> Vec<u8> {
            dead.iter().chain(live).flat_map(|m| m.encode()).collect()
        };
        files.push((
            layout::TIME.to_owned(),
            enc(dead_marks(&dir, layout::TIME, &head)?, &d.marks.time),
        ));
        for i in 0..SIZE_LEVELS.len() {
            let f = layout::size_file(i);
            let dead = dead_marks(&dir, &f, &head)?;
            files.push((f, enc(dead, &d.marks.size[i])));
        }
        let spath = dir.join(layout::SUMMARY);
        if let Some(s) = summarizer {
            let mut sums = fs::read(&spath).unwrap_or_default();
            sums.resize(head.chunk as usize * s.summary_len(), 0);
            sums.extend_from_slice(&d.summaries);
            files.push((layout::SUMMARY.to_owned(), sums));
        }
        files.push((layout::CHUNKS.to_owned(), chunks));
        for (f, bytes) in &files {
            write_tmp(&dir, f, bytes)?;
        }
        if summarizer.is_none() {
            match fs::remove_file(&spath) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(&spath),
            }
            meta.summary_len = 0;
        }
        // Packet numbers and chunk numbers may change with the chunks left out: the flow
        // index (`wirecap reindex` builds it again) and the piece checksums (reads then
        // check whole chunks) go.
        for f in [layout::FLOWS, layout::FLOWS_LUT, layout::PIECES] {
            let p = dir.join(f);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(&p),
            }
        }
        // chunks.idx last: until it is replaced, readers see the old index whole.
        for (f, _) in &files {
            let to = dir.join(f);
            fs::rename(tmp_path(&dir, f), &to).at(&to)?;
        }
        // A damaged chunk keeps a valid header; deface it so that it is not taken for
        // the chunk after the index's last.
        for (n, at) in &d.damaged {
            let p = dir.join(layout::segment(*n));
            let f = OpenOptions::new().write(true).open(&p).at(&p)?;
            f.write_all_at(&DEFACED, *at).at(&p)?;
            f.sync_data().at(&p)?;
        }
        meta.store(&dir)?;
        sync_dir(&dir)?;
        Ok(Rebuild {
            chunks: d.records.len() as u64,
            packets: d.records.iter().map(|r| u64::from(r.packets)).sum(),
            chunks_dropped: d.damaged.len() as u64,
        })
    }

    fn stream_dir_checked(&self, name: &str) -> Result<PathBuf> {
        crate::validate_stored_name(name)?;
        let dir = self.dir().join(layout::STREAMS_DIR).join(name);
        if !dir.is_dir() {
            return Err(Error::NoSuchStream(name.to_owned()));
        }
        Ok(dir)
    }
}
