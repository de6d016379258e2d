//! The inline forwarder as the JSON API, the status and the metrics show it: settings,
//! neighbours and counters in one shape, and the checked change a `PUT` asks for.

use serde_json::{Value, json};
use wirecap_forward::DropReason;
use wirecap_forward::afpacket::{ForwarderHandle, Settings, Snapshot};
use wirecap_forward::cpu::CpuChoice;
use wirecap_forward::wire::mac_to_string;

use crate::config::{ForwardChoice, ForwardConfig};

/// Starts the inline forwarder on `interface` with `f`, and logs what it set up (the
/// offloads it turned off among them).
pub fn start(
    interface: &str,
    f: &ForwardChoice,
) -> Result<ForwarderHandle, wirecap_forward::afpacket::OpenError> {
    let h = ForwarderHandle::start(Settings {
        interface: interface.to_owned(),
        inline: f.inline,
        pairs: f.pairs.clone(),
        mode: f.mode,
        cpu: f.cpu,
    })?;
    let snap = h.snapshot();
    let pairs: Vec<String> = f.pairs.iter().map(ToString::to_string).collect();
    tracing::info!(
        %interface,
        capture_ip = %f.inline,
        pairs = %pairs.join(" "),
        capture_mode = %f.mode,
        mac = %mac_to_string(&snap.mac),
        mtu = snap.mtu,
        qdisc_bypass = snap.qdisc_bypass,
        "inline forwarder started"
    );
    // Published by the forwarder thread once it has its CPU; a moment later is enough
    // for the log, and the status always shows it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    match h.snapshot() {
        Snapshot { cpu: Some(cpu), .. } => {
            tracing::info!(%interface, cpu, setting = %f.cpu, "the forwarder has CPU {cpu} to itself; wirecap's other threads run on the other CPUs")
        }
        Snapshot {
            cpu_error: Some(e), ..
        } => tracing::warn!(%interface, "{e}; forwarding without a CPU of its own"),
        _ => {
            tracing::info!(%interface, setting = %f.cpu, "the forwarder shares the CPUs with wirecap's other threads")
        }
    }
    // GRO/GSO super-packets would exceed the MTU on the way out: say what was done.
    tracing::info!(%interface, "offloads: {}", snap.offloads.join(", "));
    Ok(h)
}

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
        // The CPU the forwarder has to itself (null: none), and the setting that chose it.
        "cpu": s.cpu,
        "cpu_setting": set.cpu.to_string(),
        "cpu_error": s.cpu_error,
        "neighbours": neighbours,
        "counters": counters_json(&s, f.tap().dropped()),
    })
}

/// `[forward]` as the running forwarder has it (`enabled` left out: it runs).
pub fn config_of(s: &Settings) -> ForwardConfig {
    ForwardConfig {
        inline: Some(s.inline.to_string()),
        pairs: s.pairs.iter().map(ToString::to_string).collect(),
        capture_mode: Some(s.mode.as_str().to_owned()),
        enabled: None,
        cpu: (s.cpu != CpuChoice::default()).then(|| s.cpu.to_string()),
    }
}

/// What forwarding is when it does not run: off, with the settings kept for turning it
/// on (`inline`, `pairs`, `capture_mode` from `[forward]`, when saved).
pub fn off_json(saved: &ForwardConfig) -> Value {
    json!({
        "enabled": false,
        "inline": saved.inline,
        "pairs": saved.pairs,
        "capture_mode": saved.capture_mode.clone().unwrap_or_else(|| "inline".into()),
        "cpu_setting": saved.cpu.clone().unwrap_or_else(|| "auto".into()),
    })
}

