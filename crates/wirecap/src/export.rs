//! `wirecap export`: a stream, a time range or one split, as pcap or pcapng.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wirecap_pcap::PcapngWriter;
use wirecap_store::timefmt::parse_time;
use wirecap_store::{PacketRange, StreamReader, View};

use crate::DataDir;
use crate::listing::open_store;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
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

fn write(r: &StreamReader, range: PacketRange, format: Format, out: &mut impl Write) -> Result<()> {
    match format {
        Format::Pcap => {
            r.write_pcap(range, out)?;
        }
        Format::Pcapng => {
            let mut w = PcapngWriter::new(
                BufWriter::with_capacity(1 << 20, out),
                r.link_type(),
                r.meta().snaplen,
            )?;
            let mut err = None;
            r.for_each_packet(range, |p| match w.write_packet(p) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    err = Some(e);
                    ControlFlow::Break(())
                }
            })?;
            if let Some(e) = err {
                return Err(e.into());
            }
            w.into_inner().flush()?;
        }
    }
    Ok(())
}

pub fn run(a: ExportArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let r = store.open_stream(&a.name)?;
    let range = range(&r, &a)?;
    if a.out == "-" {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            bail!(
                "refusing to write a capture file to a terminal: pipe it (-o - | tcpdump -r -) or give -o FILE"
            );
        }
        let mut lock = stdout.lock();
        write(&r, range, a.format, &mut lock)?;
        lock.flush()?;
    } else {
        // Written beside the target and renamed, so a failed export never leaves a
        // truncated file that looks complete.
        let out = PathBuf::from(&a.out);
        let tmp = out.with_file_name(format!(
            ".{}.part",
            out.file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let res = write(&r, range, a.format, &mut f);
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context(format!("writing {}", out.display())));
        }
        std::fs::rename(&tmp, &out)
            .with_context(|| format!("cannot rename to {}", out.display()))?;
    }
    eprintln!(
        "wrote {} packets ({} bytes as pcap) of {}",
        range.packets(),
        range.pcap_bytes(),
        r.name()
    );
    Ok(ExitCode::SUCCESS)
}
