//! Damaged stores never give silently wrong answers (issue 17, items 5 and 8): every
//! read checks the chunks it returns, readers check the index against itself and the
//! segments, `verify` lists every problem, `recover` rebuilds any stream's index from
//! its segments, damaged streams are listed as such, and an interrupted creation leaves
//! nothing that hides or blocks a name.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::SystemTime;

use wirecap_pcap::{LinkType, Packet};
use wirecap_store::timefmt::NS_PER_SEC;
use wirecap_store::{Error, Listed, Store, StreamParams, View, WriterOptions};

const T0: u64 = 1_700_000_000;

fn params() -> StreamParams {
    StreamParams {
        link_type: LinkType::ETHERNET,
        snaplen: 65535,
        source: "test".into(),
    }
}

/// 20 seconds of 300 packets each, in 16 KiB chunks over 64 KiB segments.
fn stream(store: &Store) -> String {
    let opts = WriterOptions {
        chunk_bytes: 16 << 10,
        segment_bytes: 64 << 10,
        ..WriterOptions::default()
    };
    let mut w = store
        .create_stream_with("d", &params(), SystemTime::now(), opts)
        .unwrap();
    for s in 0..20u64 {
        for i in 0..300u32 {
            let data = vec![(i % 251) as u8; 60 + (i as usize % 40)];
            w.append(&Packet {
                ts_sec: T0 + s,
                ts_nsec: i * 1000,
                orig_len: data.len() as u32,
                data: &data,
                interface: 0,
            })
            .unwrap();
        }
    }
    w.seal().unwrap().name
}

fn dir(store: &Store, name: &str) -> PathBuf {
    store.dir().join("streams").join(name)
}

fn damage(path: &PathBuf, at: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

/// What `verify` finds wrong with a stream.
fn problems(store: &Store, name: &str) -> Vec<String> {
    store.verify(name, &mut |_| {}).unwrap().problems
}

fn count(store: &Store, name: &str, start: u64, stop: u64) -> Result<u64, Error> {
    let r = store.open_stream(name)?;
    Ok(
        r.time_range(Some(start * NS_PER_SEC), Some(stop * NS_PER_SEC))?
            .packets(),
    )
}

#[test]
fn zeroed_segment_bytes_fail_every_read_naming_the_chunk() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let name = stream(&store);
    let seg = dir(&store, &name).join("seg-00000001.wcs");
    damage(&seg, 20_000, &[0u8; 4096]);
    let r = store.open_stream(&name).unwrap();
    let all = r.full_range();

    let check = |e: Error| {
        let msg = e.to_string();
        assert!(
            matches!(&e, Error::DamagedChunk { segment, .. } if segment == "seg-00000001.wcs"),
            "{msg}"
        );
        assert!(msg.contains(&name) && msg.contains("CRC32C"), "{msg}");
    };
    check(r.write_pcap(all, &mut Vec::new()).unwrap_err());
    check(
        r.for_each_packet(all, |_| ControlFlow::Continue(()))
            .unwrap_err(),
    );
    check(r.mapped(all).find_map(|x| x.err()).unwrap());
    let mut buf = Vec::new();
    let e = r.pcap_reader(all).read_to_end(&mut buf).unwrap_err();
    check(*e.into_inner().unwrap().downcast::<Error>().unwrap());
    // Ranges that do not touch the damaged chunk still read.
    let first = r.split(View::Time { secs: 1 }, 0).unwrap();
    assert_eq!(
        r.write_pcap(first.range, &mut Vec::new()).unwrap(),
        first.range.pcap_bytes()
    );

    let report = store.verify(&name, &mut |_| {}).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("seg-00000001.wcs")),
        "{:?}",
        report.problems
    );
    // A rebuild leaves the damaged chunk out; what remains reads and verifies clean.
    let rb = store.rebuild_index(&name, None).unwrap();
    assert_eq!(rb.chunks_dropped, 1);
    let r = store.open_stream(&name).unwrap();
    assert!(r.packets() < 6000 && r.packets() > 5000, "{}", r.packets());
    r.write_pcap(r.full_range(), &mut Vec::new()).unwrap();
    let again = store.verify(&name, &mut |_| {}).unwrap();
    assert_eq!(again.problems, Vec::<String>::new());
}

#[test]
fn truncated_chunk_index_of_a_sealed_stream_is_detected_and_rebuilt() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let name = stream(&store);
    let cidx = dir(&store, &name).join("chunks.idx");
    let len = fs::metadata(&cidx).unwrap().len();
    for cut in [0, 64, len - 64, len - 10] {
        OpenOptions::new()
            .write(true)
            .open(&cidx)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let e = store.open_stream(&name).err().expect("damage detected");
        assert!(matches!(e, Error::DamagedIndex { .. }), "cut {cut}: {e}");
        // Listed as damaged, with the reason, not hidden.
        let l = store.listing().unwrap();
        assert!(
            l.iter().any(|x| matches!(x, Listed::Damaged { name: n, why } if *n == name && why.contains("chunks.idx"))),
            "{l:?}"
        );
        assert!(!problems(&store, &name).is_empty());
        let rec = store.recover().unwrap();
        assert!(
            rec.iter()
                .any(|(n, r)| *n == name && r.index_rebuilt.is_some()),
            "{rec:?}"
        );
        let r = store.open_stream(&name).unwrap();
        assert_eq!(r.packets(), 6000);
        assert!(problems(&store, &name).is_empty());
    }
    // Nothing left to do.
    assert!(store.recover().unwrap().is_empty());
}

