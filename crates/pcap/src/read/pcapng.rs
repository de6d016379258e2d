//! pcapng blocks, parsed from complete in-memory blocks (sans-I/O).
//!
//! The reader loop in `read/mod.rs` only frames blocks (type, length, trailer) and
//! decides which ones to buffer; everything that interprets block contents lives here,
//! on plain slices, so each rule can be unit-tested with hand-made blocks.
//!
//! Where libpcap 1.10 is stricter than the pcapng specification we follow the
//! specification (and Wireshark): IDBs of one file may differ in link type and snapshot
//! length, and interfaces are reported per packet instead of being refused. Where the
//! specification leaves room for damage (block framing, option framing, timestamp
//! resolution) we keep libpcap's checks, so that a file we accept is one libpcap's
//! framing accepts too.

use crate::bytes::{ByteOrder, array};
use crate::error::ErrorKind;
use crate::{LinkType, MAX_PACKET_LEN};

pub(crate) const BT_SHB: u32 = 0x0a0d_0d0a;
pub(crate) const BT_IDB: u32 = 1;
pub(crate) const BT_PB: u32 = 2;
pub(crate) const BT_SPB: u32 = 3;
pub(crate) const BT_EPB: u32 = 6;

const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// Block type + total length at the start, total length again at the end.
pub(crate) const BLOCK_OVERHEAD: u32 = 12;

/// Largest block the reader will buffer in order to parse it (blocks it skips may be any
/// size). Generous for an EPB of `MAX_PACKET_LEN` bytes plus options, small enough that a
/// corrupt length cannot make us allocate gigabytes.
pub(crate) const MAX_PARSED_BLOCK_LEN: u32 = 4 * MAX_PACKET_LEN;

pub(crate) const fn block_name(block_type: u32) -> &'static str {
    match block_type {
        BT_SHB => "pcapng Section Header Block",
        BT_IDB => "pcapng Interface Description Block",
        BT_PB => "pcapng Packet Block",
        BT_SPB => "pcapng Simple Packet Block",
        BT_EPB => "pcapng Enhanced Packet Block",
        _ => "pcapng block",
    }
}

/// Checks a block's total length before anything else is read from it.
pub(crate) fn check_block_len(block_type: u32, length: u32) -> Result<(), ErrorKind> {
    let (min, expected) = match block_type {
        BT_SHB => (
            28,
            "a multiple of 4, at least 28 for a Section Header Block",
        ),
        BT_IDB => (
            20,
            "a multiple of 4, at least 20 for an Interface Description Block",
        ),
        BT_EPB => (
            32,
            "a multiple of 4, at least 32 for an Enhanced Packet Block",
        ),
        BT_PB => (32, "a multiple of 4, at least 32 for a Packet Block"),
        BT_SPB => (16, "a multiple of 4, at least 16 for a Simple Packet Block"),
        _ => (BLOCK_OVERHEAD, "a multiple of 4, at least 12"),
    };
    if !length.is_multiple_of(4) || length < min {
        return Err(ErrorKind::BadBlockLength {
            block_type,
            length,
            expected,
        });
    }
    Ok(())
}

/// Byte order of a section, from the byte-order magic at offset 8 of its SHB.
pub(crate) fn section_byte_order(bom: [u8; 4]) -> Result<ByteOrder, ErrorKind> {
    if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
        Ok(ByteOrder::Little)
    } else if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
        Ok(ByteOrder::Big)
    } else {
        Err(ErrorKind::BadByteOrderMagic(u32::from_be_bytes(bom)))
    }
}

/// Checks the version of a complete SHB. 1.0 is the only version ever specified; 1.2 is
/// accepted as libpcap does, because some writers emit it for files that are 1.0 in all
/// but name. 1.1 and 0.x are refused, as libpcap does.
pub(crate) fn check_shb_version(block: &[u8], order: ByteOrder) -> Result<(), ErrorKind> {
    let major = order.u16(block, 12);
    let minor = order.u16(block, 14);
    match (major, minor) {
        (1, 0 | 2) => Ok(()),
        _ => Err(ErrorKind::UnsupportedVersion { major, minor }),
    }
}

