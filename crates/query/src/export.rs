//! Filtered exports: a range of a stream, or a capture file, through a filter.

use std::io::{Read, Write};
use std::sync::Arc;

use serde::Serialize;
use wirecap_pcap::{
    CaptureReader, LinkType, MAX_PACKET_LEN, PCAP_NS_HEADER_LEN, Packet, PcapngWriter,
    pcap_ns_header, pcap_record_header,
};
use wirecap_store::{Got, Mapped, MappedRanges, PacketRange, ReadAs, StreamReader};

use crate::{Error, Filter, Result, packet_ts};

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// pcap with nanosecond timestamps (magic `a1b23c4d`).
    Pcap,
    /// pcapng, one interface, nanosecond timestamps.
    Pcapng,
}

/// What an export did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportStats {
    /// Packets looked at (in chunks that were read).
    pub packets_examined: u64,
    /// Packets written.
    pub packets: u64,
    /// Bytes written (file header included).
    pub bytes: u64,
    pub chunks_read: u64,
    pub chunks_skipped: u64,
    pub bytes_read: u64,
    pub bytes_skipped: u64,
    /// The stream's flow index chose what was read.
    pub index_used: bool,
    /// Bytes of the flow index (`flows.idx`, `flows.lut`) read to choose.
    pub index_bytes_read: u64,
}

/// Filtered pcap output is gathered into a buffer this large before each write.
const OUT_BUF: usize = 4 << 20;

/// Appends pcap-ns records to a large buffer and writes it out in big pieces: one
/// syscall per few megabytes, never per packet.
struct RecordBuf<'a, W: Write> {
    buf: Vec<u8>,
    out: &'a mut W,
    written: u64,
    err: Option<std::io::Error>,
}

impl<'a, W: Write> RecordBuf<'a, W> {
    fn new(out: &'a mut W, header: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(OUT_BUF + MAX_PACKET_LEN as usize + 64);
        buf.extend_from_slice(header);
        Self {
            buf,
            out,
            written: 0,
            err: None,
        }
    }

    /// False when the output failed (the error is kept).
    #[inline]
    fn push(&mut self, p: &Packet<'_>) -> bool {
        // Records from the store and from a pcap reader have 32-bit seconds already; a
        // pcapng timestamp after 2106 cannot be written as pcap.
        let Ok(sec) = u32::try_from(p.ts_sec) else {
            self.err = Some(std::io::Error::other(format!(
                "packet time {} s is after 2106 and cannot be written as pcap",
                p.ts_sec
            )));
            return false;
        };
        let len = p.data.len() as u32;
        self.buf
            .extend_from_slice(&pcap_record_header(sec, p.ts_nsec, len, p.orig_len));
        self.buf.extend_from_slice(p.data);
        if self.buf.len() >= OUT_BUF {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if let Err(e) = self.out.write_all(&self.buf) {
            self.err = Some(e);
            return false;
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        true
    }

    fn finish(mut self) -> Result<u64> {
        if self.err.is_none() {
            self.flush();
        }
        match self.err {
            Some(e) => Err(Error::Output(e)),
            None => Ok(self.written),
        }
    }
}

/// Writes the packets of `range` that match `filter` (all of them without one) to `out`
/// as `format` (see [`Export`]).
pub fn export<W: Write>(
    reader: &StreamReader,
    range: PacketRange,
    filter: Option<&Filter>,
    format: Format,
    out: &mut W,
) -> Result<ExportStats> {
    Export::new(reader.clone(), range, format, filter.cloned()).write_to(out)
}

/// Whether filtered exports use flow indexes by default (`WIRECAP_QUERY_INDEX=off`
/// makes them scan, for comparing the two).
pub fn query_index_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("WIRECAP_QUERY_INDEX").map_or(true, |v| v != "off"))
}

/// Whether indexed queries go through the lookup tables of the flow index
/// (`WIRECAP_QUERY_INDEX=full` reads every fragment record instead, for comparing the
/// two; the answers are the same).
pub fn lookup_tables_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("WIRECAP_QUERY_INDEX").map_or(true, |v| v != "full"))
}

