//! The writer's map from a flow key to its slot in [`FlowTable`](super::FlowTable)'s open
//! flows: looked up once per written packet, so it is built for that.
//!
//! * **A flat open-addressing table** of one `u64` per entry (a 32-bit tag of the hash
//!   and the slot), linear probing, at most half full. A probe is one load; the key is
//!   compared only when the tag matches, against a dense array of the keys in slot
//!   order. Entries are never removed one by one: the table only grows, and is cleared
//!   and refilled when the open flows are renumbered (a block written, half evicted).
//! * **A cheap hash**: the [`PackedKey`]'s seven words folded into three multiplies;
//!   the table's index is the hash's top bits (the best mixed of a multiply), the tag its
//!   low half.
//!
//! # What a packet costs
//!
//! Issue 12 allows the flow index at most 15% more capture CPU per packet. The writer's
//! per-packet path was rebuilt for that, each step measured:
//!
//! * the classifier packs the key straight from the dissection the chunk summary
//!   already made ([`PackedKey`]: no [`FlowKey`](super::FlowKey) per packet, endpoints
//!   ordered by one integer comparison) and hands it to the table at once, while
//!   summarizing ([`FlowRun`](super::FlowRun): no per-packet record stored and read
//!   back, the run's bookkeeping once per chunk);
//! * this table instead of a `HashMap<FlowKey, u32>` with a rotate-multiply hasher
//!   (which hashed seven words and compared keys field by field);
//! * positions appended as one word per packet, the varint's length and continuation
//!   bits from a table (`push_varint`).
//!
//! Instructions per packet (callgrind, `crates/capture/examples/hotpath.rs --store DIR
//! --summaries --synth`: IPv4/IPv6 TCP, UDP and ICMP of 5,000 flows, each run at two
//! packet counts and the difference taken, so setup is not counted;
//! `WIRECAP_FLOW_INDEX=off` for the first column):
//!
//! | frames | index off | index on, before | index on, now |
//! |---|---|---|---|
//! | 64 B | 1,766 | 2,249 (+27.3%) | 2,056 (+16.3%) |
//! | 1500 B | 2,613 | 3,099 (+18.6%) | 2,906 (+11.1%) |
//!
//! What is left at 64 B (about 290 instructions) is about half classifying (reading the
//! dissection, ordering and packing the key) and half the table (hash, probe, a
//! seven-word compare, the fragment's counters and its position). A cache of the last
//! flow was not added: on interleaved traffic like the benchmark's it never hits and
//! costs a compare per packet.

use super::PackedKey;

const EMPTY: u64 = 0;
const MIN_BITS: u32 = 6;

/// See the module doc.
#[derive(Debug)]
pub(super) struct FlowSlots {
    /// `EMPTY`, or `slot + 1` in the high half and the hash's tag (its low half) in the
    /// low half, which a probe compares as one 32-bit word.
    entries: Vec<u64>,
    /// The key of every slot, in slot order.
    keys: Vec<PackedKey>,
    /// log2 of `entries.len()`.
    bits: u32,
}

impl Default for FlowSlots {
    fn default() -> Self {
        Self {
            entries: vec![EMPTY; 1 << MIN_BITS],
            keys: Vec::new(),
            bits: MIN_BITS,
        }
    }
}

/// Where a missing key goes (from [`FlowSlots::find`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Vacant {
    hash: u64,
    at: usize,
}

