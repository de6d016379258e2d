//! The store through its public API: every view partitions the stream, every split holds
//! exactly what it says, time ranges are exact, readers see a consistent prefix while a
//! writer appends, and recovery keeps every whole chunk.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use wirecap_pcap::{CaptureReader, LinkType, Packet};
use wirecap_store::timefmt::NS_PER_SEC;
use wirecap_store::{
    PacketRange, Store, StreamParams, StreamReader, StreamState, View, WriterOptions,
};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkt {
    ts: u64,
    orig: u32,
    data: Vec<u8>,
}

fn params() -> StreamParams {
    StreamParams {
        link_type: LinkType::ETHERNET,
        snaplen: 262_144,
        source: "test".into(),
    }
}

fn small_opts() -> WriterOptions {
    WriterOptions {
        chunk_bytes: 8 << 10,
        segment_bytes: 256 << 10,
        ..WriterOptions::default()
    }
}

/// Packets over ~`secs` seconds with gaps, bursts, equal timestamps and mixed sizes.
fn traffic(seed: u64, n: usize, secs: u64) -> Vec<Pkt> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ts = 1_700_000_000 * NS_PER_SEC + next() % NS_PER_SEC;
    let step = secs * NS_PER_SEC / n as u64;
    (0..n)
        .map(|i| {
            let r = next();
            ts += match r % 10 {
                0 => 0,         // same timestamp as the previous packet
                1 => step * 20, // a gap
                _ => r % (2 * step).max(1),
            };
            let len = match r % 7 {
                0 => 1514,
                1 => 60,
                2 => 9000,
                _ => 64 + (r >> 8) as usize % 1400,
            };
            let data: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            Pkt {
                ts,
                orig: len as u32 + (r % 3 == 0) as u32 * 100,
                data,
            }
        })
        .collect()
}

fn write_stream(store: &Store, name: &str, pkts: &[Pkt], opts: WriterOptions) -> String {
    let mut w = store
        .create_stream_with(name, &params(), SystemTime::now(), opts)
        .unwrap();
    for p in pkts {
        w.append(&packet(p)).unwrap();
    }
    w.seal().unwrap().name
}

fn packet(p: &Pkt) -> Packet<'_> {
    Packet {
        ts_sec: p.ts / NS_PER_SEC,
        ts_nsec: (p.ts % NS_PER_SEC) as u32,
        orig_len: p.orig,
        data: &p.data,
        interface: 0,
    }
}

fn read_range(r: &StreamReader, range: PacketRange) -> Vec<Pkt> {
    let mut v = Vec::new();
    r.for_each_packet(range, |p| {
        v.push(Pkt {
            ts: p.ts_ns(),
            orig: p.orig_len,
            data: p.data.to_vec(),
        });
        ControlFlow::Continue(())
    })
    .unwrap();
    v
}

fn pcap_bytes(r: &StreamReader, range: PacketRange) -> Vec<u8> {
    let mut out = Vec::new();
    r.write_pcap(range, &mut out).unwrap();
    out
}

