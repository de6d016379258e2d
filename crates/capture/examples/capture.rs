//! A stand-alone `wirecap capture` for the benchmark (same engine, minimal flags):
//! `capture IFACE DATA_DIR NAME [SECONDS] [THREADS] [--block-kib N] [--blocks N]
//! [--queue-chunks N] [--no-direct] [--sync-ms N] [--no-summaries]`. Writes the filter
//! summaries per chunk as `wirecap capture` and `wirecap serve` do (`--no-summaries` to
//! measure what they cost). Prints the final counters as `key=value` lines on stdout.

use std::time::Duration;
use wirecap_capture::cli::{Foreground, SourceSpec, run_foreground};
use wirecap_capture::ring::{RingConfig, Timestamps};
use wirecap_capture::{PipelineConfig, Summarizer};

fn main() {
    let all: Vec<String> = std::env::args().collect();
    let (a, flags): (Vec<&String>, Vec<&String>) = {
        let split = all
            .iter()
            .position(|s| s.starts_with("--"))
            .unwrap_or(all.len());
        (all[..split].iter().collect(), all[split..].iter().collect())
    };
    if a.len() < 4 {
        eprintln!(
            "usage: capture IFACE DATA_DIR NAME [SECONDS] [THREADS] [--block-kib N] [--blocks N] \
             [--queue-chunks N] [--no-direct] [--sync-ms N] [--no-summaries]"
        );
        std::process::exit(2);
    }
    let duration = a
        .get(4)
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let threads = a.get(5).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut ring = RingConfig {
        timestamps: Timestamps::Software,
        ..RingConfig::new(a[1].clone())
    };
    let mut pipeline = PipelineConfig {
        summarizer: Some(Summarizer(std::sync::Arc::new(
            wirecap_query::FilterSummarizer,
        ))),
        ..PipelineConfig::default()
    };
    let mut it = flags.into_iter();
    while let Some(f) = it.next() {
        let mut num = || -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{f}: expected a number");
                std::process::exit(2)
            })
        };
        match f.as_str() {
            "--block-kib" => ring.block_size = num() as u32 * 1024,
            "--blocks" => ring.block_count = num() as u32,
            "--queue-chunks" => pipeline.queue_chunks = num() as usize,
            "--sync-ms" => {
                pipeline.sync_interval = Some(Duration::from_millis(num())).filter(|d| !d.is_zero())
            }
            "--no-direct" => pipeline.direct_io = false,
            "--no-summaries" => pipeline.summarizer = None,
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    let r = run_foreground(Foreground {
        data: a[2].clone().into(),
        name: a[3].clone(),
        source: SourceSpec::Interface { ring, threads },
        pipeline,
        duration,
        quiet: false,
    });
    match r {
        Ok(s) => {
            let s = s.status;
            println!(
                "received={}\ncaptured={}\ndropped={}\ndropped_kernel={}\ndropped_queue={}\n\
                 dropped_write={}\ndropped_malformed={}\nerrors={}\nring_freezes={}\n\
                 chunks_allocated={}\nchunks_whole={}\nchunks_merged={}\nwrite_mode={}",
                s.packets_received,
                s.packets_captured,
                s.packets_dropped,
                s.dropped_kernel,
                s.dropped_queue,
                s.dropped_write,
                s.dropped_malformed,
                s.packets_errors,
                s.ring_freezes,
                s.chunks_allocated,
                s.chunks_whole,
                s.chunks_merged,
                s.write_mode.as_deref().unwrap_or("?"),
            );
        }
        Err(e) => {
            eprintln!("capture: {e}");
            std::process::exit(1);
        }
    }
}
