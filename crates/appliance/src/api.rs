//! The API's types that the system report shares: a stream, an interface, the status.
//! Plain serde structs that describe themselves ([`utoipa::ToSchema`], no HTTP): the HTTP
//! crate answers them and generates its OpenAPI document from them, the report writes
//! them, so a field added here shows in the answer, the report and the document at once.
//! (Types only one route shows live with that route in `wirecap-http`.)
//!
//! Fields are declared in alphabetical order: the order these answers had when they were
//! built as `serde_json` maps, kept so that their bytes did not change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wirecap_store::timefmt::rfc3339;
use wirecap_store::{StreamInfo, StreamState};

use crate::engine::Engine;
use crate::operations::Operations;

/// One stream as the JSON API and the system report show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// Attributes recorded with the stream (`capture_mode`, `source`, …).
    pub attrs: BTreeMap<String, String>,
    /// The name given at capture start.
    pub base_name: String,
    /// Size of the whole stream as one pcap file.
    pub bytes: u64,
    /// `capture` or `forward` (the `capture_mode` attribute), when recorded.
    pub capture_mode: Option<String>,
    pub created: String,
    pub created_ns: u64,
    /// Bytes on disk (segments and index).
    pub disk_bytes: u64,
    pub first: Option<String>,
    pub first_ns: Option<u64>,
    pub last: Option<String>,
    pub last_ns: Option<u64>,
    /// The pcap link type.
    pub link_type: u16,
    pub links: StreamLinks,
    /// The stored name (base name and time): the stream's key in every route.
    pub name: String,
    pub packets: u64,
    pub snaplen: u32,
    pub source: String,
    /// `open`, `sealed` or `recovered`.
    #[schema(value_type = String)]
    pub state: StreamState,
    /// The probe that captured it, when an archive is configured (a read-only node
    /// serves every probe's streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
}

/// Where a stream's download and views are.
/// A stream the store cannot read (its metadata or index is damaged): listed with why,
/// never hidden (`wirecap verify NAME` says more, `wirecap recover` rebuilds its index).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Damaged {
    /// Why it cannot be read.
    pub damage: String,
    pub name: String,
    /// Always `damaged`.
    pub state: String,
}

impl Damaged {
    pub fn new(name: String, why: String) -> Self {
        Self {
            damage: why,
            name,
            state: "damaged".to_owned(),
        }
    }
}

/// One entry of the stream list: a readable stream, or a damaged one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Listing {
    Stream(Box<Stream>),
    Damaged(Damaged),
}

impl Listing {
    pub fn of(e: wirecap_store::Listed) -> Self {
        match e {
            wirecap_store::Listed::Stream(i) => Self::Stream(Box::new(Stream::of(&i))),
            wirecap_store::Listed::Damaged { name, why } => Self::Damaged(Damaged::new(name, why)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamLinks {
    pub pcap: String,
    pub views: String,
}

impl Stream {
    pub fn of(s: &StreamInfo) -> Self {
        let n = &s.meta.name;
        Self {
            attrs: s.meta.attrs.clone(),
            base_name: s.meta.base_name.clone(),
            bytes: s.bytes,
            capture_mode: s.meta.attrs.get("capture_mode").cloned(),
            created: rfc3339(s.meta.created_ns),
            created_ns: s.meta.created_ns,
            disk_bytes: s.disk_bytes,
            first: s.first_ts.map(rfc3339),
            first_ns: s.first_ts,
            last: s.last_ts.map(rfc3339),
            last_ns: s.last_ts,
            link_type: s.meta.link_type,
            links: StreamLinks {
                pcap: format!("/api/v1/streams/{n}/pcap"),
                views: format!("/api/v1/streams/{n}/views"),
            },
            name: n.clone(),
            packets: s.packets,
            snaplen: s.meta.snaplen,
            source: s.meta.source.clone(),
            state: s.meta.state,
            probe: None,
        }
    }

    /// This stream with its probe: the archive's probe for a fleet copy, this node's
    /// when an archive is configured.
    pub fn with_probe(mut self, engine: &Engine) -> Self {
        self.probe = probe_of(engine, &self.name);
        self
    }
}

/// The probe of stream `name` (see [`Stream::with_probe`]).
pub fn probe_of(engine: &Engine, name: &str) -> Option<String> {
    let a = engine.archive()?;
    let dir = engine.store().stream_path(name).ok()?;
    Some(wirecap_archive::origin_probe(&dir).unwrap_or_else(|| a.probe().to_owned()))
}

/// The appliance's status: the JSON API's, the report's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub bytes_captured: u64,
    pub bytes_disk: u64,
    pub bytes_pending: u64,
    pub capture: CaptureState,
    pub capture_bps: u64,
    pub capture_bytes: u64,
    pub capture_packets: u64,
    pub capture_pps: u64,
    /// Capture filter, snaplen, fanout threads and ring in force (the running capture's,
    /// else the next one's).
    pub capture_settings: crate::capture_settings::CaptureSettingsState,
    /// The writer met ENOSPC in the current (or last) capture: the UI warns.
    pub disk_full: bool,
    pub drops: Drops,
    /// The inline forwarder (as `GET /api/v1/forward` shows it), when one runs.
    #[schema(value_type = Option<Object>)]
    pub forward: Option<serde_json::Value>,
    /// Per-second counters, oldest first.
    pub history: Vec<HistoryPoint>,
    pub hostname: String,
    pub last_error: Option<String>,
    pub link: LinkState,
    pub packets_captured: u64,
    pub packets_dropped: u64,
    pub packets_errors: u64,
    pub packets_pending: u64,
    pub packets_received: u64,
    /// Disk budget, usage and the oldest packet kept.
    #[schema(value_type = Object)]
    pub retention: serde_json::Value,
    /// What the appliance captures from.
    pub source: String,
    pub uptime_s: u64,
    /// The archive tier (writeback lag, rate, errors), when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<wirecap_archive::ArchiveStatus>,
}

/// The capture running now (or the last one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureState {
    pub active: bool,
    /// The name given at start.
    pub name: Option<String>,
    pub started: Option<String>,
    pub started_ns: Option<u64>,
    /// The stored stream's name.
    pub stream: Option<String>,
}

/// The capture interface's link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkState {
    pub speed_mbps: u64,
    pub up: bool,
    pub uptime_s: u64,
}

/// Packets lost, by where.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Drops {
    pub kernel: u64,
    pub malformed: u64,
    pub queue: u64,
    pub write: u64,
}

