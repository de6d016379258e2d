//! A capture into a store on a file system that fills up (a small tmpfs, root only:
//! without root the test records a skip, and fails under CI). Every packet the store
//! cannot take is counted as a write drop, the error is reported, and what was written
//! before the disk filled stays readable, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wirecap_capture::chunk::Records;
use wirecap_capture::source::LINKTYPE_ETHERNET;
use wirecap_capture::source::Polled;
use wirecap_capture::store_sink::StoreSink;
use wirecap_capture::{Capture, Counters, Frame, PipelineConfig, Source};

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "wc-full"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// `count` frames of 1000 bytes, numbered in their first 4 bytes, then exhausted.
struct Numbered {
    next: u32,
    count: u32,
}

fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![(i % 251) as u8; 1000];
    f[..4].copy_from_slice(&i.to_be_bytes());
    f[12] = 0x08;
    f
}

impl Source for Numbered {
    fn describe(&self) -> &str {
        "script:full"
    }
    fn link_type(&self) -> u32 {
        LINKTYPE_ETHERNET
    }
    fn snaplen(&self) -> u32 {
        65535
    }
    fn poll(
        &mut self,
        _t: Duration,
        on_frame: &mut dyn FnMut(&Frame<'_>),
    ) -> wirecap_capture::Result<Polled> {
        if self.next == self.count {
            return Ok(Polled::Exhausted);
        }
        let end = (self.next + 100).min(self.count);
        for i in self.next..end {
            let f = frame(i);
            on_frame(&Frame {
                ts_ns: 1_700_000_000_000_000_000 + u64::from(i) * 1000,
                orig_len: f.len() as u32,
                data: &f,
            });
        }
        let n = end - self.next;
        self.next = end;
        Ok(Polled::Packets(n))
    }
}

fn stored(store: &wirecap_store::Store, name: &str) -> Vec<Vec<u8>> {
    let r = store.open_stream(name).unwrap();
    let mut pcap = vec![];
    r.write_pcap(r.full_range(), &mut pcap).unwrap();
    Records::new(&pcap[24..]).map(|r| r.data.to_vec()).collect()
}

fn streams(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("streams"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_full_disk_is_counted_as_write_drops_and_the_stream_stays_readable() {
    if !(wirecap_testkit::require_root() && wirecap_testkit::require_tools(&["mount", "umount"])) {
        return;
    }
    let fs = Tmpfs::mount("4m");
    let store = wirecap_store::Store::open(fs.path()).unwrap();
    // 20 MB of packets into 4 MiB.
    let sent = 20_000u32;
    let sink = StoreSink::create(&store, "full", 1, 65535, "script:full", 64 << 10).unwrap();
    let cfg = PipelineConfig {
        chunk_bytes: 64 << 10,
        // Deep enough that the writer never falls behind: the disk is the only loss.
        queue_chunks: 4096,
        ..PipelineConfig::default()
    };
    let c = Capture::start_with(
        vec![Box::new(Numbered {
            next: 0,
            count: sent,
        })],
        Box::new(sink),
        &cfg,
        Arc::new(Counters::new()),
    )
    .unwrap();
    let t = Instant::now();
    while !c.finished() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "capture did not finish: {:?}",
            c.status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let live = c.status();
    let stopped = c.stop();
    let s = match &stopped {
        Ok(st) => st.status.clone(),
        Err(_) => live,
    };
    eprintln!(
        "{sent} sent: {} captured, {} write drops; seal: {:?}",
        s.packets_captured,
        s.dropped_write,
        stopped.as_ref().map(|st| &st.sealed.name)
    );
    assert!(s.dropped_write > 0, "the disk filled: {s:?}");
    assert!(s.packets_captured > 0, "{s:?}");
    // Against the source's count: stored, or a write drop; nothing else, nothing silent.
    assert_eq!(
        s.packets_captured + s.dropped_write,
        u64::from(sent),
        "{s:?}"
    );
    assert_eq!(s.packets_dropped, s.dropped_write, "{s:?}");
    let err = s.last_error.as_deref().unwrap_or("");
    assert!(
        err.to_lowercase().contains("no space"),
        "the error says why: {err:?}"
    );
    // The stream opens (recovered if sealing failed) and holds exactly what was counted
    // as captured: the first packets, intact.
    let names = streams(&fs.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let got = stored(&store, &names[0]);
    assert_eq!(got.len() as u64, s.packets_captured, "{s:?}");
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &frame(i as u32), "packet {i}");
    }
}
