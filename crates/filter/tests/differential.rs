//! Differential test: random packets and random appliance filters, compared with
//! tcpdump.
//!
//! Packets are built with the dissect emitters from random choices (VLAN tags, MPLS,
//! IPv4 with options or as later fragments, IPv6, ARP, TCP/UDP/ICMP, ports and
//! addresses from small pools so that filters hit, snap-length cuts in the payload). Filters are random
//! blocks combined with `!`, `&`, `|`. Each block has a tcpdump translation that is
//! exact *for one layout* (k VLAN tags, j MPLS labels), so packets are grouped by the
//! layout they were built with, each group written to its own pcap, and the filter is
//! translated as `vlan and ... and (EXPR)` for that group (inside the prefix no keyword
//! shifts offsets, so boolean combinations translate one to one). The appliance's
//! count on each group must equal `tcpdump --count`'s.
//!
//! Bounded: a fixed number of rounds (a few seconds). `WIRECAP_DIFF_SEED` picks another
//! seed, `WIRECAP_DIFF_ROUNDS` more rounds.

mod common;

use std::collections::BTreeMap;

use common::Pkt;
use wirecap_filter::dissect::build::PacketBuilder;
use wirecap_filter::{CompileOptions, Date, Filter, LinkType};

const G4: &str = "ip[0] & 0xf0 == 0x40 and ip[19] != 256";
const G6: &str = "ip6[0] & 0xf0 == 0x60 and ip6[39] != 256";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const PORTS: [u16; 7] = [53, 80, 443, 1000, 1500, 3000, 65535];
const V4: [[u8; 4]; 5] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [192, 168, 1, 7],
    [192, 168, 2, 7],
    [172, 16, 5, 5],
];
const V6: [[u8; 16]; 3] = [
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
    [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
];

/// (vlan tags, mpls labels): the layout a packet was built with.
type Layout = (usize, usize);

fn random_packet(r: &mut Rng) -> (Layout, Pkt) {
    let vlans = r.below(3) as usize;
    let mpls = if r.chance(20) {
        1 + r.below(2) as usize
    } else {
        0
    };
    let mut b =
        PacketBuilder::ethernet([0, 0xba, 0xbe, 1, 2, 3], [2, 0, 0, 0, 0, r.below(4) as u8]);
    for _ in 0..vlans {
        b = b.vlan(r.pick(&[0x8100, 0x88a8, 0x9100]), r.pick(&[1, 10, 1234]));
    }
    for _ in 0..mpls {
        b = b.mpls(r.pick(&[29, 100]));
    }
    let mut payload = 0usize;
    let net = if mpls > 0 { r.below(2) } else { r.below(3) };
    b = match net {
        0 => {
            let (src, dst) = (r.pick(&V4), r.pick(&V4));
            if r.chance(15) {
                b.ipv4_full(
                    src,
                    dst,
                    r.below(3) as u8,
                    if r.chance(50) {
                        0
                    } else {
                        1 + r.below(100) as u16
                    },
                    r.chance(50),
                )
            } else {
                b.ipv4(src, dst)
            }
        }
        1 => b.ipv6(r.pick(&V6), r.pick(&V6)),
        _ => b.arp(1, r.pick(&V4), r.pick(&V4), false),
    };
    if net < 2 {
        b = match r.below(4) {
            0 | 1 => b.tcp(r.pick(&PORTS), r.pick(&PORTS), r.below(256) as u8),
            2 => b.udp(r.pick(&PORTS), r.pick(&PORTS)),
            _ if net == 0 => b.icmp(r.pick(&[0, 8, 3]), 0),
            _ => b.icmpv6(128, 0),
        };
        payload = r.below(200) as usize;
        b = b.payload(&vec![0x5a; payload]);
    }
    let data = b.build();
    let orig_len = data.len() as u32;
    // Snap-length cuts inside the payload only: in BPF a load past the captured bytes
    // rejects the packet whatever the rest of the expression says, so a translation
    // of `a | b` is exact only when the headers the blocks read were captured. Cuts
    // through headers are covered per block by tests/manual.rs and the oracle.
    let headers = data.len() - payload;
    let keep = if r.chance(30) {
        headers + r.below(payload as u64 + 1) as usize
    } else {
        data.len()
    };
    let pkt = Pkt {
        ts_ns: 0,
        orig_len,
        data: data[..keep].to_vec(),
    };
    ((vlans, mpls), pkt)
}

/// A random block and its tcpdump translation (exact within one layout).
fn random_block(r: &mut Rng) -> (String, String) {
    let ne = r.chance(25);
    let op = if ne { "!=" } else { "==" };
    let neg = |x: String| if ne { format!("not ({x})") } else { x };
    match r.below(8) {
        0 => {
            let (name, n) = r.pick(&[("tcp", 6), ("udp", 17), ("icmp", 1), ("igmp", 2)]);
            (
                format!("ipv4.proto {op} {name}"),
                format!("(ip and {G4} and {})", neg(format!("ip proto {n}"))),
            )
        }
        1 => {
            let a = r.pick(&V4);
            let len = r.pick(&[8u8, 16, 24, 32]);
            let (f, d) = r.pick(&[
                ("ipv4.addr", ""),
                ("ipv4.addr.src", "src "),
                ("ipv4.addr.dst", "dst "),
            ]);
            let net = format!("{}.{}.{}.{}/{len}", a[0], a[1], a[2], a[3]);
            let masked = {
                let v = u32::from_be_bytes(a) & (u32::MAX << (32 - u32::from(len)));
                let b = v.to_be_bytes();
                format!("{}.{}.{}.{}/{len}", b[0], b[1], b[2], b[3])
            };
            (
                format!("{f} {op} {net}"),
                format!("(ip and {G4} and {})", neg(format!("ip {d}net {masked}"))),
            )
        }
        2 | 3 => {
            let (proto, n) = r.pick(&[("tcp", 6u8), ("udp", 17)]);
            let lo = r.pick(&PORTS);
            let hi = if r.chance(30) {
                r.pick(&PORTS).max(lo)
            } else {
                lo
            };
            let (f, d) = r.pick(&[("port", ""), ("port.src", "src "), ("port.dst", "dst ")]);
            let value = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo}-{hi}")
            };
            let test = neg(format!("{proto} {d}portrange {lo}-{hi}"));
            let v4 = format!(
                "(ip and {G4} and ip[0] & 0xf >= 5 and ip proto {n} and ip[6:2] & 0x1fff == 0 and {proto}[3] != 256 and {test})"
            );
            let v6 = format!("(ip6 and {G6} and ip6[6] == {n} and ip6[43] != 256 and {test})");
            (
                format!("{proto}.{f} {op} {value}"),
                format!("({v4} or {v6})"),
            )
        }
        4 => {
            let (o, t) = r.pick(&[
                ("<=", "<="),
                (">=", ">="),
                ("<", "<"),
                (">", ">"),
                ("==", "=="),
                ("!=", "!="),
            ]);
            let n = r.pick(&[60u32, 64, 100, 128, 200]);
            (format!("frame.size {o} {n}"), format!("len {t} {n}"))
        }
        5 => {
            let (name, m) = r.pick(&[
                ("syn", 0x02u8),
                ("ack", 0x10),
                ("syn+ack", 0x12),
                ("fin", 0x01),
                ("rst+psh", 0x0c),
            ]);
            let v4 = format!(
                "(ip and {G4} and ip[0] & 0xf >= 5 and ip proto 6 and ip[6:2] & 0x1fff == 0 and tcp[19] != 256 and {})",
                neg(format!("tcp[13] & {m} == {m}"))
            );
            let v6 = format!(
                "(ip6 and {G6} and ip6[6] == 6 and ip6[59] != 256 and {})",
                neg(format!("ip6[53] & {m} == {m}"))
            );
            (format!("tcp.flags {op} {name}"), format!("({v4} or {v6})"))
        }
        6 => {
            // `arp` cannot follow `mpls` in tcpdump: `{ARP}` is replaced per layout.
            let (name, prim) = r.pick(&[("ipv4", "ip"), ("ipv6", "ip6"), ("arp", "{ARP}")]);
            (format!("ether.proto {op} {name}"), neg(prim.to_string()))
        }
        _ => {
            let a = r.pick(&V6);
            let len = r.pick(&[16u8, 64, 128]);
            let addr = std::net::Ipv6Addr::from(a);
            let masked =
                std::net::Ipv6Addr::from(u128::from(addr) & (u128::MAX << (128 - u32::from(len))));
            let (f, d) = r.pick(&[
                ("ipv6.addr", ""),
                ("ipv6.addr.src", "src "),
                ("ipv6.addr.dst", "dst "),
            ]);
            (
                format!("{f} {op} {addr}/{len}"),
                format!(
                    "(ip6 and {G6} and {})",
                    neg(format!("ip6 {d}net {masked}/{len}"))
                ),
            )
        }
    }
}

