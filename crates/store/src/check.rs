//! Index checks: the records of a stream's index files against each other and against
//! the segments, so that a damaged index is reported rather than answered from.
//!
//! * On open ([`StreamReader::check_on_open`]), a few reads: the first and last chunk
//!   records against the head and the segment files (a sealed stream's `chunks.idx`
//!   that was cut short leaves a chunk in a segment past its last record), and every
//!   index file present and, when sealed, untorn and reaching the last packet.
//! * When marks are read for a view ([`StreamReader::check_marks`]), all of them: in
//!   order, inside the chunks they point into, at a chunk's first packet exactly where a
//!   chunk starts a new second, and one per second the chunks hold.
//! * When one split or a time is looked up ([`StreamReader::check_split`],
//!   [`StreamReader::check_time_mark`]), the packets at its two ends are read: the split
//!   really starts and stops where its marks say.

use std::fs::File;
use std::io;

use crate::chunk::{CHUNK_HEADER_LEN, ChunkHeader, record_lengths};
use crate::error::{IoContext, Result};
use crate::index::{CHUNK_RECORD_LEN, ChunkRecord, MARK_LEN, Mark, SIZE_LEVELS};
use crate::layout;
use crate::reader::StreamReader;
use crate::timefmt::NS_PER_SEC;
use crate::view::{Split, View};
use crate::writer::read_exact_at;

/// What a file of marks holds: the first packet of each second, or size cuts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Time,
    Size,
}

fn kind_of(file: &str) -> Kind {
    if file == layout::TIME {
        Kind::Time
    } else {
        Kind::Size
    }
}

