//! Pipeline tests: scripted sources, the replay and synthetic sources, into memory,
//! pcap-file and store sinks. One needs root, to mount a small tmpfs that fills up
//! (without root it records a skip, and fails under CI).

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wirecap_capture::chunk::{ChunkBuf, Records};
use wirecap_capture::replay::{ReplayConfig, ReplaySource, ReplayTimestamps, Speed};
use wirecap_capture::sink::{MemorySink, PcapFileSink, Throttled};
use wirecap_capture::source::LINKTYPE_ETHERNET;
use wirecap_capture::store_sink::StoreSink;
use wirecap_capture::synth::{Generator, SynthConfig};
use wirecap_capture::{Capture, Counters, Frame, PipelineConfig, Polled, Source, SyntheticSource};

/// A source that plays a fixed list of (ts, bytes), a batch per poll, then ends.
struct Script {
    name: String,
    packets: Vec<(u64, Vec<u8>)>,
    at: usize,
    batch: usize,
}

impl Script {
    fn new(name: &str, packets: Vec<(u64, Vec<u8>)>, batch: usize) -> Self {
        Self {
            name: name.into(),
            packets,
            at: 0,
            batch,
        }
    }
}

impl Source for Script {
    fn describe(&self) -> &str {
        &self.name
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
        if self.at >= self.packets.len() {
            return Ok(Polled::Exhausted);
        }
        let end = (self.at + self.batch).min(self.packets.len());
        for (ts, d) in &self.packets[self.at..end] {
            on_frame(&Frame {
                ts_ns: *ts,
                orig_len: d.len() as u32,
                data: d,
            });
        }
        let n = (end - self.at) as u32;
        self.at = end;
        Ok(Polled::Packets(n))
    }
}

fn frame(i: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(60)];
    f[..4].copy_from_slice(&i.to_be_bytes());
    f[12] = 0x08;
    f
}

/// Waits until `ok` holds, polling; fails with `what` and the status after a deadline
/// far beyond what the condition needs, so a slow machine is not a failure.
fn wait_for(c: &Capture, what: &str, mut ok: impl FnMut(&Capture) -> bool) {
    let t = Instant::now();
    while !ok(c) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "gave up after 60 s waiting for {what}: {:?}",
            c.status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until every source is exhausted and the writer has written or dropped it all.
fn wait_finished(c: &Capture) {
    wait_for(c, "the capture to finish", Capture::finished);
}

fn stored(records: &Arc<Mutex<Vec<u8>>>) -> Vec<(u64, Vec<u8>)> {
    let b = records.lock().unwrap();
    Records::new(&b)
        .map(|r| (r.ts_ns, r.data.to_vec()))
        .collect()
}

#[test]
fn clock_step_is_clamped_counted_and_kept() {
    let pkts = vec![
        (1_000, frame(0, 60)),
        (2_000, frame(1, 60)),
        (1_500, frame(2, 60)),
        (3_000, frame(3, 60)),
    ];
    let sink = MemorySink::default();
    let recs = sink.records.clone();
    let counters = Arc::new(Counters::new());
    let c = Capture::start_with(
        vec![Box::new(Script::new("script:step", pkts, 2))],
        Box::new(sink),
        &PipelineConfig::default(),
        counters,
    )
    .unwrap();
    wait_finished(&c);
    let s = c.stop().unwrap().status;
    let got = stored(&recs);
    assert_eq!(got.len(), 4);
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![1_000, 2_000, 2_000, 3_000]
    );
    assert_eq!(got[2].1, frame(2, 60));
    assert_eq!(s.packets_captured, 4);
    assert_eq!(s.ts_clamped, 1);
    assert_eq!(s.packets_errors, 1);
    assert_eq!(s.packets_received, 4);
}

