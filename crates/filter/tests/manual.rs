//! Every example block of the appliance manual ("Packet Filtering"), plus the fields
//! users reach for next, checked against tcpdump on the corpus.
//!
//! The expected packets are worked out independently of the dissector: each block has
//! an equivalent tcpdump expression, compiled by libpcap. Two semantic differences are
//! bridged explicitly:
//!
//! * the appliance sees through VLAN tags, MPLS and PPPoE; tcpdump's primitives look at
//!   one layout at a time, and its `vlan`/`mpls`/`pppoes` keywords shift the offsets of
//!   everything after them *in the text*, so `ip or (vlan and ip)` is not "IPv4, tagged
//!   or not". The expected count is therefore a sum over disjoint layouts ("paths":
//!   k VLAN tags, then j MPLS labels or PPPoE), each its own tcpdump expression
//!   `vlan and ... and X`;
//! * the dissector walks IPv6 extension headers (hop-by-hop, routing, fragment,
//!   destination options, AH) to reach TCP/UDP; tcpdump's `tcp port` only reads
//!   `ip6[6]`, so the IPv6 side of port and flag blocks is spelled out with explicit
//!   offsets over chains of up to two extension headers;
//! * `vlan.id` and `mpls.label` test *any* entry of the stack, where `vlan N` and
//!   `mpls N` test one; their equivalents are written with explicit byte offsets.
//!
//! Guards such as `ip[19] != 256` (always true when the byte exists) make tcpdump
//! require the bytes the dissector requires before it reads a header (a whole IPv4
//! header, both ports).
//!
//! `every_manual_block_matches_tcpdump_in_process` runs the tcpdump expressions with
//! `Filter::bpf` (libpcap's compiler; the interpreter is checked against tcpdump by
//! `tests/oracle.rs`) over every oracle file; `sampled_files_match_real_tcpdump` runs
//! `/usr/bin/tcpdump --count` itself on a sample. `frame.time` and `ether.fcs` have no
//! tcpdump equivalent and are checked against tshark on synthetic captures.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use common::Pkt;
use wirecap_filter::dissect::build::PacketBuilder;
use wirecap_filter::dissect::{Link, dissect};
use wirecap_filter::{CompileOptions, Date, Filter, LinkType};

const G4: &str = "ip[0] & 0xf0 == 0x40 and ip[19] != 256";
const G6: &str = "ip6[0] & 0xf0 == 0x60 and ip6[39] != 256";
const ETH: &str = "ether[13] != 256";

/// Which layouts an equivalent expression must be summed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paths {
    /// One expression covers everything (it uses explicit offsets or no layers).
    Flat,
    /// Untagged or under VLAN tags only (ARP is not carried in MPLS or PPPoE).
    Vlan,
    /// Under VLAN tags, then MPLS labels or PPPoE.
    All,
}

struct Case {
    block: &'static str,
    tcpdump: String,
    paths: Paths,
}

fn case(block: &'static str, tcpdump: impl Into<String>, paths: Paths) -> Case {
    Case {
        block,
        tcpdump: tcpdump.into(),
        paths,
    }
}

fn v4(x: &str) -> String {
    format!("ip and {G4} and {x}")
}

fn v4_l4(proto: &str, x: &str) -> String {
    format!("ip and {G4} and ip[0] & 0xf >= 5 and {proto}[3] != 256 and {x}")
}

/// IPv6 extension headers the dissector walks through.
const EXT: [u8; 5] = [0, 43, 44, 51, 60];

fn ext_len(kind: u8, o: &str) -> String {
    match kind {
        44 => "8".into(),
        51 => format!("(ip6[{o} + 1] + 2) * 4"),
        _ => format!("(ip6[{o} + 1] + 1) * 8"),
    }
}

/// The extension header of `kind` at `o` is complete and, for a fragment header, the
/// fragment is the first.
fn ext_ok(kind: u8, o: &str) -> String {
    let frag = if kind == 44 {
        format!(" and ip6[{o} + 2:2] & 0xfff8 == 0")
    } else {
        String::new()
    };
    format!("ip6[{o} + 7] != 256{frag}")
}

