//! Flows: the classifier the writers use to build the store's flow index
//! ([`wirecap_store::flows`]), the facts a filter's conservative test asks of one flow,
//! and the questions users ask of flows — list them ([`flows`], [`stream_flows`]) and
//! export one flow's packets ([`flow_export`]).
//!
//! # Exactness
//!
//! A packet is keyed into a flow only when every fact a filter's conservative test can
//! ask of it ([`wirecap_filter::summary::Facts`]: what the chunk summary would record —
//! its dissection and, on Ethernet, the bytes tcpdump's primitives read at fixed offsets)
//! follows from the flow's key and counters. Anything else (truncated or malformed
//! headers, IP fragments, IPv6 extension headers, more than one VLAN tag or MPLS label,
//! PPPoE) goes to its block's opaque fragment, which every filter may match. So the
//! fragments a filter may match hold every packet it matches: reading those and running
//! the filter on each gives exactly what a scan gives.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use wirecap_filter::dissect::{self, Dissected, Link, Network, Transport, ethertype, ipproto};
use wirecap_filter::summary::Facts;
use wirecap_pcap::LinkType;
use wirecap_store::flows::{F_EVICTED_EARLY, F_SRC_IS_B};
use wirecap_store::{
    FlowIndex, FlowKey, FlowKind, Fragment, PackedKey, PacketFlow, PacketRange, Store, StreamReader,
};

use crate::export::{Export, Format};
use crate::{Filter, FlowClassifier, Result};

/// Keys one packet (see the module doc); an opaque key when it cannot be keyed exactly.
/// This runs for every packet a writer stores: the key is packed straight from the
/// dissection (see [`PackedKey`]), with no intermediate [`FlowKey`].
#[inline]
pub fn classify(link: LinkType, data: &[u8], orig_len: u32, d: &Dissected) -> PacketFlow {
    let _ = link;
    match key_of(data, d) {
        Some((key, reverse, tcp_flags)) => PacketFlow {
            key,
            reverse,
            tcp_flags,
            orig_len,
        },
        None => PacketFlow {
            orig_len,
            ..PacketFlow::default()
        },
    }
}

/// The two endpoints in canonical order (the order of [`FlowKey::new`]: address bytes,
/// then port), each given as its address read big-endian (for the order) and its port;
/// and whether the packet goes from `b` to `a`.
#[inline(always)]
fn canonical<T: Ord + Copy>(src: (T, u16), dst: (T, u16)) -> ((T, u16), (T, u16), bool) {
    if dst < src {
        (dst, src, true)
    } else {
        (src, dst, false)
    }
}

