//! Lookup tables of the flow index (`flows.lut`): from address, port, protocol,
//! EtherType, VLAN id and MPLS label to the fragments of one `flows.idx` block that hold
//! them, so that a query reads only the fragment records it may need (see the module
//! doc of [`crate::flows`] for the on-disk form and why).
//!
//! This module writes and reads the tables; what a filter needs from them (which keys,
//! and how the sets combine) is the query crate's business.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::flows::{BlockHeader, FlowKind, Fragment, HEADER_LEN, RECORD_LEN};
use crate::index::{le32, le64};
use crate::layout;

const MAGIC: [u8; 4] = *b"WFT1";
const VERSION: u32 = 1;
/// Bytes of a table's header.
pub const TABLE_HEADER_LEN: usize = 64;
/// Entries per page: a page is the unit a lookup reads and checks.
pub const PAGE_ENTRIES: usize = 256;
/// Bytes of one page's directory entry: its first key (16) and CRC32C (4).
const DIR_ENTRY: usize = 20;

/// What a section of a table is keyed by. Every section is a sorted list of
/// `(key, fragment ordinal in the block)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Section {
    /// IPv4 endpoint addresses of IPv4 flows, as big-endian integers (a net is a range).
    V4 = 0,
    /// IPv6 endpoint addresses of IPv6 flows, as big-endian integers.
    V6,
    /// `proto << 16 | port` of the endpoint ports of TCP, UDP and SCTP flows (IP).
    Port,
    /// `kind << 8 | proto` of IP flows (kind 4 or 6, see [`FlowKind`]).
    Proto,
    /// The key's EtherType (0 for 802.3 LLC frames) of every keyed fragment.
    Ether,
    /// The TPID of the one VLAN tag, of tagged flows.
    Tpid,
    /// The VLAN id, of tagged flows.
    Vlan,
    /// MPLS label plus one, of labelled flows.
    Mpls,
    /// Opaque fragments (key 0): every filter may match them.
    Opaque,
    /// Not a lookup: key = fragment ordinal, value = CRC32C of its record and positions.
    Crc,
}

const SECTIONS: usize = 10;

fn width(s: usize) -> usize {
    if s == Section::V6 as usize { 16 } else { 4 }
}

