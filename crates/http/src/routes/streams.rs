//! The HTTP layer: routes, the guard every request passes (size limits, auth, access log,
//! metrics), and thin handlers that call the engine, the store and the pure formatters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use wirecap_store::timefmt::{ctime, parse_time, rfc3339};
use wirecap_store::{PacketRange, StreamInfo, StreamReader, View, now_ns, validate_stored_name};

use crate::appliance::{self, ApplianceJson, ListRow, SplitRow};
use crate::auth::{Authenticator, Refusal, credentials};
use crate::config::Settings;
use crate::download::{self, Download, Slots};
use crate::engine::{CaptureInfo, Engine, EngineError};
use crate::error::{ApiError, Shape};
use crate::metrics::Metrics;
use crate::query::{MAX_QUERY_LEN, Query, short};

/// Longest request path accepted.
pub const MAX_PATH_LEN: usize = 1024;

/// Everything a handler may need.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub auth: Authenticator,
    pub metrics: Metrics,
    pub slots: Slots,
    pub settings: Settings,
    /// Schedules and retention.
    pub ops: Arc<crate::operations::Operations>,
    /// The appliance's name now (`hostname` in wirecap.toml, else the OS's).
    pub hostname: std::sync::RwLock<String>,
    /// System reports being made in the background.
    pub reports: crate::report::Jobs,
}

impl AppState {
    pub fn hostname(&self) -> String {
        self.hostname
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_hostname(&self, name: &str) {
        *self.hostname.write().unwrap_or_else(|e| e.into_inner()) = name.to_owned();
    }
}

pub type Shared = Arc<AppState>;

/// The whole application: every route behind the guard.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/sysmaster/status", get(sys_status))
        .route("/sysmaster/capture_start", get(sys_start))
        .route("/sysmaster/capture_stop", get(sys_stop))
        .route("/plain/list", get(plain_list))
        .route("/plain/view", get(plain_view))
        .route("/plain/split", get(plain_split))
        .route("/pcap/single", get(pcap_single))
        .route("/pcap/splittime", get(pcap_splittime))
        .route("/en.files.html", get(files_page))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/streams", get(api_streams))
        .route("/api/v1/streams/{name}", get(api_stream).delete(api_delete))
        .route("/api/v1/streams/{name}/views", get(api_views))
        .route(
            "/api/v1/streams/{name}/views/{view}/splits",
            get(api_splits),
        )
        .route("/api/v1/streams/{name}/pcap", get(api_pcap))
        .route("/api/v1/capture/start", post(api_start))
        .route("/api/v1/capture/stop", post(api_stop))
        .route("/api/v1/interfaces", get(api_interfaces))
        .route("/api/v1/config", get(api_config))
        .merge(crate::api_ops::routes())
        .route("/api/v1/forward", get(api_forward).put(api_forward_put))
        .merge(crate::session::routes())
        .merge(crate::update::routes())
        .merge(crate::api_ui::routes())
        .merge(crate::api_admin::routes())
        .merge(crate::ui::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal("internal error; see the server log").into_response()
}

fn family(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or("") {
        "sysmaster" => "sysmaster",
        "plain" => "plain",
        "pcap" => "pcap",
        "api" => "api",
        "metrics" => "metrics",
        _ => "other",
    }
}

/// Every request passes here: limits first (cheap), then credentials, then the role the
/// route needs ([`crate::access`]: the one place that decides it), then the handler; then
/// one access-log line and the request metric.
async fn guard(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let fam = family(&path);
    let shape = if fam == "api" {
        Shape::Api
    } else {
        Shape::Appliance
    };
    let too_long =
        req.uri().query().is_some_and(|q| q.len() > MAX_QUERY_LEN) || path.len() > MAX_PATH_LEN;
    let access = crate::access::classify(&method, &path);
    let (resp, user) = if too_long {
        let mut e = ApiError::uri_too_long();
        e.shape = shape;
        (e.into_response(), None)
    } else if access == crate::access::Access::Public {
        // The login page, its code and the login itself (see `crate::session`).
        (next.run(req).await, None)
    } else {
        let creds = credentials(
            req.headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            req.headers().get(header::COOKIE).map(HeaderValue::as_bytes),
        );
        let session = match &creds {
            Some(crate::auth::Credentials::Session { id }) => Some(id.clone()),
            _ => None,
        };
        let basic_challenge = crate::session::wants_basic_challenge(req.headers());
        match app.auth.check(creds, peer).await {
            Ok(id) => {
                let user = id.user.clone();
                let csrf = session.as_deref().map_or(Ok(()), |sid| {
                    crate::session::csrf_check(
                        &app.auth.sessions,
                        sid,
                        &method,
                        req.uri(),
                        req.headers(),
                    )
                });
                if let Err(why) = csrf {
                    tracing::warn!(%peer, %path, "{why}");
                    let mut e = ApiError::new(StatusCode::FORBIDDEN, why);
                    e.shape = shape;
                    (e.into_response(), Some(user))
                } else if !crate::access::allows(&access, &id) {
                    tracing::warn!(%peer, %user, %method, %path, "refused: needs the admin role");
                    let mut e = ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!("{user} is a viewer: this needs the admin role"),
                    );
                    e.shape = shape;
                    (e.into_response(), Some(user))
                } else {
                    req.extensions_mut().insert(id);
                    (next.run(req).await, Some(user))
                }
            }
            Err(why) => {
                if why == Refusal::Wrong {
                    app.metrics.auth_failure();
                    tracing::warn!(%peer, %path, "wrong credentials");
                }
                let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "authentication required");
                e.shape = shape;
                let mut r = e.into_response();
                if basic_challenge {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"wirecap\", charset=\"UTF-8\""),
                    );
                }
                (r, None)
            }
        }
    };
    let code = resp.status().as_u16();
    app.metrics.request(fam, code);
    tracing::info!(
        target: "wirecap::access",
        %peer,
        user = user.as_deref().unwrap_or("-"),
        %method,
        path = %short(&path),
        code,
        ms = started.elapsed().as_millis() as u64,
    );
    resp
}

pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("internal error; see the server log"))?
}

/// [`blocking`] for the JSON API routes: every error answers in the API's JSON shape.
pub(crate) async fn blocking_api<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    blocking(move || f().map_err(ApiError::api))
        .await
        .map_err(ApiError::api)
}

/// Compact JSON that browsers and proxies must not cache (the UI's polled answers).
pub(crate) fn json_no_store(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        v.to_string(),
    )
        .into_response()
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

pub(crate) fn json_ok(v: &Value) -> Response {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        s,
    )
        .into_response()
}

fn appliance_json(status: StatusCode, j: &ApplianceJson) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        j.to_body(),
    )
        .into_response()
}

/// A stream name from a request, checked before it touches the file system.
pub(crate) fn stream_name(raw: &str) -> Result<String, ApiError> {
    validate_stored_name(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(raw.to_owned())
}

fn open(app: &Shared, name: &str) -> Result<StreamReader, ApiError> {
    app.engine.store().open_stream(name).map_err(ApiError::from)
}

fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::AlreadyRunning(_) | EngineError::NotRunning | EngineError::StreamExists(_) => {
            StatusCode::CONFLICT
        }
        EngineError::InvalidName(_) => StatusCode::BAD_REQUEST,
        EngineError::NoInterface(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::NoPermission(_) => StatusCode::FORBIDDEN,
        EngineError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

// ─── The manual's API ────────────────────────────────────────────────────────────────

async fn sys_status(State(app): State<Shared>) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let f = blocking(move || Ok(engine.status_figures())).await?;
    Ok(text(appliance::status_text(&f)))
}

async fn sys_start(State(app): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = q.require("StreamName")?.to_owned();
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.start(&name))).await?;
    Ok(capture_answer(res, appliance::started_message))
}

async fn sys_stop(State(app): State<Shared>) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.stop())).await?;
    Ok(capture_answer(res, appliance::stopped_message))
}

/// The manual's JSON answer to capture_start / capture_stop: `message` words a success
/// (`[date] successfully started capture [name]`), an error keeps the same shape.
fn capture_answer(
    res: Result<CaptureInfo, EngineError>,
    message: fn(u64, &str) -> String,
) -> Response {
    match res {
        Ok(info) => appliance_json(
            StatusCode::OK,
            &ApplianceJson::ok(message(now_ns(), info.base.as_deref().unwrap_or(""))),
        ),
        Err(e) => appliance_json(
            engine_status(&e),
            &ApplianceJson::err(format!("[{}] {e}", ctime(now_ns()))),
        ),
    }
}