fn parse_pcap(bytes: &[u8]) -> Vec<Pkt> {
    let mut rd = CaptureReader::new(bytes).unwrap();
    let mut v = Vec::new();
    while let Some(p) = rd.next_packet().unwrap() {
        v.push(Pkt {
            ts: p.ts_ns(),
            orig: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    v
}

#[test]
fn round_trip_across_chunks_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(7, 3000, 40);
    let name = write_stream(&store, "rt", &pkts, small_opts());
    assert!(
        name.starts_with("rt_") && name.len() == "rt_".len() + 13,
        "{name}"
    );
    let r = store.open_stream(&name).unwrap();
    assert_eq!(r.packets(), pkts.len() as u64);
    assert!(r.chunk_count() > 100, "small chunks: {}", r.chunk_count());
    assert!(
        std::fs::read_dir(r.dir())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("seg-"))
            .count()
            > 10
    );
    assert_eq!(read_range(&r, r.full_range()), pkts);
    let bytes = pcap_bytes(&r, r.full_range());
    assert_eq!(bytes.len() as u64, r.full_range().pcap_bytes());
    assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    assert_eq!(parse_pcap(&bytes), pkts);
    // The streaming reader yields the same bytes.
    let mut via_read = Vec::new();
    std::io::copy(&mut r.pcap_reader(r.full_range()), &mut via_read).unwrap();
    assert_eq!(via_read, bytes);
    assert_eq!(r.meta().state, StreamState::Sealed);
    assert_eq!(r.first_ts(), Some(pkts[0].ts));
    assert_eq!(r.last_ts(), Some(pkts.last().unwrap().ts));
}

#[test]
fn every_view_partitions_the_stream_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // ~11 MB over ~25 minutes: several splits in every view up to 10MB / 15min.
    let pkts = traffic(11, 14_000, 1500);
    let name = write_stream(&store, "views", &pkts, WriterOptions::default());
    let r = store.open_stream(&name).unwrap();
    let all = read_range(&r, r.full_range());
    assert_eq!(all, pkts);
    for view in std::iter::once(View::Single).chain(View::splits()) {
        let splits = r.splits(view).unwrap();
        assert!(!splits.is_empty(), "{view}");
        let mut next_packet = 0;
        let mut next_pos = 0;
        for s in &splits {
            assert_eq!(
                s.range.first_packet, next_packet,
                "{view} split {}",
                s.index
            );
            assert_eq!(s.range.start_pos, next_pos);
            assert!(!s.range.is_empty());
            next_packet = s.range.end_packet;
            next_pos = s.range.end_pos;
            let got = &all[s.range.first_packet as usize..s.range.end_packet as usize];
            let bytes = pcap_bytes(&r, s.range);
            assert_eq!(bytes.len() as u64, s.range.pcap_bytes(), "{view}");
            assert_eq!(parse_pcap(&bytes), got, "{view} split {}", s.index);
            match view {
                View::Time { secs } => {
                    assert_eq!(s.start_ts % (secs * NS_PER_SEC), 0);
                    assert_eq!(s.stop_ts - s.start_ts, secs * NS_PER_SEC);
                    // Exactly the packets in [start, stop).
                    let want: Vec<_> = pkts
                        .iter()
                        .filter(|p| p.ts >= s.start_ts && p.ts < s.stop_ts)
                        .cloned()
                        .collect();
                    assert_eq!(got, &want[..], "{view} split {}", s.index);
                    assert_eq!(
                        r.time_range(Some(s.start_ts), Some(s.stop_ts)).unwrap(),
                        s.range
                    );
                }
                View::Size { level } => {
                    let limit = wirecap_store::index::SIZE_LEVELS[level];
                    assert!(bytes.len() as u64 <= limit || got.len() == 1);
                    if s.range.end_packet < pkts.len() as u64 {
                        let next = &pkts[s.range.end_packet as usize];
                        assert!(
                            bytes.len() as u64 + 16 + next.data.len() as u64 > limit,
                            "greedy"
                        );
                    }
                }
                View::Single => assert_eq!(s.range, r.full_range()),
            }
        }
        assert_eq!(next_packet, pkts.len() as u64, "{view} covers everything");
    }
    // 1 s splits are one per distinct second.
    let mut secs: Vec<u64> = pkts.iter().map(|p| p.ts / NS_PER_SEC).collect();
    secs.dedup();
    assert_eq!(r.splits(View::Time { secs: 1 }).unwrap().len(), secs.len());
    assert!(r.splits(View::Size { level: 0 }).unwrap().len() >= 10);
    assert!(r.split(View::Time { secs: 60 }, 10_000).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any [start, stop) gives exactly the packets with start <= ts < stop.
    #[test]
    fn time_ranges_are_exact(seed in 1u64..1000, probes in proptest::collection::vec((0u64..1_000_000, 0u64..1_000_000), 8)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pkts = traffic(seed, 800, 30);
        let name = write_stream(&store, "tr", &pkts, small_opts());
        let r = store.open_stream(&name).unwrap();
        let lo = pkts[0].ts - NS_PER_SEC;
        let span = pkts.last().unwrap().ts + NS_PER_SEC - lo;
        let mut points: Vec<u64> = probes.iter().flat_map(|(a, b)| [lo + a * span / 1_000_000, lo + b * span / 1_000_000]).collect();
        // Exact packet timestamps and whole seconds are the interesting edges.
        points.extend(pkts.iter().step_by(97).map(|p| p.ts));
        points.extend(pkts.iter().step_by(89).map(|p| p.ts / NS_PER_SEC * NS_PER_SEC));
        points.extend(pkts.iter().step_by(83).map(|p| p.ts + 1));
        for w in points.windows(2) {
            let (a, b) = (w[0].min(w[1]), w[0].max(w[1]));
            let range = r.time_range(Some(a), Some(b)).unwrap();
            let want: Vec<_> = pkts.iter().filter(|p| p.ts >= a && p.ts < b).cloned().collect();
            prop_assert_eq!(read_range(&r, range), want.clone());
            prop_assert_eq!(parse_pcap(&pcap_bytes(&r, range)), want);
        }
        prop_assert_eq!(r.time_range(None, None).unwrap(), r.full_range());
    }
}

#[test]
fn readers_see_a_consistent_prefix_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(3, 4000, 60);
    let mut w = store
        .create_stream_with("live", &params(), SystemTime::now(), small_opts())
        .unwrap();
    let name = w.name().to_owned();
    let mut seen = 0;
    for (i, p) in pkts.iter().enumerate() {
        w.append(&packet(p)).unwrap();
        if i % 500 == 499 {
            let r = store.open_stream(&name).unwrap();
            let n = r.packets() as usize;
            assert!(n >= seen && n <= i + 1);
            seen = n;
            assert_eq!(read_range(&r, r.full_range()), pkts[..n]);
            for v in View::splits() {
                let total: u64 = r.splits(v).unwrap().iter().map(|s| s.range.packets()).sum();
                assert_eq!(total, n as u64, "{v} while writing");
            }
            // The stream cannot be written by a second writer, nor deleted, meanwhile.
            assert!(store.delete_stream(&name).is_err());
        }
    }
    assert!(seen > 0);
    w.seal().unwrap();
    assert_eq!(
        store.open_stream(&name).unwrap().packets(),
        pkts.len() as u64
    );
}

