//! One TPACKET_V3 block, parsed from its bytes: no system call, no allocation, no `unsafe`.
//!
//! A block is what the kernel hands over at once: a `tpacket_block_desc` followed by
//! `num_pkts` packets, each a `tpacket3_hdr` whose `tp_next_offset` chains to the next.
//! [`BlockIter`] walks that chain over a `&mut [u8]` (the ring gives it the block once the
//! kernel has set `TP_STATUS_USER`; tests give it a buffer they built), checking every
//! offset against the block length so that a malformed block ends the walk with an error
//! instead of a panic or an out-of-bounds read.
//!
//! **VLAN tags.** The kernel strips the outer 802.1Q/802.1ad tag of a received frame and
//! reports it in `tp_vlan_tci` / `tp_vlan_tpid` (flags `TP_STATUS_VLAN_VALID`,
//! `TP_STATUS_VLAN_TPID_VALID`). As libpcap does, the iterator puts the tag back so the
//! stored frame equals the wire frame: the two MAC addresses move 4 bytes towards the
//! header (into the gap the kernel leaves between `sockaddr_ll` and the MAC header), the
//! tag goes between them and the EtherType, and caplen and orig_len grow by 4. When a
//! frame has no such gap (never for Ethernet with the kernel's layout) the frame is
//! assembled in a scratch buffer owned by the ring instead. An inner QinQ tag is never
//! stripped by the kernel, so one reinsertion restores both.

use crate::frame::{Frame, NS_PER_SEC};
use std::mem::{offset_of, size_of};

/// Length of an 802.1Q / 802.1ad tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = wirecap_wire::vlan::TAG_LEN;
/// Destination and source MAC addresses: where the tag is inserted.
const MAC_ADDRS_LEN: usize = wirecap_wire::ethernet::field::SRC.end;
/// TPID reported when the kernel does not give one (`TP_STATUS_VLAN_TPID_VALID` unset).
pub const DEFAULT_TPID: u16 = wirecap_wire::ethertype::VLAN;

/// Byte offsets of the fields this module reads, taken from `libc`'s definitions.
mod field {
    use super::*;
    use libc::{tpacket_block_desc, tpacket_hdr_v1, tpacket_hdr_variant1, tpacket3_hdr};

    const BH1: usize = offset_of!(tpacket_block_desc, hdr);
    pub(super) const BLOCK_STATUS: usize = BH1 + offset_of!(tpacket_hdr_v1, block_status);
    pub(super) const NUM_PKTS: usize = BH1 + offset_of!(tpacket_hdr_v1, num_pkts);
    pub(super) const FIRST_PKT: usize = BH1 + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
    pub(super) const BLK_LEN: usize = BH1 + offset_of!(tpacket_hdr_v1, blk_len);
    pub(super) const SEQ_NUM: usize = BH1 + offset_of!(tpacket_hdr_v1, seq_num);
    pub(super) const BLOCK_DESC_LEN: usize = size_of::<tpacket_block_desc>();

    pub(super) const NEXT: usize = offset_of!(tpacket3_hdr, tp_next_offset);
    pub(super) const SEC: usize = offset_of!(tpacket3_hdr, tp_sec);
    pub(super) const NSEC: usize = offset_of!(tpacket3_hdr, tp_nsec);
    pub(super) const SNAPLEN: usize = offset_of!(tpacket3_hdr, tp_snaplen);
    pub(super) const LEN: usize = offset_of!(tpacket3_hdr, tp_len);
    pub(super) const STATUS: usize = offset_of!(tpacket3_hdr, tp_status);
    pub(super) const MAC: usize = offset_of!(tpacket3_hdr, tp_mac);
    const HV1: usize = offset_of!(tpacket3_hdr, hv1);
    pub(super) const VLAN_TCI: usize = HV1 + offset_of!(tpacket_hdr_variant1, tp_vlan_tci);
    pub(super) const VLAN_TPID: usize = HV1 + offset_of!(tpacket_hdr_variant1, tp_vlan_tpid);
    pub(super) const PKT_HDR_LEN: usize = size_of::<tpacket3_hdr>();
}

