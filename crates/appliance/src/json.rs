//! The JSON shapes the API and the system report share: one builder per shape, so a field
//! added here shows in both. (Shapes only one route shows live in that route's module in
//! `wirecap-http`.)

use serde_json::{Value, json};
use wirecap_store::StreamInfo;
use wirecap_store::timefmt::rfc3339;

use crate::engine::Engine;
use crate::operations::Operations;

/// One stream as the JSON API and the system report show it.
pub fn stream_json(s: &StreamInfo) -> Value {
    let n = &s.meta.name;
    json!({
        "name": n,
        "base_name": s.meta.base_name,
        "created_ns": s.meta.created_ns,
        "created": rfc3339(s.meta.created_ns),
        "state": s.meta.state,
        "source": s.meta.source,
        "link_type": s.meta.link_type,
        "snaplen": s.meta.snaplen,
        "packets": s.packets,
        "bytes": s.bytes,
        "disk_bytes": s.disk_bytes,
        "first_ns": s.first_ts,
        "last_ns": s.last_ts,
        "first": s.first_ts.map(rfc3339),
        "last": s.last_ts.map(rfc3339),
        "capture_mode": s.meta.attrs.get("capture_mode"),
        "attrs": s.meta.attrs,
        "links": {
            "pcap": format!("/api/v1/streams/{n}/pcap"),
            "views": format!("/api/v1/streams/{n}/views"),
        },
    })
}

/// The JSON API's status (the report's too) with the last `secs` seconds of counters
/// history. Blocking (reads the store's size).
pub fn status_json(engine: &Engine, ops: &Operations, hostname: String, secs: usize) -> Value {
    let secs = secs.min(wirecap_capture::counters::HISTORY_SECONDS);
    let (f, s, info, hist) = (
        engine.status_figures(),
        engine.status(),
        engine.capture_info(),
        engine.counters().history(),
    );
    let hist: Vec<Value> = hist
        .iter()
        .skip(hist.len().saturating_sub(secs))
        .map(|h| json!({"ts": h.ts, "packets": h.packets, "bytes": h.bytes, "drops": h.drops}))
        .collect();
    json!({
        "hostname": hostname,
        "uptime_s": f.uptime.as_secs(),
        "source": engine.describe_source(),
        "capture": {
            "active": info.active,
            "name": info.base,
            "stream": info.stored,
            "started_ns": info.started_ns,
            "started": info.started_ns.map(rfc3339),
        },
        "link": {
            "up": f.link_up,
            "uptime_s": f.link_uptime.as_secs(),
            "speed_mbps": f.link_speed,
        },
        "packets_received": f.packets_received,
        "packets_dropped": f.packets_dropped,
        "packets_errors": f.packets_errors,
        "packets_captured": f.packets_captured,
        "packets_pending": s.packets_pending,
        "bytes_captured": f.bytes_captured,
        "bytes_pending": f.bytes_pending,
        "bytes_disk": f.bytes_disk,
        "capture_bytes": f.capture_bytes,
        "capture_packets": f.capture_packets,
        "capture_bps": f.capture_bps,
        "capture_pps": f.capture_pps,
        "drops": {
            "kernel": s.dropped_kernel,
            "queue": s.dropped_queue,
            "write": s.dropped_write,
            "malformed": s.dropped_malformed,
        },
        "last_error": s.last_error,
        // The writer met ENOSPC in the current (or last) capture: the UI warns.
        "disk_full": s.disk_full,
        "retention": ops.retention.status(),
        "forward": engine.forwarder().map(crate::forward::forward_json),
        "history": hist,
    })
}

/// One interface as the JSON API, the UI and the system report show it.
pub fn link_json(l: &wirecap_capture::link::LinkInfo) -> Value {
    json!({
        "name": l.name,
        "operstate": l.operstate,
        "up": l.up,
        "speed_mbps": l.speed_mbps,
        "mac": l.mac,
        "mtu": l.mtu,
        "driver": l.driver,
        "rx_packets": l.counters.rx_packets,
        "rx_bytes": l.counters.rx_bytes,
        "rx_dropped": l.counters.rx_dropped,
        "rx_errors": l.counters.rx_errors,
        "rx_missed_errors": l.counters.rx_missed_errors,
        "tx_packets": l.counters.tx_packets,
        "tx_bytes": l.counters.tx_bytes,
    })
}
