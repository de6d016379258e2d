//! A chunk: the unit in which packets travel from capture to disk.
//!
//! A chunk is one contiguous buffer: a 32-byte header, then packets already in pcap
//! nanosecond record layout (`ts_sec, ts_nsec, caplen, origlen, bytes`, little-endian).
//! Capture threads fill chunks without system calls; the writer puts a whole chunk on
//! disk with one write; a download of whole chunks is a pcap header plus their bodies,
//! with no per-packet work.
//!
//! Header layout: magic `WCK1`, body length, packet count, CRC32C of the body, first and
//! last timestamp (ns). The header makes segments self-describing, so the index can be
//! rebuilt from them after a crash.

use wirecap_pcap::{
    MAX_PACKET_LEN, PCAP_RECORD_HEADER_LEN, Packet, RecordHeader, pcap_record_header,
};

use crate::error::{Error, Result};
use crate::index::{le32, le64};
use crate::timefmt::NS_PER_SEC;

pub const CHUNK_HEADER_LEN: usize = 32;
pub const CHUNK_MAGIC: [u8; 4] = *b"WCK1";
/// Default size of a chunk's body: large enough that per-chunk costs vanish, small
/// enough that a crash loses little and readers see new packets within moments.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// Chunks start 4096-aligned in memory so that a writer using O_DIRECT can write them in
/// place, padding included, without a staging copy.
pub const CHUNK_MEM_ALIGN: usize = 4096;

/// A chunk being filled, or filled and ready to be written.
///
/// Pushing a packet costs one copy and no checksum: the body's CRC32C is computed once per
/// chunk by [`finish`](Self::finish) (on the writer's thread, just before the write), where
/// one call over ~1 MiB runs at the checksum's full speed; per-packet calls on 1.5 kB
/// buffers cost twice as much per byte and were a quarter of a capture core's time.
/// Each push also notes the record's timestamp and length in a small side table, so the
/// writer indexes the chunk from that table instead of walking the records again (a walk
/// that touches one cache line per packet of a chunk that has usually left the cache).
#[derive(Debug)]
pub struct Chunk {
    /// `[alignment slack][header][records][room for padding]`.
    buf: Vec<u8>,
    /// Offset of the header in `buf`, 4096-aligned in memory.
    start: usize,
    packets: u32,
    first_ts: u64,
    last_ts: u64,
    /// Per record, in order: what [`record_lengths`] would find walking the body.
    entries: Vec<IndexEntry>,
}

/// A record as the indexer sees it: timestamp (ns) and record length (header included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub ts_ns: u64,
    pub rec_len: u32,
}

impl Chunk {
    /// A chunk whose body is expected to grow to about `body_bytes`.
    pub fn with_capacity(body_bytes: usize) -> Self {
        let mut c = Self {
            buf: Vec::new(),
            start: 0,
            packets: 0,
            first_ts: 0,
            last_ts: 0,
            entries: Vec::new(),
        };
        c.realloc(body_bytes);
        c
    }

    /// Moves the chunk into a buffer with room for `body_bytes` of records, keeping the
    /// header 4096-aligned.
    fn realloc(&mut self, body_bytes: usize) {
        let cap = CHUNK_HEADER_LEN + body_bytes + 2 * CHUNK_MEM_ALIGN;
        let mut buf: Vec<u8> = Vec::with_capacity(cap);
        let start = buf
            .as_ptr()
            .align_offset(CHUNK_MEM_ALIGN)
            .min(CHUNK_MEM_ALIGN);
        buf.resize(start, 0);
        if self.buf.is_empty() {
            buf.resize(start + CHUNK_HEADER_LEN, 0);
        } else {
            buf.extend_from_slice(&self.buf[self.start..]);
        }
        self.buf = buf;
        self.start = start;
    }

    /// Appends a packet. Timestamps must not go backwards within a chunk.
    pub fn push(&mut self, p: &Packet<'_>) -> Result<()> {
        self.push_parts(p.ts_sec, p.ts_nsec, p.orig_len, p.data)
    }

    /// Appends a packet given by its parts (the capture ring's hot path).
    #[inline]
    pub fn push_parts(
        &mut self,
        ts_sec: u64,
        ts_nsec: u32,
        orig_len: u32,
        data: &[u8],
    ) -> Result<()> {
        let sec = u32::try_from(ts_sec).map_err(|_| Error::TimestampOutOfRange { ts_sec })?;
        if data.len() > MAX_PACKET_LEN as usize {
            return Err(Error::PacketTooLarge {
                len: data.len(),
                max: MAX_PACKET_LEN,
            });
        }
        let ts = ts_sec * NS_PER_SEC + u64::from(ts_nsec);
        if self.packets > 0 && ts < self.last_ts {
            return Err(Error::OutOfOrder {
                ts_ns: ts,
                last_ns: self.last_ts,
            });
        }
        let need = PCAP_RECORD_HEADER_LEN + data.len();
        // Keep CHUNK_MEM_ALIGN bytes spare at the end for the O_DIRECT padding.
        if self.buf.len() + need + CHUNK_MEM_ALIGN > self.buf.capacity() {
            self.realloc((self.len_bytes() + need) * 2);
        }
        if self.packets == 0 {
            self.first_ts = ts;
        }
        self.last_ts = ts;
        self.packets += 1;
        let hdr = pcap_record_header(sec, ts_nsec, data.len() as u32, orig_len);
        self.entries.push(IndexEntry {
            ts_ns: ts,
            rec_len: need as u32,
        });
        self.buf.extend_from_slice(&hdr);
        self.buf.extend_from_slice(data);
        Ok(())
    }

