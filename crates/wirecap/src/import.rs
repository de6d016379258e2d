//! `wirecap import`: pcap/pcapng files into a new stream.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use wirecap_pcap::{CaptureReader, LinkType};
use wirecap_store::{
    DEFAULT_WINDOW_BYTES, Reorder, StreamParams, StreamWriter, WriterOptions, sanitize,
};

use crate::DataDir;
use crate::listing::open_store;

/// Snapshot length written in exported pcap headers of imported streams. A file's own
/// snaplen is not kept: pcapng allows 0 ("no limit") and a different one per interface,
/// and a pcap header smaller than a packet makes readers truncate or refuse it.
const STORE_SNAPLEN: u32 = wirecap_pcap::MAX_PACKET_LEN;

#[derive(clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stream name (default: the first file's name); the store appends _YYYYMMDD_HHMM (UTC)
    #[arg(long)]
    name: Option<String>,
    /// Bytes of packets held to put slightly out-of-order input in time order
    #[arg(long, default_value_t = DEFAULT_WINDOW_BYTES, value_name = "BYTES")]
    reorder_window: usize,
    /// No progress bar
    #[arg(long, short)]
    quiet: bool,
    /// Write segments with O_DIRECT instead of through the page cache
    #[arg(long)]
    direct_io: bool,
    /// pcap or pcapng files (any byte order, µs or ns timestamps)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Every imported stream gets per-chunk filter summaries, so that filtered exports and
/// analyses skip the chunks a filter cannot match. Segments go through the page cache
/// (with writeback started per chunk and one fdatasync at the end): measured here, that
/// finishes a durable import sooner than O_DIRECT's one-chunk-at-a-time writes, for about
/// the same CPU. `--direct-io` bypasses the page cache (no cache pollution).
fn writer_options(direct_io: bool) -> WriterOptions {
    WriterOptions {
        summarizer: Some(Arc::new(wirecap_query::FilterSummarizer)),
        direct_io,
        ..WriterOptions::default()
    }
}

fn open(path: &Path) -> Result<CaptureReader<BufReader<File>>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // The reader buffers itself; a small BufReader only spares it tiny reads.
    CaptureReader::new(BufReader::with_capacity(1 << 16, f))
        .with_context(|| format!("{}: not a readable pcap or pcapng file", path.display()))
}

/// Timestamp of a file's first packet, to import several files in time order.
fn first_ts(path: &Path) -> Option<u64> {
    let mut r = open(path).ok()?;
    r.next_packet().ok().flatten().map(|p| p.ts_ns())
}

