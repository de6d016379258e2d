//! The time-order merge of several capture threads' chunk streams (PACKET_FANOUT), before
//! the writer: sans-I/O, the caller passes time in.
//!
//! Each input (one fanout socket) delivers chunks in its own time order. The merger keeps a
//! queue per input and releases packets in global timestamp order up to a *bound*: the
//! smallest, over inputs still running, of the latest time that input has vouched for —
//! the last timestamp of its newest chunk, or a watermark it sent while idle ("nothing
//! older than this will come from me"). Released packets are copied into output chunks;
//! a chunk that does not overlap any other input's pending packets is passed on whole,
//! without a copy (always the case with a single input).
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
    queue: VecDeque<(ChunkBuf, usize, Instant)>,
    vouched_ns: u64,
    done: bool,
}

impl Input {
    /// Timestamp of the next record, if any.
    fn head_ts(&self) -> Option<u64> {
        let (c, cursor, _) = self.queue.front()?;
        Records::new(&c.as_bytes()[*cursor..])
            .next()
            .map(|r| r.ts_ns)
    }
}

/// A k-way merge of time-ordered chunk streams.
#[derive(Debug)]
pub struct Merger {
    inputs: Vec<Input>,
    out: ChunkBuf,
    out_capacity: usize,
    last_ns: u64,
    buffered_bytes: usize,
    max_buffered: usize,
    max_hold: Duration,
    clamped: u64,
    free: Vec<ChunkBuf>,
}

impl Merger {
    /// A merger of `inputs` streams producing chunks of `out_capacity` bytes, releasing
    /// everything when more than `max_buffered` bytes wait or one chunk waited `max_hold`.
    pub fn new(
        inputs: usize,
        out_capacity: usize,
        max_buffered: usize,
        max_hold: Duration,
    ) -> Self {
        Self {
            inputs: (0..inputs).map(|_| Input::default()).collect(),
            out: ChunkBuf::with_capacity(out_capacity),
            out_capacity,
            last_ns: 0,
            buffered_bytes: 0,
            max_buffered,
            max_hold,
            clamped: 0,
            free: Vec::new(),
        }
    }

    /// Queues a chunk from `input` (received at `now`).
    pub fn push(&mut self, input: usize, chunk: ChunkBuf, now: Instant) {
        if chunk.is_empty() {
            self.free.push(chunk);
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

    /// An emptied input chunk to reuse, if any.
    pub fn pop_free(&mut self) -> Option<ChunkBuf> {
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

    /// Releases every packet that can be put in order now, handing each output chunk to
    /// `emit` (the chunk is reused after `emit` returns). With `force`, releases everything.
    pub fn drain(&mut self, now: Instant, force: bool, emit: &mut dyn FnMut(&ChunkBuf)) {
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
            let inp = &mut self.inputs[i];
            let Some((chunk, cursor, _)) = inp.queue.front_mut() else {
                break;
            };
            // Whole-chunk fast path: nothing else interleaves and nothing goes backwards.
            if *cursor == 0
                && self.out.is_empty()
                && chunk.last_ns() <= second
                && chunk.last_ns() <= bound
                && chunk.first_ns() >= self.last_ns
            {
                if let Some((chunk, _, _)) = inp.queue.pop_front() {
                    self.buffered_bytes -= chunk.len_bytes();
                    self.last_ns = chunk.last_ns();
                    self.out.raise_floor(self.last_ns);
                    emit(&chunk);
                    let mut chunk = chunk;
                    chunk.clear();
                    self.free.push(chunk);
                }
                continue;
            }
            let Some(rec) = Records::new(&chunk.as_bytes()[*cursor..]).next() else {
                break;
            };
            if !self.out.fits(rec.data.len()) {
                emit(&self.out);
                self.out.clear();
            }
            self.out.raise_floor(self.last_ns);
            if self.out.push(rec.ts_ns, rec.orig_len, rec.data) == Pushed::Clamped {
                self.clamped += 1;
            }
            self.last_ns = self.out.floor();
            *cursor += RECORD_HEADER_LEN + rec.data.len();
            if *cursor >= chunk.len_bytes()
                && let Some((mut chunk, _, _)) = inp.queue.pop_front()
            {
                self.buffered_bytes -= chunk.len_bytes();
                chunk.clear();
                self.free.push(chunk);
            }
        }
        if !self.out.is_empty() {
            emit(&self.out);
            self.out.clear();
        }
        if self.out.capacity() < self.out_capacity {
            self.out = ChunkBuf::with_capacity(self.out_capacity);
            self.out.raise_floor(self.last_ns);
        }
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
        m.drain(now, force, &mut |c| {
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
        m.drain(now, false, &mut |c| sizes.push(c.packets()));
        assert_eq!(sizes, vec![100]);
        assert!(m.pop_free().is_some());
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
