//! Reader tests on hand-built files: the framing, section and interface rules that the
//! sans-I/O tests cannot see, and the error positions.

use super::*;
use crate::write::{pcap_ns_header, pcap_record_header};

/// Builds pcapng blocks in a chosen byte order.
struct Ng {
    out: Vec<u8>,
    order: ByteOrder,
}

impl Ng {
    fn new() -> Self {
        Self {
            out: Vec::new(),
            order: ByteOrder::Little,
        }
    }

    fn b16(&self, v: u16) -> [u8; 2] {
        match self.order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    fn b32(&self, v: u32) -> [u8; 4] {
        match self.order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = body.len() as u32 + 12;
        let (t, l) = (self.b32(block_type), self.b32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&l);
        self
    }

    fn shb(&mut self, order: ByteOrder) -> &mut Self {
        self.order = order;
        let mut body = self.b32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.b16(1));
        body.extend_from_slice(&self.b16(0));
        body.extend_from_slice(&[0xff; 8]);
        self.block(BT_SHB, &body)
    }

    fn idb(
        &mut self,
        link: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> &mut Self {
        let mut body = self.b16(link).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.b32(snaplen));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.b16(9));
            body.extend_from_slice(&self.b16(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&self.b16(14));
            body.extend_from_slice(&self.b16(8));
            let bytes = match self.order {
                ByteOrder::Little => o.to_le_bytes(),
                ByteOrder::Big => o.to_be_bytes(),
            };
            body.extend_from_slice(&bytes);
        }
        self.block(BT_IDB, &body)
    }

    fn epb(&mut self, iface: u32, ts: u64, orig_len: u32, data: &[u8]) -> &mut Self {
        let mut body = self.b32(iface).to_vec();
        body.extend_from_slice(&self.b32((ts >> 32) as u32));
        body.extend_from_slice(&self.b32(ts as u32));
        body.extend_from_slice(&self.b32(data.len() as u32));
        body.extend_from_slice(&self.b32(orig_len));
        body.extend_from_slice(data);
        self.block(BT_EPB, &body)
    }

    fn pb(&mut self, iface: u16, ts: u64, data: &[u8]) -> &mut Self {
        let mut body = self.b16(iface).to_vec();
        body.extend_from_slice(&self.b16(0));
        body.extend_from_slice(&self.b32((ts >> 32) as u32));
        body.extend_from_slice(&self.b32(ts as u32));
        body.extend_from_slice(&self.b32(data.len() as u32));
        body.extend_from_slice(&self.b32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(BT_PB, &body)
    }

    fn spb(&mut self, orig_len: u32, data: &[u8]) -> &mut Self {
        let mut body = self.b32(orig_len).to_vec();
        body.extend_from_slice(data);
        self.block(BT_SPB, &body)
    }
}

/// (ts_sec, ts_nsec, orig_len, data, interface)
type Pkt = (u64, u32, u32, Vec<u8>, u32);

fn read_all(bytes: &[u8], capacity: usize) -> (Vec<Pkt>, Option<Error>) {
    let mut r = match CaptureReader::with_capacity(bytes, capacity) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push((
                p.ts_sec,
                p.ts_nsec,
                p.orig_len,
                p.data.to_vec(),
                p.interface,
            )),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn sections_byte_orders_interfaces_and_timestamps() {
    let mut f = Ng::new();
    f.shb(ByteOrder::Little)
        .idb(1, 0, None, None) // global 0, µs
        .idb(228, 96, Some(3), Some(1000)) // global 1, ms, +1000 s
        .block(4, b"name resolution block, skipped")
        .epb(1, 1_234_567, 80, b"ipv4")
        .epb(0, 5_000_001, 60, b"eth")
        .shb(ByteOrder::Big)
        .block(0x0bad, &[7; 4000]) // custom block, larger than the small test buffer
        .idb(113, 0, Some(0x80 | 10), None) // global 2, 2^-10
        .idb(101, 4, Some(9), None) // global 3, ns, snaplen 4
        .pb(0, 2048 + 256, b"sll")
        .epb(1, 7_000_000_123, 9, b"raw")
        .spb(100, b"abcdefgh"); // the section's first interface: global 2, snaplen 0
    for cap in [64, 1 << 20] {
        let mut r = CaptureReader::with_capacity(&f.out[..], cap).unwrap();
        assert_eq!(r.format(), Format::Pcapng);
        // The look-ahead to the first IDB has happened.
        assert_eq!(r.link_type(0), Some(LinkType::ETHERNET));
        let (pkts, err) = read_all(&f.out, cap);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            pkts,
            vec![
                (1000 + 1234, 567_000_000, 80, b"ipv4".to_vec(), 1),
                (5, 1_000, 60, b"eth".to_vec(), 0),
                (2, 250_000_000, 3, b"sll".to_vec(), 2),
                (7, 123, 9, b"raw".to_vec(), 3),
                (0, 0, 100, b"abcdefgh".to_vec(), 2),
            ]
        );
        while r.next_packet().unwrap().is_some() {}
        assert_eq!(r.interface_count(), 4);
        assert_eq!(r.section_count(), 2);
        assert_eq!(r.byte_order(), ByteOrder::Big);
        let links: Vec<_> = (0..4).map(|i| r.link_type(i).unwrap().0).collect();
        assert_eq!(links, [1, 228, 113, 101]);
        assert_eq!(r.snaplen(1), Some(96));
        assert_eq!(r.link_type(4), None);
        assert_eq!(r.offset(), f.out.len() as u64);
    }
}

