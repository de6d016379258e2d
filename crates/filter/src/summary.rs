//! Chunk summaries: a few hundred bytes that say what a chunk of packets *may* contain,
//! so a reader can skip chunks that cannot match a filter without reading them.
//!
//! A [`ChunkSummary`] is built with [`ChunkSummary::add`] over a chunk's packets and
//! stored beside it ([`ChunkSummary::to_bytes`], exactly [`SUMMARY_LEN`] bytes).
//! [`crate::Filter::may_match`] then answers "may some packet of this chunk match?". Every
//! structure only ever over-approximates (blooms have false positives, never false
//! negatives), so a `false` is a proof that nothing matches.
//!
//! What is recorded, per chunk:
//!
//! * the link type (a summary for another link type answers "may match");
//! * packet count, smallest and largest original length;
//! * a class bitset of every EtherType in the header chains;
//! * the IPv4 protocol numbers and IPv6 next-header values seen (256-bit sets each);
//! * the OR of all TCP flag bytes;
//! * blooms of IP addresses (with their /8, /16, /24 and /32, /48, /64 prefixes, so that
//!   CIDR tests can be answered), of (protocol, port) pairs, of VLAN ids and of MPLS
//!   labels.
//!
//! Besides what [`crate::dissect`] finds, `add` also records the bytes that tcpdump's
//! primitives read at fixed offsets of an untagged Ethernet frame (the IPv4 protocol
//! byte and addresses even when the header is malformed, ARP/RARP addresses, ports at
//! `4 * IHL`, IPv6 ports after one fragment header even in later fragments): BPF
//! programs read those bytes whatever they mean, and the summary must cover every
//! packet a BPF program can accept.
//!
//! The hash functions and the byte layout are part of the stored format (version 1).

use std::net::IpAddr;

use crate::dissect::{self, Dissected, Link, Network, Transport};

/// Bytes of a serialized summary.
pub const SUMMARY_LEN: usize = 480;

const VERSION: u8 = 1;
const ADDR_BYTES: usize = 256;
const PORT_BYTES: usize = 64;
const VLAN_BYTES: usize = 32;
const MPLS_BYTES: usize = 32;

/// A fixed-size, serializable summary of a chunk of packets.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSummary {
    linktype: Option<u16>,
    count: u32,
    min_len: u32,
    max_len: u32,
    ether_classes: u64,
    ipv4_protos: [u8; 32],
    ipv6_protos: [u8; 32],
    tcp_flags: u8,
    addrs: [u8; ADDR_BYTES],
    ports: [u8; PORT_BYTES],
    vlans: [u8; VLAN_BYTES],
    mpls: [u8; MPLS_BYTES],
    /// Keys already in the blooms, so that the packets of one flow do not hash the same
    /// addresses and ports again (a bloom insert is idempotent: skipping it changes no bit).
    seen: Seen,
}

/// Small direct-mapped caches of the addresses and ports a summary has inserted. Not part
/// of the summary's value: two summaries with the same bits are equal whatever they cached.
#[derive(Clone)]
struct Seen {
    /// IPv4 addresses (0 = empty: 0.0.0.0 is simply never cached).
    v4: [u32; 64],
    /// IPv6 addresses (0 = empty).
    v6: [u128; 16],
    /// `proto << 16 | port`, plus one (0 = empty).
    ports: [u32; 64],
}

impl Seen {
    const fn new() -> Self {
        Self {
            v4: [0; 64],
            v6: [0; 16],
            ports: [0; 64],
        }
    }

    /// Records `key` in `slots`; false if it was there already.
    fn first<T: Copy + PartialEq + Default>(slots: &mut [T], slot: usize, key: T) -> bool {
        if key == T::default() {
            return true;
        }
        let s = &mut slots[slot % slots.len()];
        if *s == key {
            return false;
        }
        *s = key;
        true
    }

