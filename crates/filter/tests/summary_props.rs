//! `may_match` is conservative: whenever some packet of a chunk matches a filter, the
//! chunk's summary (stored and read back) says "may match". Checked with random chunks
//! (built packets, cut at any length, with random byte mutations) against random tcpdump
//! expressions from the primitives the summary understands and random appliance
//! filters.

mod common;

use proptest::prelude::*;
use wirecap_filter::dissect::build::PacketBuilder;
use wirecap_filter::summary::ChunkSummary;
use wirecap_filter::{CompileOptions, Date, Filter, LinkType};

const PORTS: [u16; 5] = [53, 80, 443, 1000, 3000];
const V4: [[u8; 4]; 4] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [192, 168, 1, 7],
    [172, 16, 5, 5],
];
const V6: [[u8; 16]; 2] = [
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
];

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn packet(r: &mut Rng) -> (Vec<u8>, u32) {
    let mut b = PacketBuilder::ethernet([0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]);
    for _ in 0..r.below(3) {
        b = b.vlan(r.pick(&[0x8100, 0x88a8]), r.pick(&[10, 300]));
    }
    if r.below(5) == 0 {
        b = b.mpls(r.pick(&[29, 100]));
    }
    b = match r.below(4) {
        0 | 1 => b.ipv4_full(
            r.pick(&V4),
            r.pick(&V4),
            r.below(2) as u8,
            r.pick(&[0, 0, 0, 7]),
            false,
        ),
        2 => {
            let b = b.ipv6(r.pick(&V6), r.pick(&V6));
            if r.below(3) == 0 {
                b.ipv6_ext(r.pick(&[0, 44, 60]), r.pick(&[0, 3]))
            } else {
                b
            }
        }
        _ => b.arp(1, r.pick(&V4), r.pick(&V4), r.below(2) == 0),
    };
    b = match r.below(4) {
        0 | 1 => b.tcp(r.pick(&PORTS), r.pick(&PORTS), r.below(256) as u8),
        2 => b.udp(r.pick(&PORTS), r.pick(&PORTS)),
        _ => b.icmp(8, 0),
    };
    let mut data = b.payload(&[0; 20]).build();
    let orig = data.len() as u32;
    // Random byte mutations make headers malformed (bad IHL, version, lengths).
    for _ in 0..r.below(3) {
        let at = r.below(data.len() as u64) as usize;
        data[at] = r.below(256) as u8;
    }
    if r.below(3) == 0 {
        data.truncate(r.below(data.len() as u64 + 1) as usize);
    }
    (data, orig)
}

fn bpf_prim(r: &mut Rng) -> String {
    let a = r.pick(&V4);
    let v4 = format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    let v6 = std::net::Ipv6Addr::from(r.pick(&V6)).to_string();
    let port = r.pick(&PORTS);
    match r.below(14) {
        0 => r
            .pick(&[
                "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "igmp", "sctp",
            ])
            .to_string(),
        1 => format!("host {v4}"),
        2 => format!("{} host {v4}", r.pick(&["src", "dst", "ip", "arp"])),
        3 => format!("host {v6}"),
        4 => format!("net {}.0.0.0/8", a[0]),
        5 => format!("src net {}.{}.0.0/16", a[0], a[1]),
        6 => format!("port {port}"),
        7 => format!(
            "{} {} port {port}",
            r.pick(&["tcp", "udp"]),
            r.pick(&["src", "dst"])
        ),
        8 => format!("portrange {}-{}", port, port + r.pick(&[0, 10, 1000])),
        9 => format!("ip proto {}", r.pick(&[1, 6, 17])),
        10 => format!("ip6 proto {}", r.pick(&[6, 17, 44, 58])),
        11 => format!(
            "{} {}",
            r.pick(&["less", "greater"]),
            r.pick(&[60, 100, 128])
        ),
        12 => r
            .pick(&["net 2001:db8::/64", "net fe80::/64", "ip6 net fe80::/16"])
            .to_string(),
        _ => format!("not {}", r.pick(&["tcp", "ip", "port 80"])),
    }
}

fn bpf_expr(r: &mut Rng, depth: u32) -> String {
    if depth == 0 || r.below(3) == 0 {
        return bpf_prim(r);
    }
    let a = bpf_expr(r, depth - 1);
    let b = bpf_expr(r, depth - 1);
    match r.below(3) {
        0 => format!("{a} and {b}"),
        1 => format!("({a}) or ({b})"),
        _ => format!("{a} or {b}"),
    }
}

fn appliance_block(r: &mut Rng) -> String {
    let a = r.pick(&V4);
    let op = r.pick(&["==", "==", "!="]);
    match r.below(10) {
        0 => format!("ipv4.proto {op} {}", r.pick(&["tcp", "udp", "icmp"])),
        1 => format!(
            "ipv4.addr {op} {}.{}.{}.{}/{}",
            a[0],
            a[1],
            a[2],
            a[3],
            r.pick(&[8, 16, 24, 32, 20])
        ),
        2 => format!("tcp.port {op} {}", r.pick(&PORTS)),
        3 => format!("udp.port.dst {op} {}-{}", 50, r.pick(&[60, 5000])),
        4 => format!(
            "frame.size {} {}",
            r.pick(&["<=", ">=", "<", ">", "=="]),
            r.pick(&[60, 90, 128])
        ),
        5 => format!("vlan.id {op} {}", r.pick(&[10, 300, 5])),
        6 => format!("mpls.label {op} {}", r.pick(&[29, 100])),
        7 => format!("tcp.flags {op} {}", r.pick(&["syn", "syn+ack", "rst"])),
        8 => format!(
            "ether.proto {op} {}",
            r.pick(&["ipv4", "ipv6", "arp", "vlan", "mpls"])
        ),
        _ => format!(
            "ipv6.addr {op} {}/64",
            std::net::Ipv6Addr::from(r.pick(&V6))
        ),
    }
}

