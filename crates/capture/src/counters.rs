//! The capture counters behind `/sysmaster/status`, readable from any thread, and the
//! per-second history behind the dashboard charts.
//!
//! ## What each packet counter means
//!
//! Every packet the kernel (or a replay/synthetic source) hands to a capture ends in
//! exactly one of two places, and is counted there once its fate is settled:
//!
//! * `packets_captured`: written to the store (the store accepted the chunk);
//! * `packets_dropped`: lost, for one of these reasons, each also counted on its own:
//!   `dropped_kernel` (the kernel's ring was full: `tp_drops` of PACKET_STATISTICS, read
//!   about once a second and at stop; reading resets it, so it is accumulated here),
//!   `dropped_queue` (the writer fell behind and the bounded queue was full: the whole
//!   chunk is dropped), `dropped_write` (the store refused the chunk), `dropped_malformed`
//!   (a ring entry that could not be parsed).
//!
//! `packets_received` is **defined** as `packets_captured + packets_dropped`, so the
//! identity holds in every snapshot, whatever thread reads it and when. Packets taken off
//! the ring whose chunk is still being filled or waits in the queue are not yet in either:
//! they are `packets_pending` / `bytes_pending`, and join `packets_received` when written or
//! dropped. Because the kernel's own `tp_packets` counts its drops too, `packets_received`
//! matches the kernel's `tp_packets` once the pipeline is drained (for example after stop).
//!
//! `packets_errors` counts packets that had something wrong with them: malformed ring
//! entries and failed writes (both also dropped) and packets whose timestamp went
//! backwards and was clamped to the previous one (`ts_clamped`; those are captured).
//!
//! `capture_packets` / `capture_bytes` count packets and wire bytes (orig_len) as the
//! source delivers them, before the pipeline; `capture_pps` / `capture_bps` are their rate
//! over the last whole second. `bytes_captured` counts the bytes stored (caplen).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Seconds of history kept (one hour).
pub const HISTORY_SECONDS: usize = 3600;

/// One second of the dashboard chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryEntry {
    /// Start of the second, Unix seconds.
    pub ts: u64,
    /// Wire bytes delivered by the source during that second.
    pub bytes: u64,
    /// Packets delivered by the source during that second.
    pub packets: u64,
    /// Packets dropped during that second (any reason).
    pub drops: u64,
}

/// Link facts as last observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Interface name, if the capture has one.
    pub interface: Option<String>,
    /// `Some(true)` up, `Some(false)` down, `None` unknown (no interface, unreadable).
    pub up: Option<bool>,
    /// Speed in Mb/s, `None` when the driver does not say (veth, down links).
    pub speed_mbps: Option<u32>,
    /// Time since the last down→up transition observed (or since the link was first seen up).
    pub uptime: Option<Duration>,
}

/// Is this error (or one it wraps) "no space left on device"?
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(io) = x.downcast_ref::<std::io::Error>()
            && (io.raw_os_error() == Some(libc::ENOSPC)
                || io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        // Errors that keep only the text of the OS error.
        if x.to_string().contains("os error 28") {
            return true;
        }
        cur = x.source();
    }
    false
}

/// A consistent-enough copy of every counter (each counter is exact; `packets_received`
/// is derived so that `received == captured + dropped` always holds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// Time since the counters were created (process start for the appliance).
    pub uptime: Duration,
    /// `packets_captured + packets_dropped`.
    pub packets_received: u64,
    /// All packets lost, any reason.
    pub packets_dropped: u64,
    /// Packets with something wrong (see module doc).
    pub packets_errors: u64,
    /// Packets written to the store.
    pub packets_captured: u64,
    /// Bytes (caplen) written to the store.
    pub bytes_captured: u64,
    /// Packets taken from the source, not yet written or dropped.
    pub packets_pending: u64,
    /// Record bytes queued for the writer, not yet written.
    pub bytes_pending: u64,
    /// Kernel ring drops (PACKET_STATISTICS tp_drops, accumulated).
    pub dropped_kernel: u64,
    /// Chunks dropped because the writer queue was full, in packets.
    pub dropped_queue: u64,
    /// Packets of chunks the store refused.
    pub dropped_write: u64,
    /// Packets lost to malformed ring entries.
    pub dropped_malformed: u64,
    /// Packets whose timestamp was clamped.
    pub ts_clamped: u64,
    /// Times the kernel froze the ring queue (tp_freeze_q_cnt).
    pub ring_freezes: u64,
    /// Packets delivered by the source this capture.
    pub capture_packets: u64,
    /// Wire bytes delivered by the source this capture.
    pub capture_bytes: u64,
    /// Bits per second over the last whole second.
    pub capture_bps: u64,
    /// Packets per second over the last whole second.
    pub capture_pps: u64,
    /// Full stored name of the current (or last) capture, `None` before any.
    pub capture_name: Option<String>,
    /// Whether a capture is running.
    pub capture_active: bool,
    /// Link facts.
    pub link: LinkStatus,
    /// Last error the writer met, if any.
    pub last_error: Option<String>,
    /// The writer found the disk full (ENOSPC) this capture: what arrives is dropped.
    pub disk_full: bool,
    /// How the stream is written: `O_DIRECT`, or `page cache` with the reason.
    pub write_mode: Option<String>,
    /// Chunk buffers allocated by this capture (they are recycled: this stops growing
    /// once the pipeline is in steady state).
    pub chunks_allocated: u64,
    /// Chunks written as the capture thread filled them (no copy).
    pub chunks_whole: u64,
    /// Chunks re-built by the merge where fanout threads' time ranges overlapped.
    pub chunks_merged: u64,
}