    fn first_addr(&mut self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => {
                let k = u32::from(a);
                Self::first(
                    &mut self.v4,
                    (k.wrapping_mul(0x9e37_79b1) >> 26) as usize,
                    k,
                )
            }
            IpAddr::V6(a) => {
                let k = u128::from(a);
                let folded = (k as u64) ^ ((k >> 64) as u64);
                let slot = (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize;
                Self::first(&mut self.v6, slot, k)
            }
        }
    }

    fn first_port(&mut self, proto: u8, port: u16) -> bool {
        let k = (u32::from(proto) << 16 | u32::from(port)) + 1;
        Self::first(
            &mut self.ports,
            (k.wrapping_mul(0x9e37_79b1) >> 26) as usize,
            k,
        )
    }
}

impl PartialEq for Seen {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Seen {}

impl std::fmt::Debug for ChunkSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ones = |b: &[u8]| b.iter().map(|x| x.count_ones()).sum::<u32>();
        f.debug_struct("ChunkSummary")
            .field("linktype", &self.linktype)
            .field("count", &self.count)
            .field("len", &(self.min_len..=self.max_len))
            .field("ether_classes", &format_args!("{:#x}", self.ether_classes))
            .field("tcp_flags", &format_args!("{:#04x}", self.tcp_flags))
            .field("addr_bits", &ones(&self.addrs))
            .field("port_bits", &ones(&self.ports))
            .finish_non_exhaustive()
    }
}

impl Default for ChunkSummary {
    fn default() -> Self {
        Self::new()
    }
}

/// What a filter's conservative test ([`crate::Filter::may_match`]) asks of a set of
/// packets: a chunk's [`ChunkSummary`], or one flow of the store's flow index. Every
/// answer may be a false "yes", never a false "no": an implementation must answer `true`
/// whenever some packet of the set has the property, as [`ChunkSummary::add`] records it
/// (the dissection plus, on Ethernet, the bytes tcpdump's primitives read).
pub trait Facts {
    /// True when the set holds no packet (then nothing may match).
    fn is_empty(&self) -> bool;
    /// The `LINKTYPE_*` of the packets (0xffff: mixed), `None` when empty.
    fn linktype(&self) -> Option<u16>;
    /// May some packet have an original length in `lo..=hi`?
    fn may_have_len_in(&self, lo: u64, hi: u64) -> bool;
    /// May some packet's header chain hold EtherType `t`?
    fn may_have_ethertype(&self, t: u16) -> bool;
    /// May some IPv4 packet have protocol `p`?
    fn may_have_ipv4_proto(&self, p: u8) -> bool;
    /// May some IPv6 packet have `p` in its next-header chain?
    fn may_have_ipv6_proto(&self, p: u8) -> bool;
    /// May some TCP packet carry all the flags of `mask`?
    fn may_have_tcp_flags(&self, mask: u8) -> bool;
    /// May some packet have an address in `addr/prefix`?
    fn may_have_net(&self, addr: IpAddr, prefix: u8) -> bool;
    /// May some packet use `port` with IP protocol `proto`?
    fn may_have_port(&self, proto: u8, port: u16) -> bool;
    /// May some packet carry VLAN id `vid`?
    fn may_have_vlan(&self, vid: u16) -> bool;
    /// May some packet carry MPLS label `label`?
    fn may_have_mpls_label(&self, label: u32) -> bool;
}

