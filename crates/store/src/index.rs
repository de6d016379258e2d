//! The index: fixed-size little-endian records, appended after the data they describe.
//!
//! Three kinds of file make up a stream's index, all derived from the packets alone and so
//! rebuildable from the segments:
//!
//! * `chunks.idx`: one [`ChunkRecord`] per chunk: where its bytes are, which packets and
//!   which logical stream bytes it holds, its time range and CRCs.
//! * `time.idx`: one [`Mark`] per second that holds packets: the first packet of that
//!   second and its logical byte position. Every time split (1 s … 1 h) is a run of these.
//! * `size-<L>.idx`: one [`Mark`] per file of the size split `L` (1 MB … 1 TB) after the
//!   first: where the next file must start so that no file exceeds `L` bytes.
//!
//! The *logical position* of a packet is the number of record bytes before it in the
//! stream (pcap file header excluded), so a download of packets `[a, b)` is exactly
//! `24 + pos(b) - pos(a)` bytes and every split's size comes from two marks, without
//! reading packet data. The [`Indexer`] is pure: it sees `(timestamp, record length)` per
//! packet and emits marks; the writer persists them.

use wirecap_pcap::PCAP_NS_HEADER_LEN;

use crate::timefmt::NS_PER_SEC;

pub const CHUNK_RECORD_LEN: usize = 64;
pub const MARK_LEN: usize = 24;

/// The size splits, in bytes (decimal units, as disks are sold: 1 MB = 10^6 bytes).
pub const SIZE_LEVELS: [u64; 7] = [
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
];
pub const SIZE_LEVEL_NAMES: [&str; 7] = ["1MB", "10MB", "100MB", "1GB", "10GB", "100GB", "1TB"];

/// Where one chunk lives and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChunkRecord {
    /// Logical position of the chunk's first record.
    pub pos: u64,
    /// Stream index of the chunk's first packet.
    pub first_packet: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    /// Offset of the chunk header in its segment file.
    pub file_offset: u64,
    pub segment: u32,
    /// Bytes of records (the chunk header excluded).
    pub body_len: u32,
    pub packets: u32,
    pub body_crc: u32,
}

impl ChunkRecord {
    pub fn end_pos(&self) -> u64 {
        self.pos + u64::from(self.body_len)
    }
    pub fn end_packet(&self) -> u64 {
        self.first_packet + u64::from(self.packets)
    }
    /// File offset of the first record.
    pub fn body_offset(&self) -> u64 {
        self.file_offset + crate::chunk::CHUNK_HEADER_LEN as u64
    }