#[test]
fn spb_is_cut_to_snaplen_and_block() {
    let mut f = Ng::new();
    f.shb(ByteOrder::Big)
        .idb(1, 4, None, None)
        .spb(100, b"abcdefgh")
        .spb(2, b"xyzw");
    let (pkts, err) = read_all(&f.out, 1 << 20);
    assert!(err.is_none());
    assert_eq!(pkts[0].3, b"abcd");
    assert_eq!(pkts[0].2, 100);
    assert_eq!(pkts[1].3, b"xy");
}

#[test]
fn interface_errors() {
    // Packet before any IDB.
    let mut f = Ng::new();
    f.shb(ByteOrder::Little).epb(0, 0, 1, b"x");
    let (pkts, err) = read_all(&f.out, 1 << 20);
    assert!(pkts.is_empty());
    let err = err.unwrap();
    assert!(matches!(err.kind, ErrorKind::NoInterface), "{err}");
    assert_eq!(err.offset, 28);

    // Unknown interface number, after a good packet.
    let mut f = Ng::new();
    f.shb(ByteOrder::Little)
        .idb(1, 0, None, None)
        .epb(0, 0, 1, b"x");
    let bad_at = f.out.len() as u64;
    f.epb(7, 0, 1, b"y");
    let (pkts, err) = read_all(&f.out, 1 << 20);
    assert_eq!(pkts.len(), 1);
    let err = err.unwrap();
    assert!(matches!(err.kind, ErrorKind::UnknownInterface(7)), "{err}");
    assert_eq!(err.offset, bad_at);

    // A new section forgets the interfaces of the previous one.
    let mut f = Ng::new();
    f.shb(ByteOrder::Little)
        .idb(1, 0, None, None)
        .shb(ByteOrder::Little)
        .spb(1, b"x");
    let err = read_all(&f.out, 1 << 20).1.unwrap();
    assert!(matches!(err.kind, ErrorKind::NoInterface), "{err}");

    // No IDB and no packet at all: a valid, empty file.
    let mut f = Ng::new();
    f.shb(ByteOrder::Big).block(0x0bad, b"comment");
    let r = CaptureReader::new(&f.out[..]).unwrap();
    assert_eq!(r.link_type(0), None);
    let (pkts, err) = read_all(&f.out, 1 << 20);
    assert!(pkts.is_empty() && err.is_none(), "{err:?}");
}

#[test]
fn framing_errors_and_truncation() {
    let mut good = Ng::new();
    good.shb(ByteOrder::Little)
        .idb(1, 0, None, None)
        .epb(0, 0, 3, b"abc");
    let epb_at = 28 + 20;

    // Every cut point: either a clean end at a block boundary, or Truncated at the block.
    for cut in 0..good.out.len() {
        let (pkts, err) = read_all(&good.out[..cut], 64);
        match cut {
            // After the SHB (no IDB yet: a valid empty file) and after the IDB.
            c if c == 28 || c == epb_at => assert!(err.is_none() && pkts.is_empty(), "cut {c}"),
            c if c < 28 => assert!(err.unwrap().is_truncated(), "cut {c}"),
            c => {
                let e = err.unwrap();
                assert!(e.is_truncated(), "cut {c}: {e}");
                assert_eq!(e.offset, if c < epb_at { 28 } else { epb_at as u64 });
            }
        }
    }

    // Trailer different from the header.
    let mut f = good.out.clone();
    let n = f.len();
    f[n - 4] ^= 4;
    let e = read_all(&f, 1 << 20).1.unwrap();
    assert!(
        matches!(e.kind, ErrorKind::BlockLengthMismatch { .. }),
        "{e}"
    );

    // Length not a multiple of 4, and below the minimum.
    for len in [50u32, 8] {
        let mut f = good.out.clone();
        f[epb_at + 4..epb_at + 8].copy_from_slice(&len.to_le_bytes());
        let e = read_all(&f, 1 << 20).1.unwrap();
        assert!(matches!(e.kind, ErrorKind::BadBlockLength { .. }), "{e}");
        assert_eq!(e.offset, epb_at as u64);
    }

    // Absurd length of a block we would have to buffer.
    let mut f = good.out.clone();
    f[epb_at + 4..epb_at + 8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let e = read_all(&f, 1 << 20).1.unwrap();
    assert!(matches!(e.kind, ErrorKind::BlockTooLarge { .. }), "{e}");

    // A skipped block of absurd length is streamed past, then found truncated.
    let mut f = good.out.clone();
    f.extend_from_slice(&0x0badu32.to_le_bytes());
    f.extend_from_slice(&0x7fff_fff0u32.to_le_bytes());
    f.extend_from_slice(&[0; 100]);
    let (pkts, e) = read_all(&f, 64);
    assert_eq!(pkts.len(), 1);
    assert!(e.unwrap().is_truncated());

    // Byte-order magic that is neither.
    let mut f = good.out.clone();
    f[8] = 0;
    let e = CaptureReader::new(&f[..]).err().unwrap();
    assert!(matches!(e.kind, ErrorKind::BadByteOrderMagic(_)), "{e}");
}

fn pcap_file(snaplen: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let mut f = pcap_ns_header(LinkType::ETHERNET, snaplen).to_vec();
    for (sec, nsec, data, orig) in records {
        f.extend_from_slice(&pcap_record_header(*sec, *nsec, data.len() as u32, *orig));
        f.extend_from_slice(data);
    }
    f
}

#[test]
fn pcap_records_cut_to_snaplen_and_large_records_grow_the_buffer() {
    let big = vec![0xab; MAX_PACKET_LEN as usize];
    let f = pcap_file(
        0,
        &[(1, 2, b"abcdef", 6), (3, 4, &big, 300_000), (5, 6, b"", 0)],
    );
    for cap in [64, 1 << 20] {
        let (pkts, err) = read_all(&f, cap);
        assert!(err.is_none());
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[1].3.len(), MAX_PACKET_LEN as usize);
        assert_eq!(pkts[1].2, 300_000);
    }
    // caplen above the snaplen: cut as libpcap does, orig_len kept.
    let f = pcap_file(4, &[(1, 2, b"abcdef", 60), (3, 4, b"xy", 2)]);
    let (pkts, _) = read_all(&f, 64);
    assert_eq!(pkts[0].3, b"abcd");
    assert_eq!(pkts[0].2, 60);
    assert_eq!(pkts[1].3, b"xy");
}