impl Facts for ChunkSummary {
    fn is_empty(&self) -> bool {
        Self::is_empty(self)
    }
    fn linktype(&self) -> Option<u16> {
        Self::linktype(self)
    }
    fn may_have_len_in(&self, lo: u64, hi: u64) -> bool {
        Self::may_have_len_in(self, lo, hi)
    }
    fn may_have_ethertype(&self, t: u16) -> bool {
        Self::may_have_ethertype(self, t)
    }
    fn may_have_ipv4_proto(&self, p: u8) -> bool {
        Self::may_have_ipv4_proto(self, p)
    }
    fn may_have_ipv6_proto(&self, p: u8) -> bool {
        Self::may_have_ipv6_proto(self, p)
    }
    fn may_have_tcp_flags(&self, mask: u8) -> bool {
        Self::may_have_tcp_flags(self, mask)
    }
    fn may_have_net(&self, addr: IpAddr, prefix: u8) -> bool {
        Self::may_have_net(self, addr, prefix)
    }
    fn may_have_port(&self, proto: u8, port: u16) -> bool {
        Self::may_have_port(self, proto, port)
    }
    fn may_have_vlan(&self, vid: u16) -> bool {
        Self::may_have_vlan(self, vid)
    }
    fn may_have_mpls_label(&self, label: u32) -> bool {
        Self::may_have_mpls_label(self, label)
    }
}

/// A serialized summary could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// Wrong length.
    #[error("chunk summary is {0} bytes, expected {SUMMARY_LEN}")]
    Length(usize),
    /// Unknown format version.
    #[error("chunk summary version {0} is not supported (expected {VERSION})")]
    Version(u8),
}

// Key domains, so that equal numbers of different kinds do not share bloom bits.
const K_V4: u8 = 4;
const K_V6: u8 = 6;

fn mix(mut z: u64) -> u64 {
    // splitmix64 finalizer: fixed, so stored summaries stay readable.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash_bytes(tag: u8, bytes: &[u8]) -> u64 {
    let mut h = mix(u64::from(tag) ^ 0x9e37_79b9_7f4a_7c15);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    mix(h ^ bytes.len() as u64)
}

/// Bloom with k = 3 positions from double hashing.
fn bloom_set(bits: &mut [u8], h: u64) {
    let n = (bits.len() * 8) as u64;
    let (h1, h2) = (h, (h >> 32) | 1);
    for i in 0..3u64 {
        let b = h1.wrapping_add(i.wrapping_mul(h2)) % n;
        if let Some(byte) = bits.get_mut((b / 8) as usize) {
            *byte |= 1 << (b % 8);
        }
    }
}

fn bloom_has(bits: &[u8], h: u64) -> bool {
    let n = (bits.len() * 8) as u64;
    let (h1, h2) = (h, (h >> 32) | 1);
    (0..3u64).all(|i| {
        let b = h1.wrapping_add(i.wrapping_mul(h2)) % n;
        bits.get((b / 8) as usize)
            .is_some_and(|byte| byte & (1 << (b % 8)) != 0)
    })
}

fn set_bit(set: &mut [u8; 32], v: u8) {
    set[usize::from(v / 8)] |= 1 << (v % 8);
}

fn has_bit(set: &[u8; 32], v: u8) -> bool {
    set[usize::from(v / 8)] & (1 << (v % 8)) != 0
}

/// Class bit of an EtherType (well-known types get their own bit, others share).
fn ether_class(t: u16) -> u32 {
    match t {
        0x0800 => 0,
        0x86dd => 1,
        0x0806 => 2,
        0x8035 => 3,
        0x8100 => 4,
        0x88a8 => 5,
        0x9100 => 6,
        0x8847 => 7,
        0x8848 => 8,
        0x8863 => 9,
        0x8864 => 10,
        0x88cc => 11,
        0..=1500 => 12,
        other => 13 + u32::from(other) % 51,
    }
}

const V4_PREFIXES: [u8; 4] = [32, 24, 16, 8];
const V6_PREFIXES: [u8; 4] = [128, 64, 48, 32];

fn net_key(addr: IpAddr, prefix: u8) -> u64 {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let v = u32::from(a) & mask;
            let mut b = [0u8; 5];
            b[..4].copy_from_slice(&v.to_be_bytes());
            b[4] = prefix;
            hash_bytes(K_V4, &b)
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            let v = u128::from(a) & mask;
            let mut b = [0u8; 17];
            b[..16].copy_from_slice(&v.to_be_bytes());
            b[16] = prefix;
            hash_bytes(K_V6, &b)
        }
    }
}

