//! The time-order merge of several capture threads' chunk streams (PACKET_FANOUT), before
//! the writer: sans-I/O, the caller passes time in.
//!
//! Each input (one fanout socket) delivers chunks in its own time order. The merger keeps a
//! queue per input and releases packets in global timestamp order up to a *bound*: the
//! smallest, over inputs still running, of the latest time that input has vouched for —
//! the last timestamp of its newest chunk, or a watermark it sent while idle ("nothing
//! older than this will come from me").
//!
//! **Whole chunks when possible.** A chunk whose time range does not overlap any other
//! input's pending packets is passed on as it is — the very buffer the capture thread
//! filled, no copy (always the case with a single input, and the common case when the
//! fanout threads take turns). Only where the ranges of several inputs overlap are their
//! packets copied, interleaved, into merged chunks the merger owns. Released input chunks
//! go back to the input they came from ([`Merger::pop_free`]) to be refilled.
//!
//! Memory and latency are bounded: when the buffered bytes exceed a limit, or a chunk has
//! waited longer than `max_hold`, everything buffered is released. A packet that arrives
//! after packets later than it were released is *not* dropped: its timestamp is clamped to
//! the last released one and it is counted ([`Merger::clamped`]), which the pipeline adds
//! to `packets_errors`.

use crate::chunk::{ChunkBuf, Pushed, RECORD_HEADER_LEN, Records};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Input {
    /// Chunks waiting, each with how far it has been copied out and when it arrived.
    queue: VecDeque<(ChunkBuf, usize, Instant)>,
    vouched_ns: u64,
    done: bool,
}

impl Input {
    /// Timestamp of the next record, if any.
    fn head_ts(&self) -> Option<u64> {
        let (c, cursor, _) = self.queue.front()?;
        if *cursor == 0 {
            return (!c.is_empty()).then(|| c.first_ns());
        }
        Records::new(&c.as_bytes()[*cursor..])
            .next()
            .map(|r| r.ts_ns)
    }
}

/// How many chunks went through whole and how many packets had to be copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Input chunks passed on whole (no copy).
    pub whole_chunks: u64,
    /// Merged chunks built from overlapping inputs.
    pub merged_chunks: u64,
    /// Packets copied into merged chunks.
    pub copied_packets: u64,
}

/// A k-way merge of time-ordered chunk streams.
#[derive(Debug)]
pub struct Merger {
    inputs: Vec<Input>,
    out: ChunkBuf,
    last_ns: u64,
    buffered_bytes: usize,
    max_buffered: usize,
    max_hold: Duration,
    clamped: u64,
    free: Vec<(usize, ChunkBuf)>,
    stats: MergeStats,
}

impl Merger {
    /// A merger of `inputs` streams building merged chunks of `out_capacity` bytes,
    /// releasing everything when more than `max_buffered` bytes wait or one chunk waited
    /// `max_hold`.
    pub fn new(
        inputs: usize,
        out_capacity: usize,
        max_buffered: usize,
        max_hold: Duration,
    ) -> Self {
        Self {
            inputs: (0..inputs).map(|_| Input::default()).collect(),
            // With one input nothing is ever merged: no buffer needed.
            out: ChunkBuf::with_capacity(if inputs > 1 { out_capacity } else { 0 }),
            last_ns: 0,
            buffered_bytes: 0,
            max_buffered,
            max_hold,
            clamped: 0,
            free: Vec::new(),
            stats: MergeStats::default(),
        }
    }

    /// Queues a chunk from `input` (received at `now`).
    pub fn push(&mut self, input: usize, chunk: ChunkBuf, now: Instant) {
        if chunk.is_empty() {
            self.free.push((input, chunk));
            return;
        }
        if let Some(inp) = self.inputs.get_mut(input) {
            inp.vouched_ns = inp.vouched_ns.max(chunk.last_ns());
            self.buffered_bytes += chunk.len_bytes();
            inp.queue.push_back((chunk, 0, now));
        }
    }

    /// `input` promises that it will deliver nothing older than `ts_ns`.
    pub fn watermark(&mut self, input: usize, ts_ns: u64) {
        if let Some(inp) = self.inputs.get_mut(input) {
            inp.vouched_ns = inp.vouched_ns.max(ts_ns);
        }
    }