/// Offset of the 32-bit block status word in a block (read and written atomically by the ring).
pub const BLOCK_STATUS_OFFSET: usize = field::BLOCK_STATUS;

/// Why a block could not be walked to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block descriptor itself is out of bounds.
    #[error("block descriptor out of bounds (block of {0} bytes)")]
    Descriptor(usize),
    /// A packet header or its data lies outside the block.
    #[error("packet {index} at offset {offset} lies outside the block")]
    OutOfBounds {
        /// Index of the packet in the block.
        index: u32,
        /// Its offset from the block start.
        offset: usize,
    },
}

/// Block-level facts from the descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Packets in the block.
    pub num_pkts: u32,
    /// Offset of the first packet header from the block start.
    pub offset_to_first_pkt: u32,
    /// Bytes of the block in use.
    pub blk_len: u32,
    /// Sequence number the kernel gave the block.
    pub seq_num: u64,
    /// Block status word (`TP_STATUS_USER`, `TP_STATUS_BLK_TMO`, …).
    pub status: u32,
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn rd_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl BlockHeader {
    /// Reads the descriptor at the start of `block`.
    pub fn parse(block: &[u8]) -> Result<Self, BlockError> {
        let err = || BlockError::Descriptor(block.len());
        if block.len() < field::BLOCK_DESC_LEN {
            return Err(err());
        }
        Ok(Self {
            num_pkts: rd_u32(block, field::NUM_PKTS).ok_or_else(err)?,
            offset_to_first_pkt: rd_u32(block, field::FIRST_PKT).ok_or_else(err)?,
            blk_len: rd_u32(block, field::BLK_LEN).ok_or_else(err)?,
            seq_num: rd_u64(block, field::SEQ_NUM).ok_or_else(err)?,
            status: rd_u32(block, field::BLOCK_STATUS).ok_or_else(err)?,
        })
    }
}

/// Per-packet facts read from a `tpacket3_hdr`.
#[derive(Debug, Clone, Copy)]
struct PktHeader {
    next: u32,
    ts_ns: u64,
    snaplen: u32,
    len: u32,
    status: u32,
    mac: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

impl PktHeader {
    /// Reads the header at `at`: one bounds check for the whole header, then fixed
    /// offsets (this runs once per packet).
    #[inline]
    fn parse(b: &[u8], at: usize) -> Option<Self> {
        let h: &[u8; field::PKT_HDR_LEN] = b
            .get(at..at.checked_add(field::PKT_HDR_LEN)?)?
            .try_into()
            .ok()?;
        let u16_at = |o: usize| u16::from_ne_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_ne_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        // u32 seconds times 1e9 plus nanoseconds cannot overflow a u64.
        let ts_ns = u64::from(u32_at(field::SEC)) * NS_PER_SEC + u64::from(u32_at(field::NSEC));
        Some(Self {
            next: u32_at(field::NEXT),
            ts_ns,
            snaplen: u32_at(field::SNAPLEN),
            len: u32_at(field::LEN),
            status: u32_at(field::STATUS),
            mac: u16_at(field::MAC),
            // tp_vlan_tci is a u32 in the header; the TCI is its low 16 bits.
            vlan_tci: (u32_at(field::VLAN_TCI) & 0xffff) as u16,
            vlan_tpid: u16_at(field::VLAN_TPID),
        })
    }

    /// libpcap's `VLAN_VALID`: the flag, or a non-zero TCI from kernels that predate it.
    fn vlan_valid(&self) -> bool {
        self.status & libc::TP_STATUS_VLAN_VALID != 0 || self.vlan_tci != 0
    }

