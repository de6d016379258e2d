//! Property tests: writer → reader round trips, store-chunk records, and "no input makes
//! the reader panic" (random bytes, and valid files with random damage, read through
//! buffers of random size).

use proptest::prelude::*;
use wirecap_pcap::{
    CaptureReader, Format, LinkType, MAX_PACKET_LEN, Packet, PcapNsWriter, PcapngWriter,
    pcap_record_header, records,
};

#[derive(Debug, Clone)]
struct Owned {
    ts_sec: u64,
    ts_nsec: u32,
    orig_len: u32,
    data: Vec<u8>,
}

impl Owned {
    fn packet(&self) -> Packet<'_> {
        Packet {
            ts_sec: self.ts_sec,
            ts_nsec: self.ts_nsec,
            orig_len: self.orig_len,
            data: &self.data,
            interface: 0,
        }
    }
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => proptest::collection::vec(any::<u8>(), 1000..5000),
    ]
}

/// Packets pcap-ns can hold: seconds in 32 bits, any sub-second field (kept verbatim).
fn pcap_packets() -> impl Strategy<Value = Vec<Owned>> {
    proptest::collection::vec(
        (0..=u64::from(u32::MAX), any::<u32>(), any::<u32>(), data()).prop_map(
            |(ts_sec, ts_nsec, orig_len, data)| Owned {
                ts_sec,
                ts_nsec,
                orig_len,
                data,
            },
        ),
        0..40,
    )
}

/// Packets pcapng (ns) can hold exactly: up to 2^64-1 ns, normalised fraction.
fn pcapng_packets() -> impl Strategy<Value = Vec<Owned>> {
    proptest::collection::vec(
        (
            0..=18_446_744_072u64,
            0..1_000_000_000u32,
            any::<u32>(),
            data(),
        )
            .prop_map(|(ts_sec, ts_nsec, orig_len, data)| Owned {
                ts_sec,
                ts_nsec,
                orig_len,
                data,
            }),
        0..40,
    )
}

fn read_back(bytes: &[u8], capacity: usize) -> (Format, Vec<Owned>) {
    let mut r = CaptureReader::with_capacity(bytes, capacity).expect("header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().expect("packet") {
        assert_eq!(p.interface, 0);
        out.push(Owned {
            ts_sec: p.ts_sec,
            ts_nsec: p.ts_nsec,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    assert_eq!(r.offset(), bytes.len() as u64);
    (r.format(), out)
}

fn same(a: &[Owned], b: &[Owned]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.ts_sec, x.ts_nsec, x.orig_len, &x.data) == (y.ts_sec, y.ts_nsec, y.orig_len, &y.data)
        })
}

/// Reads everything, discarding it; only a panic or a hang would fail.
fn read_anything(bytes: &[u8], capacity: usize) -> usize {
    let Ok(mut r) = CaptureReader::with_capacity(bytes, capacity) else {
        return 0;
    };
    let mut n = 0;
    loop {
        match r.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= MAX_PACKET_LEN as usize);
                let iface = p.interface;
                assert!(r.link_type(iface).is_some());
                n += 1;
            }
            Ok(None) => break,
            Err(e) => {
                assert!(e.offset <= bytes.len() as u64, "{e}");
                let _ = e.to_string();
                break;
            }
        }
        assert!(r.offset() <= bytes.len() as u64);
    }
    n
}

fn pcapng_file(pkts: &[Owned], link: u16, snaplen: u32) -> Vec<u8> {
    let mut w = PcapngWriter::new(Vec::new(), LinkType(link), snaplen).unwrap();
    for p in pkts {
        w.write_packet(&p.packet()).unwrap();
    }
    w.into_inner()
}