#[test]
fn fanout_streams_are_merged_in_time_order() {
    // Three "sockets" with interleaved timestamps, one with a clock step.
    let mut srcs: Vec<Box<dyn Source>> = vec![];
    let mut total = 0;
    for k in 0..3u64 {
        let mut v: Vec<(u64, Vec<u8>)> = (0..5000u64)
            .map(|i| {
                (
                    1_000_000 + i * 30 + k * 7,
                    frame((k * 10000 + i) as u32, 60 + (i % 200) as usize),
                )
            })
            .collect();
        if k == 1 {
            v[2500].0 -= 10_000; // a backwards step on one socket
        }
        total += v.len();
        srcs.push(Box::new(Script::new(
            if k == 0 {
                "script:fanout"
            } else {
                "script:fanout-member"
            },
            v,
            97,
        )));
    }
    let sink = MemorySink::default();
    let recs = sink.records.clone();
    // A queue deep enough for sources that run flat out (drops are tested elsewhere).
    let cfg = PipelineConfig {
        chunk_bytes: 16 << 10,
        queue_chunks: 4096,
        ..PipelineConfig::default()
    };
    let c = Capture::start_with(srcs, Box::new(sink), &cfg, Arc::new(Counters::new())).unwrap();
    wait_finished(&c);
    let s = c.stop().unwrap().status;
    let got = stored(&recs);
    assert_eq!(s.packets_received as usize, total, "{s:?}");
    assert_eq!(got.len(), total, "{s:?}");
    assert!(
        got.windows(2).all(|w| w[0].0 <= w[1].0),
        "not in time order"
    );
    assert_eq!(s.packets_captured as usize, total);
    assert_eq!(s.packets_dropped, 0, "{s:?}");
    assert!(s.ts_clamped >= 1);
    let mut ids: Vec<u32> = got
        .iter()
        .map(|g| u32::from_be_bytes(g.1[..4].try_into().unwrap()))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a packet was lost or duplicated");
}