/// A random expression over `n` block names: (appliance text, tcpdump text).
fn random_expr(r: &mut Rng, blocks: &[(String, String)], depth: u32) -> (String, String) {
    if depth == 0 || r.chance(35) {
        let i = r.below(blocks.len() as u64) as usize;
        return (format!("b{i}"), blocks[i].1.clone());
    }
    match r.below(3) {
        0 => {
            let (a, t) = random_expr(r, blocks, depth - 1);
            (format!("!({a})"), format!("not ({t})"))
        }
        k => {
            let (a1, t1) = random_expr(r, blocks, depth - 1);
            let (a2, t2) = random_expr(r, blocks, depth - 1);
            let (ao, to) = if k == 1 {
                (r.pick(&["&", "&&", "and"]), "and")
            } else {
                (r.pick(&["|", "||", "or"]), "or")
            };
            (format!("({a1}) {ao} ({a2})"), format!("({t1}) {to} ({t2})"))
        }
    }
}

fn prefix(l: Layout, x: &str) -> String {
    // No ARP under MPLS: false there, with a load that always succeeds.
    let x = &x.replace(
        "{ARP}",
        if l.1 > 0 {
            "(ether[0] == 0 and ether[0] != 0)"
        } else {
            "arp"
        },
    );
    let mut parts: Vec<&str> = vec!["vlan"; l.0];
    parts.extend(std::iter::repeat_n("mpls", l.1));
    if parts.is_empty() {
        x.to_owned()
    } else {
        format!("{} and ({x})", parts.join(" and "))
    }
}

