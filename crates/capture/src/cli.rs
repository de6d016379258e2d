//! `wirecap capture` in the foreground: start a capture, print a one-line status at most
//! once a second on stderr, stop and seal on Ctrl-C (SIGINT or SIGTERM), on `--duration`, or
//! when a replay ends.

use crate::counters::{Counters, Status};
use crate::error::{Error, Result};
use crate::link::format_uptime;
use crate::pipeline::{Capture, PipelineConfig, Stopped};
use crate::replay::{ReplayConfig, ReplaySource};
use crate::ring::{RingConfig, RingSource};
use crate::sink::Sink;
use crate::source::{Source, SyntheticSource};
use crate::store_sink::{SinkOptions, StoreSink};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where the packets come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A live interface; `threads > 1` opens a PACKET_FANOUT group.
    Interface {
        /// Ring settings.
        ring: RingConfig,
        /// Capture threads (sockets).
        threads: usize,
    },
    /// A pcap/pcapng file.
    Replay(ReplayConfig),
    /// Generated traffic.
    Synthetic {
        /// Packets per second.
        pps: u64,
        /// Generator seed.
        seed: u64,
    },
}

impl SourceSpec {
    /// Opens the source(s).
    pub fn open(&self) -> Result<Vec<Box<dyn Source>>> {
        Ok(match self {
            Self::Interface { ring, threads } => RingSource::open_fanout(ring, *threads)?
                .into_iter()
                .map(|s| Box::new(s) as Box<dyn Source>)
                .collect(),
            Self::Replay(c) => vec![Box::new(ReplaySource::open(c.clone())?)],
            Self::Synthetic { pps, seed } => vec![Box::new(SyntheticSource::new(*seed, *pps))],
        })
    }
}

impl Capture {
    /// Opens `spec` and starts capturing it into a new stream `name` of `store`.
    pub fn start(
        name: &str,
        spec: &SourceSpec,
        store: &wirecap_store::Store,
        config: &PipelineConfig,
        counters: Arc<Counters>,
    ) -> Result<Self> {
        let sources = spec.open()?;
        let first = sources
            .first()
            .ok_or_else(|| Error::Config("no source".into()))?;
        // Live captures write with O_DIRECT (a tenth of the CPU of the page cache);
        // replays and synthetic traffic are small and may be read back at once.
        let direct_io = config.direct_io && matches!(spec, SourceSpec::Interface { .. });
        let opts = SinkOptions {
            chunk_bytes: config.chunk_bytes,
            direct_io,
            summarizer: config.summarizer.clone(),
            segment_bytes: config.segment_bytes,
        };
        let mut sink = StoreSink::create_with(
            store,
            name,
            first.link_type(),
            first.snaplen(),
            first.describe(),
            &opts,
        )?;
        // A filtered capture holds only what the filter passed: the stream says which.
        if let SourceSpec::Interface {
            ring: RingConfig {
                filter: Some(f), ..
            },
            ..
        } = spec
        {
            sink.set_attr("capture_filter", &f.expr)?;
        }
        if direct_io && let Some(mode) = sink.write_mode().filter(|m| *m != "O_DIRECT") {
            eprintln!("wirecap capture: no direct I/O, writing through the {mode}");
        }
        Self::start_with(sources, Box::new(sink), config, counters)
    }
}

/// Options of the foreground command.
#[derive(Debug, Clone)]
pub struct Foreground {
    /// The store's data directory.
    pub data: PathBuf,
    /// Stream name (the store adds `_YYYYMMDD_HHMM`).
    pub name: String,
    /// The source.
    pub source: SourceSpec,
    /// Pipeline settings.
    pub pipeline: PipelineConfig,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// No status line.
    pub quiet: bool,
}

fn human(n: f64, unit: &str) -> String {
    let (v, p) = if n >= 1e9 {
        (n / 1e9, "G")
    } else if n >= 1e6 {
        (n / 1e6, "M")
    } else if n >= 1e3 {
        (n / 1e3, "k")
    } else {
        (n, "")
    };
    format!("{v:.1} {p}{unit}")
}

/// The one-line status.
pub fn status_line(s: &Status, elapsed: Duration) -> String {
    let link = match (s.link.up, s.link.speed_mbps) {
        (Some(true), Some(sp)) => format!("link up {sp} Mb/s"),
        (Some(true), None) => format!(
            "link up, {}",
            s.link.uptime.map_or_else(|| "?".into(), format_uptime)
        ),
        (Some(false), _) => "LINK DOWN".to_owned(),
        (None, _) => "link n/a".to_owned(),
    };
    format!(
        "{} {:>6.1}s  rx {}  cap {}  drop {} (kernel {}, queue {}, write {})  err {}  {}  {}  pending {}  {}",
        s.capture_name.as_deref().unwrap_or("-"),
        elapsed.as_secs_f64(),
        s.packets_received,
        s.packets_captured,
        s.packets_dropped,
        s.dropped_kernel,
        s.dropped_queue,
        s.dropped_write,
        s.packets_errors,
        human(s.capture_pps as f64, "pps"),
        human(s.capture_bps as f64, "b/s"),
        human(s.bytes_pending as f64, "B"),
        link,
    )
}

/// Runs a capture in the foreground until Ctrl-C, `duration`, or the end of a replay;
/// returns what was stored.
pub fn run_foreground(opts: Foreground) -> Result<Stopped> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Error::io("install signal handler", e))?;
    }
    let store = wirecap_store::Store::open(&opts.data).map_err(|e| Error::Store(Box::new(e)))?;
    let counters = Arc::new(Counters::new());
    let capture = Capture::start(
        &opts.name,
        &opts.source,
        &store,
        &opts.pipeline,
        counters.clone(),
    )?;
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_print = Instant::now();
    if !opts.quiet {
        let mode = capture.status().write_mode.unwrap_or_default();
        eprintln!(
            "capturing into {} (written via {mode}; Ctrl-C stops and seals)",
            capture.name()
        );
    }
    while !stop.load(Ordering::Relaxed)
        && !capture.finished()
        && opts.duration.is_none_or(|d| started.elapsed() < d)
    {
        std::thread::sleep(Duration::from_millis(100));
        if !opts.quiet && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            let line = status_line(&capture.status(), started.elapsed());
            let mut e = std::io::stderr().lock();
            let _ = if tty {
                write!(e, "\r\x1b[2K{line}")
            } else {
                writeln!(e, "{line}")
            };
            let _ = e.flush();
        }
    }
    let elapsed = started.elapsed();
    let stopped = capture.stop()?;
    if !opts.quiet {
        if tty {
            eprintln!();
        }
        eprintln!("{}", status_line(&stopped.status, elapsed));
        eprintln!(
            "sealed {}: {} packets stored, {} received, {} dropped",
            stopped.sealed.name,
            stopped.status.packets_captured,
            stopped.status.packets_received,
            stopped.status.packets_dropped
        );
    }
    // The stream is sealed with what fit; the run still failed (issue 17.4: it exited 0).
    if stopped.status.disk_full {
        return Err(Error::DiskFull(format!(
            "{} packets dropped; {} sealed with {} packets",
            stopped.status.dropped_write, stopped.sealed.name, stopped.status.packets_captured
        )));
    }
    Ok(stopped)
}
