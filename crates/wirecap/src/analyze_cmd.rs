//! `wirecap analyze`: what is in a stream, a time range and/or a filter.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use wirecap_query::{Analysis, AnalyzeOptions, CSV_SECTIONS, analyze, compile, today_utc};
use wirecap_store::timefmt::parse_time;

use crate::DataDir;
use crate::listing::open_store;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
wirecap analyze office_20250101_0900 --bpf 'tcp port 443' --json\n  \
wirecap analyze office_20250101_0900 --start 2025-01-01T09:00:00Z --stop 2025-01-01T09:05:00Z --csv talkers")]
pub struct AnalyzeArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name
    name: String,
    /// First packet time, inclusive: ns since the epoch, ISO-8601, or 20150620_18:36:47.780.373.248
    #[arg(long, value_name = "T")]
    start: Option<String>,
    /// Stop time, exclusive (same forms as --start)
    #[arg(long, value_name = "T")]
    stop: Option<String>,
    /// Appliance-language filter (`x: ipv4.proto == udp; y: tcp.port == 80; x | y`)
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// tcpdump-syntax filter (with --filter: both must match)
    #[arg(long, value_name = "EXPR")]
    bpf: Option<String>,
    /// Print the whole analysis as JSON
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print one section as CSV: summary, protocols, talkers, ports, series or flows
    #[arg(long, value_name = "SECTION", value_parser = clap::builder::PossibleValuesParser::new(CSV_SECTIONS))]
    csv: Option<String>,
    /// Rows of the top talkers and top ports tables
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Flows tracked at most (memory bound); more are counted as dropped
    #[arg(long, default_value_t = 100_000)]
    max_flows: usize,
    /// Flows listed (the largest by bytes)
    #[arg(long, default_value_t = 1000)]
    flows: usize,
}

pub fn run(a: AnalyzeArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let r = store.open_stream(&a.name)?;
    let t = |s: &Option<String>| -> Result<Option<u64>> {
        s.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let (start, stop) = (t(&a.start)?, t(&a.stop)?);
    if let (Some(x), Some(y)) = (start, stop)
        && y < x
    {
        bail!("--stop ({y}) is before --start ({x})");
    }
    let filter = compile(
        a.filter.as_deref(),
        a.bpf.as_deref(),
        r.link_type(),
        today_utc(wirecap_store::now_ns()),
    )?;
    let range = r.time_range(start, stop)?;
    let opts = AnalyzeOptions {
        top: a.top,
        max_flows: a.max_flows,
        flows_out: a.flows,
        ..AnalyzeOptions::default()
    };
    let mut an = analyze(&r, range, filter.as_ref(), &opts)?;
    an.start_ns = start;
    an.stop_ns = stop;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if a.json {
        serde_json::to_writer_pretty(&mut out, &an)?;
        writeln!(out)?;
    } else if let Some(section) = &a.csv {
        an.write_csv(section, &mut out)?;
    } else {
        text(&an, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn ts(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_owned(), wirecap_store::timefmt::rfc3339)
}

/// A readable report for a terminal.
fn text(an: &Analysis, w: &mut impl Write) -> std::io::Result<()> {
    writeln!(w, "stream    {}", an.stream)?;
    if let Some(f) = &an.filter {
        writeln!(w, "filter    {f}")?;
    }
    writeln!(w, "packets   {}", an.packets)?;
    writeln!(w, "bytes     {} (captured {})", an.bytes, an.captured_bytes)?;
    writeln!(w, "first     {}", ts(an.first_ns))?;
    writeln!(w, "last      {}", ts(an.last_ns))?;
    writeln!(
        w,
        "read      {} chunks, skipped {} by the filter's summary test",
        an.scan.chunks_read, an.scan.chunks_skipped
    )?;
    writeln!(w, "\nprotocols")?;
    for p in &an.protocols {
        writeln!(
            w,
            "  {:<9} {:<12} {:>12} pkts {:>15} bytes",
            p.layer, p.name, p.packets, p.bytes
        )?;
    }
    writeln!(w, "\ntop talkers (by bytes)")?;
    for t in &an.talkers {
        writeln!(
            w,
            "  {:<39} <-> {:<39} {:>10} pkts {:>13} bytes",
            t.a.to_string(),
            t.b.to_string(),
            t.packets,
            t.bytes
        )?;
    }
    writeln!(w, "\ntop ports (by packets)")?;
    for p in &an.ports {
        writeln!(
            w,
            "  {:<6} {:>5} {:>12} pkts {:>15} bytes",
            p.proto, p.port, p.packets, p.bytes
        )?;
    }
    writeln!(
        w,
        "\nflows     {} tracked{}",
        an.flows_tracked,
        if an.flows_dropped_packets > 0 {
            format!(
                ", about {} more not tracked (table full; {} packets)",
                an.flows_dropped, an.flows_dropped_packets
            )
        } else {
            String::new()
        }
    )?;
    for f in an.flows.iter().take(10) {
        writeln!(
            w,
            "  {:<6} {}:{} -> {}:{} {} pkts {} bytes {}",
            f.proto, f.src, f.sport, f.dst, f.dport, f.packets, f.bytes, f.tcp_flags
        )?;
    }
    writeln!(
        w,
        "\nseries    {} buckets of {} s (--csv series)",
        an.series.len(),
        an.series_step_secs
    )?;
    Ok(())
}
