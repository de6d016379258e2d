//! The forwarder's decisions, as a pure function of frames and time: what to answer, what
//! to send where, what to drop and why, and what a capture records.
//!
//! ```text
//!  receive(frame) ─► ARP/NDP? ── request (NS) for the capture IP ─► reply (NA) ─► Transmit
//!        │                   └─ from a peer ─► neighbour cache ─► release queued packets
//!        ├─ ICMP error quoting a packet sent to B ─► to A, the quote rewritten (PMTUD)
//!        └─ IPv4/IPv6 to the capture IP from peer A ─► route (table) ─► B's MAC known?
//!                 │ no: drop + reason                 yes ─► rewrite into a TX slot ─► Transmit
//!                 │                                   no  ─► queue (bounded), ARP for B
//!                 └─ records for the capture mode ─► Recorder
//!  poll(now) ─► ARP requests / NS due (resolve, refresh), queued packets that waited too long
//! ```
//!
//! Fragments are forwarded one by one, never reassembled ([`crate::rewrite`] says how
//! their checksums stay right).
//!
//! Sockets, rings and clocks are the caller's ([`crate::afpacket`] in production, plain
//! vectors in tests): [`Transmit`] hands out room for one outgoing frame, [`Recorder`]
//! takes the frames a capture keeps.

use crate::checksum;
use crate::neighbour::{NeighbourConfig, Neighbours, Solicit};
use crate::rewrite::{self, Rewrite};
use crate::segment;
use crate::table::{Direction, ForwardTable, Inline};
use crate::wire::{
    self, ARP_FRAME_LEN, Arp, ArpOp, BROADCAST, ETH_HEADER_LEN, Ethernet, IcmpError, IcmpErrorKind,
    Ipv4, Ipv6, Mac, NDP_FRAME_LEN, Ndp, NdpKind, NdpMessage, VlanTags, ethertype, icmpv4, icmpv6,
    ndp,
};
use std::net::IpAddr;

/// What a capture records of each forwarded packet (the manual's "Capture Options").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// The packet exactly as received (its destination is the capture IP).
    Ingress,
    /// The packet exactly as sent (its source is the capture IP).
    Egress,
    /// The packet as if there were no appliance: A -> B and B -> A, valid checksums.
    #[default]
    Inline,
    /// Ingress and egress, one record each.
    Both,
}

impl CaptureMode {
    /// Every mode, in the order of [`Self::as_str`]'s documentation.
    pub const ALL: [Self; 4] = [Self::Ingress, Self::Egress, Self::Inline, Self::Both];

    /// `ingress`, `egress`, `inline` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
            Self::Inline => "inline",
            Self::Both => "both",
        }
    }
}

impl std::str::FromStr for CaptureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("capture mode {s:?} is not one of ingress, egress, inline, both")
            })
    }
}

impl std::fmt::Display for CaptureMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a received frame was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Neither ARP nor IP of the capture address's family (IPv6 to an IPv4 capture
    /// address, LLDP, a frame whose VLAN tag the kernel took off, …).
    NonIpv4,
    /// A header too short, the wrong version, lengths that do not add up, a bad IPv4
    /// header checksum, or an ARP packet that is not Ethernet/IPv4.
    BadHeader,
    /// IPv4 not addressed to the capture IP (or not to our MAC).
    NotForUs,
    /// From an address that is in no pair of the table.
    UnknownPeer,
    /// TTL 1 or 0: it may make no further hop.
    TtlExpired,
    /// Larger than the MTU and not TCP (TCP super-packets are segmented and sent).
    Oversize,
    /// Cut short by the ring's snap length.
    Truncated,
    /// The next hop did not answer ARP in time.
    Unresolved,
    /// The queue of packets waiting for ARP was full.
    ArpQueueFull,
    /// No room in the TX ring.
    TxFull,
    /// Tagged with a VLAN other than its peer's (or tagged for an untagged pair, or the
    /// other way round).
    WrongVlan,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 11] = [
        Self::NonIpv4,
        Self::BadHeader,
        Self::NotForUs,
        Self::UnknownPeer,
        Self::TtlExpired,
        Self::Oversize,
        Self::Truncated,
        Self::Unresolved,
        Self::ArpQueueFull,
        Self::TxFull,
        Self::WrongVlan,
    ];

    /// The counter's name (`unknown_peer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NonIpv4 => "non_ipv4",
            Self::BadHeader => "bad_header",
            Self::NotForUs => "not_for_us",
            Self::UnknownPeer => "unknown_peer",
            Self::TtlExpired => "ttl_expired",
            Self::Oversize => "oversize",
            Self::Truncated => "truncated",
            Self::Unresolved => "unresolved",
            Self::ArpQueueFull => "arp_queue_full",
            Self::TxFull => "tx_full",
            Self::WrongVlan => "wrong_vlan",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Cumulative counters of one forwarder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets forwarded from a pair's `a` to its `b`.
    pub a_to_b_packets: u64,
    /// Bytes (frames as sent) forwarded from `a` to `b`.
    pub a_to_b_bytes: u64,
    /// Packets forwarded from `b` to `a`.
    pub b_to_a_packets: u64,
    /// Bytes forwarded from `b` to `a`.
    pub b_to_a_bytes: u64,
    /// Drops, indexed like [`DropReason::ALL`].
    pub drops: [u64; DropReason::ALL.len()],
    /// ARP requests (IPv6: neighbour solicitations) for the capture IP answered.
    pub arp_answered: u64,
    /// ARP requests (IPv6: neighbour solicitations) sent to resolve or refresh peers.
    pub arp_requests_sent: u64,
    /// ARP answers (IPv6: solicited advertisements) from peers learnt.
    pub arp_resolved: u64,
    /// TCP/UDP checksums completed (received partial, from checksum offload).
    pub checksums_completed: u64,
    /// TCP super-packets (GSO/GRO, larger than the MTU) cut into segments here.
    pub super_packets_segmented: u64,
    /// TCP super-packets sent on whole, for the kernel to segment (GSO pass-through).
    pub super_packets_passed: u64,
    /// ICMP errors this hop sent itself (time exceeded; fragmentation needed / packet too
    /// big), within [`ICMP_ERRORS_PER_SEC`].
    pub icmp_errors_sent: u64,
}

