//! The flow index: which bidirectional flows a stream holds, and exactly where each
//! flow's packets are, so that a query for a host or a connection reads only its packets.
//!
//! # What is recorded
//!
//! As chunks are written, the writer's [`ChunkSummarizer`](crate::ChunkSummarizer)
//! classifies every packet ([`PacketFlow`]: the flow's [`FlowKey`] — VLAN/MPLS context,
//! protocol, addresses and ports, ICMP by type/id, non-IP by EtherType and MACs — and the
//! packet's direction). The store keeps a bounded table of the flows alive ([`FlowTable`])
//! and writes them out as **blocks** appended to `flows.idx`. A block covers a run of
//! consecutive packets `[cover_first_packet, cover_end_packet)` and holds, for every flow
//! that had packets in that run, one **fragment**: the key, first and last timestamp,
//! packets and bytes per direction, TCP flags OR'd, smallest and largest length, and the
//! fragment's packet positions. Packets the classifier could not key exactly (malformed,
//! truncated, fragments, deep tag stacks) go to the block's one *opaque* fragment, which
//! every query reads: the fragments of a block partition its packets, so a query that
//! reads the matching fragments plus the opaque one sees every packet that can match.
//!
//! A flow's id is the stream number of its first packet: fragments of one flow in
//! successive blocks share it. Memory is bounded: flows idle for [`IDLE_NS`] of packet
//! time are closed at the next block; when [`MAX_FLOWS`] are alive, the least recently
//! seen half is closed early and counted (`evicted_early` in each block) — a flow that
//! comes back gets a new id, never a silent merge.
//!
//! # On-disk form, and why
//!
//! ```text
//! flows.idx = block*
//! block     = header (64 B) · fragment records (128 B each) · positions (varints)
//! header    = "WFL1" · version u32 · records u32 · positions bytes u32
//!             · cover_first_packet · cover_end_packet · cover_start_pos · cover_end_pos
//!             · evicted_early u64 · CRC32C of records+positions u32 · CRC32C of header u32
//! positions = per fragment: LEB128 varints of logical positions (the packet's byte offset
//!             in the stream, see crate::index), the first relative to cover_start_pos,
//!             the others as the gap to the previous packet of the fragment
//! ```
//!
//! * **Positions are logical byte offsets**, not packet ordinals: a reader goes from a
//!   position to its chunk with the binary search it already does for byte ranges, and to
//!   the record inside it without walking the chunk's records.
//! * **Delta-coded varints**: the packets of one flow are close together, so a gap is 1-3
//!   bytes where an absolute position is 8. That is what keeps the index small on
//!   64-byte traffic, where a record is 80 bytes.
//! * **Fixed-size fragment records** are read without parsing the positions: listing
//!   flows, and choosing which fragments a filter needs, never decodes a position.
//! * **Blocks are appended after the chunks they cover are in `chunks.idx`** (the same
//!   order as every other index file), each with its own CRC. A reader trusts a block only
//!   when its CRCs check out and its covered packets are all in its snapshot of
//!   `chunks.idx`; a crash leaves at worst a torn or premature last block, which readers
//!   ignore and recovery cuts. So the index never names packets that are not there;
//!   packets no valid block covers are found by scanning (see `covered`).
//! * A block is written every [`BLOCK_CHUNKS`] chunks (or [`BLOCK_NS`] of packet time) and
//!   when the stream is sealed; a crash loses the index of at most that much data, never
//!   the data, and `wirecap reindex` rebuilds the whole index from the segments.
//!
//! # Lookup tables (`flows.lut`), and why
//!
//! Reading every fragment record to find a host's flows costs O(capture) (128 MB for a
//! million flows). So every block gets a **table** in `flows.lut`, appended right after
//! the block (see [`crate::lut`]):
//!
//! ```text
//! flows.lut = table*                       (table i belongs to block i of flows.idx)
//! table     = header (64 B) · directory · pages
//! header    = "WFT1" · version u32 · block's offset in flows.idx u64 · block header's
//!             CRC u32 · records u32 · directory bytes u32 · page bytes u32
//!             · CRC32C of the directory u32 · … · CRC32C of the header u32
//! directory = per section: entries u32 · per page: first key (16 B) · CRC32C of the page
//! pages     = per section, sorted (key, fragment ordinal u32) entries, 256 to a page;
//!             keys are 4 bytes (16 for IPv6 addresses)
//! sections  = IPv4 addresses · IPv6 addresses · proto<<16|port (TCP/UDP/SCTP) · IP
//!             kind<<8|protocol · EtherType · TPID · VLAN id · MPLS label+1 · opaque
//!             fragments · CRC32C of each fragment's record and positions (key: ordinal)
//! ```
//!
//! * **Sorted keys, not hashes**: a `net` is a range scan of the address section; a
//!   host, port or protocol is a range of one key. A lookup reads the header, the
//!   directory (20 bytes per 256 entries) and only the pages its keys can be in, each
//!   checked against its CRC: what a selective query reads grows with its matches and
//!   the number of blocks, not with the flows.
//! * **Fragment ordinals**, not offsets: a record is at a fixed place in its block; the
//!   reader reads just the records picked and their position bytes, and checks each
//!   against the CRC the table keeps for it (the block's own CRC covers the whole body,
//!   which a random read cannot check).
//! * **A separate file, appended after its block**, tied to it by the block's offset and
//!   header CRC: version-1 blocks are unchanged, so older readers and older streams keep
//!   working. A crash leaves at worst a torn last table; readers stop at the first table
//!   that does not check out or does not match its block, and read the blocks after it
//!   whole (today's full read, same answers); recovery cuts tables with their blocks.
//!   `wirecap reindex` writes both files.
//! * Size: about 40 bytes per fragment (two addresses, two ports, protocol, EtherType,
//!   a CRC, 8 bytes each) against the record's 128 and its positions.

use std::fs::{File, OpenOptions};
use std::hash::Hasher;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::index::{le32, le64};
use crate::layout;

mod slots;

/// Flows idle this long (packet time) are closed when the next block is written.
pub const IDLE_NS: u64 = 120 * 1_000_000_000;
/// Most flows kept alive at once.
pub const MAX_FLOWS: usize = 1 << 18;
/// A block is written at least every this many chunks...
pub const BLOCK_CHUNKS: u32 = 256;
/// ...and every this much packet time.
pub const BLOCK_NS: u64 = 60 * 1_000_000_000;

pub const HEADER_LEN: usize = 64;
pub const RECORD_LEN: usize = 128;
const MAGIC: [u8; 4] = *b"WFL1";
const VERSION: u32 = 1;

/// What kind of endpoints a flow key holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FlowKind {
    /// Packets the classifier could not key exactly (the opaque fragment).
    #[default]
    Opaque = 0,
    /// Non-IP: endpoints are MAC addresses, `proto` is 0.
    Ether = 1,
    Ipv4 = 4,
    Ipv6 = 6,
}

impl FlowKind {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Ether,
            4 => Self::Ipv4,
            6 => Self::Ipv6,
            _ => Self::Opaque,
        }
    }
}

