//! The inline forwarder as the JSON API, the status and the metrics show it: settings,
//! neighbours and counters in one shape, and the checked change a `PUT` asks for.

use serde_json::{Value, json};
use wirecap_forward::DropReason;
use wirecap_forward::afpacket::{ForwarderHandle, Settings, Snapshot};
use wirecap_forward::wire::mac_to_string;

use crate::config::ForwardChoice;

/// The counters of `s`.
pub fn counters_json(s: &Snapshot, tap_dropped: u64) -> Value {
    let st = &s.stats;
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), json!(st.dropped(*r))))
        .collect();
    json!({
        "forwarded_packets": st.forwarded(),
        "a_to_b": {"packets": st.a_to_b_packets, "bytes": st.a_to_b_bytes},
        "b_to_a": {"packets": st.b_to_a_packets, "bytes": st.b_to_a_bytes},
        "pps": s.pps,
        "bps": s.bps,
        "dropped": st.dropped_total(),
        "drops": drops,
        "arp": {
            "requests_answered": st.arp_answered,
            "requests_sent": st.arp_requests_sent,
            "resolved": st.arp_resolved,
            "pending": s.arp_pending,
        },
        "checksums_completed": st.checksums_completed,
        "super_packets_segmented": st.super_packets_segmented,
        "super_packets_passed": st.super_packets_passed,
        "icmp_errors_sent": st.icmp_errors_sent,
        "rx_ring_drops": s.rx_ring_drops,
        "tx_errors": s.tx_errors,
        "rx_malformed": s.rx_malformed,
        "capture_queue_dropped": tap_dropped,
    })
}

/// Everything about the forwarder: settings, interface facts, neighbours, counters.
pub fn forward_json(f: &ForwarderHandle) -> Value {
    let set: Settings = f.settings();
    let s = f.snapshot();
    let pairs: Vec<String> = set.pairs.iter().map(ToString::to_string).collect();
    let neighbours: Vec<Value> = s
        .neighbours
        .iter()
        .map(|n| json!({"ip": n.ip.to_string(), "mac": n.mac.as_ref().map(mac_to_string)}))
        .collect();
    json!({
        "enabled": true,
        // Set when the forwarder thread died: the counters below are its last figures.
        "failed": s.failed,
        "interface": set.interface,
        "inline": set.inline.to_string(),
        "capture_ip": set.inline.ip.to_string(),
        "pairs": pairs,
        "capture_mode": set.mode.as_str(),
        "mac": mac_to_string(&s.mac),
        "mtu": s.mtu,
        "offloads": s.offloads,
        "qdisc_bypass": s.qdisc_bypass,
        "neighbours": neighbours,
        "counters": counters_json(&s, f.tap().dropped()),
    })
}

/// The change a `PUT /api/v1/forward` body asks for, over the current settings: any of
/// `inline`, `pairs` (a list of `A=B`) and `capture_mode`.
pub fn merge(current: &Settings, body: &Value) -> Result<ForwardChoice, String> {
    let obj = body.as_object().ok_or(
        "body must be a JSON object: {\"inline\": …, \"pairs\": […], \"capture_mode\": …}",
    )?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "inline" | "pairs" | "capture_mode") {
            return Err(format!(
                "unknown field {k:?}: give inline, pairs or capture_mode"
            ));
        }
    }
    let inline = match obj.get("inline") {
        None => current.inline.to_string(),
        Some(v) => v
            .as_str()
            .ok_or("inline must be a string ADDR/PREFIX")?
            .to_owned(),
    };
    let pairs: Vec<String> = match obj.get("pairs") {
        None => current.pairs.iter().map(ToString::to_string).collect(),
        Some(v) => v
            .as_array()
            .ok_or("pairs must be a list of \"A=B\" strings")?
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_owned)
                    .ok_or("pairs must be a list of \"A=B\" strings")
            })
            .collect::<Result<_, _>>()?,
    };
    let mode = match obj.get("capture_mode") {
        None => current.mode.as_str().to_owned(),
        Some(v) => v
            .as_str()
            .ok_or("capture_mode must be a string")?
            .to_owned(),
    };
    ForwardChoice::parse(&inline, &pairs, Some(&mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirecap_forward::CaptureMode;

    fn current() -> Settings {
        Settings {
            interface: "eth1".into(),
            inline: "10.9.0.1/24".parse().unwrap(),
            pairs: vec!["10.9.0.2=10.9.0.3".parse().unwrap()],
            mode: CaptureMode::Inline,
        }
    }

    #[test]
    fn merges_what_is_given_and_refuses_the_rest() {
        let c = merge(&current(), &json!({"capture_mode": "both"})).unwrap();
        assert_eq!((c.mode, c.pairs.len()), (CaptureMode::Both, 1));
        let c = merge(
            &current(),
            &json!({"pairs": ["10.9.0.2=10.9.0.3", "10.9.0.4=10.9.0.5"]}),
        )
        .unwrap();
        assert_eq!(c.pairs.len(), 2);
        let e = |v: Value| merge(&current(), &v).unwrap_err();
        assert!(e(json!({"pairs": "10.9.0.2=10.9.0.3"})).contains("list"));
        assert!(e(json!({"pairs": ["10.9.0.2=10.9.0.2"]})).contains("more than once"));
        assert!(e(json!({"mode": "both"})).contains("unknown field"));
        assert!(e(json!({"inline": "10.9.1.1/24"})).contains("subnet"));
        assert!(e(json!([1])).contains("JSON object"));
    }
}
