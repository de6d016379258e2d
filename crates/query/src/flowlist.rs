//! Flow listing across captures: the flows of every stream with packets in a time
//! range, through a filter, sorted and paged (`wirecap flows`, `GET /api/v1/flows`,
//! the UI's Flows page).
//!
//! * **Which flows.** The streams are chosen by time as for a search
//!   ([`crate::search`]); a flow is listed when at least one of its packets in the range
//!   matches the filter, and its figures (times, packets, bytes, TCP flags) are those of
//!   its matching packets in the range. Both directions of a 5-tuple are one flow; `src`
//!   is the side that sent the first packet. Streams of different link types may be
//!   listed together: the filter is compiled once per link type.
//! * **Source.** [`stream_flows`] is the one place flows of a stream come from; today it
//!   groups the matching packets of the range ([`crate::analyze`]'s flow table, bounded by
//!   [`FlowAsk::max_flows`] per stream, what does not fit counted in
//!   [`FlowPage::flows_dropped`]).
//! * **Order and paging.** Rows are ordered by the sort key, then by stream, start and
//!   endpoints, a total order; a page's `next` cursor names the last row, so the next
//!   page starts right after it even when a live capture added flows meanwhile.

use std::cmp::Ordering;
use std::net::IpAddr;

use serde::Serialize;
use wirecap_pcap::LinkType;
use wirecap_store::Store;

use crate::search::{Part, overlapping};
use crate::{AnalyzeOptions, Error, Filter, FlowRow, Result, analyze};

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
    /// Flows tracked at most per stream.
    pub max_flows: usize,
}

impl Default for FlowAsk {
    fn default() -> Self {
        Self {
            sort: FlowSort::Start,
            desc: false,
            limit: 100,
            cursor: None,
            max_flows: 1_000_000,
        }
    }
}

/// A flow and the stream that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowItem {
    pub stream: String,
    #[serde(flatten)]
    pub flow: FlowRow,
}

impl FlowItem {
    /// An appliance-language filter that selects exactly this flow's packets (both
    /// directions), for its pcap download.
    pub fn filter_text(&self) -> String {
        let f = &self.flow;
        let ports = match f.proto.as_str() {
            "tcp" | "udp" => Some(f.proto.as_str()),
            _ => None,
        };
        let side = |n: &str, a: IpAddr, p: u16, b: IpAddr, q: u16| {
            let mut s = format!("{n}a: ip.addr.src == {a}; {n}b: ip.addr.dst == {b}; ");
            let mut e = format!("{n}a & {n}b");
            if let Some(t) = ports {
                s.push_str(&format!(
                    "{n}c: {t}.port.src == {p}; {n}d: {t}.port.dst == {q}; "
                ));
                e.push_str(&format!(" & {n}c & {n}d"));
            }
            (s, e)
        };
        let (s1, e1) = side("x", f.src, f.sport, f.dst, f.dport);
        let (s2, e2) = side("y", f.dst, f.dport, f.src, f.sport);
        let proto = match ports {
            Some(_) => String::new(),
            None => format!("p: ip.proto == {}; ", proto_number(&f.proto)),
        };
        let and_proto = if ports.is_none() { " & p" } else { "" };
        format!("{s1}{s2}{proto}(({e1}) | ({e2})){and_proto}")
    }

    /// The total order of rows under `sort` (before direction).
    fn cmp_by(&self, other: &Self, sort: FlowSort) -> Ordering {
        let (a, b) = (&self.flow, &other.flow);
        let primary = match sort {
            FlowSort::Start => a.first_ns.cmp(&b.first_ns),
            FlowSort::Duration => (a.last_ns - a.first_ns).cmp(&(b.last_ns - b.first_ns)),
            FlowSort::Packets => a.packets.cmp(&b.packets),
            FlowSort::Bytes => a.bytes.cmp(&b.bytes),
            FlowSort::Proto => a.proto.cmp(&b.proto),
            FlowSort::Src => (a.src, a.sport).cmp(&(b.src, b.sport)),
            FlowSort::Dst => (a.dst, a.dport).cmp(&(b.dst, b.dport)),
            FlowSort::Stream => self.stream.cmp(&other.stream),
        };
        primary.then_with(|| self.tie(other))
    }

    fn tie(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.flow, &other.flow);
        self.stream
            .cmp(&other.stream)
            .then(a.first_ns.cmp(&b.first_ns))
            .then_with(|| a.proto.cmp(&b.proto))
            .then((a.src, a.sport, a.dst, a.dport).cmp(&(b.src, b.sport, b.dst, b.dport)))
    }
}

/// The IP protocol number of a name [`crate::analyze`] gives (`tcp`, `icmp`, `ip-proto-47`).
fn proto_number(name: &str) -> u8 {
    match name {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "icmpv6" => 58,
        "sctp" => 132,
        other => other
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    }
}

