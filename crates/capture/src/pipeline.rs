//! The capture pipeline and its handle:
//!
//! ```text
//!  source 0 ─► chunk builder ─┐                                  ┌─► sink (store stream)
//!  source 1 ─► chunk builder ─┼─► bounded queue ─► merge (time) ─┤
//!  …  (one thread each)      ─┘   try_send: full ⇒ drop + count  └─ writer thread
//! ```
//!
//! A capture thread copies each packet once, from the ring into a store chunk
//! ([`ChunkBuf`]), and never waits for the writer: it hands a full chunk (or one older
//! than `flush_interval`) to the queue with `try_send`; if the queue is full the chunk is
//! dropped and its packets are added to `packets_dropped` (`dropped_queue`) on the spot.
//! The writer thread merges the threads' chunks in time order ([`crate::merge`]) — whole
//! chunks pass through untouched unless fanout threads' time ranges overlap — and writes
//! them; a chunk the sink refuses is counted in `dropped_write`. Written chunks go back to
//! the capture thread that filled them through a return channel, so a running capture
//! allocates no buffers once every chunk in circulation exists. A ticker thread closes each
//! second of history and watches the link in sysfs.
//!
//! [`Capture::stop`] (or dropping the handle) stops the sources, sends the partial chunks,
//! drains the queue and seals the stream. A crash loses only what had not reached the
//! sink; what the sink accepted stays readable.

use crate::chunk::{ChunkBuf, Pushed};
use crate::counters::{Counters, Status};
use crate::error::{Error, Result};
use crate::frame::now_ns;
use crate::link::{LinkWatch, Sysfs};
use crate::merge::{MergeStats, Merger};
use crate::sink::{Sealed, Sink};
use crate::source::{Polled, Source, SourceStats};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default depth of the writer queue, in chunks (1 MiB each by default). The queue is
/// what absorbs a disk that is slower than the link for a while (the page cache's role
/// for tools that write through it): 256 MiB is 1.2 s of 1500-byte frames at this box's
/// veth rate. Chunk buffers are allocated only when the queue actually fills, and reused.
pub const DEFAULT_QUEUE_CHUNKS: usize = 256;

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Bytes of records per chunk.
    pub chunk_bytes: usize,
    /// Chunks the queue to the writer holds (memory: about `chunk_bytes * queue_chunks`).
    pub queue_chunks: usize,
    /// Longest a partly filled chunk waits in a capture thread before it is sent.
    pub flush_interval: Duration,
    /// How long a source's `poll` may wait for packets (bounds stop latency).
    pub poll_timeout: Duration,
    /// Longest the merge holds a chunk back waiting for other threads.
    pub merge_hold: Duration,
    /// Most bytes the merge holds back before releasing everything.
    pub merge_max_bytes: usize,
    /// Where to read link state.
    pub sysfs: Sysfs,
    /// How long [`Capture::stop`] waits for the writer to accept the last chunks before
    /// counting them as dropped.
    pub stop_grace: Duration,
    /// Write interface captures with O_DIRECT (chunks padded to 4 KiB) where the file
    /// system allows it: a tenth of the CPU of the page cache. Replays and synthetic
    /// sources always go through the page cache.
    pub direct_io: bool,
    /// How often the writer makes data and indexes durable (`fdatasync`); `None`: only at
    /// seal. A sync stalls the writer, so it is done when the writer has caught up (the
    /// queue is empty), and forced only after [`SYNC_FORCED_AFTER`] (or ten intervals)
    /// without a chance. A kill loses nothing either way; a sync bounds what a power cut
    /// or kernel crash can take.
    pub sync_interval: Option<Duration>,
    /// Writes a per-chunk summary beside the index (the filter layer's, so that selective
    /// filtered downloads skip chunks); runs on the writer thread, off the capture path.
    pub summarizer: Option<crate::store_sink::Summarizer>,
    /// Size at which the stream's segment files are closed: the unit in which retention
    /// trims the oldest part of a running capture.
    pub segment_bytes: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            chunk_bytes: 1 << 20,
            queue_chunks: DEFAULT_QUEUE_CHUNKS,
            flush_interval: Duration::from_millis(200),
            poll_timeout: Duration::from_millis(100),
            merge_hold: Duration::from_secs(1),
            merge_max_bytes: 64 << 20,
            sysfs: Sysfs::default(),
            stop_grace: Duration::from_secs(10),
            direct_io: true,
            sync_interval: Some(Duration::from_secs(2)),
            summarizer: None,
            segment_bytes: wirecap_store::WriterOptions::default().segment_bytes,
        }
    }
}

/// Longest the writer defers a due sync while it is behind.
pub const SYNC_FORCED_AFTER: Duration = Duration::from_secs(30);