#[test]
fn out_of_order_and_oversized_input_is_refused_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(5, 100, 5);
    let mut w = store
        .create_stream_with("ooo", &params(), SystemTime::now(), small_opts())
        .unwrap();
    for p in &pkts {
        w.append(&packet(p)).unwrap();
    }
    let mut old = pkts[0].clone();
    old.ts -= 1;
    assert!(matches!(
        w.append(&packet(&old)),
        Err(wirecap_store::Error::OutOfOrder { .. })
    ));
    let name = w.seal().unwrap().name;
    assert_eq!(
        read_range(
            &store.open_stream(&name).unwrap(),
            store.open_stream(&name).unwrap().full_range()
        ),
        pkts
    );
}

#[test]
fn reorder_window_sorts_and_refuses_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut pkts = traffic(9, 2000, 20);
    // Swap neighbours here and there, as merged captures do.
    for i in (10..pkts.len() - 1).step_by(37) {
        pkts.swap(i, i + 1);
    }
    let mut w = store
        .create_stream_with("sorted", &params(), SystemTime::now(), small_opts())
        .unwrap();
    let mut ro = wirecap_store::Reorder::new(64 << 10);
    for p in &pkts {
        ro.push(&packet(p), &mut w).unwrap();
    }
    ro.finish(&mut w).unwrap();
    assert!(ro.reordered() > 0);
    let name = w.seal().unwrap().name;
    let r = store.open_stream(&name).unwrap();
    let mut want = pkts.clone();
    want.sort_by_key(|p| p.ts); // stable: equal timestamps keep file order
    assert_eq!(read_range(&r, r.full_range()), want);

    let mut w = store
        .create_stream_with("toofar", &params(), SystemTime::now(), small_opts())
        .unwrap();
    let mut ro = wirecap_store::Reorder::new(16 << 10);
    let far = pkts.iter().take(1000).cloned().collect::<Vec<_>>();
    for p in &far {
        ro.push(&packet(p), &mut w).ok();
    }
    let e = ro.push(&packet(&pkts[0]), &mut w).unwrap_err();
    assert!(e.to_string().contains("reorder"), "{e}");
}

