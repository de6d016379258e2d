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
//! | `PUT /api/v1/ui/capture/interface` | `{interface}`: captures from it at once (a running capture is sealed and continues on it) and writes it to `wirecap.toml` |
//! | `POST /api/v1/ui/streams/{name}/analysis` | `{filter?, bpf?, start?, stop?}` → `wirecap_query::Analysis` (protocols, talkers, ports, flows, series) |
//! | `POST /api/v1/ui/streams/{name}/analyses` | the same, in the background: `{id, state, examined, total, fraction}` (202) |
//! | `GET /api/v1/ui/analyses/{id}` | its progress, then its result (`state`: running, done, cancelled, failed) |
//! | `DELETE /api/v1/ui/analyses/{id}` | cancels it |
//! | `POST /api/v1/ui/filter/check` | `{language: appliance\|bpf, text}` → `{ok}` or `{ok: false, error: {kind, message, offset, column}}` |

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use wirecap_filter::LinkType;
use wirecap_store::{Listed, StreamInfo, View, now_ns, validate_stored_name};

use wirecap_appliance::api::{Damaged, Link};
use wirecap_appliance::catalog::Catalog;
use wirecap_appliance::config::{self, CONFIG_FILE, FileConfig};
use wirecap_appliance::os::disk_space;
use wirecap_appliance::retention::RetentionStatus;

use crate::body::Json;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::query::Query;
use crate::respond::{blocking, json_no_store};
use crate::state::Shared;

/// Rows in a page when the request does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rows one page may ask for.
pub const MAX_LIMIT: usize = 1000;
/// The most points a chart gets.
pub const MAX_POINTS: usize = 360;

fn compact(v: &impl Serialize) -> Response {
    json_no_store(StatusCode::OK, v)
}

/// `offset` and `limit` of a page request, checked.
pub fn page(q: &Query) -> Result<(usize, usize), ApiError> {
    let num = |k: &str, d: usize| -> Result<usize, ApiError> {
        q.get(k).filter(|s| !s.is_empty()).map_or(Ok(d), |s| {
            s.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("{k} must be a whole number")))
        })
    };
    Ok((
        num("offset", 0)?,
        num("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT),
    ))
}

fn name_of(raw: &str) -> Result<String, ApiError> {
    validate_stored_name(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(raw.to_owned())
}

/// A stream as the UI's lists show it; one stream's page adds the `Option`s.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiStream {
    pub bytes: u64,
    pub created_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    pub download: String,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_type: Option<u16>,
    pub name: String,
    pub packets: u64,
    pub source: String,
    /// `open`, `sealed` or `recovered`.
    #[schema(value_type = String)]
    pub state: wirecap_store::StreamState,
    /// The names of its views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<Vec<String>>,
    /// The probe that captured it, when an archive is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
}

/// A row of the UI's stream list: a readable stream or a damaged one.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum UiStreamRow {
    Stream(UiStream),
    Damaged(Damaged),
}

/// One page of streams.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiStreamPage {
    pub limit: usize,
    pub offset: usize,
    pub streams: Vec<UiStreamRow>,
    /// Streams that match, on every page.
    pub total: usize,
}

/// A view and how many splits it has.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiView {
    pub splits: u64,
    pub view: String,
}

/// A stream's views.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiViews {
    pub views: Vec<UiView>,
}

/// A split as the UI lists it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiSplit {
    pub bytes: u64,
    pub download: String,
    pub index: u64,
    pub name: String,
    pub packets: u64,
    pub start_ns: u64,
    pub stop_ns: u64,
}

/// One page of splits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiSplitPage {
    pub limit: usize,
    pub offset: usize,
    pub splits: Vec<UiSplit>,
    pub total: usize,
}

fn stream_row(s: &StreamInfo) -> UiStream {
    let n = &s.meta.name;
    UiStream {
        bytes: s.bytes,
        created_ns: s.meta.created_ns,
        disk_bytes: None,
        download: format!("/api/v1/streams/{n}/pcap"),
        first_ns: s.first_ts,
        last_ns: s.last_ts,
        link_type: None,
        name: n.clone(),
        packets: s.packets,
        source: s.meta.source.clone(),
        state: s.meta.state,
        views: None,
        probe: None,
    }
}

/// Streams whose name contains `q` (case-insensitive), newest first, then the damaged
/// ones (state `damaged`, `damage` says why: the Files page shows them, never hides them),
/// one page.
pub fn page_of_streams(list: Vec<Listed>, q: &str, offset: usize, limit: usize) -> UiStreamPage {
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
    let streams = ok
        .iter()
        .map(|i| UiStreamRow::Stream(stream_row(i)))
        .chain(
            bad.into_iter()
                .map(|(name, why)| UiStreamRow::Damaged(Damaged::new(name, why))),
        )
        .skip(offset)
        .take(limit)
        .collect();
    UiStreamPage {
        limit,
        offset: offset.min(total),
        streams,
        total,
    }
}