/// Bytes per piece of a filtered or pcapng export.
pub const PIECE: usize = 1 << 20;

/// One export of a range of a stream, filtered (or not) and formatted: what `wirecap
/// export` writes to a file and what an HTTP download streams. Both filter languages
/// are compiled into one [`Filter`] by [`compile`](crate::compile), which ANDs them when
/// both are given.
///
/// Its bytes come out as [`Pieces`], an iterator that does the work as it is pulled (a
/// slow consumer slows the export, nothing piles up): unfiltered pcap pieces are the
/// store's verified, mapped chunk bytes, without a copy; filtered or pcapng pieces are
/// buffers of about [`PIECE`] bytes. Every chunk read is checked against its CRC32C;
/// a damaged one ends the pieces with an error naming it.
///
/// With a filter, where the stream has a flow index ([`crate::flows`]), only the chunks
/// holding packets of the flows the filter may match are read, and only those packets
/// are tested ([`ExportStats::index_used`]); parts the index does not cover are scanned.
/// Either way the output is, byte for byte, what the scan gives.
#[derive(Clone)]
pub struct Export {
    reader: StreamReader,
    range: PacketRange,
    format: Format,
    filter: Option<Filter>,
    /// Exactly these packets (by logical position, sorted), for one flow's export.
    selected: Option<Arc<Vec<u64>>>,
    use_index: bool,
}

impl Export {
    pub fn new(
        reader: StreamReader,
        range: PacketRange,
        format: Format,
        filter: Option<Filter>,
    ) -> Self {
        Self {
            reader,
            range,
            format,
            filter,
            selected: None,
            use_index: query_index_enabled(),
        }
    }

    /// The packets of `range` at the logical positions `positions` (sorted), e.g. one
    /// flow's (see [`crate::flow_export`]).
    pub fn selected(
        reader: StreamReader,
        range: PacketRange,
        format: Format,
        positions: Vec<u64>,
    ) -> Self {
        Self {
            selected: Some(Arc::new(positions)),
            ..Self::new(reader, range, format, None)
        }
    }

    /// Whether a filtered export may use the stream's flow index (on by default; off
    /// scans, as streams without an index always do). The output is the same.
    pub fn with_index(mut self, on: bool) -> Self {
        self.use_index = on;
        self
    }

    /// The exact size of the output, when it is known before it is written (pcap
    /// without a filter): a `Content-Length`, and what byte ranges are taken from.
    pub fn exact_len(&self) -> Option<u64> {
        (self.format == Format::Pcap && self.filter.is_none() && self.selected.is_none())
            .then(|| self.range.pcap_bytes())
    }

    /// What to read for a filtered export with the flow index: the positions of the
    /// packets of the flows the filter may match, and the byte ranges the index does not
    /// cover (scanned). `None`: no index (or it could not be read): scan.
    fn plan(&self) -> Option<Selection> {
        if let Some(p) = &self.selected {
            return Some(Selection {
                positions: p.clone(),
                next: 0,
                prefetched: 0,
                scan: Vec::new(),
                at: self.range.start_pos.max(self.reader.head().pos),
                index_bytes: 0,
            });
        }
        let filter = self.filter.as_ref().filter(|_| self.use_index)?;
        let (start, end) = (
            self.range.start_pos.max(self.reader.head().pos),
            self.range.end_pos,
        );
        let index =
            crate::flows::load_index(&self.reader, Some(filter), Some((start, end))).ok()??;
        let mut scan = Vec::new();
        let mut at = start;
        for (a, b) in index.covered() {
            let (a, b) = (a.max(start), b.min(end));
            if a >= b {
                continue;
            }
            if a > at {
                scan.push((at, a));
            }
            at = at.max(b);
        }
        if at < end {
            scan.push((at, end));
        }
        let lt = self.reader.link_type().0;
        let mut positions: Vec<u64> = Vec::new();
        for (i, f) in index.fragments.iter().enumerate() {
            let h = &index.blocks[index.block_of[i] as usize];
            if h.cover_end_pos <= start || h.cover_start_pos >= end {
                continue;
            }
            let facts = crate::flows::FragmentFacts {
                fragment: f,
                linktype: lt,
            };
            if filter.may_match_facts(&facts) {
                positions.extend(index.positions(i).filter(|p| (start..end).contains(p)));
            }
        }
        positions.sort_unstable();
        positions.dedup();
        Some(Selection {
            positions: Arc::new(positions),
            next: 0,
            prefetched: 0,
            scan,
            at: start,
            index_bytes: index.bytes_read,
        })
    }