enum Msg {
    Chunk(usize, ChunkBuf),
    Watermark(usize, u64),
    Done(usize),
}

/// Sources that currently have a capture, so a second start on the same one is refused.
static ACTIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

struct Slot(String);

impl Slot {
    fn claim(key: &str) -> Result<Self> {
        let mut a = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if !a.insert(key.to_owned()) {
            return Err(Error::AlreadyActive(key.to_owned()));
        }
        Ok(Self(key.to_owned()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ACTIVE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// What [`Capture::stop`] reports.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The sealed stream.
    pub sealed: Sealed,
    /// The counters after the last packet was settled.
    pub status: Status,
}

/// A running capture.
pub struct Capture {
    name: String,
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<Result<()>>>,
    writer: Option<JoinHandle<Result<Sealed>>>,
    ticker: Option<JoinHandle<()>>,
    ticker_stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    _slot: Slot,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Most chunks that can be in circulation for one capture thread: the queue, what the
/// merge may hold, the one being written and the one being filled.
fn chunks_in_flight(config: &PipelineConfig) -> usize {
    config.queue_chunks.max(1) + config.merge_max_bytes / config.chunk_bytes.max(1) + 4
}

impl Capture {
    /// Starts capturing `sources` (one thread each; several only for PACKET_FANOUT) into
    /// `sink`. `counters` are reset and then updated live.
    pub fn start_with(
        sources: Vec<Box<dyn Source>>,
        sink: Box<dyn Sink>,
        config: &PipelineConfig,
        counters: Arc<Counters>,
    ) -> Result<Self> {
        let first = sources
            .first()
            .ok_or_else(|| Error::Config("no source".into()))?;
        let key = first.describe().to_owned();
        let interface = first.interface().map(str::to_owned);
        let slot = Slot::claim(&key)?;
        let name = sink.name().to_owned();
        counters.reset(&name);
        counters.active.store(true, Relaxed);
        if let Some(mode) = sink.write_mode() {
            counters.set_write_mode(mode.to_owned());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel::<Msg>(config.queue_chunks.max(1));
        let n = sources.len();
        let mut readers = Vec::with_capacity(n);
        let mut returns = Vec::with_capacity(n);
        for (input, src) in sources.into_iter().enumerate() {
            let (back_tx, back_rx) = sync_channel::<ChunkBuf>(chunks_in_flight(config));
            returns.push(back_tx);
            let r = Reader {
                input,
                tx: tx.clone(),
                counters: counters.clone(),
                stop: stop.clone(),
                returned: back_rx,
                spare: RefCell::new(Vec::new()),
                config: config.clone(),
            };
            let h = std::thread::Builder::new()
                .name(format!("wc-capture-{input}"))
                .spawn(move || r.run(src))
                .map_err(|e| Error::io("spawn capture thread", e))?;
            readers.push(h);
        }
        drop(tx);
        let w = Writer {
            rx,
            n,
            sink,
            counters: counters.clone(),
            returns,
            config: config.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("wc-writer".into())
            .spawn(move || w.run())
            .map_err(|e| Error::io("spawn writer thread", e))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (c, s, sysfs) = (counters.clone(), ticker_stop.clone(), config.sysfs.clone());
            std::thread::Builder::new()
                .name("wc-ticker".into())
                .spawn(move || ticker(c, s, sysfs, interface))
                .map_err(|e| Error::io("spawn ticker thread", e))?
        };
        Ok(Self {
            name,
            stop,
            readers,
            writer: Some(writer),
            ticker: Some(ticker),
            ticker_stop,
            counters,
            _slot: slot,
        })
    }

    /// The full stored name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Live counters.
    pub fn status(&self) -> Status {
        self.counters.status()
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Whether every source has ended by itself (a replay reached its end).
    pub fn finished(&self) -> bool {
        self.readers.iter().all(JoinHandle::is_finished)
    }

    /// Stops the sources, writes what is pending, seals the stream.
    pub fn stop(mut self) -> Result<Stopped> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<Stopped> {
        self.stop.store(true, Relaxed);
        let mut first_err = None;
        for h in self.readers.drain(..) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(_) => {
                    first_err = first_err.or(Some(Error::Thread("capture thread panicked".into())))
                }
            }
        }
        let sealed = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Thread("writer thread panicked".into())),
            None => Err(Error::Thread("capture already stopped".into())),
        };
        self.ticker_stop.store(true, Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.counters.active.store(false, Relaxed);
        self.counters.idle_rates();
        let sealed = sealed?;
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(Stopped {
            sealed,
            status: self.counters.status(),
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.shutdown();
        }
    }
}

struct Reader {
    input: usize,
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    /// Chunks the writer is done with, back for reuse.
    returned: Receiver<ChunkBuf>,
    /// Chunks this thread took back itself (its queue was full).
    spare: RefCell<Vec<ChunkBuf>>,
    config: PipelineConfig,
}

/// Sends `Done` however the reader ends (error, panic), so the writer never waits forever.
struct DoneGuard(SyncSender<Msg>, usize);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Done(self.1));
    }
}

impl Reader {
    /// An empty chunk: a spare, one the writer gave back, or (until enough are in
    /// circulation) a new one.
    fn fresh(&self, floor: u64) -> ChunkBuf {
        // Reuse the chunk the writer finished last (last in, first out): it is the one most
        // likely still in cache, and after a burst that filled the queue the working set
        // shrinks back to a few chunks instead of cycling through all of them.
        let mut spare = self.spare.borrow_mut();
        spare.extend(self.returned.try_iter());
        let mut c = spare.pop().unwrap_or_else(|| {
            self.counters.chunks_allocated.fetch_add(1, Relaxed);
            ChunkBuf::with_capacity(self.config.chunk_bytes)
        });
        drop(spare);
        c.clear();
        c.set_floor(floor);
        c
    }

