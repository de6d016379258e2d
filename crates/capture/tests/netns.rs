//! End-to-end tests in network namespaces (root only: without it they record a skip, and
//! fail under CI).
//!
//! Each test creates two namespaces joined by a veth pair (`wc-<pid>-<tag>-{a,b}`), sends a
//! known set of frames from `a` with tcpreplay, captures on `b` with the TPACKET_V3 ring into
//! a store, and compares the stored frames byte for byte. IPv6 is disabled on both ends and
//! no address is configured, so the only traffic on the link is the test's. Everything
//! created is removed by a guard, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wirecap_capture::chunk::Records;
use wirecap_capture::frame::Frame;
use wirecap_capture::link::Sysfs;
use wirecap_capture::ring::{RingConfig, RingSource, SockInsn, SocketFilter, Timestamps};
use wirecap_capture::sink::Throttled;
use wirecap_capture::store_sink::StoreSink;
use wirecap_capture::{Capture, Counters, PipelineConfig, Polled, Source};

/// Root and the tools the harness runs; otherwise a recorded skip (a failure under CI).
fn ready() -> bool {
    wirecap_testkit::require_root()
        && wirecap_testkit::require_tools(&["tcpreplay", "ip", "nsenter"])
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces and a veth pair; removed on drop.
struct Netns {
    a: String,
    b: String,
    sys_b: PathBuf,
    mounted: bool,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let base = format!("wc-{}-{tag}", std::process::id());
        let mut n = Self {
            a: format!("{base}-a"),
            b: format!("{base}-b"),
            sys_b: std::env::temp_dir().join(format!("{base}-sys")),
            mounted: false,
        };
        run(&["ip", "netns", "add", &n.a]);
        run(&["ip", "netns", "add", &n.b]);
        for ns in [&n.a, &n.b] {
            for k in ["all", "default"] {
                run(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
                ]);
            }
        }
        run(&[
            "ip", "link", "add", "va", "netns", &n.a, "type", "veth", "peer", "name", "vb",
            "netns", &n.b,
        ]);
        run(&["ip", "-n", &n.a, "link", "set", "va", "up"]);
        run(&["ip", "-n", &n.b, "link", "set", "vb", "up"]);
        // sysfs mounted from inside b shows b's interfaces (for link state).
        std::fs::create_dir_all(&n.sys_b).unwrap();
        run(&[
            "nsenter",
            &format!("--net=/run/netns/{}", n.b),
            "mount",
            "-t",
            "sysfs",
            "sysfs",
            n.sys_b.to_str().unwrap(),
        ]);
        n.mounted = true;
        // operstate follows carrier after a short delay (linkwatch): wait for it.
        let sys = n.sysfs_b();
        assert!(
            wait_until(Duration::from_secs(5), || sys
                .read("vb")
                .is_some_and(|i| i.up)),
            "vb did not come up"
        );
        n
    }

    fn netns_b(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.b))
    }

    fn sysfs_b(&self) -> Sysfs {
        Sysfs::new(self.sys_b.join("class/net"))
    }

    /// A counter of `va` (the sending end), from a's sysfs: what the veth took to deliver
    /// to `vb` (`tx_packets`), or refused (`tx_dropped`, vb's backlog was full).
    fn va_stat(&self, name: &str) -> u64 {
        let path = format!("/sys/class/net/va/statistics/{name}");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.a, "cat", &path])
            .output()
            .expect("ip netns exec cat");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{path} in {}: {out:?}", self.a))
    }

    fn replay(&self, pcap: &Path, extra: &[&str]) {
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            &self.a,
            "tcpreplay",
            "-q",
            "-i",
            "va",
        ];
        args.extend_from_slice(extra);
        args.push(pcap.to_str().unwrap());
        run(&args);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.sys_b).status();
        }
        let _ = std::fs::remove_dir(&self.sys_b);
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

const MARK: [u8; 5] = [0x02, 0x77, 0x63, 0x00, 0x00];