async fn plain_list(State(app): State<Shared>) -> Result<Response, ApiError> {
    let store = app.engine.store().clone();
    let rows = blocking(move || {
        Ok(store
            .list()?
            .into_iter()
            .map(|s| ListRow {
                name: s.meta.name,
                bytes: s.bytes,
                packets: s.packets,
                created_ns: s.meta.created_ns,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(text(appliance::list_csv(&rows)))
}

async fn plain_view(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    let a = app.clone();
    let n = name.clone();
    blocking(move || open(&a, &n).map(|_| ())).await?;
    Ok(text(appliance::view_csv(&name)))
}

fn split_rows(r: &StreamReader, view: View) -> Result<Vec<SplitRow>, ApiError> {
    Ok(r.splits(view)?
        .into_iter()
        .map(|s| SplitRow {
            name: s.name,
            bytes: s.range.pcap_bytes(),
            packets: s.range.packets(),
            start_ns: s.start_ts,
            stop_ns: s.stop_ts,
            exact: matches!(view, View::Size { .. }).then_some((view, s.index)),
        })
        .collect())
}

async fn plain_split(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    let view = View::parse(q.require("StreamView")?)?;
    let a = app.clone();
    let n = name.clone();
    let rows = blocking(move || split_rows(&open(&a, &n)?, view)).await?;
    Ok(text(appliance::split_csv(&name, &rows)))
}

/// Which packets of a stream a download wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    All,
    Time(Option<u64>, Option<u64>),
    Split(View, u64),
}

fn bound(v: Option<&str>, what: &str) -> Result<Option<u64>, ApiError> {
    match v {
        None | Some("") | Some("NULL") | Some("null") => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("{what}: {}", short(&e)))),
    }
}

fn selection(q: &Query, keys: [&str; 4]) -> Result<Selection, ApiError> {
    let [start, stop, view, split] = keys;
    match (q.get(view), q.get(split)) {
        (Some(v), Some(k)) => {
            let view = View::parse(v)?;
            let k = k.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{split} must be a split index (0, 1, …)"))
            })?;
            return Ok(Selection::Split(view, k));
        }
        (None, None) => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "give {view} and {split} together"
            )));
        }
    }
    let (a, b) = (bound(q.get(start), start)?, bound(q.get(stop), stop)?);
    if let (Some(a), Some(b)) = (a, b)
        && b < a
    {
        return Err(ApiError::bad_request(format!(
            "{stop} ({b}) is before {start} ({a})"
        )));
    }
    Ok(match (a, b) {
        (None, None) => Selection::All,
        _ => Selection::Time(a, b),
    })
}

fn resolve(r: &StreamReader, sel: Selection) -> Result<(PacketRange, String), ApiError> {
    Ok(match sel {
        Selection::All => (r.full_range(), r.name().to_owned()),
        Selection::Time(a, b) => (
            r.time_range(a, b)?,
            format!(
                "{}_{}-{}",
                r.name(),
                a.map_or("start".into(), |v| v.to_string()),
                b.map_or("end".into(), |v| v.to_string())
            ),
        ),
        Selection::Split(view, k) => {
            let s = r.split(view, k)?;
            (s.range, format!("{}_{view}_{}", r.name(), s.name))
        }
    })
}

struct DownloadAsk<'a> {
    name: String,
    selection: Selection,
    format: Option<&'a str>,
    compress: Option<&'a str>,
    filter: Option<&'a str>,
    bpf: Option<&'a str>,
}

async fn download(
    app: &Shared,
    headers: &HeaderMap,
    ask: DownloadAsk<'_>,
) -> Result<Response, ApiError> {
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let format = download::negotiate_format(ask.format, h(header::ACCEPT))?;
    let encoding = download::negotiate_encoding(ask.compress, h(header::ACCEPT_ENCODING))?;
    let (filter_text, bpf_text) = (ask.filter.map(str::to_owned), ask.bpf.map(str::to_owned));
    let a = app.clone();
    let (name, sel) = (ask.name, ask.selection);
    let d = blocking(move || {
        let reader = open(&a, &name)?;
        let (range, filename) = resolve(&reader, sel)?;
        let filter = download::compile_filter(
            filter_text.as_deref(),
            bpf_text.as_deref(),
            reader.link_type(),
            now_ns(),
        )?;
        Ok(Download {
            reader,
            range,
            format,
            filter,
            encoding,
            filename,
        })
    })
    .await?;
    download::respond(d, headers, &app.slots, Some(app.metrics.clone()))
}

async fn pcap_single(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    download(
        &app,
        &headers,
        DownloadAsk {
            name,
            selection: Selection::All,
            format: q.get("format"),
            compress: q.get("compress"),
            filter: q.get("Filter"),
            bpf: q.get("FilterBPF"),
        },
    )
    .await
}

async fn pcap_splittime(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    let selection = selection(&q, ["Start", "Stop", "StreamView", "Split"])?;
    download(
        &app,
        &headers,
        DownloadAsk {
            name,
            selection,
            format: q.get("format"),
            compress: q.get("compress"),
            filter: q.get("Filter"),
            bpf: q.get("FilterBPF"),
        },
    )
    .await
}

