//! Piece checksums: so that a read of a few packets checks a few kilobytes, not the
//! whole chunk they are in.
//!
//! Every chunk's body is cut into at most [`MAX_PIECES`] pieces of [`piece_len`] bytes
//! (4 KiB for a 1 MiB chunk), and `pieces.idx` holds, per chunk, a fixed record: the piece
//! length, then the CRC32C of every *prefix* of the body that ends at a piece boundary.
//! The last prefix is the whole body: it must equal the chunk's own CRC, so a record that
//! disagrees with its chunk is never trusted (the reader then checks the whole chunk, as
//! it does for streams without `pieces.idx`). A piece `k` is checked by computing its CRC
//! and combining it with prefix `k - 1`: the writer only streams the body through one CRC
//! state (the chunk CRC it computes anyway), with no extra pass over the data.
//!
//! Records are appended before the chunk's record in `chunks.idx`, like summaries, and
//! cut with them by recovery.

use crate::chunk::crc32c_bulk;

/// Most pieces per chunk.
pub const MAX_PIECES: usize = 256;
/// Smallest piece.
pub const MIN_PIECE: u32 = 4096;
/// Bytes of one chunk's record in `pieces.idx`.
pub const RECORD_LEN: usize = 4 + 4 * MAX_PIECES;

/// The piece length of a body of `body_len` bytes.
pub fn piece_len(body_len: u32) -> u32 {
    body_len
        .div_ceil(MAX_PIECES as u32)
        .max(MIN_PIECE)
        .next_multiple_of(MIN_PIECE)
}

/// Writes the record of `body` into `out` ([`RECORD_LEN`] bytes); returns the body's
/// CRC32C.
pub fn encode(body: &[u8], out: &mut Vec<u8>) -> u32 {
    out.clear();
    out.resize(RECORD_LEN, 0);
    let pl = piece_len(body.len() as u32);
    out[0..4].copy_from_slice(&pl.to_le_bytes());
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    for (k, p) in body.chunks(pl as usize).enumerate() {
        d.update(p);
        let at = 4 + 4 * k;
        out[at..at + 4].copy_from_slice(&(d.finalize() as u32).to_le_bytes());
    }
    d.finalize() as u32
}

/// A chunk's piece checksums, read back and consistent with the chunk's record.
#[derive(Clone, Debug)]
pub struct Pieces {
    piece_len: u32,
    body_len: u32,
    prefix: Vec<u32>,
}

impl Pieces {
    /// `None` when the record does not belong to a body of `body_len` bytes with CRC
    /// `body_crc`.
    pub fn decode(b: &[u8], body_len: u32, body_crc: u32) -> Option<Self> {
        if b.len() < RECORD_LEN {
            return None;
        }
        let le = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let pl = le(0);
        if pl != piece_len(body_len) {
            return None;
        }
        let n = body_len.div_ceil(pl) as usize;
        if n == 0 || n > MAX_PIECES {
            return None;
        }
        let prefix: Vec<u32> = (0..n).map(|k| le(4 + 4 * k)).collect();
        (prefix[n - 1] == body_crc).then_some(Self {
            piece_len: pl,
            body_len,
            prefix,
        })
    }

    pub fn piece_len(&self) -> u32 {
        self.piece_len
    }

    /// The pieces that bytes `[from, to)` of the body touch.
    pub fn span(&self, from: u64, to: u64) -> std::ops::Range<usize> {
        let pl = u64::from(self.piece_len);
        (from / pl) as usize..(to.min(u64::from(self.body_len)).div_ceil(pl)) as usize
    }

    /// Whether piece `k` of `body` is intact.
    pub fn check(&self, body: &[u8], k: usize) -> bool {
        let pl = self.piece_len as usize;
        let Some(want) = self.prefix.get(k) else {
            return false;
        };
        let Some(data) = body.get(k * pl..((k + 1) * pl).min(body.len())) else {
            return false;
        };
        // The CRC carried on from the prefix before the piece: as cheap as the piece's
        // own CRC, where combining two CRCs cost ten times the piece's (a selective
        // query's largest cost).
        let got = match k {
            0 => crc32c_bulk(data),
            _ => crc32c::crc32c_append(self.prefix[k - 1], data),
        };
        got == *want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_check_pieces_and_end_in_the_body_crc() {
        for len in [
            1usize,
            4095,
            4096,
            4097,
            100_000,
            1 << 20,
            (1 << 20) + 5,
            3 << 20,
        ] {
            let body: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut rec = Vec::new();
            let crc = encode(&body, &mut rec);
            assert_eq!(crc, crc32c::crc32c(&body), "{len}");
            let p = Pieces::decode(&rec, len as u32, crc).expect("consistent");
            let n = len.div_ceil(p.piece_len() as usize);
            assert!(n <= MAX_PIECES);
            for k in 0..n {
                assert!(p.check(&body, k), "{len} piece {k}");
            }
            let mut bad = body.clone();
            bad[len / 2] ^= 1;
            let k = len / 2 / p.piece_len() as usize;
            assert!(!p.check(&bad, k));
            assert!(Pieces::decode(&rec, len as u32, crc ^ 1).is_none());
            assert_eq!(p.span(0, len as u64), 0..n);
        }
    }
}