/// IPv6 whose upper layer is `p`, after up to two extension headers; `x` tests the
/// upper-layer header at offset expression `o` (relative to the IPv6 header). tcpdump's
/// `tcp port` only looks at `ip6[6] == 6`, while the dissector walks the chain.
fn v6_l4(p: u8, x: &dyn Fn(&str) -> String) -> String {
    let mut alts = vec![format!("ip6[6] == {p} and {}", x("40"))];
    for e1 in EXT {
        let o2 = format!("40 + {}", ext_len(e1, "40"));
        alts.push(format!(
            "ip6[6] == {e1} and {} and ip6[40] == {p} and {}",
            ext_ok(e1, "40"),
            x(&o2)
        ));
        for e2 in EXT {
            let o3 = format!("{o2} + {}", ext_len(e2, &o2));
            alts.push(format!(
                "ip6[6] == {e1} and {} and ip6[40] == {e2} and {} and ip6[{o2}] == {p} and {}",
                ext_ok(e1, "40"),
                ext_ok(e2, &o2),
                x(&o3)
            ));
        }
    }
    format!("ip6 and {G6} and (({}))", alts.join(") or ("))
}

#[derive(Clone, Copy)]
enum Sel {
    Either,
    Src,
    Dst,
}

/// `tcp.port`/`udp.port` in `lo..=hi`: tcpdump's own primitive for IPv4, explicit
/// offsets for IPv6 behind extension headers.
fn ports(proto: &str, p: u8, sel: Sel, lo: u16, hi: u16) -> String {
    let dir = match sel {
        Sel::Either => "",
        Sel::Src => "src ",
        Sel::Dst => "dst ",
    };
    let v4x = format!("{proto} {dir}portrange {lo}-{hi}");
    let v6x = move |o: &str| {
        let r = |at: String| format!("(ip6[{at}:2] >= {lo} and ip6[{at}:2] <= {hi})");
        let test = match sel {
            Sel::Either => format!("({} or {})", r(o.to_string()), r(format!("{o} + 2"))),
            Sel::Src => r(o.to_string()),
            Sel::Dst => r(format!("{o} + 2")),
        };
        format!("ip6[{o} + 3] != 256 and {test}")
    };
    format!("({}) or ({})", v4_l4(proto, &v4x), v6_l4(p, &v6x))
}

/// `tcp.flags` contains all of `mask` (the dissector reads flags from a complete
/// 20-byte TCP header).
fn flags(mask: u8) -> String {
    let v4x = format!("tcp[19] != 256 and tcp[13] & {mask} == {mask}");
    let v6x = move |o: &str| format!("ip6[{o} + 19] != 256 and ip6[{o} + 13] & {mask} == {mask}");
    format!("({}) or ({})", v4_l4("tcp", &v4x), v6_l4(6, &v6x))
}

const TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

fn is_tpid(off: usize) -> String {
    let alts: Vec<String> = TPIDS
        .iter()
        .map(|t| format!("ether[{off}:2] == {t:#06x}"))
        .collect();
    format!("({})", alts.join(" or "))
}

/// Any of the first four VLAN tags has id `n`, with explicit offsets.
fn any_vlan(n: u16) -> String {
    // tag i (0-based): TPID at 12 + 4i, TCI at 14 + 4i, complete when 4 bytes are there.
    let mut e = String::new();
    for i in (0..4).rev() {
        let tpid = 12 + 4 * i;
        let tci = 14 + 4 * i;
        let this = format!(
            "(ether[{tci}:2] & 0xfff == {n} and ether[{}] != 256)",
            tci + 3
        );
        e = if e.is_empty() {
            format!("({} and {this})", is_tpid(tpid))
        } else {
            format!("({} and ({this} or {e}))", is_tpid(tpid))
        };
    }
    e
}

/// Any of the first four MPLS labels is `n`, under 0–3 VLAN tags, with explicit offsets.
fn any_mpls(n: u32) -> String {
    let mut alts = Vec::new();
    for k in 0..4usize {
        let mut cond: Vec<String> = (0..k).map(|i| is_tpid(12 + 4 * i)).collect();
        let et = 12 + 4 * k;
        cond.push(format!(
            "(ether[{et}:2] == 0x8847 or ether[{et}:2] == 0x8848)"
        ));
        let s = 14 + 4 * k;
        let mut chain = String::new();
        for i in (0..4usize).rev() {
            let o = s + 4 * i;
            let this = format!("ether[{o}:4] >> 12 == {n}");
            chain = if chain.is_empty() {
                this
            } else {
                format!("({this} or (ether[{}] & 1 == 0 and {chain}))", o + 2)
            };
        }
        cond.push(chain);
        alts.push(format!("({})", cond.join(" and ")));
    }
    alts.join(" or ")
}