#[utoipa::path(get, path = "/api/v1/ui/streams", tag = "ui", params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query), ("q" = Option<String>, Query), ("probe" = Option<String>, Query)), responses((status = 200, body = UiStreamPage), (status = "default", body = ErrorBody)))]
pub(crate) async fn streams(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let (offset, limit) = page(&q)?;
    let needle = q.get("q").unwrap_or("").to_owned();
    let probe = q.get("probe").filter(|p| !p.is_empty()).map(str::to_owned);
    let a = app.clone();
    let v = blocking(move || {
        let store = a.engine.store();
        let mut list = Catalog::of(store.dir()).listing(store)?;
        if let Some(p) = &probe {
            list.retain(|e| {
                wirecap_appliance::api::probe_of(&a.engine, e.name()).as_ref() == Some(p)
            });
        }
        let mut page = page_of_streams(list, &needle, offset, limit);
        for row in &mut page.streams {
            if let UiStreamRow::Stream(s) = row {
                s.probe = wirecap_appliance::api::probe_of(&a.engine, &s.name);
            }
        }
        Ok(page)
    })
    .await?;
    Ok(compact(&v))
}

#[utoipa::path(get, path = "/api/v1/ui/streams/{name}", tag = "ui", params(("name" = String, Path)), responses((status = 200, body = UiStream), (status = "default", body = ErrorBody)))]
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
        row.views = Some(views);
        row.link_type = Some(info.meta.link_type);
        row.disk_bytes = Some(info.disk_bytes);
        Ok(row)
    })
    .await?;
    Ok(compact(&v))
}

#[utoipa::path(get, path = "/api/v1/ui/streams/{name}/views", tag = "ui", params(("name" = String, Path)), responses((status = 200, body = UiViews), (status = "default", body = ErrorBody)))]
pub(crate) async fn views(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    let store = app.engine.store().clone();
    let v = blocking(move || {
        let r = store.open_stream(&name)?;
        let mut views = vec![UiView {
            splits: u64::from(r.packets() > 0),
            view: "single".into(),
        }];
        for v in View::splits() {
            views.push(UiView {
                splits: r.splits(v)?.len() as u64,
                view: v.to_string(),
            });
        }
        Ok(UiViews { views })
    })
    .await?;
    Ok(compact(&v))
}

#[utoipa::path(get, path = "/api/v1/ui/streams/{name}/views/{view}/splits", tag = "ui", params(("name" = String, Path), ("view" = String, Path), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, body = UiSplitPage), (status = "default", body = ErrorBody)))]
pub(crate) async fn splits(
    State(app): State<Shared>,
    Path((name, view)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let (offset, limit) = page(&q)?;
    let name = name_of(&name)?;
    let view = View::parse(&view)?;
    let store = app.engine.store().clone();
    let v = blocking(move || {
        let all = store.open_stream(&name)?.splits(view)?;
        let splits = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|s| UiSplit {
                bytes: s.range.pcap_bytes(),
                download: format!("/api/v1/streams/{name}/pcap?view={view}&split={}", s.index),
                index: s.index,
                name: s.name.clone(),
                packets: s.range.packets(),
                start_ns: s.start_ts,
                stop_ns: s.stop_ts,
            })
            .collect();
        Ok(UiSplitPage {
            limit,
            offset: offset.min(all.len()),
            splits,
            total: all.len(),
        })
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

#[utoipa::path(get, path = "/api/v1/ui/history", tag = "ui", params(("seconds" = Option<u64>, Query)), responses((status = 200, body = serde_json::Value, description = "`{interval_s, t, bps, pps, drops}` columns"), (status = "default", body = ErrorBody)))]
pub(crate) async fn history(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let seconds = q
        .get("seconds")
        .map_or(Ok(300), str::parse::<u64>)
        .map_err(|_| ApiError::bad_request("seconds must be a whole number"))?;
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

/// The appliance at a glance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiSystem {
    /// The data directory's file system, when it can be read.
    pub disk: Option<Disk>,
    pub hostname: String,
    /// The oldest packet on disk (the retention horizon).
    pub oldest_packet_ns: Option<u64>,
    pub oldest_stream: Option<String>,
    /// Retention in a sentence.
    pub retention: String,
    #[schema(value_type = Object)]
    pub retention_status: Value,
    pub source: String,
    pub store_bytes: u64,
    /// How many streams.
    pub streams: usize,
    pub uptime_s: u64,
    pub version: String,
}

/// A file system's size.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// The interfaces and which one captures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiInterfaces {
    /// The interface capturing now, if the source is one.
    pub capture_interface: Option<String>,
    /// `[capture] interface` in `wirecap.toml` (the next start's).
    pub configured_interface: Option<String>,
    pub interfaces: Vec<UiInterface>,
    pub source: String,
}

/// An interface, its counters, and whether it is the capture interface.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UiInterface {
    pub capture: bool,
    #[serde(flatten)]
    pub link: Link,
    /// `up` again, under the name the UI reads.
    pub link_up: bool,
}

/// What a change did, for a person.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub message: String,
}

