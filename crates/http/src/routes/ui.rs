//! JSON routes shaped for the browser UI: pages of long lists, compact chart columns,
//! filter checks with positions, disk and retention figures.
//!
//! The general JSON API (`/api/v1/streams`, …, in [`crate::routes::streams`]) answers whole lists,
//! which is right for scripts; a browser on an old laptop wants one page of 100 rows out
//! of 1,000 streams or 3,600 splits, so these routes take `offset` and `limit` and
//! answer compact JSON. Downloads, capture start/stop and stream deletion use the general
//! API's routes; nothing here changes packets.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/ui/streams?offset&limit&q` | `{total, offset, limit, streams: [...]}`, newest first, `q` = name contains |
//! | `GET /api/v1/ui/streams/{name}` | the stream and the names of its views |
//! | `GET /api/v1/ui/streams/{name}/views` | per view, its split count |
//! | `GET /api/v1/ui/streams/{name}/views/{view}/splits?offset&limit` | one page of splits with download links |
//! | `GET /api/v1/ui/history?seconds=N` | `{interval_s, t, bps, pps, drops}` columns, at most 360 points |
//! | `GET /api/v1/ui/system` | hostname, version, disk total/free, oldest packet on disk |
//! | `GET /api/v1/ui/interfaces` | every interface with its counters, and which one captures |
//! | `PUT /api/v1/ui/capture/interface` | `{interface}`: writes it to `wirecap.toml` for the next start |
//! | `POST /api/v1/ui/streams/{name}/analysis` | `{filter?, bpf?, start?, stop?}` → `wirecap_query::Analysis` (protocols, talkers, ports, flows, series) |
//! | `POST /api/v1/ui/filter/check` | `{language: appliance\|bpf, text}` → `{ok}` or `{ok: false, error: {kind, message, offset, column}}` |

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wirecap_filter::LinkType;
use wirecap_store::{Listed, StreamInfo, View, now_ns, validate_stored_name};

use wirecap_appliance::catalog::Catalog;
use wirecap_appliance::config::{self, CONFIG_FILE, FileConfig, SourceChoice};
use wirecap_appliance::json;
use wirecap_appliance::os::disk_space;
use wirecap_appliance::retention::RetentionStatus;

use crate::error::ApiError;
use crate::query::Query;
use crate::respond::{blocking_api as blocking, json_no_store, require_json};
use crate::state::Shared;

/// Rows in a page when the request does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rows one page may ask for.
pub const MAX_LIMIT: usize = 1000;
/// The most points a chart gets.
pub const MAX_POINTS: usize = 360;

fn compact(v: &Value) -> Response {
    json_no_store(StatusCode::OK, v)
}

/// `offset` and `limit` of a page request, checked.
pub fn page(q: &Query) -> Result<(usize, usize), ApiError> {
    let num = |k: &str, d: usize| -> Result<usize, ApiError> {
        q.get(k).filter(|s| !s.is_empty()).map_or(Ok(d), |s| {
            s.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("{k} must be a whole number")).api())
        })
    };
    Ok((
        num("offset", 0)?,
        num("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT),
    ))
}

fn name_of(raw: &str) -> Result<String, ApiError> {
    validate_stored_name(raw).map_err(|e| ApiError::bad_request(e.to_string()).api())?;
    Ok(raw.to_owned())
}

fn stream_row(s: &StreamInfo) -> Value {
    let n = &s.meta.name;
    json!({
        "name": n,
        "state": s.meta.state,
        "source": s.meta.source,
        "created_ns": s.meta.created_ns,
        "packets": s.packets,
        "bytes": s.bytes,
        "first_ns": s.first_ts,
        "last_ns": s.last_ts,
        "download": format!("/api/v1/streams/{n}/pcap"),
    })
}

