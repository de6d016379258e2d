//! The capture pipeline and its handle:
//!
//! ```text
//!  source 0 ─► chunk builder ─┐                                  ┌─► sink (store stream)
//!  source 1 ─► chunk builder ─┼─► bounded queue ─► merge (time) ─┤
//!  …  (one thread each)      ─┘   try_send: full ⇒ drop + count  └─ writer thread
//! ```
//!
//! A capture thread never waits for the writer: it hands a full chunk (or one older than
//! `flush_interval`) to the queue with `try_send`; if the queue is full the chunk is
//! dropped and its packets are added to `packets_dropped` (`dropped_queue`) on the spot.
//! The writer thread merges the threads' chunks in time order ([`crate::merge`]) and
//! writes them; a chunk the sink refuses is counted in `dropped_write`. A ticker thread
//! closes each second of history and watches the link in sysfs.
//!
//! [`Capture::stop`] (or dropping the handle) stops the sources, sends the partial chunks,
//! drains the queue and seals the stream. A crash loses only what had not reached the
//! sink; what the sink accepted stays readable.

use crate::chunk::{ChunkBuf, Pushed};
use crate::counters::{Counters, Status};
use crate::error::{Error, Result};
use crate::frame::now_ns;
use crate::link::{LinkWatch, Sysfs};
use crate::merge::Merger;
use crate::sink::{Sealed, Sink};
use crate::source::{Polled, Source, SourceStats};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            chunk_bytes: 1 << 20,
            queue_chunks: 64,
            flush_interval: Duration::from_millis(200),
            poll_timeout: Duration::from_millis(100),
            merge_hold: Duration::from_secs(1),
            merge_max_bytes: 64 << 20,
            sysfs: Sysfs::default(),
            stop_grace: Duration::from_secs(10),
        }
    }
}

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

/// The chunk pool shared by capture threads and the writer.
type Pool = Arc<Mutex<Vec<ChunkBuf>>>;

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
        let stop = Arc::new(AtomicBool::new(false));
        let pool: Pool = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = sync_channel::<Msg>(config.queue_chunks.max(1));
        let n = sources.len();
        let mut readers = Vec::with_capacity(n);
        for (input, src) in sources.into_iter().enumerate() {
            let r = Reader {
                input,
                tx: tx.clone(),
                counters: counters.clone(),
                stop: stop.clone(),
                pool: pool.clone(),
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
            pool,
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
    pool: Pool,
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
    fn fresh(&self, floor: u64) -> ChunkBuf {
        let mut c = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| ChunkBuf::with_capacity(self.config.chunk_bytes));
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
                        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(c);
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
    pool: Pool,
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
        let pool_cap = self.config.queue_chunks + 2 * self.n + 2;
        loop {
            let handle = |m: Msg, merger: &mut Merger, done: &mut usize| match m {
                Msg::Chunk(i, c) => merger.push(i, c, Instant::now()),
                Msg::Watermark(i, ts) => merger.watermark(i, ts),
                Msg::Done(i) => {
                    merger.finish(i);
                    *done += 1;
                }
            };
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(m) => handle(m, &mut merger, &mut done),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => done = self.n,
            }
            for _ in 0..256 {
                match self.rx.try_recv() {
                    Ok(m) => handle(m, &mut merger, &mut done),
                    Err(_) => break,
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
            {
                let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                while let Some(c) = merger.pop_free() {
                    if pool.len() < pool_cap {
                        pool.push(c);
                    }
                }
            }
            if all_done {
                break;
            }
        }
        self.sink.seal()
    }
}

fn write(sink: &mut dyn Sink, counters: &Counters, c: &ChunkBuf) {
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
            counters.set_error(e.to_string());
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
