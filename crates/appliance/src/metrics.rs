//! Prometheus metrics at `/metrics` (text format, behind the same auth as every route).
//!
//! Capture figures are gauges set from the capture counters at scrape time (they restart
//! with each capture, as `/sysmaster/status` shows them); the server's own figures
//! (requests, download bytes, refused logins) are counters.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::manual::StatusFigures;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `a_to_b` or `b_to_a` (of the `A=B` pairs).
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why the forwarder dropped a packet (`unknown_peer`, `fragment`, …).
    pub reason: String,
}

/// The inline forwarder's metrics (`wirecap_forward_*`), set at scrape time.
struct ForwardMetrics {
    packets: Family<DirectionLabels, G>,
    bytes: Family<DirectionLabels, G>,
    dropped: Family<ReasonLabels, G>,
    gauges: Vec<(&'static str, G)>,
}

const FORWARD_GAUGES: [(&str, &str); 12] = [
    (
        "forward_pps",
        "Packets forwarded per second over the last second",
    ),
    (
        "forward_bps",
        "Bits forwarded per second over the last second",
    ),
    (
        "forward_arp_requests_answered",
        "ARP requests for the capture IP answered",
    ),
    (
        "forward_arp_requests_sent",
        "ARP requests sent to resolve or refresh peers",
    ),
    ("forward_arp_resolved", "ARP answers from peers learnt"),
    (
        "forward_arp_pending",
        "Packets waiting for a peer's ARP answer",
    ),
    (
        "forward_checksums_completed",
        "Partial TCP/UDP checksums (offload) completed",
    ),
    (
        "forward_super_packets_segmented",
        "TCP super-packets (GSO/GRO) cut into segments",
    ),
    (
        "forward_super_packets_passed",
        "TCP super-packets sent whole for the kernel to segment",
    ),
    (
        "forward_icmp_errors_sent",
        "ICMP errors sent by the forwarder itself (time exceeded, packet too big)",
    ),
    (
        "forward_rx_ring_drops",
        "Packets lost because the forwarder's RX ring was full",
    ),
    (
        "forward_capture_queue_dropped",
        "Records lost because the capture queue was full (this capture)",
    ),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route family: `sysmaster`, `plain`, `pcap`, `api`, `metrics`, `other`.
    pub route: String,
    pub code: u16,
}

type G = Gauge<u64, AtomicU64>;

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    download_bytes: Counter,
    auth_failures: Counter,
    gauges: Vec<(&'static str, G)>,
    streams: G,
    retention: Vec<(&'static str, G)>,
    forward: ForwardMetrics,
    archive: Vec<(&'static str, G)>,
}

/// The archive tier's figures (all 0 without an archive).
const ARCHIVE_GAUGES: [(&str, &str); 13] = [
    (
        "archive_ok",
        "1 when the last writeback pass (or fleet refresh) succeeded",
    ),
    (
        "archive_lag_bytes",
        "Bytes of local segments not yet in the archive",
    ),
    (
        "archive_lag_seconds",
        "Seconds since the oldest sealed segment not yet archived was sealed",
    ),
    (
        "archive_pending_segments",
        "Sealed segments waiting for upload",
    ),
    (
        "archive_rate_bytes_per_second",
        "Writeback rate over the last pass",
    ),
    (
        "archive_uploaded_bytes",
        "Bytes uploaded to the archive since the server started",
    ),
    (
        "archive_uploaded_segments",
        "Segments archived since the server started",
    ),
    (
        "archive_errors",
        "Failed writeback passes and archive reads since the server started",
    ),
    (
        "archive_evicted_bytes",
        "Local copies of archived segments deleted (the disk as a cache)",
    ),
    (
        "archive_lost_bytes",
        "Bytes deleted before they were archived (the disk was full)",
    ),
    ("archive_read_requests", "Ranged GETs of archived segments"),
    ("archive_read_bytes", "Bytes read from archived segments"),
    ("archive_cache_bytes", "Bytes in the archive read cache"),
];

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

const RETENTION_GAUGES: [(&str, &str); 6] = [
    (
        "retention_budget_bytes",
        "Disk budget of the store (0: none)",
    ),
    (
        "retention_used_bytes",
        "Bytes the store's streams take, as retention counts them",
    ),
    (
        "retention_pinned_bytes",
        "Bytes of pinned streams (never deleted)",
    ),
    (
        "retention_deleted_bytes",
        "Bytes retention deleted since the server started",
    ),
    (
        "retention_oldest_packet_seconds",
        "The retention horizon: time of the oldest packet on disk, s since the epoch",
    ),
    (
        "retention_over_budget",
        "1 while over the high watermark with nothing left that may be deleted",
    ),
];

const GAUGES: [(&str, &str); 15] = [
    (
        "packets_received",
        "Packets received by the current or last capture (captured + dropped)",
    ),
    (
        "packets_dropped",
        "Packets lost by the current or last capture, any reason",
    ),
    (
        "packets_errors",
        "Packets with errors (malformed, failed writes, clamped timestamps)",
    ),
    (
        "packets_captured",
        "Packets written to the store by the current or last capture",
    ),
    (
        "bytes_captured",
        "Bytes written to the store by the current or last capture",
    ),
    ("bytes_pending", "Bytes queued for the writer"),
    ("bytes_disk", "Bytes the store takes on disk"),
    ("capture_bytes", "Wire bytes delivered by the source"),
    ("capture_packets", "Packets delivered by the source"),
    ("capture_bps", "Bits per second over the last second"),
    ("capture_pps", "Packets per second over the last second"),
    ("capture_active", "1 while a capture runs"),
    ("capture_link_up", "1 while the capture link is up"),
    (
        "capture_link_speed_mbps",
        "Link speed in Mb/s (0 when unknown)",
    ),
    ("uptime_seconds", "Seconds since the server started"),
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wirecap");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let download_bytes = Counter::default();
        registry.register(
            "http_download_bytes",
            "Bytes of capture files sent",
            download_bytes.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Requests refused for wrong credentials",
            auth_failures.clone(),
        );
        let mut gauges = Vec::new();
        for (name, help) in GAUGES {
            let g = G::default();
            registry.register(name, help, g.clone());
            gauges.push((name, g));
        }
        let streams = G::default();
        registry.register("streams", "Streams in the store", streams.clone());
        let mut retention = Vec::new();
        for (name, help) in RETENTION_GAUGES {
            let g = G::default();
            registry.register(name, help, g.clone());
            retention.push((name, g));
        }
        let forward = ForwardMetrics {
            packets: Family::default(),
            bytes: Family::default(),
            dropped: Family::default(),
            gauges: FORWARD_GAUGES
                .iter()
                .map(|(name, help)| {
                    let g = G::default();
                    registry.register(*name, *help, g.clone());
                    (*name, g)
                })
                .collect(),
        };
        registry.register(
            "forward_packets",
            "Packets forwarded, by direction",
            forward.packets.clone(),
        );
        registry.register(
            "forward_bytes",
            "Bytes forwarded, by direction",
            forward.bytes.clone(),
        );
        registry.register(
            "forward_dropped",
            "Packets the forwarder dropped, by reason",
            forward.dropped.clone(),
        );
        let archive = ARCHIVE_GAUGES
            .iter()
            .map(|(name, help)| {
                let g = G::default();
                registry.register(*name, *help, g.clone());
                (*name, g)
            })
            .collect();
        Self(Arc::new(Inner {
            archive,
            registry,
            requests,
            download_bytes,
            auth_failures,
            gauges,
            streams,
            retention,
            forward,
        }))
    }

    pub fn request(&self, route: &str, code: u16) {
        self.0
            .requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                code,
            })
            .inc();
    }