/// ICMP errors the forwarder sends at most per second, and in one burst: a flood of
/// expiring packets must not make the appliance an amplifier (Linux limits its own to
/// one per millisecond, `icmp_ratelimit`).
pub const ICMP_ERRORS_PER_SEC: u64 = 1000;
const ICMP_ERRORS_BURST: u64 = 50;

impl Stats {
    /// Drops for one reason.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r.index()]
    }
    /// Drops, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }
    /// Packets forwarded, both directions.
    pub fn forwarded(&self) -> u64 {
        self.a_to_b_packets + self.b_to_a_packets
    }
}

/// Room for outgoing frames (a TX ring, a vector in tests).
pub trait Transmit {
    /// Asks for room for one frame of `len` bytes; when there is some, `fill` writes the
    /// frame into it and the frame is sent. False when there is no room.
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool;
    /// Sends one TCP super-packet of `len` bytes for the kernel to segment by `gso` (a
    /// `virtio_net_hdr`), after every frame transmitted before it. False when this path
    /// cannot (the forwarder then segments the packet itself).
    fn transmit_gso(&mut self, gso: &Gso, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let _ = (gso, len, fill);
        false
    }
}

/// The segmentation offload facts of a received super-packet (its `virtio_net_hdr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    /// The header as the kernel wrote it (10 bytes, host byte order).
    pub vnet_hdr: [u8; 10],
    /// Segment payload size.
    pub gso_size: u16,
}

/// Where a capture's records go.
pub trait Recorder {
    /// Whether a capture is recording (records are not built otherwise).
    fn active(&self) -> bool;
    /// One record: `frame` at `ts_ns`.
    fn record(&mut self, ts_ns: u64, frame: &[u8]);
}

/// A recorder that never records.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecorder;

impl Recorder for NoRecorder {
    fn active(&self) -> bool {
        false
    }
    fn record(&mut self, _: u64, _: &[u8]) {}
}

/// A received frame as the ring gives it.
#[derive(Debug)]
pub struct Received<'a> {
    /// Receive time, ns since the epoch.
    pub ts_ns: u64,
    /// The frame, writable in place (its checksum may be completed).
    pub data: &'a mut [u8],
    /// Its length on the wire (more than `data.len()` when the ring truncated it).
    pub wire_len: usize,
    /// The kernel left the TCP/UDP checksum partial (`TP_STATUS_CSUMNOTREADY`).
    pub checksum_partial: bool,
    /// The outer VLAN tag (TPID and TCI as on the wire) the kernel took off the frame
    /// (`TP_STATUS_VLAN_VALID`); inner tags stay in `data`.
    pub stripped_tag: Option<[u8; 4]>,
    /// A TCP super-packet with its segmentation facts, when the ring reports them.
    pub gso: Option<Gso>,
}

/// Settings of the forwarder that are not the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// The capture port's address.
    pub inline: Inline,
    /// The capture interface's MAC.
    pub mac: Mac,
    /// The capture interface's MTU (IP bytes).
    pub mtu: usize,
    /// Neighbour cache timers and bounds.
    pub neighbours: NeighbourConfig,
}

/// A packet waiting for ARP or neighbour discovery.
#[derive(Debug, Clone)]
pub struct Queued {
    ts_ns: u64,
    plan: Plan,
    frame: Vec<u8>,
}

