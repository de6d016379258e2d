//! The tap: records of forwarded packets, from the forwarder thread into the capture
//! pipeline, through a bounded queue of batches.
//!
//! The forwarder never waits for the capture: a batch that finds the queue full is dropped
//! and its packets counted ([`TapSource`] reports them as the source's drops, so they
//! show in `packets_dropped`). While no capture runs the tap is closed and the forwarder
//! builds no records at all. Batches go back to the forwarder for reuse.

use crate::forwarder::Recorder;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wirecap_capture::frame::now_ns;
use wirecap_capture::source::{LINKTYPE_ETHERNET, Polled, Source, SourceStats};
use wirecap_capture::{Frame, Result};

/// Batches the queue holds.
pub const QUEUE_BATCHES: usize = 256;
/// A batch is sent when it holds this many bytes (or at the end of each ring block).
pub const BATCH_BYTES: usize = 256 << 10;

/// Records of several packets in one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// (timestamp, offset, length) of each record in `buf`.
    frames: Vec<(u64, u32, u32)>,
}

impl Batch {
    fn clear(&mut self) {
        self.buf.clear();
        self.frames.clear();
    }
    /// Records held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

struct Link {
    tx: SyncSender<Batch>,
    back: Receiver<Batch>,
}

/// The shared end of the tap (one per forwarder).
pub struct Tap {
    link: Mutex<Option<Link>>,
    open: AtomicBool,
    /// Packets lost because the queue was full, since the tap was last opened.
    dropped: AtomicU64,
    describe: String,
    interface: String,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("describe", &self.describe)
            .field("open", &self.open.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl Tap {
    /// A closed tap for the forwarder on `interface`.
    pub fn new(interface: &str) -> Arc<Self> {
        Arc::new(Self {
            link: Mutex::new(None),
            open: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            describe: format!("forward:{interface}"),
            interface: interface.to_owned(),
        })
    }

    /// Opens the tap and returns the capture source that reads it (closed again when the
    /// source is dropped). The previous source, if any, stops receiving.
    pub fn open(self: &Arc<Self>) -> TapSource {
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let (back_tx, back) = sync_channel(QUEUE_BATCHES + 4);
        self.dropped.store(0, Relaxed);
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = Some(Link { tx, back });
        self.open.store(true, Relaxed);
        TapSource {
            tap: self.clone(),
            rx,
            back: back_tx,
        }
    }

    fn close(&self) {
        self.open.store(false, Relaxed);
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether a capture reads the tap.
    pub fn is_open(&self) -> bool {
        self.open.load(Relaxed)
    }

    /// Packets lost to a full queue since the tap was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// A recorder for the forwarder thread.
    pub fn recorder(self: &Arc<Self>) -> TapRecorder {
        TapRecorder {
            tap: self.clone(),
            batch: Batch::default(),
            last_ts: 0,
        }
    }
}

/// The forwarder thread's end: collects records into a batch, sends it with [`Self::flush`].
#[derive(Debug)]
pub struct TapRecorder {
    tap: Arc<Tap>,
    batch: Batch,
    last_ts: u64,
}

impl TapRecorder {
    /// Sends the batch (without waiting: a full queue drops it, counted).
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut link = self.tap.link.lock().unwrap_or_else(|e| e.into_inner());
        let Some(l) = link.as_mut() else {
            // The capture stopped while the batch was being filled: nobody to count for.
            self.batch.clear();
            return;
        };
        let next = l.back.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, next);
        match l.tx.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                self.tap.dropped.fetch_add(b.len() as u64, Relaxed);
                self.batch = b;
            }
        }
        self.batch.clear();
    }
}

impl Recorder for TapRecorder {
    fn active(&self) -> bool {
        self.tap.is_open()
    }

    fn record(&mut self, ts_ns: u64, frame: &[u8]) {
        // Records leave in time order: an ingress timestamp (kernel receive time) earlier
        // than the egress one before it is raised to it.
        let ts = ts_ns.max(self.last_ts);
        self.last_ts = ts;
        let off = self.batch.buf.len() as u32;
        self.batch.buf.extend_from_slice(frame);
        self.batch.frames.push((ts, off, frame.len() as u32));
        if self.batch.buf.len() >= BATCH_BYTES {
            self.flush();
        }
    }
}

/// The capture pipeline's end: a [`Source`] of the forwarder's records.
pub struct TapSource {
    tap: Arc<Tap>,
    rx: Receiver<Batch>,
    back: SyncSender<Batch>,
}

impl std::fmt::Debug for TapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapSource")
            .field("tap", &self.tap)
            .finish_non_exhaustive()
    }
}

impl Drop for TapSource {
    fn drop(&mut self) {
        self.tap.close();
    }
}

impl Source for TapSource {
    fn describe(&self) -> &str {
        &self.tap.describe
    }
    fn link_type(&self) -> u32 {
        LINKTYPE_ETHERNET
    }
    fn snaplen(&self) -> u32 {
        262_144
    }
    fn interface(&self) -> Option<&str> {
        Some(&self.tap.interface)
    }
    fn poll(&mut self, timeout: Duration, on_frame: &mut dyn FnMut(&Frame<'_>)) -> Result<Polled> {
        let b = match self.rx.recv_timeout(timeout) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => {
                return Ok(Polled::Idle {
                    // A batch being filled holds records of at most one ring block's time.
                    quiet_before_ns: Some(now_ns().saturating_sub(1_000_000_000)),
                });
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(Polled::Exhausted),
        };
        let n = b.frames.len() as u32;
        for &(ts_ns, off, len) in &b.frames {
            let data = &b.buf[off as usize..(off + len) as usize];
            on_frame(&Frame {
                ts_ns,
                orig_len: len,
                data,
            });
        }
        let _ = self.back.try_send(b);
        Ok(Polled::Packets(n))
    }
    fn stats(&mut self) -> Result<SourceStats> {
        Ok(SourceStats {
            kernel_drops: self.tap.dropped(),
            ..SourceStats::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_tap_records_nothing_and_a_full_queue_counts_its_loss() {
        let tap = Tap::new("veth0");
        let mut rec = tap.recorder();
        assert!(!rec.active());
        let mut src = tap.open();
        assert!(rec.active());
        for i in 0..(QUEUE_BATCHES as u64 + 3) {
            rec.record(10 + i, &[1, 2, 3]);
            rec.flush();
        }
        assert_eq!(tap.dropped(), 3);
        assert_eq!(src.stats().unwrap().kernel_drops, 3);
        let mut got = Vec::new();
        while let Ok(Polled::Packets(_)) = src.poll(Duration::from_millis(1), &mut |f| {
            got.push((f.ts_ns, f.data.to_vec()))
        }) {}
        assert_eq!(got.len(), QUEUE_BATCHES);
        assert_eq!(got[0], (10, vec![1, 2, 3]));
        drop(src);
        assert!(!rec.active());
    }

    #[test]
    fn timestamps_never_go_back() {
        let tap = Tap::new("veth0");
        let mut src = tap.open();
        let mut rec = tap.recorder();
        rec.record(100, &[1]);
        rec.record(90, &[2]);
        rec.record(110, &[3]);
        rec.flush();
        let mut ts = Vec::new();
        src.poll(Duration::from_millis(10), &mut |f| ts.push(f.ts_ns))
            .unwrap();
        assert_eq!(ts, [100, 100, 110]);
    }
}