    fn tpid(&self) -> u16 {
        if self.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && self.vlan_tpid != 0 {
            self.vlan_tpid
        } else {
            DEFAULT_TPID
        }
    }
}

/// The tag bytes as they appear on the wire: TPID then TCI, both big-endian.
pub fn vlan_tag_bytes(tpid: u16, tci: u16) -> [u8; VLAN_TAG_LEN] {
    let p = tpid.to_be_bytes();
    let c = tci.to_be_bytes();
    [p[0], p[1], c[0], c[1]]
}

/// Reinserts a VLAN tag in place: `buf[start..start + caplen]` holds a frame whose tag the
/// kernel stripped and `start >= VLAN_TAG_LEN`; afterwards `buf[start - 4..start + caplen]`
/// holds the frame with its tag back. Returns the new start.
///
/// Panics never: the caller checks the bounds; a frame shorter than the two MAC addresses
/// is left as it is (returns `start` unchanged).
pub fn reinsert_vlan_in_place(buf: &mut [u8], start: usize, caplen: usize, tag: [u8; 4]) -> usize {
    if caplen < MAC_ADDRS_LEN || start < VLAN_TAG_LEN || start + caplen > buf.len() {
        return start;
    }
    let new = start - VLAN_TAG_LEN;
    buf.copy_within(start..start + MAC_ADDRS_LEN, new);
    buf[new + MAC_ADDRS_LEN..new + MAC_ADDRS_LEN + VLAN_TAG_LEN].copy_from_slice(&tag);
    new
}

/// Builds `frame` with `tag` reinserted after the MAC addresses into `out` (cleared first).
pub fn reinsert_vlan_copy(frame: &[u8], tag: [u8; 4], out: &mut Vec<u8>) {
    out.clear();
    if frame.len() < MAC_ADDRS_LEN {
        out.extend_from_slice(frame);
        return;
    }
    out.extend_from_slice(&frame[..MAC_ADDRS_LEN]);
    out.extend_from_slice(&tag);
    out.extend_from_slice(&frame[MAC_ADDRS_LEN..]);
}

/// The walk over a block's packet chain, shared by [`BlockIter`] (the capture's frames,
/// VLAN tag put back) and [`RawPackets`] (the forwarder's packets, in place and writable):
/// one owner for the offset checks.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    offset: usize,
    index: u32,
    num_pkts: u32,
    failed: bool,
    chain_broken: bool,
}

impl Cursor {
    fn new(block: &[u8]) -> Result<Self, BlockError> {
        let hdr = BlockHeader::parse(block)?;
        let first = hdr.offset_to_first_pkt as usize;
        if hdr.num_pkts > 0 && (first < field::BLOCK_DESC_LEN || first > block.len()) {
            return Err(BlockError::Descriptor(block.len()));
        }
        Ok(Self {
            offset: first,
            index: 0,
            num_pkts: hdr.num_pkts,
            failed: false,
            chain_broken: false,
        })
    }

    /// The next packet's header offset and header, its frame checked to lie inside the
    /// block (`at + tp_mac .. + tp_snaplen`); the cursor has moved past it.
    #[inline]
    fn step(&mut self, block: &[u8]) -> Option<Result<(usize, PktHeader), BlockError>> {
        if self.failed || self.index >= self.num_pkts {
            return None;
        }
        let at = self.offset;
        let oob = BlockError::OutOfBounds {
            index: self.index,
            offset: at,
        };
        if self.chain_broken {
            self.failed = true;
            return Some(Err(oob));
        }
        let Some(h) = PktHeader::parse(block, at) else {
            self.failed = true;
            return Some(Err(oob));
        };
        if (at + usize::from(h.mac))
            .checked_add(h.snaplen as usize)
            .is_none_or(|end| end > block.len())
        {
            self.failed = true;
            return Some(Err(oob));
        }
        // Advance first, so the next call is right whatever the caller does with this one.
        self.index += 1;
        if self.index < self.num_pkts {
            if h.next == 0 {
                self.chain_broken = true; // the chain ends early: the next call reports it
            }
            self.offset = at.saturating_add(h.next as usize);
        }
        Some(Ok((at, h)))
    }
}