#[test]
fn pcap_errors_at_the_record() {
    let f = pcap_file(0, &[(1, 2, b"abcdef", 6), (3, 4, b"gh", 2)]);
    let second = 24 + 16 + 6;
    for cut in 24..f.len() {
        let (pkts, err) = read_all(&f[..cut], 64);
        if cut == 24 || cut == second {
            assert!(err.is_none());
        } else {
            let e = err.unwrap();
            assert!(e.is_truncated(), "{e}");
            assert_eq!(e.offset, if cut < second { 24 } else { second as u64 });
            assert_eq!(pkts.len(), usize::from(cut > second));
        }
    }
    let mut f = f;
    f[second + 8..second + 12].copy_from_slice(&(MAX_PACKET_LEN + 1).to_le_bytes());
    let (pkts, err) = read_all(&f, 1 << 20);
    assert_eq!(pkts.len(), 1);
    let e = err.unwrap();
    assert!(matches!(e.kind, ErrorKind::PacketTooLarge { caplen } if caplen == MAX_PACKET_LEN + 1));
    assert_eq!(e.offset, second as u64);
    assert!(
        e.to_string().starts_with(&format!("at byte {second}: ")),
        "{e}"
    );
}

#[test]
fn short_and_foreign_inputs() {
    for input in [&b""[..], b"\xd4\xc3", b"\x0a\x0d\x0d\x0a\x1c\x00"] {
        let e = CaptureReader::new(input).err().unwrap();
        assert!(e.is_truncated(), "{e}");
    }
    let e = CaptureReader::new(&b"GET / HTTP/1.1\r\n"[..])
        .err()
        .unwrap();
    assert!(matches!(e.kind, ErrorKind::BadMagic(0x4745_5420)), "{e}");
}

#[test]
fn next_packet_with_link_type() {
    let mut f = Ng::new();
    f.shb(ByteOrder::Little)
        .idb(1, 0, None, None)
        .idb(113, 0, None, None)
        .epb(1, 0, 1, b"a")
        .epb(0, 0, 1, b"b");
    let mut r = CaptureReader::new(&f.out[..]).unwrap();
    let (p, l) = r.next_packet_with_link_type().unwrap().unwrap();
    assert_eq!((p.data, l), (&b"a"[..], LinkType::LINUX_SLL));
    let (p, l) = r.next_packet_with_link_type().unwrap().unwrap();
    assert_eq!((p.data, l), (&b"b"[..], LinkType::ETHERNET));
    assert!(r.next_packet_with_link_type().unwrap().is_none());
}

#[test]
fn ts_ns_saturates() {
    let p = Packet {
        ts_sec: u64::MAX,
        ts_nsec: 1,
        orig_len: 0,
        data: &[],
        interface: 0,
    };
    assert_eq!(p.ts_ns(), u64::MAX);
    let p = Packet {
        ts_sec: 2,
        ts_nsec: 1_500_000_000,
        ..p
    };
    assert_eq!(p.ts_ns(), 3_500_000_000);
}
