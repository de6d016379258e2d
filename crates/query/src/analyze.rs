//! What is in a stream, a time range and/or a filter: totals, protocols, talkers, ports,
//! a per-second series and flows, in memory bounded whatever the size of the capture.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};
use std::io::{self, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;
use wirecap_filter::dissect::{self, Dissected, Link, Network};
use wirecap_pcap::Packet;
use wirecap_store::{PacketRange, StreamReader};

use crate::{Error, Filter, Result, packet_ts};

/// Limits of an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Rows of the top-talkers and top-ports tables.
    pub top: usize,
    /// Most flows tracked; packets of further flows are counted as dropped.
    pub max_flows: usize,
    /// Most address pairs tracked.
    pub max_talkers: usize,
    /// Flows listed in the result (the largest by bytes).
    pub flows_out: usize,
    /// Most buckets of the time series; beyond, the step doubles (1 s, 2 s, 4 s, ...).
    pub max_series: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            top: 20,
            max_flows: 100_000,
            max_talkers: 100_000,
            flows_out: 1000,
            max_series: 100_000,
        }
    }
}

/// Packets and bytes of one protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProtoRow {
    /// `link` (vlan, mpls), `network` (ipv4, ipv6, arp, other) or `transport` (tcp,
    /// udp, icmp, icmpv6, igmp, sctp, ip-proto-N).
    pub layer: &'static str,
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// An address pair (`a` < `b`) and its traffic in each direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TalkerRow {
    pub a: IpAddr,
    pub b: IpAddr,
    pub packets: u64,
    pub bytes: u64,
    pub packets_a_to_b: u64,
    pub bytes_a_to_b: u64,
    pub packets_b_to_a: u64,
    pub bytes_b_to_a: u64,
}

/// A port of a transport protocol: packets with it as source or destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortRow {
    pub proto: &'static str,
    pub port: u16,
    pub packets: u64,
    pub bytes: u64,
}

/// One bucket of the time series (`step` seconds from `ts_sec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecondRow {
    pub ts_sec: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// A flow: both directions of a 5-tuple; `src` is the side that sent its first packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowRow {
    pub proto: String,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub first_ns: u64,
    pub last_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Every TCP flag seen in either direction, as letters `FSRPAUEC` (tcpdump's order).
    pub tcp_flags: String,
}

/// What an analysis looked at (chunks skipped by the filter's summary test).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScanFigures {
    pub packets_examined: u64,
    pub chunks_read: u64,
    pub chunks_skipped: u64,
    pub bytes_read: u64,
    pub bytes_skipped: u64,
}

/// The result of [`analyze`]. Bytes are wire bytes (original lengths).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub stream: String,
    pub link_type: u16,
    pub start_ns: Option<u64>,
    pub stop_ns: Option<u64>,
    pub filter: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub captured_bytes: u64,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    pub protocols: Vec<ProtoRow>,
    pub talkers: Vec<TalkerRow>,
    /// Address pairs tracked, and packets of pairs beyond the table's size.
    pub talkers_tracked: u64,
    pub talkers_dropped_packets: u64,
    pub ports: Vec<PortRow>,
    pub series_step_secs: u64,
    pub series: Vec<SecondRow>,
    pub flows: Vec<FlowRow>,
    pub flows_tracked: u64,
    /// Flows not tracked because the table was full (an estimate: distinct flows are
    /// counted with a fixed-size bitmap), and their packets (exact).
    pub flows_dropped: u64,
    pub flows_dropped_packets: u64,
    pub scan: ScanFigures,
}

#[derive(Default, Clone, Copy)]
struct Count {
    packets: u64,
    bytes: u64,
}

impl Count {
    #[inline]
    fn add(&mut self, bytes: u64) {
        self.packets += 1;
        self.bytes += bytes;
    }
}

#[derive(Clone, Copy)]
struct FlowState {
    /// The lower endpoint of the key sent the first packet.
    lo_first: bool,
    first_ns: u64,
    last_ns: u64,
    count: Count,
    flags: u8,
}

type Endpoint = (IpAddr, u16);

/// Distinct-count estimate of keys that did not fit (linear counting over 2^20 bits).
struct Overflow {
    bits: Vec<u64>,
    hasher: std::hash::RandomState,
}

impl Overflow {
    const BITS: usize = 1 << 20;