/// The shared counters. Create one per capture interface and keep it for the process
/// lifetime: [`crate::pipeline::Capture::start`] resets the per-capture counters, and they
/// keep their values after stop (as the appliance's status page does).
#[derive(Debug)]
pub struct Counters {
    created: Instant,
    pub(crate) captured: AtomicU64,
    pub(crate) bytes_captured: AtomicU64,
    pub(crate) dropped_kernel: AtomicU64,
    pub(crate) dropped_queue: AtomicU64,
    pub(crate) dropped_write: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    pub(crate) ts_clamped: AtomicU64,
    pub(crate) ring_freezes: AtomicU64,
    pub(crate) taken: AtomicU64,
    pub(crate) wire_bytes: AtomicU64,
    pub(crate) bytes_pending: AtomicI64,
    pub(crate) active: AtomicBool,
    pub(crate) disk_full: AtomicBool,
    pub(crate) chunks_allocated: AtomicU64,
    pub(crate) chunks_whole: AtomicU64,
    pub(crate) chunks_merged: AtomicU64,
    bps: AtomicU64,
    pps: AtomicU64,
    text: Mutex<TextState>,
    history: Mutex<History>,
}

#[derive(Debug, Default)]
struct TextState {
    name: Option<String>,
    link: LinkStatus,
    last_error: Option<String>,
    write_mode: Option<String>,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// Fresh counters; `uptime` counts from now.
    pub fn new() -> Self {
        Self {
            created: Instant::now(),
            captured: AtomicU64::new(0),
            bytes_captured: AtomicU64::new(0),
            dropped_kernel: AtomicU64::new(0),
            dropped_queue: AtomicU64::new(0),
            dropped_write: AtomicU64::new(0),
            dropped_malformed: AtomicU64::new(0),
            ts_clamped: AtomicU64::new(0),
            ring_freezes: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            bytes_pending: AtomicI64::new(0),
            active: AtomicBool::new(false),
            disk_full: AtomicBool::new(false),
            chunks_allocated: AtomicU64::new(0),
            chunks_whole: AtomicU64::new(0),
            chunks_merged: AtomicU64::new(0),
            bps: AtomicU64::new(0),
            pps: AtomicU64::new(0),
            text: Mutex::new(TextState::default()),
            history: Mutex::new(History::new(HISTORY_SECONDS)),
        }
    }

    /// Zeroes the per-capture counters (not uptime, not the history).
    pub(crate) fn reset(&self, name: &str) {
        for c in [
            &self.captured,
            &self.bytes_captured,
            &self.dropped_kernel,
            &self.dropped_queue,
            &self.dropped_write,
            &self.dropped_malformed,
            &self.ts_clamped,
            &self.ring_freezes,
            &self.taken,
            &self.wire_bytes,
            &self.chunks_allocated,
            &self.chunks_whole,
            &self.chunks_merged,
            &self.bps,
            &self.pps,
        ] {
            c.store(0, Relaxed);
        }
        self.bytes_pending.store(0, Relaxed);
        let mut t = self.text.lock().unwrap_or_else(|e| e.into_inner());
        t.name = Some(name.to_owned());
        t.last_error = None;
        t.write_mode = None;
        self.disk_full.store(false, Relaxed);
    }

