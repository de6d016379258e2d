//! `wirecap export`: a stream, a time range or one split, as pcap or pcapng.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wirecap_store::timefmt::parse_time;
use wirecap_store::{PacketRange, StreamReader, View};

use crate::DataDir;
use crate::listing::open_store;

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// pcap with nanosecond timestamps (magic a1b23c4d)
    Pcap,
    /// pcapng, one interface, nanosecond timestamps
    Pcapng,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name
    name: String,
    /// Output file, or - for standard output
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    out: String,
    /// First packet time, inclusive: ns since the epoch, ISO-8601, or 20150620_18:36:47.780.373.248
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Stop time, exclusive (same forms as --start)
    #[arg(long, value_name = "T")]
    stop: Option<String>,
    /// View to take one split from (with --split)
    #[arg(long, value_name = "V", requires = "split")]
    view: Option<String>,
    /// Index of the split in `wirecap splits NAME --view V` (from 0)
    #[arg(long, value_name = "K", requires = "view")]
    split: Option<u64>,
    #[arg(long, value_enum, default_value = "pcap")]
    format: Format,
    /// Only packets matching this appliance-language filter (`x: ipv4.proto == udp; y: tcp.port == 80; x | y`)
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Only packets matching this tcpdump expression (with --filter: both must match)
    #[arg(long, value_name = "EXPR")]
    bpf: Option<String>,
}

fn range(r: &StreamReader, a: &ExportArgs) -> Result<PacketRange> {
    let t = |s: &Option<String>| -> Result<Option<u64>> {
        s.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let (start, stop) = (t(&a.start)?, t(&a.stop)?);
    if let (Some(view), Some(k)) = (&a.view, a.split) {
        let split = r.split(View::parse(view)?, k)?;
        if start.is_some() || stop.is_some() {
            bail!("give either --view/--split or --start/--stop, not both");
        }
        return Ok(split.range);
    }
    if let (Some(a), Some(b)) = (start, stop)
        && b < a
    {
        bail!("--stop ({b}) is before --start ({a})");
    }
    Ok(r.time_range(start, stop)?)
}

fn write(
    r: &StreamReader,
    range: PacketRange,
    format: Format,
    filter: Option<wirecap_query::Filter>,
    out: &mut impl Write,
) -> Result<wirecap_query::ExportStats> {
    let format = match format {
        Format::Pcap => wirecap_query::Format::Pcap,
        Format::Pcapng => wirecap_query::Format::Pcapng,
    };
    Ok(wirecap_query::Export::new(r.clone(), range, format, filter).write_to(out)?)
}

pub fn run(a: ExportArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let r = store.open_stream(&a.name)?;
    let range = range(&r, &a)?;
    let filter = wirecap_query::compile(
        a.filter.as_deref(),
        a.bpf.as_deref(),
        r.link_type(),
        wirecap_query::today_utc(wirecap_store::now_ns()),
    )?;
    let stats = if a.out == "-" {
        let mut lock = crate::output::capture_stdout("-o - | tcpdump -r -, or give -o FILE")?;
        let s = write(&r, range, a.format, filter.clone(), &mut lock)?;
        lock.flush()?;
        s
    } else {
        let mut part = crate::output::PartFile::create(&a.out)?;
        let s = write(&r, range, a.format, filter.clone(), part.file())
            .with_context(|| format!("writing {}", part.target().display()))?;
        part.commit()?;
        s
    };
    if filter.is_some() {
        eprintln!(
            "wrote {} of {} packets ({} bytes) of {}; the filter skipped {} of {} chunks unread; read {} bytes, examined {} packets{}",
            stats.packets,
            range.packets(),
            stats.bytes,
            r.name(),
            stats.chunks_skipped,
            stats.chunks_read + stats.chunks_skipped,
            stats.bytes_read,
            stats.packets_examined,
            if stats.index_used {
                format!(
                    " (through the flow index: {} index bytes read)",
                    stats.index_bytes_read
                )
            } else {
                String::new()
            }
        );
    } else {
        eprintln!(
            "wrote {} packets ({} bytes as pcap) of {}",
            stats.packets,
            range.pcap_bytes(),
            r.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}