/// The forwarder.
#[derive(Debug)]
pub struct Forwarder {
    config: ForwarderConfig,
    table: ForwardTable,
    mode: CaptureMode,
    neighbours: Neighbours<Queued>,
    stats: Stats,
    scratch: Vec<u8>,
    tagged: Vec<u8>,
    solicit: Vec<Solicit>,
    segment: Vec<u8>,
    /// ICMP errors that may still be sent now ([`ICMP_ERRORS_PER_SEC`]), and when the
    /// bucket was last refilled.
    icmp_tokens: u64,
    icmp_refilled_ns: u64,
}

impl Forwarder {
    /// A forwarder for `table` (checked against `config.inline` by its constructor).
    pub fn new(config: ForwarderConfig, table: ForwardTable, mode: CaptureMode) -> Self {
        let neighbours = Neighbours::new(config.neighbours, table.peers());
        Self {
            config,
            table,
            mode,
            neighbours,
            stats: Stats::default(),
            scratch: Vec::with_capacity(2048),
            tagged: Vec::new(),
            solicit: Vec::new(),
            segment: Vec::new(),
            icmp_tokens: ICMP_ERRORS_BURST,
            icmp_refilled_ns: 0,
        }
    }

    /// Replaces the capture address, table and mode; packets waiting for a peer that left
    /// the table are dropped as `unknown_peer`. Known MACs of remaining peers are kept.
    pub fn reconfigure(&mut self, inline: Inline, table: ForwardTable, mode: CaptureMode) {
        self.config.inline = inline;
        let gone = self.neighbours.set_peers(table.peers());
        self.stats.drops[DropReason::UnknownPeer.index()] += gone.len() as u64;
        self.table = table;
        self.mode = mode;
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The capture mode.
    pub fn mode(&self) -> CaptureMode {
        self.mode
    }
    /// The table.
    pub fn table(&self) -> &ForwardTable {
        &self.table
    }
    /// The settings.
    pub fn config(&self) -> &ForwarderConfig {
        &self.config
    }
    /// Packets waiting for ARP.
    pub fn arp_pending(&self) -> usize {
        self.neighbours.pending()
    }
    /// Peers whose MAC is known.
    pub fn peers_resolved(&self, now_ns: u64) -> usize {
        self.neighbours.resolved(now_ns)
    }
    /// The MAC known for `peer`, if any.
    pub fn neighbour(&self, peer: IpAddr, now_ns: u64) -> Option<Mac> {
        self.neighbours.lookup(peer, now_ns)
    }

    fn drop(&mut self, r: DropReason) {
        self.stats.drops[r.index()] += 1;
    }

    /// Counts a frame the I/O edge dropped before it reached [`Self::receive`].
    pub fn count_drop(&mut self, r: DropReason) {
        self.drop(r);
    }

    /// Handles one received frame.
    pub fn receive(
        &mut self,
        now_ns: u64,
        mut rx: Received<'_>,
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) {
        // VLAN tags come off here (the MAC addresses move over them, in place) and go back
        // on when the frame is sent: everything between sees an untagged frame.
        let Some((inband, _)) = VlanTags::of(rx.data) else {
            return self.drop(DropReason::BadHeader);
        };
        let tags = match rx.stripped_tag {
            Some(t) => match inband.with_outer_tag(t) {
                Some(all) => all,
                None => return self.drop(DropReason::BadHeader),
            },
            None => inband,
        };
        if !inband.is_empty() {
            let n = inband.len();
            rx.data.copy_within(..wire::ethernet::field::SRC.end, n);
            rx.data = &mut std::mem::take(&mut rx.data)[n..];
            rx.wire_len = rx.wire_len.saturating_sub(n);
        }
        let Some(eth) = Ethernet::new_checked(&*rx.data) else {
            return self.drop(DropReason::BadHeader);
        };
        let kind = eth.ethertype();
        if kind == ethertype::ARP {
            return self.arp(now_ns, rx.data, tags, tx, rec);
        }
        let v6_here = self.config.inline.ip.is_ipv6();
        if !(kind == ethertype::IPV4 || kind == ethertype::IPV6 && v6_here) {
            return self.drop(DropReason::NonIpv4);
        }
        if rx.data.len() < rx.wire_len {
            return self.drop(DropReason::Truncated);
        }
        let Some(p) = Parsed::new(eth.payload(), kind) else {
            return self.drop(DropReason::BadHeader);
        };
        if p.ndp {
            return self.ndp(now_ns, rx.data, &p, tags, tx, rec);
        }
        if eth.dst() != self.config.mac || p.dst != self.config.inline.ip {
            return self.drop(DropReason::NotForUs);
        }
        let (plan, from) = if p.icmp_error {
            match self.error_plan(&eth.payload()[p.l4_at..p.total], tags) {
                Some(plan) => plan,
                None => return self.drop(DropReason::UnknownPeer),
            }
        } else {
            let Some((next, dir)) = self.table.route(p.src) else {
                return self.drop(DropReason::UnknownPeer);
            };
            let plan = Plan {
                next,
                dir,
                quoted: None,
                tags,
            };
            (plan, p.src)
        };
        if tags.outer_vid() != self.table.vlan_of(from) {
            return self.drop(DropReason::WrongVlan);
        }
        if p.hop_limit <= 1 {
            // Said to the sender as a router says it, so traceroute shows this hop.
            self.icmp_error(now_ns, rx.data, &p, IcmpErrorKind::TimeExceeded, tags, tx);
            return self.drop(DropReason::TtlExpired);
        }
        if p.first
            && let Some(f) = wire::l4_checksum_field(p.protocol)
            && p.total - p.l4_at < f.end
        {
            return self.drop(DropReason::BadHeader);
        }
        let oversize = p.total > self.config.mtu;
        let tcp = p.protocol == wire::protocol::TCP && !p.fragment;
        let end = ETH_HEADER_LEN + p.total;
        if oversize && !tcp {
            // May not be fragmented (IPv4 DF; IPv6 never on the way): path-MTU discovery
            // needs to hear the next hop's MTU.
            if p.dont_fragment {
                let mtu = self.config.mtu as u32;
                self.icmp_error(now_ns, rx.data, &p, IcmpErrorKind::TooBig { mtu }, tags, tx);
            }
            return self.drop(DropReason::Oversize);
        }
        if oversize
            && tags.is_empty()
            && self.table.vlan_of(plan.next).is_none()
            && let Some(gso) = rx.gso
            && self.neighbours.lookup(plan.next, now_ns).is_some()
            && self.forward_gso(
                now_ns,
                rx.ts_ns,
                &plan,
                &rx.data[..end],
                &gso,
                rx.checksum_partial,
                tx,
                rec,
            )
        {
            return;
        }
        if oversize {
            // A GSO/GRO super-packet: sent on as the segments a NIC would have made.
            let mut buf = std::mem::take(&mut self.segment);
            let mtu = self.config.mtu;
            let n = segment::segment_tcp(&rx.data[..end], mtu, &mut buf, &mut |s| {
                self.dispatch(now_ns, rx.ts_ns, plan, s, tx, rec);
            });
            if n == 0 {
                self.drop(DropReason::Oversize);
            } else {
                self.stats.super_packets_segmented += 1;
            }
            self.segment = buf;
            return;
        }
        if rx.checksum_partial && !p.fragment && rewrite::complete_l4_checksum(rx.data) {
            self.stats.checksums_completed += 1;
        }
        self.dispatch(now_ns, rx.ts_ns, plan, rx.data, tx, rec);
    }

    /// Where an ICMP error (`msg`, the ICMP message) goes: it quotes a packet the
    /// forwarder sent (from the capture address to peer P), so it belongs to P's partner,
    /// whatever router sent it; the quote is rewritten to what the partner sent.
    /// Also returns the peer on whose side the error arose (its VLAN is the one to expect).
    fn error_plan(&self, msg: &[u8], tags: VlanTags) -> Option<(Plan, IpAddr)> {
        let (qsrc, qdst) = rewrite::quoted_addresses(msg)?;
        if qsrc != self.config.inline.ip {
            return None;
        }
        let (next, dir) = self.table.route(qdst)?;
        let plan = Plan {
            next,
            dir,
            quoted: Some((next, qdst)),
            tags,
        };
        Some((plan, qdst))
    }

    /// Sends a TCP super-packet on whole (the kernel segments it on the way out), and
    /// records it as the segments that go on the wire. False when the transmitter cannot
    /// take it (nothing was sent or recorded).
    #[allow(clippy::too_many_arguments)]
    fn forward_gso(
        &mut self,
        now_ns: u64,
        ts_ns: u64,
        plan: &Plan,
        frame: &[u8],
        gso: &Gso,
        partial: bool,
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) -> bool {
        let (next, dir) = (plan.next, plan.dir);
        let Some(src_ip) = frame_src(frame).filter(|_| gso.gso_size > 0) else {
            return false;
        };
        // Bytes of IP header (and IPv6 extension headers) before the TCP header.
        let Some((ihl, _, _)) = segment::tcp_at(frame) else {
            return false;
        };
        let Some(next_mac) = self.neighbours.lookup(next, now_ns) else {
            return false;
        };
        let egress = Rewrite {
            eth_src: self.config.mac,
            eth_dst: next_mac,
            ip_src: self.config.inline.ip,
            ip_dst: next,
            decrement_ttl: true,
            l4_partial: partial,
            quoted: None,
        };
        if !tx.transmit_gso(gso, frame.len(), &mut |buf: &mut [u8]| {
            buf.copy_from_slice(frame);
            rewrite::apply(buf, &egress);
        }) {
            return false;
        }
        let thl = usize::from(
            frame
                .get(ETH_HEADER_LEN + ihl + 12)
                .copied()
                .unwrap_or(0x50)
                >> 4,
        ) * 4;
        let seg_mtu = ihl + thl + usize::from(gso.gso_size);
        let payload = frame.len().saturating_sub(ETH_HEADER_LEN + ihl + thl);
        let n = payload.div_ceil(usize::from(gso.gso_size)).max(1);
        self.stats.super_packets_passed += 1;
        let bytes = (frame.len() + (n - 1) * (ETH_HEADER_LEN + ihl + thl)) as u64;
        match dir {
            Direction::AToB => {
                self.stats.a_to_b_packets += n as u64;
                self.stats.a_to_b_bytes += bytes;
            }
            Direction::BToA => {
                self.stats.b_to_a_packets += n as u64;
                self.stats.b_to_a_bytes += bytes;
            }
        }
        if !rec.active() {
            return true;
        }
        // Records hold what the wire carries: the segments, each with its checksums.
        let mut seg = std::mem::take(&mut self.segment);
        let mut whole = std::mem::take(&mut self.scratch);
        let mode = self.mode;
        let mut record = |bytes: &[u8], r: Option<&Rewrite>, ts: u64| {
            whole.clear();
            whole.extend_from_slice(bytes);
            if let Some(r) = r {
                rewrite::apply(&mut whole, r);
            }
            segment::segment_tcp(&whole, seg_mtu, &mut seg, &mut |s| rec.record(ts, s));
        };
        let src_mac: Mac = frame[6..12].try_into().unwrap_or_default();
        let inline = Rewrite {
            eth_src: src_mac,
            eth_dst: next_mac,
            ip_src: src_ip,
            ip_dst: next,
            decrement_ttl: false,
            l4_partial: partial,
            quoted: None,
        };
        match mode {
            CaptureMode::Ingress => record(frame, None, ts_ns),
            CaptureMode::Egress => record(frame, Some(&egress), now_ns.max(ts_ns)),
            CaptureMode::Inline => record(frame, Some(&inline), ts_ns),
            CaptureMode::Both => {
                record(frame, None, ts_ns);
                record(frame, Some(&egress), now_ns.max(ts_ns));
            }
        }
        self.segment = seg;
        self.scratch = whole;
        true
    }

    /// Forwards `frame` now if the next hop's MAC is known, else queues it for ARP or
    /// neighbour discovery.
    fn dispatch(
        &mut self,
        now_ns: u64,
        ts_ns: u64,
        plan: Plan,
        frame: &[u8],
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) {
        match self.neighbours.lookup(plan.next, now_ns) {
            Some(_) => self.forward(now_ns, ts_ns, &plan, frame, tx, rec),
            None => {
                let q = Queued {
                    ts_ns,
                    plan,
                    frame: frame.to_vec(),
                };
                if self.neighbours.enqueue(plan.next, q, now_ns).is_err() {
                    self.drop(DropReason::ArpQueueFull);
                }
            }
        }
    }

    /// Sends `frame` (a checked IP packet to the capture address) as `plan` says, and
    /// records it.
    fn forward(
        &mut self,
        now_ns: u64,
        ts_ns: u64,
        plan: &Plan,
        frame: &[u8],
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) {
        let (next, dir) = (plan.next, plan.dir);
        let Some(src_ip) = frame_src(frame) else {
            return self.drop(DropReason::BadHeader);
        };
        let Some(next_mac) = self.neighbours.lookup(next, now_ns) else {
            return self.drop(DropReason::Unresolved);
        };
        let me = self.config.inline.ip;
        let egress = Rewrite {
            eth_src: self.config.mac,
            eth_dst: next_mac,
            ip_src: me,
            ip_dst: next,
            decrement_ttl: true,
            l4_partial: false,
            quoted: plan.quoted.map(|(qsrc, _)| (qsrc, me)),
        };
        let recording = rec.active();
        let mode = self.mode;
        let scratch = &mut self.scratch;
        let tagged = &mut self.tagged;
        let tags_in = plan.tags;
        let tags_out = tags_in.with_outer_vid(self.table.vlan_of(next));
        let tl = tags_out.len();
        // Records carry the tags the wire carries: as received for ingress and inline.
        let mut record_tagged = |ts: u64, f: &[u8], rec: &mut dyn Recorder| {
            if tags_in.is_empty() {
                return rec.record(ts, f);
            }
            tagged.clear();
            tagged.resize(f.len() + tags_in.len(), 0);
            tags_in.insert(f, tagged);
            rec.record(ts, tagged);
        };
        let sent = tx.transmit(frame.len() + tl, &mut |buf: &mut [u8]| {
            let out = &mut buf[tl..];
            out.copy_from_slice(frame);
            if recording && matches!(mode, CaptureMode::Ingress | CaptureMode::Both) {
                record_tagged(ts_ns, frame, rec);
            }
            if recording && mode == CaptureMode::Inline {
                scratch.clear();
                scratch.extend_from_slice(frame);
                let src_mac: Mac = frame[6..12].try_into().unwrap_or_default();
                rewrite::apply(
                    scratch,
                    &Rewrite {
                        eth_src: src_mac,
                        eth_dst: next_mac,
                        ip_src: src_ip,
                        ip_dst: next,
                        decrement_ttl: false,
                        l4_partial: false,
                        quoted: plan.quoted,
                    },
                );
                record_tagged(ts_ns, scratch, rec);
            }
            rewrite::apply(&mut buf[tl..], &egress);
            if tl > 0 {
                buf.copy_within(tl..tl + wire::ethernet::field::SRC.end, 0);
                buf[wire::ethernet::field::SRC.end..][..tl].copy_from_slice(tags_out.as_bytes());
            }
            if recording && matches!(mode, CaptureMode::Egress | CaptureMode::Both) {
                rec.record(now_ns.max(ts_ns), buf);
            }
        });
        if !sent {
            return self.drop(DropReason::TxFull);
        }
        let n = frame.len() as u64;
        match dir {
            Direction::AToB => {
                self.stats.a_to_b_packets += 1;
                self.stats.a_to_b_bytes += n;
            }
            Direction::BToA => {
                self.stats.b_to_a_packets += 1;
                self.stats.b_to_a_bytes += n;
            }
        }
    }

    fn arp(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        tags: VlanTags,
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) {
        let Some(arp) = Arp::new_checked(&frame[ETH_HEADER_LEN..]) else {
            return self.drop(DropReason::BadHeader);
        };
        let (sender_ip, sender_mac) = (arp.sender_ip(), arp.sender_mac());
        let IpAddr::V4(my_ip) = self.config.inline.ip else {
            return;
        };
        let me = (self.config.mac, my_ip);
        if arp.op() == ArpOp::Request && arp.target_ip() == me.1 {
            let sent = transmit_tagged(tx, tags, ARP_FRAME_LEN, &mut |buf: &mut [u8]| {
                wire::emit_arp(buf, sender_mac, ArpOp::Reply, me, (sender_mac, sender_ip));
            });
            if sent {
                self.stats.arp_answered += 1;
            } else {
                self.drop(DropReason::TxFull);
            }
        }
        let answer = arp.op() == ArpOp::Reply && arp.target_ip() == me.1;
        self.learn(now_ns, sender_ip.into(), sender_mac, tags, answer, tx, rec);
    }

    /// Tells the sender of `frame` (untagged, as received) why it went no further, as a
    /// router would (RFC 1812 4.3.2.7, RFC 4443 2.4): never about an ICMP error or a
    /// fragment other than the first, and at most [`ICMP_ERRORS_PER_SEC`].
    fn icmp_error(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        p: &Parsed,
        kind: IcmpErrorKind,
        tags: VlanTags,
        tx: &mut dyn Transmit,
    ) {
        if p.icmp_error || !p.first {
            return;
        }
        // A second refills the bucket whole: capped there, the product cannot overflow
        // (the first call sees ns since the epoch).
        let elapsed = now_ns
            .saturating_sub(self.icmp_refilled_ns)
            .min(1_000_000_000);
        let refill = elapsed * ICMP_ERRORS_PER_SEC / 1_000_000_000;
        if refill > 0 {
            self.icmp_tokens = (self.icmp_tokens + refill).min(ICMP_ERRORS_BURST);
            self.icmp_refilled_ns = now_ns;
        }
        if self.icmp_tokens == 0 {
            return;
        }
        self.icmp_tokens -= 1;
        let e = IcmpError {
            eth_src: self.config.mac,
            eth_dst: frame[6..12].try_into().unwrap_or_default(),
            src: self.config.inline.ip,
            dst: p.src,
            kind,
            quote: &frame[ETH_HEADER_LEN..ETH_HEADER_LEN + p.total],
        };
        let sent = transmit_tagged(tx, tags, e.frame_len(), &mut |buf: &mut [u8]| {
            wire::emit_icmp_error(buf, &e);
        });
        if sent {
            self.stats.icmp_errors_sent += 1;
        } else {
            self.drop(DropReason::TxFull);
        }
    }

    /// A neighbour solicitation or advertisement (`p` says where its ICMPv6 message is).
    fn ndp(
        &mut self,
        now_ns: u64,
        frame: &[u8],
        p: &Parsed,
        tags: VlanTags,
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) {
        let (IpAddr::V6(me), IpAddr::V6(src), IpAddr::V6(dst)) =
            (self.config.inline.ip, p.src, p.dst)
        else {
            return self.drop(DropReason::NonIpv4);
        };
        let msg = &frame[ETH_HEADER_LEN + p.l4_at..ETH_HEADER_LEN + p.total];
        let sum = checksum::pseudo_header_v6(src, dst, wire::protocol::ICMPV6, msg.len() as u32);
        // RFC 4861 7.1.1: hop limit 255 proves the message was not forwarded.
        let (Some(nd), true) = (
            Ndp::new_checked(msg),
            p.hop_limit == ndp::HOP_LIMIT && checksum::verifies(sum, msg),
        ) else {
            return self.drop(DropReason::BadHeader);
        };
        let eth_src: Mac = frame[6..12].try_into().unwrap_or_default();
        match nd.kind() {
            NdpKind::Solicit => {
                let mac = nd.lladdr(ndp::OPT_SOURCE_LLADDR).unwrap_or(eth_src);
                // An unspecified source is duplicate address detection: not ours to answer.
                if nd.target() == me && !src.is_unspecified() {
                    let na = NdpMessage {
                        kind: NdpKind::Advert,
                        eth_src: self.config.mac,
                        eth_dst: mac,
                        src: me,
                        dst: src,
                        target: me,
                        flags: ndp::FLAG_SOLICITED | ndp::FLAG_OVERRIDE,
                    };
                    if transmit_tagged(tx, tags, NDP_FRAME_LEN, &mut |buf: &mut [u8]| {
                        wire::emit_ndp(buf, &na);
                    }) {
                        self.stats.arp_answered += 1;
                    } else {
                        self.drop(DropReason::TxFull);
                    }
                }
                if !src.is_unspecified() && nd.lladdr(ndp::OPT_SOURCE_LLADDR).is_some() {
                    self.learn(now_ns, src.into(), mac, tags, false, tx, rec);
                }
            }
            NdpKind::Advert => {
                let mac = nd.lladdr(ndp::OPT_TARGET_LLADDR).unwrap_or(eth_src);
                self.learn(now_ns, nd.target().into(), mac, tags, dst == me, tx, rec);
            }
        }
    }

    /// A peer said where it is (in a frame with `tags`): learn it and send what waited
    /// for it. `answer`: it answered one of our requests.
    #[allow(clippy::too_many_arguments)]
    fn learn(
        &mut self,
        now_ns: u64,
        ip: IpAddr,
        mac: Mac,
        tags: VlanTags,
        answer: bool,
        tx: &mut dyn Transmit,
        rec: &mut dyn Recorder,
    ) {
        let on_its_vlan = tags.outer_vid() == self.table.vlan_of(ip);
        if !self.table.is_peer(ip) || !on_its_vlan || mac == BROADCAST || mac[0] & 1 == 1 {
            return;
        }
        if let Some(ready) = self.neighbours.learn(ip, mac, now_ns) {
            if answer {
                self.stats.arp_resolved += 1;
            }
            for w in ready {
                self.forward(
                    now_ns,
                    w.packet.ts_ns,
                    &w.packet.plan,
                    &w.packet.frame,
                    tx,
                    rec,
                );
            }
        }
    }

    /// Timers: ARP requests and neighbour solicitations due, packets that waited too long
    /// for them. Call it often (every few milliseconds of a busy loop, at least every
    /// 100 ms when idle).
    pub fn poll(&mut self, now_ns: u64, tx: &mut dyn Transmit) {
        let mut solicit = std::mem::take(&mut self.solicit);
        solicit.clear();
        let expired = self.neighbours.poll(now_ns, &mut solicit);
        self.stats.drops[DropReason::Unresolved.index()] += expired.len() as u64;
        let mac = self.config.mac;
        for s in &solicit {
            let tags = VlanTags::NONE.with_outer_vid(self.table.vlan_of(s.ip));
            let sent = match (self.config.inline.ip, s.ip) {
                (IpAddr::V4(me), IpAddr::V4(peer)) => {
                    let dst = s.unicast.unwrap_or(BROADCAST);
                    transmit_tagged(tx, tags, ARP_FRAME_LEN, &mut |buf: &mut [u8]| {
                        wire::emit_arp(buf, dst, ArpOp::Request, (mac, me), ([0; 6], peer));
                    })
                }
                (IpAddr::V6(me), IpAddr::V6(peer)) => {
                    // Resolve by the solicited-node group, refresh by unicast (RFC 4861 7.2.2).
                    let (eth_dst, dst) = match s.unicast {
                        Some(m) => (m, peer),
                        None => (
                            wire::multicast_mac(wire::solicited_node(peer)),
                            wire::solicited_node(peer),
                        ),
                    };
                    let ns = NdpMessage {
                        kind: NdpKind::Solicit,
                        eth_src: mac,
                        eth_dst,
                        src: me,
                        dst,
                        target: peer,
                        flags: 0,
                    };
                    transmit_tagged(tx, tags, NDP_FRAME_LEN, &mut |buf: &mut [u8]| {
                        wire::emit_ndp(buf, &ns);
                    })
                }
                _ => false,
            };
            if sent {
                self.stats.arp_requests_sent += 1;
            }
        }
        self.solicit = solicit;
    }
}

/// Where a packet goes: the next hop, which way through its pair, and for an ICMP error
/// the new source and destination of the packet it quotes, as the capture's inline record
/// shows them (egress puts the capture address as the destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    next: IpAddr,
    dir: Direction,
    quoted: Option<(IpAddr, IpAddr)>,
    /// The VLAN tags it came with.
    tags: VlanTags,
}

