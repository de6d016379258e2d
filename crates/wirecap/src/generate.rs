//! `wirecap generate`: a synthetic capture file, deterministic for a seed. The packets
//! are written to a file only, never sent.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wirecap_capture::synth::{Generator, SizeMix, SynthConfig};
use wirecap_pcap::{LinkType, Packet, PcapNsWriter};
use wirecap_store::timefmt::{NS_PER_SEC, parse_time};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Output pcap file (nanosecond timestamps)
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Seconds of traffic
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Packets per second
    #[arg(long, default_value_t = 10_000)]
    pps: u64,
    /// Time of the first packet (default 2025-01-01T00:00:00Z, for reproducible files)
    #[arg(long, default_value = "2025-01-01T00:00:00Z")]
    start: String,
    /// Seed of the generator
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of flows
    #[arg(long, default_value_t = 300)]
    flows: usize,
    /// Frame sizes: `imix` (50% 60 bytes, 20% 590, 20% 1514, 10% anything), `small`
    /// (all 60 bytes: 64 on the wire) or `large` (all 1514)
    #[arg(long, default_value = "imix", value_parser = ["imix", "small", "large"])]
    sizes: String,
}

pub fn run(a: GenerateArgs) -> Result<ExitCode> {
    let start = parse_time(&a.start).map_err(anyhow::Error::msg)?;
    let config = SynthConfig {
        pps: a.pps.max(1),
        start_ns: start,
        flows: a.flows.max(1),
        sizes: match a.sizes.as_str() {
            "small" => SizeMix {
                small: 100,
                medium: 0,
                large: 0,
            },
            "large" => SizeMix {
                small: 0,
                medium: 0,
                large: 100,
            },
            _ => SizeMix::default(),
        },
        ..SynthConfig::default()
    };
    let mut g = Generator::new(a.seed, config);
    let f = File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut w = PcapNsWriter::new(
        BufWriter::with_capacity(1 << 20, f),
        LinkType::ETHERNET,
        262_144,
    )?;
    let end = start + a.seconds * NS_PER_SEC;
    let mut n = 0u64;
    while g.next_ts() < end {
        let fr = g.next_packet();
        w.write_packet(&Packet {
            ts_sec: fr.ts_ns / NS_PER_SEC,
            ts_nsec: (fr.ts_ns % NS_PER_SEC) as u32,
            orig_len: fr.orig_len,
            data: fr.data,
            interface: 0,
        })?;
        n += 1;
    }
    w.into_inner().flush()?;
    eprintln!("wrote {n} packets to {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
