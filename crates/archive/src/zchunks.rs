//! Compressed in the archive, still seekable: a segment stored as one zstd frame per
//! chunk (`seg-NNNNNNNN.wcs.zst`) and a seek table (`seg-NNNNNNNN.wcs.zidx`) giving, for
//! each frame, where its bytes are in the segment and in the object.
//!
//! Frames are cut at the chunks' offsets (from the stream's `chunks.idx`), each covering
//! its chunk and the padding after it, so the frames decompress back to the segment byte
//! for byte, and a read of some chunks fetches (with one ranged GET) and decompresses only
//! their frames. Object storage is paid per byte stored and fetched; compression runs in
//! writeback, on the archive's own threads, never on the capture's core.
//!
//! Seek table (little-endian): `b"WCZT"`, version u32 (1), frame count u32, then per frame
//! raw offset u64, raw length u32, stored offset u64, stored length u32 (24 bytes).

use crate::Error;

pub const SUFFIX: &str = ".zst";
pub const TABLE_SUFFIX: &str = ".zidx";
const MAGIC: &[u8; 4] = b"WCZT";
const ENTRY: usize = 24;
/// zstd level: fast enough for writeback at disk speed on one core.
pub const LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub raw_offset: u64,
    pub raw_len: u32,
    pub stored_offset: u64,
    pub stored_len: u32,
}

impl Frame {
    pub fn raw_end(&self) -> u64 {
        self.raw_offset + u64::from(self.raw_len)
    }
}

/// Where frames start: the chunks' offsets in the segment (0 added, sorted, deduplicated,
/// those at or past `seg_len` dropped).
pub fn cuts(mut offsets: Vec<u64>, seg_len: u64) -> Vec<u64> {
    offsets.push(0);
    offsets.retain(|o| *o < seg_len);
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

/// Compresses `segment` into frames starting at `cuts` (see [`cuts`]): the object and
/// its seek table.
pub fn compress(segment: &[u8], cuts: &[u64]) -> Result<(Vec<u8>, Vec<Frame>), Error> {
    let mut out = Vec::with_capacity(segment.len() / 2);
    let mut frames = Vec::with_capacity(cuts.len());
    for (i, &from) in cuts.iter().enumerate() {
        let to = cuts.get(i + 1).copied().unwrap_or(segment.len() as u64);
        let raw = &segment[from as usize..to as usize];
        let z = zstd::bulk::compress(raw, LEVEL).map_err(|e| Error::Io {
            what: "zstd compression".into(),
            source: e,
        })?;
        frames.push(Frame {
            raw_offset: from,
            raw_len: raw.len() as u32,
            stored_offset: out.len() as u64,
            stored_len: z.len() as u32,
        });
        out.extend_from_slice(&z);
    }
    Ok((out, frames))
}

pub fn encode_table(frames: &[Frame]) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + frames.len() * ENTRY);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for f in frames {
        b.extend_from_slice(&f.raw_offset.to_le_bytes());
        b.extend_from_slice(&f.raw_len.to_le_bytes());
        b.extend_from_slice(&f.stored_offset.to_le_bytes());
        b.extend_from_slice(&f.stored_len.to_le_bytes());
    }
    b
}

pub fn decode_table(b: &[u8]) -> Result<Vec<Frame>, String> {
    if b.len() < 12 || &b[..4] != MAGIC {
        return Err("not a wirecap seek table".into());
    }
    let le32 = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let le64 = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    if le32(4) != 1 {
        return Err(format!("seek table version {}", le32(4)));
    }
    let n = le32(8) as usize;
    if b.len() != 12 + n * ENTRY {
        return Err(format!("seek table of {} bytes for {n} frames", b.len()));
    }
    let mut v: Vec<Frame> = (0..n)
        .map(|i| {
            let at = 12 + i * ENTRY;
            Frame {
                raw_offset: le64(at),
                raw_len: le32(at + 8),
                stored_offset: le64(at + 12),
                stored_len: le32(at + 20),
            }
        })
        .collect();
    for w in v.windows(2) {
        if w[1].raw_offset != w[0].raw_end()
            || w[1].stored_offset != w[0].stored_offset + u64::from(w[0].stored_len)
        {
            return Err("seek table frames do not follow each other".into());
        }
    }
    v.shrink_to_fit();
    Ok(v)
}

/// Index of the frame holding segment byte `offset`.
pub fn frame_at(frames: &[Frame], offset: u64) -> Option<usize> {
    let i = frames.partition_point(|f| f.raw_end() <= offset);
    (i < frames.len() && frames[i].raw_offset <= offset).then_some(i)
}

/// Decompresses one frame; its size must be what the table says.
pub fn decompress(z: &[u8], f: &Frame) -> Result<Vec<u8>, String> {
    let v = zstd::bulk::decompress(z, f.raw_len as usize)
        .map_err(|e| format!("zstd frame at byte {} of the object: {e}", f.stored_offset))?;
    if v.len() != f.raw_len as usize {
        return Err(format!(
            "zstd frame at byte {} holds {} bytes, the seek table says {}",
            f.stored_offset,
            v.len(),
            f.raw_len
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decompress_to_the_segment_and_are_found_by_offset() {
        let seg: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let c = cuts(vec![100_000, 250_000, 400_000], seg.len() as u64);
        assert_eq!(c, vec![0, 100_000, 250_000]);
        let (obj, frames) = compress(&seg, &c).unwrap();
        assert!(obj.len() < seg.len() / 10);
        let t = decode_table(&encode_table(&frames)).unwrap();
        assert_eq!(t, frames);
        let mut back = Vec::new();
        for f in &t {
            let z = &obj[f.stored_offset as usize..][..f.stored_len as usize];
            back.extend(decompress(z, f).unwrap());
        }
        assert_eq!(back, seg);
        assert_eq!(frame_at(&t, 0), Some(0));
        assert_eq!(frame_at(&t, 249_999), Some(1));
        assert_eq!(frame_at(&t, 250_000), Some(2));
        assert_eq!(frame_at(&t, 300_000), None);
        assert!(decode_table(b"nope").is_err());
    }
}