/// The key of a bidirectional flow, endpoints in canonical order (`a <= b`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    pub kind: FlowKind,
    /// IP protocol (IPv6: after the extension headers); 0 for non-IP.
    pub proto: u8,
    /// The network-layer EtherType (innermost).
    pub ethertype: u16,
    /// TPID of the one VLAN tag, 0 when untagged.
    pub tpid: u16,
    pub vlan: u16,
    /// MPLS label plus one, 0 without MPLS.
    pub mpls: u32,
    /// Endpoint addresses: IPv4 in the first 4 bytes, MACs in the first 6.
    pub addr: [[u8; 16]; 2],
    /// Endpoint ports (TCP, UDP, SCTP); ICMP echo: the identifier on both; 0 otherwise.
    pub port: [u16; 2],
    /// ICMP and ICMPv6: `0x100 | type` (an echo reply counts as its request's type, so
    /// that both directions are one flow); 0 otherwise.
    pub icmp: u16,
}

pub const KEY_LEN: usize = 52;

impl std::hash::Hash for FlowKey {
    /// Seven words, not field by field: this runs once per packet on the writer.
    fn hash<H: Hasher>(&self, h: &mut H) {
        let w = |b: &[u8; 16], i: usize| {
            u64::from_le_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        h.write_u64(
            u64::from(self.kind as u8)
                | u64::from(self.proto) << 8
                | u64::from(self.ethertype) << 16
                | u64::from(self.tpid) << 32
                | u64::from(self.vlan) << 48,
        );
        h.write_u64(
            u64::from(self.mpls) | u64::from(self.port[0]) << 32 | u64::from(self.port[1]) << 48,
        );
        h.write_u64(w(&self.addr[0], 0) ^ u64::from(self.icmp));
        h.write_u64(w(&self.addr[0], 8));
        h.write_u64(w(&self.addr[1], 0));
        h.write_u64(w(&self.addr[1], 8));
    }
}

impl FlowKey {
    /// Builds a key from one packet's source and destination, in canonical order; the
    /// flag says whether the packet goes from `b` to `a`.
    pub fn new(
        kind: FlowKind,
        proto: u8,
        ethertype: u16,
        src: ([u8; 16], u16),
        dst: ([u8; 16], u16),
    ) -> (Self, bool) {
        let reverse = dst < src;
        let (a, b) = if reverse { (dst, src) } else { (src, dst) };
        (
            Self {
                kind,
                proto,
                ethertype,
                addr: [a.0, b.0],
                port: [a.1, b.1],
                ..Self::default()
            },
            reverse,
        )
    }

    pub fn is_opaque(&self) -> bool {
        self.kind == FlowKind::Opaque
    }

    /// Endpoint `i` as an IP address (IP flows only).
    pub fn ip(&self, i: usize) -> Option<IpAddr> {
        let a = self.addr[i];
        match self.kind {
            FlowKind::Ipv4 => Some(IpAddr::from([a[0], a[1], a[2], a[3]])),
            FlowKind::Ipv6 => Some(IpAddr::from(a)),
            _ => None,
        }
    }

    fn encode(&self, b: &mut [u8]) {
        b[0] = self.kind as u8;
        b[1] = self.proto;
        b[2..4].copy_from_slice(&self.ethertype.to_le_bytes());
        b[4..6].copy_from_slice(&self.tpid.to_le_bytes());
        b[6..8].copy_from_slice(&self.vlan.to_le_bytes());
        b[8..12].copy_from_slice(&self.mpls.to_le_bytes());
        b[12..28].copy_from_slice(&self.addr[0]);
        b[28..44].copy_from_slice(&self.addr[1]);
        b[44..46].copy_from_slice(&self.port[0].to_le_bytes());
        b[46..48].copy_from_slice(&self.port[1].to_le_bytes());
        b[48..50].copy_from_slice(&self.icmp.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        let le16 = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let mut addr = [[0u8; 16]; 2];
        addr[0].copy_from_slice(&b[12..28]);
        addr[1].copy_from_slice(&b[28..44]);
        Self {
            kind: FlowKind::from_u8(b[0]),
            proto: b[1],
            ethertype: le16(2),
            tpid: le16(4),
            vlan: le16(6),
            mpls: le32(b, 8),
            addr,
            port: [le16(44), le16(46)],
            icmp: le16(48),
        }
    }
}

/// A [`FlowKey`] as seven words, the form the classifier hands the writer's table: it
/// is hashed and compared word by word, and unpacked only when a flow is new.
/// Words: the small fields (kind, proto, EtherType, TPID, VLAN); MPLS and the ports;
/// the ICMP class; then each endpoint address as two little-endian words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PackedKey(pub [u64; 7]);

impl PackedKey {
    /// Packs a key from its fields (`addr` as `u128::from_le_bytes` of the bytes).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn new(
        kind: FlowKind,
        proto: u8,
        ethertype: u16,
        tpid: u16,
        vlan: u16,
        mpls: u32,
        icmp: u16,
        addr: [u128; 2],
        port: [u16; 2],
    ) -> Self {
        Self([
            u64::from(kind as u8)
                | u64::from(proto) << 8
                | u64::from(ethertype) << 16
                | u64::from(tpid) << 32
                | u64::from(vlan) << 48,
            u64::from(mpls) | u64::from(port[0]) << 32 | u64::from(port[1]) << 48,
            u64::from(icmp),
            addr[0] as u64,
            (addr[0] >> 64) as u64,
            addr[1] as u64,
            (addr[1] >> 64) as u64,
        ])
    }

    pub fn pack(k: &FlowKey) -> Self {
        Self::new(
            k.kind,
            k.proto,
            k.ethertype,
            k.tpid,
            k.vlan,
            k.mpls,
            k.icmp,
            [
                u128::from_le_bytes(k.addr[0]),
                u128::from_le_bytes(k.addr[1]),
            ],
            k.port,
        )
    }

    pub fn unpack(&self) -> FlowKey {
        let w = &self.0;
        let addr = |lo: u64, hi: u64| (u128::from(hi) << 64 | u128::from(lo)).to_le_bytes();
        FlowKey {
            kind: FlowKind::from_u8(w[0] as u8),
            proto: (w[0] >> 8) as u8,
            ethertype: (w[0] >> 16) as u16,
            tpid: (w[0] >> 32) as u16,
            vlan: (w[0] >> 48) as u16,
            mpls: w[1] as u32,
            addr: [addr(w[3], w[4]), addr(w[5], w[6])],
            port: [(w[1] >> 32) as u16, (w[1] >> 48) as u16],
            icmp: w[2] as u16,
        }
    }

    #[inline(always)]
    pub fn is_opaque(&self) -> bool {
        self.0[0] as u8 == FlowKind::Opaque as u8
    }
}

/// One packet as the classifier saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketFlow {
    /// The flow; an opaque key when the packet could not be keyed exactly.
    pub key: PackedKey,
    /// The packet goes from endpoint `b` to endpoint `a`.
    pub reverse: bool,
    pub tcp_flags: u8,
    /// Length on the wire.
    pub orig_len: u32,
}