impl StreamReader {
    /// The cheap checks made whenever a stream is opened (see the module doc).
    pub(crate) fn check_on_open(&self) -> Result<()> {
        let (Some(first), Some(last)) = (self.first_record(), self.last_record()) else {
            let seg = layout::segment(self.head().segment);
            if self.is_sealed() && chunk_header_at(&self.dir().join(&seg), 0)?.is_some() {
                return Err(self.damaged_index(
                    layout::CHUNKS,
                    format!("it names no chunk, but {seg} holds one: the index was cut short"),
                ));
            }
            return Ok(());
        };
        let head = self.head();
        if (first.first_packet, first.pos) != (head.packet, head.pos) {
            return Err(self.damaged_index(
                layout::CHUNKS,
                format!(
                    "the first live chunk starts at packet {} (byte {}), the stream's head at packet {} (byte {})",
                    first.first_packet, first.pos, head.packet, head.pos
                ),
            ));
        }
        if last.end_packet() < first.first_packet || last.end_pos() < first.pos {
            return Err(self.damaged_index(
                layout::CHUNKS,
                "its last record ends before its first begins".into(),
            ));
        }
        let seg = self.dir().join(layout::segment(last.segment));
        let seg_len = match std::fs::metadata(&seg) {
            Ok(m) => m.len(),
            // Kept elsewhere (crate::remote): its marker holds its length.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                crate::remote::remote_len(self.dir(), last.segment).unwrap_or(0)
            }
            Err(e) => return Err(e).at(&seg),
        };
        let end = last.body_offset() + u64::from(last.body_len);
        if seg_len < end {
            return Err(self.damaged_index(
                layout::CHUNKS,
                format!(
                    "its last chunk ends at byte {end} of {}, which holds {seg_len} bytes",
                    layout::segment(last.segment)
                ),
            ));
        }
        if self.is_sealed() {
            // A chunk past the last record means the index lost its tail.
            let align = self.meta().align();
            let next = end.div_ceil(align) * align;
            for (n, at) in [(last.segment, next), (last.segment + 1, 0)] {
                if chunk_header_at(&self.dir().join(layout::segment(n)), at)?.is_some() {
                    return Err(self.damaged_index(
                        layout::CHUNKS,
                        format!(
                            "it ends with chunk {} but {} holds another chunk at offset {at}: the index was cut short",
                            self.chunk_count() - 1,
                            layout::segment(n)
                        ),
                    ));
                }
            }
        }
        let (end_packet, _) = self.end();
        for (i, file) in std::iter::once(layout::TIME.to_owned())
            .chain((0..SIZE_LEVELS.len()).map(layout::size_file))
            .enumerate()
        {
            let path = self.dir().join(&file);
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(self.damaged_index(&file, "missing".into()));
                }
                Err(e) => return Err(e).at(&path),
            };
            let len = f.metadata().at(&path)?.len();
            if !self.is_sealed() {
                continue;
            }
            if !len.is_multiple_of(MARK_LEN as u64) {
                return Err(self
                    .damaged_index(&file, format!("{len} bytes is not a whole number of marks")));
            }
            let Some(n) = (len / MARK_LEN as u64).checked_sub(1) else {
                if i == 0 {
                    return Err(
                        self.damaged_index(&file, "empty, but the stream holds packets".into())
                    );
                }
                continue;
            };
            let mut b = [0u8; MARK_LEN];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, n * MARK_LEN as u64).at(&path)?;
            let m = Mark::decode(&b);
            if m.packet >= end_packet {
                return Err(self.damaged_index(
                    &file,
                    format!(
                        "its last mark names packet {}, but the stream holds {end_packet}",
                        m.packet
                    ),
                ));
            }
            if i == 0 && m.key != last.last_ts / NS_PER_SEC {
                return Err(self.damaged_index(
                    &file,
                    format!(
                        "its last mark is for second {}, but the last packet is in second {}: marks are missing",
                        m.key,
                        last.last_ts / NS_PER_SEC
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The records of every live chunk, read at once.
    pub(crate) fn live_records(&self) -> Result<Vec<ChunkRecord>> {
        let from = self.head().chunk;
        let n = self.chunk_count().saturating_sub(from);
        let path = self.dir().join(layout::CHUNKS);
        let f = File::open(&path).at(&path)?;
        let mut buf = vec![0u8; (n as usize) * CHUNK_RECORD_LEN];
        if !read_exact_at(&f, &mut buf, from * CHUNK_RECORD_LEN as u64).at(&path)? {
            return Err(self.damaged_index(layout::CHUNKS, "shorter than it was".into()));
        }
        buf.chunks_exact(CHUNK_RECORD_LEN)
            .enumerate()
            .map(|(i, b)| {
                ChunkRecord::decode(b.try_into().expect("chunks_exact")).ok_or_else(|| {
                    self.damaged_index(
                        layout::CHUNKS,
                        format!("record {} fails its CRC", from + i as u64),
                    )
                })
            })
            .collect()
    }

    /// Checks the marks of `file` (all below the snapshot's end) against each other and
    /// against the chunk records.
    pub(crate) fn check_marks(&self, file: &str, marks: &[Mark]) -> Result<()> {
        self.check_marks_with(file, marks, &self.live_records()?)
    }

    /// Every index check at once, the chunk records read once: what recovery runs on
    /// every stream.
    pub(crate) fn check_all(&self) -> Result<()> {
        let recs = self.live_records()?;
        for file in std::iter::once(layout::TIME.to_owned())
            .chain((0..SIZE_LEVELS.len()).map(layout::size_file))
        {
            let marks = self.marks_unchecked(&file)?;
            self.check_marks_with(&file, &marks, &recs)?;
        }
        Ok(())
    }

    fn check_marks_with(&self, file: &str, marks: &[Mark], recs: &[ChunkRecord]) -> Result<()> {
        let kind = kind_of(file);
        let bad = |why: String| Err(self.damaged_index(file, why));
        for w in marks.windows(2) {
            if w[1].key <= w[0].key || w[1].packet <= w[0].packet || w[1].pos <= w[0].pos {
                return bad(format!(
                    "mark {:?} follows {:?}: marks must grow",
                    (w[1].key, w[1].packet, w[1].pos),
                    (w[0].key, w[0].packet, w[0].pos)
                ));
            }
        }
        let head = self.head();
        let live: Vec<&Mark> = marks.iter().filter(|m| m.packet >= head.packet).collect();
        for (i, w) in recs.windows(2).enumerate() {
            if w[1].first_packet != w[0].end_packet()
                || w[1].pos != w[0].end_pos()
                || w[1].first_ts < w[0].last_ts
            {
                return Err(self.damaged_index(
                    layout::CHUNKS,
                    format!(
                        "chunk {} does not continue where chunk {} ends",
                        head.chunk + i as u64 + 1,
                        head.chunk + i as u64
                    ),
                ));
            }
        }
        let sec = |t: u64| t / NS_PER_SEC;
        let mut mi = 0usize;
        let mut prev_last: Option<u64> = None;
        for c in recs {
            // The marks pointing into this chunk.
            let from = mi;
            while mi < live.len() && live[mi].packet < c.end_packet() {
                mi += 1;
            }
            let inside = &live[from..mi];
            for m in inside {
                let at_first = m.packet == c.first_packet;
                let pos_ok = if at_first {
                    m.pos == c.pos
                } else {
                    m.packet > c.first_packet && c.pos < m.pos && m.pos < c.end_pos()
                };
                let key_ok = match kind {
                    Kind::Time if at_first => m.key == sec(c.first_ts),
                    Kind::Time => sec(c.first_ts) < m.key && m.key <= sec(c.last_ts),
                    Kind::Size if at_first => m.key == c.first_ts,
                    Kind::Size => c.first_ts <= m.key && m.key <= c.last_ts,
                };
                if !pos_ok || !key_ok {
                    return bad(format!(
                        "the mark for {} {} names packet {} at byte {}, which does not fit chunk {}..{} (packets) of times {}..={}",
                        if kind == Kind::Time {
                            "second"
                        } else {
                            "cut at"
                        },
                        m.key,
                        m.packet,
                        m.pos,
                        c.first_packet,
                        c.end_packet(),
                        c.first_ts,
                        c.last_ts
                    ));
                }
            }
            if kind == Kind::Time {
                let new_second = prev_last.is_none_or(|p| sec(p) != sec(c.first_ts));
                let needs_first = new_second && (prev_last.is_some() || head.packet == 0);
                if needs_first && inside.first().is_none_or(|m| m.packet != c.first_packet) {
                    return bad(format!(
                        "no mark for second {}, where packet {} starts it",
                        sec(c.first_ts),
                        c.first_packet
                    ));
                }
                let seconds = sec(c.last_ts) - sec(c.first_ts) + 1;
                if inside.len() as u64 > seconds {
                    return bad(format!(
                        "{} marks point into chunk of packets {}..{}, which spans {seconds} seconds",
                        inside.len(),
                        c.first_packet,
                        c.end_packet()
                    ));
                }
                // Marks before the head stay in the file after a trim and still count.
                let last_key = inside.last().map(|m| m.key).or_else(|| {
                    let k = marks.partition_point(|m| m.packet < c.first_packet);
                    k.checked_sub(1).map(|k| marks[k].key)
                });
                if !(last_key.is_none() && head.packet > 0) && last_key != Some(sec(c.last_ts)) {
                    return bad(format!(
                        "no mark for second {}, which packets up to {} are in",
                        sec(c.last_ts),
                        c.end_packet()
                    ));
                }
            }
            prev_last = Some(c.last_ts);
        }
        if mi != live.len() {
            return bad(format!(
                "mark for packet {} is past the last chunk",
                live[mi].packet
            ));
        }
        Ok(())
    }

    /// The times of packets `packet - 1` and `packet` (`None` outside the live stream),
    /// having checked that stream byte `pos` is where packet `packet` starts.
    fn around(&self, file: &str, packet: u64, pos: u64) -> Result<(Option<u64>, Option<u64>)> {
        let head = self.head();
        let (end_packet, end_pos) = self.end();
        let bad = |why: String| Err(self.damaged_index(file, why));
        if pos >= end_pos || packet >= end_packet {
            if (packet, pos) != (end_packet, end_pos) {
                return bad(format!(
                    "packet {packet} at byte {pos}: the stream ends with packet {end_packet} at byte {end_pos}"
                ));
            }
            return Ok((self.last_ts(), None));
        }
        if pos < head.pos || packet < head.packet {
            return bad(format!(
                "packet {packet} at byte {pos} is before the stream's head"
            ));
        }
        // The chunk holding byte `pos`.
        let (mut lo, mut hi) = (head.chunk, self.chunk_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.chunk(mid)?.end_pos() <= pos {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let c = self.chunk(lo)?;
        let before = |chunk: u64| -> Result<Option<u64>> {
            Ok(if chunk > head.chunk {
                Some(self.chunk(chunk - 1)?.last_ts)
            } else {
                None
            })
        };
        if pos == c.pos {
            if packet != c.first_packet {
                return bad(format!(
                    "byte {pos} starts packet {}, not packet {packet}",
                    c.first_packet
                ));
            }
            return Ok((before(lo)?, Some(c.first_ts)));
        }
        let body = self.read_body_of(&c)?;
        let (mut p, mut at) = (c.first_packet, c.pos);
        let mut prev = before(lo)?;
        for (ts, len) in record_lengths(&body) {
            if at == pos {
                if p != packet {
                    return bad(format!("byte {pos} starts packet {p}, not packet {packet}"));
                }
                return Ok((prev, Some(ts)));
            }
            if at > pos {
                break;
            }
            prev = Some(ts);
            p += 1;
            at += len;
        }
        bad(format!("byte {pos} is not where a packet starts"))
    }

    /// Checks that mark `m`, found for time `ts`, names the first packet at or after it.
    pub(crate) fn check_time_mark(&self, m: &Mark, ts: u64) -> Result<()> {
        let (prev, this) = self.around(layout::TIME, m.packet, m.pos)?;
        let ok =
            this.is_some_and(|t| t / NS_PER_SEC == m.key && t >= ts) && prev.is_none_or(|p| p < ts);
        if !ok {
            return Err(self.damaged_index(
                layout::TIME,
                format!(
                    "the mark for second {} names packet {}, which is not the first packet at or after {ts} ns",
                    m.key, m.packet
                ),
            ));
        }
        Ok(())
    }

    /// Checks that split `s` of `view` starts and stops at the packets its times say.
    pub(crate) fn check_split(&self, view: View, s: &Split) -> Result<()> {
        let (file, exact) = match view {
            View::Single => return Ok(()),
            View::Time { .. } => (layout::TIME.to_owned(), false),
            View::Size { level } => (layout::size_file(level), true),
        };
        let r = s.range;
        let (a_prev, a) = self.around(&file, r.first_packet, r.start_pos)?;
        let (b_prev, b) = self.around(&file, r.end_packet, r.end_pos)?;
        let at_head = r.first_packet == self.head().packet;
        let ok = if exact {
            a == Some(s.start_ts) && b.is_none_or(|t| t == s.stop_ts)
        } else {
            a.is_some_and(|t| t >= s.start_ts || at_head)
                && (at_head || a_prev.is_none_or(|t| t < s.start_ts))
                && b.is_none_or(|t| t >= s.stop_ts)
        } && b_prev.is_some_and(|t| t < s.stop_ts);
        if !ok {
            return Err(self.damaged_index(
                &file,
                format!(
                    "split {} ({}) should hold the packets from {} to {} ns, but its marks name packets {}..{}",
                    s.index, s.name, s.start_ts, s.stop_ts, r.first_packet, r.end_packet
                ),
            ));
        }
        Ok(())
    }
}

/// The chunk header at `at` in segment `path`, if there is a valid one.
pub(crate) fn chunk_header_at(path: &std::path::Path, at: u64) -> Result<Option<ChunkHeader>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(path),
    };
    let mut h = [0u8; CHUNK_HEADER_LEN];
    if !read_exact_at(&f, &mut h, at).at(path)? {
        return Ok(None);
    }
    Ok(ChunkHeader::decode(&h))
}