#[test]
fn slow_writer_drops_are_counted_never_silent() {
    let pkts: Vec<_> = (0..20_000u32)
        .map(|i| (u64::from(i) * 1000, frame(i, 200)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.pcap");
    let sink = Throttled::new(
        PcapFileSink::create(&path, 1, 65535).unwrap(),
        Duration::from_millis(50),
    );
    let cfg = PipelineConfig {
        chunk_bytes: 8 << 10,
        queue_chunks: 2,
        stop_grace: Duration::from_millis(100),
        ..PipelineConfig::default()
    };
    let counters = Arc::new(Counters::new());
    let c = Capture::start_with(
        vec![Box::new(Script::new("script:slow", pkts, 64))],
        Box::new(sink),
        &cfg,
        counters.clone(),
    )
    .unwrap();
    wait_finished(&c);
    let st = c.stop().unwrap();
    let s = st.status;
    assert!(
        s.dropped_queue > 0,
        "the slowed writer should have caused drops: {s:?}"
    );
    // Against what the script sent: every packet written or dropped, for one reason.
    assert_eq!(s.packets_captured + s.dropped_queue, 20_000, "{s:?}");
    assert_eq!(s.packets_dropped, s.dropped_queue, "{s:?}");
    assert_eq!(s.packets_pending, 0);
    assert_eq!(s.bytes_pending, 0);
    // What is on disk is exactly what was counted as captured.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        Records::new(&bytes[24..]).count() as u64,
        s.packets_captured
    );
}

fn write_pcap(path: &std::path::Path, pkts: &[(u64, Vec<u8>)]) {
    let mut out = wirecap_capture::sink::pcap_ns_header(1, 65535).to_vec();
    for (ts, d) in pkts {
        out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(d);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn replay_into_the_store_round_trips() {
    let mut g = Generator::new(
        9,
        SynthConfig {
            pps: 1000,
            start_ns: 1_600_000_000_000_000_000,
            ..Default::default()
        },
    );
    let pkts: Vec<(u64, Vec<u8>)> = (0..3000)
        .map(|_| {
            let f = g.next_packet();
            (f.ts_ns, f.data.to_vec())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.pcap");
    write_pcap(&file, &pkts);
    let store = wirecap_store::Store::open(dir.path().join("data")).unwrap();
    for (timestamps, speed) in [
        (ReplayTimestamps::Recorded, Speed::Top),
        (ReplayTimestamps::Rebase, Speed::Factor(100.0)),
    ] {
        let t0 = wirecap_capture::frame::now_ns();
        let src = ReplaySource::open(ReplayConfig {
            path: file.clone(),
            speed,
            timestamps,
        })
        .unwrap();
        let sink = StoreSink::create(
            &store,
            &format!("replay{}", timestamps as u8),
            1,
            65535,
            src.describe(),
            1 << 20,
        )
        .unwrap();
        let c = Capture::start_with(
            vec![Box::new(src)],
            Box::new(sink),
            &PipelineConfig::default(),
            Arc::new(Counters::new()),
        )
        .unwrap();
        wait_finished(&c);
        let t1 = wirecap_capture::frame::now_ns();
        let st = c.stop().unwrap();
        assert_eq!(st.status.packets_captured, 3000);
        let r = store.open_stream(&st.sealed.name).unwrap();
        let mut pcap = vec![];
        r.write_pcap(r.full_range(), &mut pcap).unwrap();
        let got: Vec<_> = Records::new(&pcap[24..])
            .map(|r| (r.ts_ns, r.data.to_vec()))
            .collect();
        assert_eq!(got.len(), 3000);
        for (i, (a, b)) in got.iter().zip(&pkts).enumerate() {
            assert_eq!(a.1, b.1, "packet {i} differs");
            match timestamps {
                ReplayTimestamps::Recorded => assert_eq!(a.0, b.0),
                ReplayTimestamps::Rebase => {
                    // 3 s recorded at 100x: stamped from the replay start, gaps / 100
                    // exactly, and never ahead of the clock that released them.
                    assert_eq!(a.0 - got[0].0, (b.0 - pkts[0].0) / 100, "ts {i}");
                    assert!(
                        t0 <= a.0 && a.0 <= t1,
                        "ts {i}: {} not in [{t0}, {t1}]",
                        a.0
                    );
                }
            }
        }
    }
}

#[test]
fn synthetic_source_runs_at_its_rate() {
    let sink = MemorySink::default();
    let recs = sink.records.clone();
    let counters = Arc::new(Counters::new());
    let c = Capture::start_with(
        vec![Box::new(SyntheticSource::new(1, 5000))],
        Box::new(sink),
        &PipelineConfig::default(),
        counters.clone(),
    )
    .unwrap();
    // A second of packets, and two whole seconds of rate history.
    wait_for(&c, "5000 packets", |c| c.status().packets_captured >= 5000);
    wait_for(&c, "two seconds of history", |_| {
        counters.history().len() >= 2
    });
    let live = c.status();
    assert!(live.capture_active);
    assert!(live.capture_pps > 0, "{live:?}");
    let s = c.stop().unwrap().status;
    let stopped = wirecap_capture::frame::now_ns();
    assert!(!s.capture_active);
    let got = stored(&recs);
    assert_eq!(got.len() as u64, s.packets_captured);
    assert!(got.len() >= 5000);
    // The rate is the generator's schedule (one packet every 1/5000 s, to the nanosecond),
    // and the source never releases a packet before the clock reaches its time.
    assert!(
        got.windows(2).all(|w| w[1].0 - w[0].0 == 200_000),
        "not spaced 200 us apart"
    );
    let last = got.last().unwrap().0;
    assert!(
        last <= stopped,
        "packet stamped {last} released before {stopped}"
    );
}

#[test]
fn one_capture_per_source() {
    let a = Capture::start_with(
        vec![Box::new(SyntheticSource::new(1, 10))],
        Box::new(MemorySink::default()),
        &PipelineConfig::default(),
        Arc::new(Counters::new()),
    )
    .unwrap();
    let b = Capture::start_with(
        vec![Box::new(SyntheticSource::new(1, 10))],
        Box::new(MemorySink::default()),
        &PipelineConfig::default(),
        Arc::new(Counters::new()),
    );
    assert!(matches!(b, Err(wirecap_capture::Error::AlreadyActive(_))));
    a.stop().unwrap();
    let c = Capture::start_with(
        vec![Box::new(SyntheticSource::new(1, 10))],
        Box::new(MemorySink::default()),
        &PipelineConfig::default(),
        Arc::new(Counters::new()),
    )
    .unwrap();
    drop(c); // dropping stops and seals too
}

/// Records where each written chunk's bytes live, to see buffers come back.
#[derive(Default)]
struct AddrSink {
    addrs: Arc<Mutex<Vec<usize>>>,
    records: Arc<Mutex<Vec<u8>>>,
}

impl wirecap_capture::Sink for AddrSink {
    fn name(&self) -> &str {
        "addr"
    }
    fn write_chunk(&mut self, chunk: &mut ChunkBuf) -> wirecap_capture::Result<()> {
        self.addrs
            .lock()
            .unwrap()
            .push(chunk.as_bytes().as_ptr() as usize);
        self.records
            .lock()
            .unwrap()
            .extend_from_slice(chunk.as_bytes());
        Ok(())
    }
    fn seal(self: Box<Self>) -> wirecap_capture::Result<wirecap_capture::sink::Sealed> {
        Ok(wirecap_capture::sink::Sealed::default())
    }
}

/// A scripted source that waits a little between batches, like a link that is not
/// saturated, so the writer keeps up.
struct Paced(Script, Duration);

impl Source for Paced {
    fn describe(&self) -> &str {
        self.0.describe()
    }
    fn link_type(&self) -> u32 {
        LINKTYPE_ETHERNET
    }
    fn snaplen(&self) -> u32 {
        65535
    }
    fn poll(
        &mut self,
        t: Duration,
        on_frame: &mut dyn FnMut(&Frame<'_>),
    ) -> wirecap_capture::Result<Polled> {
        std::thread::sleep(self.1);
        self.0.poll(t, on_frame)
    }
}

#[test]
fn chunks_are_written_in_place_and_recycled() {
    // 40 MB in 32 KiB chunks: about 1,200 chunks through the pipeline.
    let pkts: Vec<_> = (0..40_000u32)
        .map(|i| (1_000_000 + u64::from(i) * 100, frame(i, 1000)))
        .collect();
    let sink = AddrSink::default();
    let (addrs, recs) = (sink.addrs.clone(), sink.records.clone());
    let cfg = PipelineConfig {
        chunk_bytes: 32 << 10,
        queue_chunks: 64,
        ..PipelineConfig::default()
    };
    // Paced at 250 kpps (25 MB/s): the test is about chunks reused in place, not speed;
    // 1 Mpps left the writer 2 ms of queue, which a loaded CI machine can take away.
    let src = Paced(
        Script::new("script:recycle", pkts.clone(), 50),
        Duration::from_micros(200),
    );
    let c = Capture::start_with(
        vec![Box::new(src)],
        Box::new(sink),
        &cfg,
        Arc::new(Counters::new()),
    )
    .unwrap();
    wait_finished(&c);
    let s = c.stop().unwrap().status;
    assert_eq!(s.packets_dropped, 0, "{s:?}");
    assert_eq!(s.packets_captured, 40_000);
    // Byte for byte what the source gave.
    assert_eq!(stored(&recs), pkts);
    let addrs = addrs.lock().unwrap();
    let mut distinct = addrs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(addrs.len() > 1000, "{} chunks", addrs.len());
    // Every chunk written is a capture thread's own buffer (single input: never merged),
    // and the buffers come back: a handful serve the whole capture.
    assert_eq!(s.chunks_merged, 0);
    assert_eq!(s.chunks_whole as usize, addrs.len());
    assert!(
        s.chunks_allocated <= cfg.queue_chunks as u64 + 4,
        "{} chunks allocated for {} written",
        s.chunks_allocated,
        addrs.len()
    );
    assert!(
        distinct.len() as u64 <= s.chunks_allocated,
        "{} buffers seen, {} allocated",
        distinct.len(),
        s.chunks_allocated
    );
    assert!(distinct.len() * 10 < addrs.len(), "buffers are not reused");
}

#[test]
fn fanout_threads_taking_turns_pass_whole_chunks() {
    // Two "sockets" whose packets come in alternating runs of 2,000: their chunks do not
    // overlap in time, so the merge passes them whole, except at the run boundaries.
    let mut srcs: Vec<Box<dyn Source>> = vec![];
    let mut all = vec![];
    for k in 0..2u64 {
        let v: Vec<(u64, Vec<u8>)> = (0..20_000u64)
            .filter(|i| (i / 2000) % 2 == k)
            .map(|i| (1_000_000 + i * 50, frame(i as u32, 500)))
            .collect();
        all.extend(v.clone());
        srcs.push(Box::new(Script::new(
            if k == 0 {
                "script:turns"
            } else {
                "script:turns-1"
            },
            v,
            100,
        )));
    }
    all.sort_by_key(|p| p.0);
    let sink = AddrSink::default();
    let recs = sink.records.clone();
    let cfg = PipelineConfig {
        chunk_bytes: 64 << 10,
        queue_chunks: 4096,
        ..PipelineConfig::default()
    };
    let c = Capture::start_with(srcs, Box::new(sink), &cfg, Arc::new(Counters::new())).unwrap();
    wait_finished(&c);
    let s = c.stop().unwrap().status;
    assert_eq!(s.packets_captured, 20_000, "{s:?}");
    assert_eq!(stored(&recs), all);
    assert!(
        s.chunks_whole > 4 * s.chunks_merged,
        "whole {} merged {}",
        s.chunks_whole,
        s.chunks_merged
    );
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "wc-full"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount: {out:?}");
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_is_counted_as_write_drops_and_the_stream_stays_readable() {
    if !(wirecap_testkit::require_root() && wirecap_testkit::require_tools(&["mount", "umount"])) {
        return;
    }
    let fs = Tmpfs::mount("4m");
    let store = wirecap_store::Store::open(fs.0.path()).unwrap();
    // 20 MB of packets into 4 MiB.
    let sent = 20_000u32;
    let pkts: Vec<_> = (0..sent)
        .map(|i| (1_000_000 + u64::from(i) * 1000, frame(i, 1000)))
        .collect();
    let sink = StoreSink::create(&store, "full", 1, 65535, "script:full", 64 << 10).unwrap();
    let cfg = PipelineConfig {
        chunk_bytes: 64 << 10,
        // Deep enough that the writer never falls behind: the disk is the only loss.
        queue_chunks: 4096,
        ..PipelineConfig::default()
    };
    let c = Capture::start_with(
        vec![Box::new(Script::new("script:full", pkts.clone(), 100))],
        Box::new(sink),
        &cfg,
        Arc::new(Counters::new()),
    )
    .unwrap();
    wait_finished(&c);
    let live = c.status();
    // Sealing may fail too on a full disk; the stream is then recovered when opened.
    let stopped = c.stop();
    let s = stopped.as_ref().map_or(live, |st| st.status.clone());
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
    // The stream opens and holds exactly what was counted as captured: the first
    // packets, intact.
    let names: Vec<String> = std::fs::read_dir(fs.0.path().join("streams"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let r = store.open_stream(&names[0]).unwrap();
    let mut pcap = vec![];
    r.write_pcap(r.full_range(), &mut pcap).unwrap();
    let got: Vec<_> = Records::new(&pcap[24..])
        .map(|r| (r.ts_ns, r.data.to_vec()))
        .collect();
    assert_eq!(got.len() as u64, s.packets_captured, "{s:?}");
    assert_eq!(got, pkts[..got.len()]);
}