/// Walks the packets of one block. A lending iterator: each [`Frame`] borrows the block
/// (or the scratch buffer) until the next call.
pub struct BlockIter<'b> {
    block: &'b mut [u8],
    scratch: &'b mut Vec<u8>,
    snaplen: u32,
    cursor: Cursor,
}

impl<'b> BlockIter<'b> {
    /// Starts a walk over `block`. `snaplen` truncates frames (after VLAN reinsertion, as
    /// libpcap does); `scratch` is used only for frames without room to reinsert in place
    /// and should have capacity `snaplen + 4` so that it never reallocates.
    pub fn new(
        block: &'b mut [u8],
        snaplen: u32,
        scratch: &'b mut Vec<u8>,
    ) -> Result<Self, BlockError> {
        let cursor = Cursor::new(block)?;
        Ok(Self {
            block,
            scratch,
            snaplen,
            cursor,
        })
    }

    /// Packets the descriptor announces.
    pub fn num_pkts(&self) -> u32 {
        self.cursor.num_pkts
    }

    /// Packets handed out so far.
    pub fn yielded(&self) -> u32 {
        self.cursor.index
    }

    /// The next frame, `None` at the end, or an error that ends the walk (the remaining
    /// `num_pkts() - yielded()` packets are lost and must be counted by the caller).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Frame<'_>, BlockError>> {
        let (at, h) = match self.cursor.step(self.block)? {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let start = at + usize::from(h.mac);
        let caplen = h.snaplen as usize;
        let mut orig_len = h.len;
        let limit = self.snaplen as usize;
        if h.vlan_valid() && caplen >= MAC_ADDRS_LEN {
            let tag = vlan_tag_bytes(h.tpid(), h.vlan_tci);
            orig_len = orig_len.saturating_add(VLAN_TAG_LEN as u32);
            let new_len = (caplen + VLAN_TAG_LEN).min(limit);
            // Room in place: the 4 bytes before the MAC header must not reach into the
            // tpacket3_hdr we read (already copied out, but keep it intact for debugging).
            if usize::from(h.mac) >= field::PKT_HDR_LEN + VLAN_TAG_LEN {
                let new_start = reinsert_vlan_in_place(self.block, start, caplen, tag);
                let data = &self.block[new_start..new_start + new_len];
                return Some(Ok(Frame {
                    ts_ns: h.ts_ns,
                    orig_len,
                    data,
                }));
            }
            reinsert_vlan_copy(&self.block[start..start + caplen], tag, self.scratch);
            let data = &self.scratch[..new_len.min(self.scratch.len())];
            return Some(Ok(Frame {
                ts_ns: h.ts_ns,
                orig_len,
                data,
            }));
        }
        let data = &self.block[start..start + caplen.min(limit)];
        Some(Ok(Frame {
            ts_ns: h.ts_ns,
            orig_len,
            data,
        }))
    }
}

/// One packet of a block as the kernel left it: no VLAN reinsertion, no snaplen, the frame
/// writable in place (the forwarder rewrites it there).
#[derive(Debug)]
pub struct RawPacket<'b> {
    /// Timestamp in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Length on the wire (`tp_len`).
    pub wire_len: u32,
    /// `tp_status` (`TP_STATUS_CSUMNOTREADY`, `TP_STATUS_VLAN_VALID`, …).
    pub status: u32,
    /// The slot's bytes before the frame: the `tpacket3_hdr`, the `sockaddr_ll`, and right
    /// before the frame the `virtio_net_hdr` when the socket has `PACKET_VNET_HDR`.
    pub headroom: &'b [u8],
    /// The captured bytes (`tp_snaplen` of them).
    pub data: &'b mut [u8],
}

/// Walks the packets of one block in place, for a reader that changes them (the inline
/// forwarder). A lending iterator like [`BlockIter`], with the same checks.
pub struct RawPackets<'b> {
    block: &'b mut [u8],
    cursor: Cursor,
}

impl<'b> RawPackets<'b> {
    /// Starts a walk over `block`.
    pub fn new(block: &'b mut [u8]) -> Result<Self, BlockError> {
        let cursor = Cursor::new(block)?;
        Ok(Self { block, cursor })
    }