    pub fn packets(&self) -> u32 {
        self.packets
    }
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }
    /// Bytes of records held.
    pub fn len_bytes(&self) -> usize {
        self.buf.len() - self.start - CHUNK_HEADER_LEN
    }
    pub fn first_ts(&self) -> u64 {
        self.first_ts
    }
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }
    /// The records, without the chunk header.
    pub fn body(&self) -> &[u8] {
        &self.buf[self.start + CHUNK_HEADER_LEN..]
    }
    pub fn clear(&mut self) {
        self.buf.truncate(self.start + CHUNK_HEADER_LEN);
        self.packets = 0;
        self.entries.clear();
    }

    /// Timestamp and record length of every record, in order, as noted when it was pushed.
    pub fn index_entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// CRC32C of the records (computed now, over the whole body).
    pub fn crc(&self) -> u32 {
        crc32c_bulk(self.body())
    }

    /// Fills in the header, CRC included, and returns the bytes to write (header + body,
    /// zero-padded to a multiple of `pad_to`) and the body CRC. The padding is removed
    /// again by [`unpad`](Self::unpad) or [`clear`](Self::clear).
    pub(crate) fn finish(&mut self, pad_to: usize) -> (&[u8], u32) {
        let crc = self.crc();
        self.finish_crc(pad_to, crc)
    }

    /// [`finish`](Self::finish), computing the CRC through the piece checksums that
    /// `pieces` receives (see [`crate::pieces`]): the same one pass over the body.
    pub(crate) fn finish_with_pieces(
        &mut self,
        pad_to: usize,
        pieces: &mut Vec<u8>,
    ) -> (&[u8], u32) {
        let crc = crate::pieces::encode(self.body(), pieces);
        self.finish_crc(pad_to, crc)
    }

    fn finish_crc(&mut self, pad_to: usize, crc: u32) -> (&[u8], u32) {
        let h = ChunkHeader {
            body_len: self.len_bytes() as u32,
            packets: self.packets,
            body_crc: crc,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        };
        self.buf[self.start..self.start + CHUNK_HEADER_LEN].copy_from_slice(&h.encode());
        let len = self.buf.len() - self.start;
        let padded = len.div_ceil(pad_to.max(1)) * pad_to.max(1);
        self.buf.resize(self.start + padded, 0);
        (&self.buf[self.start..], crc)
    }

    /// Drops the padding added by [`finish`](Self::finish).
    pub(crate) fn unpad(&mut self, body_len: usize) {
        self.buf.truncate(self.start + CHUNK_HEADER_LEN + body_len);
    }
}

/// CRC32C of a large buffer (a chunk body) by carry-less multiply folding: on the capture
/// box (AVX-512 VPCLMULQDQ) about 2x the `crc32c` crate's speed over 1 MiB. The same
/// checksum as `crc32c::crc32c`, which readers use to check what was written.
pub fn crc32c_bulk(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// The header in front of every chunk body in a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    pub body_len: u32,
    pub packets: u32,
    pub body_crc: u32,
    pub first_ts: u64,
    pub last_ts: u64,
}

impl ChunkHeader {
    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[0..4].copy_from_slice(&CHUNK_MAGIC);
        b[4..8].copy_from_slice(&self.body_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.packets.to_le_bytes());
        b[12..16].copy_from_slice(&self.body_crc.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_ts.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_ts.to_le_bytes());
        b
    }
    pub fn decode(b: &[u8; CHUNK_HEADER_LEN]) -> Option<Self> {
        (b[0..4] == CHUNK_MAGIC).then(|| Self {
            body_len: le32(b, 4),
            packets: le32(b, 8),
            body_crc: le32(b, 12),
            first_ts: le64(b, 16),
            last_ts: le64(b, 24),
        })
    }
}