/// Damage the tail of a stream as a crash would and check recovery keeps every whole chunk.
#[test]
fn recovery_keeps_every_whole_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(21, 3000, 30);
    let name = write_stream(&store, "crash", &pkts, small_opts());
    let r = store.open_stream(&name).unwrap();
    let sdir = r.dir().to_path_buf();
    let n_chunks = r.chunk_count();
    let last = r.chunk(n_chunks - 1).unwrap();
    let second_last = r.chunk(n_chunks - 2).unwrap();
    let splits_before: BTreeMap<String, usize> = View::splits()
        .into_iter()
        .map(|v| (v.to_string(), r.splits(v).unwrap().len()))
        .collect();
    drop(r);

    // Case 1: the last chunk reached the segment, but its index record did not (and a
    // torn half record is there instead); garbage follows the chunk in the segment.
    let idx = sdir.join("chunks.idx");
    let len = std::fs::metadata(&idx).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&idx).unwrap();
    f.set_len(len - 64 + 20).unwrap();
    let seg = sdir.join(format!("seg-{:08}.wcs", last.segment));
    let mut data = std::fs::read(&seg).unwrap();
    data.extend_from_slice(b"WCK1 torn chunk header and some bytes");
    std::fs::write(&seg, &data).unwrap();
    set_state_open(&sdir);

    let done = store.recover().unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.chunks_reindexed, 1, "{:?}", done[0].1);
    let r = store.open_stream(&name).unwrap();
    assert_eq!(r.meta().state, StreamState::Recovered);
    assert_eq!(read_range(&r, r.full_range()), pkts, "nothing lost");
    for v in View::splits() {
        assert_eq!(
            r.splits(v).unwrap().len(),
            splits_before[&v.to_string()],
            "{v}"
        );
    }

    // Case 2: the last chunk's data is torn (half written): it is cut, the rest kept.
    let data = std::fs::read(&seg).unwrap();
    let cut = last.file_offset + 32 + u64::from(last.body_len) / 2;
    std::fs::write(&seg, &data[..cut as usize]).unwrap();
    set_state_open(&sdir);
    let done = store.recover().unwrap();
    assert_eq!(done[0].1.chunks_kept, n_chunks - 1);
    let r = store.open_stream(&name).unwrap();
    let kept = second_last.end_packet() as usize;
    assert_eq!(r.packets() as usize, kept);
    assert_eq!(read_range(&r, r.full_range()), pkts[..kept]);
    for v in View::splits() {
        let total: u64 = r.splits(v).unwrap().iter().map(|s| s.range.packets()).sum();
        assert_eq!(total, kept as u64, "{v} after cut");
    }
}

fn set_state_open(sdir: &std::path::Path) {
    let p = sdir.join("meta.json");
    let s = std::fs::read_to_string(&p).unwrap();
    let s = s
        .replace("\"sealed\"", "\"open\"")
        .replace("\"recovered\"", "\"open\"");
    std::fs::write(&p, s).unwrap();
}

#[test]
fn names_are_checked_and_suffixed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for bad in ["../../etc", "a/b", "", "..", "x\0y", &"n".repeat(10_000)] {
        assert!(
            store
                .create_stream(bad, &params(), SystemTime::now())
                .is_err(),
            "{bad:?}"
        );
        assert!(store.open_stream(bad).is_err());
        assert!(store.delete_stream(bad).is_err());
    }
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1434832135);
    let w = store.create_stream("cli_capture", &params(), t).unwrap();
    assert_eq!(w.name(), "cli_capture_20150620_2028");
    let e = store.create_stream("cli_capture", &params(), t);
    assert!(matches!(e, Err(wirecap_store::Error::StreamExists(_))));
    w.seal().unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].packets, 0);
    assert_eq!(list[0].bytes, 24);
    assert!(store.open_stream("nope_20150620_2028").is_err());
    store.delete_stream("cli_capture_20150620_2028").unwrap();
    assert!(store.list().unwrap().is_empty());
}

