//! The questions users ask of a stored stream: "give me these packets" (a filtered
//! export) and "what is in there" (an analysis).
//!
//! ```text
//!   --filter / --bpf ──compile──▶ Filter ─┬─ may_match(chunk summary) ─▶ skip the chunk unread
//!                                         └─ matches(packet)           ─▶ keep / count it
//!   StreamReader::scan(range, may_match, f) ──▶ export (pcap / pcapng)  |  analyze (JSON / CSV)
//! ```
//!
//! * [`FilterSummarizer`] is the store's [`wirecap_store::ChunkSummarizer`]: writers
//!   (import, capture) give it to [`wirecap_store::WriterOptions`] so that every chunk gets
//!   a [`ChunkSummary`] that readers use to skip chunks a filter cannot match, and every
//!   packet a flow ([`flows`]) for the store's flow index — one dissection per packet
//!   for both.
//! * [`flows()`] lists the flows of the store for a time range and a filter;
//!   [`flow_export`] gives one flow's packets; [`Export`] reads, for a filter, only the
//!   packets of the flows that may match where a stream has a flow index (the answer is
//!   the scan's, packet for packet); [`plan`] turns the filter into lookups in the
//!   index's tables, so that only the flow records it may need are read.
//! * [`compile`] turns the two filter languages (either, both — ANDed — or none) into one
//!   [`Filter`]; a mistake comes back as a [`CompileError`] that prints the text with a
//!   caret under the column.
//! * [`Export`] is the one filtered, formatted export of a range, for the CLI (`write_to`)
//!   and HTTP downloads (`pieces` pulled on demand, `exact_len` and `byte_range` for
//!   `Content-Length` and `Range`); [`export`](export()) is its one-call form;
//!   [`filter_capture`] does the same for a capture file (`wirecap filter`).
//! * [`search`] runs one time range and filter over every stream that overlaps it and
//!   merges the streams' exports, in time order, into one capture (`wirecap search`,
//!   `GET /api/v1/search`); [`flowlist`] lists the flows of the same streams, sorted and
//!   paged (`wirecap flows`, `GET /api/v1/flows`).
//! * [`analyze`](analyze()) condenses a range into totals, a protocol breakdown, top
//!   talkers and ports, a per-second series and a flow table of bounded size.
//!
//! No networking, no threads, no clocks ("today" is passed in).

mod analyze;
mod compile;
mod export;
pub mod flowlist;
pub mod flows;
pub mod plan;
pub mod search;

pub use analyze::{
    Analysis, AnalyzeOptions, CSV_SECTIONS, FlowRow, PROGRESS_EVERY, PortRow, Progress, ProtoRow,
    ScanFigures, SecondRow, TalkerRow, analyze, analyze_with, flag_letters as tcp_flag_letters,
};
pub use compile::{CompileError, Filter, compile, compile_named, today_utc};
pub use export::{
    Export, ExportReader, ExportStats, FileFilterStats, Format, PIECE, Piece, Pieces, export,
    filter_capture,
};
pub use flows::{FlowRecord, flow_export, flows, stream_flows};
pub use wirecap_filter::Date;
pub use wirecap_filter::summary::{ChunkSummary, SUMMARY_LEN};

use wirecap_pcap::LinkType;

/// Errors of exports and analyses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] wirecap_store::Error),
    /// A capture file could not be read (`offset` is in the error).
    #[error(transparent)]
    Pcap(#[from] wirecap_pcap::Error),
    #[error("writing the output")]
    Output(#[source] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    /// The caller cancelled the work (see [`Progress`]).
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The per-chunk summary writers store beside each chunk: a [`ChunkSummary`] of every
/// record of the chunk body; and, unless the environment says `WIRECAP_FLOW_INDEX=off`
/// (for measuring what indexing costs), the flow of every packet for the flow index.
#[derive(Clone, Copy, Debug, Default)]
pub struct FilterSummarizer;

/// Whether writers keep a flow index (`WIRECAP_FLOW_INDEX=off` turns it off).
pub fn flow_index_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("WIRECAP_FLOW_INDEX").map_or(true, |v| v != "off"))
}

/// [`FilterSummarizer`] that always classifies flows (`wirecap reindex`, and streams
/// classified on the fly).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowClassifier;

fn summarize_into(
    link: LinkType,
    body: &[u8],
    out: &mut [u8],
    flows: Option<(&mut wirecap_store::flows::FlowTable, (u64, u64))>,
) {
    let mut s = ChunkSummary::new();
    let dl = wirecap_filter::dissect::Link::from_linktype(link.0);
    let records = wirecap_pcap::records(body);
    match flows {
        None => {
            for p in records {
                let d = wirecap_filter::dissect::dissect(dl, p.data);
                s.add_dissected_packet(link, p.data, p.orig_len, &d);
            }
        }
        // Each packet goes from the dissection to the flow table at once.
        Some((table, (packet, pos))) => {
            let mut run = table.run(packet, pos);
            for p in records {
                let d = wirecap_filter::dissect::dissect(dl, p.data);
                s.add_dissected_packet(link, p.data, p.orig_len, &d);
                let rec_len = (wirecap_pcap::PCAP_RECORD_HEADER_LEN + p.data.len()) as u64;
                run.push(
                    &flows::classify(link, p.data, p.orig_len, &d),
                    rec_len,
                    p.ts_ns(),
                );
            }
        }
    }
    let bytes = s.to_bytes();
    let n = out.len().min(bytes.len());
    out[..n].copy_from_slice(&bytes[..n]);
}

/// The two summarizers differ only in whether they classify flows.
macro_rules! summarizer {
    ($t:ty, $flows:expr) => {
        impl wirecap_store::ChunkSummarizer for $t {
            fn summary_len(&self) -> usize {
                SUMMARY_LEN
            }

            fn summarize(&self, link: LinkType, body: &[u8], out: &mut [u8]) {
                summarize_into(link, body, out, None);
            }

            fn flows(&self) -> bool {
                $flows
            }

            fn summarize_flows(
                &self,
                link: LinkType,
                body: &[u8],
                out: &mut [u8],
                flows: &mut wirecap_store::flows::FlowTable,
                first: (u64, u64),
            ) {
                summarize_into(link, body, out, Some((flows, first)));
            }
        }
    };
}

summarizer!(FilterSummarizer, flow_index_enabled());
summarizer!(FlowClassifier, true);

/// A packet's time in ns since the epoch.
#[inline]
pub(crate) fn packet_ts(p: &wirecap_pcap::Packet<'_>) -> u64 {
    p.ts_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(p.ts_nsec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirecap_store::ChunkSummarizer;

    #[test]
    fn summarizer_summarizes_every_record() {
        let mut body = Vec::new();
        for port in [80u16, 443] {
            let frame = wirecap_filter::dissect::build::PacketBuilder::ethernet([2; 6], [4; 6])
                .ipv4([10, 0, 0, 1], [10, 1, 2, 3])
                .tcp(1234, port, 0x10)
                .build();
            body.extend_from_slice(&wirecap_pcap::pcap_record_header(
                1,
                2,
                frame.len() as u32,
                frame.len() as u32,
            ));
            body.extend_from_slice(&frame);
        }
        let mut out = vec![0u8; FilterSummarizer.summary_len()];
        FilterSummarizer.summarize(LinkType::ETHERNET, &body, &mut out);
        let s = ChunkSummary::from_bytes(&out).unwrap();
        assert_eq!(s.count(), 2);
        assert!(s.may_have_port(6, 443));
        assert!(s.may_have_net("10.1.2.3".parse().unwrap(), 32));
        assert!(!s.may_have_port(17, 443));
    }
}