#[inline(always)]
fn key_of(data: &[u8], d: &Dissected) -> Option<(PackedKey, bool, u8)> {
    if d.truncated || d.vlan_ids.len() > 1 || d.mpls_labels.len() > 1 {
        return None;
    }
    let chain = d.ethertypes.as_slice();
    let (mut tpid, mut vlan, mut mpls) = (0, 0, 0);
    let net = match chain {
        // Untagged: the common case, one check.
        [net] if d.vlan_ids.is_empty() && d.mpls_labels.is_empty() => *net,
        _ => {
            let mut i = 0;
            if let [v] = d.vlan_ids.as_slice() {
                tpid = *chain.first()?;
                if !matches!(
                    tpid,
                    ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD
                ) {
                    return None;
                }
                vlan = *v;
                i = 1;
            }
            if let [l] = d.mpls_labels.as_slice() {
                if !matches!(chain.get(i)?, &ethertype::MPLS | &ethertype::MPLS_MC) {
                    return None;
                }
                mpls = l + 1;
                i += 1;
            }
            if chain.len() != i + 1 {
                return None;
            }
            chain[i]
        }
    };
    let ports = |proto: u8| ports(proto, data, d);
    // Addresses are packed as the little-endian reading of the key's bytes.
    let key = |kind, proto, et, icmp, a: (u128, u16), b: (u128, u16)| {
        PackedKey::new(
            kind,
            proto,
            et,
            tpid,
            vlan,
            mpls,
            icmp,
            [a.0, b.0],
            [a.1, b.1],
        )
    };
    match d.network {
        Network::Ipv4(ip) if net == ethertype::IPV4 => {
            let (sp, dp, flags, icmp) = ports(ip.proto)?;
            // Address and port in one word: one comparison orders the endpoints.
            let ep = |a: std::net::Ipv4Addr, p: u16| u64::from(u32::from(a)) << 16 | u64::from(p);
            let (a, b, r) = canonical((ep(ip.src, sp), 0), (ep(ip.dst, dp), 0));
            let le = |(x, _): (u64, u16)| (u128::from(((x >> 16) as u32).swap_bytes()), x as u16);
            Some((
                key(FlowKind::Ipv4, ip.proto, net, icmp, le(a), le(b)),
                r,
                flags,
            ))
        }
        Network::Ipv6(ip) if net == ethertype::IPV6 => {
            // Extension headers: tcpdump's primitives read past them differently.
            if ip.proto != Some(ip.next_header) {
                return None;
            }
            let (sp, dp, flags, icmp) = ports(ip.next_header)?;
            let (a, b, r) = canonical((u128::from(ip.src), sp), (u128::from(ip.dst), dp));
            let le = |(x, p): (u128, u16)| (x.swap_bytes(), p);
            Some((
                key(FlowKind::Ipv6, ip.next_header, net, icmp, le(a), le(b)),
                r,
                flags,
            ))
        }
        Network::Ipv4(_) | Network::Ipv6(_) => None,
        // The IP EtherTypes without an IP header dissected: malformed.
        Network::None if net == ethertype::IPV4 || net == ethertype::IPV6 => None,
        Network::None | Network::Arp(_) => {
            // A MAC as the key's 16 bytes would read: big-endian for the order, shifted
            // into place (a missing one is zeros).
            let mac = |m: Option<dissect::wire::MacAddr>| {
                let mut b = [0u8; 8];
                if let Some(m) = m {
                    b[..6].copy_from_slice(&m.0);
                }
                (u64::from_be_bytes(b), 0u16)
            };
            let et = if net <= 1500 { 0 } else { net };
            let (a, b, r) = canonical(mac(d.eth_src), mac(d.eth_dst));
            let le = |(x, p): (u64, u16)| (u128::from(x.swap_bytes()), p);
            Some((key(FlowKind::Ether, 0, et, 0, le(a), le(b)), r, 0))
        }
    }
}

/// The transport part of a key: (source port, destination port, TCP flags, ICMP class).
#[inline(always)]
fn ports(proto: u8, data: &[u8], d: &Dissected) -> Option<(u16, u16, u8, u16)> {
    // (src port, dst port, tcp flags, icmp class)
    match (proto, d.transport) {
        (ipproto::TCP, Transport::Tcp { src, dst, flags }) => Some((src, dst, flags?, 0)),
        (ipproto::UDP, Transport::Udp { src, dst })
        | (ipproto::SCTP, Transport::Sctp { src, dst }) => Some((src, dst, 0, 0)),
        (ipproto::TCP | ipproto::UDP | ipproto::SCTP, _) => None,
        (ipproto::ICMP, Transport::Icmp { ty, .. })
        | (ipproto::ICMPV6, Transport::Icmpv6 { ty, .. }) => {
            let echo = matches!(ty, 0 | 8 | 128 | 129);
            let id = if echo {
                let at = d.transport_offset + 4;
                u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?])
            } else {
                0
            };
            let class = match ty {
                0 => 8,
                129 => 128,
                t => t,
            };
            Some((id, id, 0, 0x100 | u16::from(class)))
        }
        _ => Some((0, 0, 0, 0)),
    }
}

/// One flow fragment as a filter's conservative test sees it.
pub struct FragmentFacts<'a> {
    pub fragment: &'a Fragment,
    pub linktype: u16,
}

fn in_net(addr: IpAddr, prefix: u8, a: IpAddr) -> bool {
    match (addr, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(n) & m == u32::from(a) & m
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(n) & m == u128::from(a) & m
        }
        _ => false,
    }
}