    fn new() -> Self {
        Self {
            bits: Vec::new(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn add(&mut self, key: &impl Hash) {
        if self.bits.is_empty() {
            self.bits = vec![0; Self::BITS / 64];
        }
        let h = self.hasher.hash_one(key) as usize % Self::BITS;
        self.bits[h / 64] |= 1 << (h % 64);
    }

    fn estimate(&self) -> u64 {
        if self.bits.is_empty() {
            return 0;
        }
        let m = Self::BITS as f64;
        let ones: u64 = self.bits.iter().map(|w| u64::from(w.count_ones())).sum();
        let zeros = (m - ones as f64).max(1.0);
        (-m * (zeros / m).ln()).round() as u64
    }
}

struct Acc {
    opts: AnalyzeOptions,
    link: Link,
    packets: u64,
    bytes: u64,
    captured: u64,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    link_layer: HashMap<&'static str, Count>,
    network: HashMap<&'static str, Count>,
    transport: HashMap<u8, Count>,
    talkers: HashMap<(IpAddr, IpAddr), [Count; 2]>,
    talkers_dropped_packets: u64,
    ports: HashMap<(u8, u16), Count>,
    series_base: u64,
    series_step: u64,
    series: Vec<Count>,
    flows: HashMap<(u8, Endpoint, Endpoint), FlowState>,
    flows_dropped: Overflow,
    flows_dropped_packets: u64,
}

impl Acc {
    fn new(opts: AnalyzeOptions, link: Link) -> Self {
        Self {
            opts,
            link,
            packets: 0,
            bytes: 0,
            captured: 0,
            first_ns: None,
            last_ns: None,
            link_layer: HashMap::new(),
            network: HashMap::new(),
            transport: HashMap::new(),
            talkers: HashMap::new(),
            talkers_dropped_packets: 0,
            ports: HashMap::new(),
            series_base: 0,
            series_step: 1,
            series: Vec::new(),
            flows: HashMap::new(),
            flows_dropped: Overflow::new(),
            flows_dropped_packets: 0,
        }
    }

    fn add(&mut self, p: &Packet<'_>) {
        let ts = packet_ts(p);
        let len = u64::from(p.orig_len);
        self.packets += 1;
        self.bytes += len;
        self.captured += p.data.len() as u64;
        self.first_ns = Some(self.first_ns.map_or(ts, |f| f.min(ts)));
        self.last_ns = Some(self.last_ns.map_or(ts, |l| l.max(ts)));
        self.add_series(ts / 1_000_000_000, len);

        let d = dissect::dissect(self.link, p.data);
        if !d.vlan_ids.is_empty() {
            self.link_layer.entry("vlan").or_default().add(len);
        }
        if !d.mpls_labels.is_empty() {
            self.link_layer.entry("mpls").or_default().add(len);
        }
        let net = match d.network {
            Network::Ipv4(_) => "ipv4",
            Network::Ipv6(_) => "ipv6",
            Network::Arp(_) => "arp",
            Network::None => "other",
        };
        self.network.entry(net).or_default().add(len);
        if let Some(proto) = d.ip_proto() {
            self.transport.entry(proto).or_default().add(len);
        }
        self.add_ip(&d, ts, len);
    }

    fn add_series(&mut self, sec: u64, len: u64) {
        if self.series.is_empty() {
            self.series_base = sec;
        }
        let mut idx = sec.saturating_sub(self.series_base) / self.series_step;
        while idx >= self.opts.max_series.max(2) as u64 {
            // Twice as coarse: merge neighbouring buckets.
            let merged: Vec<Count> = self
                .series
                .chunks(2)
                .map(|c| Count {
                    packets: c.iter().map(|x| x.packets).sum(),
                    bytes: c.iter().map(|x| x.bytes).sum(),
                })
                .collect();
            self.series = merged;
            self.series_step *= 2;
            idx = sec.saturating_sub(self.series_base) / self.series_step;
        }
        let idx = idx as usize;
        if self.series.len() <= idx {
            self.series.resize(idx + 1, Count::default());
        }
        self.series[idx].add(len);
    }

    fn add_ip(&mut self, d: &Dissected, ts: u64, len: u64) {
        let Some((src, dst)) = d.ip_addrs() else {
            return;
        };
        let proto = d.ip_proto().unwrap_or(0);
        // Talkers.
        let (key, dir) = if src <= dst {
            ((src, dst), 0)
        } else {
            ((dst, src), 1)
        };
        let cap = self.opts.max_talkers;
        let n = self.talkers.len();
        match self.talkers.entry(key) {
            Entry::Occupied(mut e) => e.get_mut()[dir].add(len),
            Entry::Vacant(e) if n < cap => e.insert([Count::default(); 2])[dir].add(len),
            Entry::Vacant(_) => self.talkers_dropped_packets += 1,
        }
        // Ports.
        let ports = d.ports();
        if let Some((sp, dp)) = ports {
            self.ports.entry((proto, sp)).or_default().add(len);
            if dp != sp {
                self.ports.entry((proto, dp)).or_default().add(len);
            }
        }
        // Flows.
        let (sp, dp) = ports.unwrap_or((0, 0));
        let flags = match d.transport {
            dissect::Transport::Tcp { flags, .. } => flags.unwrap_or(0),
            _ => 0,
        };
        let (a, b) = ((src, sp), (dst, dp));
        let (key, lo_first) = if a <= b {
            ((proto, a, b), true)
        } else {
            ((proto, b, a), false)
        };
        let n = self.flows.len();
        match self.flows.entry(key) {
            Entry::Occupied(mut e) => {
                let f = e.get_mut();
                f.count.add(len);
                f.first_ns = f.first_ns.min(ts);
                f.last_ns = f.last_ns.max(ts);
                f.flags |= flags;
            }
            Entry::Vacant(e) if n < self.opts.max_flows => {
                let mut count = Count::default();
                count.add(len);
                e.insert(FlowState {
                    lo_first,
                    first_ns: ts,
                    last_ns: ts,
                    count,
                    flags,
                });
            }
            Entry::Vacant(_) => {
                self.flows_dropped.add(&key);
                self.flows_dropped_packets += 1;
            }
        }
    }

    fn finish(self, r: &StreamReader, filter: Option<&Filter>, scan: ScanFigures) -> Analysis {
        let top = self.opts.top;
        let mut protocols: Vec<ProtoRow> = Vec::new();
        let row = |layer, name: String, c: &Count| ProtoRow {
            layer,
            name,
            packets: c.packets,
            bytes: c.bytes,
        };
        let mut sorted = |rows: Vec<ProtoRow>| {
            let mut rows = rows;
            rows.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.name.cmp(&b.name)));
            protocols.extend(rows);
        };
        sorted(
            self.link_layer
                .iter()
                .map(|(n, c)| row("link", (*n).to_owned(), c))
                .collect(),
        );
        sorted(
            self.network
                .iter()
                .map(|(n, c)| row("network", (*n).to_owned(), c))
                .collect(),
        );
        sorted(
            self.transport
                .iter()
                .map(|(p, c)| row("transport", proto_name(*p), c))
                .collect(),
        );

        let mut talkers: Vec<TalkerRow> = self
            .talkers
            .iter()
            .map(|((a, b), [ab, ba])| TalkerRow {
                a: *a,
                b: *b,
                packets: ab.packets + ba.packets,
                bytes: ab.bytes + ba.bytes,
                packets_a_to_b: ab.packets,
                bytes_a_to_b: ab.bytes,
                packets_b_to_a: ba.packets,
                bytes_b_to_a: ba.bytes,
            })
            .collect();
        talkers.sort_by(|x, y| (y.bytes, y.packets, x.a, x.b).cmp(&(x.bytes, x.packets, y.a, y.b)));
        talkers.truncate(top);

        let mut ports: Vec<PortRow> = self
            .ports
            .iter()
            .filter_map(|((p, port), c)| {
                Some(PortRow {
                    proto: transport_name(*p)?,
                    port: *port,
                    packets: c.packets,
                    bytes: c.bytes,
                })
            })
            .collect();
        ports.sort_by(|x, y| {
            (y.packets, y.bytes, x.proto, x.port).cmp(&(x.packets, x.bytes, y.proto, y.port))
        });
        ports.truncate(top);

        let series = self
            .series
            .iter()
            .enumerate()
            .map(|(i, c)| SecondRow {
                ts_sec: self.series_base + i as u64 * self.series_step,
                packets: c.packets,
                bytes: c.bytes,
            })
            .collect();

        let mut flows: Vec<FlowRow> = self
            .flows
            .iter()
            .map(|((proto, lo, hi), f)| {
                let (s, d) = if f.lo_first { (lo, hi) } else { (hi, lo) };
                FlowRow {
                    proto: proto_name(*proto),
                    src: s.0,
                    sport: s.1,
                    dst: d.0,
                    dport: d.1,
                    first_ns: f.first_ns,
                    last_ns: f.last_ns,
                    packets: f.count.packets,
                    bytes: f.count.bytes,
                    tcp_flags: flag_letters(f.flags),
                }
            })
            .collect();
        flows.sort_by(|x, y| {
            (y.bytes, y.packets, x.first_ns).cmp(&(x.bytes, x.packets, y.first_ns))
        });
        flows.truncate(self.opts.flows_out);

        Analysis {
            stream: r.name().to_owned(),
            link_type: r.link_type().0,
            start_ns: None,
            stop_ns: None,
            filter: filter.map(Filter::describe),
            packets: self.packets,
            bytes: self.bytes,
            captured_bytes: self.captured,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            protocols,
            talkers,
            talkers_tracked: self.talkers.len() as u64,
            talkers_dropped_packets: self.talkers_dropped_packets,
            ports,
            series_step_secs: self.series_step,
            series,
            flows,
            flows_tracked: self.flows.len() as u64,
            flows_dropped: self.flows_dropped.estimate(),
            flows_dropped_packets: self.flows_dropped_packets,
            scan,
        }
    }
}

fn transport_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        132 => "sctp",
        _ => return None,
    })
}