    pub fn encode(&self) -> [u8; CHUNK_RECORD_LEN] {
        let mut b = [0u8; CHUNK_RECORD_LEN];
        b[0..8].copy_from_slice(&self.pos.to_le_bytes());
        b[8..16].copy_from_slice(&self.first_packet.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_ts.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.file_offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.segment.to_le_bytes());
        b[44..48].copy_from_slice(&self.body_len.to_le_bytes());
        b[48..52].copy_from_slice(&self.packets.to_le_bytes());
        b[52..56].copy_from_slice(&self.body_crc.to_le_bytes());
        // 56..60 reserved for flags (compression, summaries), zero today.
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` when the record's own CRC does not match (a torn or damaged write).
    pub fn decode(b: &[u8; CHUNK_RECORD_LEN]) -> Option<Self> {
        if crc32c::crc32c(&b[..60]) != le32(b, 60) {
            return None;
        }
        Some(Self {
            pos: le64(b, 0),
            first_packet: le64(b, 8),
            first_ts: le64(b, 16),
            last_ts: le64(b, 24),
            file_offset: le64(b, 32),
            segment: le32(b, 40),
            body_len: le32(b, 44),
            packets: le32(b, 48),
            body_crc: le32(b, 52),
        })
    }
}

/// A point in the stream: the first packet at or after `key` (a second for `time.idx`, a
/// timestamp for size cuts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Mark {
    pub key: u64,
    pub packet: u64,
    pub pos: u64,
}

impl Mark {
    pub fn encode(&self) -> [u8; MARK_LEN] {
        let mut b = [0u8; MARK_LEN];
        b[0..8].copy_from_slice(&self.key.to_le_bytes());
        b[8..16].copy_from_slice(&self.packet.to_le_bytes());
        b[16..24].copy_from_slice(&self.pos.to_le_bytes());
        b
    }
    pub fn decode(b: &[u8; MARK_LEN]) -> Self {
        Self {
            key: le64(b, 0),
            packet: le64(b, 8),
            pos: le64(b, 16),
        }
    }
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

/// Marks produced while indexing a batch of packets.
#[derive(Debug, Default)]
pub struct Marks {
    pub time: Vec<Mark>,
    pub size: [Vec<Mark>; SIZE_LEVELS.len()],
}

impl Marks {
    pub fn clear(&mut self) {
        self.time.clear();
        self.size.iter_mut().for_each(Vec::clear);
    }
}

/// Turns the packet sequence into time and size marks, one comparison per packet in the
/// common case.
#[derive(Clone, Debug)]
pub struct Indexer {
    packets: u64,
    pos: u64,
    next_sec_ns: u64,
    /// Logical position where the current file of each size split starts.
    level_start: [u64; SIZE_LEVELS.len()],
    /// Smallest `start + L - header`: only a packet that ends past it can cut a file.
    next_limit: u64,
}

impl Default for Indexer {
    fn default() -> Self {
        Self::resume(0, 0, None, [0; SIZE_LEVELS.len()])
    }
}

impl Indexer {
    /// Continues an existing stream: `last_sec` is the key of the last time mark.
    pub fn resume(
        packets: u64,
        pos: u64,
        last_sec: Option<u64>,
        level_start: [u64; SIZE_LEVELS.len()],
    ) -> Self {
        let mut ix = Self {
            packets,
            pos,
            next_sec_ns: last_sec.map_or(0, |s| (s + 1).saturating_mul(NS_PER_SEC)),
            level_start,
            next_limit: 0,
        };
        ix.next_limit = ix.compute_limit();
        ix
    }

    fn compute_limit(&self) -> u64 {
        self.level_start
            .iter()
            .zip(SIZE_LEVELS)
            .map(|(s, l)| s + l - PCAP_NS_HEADER_LEN as u64)
            .min()
            .unwrap_or(u64::MAX)
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Accounts for one packet whose record (16-byte header included) is `rec_len` bytes.
    #[inline]
    pub fn observe(&mut self, ts_ns: u64, rec_len: u64, out: &mut Marks) {
        if ts_ns >= self.next_sec_ns {
            let sec = ts_ns / NS_PER_SEC;
            out.time.push(Mark {
                key: sec,
                packet: self.packets,
                pos: self.pos,
            });
            self.next_sec_ns = (sec + 1).saturating_mul(NS_PER_SEC);
        }
        if self.pos + rec_len > self.next_limit {
            self.cut(ts_ns, rec_len, out);
        }
        self.packets += 1;
        self.pos += rec_len;
    }

    #[cold]
    fn cut(&mut self, ts_ns: u64, rec_len: u64, out: &mut Marks) {
        for (i, level) in SIZE_LEVELS.iter().enumerate() {
            let start = self.level_start[i];
            if self.pos > start && self.pos + rec_len + PCAP_NS_HEADER_LEN as u64 - start > *level {
                out.size[i].push(Mark {
                    key: ts_ns,
                    packet: self.packets,
                    pos: self.pos,
                });
                self.level_start[i] = self.pos;
            }
        }
        self.next_limit = self.compute_limit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunk_record_round_trip_and_crc() {
        let r = ChunkRecord {
            pos: 1,
            first_packet: 2,
            first_ts: 3,
            last_ts: 4,
            file_offset: 5,
            segment: 6,
            body_len: 7,
            packets: 8,
            body_crc: 9,
        };
        let mut b = r.encode();
        assert_eq!(ChunkRecord::decode(&b), Some(r));
        b[3] ^= 1;
        assert_eq!(ChunkRecord::decode(&b), None);
    }

    proptest! {
        /// Size cuts partition the stream into files of at most L bytes unless a file is a
        /// single packet, and greedily: adding the next packet to a file would exceed L.
        #[test]
        fn size_cuts_are_greedy_and_bounded(
            lens in proptest::collection::vec(16u64..300_000, 1..400),
        ) {
            let mut ix = Indexer::default();
            let mut marks = Marks::default();
            for (i, l) in lens.iter().enumerate() {
                ix.observe(i as u64, *l, &mut marks);
            }
            let total: u64 = lens.iter().sum();
            for (lvl, size) in SIZE_LEVELS.iter().enumerate() {
                let mut starts = vec![0u64];
                starts.extend(marks.size[lvl].iter().map(|m| m.packet));
                starts.push(lens.len() as u64);
                let mut pos = 0;
                for w in starts.windows(2) {
                    let (a, b) = (w[0] as usize, w[1] as usize);
                    prop_assert!(b > a);
                    let bytes: u64 = lens[a..b].iter().sum::<u64>() + 24;
                    prop_assert!(bytes <= *size || b - a == 1);
                    if b < lens.len() {
                        prop_assert!(bytes + lens[b] > *size, "cut too early");
                    }
                    pos += bytes - 24;
                }
                prop_assert_eq!(pos, total);
            }
        }

        /// One time mark per distinct second, at that second's first packet.
        #[test]
        fn time_marks_one_per_second(
            gaps in proptest::collection::vec(0u64..3 * NS_PER_SEC, 1..300),
        ) {
            let mut ix = Indexer::default();
            let mut marks = Marks::default();
            let mut ts = 1_700_000_000 * NS_PER_SEC;
            let mut all = vec![];
            for g in gaps {
                ts += g;
                all.push(ts);
                ix.observe(ts, 100, &mut marks);
            }
            let mut secs: Vec<u64> = all.iter().map(|t| t / NS_PER_SEC).collect();
            secs.dedup();
            prop_assert_eq!(marks.time.iter().map(|m| m.key).collect::<Vec<_>>(), secs);
            for m in &marks.time {
                let i = m.packet as usize;
                prop_assert_eq!(all[i] / NS_PER_SEC, m.key);
                prop_assert!(i == 0 || all[i - 1] / NS_PER_SEC < m.key);
                prop_assert_eq!(m.pos, m.packet * 100);
            }
        }

        /// Indexing in two halves with `resume` gives the same marks as in one go.
        #[test]
        fn resume_matches_continuous(
            lens in proptest::collection::vec(16u64..2_000_000, 2..200),
            split in 1usize..199,
        ) {
            let split = split.min(lens.len() - 1);
            let ts = |i: usize| i as u64 * 300_000_000;
            let mut whole = Marks::default();
            let mut ix = Indexer::default();
            for (i, l) in lens.iter().enumerate() { ix.observe(ts(i), *l, &mut whole); }

            let mut first = Marks::default();
            let mut ix = Indexer::default();
            for (i, l) in lens[..split].iter().enumerate() { ix.observe(ts(i), *l, &mut first); }
            let mut starts = [0u64; 7];
            for (lvl, v) in first.size.iter().enumerate() {
                if let Some(m) = v.last() { starts[lvl] = m.pos; }
            }
            let mut ix2 = Indexer::resume(ix.packets(), ix.pos(), first.time.last().map(|m| m.key), starts);
            let mut second = Marks::default();
            for (i, l) in lens.iter().enumerate().skip(split) { ix2.observe(ts(i), *l, &mut second); }
            first.time.extend(second.time);
            prop_assert_eq!(first.time, whole.time);
            for lvl in 0..7 {
                let mut a = first.size[lvl].clone();
                a.extend(second.size[lvl].iter().copied());
                prop_assert_eq!(&a, &whole.size[lvl]);
            }
        }
    }
}