fn port_key(proto: u8, port: u16) -> u64 {
    let [a, b] = port.to_be_bytes();
    hash_bytes(1, &[proto, a, b])
}

impl ChunkSummary {
    /// An empty summary (no packets: nothing may match).
    pub fn new() -> Self {
        Self {
            linktype: None,
            count: 0,
            min_len: u32::MAX,
            max_len: 0,
            ether_classes: 0,
            ipv4_protos: [0; 32],
            ipv6_protos: [0; 32],
            tcp_flags: 0,
            addrs: [0; ADDR_BYTES],
            ports: [0; PORT_BYTES],
            vlans: [0; VLAN_BYTES],
            mpls: [0; MPLS_BYTES],
            seen: Seen::new(),
        }
    }

    /// Adds one packet of `LINKTYPE_*` value `linktype`: `data` is the captured bytes,
    /// `orig_len` the wire length. A chunk mixing link types is marked so that every
    /// filter may match it.
    pub fn add(&mut self, linktype: wirecap_pcap::LinkType, data: &[u8], orig_len: u32) {
        let d = dissect::dissect(Link::from_linktype(linktype.0), data);
        self.add_dissected_packet(linktype, data, orig_len, &d);
    }

    /// [`add`](Self::add) for a packet already dissected (`d` must be
    /// `dissect::dissect(Link::from_linktype(linktype.0), data)`), so that a writer that
    /// needs the dissection for more than the summary walks the packet once.
    pub fn add_dissected_packet(
        &mut self,
        linktype: wirecap_pcap::LinkType,
        data: &[u8],
        orig_len: u32,
        d: &Dissected,
    ) {
        let lt = linktype.0;
        match self.linktype {
            None if self.count == 0 => self.linktype = Some(lt),
            Some(x) if x == lt => {}
            // Mixed link types: give up on link-specific pruning (0xffff is reserved).
            _ => self.linktype = Some(0xffff),
        }
        self.count = self.count.saturating_add(1);
        self.min_len = self.min_len.min(orig_len);
        self.max_len = self.max_len.max(orig_len);
        self.add_dissected(d);
        if Link::from_linktype(lt) == Link::Ethernet {
            self.add_bpf_offsets(data);
        }
    }

    fn add_addr(&mut self, a: IpAddr) {
        if !self.seen.first_addr(a) {
            return;
        }
        let prefixes = if a.is_ipv4() {
            V4_PREFIXES
        } else {
            V6_PREFIXES
        };
        for p in prefixes {
            bloom_set(&mut self.addrs, net_key(a, p));
        }
    }

    fn add_port(&mut self, proto: u8, port: u16) {
        if !self.seen.first_port(proto, port) {
            return;
        }
        bloom_set(&mut self.ports, port_key(proto, port));
    }

    fn add_dissected(&mut self, d: &Dissected) {
        for &t in d.ethertypes.as_slice() {
            self.ether_classes |= 1 << ether_class(t);
        }
        for &v in d.vlan_ids.as_slice() {
            bloom_set(&mut self.vlans, hash_bytes(2, &v.to_be_bytes()));
        }
        for &l in d.mpls_labels.as_slice() {
            bloom_set(&mut self.mpls, hash_bytes(3, &l.to_be_bytes()));
        }
        match d.network {
            Network::Ipv4(i) => {
                set_bit(&mut self.ipv4_protos, i.proto);
                self.add_addr(i.src.into());
                self.add_addr(i.dst.into());
            }
            Network::Ipv6(i) => {
                set_bit(&mut self.ipv6_protos, i.next_header);
                if let Some(p) = i.proto {
                    set_bit(&mut self.ipv6_protos, p);
                }
                self.add_addr(i.src.into());
                self.add_addr(i.dst.into());
            }
            Network::Arp(a) => {
                self.add_addr(a.spa.into());
                self.add_addr(a.tpa.into());
            }
            Network::None => {}
        }
        match d.transport {
            Transport::Tcp { src, dst, flags } => {
                self.add_port(6, src);
                self.add_port(6, dst);
                self.tcp_flags |= flags.unwrap_or(0);
            }
            Transport::Udp { src, dst } => {
                self.add_port(17, src);
                self.add_port(17, dst);
            }
            Transport::Sctp { src, dst } => {
                self.add_port(132, src);
                self.add_port(132, dst);
            }
            _ => {}
        }
    }

