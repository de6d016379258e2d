//! Flow listing across captures: the flows of every stream with packets in a time
//! range, through a filter, sorted and paged (`wirecap flows`, `GET /api/v1/flows`,
//! the UI's Flows page).
//!
//! * **Which flows.** The streams are chosen by time as for a search
//!   ([`crate::search`]); each stream's flows come from its flow index
//!   ([`crate::stream_flows`]: a flow is listed when its first..last span overlaps the
//!   range and it may hold a packet the filter matches — exact for addresses, ports,
//!   protocols, VLAN ids and MPLS labels). Its figures are the whole flow's in its
//!   stream. Streams of different link types may be listed together: the filter is
//!   compiled once per link type.
//! * **Order and paging.** Rows are ordered by the sort key, then by stream and flow id
//!   (a total order); a page's `next` cursor names the last row's key, so the next page
//!   starts right after it even when a live capture added flows meanwhile.
//! * A stream that cannot be read is named in [`FlowPage::skipped`], never dropped
//!   silently.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use wirecap_pcap::LinkType;
use wirecap_store::Store;

use crate::search::{Part, overlapping};
use crate::{Error, Filter, FlowRecord, Result, stream_flows};

/// What the rows are sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowSort {
    Start,
    Duration,
    Packets,
    Bytes,
    Proto,
    Src,
    Dst,
    Stream,
}

impl FlowSort {
    pub const ALL: [&'static str; 8] = [
        "start", "duration", "packets", "bytes", "proto", "src", "dst", "stream",
    ];

    /// `bytes`, or `-bytes` for descending order.
    pub fn parse(s: &str) -> Result<(Self, bool)> {
        let (desc, key) = match s.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, s),
        };
        let k = match key {
            "start" => Self::Start,
            "duration" => Self::Duration,
            "packets" => Self::Packets,
            "bytes" => Self::Bytes,
            "proto" | "protocol" => Self::Proto,
            "src" => Self::Src,
            "dst" => Self::Dst,
            "stream" => Self::Stream,
            _ => {
                return Err(Error::Invalid(format!(
                    "sort {key:?}: expected one of {} (a leading - sorts descending)",
                    Self::ALL.join(", ")
                )));
            }
        };
        Ok((k, desc))
    }
}

/// One listing request.
#[derive(Clone, Debug)]
pub struct FlowAsk {
    pub sort: FlowSort,
    pub desc: bool,
    /// Rows of the page.
    pub limit: usize,
    /// The `next` of the page before.
    pub cursor: Option<String>,
}

impl Default for FlowAsk {
    fn default() -> Self {
        Self {
            sort: FlowSort::Start,
            desc: false,
            limit: 100,
            cursor: None,
        }
    }
}

/// A row's place in the order: the sort value (a number, or a text and a port), then
/// the stream and flow id, which name one flow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Key<S> {
    n: u64,
    s: S,
    p: u32,
    stream: S,
    id: u64,
}

fn key(r: &FlowRecord, sort: FlowSort) -> Key<&str> {
    let port = |p: Option<u16>| p.map_or(0, |p| u32::from(p) + 1);
    let (n, s, p) = match sort {
        FlowSort::Start => (r.first_ns, "", 0),
        FlowSort::Duration => (r.last_ns - r.first_ns, "", 0),
        FlowSort::Packets => (r.packets, "", 0),
        FlowSort::Bytes => (r.bytes, "", 0),
        FlowSort::Proto => (0, r.proto.as_str(), 0),
        FlowSort::Src => (0, r.src_addr.as_str(), port(r.src_port)),
        FlowSort::Dst => (0, r.dst_addr.as_str(), port(r.dst_port)),
        FlowSort::Stream => (0, "", 0),
    };
    Key {
        n,
        s,
        p,
        stream: r.stream.as_str(),
        id: r.id,
    }
}

impl Key<String> {
    fn as_ref(&self) -> Key<&str> {
        Key {
            n: self.n,
            s: &self.s,
            p: self.p,
            stream: &self.stream,
            id: self.id,
        }
    }
}

