//! Search across captures: one time range and one filter over every stream that overlaps
//! it, merged into one time-ordered capture.
//!
//! ```text
//!  Store ──plan(start, stop)──▶ streams overlapping [start, stop) ─┬─ Export (stream 1) ─┐
//!                                                                   ├─ Export (stream 2) ─┼─▶ k-way merge by time ─▶ pcap / pcapng
//!                                                                   └─ …                  ─┘
//! ```
//!
//! * Each stream's part is the one filtered [`Export`] of that stream (the same bytes
//!   `wirecap export NAME --start --stop --filter` writes), so a search never selects
//!   differently from an export.
//! * The parts are merged by packet time; equal times keep the order of the parts
//!   (earliest first packet, then stream name). (`mergecap` breaks such ties the other
//!   way round, later file first; the packets are the same.)
//! * When the parts do not overlap in time (consecutive captures, the usual case) the
//!   merge is a concatenation: unfiltered pcap pieces are then the store's mapped chunk
//!   bytes, uncopied, and a byte range reads only the chunks it covers.
//! * **One link type.** A pcap file has one link type, and so does the pcapng this module
//!   writes. A time range whose streams have different link types is refused with an
//!   error naming them ([`Error::Invalid`]), before any byte is written: narrow the range
//!   or export the streams one by one. The header's snap length is the largest of the
//!   streams'.
//! * A stream that cannot be opened (damaged, or deleted meanwhile) is left out and named
//!   in [`Plan::skipped`], never silently.

use wirecap_pcap::{
    LinkType, MAX_PACKET_LEN, PCAP_NS_HEADER_LEN, PCAP_RECORD_HEADER_LEN, Packet, PcapngWriter,
    pcap_ns_header,
};
use wirecap_store::{Listed, PacketRange, Store, StreamReader};

use crate::export::{PIECE, Piece, Pieces};
use crate::{Error, Export, ExportStats, Filter, Format, Result};

/// One stream's share of a search.
#[derive(Clone)]
pub struct Part {
    reader: StreamReader,
    range: PacketRange,
    /// Bounds of the part's packet times: `[lo, hi]` (the stream's first and last packet
    /// times clipped to the search range).
    lo: u64,
    hi: u64,
}

impl Part {
    pub fn name(&self) -> &str {
        self.reader.name()
    }
    pub fn range(&self) -> PacketRange {
        self.range
    }
    pub fn link_type(&self) -> LinkType {
        self.reader.link_type()
    }
    pub fn reader(&self) -> &StreamReader {
        &self.reader
    }
}

/// The streams a search reads, chosen by time alone (see [`plan`]).
#[derive(Clone)]
pub struct Plan {
    parts: Vec<Part>,
    skipped: Vec<(String, String)>,
    link: LinkType,
    snaplen: u32,
}

/// Finds the streams of `store` with packets in `[start, stop)` (either bound open when
/// `None`), in merge order. Fails when they do not share one link type.
pub fn plan(store: &Store, start: Option<u64>, stop: Option<u64>) -> Result<Plan> {
    let (parts, skipped) = overlapping(store, start, stop)?;
    let link = parts.first().map_or(LinkType::ETHERNET, Part::link_type);
    if parts.iter().any(|p| p.link_type() != link) {
        let names: Vec<String> = parts
            .iter()
            .map(|p| format!("{} ({})", p.name(), p.link_type()))
            .collect();
        return Err(Error::Invalid(format!(
            "the streams in this time range have different link types: {}; one capture file \
             holds one link type, so narrow the time range or export the streams one by one",
            names.join(", ")
        )));
    }
    let snaplen = parts
        .iter()
        .map(|p| p.reader.meta().snaplen)
        .max()
        .unwrap_or(MAX_PACKET_LEN);
    Ok(Plan {
        parts,
        skipped,
        link,
        snaplen,
    })
}

/// The parts of every stream with packets in `[start, stop)`, in merge order (earliest
/// first packet, then name), and the streams that could not be opened, with the reason.
pub(crate) type Overlap = (Vec<Part>, Vec<(String, String)>);