/// Frames with a recognisable source MAC: plain IPv4, 802.1Q, QinQ (802.1ad outer),
/// double 802.1Q, and sizes from 60 to 1514 bytes.
fn test_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = vec![0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
            f.extend_from_slice(&MARK);
            f.push((i % 251) as u8);
            match i % 4 {
                1 => f.extend_from_slice(&[0x81, 0x00, 0x20 | ((i >> 8) as u8 & 0x0f), i as u8]),
                2 => f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x01, 0x2c]),
                3 => f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x0b]),
                _ => {}
            }
            f.extend_from_slice(&[0x08, 0x00]);
            let len = [60usize, 64, 128, 590, 1000, 1400, 1496][i % 7].max(f.len() + 4);
            let mut k = 0u8;
            while f.len() < len {
                f.push(k ^ (i as u8));
                k = k.wrapping_add(1);
            }
            let end = f.len();
            f[end - 4..].copy_from_slice(&(i as u32).to_be_bytes());
            f
        })
        .collect()
}

/// A classic microsecond pcap for tcpreplay.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = vec![];
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

fn ring(n: &Netns) -> RingConfig {
    RingConfig {
        block_size: 1 << 20,
        block_count: 16,
        retire_timeout_ms: 20,
        timestamps: Timestamps::PreferHardware,
        netns: Some(n.netns_b()),
        ..RingConfig::new("vb")
    }
}

fn stored_frames(store: &wirecap_store::Store, name: &str) -> Vec<(u64, u32, Vec<u8>)> {
    let r = store.open_stream(name).unwrap();
    let mut pcap = vec![];
    r.write_pcap(r.full_range(), &mut pcap).unwrap();
    Records::new(&pcap[24..])
        .map(|r| (r.ts_ns, r.orig_len, r.data.to_vec()))
        .collect()
}

/// Polls `f` until it holds; false after `limit` (callers say what they waited for).
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `threads` sockets of one fanout group with ring `cfg`, as capture sources.
fn ring_sources(cfg: &RingConfig, threads: usize) -> Vec<Box<dyn Source>> {
    RingSource::open_fanout(cfg, threads)
        .unwrap()
        .into_iter()
        .map(|s| Box::new(s) as Box<dyn Source>)
        .collect()
}

/// A capture of `sources` on vb into a new stream `name` of `store`.
fn start(
    n: &Netns,
    store: &wirecap_store::Store,
    name: &str,
    sources: Vec<Box<dyn Source>>,
) -> Capture {
    let sink = StoreSink::create(store, name, 1, 262144, "capture:vb", 1 << 20).unwrap();
    let cfg = PipelineConfig {
        sysfs: n.sysfs_b(),
        ..PipelineConfig::default()
    };
    Capture::start_with(sources, Box::new(sink), &cfg, Arc::new(Counters::new())).unwrap()
}

/// Waits until the capture has stored or counted as dropped every one of the `delivered`
/// frames (kernel drops are read about once a second).
fn wait_accounted(c: &Capture, delivered: u64) {
    assert!(
        wait_until(Duration::from_secs(60), || {
            let s = c.status();
            s.packets_captured + s.packets_dropped >= delivered && s.packets_pending == 0
        }),
        "the capture did not account for the {delivered} frames delivered: {:?}",
        c.status()
    );
}

/// Each stored frame is, byte for byte, the sent frame its number names.
fn assert_kept_intact(got: &[(u64, u32, Vec<u8>)], frames: &[Vec<u8>]) {
    for g in got {
        let id = u32::from_be_bytes(g.2[g.2.len() - 4..].try_into().unwrap()) as usize;
        assert_eq!(&g.2, &frames[id], "frame {id}");
    }
}

