//! The archive tier on a `file://` archive (a mounted volume), in process: writeback of a
//! multi-segment stream, eviction of the local copies, reads back by ranges (plain and
//! compressed), the cost of one second, a damaged object, and a read-only fleet copy.
//! The S3 path is tested end to end in crates/wirecap/tests/archive.rs.

use std::path::Path;
use std::sync::Arc;

use wirecap_archive::{Archive, ArchiveConfig};
use wirecap_store::{Store, View};

/// A sealed stream of `seconds` seconds, 200 packets a second of 700 bytes (half
/// repetitive, half pseudo-random), in 256 kB segments of 64 kB chunks.
fn write_stream(store: &Store, base: &str, seconds: u64) -> String {
    let params = wirecap_store::StreamParams {
        link_type: wirecap_pcap::LinkType::ETHERNET,
        snaplen: 65535,
        source: "test".into(),
    };
    let opts = wirecap_store::WriterOptions {
        chunk_bytes: 64 << 10,
        segment_bytes: 256 << 10,
        ..Default::default()
    };
    let mut w = store
        .create_stream_with(base, &params, std::time::SystemTime::now(), opts)
        .unwrap();
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut data = vec![0u8; 700];
    for i in 0..seconds * 200 {
        for b in data[350..].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        data[..8].copy_from_slice(&i.to_le_bytes());
        w.append(&wirecap_pcap::Packet {
            ts_sec: 1_700_000_000 + i / 200,
            ts_nsec: (i % 200) as u32 * 5_000_000,
            orig_len: 700,
            data: &data,
            interface: 0,
        })
        .unwrap();
    }
    w.seal().unwrap().name
}

fn pcap(store: &Store, name: &str, view: View, index: u64) -> wirecap_store::Result<Vec<u8>> {
    let r = store.open_stream(name)?;
    let range = r.split(view, index)?.range;
    let mut v = Vec::new();
    r.write_pcap(range, &mut v)?;
    Ok(v)
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wcs"))
        .count()
}

fn archive(url: &str, compression: &str, read_only: bool) -> Arc<Archive> {
    let cfg = ArchiveConfig {
        url: Some(url.into()),
        probe: Some("probe-1".into()),
        compression: Some(compression.into()),
        read_only,
        ..ArchiveConfig::default()
    };
    Archive::open(cfg.validate("host").unwrap().unwrap()).unwrap()
}