fn proto_name(p: u8) -> String {
    transport_name(p).map_or_else(|| format!("ip-proto-{p}"), str::to_owned)
}

/// TCP flags as letters `FSRPAUEC`, in tcpdump's order.
pub fn flag_letters(f: u8) -> String {
    b"FSRPAUEC"
        .iter()
        .enumerate()
        .filter(|(i, _)| f & (1 << i) != 0)
        .map(|(_, &c)| c as char)
        .collect()
}

/// How far an analysis has come, for whoever watches it (a progress bar), and its cancel
/// switch. Shared between the analysing thread and the watcher; both only touch atomics.
#[derive(Debug, Default)]
pub struct Progress {
    examined: AtomicU64,
    total: AtomicU64,
    cancel: AtomicBool,
}

/// Packets between two progress updates (and cancel checks): a few milliseconds of work.
pub const PROGRESS_EVERY: u64 = 4096;

impl Progress {
    /// Packets looked at so far (updated every [`PROGRESS_EVERY`] packets and at the end).
    pub fn examined(&self) -> u64 {
        self.examined.load(Ordering::Relaxed)
    }

    /// Packets in the range (chunks the filter rules out are skipped unread, so an
    /// analysis may end before `examined` reaches this).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// `examined / total`, 0 to 1.
    pub fn fraction(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            t => (self.examined() as f64 / t as f64).min(1.0),
        }
    }

    /// Asks the analysis to stop; it answers [`Error::Cancelled`] within
    /// [`PROGRESS_EVERY`] packets.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Analyzes the packets of `range` that match `filter`. Chunks the filter's summary test
