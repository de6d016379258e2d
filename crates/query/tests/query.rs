//! Filtered exports and analyses of a real store, checked against a brute-force pass
//! over the packets that were written.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use wirecap_filter::dissect::build::PacketBuilder;
use wirecap_pcap::{CaptureReader, LinkType, Packet};
use wirecap_query::{AnalyzeOptions, Date, FilterSummarizer, Format, analyze, compile, export};
use wirecap_store::{Store, StreamParams, StreamReader, WriterOptions};

const T0: u64 = 1_735_689_600_000_000_000; // 2025-01-01T00:00:00Z

struct Pkt {
    ts: u64,
    data: Vec<u8>,
}

/// 6000 packets over 60 s: a mix of hosts 10.0.0.1..50 on ports 80/53, and host
/// 10.1.2.3 talking to port 443 only in seconds 30..32 (a small, time-local fraction).
fn traffic() -> Vec<Pkt> {
    let mut v = Vec::new();
    for i in 0..6000u64 {
        let ts = T0 + i * 10_000_000;
        let sec = i / 100;
        let host = [10, 0, 0, 1 + (i % 50) as u8];
        let b = PacketBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let data = if (30..32).contains(&sec) && i % 3 == 0 {
            b.ipv4([10, 1, 2, 3], host)
                .tcp(443, 40000 + (i % 7) as u16, 0x18)
                .payload(&[7; 100])
                .build()
        } else if i % 4 == 0 {
            b.ipv4(host, [10, 9, 9, 9])
                .udp(5353, 53)
                .payload(&[1; 30])
                .build()
        } else {
            b.ipv4(host, [10, 9, 9, 8])
                .tcp(50000, 80, if i % 10 == 0 { 0x02 } else { 0x10 })
                .payload(&vec![0; (i % 700) as usize])
                .build()
        };
        v.push(Pkt { ts, data });
    }
    v
}

fn store_with(pkts: &[Pkt], summaries: bool) -> (tempfile::TempDir, StreamReader) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let params = StreamParams {
        link_type: LinkType::ETHERNET,
        snaplen: 65535,
        source: "test".into(),
    };
    let opts = WriterOptions {
        chunk_bytes: 16 << 10,
        summarizer: summaries.then(|| Arc::new(FilterSummarizer) as _),
        ..WriterOptions::default()
    };
    let mut w = store
        .create_stream_with("q", &params, SystemTime::now(), opts)
        .unwrap();
    for p in pkts {
        w.append(&Packet {
            ts_sec: p.ts / 1_000_000_000,
            ts_nsec: (p.ts % 1_000_000_000) as u32,
            orig_len: p.data.len() as u32,
            data: &p.data,
            interface: 0,
        })
        .unwrap();
    }
    let name = w.seal().unwrap().name;
    let r = store.open_stream(&name).unwrap();
    (dir, r)
}

fn today() -> Date {
    Date::new(2025, 1, 1).unwrap()
}

fn read_back(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut r = CaptureReader::new(bytes).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push((
            p.ts_sec * 1_000_000_000 + u64::from(p.ts_nsec),
            p.data.to_vec(),
        ));
    }
    v
}

/// The packet timestamps `tcpdump -r -` prints for a pcap, in nanoseconds.
fn tcpdump_times(pcap: &[u8]) -> Vec<u64> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut td = Command::new("tcpdump")
        .args(["-r", "-", "-nn", "-tt", "--time-stamp-precision=nano"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tcpdump");
    let mut stdin = td.stdin.take().unwrap();
    let input = pcap.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = td.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (s, ns) = l.split_once(' ').unwrap().0.split_once('.').unwrap();
            s.parse::<u64>().unwrap() * 1_000_000_000 + ns.parse::<u64>().unwrap()
        })
        .collect()
}

fn expected(pkts: &[Pkt], f: &wirecap_query::Filter, lo: u64, hi: u64) -> Vec<(u64, Vec<u8>)> {
    pkts.iter()
        .filter(|p| p.ts >= lo && p.ts < hi && f.matches(p.ts, p.data.len() as u32, &p.data))
        .map(|p| (p.ts, p.data.clone()))
        .collect()
}