    /// Hands a chunk to the writer without waiting; a full queue drops it, counted.
    fn send(&self, chunk: &mut ChunkBuf, wait: bool) {
        if chunk.is_empty() {
            return;
        }
        let next = self.fresh(chunk.floor());
        let full = std::mem::replace(chunk, next);
        let (packets, bytes) = (u64::from(full.packets()), full.len_bytes() as i64);
        self.counters.bytes_pending.fetch_add(bytes, Relaxed);
        let mut msg = Msg::Chunk(self.input, full);
        let deadline = Instant::now() + self.config.stop_grace;
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => return,
                Err(TrySendError::Full(m)) if wait && Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => {
                    self.counters.bytes_pending.fetch_sub(bytes, Relaxed);
                    self.counters.dropped_queue.fetch_add(packets, Relaxed);
                    if let Msg::Chunk(_, mut c) = m {
                        c.clear();
                        self.spare.borrow_mut().push(c);
                    }
                    return;
                }
            }
        }
    }

    fn account_stats(&self, prev: &mut SourceStats, now: SourceStats) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        self.counters
            .dropped_kernel
            .fetch_add(d(now.kernel_drops, prev.kernel_drops), Relaxed);
        self.counters
            .ring_freezes
            .fetch_add(d(now.freezes, prev.freezes), Relaxed);
        self.counters
            .dropped_malformed
            .fetch_add(d(now.malformed, prev.malformed), Relaxed);
        *prev = now;
    }

    fn run(self, mut src: Box<dyn Source>) -> Result<()> {
        let _done = DoneGuard(self.tx.clone(), self.input);
        let mut chunk = self.fresh(0);
        let mut chunk_since = Instant::now();
        let mut stats = SourceStats::default();
        let mut stats_at = Instant::now();
        let mut result = Ok(());
        while !self.stop.load(Relaxed) {
            let (mut packets, mut bytes, mut clamped) = (0u64, 0u64, 0u64);
            let polled = src.poll(self.config.poll_timeout, &mut |f| {
                if !chunk.fits(f.data.len()) {
                    self.send(&mut chunk, false);
                }
                if chunk.is_empty() {
                    chunk_since = Instant::now();
                }
                if chunk.push(f.ts_ns, f.orig_len, f.data) == Pushed::Clamped {
                    clamped += 1;
                }
                packets += 1;
                bytes += u64::from(f.orig_len);
            });
            self.counters.taken.fetch_add(packets, Relaxed);
            self.counters.wire_bytes.fetch_add(bytes, Relaxed);
            self.counters.ts_clamped.fetch_add(clamped, Relaxed);
            match polled {
                Ok(Polled::Packets(_)) => {}
                Ok(Polled::Idle { quiet_before_ns }) => {
                    self.send(&mut chunk, false);
                    if let Some(ts) = quiet_before_ns {
                        let _ = self.tx.try_send(Msg::Watermark(self.input, ts));
                    }
                }
                Ok(Polled::Exhausted) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if !chunk.is_empty() && chunk_since.elapsed() >= self.config.flush_interval {
                self.send(&mut chunk, false);
            }
            if stats_at.elapsed() >= Duration::from_secs(1) {
                stats_at = Instant::now();
                if let Ok(s) = src.stats() {
                    self.account_stats(&mut stats, s);
                }
            }
        }
        self.send(&mut chunk, true);
        if let Ok(s) = src.stats() {
            self.account_stats(&mut stats, s);
        }
        result
    }
}