/// What an IDB says about the packets that refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interface {
    pub link: LinkType,
    /// 0 means "no limit".
    pub snaplen: u32,
    /// Timestamp units per second (`if_tsresol`; 10^6 when absent).
    pub units_per_sec: u64,
    /// Seconds to add to every timestamp (`if_tsoffset`).
    pub ts_offset: i64,
}

pub(crate) fn parse_idb(block: &[u8], order: ByteOrder) -> Result<Interface, ErrorKind> {
    let link = LinkType(order.u16(block, 8));
    // 2 reserved bytes at 10.
    let snaplen = order.u32(block, 12);
    let opts = block.get(16..block.len().saturating_sub(4)).unwrap_or(&[]);
    let mut units_per_sec: Option<u64> = None;
    let mut ts_offset: Option<i64> = None;
    let mut i = 0;
    while i < opts.len() {
        let left = opts.len() - i;
        if left < 4 {
            return Err(ErrorKind::BadOption {
                option: "option list",
                problem: format!("{left} bytes left at its end, too few for an option header"),
            });
        }
        let code = order.u16(opts, i);
        let len = usize::from(order.u16(opts, i + 2));
        let padded = (len + 3) & !3;
        if padded > left - 4 {
            return Err(ErrorKind::BadOption {
                option: option_name(code),
                problem: format!(
                    "it claims {len} bytes of value, only {} are left in the block",
                    left - 4
                ),
            });
        }
        let value = &opts[i + 4..i + 4 + len];
        match code {
            OPT_ENDOFOPT => break,
            IF_TSRESOL => {
                if units_per_sec.is_some() {
                    return Err(dup_option(code));
                }
                let [res] = value else {
                    return Err(bad_len(code, len, 1));
                };
                units_per_sec = Some(tsresol_units(*res)?);
            }
            IF_TSOFFSET => {
                if ts_offset.is_some() {
                    return Err(dup_option(code));
                }
                if len != 8 {
                    return Err(bad_len(code, len, 8));
                }
                ts_offset = Some(order.u64(value, 0) as i64);
            }
            _ => {}
        }
        i += 4 + padded;
    }
    Ok(Interface {
        link,
        snaplen,
        units_per_sec: units_per_sec.unwrap_or(1_000_000),
        ts_offset: ts_offset.unwrap_or(0),
    })
}

const fn option_name(code: u16) -> &'static str {
    match code {
        IF_TSRESOL => "if_tsresol",
        IF_TSOFFSET => "if_tsoffset",
        _ => "option",
    }
}

fn dup_option(code: u16) -> ErrorKind {
    ErrorKind::BadOption {
        option: option_name(code),
        problem: "it appears more than once, so the timestamps are ambiguous".into(),
    }
}

fn bad_len(code: u16, len: usize, expected: usize) -> ErrorKind {
    ErrorKind::BadOption {
        option: option_name(code),
        problem: format!("its value is {len} bytes long, expected {expected}"),
    }
}

/// Units per second for an `if_tsresol` byte: 10^-n, or 2^-n when the top bit is set.
pub(crate) fn tsresol_units(res: u8) -> Result<u64, ErrorKind> {
    let n = u32::from(res & 0x7f);
    let units = if res & 0x80 != 0 {
        1u64.checked_shl(n).filter(|_| n <= 63)
    } else {
        10u64.checked_pow(n)
    };
    units.ok_or_else(|| ErrorKind::BadOption {
        option: "if_tsresol",
        problem: format!(
            "resolution {}^-{n} is finer than a 64-bit timestamp can count",
            if res & 0x80 != 0 { 2 } else { 10 }
        ),
    })
}

/// Converts a pcapng timestamp to (seconds, nanoseconds). The fraction is truncated, not
/// rounded, as libpcap does, so that we print the same time as tcpdump.
pub(crate) fn timestamp(ts: u64, units_per_sec: u64, offset: i64) -> Result<(u64, u32), ErrorKind> {
    let units = units_per_sec.max(1);
    let frac = ts % units;
    let nanos = match units {
        1_000_000_000 => frac,
        1_000_000 => frac * 1000,
        _ => (u128::from(frac) * 1_000_000_000 / u128::from(units)) as u64,
    };
    let secs = i128::from(ts / units) + i128::from(offset);
    match u64::try_from(secs) {
        // `nanos` < 10^9 because `frac` < `units`.
        Ok(s) => Ok((s, nanos as u32)),
        Err(_) => Err(ErrorKind::TimestampOutOfRange {
            seconds: secs,
            range: "0..=18446744073709551615 s (if_tsoffset moved it before 1970)",
        }),
    }
}