    /// The whole output.
    pub fn pieces(&self) -> Pieces {
        self.pieces_inner(0, u64::MAX)
    }

    /// Bytes `[skip, skip + take)` of the output, reading only the chunks they are in
    /// (a `Range` request). Only for an export whose [`exact_len`](Self::exact_len) is
    /// known.
    pub fn byte_range(&self, skip: u64, take: u64) -> Result<Pieces> {
        if self.exact_len().is_none() {
            return Err(Error::Invalid(
                "byte ranges exist only for unfiltered pcap exports".into(),
            ));
        }
        Ok(self.pieces_inner(skip, take))
    }

    fn pieces_inner(&self, skip: u64, take: u64) -> Pieces {
        let link = self.reader.link_type();
        let snaplen = self.reader.meta().snaplen;
        let out = match (self.format, &self.filter) {
            (Format::Pcap, None) if self.selected.is_none() => Out::Raw {
                header: pcap_ns_header(link, snaplen).to_vec(),
                skip,
                end: skip.saturating_add(take),
                pos: 0,
            },
            (Format::Pcap, _) => Out::Pcap(pcap_ns_header(link, snaplen).to_vec()),
            (Format::Pcapng, _) => {
                match PcapngWriter::new(Vec::with_capacity(PIECE * 2), link, snaplen) {
                    Ok(w) => Out::Pcapng(Box::new(w)),
                    Err(e) => Out::Failed(Some(Error::Output(e))),
                }
            }
        };
        // An unfiltered range needs no summaries: nothing is skipped.
        let summaries = match &self.filter {
            Some(_) => self.reader.summary_file(),
            None => None,
        };
        let sel = self.plan();
        let stats = ExportStats {
            index_used: sel.is_some() && self.selected.is_none(),
            index_bytes_read: sel.as_ref().map_or(0, |s| s.index_bytes),
            ..ExportStats::default()
        };
        Pieces {
            ranges: self.reader.mapped(self.range),
            reader: self.reader.clone(),
            filter: self.filter.clone(),
            out,
            summaries,
            stats,
            done: false,
            header_sent: false,
            sel,
        }
    }

    /// Writes the whole output to `out`.
    pub fn write_to<W: Write>(&self, out: &mut W) -> Result<ExportStats> {
        let mut p = self.pieces();
        for piece in p.by_ref() {
            out.write_all(&piece?).map_err(Error::Output)?;
        }
        out.flush().map_err(Error::Output)?;
        Ok(p.stats())
    }

    /// The whole output as a `Read`.
    pub fn reader(&self) -> ExportReader {
        ExportReader {
            pieces: self.pieces(),
            cur: None,
        }
    }
}