/// Streams whose name contains `q` (case-insensitive), newest first, then the damaged
/// ones (state `damaged`, `damage` says why: the Files page shows them, never hides them),
/// one page.
pub fn page_of_streams(list: Vec<Listed>, q: &str, offset: usize, limit: usize) -> Value {
    let q = q.to_lowercase();
    let (mut ok, mut bad): (Vec<StreamInfo>, Vec<(String, String)>) = (Vec::new(), Vec::new());
    for e in list {
        if !q.is_empty() && !e.name().to_lowercase().contains(&q) {
            continue;
        }
        match e {
            Listed::Stream(i) => ok.push(i),
            Listed::Damaged { name, why } => bad.push((name, why)),
        }
    }
    ok.sort_by(|a, b| {
        b.meta
            .created_ns
            .cmp(&a.meta.created_ns)
            .then_with(|| a.meta.name.cmp(&b.meta.name))
    });
    let total = ok.len() + bad.len();
    let rows: Vec<Value> = ok
        .iter()
        .map(Ok)
        .chain(bad.iter().map(Err))
        .skip(offset)
        .take(limit)
        .map(|r| match r {
            Ok(i) => stream_row(i),
            Err((name, why)) => json!({"name": name, "state": "damaged", "damage": why}),
        })
        .collect();
    json!({"total": total, "offset": offset.min(total), "limit": limit, "streams": rows})
}

pub(crate) async fn streams(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref()).map_err(ApiError::api)?;
    let (offset, limit) = page(&q)?;
    let needle = q.get("q").unwrap_or("").to_owned();
    let store = app.engine.store().clone();
    let v = blocking(move || {
        let list = Catalog::of(store.dir()).listing(&store)?;
        Ok(page_of_streams(list, &needle, offset, limit))
    })
    .await?;
    Ok(compact(&v))
}

pub(crate) async fn stream(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let store = app.engine.store().clone();
    let v = blocking(move || {
        let info = store.open_stream(&name)?.info()?;
        let mut row = stream_row(&info);
        let views: Vec<String> = std::iter::once(View::Single)
            .chain(View::splits())
            .map(|v| v.to_string())
            .collect();
        row["views"] = json!(views);
        row["link_type"] = json!(info.meta.link_type);
        row["disk_bytes"] = json!(info.disk_bytes);
        Ok(row)
    })
    .await?;
    Ok(compact(&v))
}

pub(crate) async fn views(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let store = app.engine.store().clone();
    let v = blocking(move || {
        let r = store.open_stream(&name)?;
        let mut views = vec![json!({"view": "single", "splits": u64::from(r.packets() > 0)})];
        for v in View::splits() {
            views.push(json!({"view": v.to_string(), "splits": r.splits(v)?.len()}));
        }
        Ok(json!({ "views": views }))
    })
    .await?;
    Ok(compact(&v))
}

pub(crate) async fn splits(
    State(app): State<Shared>,
    Path((name, view)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref()).map_err(ApiError::api)?;
    let (offset, limit) = page(&q)?;
    let name = name_of(&name)?;
    let view = View::parse(&view).map_err(|e| ApiError::from(e).api())?;
    let store = app.engine.store().clone();
    let v = blocking(move || {
        let all = store.open_stream(&name)?.splits(view)?;
        let rows: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|s| {
                json!({
                    "index": s.index,
                    "name": s.name,
                    "start_ns": s.start_ts,
                    "stop_ns": s.stop_ts,
                    "packets": s.range.packets(),
                    "bytes": s.range.pcap_bytes(),
                    "download": format!("/api/v1/streams/{name}/pcap?view={view}&split={}", s.index),
                })
            })
            .collect();
        Ok(json!({"total": all.len(), "offset": offset.min(all.len()), "limit": limit, "splits": rows}))
    })
    .await?;
    Ok(compact(&v))
}