/// The manual's "File Link": the web UI's page of that stream (its views and splits).
async fn files_page(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(q.require("StreamName")?)?;
    Ok(Redirect::to(&format!("/#/files/{name}")).into_response())
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let mut e = ApiError::not_found(format!("no such page: {}", short(&path)));
    if family(&path) == "api" {
        e.shape = Shape::Api;
    }
    e.into_response()
}

async fn metrics(State(app): State<Shared>) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let (f, n) = blocking(move || {
        let n = engine
            .store()
            .stream_names()
            .map(|v| v.len() as u64)
            .unwrap_or(0);
        Ok((engine.status_figures(), n))
    })
    .await?;
    app.metrics.set_forward(
        app.engine
            .forwarder()
            .map(|f| (f.snapshot(), f.tap().dropped())),
    );
    let body = app.metrics.render(&f, n, &app.ops.retention.status());
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

// ─── The JSON API ────────────────────────────────────────────────────────────────────

pub(crate) fn stream_json(s: &StreamInfo) -> Value {
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

async fn api_status(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref()).map_err(ApiError::api)?;
    let secs = match q.get("history") {
        None => 300,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("history must be a number of seconds").api())?,
    };
    let a = app.clone();
    let v = blocking(move || Ok(status_json(&a, secs)))
        .await
        .map_err(ApiError::api)?;
    Ok(json_ok(&v))
}

/// The JSON status with the last `secs` seconds of counters history. Blocking (reads the
/// store's size).
pub(crate) fn status_json(app: &Shared, secs: usize) -> Value {
    let secs = secs.min(wirecap_capture::counters::HISTORY_SECONDS);
    let engine = &app.engine;
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
        "hostname": app.hostname(),
        "uptime_s": f.uptime.as_secs(),
        "source": app.engine.describe_source(),
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
        "retention": app.ops.retention.status(),
        "forward": app.engine.forwarder().map(crate::forward::forward_json),
        "history": hist,
    })
}

async fn api_streams(State(app): State<Shared>) -> Result<Response, ApiError> {
    let store = app.engine.store().clone();
    let list = blocking(move || Ok(store.list()?))
        .await
        .map_err(ApiError::api)?;
    Ok(json_ok(&Value::Array(
        list.iter().map(stream_json).collect(),
    )))
}

async fn api_stream(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let a = app.clone();
    let info = blocking(move || Ok(open(&a, &name)?.info()?))
        .await
        .map_err(ApiError::api)?;
    Ok(json_ok(&stream_json(&info)))
}

async fn api_delete(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let a = app.clone();
    blocking(move || Ok(a.engine.store().delete_stream(&name)?))
        .await
        .map_err(ApiError::api)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn api_views(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let a = app.clone();
    let n = name.clone();
    blocking(move || open(&a, &n).map(|_| ()))
        .await
        .map_err(ApiError::api)?;
    let views: Vec<Value> = std::iter::once(View::Single)
        .chain(View::splits())
        .map(|v| {
            json!({
                "view": v.to_string(),
                "splits": format!("/api/v1/streams/{name}/views/{v}/splits"),
            })
        })
        .collect();
    Ok(json_ok(&Value::Array(views)))
}

async fn api_splits(
    State(app): State<Shared>,
    Path((name, view)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name).map_err(ApiError::api)?;
    let view = View::parse(&view).map_err(|e| ApiError::from(e).api())?;
    let a = app.clone();
    let n = name.clone();
    let splits = blocking(move || Ok(open(&a, &n)?.splits(view)?))
        .await
        .map_err(ApiError::api)?;
    let out: Vec<Value> = splits
        .iter()
        .map(|s| {
            json!({
                "index": s.index,
                "name": s.name,
                "start_ns": s.start_ts,
                "stop_ns": s.stop_ts,
                "start": rfc3339(s.start_ts),
                "stop": rfc3339(s.stop_ts),
                "packets": s.range.packets(),
                "bytes": s.range.pcap_bytes(),
                "download": format!("/api/v1/streams/{name}/pcap?view={view}&split={}", s.index),
            })
        })
        .collect();
    Ok(json_ok(&Value::Array(out)))
}

async fn api_pcap(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let api = |e: ApiError| e.api();
    let q = Query::parse(q.as_deref()).map_err(api)?;
    let name = stream_name(&name).map_err(api)?;
    let selection = selection(&q, ["start", "stop", "view", "split"]).map_err(api)?;
    download(
        &app,
        &headers,
        DownloadAsk {
            name,
            selection,
            format: q.get("format"),
            compress: q.get("compress"),
            filter: q.get("filter"),
            bpf: q.get("bpf"),
        },
    )
    .await
    .map_err(api)
}

/// JSON bodies must say so: a cross-site HTML form cannot send `application/json`
/// without a CORS preflight, which this server never grants (CSRF defence for Basic auth).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.trim_start().starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as Content-Type: application/json",
        )
        .api());
    }
    Ok(())
}