    /// Packets the descriptor announces.
    pub fn num_pkts(&self) -> u32 {
        self.cursor.num_pkts
    }

    /// Packets handed out so far.
    pub fn yielded(&self) -> u32 {
        self.cursor.index
    }

    /// The next packet, `None` at the end, or an error that ends the walk.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<RawPacket<'_>, BlockError>> {
        let (at, h) = match self.cursor.step(self.block)? {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let start = at + usize::from(h.mac);
        let (before, rest) = self.block.split_at_mut(start);
        Some(Ok(RawPacket {
            ts_ns: h.ts_ns,
            wire_len: h.len,
            status: h.status,
            headroom: &before[at..],
            data: &mut rest[..h.snaplen as usize],
        }))
    }
}

/// Builds TPACKET_V3 blocks in memory the way the kernel lays them out, for tests here and
/// in the pipeline (a "kernel" that needs no socket).
pub mod build {
    use super::*;

    /// One packet to put into a test block.
    #[derive(Debug, Clone)]
    pub struct TestPacket {
        /// Seconds.
        pub sec: u32,
        /// Nanoseconds.
        pub nsec: u32,
        /// Wire length as the kernel reports it (without a stripped tag).
        pub len: u32,
        /// Bytes the kernel copied (without a stripped tag).
        pub data: Vec<u8>,
        /// `Some((tpid, tci))` when the kernel stripped a tag; `tpid = None` means the
        /// kernel did not set `TP_STATUS_VLAN_TPID_VALID`.
        pub vlan: Option<(Option<u16>, u16)>,
    }

    fn align16(x: usize) -> usize {
        (x + 15) & !15
    }