/// A cursor: the hex of the last row's key, opaque to clients.
fn cursor_of(k: &Key<&str>) -> String {
    let s = serde_json::to_string(k).unwrap_or_default();
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn parse_cursor(c: &str) -> Result<Key<String>> {
    let bad = || Error::Invalid("cursor: not one this server gave".into());
    if !c.len().is_multiple_of(2) || c.len() > 8192 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<_>>()?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// One page of flows and the totals of every flow that matched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowPage {
    pub flows: Vec<FlowRecord>,
    /// Flows that matched, on every page.
    pub total: u64,
    /// Packets and bytes of those flows.
    pub packets: u64,
    pub bytes: u64,
    /// Streams read.
    pub streams: u64,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    /// Streams that could not be read: `(name, why)`.
    pub skipped: Vec<(String, String)>,
}

/// Lists the flows of every stream of `store` with packets in `[start, stop)`, through
/// the filter `compile` gives for each link type (none: every flow).
pub fn flows(
    store: &Store,
    start: Option<u64>,
    stop: Option<u64>,
    mut compile: impl FnMut(LinkType) -> Result<Option<Filter>>,
    ask: &FlowAsk,
) -> Result<FlowPage> {
    let after = ask.cursor.as_deref().map(parse_cursor).transpose()?;
    let (parts, skipped) = overlapping(store, start, stop)?;
    // Compiled even when no stream is in the range, so that a mistake is always reported.
    let first_link = parts.first().map_or(LinkType::ETHERNET, Part::link_type);
    let mut filters: Vec<(LinkType, Option<Filter>)> = vec![(first_link, compile(first_link)?)];
    let mut all = Vec::new();
    let mut page = FlowPage {
        streams: parts.len() as u64,
        skipped,
        ..FlowPage::default()
    };
    let (lo, hi) = (start.unwrap_or(0), stop.unwrap_or(u64::MAX));
    for p in &parts {
        let link = p.link_type();
        let i = match filters.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                filters.push((link, compile(link)?));
                filters.len() - 1
            }
        };
        match stream_flows(p.reader(), lo, hi, filters[i].1.as_ref()) {
            Ok(rows) => all.extend(rows),
            Err(e @ Error::Store(_)) => page.skipped.push((p.name().to_owned(), e.to_string())),
            Err(e) => return Err(e),
        }
    }
    page.total = all.len() as u64;
    page.packets = all.iter().map(|f| f.packets).sum();
    page.bytes = all.iter().map(|f| f.bytes).sum();
    let sort = ask.sort;
    let order = |a: &FlowRecord, b: &FlowRecord| {
        let o = key(a, sort).cmp(&key(b, sort));
        if ask.desc { o.reverse() } else { o }
    };
    if let Some(c) = &after {
        let c = c.as_ref();
        let want = if ask.desc {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        all.retain(|f| key(f, sort).cmp(&c) == want);
    }
    let limit = ask.limit.max(1);
    // Only the page is sorted in full: the rest is partitioned away.
    if all.len() > limit {
        all.select_nth_unstable_by(limit - 1, order);
        all.truncate(limit);
        all.sort_by(order);
        page.next = all.last().map(|f| cursor_of(&key(f, sort)));
    } else {
        all.sort_by(order);
    }
    page.flows = all;
    Ok(page)
}

/// The columns of [`FlowPage::write_csv`].
pub const CSV_HEADER: &str = "stream,id,proto,src,sport,dst,dport,vlan,first_ns,last_ns,duration_ns,packets,bytes,src_packets,dst_packets,src_bytes,dst_bytes,tcp_flags";

impl FlowPage {
    /// The page's rows as CSV with a header line. No field needs quoting: stream names,
    /// addresses, protocol names and flag letters hold no comma, quote or line break.
    pub fn write_csv(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(w, "{CSV_HEADER}")?;
        let opt = |v: Option<u16>| v.map(|v| v.to_string()).unwrap_or_default();
        for f in &self.flows {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                f.stream,
                f.id,
                f.proto,
                f.src_addr,
                opt(f.src_port),
                f.dst_addr,
                opt(f.dst_port),
                opt(f.vlan),
                f.first_ns,
                f.last_ns,
                f.last_ns - f.first_ns,
                f.packets,
                f.bytes,
                f.src_packets,
                f.dst_packets,
                f.src_bytes,
                f.dst_bytes,
                crate::tcp_flag_letters(f.tcp_flags)
            )?;
        }
        Ok(())
    }
}