#[test]
fn filtered_export_equals_brute_force_and_skips_chunks() {
    let pkts = traffic();
    let (_d, r) = store_with(&pkts, true);
    assert!(r.chunk_count() > 50, "{} chunks", r.chunk_count());
    for (filter, bpf) in [
        (None, Some("host 10.1.2.3 and port 443")),
        (
            Some("a: ipv4.addr == 10.1.2.3; b: tcp.port == 443; a & b"),
            None,
        ),
        (None, Some("tcp")),
        (Some("udp.port == 53"), Some("src host 10.0.0.7")),
        (None, Some("host 10.77.0.1")),
    ] {
        let f = compile(filter, bpf, LinkType::ETHERNET, today())
            .unwrap()
            .unwrap();
        for (lo, hi) in [(0, u64::MAX), (T0 + 20_500_000_000, T0 + 31_000_000_000)] {
            let range = r
                .time_range((lo > 0).then_some(lo), (hi < u64::MAX).then_some(hi))
                .unwrap();
            let want = expected(&pkts, &f, lo, hi);
            for format in [Format::Pcap, Format::Pcapng] {
                let mut out = Vec::new();
                let st = export(&r, range, Some(&f), format, &mut out).unwrap();
                let got = read_back(&out);
                assert_eq!(got.len(), want.len(), "{filter:?} {bpf:?} {format:?}");
                assert!(got == want, "{filter:?} {bpf:?} {format:?}: packets differ");
                assert_eq!(st.packets, want.len() as u64);
                assert_eq!(st.bytes, out.len() as u64);
                if format == Format::Pcap && lo == 0 {
                    let selective = bpf
                        .is_some_and(|b| b.contains("10.1.2.3") || b.contains("10.77"))
                        || filter.is_some_and(|f| f.contains("10.1.2.3"));
                    if selective {
                        // Only the chunks of seconds 30..32 hold 10.1.2.3 (10.77.0.1: none).
                        assert!(
                            st.chunks_skipped > 8 * st.chunks_read,
                            "{filter:?} {bpf:?}: read {} skipped {}",
                            st.chunks_read,
                            st.chunks_skipped
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn unfiltered_export_is_the_whole_range() {
    let pkts = traffic();
    let (_d, r) = store_with(&pkts, true);
    let range = r
        .time_range(Some(T0 + 1_000_000_000), Some(T0 + 2_000_000_000))
        .unwrap();
    let mut a = Vec::new();
    export(&r, range, None, Format::Pcap, &mut a).unwrap();
    // Against the packets written, not the store's own pcap writer (which export uses):
    // read back by the pcap reader, and by tcpdump when it is installed.
    let want: Vec<(u64, Vec<u8>)> = pkts
        .iter()
        .filter(|p| (T0 + 1_000_000_000..T0 + 2_000_000_000).contains(&p.ts))
        .map(|p| (p.ts, p.data.clone()))
        .collect();
    assert_eq!(want.len(), 100);
    assert_eq!(read_back(&a), want);
    if wirecap_testkit::require_tool("tcpdump") {
        assert_eq!(
            tcpdump_times(&a),
            want.iter().map(|p| p.0).collect::<Vec<_>>()
        );
    }
    let mut c = Vec::new();
    let st = export(&r, range, None, Format::Pcapng, &mut c).unwrap();
    assert_eq!(read_back(&c), read_back(&a));
    assert_eq!(st.packets, 100);
}

#[test]
fn streams_without_summaries_are_filtered_too() {
    let pkts = traffic();
    let (_d, r) = store_with(&pkts, false);
    let f = compile(None, Some("host 10.1.2.3"), LinkType::ETHERNET, today())
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    let st = export(&r, r.full_range(), Some(&f), Format::Pcap, &mut out).unwrap();
    assert_eq!(st.chunks_skipped, 0);
    assert_eq!(read_back(&out), expected(&pkts, &f, 0, u64::MAX));
}

#[test]
fn analysis_adds_up() {
    let pkts = traffic();
    let (_d, r) = store_with(&pkts, true);
    let an = analyze(&r, r.full_range(), None, &AnalyzeOptions::default()).unwrap();
    assert_eq!(an.packets, 6000);
    let bytes: u64 = pkts.iter().map(|p| p.data.len() as u64).sum();
    assert_eq!(an.bytes, bytes);
    assert_eq!(an.series.len(), 60);
    assert!(an.series.iter().all(|s| s.packets == 100));
    assert_eq!(an.series.iter().map(|s| s.bytes).sum::<u64>(), bytes);
    let proto = |n: &str| {
        an.protocols
            .iter()
            .find(|p| p.name == n)
            .map_or(0, |p| p.packets)
    };
    assert_eq!(proto("ipv4"), 6000);
    assert_eq!(proto("udp") + proto("tcp"), 6000);
    assert_eq!(
        proto("udp"),
        pkts.iter().filter(|p| p.data[23] == 17).count() as u64
    );
    // 10.1.2.3 -> host: 67 packets in seconds 30..32.
    let f = compile(None, Some("host 10.1.2.3"), LinkType::ETHERNET, today())
        .unwrap()
        .unwrap();
    let wide = AnalyzeOptions {
        top: 100,
        ..AnalyzeOptions::default()
    };
    let an = analyze(&r, r.full_range(), Some(&f), &wide).unwrap();
    assert_eq!(an.talkers.len(), 50);
    assert_eq!(an.packets, expected(&pkts, &f, 0, u64::MAX).len() as u64);
    assert!(an.scan.chunks_skipped > 0);
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    assert!(an.talkers.iter().all(|t| t.a == ip || t.b == ip));
    assert_eq!(
        an.talkers.iter().map(|t| t.packets).sum::<u64>(),
        an.packets
    );
    assert_eq!(an.ports[0].port, 443);
    assert_eq!(an.ports[0].packets, an.packets);
    assert!(
        an.flows
            .iter()
            .all(|f| f.src == ip && f.sport == 443 && f.tcp_flags == "PA")
    );
    assert_eq!(an.flows.iter().map(|f| f.packets).sum::<u64>(), an.packets);
    // A tiny flow table: the rest is counted, not lost.
    let an = analyze(
        &r,
        r.full_range(),
        None,
        &AnalyzeOptions {
            max_flows: 10,
            ..AnalyzeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(an.flows_tracked, 10);
    let tracked: u64 = an.flows.iter().map(|f| f.packets).sum();
    assert_eq!(tracked + an.flows_dropped_packets, 6000);
    assert!(an.flows_dropped >= 90, "{}", an.flows_dropped);
    let json = serde_json::to_string(&an).unwrap();
    assert!(json.contains("\"flows_dropped\""));
    let mut csv = Vec::new();
    an.write_csv("talkers", &mut csv).unwrap();
    assert!(
        String::from_utf8(csv)
            .unwrap()
            .starts_with("address_a,address_b,")
    );
}

/// The export the CLI writes and the HTTP download streams is one: pieces, byte ranges
/// and `Read` give the same bytes, and both filter languages together mean AND.
#[test]
fn export_pieces_ranges_and_reader_agree() {
    use std::io::Read;
    use wirecap_query::Export;
    let pkts = traffic();
    let (_d, r) = store_with(&pkts, true);
    let range = r.full_range();
    let whole = Export::new(r.clone(), range, Format::Pcap, None);
    let len = whole.exact_len().unwrap();
    let mut full = Vec::new();
    let st = whole.write_to(&mut full).unwrap();
    assert_eq!((full.len() as u64, st.bytes, st.packets), (len, len, 6000));
    for (skip, take) in [
        (0, 10),
        (5, 40_000),
        (len - 7, 7),
        (24, 1),
        (1000, len - 1000),
    ] {
        let got: Vec<u8> = whole
            .byte_range(skip, take)
            .unwrap()
            .flat_map(|p| p.unwrap().to_vec())
            .collect();
        assert_eq!(
            got,
            full[skip as usize..(skip + take) as usize],
            "{skip}+{take}"
        );
    }
    let mut via_read = Vec::new();
    whole.reader().read_to_end(&mut via_read).unwrap();
    assert_eq!(via_read, full);

    let both = compile(
        Some("tcp.port == 443"),
        Some("host 10.1.2.3"),
        LinkType::ETHERNET,
        today(),
    )
    .unwrap()
    .unwrap();
    let port = compile(Some("tcp.port == 443"), None, LinkType::ETHERNET, today())
        .unwrap()
        .unwrap();
    for format in [Format::Pcap, Format::Pcapng] {
        let e = Export::new(r.clone(), range, format, Some(both.clone()));
        assert!(e.exact_len().is_none() && e.byte_range(0, 1).is_err());
        let mut out = Vec::new();
        let st = e.write_to(&mut out).unwrap();
        let got = read_back(&out);
        assert_eq!(got, expected(&pkts, &both, 0, u64::MAX));
        assert!(got.len() as u64 == st.packets && st.chunks_skipped > 0);
        let only_port = expected(&pkts, &port, 0, u64::MAX);
        assert!(!got.is_empty() && got.len() <= only_port.len());
    }
}

/// A damaged chunk ends an export with an error naming it, never a corrupt file.
#[test]
fn a_damaged_chunk_fails_the_export() {
    use std::os::unix::fs::FileExt;
    let pkts = traffic();
    let (_d, r) = store_with(&pkts, true);
    let seg = r.dir().join("seg-00000000.wcs");
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&[0u8; 4096], 100_000).unwrap();
    for format in [Format::Pcap, Format::Pcapng] {
        let e = export(&r, r.full_range(), None, format, &mut Vec::new()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("seg-00000000.wcs") && msg.contains("CRC32C"),
            "{msg}"
        );
    }
}

#[test]
fn an_analysis_reports_progress_and_stops_when_cancelled() {
    let (_d, r) = store_with(&traffic(), true);
    let opts = AnalyzeOptions::default();
    let p = wirecap_query::Progress::default();
    let full = wirecap_query::analyze_with(&r, r.full_range(), None, &opts, &p).unwrap();
    assert_eq!((p.examined(), p.total()), (6000, 6000));
    assert_eq!(p.fraction(), 1.0);
    assert_eq!(full.scan.packets_examined, 6000);

    // Cancelled before it starts: no packet is looked at.
    let p = wirecap_query::Progress::default();
    p.cancel();
    let e = wirecap_query::analyze_with(&r, r.full_range(), None, &opts, &p).unwrap_err();
    assert!(matches!(e, wirecap_query::Error::Cancelled), "{e}");
    assert_eq!((p.examined(), p.total()), (0, 6000));

    // Cancelled while it runs (from another thread, as the HTTP route does): it stops at
    // the next progress step, well before the end of a long stream.
    let long: Vec<Pkt> = (0..40u64)
        .flat_map(|k| {
            traffic().into_iter().map(move |p| Pkt {
                ts: p.ts + k * 60_000_000_000,
                data: p.data,
            })
        })
        .collect();
    let (_d2, r2) = store_with(&long, true);
    let p = Arc::new(wirecap_query::Progress::default());
    let watcher = {
        let p = p.clone();
        std::thread::spawn(move || {
            while p.examined() == 0 {
                std::thread::yield_now();
            }
            p.cancel();
        })
    };
    let e = wirecap_query::analyze_with(&r2, r2.full_range(), None, &opts, &p).unwrap_err();
    watcher.join().unwrap();
    assert!(matches!(e, wirecap_query::Error::Cancelled), "{e}");
    assert!(
        p.examined() < p.total(),
        "stopped early: {} of {}",
        p.examined(),
        p.total()
    );
}