/// Fragment flags.
pub const F_SRC_IS_B: u8 = 1;
pub const F_CLOSED: u8 = 2;
pub const F_EVICTED_EARLY: u8 = 4;

/// One flow's packets within one block (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    pub key: FlowKey,
    /// Stream number of the flow's first packet.
    pub id: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    /// Packets and bytes (wire lengths) from `a` to `b` (`[0]`) and from `b` to `a`.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub min_len: u32,
    pub max_len: u32,
    pub tcp_flags: u8,
    /// `F_*` bits.
    pub flags: u8,
    /// Where its positions are in the block's position bytes.
    pub pos_off: u32,
    pub pos_len: u32,
}

impl Fragment {
    pub fn packet_count(&self) -> u64 {
        self.packets[0] + self.packets[1]
    }

    fn encode(&self, b: &mut [u8; RECORD_LEN]) {
        self.key.encode(&mut b[..KEY_LEN]);
        let mut at = KEY_LEN;
        for v in [
            self.id,
            self.first_ts,
            self.last_ts,
            self.packets[0],
            self.packets[1],
            self.bytes[0],
            self.bytes[1],
        ] {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            at += 8;
        }
        for v in [self.min_len, self.max_len, self.pos_off, self.pos_len] {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            at += 4;
        }
        b[at] = self.tcp_flags;
        b[at + 1] = self.flags;
    }

    pub(crate) fn decode(b: &[u8]) -> Self {
        let k = KEY_LEN;
        Self {
            key: FlowKey::decode(&b[..KEY_LEN]),
            id: le64(b, k),
            first_ts: le64(b, k + 8),
            last_ts: le64(b, k + 16),
            packets: [le64(b, k + 24), le64(b, k + 32)],
            bytes: [le64(b, k + 40), le64(b, k + 48)],
            min_len: le32(b, k + 56),
            max_len: le32(b, k + 60),
            pos_off: le32(b, k + 64),
            pos_len: le32(b, k + 68),
            tcp_flags: b[k + 72],
            flags: b[k + 73],
        }
    }
}

/// A block's header: which packets it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockHeader {
    pub records: u32,
    pub pos_bytes: u32,
    pub cover_first_packet: u64,
    pub cover_end_packet: u64,
    pub cover_start_pos: u64,
    pub cover_end_pos: u64,
    /// Flows closed early so far in the stream (the table was full).
    pub evicted_early: u64,
    pub body_crc: u32,
}