/// Builds the table of one `flows.idx` block (`block`: header and body, as the writer
/// appends it) that starts `flows_off` bytes into `flows.idx`. `None` for bytes that are
/// not a whole valid block.
pub(crate) fn build(block: &[u8], flows_off: u64) -> Option<Vec<u8>> {
    let h = BlockHeader::decode(block)?;
    let n = h.records as usize;
    let body = block.get(HEADER_LEN..)?;
    let recs = body.get(..n * RECORD_LEN)?;
    let pos = &body[n * RECORD_LEN..];
    let mut sec: [Vec<(u128, u32)>; SECTIONS] = Default::default();
    for (i, rb) in recs.chunks_exact(RECORD_LEN).enumerate() {
        let f = Fragment::decode(rb);
        let o = i as u32;
        let (a, b) = (f.pos_off as usize, f.pos_off as usize + f.pos_len as usize);
        let crc = crc32c::crc32c_append(crc32c::crc32c(rb), pos.get(a..b)?);
        sec[Section::Crc as usize].push((i as u128, crc));
        let k = &f.key;
        let mut two = |s: Section, x: u128, y: u128| {
            sec[s as usize].push((x, o));
            if y != x {
                sec[s as usize].push((y, o));
            }
        };
        match k.kind {
            FlowKind::Opaque => {
                sec[Section::Opaque as usize].push((0, o));
                continue;
            }
            FlowKind::Ipv4 => {
                let v = |x: &[u8; 16]| u128::from(u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
                two(Section::V4, v(&k.addr[0]), v(&k.addr[1]));
            }
            FlowKind::Ipv6 => {
                two(
                    Section::V6,
                    u128::from_be_bytes(k.addr[0]),
                    u128::from_be_bytes(k.addr[1]),
                );
            }
            FlowKind::Ether => {}
        }
        if matches!(k.kind, FlowKind::Ipv4 | FlowKind::Ipv6) {
            let p = u128::from(k.proto);
            if matches!(k.proto, 6 | 17 | 132) {
                two(
                    Section::Port,
                    p << 16 | u128::from(k.port[0]),
                    p << 16 | u128::from(k.port[1]),
                );
            }
            sec[Section::Proto as usize].push(((k.kind as u128) << 8 | p, o));
        }
        sec[Section::Ether as usize].push((u128::from(k.ethertype), o));
        if k.tpid != 0 {
            sec[Section::Tpid as usize].push((u128::from(k.tpid), o));
            sec[Section::Vlan as usize].push((u128::from(k.vlan), o));
        }
        if k.mpls != 0 {
            sec[Section::Mpls as usize].push((u128::from(k.mpls), o));
        }
    }
    let mut dir = Vec::new();
    let mut pages = Vec::new();
    for (s, entries) in sec.iter_mut().enumerate() {
        // This runs on the writer once per block: sort 4-byte keys packed in a word.
        if s == Section::Crc as usize {
            // Pushed in ordinal order.
        } else if width(s) == 4 {
            let mut packed: Vec<u64> = entries
                .iter()
                .map(|&(k, v)| (k as u64) << 32 | u64::from(v))
                .collect();
            packed.sort_unstable();
            packed.dedup();
            *entries = packed
                .into_iter()
                .map(|p| (u128::from(p >> 32), p as u32))
                .collect();
        } else {
            entries.sort_unstable();
            entries.dedup();
        }
        dir.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        let w = width(s);
        for page in entries.chunks(PAGE_ENTRIES) {
            let start = pages.len();
            for &(k, v) in page {
                pages.extend_from_slice(&k.to_le_bytes()[..w]);
                pages.extend_from_slice(&v.to_le_bytes());
            }
            dir.extend_from_slice(&page[0].0.to_le_bytes());
            dir.extend_from_slice(&crc32c::crc32c(&pages[start..]).to_le_bytes());
        }
    }
    let mut out = vec![0u8; TABLE_HEADER_LEN];
    out[0..4].copy_from_slice(&MAGIC);
    out[4..8].copy_from_slice(&VERSION.to_le_bytes());
    out[8..16].copy_from_slice(&flows_off.to_le_bytes());
    out[16..20].copy_from_slice(&block[60..64]);
    out[20..24].copy_from_slice(&h.records.to_le_bytes());
    out[24..28].copy_from_slice(&(dir.len() as u32).to_le_bytes());
    out[28..32].copy_from_slice(&(pages.len() as u32).to_le_bytes());
    out[32..36].copy_from_slice(&crc32c::crc32c(&dir).to_le_bytes());
    let crc = crc32c::crc32c(&out[..60]);
    out[60..64].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&dir);
    out.extend_from_slice(&pages);
    Some(out)
}

/// Reads `len` bytes at `at`, counting them; `None` past the end or on an error (a
/// reader then does without the table).
pub(crate) fn read_at(f: &File, at: u64, len: usize, read: &mut u64) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, at).ok()?;
    *read += len as u64;
    Some(b)
}

/// One table whose header checked out; its directory is read when first needed (a
/// block outside a query's time range costs its header only).
#[derive(Clone, Debug)]
pub struct Table {
    /// Where its block starts in `flows.idx`, and that block header's own CRC.
    pub(crate) flows_off: u64,
    pub(crate) flows_hdr_crc: u32,
    pub records: u32,
    /// Bytes of the whole table in `flows.lut`.
    pub(crate) len: u64,
    at: u64,
    dir_len: usize,
    dir_crc: u32,
    dir: std::cell::OnceCell<Option<Dir>>,
}

#[derive(Clone, Debug)]
struct Dir {
    counts: [u32; SECTIONS],
    /// Per section: each page's first key and CRC32C.
    fences: [Vec<(u128, u32)>; SECTIONS],
    /// Where each section's pages start in `flows.lut`.
    starts: [u64; SECTIONS],
}