    pub fn download_bytes(&self, n: u64) {
        self.0.download_bytes.inc_by(n);
    }

    pub fn auth_failure(&self) {
        self.0.auth_failures.inc();
    }

    /// Sets the forwarder's figures (its snapshot and the capture queue's loss), if one runs.
    pub fn set_forward(&self, f: Option<(wirecap_forward::afpacket::Snapshot, u64)>) {
        let Some((s, tap_dropped)) = f else {
            return;
        };
        let m = &self.0.forward;
        let st = &s.stats;
        let dir = |d: &str| DirectionLabels {
            direction: d.to_owned(),
        };
        m.packets
            .get_or_create(&dir("a_to_b"))
            .set(st.a_to_b_packets);
        m.packets
            .get_or_create(&dir("b_to_a"))
            .set(st.b_to_a_packets);
        m.bytes.get_or_create(&dir("a_to_b")).set(st.a_to_b_bytes);
        m.bytes.get_or_create(&dir("b_to_a")).set(st.b_to_a_bytes);
        for r in wirecap_forward::DropReason::ALL {
            m.dropped
                .get_or_create(&ReasonLabels {
                    reason: r.as_str().to_owned(),
                })
                .set(st.dropped(r));
        }
        for (name, g) in &m.gauges {
            g.set(match *name {
                "forward_pps" => s.pps,
                "forward_bps" => s.bps,
                "forward_arp_requests_answered" => st.arp_answered,
                "forward_arp_requests_sent" => st.arp_requests_sent,
                "forward_arp_resolved" => st.arp_resolved,
                "forward_arp_pending" => s.arp_pending,
                "forward_checksums_completed" => st.checksums_completed,
                "forward_super_packets_segmented" => st.super_packets_segmented,
                "forward_super_packets_passed" => st.super_packets_passed,
                "forward_icmp_errors_sent" => st.icmp_errors_sent,
                "forward_rx_ring_drops" => s.rx_ring_drops,
                "forward_capture_queue_dropped" => tap_dropped,
                _ => 0,
            });
        }
    }

