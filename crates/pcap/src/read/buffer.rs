//! The reader's input buffer: one large allocation, refilled by compaction.
//!
//! Import speed is measured against `tcpdump -r in -w out`, so the hot path must cost a
//! few loads and compares per packet: no allocation, no syscall. A `BufReader` would
//! copy every packet into the caller's buffer; instead the parsers look at the bytes
//! where `read()` put them and hand out slices of this buffer. When fewer bytes remain
//! than the next record needs, the unconsumed tail moves to the front (a copy of less
//! than one record) and the rest of the buffer is filled with one large `read()`.
//!
//! The buffer grows only when a single record or block is larger than it; with the
//! default capacity of 1 MiB that never happens for pcap (records are at most
//! `MAX_PACKET_LEN` + 16 bytes) and only for unusually large pcapng blocks.

use std::io::{self, Read};

use crate::MAX_PACKET_LEN;

pub(crate) const DEFAULT_CAPACITY: usize = 1 << 20;

pub(crate) struct Buffer {
    /// Always fully initialised (`len() == capacity`), so reads can target it directly.
    data: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// One past the last byte read.
    end: usize,
    /// Input offset of `data[start]`.
    pos: u64,
    eof: bool,
}

impl Buffer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            data: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
            pos: 0,
            eof: false,
        }
    }

    /// Input offset of the first unconsumed byte.
    #[inline]
    pub(crate) const fn pos(&self) -> u64 {
        self.pos
    }

    #[inline]
    pub(crate) const fn available(&self) -> usize {
        self.end - self.start
    }

    pub(crate) const fn capacity(&self) -> usize {
        self.data.len()
    }

    /// The unconsumed bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Index into [`Self::data`] of the first unconsumed byte, for building ranges that
    /// outlive the `&self` borrow of [`Self::bytes`].
    #[inline]
    pub(crate) const fn start(&self) -> usize {
        self.start
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.pos += n as u64;
    }

    /// Makes at least `need` bytes available unless the input ends first, and returns
    /// how many are available (less than `need` only at end of input).
    #[inline]
    pub(crate) fn fill<R: Read>(&mut self, r: &mut R, need: usize) -> io::Result<usize> {
        if self.available() >= need {
            return Ok(self.available());
        }
        self.fill_slow(r, need)
    }

    #[cold]
    fn fill_slow<R: Read>(&mut self, r: &mut R, need: usize) -> io::Result<usize> {
        if need > self.data.len() - self.start {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if need > self.data.len() {
                // Grow once to something that holds any pcap record, rather than
                // creeping up one record at a time.
                let record_max = MAX_PACKET_LEN as usize + crate::PCAP_RECORD_HEADER_LEN;
                self.data.resize(need.max(record_max), 0);
            }
        }
        while self.available() < need && !self.eof {
            match r.read(&mut self.data[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.available())
    }

    /// Consumes `n` bytes without keeping them (for blocks too large to buffer) and
    /// returns how many there were before the input ended.
    pub(crate) fn skip<R: Read>(&mut self, r: &mut R, mut n: u64) -> io::Result<u64> {
        let mut skipped = 0;
        while n > 0 {
            let avail = self.fill(r, 1)?;
            if avail == 0 {
                break;
            }
            let take = usize::try_from(n).unwrap_or(usize::MAX).min(avail);
            self.consume(take);
            n -= take as u64;
            skipped += take as u64;
        }
        Ok(skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `chunk` bytes per `read()`, like a pipe.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn fill_compacts_grows_and_tracks_offsets() {
        let input: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut r = Trickle {
            data: &input,
            chunk: 7,
        };
        let mut b = Buffer::with_capacity(64);
        assert_eq!(b.fill(&mut r, 10).unwrap(), 14);
        b.consume(10);
        assert_eq!(b.pos(), 10);
        // Needs more than the capacity: compacts and grows.
        assert!(b.fill(&mut r, 500).unwrap() >= 500);
        assert_eq!(&b.bytes()[..500], &input[10..510]);
        assert!(b.capacity() >= MAX_PACKET_LEN as usize);
        b.consume(500);
        assert_eq!(b.skip(&mut r, 10_000).unwrap(), 490);
        assert_eq!(b.pos(), 1000);
        assert_eq!(b.fill(&mut r, 1).unwrap(), 0);
    }
}
