//! A deterministic generator of realistic Ethernet traffic: IPv4 and IPv6; TCP, UDP and
//! ICMP; a few hundred flows; a mix of frame sizes; some 802.1Q-tagged flows; valid IP,
//! TCP, UDP and ICMP checksums. Pure: no clock, no I/O — the caller chooses the start time
//! and rate, and the same seed and configuration give the same bytes every time, so the
//! benchmark's big pcap files and the tests can be reproduced exactly.
//!
//! Addresses are from private ranges (10.0.0.0/8, fd00::/8) and MACs are locally
//! administered: the packets are never sent anywhere by this module.

use crate::frame::{Frame, NS_PER_SEC};
use wirecap_wire::{checksum, ethernet, ethertype, icmp, ip_protocol, ipv4, ipv6, tcp, udp};

/// Frame-size mix, in percent (the rest are uniform between 60 and 1514 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeMix {
    /// Percent of minimum-size (60-byte) frames.
    pub small: u8,
    /// Percent of 590-byte frames (576-byte IP packets).
    pub medium: u8,
    /// Percent of 1514-byte frames (full 1500-byte MTU).
    pub large: u8,
}

impl Default for SizeMix {
    /// Roughly IMIX: 50% small, 20% medium, 20% large, 10% anything.
    fn default() -> Self {
        Self {
            small: 50,
            medium: 20,
            large: 20,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Packets per second of the timestamps (they are `start_ns + i * 1e9 / pps`).
    pub pps: u64,
    /// Timestamp of the first packet, ns since the epoch.
    pub start_ns: u64,
    /// Number of distinct flows (5-tuples).
    pub flows: usize,
    /// Percent of flows over IPv6.
    pub ipv6_percent: u8,
    /// Percent of flows carried in an 802.1Q tag.
    pub vlan_percent: u8,
    /// Frame sizes.
    pub sizes: SizeMix,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            pps: 10_000,
            start_ns: 0,
            flows: 300,
            ipv6_percent: 30,
            vlan_percent: 10,
            sizes: SizeMix::default(),
        }
    }
}

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Debug, Clone)]
struct Flow {
    v6: bool,
    proto: Proto,
    vlan: Option<u16>,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src4: [u8; 4],
    dst4: [u8; 4],
    src6: [u8; 16],
    dst6: [u8; 16],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    ip_id: u16,
    icmp_seq: u16,
}

const ETH_LEN: usize = ethernet::HEADER_LEN;
const MIN_FRAME: usize = 60;
const MAX_FRAME: usize = 1514;

/// The traffic generator.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    config: SynthConfig,
    flows: Vec<Flow>,
    index: u64,
    buf: Vec<u8>,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64, config: SynthConfig) -> Self {
        let mut rng = Rng::new(seed);
        let n = config.flows.max(1);
        let flows = (0..n)
            .map(|i| {
                let v6 = rng.below(100) < u64::from(config.ipv6_percent);
                let proto = match rng.below(100) {
                    0..70 => Proto::Tcp,
                    70..95 => Proto::Udp,
                    _ => Proto::Icmp,
                };
                let vlan = (rng.below(100) < u64::from(config.vlan_percent))
                    .then(|| (rng.below(4094) + 1) as u16);
                let r = rng.next_u64().to_be_bytes();
                let mut src6 = [0u8; 16];
                let mut dst6 = [0u8; 16];
                src6[0] = 0xfd;
                dst6[0] = 0xfd;
                src6[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
                dst6[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
                let well_known = [80u16, 443, 53, 22, 8080, 5201, 123, 9000];
                Flow {
                    v6,
                    proto,
                    vlan,
                    src_mac: [0x02, 0x00, r[0], r[1], r[2], (i & 0xff) as u8],
                    dst_mac: [0x02, 0x01, r[3], r[4], r[5], 0x01],
                    src4: [10, r[6], r[7], 1 + (i % 250) as u8],
                    dst4: [10, 200, r[0] ^ r[7], 1 + (i % 200) as u8],
                    src6,
                    dst6,
                    sport: 1024 + rng.below(60000) as u16,
                    dport: well_known[rng.below(well_known.len() as u64) as usize],
                    seq: rng.next_u64() as u32,
                    ack: rng.next_u64() as u32,
                    ip_id: rng.next_u64() as u16,
                    icmp_seq: 0,
                }
            })
            .collect();
        Self {
            rng,
            config,
            flows,
            index: 0,
            buf: Vec::with_capacity(MAX_FRAME + 4),
        }
    }

    /// Packets generated so far.
    pub fn generated(&self) -> u64 {
        self.index
    }

    /// Timestamp of packet `i`.
    pub fn ts_of(&self, i: u64) -> u64 {
        let pps = u128::from(self.config.pps.max(1));
        let off = u128::from(i) * u128::from(NS_PER_SEC) / pps;
        self.config
            .start_ns
            .saturating_add(u64::try_from(off).unwrap_or(u64::MAX))
    }

    /// Timestamp the next packet will carry.
    pub fn next_ts(&self) -> u64 {
        self.ts_of(self.index)
    }

    /// Builds the next packet (borrowed until the next call).
    pub fn next_packet(&mut self) -> Frame<'_> {
        let ts_ns = self.ts_of(self.index);
        self.index += 1;
        let fi = self.rng.below(self.flows.len() as u64) as usize;
        let mix = self.config.sizes;
        let roll = self.rng.below(100) as u8;
        let target = if roll < mix.small {
            MIN_FRAME
        } else if roll < mix.small.saturating_add(mix.medium) {
            590
        } else if roll
            < mix
                .small
                .saturating_add(mix.medium)
                .saturating_add(mix.large)
        {
            MAX_FRAME
        } else {
            MIN_FRAME + self.rng.below((MAX_FRAME - MIN_FRAME + 1) as u64) as usize
        };
        let fill = self.rng.next_u64() as u8;
        let flow = &mut self.flows[fi];
        build_packet(&mut self.buf, flow, target, fill);
        Frame {
            ts_ns,
            orig_len: self.buf.len() as u32,
            data: &self.buf,
        }
    }
}