#[test]
fn random_filters_on_random_packets_agree_with_tcpdump() {
    if !common::have_tool("tcpdump") {
        return;
    }
    let seed: u64 = std::env::var("WIRECAP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let rounds: usize = std::env::var("WIRECAP_DIFF_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    println!("seed {seed}, {rounds} rounds");
    let mut r = Rng(seed | 1);
    let tmp = tempfile::tempdir().expect("tempdir");
    // One packet set, grouped by layout, one pcap per layout.
    let mut groups: BTreeMap<Layout, Vec<Pkt>> = BTreeMap::new();
    for _ in 0..600 {
        let (l, p) = random_packet(&mut r);
        groups.entry(l).or_default().push(p);
    }
    let files: BTreeMap<Layout, std::path::PathBuf> = groups
        .iter()
        .map(|(l, pkts)| {
            let path = tmp.path().join(format!("v{}m{}.pcap", l.0, l.1));
            common::write_pcap(&path, LinkType::ETHERNET, pkts);
            (*l, path)
        })
        .collect();
    let opts = CompileOptions::new(Date::new(2024, 1, 1).expect("date"));
    let (mut runs, mut matched) = (0, 0u64);
    for round in 0..rounds {
        let n = 1 + r.below(4) as usize;
        let blocks: Vec<(String, String)> = (0..n).map(|_| random_block(&mut r)).collect();
        let (expr, tcpdump) = random_expr(&mut r, &blocks, 3);
        let defs: Vec<String> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| format!("b{i}: {}", b.0))
            .collect();
        let text = format!("{}; {expr}", defs.join("; "));
        let f =
            Filter::appliance(&text, LinkType::ETHERNET, &opts).unwrap_or_else(|e| panic!("{e}"));
        for (l, pkts) in &groups {
            let got = pkts
                .iter()
                .filter(|p| f.matches(p.ts_ns, p.orig_len, &p.data))
                .count() as u64;
            let want = common::tcpdump_count(&files[l], &prefix(*l, &tcpdump));
            runs += 1;
            matched += got;
            assert_eq!(
                got,
                want,
                "round {round}, layout {l:?}\nappliance: {text}\ntcpdump: {}",
                prefix(*l, &tcpdump)
            );
        }
    }
    println!("{runs} tcpdump runs agree ({matched} matches in all)");
}
