//! Search across streams of a real store, checked against a brute-force merge of the
//! packets that were written.

use std::sync::Arc;
use std::time::SystemTime;

use wirecap_filter::dissect::build::PacketBuilder;
use wirecap_pcap::{CaptureReader, LinkType, Packet};
use wirecap_query::{Date, Error, FilterSummarizer, Format, compile, search};
use wirecap_store::{Store, StreamParams, WriterOptions};

const T0: u64 = 1_735_689_600_000_000_000; // 2025-01-01T00:00:00Z
const SEC: u64 = 1_000_000_000;

type Pkts = Vec<(u64, Vec<u8>)>;

/// `n` packets from `from`, `gap` ns apart; every third is host 10.1.2.3 port 443, the
/// others alternate UDP/53 and TCP/80 with sizes that vary.
fn traffic(seed: u8, from: u64, gap: u64, n: u64) -> Pkts {
    (0..n)
        .map(|i| {
            let b = PacketBuilder::ethernet([2, 0, 0, 0, 0, seed], [2, 0, 0, 0, 0, 2]);
            let host = [10, seed, 0, 1 + (i % 40) as u8];
            let data = if i % 3 == 0 {
                b.ipv4([10, 1, 2, 3], host)
                    .tcp(443, 40000 + (i % 7) as u16, 0x18)
                    .payload(&vec![seed; (i % 300) as usize])
                    .build()
            } else if i % 2 == 0 {
                b.ipv4(host, [10, 9, 9, 9])
                    .udp(5353, 53)
                    .payload(&[1; 30])
                    .build()
            } else {
                b.ipv4(host, [10, 9, 9, 8])
                    .tcp(50000, 80, 0x10)
                    .payload(&vec![0; (i % 900) as usize])
                    .build()
            };
            (from + i * gap, data)
        })
        .collect()
}

fn write(store: &Store, base: &str, link: LinkType, pkts: &Pkts) -> String {
    let params = StreamParams {
        link_type: link,
        snaplen: 65535,
        source: "test".into(),
    };
    let opts = WriterOptions {
        chunk_bytes: 8 << 10,
        summarizer: Some(Arc::new(FilterSummarizer) as _),
        ..WriterOptions::default()
    };
    let mut w = store
        .create_stream_with(base, &params, SystemTime::now(), opts)
        .unwrap();
    for (ts, data) in pkts {
        w.append(&Packet {
            ts_sec: ts / SEC,
            ts_nsec: (ts % SEC) as u32,
            orig_len: data.len() as u32,
            data,
            interface: 0,
        })
        .unwrap();
    }
    w.seal().unwrap().name
}

fn read_back(bytes: &[u8]) -> Pkts {
    let mut r = CaptureReader::new(bytes).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push((p.ts_sec * SEC + u64::from(p.ts_nsec), p.data.to_vec()));
    }
    v
}

fn today() -> Date {
    Date::new(2025, 1, 1).unwrap()
}

/// What a search must give: each stream's packets in the range that match, in the
/// parts' order, stably sorted by time (ties keep the earlier part's packet first).
fn expected(streams: &[&Pkts], f: Option<&wirecap_query::Filter>, lo: u64, hi: u64) -> Pkts {
    let mut v: Pkts = streams
        .iter()
        .flat_map(|s| s.iter())
        .filter(|(ts, d)| {
            *ts >= lo && *ts < hi && f.is_none_or(|f| f.matches(*ts, d.len() as u32, d))
        })
        .cloned()
        .collect();
    v.sort_by_key(|(ts, _)| *ts);
    v
}

fn run(s: &search::Search) -> Vec<u8> {
    let mut out = Vec::new();
    let stats = s.write_to(&mut out).unwrap();
    assert_eq!(stats.bytes, out.len() as u64);
    out
}

