//! `wirecap capture`: run a capture in the foreground (Ctrl-C stops and seals).

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use wirecap_capture::cli::{Foreground, SourceSpec, run_foreground};
use wirecap_capture::pipeline::DEFAULT_QUEUE_CHUNKS;
use wirecap_capture::replay::{ReplayConfig, ReplayTimestamps, Speed};
use wirecap_capture::ring::{
    DEFAULT_BLOCK_COUNT, DEFAULT_BLOCK_SIZE, FanoutMode, RingConfig, Timestamps,
};
use wirecap_capture::{PipelineConfig, Summarizer};

/// Capture an interface (or a replay, or synthetic traffic) into a new stream.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Data directory of the store.
    #[arg(long, env = "WIRECAP_DATA")]
    pub data: PathBuf,
    /// Stream name; the store adds `_YYYYMMDD_HHMM`.
    #[arg(long)]
    pub name: String,
    /// Interface to capture (AF_PACKET TPACKET_V3 ring; needs root or CAP_NET_RAW).
    #[arg(long, short = 'i', conflicts_with_all = ["replay", "synthetic"], required_unless_present_any = ["replay", "synthetic"])]
    pub interface: Option<String>,
    /// Replay this pcap/pcapng file instead of capturing.
    #[arg(long, conflicts_with = "synthetic")]
    pub replay: Option<PathBuf>,
    /// Replay speed: a factor (1, 2.5, 10x) or `top`.
    #[arg(long, default_value = "1", requires = "replay")]
    pub speed: String,
    /// Keep the replayed file's timestamps instead of re-basing them to now.
    #[arg(long, requires = "replay")]
    pub keep_timestamps: bool,
    /// Generate this many packets per second of synthetic traffic instead of capturing.
    #[arg(long)]
    pub synthetic: Option<u64>,
    /// Seed of the synthetic generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Capture threads (PACKET_FANOUT sockets).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Fanout mode: hash or cpu.
    #[arg(long, default_value = "hash")]
    pub fanout: String,
    /// Ring block size in KiB.
    #[arg(long, default_value_t = DEFAULT_BLOCK_SIZE / 1024)]
    pub block_kib: u32,
    /// Ring blocks (the ring covers the moments the capture thread is not scheduled).
    #[arg(long, default_value_t = DEFAULT_BLOCK_COUNT)]
    pub blocks: u32,
    /// Block retire timeout in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub retire_ms: u32,
    /// Bytes kept per packet (the original length is kept).
    #[arg(long, default_value_t = 262_144)]
    pub snaplen: u32,
    /// Capture filter in tcpdump syntax, compiled into the socket (interface captures).
    #[arg(long, value_name = "EXPR", requires = "interface")]
    pub bpf: Option<String>,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Software timestamps only (no NIC hardware timestamping).
    #[arg(long)]
    pub software_timestamps: bool,
    /// Writer queue depth in 1 MiB chunks (absorbs a disk slower than the link).
    #[arg(long, default_value_t = DEFAULT_QUEUE_CHUNKS)]
    pub queue_chunks: usize,
    /// Write through the page cache instead of O_DIRECT.
    #[arg(long)]
    pub no_direct_io: bool,
    /// Seconds between syncs of data and indexes (taken when the writer has caught up);
    /// 0: only when the capture stops.
    #[arg(long, default_value_t = 2.0)]
    pub sync_secs: f64,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// No live status line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Runs `wirecap capture`.
pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    let source = if let Some(path) = args.replay {
        let speed: Speed = args.speed.parse().map_err(anyhow::Error::msg)?;
        let timestamps = if args.keep_timestamps {
            ReplayTimestamps::Recorded
        } else {
            ReplayTimestamps::Rebase
        };
        SourceSpec::Replay(ReplayConfig {
            path,
            speed,
            timestamps,
        })
    } else if let Some(pps) = args.synthetic {
        SourceSpec::Synthetic {
            pps,
            seed: args.seed,
        }
    } else {
        let interface = args
            .interface
            .context("--interface, --replay or --synthetic is required")?;
        let fanout = match args.fanout.as_str() {
            "hash" => FanoutMode::Hash,
            "cpu" => FanoutMode::Cpu,
            other => anyhow::bail!("--fanout {other:?}: expected hash or cpu"),
        };
        // The same checks and compile as `wirecap serve --bpf`.
        let filter = wirecap_appliance::capture_settings::CaptureSettings::check(
            &wirecap_appliance::capture_settings::CaptureOptions {
                bpf: args.bpf.clone(),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow::anyhow!("--bpf: {}", e.why))?
        .filter;
        let ring = RingConfig {
            filter,
            block_size: args
                .block_kib
                .checked_mul(1024)
                .context("--block-kib too large")?,
            block_count: args.blocks,
            retire_timeout_ms: args.retire_ms,
            snaplen: args.snaplen,
            promiscuous: !args.no_promisc,
            timestamps: if args.software_timestamps {
                Timestamps::Software
            } else {
                Timestamps::PreferHardware
            },
            fanout,
            ..RingConfig::new(interface)
        };
        SourceSpec::Interface {
            ring,
            threads: args.threads.max(1),
        }
    };
    let duration = match args.duration {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--duration {s}: expected a positive number of seconds"),
        None => None,
    };
    let s = args.sync_secs;
    let sync_interval = if s == 0.0 {
        None
    } else if s.is_finite() && s > 0.0 {
        Some(Duration::from_secs_f64(s))
    } else {
        anyhow::bail!("--sync-secs {s}: expected a number of seconds ≥ 0")
    };
    let pipeline = PipelineConfig {
        queue_chunks: args.queue_chunks.max(1),
        direct_io: !args.no_direct_io,
        sync_interval,
        summarizer: Some(Summarizer(std::sync::Arc::new(
            wirecap_query::FilterSummarizer,
        ))),
        ..PipelineConfig::default()
    };
    run_foreground(Foreground {
        data: args.data,
        name: args.name,
        source,
        pipeline,
        duration,
        quiet: args.quiet,
    })
    .context("capture failed")?;
    Ok(())
}