    /// Records what tcpdump's untagged-Ethernet primitives read, byte for byte.
    fn add_bpf_offsets(&mut self, data: &[u8]) {
        let be16 = |at: usize| {
            data.get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let v4 = |at: usize| -> Option<IpAddr> {
            data.get(at..at + 4)
                .map(|b| IpAddr::from([b[0], b[1], b[2], b[3]]))
        };
        let Some(et) = be16(12) else { return };
        self.ether_classes |= 1 << ether_class(et);
        match et {
            0x0800 => {
                let Some(&proto) = data.get(23) else { return };
                set_bit(&mut self.ipv4_protos, proto);
                for at in [26, 30] {
                    if let Some(a) = v4(at) {
                        self.add_addr(a);
                    }
                }
                // Ports sit at 4 * IHL after the IP header start, whatever the IHL says.
                if let Some(&vihl) = data.get(14) {
                    let off = 14 + 4 * usize::from(vihl & 0x0f);
                    self.add_bpf_ports(proto, data, off);
                }
            }
            0x86dd => {
                let Some(&nh) = data.get(20) else { return };
                set_bit(&mut self.ipv6_protos, nh);
                // libpcap compares IPv6 networks 32 bits at a time and loads only the
                // words the prefix needs: a capture that ends inside an address can
                // still match `net X/64`, so record the prefixes its captured words give.
                for at in [22, 38] {
                    let have = data.len().saturating_sub(at).min(16);
                    let mut a = [0u8; 16];
                    if let Some(b) = data.get(at..at + have) {
                        a[..have].copy_from_slice(b);
                    }
                    for p in V6_PREFIXES {
                        let words = usize::from(p).div_ceil(32);
                        if words * 4 <= have {
                            bloom_set(&mut self.addrs, net_key(IpAddr::from(a), p));
                        }
                    }
                }
                self.add_bpf_ports(nh, data, 54);
                if nh == 44
                    && let Some(&nh2) = data.get(54)
                {
                    set_bit(&mut self.ipv6_protos, nh2);
                    self.add_bpf_ports(nh2, data, 62);
                }
            }
            0x0806 | 0x8035 => {
                for at in [14 + 14, 14 + 24] {
                    if let Some(a) = v4(at) {
                        self.add_addr(a);
                    }
                }
            }
            _ => {}
        }
    }

    fn add_bpf_ports(&mut self, proto: u8, data: &[u8], off: usize) {
        if !matches!(proto, 6 | 17 | 132) {
            return;
        }
        for at in [off, off + 2] {
            if let Some(b) = data.get(at..at + 2) {
                self.add_port(proto, u16::from_be_bytes([b[0], b[1]]));
            }
        }
    }

    /// Folds another chunk's summary into this one (the union of both chunks).
    pub fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        self.linktype = match (self.linktype, other.linktype) {
            (None, x) => x,
            (Some(a), Some(b)) if a == b => Some(a),
            _ => Some(0xffff),
        };
        self.count = self.count.saturating_add(other.count);
        self.min_len = self.min_len.min(other.min_len);
        self.max_len = self.max_len.max(other.max_len);
        self.ether_classes |= other.ether_classes;
        self.tcp_flags |= other.tcp_flags;
        let or = |a: &mut [u8], b: &[u8]| a.iter_mut().zip(b).for_each(|(x, y)| *x |= y);
        or(&mut self.ipv4_protos, &other.ipv4_protos);
        or(&mut self.ipv6_protos, &other.ipv6_protos);
        or(&mut self.addrs, &other.addrs);
        or(&mut self.ports, &other.ports);
        or(&mut self.vlans, &other.vlans);
        or(&mut self.mpls, &other.mpls);
    }