    /// `input` has ended: it no longer holds the bound back.
    pub fn finish(&mut self, input: usize) {
        if let Some(inp) = self.inputs.get_mut(input) {
            inp.done = true;
        }
    }

    /// Whether every input has finished and nothing is buffered.
    pub fn is_idle_and_done(&self) -> bool {
        self.inputs.iter().all(|i| i.done && i.queue.is_empty()) && self.out.is_empty()
    }

    /// Bytes of input chunks waiting.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Packets whose timestamp had to be clamped because they arrived too late.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Whole and merged chunk counts so far.
    pub fn stats(&self) -> MergeStats {
        self.stats
    }

    /// An input chunk that has been written or emptied, with the input it came from, to
    /// give back to that input for reuse.
    pub fn pop_free(&mut self) -> Option<(usize, ChunkBuf)> {
        self.free.pop()
    }

    fn bound(&self) -> u64 {
        self.inputs
            .iter()
            .filter(|i| !i.done)
            .map(|i| i.vouched_ns)
            .min()
            .unwrap_or(u64::MAX)
    }

    fn emit_out(&mut self, emit: &mut dyn FnMut(&mut ChunkBuf)) {
        if !self.out.is_empty() {
            self.stats.merged_chunks += 1;
            emit(&mut self.out);
            self.out.clear();
        }
    }