impl BlockHeader {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.records.to_le_bytes());
        b[12..16].copy_from_slice(&self.pos_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.cover_first_packet.to_le_bytes());
        b[24..32].copy_from_slice(&self.cover_end_packet.to_le_bytes());
        b[32..40].copy_from_slice(&self.cover_start_pos.to_le_bytes());
        b[40..48].copy_from_slice(&self.cover_end_pos.to_le_bytes());
        b[48..56].copy_from_slice(&self.evicted_early.to_le_bytes());
        b[56..60].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < HEADER_LEN
            || b[0..4] != MAGIC
            || le32(b, 4) != VERSION
            || crc32c::crc32c(&b[..60]) != le32(b, 60)
        {
            return None;
        }
        Some(Self {
            records: le32(b, 8),
            pos_bytes: le32(b, 12),
            cover_first_packet: le64(b, 16),
            cover_end_packet: le64(b, 24),
            cover_start_pos: le64(b, 32),
            cover_end_pos: le64(b, 40),
            evicted_early: le64(b, 48),
            body_crc: le32(b, 56),
        })
    }

    pub(crate) fn body_len(&self) -> u64 {
        self.records as u64 * RECORD_LEN as u64 + u64::from(self.pos_bytes)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// For a value of `b` significant bits (`b` <= 28): how many varint bytes it takes,
/// and the continuation bits of all but the last of them.
const VARINT_SHAPE: [(u8, u32); 29] = {
    let mut t = [(0u8, 0u32); 29];
    let mut b: usize = 0;
    while b <= 28 {
        let n = if b == 0 { 1 } else { b.div_ceil(7) };
        t[b] = (n as u8, 0x0080_8080 & ((1u32 << (8 * (n - 1))) - 1));
        b += 1;
    }
    t
};

/// [`put_varint`] for the writer's every packet: a gap below 2^28 (the common case) is
/// encoded without a loop or a branch and appended as one word.
#[inline(always)]
fn push_varint(out: &mut Vec<u8>, v: u64) {
    if v >= 1 << 28 {
        return put_varint(out, v);
    }
    let (n, cont) = VARINT_SHAPE[(64 - v.leading_zeros()) as usize];
    // Each byte's 7 bits in place.
    let w = (v & 0x7f) | (v << 1 & 0x7f00) | (v << 2 & 0x7f_0000) | (v << 3 & 0x7f00_0000);
    let len = out.len();
    out.extend_from_slice(&(w as u32 | cont).to_le_bytes());
    out.truncate(len + usize::from(n));
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// A fast hasher for flow keys (the table is private to one writer: no flooding concern
/// beyond a slower table, which its bounded size caps).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let z = self.0;
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// A fragment being filled.
#[derive(Clone, Debug, Default)]
struct Open {
    frag: Fragment,
    /// Delta-coded positions so far (relative to the block's cover start).
    pos: Vec<u8>,
    last_pos: u64,
    /// Last packet time of the flow (across blocks).
    last_seen: u64,
}

impl Open {
    fn new(key: FlowKey, id: u64, src_is_b: bool) -> Self {
        Self {
            frag: Fragment {
                key,
                id,
                min_len: u32::MAX,
                flags: if src_is_b { F_SRC_IS_B } else { 0 },
                ..Fragment::default()
            },
            ..Self::default()
        }
    }

    #[inline(always)]
    fn add(&mut self, p: &PacketFlow, ts: u64, pos: u64, cover_start: u64) {
        let f = &mut self.frag;
        // No positions yet: the fragment's first packet (cheaper than its counters).
        let gap = if self.pos.is_empty() {
            f.first_ts = ts;
            pos - cover_start
        } else {
            pos - self.last_pos
        };
        push_varint(&mut self.pos, gap);
        self.last_pos = pos;
        f.last_ts = ts;
        let d = usize::from(p.reverse);
        f.packets[d] += 1;
        f.bytes[d] += u64::from(p.orig_len);
        f.tcp_flags |= p.tcp_flags;
        f.min_len = f.min_len.min(p.orig_len);
        f.max_len = f.max_len.max(p.orig_len);
        self.last_seen = ts;
    }

    /// Starts the next block's fragment of the same flow.
    fn reset(&mut self) {
        let keep = (self.frag.key, self.frag.id, self.frag.flags & F_SRC_IS_B);
        self.frag = Fragment {
            key: keep.0,
            id: keep.1,
            flags: keep.2,
            min_len: u32::MAX,
            ..Fragment::default()
        };
        self.pos.clear();
    }
}

/// The flows alive while a stream is written, and the blocks they become.
#[derive(Debug)]
pub struct FlowTable {
    map: slots::FlowSlots,
    open: Vec<Open>,
    opaque: Open,
    cover: Option<(u64, u64)>,
    end: (u64, u64),
    chunks: u32,
    block_start_ts: Option<u64>,
    last_ts: u64,
    evicted_early: u64,
    max_flows: usize,
    /// Fragments of flows closed early, waiting for the block.
    finished: Vec<Open>,
    block: Vec<u8>,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self::new(MAX_FLOWS)
    }
}

impl FlowTable {
    pub fn new(max_flows: usize) -> Self {
        Self {
            map: slots::FlowSlots::default(),
            open: Vec::new(),
            opaque: Open::new(FlowKey::default(), 0, false),
            cover: None,
            end: (0, 0),
            chunks: 0,
            block_start_ts: None,
            last_ts: 0,
            evicted_early: 0,
            max_flows: max_flows.max(2),
            finished: Vec::new(),
            block: Vec::new(),
        }
    }

    /// Flows alive now.
    pub fn len(&self) -> usize {
        self.open.len()
    }
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
    /// Flows closed early because the table was full.
    pub fn evicted_early(&self) -> u64 {
        self.evicted_early
    }

    /// Accounts for packet number `packet` at logical position `pos`, whose record is
    /// `rec_len` bytes. Packets must come in stream order without gaps; a gap (a chunk
    /// written without classification) ends the current block first.
    pub fn observe(&mut self, p: &PacketFlow, packet: u64, pos: u64, rec_len: u64, ts: u64) {
        self.run(packet, pos).push(p, rec_len, ts);
    }

    /// [`observe`](Self::observe) for a run of consecutive packets (a chunk), the first
    /// numbered `packet` at `pos`, given one by one to [`FlowRun::push`]: the bookkeeping
    /// of the run is done once, not per packet.
    pub fn run(&mut self, packet: u64, pos: u64) -> FlowRun<'_> {
        FlowRun {
            table: self,
            packet,
            pos,
            start: None,
            ts: 0,
        }
    }

    /// Starts covering packets at `packet`/`pos`; returns the block's first position.
    fn begin(&mut self, packet: u64, pos: u64, ts: u64) -> u64 {
        let start = match self.cover {
            Some((_, start)) if self.end.0 == packet => start,
            Some(_) => {
                // Not contiguous: what is open cannot cover the gap. Drop it (the gap
                // and this block's packets are then scanned by queries).
                self.discard();
                self.cover = Some((packet, pos));
                pos
            }
            None => {
                self.cover = Some((packet, pos));
                pos
            }
        };
        if self.block_start_ts.is_none() {
            self.block_start_ts = Some(ts);
        }
        start
    }

    #[inline(always)]
    fn add_packet(&mut self, p: &PacketFlow, packet: u64, pos: u64, ts: u64, start: u64) {
        if p.key.is_opaque() {
            self.opaque.add(p, ts, pos, start);
            return;
        }
        let slot = match self.map.find(&p.key) {
            Ok(s) => s as usize,
            Err(v) => {
                let s = self.open.len();
                if s >= self.max_flows {
                    self.evict_half();
                    let s = self.open.len();
                    self.map.insert(p.key, s as u32);
                } else {
                    self.map.insert_at(v, p.key);
                }
                self.open.push(Open::new(p.key.unpack(), packet, p.reverse));
                self.open.len() - 1
            }
        };
        self.open[slot].add(p, ts, pos, start);
    }

    /// Forgets the packets observed from number `first_packet` on (their chunk was not
    /// written after all): this block's fragments are dropped, as for a gap (its packets
    /// are scanned), and so are the flows first seen in those packets, whose ids would
    /// name packets that are not there.
    pub fn abandon(&mut self, first_packet: u64) {
        self.discard();
        self.open.retain(|o| o.frag.id < first_packet);
        self.map.clear();
        for (i, o) in self.open.iter().enumerate() {
            self.map.insert(PackedKey::pack(&o.frag.key), i as u32);
        }
    }

    /// Counts a chunk written; true when a block is due.
    pub fn chunk_done(&mut self) -> bool {
        self.chunks += 1;
        self.chunks >= BLOCK_CHUNKS
            || self
                .block_start_ts
                .is_some_and(|t| self.last_ts.saturating_sub(t) >= BLOCK_NS)
    }

    fn discard(&mut self) {
        for o in &mut self.open {
            o.reset();
        }
        self.finished.clear();
        self.opaque.reset();
        self.cover = None;
        self.chunks = 0;
        self.block_start_ts = None;
    }

    /// Closes the least recently seen half of the flows, counting them as early
    /// evictions: their fragments so far stay in this block.
    fn evict_half(&mut self) {
        let mut seen: Vec<u64> = self.open.iter().map(|o| o.last_seen).collect();
        let mid = seen.len() / 2;
        let (_, cut, _) = seen.select_nth_unstable(mid);
        let cut = *cut;
        let mut closed = Vec::new();
        let mut kept = Vec::with_capacity(self.open.len());
        for mut o in self.open.drain(..) {
            if o.last_seen <= cut && closed.len() <= mid {
                o.frag.flags |= F_CLOSED | F_EVICTED_EARLY;
                closed.push(o);
            } else {
                kept.push(o);
            }
        }
        self.evicted_early += closed.len() as u64;
        self.open = kept;
        self.map.clear();
        for (i, o) in self.open.iter().enumerate() {
            self.map.insert(PackedKey::pack(&o.frag.key), i as u32);
        }
        self.finished.extend(closed);
    }

    /// The block of everything observed since the last one (`None` when nothing was),
    /// encoded, leaving the table ready for the next. Flows idle for [`IDLE_NS`] are
    /// closed; with `last`, all are (the stream is being sealed).
    pub fn take_block(&mut self, last: bool) -> Option<&[u8]> {
        let (first_packet, start_pos) = self.cover?;
        let now = self.last_ts;
        let mut recs: Vec<Fragment> = Vec::new();
        let mut pos: Vec<u8> = Vec::new();
        let mut emit = |o: &Open, closed: bool| {
            if o.frag.packet_count() == 0 {
                return;
            }
            let mut f = o.frag;
            if closed {
                f.flags |= F_CLOSED;
            }
            f.pos_off = pos.len() as u32;
            f.pos_len = o.pos.len() as u32;
            pos.extend_from_slice(&o.pos);
            recs.push(f);
        };
        for o in &self.finished {
            emit(o, true);
        }
        emit(&self.opaque, false);
        let mut keep = Vec::with_capacity(self.open.len());
        for o in self.open.drain(..) {
            let idle = now.saturating_sub(o.last_seen) >= IDLE_NS;
            emit(&o, last || idle);
            if !(last || idle) {
                keep.push(o);
            }
        }
        self.open = keep;
        self.map.clear();
        for (i, o) in self.open.iter_mut().enumerate() {
            o.reset();
            self.map.insert(PackedKey::pack(&o.frag.key), i as u32);
        }
        self.finished.clear();
        self.opaque.reset();
        self.cover = None;
        self.chunks = 0;
        self.block_start_ts = None;
        let mut h = BlockHeader {
            records: recs.len() as u32,
            pos_bytes: pos.len() as u32,
            cover_first_packet: first_packet,
            cover_end_packet: self.end.0,
            cover_start_pos: start_pos,
            cover_end_pos: self.end.1,
            evicted_early: self.evicted_early,
            body_crc: 0,
        };
        self.block.clear();
        self.block.resize(HEADER_LEN, 0);
        let mut r = [0u8; RECORD_LEN];
        for f in &recs {
            f.encode(&mut r);
            self.block.extend_from_slice(&r);
        }
        self.block.extend_from_slice(&pos);
        h.body_crc = crc32c::crc32c(&self.block[HEADER_LEN..]);
        self.block[..HEADER_LEN].copy_from_slice(&h.encode());
        Some(&self.block)
    }
}