#[utoipa::path(get, path = "/api/v1/ui/system", tag = "ui", responses((status = 200, body = UiSystem), (status = "default", body = ErrorBody)))]
pub(crate) async fn system(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    let v = blocking(move || {
        let list = Catalog::of(a.engine.store().dir()).list(a.engine.store())?;
        let oldest = list
            .iter()
            .filter_map(|s| s.first_ts.map(|t| (t, &s.meta.name)))
            .min();
        let store_bytes: u64 = list.iter().map(|s| s.disk_bytes).sum();
        let disk = disk_space(a.engine.store().dir()).map(|(total, free)| Disk {
            free_bytes: free,
            total_bytes: total,
        });
        let retention = a.ops.retention.status();
        Ok(UiSystem {
            disk,
            hostname: a.hostname(),
            oldest_packet_ns: oldest.map(|o| o.0),
            oldest_stream: oldest.map(|o| o.1.clone()),
            retention: retention_text(&retention),
            retention_status: serde_json::to_value(&retention).unwrap_or_default(),
            source: a.engine.describe_source(),
            store_bytes,
            streams: list.len(),
            uptime_s: a.engine.uptime().as_secs(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
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
    app.engine.interface()
}

#[utoipa::path(get, path = "/api/v1/ui/interfaces", tag = "ui", responses((status = 200, body = UiInterfaces), (status = "default", body = ErrorBody)))]
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
        let interfaces = list
            .iter()
            .map(|l| UiInterface {
                capture: current.as_deref() == Some(l.name.as_str()),
                link: Link::of(l),
                link_up: l.up,
            })
            .collect();
        Ok(UiInterfaces {
            capture_interface: current,
            configured_interface: configured,
            interfaces,
            source: a.engine.describe_source(),
        })
    })
    .await?;
    Ok(compact(&v))
}

/// `PUT /api/v1/ui/capture/interface`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct InterfaceChoice {
    /// The interface to capture from, from now on.
    pub interface: String,
}

/// `POST /api/v1/ui/streams/{name}/analysis`: every field optional (blank is absent).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct AnalysisRequest {
    /// A filter in the appliance's language.
    pub filter: Option<String>,
    /// A filter in tcpdump syntax (ANDed with `filter`).
    pub bpf: Option<String>,
    /// The first time to look at (RFC 3339 or the store's forms).
    pub start: Option<String>,
    pub stop: Option<String>,
}

/// `POST /api/v1/ui/filter/check`.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct FilterCheck {
    /// `appliance` (the default), `bpf` or `tcpdump`.
    pub language: Option<String>,
    pub text: Option<String>,
}

/// The largest filter text checked.
const MAX_FILTER: usize = 16 * 1024;

#[utoipa::path(put, path = "/api/v1/ui/capture/interface", tag = "ui", request_body = InterfaceChoice, responses((status = 200, body = Message), (status = "default", body = ErrorBody)))]
pub(crate) async fn set_interface(
    State(app): State<Shared>,
    Json(InterfaceChoice { interface: name }): Json<InterfaceChoice>,
) -> Result<Response, ApiError> {
    let a = app.clone();
    let msg = blocking(move || {
        let known = wirecap_capture::link::Sysfs::default()
            .interfaces()
            .map_err(|e| ApiError::internal(format!("cannot read interfaces: {e}")))?;
        if !known.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "no interface named {}",
                wirecap_appliance::short(&name)
            )));
        }
        // Live first: a refused switch (forwarding on another interface) changes nothing.
        let restarted = a.engine.switch_interface(&name)?;
        config::write_capture_interface(&a.settings.data, &name).map_err(ApiError::internal)?;
        Ok(match restarted.and_then(|i| i.stored) {
            Some(r) => format!(
                "Capturing from {name} now: the running capture was sealed and continues as {r}."
            ),
            None => format!("Capturing from {name} now (saved in {CONFIG_FILE})."),
        })
    })
    .await?;
    tracing::info!("capture interface set in {CONFIG_FILE}");
    Ok(compact(&Message { message: msg }))
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