impl Facts for FragmentFacts<'_> {
    fn is_empty(&self) -> bool {
        self.fragment.packet_count() == 0
    }
    fn linktype(&self) -> Option<u16> {
        Some(self.linktype)
    }
    fn may_have_len_in(&self, lo: u64, hi: u64) -> bool {
        let f = self.fragment;
        lo <= hi && lo <= u64::from(f.max_len) && hi >= u64::from(f.min_len)
    }
    fn may_have_ethertype(&self, t: u16) -> bool {
        let k = &self.fragment.key;
        if k.is_opaque() {
            return true;
        }
        (k.tpid != 0 && k.tpid == t)
            || (k.mpls != 0 && (t == ethertype::MPLS || t == ethertype::MPLS_MC))
            || k.ethertype == t
            || (k.ethertype == 0 && t <= 1500)
    }
    fn may_have_ipv4_proto(&self, p: u8) -> bool {
        let k = &self.fragment.key;
        k.is_opaque() || (k.kind == FlowKind::Ipv4 && k.proto == p)
    }
    fn may_have_ipv6_proto(&self, p: u8) -> bool {
        let k = &self.fragment.key;
        k.is_opaque() || (k.kind == FlowKind::Ipv6 && k.proto == p)
    }
    fn may_have_tcp_flags(&self, mask: u8) -> bool {
        let k = &self.fragment.key;
        k.is_opaque()
            || (matches!(k.kind, FlowKind::Ipv4 | FlowKind::Ipv6)
                && k.proto == ipproto::TCP
                && self.fragment.tcp_flags & mask == mask)
    }
    fn may_have_net(&self, addr: IpAddr, prefix: u8) -> bool {
        let k = &self.fragment.key;
        match k.kind {
            FlowKind::Opaque => true,
            // ARP and RARP carry IPv4 addresses the key does not hold.
            FlowKind::Ether => matches!(k.ethertype, ethertype::ARP | ethertype::RARP),
            FlowKind::Ipv4 | FlowKind::Ipv6 => (0..2)
                .filter_map(|i| k.ip(i))
                .any(|a| in_net(addr, prefix, a)),
        }
    }
    fn may_have_port(&self, proto: u8, port: u16) -> bool {
        let k = &self.fragment.key;
        k.is_opaque()
            || (matches!(k.kind, FlowKind::Ipv4 | FlowKind::Ipv6)
                && k.proto == proto
                && matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::SCTP)
                && (k.port[0] == port || k.port[1] == port))
    }
    fn may_have_vlan(&self, vid: u16) -> bool {
        let k = &self.fragment.key;
        k.is_opaque() || (k.tpid != 0 && k.vlan == vid)
    }
    fn may_have_mpls_label(&self, label: u32) -> bool {
        let k = &self.fragment.key;
        k.is_opaque() || (k.mpls != 0 && k.mpls - 1 == label)
    }
}

/// One flow as listed: stable field names (the JSON and CSV of the flows API).
///
/// `src` is the endpoint that sent the flow's first packet. Counters are the flow's
/// totals in the stream (every fragment of it), bytes are wire lengths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    /// The stream (stored name) that holds the flow.
    pub stream: String,
    /// The flow's id in its stream: the stream number of its first packet.
    pub id: u64,
    /// `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `igmp`, `gre`, `esp`, `ip:N` (another IP
    /// protocol), `arp`, `rarp`, `ether:0xNNNN` (another EtherType), `llc`, or `other`
    /// (packets not keyed into flows: malformed, fragments, deep tag stacks).
    pub proto: String,
    /// The IP protocol number, for IP flows.
    pub ip_proto: Option<u8>,
    /// The network-layer EtherType (0 for `other`).
    pub ethertype: u16,
    pub vlan: Option<u16>,
    pub mpls: Option<u32>,
    /// IP address, or MAC address for non-IP flows; empty for `other`.
    pub src_addr: String,
    pub dst_addr: String,
    /// TCP, UDP and SCTP ports.
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// ICMP / ICMPv6: type (echo replies count as requests) and, for echo, the id.
    pub icmp_type: Option<u8>,
    pub icmp_id: Option<u16>,
    pub first_ns: u64,
    pub last_ns: u64,
    pub src_packets: u64,
    pub dst_packets: u64,
    pub src_bytes: u64,
    pub dst_bytes: u64,
    pub packets: u64,
    pub bytes: u64,
    /// TCP flags of every packet OR'd.
    pub tcp_flags: u8,
    /// Closed before it ended because the writer's flow table was full: its later
    /// packets are listed as another flow.
    pub evicted_early: bool,
    /// The fragments of the flow (blocks of the index) behind this record.
    #[serde(skip)]
    pub fragments: Vec<usize>,
}