/// rules out are not read. (`start_ns`/`stop_ns` of the result are for the caller to
/// fill in: a range does not remember the times it was made from.)
pub fn analyze(
    reader: &StreamReader,
    range: PacketRange,
    filter: Option<&Filter>,
    opts: &AnalyzeOptions,
) -> Result<Analysis> {
    analyze_with(reader, range, filter, opts, &Progress::default())
}

/// [`analyze`], reporting to `progress` and stopping with [`Error::Cancelled`] when it is
/// cancelled.
pub fn analyze_with(
    reader: &StreamReader,
    range: PacketRange,
    filter: Option<&Filter>,
    opts: &AnalyzeOptions,
    progress: &Progress,
) -> Result<Analysis> {
    progress.total.store(range.packets(), Ordering::Relaxed);
    if progress.cancelled() {
        return Err(Error::Cancelled);
    }
    let mut acc = Acc::new(*opts, Link::from_linktype(reader.link_type().0));
    let mut examined = 0u64;
    let mut stopped = false;
    let s = reader.scan(
        range,
        |sum| filter.is_none_or(|f| f.may_match(sum)),
        |p| {
            examined += 1;
            if examined.is_multiple_of(PROGRESS_EVERY) {
                progress.examined.store(examined, Ordering::Relaxed);
                if progress.cancelled() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
            }
            if filter.is_none_or(|f| f.matches(packet_ts(p), p.orig_len, p.data)) {
                acc.add(p);
            }
            ControlFlow::Continue(())
        },
    )?;
    progress.examined.store(examined, Ordering::Relaxed);
    if stopped {
        return Err(Error::Cancelled);
    }
    let scan = ScanFigures {
        packets_examined: examined,
        chunks_read: s.chunks_read,
        chunks_skipped: s.chunks_skipped,
        bytes_read: s.bytes_read,
        bytes_skipped: s.bytes_skipped,
    };
    Ok(acc.finish(reader, filter, scan))
}