/// Sends a frame of `len` bytes that `fill` writes untagged, with `tags` after its MAC
/// addresses.
fn transmit_tagged(
    tx: &mut dyn Transmit,
    tags: VlanTags,
    len: usize,
    fill: &mut dyn FnMut(&mut [u8]),
) -> bool {
    let tl = tags.len();
    let macs = wire::ethernet::field::SRC.end;
    tx.transmit(len + tl, &mut |buf: &mut [u8]| {
        fill(&mut buf[tl..]);
        if tl > 0 {
            buf.copy_within(tl..tl + macs, 0);
            buf[macs..macs + tl].copy_from_slice(tags.as_bytes());
        }
    })
}

/// What the forwarder needs of a checked IPv4 or IPv6 header.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    protocol: u8,
    /// Bytes of the IP packet (header to end of payload, no Ethernet padding).
    total: usize,
    /// Offset of the L4 header from the start of the IP header.
    l4_at: usize,
    /// The L4 header is in this packet (not a fragment other than the first).
    first: bool,
    fragment: bool,
    /// An ICMP or ICMPv6 error (it quotes the packet that caused it).
    icmp_error: bool,
    /// A neighbour solicitation or advertisement.
    ndp: bool,
    /// May not be fragmented on the way: IPv4 with DF set, and every IPv6 packet.
    dont_fragment: bool,
}