fn capture_and_compare(tag: &str, threads: usize) {
    if !ready() {
        return;
    }
    let n = Netns::new(tag);
    let dir = tempfile::tempdir().unwrap();
    let frames = test_frames(2000);
    let pcap = dir.path().join("sent.pcap");
    write_pcap(&pcap, &frames);
    let store = wirecap_store::Store::open(dir.path().join("data")).unwrap();
    let sources = ring_sources(&ring(&n), threads);
    let c = start(&n, &store, tag, sources);
    let t0 = wirecap_capture::frame::now_ns();
    let tx0 = n.va_stat("tx_packets");
    n.replay(&pcap, &["--pps=20000"]);
    let delivered = n.va_stat("tx_packets") - tx0;
    assert_eq!(
        delivered,
        frames.len() as u64,
        "the veth carried every frame sent (tx_dropped {})",
        n.va_stat("tx_dropped")
    );
    wait_accounted(&c, delivered);
    let st = c.stop().unwrap();
    let t1 = wirecap_capture::frame::now_ns();
    let s = &st.status;
    let got: Vec<_> = stored_frames(&store, &st.sealed.name)
        .into_iter()
        .filter(|g| g.2.len() > 12 && g.2[6..11] == MARK)
        .collect();
    assert_eq!(got.len(), frames.len(), "status {s:?}");
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(&g.2, f, "frame {i} differs (kind {})", i % 4);
        assert_eq!(g.1 as usize, f.len());
        assert!(
            t0 <= g.0 && g.0 <= t1,
            "timestamp {i} ({}) not from the capture clock: [{t0}, {t1}]",
            g.0
        );
    }
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(s.packets_dropped, 0, "{s:?}");
    assert_eq!(
        s.packets_captured, delivered,
        "only the test's frames cross the link: {s:?}"
    );
    assert_eq!(s.packets_errors, 0);
    assert_eq!(s.link.up, Some(true));
}

#[test]
fn ring_capture_is_byte_exact_with_vlan_and_qinq() {
    capture_and_compare("exact", 1);
}

#[test]
fn fanout_capture_is_complete_and_ordered() {
    capture_and_compare("fanout", 2);
}