/// The CSV sections of an analysis.
pub const CSV_SECTIONS: [&str; 6] = [
    "summary",
    "protocols",
    "talkers",
    "ports",
    "series",
    "flows",
];

fn opt(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// A CSV field: quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl Analysis {
    /// Writes one section (see [`CSV_SECTIONS`]) as CSV with a header line.
    pub fn write_csv(&self, section: &str, w: &mut impl Write) -> io::Result<()> {
        match section {
            "summary" => {
                writeln!(w, "key,value")?;
                let rows: [(&str, String); 14] = [
                    ("stream", self.stream.clone()),
                    ("link_type", self.link_type.to_string()),
                    ("start_ns", opt(self.start_ns)),
                    ("stop_ns", opt(self.stop_ns)),
                    ("filter", self.filter.clone().unwrap_or_default()),
                    ("packets", self.packets.to_string()),
                    ("bytes", self.bytes.to_string()),
                    ("captured_bytes", self.captured_bytes.to_string()),
                    ("first_ns", opt(self.first_ns)),
                    ("last_ns", opt(self.last_ns)),
                    ("flows_tracked", self.flows_tracked.to_string()),
                    ("flows_dropped", self.flows_dropped.to_string()),
                    ("chunks_read", self.scan.chunks_read.to_string()),
                    ("chunks_skipped", self.scan.chunks_skipped.to_string()),
                ];
                for (k, v) in rows {
                    writeln!(w, "{k},{}", field(&v))?;
                }
            }
            "protocols" => {
                writeln!(w, "layer,protocol,packets,bytes")?;
                for r in &self.protocols {
                    writeln!(w, "{},{},{},{}", r.layer, r.name, r.packets, r.bytes)?;
                }
            }
            "talkers" => {
                writeln!(
                    w,
                    "address_a,address_b,packets,bytes,packets_a_to_b,bytes_a_to_b,packets_b_to_a,bytes_b_to_a"
                )?;
                for r in &self.talkers {
                    writeln!(
                        w,
                        "{},{},{},{},{},{},{},{}",
                        r.a,
                        r.b,
                        r.packets,
                        r.bytes,
                        r.packets_a_to_b,
                        r.bytes_a_to_b,
                        r.packets_b_to_a,
                        r.bytes_b_to_a
                    )?;
                }
            }
            "ports" => {
                writeln!(w, "protocol,port,packets,bytes")?;
                for r in &self.ports {
                    writeln!(w, "{},{},{},{}", r.proto, r.port, r.packets, r.bytes)?;
                }
            }
            "series" => {
                writeln!(w, "second,step_secs,packets,bytes")?;
                for r in &self.series {
                    writeln!(
                        w,
                        "{},{},{},{}",
                        r.ts_sec, self.series_step_secs, r.packets, r.bytes
                    )?;
                }
            }
            "flows" => {
                writeln!(
                    w,
                    "protocol,src,sport,dst,dport,first_ns,last_ns,packets,bytes,tcp_flags"
                )?;
                for r in &self.flows {
                    writeln!(
                        w,
                        "{},{},{},{},{},{},{},{},{},{}",
                        r.proto,
                        r.src,
                        r.sport,
                        r.dst,
                        r.dport,
                        r.first_ns,
                        r.last_ns,
                        r.packets,
                        r.bytes,
                        r.tcp_flags
                    )?;
                }
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "unknown CSV section {other:?}; sections are {}",
                        CSV_SECTIONS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_letters_follow_tcpdump_order() {
        assert_eq!(flag_letters(0x12), "SA");
        assert_eq!(flag_letters(0xff), "FSRPAUEC");
        assert_eq!(flag_letters(0), "");
    }

    #[test]
    fn series_coarsens_instead_of_growing() {
        let opts = AnalyzeOptions {
            max_series: 4,
            ..AnalyzeOptions::default()
        };
        let mut acc = Acc::new(opts, Link::Ethernet);
        for sec in 100..110 {
            acc.add_series(sec, 10);
        }
        assert_eq!(acc.series_step, 4);
        let total: u64 = acc.series.iter().map(|c| c.packets).sum();
        assert_eq!(total, 10);
        assert!(acc.series.len() <= 4);
        assert_eq!(acc.series[0].packets, 4);
    }

    #[test]
    fn overflow_estimate_is_close() {
        let mut o = Overflow::new();
        for i in 0..50_000u64 {
            o.add(&i);
            o.add(&i);
        }
        let e = o.estimate();
        assert!((49_000..=51_000).contains(&e), "{e}");
    }
}