/// A JSON body (an empty one reads as `{}`), after [`require_json`].
pub(crate) fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    require_json(headers)?;
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")).api())
}

async fn api_start(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = json_body(&headers, &body)?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("body must be {\"name\": \"…\"}").api())?
        .to_owned();
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.start(&name)))
        .await
        .map_err(ApiError::api)?;
    match res {
        Ok(info) => Ok(json_ok(&json!({
            "active": true,
            "name": info.base,
            "stream": info.stored,
            "started": info.started_ns.map(rfc3339),
        }))),
        Err(e) => Err(ApiError::new(engine_status(&e), e.to_string()).api()),
    }
}

async fn api_stop(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    json_body(&headers, &body)?;
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.stop()))
        .await
        .map_err(ApiError::api)?;
    match res {
        Ok(info) => Ok(json_ok(&json!({
            "active": false,
            "name": info.base,
            "stream": info.stored,
        }))),
        Err(e) => Err(ApiError::new(engine_status(&e), e.to_string()).api()),
    }
}

/// One interface as the JSON API, the UI and the system report show it.
pub(crate) fn link_json(l: &wirecap_capture::link::LinkInfo) -> Value {
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

async fn api_interfaces() -> Result<Response, ApiError> {
    let list = blocking(|| {
        wirecap_capture::link::Sysfs::default()
            .list()
            .map_err(|e| ApiError::internal(format!("cannot read interfaces: {e}")))
    })
    .await
    .map_err(ApiError::api)?;
    let out: Vec<Value> = list.iter().map(link_json).collect();
    Ok(json_ok(&Value::Array(out)))
}

async fn api_config(State(app): State<Shared>) -> Response {
    let s = &app.settings;
    json_ok(&json!({
        "data": s.data,
        "http": s.http,
        "https": s.https,
        "tls_cert": s.tls_cert,
        "source": app.engine.describe_source(),
        "source_reason": s.source_reason,
        "log_level": s.log_level,
        "hostname": app.hostname(),
        "apply_hostname_to_os": s.apply_hostname_to_os,
        "forward": app.engine.forwarder().map(crate::forward::forward_json),
    }))
}

fn no_forwarder() -> ApiError {
    ApiError::conflict(
        "forwarding is not running: start wirecap serve with --interface IF --inline ADDR/PREFIX --forward A=B (or [forward] in wirecap.toml)",
    )
    .api()
}

async fn api_forward(State(app): State<Shared>) -> Result<Response, ApiError> {
    match app.engine.forwarder() {
        Some(f) => Ok(json_ok(&crate::forward::forward_json(f))),
        None => Ok(json_ok(&json!({"enabled": false}))),
    }
}

/// Changes the capture IP, the pairs or the capture mode of the running forwarder and
/// keeps them in `wirecap.toml`. The mode is recorded with each stream, so it cannot
/// change while a capture runs.
async fn api_forward_put(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = json_body(&headers, &body)?;
    let engine = app.engine.clone();
    let dir = app.settings.data.clone();
    blocking(move || {
        let f = engine.forwarder().ok_or_else(no_forwarder)?;
        let current = f.settings();
        let c = crate::forward::merge(&current, &v).map_err(|e| ApiError::bad_request(e).api())?;
        if c.mode != current.mode && engine.capturing() {
            return Err(ApiError::conflict(
                "a capture is running: stop it before changing the capture mode (each stream records one mode)",
            )
            .api());
        }
        let pairs: Vec<String> = c.pairs.iter().map(ToString::to_string).collect();
        crate::config::update(&dir, "forwarding changed through PUT /api/v1/forward", |fc| {
            fc.forward.inline = Some(c.inline.to_string());
            fc.forward.pairs = pairs.clone();
            fc.forward.capture_mode = Some(c.mode.as_str().to_owned());
            Ok(())
        })
        .map_err(|e| ApiError::internal(format!("cannot save wirecap.toml: {e}")).api())?;
        f.reconfigure(c.inline, c.pairs.clone(), c.mode)
            .map_err(|e| ApiError::bad_request(e.to_string()).api())?;
        tracing::info!(capture_ip = %c.inline, pairs = %pairs.join(" "), capture_mode = %c.mode, "forwarding changed");
        Ok(json_ok(&crate::forward::forward_json(f)))
    })
    .await
}

async fn openapi() -> Response {
    json_ok(&crate::openapi::document())
}