    /// Lays out `pkts` in a zeroed block of `block_size` bytes with the kernel's offsets
    /// (`tp_mac = TPACKET_ALIGN(TPACKET3_HDRLEN + 16) - 14` for Ethernet) and marks it
    /// `TP_STATUS_USER`. Panics if they do not fit (test helper).
    pub fn block(block_size: usize, pkts: &[TestPacket]) -> Vec<u8> {
        let mut b = vec![0u8; block_size];
        let first = align16(field::BLOCK_DESC_LEN);
        let mut at = first;
        let hdrlen = libc::TPACKET3_HDRLEN;
        let netoff = align16(hdrlen + 16);
        let macoff = netoff - 14;
        for (i, p) in pkts.iter().enumerate() {
            let next = align16(macoff + p.data.len());
            let w32 = |b: &mut Vec<u8>, off: usize, v: u32| {
                b[at + off..at + off + 4].copy_from_slice(&v.to_ne_bytes())
            };
            w32(
                &mut b,
                field::NEXT,
                if i + 1 == pkts.len() { 0 } else { next as u32 },
            );
            w32(&mut b, field::SEC, p.sec);
            w32(&mut b, field::NSEC, p.nsec);
            w32(&mut b, field::SNAPLEN, p.data.len() as u32);
            w32(&mut b, field::LEN, p.len);
            let mut status = libc::TP_STATUS_USER;
            if let Some((tpid, tci)) = p.vlan {
                status |= libc::TP_STATUS_VLAN_VALID;
                w32(&mut b, field::VLAN_TCI, u32::from(tci));
                if let Some(tpid) = tpid {
                    status |= libc::TP_STATUS_VLAN_TPID_VALID;
                    b[at + field::VLAN_TPID..at + field::VLAN_TPID + 2]
                        .copy_from_slice(&tpid.to_ne_bytes());
                }
            }
            w32(&mut b, field::STATUS, status);
            b[at + field::MAC..at + field::MAC + 2].copy_from_slice(&(macoff as u16).to_ne_bytes());
            b[at + macoff..at + macoff + p.data.len()].copy_from_slice(&p.data);
            at += next;
        }
        let w32 =
            |b: &mut Vec<u8>, off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        w32(&mut b, 0, 3); // version
        w32(&mut b, field::BLOCK_STATUS, libc::TP_STATUS_USER);
        w32(&mut b, field::NUM_PKTS, pkts.len() as u32);
        w32(&mut b, field::FIRST_PKT, first as u32);
        w32(&mut b, field::BLK_LEN, at as u32);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::build::{TestPacket, block};
    use super::*;

    fn eth(dst: u8, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![dst; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn collect(b: &mut [u8], snaplen: u32) -> Vec<(u64, u32, Vec<u8>)> {
        let mut scratch = Vec::with_capacity(snaplen as usize + 4);
        let mut it = BlockIter::new(b, snaplen, &mut scratch).unwrap();
        let mut out = vec![];
        while let Some(f) = it.next() {
            let f = f.unwrap();
            out.push((f.ts_ns, f.orig_len, f.data.to_vec()));
        }
        out
    }

    #[test]
    fn walks_plain_frames() {
        let p1 = eth(0xff, 0x0800, &[1; 50]);
        let p2 = eth(0xaa, 0x86dd, &[2; 1000]);
        let mut b = block(
            1 << 16,
            &[
                TestPacket {
                    sec: 10,
                    nsec: 5,
                    len: 64,
                    data: p1.clone(),
                    vlan: None,
                },
                TestPacket {
                    sec: 11,
                    nsec: 999_999_999,
                    len: 1014,
                    data: p2.clone(),
                    vlan: None,
                },
            ],
        );
        let got = collect(&mut b, 262144);
        assert_eq!(
            got,
            vec![(10_000_000_005, 64, p1), (11_999_999_999, 1014, p2)]
        );
    }

    #[test]
    fn raw_packets_are_in_place_and_keep_the_stripped_tag_out() {
        let p1 = eth(0xff, 0x0800, &[1; 50]);
        let p2 = eth(0xaa, 0x0800, &[2; 70]);
        let mut b = block(
            1 << 16,
            &[
                TestPacket {
                    sec: 1,
                    nsec: 2,
                    len: 64,
                    data: p1.clone(),
                    vlan: None,
                },
                TestPacket {
                    sec: 3,
                    nsec: 4,
                    len: 84,
                    data: p2.clone(),
                    vlan: Some((None, 7)),
                },
            ],
        );
        let mut it = RawPackets::new(&mut b).unwrap();
        assert_eq!(it.num_pkts(), 2);
        let p = it.next().unwrap().unwrap();
        assert_eq!(
            (p.ts_ns, p.wire_len, &p.data[..]),
            (1_000_000_002, 64, &p1[..])
        );
        assert_eq!(p.status & libc::TP_STATUS_VLAN_VALID, 0);
        assert!(p.headroom.len() >= field::PKT_HDR_LEN);
        p.data[0] = 0x11; // written in place
        let p = it.next().unwrap().unwrap();
        assert_eq!(
            (p.ts_ns, p.wire_len, &p.data[..]),
            (3_000_000_004, 84, &p2[..])
        );
        assert_ne!(p.status & libc::TP_STATUS_VLAN_VALID, 0);
        assert!(it.next().is_none());
        assert_eq!(it.yielded(), 2);
        let mut it = RawPackets::new(&mut b).unwrap();
        assert_eq!(it.next().unwrap().unwrap().data[0], 0x11);
    }

    #[test]
    fn reinserts_8021q_and_qinq() {
        // Wire frames: 802.1Q tag 0x8100/100 then IPv4; QinQ: 0x88a8/200 outer, 0x8100/300 inner.
        let inner = eth(0x11, 0x0800, &[7; 46]);
        let mut wire_q = inner[..12].to_vec();
        wire_q.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
        wire_q.extend_from_slice(&inner[12..]);
        let mut wire_qinq = inner[..12].to_vec();
        wire_qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 200, 0x81, 0x00, 0x01, 0x2c]);
        wire_qinq.extend_from_slice(&inner[12..]);
        // What the kernel hands out: the outer tag stripped.
        let stripped_q = inner.clone();
        let mut stripped_qinq = inner[..12].to_vec();
        stripped_qinq.extend_from_slice(&[0x81, 0x00, 0x01, 0x2c]);
        stripped_qinq.extend_from_slice(&inner[12..]);
        let mut b = block(
            1 << 16,
            &[
                TestPacket {
                    sec: 1,
                    nsec: 0,
                    len: stripped_q.len() as u32,
                    data: stripped_q,
                    vlan: Some((None, 100)),
                },
                TestPacket {
                    sec: 1,
                    nsec: 1,
                    len: stripped_qinq.len() as u32,
                    data: stripped_qinq,
                    vlan: Some((Some(0x88a8), 200)),
                },
                // Priority-tagged frame: TCI 0 but VLAN_VALID set.
                TestPacket {
                    sec: 1,
                    nsec: 2,
                    len: inner.len() as u32,
                    data: inner.clone(),
                    vlan: Some((Some(0x8100), 0)),
                },
            ],
        );
        let got = collect(&mut b, 262144);
        assert_eq!(got[0].2, wire_q);
        assert_eq!(got[0].1 as usize, wire_q.len());
        assert_eq!(got[1].2, wire_qinq);
        assert_eq!(got[1].1 as usize, wire_qinq.len());
        let mut prio = inner[..12].to_vec();
        prio.extend_from_slice(&[0x81, 0, 0, 0]);
        prio.extend_from_slice(&inner[12..]);
        assert_eq!(got[2].2, prio);
    }

    #[test]
    fn snaplen_truncates_after_reinsertion() {
        let inner = eth(0x11, 0x0800, &[7; 100]);
        let mut b = block(
            1 << 16,
            &[TestPacket {
                sec: 1,
                nsec: 0,
                len: 114,
                data: inner.clone(),
                vlan: Some((None, 5)),
            }],
        );
        let got = collect(&mut b, 64);
        assert_eq!(got[0].1, 118);
        assert_eq!(got[0].2.len(), 64);
        assert_eq!(&got[0].2[12..16], &[0x81, 0, 0, 5]);
    }

    #[test]
    fn copy_path_matches_in_place_path() {
        let f = eth(0x33, 0x0800, &[9; 20]);
        let mut out = vec![];
        reinsert_vlan_copy(&f, [0x81, 0, 0, 42], &mut out);
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&f);
        let s = reinsert_vlan_in_place(&mut buf, 4, f.len(), [0x81, 0, 0, 42]);
        assert_eq!(s, 0);
        assert_eq!(&buf[..], &out[..]);
    }