/// Packets being added to a [`FlowTable`] (see [`FlowTable::run`]).
pub struct FlowRun<'a> {
    table: &'a mut FlowTable,
    packet: u64,
    pos: u64,
    /// The block's first position, once the run's first packet is in.
    start: Option<u64>,
    ts: u64,
}

impl FlowRun<'_> {
    /// Adds the run's next packet: its flow, record length and time.
    #[inline(always)]
    pub fn push(&mut self, p: &PacketFlow, rec_len: u64, ts: u64) {
        let start = match self.start {
            Some(s) => s,
            None => *self
                .start
                .insert(self.table.begin(self.packet, self.pos, ts)),
        };
        self.table.add_packet(p, self.packet, self.pos, ts, start);
        self.packet += 1;
        self.pos += rec_len;
        self.ts = ts;
    }
}

impl Drop for FlowRun<'_> {
    fn drop(&mut self) {
        if self.start.is_some() {
            self.table.end = (self.packet, self.pos);
            self.table.last_ts = self.ts;
        }
    }
}

/// `flows.idx` being appended by a writer.
pub(crate) struct FlowFile {
    file: crate::writer::IndexFile,
    /// `flows.lut`: one lookup table per block of `file`.
    lut: crate::writer::IndexFile,
    pub(crate) table: FlowTable,
}

impl FlowFile {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            file: crate::writer::IndexFile::open(dir.join(layout::FLOWS))?,
            lut: crate::writer::IndexFile::open(dir.join(layout::FLOWS_LUT))?,
            table: FlowTable::default(),
        })
    }

    /// Writes a block if one is due (or `last`). A failure to write the index never
    /// fails the data: the block is cut off again and its packets stay unindexed (found
    /// by scanning).
    pub(crate) fn write_block(&mut self, last: bool) {
        let Some(b) = self.table.take_block(last) else {
            return;
        };
        let len = self.file.len;
        if self.file.append(b).is_err() {
            let _ = self.file.truncate(len);
            return;
        }
        // Likewise its table: without it, readers read this block whole.
        if let Some(t) = crate::lut::build(b, len) {
            let lut_len = self.lut.len;
            if self.lut.append(&t).is_err() {
                let _ = self.lut.truncate(lut_len);
            }
        }
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.file.sync_data().at(&self.file.path)?;
        self.lut.file.sync_data().at(&self.lut.path)
    }
}

/// Cuts `flows.idx` in `dir` after the last whole block that covers only packets below
/// `packets`, and `flows.lut` after the last table of a kept block (recovery, before a
/// writer appends again); returns the bytes cut.
pub(crate) fn cut_blocks(dir: &Path, packets: u64) -> Result<u64> {
    let path = dir.join(layout::FLOWS);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return crate::lut::cut_tables(dir, 0);
        }
        Err(e) => return Err(e).at(&path),
    };
    let keep = walk_blocks(&bytes, packets, u64::MAX, |_, _| {});
    if keep < bytes.len() as u64 {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(keep))
            .at(&path)?;
    }
    Ok(bytes.len() as u64 - keep + crate::lut::cut_tables(dir, keep)?)
}

/// Calls `f` for every valid block whose packets are all below `end_packet` and bytes
/// below `end_pos`, in order; stops at the first that is not. Returns the bytes of
/// `bytes` those valid blocks take.
fn walk_blocks(
    bytes: &[u8],
    end_packet: u64,
    end_pos: u64,
    mut f: impl FnMut(&BlockHeader, &[u8]),
) -> u64 {
    let mut at = 0usize;
    while let Some(h) = bytes.get(at..).and_then(BlockHeader::decode) {
        let body = at + HEADER_LEN;
        let Some(end) = usize::try_from(h.body_len())
            .ok()
            .and_then(|l| body.checked_add(l))
        else {
            break;
        };
        let Some(b) = bytes.get(body..end) else { break };
        if crc32c::crc32c(b) != h.body_crc
            || h.cover_end_packet > end_packet
            || h.cover_end_pos > end_pos
            || h.cover_first_packet >= h.cover_end_packet
        {
            break;
        }
        f(&h, b);
        at = end;
    }
    at as u64
}

/// A stream's flow index as a reader sees it: every valid block of its snapshot.
#[derive(Clone, Debug, Default)]
pub struct FlowIndex {
    /// Every fragment, block by block.
    pub fragments: Vec<Fragment>,
    /// Per fragment: the block it belongs to.
    pub block_of: Vec<u32>,
    pub blocks: Vec<BlockHeader>,
    /// Per block: where its position bytes start in `positions`.
    pos_base: Vec<usize>,
    positions: Vec<u8>,
    /// Bytes of `flows.idx` (valid blocks).
    pub file_bytes: u64,
    /// Bytes read from `flows.idx` and `flows.lut` to load it.
    pub bytes_read: u64,
    /// Blocks whose fragments were chosen through their lookup table.
    pub table_blocks: u64,
}

