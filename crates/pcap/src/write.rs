//! Writers: pcap with nanosecond timestamps, and pcapng.
//!
//! Both write little-endian, whatever the host, so that files (and wirecap's store chunks,
//! which are headerless pcap-ns records built with [`pcap_record_header`]) are
//! byte-identical across machines. The header builders are plain functions returning
//! arrays, so the store can lay out chunks without going through a `Write`.
//!
//! The writers do not buffer: wrap a `File` in a `BufWriter`. Buffering here would make
//! `into_inner` fallible or lossy.
//!
//! A packet the crate's own reader would refuse (captured length above
//! [`MAX_PACKET_LEN`], a timestamp the format cannot hold) is refused with an error
//! instead of being written, so that every file written here can be read back.

use std::io::{self, Write};

use crate::error::{Error, ErrorKind};
use crate::read::pcap::MAGIC_NS;
use crate::read::pcapng::{BT_EPB, BT_IDB, BT_SHB};
use crate::{LinkType, MAX_PACKET_LEN, Packet};

/// Length of the pcap file header written by [`pcap_ns_header`].
pub const PCAP_NS_HEADER_LEN: usize = 24;
/// Length of a pcap record header written by [`pcap_record_header`].
pub const PCAP_RECORD_HEADER_LEN: usize = 16;

/// A little-endian pcap file header: magic `a1b23c4d` (ns timestamps), version 2.4.
#[inline]
pub fn pcap_ns_header(link: LinkType, snaplen: u32) -> [u8; PCAP_NS_HEADER_LEN] {
    let mut h = [0u8; PCAP_NS_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC_NS.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs: 0, as every modern writer does.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&u32::from(link.0).to_le_bytes());
    h
}

/// The four fields of a pcap record header, in the little-endian layout wirecap writes
/// (store chunks, pcap-ns files): the one place that layout is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Seconds.
    pub ts_sec: u32,
    /// Nanoseconds (microseconds in a pcap-us file).
    pub ts_nsec: u32,
    /// Captured length: the bytes that follow the header.
    pub caplen: u32,
    /// Length on the wire.
    pub orig_len: u32,
}

impl RecordHeader {
    /// Reads the little-endian header at the start of `b`, if `b` holds one.
    #[inline]
    pub fn parse_le(b: &[u8]) -> Option<Self> {
        let h: &[u8; PCAP_RECORD_HEADER_LEN] = b.first_chunk()?;
        let at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Some(Self {
            ts_sec: at(0),
            ts_nsec: at(4),
            caplen: at(8),
            orig_len: at(12),
        })
    }

    /// The header's bytes, little-endian.
    #[inline]
    pub fn to_le_bytes(self) -> [u8; PCAP_RECORD_HEADER_LEN] {
        let mut h = [0u8; PCAP_RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&self.ts_sec.to_le_bytes());
        h[4..8].copy_from_slice(&self.ts_nsec.to_le_bytes());
        h[8..12].copy_from_slice(&self.caplen.to_le_bytes());
        h[12..16].copy_from_slice(&self.orig_len.to_le_bytes());
        h
    }

    /// The timestamp in nanoseconds, for a nanosecond header.
    #[inline]
    pub fn ts_ns(&self) -> u64 {
        u64::from(self.ts_sec) * 1_000_000_000 + u64::from(self.ts_nsec)
    }

    /// Header and record: the bytes this record takes.
    #[inline]
    pub fn record_len(&self) -> usize {
        PCAP_RECORD_HEADER_LEN + self.caplen as usize
    }
}

/// A little-endian pcap record header.
#[inline]
pub fn pcap_record_header(
    ts_sec: u32,
    ts_nsec: u32,
    caplen: u32,
    orig_len: u32,
) -> [u8; PCAP_RECORD_HEADER_LEN] {
    RecordHeader {
        ts_sec,
        ts_nsec,
        caplen,
        orig_len,
    }
    .to_le_bytes()
}

/// Captured length of `p`, refused when the reader would refuse it.
fn caplen(p: &Packet<'_>, offset: u64) -> Result<u32, Error> {
    match u32::try_from(p.data.len()) {
        Ok(n) if n <= MAX_PACKET_LEN => Ok(n),
        _ => Err(Error::new(
            offset,
            ErrorKind::PacketTooLarge {
                caplen: u32::try_from(p.data.len()).unwrap_or(u32::MAX),
            },
        )),
    }
}

fn io_err(offset: u64, e: io::Error) -> Error {
    Error::new(offset, ErrorKind::Io(e))
}

/// Writes pcap with nanosecond timestamps (little-endian, magic `a1b23c4d`).
pub struct PcapNsWriter<W: Write> {
    w: W,
    offset: u64,
}

