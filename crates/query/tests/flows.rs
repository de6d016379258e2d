//! The flow index against the scan: random flows (well-formed, tagged, fragmented,
//! truncated and malformed packets among them) and random host / net / port / protocol
//! expressions in both languages, through `and`, `or` and `not`: an export that reads
//! through the index gives, byte for byte, what the scan gives, which is what a
//! brute-force pass over the written packets selects. Flow listings hold every flow
//! with a matching packet.

use std::sync::Arc;
use std::time::SystemTime;

use proptest::prelude::*;
use wirecap_filter::dissect::build::PacketBuilder;
use wirecap_pcap::{CaptureReader, LinkType, Packet};
use wirecap_query::{Date, Export, FilterSummarizer, Format, compile};
use wirecap_store::{Store, StreamParams, StreamReader, WriterOptions};

const T0: u64 = 1_735_689_600_000_000_000;

const HOSTS: [[u8; 4]; 6] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 0, 1, 7],
    [192, 168, 1, 1],
    [172, 16, 5, 5],
    [10, 0, 0, 3],
];
const PORTS: [u16; 5] = [80, 443, 53, 22, 5000];

fn host(i: usize) -> [u8; 4] {
    HOSTS[i % HOSTS.len()]
}

fn v6(i: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[15] = (i % 4) as u8 + 1;
    a
}

/// One packet of flow `f` (a tuple of choices), variant `v`.
fn packet(f: (u8, usize, usize, usize, usize), v: u8, cut: u16) -> Vec<u8> {
    let (kind, a, b, pa, pb) = f;
    let (src, dst, sp, dp) = if v.is_multiple_of(2) {
        (host(a), host(b), PORTS[pa % 5], PORTS[pb % 5])
    } else {
        (host(b), host(a), PORTS[pb % 5], PORTS[pa % 5])
    };
    let eth = PacketBuilder::ethernet([2, 0, 0, 0, 0, a as u8], [2, 0, 0, 0, 0, b as u8]);
    let flags = [0x02, 0x12, 0x10, 0x18, 0x11][usize::from(v) % 5];
    let body = vec![0x5a; usize::from(v) * 3];
    let mut pkt = match kind % 16 {
        0..=2 => eth.ipv4(src, dst).tcp(sp, dp, flags).payload(&body).build(),
        3 | 4 => eth.ipv4(src, dst).udp(sp, dp).payload(&body).build(),
        5 => eth
            .vlan(0x8100, 10 + (a % 3) as u16)
            .ipv4(src, dst)
            .tcp(sp, dp, flags)
            .build(),
        6 => eth
            .ipv4(src, dst)
            .icmp(if v.is_multiple_of(2) { 8 } else { 0 }, 0)
            .build(),
        7 => eth
            .ipv6(v6(a), v6(b))
            .tcp(sp, dp, flags)
            .payload(&body)
            .build(),
        8 => eth.ipv6(v6(a), v6(b)).udp(sp, dp).build(),
        9 => eth.arp(1, src, dst, false).build(),
        10 => eth
            .ipv4_full(src, dst, 1, (v % 3) as u16, v.is_multiple_of(3))
            .tcp(sp, dp, flags)
            .build(),
        11 => eth.mpls(100 + a as u32).ipv4(src, dst).udp(sp, dp).build(),
        12 => eth
            .ipv6(v6(a), v6(b))
            .ipv6_ext(44, u16::from(v % 2))
            .udp(sp, dp)
            .build(),
        13 => eth
            .vlan(0x88a8, 5)
            .vlan(0x8100, 6)
            .ipv4(src, dst)
            .tcp(sp, dp, flags)
            .build(),
        14 => eth.pppoe().ipv4(src, dst).tcp(sp, dp, flags).build(),
        _ => eth.ipv4_proto(src, dst, 6).payload(&[1, 2, 3]).build(),
    };
    // Some packets are cut short (a snap length), some anywhere.
    if cut > 0 && usize::from(cut) < pkt.len() {
        pkt.truncate(usize::from(cut));
    }
    pkt
}

