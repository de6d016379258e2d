//! `wirecap flows`: the flows of every stream in a time range, through a filter.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use wirecap_query::flowlist::{self, FlowAsk, FlowSort};
use wirecap_query::{compile, today_utc};

use crate::DataDir;
use crate::listing::open_store;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Out {
    Json,
    Csv,
}

#[derive(clap::Args)]
#[command(
    after_help = "A flow is both directions of one conversation in one stream (IP: \
protocol, addresses, ports or ICMP type/id; other: EtherType and MACs; per VLAN/MPLS). It is \
listed when its span overlaps [--start, --stop) and it may hold a packet the filter matches \
(exact for addresses, ports, protocols, VLAN ids, MPLS labels), with the whole flow's figures. \
The JSON is GET /api/v1/flows's.\n\nExamples:\n  \
wirecap flows --start 2025-01-01T09:00:00Z --stop 2025-01-01T09:05:00Z --bpf 'host 10.1.2.3'\n  \
wirecap flows --start 2025-01-01T09:00:00Z --stop 2025-01-01T10:00:00Z --sort=-bytes --limit 20 --format csv"
)]
pub struct FlowsArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    window: crate::search_cmd::Window,
    /// json (the page and its totals) or csv (one flow a line)
    #[arg(long, value_enum, default_value = "json")]
    format: Out,
    /// start, duration, packets, bytes, proto, src, dst or stream; a leading - sorts descending
    #[arg(long, default_value = "start", allow_hyphen_values = true)]
    sort: String,
    /// Flows listed at most (all of them without it)
    #[arg(long)]
    limit: Option<usize>,
    /// Continue after this cursor (the `next` of a JSON page)
    #[arg(long)]
    cursor: Option<String>,
}

pub fn run(a: FlowsArgs) -> Result<ExitCode> {
    let store = open_store(&a.data)?;
    let (start, stop) = a.window.times()?;
    let (sort, desc) = FlowSort::parse(&a.sort)?;
    let ask = FlowAsk {
        sort,
        desc,
        limit: a.limit.unwrap_or(usize::MAX),
        cursor: a.cursor.clone(),
    };
    let today = today_utc(wirecap_store::now_ns());
    let mut bad = None;
    let page = flowlist::flows(
        &store,
        Some(start),
        Some(stop),
        |link| {
            compile(
                a.window.filter.as_deref(),
                a.window.bpf.as_deref(),
                link,
                today,
            )
            .map_err(|e| {
                let m = e.to_string();
                bad = Some(e);
                wirecap_query::Error::Invalid(m)
            })
        },
        &ask,
    );
    let page = match (page, bad) {
        (Err(_), Some(e)) => return Err(e.into()),
        (r, _) => r?,
    };
    for (name, why) in &page.skipped {
        eprintln!("wirecap: warning: stream {name} left out of the listing: {why}");
    }
    let mut out = std::io::stdout().lock();
    match a.format {
        Out::Json => {
            // The same JSON as `GET /api/v1/flows` answers.
            serde_json::to_writer_pretty(&mut out, &wirecap_appliance::api::FlowPage::of(&page))?;
            writeln!(out)?;
        }
        Out::Csv => page.write_csv(&mut out)?,
    }
    out.flush()?;
    eprintln!(
        "{} flows ({} packets, {} bytes) in {} stream{}{}",
        page.total,
        page.packets,
        page.bytes,
        page.streams,
        if page.streams == 1 { "" } else { "s" },
        if page.next.is_some() {
            format!("; listed {}, more with --cursor", page.flows.len())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
