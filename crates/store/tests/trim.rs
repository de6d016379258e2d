//! Head trimming (retention): what remains of a trimmed stream reads back exactly, every
//! view still partitions it, a trim works under a running writer, a reader opened before
//! a trim fails clearly instead of reading garbage, and a crash between the trim point
//! and the deletion is completed by recovery.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::SystemTime;

use wirecap_pcap::{CaptureReader, LinkType, Packet};
use wirecap_store::timefmt::NS_PER_SEC;
use wirecap_store::{
    Error, PacketRange, Store, StreamParams, StreamReader, View, WriterOptions, layout,
};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkt {
    ts: u64,
    data: Vec<u8>,
}

fn params() -> StreamParams {
    StreamParams {
        link_type: LinkType::ETHERNET,
        snaplen: 65_535,
        source: "test".into(),
    }
}

fn opts() -> WriterOptions {
    WriterOptions {
        chunk_bytes: 4 << 10,
        segment_bytes: 32 << 10,
        ..WriterOptions::default()
    }
}

/// ~`n` packets, 5 per second, sizes 60..1460.
fn traffic(n: usize) -> Vec<Pkt> {
    (0..n)
        .map(|i| Pkt {
            ts: 1_700_000_000 * NS_PER_SEC + i as u64 * (NS_PER_SEC / 5) + (i as u64 % 7),
            data: vec![i as u8; 60 + (i * 37) % 1400],
        })
        .collect()
}

fn packet(p: &Pkt) -> Packet<'_> {
    Packet {
        ts_sec: p.ts / NS_PER_SEC,
        ts_nsec: (p.ts % NS_PER_SEC) as u32,
        orig_len: p.data.len() as u32,
        data: &p.data,
        interface: 0,
    }
}

fn read_range(r: &StreamReader, range: PacketRange) -> Vec<Pkt> {
    let mut v = Vec::new();
    r.for_each_packet(range, |p| {
        v.push(Pkt {
            ts: p.ts_ns(),
            data: p.data.to_vec(),
        });
        ControlFlow::Continue(())
    })
    .unwrap();
    v
}

fn pcap_packets(r: &StreamReader, range: PacketRange) -> Vec<Pkt> {
    let mut out = Vec::new();
    r.write_pcap(range, &mut out).unwrap();
    assert_eq!(out.len() as u64, range.pcap_bytes());
    let mut rd = CaptureReader::new(&out[..]).unwrap();
    let mut v = Vec::new();
    while let Some(p) = rd.next_packet().unwrap() {
        v.push(Pkt {
            ts: p.ts_ns(),
            data: p.data.to_vec(),
        });
    }
    v
}

fn segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    v.sort();
    v
}

/// Every view of `r` partitions exactly `live` (the packets from `first` on).
fn check_views(r: &StreamReader, pkts: &[Pkt], first: usize) {
    let live = &pkts[first..];
    assert_eq!(read_range(r, r.full_range()), live);
    assert_eq!(pcap_packets(r, r.full_range()), live);
    assert_eq!(r.packets(), live.len() as u64);
    assert_eq!(r.first_ts(), Some(live[0].ts));
    assert_eq!(r.time_range(None, None).unwrap(), r.full_range());
    for view in std::iter::once(View::Single).chain(View::splits()) {
        let splits = r.splits(view).unwrap();
        assert!(!splits.is_empty(), "{view}");
        let mut next = first as u64;
        for (i, s) in splits.iter().enumerate() {
            assert_eq!(s.index, i as u64, "{view}");
            assert_eq!(s.range.first_packet, next, "{view} split {i}");
            assert!(!s.range.is_empty(), "{view} split {i}");
            let got = pcap_packets(r, s.range);
            assert_eq!(
                got,
                &pkts[s.range.first_packet as usize..s.range.end_packet as usize]
            );
            if let View::Time { .. } = view {
                // A time split of what remains holds exactly its live packets in [start, stop).
                let want: Vec<_> = live
                    .iter()
                    .filter(|p| p.ts >= s.start_ts && p.ts < s.stop_ts)
                    .cloned()
                    .collect();
                assert_eq!(got, want, "{view} split {i}");
            }
            next = s.range.end_packet;
        }
        assert_eq!(next, pkts.len() as u64, "{view} covers what remains");
    }
    // A time before the head selects from the head on.
    assert_eq!(
        r.time_range(Some(pkts[0].ts), None).unwrap(),
        r.full_range()
    );
}

