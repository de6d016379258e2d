//! `wirecap reindex`: builds the flow index of a stream written without one (before the
//! flow index existed, or with `WIRECAP_FLOW_INDEX=off`), or whose index was lost.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::DataDir;
use crate::listing::open_store;

#[derive(clap::Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    data: DataDir,
    /// Stored stream name
    name: String,
}

pub fn run(a: ReindexArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let t = std::time::Instant::now();
    let r = store
        .reindex_flows(&a.name, &wirecap_query::FlowClassifier)
        .with_context(|| format!("reindexing {}", a.name))?;
    let ix = store
        .open_stream(&a.name)
        .ok()
        .and_then(|s| wirecap_store::FlowIndex::load(&s).ok().flatten());
    eprintln!(
        "{}: {} packets in {} chunks, {} flow records in {} blocks, index {} bytes{}, {:.2}s",
        a.name,
        r.packets,
        r.chunks,
        ix.as_ref().map_or(0, |i| i.fragments.len()),
        r.blocks,
        r.index_bytes,
        if r.evicted_early > 0 {
            format!(", {} flows closed early (table full)", r.evicted_early)
        } else {
            String::new()
        },
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