/// One second of counters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryPoint {
    pub bytes: u64,
    pub drops: u64,
    pub packets: u64,
    /// Start of the second, Unix seconds.
    pub ts: u64,
}

impl Status {
    /// The status with the last `secs` seconds of counters history. Blocking (reads the
    /// store's size).
    pub fn of(engine: &Engine, ops: &Operations, hostname: String, secs: usize) -> Self {
        let secs = secs.min(wirecap_capture::counters::HISTORY_SECONDS);
        let (f, s, info, hist) = (
            engine.status_figures(),
            engine.status(),
            engine.capture_info(),
            engine.counters().history(),
        );
        let history = hist
            .iter()
            .skip(hist.len().saturating_sub(secs))
            .map(|h| HistoryPoint {
                bytes: h.bytes,
                drops: h.drops,
                packets: h.packets,
                ts: h.ts,
            })
            .collect();
        Self {
            bytes_captured: f.bytes_captured,
            bytes_disk: f.bytes_disk,
            bytes_pending: f.bytes_pending,
            capture: CaptureState {
                active: info.active,
                name: info.base,
                started: info.started_ns.map(rfc3339),
                started_ns: info.started_ns,
                stream: info.stored,
            },
            capture_bps: f.capture_bps,
            capture_bytes: f.capture_bytes,
            capture_packets: f.capture_packets,
            capture_pps: f.capture_pps,
            disk_full: s.disk_full,
            drops: Drops {
                kernel: s.dropped_kernel,
                malformed: s.dropped_malformed,
                queue: s.dropped_queue,
                write: s.dropped_write,
            },
            capture_settings: engine.capture_settings_state(),
            forward: engine
                .forwarder()
                .as_deref()
                .map(crate::forward::forward_json),
            history,
            hostname,
            last_error: s.last_error,
            link: LinkState {
                speed_mbps: f.link_speed,
                up: f.link_up,
                uptime_s: f.link_uptime.as_secs(),
            },
            packets_captured: f.packets_captured,
            packets_dropped: f.packets_dropped,
            packets_errors: f.packets_errors,
            packets_pending: s.packets_pending,
            packets_received: f.packets_received,
            retention: serde_json::to_value(ops.retention.status()).unwrap_or_default(),
            source: engine.describe_source(),
            uptime_s: f.uptime.as_secs(),
            archive: engine.archive().map(|a| a.status()),
        }
    }
}

/// One interface as the JSON API, the UI and the system report show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The kernel driver (`None` for virtual devices).
    pub driver: Option<String>,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub name: String,
    /// `up`, `down`, `unknown`, `lowerlayerdown`, …
    pub operstate: String,
    pub rx_bytes: u64,
    pub rx_dropped: u64,
    pub rx_errors: u64,
    pub rx_missed_errors: u64,
    pub rx_packets: u64,
    pub speed_mbps: Option<u32>,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub up: bool,
}