impl Table {
    /// The table at `at` of `lut` (`lut_len` bytes long), when its header checks out and
    /// it is whole.
    pub(crate) fn read(lut: &File, at: u64, lut_len: u64, read: &mut u64) -> Option<Self> {
        if at.checked_add(TABLE_HEADER_LEN as u64)? > lut_len {
            return None;
        }
        let h = read_at(lut, at, TABLE_HEADER_LEN, read)?;
        if h[0..4] != MAGIC || le32(&h, 4) != VERSION || crc32c::crc32c(&h[..60]) != le32(&h, 60) {
            return None;
        }
        let (dir_len, pages_len) = (le32(&h, 24) as usize, le32(&h, 28) as u64);
        let len = TABLE_HEADER_LEN as u64 + dir_len as u64 + pages_len;
        if at.checked_add(len)? > lut_len {
            return None;
        }
        Some(Self {
            flows_off: le64(&h, 8),
            flows_hdr_crc: le32(&h, 16),
            records: le32(&h, 20),
            len,
            at,
            dir_len,
            dir_crc: le32(&h, 32),
            dir: std::cell::OnceCell::new(),
        })
    }

    /// The directory, read and checked once. `None`: it is damaged.
    fn dir(&self, lut: &File, read: &mut u64) -> Option<&Dir> {
        self.dir
            .get_or_init(|| {
                let start = self.at + TABLE_HEADER_LEN as u64;
                let dir = read_at(lut, start, self.dir_len, read)?;
                if crc32c::crc32c(&dir) != self.dir_crc {
                    return None;
                }
                let mut d = Dir {
                    counts: [0; SECTIONS],
                    fences: Default::default(),
                    starts: [0; SECTIONS],
                };
                let mut o = 0usize;
                let mut p = start + self.dir_len as u64;
                for s in 0..SECTIONS {
                    let n = le32(dir.get(o..o + 4)?, 0);
                    o += 4;
                    d.counts[s] = n;
                    d.starts[s] = p;
                    p += u64::from(n) * (width(s) as u64 + 4);
                    for _ in 0..(n as usize).div_ceil(PAGE_ENTRIES) {
                        let e = dir.get(o..o + DIR_ENTRY)?;
                        let key = u128::from_le_bytes(e[..16].try_into().ok()?);
                        d.fences[s].push((key, le32(e, 16)));
                        o += DIR_ENTRY;
                    }
                }
                (o == self.dir_len && p == self.at + self.len).then_some(d)
            })
            .as_ref()
    }

    /// The entries `(key, value)` of section `s` with `lo <= key <= hi`, in key order,
    /// reading and checking only the pages they can be in. `None`: a page is damaged.
    pub fn find(
        &self,
        lut: &File,
        s: Section,
        lo: u128,
        hi: u128,
        read: &mut u64,
    ) -> Option<Vec<(u128, u32)>> {
        let s = s as usize;
        let d = self.dir(lut, read)?;
        let f = &d.fences[s];
        if lo > hi || f.is_empty() {
            return Some(Vec::new());
        }
        // A key can continue from the end of the page before the first one > lo.
        let first = f.partition_point(|&(k, _)| k < lo).saturating_sub(1);
        let end = f.partition_point(|&(k, _)| k <= hi);
        if first >= end {
            return Some(Vec::new());
        }
        let w = width(s);
        let esz = w + 4;
        let page_bytes = PAGE_ENTRIES * esz;
        let n = d.counts[s] as usize;
        let last_entry = (end * PAGE_ENTRIES).min(n);
        let at = d.starts[s] + (first * page_bytes) as u64;
        let bytes = read_at(lut, at, (last_entry - first * PAGE_ENTRIES) * esz, read)?;
        let mut out = Vec::new();
        for (i, page) in bytes.chunks(page_bytes).enumerate() {
            if crc32c::crc32c(page) != f[first + i].1 {
                return None;
            }
            for e in page.chunks_exact(esz) {
                let mut k = [0u8; 16];
                k[..w].copy_from_slice(&e[..w]);
                let k = u128::from_le_bytes(k);
                if (lo..=hi).contains(&k) {
                    out.push((k, le32(e, w)));
                }
            }
        }
        Some(out)
    }
}