/// The fields of a packet block, with `data` as an offset into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketFields {
    /// Interface number within the section; `None` for an SPB (which means the first).
    pub interface: Option<u32>,
    pub ts: u64,
    pub caplen: u32,
    pub orig_len: u32,
    pub data_at: usize,
}

/// EPB (`BT_EPB`) or obsolete PB (`BT_PB`): same layout, except that the PB's interface
/// number is 16 bits followed by a 16-bit drop count.
pub(crate) fn parse_epb_or_pb(
    block: &[u8],
    block_type: u32,
    order: ByteOrder,
) -> Result<PacketFields, ErrorKind> {
    let interface = if block_type == BT_PB {
        u32::from(order.u16(block, 8))
    } else {
        order.u32(block, 8)
    };
    let ts = (u64::from(order.u32(block, 12)) << 32) | u64::from(order.u32(block, 16));
    let caplen = order.u32(block, 20);
    let orig_len = order.u32(block, 24);
    if caplen > MAX_PACKET_LEN {
        return Err(ErrorKind::PacketTooLarge { caplen });
    }
    let room = (block.len() as u64).saturating_sub(32) as u32;
    if caplen > room {
        return Err(ErrorKind::CaplenExceedsBlock {
            block: block_name(block_type),
            caplen,
            room,
        });
    }
    Ok(PacketFields {
        interface: Some(interface),
        ts,
        caplen,
        orig_len,
        data_at: 28,
    })
}

/// SPB: the captured length is not stored; it is the original length cut to the
/// interface's snapshot length and to the space the block has.
pub(crate) fn parse_spb(
    block: &[u8],
    order: ByteOrder,
    snaplen: u32,
) -> Result<PacketFields, ErrorKind> {
    let orig_len = order.u32(block, 8);
    let room = (block.len() as u64).saturating_sub(16) as u32;
    let mut caplen = orig_len.min(room);
    if snaplen != 0 {
        caplen = caplen.min(snaplen);
    }
    if caplen > MAX_PACKET_LEN {
        return Err(ErrorKind::PacketTooLarge { caplen });
    }
    Ok(PacketFields {
        interface: None,
        ts: 0,
        caplen,
        orig_len,
        data_at: 12,
    })
}

