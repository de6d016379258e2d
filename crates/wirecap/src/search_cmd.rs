//! `wirecap search`: a time range and a filter over every stream, as one pcap.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wirecap_query::{Format, compile, search, today_utc};
use wirecap_store::timefmt::parse_time;

use crate::DataDir;
use crate::listing::open_store;

#[derive(clap::Args)]
#[command(
    after_help = "Every stream with packets in [--start, --stop) is read through the \
filter, and their packets are merged in time order into one file. The streams must share \
one link type (a pcap file holds one).\n\nExamples:\n  \
wirecap search --start 2025-01-01T09:00:00Z --stop 2025-01-01T09:05:00Z --bpf 'host 10.1.2.3' -o host.pcap\n  \
wirecap search --start 2025-01-01T09:00:00Z --stop 2025-01-01T10:00:00Z --filter 'x: tcp.port == 443; x' -o - | tcpdump -r - -nn"
)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    window: Window,
    /// Output file, or - for standard output
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    out: String,
    /// pcap (nanosecond timestamps) or pcapng
    #[arg(long, value_enum, default_value = "pcap")]
    format: crate::export::Format,
}

/// The question `search` and `flows` ask of every stream: a time range and a filter.
#[derive(clap::Args)]
pub struct Window {
    /// First packet time, inclusive: ns since the epoch, ISO-8601, or 20150620_18:36:47.780.373.248
    #[arg(long, value_name = "T")]
    start: String,
    /// Stop time, exclusive (same forms as --start)
    #[arg(long, value_name = "T")]
    stop: String,
    /// Only packets matching this appliance-language filter (`x: ipv4.proto == udp; y: tcp.port == 80; x | y`)
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Only packets matching this tcpdump expression (with --filter: both must match)
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
}

impl Window {
    /// `(start, stop)` in ns since the epoch.
    pub fn times(&self) -> Result<(u64, u64)> {
        let start = parse_time(&self.start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
        let stop = parse_time(&self.stop).map_err(|e| anyhow::anyhow!("--stop: {e}"))?;
        if stop < start {
            anyhow::bail!("--stop ({stop}) is before --start ({start})");
        }
        Ok((start, stop))
    }
}

pub fn run(a: SearchArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let (start, stop) = a.window.times()?;
    let plan = search::plan(&store, Some(start), Some(stop))?;
    for (name, why) in plan.skipped() {
        eprintln!("wirecap: warning: stream {name} left out of the search: {why}");
    }
    let filter = compile(
        a.window.filter.as_deref(),
        a.window.bpf.as_deref(),
        plan.link_type(),
        today_utc(wirecap_store::now_ns()),
    )?;
    let format = match a.format {
        crate::export::Format::Pcap => Format::Pcap,
        crate::export::Format::Pcapng => Format::Pcapng,
    };
    let examined = plan.packets();
    let s = plan.search(format, filter);
    let stats = if a.out == "-" {
        let mut lock = crate::output::capture_stdout("-o - | tcpdump -r -, or give -o FILE")?;
        let st = s.write_to(&mut lock)?;
        lock.flush()?;
        st
    } else {
        let mut part = crate::output::PartFile::create(&a.out)?;
        let st = s
            .write_to(part.file())
            .with_context(|| format!("writing {}", part.target().display()))?;
        part.commit()?;
        st
    };
    eprintln!(
        "wrote {} of {} packets ({} bytes) from {} stream{}; the filter skipped {} of {} chunks unread",
        stats.packets,
        examined,
        stats.bytes,
        stats.streams,
        if stats.streams == 1 { "" } else { "s" },
        stats.chunks_skipped,
        stats.chunks_read + stats.chunks_skipped
    );
    Ok(ExitCode::SUCCESS)
}
