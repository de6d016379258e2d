//! `wirecap verify`: every chunk CRC and every index record of a stream, checked against
//! its segments; one line per problem, a summary, exit 1 on damage.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::DataDir;
use crate::listing::open_store;

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name
    name: String,
    /// Rebuild the stream's index from its segments afterwards when damage was found
    /// (damaged chunks are left out; `wirecap recover` does this for index damage alone)
    #[arg(long)]
    repair: bool,
    /// No progress bar
    #[arg(long, short)]
    quiet: bool,
}

/// Streams smaller than this get no progress bar.
const BAR_FROM: u64 = 256 << 20;

pub fn run(a: VerifyArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let dir = a.data.data.join("streams").join(&a.name);
    let total: u64 = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".wcs"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let bar = if a.quiet || total < BAR_FROM || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{spinner} verifying {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} eta {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        )
    };
    let report = store.verify(&a.name, &mut |done| bar.set_position(done))?;
    bar.finish_and_clear();
    for p in &report.problems {
        println!("{}: {p}", a.name);
    }
    if report.problems.is_empty() {
        eprintln!(
            "{}: intact: {} chunks, {} packets, {} bytes of segments checked",
            a.name, report.chunks, report.packets, report.bytes
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{}: DAMAGED: {} problem(s); {} intact chunks ({} packets) in {} bytes of segments",
        a.name,
        report.problems.len(),
        report.chunks,
        report.packets,
        report.bytes
    );
    if a.repair {
        let r = store.rebuild_index(&a.name, Some(&wirecap_query::FilterSummarizer))?;
        eprintln!(
            "{}: index rebuilt from the segments: {} chunks, {} packets; {} damaged chunk(s) left out",
            a.name, r.chunks, r.packets, r.chunks_dropped
        );
    } else {
        eprintln!("run `wirecap verify --repair` to rebuild the index from the segments");
    }
    Ok(ExitCode::from(1))
}