/// `array` re-exported for the reader loop, which peeks at block headers.
pub(crate) fn peek4(b: &[u8], at: usize) -> [u8; 4] {
    array::<4>(b, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put16(v: &mut Vec<u8>, order: ByteOrder, x: u16) {
        v.extend_from_slice(&match order {
            ByteOrder::Little => x.to_le_bytes(),
            ByteOrder::Big => x.to_be_bytes(),
        });
    }
    fn put32(v: &mut Vec<u8>, order: ByteOrder, x: u32) {
        v.extend_from_slice(&match order {
            ByteOrder::Little => x.to_le_bytes(),
            ByteOrder::Big => x.to_be_bytes(),
        });
    }

    /// An IDB with the given raw options (already padded).
    fn idb(order: ByteOrder, link: u16, snaplen: u32, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        put16(&mut body, order, link);
        put16(&mut body, order, 0);
        put32(&mut body, order, snaplen);
        for (code, val) in opts {
            put16(&mut body, order, *code);
            put16(&mut body, order, val.len() as u16);
            body.extend_from_slice(val);
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
        }
        let len = body.len() as u32 + 12;
        let mut b = Vec::new();
        put32(&mut b, order, BT_IDB);
        put32(&mut b, order, len);
        b.extend_from_slice(&body);
        put32(&mut b, order, len);
        b
    }

    #[test]
    fn idb_defaults_and_options_in_both_orders() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let i = parse_idb(&idb(order, 1, 65535, &[]), order).unwrap();
            assert_eq!(i.link, LinkType::ETHERNET);
            assert_eq!(i.snaplen, 65535);
            assert_eq!(i.units_per_sec, 1_000_000);
            assert_eq!(i.ts_offset, 0);

            let off = match order {
                ByteOrder::Little => (-5i64).to_le_bytes(),
                ByteOrder::Big => (-5i64).to_be_bytes(),
            };
            let opts = [
                (2u16, b"eth0".to_vec()),
                (IF_TSRESOL, vec![9]),
                (IF_TSOFFSET, off.to_vec()),
                (OPT_ENDOFOPT, vec![]),
            ];
            let i = parse_idb(&idb(order, 113, 0, &opts), order).unwrap();
            assert_eq!(i.link, LinkType::LINUX_SLL);
            assert_eq!(i.units_per_sec, 1_000_000_000);
            assert_eq!(i.ts_offset, -5);
        }
    }

    #[test]
    fn idb_bad_options() {
        let o = ByteOrder::Little;
        let dup = [(IF_TSRESOL, vec![6]), (IF_TSRESOL, vec![9])];
        assert!(matches!(
            parse_idb(&idb(o, 1, 0, &dup), o),
            Err(ErrorKind::BadOption { .. })
        ));
        let long = [(IF_TSRESOL, vec![6, 6])];
        assert!(matches!(
            parse_idb(&idb(o, 1, 0, &long), o),
            Err(ErrorKind::BadOption { .. })
        ));
        let huge = [(IF_TSRESOL, vec![20])];
        assert!(matches!(
            parse_idb(&idb(o, 1, 0, &huge), o),
            Err(ErrorKind::BadOption { .. })
        ));
        // An option whose length runs past the block.
        let mut b = idb(o, 1, 0, &[(2, b"abcd".to_vec())]);
        b[18..20].copy_from_slice(&200u16.to_le_bytes());
        assert!(matches!(parse_idb(&b, o), Err(ErrorKind::BadOption { .. })));
    }

    #[test]
    fn tsresol_decimal_and_binary() {
        assert_eq!(tsresol_units(3).unwrap(), 1_000);
        assert_eq!(tsresol_units(6).unwrap(), 1_000_000);
        assert_eq!(tsresol_units(9).unwrap(), 1_000_000_000);
        assert_eq!(tsresol_units(19).unwrap(), 10_000_000_000_000_000_000);
        assert!(tsresol_units(20).is_err());
        assert_eq!(tsresol_units(0x80 | 10).unwrap(), 1024);
        assert_eq!(tsresol_units(0x80 | 63).unwrap(), 1 << 63);
        assert!(tsresol_units(0x80 | 64).is_err());
        assert!(tsresol_units(0xff).is_err());
    }

    #[test]
    fn timestamp_conversions() {
        // 10^-3: 1234.567 s
        assert_eq!(timestamp(1_234_567, 1_000, 0).unwrap(), (1234, 567_000_000));
        // 10^-6 (default)
        assert_eq!(
            timestamp(1_500_000_123_456, 1_000_000, 0).unwrap(),
            (1_500_000, 123_456_000)
        );
        // 10^-9
        assert_eq!(
            timestamp(1_700_000_000_999_999_999, 1_000_000_000, 0).unwrap(),
            (1_700_000_000, 999_999_999)
        );
        // 2^-10: 3 s + 512/1024 s
        assert_eq!(
            timestamp(3 * 1024 + 512, 1024, 0).unwrap(),
            (3, 500_000_000)
        );
        // 2^-10, 1/1024 s = 976562.5 ns, truncated
        assert_eq!(timestamp(1, 1024, 0).unwrap(), (0, 976_562));
        // 10^-12: truncated to ns
        assert_eq!(
            timestamp(5_000_000_000_001_999, 1_000_000_000_000, 0).unwrap(),
            (5000, 1)
        );
        // 2^-63 with a fraction close to 1 s does not overflow
        assert_eq!(timestamp(u64::MAX, 1 << 63, 0).unwrap(), (1, 999_999_999));
        // if_tsoffset
        assert_eq!(timestamp(2_000_000, 1_000_000, 100).unwrap(), (102, 0));
        assert_eq!(timestamp(2_000_000, 1_000_000, -2).unwrap(), (0, 0));
        assert!(matches!(
            timestamp(2_000_000, 1_000_000, -3),
            Err(ErrorKind::TimestampOutOfRange { seconds: -1, .. })
        ));
        assert_eq!(timestamp(u64::MAX, 1, i64::MAX).ok(), None);
    }

    #[test]
    fn block_lengths() {
        assert!(check_block_len(BT_EPB, 32).is_ok());
        assert!(check_block_len(BT_EPB, 28).is_err());
        assert!(check_block_len(5, 12).is_ok());
        assert!(check_block_len(5, 110).is_err());
        assert!(check_block_len(5, 8).is_err());
        assert!(check_block_len(BT_SHB, 24).is_err());
    }

    #[test]
    fn byte_order_magic_and_versions() {
        assert_eq!(
            section_byte_order([0x4d, 0x3c, 0x2b, 0x1a]).unwrap(),
            ByteOrder::Little
        );
        assert_eq!(
            section_byte_order([0x1a, 0x2b, 0x3c, 0x4d]).unwrap(),
            ByteOrder::Big
        );
        assert!(matches!(
            section_byte_order([1, 2, 3, 4]),
            Err(ErrorKind::BadByteOrderMagic(0x0102_0304))
        ));
        let mut shb = vec![0u8; 28];
        for (major, minor, ok) in [
            (1u16, 0u16, true),
            (1, 2, true),
            (1, 1, false),
            (0, 1, false),
            (2, 0, false),
        ] {
            shb[12..14].copy_from_slice(&major.to_be_bytes());
            shb[14..16].copy_from_slice(&minor.to_be_bytes());
            assert_eq!(
                check_shb_version(&shb, ByteOrder::Big).is_ok(),
                ok,
                "{major}.{minor}"
            );
        }
    }

    #[test]
    fn packet_blocks() {
        let o = ByteOrder::Big;
        let mut epb = Vec::new();
        put32(&mut epb, o, BT_EPB);
        put32(&mut epb, o, 40);
        put32(&mut epb, o, 2);
        put32(&mut epb, o, 1);
        put32(&mut epb, o, 5);
        put32(&mut epb, o, 6);
        put32(&mut epb, o, 60);
        epb.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0, 0]);
        put32(&mut epb, o, 40);
        let f = parse_epb_or_pb(&epb, BT_EPB, o).unwrap();
        assert_eq!(f.interface, Some(2));
        assert_eq!(f.ts, (1 << 32) | 5);
        assert_eq!((f.caplen, f.orig_len, f.data_at), (6, 60, 28));
        // As an obsolete PB the interface is 16 bits, the drop count the other 16.
        epb[8..12].copy_from_slice(&[0, 3, 0, 9]);
        assert_eq!(parse_epb_or_pb(&epb, BT_PB, o).unwrap().interface, Some(3));
        // caplen beyond the block
        epb[20..24].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            parse_epb_or_pb(&epb, BT_EPB, o),
            Err(ErrorKind::CaplenExceedsBlock {
                caplen: 9,
                room: 8,
                ..
            })
        ));
        epb[20..24].copy_from_slice(&(MAX_PACKET_LEN + 1).to_be_bytes());
        assert!(matches!(
            parse_epb_or_pb(&epb, BT_EPB, o),
            Err(ErrorKind::PacketTooLarge { .. })
        ));

        let mut spb = Vec::new();
        put32(&mut spb, o, BT_SPB);
        put32(&mut spb, o, 24);
        put32(&mut spb, o, 100);
        spb.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        put32(&mut spb, o, 24);
        assert_eq!(parse_spb(&spb, o, 0).unwrap().caplen, 8);
        assert_eq!(parse_spb(&spb, o, 5).unwrap().caplen, 5);
        spb[8..12].copy_from_slice(&3u32.to_be_bytes());
        let f = parse_spb(&spb, o, 0).unwrap();
        assert_eq!((f.caplen, f.orig_len, f.interface), (3, 3, None));
    }
}