/// A piece of an export's output: mapped store bytes or a buffer of ours. `Send +
/// 'static` and `AsRef<[u8]>`, so it can back a `bytes::Bytes` without a copy.
#[derive(Debug)]
pub enum Piece {
    Mapped(Mapped),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Piece {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

enum Out {
    /// Unfiltered pcap: the header, then mapped chunk bytes, clipped to `[skip, end)`.
    Raw {
        header: Vec<u8>,
        skip: u64,
        end: u64,
        pos: u64,
    },
    /// Filtered pcap records gathered here.
    Pcap(Vec<u8>),
    Pcapng(Box<PcapngWriter<Vec<u8>>>),
    Failed(Option<Error>),
}

/// The output of an [`Export`], piece by piece (see there).
pub struct Pieces {
    ranges: MappedRanges,
    /// The stream, for reading candidates ahead.
    reader: StreamReader,
    filter: Option<Filter>,
    out: Out,
    summaries: Option<(std::fs::File, usize)>,
    stats: ExportStats,
    done: bool,
    header_sent: bool,
    sel: Option<Selection>,
}

/// Candidate packets read ahead at a time by an indexed export: enough to keep a disk's
/// queue full, little enough for the page cache to hold until they are read.
const PREFETCH_WINDOW: usize = 4096;

/// The packets an export reads through the flow index (see [`Export::plan`]).
struct Selection {
    /// Logical positions of the candidate packets, sorted.
    positions: Arc<Vec<u64>>,
    /// First of `positions` not yet passed.
    next: usize,
    /// End of the positions already asked of the kernel ([`PREFETCH_WINDOW`]).
    prefetched: usize,
    /// Byte ranges the index does not cover: scanned.
    scan: Vec<(u64, u64)>,
    /// Logical position where the next slice starts.
    at: u64,
    /// Bytes of the index read to plan it.
    index_bytes: u64,
}

impl Selection {
    /// Whether the slice `[at, at + len)` must be scanned whole, and whether it holds
    /// a candidate.
    fn look(&self, len: u64) -> (bool, bool) {
        let (a, b) = (self.at, self.at + len);
        let scan = self.scan.iter().any(|&(x, y)| x < b && a < y);
        let cand = self.positions.get(self.next).is_some_and(|&p| p < b);
        (scan, cand)
    }
}

impl Pieces {
    /// What was exported so far (all of it once the iterator is exhausted).
    pub fn stats(&self) -> ExportStats {
        self.stats
    }

    fn fail(&mut self, e: Error) -> Option<Result<Piece>> {
        self.done = true;
        Some(Err(e))
    }

    fn next_raw(&mut self) -> Option<Result<Piece>> {
        let Out::Raw {
            header,
            skip,
            end,
            pos,
        } = &mut self.out
        else {
            unreachable!("raw output")
        };
        let (skip, end) = (*skip, *end);
        let clip = |a: u64, len: u64| -> Option<(usize, usize)> {
            let from = skip.max(a);
            let to = end.min(a + len);
            (from < to).then(|| ((from - a) as usize, (to - a) as usize))
        };
        if !self.header_sent {
            self.header_sent = true;
            *pos = header.len() as u64;
            self.stats.bytes += header.len() as u64;
            if let Some((a, b)) = clip(0, header.len() as u64) {
                return Some(Ok(Piece::Owned(header[a..b].to_vec())));
            }
        }
        loop {
            if *pos >= end {
                return None;
            }
            let (s, m) = match self.ranges.next()? {
                Ok(x) => x,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            };
            let here = *pos;
            *pos += s.len;
            self.stats.chunks_read += 1;
            self.stats.bytes_read += s.len;
            let Some((a, b)) = clip(here, s.len) else {
                continue;
            };
            self.stats.bytes += (b - a) as u64;
            return Some(Ok(Piece::Mapped(if (a, b) == (0, m.len()) {
                m
            } else {
                m.sub(a, b)
            })));
        }
    }

    fn may_match(summaries: &Option<(std::fs::File, usize)>, filter: &Filter, chunk: u64) -> bool {
        let Some((f, len)) = summaries else {
            return true;
        };
        let mut sum = vec![0u8; *len];
        match std::os::unix::fs::FileExt::read_exact_at(f, &mut sum, chunk * *len as u64) {
            Ok(()) => filter.may_match(&sum),
            Err(_) => true,
        }
    }

    /// Filters chunks into the output buffer until it holds a piece (or the range ends).
    fn next_filtered(&mut self) -> Option<Result<Piece>> {
        loop {
            let full = match &mut self.out {
                Out::Pcap(b) => b.len() >= PIECE,
                Out::Pcapng(w) => w.get_mut().len() >= PIECE,
                _ => unreachable!("filtered output"),
            };
            if full || self.done {
                let buf = match &mut self.out {
                    Out::Pcap(b) => std::mem::take(b),
                    Out::Pcapng(w) => std::mem::take(w.get_mut()),
                    _ => unreachable!("filtered output"),
                };
                self.stats.bytes += buf.len() as u64;
                return (!buf.is_empty()).then_some(Ok(Piece::Owned(buf)));
            }
            if let Some(sel) = &mut self.sel
                && sel.next >= sel.prefetched
            {
                // The next window of candidates, read ahead together (see
                // `StreamReader::prefetch`); a window bounds what is asked of the page cache.
                let to = (sel.next + PREFETCH_WINDOW).min(sel.positions.len());
                if to > sel.next {
                    self.reader.prefetch(&sel.positions[sel.next..to]);
                }
                sel.prefetched = to.max(sel.next + 1);
            }
            let (filter, summaries, sel) = (&self.filter, &self.summaries, &self.sel);
            let next = self.ranges.next_with(|s| {
                let summary_skips = || {
                    filter
                        .as_ref()
                        .is_some_and(|f| !Self::may_match(summaries, f, s.chunk))
                };
                match sel.as_ref().map(|sel| sel.look(s.len)) {
                    Some((false, true)) => ReadAs::Lazy,
                    Some((false, false)) => ReadAs::Skip,
                    Some((true, _)) | None if summary_skips() => ReadAs::Skip,
                    _ => ReadAs::Whole,
                }
            });
            let (s, got) = match next {
                None => {
                    self.done = true;
                    continue;
                }
                Some(Err(e)) => return self.fail(e.into()),
                Some(Ok(x)) => x,
            };
            // The candidates of this slice: positions [from, to) of the selection.
            let mut picks: Option<(u64, Arc<Vec<u64>>, usize, usize)> = None;
            if let Some(sel) = &mut self.sel {
                let (a, b) = (sel.at, sel.at + s.len);
                let from = sel.next;
                while sel.positions.get(sel.next).is_some_and(|&p| p < b) {
                    sel.next += 1;
                }
                sel.at = b;
                picks = Some((a, sel.positions.clone(), from, sel.next));
            }
            match got {
                Got::Skipped => {
                    self.stats.chunks_skipped += 1;
                    self.stats.bytes_skipped += s.len;
                }
                Got::Whole(m) => {
                    self.stats.chunks_read += 1;
                    self.stats.bytes_read += s.len;
                    for p in wirecap_pcap::records(&m) {
                        if let Err(e) = self.take(&p) {
                            return self.fail(e);
                        }
                    }
                }
                Got::Lazy(mut lazy) => {
                    self.stats.chunks_read += 1;
                    let Some((base, positions, from, to)) = picks else {
                        unreachable!("lazy reads are for selections")
                    };
                    for &p in &positions[from..to] {
                        let pkt = match lazy.record_at(p - base) {
                            Ok(pkt) => pkt,
                            Err(e) => return self.fail(e.into()),
                        };
                        if let Err(e) = self.take(&pkt) {
                            return self.fail(e);
                        }
                    }
                    self.stats.bytes_read += lazy.bytes_checked();
                }
            }
        }
    }

    /// Tests one packet against the filter and writes it out when it matches.
    fn take(&mut self, p: &Packet<'_>) -> Result<()> {
        self.stats.packets_examined += 1;
        if !self
            .filter
            .as_ref()
            .is_none_or(|f| f.matches(packet_ts(p), p.orig_len, p.data))
        {
            return Ok(());
        }
        self.stats.packets += 1;
        match &mut self.out {
            Out::Pcap(b) => {
                // Stored records have 32-bit seconds.
                let sec = p.ts_sec as u32;
                b.extend_from_slice(&pcap_record_header(
                    sec,
                    p.ts_nsec,
                    p.data.len() as u32,
                    p.orig_len,
                ));
                b.extend_from_slice(p.data);
            }
            Out::Pcapng(w) => w.write_packet(p).map_err(pcap_out)?,
            _ => unreachable!("filtered output"),
        }
        Ok(())
    }
}

impl Iterator for Pieces {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
        if let Out::Failed(e) = &mut self.out {
            return e.take().map(Err);
        }
        if matches!(self.out, Out::Raw { .. }) {
            if self.done {
                return None;
            }
            let r = self.next_raw();
            if r.is_none() {
                // Every packet of the range went out.
                self.stats.packets = self.ranges_packets();
                self.stats.packets_examined = self.stats.packets;
            }
            return r;
        }
        if self.done && !self.has_buffered() {
            return None;
        }
        self.next_filtered()
    }
}

impl Pieces {
    fn ranges_packets(&self) -> u64 {
        self.ranges.range().packets()
    }
    fn has_buffered(&mut self) -> bool {
        match &mut self.out {
            Out::Pcap(b) => !b.is_empty(),
            Out::Pcapng(w) => !w.get_mut().is_empty(),
            _ => false,
        }
    }
}

/// An [`Export`]'s output as a `Read` (see [`Export::reader`]). A damaged chunk is an
/// `InvalidData` error carrying the store's error.
pub struct ExportReader {
    pieces: Pieces,
    cur: Option<(Piece, usize)>,
}

impl ExportReader {
    pub fn stats(&self) -> ExportStats {
        self.pieces.stats()
    }
}

impl Read for ExportReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some((p, at)) = &mut self.cur
                && *at < p.len()
            {
                let n = (p.len() - *at).min(buf.len());
                buf[..n].copy_from_slice(&p[*at..*at + n]);
                *at += n;
                return Ok(n);
            }
            match self.pieces.next() {
                None => return Ok(0),
                Some(Ok(p)) => self.cur = Some((p, 0)),
                Some(Err(Error::Output(e))) => return Err(e),
                Some(Err(e)) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
            }
        }
    }
}