fn store_with(pkts: &[(u64, Vec<u8>)]) -> (tempfile::TempDir, StreamReader) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let params = StreamParams {
        link_type: LinkType::ETHERNET,
        snaplen: 65535,
        source: "test".into(),
    };
    let opts = WriterOptions {
        chunk_bytes: 4 << 10,
        summarizer: Some(Arc::new(FilterSummarizer) as _),
        ..WriterOptions::default()
    };
    let mut w = store
        .create_stream_with("f", &params, SystemTime::now(), opts)
        .unwrap();
    for (ts, data) in pkts {
        w.append(&Packet {
            ts_sec: ts / 1_000_000_000,
            ts_nsec: (ts % 1_000_000_000) as u32,
            orig_len: data.len() as u32 + 4,
            data,
            interface: 0,
        })
        .unwrap();
    }
    let name = w.seal().unwrap().name;
    let r = store.open_stream(&name).unwrap();
    (dir, r)
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

fn ip(h: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", h[0], h[1], h[2], h[3])
}

/// A random primitive in tcpdump syntax.
fn bpf_prim(i: u8, a: usize, p: usize) -> String {
    let h = ip(host(a));
    let port = PORTS[p % 5];
    match i % 16 {
        0 => format!("host {h}"),
        1 => format!("src host {h}"),
        2 => format!("dst {h}"),
        3 => format!("net {}.{}.0.0/16", host(a)[0], host(a)[1]),
        4 => format!("net {}.{}.{}.0/24", host(a)[0], host(a)[1], host(a)[2]),
        5 => format!("port {port}"),
        6 => format!("tcp port {port}"),
        7 => format!("udp dst port {port}"),
        8 => "tcp".into(),
        9 => "udp".into(),
        10 => "icmp".into(),
        11 => "ip6".into(),
        12 => "arp".into(),
        13 => format!("portrange {}-{}", port, port + 400),
        14 => "host 2001:db8::2".into(),
        _ => format!("greater {}", 60 + p * 10),
    }
}

fn bpf_expr(parts: &[(u8, usize, usize)], ops: &[u8]) -> String {
    let mut e = bpf_prim(parts[0].0, parts[0].1, parts[0].2);
    for (k, &(i, a, p)) in parts.iter().enumerate().skip(1) {
        let prim = bpf_prim(i, a, p);
        let op = ops[k % ops.len()];
        e = match op % 4 {
            0 => format!("({e}) and {prim}"),
            1 => format!("({e}) or {prim}"),
            2 => format!("({e}) and not {prim}"),
            _ => format!("not ({e}) or {prim}"),
        };
    }
    e
}

/// A random block of the appliance language.
fn lang_block(i: u8, a: usize, p: usize) -> String {
    let h = ip(host(a));
    let port = PORTS[p % 5];
    match i % 10 {
        0 => format!("ipv4.addr == {h}"),
        1 => format!("ipv4.addr.src == {h}"),
        2 => format!("ip.addr == {}.{}.0.0/16", host(a)[0], host(a)[1]),
        3 => format!("tcp.port == {port}"),
        4 => format!("udp.port.dst == {port}"),
        5 => "ip.proto == udp".into(),
        6 => format!("vlan.id == {}", 10 + a % 3),
        7 => "ipv6.addr == 2001:db8::1".into(),
        8 => format!("tcp.port != {port}"),
        _ => "ether.proto == arp".into(),
    }
}

fn lang_expr(parts: &[(u8, usize, usize)], ops: &[u8]) -> String {
    let mut defs = String::new();
    let mut e = String::new();
    for (k, &(i, a, p)) in parts.iter().enumerate() {
        defs.push_str(&format!("b{k}: {};\n", lang_block(i, a, p)));
        e = if k == 0 {
            format!("b{k}")
        } else {
            match ops[k % ops.len()] % 3 {
                0 => format!("({e}) and b{k}"),
                1 => format!("({e}) or b{k}"),
                _ => format!("({e}) and not b{k}"),
            }
        };
    }
    format!("{defs}{e}")
}

/// The random expression `parts` joined by `ops`, in tcpdump syntax and in the
/// appliance language, each with its compiled filter.
fn both_languages(
    parts: &[(u8, usize, usize)],
    ops: &[u8],
) -> Vec<(String, wirecap_query::Filter)> {
    let today = Date::new(2025, 1, 1).unwrap();
    let bpf = bpf_expr(parts, ops);
    let lang = lang_expr(parts, ops);
    let fb = compile(None, Some(&bpf), LinkType::ETHERNET, today);
    let fl = compile(Some(&lang), None, LinkType::ETHERNET, today);
    vec![(bpf, fb.unwrap().unwrap()), (lang, fl.unwrap().unwrap())]
}