/// Three streams: `a` 0..10 s, `b` 5..15 s (overlapping `a`, with packets at the very
/// same times as some of `a`'s), `c` 20..30 s.
fn three() -> (tempfile::TempDir, Store, [Pkts; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = traffic(1, T0, 5_000_000, 2000);
    let b = traffic(2, T0 + 5 * SEC, 10_000_000, 1000);
    let c = traffic(3, T0 + 20 * SEC, 2_000_000, 5000);
    write(&store, "a", LinkType::ETHERNET, &a);
    write(&store, "b", LinkType::ETHERNET, &b);
    write(&store, "c", LinkType::ETHERNET, &c);
    (dir, store, [a, b, c])
}

#[test]
fn merges_overlapping_streams_in_time_order_through_the_filter() {
    let (_d, store, [a, b, c]) = three();
    for (lo, hi) in [
        (T0, T0 + 40 * SEC),
        (T0 + 3 * SEC, T0 + 7 * SEC + 1),
        (T0 + 9 * SEC, T0 + 21 * SEC),
        (T0 + 11 * SEC, T0 + 19 * SEC),
    ] {
        for (filter, bpf) in [
            (None, None),
            (None, Some("host 10.1.2.3 and port 443")),
            (Some("x: udp.port == 53; x"), None),
            (Some("x: tcp.port == 80; x"), Some("greater 400")),
        ] {
            let plan = search::plan(&store, Some(lo), Some(hi)).unwrap();
            let f = compile(filter, bpf, plan.link_type(), today()).unwrap();
            let s = plan.search(Format::Pcap, f.clone());
            let out = run(&s);
            let want = expected(&[&a, &b, &c], f.as_ref(), lo, hi);
            let got = read_back(&out);
            assert_eq!(got.len(), want.len(), "{lo} {hi} {filter:?} {bpf:?}");
            assert!(got == want, "{lo} {hi} {filter:?} {bpf:?}: packets differ");
            if let Some(len) = s.exact_len() {
                assert_eq!(len, out.len() as u64);
            }
            // pcapng holds the same packets.
            let ng = run(&s.plan().clone().search(Format::Pcapng, f.clone()));
            assert!(
                read_back(&ng) == want,
                "pcapng {lo} {hi} {filter:?} {bpf:?}"
            );
        }
    }
}

#[test]
fn byte_ranges_are_slices_of_the_whole_output() {
    let (_d, store, _) = three();
    // Overlapping parts (a and b: merged) and disjoint ones (b and c: concatenated).
    for (lo, hi) in [(T0, T0 + 12 * SEC), (T0 + 11 * SEC, T0 + 40 * SEC)] {
        let s = search::plan(&store, Some(lo), Some(hi))
            .unwrap()
            .search(Format::Pcap, None);
        let whole = run(&s);
        let len = s.exact_len().unwrap();
        assert_eq!(len, whole.len() as u64);
        for (skip, take) in [
            (0, 10),
            (0, 24),
            (10, 30),
            (24, len - 24),
            (len / 3, len / 3),
            (len - 5, 5),
            (len / 2, len),
            (8190, 70_000),
        ] {
            let mut got = Vec::new();
            for p in s.byte_range(skip, take).unwrap() {
                got.extend_from_slice(&p.unwrap());
            }
            let end = (skip + take).min(len) as usize;
            assert!(
                got[..] == whole[skip as usize..end],
                "{lo} {hi}: bytes {skip}+{take}: {} bytes, want {}",
                got.len(),
                end - skip as usize
            );
        }
    }
    let filtered = search::plan(&store, None, None).unwrap().search(
        Format::Pcap,
        compile(None, Some("udp"), LinkType::ETHERNET, today()).unwrap(),
    );
    assert!(filtered.exact_len().is_none());
    assert!(filtered.byte_range(0, 10).is_err());
}

#[test]
fn chooses_streams_by_time_and_reports_them() {
    let (_d, store, [_, b, _]) = three();
    // Only b has packets between 12 and 19 s.
    let plan = search::plan(&store, Some(T0 + 12 * SEC), Some(T0 + 19 * SEC)).unwrap();
    assert_eq!(plan.parts().len(), 1);
    assert!(plan.parts()[0].name().starts_with("b_"));
    assert_eq!(
        plan.packets(),
        b.iter()
            .filter(|(t, _)| (T0 + 12 * SEC..T0 + 19 * SEC).contains(t))
            .count() as u64
    );
    // Nothing at all: an empty capture file, header only.
    let plan = search::plan(&store, Some(T0 + 100 * SEC), Some(T0 + 200 * SEC)).unwrap();
    assert!(plan.parts().is_empty());
    let s = plan.search(Format::Pcap, None);
    let out = run(&s);
    assert_eq!(out.len(), 24);
    assert!(read_back(&out).is_empty());
    // Open bounds take everything; the order is by first packet.
    let plan = search::plan(&store, None, None).unwrap();
    let names: Vec<&str> = plan.parts().iter().map(|p| &p.name()[..1]).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(matches!(
        search::plan(&store, Some(T0 + 2), Some(T0 + 1)),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn refuses_a_range_over_streams_of_different_link_types() {
    let (_d, store, _) = three();
    let raw: Pkts = (0..10)
        .map(|i| {
            let ip = PacketBuilder::ethernet([2; 6], [4; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
                .udp(1, 2)
                .build();
            (T0 + 50 * SEC + i, ip[14..].to_vec())
        })
        .collect();
    write(&store, "raw", LinkType::RAW, &raw);
    let err = match search::plan(&store, Some(T0), Some(T0 + 60 * SEC)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("mixed link types accepted"),
    };
    assert!(err.contains("different link types"), "{err}");
    assert!(err.contains("raw_"), "{err}");
    // A range that keeps to one link type is fine.
    let plan = search::plan(&store, Some(T0 + 50 * SEC), Some(T0 + 60 * SEC)).unwrap();
    assert_eq!(plan.link_type(), LinkType::RAW);
    assert_eq!(read_back(&run(&plan.search(Format::Pcap, None))), raw);
}

#[test]
fn flows_are_paged_by_cursor_and_each_flows_filter_selects_its_packets() {
    use wirecap_query::flowlist::{self, FlowAsk, FlowSort};
    let (_d, store, streams) = three();
    let (lo, hi) = (T0, T0 + 40 * SEC);
    let tcp = |l| Ok(compile(None, Some("tcp"), l, today()).unwrap());
    let ask = FlowAsk {
        sort: FlowSort::Bytes,
        desc: true,
        limit: usize::MAX,
        ..FlowAsk::default()
    };
    let all = flowlist::flows(&store, Some(lo), Some(hi), tcp, &ask).unwrap();
    let f = compile(None, Some("tcp"), LinkType::ETHERNET, today()).unwrap();
    let want = expected(&[&streams[0], &streams[1], &streams[2]], f.as_ref(), lo, hi);
    assert_eq!(all.packets, want.len() as u64);
    assert_eq!(all.total, all.flows.len() as u64);
    assert_eq!(all.streams, 3);
    assert!(all.flows.len() > 50, "{} flows", all.flows.len());
    assert!(all.flows.windows(2).all(|w| w[0].bytes >= w[1].bytes));
    // Pages of 25 by cursor are the same rows.
    let mut rows = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let ask = FlowAsk {
            limit: 25,
            cursor: cursor.clone(),
            ..ask.clone()
        };
        let p = flowlist::flows(&store, Some(lo), Some(hi), tcp, &ask).unwrap();
        assert_eq!(p.total, all.total);
        rows.extend(p.flows);
        match p.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert!(rows == all.flows, "paged rows differ");
    // A flow's export holds as many packets as it counts, all of them TCP.
    for f in &all.flows {
        let e = wirecap_query::flow_export(&store, &f.stream, f.id, Format::Pcap)
            .unwrap()
            .expect("the flow is there");
        let mut out = Vec::new();
        e.write_to(&mut out).unwrap();
        let got = read_back(&out);
        assert_eq!(got.len() as u64, f.packets, "{f:?}");
        let tcp = compile(None, Some("tcp"), LinkType::ETHERNET, today())
            .unwrap()
            .unwrap();
        assert!(
            got.iter()
                .all(|(ts, d)| tcp.matches(*ts, d.len() as u32, d))
        );
    }
    // Mistakes.
    let bad = FlowAsk {
        cursor: Some("zz".into()),
        ..FlowAsk::default()
    };
    assert!(flowlist::flows(&store, None, None, tcp, &bad).is_err());
    assert!(FlowSort::parse("size").is_err());
    assert_eq!(
        FlowSort::parse("-packets").unwrap(),
        (FlowSort::Packets, true)
    );
}