pub fn run(a: ImportArgs) -> Result<ExitCode> {
    let base = match &a.name {
        Some(n) => n.clone(),
        None => sanitize(
            &a.files[0]
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    wirecap_store::validate_base_name(&base)?;
    let store = open_store(&a.data)?;

    let mut files: Vec<(Option<u64>, PathBuf)> =
        a.files.iter().map(|p| (first_ts(p), p.clone())).collect();
    files.sort_by_key(|(t, _)| *t);
    let total_bytes: u64 = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();

    let bar = if a.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total_bytes).with_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} eta {eta} {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        )
    };

    // The stream is created when the first file tells its link type.
    let create = |link_type: LinkType| {
        let params = StreamParams {
            link_type,
            snaplen: STORE_SNAPLEN,
            source: "import".into(),
        };
        store.create_stream_with(
            &base,
            &params,
            SystemTime::now(),
            writer_options(a.direct_io),
        )
    };
    let started = Instant::now();
    let mut writer: Option<StreamWriter> = None;
    let mut link: Option<LinkType> = None;
    let mut reorder = Reorder::new(a.reorder_window);
    let mut failures = 0usize;
    let mut done_bytes = 0u64;
    let mut packets = 0u64;

    // A failure of the store (a full disk, an I/O error) ends the whole import; a bad
    // packet or file ends only that file.
    let mut fatal: Option<anyhow::Error> = None;
    for (_, path) in &files {
        let shown = path.display();
        let mut r = match open(path) {
            Ok(r) => r,
            Err(e) => {
                bar.suspend(|| eprintln!("wirecap: {e:#}"));
                failures += 1;
                continue;
            }
        };
        let mut last_iface = u32::MAX;
        let mut n = 0u64;
        let outcome: Result<()> = loop {
            let (p, lt) = match r.next_packet_with_link_type() {
                Ok(Some(x)) => x,
                Ok(None) => break Ok(()),
                Err(e) => break Err(anyhow::Error::new(e).context(format!("{shown}"))),
            };
            if p.interface != last_iface {
                match link {
                    None => {
                        link = Some(lt);
                        writer = Some(create(lt)?);
                    }
                    Some(l) if l != lt => {
                        break Err(anyhow::anyhow!(
                            "{shown}: interface {} has link type {lt} but the stream holds {l}; \
                             a stream has one link type, so import such interfaces separately",
                            p.interface
                        ));
                    }
                    Some(_) => {}
                }
                last_iface = p.interface;
            }
            let w = writer.as_mut().expect("created with the link type");
            if let Err(e) = reorder.push(&p, w) {
                let input = is_input_error(&e);
                let e = anyhow::Error::new(e).context(format!("{shown}: packet {}", n + 1));
                if !input {
                    fatal = Some(e);
                    break Ok(());
                }
                break Err(e);
            }
            n += 1;
            if n.is_multiple_of(65536) {
                bar.set_position(done_bytes + r.offset());
            }
        };
        packets += n;
        if fatal.is_some() {
            break;
        }
        let outcome_is_err = outcome.is_err();
        if let Err(e) = outcome {
            failures += 1;
            bar.suspend(|| {
                eprintln!("wirecap: {e:#}");
                eprintln!(
                    "wirecap: {shown}: the {n} packets before that one are imported; the rest of the file is not"
                );
            });
        }
        // Zero-packet files still fix the stream's link type.
        if link.is_none()
            && let Some(lt) = r.link_type(0)
        {
            link = Some(lt);
            writer = Some(create(lt)?);
        }
        if n == 0 && r.link_type(0).is_none() && !outcome_is_err {
            failures += 1;
            bar.suspend(|| eprintln!("wirecap: {shown}: holds no packets and no interface description; nothing to import from it"));
        }
        done_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        bar.set_position(done_bytes);
    }
    bar.finish_and_clear();

    let Some(mut w) = writer else {
        bail!("no readable capture among the files given; nothing imported");
    };
    let name = w.name().to_owned();
    if fatal.is_none()
        && let Err(e) = reorder.finish(&mut w)
    {
        fatal = Some(anyhow::Error::new(e).context("writing the last packets"));
    }
    if fatal.is_some() {
        reorder.discard();
    }
    // Whatever happened, what the stream holds is sealed and reported as it is.
    let summary = match w.seal() {
        Ok(s) => s,
        Err(e) => {
            let e = anyhow::Error::new(e);
            bail!(
                "{}{e:#}; stream {name} stays open: `wirecap recover` seals what it holds",
                fatal.map_or(String::new(), |f| format!(
                    "{}; then sealing failed: ",
                    describe(&f)
                ))
            );
        }
    };
    if let Some(e) = fatal {
        eprintln!("wirecap: {}", describe(&e));
        eprintln!(
            "wirecap: import stopped: stream {} holds {} of the {packets} packets read ({} bytes as pcap) and is sealed",
            summary.name, summary.packets, summary.bytes
        );
        println!("{}", summary.name);
        return Ok(ExitCode::from(1));
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "imported {} packets ({} bytes as pcap) from {} file(s) in {:.2} s: {:.0} packets/s, {:.1} MB/s{}",
        summary.packets,
        summary.bytes,
        files.len(),
        secs,
        packets as f64 / secs,
        done_bytes as f64 / secs / 1e6,
        if reorder.reordered() > 0 {
            format!(
                "; {} out-of-order packets put in time order",
                reorder.reordered()
            )
        } else {
            String::new()
        }
    );
    println!("{}", summary.name);
    Ok(if failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether a store error is about the packet given (the rest of the input may go on)
/// rather than about the store (nothing more can be written).
fn is_input_error(e: &wirecap_store::Error) -> bool {
    use wirecap_store::Error as E;
    matches!(
        e,
        E::TimestampOutOfRange { .. }
            | E::PacketTooLarge { .. }
            | E::OutOfOrder { .. }
            | E::BeyondReorderWindow { .. }
    )
}

/// The error, said plainly when it is a full disk.
fn describe(e: &anyhow::Error) -> String {
    let full = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|n| n == libc::ENOSPC || n == libc::EDQUOT)
    });
    if full {
        format!("disk full (ENOSPC: no space left on device, or the quota is used up): {e:#}")
    } else {
        format!("{e:#}")
    }
}
