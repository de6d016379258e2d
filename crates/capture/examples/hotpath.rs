//! The capture thread's per-packet work, without a socket: walks TPACKET_V3 blocks built
//! in memory (as the kernel lays them out) and copies every frame into store chunks, the
//! way a capture thread does. `hotpath [FRAME_LEN] [MILLION_PACKETS]` prints ns/packet.
//! Run under `valgrind --tool=callgrind` for instruction counts that a shared box does not
//! blur.

use std::time::Instant;
use wirecap_capture::chunk::ChunkBuf;
use wirecap_capture::frame::Frame;
use wirecap_capture::ring::block::BlockIter;
use wirecap_capture::ring::block::build::{TestPacket, block};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let len: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let millions: f64 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let per_block = (1 << 20) / (len + 96);
    let pkts: Vec<TestPacket> = (0..per_block)
        .map(|i| TestPacket {
            sec: 1_700_000_000,
            nsec: i as u32 * 100,
            len: len as u32,
            data: vec![0x5a; len],
            vlan: None,
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
                // What the pipeline does: swap in a fresh chunk, queue the full one.
                sent += u64::from(chunks[cur].packets());
                cur ^= 1;
                chunks[cur].clear();
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
    println!(
        "{len}-byte frames: {:.1} ns/packet ({packets} packets, {bytes} bytes, {sent} in full chunks, {:?} since)",
        dt.as_nanos() as f64 / packets as f64,
        since.elapsed()
    );
}