fn pcap_file(pkts: &[Owned], link: u16) -> Vec<u8> {
    let mut w = PcapNsWriter::new(Vec::new(), LinkType(link), 0).unwrap();
    for p in pkts {
        w.write_packet(&p.packet()).unwrap();
    }
    w.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn pcap_ns_round_trip(pkts in pcap_packets(), link in any::<u16>(), cap in 64usize..4096) {
        // snaplen 0: no record is cut.
        let bytes = pcap_file(&pkts, link);
        let r = CaptureReader::new(&bytes[..]).unwrap();
        prop_assert_eq!(r.link_type(0), Some(LinkType(link)));
        let (format, got) = read_back(&bytes, cap);
        prop_assert_eq!(format, Format::PcapNs);
        prop_assert!(same(&pkts, &got));
        // Same records through the store-chunk iterator.
        let mut it = records(&bytes[24..]);
        let via_records: Vec<Owned> = it.by_ref().map(|p| Owned {
            ts_sec: p.ts_sec, ts_nsec: p.ts_nsec, orig_len: p.orig_len, data: p.data.to_vec(),
        }).collect();
        prop_assert!(same(&pkts, &via_records));
        prop_assert_eq!(it.consumed(), bytes.len() - 24);
    }

    #[test]
    fn pcapng_round_trip(pkts in pcapng_packets(), link in any::<u16>(), cap in 64usize..4096) {
        let bytes = pcapng_file(&pkts, link, 0);
        let r = CaptureReader::new(&bytes[..]).unwrap();
        prop_assert_eq!(r.link_type(0), Some(LinkType(link)));
        let (format, got) = read_back(&bytes, cap);
        prop_assert_eq!(format, Format::Pcapng);
        prop_assert!(same(&pkts, &got));
    }

    #[test]
    fn records_stop_before_a_partial_record(pkts in pcap_packets(), cut in any::<prop::sample::Index>()) {
        let mut chunk = Vec::new();
        let mut ends = vec![0];
        for p in &pkts {
            chunk.extend_from_slice(&pcap_record_header(
                p.ts_sec as u32, p.ts_nsec, p.data.len() as u32, p.orig_len,
            ));
            chunk.extend_from_slice(&p.data);
            ends.push(chunk.len());
        }
        let cut = cut.index(chunk.len() + 1);
        let mut it = records(&chunk[..cut]);
        let n = it.by_ref().count();
        let complete = ends.iter().filter(|e| **e <= cut).count() - 1;
        prop_assert_eq!(n, complete);
        prop_assert_eq!(it.consumed(), ends[complete]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000),
                                magic in 0usize..5, cap in 64usize..512) {
        // Give most inputs a valid magic, or they would all stop at the first 4 bytes.
        let mut bytes = bytes;
        let magics: [&[u8]; 4] = [
            b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a", b"\x0a\x0d\x0d\x0a",
        ];
        if let Some(m) = magics.get(magic) {
            if bytes.len() >= 4 {
                bytes[..4].copy_from_slice(m);
            }
            if magic == 3 && bytes.len() >= 16 {
                // A plausible SHB start: byte-order magic, version 1.0.
                bytes[8..16].copy_from_slice(b"\x4d\x3c\x2b\x1a\x01\x00\x00\x00");
            }
        }
        read_anything(&bytes, cap);
    }

    #[test]
    fn damaged_files_never_panic(pkts in pcapng_packets(), ng in any::<bool>(),
                                 hits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                 cut in any::<prop::sample::Index>(), cap in 64usize..512) {
        let mut bytes = if ng {
            pcapng_file(&pkts, 1, 0)
        } else {
            let pkts: Vec<Owned> = pkts.into_iter().map(|p| Owned { ts_sec: p.ts_sec >> 3, ..p }).collect();
            pcap_file(&pkts, 1)
        };
        for (at, v) in &hits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        let cut = cut.index(bytes.len() + 1);
        bytes.truncate(cut);
        // Small and default buffers must agree on how far the damaged file reads.
        let small = read_anything(&bytes, cap);
        let large = read_anything(&bytes, 1 << 20);
        prop_assert_eq!(small, large);
    }
}