/// The checked request of an analysis: stream, filters, time bounds.
#[derive(Clone)]
struct AnalysisQuery {
    name: String,
    filter: Option<String>,
    bpf: Option<String>,
    start: Option<u64>,
    stop: Option<u64>,
}

impl AnalysisQuery {
    fn of(name: &str, v: AnalysisRequest) -> Result<Self, ApiError> {
        let name = name_of(name)?;
        let given = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let bound = |k: &str, s: Option<String>| -> Result<Option<u64>, ApiError> {
            given(s)
                .map(|s| wirecap_store::timefmt::parse_time(&s))
                .transpose()
                .map_err(|e| ApiError::field(k, format!("{k}: {e}")))
        };
        Ok(Self {
            name,
            filter: given(v.filter),
            bpf: given(v.bpf),
            start: bound("start", v.start)?,
            stop: bound("stop", v.stop)?,
        })
    }

    /// Opens the stream and compiles the filters (blocking): the mistakes a request can
    /// make, found before any work.
    fn open(
        &self,
        store: &wirecap_store::Store,
    ) -> Result<(wirecap_store::StreamReader, Option<wirecap_query::Filter>), ApiError> {
        let reader = store.open_stream(&self.name)?;
        let f = wirecap_query::compile(
            self.filter.as_deref(),
            self.bpf.as_deref(),
            reader.link_type(),
            wirecap_query::today_utc(now_ns()),
        )
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((reader, f))
    }

    /// Runs the analysis (blocking), reporting to `progress`.
    fn run(
        &self,
        store: &wirecap_store::Store,
        progress: &wirecap_query::Progress,
    ) -> Result<Value, ApiError> {
        let started = std::time::Instant::now();
        let (reader, f) = self.open(store)?;
        let range = reader.time_range(self.start, self.stop)?;
        let a =
            wirecap_query::analyze_with(&reader, range, f.as_ref(), &analyze_options(), progress)
                .map_err(|e| match e {
                wirecap_query::Error::Store(e) => ApiError::from(e),
                wirecap_query::Error::Cancelled => {
                    ApiError::new(StatusCode::CONFLICT, "the analysis was cancelled")
                }
                other => ApiError::internal(other.to_string()),
            })?;
        let mut v = serde_json::to_value(&a).map_err(|e| ApiError::internal(e.to_string()))?;
        v["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
        Ok(v)
    }
}

#[utoipa::path(post, path = "/api/v1/ui/streams/{name}/analysis", tag = "ui", params(("name" = String, Path)), request_body = AnalysisRequest, responses((status = 200, body = serde_json::Value, description = "protocols, talkers, ports, flows, series"), (status = "default", body = ErrorBody)))]
pub(crate) async fn analysis(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(v): Json<AnalysisRequest>,
) -> Result<Response, ApiError> {
    let q = AnalysisQuery::of(&name, v)?;
    let store = app.engine.store().clone();
    let out = blocking(move || q.run(&store, &wirecap_query::Progress::default())).await?;
    Ok(compact(&out))
}

/// An analysis running in the background (`POST …/analyses`): its progress, its cancel
/// switch and, once it ends, its answer.
struct AnalysisJob {
    id: u64,
    stream: String,
    started: std::time::Instant,
    progress: wirecap_query::Progress,
    /// `None` while it runs.
    outcome: std::sync::Mutex<Option<Result<Value, ApiError>>>,
}

/// The background analyses of this process, newest last; the oldest finished ones go
/// beyond [`MAX_ANALYSES`]. (A process-wide table: a job is the browser's, not the
/// appliance's, and outlives no restart.)
static ANALYSES: std::sync::Mutex<Vec<std::sync::Arc<AnalysisJob>>> =
    std::sync::Mutex::new(Vec::new());
static NEXT_ANALYSIS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
/// Analyses kept (running ones are never dropped).
const MAX_ANALYSES: usize = 32;
/// Analyses running at once; more are refused (each takes a core).
const MAX_RUNNING_ANALYSES: usize = 4;

/// How a background analysis is doing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisJobState {
    pub id: u64,
    pub stream: String,
    /// `running`, `done`, `cancelled` or `failed`.
    pub state: String,
    /// Packets looked at, and in the range (skipped chunks are never looked at).
    pub examined: u64,
    pub total: u64,
    /// `examined / total` (1 when done).
    pub fraction: f64,
    pub elapsed_ms: u64,
    /// The analysis, when done (as `POST …/analysis` answers it).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

impl AnalysisJob {
    fn state(&self) -> AnalysisJobState {
        let outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let (state, result, error) = match outcome.as_ref() {
            None => ("running", None, None),
            Some(Ok(v)) => ("done", Some(v.clone()), None),
            Some(Err(_)) if self.progress.cancelled() => ("cancelled", None, None),
            Some(Err(e)) => ("failed", None, Some(e.message.clone())),
        };
        AnalysisJobState {
            id: self.id,
            stream: self.stream.clone(),
            state: state.to_owned(),
            examined: self.progress.examined(),
            total: self.progress.total(),
            fraction: if state == "done" {
                1.0
            } else {
                self.progress.fraction()
            },
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            result,
            error,
        }
    }