/// A table as the planner sees it: lookups into one block's fragments.
pub struct TableProbe<'a> {
    pub(crate) table: &'a Table,
    pub(crate) block: &'a BlockHeader,
    pub(crate) lut: &'a File,
    pub(crate) read: std::cell::Cell<u64>,
}

impl TableProbe<'_> {
    /// Fragments in the block.
    pub fn records(&self) -> u32 {
        self.table.records
    }

    /// The block's header (which packets and bytes it covers).
    pub fn block(&self) -> &BlockHeader {
        self.block
    }

    /// The ordinals (sorted, distinct) of the fragments with an entry of section `s`
    /// keyed in `lo..=hi`. `None`: the table is damaged there (read the block whole).
    pub fn find(&self, s: Section, lo: u128, hi: u128) -> Option<Vec<u32>> {
        let mut read = self.read.get();
        let r = self.table.find(self.lut, s, lo, hi, &mut read);
        self.read.set(read);
        let mut v: Vec<u32> = r?.into_iter().map(|(_, o)| o).collect();
        v.sort_unstable();
        v.dedup();
        Some(v)
    }
}

/// Cuts `flows.lut` in `dir` after the last whole table whose block ends at or before
/// `flows_len` bytes of `flows.idx` (recovery, after `flows.idx` was cut). Returns the
/// bytes cut.
pub(crate) fn cut_tables(dir: &Path, flows_len: u64) -> Result<u64> {
    let path = dir.join(layout::FLOWS_LUT);
    let lut = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at(&path),
    };
    let len = lut.metadata().at(&path)?.len();
    let flows = File::open(dir.join(layout::FLOWS)).ok();
    let mut at = 0u64;
    let mut next = 0u64;
    let mut read = 0u64;
    while let Some(t) = Table::read(&lut, at, len, &mut read) {
        let Some(h) = flows
            .as_ref()
            .and_then(|f| read_at(f, t.flows_off, HEADER_LEN, &mut read))
        else {
            break;
        };
        let Some(bh) = BlockHeader::decode(&h) else {
            break;
        };
        let end = t.flows_off + HEADER_LEN as u64 + bh.body_len();
        if t.flows_off != next || le32(&h, 60) != t.flows_hdr_crc || end > flows_len {
            break;
        }
        next = end;
        at += t.len;
    }
    if at < len {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(at))
            .at(&path)?;
    }
    Ok(len - at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{FlowKey, FlowTable, PackedKey, PacketFlow};

    /// Ten blocks of flows between hosts `10.0.0.x` and `10.9.9.9`, with opaque packets;
    /// `flows.idx` and `flows.lut` written to `dir`. Returns each block's end offset.
    fn write(dir: &Path) -> Vec<u64> {
        let mut t = FlowTable::new(64);
        let (mut idx, mut lut, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..1000u64 {
            let p = if i % 7 == 0 {
                PacketFlow::default()
            } else {
                let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
                a[..4].copy_from_slice(&[10, 0, 0, (i % 9) as u8]);
                b[..4].copy_from_slice(&[10, 9, 9, 9]);
                let (key, reverse) = FlowKey::new(
                    FlowKind::Ipv4,
                    17,
                    0x800,
                    (a, 1000 + (i % 3) as u16),
                    (b, 53),
                );
                PacketFlow {
                    key: PackedKey::pack(&key),
                    reverse,
                    tcp_flags: 0,
                    orig_len: 100,
                }
            };
            t.observe(&p, i, i * 116, 116, i * 1_000_000);
            if i % 100 == 99 {
                let b = t.take_block(i == 999).unwrap().to_vec();
                lut.extend(build(&b, idx.len() as u64).unwrap());
                idx.extend(b);
                ends.push(idx.len() as u64);
            }
        }
        std::fs::write(dir.join(layout::FLOWS), idx).unwrap();
        std::fs::write(dir.join(layout::FLOWS_LUT), lut).unwrap();
        ends
    }

    #[test]
    fn lookups_find_exactly_the_fragments_with_the_key() {
        let d = tempfile::tempdir().unwrap();
        write(d.path());
        let lut = File::open(d.path().join(layout::FLOWS_LUT)).unwrap();
        let idx = std::fs::read(d.path().join(layout::FLOWS)).unwrap();
        let len = lut.metadata().unwrap().len();
        let (mut at, mut off, mut read, mut tables) = (0, 0usize, 0, 0);
        while let Some(t) = Table::read(&lut, at, len, &mut read) {
            let h = BlockHeader::decode(&idx[off..]).unwrap();
            let frag = |o: u32| {
                let s = off + HEADER_LEN + o as usize * RECORD_LEN;
                Fragment::decode(&idx[s..s + RECORD_LEN])
            };
            assert_eq!(t.flows_off, off as u64);
            let probe = TableProbe {
                table: &t,
                block: &h,
                lut: &lut,
                read: std::cell::Cell::new(0),
            };
            let host = |x: u8| u128::from(u32::from_be_bytes([10, 0, 0, x]));
            let got = probe.find(Section::V4, host(4), host(4)).unwrap();
            let want: Vec<u32> = (0..h.records)
                .filter(|&o| frag(o).key.addr[0][..4] == [10, 0, 0, 4])
                .collect();
            assert_eq!(got, want);
            let net = probe.find(Section::V4, host(0), host(255)).unwrap();
            assert_eq!(net.len(), h.records as usize - 1, "all but the opaque one");
            let opaque = probe.find(Section::Opaque, 0, 0).unwrap();
            assert!(opaque.iter().all(|&o| frag(o).key.is_opaque()));
            assert_eq!(opaque.len(), 1);
            let port = probe
                .find(Section::Port, 17 << 16 | 1001, 17 << 16 | 1001)
                .unwrap();
            assert!(port.iter().all(|&o| frag(o).key.port.contains(&1001)));
            assert!(!port.is_empty());
            tables += 1;
            at += t.len;
            off += HEADER_LEN + h.body_len() as usize;
        }
        assert_eq!(tables, 10);
        assert_eq!(at, len);
    }

    #[test]
    fn recovery_cuts_tables_with_their_blocks_and_torn_tails() {
        let d = tempfile::tempdir().unwrap();
        let ends = write(d.path());
        let lut_path = d.path().join(layout::FLOWS_LUT);
        let full = std::fs::read(&lut_path).unwrap();
        let table_ends: Vec<u64> = {
            let f = File::open(&lut_path).unwrap();
            let (mut at, mut read, mut v) = (0, 0, Vec::new());
            while let Some(t) = Table::read(&f, at, full.len() as u64, &mut read) {
                at += t.len;
                v.push(at);
            }
            v
        };
        assert_eq!(table_ends.len(), 10);
        // The packets of the last four blocks are gone: their blocks and tables go.
        let cut = crate::flows::cut_blocks(d.path(), 600).unwrap();
        assert_eq!(
            std::fs::metadata(d.path().join(layout::FLOWS))
                .unwrap()
                .len(),
            ends[5]
        );
        assert_eq!(std::fs::metadata(&lut_path).unwrap().len(), table_ends[5]);
        assert_eq!(cut, ends[9] - ends[5] + table_ends[9] - table_ends[5]);
        // A torn table is cut back to the last whole one.
        std::fs::write(&lut_path, &full[..table_ends[3] as usize + 10]).unwrap();
        assert_eq!(cut_tables(d.path(), ends[5]).unwrap(), 10);
        assert_eq!(std::fs::metadata(&lut_path).unwrap().len(), table_ends[3]);
    }
}