    pub(crate) fn set_write_mode(&self, mode: String) {
        self.text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_mode = Some(mode);
    }

    pub(crate) fn set_link(&self, link: LinkStatus) {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).link = link;
    }

    /// Records a write error; ENOSPC also sets [`Status::disk_full`].
    pub(crate) fn write_failed(&self, e: &(dyn std::error::Error + 'static)) {
        self.set_error(e.to_string());
        if is_disk_full(e) {
            self.disk_full.store(true, Relaxed);
        }
    }

    pub(crate) fn set_error(&self, e: String) {
        self.text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_error = Some(e);
    }

    /// Sum of the drop counters.
    fn dropped(&self) -> u64 {
        self.dropped_kernel.load(Relaxed)
            + self.dropped_queue.load(Relaxed)
            + self.dropped_write.load(Relaxed)
            + self.dropped_malformed.load(Relaxed)
    }

    /// Closes the second that ends at `now_unix` (call about once a second): records its
    /// history entry and the per-second rates. `elapsed` is the true time since the last
    /// call, used to scale the rates.
    pub(crate) fn tick(&self, now_unix: u64, elapsed: Duration) {
        let packets = self.taken.load(Relaxed);
        let bytes = self.wire_bytes.load(Relaxed);
        let drops = self.dropped();
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let (dp, db, dd) = h.advance(now_unix, packets, bytes, drops);
        let secs = elapsed.as_secs_f64().max(1e-3);
        self.pps.store((dp as f64 / secs).round() as u64, Relaxed);
        self.bps
            .store((db as f64 * 8.0 / secs).round() as u64, Relaxed);
        let _ = dd;
    }

    /// Clears the rates (the capture stopped).
    pub(crate) fn idle_rates(&self) {
        self.bps.store(0, Relaxed);
        self.pps.store(0, Relaxed);
    }

    /// A copy of every counter.
    pub fn status(&self) -> Status {
        // Read drops before captured: both only grow, and received is derived from the
        // values read, so the identity holds exactly in the snapshot.
        let dropped_kernel = self.dropped_kernel.load(Relaxed);
        let dropped_queue = self.dropped_queue.load(Relaxed);
        let dropped_write = self.dropped_write.load(Relaxed);
        let dropped_malformed = self.dropped_malformed.load(Relaxed);
        let captured = self.captured.load(Relaxed);
        let dropped = dropped_kernel + dropped_queue + dropped_write + dropped_malformed;
        let taken = self.taken.load(Relaxed);
        let ts_clamped = self.ts_clamped.load(Relaxed);
        let t = self.text.lock().unwrap_or_else(|e| e.into_inner());
        Status {
            uptime: self.created.elapsed(),
            packets_received: captured + dropped,
            packets_dropped: dropped,
            packets_errors: dropped_malformed + dropped_write + ts_clamped,
            packets_captured: captured,
            bytes_captured: self.bytes_captured.load(Relaxed),
            // `taken` counts packets off the source: kernel drops and malformed ring
            // entries never reached it.
            packets_pending: taken.saturating_sub(captured + dropped_queue + dropped_write),
            bytes_pending: u64::try_from(self.bytes_pending.load(Relaxed)).unwrap_or(0),
            dropped_kernel,
            dropped_queue,
            dropped_write,
            dropped_malformed,
            ts_clamped,
            ring_freezes: self.ring_freezes.load(Relaxed),
            capture_packets: taken,
            capture_bytes: self.wire_bytes.load(Relaxed),
            capture_bps: self.bps.load(Relaxed),
            capture_pps: self.pps.load(Relaxed),
            capture_name: t.name.clone(),
            capture_active: self.active.load(Relaxed),
            link: t.link.clone(),
            last_error: t.last_error.clone(),
            disk_full: self.disk_full.load(Relaxed),
            write_mode: t.write_mode.clone(),
            chunks_allocated: self.chunks_allocated.load(Relaxed),
            chunks_whole: self.chunks_whole.load(Relaxed),
            chunks_merged: self.chunks_merged.load(Relaxed),
        }
    }

    /// The per-second history, oldest first (at most [`HISTORY_SECONDS`] entries).
    pub fn history(&self) -> Vec<HistoryEntry> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.entries.iter().copied().collect()
    }
}

/// A ring of per-second entries built from monotonic totals (pure: tested without clocks).
#[derive(Debug)]
pub struct History {
    entries: VecDeque<HistoryEntry>,
    cap: usize,
    last: Option<(u64, u64, u64)>,
}