    fn running(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

fn analysis_job(id: u64) -> Result<std::sync::Arc<AnalysisJob>, ApiError> {
    ANALYSES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|j| j.id == id)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no analysis {id} (finished analyses are kept for a while only)"
            ))
        })
}

/// Starts an analysis in the background: the answer names it; `GET /api/v1/ui/analyses/{id}`
/// shows its progress and then its result, `DELETE` cancels it.
#[utoipa::path(post, path = "/api/v1/ui/streams/{name}/analyses", tag = "ui", params(("name" = String, Path)), request_body = AnalysisRequest, responses((status = 202, body = AnalysisJobState), (status = "default", body = ErrorBody)))]
pub(crate) async fn start_analysis(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(v): Json<AnalysisRequest>,
) -> Result<Response, ApiError> {
    let q = AnalysisQuery::of(&name, v)?;
    // The stream and the filters are checked before the answer, so mistakes are a 4xx.
    let store = app.engine.store().clone();
    let (s2, q2) = (store.clone(), q.clone());
    blocking(move || q2.open(&s2).map(drop)).await?;
    let job = {
        let mut jobs = ANALYSES.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().filter(|j| j.running()).count() >= MAX_RUNNING_ANALYSES {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{MAX_RUNNING_ANALYSES} analyses are running: wait for one, or cancel one"),
            ));
        }
        let job = std::sync::Arc::new(AnalysisJob {
            id: NEXT_ANALYSIS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            stream: q.name.clone(),
            started: std::time::Instant::now(),
            progress: wirecap_query::Progress::default(),
            outcome: std::sync::Mutex::new(None),
        });
        jobs.push(job.clone());
        while jobs.len() > MAX_ANALYSES {
            match jobs.iter().position(|j| !j.running()) {
                Some(i) => drop(jobs.remove(i)),
                None => break,
            }
        }
        job
    };
    let j = job.clone();
    tokio::task::spawn_blocking(move || {
        let r = q.run(&store, &j.progress);
        *j.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    Ok((StatusCode::ACCEPTED, compact(&job.state())).into_response())
}

#[utoipa::path(get, path = "/api/v1/ui/analyses/{id}", tag = "ui", params(("id" = u64, Path)), responses((status = 200, body = AnalysisJobState), (status = "default", body = ErrorBody)))]
pub(crate) async fn analysis_state(Path(id): Path<u64>) -> Result<Response, ApiError> {
    Ok(compact(&analysis_job(id)?.state()))
}

/// Cancels a running analysis (it stops within a few milliseconds); a finished one is
/// left as it is. Answers its state.
#[utoipa::path(delete, path = "/api/v1/ui/analyses/{id}", tag = "ui", params(("id" = u64, Path)), responses((status = 200, body = AnalysisJobState), (status = "default", body = ErrorBody)))]
pub(crate) async fn cancel_analysis(Path(id): Path<u64>) -> Result<Response, ApiError> {
    let job = analysis_job(id)?;
    if job.running() {
        job.progress.cancel();
        // Wait for it to stop (a progress step is a few ms), so the answer is final.
        for _ in 0..200 {
            if !job.running() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    Ok(compact(&job.state()))
}

#[utoipa::path(post, path = "/api/v1/ui/filter/check", tag = "ui", request_body = FilterCheck, responses((status = 200, body = serde_json::Value, description = "`{ok}` or `{ok: false, error}`"), (status = "default", body = ErrorBody)))]
pub(crate) async fn check_filter(Json(v): Json<FilterCheck>) -> Result<Response, ApiError> {
    let language = v.language.unwrap_or_else(|| "appliance".to_owned());
    let text = v.text.unwrap_or_default();
    if text.len() > MAX_FILTER {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a filter of at most 16 kB",
        ));
    }
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