impl Link {
    pub fn of(l: &wirecap_capture::link::LinkInfo) -> Self {
        let c = &l.counters;
        Self {
            driver: l.driver.clone(),
            mac: l.mac.clone(),
            mtu: l.mtu,
            name: l.name.clone(),
            operstate: l.operstate.clone(),
            rx_bytes: c.rx_bytes,
            rx_dropped: c.rx_dropped,
            rx_errors: c.rx_errors,
            rx_missed_errors: c.rx_missed_errors,
            rx_packets: c.rx_packets,
            speed_mbps: l.speed_mbps,
            tx_bytes: c.tx_bytes,
            tx_packets: c.tx_packets,
            up: l.up,
        }
    }
}

/// One flow of `GET /api/v1/flows`: both directions of one conversation in one stream
/// (IP: protocol, addresses and ports or ICMP type/id; other: EtherType and MACs, within
/// one VLAN/MPLS context); `src` sent its first packet. Figures are the whole flow's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub bytes: u64,
    /// Destination port (TCP, UDP, SCTP).
    pub dport: Option<u16>,
    /// Destination address: IP, or MAC for non-IP flows; empty for `other`.
    pub dst: String,
    pub dst_bytes: u64,
    pub dst_packets: u64,
    pub duration_ns: u64,
    /// Closed early because the writer's flow table was full: its later packets are
    /// another flow.
    pub evicted_early: bool,
    /// Time of its first packet (RFC 3339).
    pub first: String,
    pub first_ns: u64,
    /// ICMP echo id.
    pub icmp_id: Option<u16>,
    /// ICMP / ICMPv6 type (echo replies count as requests).
    pub icmp_type: Option<u8>,
    /// The flow's id in its stream (its `pcap` names it).
    pub id: u64,
    pub last_ns: u64,
    pub mpls: Option<u32>,
    pub packets: u64,
    /// Its packets (both directions) as pcap.
    pub pcap: String,
    /// `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `igmp`, `gre`, `esp`, `ip:N`, `arp`,
    /// `rarp`, `ether:0xNNNN`, `llc`, or `other` (packets not keyed into flows).
    pub proto: String,
    /// Source port (TCP, UDP, SCTP).
    pub sport: Option<u16>,
    /// Source address: the side that sent the first packet.
    pub src: String,
    pub src_bytes: u64,
    pub src_packets: u64,
    pub stream: String,
    /// TCP flags seen in either direction, as letters `FSRPAUEC` (tcpdump's order).
    pub tcp_flags: String,
    pub vlan: Option<u16>,
}

/// A stream left out of a listing because it could not be read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Skipped {
    pub name: String,
    pub why: String,
}

/// A page of `GET /api/v1/flows` and the totals of every flow that matched.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowPage {
    /// Bytes of every matching flow (all pages).
    pub bytes: u64,
    pub flows: Vec<Flow>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next: Option<String>,
    /// Packets of every matching flow (all pages).
    pub packets: u64,
    pub skipped: Vec<Skipped>,
    /// Streams read.
    pub streams: u64,
    /// Flows that matched (all pages).
    pub total: u64,
}

impl Flow {
    pub fn of(f: &wirecap_query::FlowRecord) -> Self {
        Self {
            bytes: f.bytes,
            dport: f.dst_port,
            dst: f.dst_addr.clone(),
            dst_bytes: f.dst_bytes,
            dst_packets: f.dst_packets,
            duration_ns: f.last_ns - f.first_ns,
            evicted_early: f.evicted_early,
            first: rfc3339(f.first_ns),
            first_ns: f.first_ns,
            icmp_id: f.icmp_id,
            icmp_type: f.icmp_type,
            id: f.id,
            last_ns: f.last_ns,
            mpls: f.mpls,
            packets: f.packets,
            pcap: format!("/api/v1/streams/{}/flows/{}/pcap", f.stream, f.id),
            proto: f.proto.clone(),
            sport: f.src_port,
            src: f.src_addr.clone(),
            src_bytes: f.src_bytes,
            src_packets: f.src_packets,
            stream: f.stream.clone(),
            tcp_flags: wirecap_query::tcp_flag_letters(f.tcp_flags),
            vlan: f.vlan,
        }
    }
}

impl FlowPage {
    pub fn of(p: &wirecap_query::flowlist::FlowPage) -> Self {
        Self {
            bytes: p.bytes,
            flows: p.flows.iter().map(Flow::of).collect(),
            next: p.next.clone(),
            packets: p.packets,
            skipped: p
                .skipped
                .iter()
                .map(|(name, why)| Skipped {
                    name: name.clone(),
                    why: why.clone(),
                })
                .collect(),
            streams: p.streams,
            total: p.total,
        }
    }
}