/// The change a `PUT /api/v1/forward` body asks for, over `current` (the running
/// forwarder's settings, else the saved `[forward]`): any of `enabled` (turn it on or
/// off), `inline`, `pairs` (a list of `A=B`) and `capture_mode`. Answers the wanted state
/// (`None`: as it is) and the settings, checked as the file would check them.
pub fn merge(
    current: &ForwardConfig,
    body: &Value,
) -> Result<(Option<bool>, ForwardConfig), String> {
    let obj = body.as_object().ok_or(
        "body must be a JSON object: {\"enabled\": …, \"inline\": …, \"pairs\": […], \"capture_mode\": …}",
    )?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "enabled" | "inline" | "pairs" | "capture_mode") {
            return Err(format!(
                "unknown field {k:?}: give enabled, inline, pairs or capture_mode"
            ));
        }
    }
    let enabled = match obj.get("enabled") {
        None => None,
        Some(v) => Some(v.as_bool().ok_or("enabled must be true or false")?),
    };
    let mut next = current.clone();
    next.enabled = None;
    if let Some(v) = obj.get("inline") {
        let s = v
            .as_str()
            .ok_or("inline must be a string ADDR/PREFIX")?
            .trim();
        next.inline = (!s.is_empty()).then(|| s.to_owned());
    }
    if let Some(v) = obj.get("pairs") {
        next.pairs = v
            .as_array()
            .ok_or("pairs must be a list of \"A=B\" strings")?
            .iter()
            .map(|p| {
                p.as_str()
                    .map(|s| s.trim().to_owned())
                    .ok_or("pairs must be a list of \"A=B\" strings")
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = obj.get("capture_mode") {
        next.capture_mode = Some(
            v.as_str()
                .ok_or("capture_mode must be a string")?
                .to_owned(),
        );
    }
    next.saved()
        .map_err(|e| e.trim_start_matches("[forward]: ").to_owned())?;
    if enabled == Some(true) && next.inline.is_none() {
        return Err("give the capture IP (inline = ADDR/PREFIX) to turn forwarding on".into());
    }
    Ok((enabled, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> ForwardConfig {
        config_of(&Settings {
            interface: "eth1".into(),
            inline: "10.9.0.1/24".parse().unwrap(),
            pairs: vec!["10.9.0.2=10.9.0.3".parse().unwrap()],
            mode: wirecap_forward::CaptureMode::Inline,
            cpu: CpuChoice::Auto,
        })
    }

    #[test]
    fn merges_what_is_given_and_refuses_the_rest() {
        let (on, c) = merge(&current(), &json!({"capture_mode": "both"})).unwrap();
        assert_eq!(on, None);
        assert_eq!(c.capture_mode.as_deref(), Some("both"));
        assert_eq!(c.pairs.len(), 1);
        let (_, c) = merge(
            &current(),
            &json!({"pairs": ["10.9.0.2=10.9.0.3", "10.9.0.4=10.9.0.5"]}),
        )
        .unwrap();
        assert_eq!(c.pairs.len(), 2);
        let (on, c) = merge(&current(), &json!({"enabled": false})).unwrap();
        assert_eq!(
            (on, c.inline.as_deref()),
            (Some(false), Some("10.9.0.1/24"))
        );
        let e = |v: Value| merge(&current(), &v).unwrap_err();
        assert!(e(json!({"pairs": "10.9.0.2=10.9.0.3"})).contains("list"));
        assert!(e(json!({"pairs": ["10.9.0.2=10.9.0.2"]})).contains("more than once"));
        assert!(e(json!({"mode": "both"})).contains("unknown field"));
        assert!(e(json!({"inline": "10.9.1.1/24"})).contains("subnet"));
        assert!(e(json!({"enabled": "yes"})).contains("true or false"));
        assert!(e(json!([1])).contains("JSON object"));
        // From nothing saved: on needs a capture IP.
        let none = ForwardConfig::default();
        assert!(
            merge(&none, &json!({"enabled": true}))
                .unwrap_err()
                .contains("capture IP")
        );
        let (on, c) = merge(
            &none,
            &json!({"enabled": true, "inline": "10.9.0.1/24", "pairs": ["10.9.0.2=10.9.0.3"]}),
        )
        .unwrap();
        assert_eq!(on, Some(true));
        assert!(c.saved().unwrap().is_some());
    }
}