/// Per-second `(ts, bytes, packets, drops)` into at most [`MAX_POINTS`] averaged points
/// covering the last `seconds` up to `now` (seconds without a sample count as zero).
pub fn history_columns(hist: &[(u64, u64, u64, u64)], seconds: u64, now: u64) -> Value {
    let seconds = seconds.clamp(10, 24 * 3600);
    let step = seconds.div_ceil(MAX_POINTS as u64).max(1);
    // Buckets end at the last whole second, aligned to `step`.
    let end = (now / step) * step;
    let start = end.saturating_sub(seconds);
    let n = ((end - start) / step) as usize;
    let (mut t, mut bytes, mut packets, mut drops) = (
        Vec::with_capacity(n),
        vec![0u64; n],
        vec![0u64; n],
        vec![0u64; n],
    );
    for i in 0..n {
        t.push(start + i as u64 * step);
    }
    for &(ts, b, p, d) in hist {
        if ts < start || ts >= end {
            continue;
        }
        let i = ((ts - start) / step) as usize;
        bytes[i] += b;
        packets[i] += p;
        drops[i] += d;
    }
    // Before the first sample the server was not running: no value (a gap), not zero.
    let first = hist.iter().map(|h| h.0).min().unwrap_or(u64::MAX);
    let known = |i: usize| t[i] + step > first;
    let per_sec = |i: usize, v: u64, mul: u64| {
        known(i).then(|| ((v * mul) as f64 / step as f64).round() as u64)
    };
    json!({
        "interval_s": step,
        "t": t,
        "bps": bytes.iter().enumerate().map(|(i, &b)| per_sec(i, b, 8)).collect::<Vec<_>>(),
        "pps": packets.iter().enumerate().map(|(i, &p)| per_sec(i, p, 1)).collect::<Vec<_>>(),
        "drops": drops.iter().enumerate().map(|(i, &d)| known(i).then_some(d)).collect::<Vec<_>>(),
    })
}

pub(crate) async fn history(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref()).map_err(ApiError::api)?;
    let seconds = q
        .get("seconds")
        .map_or(Ok(300), str::parse::<u64>)
        .map_err(|_| ApiError::bad_request("seconds must be a whole number").api())?;
    let hist: Vec<_> = app
        .engine
        .counters()
        .history()
        .iter()
        .map(|h| (h.ts, h.bytes, h.packets, h.drops))
        .collect();
    Ok(compact(&history_columns(
        &hist,
        seconds,
        now_ns() / 1_000_000_000,
    )))
}

pub(crate) async fn system(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    let v = blocking(move || {
        let list = Catalog::of(a.engine.store().dir()).list(a.engine.store())?;
        let oldest = list
            .iter()
            .filter_map(|s| s.first_ts.map(|t| (t, &s.meta.name)))
            .min();
        let store_bytes: u64 = list.iter().map(|s| s.disk_bytes).sum();
        let disk = disk_space(a.engine.store().dir())
            .map(|(total, free)| json!({"total_bytes": total, "free_bytes": free}));
        Ok(json!({
            "hostname": a.hostname(),
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": a.engine.uptime().as_secs(),
            "source": a.engine.describe_source(),
            "disk": disk,
            "streams": list.len(),
            "store_bytes": store_bytes,
            "oldest_packet_ns": oldest.map(|o| o.0),
            "oldest_stream": oldest.map(|o| o.1.clone()),
            "retention": retention_text(&a.ops.retention.status()),
            "retention_status": a.ops.retention.status(),
        }))
    })
    .await?;
    Ok(compact(&v))
}

/// One line for the dashboard's retention panel.
fn retention_text(r: &RetentionStatus) -> String {
    let mut t = match r.budget_bytes {
        Some(b) => format!(
            "Disk budget {b} bytes: {} bytes used ({:.1}%); the oldest data is deleted above {} bytes, down to {} bytes.",
            r.used_bytes,
            r.used_bytes as f64 * 100.0 / b.max(1) as f64,
            r.high_bytes.unwrap_or(b),
            r.low_bytes.unwrap_or(b)
        ),
        None => "No disk budget: nothing is deleted automatically (set [retention] budget, or `wirecap retention --budget`).".to_owned(),
    };
    if let Some(d) = &r.last_deletion {
        t.push_str(&format!(
            " Last deletion {}: {} bytes of {} ({}).",
            d.at,
            d.bytes,
            d.stream,
            if d.what == "stream" {
                "whole stream"
            } else {
                "oldest segments"
            }
        ));
    }
    if let Some(w) = &r.warning {
        t.push_str(&format!(" WARNING: {w}"));
    }
    t
}