#[test]
fn a_torn_time_mark_is_detected_not_answered_from() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let name = stream(&store);
    assert_eq!(count(&store, &name, T0 + 5, T0 + 6).unwrap(), 300);
    let tidx = dir(&store, &name).join("time.idx");
    let good = fs::read(&tidx).unwrap();

    // Mark 6 (second T0+6) moved one packet on: still in order and inside its chunk.
    let mut b = good.clone();
    let m = &mut b[6 * 24..7 * 24];
    let packet = u64::from_le_bytes(m[8..16].try_into().unwrap()) + 1;
    let pos = u64::from_le_bytes(m[16..24].try_into().unwrap()) + 16 + 60;
    m[8..16].copy_from_slice(&packet.to_le_bytes());
    m[16..24].copy_from_slice(&pos.to_le_bytes());
    fs::write(&tidx, &b).unwrap();
    for res in [
        count(&store, &name, T0 + 6, T0 + 7),
        store
            .open_stream(&name)
            .and_then(|r| r.split(View::Time { secs: 1 }, 6))
            .map(|s| s.range.packets()),
    ] {
        let e = res.expect_err("the moved mark is noticed");
        assert!(
            matches!(&e, Error::DamagedIndex { file, .. } if file == "time.idx"),
            "{e}"
        );
    }

    // Mark 6 zeroed: out of order, every time view refuses.
    let mut b = good.clone();
    b[6 * 24..7 * 24].fill(0);
    fs::write(&tidx, &b).unwrap();
    let r = store.open_stream(&name).unwrap();
    assert!(matches!(
        r.splits(View::Time { secs: 1 }),
        Err(Error::DamagedIndex { .. })
    ));
    assert!(count(&store, &name, T0 + 5, T0 + 6).is_err());

    // A torn last mark, and a missing file, are damage, not an empty index.
    fs::write(&tidx, &good[..good.len() - 5]).unwrap();
    assert!(matches!(
        store.open_stream(&name),
        Err(Error::DamagedIndex { .. })
    ));
    fs::remove_file(&tidx).unwrap();
    assert!(matches!(
        store.open_stream(&name),
        Err(Error::DamagedIndex { .. })
    ));
    let size = dir(&store, &name).join("size-1MB.idx");
    fs::remove_file(&size).unwrap();

    let rec = store.recover().unwrap();
    assert!(
        rec.iter()
            .any(|(n, r)| *n == name && r.index_rebuilt.is_some()),
        "{rec:?}"
    );
    assert_eq!(fs::read(&tidx).unwrap(), good);
    assert_eq!(count(&store, &name, T0 + 6, T0 + 7).unwrap(), 300);
    assert_eq!(problems(&store, &name), Vec::<String>::new());
}

#[test]
fn garbage_meta_is_listed_as_damaged() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let name = stream(&store);
    fs::write(dir(&store, &name).join("meta.json"), b"{ garbage").unwrap();
    let l = store.listing().unwrap();
    assert_eq!(l.len(), 1);
    match &l[0] {
        Listed::Damaged { name: n, why } => {
            assert_eq!(n, &name);
            assert!(why.contains("meta.json"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let rec = store.recover().unwrap();
    assert!(
        rec.iter().any(|(n, r)| *n == name && r.failed.is_some()),
        "{rec:?}"
    );
    assert!(!problems(&store, &name).is_empty());
}

#[test]
fn an_interrupted_creation_neither_hides_nor_blocks_a_name() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(T0);
    // What a creation killed before meta.json left with older versions: the directory
    // and its lock file.
    let name = wirecap_store::stored_name("orphan", when);
    let d = dir(&store, &name);
    fs::create_dir(&d).unwrap();
    fs::File::create(d.join("writer.lock")).unwrap();
    let l = store.listing().unwrap();
    assert!(
        matches!(&l[..], [Listed::Damaged { name: n, .. }] if *n == name),
        "{l:?}"
    );
    // The name is free again, at once.
    let w = store.create_stream("orphan", &params(), when).unwrap();
    assert_eq!(w.name(), name);
    w.seal().unwrap();
    fs::remove_dir_all(&d).unwrap();

    // And recovery removes it.
    fs::create_dir(&d).unwrap();
    fs::File::create(d.join("writer.lock")).unwrap();
    // Today's creations build in a temporary directory: one left by a kill is removed
    // too, and never listed.
    let tmp = store
        .dir()
        .join("streams")
        .join(format!(".creating-{name}.999999"));
    fs::create_dir(&tmp).unwrap();
    let rec = store.recover().unwrap();
    assert!(
        rec.iter().any(|(n, r)| *n == name && r.orphan_removed),
        "{rec:?}"
    );
    assert!(!d.exists() && !tmp.exists());
    assert!(store.listing().unwrap().is_empty());
}
