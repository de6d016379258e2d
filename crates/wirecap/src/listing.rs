//! `list`, `views`, `splits`, `delete`, `recover`: what the store holds.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wirecap_store::timefmt::rfc3339;
use wirecap_store::{Listed, Store, View};

use crate::DataDir;

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    data: DataDir,
    /// Print JSON instead of columns
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ViewsArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name (as `wirecap list` prints it)
    name: String,
}

#[derive(clap::Args)]
pub struct SplitsArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name
    name: String,
    /// View: single, split_1sec … split_1hour, split_1MB … split_1TB
    #[arg(long, default_value = "split_1min")]
    view: String,
    /// Print JSON instead of columns
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name
    name: String,
}

pub(crate) fn open_store(d: &DataDir) -> Result<Store> {
    let store = Store::open(&d.data)
        .with_context(|| format!("cannot open the store in {}", d.data.display()))?;
    // With `[archive]` in wirecap.toml, segments kept only in the archive are read from it.
    let file = wirecap_appliance::config::FileConfig::load(&d.data)?;
    let probe = wirecap_appliance::hostname::effective(file.hostname.as_deref());
    let Some(settings) = file.archive.validate(&probe)? else {
        return Ok(store);
    };
    wirecap_http::tls::install_crypto_provider();
    let archive = wirecap_archive::Archive::open(settings)?;
    Ok(store.with_source(std::sync::Arc::new(archive.reader())))
}

fn ts_or_dash(t: Option<u64>) -> String {
    t.map_or_else(|| "-".to_owned(), rfc3339)
}

pub fn list(a: ListArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let listing = store.listing()?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = listing
            .iter()
            .map(|e| match e {
                Listed::Stream(s) => serde_json::json!({
                    "name": s.meta.name,
                    "packets": s.packets,
                    "bytes": s.bytes,
                    "first_ts": s.first_ts,
                    "last_ts": s.last_ts,
                    "created_ns": s.meta.created_ns,
                    "state": s.meta.state,
                    "source": s.meta.source,
                    "link_type": s.meta.link_type,
                }),
                Listed::Damaged { name, why } => serde_json::json!({
                    "name": name,
                    "state": "damaged",
                    "damage": why,
                }),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for e in &listing {
        match e {
            Listed::Stream(s) => writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{:?}",
                s.meta.name,
                s.packets,
                s.bytes,
                ts_or_dash(s.first_ts),
                ts_or_dash(s.last_ts),
                s.meta.state
            )?,
            Listed::Damaged { name, why } => {
                writeln!(out, "{name}\t-\t-\t-\t-\tDamaged: {why}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn views(a: ViewsArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let r = store.open_stream(&a.name)?;
    let mut out = std::io::stdout().lock();
    for v in std::iter::once(View::Single).chain(View::splits()) {
        let n = r.splits(v)?.len();
        writeln!(out, "{v}\t{n}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn splits(a: SplitsArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let r = store.open_stream(&a.name)?;
    let view = View::parse(&a.view)?;
    let splits = r.splits(view)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        let v: Vec<_> = splits
            .iter()
            .map(|s| {
                serde_json::json!({
                    "index": s.index, "name": s.name, "start_ns": s.start_ts, "stop_ns": s.stop_ts,
                    "packets": s.range.packets(), "bytes": s.range.pcap_bytes(),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for s in &splits {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                s.index,
                s.name,
                s.range.packets(),
                s.range.pcap_bytes(),
                s.start_ts,
                s.stop_ts
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn recover(d: DataDir) -> Result<ExitCode> {
    let store = open_store(&d)?;
    let done = store.recover_with(Some(&wirecap_query::FilterSummarizer))?;
    if done.is_empty() {
        eprintln!(
            "nothing to recover: every stream was sealed by its writer and its index checks out"
        );
    }
    let mut failed = false;
    for (name, r) in done {
        if let Some(why) = &r.failed {
            failed = true;
            println!("{name}\tcannot be recovered: {why}");
        } else if r.orphan_removed {
            println!("{name}\tremoved: left without meta.json by an interrupted creation");
        } else if let Some(why) = &r.index_rebuilt {
            println!(
                "{name}\tindex rebuilt from the segments ({why}): {} chunks kept, {} damaged chunks left out",
                r.chunks_kept, r.chunks_dropped
            );
        } else {
            println!(
                "{name}\trecovered: {} chunks kept, {} re-indexed, {} torn bytes cut",
                r.chunks_kept, r.chunks_reindexed, r.bytes_cut
            );
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn delete(a: DeleteArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    store.delete_stream(&a.name)?;
    eprintln!("deleted {}", a.name);
    Ok(ExitCode::SUCCESS)
}