fn cases() -> Vec<Case> {
    use Paths::*;
    vec![
        // --- the manual's examples ---
        case("ether.proto == ipv4", "ip", All),
        case("ether.proto == 0x0800", "ip", All),
        case(
            "ether.addr == 00:ba:be:",
            format!(
                "{ETH} and (ether[0:4] & 0xffffff00 == 0x00babe00 or ether[6:4] & 0xffffff00 == 0x00babe00)"
            ),
            Flat,
        ),
        case(
            "ether.addr == 00:ba:be:11:22:33",
            format!("{ETH} and ether host 00:ba:be:11:22:33"),
            Flat,
        ),
        case(
            "ether.addr == 00:*",
            format!("{ETH} and (ether[0] == 0 or ether[6] == 0)"),
            Flat,
        ),
        case("ipv4.addr == 192.168.1.1", v4("ip host 192.168.1.1"), All),
        case(
            "ipv4.addr == 192.168.1.0/24",
            v4("ip net 192.168.1.0/24"),
            All,
        ),
        case(
            "ipv4.addr.src == 192.168.1.0/24",
            v4("ip src net 192.168.1.0/24"),
            All,
        ),
        case("ipv4.proto == tcp", v4("ip proto 6"), All),
        case("ipv4.proto == udp", v4("ip proto 17"), All),
        case("ipv4.proto == icmp", v4("ip proto 1"), All),
        case("ipv4.proto == igmp", v4("ip proto 2"), All),
        case(
            "tcp.port == 1000",
            ports("tcp", 6, Sel::Either, 1000, 1000),
            All,
        ),
        case(
            "tcp.port == 1000-2000",
            ports("tcp", 6, Sel::Either, 1000, 2000),
            All,
        ),
        case(
            "tcp.port.src == 1000",
            ports("tcp", 6, Sel::Src, 1000, 1000),
            All,
        ),
        case(
            "udp.port == 3000",
            ports("udp", 17, Sel::Either, 3000, 3000),
            All,
        ),
        case(
            "udp.port == 3000-4000",
            ports("udp", 17, Sel::Either, 3000, 4000),
            All,
        ),
        case(
            "udp.port.src == 3000",
            ports("udp", 17, Sel::Src, 3000, 3000),
            All,
        ),
        case("frame.size <= 128", "less 128", Flat),
        case("frame.size >= 1024", "greater 1024", Flat),
        case("frame.size == 64", "len == 64", Flat),
        case("vlan.id == 1234", any_vlan(1234), Flat),
        // --- the same blocks with values the corpus has ---
        case("ether.proto == ipv6", "ip6", All),
        case("ether.proto == arp", "arp", Vlan),
        case("ether.proto == vlan", "vlan", Flat),
        case(
            "ether.addr == 00:0b:82:",
            format!(
                "{ETH} and (ether[0:4] & 0xffffff00 == 0x000b8200 or ether[6:4] & 0xffffff00 == 0x000b8200)"
            ),
            Flat,
        ),
        case(
            "ether.addr == 00:0b:82:01:fc:42",
            format!("{ETH} and ether host 00:0b:82:01:fc:42"),
            Flat,
        ),
        case(
            "ether.addr.src == 00:08:74:ad:f1:9b",
            format!("{ETH} and ether src 00:08:74:ad:f1:9b"),
            Flat,
        ),
        case("ipv4.addr == 10.0.0.1", v4("ip host 10.0.0.1"), All),
        case(
            "ipv4.addr == 192.150.187.43",
            v4("ip host 192.150.187.43"),
            All,
        ),
        case("ipv4.addr == 10.0.0.0/8", v4("ip net 10.0.0.0/8"), All),
        case(
            "ipv4.addr.src == 192.168.0.0/16",
            v4("ip src net 192.168.0.0/16"),
            All,
        ),
        case(
            "ipv4.addr.dst == 10.0.0.0/24",
            v4("ip dst net 10.0.0.0/24"),
            All,
        ),
        case("ipv4.proto == 47", v4("ip proto 47"), All),
        case("tcp.port == 80", ports("tcp", 6, Sel::Either, 80, 80), All),
        case("tcp.port.src == 80", ports("tcp", 6, Sel::Src, 80, 80), All),
        case("tcp.port.dst == 22", ports("tcp", 6, Sel::Dst, 22, 22), All),
        case(
            "tcp.port == 6000-6999",
            ports("tcp", 6, Sel::Either, 6000, 6999),
            All,
        ),
        case("udp.port == 53", ports("udp", 17, Sel::Either, 53, 53), All),
        case(
            "udp.port.src == 53",
            ports("udp", 17, Sel::Src, 53, 53),
            All,
        ),
        case(
            "udp.port == 67-68",
            ports("udp", 17, Sel::Either, 67, 68),
            All,
        ),
        case("vlan.id == 10", any_vlan(10), Flat),
        case("vlan.id == 100", any_vlan(100), Flat),
        case("vlan.id == 300", any_vlan(300), Flat),
        // --- what users reach for next ---
        case(
            "ipv6.addr == 2001:4f8:4:7:2e0:81ff:fe52:ffff",
            format!("ip6 and {G6} and ip6 host 2001:4f8:4:7:2e0:81ff:fe52:ffff"),
            All,
        ),
        case(
            "ipv6.addr.dst == ff02::/16",
            format!("ip6 and {G6} and ip6 dst net ff02::/16"),
            All,
        ),
        case("ip.addr == 10.0.0.1", v4("ip host 10.0.0.1"), All),
        case(
            "ip.addr == fe80::/10",
            format!("ip6 and {G6} and ip6 net fe80::/10"),
            All,
        ),
        case("mpls.label == 29", any_mpls(29), Flat),
        case(
            "icmp.type == echo-request",
            v4_l4("icmp", "icmp[icmptype] == icmp-echo"),
            All,
        ),
        case("icmp.type == 0", v4_l4("icmp", "icmp[icmptype] == 0"), All),
        case("tcp.flags == syn", flags(0x02), All),
        case("tcp.flags == syn+ack", flags(0x12), All),
        case("tcp.flags == rst", flags(0x04), All),
        case("frame.size < 64", "len < 64", Flat),
        case("frame.size > 1514", "len > 1514", Flat),
        case("frame.size != 60", "len != 60", Flat),
    ]
}