#[test]
fn writeback_eviction_ranged_reads_damage_and_a_fleet_copy() {
    for compression in ["zstd", "none"] {
        let d = tempfile::tempdir().unwrap();
        let url = format!("file://{}", d.path().join("archive").display());
        let a = archive(&url, compression, false);
        let store = Store::open(d.path().join("data"))
            .unwrap()
            .with_source(Arc::new(a.reader()));
        let name = write_stream(&store, "cap", 30);
        let dir = store.stream_path(&name).unwrap();
        assert!(segments(&dir) >= 10, "a multi-segment stream");
        let single = pcap(&store, &name, View::Single, 0).unwrap();
        let second = pcap(&store, &name, View::parse("split_1sec").unwrap(), 17).unwrap();

        a.pass_blocking(&store).unwrap();
        let st = a.status();
        assert_eq!(
            (st.state.as_str(), st.lag_bytes, st.pending_segments),
            ("ok", 0, 0),
            "{st:?}"
        );
        let m = wirecap_archive::Manifest::load_local(&dir).unwrap();
        assert!(m.sealed);
        assert_eq!(m.segments.len(), segments(&dir));
        let raw: u64 = m.segments.values().map(|e| e.bytes).sum();
        let stored: u64 = m.segments.values().map(|e| e.stored_bytes).sum();
        eprintln!("{compression}: {raw} bytes stored as {stored}");
        if compression == "zstd" {
            assert!(stored < raw * 3 / 4, "{stored} of {raw}");
        }
        // A second pass has nothing to do.
        let before = a.status().uploaded_bytes_total;
        a.pass_blocking(&store).unwrap();
        assert_eq!(a.status().uploaded_bytes_total, before);

        // The disk as a cache: every local copy goes, the stream stays readable.
        let freed = a.evict(&store, u64::MAX);
        assert_eq!(freed, raw);
        assert_eq!(segments(&dir), 0);
        assert_eq!(store.list().unwrap().len(), 1);
        let r0 = a.status().read_bytes_total;
        assert_eq!(
            pcap(&store, &name, View::parse("split_1sec").unwrap(), 17).unwrap(),
            second
        );
        let window_cost = a.status().read_bytes_total - r0;
        assert!(
            window_cost <= second.len() as u64 + (3 << 20),
            "one second of {} bytes fetched {window_cost}",
            second.len()
        );
        assert_eq!(pcap(&store, &name, View::Single, 0).unwrap(), single);
        // Restarted (recovery runs over the evicted stream): nothing rebuilt, still whole.
        for (n, rec) in store.recover().unwrap() {
            assert!(
                rec.failed.is_none() && rec.index_rebuilt.is_none(),
                "{n}: {rec:?}"
            );
        }

        // A read-only node on its own data directory serves the probe's stream.
        let ro = archive(&url, compression, true);
        let fleet = Store::open(d.path().join("fleet"))
            .unwrap()
            .with_source(Arc::new(ro.reader()));
        assert_eq!(
            ro.sync_blocking(&fleet).unwrap(),
            vec!["probe-1".to_owned()]
        );
        assert_eq!(fleet.stream_names().unwrap(), vec![name.clone()]);
        assert_eq!(pcap(&fleet, &name, View::Single, 0).unwrap(), single);
        assert_eq!(
            wirecap_archive::origin_probe(&fleet.stream_path(&name).unwrap()).as_deref(),
            Some("probe-1")
        );

        // A damaged object: an error that names the chunk and the archive, not wrong bytes.
        let seg = if compression == "zstd" {
            "seg-00000003.wcs.zst"
        } else {
            "seg-00000003.wcs"
        };
        let obj = d.path().join("archive/probe-1").join(&name).join(seg);
        let mut b = std::fs::read(&obj).unwrap();
        let at = b.len() / 2;
        b[at] ^= 0x5a;
        std::fs::write(&obj, b).unwrap();
        let fresh = archive(&url, compression, false);
        let store2 = Store::open(d.path().join("data"))
            .unwrap()
            .with_source(Arc::new(fresh.reader()));
        let e = pcap(&store2, &name, View::Single, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("archive"), "{e}");
        assert!(e.contains("is damaged") || e.contains("zstd"), "{e}");
    }
}

#[test]
fn an_unreachable_archive_is_an_error_in_words_and_nothing_counts_as_archived() {
    let d = tempfile::tempdir().unwrap();
    let cfg = ArchiveConfig {
        url: Some("s3://bucket/p".into()),
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        probe: Some("p".into()),
        ..ArchiveConfig::default()
    };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "very-secret-value-42");
    }
    let a = Archive::open(cfg.validate("h").unwrap().unwrap()).unwrap();
    let store = Store::open(d.path()).unwrap();
    write_stream(&store, "x", 3);
    let e = a.pass_blocking(&store).unwrap_err().to_string();
    assert!(e.contains("cannot be reached"), "{e}");
    assert!(!e.contains("very-secret-value-42"));
    let st = a.status();
    assert!(st.lag_bytes > 0 && st.pending_segments > 0, "{st:?}");
    let name = store.stream_names().unwrap().remove(0);
    assert!(wirecap_archive::Manifest::load_local(&store.stream_path(&name).unwrap()).is_none());
    assert_eq!(
        a.evict(&store, u64::MAX),
        0,
        "nothing archived, nothing evicted"
    );
}