fn proto_name(k: &FlowKey) -> String {
    match k.kind {
        FlowKind::Opaque => "other".into(),
        FlowKind::Ether => match k.ethertype {
            0 => "llc".into(),
            ethertype::ARP => "arp".into(),
            ethertype::RARP => "rarp".into(),
            t => format!("ether:0x{t:04x}"),
        },
        FlowKind::Ipv4 | FlowKind::Ipv6 => match (k.kind, k.proto) {
            (_, 6) => "tcp".into(),
            (_, 17) => "udp".into(),
            (_, 132) => "sctp".into(),
            (FlowKind::Ipv4, 1) => "icmp".into(),
            (FlowKind::Ipv6, 58) => "icmp6".into(),
            (_, 2) => "igmp".into(),
            (_, 47) => "gre".into(),
            (_, 50) => "esp".into(),
            (_, p) => format!("ip:{p}"),
        },
    }
}

fn endpoint(k: &FlowKey, i: usize) -> String {
    match k.kind {
        FlowKind::Opaque => String::new(),
        FlowKind::Ether => {
            let a = &k.addr[i];
            format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                a[0], a[1], a[2], a[3], a[4], a[5]
            )
        }
        _ => k.ip(i).map(|a| a.to_string()).unwrap_or_default(),
    }
}

impl FlowRecord {
    /// Fragment `i` of a stream's index alone, as a record: one row of the archive's
    /// Parquet flows (`wirecap_archive::flows`), which a query sums per `id`.
    pub fn of_fragment(stream: &str, i: usize, f: &Fragment) -> Self {
        let mut r = Self::new(stream, f);
        r.add(i, f);
        r
    }

    fn new(stream: &str, f: &Fragment) -> Self {
        let k = &f.key;
        let (s, d) = if f.flags & F_SRC_IS_B != 0 {
            (1, 0)
        } else {
            (0, 1)
        };
        let ported =
            matches!(k.kind, FlowKind::Ipv4 | FlowKind::Ipv6) && matches!(k.proto, 6 | 17 | 132);
        let icmp = k.icmp != 0;
        Self {
            stream: stream.to_owned(),
            id: f.id,
            proto: proto_name(k),
            ip_proto: matches!(k.kind, FlowKind::Ipv4 | FlowKind::Ipv6).then_some(k.proto),
            ethertype: k.ethertype,
            vlan: (k.tpid != 0).then_some(k.vlan),
            mpls: (k.mpls != 0).then(|| k.mpls - 1),
            src_addr: endpoint(k, s),
            dst_addr: endpoint(k, d),
            src_port: ported.then_some(k.port[s]),
            dst_port: ported.then_some(k.port[d]),
            icmp_type: icmp.then_some((k.icmp & 0xff) as u8),
            icmp_id: (icmp && matches!(k.icmp & 0xff, 8 | 128)).then_some(k.port[0]),
            first_ns: f.first_ts,
            last_ns: f.last_ts,
            src_packets: 0,
            dst_packets: 0,
            src_bytes: 0,
            dst_bytes: 0,
            packets: 0,
            bytes: 0,
            tcp_flags: 0,
            evicted_early: false,
            fragments: Vec::new(),
        }
    }

    fn add(&mut self, i: usize, f: &Fragment) {
        let (s, d) = if f.flags & F_SRC_IS_B != 0 {
            (1, 0)
        } else {
            (0, 1)
        };
        self.first_ns = self.first_ns.min(f.first_ts);
        self.last_ns = self.last_ns.max(f.last_ts);
        self.src_packets += f.packets[s];
        self.dst_packets += f.packets[d];
        self.src_bytes += f.bytes[s];
        self.dst_bytes += f.bytes[d];
        self.packets = self.src_packets + self.dst_packets;
        self.bytes = self.src_bytes + self.dst_bytes;
        self.tcp_flags |= f.tcp_flags;
        self.evicted_early |= f.flags & F_EVICTED_EARLY != 0;
        self.fragments.push(i);
    }
}