/// One page of flows and the totals of every flow that matched.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlowPage {
    pub flows: Vec<FlowItem>,
    /// Flows that matched, on every page.
    pub total: u64,
    /// Packets and bytes of those flows.
    pub packets: u64,
    pub bytes: u64,
    /// Streams read.
    pub streams: u64,
    /// Packets of flows beyond [`FlowAsk::max_flows`] in a stream: matched, not listed.
    pub flows_dropped_packets: u64,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    /// Streams that could not be read: `(name, why)`.
    pub skipped: Vec<(String, String)>,
}

/// The flows of `part`'s range whose packets match `filter` (see the module's text).
pub fn stream_flows(
    part: &Part,
    filter: Option<&Filter>,
    max_flows: usize,
) -> Result<(Vec<FlowRow>, u64)> {
    let opts = AnalyzeOptions {
        top: 0,
        max_flows,
        max_talkers: 1,
        flows_out: max_flows,
        max_series: 1,
    };
    let a = analyze(part.reader(), part.range(), filter, &opts)?;
    Ok((a.flows, a.flows_dropped_packets))
}

/// A cursor: the hex of the last row's key, opaque to clients.
fn cursor_of(f: &FlowItem) -> String {
    let s = serde_json::to_string(f).unwrap_or_default();
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn parse_cursor(c: &str) -> Result<FlowItem> {
    let bad = || Error::Invalid("cursor: not one this server gave".into());
    if !c.len().is_multiple_of(2) || c.len() > 8192 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<_>>()?;
    #[derive(serde::Deserialize)]
    struct Key {
        stream: String,
        proto: String,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        first_ns: u64,
        last_ns: u64,
        packets: u64,
        bytes: u64,
        tcp_flags: String,
    }
    let k: Key = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(FlowItem {
        stream: k.stream,
        flow: FlowRow {
            proto: k.proto,
            src: k.src,
            sport: k.sport,
            dst: k.dst,
            dport: k.dport,
            first_ns: k.first_ns,
            last_ns: k.last_ns,
            packets: k.packets,
            bytes: k.bytes,
            tcp_flags: k.tcp_flags,
        },
    })
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
    let mut filters: Vec<(LinkType, Option<Filter>)> = Vec::new();
    // Compiled even when no stream is in the range, so that a mistake is always reported.
    let first_link = parts.first().map_or(LinkType::ETHERNET, Part::link_type);
    filters.push((first_link, compile(first_link)?));
    let mut all = Vec::new();
    let mut page = FlowPage {
        streams: parts.len() as u64,
        skipped,
        ..FlowPage::default()
    };
    for p in &parts {
        let link = p.link_type();
        let i = match filters.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                filters.push((link, compile(link)?));
                filters.len() - 1
            }
        };
        let (rows, dropped) = stream_flows(p, filters[i].1.as_ref(), ask.max_flows)?;
        page.flows_dropped_packets += dropped;
        all.extend(rows.into_iter().map(|flow| FlowItem {
            stream: p.name().to_owned(),
            flow,
        }));
    }
    page.total = all.len() as u64;
    page.packets = all.iter().map(|f| f.flow.packets).sum();
    page.bytes = all.iter().map(|f| f.flow.bytes).sum();
    let order = |a: &FlowItem, b: &FlowItem| {
        let o = a.cmp_by(b, ask.sort);
        if ask.desc { o.reverse() } else { o }
    };
    if let Some(c) = &after {
        all.retain(|f| order(f, c) == Ordering::Greater);
    }
    let limit = ask.limit.max(1);
    // Only the page is sorted in full: the rest is partitioned away.
    if all.len() > limit {
        all.select_nth_unstable_by(limit - 1, order);
        all.truncate(limit);
        all.sort_by(order);
        page.next = all.last().map(cursor_of);
    } else {
        all.sort_by(order);
    }
    page.flows = all;
    Ok(page)
}

/// The columns of [`FlowPage::write_csv`].
pub const CSV_HEADER: &str =
    "stream,proto,src,sport,dst,dport,first_ns,last_ns,duration_ns,packets,bytes,tcp_flags";

impl FlowPage {
    /// The page's rows as CSV with a header line. No field needs quoting: stream names,
    /// addresses, protocol names and flag letters hold no comma, quote or line break.
    pub fn write_csv(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(w, "{CSV_HEADER}")?;
        for i in &self.flows {
            let f = &i.flow;
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                i.stream,
                f.proto,
                f.src,
                f.sport,
                f.dst,
                f.dport,
                f.first_ns,
                f.last_ns,
                f.last_ns - f.first_ns,
                f.packets,
                f.bytes,
                f.tcp_flags
            )?;
        }
        Ok(())
    }
}