/// The layout of one packet: VLAN tags, MPLS labels, PPPoE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Layout {
    vlans: usize,
    mpls: usize,
    pppoe: bool,
}

fn layout(data: &[u8]) -> Layout {
    let d = dissect(Link::Ethernet, data);
    Layout {
        vlans: d.vlan_ids.len(),
        mpls: d.mpls_labels.len(),
        pppoe: d.ethertypes.contains(&0x8864),
    }
}

/// The tcpdump expression for `x` under one layout.
fn path_expr(l: Layout, x: &str) -> String {
    let mut parts: Vec<&str> = vec!["vlan"; l.vlans];
    parts.extend(std::iter::repeat_n("mpls", l.mpls));
    if l.pppoe {
        parts.push("pppoes");
    }
    if parts.is_empty() {
        x.to_owned()
    } else {
        format!("{} and ({x})", parts.join(" and "))
    }
}

/// The layouts whose expressions must be summed for `paths`, among those present.
fn layouts_for(paths: Paths, present: &BTreeSet<Layout>) -> Vec<Layout> {
    let plain = Layout {
        vlans: 0,
        mpls: 0,
        pppoe: false,
    };
    match paths {
        Paths::Flat => vec![plain],
        Paths::Vlan => {
            let mut v: BTreeSet<Layout> = present
                .iter()
                .map(|l| Layout {
                    vlans: l.vlans,
                    mpls: 0,
                    pppoe: false,
                })
                .collect();
            v.insert(plain);
            v.into_iter().collect()
        }
        Paths::All => {
            let mut v = present.clone();
            v.insert(plain);
            v.into_iter().collect()
        }
    }
}

fn options() -> CompileOptions {
    CompileOptions::new(Date::new(2024, 1, 1).expect("date"))
}

struct Compiled {
    appliance: Vec<Filter>,
    bpf: HashMap<String, Filter>,
}