struct Writer {
    rx: Receiver<Msg>,
    n: usize,
    sink: Box<dyn Sink>,
    counters: Arc<Counters>,
    /// Per capture thread: where its written chunks go back.
    returns: Vec<SyncSender<ChunkBuf>>,
    config: PipelineConfig,
}

impl Writer {
    fn run(mut self) -> Result<Sealed> {
        let mut merger = Merger::new(
            self.n,
            self.config.chunk_bytes,
            self.config.merge_max_bytes,
            self.config.merge_hold,
        );
        let mut done = 0;
        let mut clamped_seen = 0;
        let mut merge_seen = MergeStats::default();
        let mut last_sync = Instant::now();
        loop {
            let handle = |m: Msg, merger: &mut Merger, done: &mut usize| match m {
                Msg::Chunk(i, c) => merger.push(i, c, Instant::now()),
                Msg::Watermark(i, ts) => merger.watermark(i, ts),
                Msg::Done(i) => {
                    merger.finish(i);
                    *done += 1;
                }
            };
            let mut caught_up = false;
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(m) => handle(m, &mut merger, &mut done),
                Err(RecvTimeoutError::Timeout) => caught_up = true,
                Err(RecvTimeoutError::Disconnected) => done = self.n,
            }
            // Take what the merge needs (about a chunk per input), not the whole queue:
            // chunks left in the queue keep it full, so the capture threads see the
            // writer's true backlog and memory stays at the queue's bound.
            let enough = self.config.chunk_bytes.max(1) * self.n;
            for _ in 0..256 {
                if merger.buffered_bytes() >= enough {
                    break;
                }
                match self.rx.try_recv() {
                    Ok(m) => handle(m, &mut merger, &mut done),
                    Err(e) => {
                        caught_up |= e == TryRecvError::Empty;
                        break;
                    }
                }
            }
            let all_done = done >= self.n;
            let (sink, counters) = (&mut self.sink, &self.counters);
            merger.drain(Instant::now(), all_done, &mut |c| {
                write(sink.as_mut(), counters, c)
            });
            let clamped = merger.clamped();
            counters
                .ts_clamped
                .fetch_add(clamped - clamped_seen, Relaxed);
            clamped_seen = clamped;
            let m = merger.stats();
            counters
                .chunks_whole
                .fetch_add(m.whole_chunks - merge_seen.whole_chunks, Relaxed);
            counters
                .chunks_merged
                .fetch_add(m.merged_chunks - merge_seen.merged_chunks, Relaxed);
            merge_seen = m;
            // Back to the thread that filled it; a full return channel (cannot happen
            // with the sizes chosen) just frees the buffer.
            while let Some((i, c)) = merger.pop_free() {
                if let Some(back) = self.returns.get(i) {
                    let _ = back.try_send(c);
                }
            }
            if let Some(every) = self.config.sync_interval {
                let since = last_sync.elapsed();
                let forced = SYNC_FORCED_AFTER.max(every * 10);
                if !all_done
                    && since >= every
                    && ((caught_up && merger.buffered_bytes() == 0) || since >= forced)
                {
                    if let Err(e) = self.sink.sync() {
                        self.counters.set_error(e.to_string());
                    }
                    last_sync = Instant::now();
                }
            }
            if all_done {
                break;
            }
        }
        self.sink.seal()
    }
}

fn write(sink: &mut dyn Sink, counters: &Counters, c: &mut ChunkBuf) {
    match sink.write_chunk(c) {
        Ok(()) => {
            counters
                .bytes_captured
                .fetch_add(c.captured_bytes(), Relaxed);
            counters.captured.fetch_add(u64::from(c.packets()), Relaxed);
        }
        Err(e) => {
            counters
                .dropped_write
                .fetch_add(u64::from(c.packets()), Relaxed);
            counters.write_failed(&e);
        }
    }
    counters
        .bytes_pending
        .fetch_sub(c.len_bytes() as i64, Relaxed);
}

fn ticker(counters: Arc<Counters>, stop: Arc<AtomicBool>, sysfs: Sysfs, interface: Option<String>) {
    let mut watch = interface.as_deref().map(LinkWatch::new);
    let mut last = Instant::now();
    let observe = |watch: &mut Option<LinkWatch>| {
        if let (Some(w), Some(ifname)) = (watch.as_mut(), interface.as_deref()) {
            let now = Instant::now();
            w.observe(sysfs.read(ifname).as_ref(), now);
            counters.set_link(w.status(now));
        }
    };
    observe(&mut watch);
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() >= Duration::from_secs(1) {
            let elapsed = last.elapsed();
            last = Instant::now();
            counters.tick(now_ns() / 1_000_000_000, elapsed);
            observe(&mut watch);
        }
    }
}
