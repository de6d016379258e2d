//! A stand-alone `wirecap capture` for the benchmark (same engine, minimal flags):
//! `capture IFACE DATA_DIR NAME [SECONDS] [THREADS]`. Prints the final counters as
//! `key=value` lines on stdout.

use std::time::Duration;
use wirecap_capture::PipelineConfig;
use wirecap_capture::cli::{Foreground, SourceSpec, run_foreground};
use wirecap_capture::ring::{RingConfig, Timestamps};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: capture IFACE DATA_DIR NAME [SECONDS] [THREADS]");
        std::process::exit(2);
    }
    let duration = a
        .get(4)
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let threads = a.get(5).and_then(|s| s.parse().ok()).unwrap_or(1);
    let ring = RingConfig {
        timestamps: Timestamps::Software,
        ..RingConfig::new(a[1].clone())
    };
    let r = run_foreground(Foreground {
        data: a[2].clone().into(),
        name: a[3].clone(),
        source: SourceSpec::Interface { ring, threads },
        pipeline: PipelineConfig::default(),
        duration,
        quiet: false,
    });
    match r {
        Ok(s) => {
            let s = s.status;
            println!(
                "received={}\ncaptured={}\ndropped={}\ndropped_kernel={}\ndropped_queue={}\nerrors={}",
                s.packets_received,
                s.packets_captured,
                s.packets_dropped,
                s.dropped_kernel,
                s.dropped_queue,
                s.packets_errors
            );
        }
        Err(e) => {
            eprintln!("capture: {e}");
            std::process::exit(1);
        }
    }
}