/// A stream's flows, with the index they come from: `flows.idx` where it covers the
/// stream, completed by classifying the packets it does not cover (an older stream, a
/// crash's lost tail) in memory.
pub struct StreamFlows {
    pub reader: StreamReader,
    pub index: FlowIndex,
    /// Whether `flows.idx` was there (false: everything was classified now).
    pub stored: bool,
    /// Bytes of the stream's live records that `flows.idx` covered.
    pub covered_bytes: u64,
}

/// The stored flow index of `reader` (`None`: it has none). With a filter that lookups
/// narrow ([`crate::plan`]), only the fragments it may need are read from blocks with a
/// lookup table, and none of the blocks outside the logical byte range `within` (their
/// headers only); callers still test `may_match` on each fragment.
pub fn load_index(
    reader: &StreamReader,
    filter: Option<&Filter>,
    within: Option<(u64, u64)>,
) -> Result<Option<FlowIndex>> {
    let plan = filter
        .filter(|_| crate::export::lookup_tables_enabled())
        .and_then(|f| crate::plan::plan(f, reader.link_type().0));
    let (start, end) = within.unwrap_or((0, u64::MAX));
    Ok(match plan {
        Some(p) => FlowIndex::load_lookup(reader, &mut |t| {
            let b = t.block();
            if b.cover_end_pos <= start || b.cover_start_pos >= end {
                return Some(Vec::new());
            }
            p.select(t)
        })?,
        None => FlowIndex::load(reader)?,
    })
}

impl StreamFlows {
    /// Loads the flows of `range` of the stream behind `reader`.
    pub fn load(reader: &StreamReader, range: PacketRange) -> Result<Self> {
        Self::load_for(reader, range, None)
    }

    /// Loads the flows of `range` that `filter` may need: every flow without one (see
    /// [`load_index`]). Flows of the parts the index does not cover are all there.
    pub fn load_for(
        reader: &StreamReader,
        range: PacketRange,
        filter: Option<&Filter>,
    ) -> Result<Self> {
        let stored = load_index(reader, filter, None)?;
        let is_stored = stored.is_some();
        let mut index = stored.unwrap_or_default();
        let covered = index.covered();
        let mut covered_bytes = 0;
        // Uncovered gaps of the range, classified now.
        let mut at = range.start_pos;
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        for &(a, b) in &covered {
            let (a, b) = (a.max(range.start_pos), b.min(range.end_pos));
            if a >= b {
                continue;
            }
            covered_bytes += b - a;
            if a > at {
                gaps.push((at, a));
            }
            at = at.max(b);
        }
        if at < range.end_pos {
            gaps.push((at, range.end_pos));
        }
        for (a, b) in gaps {
            let r = PacketRange {
                first_packet: 0,
                end_packet: 0,
                start_pos: a,
                end_pos: b,
            };
            let more = FlowIndex::build(reader, r, &FlowClassifier)?;
            index.extend(more);
        }
        Ok(Self {
            reader: reader.clone(),
            index,
            stored: is_stored,
            covered_bytes,
        })
    }

    /// Whether fragment `i` may hold a packet `filter` matches.
    pub fn may_match(&self, i: usize, filter: &Filter) -> bool {
        filter.may_match_facts(&FragmentFacts {
            fragment: &self.index.fragments[i],
            linktype: self.reader.link_type().0,
        })
    }

    /// The flows overlapping `[start_ns, stop_ns)` that may hold a packet `filter`
    /// matches (every flow without a filter), in order of their first packet.
    pub fn records(&self, start_ns: u64, stop_ns: u64, filter: Option<&Filter>) -> Vec<FlowRecord> {
        let name = self.reader.name();
        let mut by_id: HashMap<(u64, bool), FlowRecord> = HashMap::new();
        let mut wanted: HashMap<(u64, bool), bool> = HashMap::new();
        for (i, f) in self.index.fragments.iter().enumerate() {
            let key = (f.id, f.key.is_opaque());
            let key = if f.key.is_opaque() {
                // Opaque fragments are not one flow: one record per block.
                (self.index.block_of[i] as u64, true)
            } else {
                key
            };
            by_id
                .entry(key)
                .or_insert_with(|| FlowRecord::new(name, f))
                .add(i, f);
            if filter.is_none_or(|flt| self.may_match(i, flt)) {
                wanted.insert(key, true);
            }
        }
        let mut out: Vec<FlowRecord> = by_id
            .into_iter()
            .filter(|(k, r)| {
                wanted.contains_key(k) && r.first_ns < stop_ns && r.last_ns >= start_ns
            })
            .map(|(_, r)| r)
            .collect();
        out.sort_by_key(|a| (a.first_ns, a.id));
        out
    }