    /// Releases every packet that can be put in order now, handing each chunk to `emit`
    /// (an input chunk passed whole, or a merged chunk). With `force`, releases everything.
    pub fn drain(&mut self, now: Instant, force: bool, emit: &mut dyn FnMut(&mut ChunkBuf)) {
        let stale = self
            .inputs
            .iter()
            .filter_map(|i| i.queue.front())
            .any(|(_, _, at)| now.saturating_duration_since(*at) >= self.max_hold);
        let force = force || stale || self.buffered_bytes > self.max_buffered;
        let bound = if force { u64::MAX } else { self.bound() };
        loop {
            // The input whose next packet is oldest, and the oldest head among the others.
            let mut best: Option<(usize, u64)> = None;
            let mut second = u64::MAX;
            for (i, inp) in self.inputs.iter().enumerate() {
                let Some(ts) = inp.head_ts() else { continue };
                match best {
                    Some((_, b)) if ts >= b => second = second.min(ts),
                    Some((_, b)) => {
                        second = second.min(b);
                        best = Some((i, ts));
                    }
                    None => best = Some((i, ts)),
                }
            }
            let Some((i, ts)) = best else { break };
            if ts > bound {
                break;
            }
            let Some((chunk, cursor, _)) = self.inputs[i].queue.front() else {
                break;
            };
            // Whole-chunk path: no other input's pending packet falls inside this chunk's
            // range, every input has vouched past it, and it starts no earlier than what
            // was released (the merged chunk in progress is emitted first).
            if *cursor == 0
                && chunk.last_ns() <= second
                && chunk.last_ns() <= bound
                && chunk.first_ns() >= self.last_ns
            {
                self.emit_out(emit);
                if let Some((mut chunk, _, _)) = self.inputs[i].queue.pop_front() {
                    self.buffered_bytes -= chunk.len_bytes();
                    self.last_ns = chunk.last_ns();
                    self.out.raise_floor(self.last_ns);
                    self.stats.whole_chunks += 1;
                    emit(&mut chunk);
                    chunk.clear();
                    self.free.push((i, chunk));
                }
                continue;
            }
            // Overlap: copy packets into the merged chunk, as long as this input's next
            // packet stays the oldest (no re-scan of the inputs per packet).
            let limit = second.min(bound);
            let inp = &mut self.inputs[i];
            let Some((chunk, cursor, _)) = inp.queue.front_mut() else {
                break;
            };
            let mut first = true;
            for rec in Records::new(&chunk.as_bytes()[*cursor..]) {
                if !first && rec.ts_ns > limit {
                    break;
                }
                first = false;
                if !self.out.fits(rec.data.len()) {
                    self.stats.merged_chunks += 1;
                    emit(&mut self.out);
                    self.out.clear();
                }
                self.out.raise_floor(self.last_ns);
                if self.out.push(rec.ts_ns, rec.orig_len, rec.data) == Pushed::Clamped {
                    self.clamped += 1;
                }
                self.stats.copied_packets += 1;
                self.last_ns = self.out.floor();
                *cursor += RECORD_HEADER_LEN + rec.data.len();
            }
            if *cursor >= chunk.len_bytes()
                && let Some((mut chunk, _, _)) = inp.queue.pop_front()
            {
                self.buffered_bytes -= chunk.len_bytes();
                chunk.clear();
                self.free.push((i, chunk));
            }
        }
        self.emit_out(emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(ts: &[u64]) -> ChunkBuf {
        let mut c = ChunkBuf::with_capacity(4096);
        for &t in ts {
            let _ = c.push(t, 60, &t.to_le_bytes());
        }
        c
    }

    fn run(m: &mut Merger, now: Instant, force: bool) -> Vec<u64> {
        let mut out = vec![];
        m.drain(now, force, &mut |c: &mut ChunkBuf| {
            out.extend(c.records().map(|r| r.ts_ns))
        });
        out
    }

    #[test]
    fn merges_in_time_order_up_to_the_bound() {
        let now = Instant::now();
        let mut m = Merger::new(3, 1 << 16, 1 << 30, Duration::from_secs(10));
        m.push(0, chunk(&[1, 4, 7, 10]), now);
        m.push(1, chunk(&[2, 5, 8]), now);
        // Input 2 has said nothing: nothing may be released.
        assert!(run(&mut m, now, false).is_empty());
        m.watermark(2, 6);
        assert_eq!(run(&mut m, now, false), vec![1, 2, 4, 5]);
        m.push(2, chunk(&[6, 9]), now);
        // bound = min(10, 8, 9) = 8
        assert_eq!(run(&mut m, now, false), vec![6, 7, 8]);
        m.finish(0);
        m.finish(1);
        m.finish(2);
        assert_eq!(run(&mut m, now, false), vec![9, 10]);
        assert!(m.is_idle_and_done());
        assert_eq!(m.clamped(), 0);
    }

    #[test]
    fn single_input_passes_chunks_whole() {
        let now = Instant::now();
        let mut m = Merger::new(1, 64, 1 << 30, Duration::from_secs(10));
        let big = chunk(&(0..100).collect::<Vec<_>>()); // larger than the 64-byte out chunk
        m.push(0, big, now);
        let mut sizes = vec![];
        m.drain(now, false, &mut |c: &mut ChunkBuf| sizes.push(c.packets()));
        assert_eq!(sizes, vec![100]);
        assert_eq!(
            m.pop_free().map(|(i, c)| (i, c.is_empty())),
            Some((0, true))
        );
        assert_eq!(m.stats().copied_packets, 0);
    }

    /// Drains, returning per emitted chunk: (buffer address, timestamps).
    fn run_chunks(m: &mut Merger, now: Instant) -> Vec<(usize, Vec<u64>)> {
        let mut out = vec![];
        m.drain(now, false, &mut |c: &mut ChunkBuf| {
            out.push((
                c.as_bytes().as_ptr() as usize,
                c.records().map(|r| r.ts_ns).collect(),
            ))
        });
        out
    }

    #[test]
    fn disjoint_chunks_pass_whole_overlapping_ones_are_rebuilt() {
        let now = Instant::now();
        let mut m = Merger::new(2, 1 << 16, 1 << 30, Duration::from_secs(10));
        let a = chunk(&[1, 2, 3]);
        let b = chunk(&[4, 5, 6]);
        let (pa, pb) = (
            a.as_bytes().as_ptr() as usize,
            b.as_bytes().as_ptr() as usize,
        );
        m.push(1, b, now);
        m.push(0, a, now);
        // Input 0 has vouched only up to 3: [4, 5, 6] must wait for it.
        assert_eq!(run_chunks(&mut m, now), vec![(pa, vec![1, 2, 3])]);
        m.watermark(0, 6);
        // Time ranges do not overlap: both went out as they are, the very same buffers.
        assert_eq!(run_chunks(&mut m, now), vec![(pb, vec![4, 5, 6])]);
        assert_eq!(
            m.stats(),
            MergeStats {
                whole_chunks: 2,
                merged_chunks: 0,
                copied_packets: 0
            }
        );
        // Each buffer goes back to the input it came from.
        let mut free: Vec<_> = std::iter::from_fn(|| m.pop_free())
            .map(|(i, c)| (i, c.as_bytes().as_ptr() as usize, c.is_empty()))
            .collect();
        free.sort_unstable();
        assert_eq!(free, vec![(0, pa, true), (1, pb, true)]);

        // Overlapping ranges are interleaved into a merged chunk; the input chunks come
        // back once copied. A later chunk that overlaps nothing passes whole again.
        let c = chunk(&[10, 12, 14]);
        let d = chunk(&[11, 13]);
        let e = chunk(&[20, 21]);
        let f = chunk(&[30]);
        let pe = e.as_bytes().as_ptr() as usize;
        m.push(0, c, now);
        m.push(1, d, now);
        m.push(0, e, now);
        m.push(1, f, now);
        let out = run_chunks(&mut m, now);
        let stamps: Vec<_> = out.iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(stamps, vec![vec![10, 11, 12, 13, 14], vec![20, 21]]);
        assert_eq!(out[1].0, pe, "the disjoint chunk was copied");
        let s = m.stats();
        assert_eq!(
            (s.whole_chunks, s.merged_chunks, s.copied_packets),
            (3, 1, 5)
        );
        // Input 1's last chunk ([30]) waits: input 0 has not vouched past 21.
        m.finish(0);
        m.finish(1);
        assert_eq!(run(&mut m, now, false), vec![30]);
        assert!(m.is_idle_and_done());
        let back: Vec<_> = std::iter::from_fn(|| m.pop_free())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(back.iter().filter(|&&i| i == 0).count(), 2);
        assert_eq!(back.iter().filter(|&&i| i == 1).count(), 2);
    }

    #[test]
    fn late_packets_are_clamped_and_counted_not_lost() {
        let now = Instant::now();
        let mut m = Merger::new(2, 1 << 16, 1 << 30, Duration::from_secs(10));
        m.push(0, chunk(&[10, 20]), now);
        m.push(1, chunk(&[15, 30]), now);
        assert_eq!(run(&mut m, now, false), vec![10, 15, 20]);
        // Input 0 now delivers a packet older than what was released (clock step).
        m.push(0, chunk(&[12, 40]), now);
        m.finish(0);
        m.finish(1);
        assert_eq!(run(&mut m, now, false), vec![20, 30, 40]);
        assert_eq!(m.clamped(), 1);
    }

    #[test]
    fn stale_or_oversized_buffers_are_released() {
        let t0 = Instant::now();
        let mut m = Merger::new(2, 1 << 16, 1 << 30, Duration::from_millis(500));
        m.push(0, chunk(&[1, 2]), t0);
        assert!(run(&mut m, t0, false).is_empty());
        assert_eq!(
            run(&mut m, t0 + Duration::from_millis(600), false),
            vec![1, 2]
        );
        let mut m = Merger::new(2, 1 << 16, 50, Duration::from_secs(10));
        m.push(0, chunk(&[1, 2, 3, 4]), t0);
        assert_eq!(run(&mut m, t0, false), vec![1, 2, 3, 4]);
    }

    #[test]
    fn randomized_merge_is_sorted_and_complete() {
        let now = Instant::now();
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..50 {
            let k = (next() % 4 + 1) as usize;
            let mut m = Merger::new(k, 256, 1 << 30, Duration::from_secs(10));
            let mut clocks = vec![0u64; k];
            let mut total = 0;
            let mut out = vec![];
            for _ in 0..200 {
                let i = (next() % k as u64) as usize;
                let n = next() % 5 + 1;
                let ts: Vec<u64> = (0..n)
                    .map(|_| {
                        clocks[i] += next() % 100;
                        clocks[i]
                    })
                    .collect();
                total += ts.len();
                m.push(i, chunk(&ts), now);
                out.extend(run(&mut m, now, false));
            }
            for i in 0..k {
                m.finish(i);
            }
            out.extend(run(&mut m, now, false));
            assert_eq!(out.len(), total);
            assert!(out.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!(m.clamped(), 0);
        }
    }
}
