//! The chunk builder: packets copied once, straight off the ring, into a
//! [`wirecap_store::Chunk`] — already in pcap nanosecond record format (`ts_sec, ts_nsec,
//! caplen, origlen` little-endian, then the bytes) behind the store's chunk header — the
//! unit the pipeline queues and the store writes as it is. No second copy: the writer hands
//! the very buffer the capture thread filled to [`wirecap_store::StreamWriter::write_chunk`]
//! and sends it back to the capture thread for reuse.
//!
//! A chunk's timestamps never go backwards: [`ChunkBuf::push`] clamps a timestamp that is
//! earlier than the previous packet's (a clock step on the capturing host, a replay file
//! out of order) to that previous timestamp and says so, so the caller can count it in
//! `packets_errors`. The packet itself is kept. The floor carries over [`ChunkBuf::clear`]
//! so a source's successive chunks are ordered too.

use crate::frame::{NS_PER_SEC, join_ns, split_ns};
use wirecap_pcap::{MAX_PACKET_LEN, RecordHeader};
use wirecap_store::Chunk;

/// Length of a pcap record header.
pub const RECORD_HEADER_LEN: usize = wirecap_pcap::PCAP_RECORD_HEADER_LEN;

/// What [`ChunkBuf::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Pushed {
    /// Stored with its own timestamp.
    Stored,
    /// Stored with its timestamp raised to the previous packet's (it went backwards).
    Clamped,
}

/// One record read back from a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Timestamp, ns since the epoch.
    pub ts_ns: u64,
    /// Wire length.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// Latest timestamp a pcap record can hold (u32 seconds).
const MAX_TS_NS: u64 = u32::MAX as u64 * NS_PER_SEC + (NS_PER_SEC - 1);

/// A store chunk being filled by one capture thread: pcap-ns records in non-decreasing time
/// order, plus what the pipeline counts about them.
#[derive(Debug)]
pub struct ChunkBuf {
    chunk: Chunk,
    capacity: usize,
    wire_bytes: u64,
    floor_ns: u64,
    clamped: u32,
}

impl ChunkBuf {
    /// An empty chunk that holds `capacity` bytes of records before [`Self::fits`] says no.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            chunk: Chunk::with_capacity(capacity),
            capacity,
            wire_bytes: 0,
            floor_ns: 0,
            clamped: 0,
        }
    }

    /// Whether a packet of `caplen` bytes fits without growing the buffer. An empty chunk
    /// takes any packet (it grows once for an oversized one).
    #[inline]
    pub fn fits(&self, caplen: usize) -> bool {
        self.chunk.is_empty()
            || self.chunk.len_bytes() + RECORD_HEADER_LEN + caplen <= self.capacity
    }

    /// Appends one packet. Timestamps earlier than the previous packet's (in this chunk or
    /// before the last [`Self::clear`]) are clamped to it. Bytes beyond the pcap maximum
    /// (256 KiB) are cut off; timestamps beyond 2106 saturate.
    #[inline]
    pub fn push(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> Pushed {
        let (ts, pushed) = if ts_ns < self.floor_ns {
            self.clamped += 1;
            (self.floor_ns, Pushed::Clamped)
        } else {
            (ts_ns.min(MAX_TS_NS), Pushed::Stored)
        };
        let data = &data[..data.len().min(MAX_PACKET_LEN as usize)];
        let caplen = data.len() as u32;
        let orig_len = orig_len.max(caplen);
        let (sec, nsec) = split_ns(ts);
        // Cannot fail: seconds fit in u32, the length is within the maximum and the
        // timestamp is not below the floor, which is at least the chunk's last timestamp.
        let pushed_ok = self.chunk.push_parts(sec, nsec, orig_len, data).is_ok();
        debug_assert!(pushed_ok);
        self.wire_bytes += u64::from(orig_len);
        self.floor_ns = ts;
        pushed
    }

    /// Empties the chunk, keeping its capacity and its timestamp floor.
    pub fn clear(&mut self) {
        self.chunk.clear();
        self.wire_bytes = 0;
        self.clamped = 0;
    }

    /// Raises the floor below which timestamps are clamped (never lowers it).
    pub fn raise_floor(&mut self, ts_ns: u64) {
        self.floor_ns = self.floor_ns.max(ts_ns);
    }

    /// Sets the floor (a recycled buffer taken over by another source).
    pub fn set_floor(&mut self, ts_ns: u64) {
        self.floor_ns = ts_ns;
    }

    /// The timestamp floor.
    pub fn floor(&self) -> u64 {
        self.floor_ns
    }

    /// The store chunk, to hand to [`wirecap_store::StreamWriter::write_chunk`].
    pub fn store_chunk(&mut self) -> &mut Chunk {
        &mut self.chunk
    }

    /// The records, header and data, back to back: the bytes a pcap-ns file holds after
    /// its global header.
    pub fn as_bytes(&self) -> &[u8] {
        self.chunk.body()
    }
    /// Bytes of records.
    pub fn len_bytes(&self) -> usize {
        self.chunk.len_bytes()
    }
    /// Bytes of records the chunk takes before [`Self::fits`] says no.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Packets in the chunk.
    pub fn packets(&self) -> u32 {
        self.chunk.packets()
    }
    /// Sum of the packets' wire lengths.
    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes
    }
    /// Sum of the captured lengths (record bytes less headers).
    pub fn captured_bytes(&self) -> u64 {
        (self.len_bytes() - self.packets() as usize * RECORD_HEADER_LEN) as u64
    }
    /// Whether the chunk holds no packet.
    pub fn is_empty(&self) -> bool {
        self.chunk.is_empty()
    }
    /// First timestamp (0 when empty).
    pub fn first_ns(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.chunk.first_ts()
        }
    }
    /// Last timestamp (0 when empty).
    pub fn last_ns(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.chunk.last_ts()
        }
    }
    /// Packets whose timestamp was clamped since the last clear.
    pub fn clamped(&self) -> u32 {
        self.clamped
    }

    /// Iterates the records.
    pub fn records(&self) -> Records<'_> {
        Records::new(self.as_bytes())
    }
}

