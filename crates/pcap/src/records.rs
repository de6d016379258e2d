//! [`records`]: zero-copy iteration over a buffer of pcap-ns records without a file
//! header, the layout of wirecap's store chunks.
//!
//! A chunk is produced by wirecap itself (little-endian, nanosecond timestamps, written
//! with [`crate::pcap_record_header`]) and is usually memory-mapped or read whole, so
//! this is a plain `Iterator` over a slice rather than a reader: no buffer management,
//! no errors. A partial record at the end (a chunk still being appended to, or cut by a
//! crash) ends the iteration; [`Records::consumed`] tells the caller where the complete
//! records stop, so it can truncate or resume there.

use crate::{PCAP_RECORD_HEADER_LEN, Packet, RecordHeader};

/// Iterator over the complete records at the start of a buffer; see [`records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Iterates the little-endian pcap-ns records of `buf` (no file header), stopping before a
/// partial trailing record.
pub fn records(buf: &[u8]) -> Records<'_> {
    Records { buf, pos: 0 }
}

impl Records<'_> {
    /// Bytes of the buffer taken by the records returned so far.
    pub const fn consumed(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Packet<'a>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'a>> {
        let rest = self.buf.get(self.pos..)?;
        let h = RecordHeader::parse_le(rest)?;
        let end = PCAP_RECORD_HEADER_LEN.checked_add(h.caplen as usize)?;
        let data = rest.get(PCAP_RECORD_HEADER_LEN..end)?;
        self.pos += end;
        Some(Packet {
            ts_sec: u64::from(h.ts_sec),
            ts_nsec: h.ts_nsec,
            orig_len: h.orig_len,
            data,
            interface: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap_record_header;

    #[test]
    fn iterates_complete_records_only() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&pcap_record_header(1, 2, 3, 60));
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(&pcap_record_header(4, 1_500_000_000, 0, 0));
        let complete = buf.len();
        buf.extend_from_slice(&pcap_record_header(5, 6, 10, 10));
        buf.extend_from_slice(b"12345");
        let mut it = records(&buf);
        let p = it.next().unwrap();
        assert_eq!(
            (p.ts_sec, p.ts_nsec, p.orig_len, p.data),
            (1, 2, 60, &b"abc"[..])
        );
        let p = it.next().unwrap();
        assert_eq!((p.ts_sec, p.ts_nsec, p.data.len()), (4, 1_500_000_000, 0));
        assert_eq!(it.next(), None);
        assert_eq!(it.consumed(), complete);
        assert_eq!(it.next(), None);

        let mut it = records(&buf[..complete - 1]);
        assert!(it.next().is_some());
        assert!(it.next().is_none());
        assert_eq!(it.consumed(), 16 + 3);
        assert_eq!(records(&[]).count(), 0);
    }
}