/// A toy summary: a bitset of each packet's first byte.
struct FirstByte;

impl wirecap_store::ChunkSummarizer for FirstByte {
    fn summary_len(&self) -> usize {
        32
    }
    fn summarize(&self, _link: LinkType, body: &[u8], out: &mut [u8]) {
        for p in wirecap_pcap::records(body) {
            if let Some(b) = p.data.first() {
                out[*b as usize / 8] |= 1 << (b % 8);
            }
        }
    }
}

#[test]
fn summaries_skip_chunks_that_cannot_match_and_survive_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // First bytes follow the packet index, so each small chunk holds few distinct values.
    let pkts = traffic(13, 3000, 30);
    let opts = WriterOptions {
        summarizer: Some(std::sync::Arc::new(FirstByte)),
        ..small_opts()
    };
    let name = write_stream(&store, "sum", &pkts, opts);
    let r = store.open_stream(&name).unwrap();
    assert_eq!(r.meta().summary_len, 32);
    let want: Vec<Pkt> = pkts.iter().filter(|p| p.data[0] == 7).cloned().collect();
    let mut got = Vec::new();
    let stats = r
        .scan(
            r.full_range(),
            |s| s[0] & (1 << 7) != 0,
            |p| {
                if p.data[0] == 7 {
                    got.push(Pkt {
                        ts: p.ts_ns(),
                        orig: p.orig_len,
                        data: p.data.to_vec(),
                    });
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(got, want);
    assert!(stats.chunks_skipped > stats.chunks_read, "{stats:?}");
    assert_eq!(stats.chunks_read + stats.chunks_skipped, r.chunk_count());

    // A torn tail: the summary of a lost chunk goes with it.
    let sdir = r.dir().to_path_buf();
    let last = r.chunk(r.chunk_count() - 1).unwrap();
    let n = r.chunk_count();
    drop(r);
    let seg = sdir.join(format!("seg-{:08}.wcs", last.segment));
    let data = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &data[..(last.file_offset + 40) as usize]).unwrap();
    set_state_open(&sdir);
    store.recover().unwrap();
    let r = store.open_stream(&name).unwrap();
    assert_eq!(r.chunk_count(), n - 1);
    assert_eq!(
        std::fs::metadata(sdir.join("summary.idx")).unwrap().len(),
        (n - 1) * 32
    );
    assert!(r.chunk_summary(n - 2).unwrap().is_some());
    assert!(r.chunk_summary(n - 1).unwrap().is_none());
}

#[test]
fn direct_io_streams_read_back_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(17, 2500, 30);
    let opts = WriterOptions {
        direct_io: true,
        ..small_opts()
    };
    let name = write_stream(&store, "direct", &pkts, opts);
    let r = store.open_stream(&name).unwrap();
    assert_eq!(r.meta().chunk_align, 4096);
    for i in 0..r.chunk_count() {
        assert_eq!(r.chunk(i).unwrap().file_offset % 4096, 0);
    }
    assert_eq!(read_range(&r, r.full_range()), pkts);
    assert_eq!(parse_pcap(&pcap_bytes(&r, r.full_range())), pkts);
    for v in View::splits() {
        let total: u64 = r.splits(v).unwrap().iter().map(|s| s.range.packets()).sum();
        assert_eq!(total, pkts.len() as u64);
    }
    // Lose the last index record: recovery finds the chunk again past the padding.
    let sdir = r.dir().to_path_buf();
    drop(r);
    let idx = sdir.join("chunks.idx");
    let len = std::fs::metadata(&idx).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(len - 64)
        .unwrap();
    set_state_open(&sdir);
    let done = store.recover().unwrap();
    assert_eq!(done[0].1.chunks_reindexed, 1, "{:?}", done[0].1);
    let r = store.open_stream(&name).unwrap();
    assert_eq!(read_range(&r, r.full_range()), pkts);
}