type FlowChoice = (u8, usize, usize, usize, usize);

/// A random case: flows, picks of them (flow, variant, cut), expressions and operators.
type Case = (
    Vec<FlowChoice>,
    Vec<(usize, u8, u16)>,
    Vec<Vec<(u8, usize, usize)>>,
    Vec<u8>,
);

/// Random flows, picks of them (flow, variant, cut) and expressions.
fn flows_picks_exprs(picks: std::ops::Range<usize>) -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((0u8..16, 0usize..6, 0usize..6, 0usize..5, 0usize..5), 1..24),
        proptest::collection::vec((0usize..24, 0u8..40, 0u16..200), picks),
        proptest::collection::vec(
            proptest::collection::vec((0u8..16, 0usize..6, 0usize..5), 1..4),
            1..6,
        ),
        proptest::collection::vec(0u8..4, 1..4),
    )
}

fn export(
    r: &StreamReader,
    f: &wirecap_query::Filter,
    lo: u64,
    hi: u64,
    index: bool,
) -> (Vec<u8>, bool) {
    let range = r.time_range(Some(lo), Some(hi)).unwrap();
    let mut out = Vec::new();
    let stats = Export::new(r.clone(), range, Format::Pcap, Some(f.clone()))
        .with_index(index)
        .write_to(&mut out)
        .unwrap();
    (out, stats.index_used)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn index_answers_what_the_scan_answers(
        (flows, picks, exprs, ops) in flows_picks_exprs(50..600),
        window in (0u64..100, 0u64..100),
    ) {
        let mut pkts = Vec::new();
        for (n, &(fi, v, cut)) in picks.iter().enumerate() {
            let f = flows[fi % flows.len()];
            // One in five cut somewhere, as a short snap length would.
            let cut = if cut % 5 == 0 { cut } else { 0 };
            pkts.push((T0 + n as u64 * 7_000_000, packet(f, v, cut)));
        }
        let (_d, r) = store_with(&pkts);
        let check = wirecap_query::flows::check_index(&r).unwrap();
        prop_assert!(check.problems.is_empty(), "{:?}", check.problems);
        prop_assert_eq!(check.packets_named, pkts.len() as u64);
        let span = pkts.len() as u64 * 7_000_000;
        let (a, b) = (window.0.min(window.1), window.0.max(window.1) + 1);
        let (lo, hi) = (T0 + span * a / 100, T0 + span * b / 100);
        for parts in &exprs {
            for (text, f) in both_languages(parts, &ops) {
                let want: Vec<(u64, Vec<u8>)> = pkts
                    .iter()
                    .filter(|(ts, d)| *ts >= lo && *ts < hi && f.matches(*ts, d.len() as u32 + 4, d))
                    .cloned()
                    .collect();
                let (with, used) = export(&r, &f, lo, hi, true);
                let (without, _) = export(&r, &f, lo, hi, false);
                prop_assert!(used, "the index was not used for {}", text);
                prop_assert_eq!(&with, &without, "{}", text);
                prop_assert_eq!(read_back(&with), want, "{}", text);
                // Every packet that matches is in a listed flow.
                let listed = wirecap_query::stream_flows(&r, lo, hi, Some(&f)).unwrap();
                let n: u64 = listed.iter().map(|x| x.packets).sum();
                let matched = read_back(&with).len() as u64;
                prop_assert!(n >= matched, "{} listed packets < {} matched for {}", n, matched, text);
            }
        }
    }
}