fn capture_interface(app: &Shared) -> Option<String> {
    match app.engine.source() {
        SourceChoice::Interface(i) => Some(i.clone()),
        _ => None,
    }
}

pub(crate) async fn interfaces(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    let v = blocking(move || {
        let list = wirecap_capture::link::Sysfs::default()
            .list()
            .map_err(|e| ApiError::internal(format!("cannot read interfaces: {e}")))?;
        let configured = FileConfig::load(&a.settings.data)
            .ok()
            .and_then(|c| c.capture.interface);
        let current = capture_interface(&a);
        let rows: Vec<Value> = list
            .iter()
            .map(|l| {
                let mut v = json::link_json(l);
                v["link_up"] = json!(l.up);
                v["capture"] = json!(current.as_deref() == Some(l.name.as_str()));
                v
            })
            .collect();
        Ok(json!({
            "source": a.engine.describe_source(),
            "capture_interface": current,
            "configured_interface": configured,
            "interfaces": rows,
        }))
    })
    .await?;
    Ok(compact(&v))
}

fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    require_json(headers)?;
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")).api())
}

pub(crate) async fn set_interface(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = json_body(&headers, &body)?;
    let name = v
        .get("interface")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("body must be {\"interface\": \"eth1\"}").api())?
        .to_owned();
    let a = app.clone();
    let msg = blocking(move || {
        let known = wirecap_capture::link::Sysfs::default()
            .interfaces()
            .map_err(|e| ApiError::internal(format!("cannot read interfaces: {e}")))?;
        if !known.contains(&name) {
            return Err(ApiError::bad_request(format!("no interface named {}", wirecap_appliance::short(&name))));
        }
        config::write_capture_interface(&a.settings.data, &name).map_err(ApiError::internal)?;
        let now = capture_interface(&a);
        Ok(if now.as_deref() == Some(name.as_str()) {
            format!("{name} is the capture interface.")
        } else {
            format!(
                "Saved: wirecap captures from {name} after the next restart of `wirecap serve` \
                 (now: {}). A --interface, --replay or --synthetic flag on the command line still wins.",
                a.engine.describe_source()
            )
        })
    })
    .await?;
    tracing::info!("capture interface set in {CONFIG_FILE}");
    Ok(compact(&json!({"message": msg})))
}

/// Compiles `text` and reports where it is wrong: `offset` counts characters (what a
/// text field's caret counts; for tcpdump syntax, the first token after which the
/// expression cannot be completed), `byte_offset` bytes.
pub fn check(language: &str, text: &str, now_ns: u64) -> Result<Value, String> {
    let (filter, bpf) = match language {
        "appliance" => (Some(text), None),
        "bpf" | "tcpdump" => (None, Some(text)),
        other => {
            return Err(format!(
                "language must be appliance or bpf, not {}",
                wirecap_appliance::short(other)
            ));
        }
    };
    Ok(
        match wirecap_query::compile(filter, bpf, LinkType(1), wirecap_query::today_utc(now_ns)) {
            Ok(_) => json!({"ok": true}),
            Err(e) => {
                json!({"ok": false, "error": {
                    "kind": format!("{:?}", e.error.kind()),
                    "message": e.message(),
                    "offset": e.column().map(|c| c - 1),
                    "byte_offset": e.offset,
                    "text": e.to_string(),
                }})
            }
        },
    )
}

/// Rows the browser gets: enough for its tables, small on the wire.
fn analyze_options() -> wirecap_query::AnalyzeOptions {
    wirecap_query::AnalyzeOptions {
        top: 20,
        flows_out: 100,
        max_series: 600,
        ..Default::default()
    }
}