impl History {
    /// An empty history of at most `cap` seconds.
    pub fn new(cap: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(cap),
            cap,
            last: None,
        }
    }

    /// Records the second ending at `ts` from running totals; returns the deltas. Totals
    /// that went down (the counters were reset by a new capture) restart from zero.
    pub fn advance(&mut self, ts: u64, packets: u64, bytes: u64, drops: u64) -> (u64, u64, u64) {
        let (lp, lb, ld) = self.last.unwrap_or((0, 0, 0));
        let d = |now: u64, last: u64| if now >= last { now - last } else { now };
        let delta = (d(packets, lp), d(bytes, lb), d(drops, ld));
        self.last = Some((packets, bytes, drops));
        if self.entries.len() == self.cap {
            self.entries.pop_front();
        }
        self.entries.push_back(HistoryEntry {
            ts: ts.saturating_sub(1),
            packets: delta.0,
            bytes: delta.1,
            drops: delta.2,
        });
        delta
    }

    /// Entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_is_captured_plus_dropped() {
        let c = Counters::new();
        c.reset("x");
        c.taken.fetch_add(100, Relaxed);
        c.captured.fetch_add(60, Relaxed);
        c.dropped_queue.fetch_add(30, Relaxed);
        c.dropped_kernel.fetch_add(7, Relaxed);
        c.dropped_malformed.fetch_add(1, Relaxed);
        c.ts_clamped.fetch_add(2, Relaxed);
        let s = c.status();
        assert_eq!(s.packets_received, 98);
        assert_eq!(s.packets_dropped, 38);
        assert_eq!(s.packets_errors, 3);
        assert_eq!(s.packets_pending, 100 - 60 - 30);
        assert_eq!(s.capture_name.as_deref(), Some("x"));
    }

    #[test]
    fn snapshots_never_count_a_packet_before_it_was_taken() {
        // As the pipeline does: a packet is taken off the source, then written or dropped.
        // `received` is derived, so the check that can fail is against `taken`: a
        // snapshot reading `taken` before the outcomes would show more packets written or
        // dropped than taken, and a negative backlog.
        let c = std::sync::Arc::new(Counters::new());
        let go = std::sync::Arc::new(std::sync::Barrier::new(2));
        let w = {
            let (c, go) = (c.clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                for i in 0..1_000_000u64 {
                    c.taken.fetch_add(1, Relaxed);
                    if i % 3 == 0 {
                        c.dropped_queue.fetch_add(1, Relaxed);
                    } else {
                        c.captured.fetch_add(1, Relaxed);
                    }
                }
            })
        };
        go.wait();
        let mut snapshots = 0u64;
        while !w.is_finished() {
            let s = c.status();
            assert!(s.packets_received <= s.capture_packets, "{s:?}");
            snapshots += 1;
        }
        w.join().unwrap();
        assert!(snapshots > 0);
        // Against what the writer thread did, not against each other.
        let s = c.status();
        assert_eq!(
            (s.packets_received, s.packets_captured, s.dropped_queue),
            (1_000_000, 666_666, 333_334)
        );
        assert_eq!(s.packets_pending, 0);
    }

    #[test]
    fn history_deltas_wrap_and_reset() {
        let mut h = History::new(3);
        assert_eq!(h.advance(10, 5, 500, 0), (5, 500, 0));
        assert_eq!(h.advance(11, 15, 1500, 2), (10, 1000, 2));
        h.advance(12, 15, 1500, 2);
        h.advance(13, 20, 2000, 2);
        let e: Vec<_> = h.entries().copied().collect();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].ts, 10);
        assert_eq!(
            e[2],
            HistoryEntry {
                ts: 12,
                packets: 5,
                bytes: 500,
                drops: 0
            }
        );
        // Counters reset by a new capture: start over from the new totals.
        assert_eq!(h.advance(14, 3, 300, 0), (3, 300, 0));
    }

    #[test]
    fn rates_come_from_the_last_second() {
        let c = Counters::new();
        c.tick(100, Duration::from_secs(1));
        c.taken.fetch_add(1000, Relaxed);
        c.wire_bytes.fetch_add(1_000_000, Relaxed);
        c.tick(101, Duration::from_secs(1));
        let s = c.status();
        assert_eq!(s.capture_pps, 1000);
        assert_eq!(s.capture_bps, 8_000_000);
        assert_eq!(c.history().len(), 2);
    }
}