/// Walks the record headers of a chunk body: `(ts_ns, record length)` per packet.
/// Stops at the first record that does not fit (a damaged body).
pub(crate) fn record_lengths(body: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = RecordHeader::parse_le(body.get(at..)?)?;
        let (ts, len) = (h.ts_ns(), h.record_len());
        if at + len > body.len() {
            return None;
        }
        at += len;
        Some((ts, len as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Indexer, Marks};
    use proptest::prelude::*;

    proptest! {
        /// The writer's checksum is the readers' checksum, whatever the length and
        /// alignment.
        #[test]
        fn bulk_crc_equals_crc32c(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            skip in 0usize..64,
        ) {
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(crc32c_bulk(d), crc32c::crc32c(d));
        }

        /// Indexing from what the pushes noted equals indexing by walking the records, over
        /// random packets cut into random chunks (chunks finished, unpadded and reused as
        /// the writer does): same entries per chunk, same time and size marks, same totals.
        #[test]
        fn index_from_push_equals_index_from_walk(
            pkts in proptest::collection::vec((0u64..3_000_000_000, 0usize..300_000), 1..300),
            cuts in proptest::collection::vec(1usize..40, 1..40),
            pads in proptest::collection::vec(prop_oneof![Just(1usize), Just(4096)], 1..8),
        ) {
            let (mut from_push, mut from_walk) = (Indexer::default(), Indexer::default());
            let (mut marks_push, mut marks_walk) = (Marks::default(), Marks::default());
            let mut chunk = Chunk::with_capacity(4096);
            let mut ts = 1_700_000_000 * NS_PER_SEC;
            let mut cut = cuts.iter().cycle();
            let mut pad = pads.iter().cycle();
            let mut left = *cut.next().unwrap();
            let data = vec![0xa5u8; 300_000];
            for (i, (gap, len)) in pkts.iter().enumerate() {
                // Mostly small steps, sometimes whole seconds; lengths beyond the maximum
                // are refused by push and must leave no entry behind.
                ts += if i % 5 == 0 { *gap } else { gap % 1000 };
                let len = if i % 3 == 0 { len % 1600 } else { *len };
                let r = chunk.push_parts(ts / NS_PER_SEC, (ts % NS_PER_SEC) as u32, len as u32 + 4, &data[..len]);
                prop_assert_eq!(r.is_ok(), len <= MAX_PACKET_LEN as usize);
                left -= 1;
                if left == 0 || i == pkts.len() - 1 {
                    let body_len = chunk.len_bytes();
                    let (_, crc) = chunk.finish(*pad.next().unwrap());
                    chunk.unpad(body_len);
                    prop_assert_eq!(crc, crc32c::crc32c(chunk.body()));
                    let noted: Vec<(u64, u64)> = chunk
                        .index_entries()
                        .iter()
                        .map(|e| (e.ts_ns, u64::from(e.rec_len)))
                        .collect();
                    let walked: Vec<(u64, u64)> = record_lengths(chunk.body()).collect();
                    prop_assert_eq!(&noted, &walked);
                    prop_assert_eq!(noted.len(), chunk.packets() as usize);
                    for (t, l) in noted { from_push.observe(t, l, &mut marks_push); }
                    for (t, l) in walked { from_walk.observe(t, l, &mut marks_walk); }
                    chunk.clear();
                    prop_assert!(chunk.index_entries().is_empty());
                    left = *cut.next().unwrap();
                }
            }
            prop_assert_eq!(from_push.packets(), from_walk.packets());
            prop_assert_eq!(from_push.pos(), from_walk.pos());
            prop_assert_eq!(&marks_push.time, &marks_walk.time);
            prop_assert_eq!(&marks_push.size, &marks_walk.size);
        }
    }

    #[test]
    fn chunk_builds_records_and_refuses_disorder() {
        let mut c = Chunk::with_capacity(1024);
        c.push_parts(10, 5, 100, &[1, 2, 3]).unwrap();
        c.push_parts(10, 5, 3, &[4]).unwrap();
        assert!(matches!(
            c.push_parts(10, 4, 3, &[4]),
            Err(Error::OutOfOrder { .. })
        ));
        assert!(matches!(
            c.push_parts(1 << 33, 0, 1, &[0]),
            Err(Error::TimestampOutOfRange { .. })
        ));
        assert_eq!(c.packets(), 2);
        assert_eq!(c.len_bytes(), 16 + 3 + 16 + 1);
        let recs: Vec<_> = record_lengths(c.body()).collect();
        assert_eq!(recs, vec![(10_000_000_005, 19), (10_000_000_005, 17)]);
        let body_crc = crc32c::crc32c(c.body());
        let (bytes, crc) = c.finish(4096);
        assert_eq!(bytes.len(), 4096);
        assert_eq!(bytes.as_ptr() as usize % 4096, 0);
        let h = ChunkHeader::decode(bytes[..32].try_into().unwrap()).unwrap();
        assert_eq!(h.packets, 2);
        assert_eq!(h.body_crc, crc);
        assert_eq!(crc, body_crc);
        c.unpad(36);
        assert_eq!(c.len_bytes(), 36);
        // Growing past the capacity keeps the alignment and the CRC.
        for i in 0..3000u32 {
            c.push_parts(11, i, 600, &[i as u8; 600]).unwrap();
        }
        assert_eq!(c.crc(), crc32c::crc32c(c.body()));
        let (bytes, _) = c.finish(4096);
        assert_eq!(bytes.as_ptr() as usize % 4096, 0);
        assert_eq!(h.first_ts, 10_000_000_005);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.len_bytes(), 0);
    }
}