    /// Sorted, distinct positions of the packets of fragments `frags` inside
    /// `[start_pos, end_pos)`.
    pub fn positions(&self, frags: &[usize], start_pos: u64, end_pos: u64) -> Vec<u64> {
        let mut v: Vec<u64> = frags
            .iter()
            .flat_map(|&i| self.index.positions(i))
            .filter(|p| (start_pos..end_pos).contains(p))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The flows of stream `reader` overlapping `[start_ns, stop_ns)` that may hold a packet
/// `filter` matches (see [`flows`]).
pub fn stream_flows(
    reader: &StreamReader,
    start_ns: u64,
    stop_ns: u64,
    filter: Option<&Filter>,
) -> Result<Vec<FlowRecord>> {
    // Flows that started before the range and go on into it are in blocks before it:
    // every block is read (fragments are small), the time test is on the whole flow.
    let sf = StreamFlows::load_for(reader, reader.full_range(), filter)?;
    Ok(sf.records(start_ns, stop_ns, filter))
}

/// **The flows API**: every flow of every stream of `store` whose first..last packet
/// span overlaps `[start_ns, stop_ns)` and that may hold a packet `filter` matches,
/// ordered by first packet (then stream and id).
///
/// * The filter (either language, [`crate::compile`]d for the streams' link type) is
///   tested per flow on the flow's facts: exact for tests of addresses, networks,
///   ports, IP protocols, EtherTypes, VLAN ids and MPLS labels (a flow is listed iff its
///   key satisfies them); for per-packet tests (TCP flags, lengths, byte tests) a flow
///   is listed when some packet of it *may* match. Tests the index cannot decide list
///   every flow.
/// * Streams written before the flow index (or a part a crash left unindexed) are
///   classified on the fly, so every stream answers; `wirecap reindex` makes that fast.
/// * Packets that cannot be keyed (malformed, IP fragments, deep tag stacks) are listed
///   as `proto: "other"` records, one per index block.
/// * A stream that cannot be read (damaged, deleted meanwhile) is skipped.
///
/// Export one flow's packets with [`flow_export`].
pub fn flows(
    store: &Store,
    start_ns: u64,
    stop_ns: u64,
    filter: Option<&Filter>,
) -> Result<Vec<FlowRecord>> {
    let mut out = Vec::new();
    for info in store.list()? {
        let (Some(first), Some(last)) = (info.first_ts, info.last_ts) else {
            continue;
        };
        if first >= stop_ns || last < start_ns {
            continue;
        }
        let Ok(r) = store.open_stream(&info.meta.name) else {
            continue;
        };
        out.extend(stream_flows(&r, start_ns, stop_ns, filter)?);
    }
    out.sort_by(|a, b| (a.first_ns, &a.stream, a.id).cmp(&(b.first_ns, &b.stream, b.id)));
    Ok(out)
}

/// The packets of flow `id` of stream `stream` as an [`Export`] (pcap or pcapng; use
/// [`Export::write_to`], [`Export::pieces`] or [`Export::reader`]), every chunk it reads
/// checked as for any export. `Ok(None)` when the stream has no such flow.
pub fn flow_export(store: &Store, stream: &str, id: u64, format: Format) -> Result<Option<Export>> {
    let r = store.open_stream(stream)?;
    // The block holding the flow's first packet (its id) names the flow's key; the key's
    // two hosts then narrow the other blocks through their lookup tables, so one flow of
    // millions reads its own fragments, not every record. Only for untagged IP flows:
    // `host A and host B` does not match tagged packets, and those are read whole.
    let first = FlowIndex::load_lookup(&r, &mut |t| {
        let b = t.block();
        // None: read this block whole; no fragment of the others.
        let holds_id = b.cover_first_packet <= id && id < b.cover_end_packet;
        (!holds_id).then(Vec::new)
    })?;
    let has_tables = r.dir().join(wirecap_store::layout::FLOWS_LUT).exists();
    let narrow = first
        .as_ref()
        .filter(|_| has_tables)
        .and_then(|ix| {
            ix.fragments
                .iter()
                .find(|f| f.id == id && !f.key.is_opaque())
        })
        .filter(|f| f.key.tpid == 0 && f.key.mpls == 0)
        .and_then(|f| Some((f.key.ip(0)?, f.key.ip(1)?)))
        .and_then(|(a, b)| {
            wirecap_filter::Filter::bpf(&format!("host {a} and host {b}"), r.link_type()).ok()
        })
        .map(Filter::new);
    let sf = StreamFlows::load_for(&r, r.full_range(), narrow.as_ref())?;
    let frags: Vec<usize> = sf
        .index
        .fragments
        .iter()
        .enumerate()
        .filter(|(_, f)| f.id == id && !f.key.is_opaque())
        .map(|(i, _)| i)
        .collect();
    if frags.is_empty() {
        return Ok(None);
    }
    let range = r.full_range();
    let positions = sf.positions(&frags, range.start_pos, range.end_pos);
    Ok(Some(Export::selected(r, range, format, positions)))
}

/// What [`check_index`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IndexCheck {
    /// Packets the stored index names (each exactly once, at a record start, in a flow
    /// whose key is the packet's own).
    pub packets_named: u64,
    /// Live packets of the stream.
    pub packets: u64,
    pub fragments: u64,
    /// Bytes of `flows.idx` and of the stream's records.
    pub index_bytes: u64,
    pub record_bytes: u64,
    /// What is wrong, one line each (empty: the index is sound).
    pub problems: Vec<String>,
}

/// Checks a stream's stored flow index against its packets: every position it names is
/// a packet of the snapshot, named once, whose own flow key is its fragment's, within
/// the fragment's time span; and every packet of a covered range is named.
pub fn check_index(reader: &StreamReader) -> Result<IndexCheck> {
    let mut c = IndexCheck {
        packets: reader.packets(),
        record_bytes: reader.record_bytes(),
        ..IndexCheck::default()
    };
    let Some(ix) = FlowIndex::load(reader)? else {
        return Ok(c);
    };
    c.fragments = ix.fragments.len() as u64;
    c.index_bytes = ix.file_bytes;
    let mut named: Vec<(u64, usize)> = (0..ix.fragments.len())
        .flat_map(|i| ix.positions(i).map(move |p| (p, i)))
        .collect();
    named.sort_unstable();
    c.packets_named = named.len() as u64;
    for w in named.windows(2) {
        if w[0].0 == w[1].0 {
            c.problems
                .push(format!("position {} is named twice", w[0].0));
        }
    }
    let lt = reader.link_type();
    let dl = Link::from_linktype(lt.0);
    let head = reader.head().pos;
    let covered: Vec<(u64, u64)> = ix.covered();
    let mut next = named.partition_point(|&(p, _)| p < head);
    let mut pos = head;
    for m in reader.mapped(reader.full_range()) {
        let (_, bytes) = m?;
        for p in wirecap_pcap::records(&bytes) {
            let here = pos;
            pos += (wirecap_pcap::PCAP_RECORD_HEADER_LEN + p.data.len()) as u64;
            let is_covered = covered.iter().any(|&(a, b)| (a..b).contains(&here));
            match named.get(next) {
                Some(&(q, i)) if q == here => {
                    next += 1;
                    let f = &ix.fragments[i];
                    let d = dissect::dissect(dl, p.data);
                    let k = classify(lt, p.data, p.orig_len, &d).key.unpack();
                    let ts = p.ts_ns();
                    if k != f.key {
                        c.problems.push(format!(
                            "the packet at {here} is in flow {} but its key is {k:?}, not {:?}",
                            f.id, f.key
                        ));
                    } else if ts < f.first_ts || ts > f.last_ts {
                        c.problems.push(format!(
                            "the packet at {here} is outside its fragment's time"
                        ));
                    }
                }
                Some(&(q, _)) if q < here => {
                    c.problems
                        .push(format!("position {q} is not the start of a packet"));
                    next = named.partition_point(|&(p, _)| p <= here);
                }
                _ if is_covered => c
                    .problems
                    .push(format!("the packet at {here} is covered but in no flow")),
                _ => {}
            }
        }
    }
    if let Some(&(q, _)) = named.get(next) {
        c.problems
            .push(format!("position {q} is past the stream's last packet"));
    }
    Ok(c)
}