fn build_packet(buf: &mut Vec<u8>, f: &mut Flow, target: usize, fill: u8) {
    buf.clear();
    buf.extend_from_slice(&f.dst_mac);
    buf.extend_from_slice(&f.src_mac);
    if let Some(vid) = f.vlan {
        buf.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        buf.extend_from_slice(&vid.to_be_bytes());
    }
    let et = if f.v6 {
        ethertype::IPV6
    } else {
        ethertype::IPV4
    };
    buf.extend_from_slice(&et.to_be_bytes());
    let l2 = buf.len();
    let ip_hdr = if f.v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    };
    let l4_hdr = match f.proto {
        Proto::Tcp => tcp::MIN_HEADER_LEN,
        Proto::Udp => udp::HEADER_LEN,
        Proto::Icmp => icmp::HEADER_LEN,
    };
    let target = target + (l2 - ETH_LEN);
    let payload = target.saturating_sub(l2 + ip_hdr + l4_hdr);
    let l4_len = l4_hdr + payload;
    let ip_start = buf.len();
    if f.v6 {
        let nh = match f.proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 58,
        };
        buf.extend_from_slice(&[0x60, 0, 0, 0]);
        buf.extend_from_slice(&(l4_len as u16).to_be_bytes());
        buf.extend_from_slice(&[nh, 64]);
        buf.extend_from_slice(&f.src6);
        buf.extend_from_slice(&f.dst6);
    } else {
        let proto = match f.proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
        };
        f.ip_id = f.ip_id.wrapping_add(1);
        buf.extend_from_slice(&[0x45, 0]);
        buf.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        buf.extend_from_slice(&f.ip_id.to_be_bytes());
        buf.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
        buf.extend_from_slice(&f.src4);
        buf.extend_from_slice(&f.dst4);
        let hdr = ip_start..ip_start + ipv4::MIN_HEADER_LEN;
        let c = checksum::checksum(&buf[hdr]);
        let at = ip_start + ipv4::field::CHECKSUM.start;
        buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let l4 = buf.len();
    match f.proto {
        Proto::Tcp => {
            buf.extend_from_slice(&f.sport.to_be_bytes());
            buf.extend_from_slice(&f.dport.to_be_bytes());
            buf.extend_from_slice(&f.seq.to_be_bytes());
            buf.extend_from_slice(&f.ack.to_be_bytes());
            buf.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            f.seq = f.seq.wrapping_add(payload as u32);
        }
        Proto::Udp => {
            buf.extend_from_slice(&f.sport.to_be_bytes());
            buf.extend_from_slice(&f.dport.to_be_bytes());
            buf.extend_from_slice(&(l4_len as u16).to_be_bytes());
            buf.extend_from_slice(&[0, 0]);
        }
        Proto::Icmp => {
            f.icmp_seq = f.icmp_seq.wrapping_add(1);
            buf.extend_from_slice(&[if f.v6 { 128 } else { 8 }, 0, 0, 0]);
            buf.extend_from_slice(&f.sport.to_be_bytes());
            buf.extend_from_slice(&f.icmp_seq.to_be_bytes());
        }
    }
    for i in 0..payload {
        buf.push(fill.wrapping_add(i as u8));
    }
    // L4 checksum: TCP, UDP and ICMPv6 over the pseudo-header; ICMPv4 over itself.
    let (csum_at, pseudo) = match f.proto {
        Proto::Tcp => (l4 + tcp::field::CHECKSUM.start, true),
        Proto::Udp => (l4 + udp::field::CHECKSUM.start, true),
        Proto::Icmp => (l4 + icmp::field::CHECKSUM.start, f.v6),
    };
    let mut acc = 0;
    if pseudo {
        let proto = match f.proto {
            Proto::Tcp => ip_protocol::TCP,
            Proto::Udp => ip_protocol::UDP,
            Proto::Icmp => ip_protocol::ICMPV6,
        };
        // The addresses are where the pseudo-header wants them, back to back.
        let addrs = if f.v6 {
            ip_start + ipv6::field::SRC.start..ip_start + ipv6::field::DST.end
        } else {
            ip_start + ipv4::field::SRC.start..ip_start + ipv4::field::DST.end
        };
        acc = checksum::sum(0, &buf[addrs]) + u64::from(proto) + l4_len as u64;
    }
    let mut c = !checksum::fold(checksum::sum(acc, &buf[l4..]));
    if f.proto == Proto::Udp && c == 0 {
        c = 0xffff;
    }
    buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    // Ethernet padding for short IPv4 frames (the IP length says where the packet ends).
    while buf.len() < MIN_FRAME {
        buf.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent checksum verification: the sum over the covered bytes folds to 0.
    fn verify(frame: &[u8]) -> (bool, u8) {
        let mut at = 12;
        let mut et = u16::from_be_bytes([frame[at], frame[at + 1]]);
        if et == 0x8100 {
            at += 4;
            et = u16::from_be_bytes([frame[at], frame[at + 1]]);
        }
        let ip = at + 2;
        match et {
            0x0800 => {
                let ihl = usize::from(frame[ip] & 0xf) * 4;
                assert!(
                    checksum::verifies(0, &frame[ip..ip + ihl]),
                    "ipv4 header checksum"
                );
                let total = usize::from(u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]));
                let proto = frame[ip + 9];
                let l4 = &frame[ip + ihl..ip + total];
                let acc = if proto == 1 {
                    0
                } else {
                    checksum::sum(0, &frame[ip + 12..ip + 20]) + u64::from(proto) + l4.len() as u64
                };
                (checksum::verifies(acc, l4), proto)
            }
            0x86dd => {
                let plen = usize::from(u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]));
                let nh = frame[ip + 6];
                let l4 = &frame[ip + 40..ip + 40 + plen];
                assert_eq!(ip + 40 + plen, frame.len());
                let acc = checksum::sum(0, &frame[ip + 8..ip + 40]) + u64::from(nh) + plen as u64;
                (checksum::verifies(acc, l4), nh)
            }
            e => panic!("unexpected ethertype {e:#x}"),
        }
    }

    /// The generator's bytes are pinned: the same seed must give the same traffic in every
    /// version (benchmarks and tests reproduce files from it).
    #[test]
    fn output_is_pinned() {
        let mut g = Generator::new(
            11,
            SynthConfig {
                pps: 1000,
                start_ns: 5,
                ..Default::default()
            },
        );
        // FNV-1a over every frame's bytes.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for _ in 0..5_000 {
            let f = g.next_packet();
            for b in f.data.iter().chain(&f.ts_ns.to_le_bytes()) {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        assert_eq!(h, 0x895b_8ae4_b7f6_dac8);
    }

    #[test]
    fn checksums_are_valid_and_mix_is_realistic() {
        let mut g = Generator::new(
            7,
            SynthConfig {
                pps: 1000,
                start_ns: 5,
                ..Default::default()
            },
        );
        let mut protos = std::collections::BTreeMap::new();
        let mut sizes = std::collections::BTreeSet::new();
        let mut vlan = 0;
        let mut last_ts = 0;
        for i in 0..20_000u64 {
            let f = g.next_packet();
            assert_eq!(f.ts_ns, 5 + i * 1_000_000);
            assert!(f.ts_ns >= last_ts);
            last_ts = f.ts_ns;
            assert!(
                f.data.len() >= 60 && f.data.len() <= 1518,
                "{}",
                f.data.len()
            );
            assert_eq!(f.orig_len as usize, f.data.len());
            if f.data[12] == 0x81 {
                vlan += 1;
            }
            let (ok, proto) = verify(f.data);
            assert!(ok, "bad l4 checksum, packet {i}, proto {proto}");
            *protos.entry(proto).or_insert(0) += 1;
            sizes.insert(f.data.len());
        }
        for p in [1u8, 6, 17, 58] {
            assert!(protos.get(&p).copied().unwrap_or(0) > 100, "{protos:?}");
        }
        assert!(sizes.len() > 100);
        assert!(vlan > 500);
    }

    #[test]
    fn same_seed_same_bytes() {
        let c = SynthConfig::default();
        let mut a = Generator::new(42, c.clone());
        let mut b = Generator::new(42, c.clone());
        let mut d = Generator::new(43, c);
        let mut differ = false;
        for _ in 0..1000 {
            let x = a.next_packet().data.to_vec();
            assert_eq!(x, b.next_packet().data);
            differ |= x != d.next_packet().data;
        }
        assert!(differ);
    }
}