/// `flows` of a host lists exactly the flows with that host as an endpoint, with their
/// counters, direction and flags; one flow's export is exactly its packets.
#[test]
fn listing_and_one_flow_export() {
    let mut pkts = Vec::new();
    for i in 0..3000u64 {
        let (c, s) = (1 + (i % 30) as u8, 9u8);
        let reply = (i / 30) % 3 == 1;
        let b = PacketBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let data = if reply {
            b.ipv4([10, 9, 9, s], [10, 0, 0, c])
                .tcp(80, 40000 + u16::from(c), 0x10)
                .payload(&[1; 50])
                .build()
        } else {
            b.ipv4([10, 0, 0, c], [10, 9, 9, s])
                .tcp(40000 + u16::from(c), 80, if i < 30 { 0x02 } else { 0x18 })
                .build()
        };
        pkts.push((T0 + i * 1_000_000, data));
    }
    let (d, r) = store_with(&pkts);
    let today = Date::new(2025, 1, 1).unwrap();
    let f = compile(None, Some("host 10.0.0.7"), LinkType::ETHERNET, today)
        .unwrap()
        .unwrap();
    let store = Store::open(d.path()).unwrap();
    let all = wirecap_query::flows(&store, 0, u64::MAX, None).unwrap();
    assert_eq!(all.len(), 30, "{all:#?}");
    let got = wirecap_query::flows(&store, 0, u64::MAX, Some(&f)).unwrap();
    assert_eq!(got.len(), 1, "{got:#?}");
    let x = &got[0];
    assert_eq!(
        (x.src_addr.as_str(), x.dst_addr.as_str()),
        ("10.0.0.7", "10.9.9.9")
    );
    assert_eq!((x.src_port, x.dst_port), (Some(40007), Some(80)));
    assert_eq!(x.proto, "tcp");
    assert_eq!(x.packets, 100);
    assert_eq!(x.src_packets, 67);
    assert_eq!(x.dst_packets, 33);
    assert_eq!(x.tcp_flags, 0x1a);
    assert_eq!(x.first_ns, T0 + 6_000_000);
    let json = serde_json::to_value(x).unwrap();
    for k in [
        "stream",
        "proto",
        "vlan",
        "src_addr",
        "dst_addr",
        "src_port",
        "dst_port",
        "first_ns",
        "last_ns",
        "src_packets",
        "dst_packets",
        "src_bytes",
        "dst_bytes",
        "tcp_flags",
    ] {
        assert!(json.get(k).is_some(), "{k} in {json}");
    }
    // One flow's export: exactly its packets.
    let e = wirecap_query::flow_export(&store, &x.stream, x.id, Format::Pcap)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    e.write_to(&mut out).unwrap();
    let want: Vec<(u64, Vec<u8>)> = pkts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 30 == 6)
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(read_back(&out), want);
    assert!(
        wirecap_query::flow_export(&store, &x.stream, 999_999, Format::Pcap)
            .unwrap()
            .is_none()
    );
    // A time range lists the flows active in it.
    let some = wirecap_query::flows(&store, T0 + 2_999_000_000, T0 + 4_000_000_000, None).unwrap();
    assert_eq!(some.len(), 1, "{some:#?}");
    drop(r);
}

