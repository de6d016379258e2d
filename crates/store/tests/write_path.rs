//! The write path's shortcuts change nothing on disk: a stream written from capture-built
//! chunks (indexed from what each push noted, checksummed once per chunk) has exactly the
//! index that recovery rebuilds by walking and checksumming the segments.

use std::time::SystemTime;

use proptest::prelude::*;
use wirecap_pcap::LinkType;
use wirecap_store::timefmt::NS_PER_SEC;
use wirecap_store::{Chunk, Store, StreamParams, StreamState, WriterOptions, layout};

fn params() -> StreamParams {
    StreamParams {
        link_type: LinkType::ETHERNET,
        snaplen: 262_144,
        source: "test".into(),
    }
}

/// Every index file of a stream, by name.
fn index_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn index_written_from_pushes_equals_index_rebuilt_from_segments(
        seed in any::<u64>(),
        n in 1usize..3000,
        chunk_kib in 4usize..256,
        direct in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = WriterOptions {
            segment_bytes: 2 << 20,
            direct_io: direct,
            ..WriterOptions::default()
        };
        let mut w = store
            .create_stream_with("push", &params(), SystemTime::now(), opts)
            .unwrap();
        let sdir = w.dir().to_path_buf();
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let data = vec![0x3cu8; 70_000];
        let mut ts = 1_700_000_000 * NS_PER_SEC;
        let mut chunk = Chunk::with_capacity(chunk_kib << 10);
        for i in 0..n {
            let r = next();
            ts += match r % 8 {
                0 => 0,
                1 => (r >> 8) % (3 * NS_PER_SEC),
                _ => (r >> 8) % 2_000_000,
            };
            let len = match r % 5 {
                0 => 1514,
                1 => 60,
                2 => (r >> 16) as usize % 70_000,
                _ => (r >> 16) as usize % 1600,
            };
            chunk
                .push_parts(ts / NS_PER_SEC, (ts % NS_PER_SEC) as u32, len as u32, &data[..len])
                .unwrap();
            if chunk.len_bytes() >= chunk_kib << 10 || i == n - 1 {
                w.write_chunk(&mut chunk).unwrap();
                chunk.clear();
            }
        }
        prop_assert_eq!(w.packets(), n as u64);
        drop(w);
        let written = index_files(&sdir);

        // Forget the index; recovery rebuilds it from the segments alone.
        for (name, _) in &written {
            std::fs::remove_file(sdir.join(name)).unwrap();
        }
        let meta = sdir.join("meta.json");
        let m = std::fs::read_to_string(&meta).unwrap();
        prop_assert!(m.contains("\"open\""));
        let done = store.recover().unwrap();
        prop_assert_eq!(done.len(), 1);
        let r = store.open_stream(&done[0].0).unwrap();
        prop_assert_eq!(r.meta().state, StreamState::Recovered);
        prop_assert_eq!(r.packets(), n as u64);
        let rebuilt = index_files(&sdir);
        prop_assert_eq!(written.len(), rebuilt.len());
        for ((a, x), (b, y)) in written.iter().zip(&rebuilt) {
            prop_assert_eq!(a, b);
            prop_assert!(x == y, "{} differs after rebuild", a);
        }
        prop_assert!(written.iter().any(|(f, _)| f == layout::CHUNKS));
    }
}