fn appliance_filter(r: &mut Rng) -> String {
    let n = 1 + r.below(3) as usize;
    let defs: Vec<String> = (0..n)
        .map(|i| format!("b{i}: {}", appliance_block(r)))
        .collect();
    let mut e = "b0".to_string();
    for i in 1..n {
        e = format!(
            "{}({e}) {} {}b{i}",
            if r.below(4) == 0 { "!" } else { "" },
            r.pick(&["&", "|"]),
            if r.below(4) == 0 { "!" } else { "" }
        );
    }
    format!("{}; {e}", defs.join("; "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn may_match_is_never_false_when_a_packet_matches(seed in any::<u64>()) {
        let mut r = Rng(seed | 1);
        let pkts: Vec<(Vec<u8>, u32)> = (0..1 + r.below(12)).map(|_| packet(&mut r)).collect();
        let mut s = ChunkSummary::new();
        for (d, o) in &pkts {
            s.add(LinkType::ETHERNET, d, *o);
        }
        let s = ChunkSummary::from_bytes(&s.to_bytes()).expect("round trip");
        let opts = CompileOptions::new(Date::new(2024, 1, 1).expect("date"));
        for _ in 0..8 {
            let expr = bpf_expr(&mut r, 3);
            let f = Filter::bpf(&expr, LinkType::ETHERNET).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if pkts.iter().any(|(d, o)| f.matches(0, *o, d)) {
                prop_assert!(f.may_match(&s), "bpf `{}` matches but may_match is false\n{:?}", expr, s);
            }
            let text = appliance_filter(&mut r);
            let f = Filter::appliance(&text, LinkType::ETHERNET, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if pkts.iter().any(|(d, o)| f.matches(0, *o, d)) {
                prop_assert!(f.may_match(&s), "appliance `{}` matches but may_match is false\n{:?}", text, s);
            }
        }
    }
}

#[test]
fn may_match_prunes_what_it_can() {
    let mut s = ChunkSummary::new();
    let p = PacketBuilder::ethernet([0; 6], [1; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2])
        .tcp(1000, 80, 0x02)
        .build();
    s.add(LinkType::ETHERNET, &p, p.len() as u32);
    let opts = CompileOptions::new(Date::new(2024, 1, 1).expect("date"));
    for (expr, may) in [
        ("tcp port 80", true),
        ("udp port 80", false),
        ("host 10.0.0.1", true),
        ("host 10.9.9.9", false),
        ("net 10.0.0.0/8 and tcp", true),
        ("net 11.0.0.0/8 or udp", false),
        ("greater 1000", false),
        ("not tcp", true),
        ("vlan and udp", true),
    ] {
        let f = Filter::bpf(expr, LinkType::ETHERNET).expect("valid");
        assert_eq!(f.may_match(&s), may, "{expr}");
    }
    for (text, may) in [
        ("tcp.port == 80", true),
        ("tcp.port == 81", false),
        ("ipv4.addr == 10.0.0.0/8", true),
        ("ipv4.addr == 192.168.0.0/16", false),
        ("x: udp.port == 53; y: tcp.port == 80; x | y", true),
        ("x: udp.port == 53; y: tcp.port == 80; x & y", false),
        ("x: udp.port == 53; !x", true),
        ("vlan.id == 5", false),
        ("tcp.flags == rst", false),
        ("frame.size > 1000", false),
    ] {
        let f = Filter::appliance(text, LinkType::ETHERNET, &opts).expect("valid");
        assert_eq!(f.may_match(&s), may, "{text}");
    }
    assert!(
        !Filter::bpf("tcp", LinkType::ETHERNET)
            .expect("valid")
            .may_match(&ChunkSummary::new())
    );
}

/// The summary caches the addresses and ports it has inserted; the bits must be exactly
/// those of inserting every packet afresh (each packet in its own summary, then merged).
#[test]
fn cached_inserts_give_the_same_bits_as_inserting_every_packet() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    // Every capture of the corpus's oracle table: many hosts and ports per file, so the
    // small caches see collisions and evictions.
    let mut files: Vec<String> = common::tsv(&dir.join("bpf-oracle.tsv"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    files.sort();
    files.dedup();
    let mut checked = 0;
    for f in &files {
        let Ok((pkts, link)) = common::read_all(&dir.join(f)) else {
            continue;
        };
        let link = link.unwrap_or(LinkType::ETHERNET);
        let mut cached = ChunkSummary::new();
        let mut fresh = ChunkSummary::new();
        // Twice through: the second pass hits the caches for every key.
        for p in pkts.iter().chain(&pkts) {
            cached.add(link, &p.data, p.orig_len);
            let mut one = ChunkSummary::new();
            one.add(link, &p.data, p.orig_len);
            fresh.merge(&one);
        }
        assert_eq!(cached.to_bytes(), fresh.to_bytes(), "{f}");
        checked += pkts.len();
    }
    assert!(checked > 0, "no corpus packets read");
}
