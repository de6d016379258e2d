//! What per-chunk zstd costs and saves in the archive: writes the same number of bytes
//! of IMIX traffic (64/594/1518-byte frames, 7:4:1) with text-like payloads and with
//! random (encrypted-looking) payloads into real segments (1 MiB chunks), compresses
//! each segment as writeback does (one frame per chunk, `zchunks`), and prints the
//! ratio and the CPU seconds per GB (this thread's CPU time, so the other load of the
//! machine does not count).
//!
//! `cargo run --release -p wirecap-archive --example zstd_ratio [MB]` (default 256).

use wirecap_archive::zchunks;
use wirecap_store::{Store, StreamParams, WriterOptions};

fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// A frame of `len` bytes of flow `flow`: Ethernet, IPv4, UDP headers, then payload.
fn frame(len: usize, flow: u32, seq: u32, random: bool, x: &mut u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
    out.extend_from_slice(&[0x45, 0, ((len - 14) >> 8) as u8, (len - 14) as u8]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[
        64,
        17,
        0,
        0,
        10,
        0,
        (flow >> 8) as u8,
        flow as u8,
        10,
        1,
        0,
        1,
    ]);
    out.extend_from_slice(&(1024 + (flow % 5000) as u16).to_be_bytes());
    out.extend_from_slice(&443u16.to_be_bytes());
    out.extend_from_slice(&((len - 34) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    const TEXT: &[u8] = b"GET /api/v1/items?page=2 HTTP/1.1\r\nHost: example.internal\r\nAccept: application/json\r\nUser-Agent: probe/1.0\r\n\r\n{\"id\":1234,\"name\":\"widget\",\"tags\":[\"a\",\"b\"]}";
    while out.len() < len {
        if random {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            out.push(*x as u8);
        } else {
            let i = (out.len() + seq as usize) % TEXT.len();
            out.push(TEXT[i]);
        }
    }
}

fn run(mb: u64, random: bool) {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let params = StreamParams {
        link_type: wirecap_pcap::LinkType::ETHERNET,
        snaplen: 65535,
        source: "bench".into(),
    };
    let opts = WriterOptions {
        segment_bytes: 64 << 20,
        ..WriterOptions::default()
    };
    let mut w = store
        .create_stream_with("z", &params, std::time::SystemTime::now(), opts)
        .unwrap();
    let sizes = [64, 64, 64, 64, 64, 64, 64, 594, 594, 594, 594, 1518];
    let (mut x, mut buf, mut total, mut i) = (0x2545f4914f6cdd1du64, Vec::new(), 0u64, 0u64);
    while total < mb << 20 {
        let len = sizes[(i % 12) as usize];
        frame(len, (i % 3000) as u32, i as u32, random, &mut x, &mut buf);
        w.append(&wirecap_pcap::Packet {
            ts_sec: 1_700_000_000 + i / 100_000,
            ts_nsec: (i % 100_000) as u32 * 10_000,
            orig_len: len as u32,
            data: &buf,
            interface: 0,
        })
        .unwrap();
        total += len as u64 + 16;
        i += 1;
    }
    let name = w.seal().unwrap().name;
    let dir = store.stream_path(&name).unwrap();
    let r = store.open_stream(&name).unwrap();
    let (mut raw, mut stored, mut cpu) = (0u64, 0u64, 0f64);
    for n in 0.. {
        let Ok(seg) = std::fs::read(dir.join(wirecap_store::layout::segment(n))) else {
            break;
        };
        let offsets: Vec<u64> = (0..r.chunk_count())
            .filter_map(|c| r.chunk(c).ok())
            .filter(|c| c.segment == n)
            .map(|c| c.file_offset)
            .collect();
        let cuts = zchunks::cuts(offsets, seg.len() as u64);
        let t = thread_cpu();
        let (z, frames) = zchunks::compress(&seg, &cuts).unwrap();
        cpu += thread_cpu() - t;
        raw += seg.len() as u64;
        stored += z.len() as u64 + zchunks::encode_table(&frames).len() as u64;
    }
    println!(
        "| IMIX, {} payload | {:.1} MB | {:.1} MB | {:.3} | {:.2} CPU-s/GB |",
        if random { "random" } else { "text-like" },
        raw as f64 / 1e6,
        stored as f64 / 1e6,
        stored as f64 / raw as f64,
        cpu / (raw as f64 / 1e9),
    );
}

fn main() {
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    println!("| traffic | segments | in the archive | ratio | zstd -3 compression |");
    println!("|---|---|---|---|---|");
    run(mb, false);
    run(mb, true);
}