    /// Number of packets added.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// True when no packet was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The chunk's `LINKTYPE_*` value (0xffff when it mixes link types), `None` if empty.
    pub fn linktype(&self) -> Option<u16> {
        self.linktype
    }

    /// Smallest and largest original length, `None` if empty.
    pub fn len_range(&self) -> Option<(u32, u32)> {
        (self.count > 0).then_some((self.min_len, self.max_len))
    }

    /// May some packet have an original length in `lo..=hi`?
    pub fn may_have_len_in(&self, lo: u64, hi: u64) -> bool {
        self.count > 0 && lo <= u64::from(self.max_len) && hi >= u64::from(self.min_len) && lo <= hi
    }

    /// May some packet's header chain hold EtherType `t`?
    pub fn may_have_ethertype(&self, t: u16) -> bool {
        self.ether_classes & (1 << ether_class(t)) != 0
    }

    /// May some IPv4 packet have protocol `p`?
    pub fn may_have_ipv4_proto(&self, p: u8) -> bool {
        has_bit(&self.ipv4_protos, p)
    }

    /// May some IPv6 packet have `p` in its next-header chain?
    pub fn may_have_ipv6_proto(&self, p: u8) -> bool {
        has_bit(&self.ipv6_protos, p)
    }

    /// May some TCP packet carry all the flags of `mask`?
    pub fn may_have_tcp_flags(&self, mask: u8) -> bool {
        self.tcp_flags & mask == mask && self.may_have_ipv4_proto(6) | self.may_have_ipv6_proto(6)
    }

    /// May some packet have an address in `addr/prefix`? Answered with the nearest
    /// recorded prefix at or above `prefix`; too short a prefix answers true.
    pub fn may_have_net(&self, addr: IpAddr, prefix: u8) -> bool {
        let prefixes = if addr.is_ipv4() {
            V4_PREFIXES
        } else {
            V6_PREFIXES
        };
        match prefixes.iter().find(|&&p| p <= prefix) {
            Some(&p) => bloom_has(&self.addrs, net_key(addr, p)),
            None => true,
        }
    }

    /// May some packet use `port` (as source or destination) with IP protocol `proto`?
    pub fn may_have_port(&self, proto: u8, port: u16) -> bool {
        bloom_has(&self.ports, port_key(proto, port))
    }

    /// May some packet carry VLAN id `vid` in its tag stack?
    pub fn may_have_vlan(&self, vid: u16) -> bool {
        bloom_has(&self.vlans, hash_bytes(2, &vid.to_be_bytes()))
    }

    /// May some packet carry MPLS label `label`?
    pub fn may_have_mpls_label(&self, label: u32) -> bool {
        bloom_has(&self.mpls, hash_bytes(3, &label.to_be_bytes()))
    }

    /// The stored form: exactly [`SUMMARY_LEN`] bytes, little-endian integers.
    pub fn to_bytes(&self) -> [u8; SUMMARY_LEN] {
        let mut out = [0u8; SUMMARY_LEN];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        w.put(&[VERSION, u8::from(self.linktype.is_some())]);
        w.put(&self.linktype.unwrap_or(0).to_le_bytes());
        w.put(&self.count.to_le_bytes());
        w.put(&self.min_len.to_le_bytes());
        w.put(&self.max_len.to_le_bytes());
        w.put(&self.ether_classes.to_le_bytes());
        w.put(&self.ipv4_protos);
        w.put(&self.ipv6_protos);
        w.put(&[self.tcp_flags]);
        w.put(&self.addrs);
        w.put(&self.ports);
        w.put(&self.vlans);
        w.put(&self.mpls);
        out
    }