#[test]
fn trimmed_stream_reads_back_what_remains_in_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(3000);
    let mut w = store
        .create_stream_with("trim", &params(), SystemTime::now(), opts())
        .unwrap();
    for p in &pkts {
        w.append(&packet(p)).unwrap();
    }
    let name = w.seal().unwrap().name;
    let sdir = dir.path().join(layout::STREAMS_DIR).join(&name);
    let before = segments(&sdir);
    assert!(before.len() > 20, "{} segments", before.len());

    let freed = store.trim_head(&name, 5).unwrap();
    assert!(freed > 0);
    assert_eq!(segments(&sdir), before[5..]);
    let r = store.open_stream(&name).unwrap();
    let head = r.head();
    assert_eq!(head.segment, 5);
    assert!(head.packet > 0);
    check_views(&r, &pkts, head.packet as usize);
    // The oldest packet on disk is the head's.
    let info = r.info().unwrap();
    assert_eq!(info.first_ts, Some(pkts[head.packet as usize].ts));
    assert_eq!(
        store.list().unwrap()[0].packets,
        (pkts.len() as u64) - head.packet
    );

    // Trimming again moves further; trimming backwards does nothing; past the end is refused.
    assert!(store.trim_head(&name, 9).unwrap() > 0);
    assert_eq!(store.trim_head(&name, 7).unwrap(), 0);
    let last = before.len() as u32;
    assert!(matches!(
        store.trim_head(&name, last + 3),
        Err(Error::Invalid(_))
    ));
    let r = store.open_stream(&name).unwrap();
    check_views(&r, &pkts, r.head().packet as usize);
}

#[test]
fn trim_under_a_running_writer_and_a_reader_opened_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(4000);
    let mut w = store
        .create_stream_with("live", &params(), SystemTime::now(), opts())
        .unwrap();
    let name = w.name().to_owned();
    for p in &pkts[..2000] {
        w.append(&packet(p)).unwrap();
    }
    w.commit().unwrap();
    let old_reader = store.open_stream(&name).unwrap();
    let cut = store.layout_of(&name).unwrap();
    assert!(cut.writing);
    let keep = cut.last_segment.unwrap() - 1;
    assert!(store.trim_head(&name, keep).unwrap() > 0);

    // The reader from before the trim: its dead part fails with a clear error (never
    // other packets), what it reads of the live part is right.
    let mut out = Vec::new();
    let e = old_reader
        .write_pcap(old_reader.full_range(), &mut out)
        .unwrap_err();
    assert!(matches!(e, Error::Trimmed(_)), "{e}");
    let fresh = store.open_stream(&name).unwrap();
    let live_range = fresh.full_range();
    assert_eq!(
        read_range(&old_reader, live_range),
        pkts[fresh.head().packet as usize..2000]
    );

    // The writer goes on; after sealing, everything from the head on is there.
    for p in &pkts[2000..] {
        w.append(&packet(p)).unwrap();
    }
    w.seal().unwrap();
    let r = store.open_stream(&name).unwrap();
    check_views(&r, &pkts, r.head().packet as usize);
    // Recovery leaves a trimmed, sealed stream alone.
    assert!(store.recover().unwrap().is_empty());
}

#[test]
fn crash_between_trim_point_and_deletion_is_completed_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pkts = traffic(2500);
    let mut w = store
        .create_stream_with("crash", &params(), SystemTime::now(), opts())
        .unwrap();
    let name = w.name().to_owned();
    for p in &pkts {
        w.append(&packet(p)).unwrap();
    }
    w.commit().unwrap();
    let sdir = dir.path().join(layout::STREAMS_DIR).join(&name);
    let before = segments(&sdir);
    // Keep copies of the segments a trim deletes, then put them back: the state a crash
    // right after the trim point was written (and before the deletion) leaves.
    let saved: Vec<(String, Vec<u8>)> = before[..4]
        .iter()
        .map(|n| (n.clone(), std::fs::read(sdir.join(n)).unwrap()))
        .collect();
    store.trim_head(&name, 4).unwrap();
    for (n, b) in &saved {
        std::fs::write(sdir.join(n), b).unwrap();
    }
    // The writer dies too (the stream stays open).
    std::mem::forget(w);
    drop_lock_by_reopening(&sdir);

    // Before recovery, readers already ignore the dead segments.
    let r = store.open_stream(&name).unwrap();
    let head = r.head().packet as usize;
    assert_eq!(read_range(&r, r.full_range()), pkts[head..]);
    // Recovery deletes them, and seals the stream with everything live.
    let rec = store.recover().unwrap();
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert!(rec[0].1.bytes_cut >= saved.iter().map(|s| s.1.len() as u64).sum::<u64>());
    assert_eq!(segments(&sdir), before[4..]);
    let r = store.open_stream(&name).unwrap();
    check_views(&r, &pkts, head);
}

/// A forgotten writer still holds its flock in this process; a crash would have released
/// it. Take it over the way the kernel would: the lock file is replaced.
fn drop_lock_by_reopening(sdir: &Path) {
    let p = sdir.join(layout::LOCK);
    std::fs::remove_file(&p).unwrap();
}