pub(crate) fn overlapping(store: &Store, start: Option<u64>, stop: Option<u64>) -> Result<Overlap> {
    if let (Some(a), Some(b)) = (start, stop)
        && b < a
    {
        return Err(Error::Invalid(format!("stop ({b}) is before start ({a})")));
    }
    let mut parts = Vec::new();
    let mut skipped = Vec::new();
    for listed in store.listing()? {
        let info = match listed {
            Listed::Stream(i) => i,
            Listed::Damaged { name, why } => {
                skipped.push((name, why));
                continue;
            }
        };
        // A stream that starts after the range is out (its first packet does not change).
        if let (Some(f), Some(s)) = (info.first_ts, stop)
            && f >= s
        {
            continue;
        }
        let name = info.meta.name;
        // The bounds come from the snapshot that is read: a stream being written has
        // grown since it was listed.
        let reader = match store.open_stream(&name) {
            Ok(r) => r,
            // Deleted since it was listed (retention, another client): not part of it.
            Err(wirecap_store::Error::NoSuchStream(_)) => continue,
            Err(e) => {
                skipped.push((name, e.to_string()));
                continue;
            }
        };
        let (Some(first), Some(last)) = (reader.first_ts(), reader.last_ts()) else {
            continue;
        };
        let lo = first.max(start.unwrap_or(0));
        let hi = match stop {
            Some(0) => continue,
            Some(s) => last.min(s - 1),
            None => last,
        };
        if lo > hi {
            continue;
        }
        let range = match reader.time_range(start, stop) {
            Ok(r) => r,
            Err(e) if e.is_damage() => {
                skipped.push((name, e.to_string()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if range.is_empty() {
            continue;
        }
        parts.push(Part {
            reader,
            range,
            lo,
            hi,
        });
    }
    parts.sort_by(|a, b| a.lo.cmp(&b.lo).then_with(|| a.name().cmp(b.name())));
    Ok((parts, skipped))
}

impl Plan {
    /// The parts, in merge order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Streams that overlap nothing readable: `(name, why)` for each stream that could
    /// not be opened.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// The link type of every part (Ethernet when there is none): what a filter is
    /// compiled for.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Packets of the parts before filtering.
    pub fn packets(&self) -> u64 {
        self.parts.iter().map(|p| p.range.packets()).sum()
    }

    /// Whether no two parts overlap in time: then the merge is a concatenation.
    fn disjoint(&self) -> bool {
        self.parts.windows(2).all(|w| w[0].hi <= w[1].lo)
    }

    /// The search's output: these streams through `filter`, as `format`.
    pub fn search(self, format: Format, filter: Option<Filter>) -> Search {
        Search {
            plan: self,
            format,
            filter,
        }
    }
}

/// What a search did: the parts' export figures summed, and the streams read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SearchStats {
    /// Streams read.
    pub streams: u64,
    /// Packets written.
    pub packets: u64,
    /// Bytes written (file header included).
    pub bytes: u64,
    pub packets_examined: u64,
    pub chunks_read: u64,
    pub chunks_skipped: u64,
}

impl SearchStats {
    fn add(&mut self, s: &ExportStats) {
        self.packets_examined += s.packets_examined;
        self.chunks_read += s.chunks_read;
        self.chunks_skipped += s.chunks_skipped;
    }
}

/// One search, ready to be written: like an [`Export`], its bytes come out as pieces
/// pulled on demand ([`Search::pieces`]), with an exact length and byte ranges when the
/// output is unfiltered pcap.
#[derive(Clone)]
pub struct Search {
    plan: Plan,
    format: Format,
    filter: Option<Filter>,
}

impl Search {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn export(&self, p: &Part) -> Export {
        Export::new(p.reader.clone(), p.range, Format::Pcap, self.filter.clone())
    }

    fn header(&self) -> Vec<u8> {
        pcap_ns_header(self.plan.link, self.plan.snaplen).to_vec()
    }

    /// The exact size of the output when it is known before it is written (unfiltered
    /// pcap): every part's records plus one file header.
    pub fn exact_len(&self) -> Option<u64> {
        (self.format == Format::Pcap && self.filter.is_none()).then(|| {
            PCAP_NS_HEADER_LEN as u64
                + self
                    .plan
                    .parts
                    .iter()
                    .map(|p| p.range.end_pos - p.range.start_pos)
                    .sum::<u64>()
        })
    }

    /// The whole output.
    pub fn pieces(&self) -> SearchPieces {
        let stats = SearchStats {
            streams: self.plan.parts.len() as u64,
            ..SearchStats::default()
        };
        if self.format == Format::Pcap && self.plan.disjoint() {
            let parts = self
                .plan
                .parts
                .iter()
                .map(|p| (self.export(p).pieces(), PCAP_NS_HEADER_LEN))
                .collect();
            return SearchPieces {
                inner: Inner::Concat {
                    header: Some(self.header()),
                    parts,
                    at: 0,
                },
                stats,
                done_stats: ExportStats::default(),
                clip: None,
            };
        }
        let out = match self.format {
            Format::Pcap => Sink::Pcap(self.header()),
            Format::Pcapng => {
                match PcapngWriter::new(
                    Vec::with_capacity(PIECE * 2),
                    self.plan.link,
                    self.plan.snaplen,
                ) {
                    Ok(w) => Sink::Pcapng(Box::new(w)),
                    Err(e) => Sink::Failed(Some(Error::Output(e))),
                }
            }
        };
        let cursors = self
            .plan
            .parts
            .iter()
            .map(|p| Cursor::new(self.export(p).pieces()))
            .collect();
        SearchPieces {
            inner: Inner::Merge {
                cursors,
                out,
                ended: false,
            },
            stats,
            done_stats: ExportStats::default(),
            clip: None,
        }
    }

    /// Bytes `[skip, skip + take)` of the output (a `Range` request). Only for a search
    /// whose [`exact_len`](Self::exact_len) is known. Parts that do not overlap in time
    /// read only the chunks the range covers; overlapping ones are merged from the start
    /// and the bytes before `skip` dropped.
    pub fn byte_range(&self, skip: u64, take: u64) -> Result<SearchPieces> {
        if self.exact_len().is_none() {
            return Err(Error::Invalid(
                "byte ranges exist only for unfiltered pcap searches".into(),
            ));
        }
        let end = skip.saturating_add(take);
        if !self.plan.disjoint() {
            let mut p = self.pieces();
            p.clip = Some(Clip { pos: 0, skip, end });
            return Ok(p);
        }
        let h = PCAP_NS_HEADER_LEN as u64;
        let header = (skip < h).then(|| self.header()[skip as usize..end.min(h) as usize].to_vec());
        let mut parts = Vec::new();
        // Part i's records are bytes [at, at + len) of the output, and bytes
        // [h, h + len) of its own export.
        let mut at = h;
        for p in &self.plan.parts {
            let len = p.range.end_pos - p.range.start_pos;
            let (from, to) = (skip.max(at), end.min(at + len));
            if from < to {
                parts.push((self.export(p).byte_range(h + from - at, to - from)?, 0));
            }
            at += len;
        }
        Ok(SearchPieces {
            inner: Inner::Concat {
                header,
                parts,
                at: 0,
            },
            stats: SearchStats {
                streams: self.plan.parts.len() as u64,
                ..SearchStats::default()
            },
            done_stats: ExportStats::default(),
            clip: None,
        })
    }

    /// Writes the whole output to `out`.
    pub fn write_to<W: std::io::Write>(&self, out: &mut W) -> Result<SearchStats> {
        let mut p = self.pieces();
        for piece in p.by_ref() {
            out.write_all(&piece?).map_err(Error::Output)?;
        }
        out.flush().map_err(Error::Output)?;
        Ok(p.stats())
    }
}

/// The little-endian pcap-ns record at the front of `b`: `(time in ns, record length)`,
/// or `None` while fewer than a record header's bytes are there.
fn record_at(b: &[u8]) -> Option<(u64, usize)> {
    let h = b.get(..PCAP_RECORD_HEADER_LEN)?;
    let u = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let ts = u64::from(u(0)) * 1_000_000_000 + u64::from(u(4));
    Some((ts, PCAP_RECORD_HEADER_LEN + u(8) as usize))
}

/// One part's export, record by record: a record that spans two pieces is gathered
/// into one buffer; every other record is read where it lies.
struct Cursor {
    pieces: Pieces,
    piece: Piece,
    at: usize,
    /// File header bytes still to drop.
    header: usize,
    /// The time and length of the whole record at `at`, once [`Self::fill`] found one.
    front: Option<(u64, usize)>,
    ended: bool,
}

impl Cursor {
    fn new(pieces: Pieces) -> Self {
        Self {
            pieces,
            piece: Piece::Owned(Vec::new()),
            at: 0,
            header: PCAP_NS_HEADER_LEN,
            front: None,
            ended: false,
        }
    }

    /// Makes a whole record available at the front: its time, or `None` at the end.
    fn fill(&mut self) -> Result<Option<u64>> {
        if let Some((ts, _)) = self.front {
            return Ok(Some(ts));
        }
        loop {
            let avail = &self.piece[self.at..];
            if self.header > 0 && !avail.is_empty() {
                let n = self.header.min(avail.len());
                self.header -= n;
                self.at += n;
                continue;
            }
            if self.header == 0
                && let Some((ts, len)) = record_at(avail)
                && avail.len() >= len
            {
                self.front = Some((ts, len));
                return Ok(Some(ts));
            }
            if self.ended {
                return Ok(None);
            }
            match self.pieces.next() {
                None => {
                    self.ended = true;
                    if !avail.is_empty() {
                        return Err(Error::Invalid(format!(
                            "an export ended inside a packet record ({} bytes left over)",
                            avail.len()
                        )));
                    }
                    return Ok(None);
                }
                Some(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Some(Ok(next)) => {
                    self.piece = if avail.is_empty() {
                        next
                    } else {
                        let mut v = Vec::with_capacity(avail.len() + next.len());
                        v.extend_from_slice(avail);
                        v.extend_from_slice(&next);
                        Piece::Owned(v)
                    };
                    self.at = 0;
                }
            }
        }
    }

    /// The record [`Self::fill`] found; the cursor moves past it.
    fn take(&mut self) -> &[u8] {
        let (_, len) = self.front.take().expect("fill found a record");
        let at = self.at;
        self.at += len;
        &self.piece[at..at + len]
    }
}

enum Sink {
    Pcap(Vec<u8>),
    Pcapng(Box<PcapngWriter<Vec<u8>>>),
    Failed(Option<Error>),
}

impl Sink {
    fn len(&mut self) -> usize {
        match self {
            Self::Pcap(b) => b.len(),
            Self::Pcapng(w) => w.get_mut().len(),
            Self::Failed(_) => 0,
        }
    }
    fn take(&mut self) -> Vec<u8> {
        match self {
            Self::Pcap(b) => std::mem::take(b),
            Self::Pcapng(w) => std::mem::take(w.get_mut()),
            Self::Failed(_) => Vec::new(),
        }
    }
    fn push(&mut self, rec: &[u8]) -> Result<()> {
        match self {
            Self::Pcap(b) => b.extend_from_slice(rec),
            Self::Pcapng(w) => {
                let h = &rec[..PCAP_RECORD_HEADER_LEN];
                let u = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
                let p = Packet {
                    ts_sec: u64::from(u(0)),
                    ts_nsec: u(4),
                    orig_len: u(12),
                    data: &rec[PCAP_RECORD_HEADER_LEN..],
                    interface: 0,
                };
                w.write_packet(&p).map_err(|e| match e.kind {
                    wirecap_pcap::ErrorKind::Io(io) => Error::Output(io),
                    _ => Error::Pcap(e),
                })?;
            }
            Self::Failed(_) => {}
        }
        Ok(())
    }
}

enum Inner {
    /// Parts that do not overlap in time, one after the other: `(pieces, header bytes
    /// still to drop)`.
    Concat {
        header: Option<Vec<u8>>,
        parts: Vec<(Pieces, usize)>,
        at: usize,
    },
    Merge {
        cursors: Vec<Cursor>,
        out: Sink,
        ended: bool,
    },
}

/// Output bytes `[skip, end)` only (a byte range of a merged output).
struct Clip {
    pos: u64,
    skip: u64,
    end: u64,
}

/// The output of a [`Search`], piece by piece.
pub struct SearchPieces {
    inner: Inner,
    stats: SearchStats,
    /// Figures of the parts already finished (concatenation).
    done_stats: ExportStats,
    clip: Option<Clip>,
}

impl SearchPieces {
    /// What was written so far (all of it once the iterator is exhausted).
    pub fn stats(&self) -> SearchStats {
        let mut s = self.stats;
        match &self.inner {
            Inner::Concat { parts, at, .. } => {
                s.add(&self.done_stats);
                s.packets = self.done_stats.packets;
                if let Some((p, _)) = parts.get(*at) {
                    let cur = p.stats();
                    s.add(&cur);
                    s.packets += cur.packets;
                }
            }
            Inner::Merge { cursors, .. } => {
                for c in cursors {
                    s.add(&c.pieces.stats());
                }
            }
        }
        s
    }

    fn next_concat(&mut self) -> Option<Result<Piece>> {
        let Inner::Concat { header, parts, at } = &mut self.inner else {
            unreachable!("concatenation")
        };
        if let Some(h) = header.take()
            && !h.is_empty()
        {
            return Some(Ok(Piece::Owned(h)));
        }
        loop {
            let (pieces, drop) = parts.get_mut(*at)?;
            match pieces.next() {
                None => {
                    let s = pieces.stats();
                    self.done_stats.packets += s.packets;
                    self.done_stats.packets_examined += s.packets_examined;
                    self.done_stats.chunks_read += s.chunks_read;
                    self.done_stats.chunks_skipped += s.chunks_skipped;
                    *at += 1;
                }
                Some(Err(e)) => {
                    *at = parts.len();
                    return Some(Err(e));
                }
                Some(Ok(p)) => {
                    // Each part's own file header is dropped: the output has one.
                    let n = (*drop).min(p.len());
                    *drop -= n;
                    if n == p.len() {
                        continue;
                    }
                    return Some(Ok(if n == 0 { p } else { sub(p, n, None) }));
                }
            }
        }
    }

    fn next_merge(&mut self) -> Option<Result<Piece>> {
        let Inner::Merge {
            cursors,
            out,
            ended,
        } = &mut self.inner
        else {
            unreachable!("merge")
        };
        if let Sink::Failed(e) = out {
            return e.take().map(Err);
        }
        while !*ended && out.len() < PIECE {
            // The part whose next record is earliest; the first such part on a tie.
            let mut best: Option<(u64, usize)> = None;
            for (i, c) in cursors.iter_mut().enumerate() {
                match c.fill() {
                    Ok(Some(ts)) => {
                        if best.is_none_or(|(b, _)| ts < b) {
                            best = Some((ts, i));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        *ended = true;
                        *out = Sink::Failed(None);
                        return Some(Err(e));
                    }
                }
            }
            let Some((_, i)) = best else {
                *ended = true;
                break;
            };
            if let Err(e) = out.push(cursors[i].take()) {
                *ended = true;
                *out = Sink::Failed(None);
                return Some(Err(e));
            }
            self.stats.packets += 1;
        }
        let buf = out.take();
        (!buf.is_empty()).then_some(Ok(Piece::Owned(buf)))
    }

    fn next_unclipped(&mut self) -> Option<Result<Piece>> {
        match self.inner {
            Inner::Concat { .. } => self.next_concat(),
            Inner::Merge { .. } => self.next_merge(),
        }
    }

    fn next_clipped(&mut self) -> Option<Result<Piece>> {
        loop {
            let p = self.next_unclipped()?;
            let Some(c) = &mut self.clip else {
                return Some(p);
            };
            let p = match p {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            let (a, len) = (c.pos, p.len() as u64);
            c.pos += len;
            if a >= c.end {
                return None;
            }
            let (from, to) = (c.skip.max(a), c.end.min(a + len));
            if from >= to {
                continue;
            }
            return Some(Ok(sub(p, (from - a) as usize, Some((to - a) as usize))));
        }
    }
}

/// Bytes `[from, to)` of a piece (`to` = its end when `None`).
fn sub(p: Piece, from: usize, to: Option<usize>) -> Piece {
    let to = to.unwrap_or(p.len());
    match p {
        Piece::Mapped(m) => Piece::Mapped(m.sub(from, to)),
        Piece::Owned(mut v) => {
            v.truncate(to);
            v.drain(..from);
            Piece::Owned(v)
        }
    }
}

impl Iterator for SearchPieces {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
        let p = self.next_clipped();
        if let Some(Ok(p)) = &p {
            self.stats.bytes += p.len() as u64;
        }
        p
    }
}