#[test]
fn link_down_and_up_are_seen() {
    if !ready() {
        return;
    }
    let n = Netns::new("link");
    let info = n.sysfs_b().read("vb").expect("vb visible in b's sysfs");
    assert!(info.up);
    assert_eq!(
        info.speed_mbps.filter(|&s| s != 10000),
        None,
        "veth speed is unknown or 10000"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = wirecap_store::Store::open(dir.path()).unwrap();
    let src = RingSource::open(&ring(&n)).unwrap();
    let c = start(&n, &store, "link", vec![Box::new(src)]);
    assert!(wait_until(Duration::from_secs(5), || c.status().link.up == Some(true)));
    run(&["ip", "-n", &n.b, "link", "set", "vb", "down"]);
    assert!(
        wait_until(Duration::from_secs(5), || c.status().link.up == Some(false)),
        "down not seen"
    );
    assert_eq!(c.status().link.uptime, None);
    let set_up = Instant::now();
    run(&["ip", "-n", &n.b, "link", "set", "vb", "up"]);
    assert!(
        wait_until(Duration::from_secs(5), || c.status().link.up == Some(true)),
        "up not seen"
    );
    let up = c.status().link.uptime.expect("uptime after up");
    // Counted from this transition, not an earlier one: no longer than since it was made.
    let since = set_up.elapsed();
    assert!(
        up <= since,
        "uptime {up:?} but the link came up {since:?} ago"
    );
    // Capture still works after the flap.
    let frames = test_frames(50);
    let pcap = dir.path().join("after.pcap");
    write_pcap(&pcap, &frames);
    n.replay(&pcap, &[]);
    assert!(
        wait_until(Duration::from_secs(5), || c.status().packets_captured >= 50),
        "{:?}",
        c.status()
    );
    c.stop().unwrap();
}

#[test]
fn slowed_writer_drops_are_counted() {
    if !ready() {
        return;
    }
    let n = Netns::new("slow");
    let dir = tempfile::tempdir().unwrap();
    let frames = test_frames(20_000);
    let pcap = dir.path().join("sent.pcap");
    write_pcap(&pcap, &frames);
    let store = wirecap_store::Store::open(dir.path().join("data")).unwrap();
    let src = RingSource::open(&ring(&n)).unwrap();
    let sink = Throttled::new(
        StoreSink::create(&store, "slow", 1, 262144, "capture:vb", 64 << 10).unwrap(),
        Duration::from_millis(100),
    );
    let cfg = PipelineConfig {
        chunk_bytes: 64 << 10,
        queue_chunks: 2,
        stop_grace: Duration::from_millis(200),
        sysfs: n.sysfs_b(),
        ..PipelineConfig::default()
    };
    let c = Capture::start_with(
        vec![Box::new(src)],
        Box::new(sink),
        &cfg,
        Arc::new(Counters::new()),
    )
    .unwrap();
    let (tx0, txd0) = (n.va_stat("tx_packets"), n.va_stat("tx_dropped"));
    n.replay(&pcap, &["--topspeed"]);
    // What reached vb: tcpreplay's frames less what vb's backlog refused at top speed.
    let delivered = n.va_stat("tx_packets") - tx0;
    let refused = n.va_stat("tx_dropped") - txd0;
    let sent = frames.len() as u64;
    assert_eq!(
        delivered + refused,
        sent,
        "tcpreplay's frames: delivered or refused"
    );
    wait_accounted(&c, delivered);
    let st = c.stop().unwrap();
    let s = st.status;
    assert!(s.dropped_queue > 0, "expected queue drops: {s:?}");
    // Every frame delivered is accounted for: stored, or dropped with a reason.
    assert_eq!(s.packets_captured + s.packets_dropped, delivered, "{s:?}");
    let got = stored_frames(&store, &st.sealed.name);
    assert_eq!(got.len() as u64, s.packets_captured);
    // What was kept is byte-exact.
    assert_kept_intact(&got, &frames);
}

/// A ring source whose reader does not read while `stall` is set, as a capture thread
/// that is not scheduled: the kernel fills the ring, then drops.
struct Stalled {
    ring: RingSource,
    stall: Arc<AtomicBool>,
}

impl Source for Stalled {
    fn describe(&self) -> &str {
        self.ring.describe()
    }
    fn link_type(&self) -> u32 {
        self.ring.link_type()
    }
    fn snaplen(&self) -> u32 {
        self.ring.snaplen()
    }
    fn interface(&self) -> Option<&str> {
        self.ring.interface()
    }
    fn poll(
        &mut self,
        timeout: Duration,
        on_frame: &mut dyn FnMut(&Frame<'_>),
    ) -> wirecap_capture::Result<Polled> {
        if self.stall.load(Ordering::Relaxed) {
            std::thread::sleep(timeout.min(Duration::from_millis(20)));
            return Ok(Polled::Idle {
                quiet_before_ns: None,
            });
        }
        self.ring.poll(timeout, on_frame)
    }
    fn stats(&mut self) -> wirecap_capture::Result<wirecap_capture::source::SourceStats> {
        self.ring.stats()
    }
}

#[test]
fn a_full_ring_drops_in_the_kernel_and_counts_every_drop() {
    if !ready() {
        return;
    }
    let n = Netns::new("kdrop");
    let dir = tempfile::tempdir().unwrap();
    let frames = test_frames(5_000);
    let pcap = dir.path().join("sent.pcap");
    write_pcap(&pcap, &frames);
    let store = wirecap_store::Store::open(dir.path().join("data")).unwrap();
    // One 64 KiB block: about a hundred of the test's frames.
    let ring = RingSource::open(&RingConfig {
        block_size: 64 << 10,
        block_count: 1,
        ..ring(&n)
    })
    .unwrap();
    let stall = Arc::new(AtomicBool::new(true));
    let src = Stalled {
        ring,
        stall: stall.clone(),
    };
    let c = start(&n, &store, "kdrop", vec![Box::new(src)]);
    let tx0 = n.va_stat("tx_packets");
    n.replay(&pcap, &["--pps=50000"]);
    let delivered = n.va_stat("tx_packets") - tx0;
    assert_eq!(
        delivered,
        frames.len() as u64,
        "the veth carried every frame"
    );
    // The reader catches up: it takes what the ring holds, the kernel reports the rest.
    stall.store(false, Ordering::Relaxed);
    wait_accounted(&c, delivered);
    let st = c.stop().unwrap();
    let s = st.status;
    eprintln!(
        "{delivered} delivered: {} captured, {} dropped in the kernel",
        s.packets_captured, s.dropped_kernel
    );
    assert!(s.dropped_kernel > 0, "expected kernel drops: {s:?}");
    assert!(s.packets_captured > 0, "{s:?}");
    // Against the veth's own count: every frame it delivered is stored or a kernel drop.
    assert_eq!(s.packets_captured + s.dropped_kernel, delivered, "{s:?}");
    assert_eq!(s.packets_dropped, s.dropped_kernel, "no other loss: {s:?}");
    let got = stored_frames(&store, &st.sealed.name);
    assert_eq!(got.len() as u64, s.packets_captured);
    assert_kept_intact(&got, &frames);
}

/// Ethernet + IPv4 + UDP or TCP frames of sizes 60 to 1400 bytes, numbered in the IPv4
/// identification field (kept by any slicing): frame `i` is UDP to port 53 when `i % 3 ==
/// 0`, UDP to port 54 when `i % 3 == 1`, TCP to port 53 otherwise.
fn filter_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = [60usize, 64, 128, 590, 1000, 1400][i % 6];
            let mut f = vec![0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
            f.extend_from_slice(&MARK);
            f.push(0x01);
            f.extend_from_slice(&[0x08, 0x00]);
            let (proto, port) = match i % 3 {
                0 => (17u8, 53u16),
                1 => (17, 54),
                _ => (6, 53),
            };
            let ip_len = (len - 14) as u16;
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&ip_len.to_be_bytes());
            f.extend_from_slice(&(i as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            f.extend_from_slice(&40000u16.to_be_bytes());
            f.extend_from_slice(&port.to_be_bytes());
            while f.len() < len {
                f.push((f.len() ^ i) as u8);
            }
            f
        })
        .collect()
}

#[test]
fn a_socket_filter_keeps_only_matching_frames_sliced_with_their_wire_length() {
    if !ready() {
        return;
    }
    let n = Netns::new("bpf");
    let dir = tempfile::tempdir().unwrap();
    let frames = filter_frames(3000);
    let pcap = dir.path().join("sent.pcap");
    write_pcap(&pcap, &frames);
    let expr = "udp dst port 53";
    let program = wirecap_filter::bpf::socket_program(expr)
        .unwrap()
        .iter()
        .map(|i| SockInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let snaplen = 96;
    let cfg = RingConfig {
        snaplen,
        filter: Some(SocketFilter {
            expr: expr.into(),
            program,
        }),
        ..ring(&n)
    };
    let store = wirecap_store::Store::open(dir.path().join("data")).unwrap();
    // Two fanout threads, each socket with the filter.
    let sources = ring_sources(&cfg, 2);
    let c = start(&n, &store, "bpf", sources);
    let tx0 = n.va_stat("tx_packets");
    n.replay(&pcap, &["--pps=20000"]);
    let delivered = n.va_stat("tx_packets") - tx0;
    assert_eq!(
        delivered,
        frames.len() as u64,
        "the veth carried every frame"
    );
    // The generator's own numbering is the truth: which frames match the filter.
    let want: Vec<usize> = (0..frames.len()).filter(|i| i % 3 == 0).collect();
    wait_accounted(&c, want.len() as u64);
    // Frames the filter passes by mistake would arrive with the others: give them time.
    std::thread::sleep(Duration::from_millis(300));
    let st = c.stop().unwrap();
    let s = &st.status;
    assert_eq!(s.packets_dropped, 0, "{s:?}");
    assert_eq!(
        s.packets_captured,
        want.len() as u64,
        "only what the filter passed reached the ring: {s:?}"
    );
    let got = stored_frames(&store, &st.sealed.name);
    assert_eq!(got.len(), want.len(), "stored only the matching frames");
    let mut ids: Vec<usize> = got
        .iter()
        .map(|(_, orig, data)| {
            let id = usize::from(u16::from_be_bytes([data[18], data[19]]));
            let sent = &frames[id];
            assert_eq!(id % 3, 0, "frame {id} does not match {expr}");
            assert_eq!(
                *orig as usize,
                sent.len(),
                "frame {id}: the wire length is kept"
            );
            assert_eq!(
                data.as_slice(),
                &sent[..sent.len().min(snaplen as usize)],
                "frame {id}: the first {snaplen} bytes"
            );
            id
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, want);
}