/// Iterator over a chunk's (or any pcap-ns record stream's) records. Stops at the first
/// truncated record.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
}

impl<'a> Records<'a> {
    /// Iterates records in `buf` (pcap-ns, little-endian, no global header).
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;
    fn next(&mut self) -> Option<Record<'a>> {
        let h = RecordHeader::parse_le(self.buf)?;
        let data = self.buf.get(RECORD_HEADER_LEN..h.record_len())?;
        self.buf = &self.buf[h.record_len()..];
        debug_assert!(u64::from(h.ts_nsec) < NS_PER_SEC);
        Some(Record {
            ts_ns: join_ns(u64::from(h.ts_sec), h.ts_nsec),
            orig_len: h.orig_len,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_clamp() {
        let mut c = ChunkBuf::with_capacity(1024);
        assert_eq!(c.push(5_000_000_001, 100, &[1, 2, 3]), Pushed::Stored);
        assert_eq!(c.push(4_000_000_000, 3, &[4]), Pushed::Clamped);
        assert_eq!(c.push(6_000_000_000, 60, &[5; 60]), Pushed::Stored);
        assert_eq!(c.packets(), 3);
        assert_eq!(c.clamped(), 1);
        assert_eq!(c.wire_bytes(), 163);
        assert_eq!(c.captured_bytes(), 64);
        assert_eq!(c.len_bytes(), 3 * 16 + 64);
        let r: Vec<_> = c.records().collect();
        assert_eq!(
            r[0],
            Record {
                ts_ns: 5_000_000_001,
                orig_len: 100,
                data: &[1, 2, 3]
            }
        );
        assert_eq!(r[1].ts_ns, 5_000_000_001);
        assert_eq!(r[2].data.len(), 60);
        // The floor survives a clear.
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.push(1, 1, &[0]), Pushed::Clamped);
        assert_eq!(c.first_ns(), 6_000_000_000);
    }

    #[test]
    fn fits_respects_capacity() {
        let mut c = ChunkBuf::with_capacity(100);
        assert!(c.fits(1000)); // empty takes anything
        let _ = c.push(1, 50, &[0; 50]);
        assert!(c.fits(100 - 66 - 16));
        assert!(!c.fits(100 - 66 - 15));
    }
}