impl Compiled {
    fn bpf(&mut self, expr: &str) -> &Filter {
        self.bpf.entry(expr.to_owned()).or_insert_with(|| {
            Filter::bpf(expr, LinkType::ETHERNET).unwrap_or_else(|e| panic!("{expr}: {e}"))
        })
    }
}

fn oracle_files(dir: &Path) -> Vec<String> {
    let files: BTreeSet<String> = common::tsv(&dir.join("bpf-oracle.tsv"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    files.into_iter().collect()
}

/// Per file and case: (appliance count, expected count), in process.
fn run_in_process(
    dir: &Path,
    files: &[String],
    cases: &[Case],
) -> BTreeMap<(String, usize), (u64, u64, Vec<Layout>)> {
    let mut c = Compiled {
        appliance: cases
            .iter()
            .map(|k| {
                Filter::appliance(k.block, LinkType::ETHERNET, &options())
                    .unwrap_or_else(|e| panic!("{}: {e}", k.block))
            })
            .collect(),
        bpf: HashMap::new(),
    };
    let mut out = BTreeMap::new();
    for file in files {
        let (pkts, _) = common::read_all(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        let present: BTreeSet<Layout> = pkts.iter().map(|p| layout(&p.data)).collect();
        for (ci, k) in cases.iter().enumerate() {
            let got = pkts
                .iter()
                .filter(|p| c.appliance[ci].matches(p.ts_ns, p.orig_len, &p.data))
                .count() as u64;
            let layouts = layouts_for(k.paths, &present);
            let mut want = 0u64;
            for l in &layouts {
                let f = c.bpf(&path_expr(*l, &k.tcpdump));
                want += pkts
                    .iter()
                    .filter(|p| f.matches(p.ts_ns, p.orig_len, &p.data))
                    .count() as u64;
            }
            out.insert((file.clone(), ci), (got, want, layouts));
        }
    }
    out
}

#[test]
fn every_manual_block_matches_tcpdump_in_process() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let cases = cases();
    let files = oracle_files(&dir);
    let results = run_in_process(&dir, &files, &cases);
    let mut bad = Vec::new();
    let mut nonzero = vec![0usize; cases.len()];
    for ((file, ci), (got, want, _)) in &results {
        if got != want {
            bad.push(format!(
                "{file}\t{}\tappliance {got}\ttcpdump {want}",
                cases[*ci].block
            ));
        }
        nonzero[*ci] += usize::from(*want > 0);
    }
    for (k, n) in cases.iter().zip(&nonzero) {
        println!("{:<50} matches in {n} files", k.block);
    }
    assert!(
        bad.is_empty(),
        "{} (file, block) counts differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn sampled_files_match_real_tcpdump() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    if !common::have_tool("tcpdump") {
        return;
    }
    let cases = cases();
    // A sample: the files with VLAN, MPLS and PPPoE layouts plus a few plain ones.
    let sample: Vec<String> = [
        "pcap/zeek/pppoe-over-qinq.pcap",
        "pcap/zeek/mixed-vlan-mpls.pcap",
        "pcap/zeek/vlan-qinqinq.pcap",
        "pcap/zeek/ipv6-http-atomic-frag.pcap",
        "pcap/tcpreplay/test.pcap",
    ]
    .iter()
    .map(|s| s.to_string())
    .filter(|f| dir.join(f).is_file())
    .collect();
    let results = run_in_process(&dir, &sample, &cases);
    let mut bad = Vec::new();
    let mut runs = 0;
    for ((file, ci), (got, _, layouts)) in &results {
        let k = &cases[*ci];
        let want: u64 = layouts
            .iter()
            .map(|l| common::tcpdump_count(&dir.join(file), &path_expr(*l, &k.tcpdump)))
            .sum();
        runs += layouts.len();
        if *got != want {
            bad.push(format!(
                "{file}\t{}\tappliance {got}\ttcpdump {want}",
                k.block
            ));
        }
    }
    println!("{runs} tcpdump runs over {} files", sample.len());
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn frame_time_examples_match_tshark() {
    if !common::have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("times.pcap");
    let today = Date::new(2024, 3, 5).expect("date");
    let day = |d: Date| d.days_since_epoch() as u64 * 86_400_000_000_000;
    let xmas = day(Date::new(2014, 12, 25).expect("date"));
    let h = 3_600_000_000_000u64;
    let a = xmas + 8 * h + 100_200_300;
    let b = xmas + 17 * h + 400_500_600;
    let seven = day(today) + 7 * h;
    // Timestamps on both sides of every boundary, a nanosecond apart.
    let mut ts = vec![
        0,
        xmas,
        a - 1,
        a,
        a + 1,
        b - 1,
        b,
        b + 1,
        seven - 1,
        seven,
        seven + 1,
        day(today) - 1,
        xmas + 86_400_000_000_000,
    ];
    ts.sort_unstable();
    let pkt = PacketBuilder::ethernet([2; 6], [4; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
        .udp(1, 2)
        .build();
    let pkts: Vec<Pkt> = ts
        .iter()
        .map(|&t| Pkt {
            ts_ns: t,
            orig_len: pkt.len() as u32,
            data: pkt.clone(),
        })
        .collect();
    common::write_pcap(&path, LinkType::ETHERNET, &pkts);
    let secs = |ns: u64| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let opts = CompileOptions::new(today);
    for (block, display) in [
        (
            "frame.time == 20141225_08:00:00.100.200.300".to_string(),
            format!("frame.time_epoch >= {}", secs(a)),
        ),
        (
            "frame.time == 20141225_08:00:00.100.200.300-20141225_17:00:00.400.500.600".to_string(),
            format!(
                "frame.time_epoch >= {} && frame.time_epoch < {}",
                secs(a),
                secs(b)
            ),
        ),
        (
            "frame.time == 07:00:00".to_string(),
            format!("frame.time_epoch >= {}", secs(seven)),
        ),
        (
            "frame.time < 07:00:00".to_string(),
            format!("frame.time_epoch < {}", secs(seven)),
        ),
        (
            "frame.time != 20141225_08:00:00.100.200.300-20141225_17:00:00.400.500.600".to_string(),
            format!(
                "!(frame.time_epoch >= {} && frame.time_epoch < {})",
                secs(a),
                secs(b)
            ),
        ),
    ] {
        let f = Filter::appliance(&block, LinkType::ETHERNET, &opts).expect("valid");
        let got = pkts
            .iter()
            .filter(|p| f.matches(p.ts_ns, p.orig_len, &p.data))
            .count() as u64;
        let want = common::tshark_count(&path, &[], &display);
        assert_eq!(got, want, "{block} vs tshark `{display}`");
    }
}

#[test]
fn fcs_example_matches_tshark() {
    if !common::have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("fcs.pcap");
    let mut pkts = Vec::new();
    for i in 0..20u8 {
        let mut frame = PacketBuilder::ethernet([2; 6], [4; 6])
            .ipv4([10, 0, 0, i], [10, 0, 0, 2])
            .udp(1, 2)
            .payload(&[i; 30])
            .build();
        // the standard CRC-32 of the frame, appended little-endian, computed bit by bit
        let mut crc = u32::MAX;
        for &b in &frame {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        frame.extend_from_slice(&(!crc).to_le_bytes());
        if i % 3 == 0 {
            let at = usize::from(i) % frame.len();
            frame[at] ^= 0x40; // corrupt: FCS no longer matches
        }
        pkts.push(Pkt {
            ts_ns: u64::from(i),
            orig_len: frame.len() as u32,
            data: frame,
        });
    }
    common::write_pcap(&path, LinkType::ETHERNET, &pkts);
    let with = CompileOptions {
        fcs_present: true,
        ..options()
    };
    let f = Filter::appliance("ether.fcs == fail", LinkType::ETHERNET, &with).expect("valid");
    let got = pkts
        .iter()
        .filter(|p| f.matches(p.ts_ns, p.orig_len, &p.data))
        .count() as u64;
    let want = common::tshark_count(
        &path,
        &["-o", "eth.fcs:always", "-o", "eth.check_fcs:TRUE"],
        "eth.fcs.status == 0",
    );
    assert_eq!(got, 7);
    assert_eq!(got, want, "tshark's bad-FCS count");
    // Frames without FCS: refused, not an empty answer (issue 14.8).
    let e = Filter::appliance("ether.fcs == fail", LinkType::ETHERNET, &options())
        .expect_err("ether.fcs without FCS");
    assert_eq!(e.kind(), wirecap_filter::ErrorKind::Unavailable, "{e}");
}