    /// Sets the archive tier's figures (`None`: no archive, all 0).
    pub fn set_archive(&self, a: Option<&wirecap_archive::ArchiveStatus>) {
        let d = wirecap_archive::ArchiveStatus::default();
        let a = a.unwrap_or(&d);
        for (name, g) in &self.0.archive {
            g.set(match *name {
                "archive_ok" => u64::from(a.state == "ok"),
                "archive_lag_bytes" => a.lag_bytes,
                "archive_lag_seconds" => a.lag_seconds as u64,
                "archive_pending_segments" => a.pending_segments,
                "archive_rate_bytes_per_second" => a.rate_bytes_per_second as u64,
                "archive_uploaded_bytes" => a.uploaded_bytes_total,
                "archive_uploaded_segments" => a.uploaded_segments_total,
                "archive_errors" => a.errors_total,
                "archive_evicted_bytes" => a.evicted_bytes_total,
                "archive_lost_bytes" => a.lost_bytes_total,
                "archive_read_requests" => a.read_requests_total,
                "archive_read_bytes" => a.read_bytes_total,
                "archive_cache_bytes" => a.cache_bytes,
                _ => 0,
            });
        }
    }

    /// The text exposition, with the capture figures of `s`.
    pub fn render(
        &self,
        s: &StatusFigures,
        streams: u64,
        r: &crate::retention::RetentionStatus,
    ) -> String {
        for (name, g) in &self.0.retention {
            let v = match *name {
                "retention_budget_bytes" => r.budget_bytes.unwrap_or(0),
                "retention_used_bytes" => r.used_bytes,
                "retention_pinned_bytes" => r.pinned_bytes,
                "retention_deleted_bytes" => r.deleted_bytes_total,
                "retention_oldest_packet_seconds" => r.oldest_ns.map_or(0, |t| t / 1_000_000_000),
                "retention_over_budget" => u64::from(r.warning.is_some()),
                _ => 0,
            };
            g.set(v);
        }
        for (name, g) in &self.0.gauges {
            let v = match *name {
                "packets_received" => s.packets_received,
                "packets_dropped" => s.packets_dropped,
                "packets_errors" => s.packets_errors,
                "packets_captured" => s.packets_captured,
                "bytes_captured" => s.bytes_captured,
                "bytes_pending" => s.bytes_pending,
                "bytes_disk" => s.bytes_disk,
                "capture_bytes" => s.capture_bytes,
                "capture_packets" => s.capture_packets,
                "capture_bps" => s.capture_bps,
                "capture_pps" => s.capture_pps,
                "capture_active" => u64::from(s.capture_active),
                "capture_link_up" => u64::from(s.link_up),
                "capture_link_speed_mbps" => s.link_speed,
                "uptime_seconds" => s.uptime.as_secs(),
                _ => 0,
            };
            g.set(v);
        }
        self.0.streams.set(streams);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_capture_figures() {
        let m = Metrics::new();
        m.request("plain", 200);
        m.download_bytes(1234);
        let text = m.render(
            &StatusFigures {
                packets_captured: 42,
                capture_active: true,
                ..StatusFigures::default()
            },
            3,
            &crate::retention::RetentionStatus {
                budget_bytes: Some(5_000_000),
                used_bytes: 4_000_000,
                oldest_ns: Some(1_700_000_000_500_000_000),
                ..Default::default()
            },
        );
        assert!(text.contains("wirecap_packets_captured 42"), "{text}");
        assert!(
            text.contains("wirecap_retention_budget_bytes 5000000"),
            "{text}"
        );
        assert!(text.contains("wirecap_retention_used_bytes 4000000"));
        assert!(text.contains("wirecap_retention_oldest_packet_seconds 1700000000"));
        assert!(text.contains("wirecap_capture_active 1"));
        assert!(text.contains("wirecap_streams 3"));
        assert!(text.contains("wirecap_http_download_bytes_total 1234"));
        assert!(text.contains("wirecap_http_requests_total{route=\"plain\",code=\"200\"} 1"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn renders_the_forwarder_figures() {
        let m = Metrics::new();
        let mut snap = wirecap_forward::afpacket::Snapshot::default();
        snap.stats.a_to_b_packets = 5;
        snap.stats.b_to_a_bytes = 490;
        snap.stats.drops[4] = 2;
        snap.pps = 7;
        snap.stats.arp_answered = 1;
        m.set_forward(Some((snap, 3)));
        let text = m.render(&StatusFigures::default(), 0, &Default::default());
        assert!(
            text.contains("wirecap_forward_packets{direction=\"a_to_b\"} 5"),
            "{text}"
        );
        assert!(text.contains("wirecap_forward_bytes{direction=\"b_to_a\"} 490"));
        let r = wirecap_forward::DropReason::ALL[4].as_str();
        assert!(text.contains(&format!("wirecap_forward_dropped{{reason=\"{r}\"}} 2")));
        assert!(text.contains("wirecap_forward_pps 7"));
        assert!(text.contains("wirecap_forward_arp_requests_answered 1"));
        assert!(text.contains("wirecap_forward_capture_queue_dropped 3"));
    }
}
