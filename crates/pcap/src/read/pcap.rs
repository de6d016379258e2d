//! Classic pcap: the 24-byte file header and the 16-byte record header, parsed from
//! byte arrays (sans-I/O) so that the rules can be tested without files.
//!
//! The acceptance rules are libpcap's (`sf-pcap.c`), because "tcpdump reads it" is what
//! users expect: versions 2.0-2.4 and DG/UX's 543.0, length fields swapped before 2.3,
//! a record longer than the snapshot length cut to it. The one deliberate difference:
//! libpcap 1.10 folds the reserved link-type bits 16-25 into the link type (and then
//! fails on the unknown type), newer libpcap refuses them outright; we refuse them with
//! an error that says so.

use crate::bytes::ByteOrder;
use crate::error::ErrorKind;
use crate::{LinkType, MAX_PACKET_LEN};

pub(crate) const FILE_HEADER_LEN: usize = 24;
pub(crate) const RECORD_HEADER_LEN: usize = 16;

pub(crate) const MAGIC_US: u32 = 0xa1b2_c3d4;
pub(crate) const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Bits 16-25 of the link-type field; must be zero.
const LT_RESERVED: u32 = 0x03ff_0000;

/// How the caplen and len fields of a record are arranged (libpcap's `lengths_swapped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LengthOrder {
    /// Version 2.4: caplen, then len.
    Normal,
    /// Before 2.3, and DG/UX 543.0: len, then caplen.
    Swapped,
    /// 2.3 was written both ways; libpcap swaps only when caplen > len.
    Ambiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub order: ByteOrder,
    pub nanos: bool,
    pub snaplen: u32,
    pub link: LinkType,
    pub lengths: LengthOrder,
}

impl FileHeader {
    /// The length records are cut to: libpcap's `pcap_adjust_snapshot`, which treats 0 and
    /// absurd values as "no limit" (here: the largest packet we accept).
    pub(crate) const fn effective_snaplen(&self) -> u32 {
        if self.snaplen == 0 || self.snaplen > MAX_PACKET_LEN {
            MAX_PACKET_LEN
        } else {
            self.snaplen
        }
    }
}

/// Recognises the four pcap magic numbers: byte order and whether timestamps are in ns.
pub(crate) fn magic(first4: [u8; 4]) -> Option<(ByteOrder, bool)> {
    match u32::from_le_bytes(first4) {
        MAGIC_US => Some((ByteOrder::Little, false)),
        MAGIC_NS => Some((ByteOrder::Little, true)),
        m if m.swap_bytes() == MAGIC_US => Some((ByteOrder::Big, false)),
        m if m.swap_bytes() == MAGIC_NS => Some((ByteOrder::Big, true)),
        _ => None,
    }
}

