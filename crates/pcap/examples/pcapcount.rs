//! Counts the packets of capture files and reports read throughput.
//!
//! `cargo run --release -p wirecap-pcap --example pcapcount -- [-n REPEAT] FILE...`
//!
//! Each file is read into memory first, so that the figure is the parser's speed and not
//! the disk's; a `File` behaves the same apart from the `read()` calls (one per MiB).

use std::time::Instant;

use wirecap_pcap::CaptureReader;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1;
    if args.first().map(String::as_str) == Some("-n") && args.len() >= 2 {
        repeat = args[1].parse().unwrap_or(1);
        args.drain(..2);
    }
    for path in &args {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let start = Instant::now();
        let mut summary = String::new();
        for _ in 0..repeat {
            let (mut packets, mut bytes) = (0u64, 0u64);
            let mut reader = match CaptureReader::new(&data[..]) {
                Ok(r) => r,
                Err(e) => {
                    summary = format!("{path}: {e}");
                    break;
                }
            };
            let result = loop {
                match reader.next_packet() {
                    Ok(Some(p)) => {
                        packets += 1;
                        bytes += p.data.len() as u64;
                    }
                    Ok(None) => break String::new(),
                    Err(e) => break format!(", then {e}"),
                }
            };
            summary = format!(
                "{path}: {:?}, {} interface(s), link type {}: {packets} packets, {bytes} captured bytes{result}",
                reader.format(),
                reader.interface_count(),
                reader
                    .link_type(0)
                    .map_or("-".to_string(), |l| l.to_string()),
            );
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{summary}");
        if repeat > 1 {
            let mb = (data.len() * repeat) as f64 / 1e6;
            println!(
                "  {repeat} x {} bytes in {secs:.3} s: {:.0} MB/s",
                data.len(),
                mb / secs
            );
        }
    }
}