impl Parsed {
    fn new(ip: &[u8], kind: u16) -> Option<Self> {
        if kind == ethertype::IPV4 {
            let v = Ipv4::new_checked(ip).ok()?;
            let first = v.fragment_offset() == 0;
            let icmp_type = v.payload().first().copied();
            Some(Self {
                src: v.src().into(),
                dst: v.dst().into(),
                hop_limit: v.ttl(),
                protocol: v.protocol(),
                total: v.total_len(),
                l4_at: v.header_len(),
                first,
                fragment: v.is_fragment(),
                icmp_error: first
                    && v.protocol() == wire::protocol::ICMP
                    && matches!(
                        icmp_type,
                        Some(
                            icmpv4::DST_UNREACHABLE | icmpv4::TIME_EXCEEDED | icmpv4::PARAM_PROBLEM
                        )
                    ),
                ndp: false,
                dont_fragment: v.dont_fragment(),
            })
        } else {
            let v = Ipv6::new_checked(ip).ok()?;
            let u = v.upper();
            let icmp_type = (u.has_header() && u.protocol == wire::protocol::ICMPV6)
                .then(|| v.upper_payload().first().copied())
                .flatten();
            Some(Self {
                src: v.src().into(),
                dst: v.dst().into(),
                hop_limit: v.hop_limit(),
                protocol: u.protocol,
                total: v.total_len(),
                l4_at: u.offset,
                first: u.has_header(),
                fragment: v.is_fragment(),
                icmp_error: matches!(icmp_type, Some(1..=4)),
                ndp: !v.is_fragment()
                    && matches!(
                        icmp_type,
                        Some(icmpv6::NEIGHBOUR_SOLICIT | icmpv6::NEIGHBOUR_ADVERT)
                    ),
                dont_fragment: true,
            })
        }
    }
}

/// The source address of `frame`'s IP packet (its family by the EtherType).
fn frame_src(frame: &[u8]) -> Option<IpAddr> {
    let ip = frame.get(ETH_HEADER_LEN..)?;
    match wire::read16(frame, wire::ethernet::field::ETHERTYPE)? {
        ethertype::IPV4 => Some(IpAddr::from(
            <[u8; 4]>::try_from(ip.get(wire::ipv4_field::SRC)?).ok()?,
        )),
        ethertype::IPV6 => Some(IpAddr::from(
            <[u8; 16]>::try_from(ip.get(wire::ipv6::field::SRC)?).ok()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
#[path = "forwarder_tests.rs"]
mod tests;