impl<W: Write> PcapNsWriter<W> {
    /// Writes the file header.
    pub fn new(mut w: W, link: LinkType, snaplen: u32) -> io::Result<Self> {
        w.write_all(&pcap_ns_header(link, snaplen))?;
        Ok(Self {
            w,
            offset: PCAP_NS_HEADER_LEN as u64,
        })
    }

    /// Writes one record. `ts_nsec` is written as is, even when >= 10^9, so that a
    /// damaged pcap file is copied faithfully; `ts_sec` above `u32::MAX` (after 2106) is
    /// [`ErrorKind::TimestampOutOfRange`]. `p.interface` is ignored: pcap has one.
    pub fn write_packet(&mut self, p: &Packet<'_>) -> Result<(), Error> {
        let Ok(ts_sec) = u32::try_from(p.ts_sec) else {
            return Err(Error::new(
                self.offset,
                ErrorKind::TimestampOutOfRange {
                    seconds: i128::from(p.ts_sec),
                    range: "0..=4294967295 s of a pcap record (the year 2106)",
                },
            ));
        };
        let caplen = caplen(p, self.offset)?;
        let h = pcap_record_header(ts_sec, p.ts_nsec, caplen, p.orig_len);
        self.w.write_all(&h).map_err(|e| io_err(self.offset, e))?;
        self.w
            .write_all(p.data)
            .map_err(|e| io_err(self.offset, e))?;
        self.offset += (PCAP_RECORD_HEADER_LEN + p.data.len()) as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Writes pcapng: one little-endian SHB, one IDB (`if_tsresol` = 9, i.e. ns), then EPBs
/// on that interface.
pub struct PcapngWriter<W: Write> {
    w: W,
    offset: u64,
}

const SHB_LEN: u32 = 28;
/// IDB with an `if_tsresol` option (4 + 1, padded to 8) and `opt_endofopt` (4).
const IDB_LEN: u32 = 20 + 8 + 4;
const EPB_OVERHEAD: u32 = 32;

fn shb() -> [u8; SHB_LEN as usize] {
    let mut b = [0u8; SHB_LEN as usize];
    b[0..4].copy_from_slice(&BT_SHB.to_le_bytes());
    b[4..8].copy_from_slice(&SHB_LEN.to_le_bytes());
    b[8..12].copy_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    b[12..14].copy_from_slice(&1u16.to_le_bytes());
    b[14..16].copy_from_slice(&0u16.to_le_bytes());
    // Section length unknown: we stream.
    b[16..24].copy_from_slice(&(-1i64).to_le_bytes());
    b[24..28].copy_from_slice(&SHB_LEN.to_le_bytes());
    b
}

fn idb(link: LinkType, snaplen: u32) -> [u8; IDB_LEN as usize] {
    let mut b = [0u8; IDB_LEN as usize];
    b[0..4].copy_from_slice(&BT_IDB.to_le_bytes());
    b[4..8].copy_from_slice(&IDB_LEN.to_le_bytes());
    b[8..10].copy_from_slice(&link.0.to_le_bytes());
    b[12..16].copy_from_slice(&snaplen.to_le_bytes());
    // if_tsresol (code 9, length 1) = 9: nanoseconds; 3 bytes of padding.
    b[16..18].copy_from_slice(&9u16.to_le_bytes());
    b[18..20].copy_from_slice(&1u16.to_le_bytes());
    b[20] = 9;
    // opt_endofopt (code 0, length 0) at 24..28 is already zero.
    b[28..32].copy_from_slice(&IDB_LEN.to_le_bytes());
    b
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the SHB and the IDB.
    pub fn new(mut w: W, link: LinkType, snaplen: u32) -> io::Result<Self> {
        w.write_all(&shb())?;
        w.write_all(&idb(link, snaplen))?;
        Ok(Self {
            w,
            offset: u64::from(SHB_LEN + IDB_LEN),
        })
    }

    /// Writes one EPB. The timestamp is `ts_sec * 10^9 + ts_nsec` in 64 bits, so a
    /// sub-second field >= 10^9 (possible in damaged pcap input) carries into the seconds;
    /// times after the year 2554 are [`ErrorKind::TimestampOutOfRange`]. `p.interface` is
    /// ignored: the file has one interface.
    pub fn write_packet(&mut self, p: &Packet<'_>) -> Result<(), Error> {
        let Some(ts) = p
            .ts_sec
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(u64::from(p.ts_nsec)))
        else {
            return Err(Error::new(
                self.offset,
                ErrorKind::TimestampOutOfRange {
                    seconds: i128::from(p.ts_sec),
                    range: "0..=18446744073 s of a nanosecond pcapng timestamp (the year 2554)",
                },
            ));
        };
        let caplen = caplen(p, self.offset)?;
        let pad = (4 - caplen % 4) % 4;
        let total = EPB_OVERHEAD + caplen + pad;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&BT_EPB.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        // interface 0 at 8..12
        h[12..16].copy_from_slice(&((ts >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(ts as u32).to_le_bytes());
        h[20..24].copy_from_slice(&caplen.to_le_bytes());
        h[24..28].copy_from_slice(&p.orig_len.to_le_bytes());
        let mut tail = [0u8; 7];
        let pad = pad as usize;
        tail[pad..pad + 4].copy_from_slice(&total.to_le_bytes());
        let at = self.offset;
        self.w.write_all(&h).map_err(|e| io_err(at, e))?;
        self.w.write_all(p.data).map_err(|e| io_err(at, e))?;
        self.w
            .write_all(&tail[..pad + 4])
            .map_err(|e| io_err(at, e))?;
        self.offset += u64::from(total);
        Ok(())
    }

    /// Bytes written so far.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaptureReader, Format};

    fn pkt(ts_sec: u64, ts_nsec: u32, data: &[u8]) -> Packet<'_> {
        Packet {
            ts_sec,
            ts_nsec,
            orig_len: data.len() as u32 + 10,
            data,
            interface: 0,
        }
    }

    #[test]
    fn header_bytes() {
        let h = pcap_ns_header(LinkType::ETHERNET, 262_144);
        assert_eq!(
            h,
            [
                0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0
            ]
        );
        let r = pcap_record_header(1, 2, 3, 4);
        assert_eq!(r, [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]);
    }

    #[test]
    fn pcap_ns_round_trip_and_limits() {
        let mut w = PcapNsWriter::new(Vec::new(), LinkType::RAW, 1500).unwrap();
        w.write_packet(&pkt(1_700_000_000, 123_456_789, b"abcde"))
            .unwrap();
        // Damaged-input sub-second field is kept verbatim.
        w.write_packet(&pkt(5, 1_500_000_000, b"")).unwrap();
        let e = w.write_packet(&pkt(1 << 32, 0, b"x")).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::TimestampOutOfRange { .. }));
        let big = vec![0u8; MAX_PACKET_LEN as usize + 1];
        let e = w.write_packet(&pkt(0, 0, &big)).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::PacketTooLarge { .. }));
        assert_eq!(w.offset(), 24 + 16 + 5 + 16);
        let bytes = w.into_inner();
        assert_eq!(bytes.len(), 24 + 16 + 5 + 16);

        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        assert_eq!(r.format(), Format::PcapNs);
        assert_eq!(r.link_type(0), Some(LinkType::RAW));
        assert_eq!(r.snaplen(0), Some(1500));
        assert_eq!(
            r.next_packet().unwrap(),
            Some(pkt(1_700_000_000, 123_456_789, b"abcde"))
        );
        assert_eq!(r.next_packet().unwrap(), Some(pkt(5, 1_500_000_000, b"")));
        assert_eq!(r.next_packet().unwrap(), None);
    }

    #[test]
    fn pcapng_round_trip_and_padding() {
        let mut w = PcapngWriter::new(Vec::new(), LinkType::LINUX_SLL2, 0).unwrap();
        let payloads: [&[u8]; 5] = [b"", b"a", b"ab", b"abc", b"abcd"];
        for (i, d) in payloads.iter().enumerate() {
            w.write_packet(&pkt(1_000 + i as u64, 999_999_999, d))
                .unwrap();
        }
        // Carries into the seconds.
        w.write_packet(&pkt(7, 1_500_000_000, b"z")).unwrap();
        let e = w
            .write_packet(&pkt(u64::MAX / 1_000_000_000 + 1, 0, b""))
            .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::TimestampOutOfRange { .. }));
        let bytes = w.into_inner();
        assert_eq!(bytes.len() % 4, 0);

        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        assert_eq!(r.format(), Format::Pcapng);
        for (i, d) in payloads.iter().enumerate() {
            let p = r.next_packet().unwrap().unwrap();
            assert_eq!(p, pkt(1_000 + i as u64, 999_999_999, d));
        }
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!((p.ts_sec, p.ts_nsec), (8, 500_000_000));
        assert_eq!(r.next_packet().unwrap(), None);
        assert_eq!(r.link_type(0), Some(LinkType::LINUX_SLL2));
        assert_eq!(r.snaplen(0), Some(0));
        assert_eq!(r.interface_count(), 1);
        assert_eq!(r.offset(), bytes.len() as u64);
    }
}
