//! Putting imported packets in time order.
//!
//! A stream is stored in time order: that is what makes every time split a contiguous
//! run and every lookup a binary search. Capture files are nearly always in order, but
//! merged or multi-interface files often are not quite. The importer passes packets
//! through a bounded window (64 MiB by default): packets out of order within the window
//! are sorted (stably, so equal timestamps keep their file order); a packet older than
//! what already left the window is refused with an error that says so, instead of
//! being silently misfiled.

use wirecap_pcap::Packet;

use crate::error::{Error, Result};
use crate::writer::StreamWriter;

pub const DEFAULT_WINDOW_BYTES: usize = 64 << 20;

#[derive(Clone, Copy, Debug)]
struct Entry {
    ts: u64,
    sec: u64,
    nsec: u32,
    orig_len: u32,
    off: usize,
    len: usize,
}

/// A bounded reorder window in front of a [`StreamWriter`].
pub struct Reorder {
    arena: Vec<u8>,
    spare: Vec<u8>,
    entries: Vec<Entry>,
    sorted: bool,
    window: usize,
    /// Timestamp of the last packet that left the window.
    watermark: Option<u64>,
    last_arrival: u64,
    reordered: u64,
}

impl Reorder {
    pub fn new(window_bytes: usize) -> Self {
        Self {
            arena: Vec::new(),
            spare: Vec::new(),
            entries: Vec::new(),
            sorted: true,
            window: window_bytes.max(1),
            watermark: None,
            last_arrival: 0,
            reordered: 0,
        }
    }

    /// Packets that arrived earlier than the packet before them.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Takes a packet into the window, writing the oldest ones when it is full. A packet
    /// that cannot be stored at all (a time after 2106, too large) is refused here, when
    /// it arrives, not later when it leaves the window in the middle of other packets.
    pub fn push(&mut self, p: &Packet<'_>, out: &mut StreamWriter) -> Result<()> {
        if u32::try_from(p.ts_sec).is_err() {
            return Err(Error::TimestampOutOfRange { ts_sec: p.ts_sec });
        }
        if p.data.len() > wirecap_pcap::MAX_PACKET_LEN as usize {
            return Err(Error::PacketTooLarge {
                len: p.data.len(),
                max: wirecap_pcap::MAX_PACKET_LEN,
            });
        }
        let ts = p.ts_ns();
        if let Some(w) = self.watermark
            && ts < w
        {
            return Err(Error::BeyondReorderWindow {
                ts_ns: ts,
                watermark_ns: w,
            });
        }
        if ts < self.last_arrival {
            self.reordered += 1;
            self.sorted = false;
        }
        self.last_arrival = ts;
        self.entries.push(Entry {
            ts,
            sec: p.ts_sec,
            nsec: p.ts_nsec,
            orig_len: p.orig_len,
            off: self.arena.len(),
            len: p.data.len(),
        });
        self.arena.extend_from_slice(p.data);
        if self.arena.len() >= self.window {
            self.flush(self.entries.len() / 2, out)?;
        }
        Ok(())
    }

    /// Writes the first `n` packets (in time order) and keeps the rest.
    fn flush(&mut self, n: usize, out: &mut StreamWriter) -> Result<()> {
        if !self.sorted {
            self.entries.sort_by_key(|e| e.ts);
            self.sorted = true;
        }
        for e in &self.entries[..n] {
            out.append(&Packet {
                ts_sec: e.sec,
                ts_nsec: e.nsec,
                orig_len: e.orig_len,
                data: &self.arena[e.off..e.off + e.len],
                interface: 0,
            })?;
        }
        if let Some(last) = self.entries[..n].last() {
            self.watermark = Some(last.ts);
        }
        // Keep the rest in the spare arena and swap: both arenas are reused, so a long
        // import touches no fresh memory (no page faults) after the first window.
        self.entries.drain(..n);
        self.spare.clear();
        for e in &mut self.entries {
            let off = self.spare.len();
            self.spare
                .extend_from_slice(&self.arena[e.off..e.off + e.len]);
            e.off = off;
        }
        std::mem::swap(&mut self.arena, &mut self.spare);
        Ok(())
    }

    /// Drops everything still in the window (the stream cannot take it: a full disk);
    /// returns how many packets that was.
    pub fn discard(&mut self) -> u64 {
        let n = self.entries.len() as u64;
        self.entries.clear();
        self.arena.clear();
        n
    }

    /// Writes everything still in the window.
    pub fn finish(&mut self, out: &mut StreamWriter) -> Result<()> {
        self.flush(self.entries.len(), out)
    }
}
