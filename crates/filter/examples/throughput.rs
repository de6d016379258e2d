//! Matching throughput: packets per second of a compiled BPF filter and an appliance
//! filter over one capture file, in memory (no I/O in the timed loop).
//!
//! ```text
//! cargo run --release -p wirecap-filter --example throughput -- FILE [REPEAT]
//! ```

use std::time::Instant;

use wirecap_filter::{CompileOptions, Date, Filter, LinkType};
use wirecap_pcap::CaptureReader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: throughput FILE [REPEAT]")?;
    let repeat: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let mut r = CaptureReader::new(std::io::BufReader::new(std::fs::File::open(&path)?))?;
    let mut pkts = Vec::new();
    while let Some(p) = r.next_packet()? {
        pkts.push((p.ts_ns(), p.orig_len, p.data.to_vec()));
    }
    let bytes: usize = pkts.iter().map(|p| p.2.len()).sum();
    println!("{path}: {} packets, {bytes} bytes, x{repeat}", pkts.len());
    let opts = CompileOptions::new(Date::new(2024, 1, 1).ok_or("date")?);
    let filters = [
        (
            "bpf",
            Filter::bpf("tcp port 80 or udp port 53", LinkType::ETHERNET)?,
        ),
        (
            "bpf",
            Filter::bpf(
                "(tcp or udp) and not ip6 and net 10.0.0.0/8",
                LinkType::ETHERNET,
            )?,
        ),
        (
            "appliance",
            Filter::appliance(
                "x: tcp.port == 80; y: udp.port == 53; x | y",
                LinkType::ETHERNET,
                &opts,
            )?,
        ),
        (
            "appliance",
            Filter::appliance("ipv4.addr == 10.0.0.0/8", LinkType::ETHERNET, &opts)?,
        ),
        (
            "appliance",
            Filter::appliance("frame.size >= 1024", LinkType::ETHERNET, &opts)?,
        ),
    ];
    for (kind, f) in &filters {
        let start = Instant::now();
        let mut hits = 0u64;
        for _ in 0..repeat {
            for (ts, len, data) in &pkts {
                hits += u64::from(f.matches(*ts, *len, data));
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let n = (pkts.len() * repeat) as f64;
        println!(
            "{kind:<10} {:<55} {:>7.1} Mpkt/s  {:>6.1} ns/pkt  ({} matches/pass)",
            f.source(),
            n / secs / 1e6,
            secs * 1e9 / n,
            hits / repeat as u64
        );
    }
    Ok(())
}