/// The key's hash (see the module doc).
#[inline(always)]
pub(super) fn hash(k: &PackedKey) -> u64 {
    let w = &k.0;
    // The endpoints' low words (all of an IPv4 address) side by side, then the high
    // words with the small fields; the ports and MPLS word joins before the last multiply.
    let lo = (w[3] ^ w[5].rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let hi = (w[4] ^ w[6].rotate_left(32) ^ w[0] ^ w[2] << 40).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    (lo ^ hi.rotate_left(29) ^ w[1]).wrapping_mul(0x1656_67b1_9e37_79f9)
}

/// `a == b`, without branches per word.
#[inline(always)]
fn same(a: &PackedKey, b: &PackedKey) -> bool {
    let (a, b) = (&a.0, &b.0);
    ((a[0] ^ b[0])
        | (a[1] ^ b[1])
        | (a[2] ^ b[2])
        | (a[3] ^ b[3])
        | (a[4] ^ b[4])
        | (a[5] ^ b[5])
        | (a[6] ^ b[6]))
        == 0
}

impl FlowSlots {
    /// Slots mapped.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }

    #[inline]
    fn start(&self, hash: u64) -> usize {
        (hash >> (64 - self.bits)) as usize
    }

    /// The key's slot, or where to insert it.
    #[inline(always)]
    pub(super) fn find(&self, k: &PackedKey) -> Result<u32, Vacant> {
        let hash = hash(k);
        let tag = hash as u32;
        let mask = self.entries.len() - 1;
        let mut at = self.start(hash);
        loop {
            let e = self.entries[at];
            if e == EMPTY {
                return Err(Vacant { hash, at });
            }
            if e as u32 == tag {
                let slot = ((e >> 32) as u32).wrapping_sub(1);
                if same(&self.keys[slot as usize], k) {
                    return Ok(slot);
                }
            }
            at = (at + 1) & mask;
        }
    }

    #[cfg(test)]
    fn get(&self, k: &PackedKey) -> Option<u32> {
        self.find(k).ok()
    }

    /// Maps `k`, which is not mapped, to the next slot (`len()`), at `v` from
    /// [`find`](Self::find) with nothing inserted since.
    #[inline]
    pub(super) fn insert_at(&mut self, v: Vacant, k: PackedKey) {
        let slot = self.keys.len() as u64 + 1;
        self.keys.push(k);
        if 2 * self.keys.len() > self.entries.len() {
            self.grow();
        } else {
            self.entries[v.at] = slot << 32 | (v.hash & 0xffff_ffff);
        }
    }

    /// Maps `k`, which is not mapped, to `slot`, which must be the next one (`len()`):
    /// the table's slots are always `0..len()`.
    pub(super) fn insert(&mut self, k: PackedKey, slot: u32) {
        debug_assert_eq!(slot as usize, self.keys.len());
        match self.find(&k) {
            Err(v) => self.insert_at(v, k),
            Ok(_) => debug_assert!(false, "key mapped twice"),
        }
    }

    /// Unmaps everything (keeps the memory).
    pub(super) fn clear(&mut self) {
        self.entries.fill(EMPTY);
        self.keys.clear();
    }

    /// Doubles the entries and places every key again.
    fn grow(&mut self) {
        self.bits += 1;
        self.entries = vec![EMPTY; 1 << self.bits];
        let mask = self.entries.len() - 1;
        for (i, k) in self.keys.iter().enumerate() {
            let hash = hash(k);
            let mut at = (hash >> (64 - self.bits)) as usize;
            while self.entries[at] != EMPTY {
                at = (at + 1) & mask;
            }
            self.entries[at] = (i as u64 + 1) << 32 | (hash & 0xffff_ffff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{FlowKey, FlowKind};
    use std::collections::HashMap;

    fn key(i: u32) -> PackedKey {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&i.to_be_bytes());
        PackedKey::pack(&FlowKey {
            kind: FlowKind::Ipv4,
            proto: 6,
            ethertype: 0x800,
            addr: [a, [0; 16]],
            port: [(i % 7) as u16, 80],
            ..FlowKey::default()
        })
    }

    /// Against a `HashMap`, through growth and clears, with keys whose hashes collide.
    #[test]
    fn agrees_with_a_hashmap() {
        let mut s = FlowSlots::default();
        let mut model: HashMap<PackedKey, u32> = HashMap::new();
        let mut rng = 0x1234_5678_9abc_def0u64;
        for round in 0..4 {
            for _ in 0..5_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let k = key((rng % 3_000) as u32);
                let got = s.get(&k);
                assert_eq!(got, model.get(&k).copied(), "round {round} {k:?}");
                if got.is_none() {
                    let n = s.len() as u32;
                    s.insert(k, n);
                    model.insert(k, n);
                }
            }
            assert_eq!(s.len(), model.len());
            // Renumbering as a block does: clear, then map the survivors again.
            let mut kept: Vec<(PackedKey, u32)> = model
                .iter()
                .filter(|(_, v)| **v % 3 != 0)
                .map(|(k, v)| (*k, *v))
                .collect();
            kept.sort_by_key(|&(_, v)| v);
            s.clear();
            model.clear();
            for (i, (k, _)) in kept.into_iter().enumerate() {
                s.insert(k, i as u32);
                model.insert(k, i as u32);
            }
        }
        // Every probe chain ends: at most half the entries are in use.
        assert!(2 * s.len() <= s.entries.len());
    }

    /// Keys that all land on one start position still each find their own slot.
    #[test]
    fn colliding_starts() {
        let mut s = FlowSlots::default();
        let keys: Vec<PackedKey> = (0..200_000u32)
            .map(key)
            .filter(|k| hash(k) >> 58 == 0)
            .take(20)
            .collect();
        assert!(keys.len() >= 10);
        for (i, k) in keys.iter().enumerate() {
            s.insert(*k, i as u32);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(s.get(k), Some(i as u32));
        }
        assert_eq!(s.get(&key(u32::MAX)), None);
    }
}