impl FlowIndex {
    /// Reads `flows.idx` of the stream behind `r`: the blocks that check out and cover
    /// only packets of the snapshot. `None` when the stream has no flow index.
    pub fn load(r: &crate::StreamReader) -> Result<Option<Self>> {
        let path = r.dir().join(layout::FLOWS);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&path),
        };
        let (end_packet, end_pos) = r.end();
        let mut ix = Self {
            bytes_read: bytes.len() as u64,
            ..Self::default()
        };
        ix.file_bytes = walk_blocks(&bytes, end_packet, end_pos, |h, b| ix.push_block(h, b));
        Ok(Some(ix))
    }

    /// Like [`Self::load`], but where `flows.lut` has a table for a block, only the
    /// fragments `select` picks from it are read (their records and positions, each
    /// checked against the CRC the table keeps for it), not the whole block. `select`
    /// answers `None` to have a block read whole (no lookup helps, or the table is
    /// damaged there). Blocks without a table (an older stream, a torn `flows.lut`) are
    /// read whole, as `load` does. Every valid block's header is in `blocks`, so
    /// [`Self::covered`] is the same as `load`'s.
    pub fn load_lookup(
        r: &crate::StreamReader,
        select: &mut dyn FnMut(&crate::lut::TableProbe) -> Option<Vec<u32>>,
    ) -> Result<Option<Self>> {
        let path = r.dir().join(layout::FLOWS);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&path),
        };
        let flen = file.metadata().at(&path)?.len();
        let (end_packet, end_pos) = r.end();
        let mut ix = Self::default();
        let mut next = 0u64;
        if let Ok(lut) = File::open(r.dir().join(layout::FLOWS_LUT)) {
            let llen = lut.metadata().map_or(0, |m| m.len());
            let mut at = 0u64;
            let mut read = 0u64;
            while let Some(t) = crate::lut::Table::read(&lut, at, llen, &mut read) {
                let Some(hb) = crate::lut::read_at(&file, next, HEADER_LEN, &mut read) else {
                    break;
                };
                let Some(h) = BlockHeader::decode(&hb) else {
                    break;
                };
                let end = next + HEADER_LEN as u64 + h.body_len();
                if t.flows_off != next
                    || le32(&hb, 60) != t.flows_hdr_crc
                    || h.records != t.records
                    || end > flen
                    || h.cover_end_packet > end_packet
                    || h.cover_end_pos > end_pos
                    || h.cover_first_packet >= h.cover_end_packet
                {
                    break;
                }
                let probe = crate::lut::TableProbe {
                    table: &t,
                    block: &h,
                    lut: &lut,
                    read: std::cell::Cell::new(0),
                };
                let picked = select(&probe);
                read += probe.read.get();
                // Many picks: one read of the whole block costs less than two per pick
                // (a read is worth about half a KiB of copying).
                let done = match picked {
                    Some(p) if p.len() as u64 * (RECORD_LEN as u64 + 512) < h.body_len() => {
                        ix.push_picked(&file, &lut, &t, &h, next, &p, &mut read)
                    }
                    _ => false,
                };
                if !done {
                    let body = crate::lut::read_at(
                        &file,
                        next + HEADER_LEN as u64,
                        h.body_len() as usize,
                        &mut read,
                    );
                    match body {
                        Some(b) if crc32c::crc32c(&b) == h.body_crc => ix.push_block(&h, &b),
                        _ => break,
                    }
                }
                ix.table_blocks += 1;
                next = end;
                at += t.len;
            }
            ix.bytes_read += read;
        }
        // The blocks after the last with a table: read whole.
        if next < flen {
            let mut rest = vec![0u8; (flen - next) as usize];
            file.read_exact_at(&mut rest, next).at(&path)?;
            ix.bytes_read += rest.len() as u64;
            next += walk_blocks(&rest, end_packet, end_pos, |h, b| ix.push_block(h, b));
        }
        ix.file_bytes = next;
        Ok(Some(ix))
    }

    /// Adds block `h` (at `off` in `flows.idx`) with only fragments `picked` (sorted,
    /// distinct ordinals), each checked against its CRC in table `t`. False (and nothing
    /// added) when one does not check out: the caller reads the block whole.
    #[allow(clippy::too_many_arguments)]
    fn push_picked(
        &mut self,
        file: &File,
        lut: &File,
        t: &crate::lut::Table,
        h: &BlockHeader,
        off: u64,
        picked: &[u32],
        read: &mut u64,
    ) -> bool {
        let blk = self.blocks.len() as u32;
        let mut frags = Vec::with_capacity(picked.len());
        let mut pos = Vec::new();
        if let (Some(&lo), Some(&hi)) = (picked.first(), picked.last()) {
            if hi >= h.records {
                return false;
            }
            let Some(crcs) = t.find(
                lut,
                crate::lut::Section::Crc,
                u128::from(lo),
                u128::from(hi),
                read,
            ) else {
                return false;
            };
            let crc_of = |o: u32| {
                crcs.binary_search_by_key(&u128::from(o), |e| e.0)
                    .ok()
                    .map(|i| crcs[i].1)
            };
            let recs_at = off + HEADER_LEN as u64;
            let pos_at = recs_at + u64::from(h.records) * RECORD_LEN as u64;
            for &o in picked {
                let Some(rb) = crate::lut::read_at(
                    file,
                    recs_at + u64::from(o) * RECORD_LEN as u64,
                    RECORD_LEN,
                    read,
                ) else {
                    return false;
                };
                let mut f = Fragment::decode(&rb);
                if u64::from(f.pos_off) + u64::from(f.pos_len) > u64::from(h.pos_bytes) {
                    return false;
                }
                let Some(pb) = crate::lut::read_at(
                    file,
                    pos_at + u64::from(f.pos_off),
                    f.pos_len as usize,
                    read,
                ) else {
                    return false;
                };
                if Some(crc32c::crc32c_append(crc32c::crc32c(&rb), &pb)) != crc_of(o) {
                    return false;
                }
                f.pos_off = pos.len() as u32;
                pos.extend_from_slice(&pb);
                frags.push(f);
            }
        }
        self.block_of.extend(std::iter::repeat_n(blk, frags.len()));
        self.fragments.extend(frags);
        self.pos_base.push(self.positions.len());
        self.positions.extend_from_slice(&pos);
        self.blocks.push(*h);
        true
    }

    /// The logical positions of fragment `i`'s packets, in order.
    pub fn positions(&self, i: usize) -> impl Iterator<Item = u64> + '_ {
        let f = &self.fragments[i];
        let blk = self.block_of[i] as usize;
        let h = &self.blocks[blk];
        let base = self.pos_base[blk] + f.pos_off as usize;
        let bytes = self
            .positions
            .get(base..base + f.pos_len as usize)
            .unwrap_or(&[]);
        let mut at = 0usize;
        let mut cur: Option<u64> = None;
        let end = h.cover_end_pos;
        std::iter::from_fn(move || {
            let v = get_varint(bytes, &mut at)?;
            let p = match cur {
                None => h.cover_start_pos.checked_add(v)?,
                Some(c) => c.checked_add(v)?,
            };
            // A position outside its block is damage: stop rather than name it.
            if p >= end {
                return None;
            }
            cur = Some(p);
            Some(p)
        })
    }

    /// The byte ranges `[start_pos, end_pos)` of the stream that valid blocks cover,
    /// merged, in order.
    pub fn covered(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for h in &self.blocks {
            match out.last_mut() {
                Some(l) if l.1 == h.cover_start_pos => l.1 = h.cover_end_pos,
                _ => out.push((h.cover_start_pos, h.cover_end_pos)),
            }
        }
        out
    }

    /// Bytes of position data.
    pub fn position_bytes(&self) -> u64 {
        self.positions.len() as u64
    }
}