pub(crate) fn parse_file_header(h: &[u8; FILE_HEADER_LEN]) -> Result<FileHeader, ErrorKind> {
    let first4 = crate::bytes::array::<4>(h, 0);
    let Some((order, nanos)) = magic(first4) else {
        return Err(ErrorKind::BadMagic(u32::from_be_bytes(first4)));
    };
    let major = order.u16(h, 4);
    let minor = order.u16(h, 6);
    // thiszone (8) and sigfigs (12) are unused by every reader, including libpcap.
    let snaplen = order.u32(h, 16);
    let field = order.u32(h, 20);
    let lengths = match (major, minor) {
        (2, 0..=2) | (543, 0) => LengthOrder::Swapped,
        (2, 3) => LengthOrder::Ambiguous,
        (2, 4) => LengthOrder::Normal,
        _ => return Err(ErrorKind::UnsupportedVersion { major, minor }),
    };
    if field & LT_RESERVED != 0 {
        return Err(ErrorKind::ReservedLinkTypeBits(field));
    }
    // Bits 26-31 describe the FCS (flag bit 26, length in bits 28-31); they do not change
    // what the link layer is, so they are dropped here as libpcap does.
    let link = LinkType((field & 0xffff) as u16);
    Ok(FileHeader {
        order,
        nanos,
        snaplen,
        link,
        lengths,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub ts_sec: u32,
    /// µs or ns, as stored.
    pub ts_frac: u32,
    pub caplen: u32,
    pub orig_len: u32,
}

#[inline]
pub(crate) fn parse_record_header(
    h: &[u8],
    order: ByteOrder,
    lengths: LengthOrder,
) -> RecordHeader {
    let ts_sec = order.u32(h, 0);
    let ts_frac = order.u32(h, 4);
    let a = order.u32(h, 8);
    let b = order.u32(h, 12);
    let (caplen, orig_len) = match lengths {
        LengthOrder::Normal => (a, b),
        LengthOrder::Swapped => (b, a),
        LengthOrder::Ambiguous if a <= b => (a, b),
        LengthOrder::Ambiguous => (b, a),
    };
    RecordHeader {
        ts_sec,
        ts_frac,
        caplen,
        orig_len,
    }
}

/// The pcap sub-second field in nanoseconds. A µs value is multiplied by 1000 in 32 bits,
/// wrapping, exactly as `tcpdump --nano` prints it: damaged files with µs >= 4294968 then
/// look the same in wirecap and in tcpdump, and a copy written as pcap-ns prints identically.
#[inline]
pub(crate) const fn frac_to_nanos(frac: u32, nanos: bool) -> u32 {
    if nanos { frac } else { frac.wrapping_mul(1000) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(
        order: ByteOrder,
        magic: u32,
        major: u16,
        minor: u16,
        snap: u32,
        lt: u32,
    ) -> [u8; 24] {
        let mut h = [0u8; 24];
        let put32 = |h: &mut [u8; 24], at: usize, v: u32| {
            let b = match order {
                ByteOrder::Little => v.to_le_bytes(),
                ByteOrder::Big => v.to_be_bytes(),
            };
            h[at..at + 4].copy_from_slice(&b);
        };
        let put16 = |h: &mut [u8; 24], at: usize, v: u16| {
            let b = match order {
                ByteOrder::Little => v.to_le_bytes(),
                ByteOrder::Big => v.to_be_bytes(),
            };
            h[at..at + 2].copy_from_slice(&b);
        };
        put32(&mut h, 0, magic);
        put16(&mut h, 4, major);
        put16(&mut h, 6, minor);
        put32(&mut h, 16, snap);
        put32(&mut h, 20, lt);
        h
    }

    #[test]
    fn both_orders_and_resolutions() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            for (m, ns) in [(MAGIC_US, false), (MAGIC_NS, true)] {
                let h = parse_file_header(&header(order, m, 2, 4, 65535, 113)).unwrap();
                assert_eq!(h.order, order);
                assert_eq!(h.nanos, ns);
                assert_eq!(h.snaplen, 65535);
                assert_eq!(h.link, LinkType::LINUX_SLL);
                assert_eq!(h.lengths, LengthOrder::Normal);
            }
        }
    }

    #[test]
    fn bad_magic_is_reported_in_file_byte_order() {
        let mut h = header(ByteOrder::Little, MAGIC_US, 2, 4, 0, 1);
        h[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert!(matches!(
            parse_file_header(&h),
            Err(ErrorKind::BadMagic(0xdead_beef))
        ));
    }

    #[test]
    fn versions_as_libpcap() {
        let v =
            |major, minor| parse_file_header(&header(ByteOrder::Big, MAGIC_US, major, minor, 0, 1));
        assert!(matches!(
            v(1, 4),
            Err(ErrorKind::UnsupportedVersion { major: 1, minor: 4 })
        ));
        assert!(matches!(
            v(2, 5),
            Err(ErrorKind::UnsupportedVersion { major: 2, minor: 5 })
        ));
        assert!(matches!(v(3, 0), Err(ErrorKind::UnsupportedVersion { .. })));
        assert_eq!(v(2, 0).unwrap().lengths, LengthOrder::Swapped);
        assert_eq!(v(2, 3).unwrap().lengths, LengthOrder::Ambiguous);
        assert_eq!(v(543, 0).unwrap().lengths, LengthOrder::Swapped);
    }

    #[test]
    fn link_type_field_upper_bits() {
        let lt = |field| parse_file_header(&header(ByteOrder::Little, MAGIC_US, 2, 4, 0, field));
        // FCS length 3 (bits 28-31), with and without the FCS-present flag (bit 26).
        assert_eq!(lt(0x3000_0001).unwrap().link, LinkType::ETHERNET);
        assert_eq!(lt(0x3400_0001).unwrap().link, LinkType::ETHERNET);
        assert_eq!(lt(0x0400_0001).unwrap().link, LinkType::ETHERNET);
        assert_eq!(lt(0x4000_0065).unwrap().link, LinkType::RAW);
        assert!(matches!(
            lt(0x0030_0000),
            Err(ErrorKind::ReservedLinkTypeBits(0x0030_0000))
        ));
        assert!(matches!(
            lt(0x0001_0001),
            Err(ErrorKind::ReservedLinkTypeBits(_))
        ));
        assert!(matches!(
            lt(0x0200_0001),
            Err(ErrorKind::ReservedLinkTypeBits(_))
        ));
    }

    #[test]
    fn snaplen_zero_or_huge_means_max() {
        let h = |s| parse_file_header(&header(ByteOrder::Little, MAGIC_US, 2, 4, s, 1)).unwrap();
        assert_eq!(h(0).effective_snaplen(), MAX_PACKET_LEN);
        assert_eq!(h(u32::MAX).effective_snaplen(), MAX_PACKET_LEN);
        assert_eq!(h(96).effective_snaplen(), 96);
    }

    #[test]
    fn record_header_length_orders() {
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&7u32.to_be_bytes());
        r[4..8].copy_from_slice(&8u32.to_be_bytes());
        r[8..12].copy_from_slice(&100u32.to_be_bytes());
        r[12..16].copy_from_slice(&60u32.to_be_bytes());
        let n = parse_record_header(&r, ByteOrder::Big, LengthOrder::Normal);
        assert_eq!((n.ts_sec, n.ts_frac, n.caplen, n.orig_len), (7, 8, 100, 60));
        let s = parse_record_header(&r, ByteOrder::Big, LengthOrder::Swapped);
        assert_eq!((s.caplen, s.orig_len), (60, 100));
        // 2.3: swapped only when the first field is the larger one.
        let a = parse_record_header(&r, ByteOrder::Big, LengthOrder::Ambiguous);
        assert_eq!((a.caplen, a.orig_len), (60, 100));
    }

    #[test]
    fn micro_fraction_wraps_like_tcpdump() {
        assert_eq!(frac_to_nanos(999_999, false), 999_999_000);
        assert_eq!(frac_to_nanos(1_500_000, false), 1_500_000_000);
        // 2^31 µs * 1000 = 500 * 2^32: tcpdump --nano prints .000000000
        assert_eq!(frac_to_nanos(0x8000_0000, false), 0);
        assert_eq!(frac_to_nanos(1_000_000_000, true), 1_000_000_000);
    }
}