    /// Reads the stored form.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SummaryError> {
        if b.len() != SUMMARY_LEN {
            return Err(SummaryError::Length(b.len()));
        }
        let mut r = Reader { buf: b, at: 0 };
        let [version, has_lt] = r.take::<2>();
        if version != VERSION {
            return Err(SummaryError::Version(version));
        }
        let lt = u16::from_le_bytes(r.take());
        Ok(Self {
            linktype: (has_lt != 0).then_some(lt),
            count: u32::from_le_bytes(r.take()),
            min_len: u32::from_le_bytes(r.take()),
            max_len: u32::from_le_bytes(r.take()),
            ether_classes: u64::from_le_bytes(r.take()),
            ipv4_protos: r.take(),
            ipv6_protos: r.take(),
            tcp_flags: r.take::<1>()[0],
            addrs: r.take(),
            ports: r.take(),
            vlans: r.take(),
            mpls: r.take(),
            seen: Seen::new(),
        })
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}
impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + b.len()) {
            dst.copy_from_slice(b);
        }
        self.at += b.len();
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}
impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buf.get(self.at..self.at + N) {
            out.copy_from_slice(src);
        }
        self.at += N;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::build::PacketBuilder;
    use wirecap_pcap::LinkType;

    #[test]
    fn layout_fits() {
        let used =
            2 + 2 + 4 + 4 + 4 + 8 + 32 + 32 + 1 + ADDR_BYTES + PORT_BYTES + VLAN_BYTES + MPLS_BYTES;
        assert!(used <= SUMMARY_LEN && SUMMARY_LEN <= 512, "{used}");
    }

    #[test]
    fn round_trip_and_queries() {
        let mut s = ChunkSummary::new();
        assert!(s.is_empty());
        let pkt = PacketBuilder::ethernet([2; 6], [4; 6])
            .vlan(0x8100, 300)
            .ipv4([10, 1, 2, 3], [192, 168, 1, 1])
            .tcp(1234, 80, 0x12)
            .build();
        s.add(LinkType::ETHERNET, &pkt, 1500);
        s.add(LinkType::ETHERNET, &pkt[..20], 60);
        assert_eq!(s.len_range(), Some((60, 1500)));
        assert!(s.may_have_port(6, 80));
        assert!(s.may_have_vlan(300));
        assert!(s.may_have_net("10.1.2.3".parse().expect("ip"), 32));
        assert!(s.may_have_net("10.1.2.0".parse().expect("ip"), 24));
        assert!(s.may_have_net("10.0.0.0".parse().expect("ip"), 8));
        assert!(s.may_have_net("10.1.0.0".parse().expect("ip"), 20));
        assert!(s.may_have_tcp_flags(0x02));
        assert!(!s.may_have_tcp_flags(0x04));
        assert!(s.may_have_ethertype(0x8100) && s.may_have_ethertype(0x0800));
        assert!(!s.may_have_ethertype(0x86dd));
        let b = s.to_bytes();
        let t = ChunkSummary::from_bytes(&b).expect("valid");
        assert_eq!(s, t);
        assert_eq!(
            ChunkSummary::from_bytes(&b[1..]),
            Err(SummaryError::Length(SUMMARY_LEN - 1))
        );
        let mut bad = b;
        bad[0] = 9;
        assert_eq!(
            ChunkSummary::from_bytes(&bad),
            Err(SummaryError::Version(9))
        );
        let mut m = ChunkSummary::new();
        m.merge(&s);
        assert_eq!(m, s);
        m.add(LinkType::RAW, &[0x45; 20], 20);
        assert_eq!(m.linktype(), Some(0xffff));
    }
}