/// A stream written without a flow index is listed and exported all the same (by
/// classifying it now), and `reindex_flows` gives it the index the writer would have.
#[test]
fn older_streams_scan_and_reindex() {
    let pkts: Vec<(u64, Vec<u8>)> = (0..2000u64)
        .map(|i| {
            let b = PacketBuilder::ethernet([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            (
                T0 + i * 1_000_000,
                b.ipv4([10, 0, 0, (i % 20) as u8], [10, 1, 1, 1])
                    .udp(53, 1000 + (i % 20) as u16)
                    .build(),
            )
        })
        .collect();
    let (d, r) = store_with(&pkts);
    let flows_file = r.dir().join("flows.idx");
    let stored = std::fs::read(&flows_file).unwrap();
    std::fs::remove_file(&flows_file).unwrap();
    let store = Store::open(d.path()).unwrap();
    let today = Date::new(2025, 1, 1).unwrap();
    let f = compile(None, Some("udp port 1003"), LinkType::ETHERNET, today)
        .unwrap()
        .unwrap();
    let r = store.open_stream(r.name()).unwrap();
    let (scan, used) = export(&r, &f, 0, u64::MAX, true);
    assert!(!used);
    assert_eq!(read_back(&scan).len(), 100);
    assert_eq!(
        wirecap_query::flows(&store, 0, u64::MAX, Some(&f))
            .unwrap()
            .len(),
        1
    );
    let rep = store
        .reindex_flows(r.name(), &wirecap_query::FlowClassifier)
        .unwrap();
    assert_eq!(rep.packets, 2000);
    assert_eq!(
        std::fs::read(&flows_file).unwrap(),
        stored,
        "reindex wrote another index"
    );
    let r = store.open_stream(r.name()).unwrap();
    let (indexed, used) = export(&r, &f, 0, u64::MAX, true);
    assert!(used);
    assert_eq!(indexed, scan);
}

/// What identifies a fragment across two loads of one index (positions are re-based
/// when only some fragments of a block are read).
fn fragment_ids(ix: &wirecap_store::FlowIndex, pick: impl Fn(usize) -> bool) -> Vec<String> {
    let mut v: Vec<String> = (0..ix.fragments.len())
        .filter(|&i| pick(i))
        .map(|i| {
            let f = &ix.fragments[i];
            let pos: Vec<u64> = ix.positions(i).collect();
            format!(
                "{} {} {:?} {} {} {:?}",
                ix.block_of[i], f.id, f.key, f.first_ts, f.last_ts, pos
            )
        })
        .collect();
    v.sort();
    v
}

fn several_blocks(
    flows: &[(u8, usize, usize, usize, usize)],
    picks: &[(usize, u8, u16)],
) -> Vec<(u64, Vec<u8>)> {
    // 0.4 s apart: a block every 60 s of packet time, so several blocks and tables.
    picks
        .iter()
        .enumerate()
        .map(|(n, &(fi, v, cut))| {
            let cut = if cut % 5 == 0 { cut } else { 0 };
            (
                T0 + n as u64 * 400_000_000,
                packet(flows[fi % flows.len()], v, cut),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// The lookup tables pick every fragment the filter's test (`may_match`) accepts,
    /// whole (same positions), for random flows and random expressions of both
    /// languages with and / or / not.
    #[test]
    fn lookups_pick_every_fragment_may_match_accepts(
        (flows, picks, exprs, ops) in flows_picks_exprs(200..700),
    ) {
        let pkts = several_blocks(&flows, &picks);
        let (_d, r) = store_with(&pkts);
        let full = wirecap_store::FlowIndex::load(&r).unwrap().unwrap();
        prop_assert!(full.blocks.len() >= 2, "{} blocks", full.blocks.len());
        for parts in &exprs {
            for (text, f) in both_languages(parts, &ops) {
                let accepted = fragment_ids(&full, |i| {
                    f.may_match_facts(&wirecap_query::flows::FragmentFacts {
                        fragment: &full.fragments[i],
                        linktype: LinkType::ETHERNET.0,
                    })
                });
                let looked = wirecap_query::flows::load_index(&r, Some(&f), None).unwrap().unwrap();
                prop_assert_eq!(&looked.blocks, &full.blocks);
                prop_assert_eq!(looked.covered(), full.covered());
                let picked = fragment_ids(&looked, |_| true);
                for a in &accepted {
                    prop_assert!(picked.binary_search(a).is_ok(), "{} not picked for {}", a, text);
                }
                // Picked fragments are the index's own, never made up.
                let all = fragment_ids(&full, |_| true);
                for p in &picked {
                    prop_assert!(all.binary_search(p).is_ok(), "{} is not in the index", p);
                }
                let tables = std::env::var("WIRECAP_QUERY_INDEX").map_or(true, |v| v != "full");
                if tables && wirecap_query::plan::plan(&f, LinkType::ETHERNET.0).is_some() {
                    prop_assert_eq!(looked.table_blocks, full.blocks.len() as u64, "{}", text);
                }
            }
        }
    }
}

/// 900 packets of 40 flows of every kind (tagged, IPv6, ARP…) interleaved over
/// several index blocks; `cut(i)` is how much packet `i` is cut short.
fn mixed_stream(cut: impl Fn(usize) -> u16) -> Vec<(u64, Vec<u8>)> {
    let flows: Vec<(u8, usize, usize, usize, usize)> = (0..40)
        .map(|i| ((i % 12) as u8, i % 6, (i / 6) % 6, i % 5, (i / 5) % 5))
        .collect();
    let picks: Vec<(usize, u8, u16)> = (0..900)
        .map(|i| ((i * 7) % 40, (i % 40) as u8, cut(i)))
        .collect();
    several_blocks(&flows, &picks)
}

/// A `flows.lut` cut at any point, or with a byte changed anywhere, gives the answers of
/// a scan, without an error: torn or damaged tables are ignored (their blocks are read
/// whole) and recovery cuts a torn tail.
#[test]
fn torn_or_damaged_tables_answer_as_the_scan() {
    let pkts = mixed_stream(|i| if i % 13 == 0 { 30 } else { 0 });
    let (d, r) = store_with(&pkts);
    let lut_path = r.dir().join("flows.lut");
    let lut = std::fs::read(&lut_path).unwrap();
    assert!(!lut.is_empty());
    let today = Date::new(2025, 1, 1).unwrap();
    let filters: Vec<wirecap_query::Filter> = [
        "host 10.0.0.1",
        "tcp port 80 and not host 10.0.0.2",
        "net 10.0.0.0/16 and udp",
        "host 2001:db8::2 or arp",
        "vlan 11 or port 53",
    ]
    .iter()
    .map(|e| {
        compile(None, Some(e), LinkType::ETHERNET, today)
            .unwrap()
            .unwrap()
    })
    .collect();
    let answers = |r: &StreamReader| -> Vec<(Vec<u8>, Vec<wirecap_query::FlowRecord>)> {
        filters
            .iter()
            .map(|f| {
                let (out, used) = export(r, f, 0, u64::MAX, true);
                assert!(used);
                let listed = wirecap_query::stream_flows(r, 0, u64::MAX, Some(f)).unwrap();
                (out, listed)
            })
            .collect()
    };
    let scans: Vec<Vec<u8>> = filters
        .iter()
        .map(|f| export(&r, f, 0, u64::MAX, false).0)
        .collect();
    let want = answers(&r);
    for (w, s) in want.iter().zip(&scans) {
        assert_eq!(&w.0, s);
    }
    // Cut points: every 97th byte, and around the end of every table.
    let mut cuts: Vec<usize> = (0..lut.len()).step_by(97).collect();
    cuts.extend([1, 63, 64, 65, lut.len() - 1]);
    for cut in cuts {
        std::fs::write(&lut_path, &lut[..cut]).unwrap();
        let r2 = Store::open(d.path())
            .unwrap()
            .open_stream(r.name())
            .unwrap();
        assert_eq!(answers(&r2), want, "flows.lut cut at {cut}");
    }
    for at in (0..lut.len()).step_by(61) {
        let mut bad = lut.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&lut_path, &bad).unwrap();
        let r2 = Store::open(d.path())
            .unwrap()
            .open_stream(r.name())
            .unwrap();
        assert_eq!(answers(&r2), want, "flows.lut byte {at} changed");
    }
    std::fs::remove_file(&lut_path).unwrap();
    let r2 = Store::open(d.path())
        .unwrap()
        .open_stream(r.name())
        .unwrap();
    assert_eq!(answers(&r2), want, "without flows.lut");
}

/// One flow's export found through the lookup tables (its first block names its key,
/// its two hosts narrow the others) holds exactly the packets of every fragment of the
/// flow in every block, tagged and untagged flows alike, as reading every record does.
#[test]
fn one_flow_export_through_the_tables_is_the_whole_flow() {
    let pkts = mixed_stream(|_| 0);
    let (d, r) = store_with(&pkts);
    let full = wirecap_store::FlowIndex::load(&r).unwrap().unwrap();
    assert!(full.blocks.len() >= 4, "{} blocks", full.blocks.len());
    let store = Store::open(d.path()).unwrap();
    let mut ids: Vec<u64> = full
        .fragments
        .iter()
        .filter(|f| !f.key.is_opaque())
        .map(|f| f.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut multi_block = 0;
    for id in ids {
        let frags: Vec<usize> = (0..full.fragments.len())
            .filter(|&i| full.fragments[i].id == id && !full.fragments[i].key.is_opaque())
            .collect();
        if frags.len() > 1 {
            multi_block += 1;
        }
        let mut want_pos: Vec<u64> = frags.iter().flat_map(|&i| full.positions(i)).collect();
        want_pos.sort_unstable();
        let range = r.full_range();
        let mut want = Vec::new();
        Export::selected(r.clone(), range, Format::Pcap, want_pos)
            .write_to(&mut want)
            .unwrap();
        let mut got = Vec::new();
        wirecap_query::flow_export(&store, r.name(), id, Format::Pcap)
            .unwrap()
            .expect("the flow is there")
            .write_to(&mut got)
            .unwrap();
        assert_eq!(read_back(&got), read_back(&want), "flow {id}");
    }
    assert!(multi_block > 10, "flows over several blocks: {multi_block}");
}