    #[test]
    fn malformed_blocks_end_with_errors_not_panics() {
        let p = eth(0xff, 0x0800, &[1; 50]);
        let good = block(
            4096,
            &[
                TestPacket {
                    sec: 1,
                    nsec: 0,
                    len: 64,
                    data: p.clone(),
                    vlan: None,
                },
                TestPacket {
                    sec: 1,
                    nsec: 0,
                    len: 64,
                    data: p,
                    vlan: None,
                },
            ],
        );
        // Too many packets announced.
        let mut b = good.clone();
        b[field::NUM_PKTS..field::NUM_PKTS + 4].copy_from_slice(&5u32.to_ne_bytes());
        let mut scratch = vec![];
        let mut it = BlockIter::new(&mut b, 65535, &mut scratch).unwrap();
        let mut ok = 0;
        let mut errs = 0;
        while let Some(r) = it.next() {
            if r.is_ok() { ok += 1 } else { errs += 1 }
        }
        assert_eq!((ok, errs), (2, 1));
        // Every single-byte corruption of the header region: never a panic.
        for i in 0..256 {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let mut scratch = vec![];
                if let Ok(mut it) = BlockIter::new(&mut b, 65535, &mut scratch) {
                    let mut n = 0;
                    while it.next().is_some() {
                        n += 1;
                        assert!(n < 10);
                    }
                }
            }
        }
        // Truncated descriptor.
        let mut tiny = vec![0u8; 8];
        assert!(BlockIter::new(&mut tiny, 100, &mut scratch).is_err());
    }
}