/// Builds a stream's `flows.idx` again from its packets (`wirecap reindex`): `classify`
/// gives the flows of one chunk body. Written to a temporary file, synced and renamed
/// over the old index. Refused while the stream is written.
pub(crate) fn rebuild(
    r: &crate::StreamReader,
    classify: &dyn crate::ChunkSummarizer,
) -> Result<RebuildFlows> {
    let tmp = r.dir().join(format!("{}.tmp", layout::FLOWS));
    let lut_tmp = r.dir().join(format!("{}.tmp", layout::FLOWS_LUT));
    let mut out = std::io::BufWriter::new(File::create(&tmp).at(&tmp)?);
    let mut lut = std::io::BufWriter::new(File::create(&lut_tmp).at(&lut_tmp)?);
    let mut off = 0u64;
    let report = index_range(r, r.full_range(), classify, &mut |b| {
        out.write_all(b).at(&tmp)?;
        if let Some(t) = crate::lut::build(b, off) {
            lut.write_all(&t).at(&lut_tmp)?;
        }
        off += b.len() as u64;
        Ok(())
    })?;
    for (w, p) in [(out, &tmp), (lut, &lut_tmp)] {
        let f = w.into_inner().map_err(|e| e.into_error()).at(p)?;
        f.sync_all().at(p)?;
    }
    // The index first: until the tables are renamed too, the old ones do not match its
    // blocks (readers check) and are ignored.
    let dst = r.dir().join(layout::FLOWS);
    std::fs::rename(&tmp, &dst).at(&dst)?;
    let lut_dst = r.dir().join(layout::FLOWS_LUT);
    std::fs::rename(&lut_tmp, &lut_dst).at(&lut_dst)?;
    crate::meta::sync_dir(r.dir())?;
    Ok(report)
}