pub(crate) async fn analysis(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let v = json_body(&headers, &body)?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let (filter, bpf) = (field("filter"), field("bpf"));
    let bound = |k: &str| -> Result<Option<u64>, ApiError> {
        field(k)
            .map(|s| wirecap_store::timefmt::parse_time(&s))
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("{k}: {e}")).api())
    };
    let (start, stop) = (bound("start")?, bound("stop")?);
    let store = app.engine.store().clone();
    let out = blocking(move || {
        let started = std::time::Instant::now();
        let reader = store.open_stream(&name)?;
        let range = reader.time_range(start, stop)?;
        let f = wirecap_query::compile(
            filter.as_deref(),
            bpf.as_deref(),
            reader.link_type(),
            wirecap_query::today_utc(now_ns()),
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let a = wirecap_query::analyze(&reader, range, f.as_ref(), &analyze_options()).map_err(
            |e| match e {
                wirecap_query::Error::Store(e) => ApiError::from(e),
                other => ApiError::internal(other.to_string()),
            },
        )?;
        let mut v = serde_json::to_value(&a).map_err(|e| ApiError::internal(e.to_string()))?;
        v["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
        Ok(v)
    })
    .await?;
    Ok(compact(&out))
}

pub(crate) async fn check_filter(headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    if body.len() > 16 * 1024 {
        return Err(
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "a filter of at most 16 kB").api(),
        );
    }
    let v = json_body(&headers, &body)?;
    let language = v
        .get("language")
        .and_then(Value::as_str)
        .unwrap_or("appliance")
        .to_owned();
    let text = v
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let out =
        blocking(move || check(&language, &text, now_ns()).map_err(ApiError::bad_request)).await?;
    Ok(compact(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bucketed_and_padded() {
        // 3 samples in the last 10 s, 1 s buckets.
        let h = [(95, 1000, 10, 0), (97, 2000, 20, 1), (50, 9, 9, 9)];
        let v = history_columns(&h, 10, 100);
        assert_eq!(v["interval_s"], 1);
        assert_eq!(v["t"].as_array().unwrap().len(), 10);
        assert_eq!(v["t"][0], 90);
        assert_eq!(v["bps"][5], 8000);
        assert_eq!(v["pps"][7], 20);
        assert_eq!(v["drops"][7], 1);
        assert_eq!(v["pps"][0], 0);
        // Before the server's first sample: gaps, not zeros.
        let v = history_columns(&[(95, 1000, 10, 0)], 10, 100);
        assert_eq!(v["pps"][4], Value::Null);
        assert_eq!(v["pps"][5], 10);
        assert_eq!(v["pps"][6], 0);
        // An hour becomes 360 points of 10 s, averaged.
        let h: Vec<_> = (0..3600).map(|i| (10_000 + i, 125, 1, 0)).collect();
        let v = history_columns(&h, 3600, 13_600);
        assert_eq!(v["interval_s"], 10);
        assert_eq!(v["t"].as_array().unwrap().len(), 360);
        assert_eq!(v["bps"][100], 1000);
        assert_eq!(v["pps"][100], 1);
    }

    #[test]
    fn filter_check_points_at_the_mistake() {
        let ok = check("appliance", "a: ipv4.proto == tcp;\na", 0).unwrap();
        assert_eq!(ok["ok"], true);
        let bad = check("appliance", "a: tcp.prot == 80;\na", 0).unwrap();
        assert_eq!(bad["ok"], false);
        assert_eq!(bad["error"]["offset"], 3, "{bad}");
        let bad = check("bpf", "tcp prt 80", 0).unwrap();
        assert_eq!(bad["ok"], false);
        assert!(
            check("bpf", "tcp port 80", 0).unwrap()["ok"]
                .as_bool()
                .unwrap()
        );
        assert!(check("cobol", "x", 0).is_err());
    }

    #[test]
    fn the_openapi_document_lists_the_ui_routes() {
        let doc = crate::openapi::document();
        for p in [
            "/api/v1/session",
            "/api/v1/ui/streams",
            "/api/v1/ui/filter/check",
            "/api/v1/status",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} missing");
        }
    }
}