fn pcap_out(e: wirecap_pcap::Error) -> Error {
    match e.kind {
        wirecap_pcap::ErrorKind::Io(io) => Error::Output(io),
        _ => Error::Pcap(e),
    }
}

/// What [`filter_capture`] did.
#[derive(Debug, Default)]
pub struct FileFilterStats {
    pub packets_read: u64,
    pub packets: u64,
    pub bytes: u64,
    pub link_type: Option<LinkType>,
    /// The input was damaged after `packets_read` packets (those were filtered and
    /// written): the reader's error, with its byte offset.
    pub input_error: Option<wirecap_pcap::Error>,
}

/// Filters a pcap or pcapng capture into pcap with nanosecond timestamps, like
/// `tcpdump -r IN -w OUT EXPR`. The filter is compiled by `compile` once the input's
/// link type is known. A damaged input ends the output after the last whole packet
/// and is reported in [`FileFilterStats::input_error`], as tcpdump does.
pub fn filter_capture<R: Read, W: Write, C>(
    input: R,
    compile: C,
    out: &mut W,
) -> Result<FileFilterStats>
where
    C: FnOnce(LinkType) -> Result<Option<Filter>>,
{
    let mut r = CaptureReader::new(input)?;
    let mut stats = FileFilterStats::default();
    // A pcapng file's first interface fixes the link type (as libpcap does); a file
    // without any says nothing, and gives an empty pcap of Ethernet.
    let link = r.link_type(0).unwrap_or(LinkType::ETHERNET);
    stats.link_type = Some(link);
    let snaplen = match r.snaplen(0) {
        Some(0) | None => MAX_PACKET_LEN,
        Some(n) => n,
    };
    let filter = compile(link)?;
    let mut w = RecordBuf::new(out, &pcap_ns_header(link, snaplen));
    loop {
        let (p, lt) = match r.next_packet_with_link_type() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => {
                stats.input_error = Some(e);
                break;
            }
        };
        if lt != link {
            w.finish()?;
            return Err(Error::Invalid(format!(
                "interface {} has link type {lt}, but the first has {link}; pcap output holds one link type",
                p.interface
            )));
        }
        stats.packets_read += 1;
        if filter
            .as_ref()
            .is_none_or(|f| f.matches(packet_ts(&p), p.orig_len, p.data))
        {
            stats.packets += 1;
            if !w.push(&p) {
                break;
            }
        }
    }
    stats.bytes = w.finish()?;
    debug_assert!(stats.bytes >= PCAP_NS_HEADER_LEN as u64);
    Ok(stats)
}