/// Classifies the packets of `range` whole chunk by chunk (a chunk is taken whole when
/// `range` starts or ends inside it) and hands every block to `out`.
fn index_range(
    r: &crate::StreamReader,
    range: crate::PacketRange,
    classify: &dyn crate::ChunkSummarizer,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<RebuildFlows> {
    let mut table = FlowTable::default();
    let mut scratch = vec![0u8; classify.summary_len()];
    let mut report = RebuildFlows::default();
    let mut emit = |b: Option<&[u8]>, report: &mut RebuildFlows| -> Result<()> {
        if let Some(b) = b {
            out(b)?;
            report.index_bytes += b.len() as u64;
            report.blocks += 1;
        }
        Ok(())
    };
    let mut slices = r.slices(range);
    let mut last_chunk = None;
    while let Some(s) = slices.next_with_record() {
        let (s, c) = s?;
        if last_chunk == Some(s.chunk) {
            continue;
        }
        last_chunk = Some(s.chunk);
        let body = r.read_body_of(&c)?;
        classify.summarize_flows(
            r.link_type(),
            &body,
            &mut scratch,
            &mut table,
            (c.first_packet, c.pos),
        );
        report.packets += u64::from(c.packets);
        report.chunks += 1;
        if table.chunk_done() {
            emit(table.take_block(false), &mut report)?;
        }
    }
    emit(table.take_block(true), &mut report)?;
    report.evicted_early = table.evicted_early();
    Ok(report)
}

impl FlowIndex {
    /// An index of `range` built now, in memory, by reading and classifying its chunks
    /// (for the parts of a stream that `flows.idx` does not cover).
    pub fn build(
        r: &crate::StreamReader,
        range: crate::PacketRange,
        classify: &dyn crate::ChunkSummarizer,
    ) -> Result<Self> {
        let mut bytes = Vec::new();
        index_range(r, range, classify, &mut |b| {
            bytes.extend_from_slice(b);
            Ok(())
        })?;
        let mut ix = Self::default();
        ix.file_bytes = walk_blocks(&bytes, u64::MAX, u64::MAX, |h, b| ix.push_block(h, b));
        Ok(ix)
    }

    fn push_block(&mut self, h: &BlockHeader, b: &[u8]) {
        let n = h.records as usize;
        let blk = self.blocks.len() as u32;
        for i in 0..n {
            self.fragments
                .push(Fragment::decode(&b[i * RECORD_LEN..(i + 1) * RECORD_LEN]));
            self.block_of.push(blk);
        }
        self.pos_base.push(self.positions.len());
        self.positions.extend_from_slice(&b[n * RECORD_LEN..]);
        self.blocks.push(*h);
    }

    /// Adds the blocks of `other` (an index of other packets of the same stream).
    pub fn extend(&mut self, other: Self) {
        let nb = self.blocks.len() as u32;
        let base = self.positions.len();
        self.fragments.extend(other.fragments);
        self.block_of.extend(other.block_of.iter().map(|b| b + nb));
        self.pos_base
            .extend(other.pos_base.iter().map(|p| p + base));
        self.positions.extend(other.positions);
        self.blocks.extend(other.blocks);
        self.file_bytes += other.file_bytes;
        self.bytes_read += other.bytes_read;
    }
}

/// What [`crate::Store::reindex_flows`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildFlows {
    pub chunks: u64,
    pub packets: u64,
    pub blocks: u64,
    pub index_bytes: u64,
    pub evicted_early: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn pf(a: u8, b: u8, port: u16, reverse: bool) -> PacketFlow {
        let mut x = [0u8; 16];
        x[0] = a;
        let mut y = [0u8; 16];
        y[0] = b;
        let (key, r) = FlowKey::new(FlowKind::Ipv4, 6, 0x800, (x, port), (y, 80));
        PacketFlow {
            key: PackedKey::pack(&key),
            reverse: r ^ reverse,
            tcp_flags: 0x10,
            orig_len: 100,
        }
    }

    #[test]
    fn blocks_round_trip_and_partition_packets() {
        let mut t = FlowTable::new(4);
        let mut bytes = Vec::new();
        let mut all = Vec::new();
        let mut pos = 0;
        for i in 0..1000u64 {
            let p = if i % 7 == 0 {
                PacketFlow::default()
            } else {
                pf((i % 9) as u8, 200, (i % 5) as u16, i % 2 == 0)
            };
            t.observe(&p, i, pos, 116, i * 1_000_000);
            all.push(pos);
            pos += 116;
            if i % 100 == 99 {
                bytes.extend_from_slice(t.take_block(i == 999).unwrap());
            }
        }
        assert!(t.evicted_early() > 0);
        let mut ix = FlowIndex::default();
        walk_blocks(&bytes, 1000, u64::MAX, |h, b| ix.push_block(h, b));
        assert_eq!(ix.blocks.len(), 10);
        assert_eq!(ix.covered(), vec![(0, 116_000)]);
        let mut got: Vec<u64> = (0..ix.fragments.len())
            .flat_map(|i| ix.positions(i).collect::<Vec<_>>())
            .collect();
        got.sort_unstable();
        assert_eq!(got, all);
        let n: u64 = ix.fragments.iter().map(|f| f.packet_count()).sum();
        assert_eq!(n, 1000);
        // A block beyond the end of the snapshot is never trusted.
        assert_eq!(walk_blocks(&bytes, 950, u64::MAX, |_, _| {}) as usize, {
            let mut at = 0;
            for _ in 0..9 {
                let h = BlockHeader::decode(&bytes[at..]).unwrap();
                at += HEADER_LEN + h.body_len() as usize;
            }
            at
        });
        // A torn block is not either.
        let cut = &bytes[..bytes.len() - 1];
        let kept = walk_blocks(cut, 1000, u64::MAX, |_, _| {});
        assert!(kept < cut.len() as u64);
    }

    /// Decodes blocks into (header, fragment, its packets' positions).
    fn decode(bytes: &[u8]) -> Vec<(BlockHeader, Fragment, Vec<u64>)> {
        let mut ix = FlowIndex::default();
        walk_blocks(bytes, u64::MAX, u64::MAX, |h, b| ix.push_block(h, b));
        (0..ix.fragments.len())
            .map(|i| {
                let h = ix.blocks[ix.block_of[i] as usize];
                (h, ix.fragments[i], ix.positions(i).collect())
            })
            .collect()
    }

    /// The table against a plain model (a `HashMap` from position to key, and what the
    /// module doc promises), with few slots so that the table evicts, and time jumps so
    /// that flows close idle.
    #[test]
    fn table_agrees_with_a_model_through_evictions_and_idle_closes() {
        let mut t = FlowTable::new(8);
        let mut bytes = Vec::new();
        let mut model: HashMap<u64, PacketFlow> = HashMap::new();
        let mut time: HashMap<u64, u64> = HashMap::new();
        let mut number: HashMap<u64, u64> = HashMap::new();
        let (mut rng, mut ts, mut pos) = (0x9e37_79b9_7f4a_7c15u64, 0u64, 0u64);
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for i in 0..3_000u64 {
            let r = next();
            ts += if r % 97 == 0 { IDLE_NS + 1 } else { 1_000 };
            let mut p = pf((r % 23) as u8, 200, (r >> 8) as u16 % 3, r >> 20 & 1 == 1);
            if r % 41 == 0 {
                p = PacketFlow::default();
            }
            p.orig_len = 60 + (r >> 30) as u32 % 1400;
            p.tcp_flags = 1 << ((r >> 40) % 8);
            let len = 16 + u64::from(p.orig_len);
            t.observe(&p, i, pos, len, ts);
            model.insert(pos, p);
            time.insert(pos, ts);
            number.insert(pos, i);
            pos += len;
            if i % 50 == 49 {
                bytes.extend_from_slice(t.take_block(i == 2_999).unwrap());
            }
        }
        let frags = decode(&bytes);
        let mut seen = 0;
        let mut id_of: HashMap<PackedKey, u64> = HashMap::new();
        let mut evicted = 0;
        for (h, f, ps) in &frags {
            seen += ps.len();
            assert_eq!(f.packet_count(), ps.len() as u64);
            let key = PackedKey::pack(&f.key);
            let (mut packets, mut bytes, mut flags) = ([0u64; 2], [0u64; 2], 0u8);
            let (mut lo, mut hi) = (u32::MAX, 0);
            for at in ps {
                let p = model[at];
                assert_eq!(p.key, key, "a packet in another flow's fragment");
                assert!((f.first_ts..=f.last_ts).contains(&time[at]));
                packets[usize::from(p.reverse)] += 1;
                bytes[usize::from(p.reverse)] += u64::from(p.orig_len);
                flags |= p.tcp_flags;
                (lo, hi) = (lo.min(p.orig_len), hi.max(p.orig_len));
            }
            assert_eq!(
                (f.packets, f.bytes, f.tcp_flags, f.min_len, f.max_len),
                (packets, bytes, flags, lo, hi)
            );
            if f.key.is_opaque() {
                continue;
            }
            // Fragments of one flow share its id until it is closed (with or without a
            // fragment saying so); a flow that comes back gets a new one, the number of
            // its first packet: never a merge.
            if id_of.get(&key) != Some(&f.id) {
                assert_eq!(f.id, number[&ps[0]]);
                assert!(!id_of.values().any(|&id| id == f.id));
                assert!(f.id >= h.cover_first_packet && f.id < h.cover_end_packet);
            }
            if f.flags & F_CLOSED != 0 {
                id_of.remove(&key);
            } else {
                id_of.insert(key, f.id);
            }
            if f.flags & F_EVICTED_EARLY != 0 {
                evicted += 1;
            }
        }
        assert_eq!(seen, 3_000);
        assert!(evicted > 0, "the cap was never reached");
        // Flows closed early with no packets in that block leave no fragment to flag.
        assert!(t.evicted_early() >= evicted);
        assert!(
            frags
                .iter()
                .any(|(_, f, _)| f.flags & F_CLOSED != 0 && f.flags & F_EVICTED_EARLY == 0),
            "no flow closed idle"
        );
    }

    /// A chunk the table saw but the writer could not index is forgotten: no block
    /// names its packets, and no flow keeps an id from them.
    #[test]
    fn abandoned_packets_are_never_named() {
        let mut t = FlowTable::new(16);
        let mut pos = 0;
        for i in 0..10u64 {
            t.observe(&pf(1 + (i % 2) as u8, 200, 1, false), i, pos, 100, i);
            pos += 100;
        }
        let lost_at = pos;
        {
            let mut run = t.run(10, pos);
            for i in 10..15u64 {
                run.push(&pf(if i == 12 { 7 } else { 1 }, 200, 1, false), 100, i);
            }
        }
        t.abandon(10);
        // The same numbers again, with other packets.
        for i in 10..13u64 {
            t.observe(
                &pf(if i == 11 { 9 } else { 1 }, 200, 1, false),
                i,
                pos,
                60,
                i,
            );
            pos += 60;
        }
        let frags = decode(t.take_block(true).unwrap());
        let n: usize = frags.iter().map(|(_, _, ps)| ps.len()).sum();
        assert_eq!(n, 3);
        for (h, f, ps) in &frags {
            assert_eq!((h.cover_first_packet, h.cover_end_packet), (10, 13));
            assert!(ps.iter().all(|&p| p >= lost_at && p < pos));
            assert_ne!(f.key.addr[0][0], 7, "a flow of the lost chunk");
            if f.key.addr[0][0] == 9 {
                assert_eq!(f.id, 11);
            }
            if f.key.addr[0][0] == 1 {
                assert_eq!(f.id, 0, "a flow from before keeps its id");
            }
        }
    }

    #[test]
    fn packed_keys_unpack() {
        let mut k = FlowKey::new(
            FlowKind::Ipv6,
            17,
            0x86dd,
            ([0xfe; 16], 53),
            ([0x20; 16], 5353),
        )
        .0;
        (k.tpid, k.vlan, k.mpls, k.icmp) = (0x8100, 4095, 0x10_0000, 0x180);
        let p = PackedKey::pack(&k);
        assert_eq!(p.unpack(), k);
        assert!(!p.is_opaque());
        assert!(PackedKey::pack(&FlowKey::default()).is_opaque());
        assert_ne!(p, PackedKey::pack(&FlowKey { icmp: 0x181, ..k }));
    }

    #[test]
    fn varints() {
        let mut b = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut b, v);
        }
        // The writer's encoding is the same bytes.
        for v in (0..64).flat_map(|s| {
            [
                (1u64 << s) - 1,
                1 << s,
                (1 << s) + 1,
                0x5555_5555_5555_5555 >> s,
            ]
        }) {
            let (mut x, mut y) = (Vec::new(), vec![9]);
            put_varint(&mut x, v);
            push_varint(&mut y, v);
            assert_eq!(x, y[1..], "{v:#x}");
        }
        let mut at = 0;
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(get_varint(&b, &mut at), Some(v));
        }
    }
}
