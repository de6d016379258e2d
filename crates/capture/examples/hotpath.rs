//! The capture thread's per-packet work, without a socket: walks TPACKET_V3 blocks built
//! in memory (as the kernel lays them out) and copies every frame into store chunks, the
//! way a capture thread does.
//!
//! `hotpath [FRAME_LEN] [MILLION_PACKETS] [--store DIR] [--summaries] [--synth]` prints
//! ns/packet. `--synth` makes the frames real traffic (`synth`: IPv4/IPv6 TCP, UDP and
//! ICMP of 5,000 flows) instead of filler bytes, so that summaries and the flow index
//! (`WIRECAP_FLOW_INDEX=off` turns it off) do their real work.
//! With `--store`, every full chunk is also written by the pipeline's writer-side code (a
//! [`StoreSink`]: indexing, checksum, O_DIRECT write into a new stream under DIR), and with
//! `--summaries` the filter summaries are computed too, so the figure is the whole
//! per-packet user-space cost of a capture on one core. Run under
//! `valgrind --tool=callgrind` for instruction counts that a shared box does not blur:
//! at two packet counts (say 1 and 5 million), dividing the difference of the totals by
//! the difference of the counts, which leaves out building the blocks and the synthetic
//! traffic. The flow index's figures taken so are in `wirecap_store`'s `flows/slots.rs`.

use std::time::Instant;
use wirecap_capture::Sink;
use wirecap_capture::chunk::ChunkBuf;
use wirecap_capture::frame::Frame;
use wirecap_capture::ring::block::BlockIter;
use wirecap_capture::ring::block::build::{TestPacket, block};
use wirecap_capture::store_sink::{SinkOptions, StoreSink};

fn main() {
    let all: Vec<String> = std::env::args().collect();
    let mut pos = Vec::new();
    let (mut store_dir, mut summaries, mut synth) = (None, false, false);
    let mut it = all.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => store_dir = it.next().cloned(),
            "--summaries" => summaries = true,
            "--synth" => synth = true,
            _ => pos.push(a.clone()),
        }
    }
    let len: usize = pos.first().and_then(|s| s.parse().ok()).unwrap_or(60);
    let millions: f64 = pos.get(1).and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let mut sink = store_dir.map(|d| {
        let store = wirecap_store::Store::open(&d).expect("open store");
        let opts = SinkOptions {
            direct_io: true,
            summarizer: summaries.then(|| {
                wirecap_capture::Summarizer(std::sync::Arc::new(wirecap_query::FilterSummarizer))
            }),
            ..SinkOptions::default()
        };
        StoreSink::create_with(&store, "hotpath", 1, 262_144, "hotpath", &opts).expect("stream")
    });
    // Synthetic full-size frames are 1514 bytes.
    let frame_max = if synth && len > 64 {
        len.max(1514)
    } else {
        len
    };
    let per_block = (1 << 20) / (frame_max + 96);
    let mut g = wirecap_capture::synth::Generator::new(
        1,
        wirecap_capture::synth::SynthConfig {
            flows: 5000,
            sizes: if len <= 64 {
                wirecap_capture::synth::SizeMix {
                    small: 100,
                    medium: 0,
                    large: 0,
                }
            } else {
                wirecap_capture::synth::SizeMix {
                    small: 0,
                    medium: 0,
                    large: 100,
                }
            },
            ..Default::default()
        },
    );
    let pkts: Vec<TestPacket> = (0..per_block)
        .map(|i| {
            if synth {
                let f = g.next_packet();
                return TestPacket {
                    sec: 1_700_000_000,
                    nsec: i as u32 * 100,
                    len: f.data.len() as u32,
                    data: f.data.to_vec(),
                    vlan: None,
                };
            }
            TestPacket {
                sec: 1_700_000_000,
                nsec: i as u32 * 100,
                len: len as u32,
                data: (0..len).map(|j| (i * 7 + j) as u8).collect(),
                vlan: None,
            }
        })
        .collect();
    let mut blk = block(1 << 20, &pkts);
    let mut scratch = Vec::with_capacity(262_148);
    let mut chunks = [
        ChunkBuf::with_capacity(1 << 20),
        ChunkBuf::with_capacity(1 << 20),
    ];
    let mut cur = 0;
    let total = (millions * 1e6) as u64;
    let (mut packets, mut bytes, mut sent) = (0u64, 0u64, 0u64);
    let mut since = Instant::now();
    let t = Instant::now();
    while packets < total {
        let mut on_frame = |f: &Frame<'_>| {
            if !chunks[cur].fits(f.data.len()) {
                // What the pipeline does: swap in a fresh chunk, queue the full one (here:
                // write it at once, as the writer thread would).
                sent += u64::from(chunks[cur].packets());
                if let Some(s) = sink.as_mut() {
                    s.write_chunk(&mut chunks[cur]).expect("write chunk");
                }
                let floor = chunks[cur].floor();
                cur ^= 1;
                chunks[cur].clear();
                chunks[cur].set_floor(floor);
            }
            let chunk = &mut chunks[cur];
            if chunk.is_empty() {
                since = Instant::now();
            }
            let _ = chunk.push(f.ts_ns, f.orig_len, f.data);
            packets += 1;
            bytes += u64::from(f.orig_len);
        };
        let on_frame: &mut dyn FnMut(&Frame<'_>) = &mut on_frame;
        let mut it = BlockIter::new(&mut blk, 262_144, &mut scratch).expect("block");
        while let Some(Ok(f)) = it.next() {
            on_frame(&f);
        }
    }
    let dt = t.elapsed();
    if let Some(s) = sink {
        Box::new(s).seal().expect("seal");
    }
    println!(
        "{len}-byte frames: {:.1} ns/packet ({packets} packets, {bytes} bytes, {sent} in full chunks, {:?} since)",
        dt.as_nanos() as f64 / packets as f64,
        since.elapsed()
    );
}
