//! `/api/v1/capture/*`, `/api/v1/interfaces`, `/api/v1/config` and `/api/v1/forward`:
//! starting and stopping a capture, what it listens on and how it is set up.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use wirecap_appliance::api::Link;
use wirecap_appliance::{config, forward};
use wirecap_store::timefmt::rfc3339;

use crate::body::Json;
use crate::error::{ApiError, ErrorBody};
use crate::respond::{blocking, json_ok};
use crate::state::Shared;

/// `POST /api/v1/capture/start`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StartRequest {
    /// The stream's base name (the store adds the time).
    pub name: String,
}

/// `POST /api/v1/capture/stop` (the body may be empty).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct StopRequest {}

/// A capture's state after start or stop.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureAnswer {
    pub active: bool,
    /// The name given at start.
    pub name: Option<String>,
    /// When it started (only in start's answer).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>)]
    pub started: Option<Option<String>>,
    /// The stored stream.
    pub stream: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/capture/start", tag = "capture", request_body = StartRequest,
    responses((status = 200, body = CaptureAnswer), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_start(
    State(app): State<Shared>,
    Json(StartRequest { name }): Json<StartRequest>,
) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.start(&name))).await?;
    match res {
        Ok(info) => Ok(json_ok(&CaptureAnswer {
            active: true,
            name: info.base,
            started: Some(info.started_ns.map(rfc3339)),
            stream: info.stored,
        })),
        Err(e) => Err(ApiError::from(e)),
    }
}

#[utoipa::path(post, path = "/api/v1/capture/stop", tag = "capture", request_body = Option<StopRequest>,
    responses((status = 200, body = CaptureAnswer), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_stop(
    State(app): State<Shared>,
    Json(_): Json<Option<StopRequest>>,
) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.stop())).await?;
    match res {
        Ok(info) => Ok(json_ok(&CaptureAnswer {
            active: false,
            name: info.base,
            started: None,
            stream: info.stored,
        })),
        Err(e) => Err(ApiError::from(e)),
    }
}

#[utoipa::path(get, path = "/api/v1/interfaces", tag = "capture",
    responses((status = 200, body = Vec<Link>), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_interfaces() -> Result<Response, ApiError> {
    let list = blocking(|| {
        wirecap_capture::link::Sysfs::default()
            .list()
            .map_err(|e| ApiError::internal(format!("cannot read interfaces: {e}")))
    })
    .await?;
    Ok(json_ok(&list.iter().map(Link::of).collect::<Vec<_>>()))
}

#[utoipa::path(get, path = "/api/v1/config", tag = "capture",
    responses((status = 200, body = Config), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_config(State(app): State<Shared>) -> Response {
    let s = &app.settings;
    json_ok(&Config {
        apply_hostname_to_os: s.apply_hostname_to_os,
        data: s.data.clone(),
        forward: app.engine.forwarder().map(forward::forward_json),
        hostname: app.hostname(),
        http: s.http.clone(),
        https: s.https.clone(),
        log_level: s.log_level.clone(),
        source: app.engine.describe_source(),
        source_reason: s.source_reason.clone(),
        tls_cert: s.tls_cert.clone(),
    })
}

/// The settings the server runs with (the command line over `wirecap.toml`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub apply_hostname_to_os: bool,
    /// The data directory.
    #[schema(value_type = String)]
    pub data: std::path::PathBuf,
    /// The inline forwarder, as `GET /api/v1/forward` shows it.
    #[schema(value_type = Option<Object>)]
    pub forward: Option<Value>,
    pub hostname: String,
    /// Where plain HTTP listens, if it does.
    pub http: Option<String>,
    pub https: Option<String>,
    pub log_level: String,
    pub source: String,
    /// Why this source.
    pub source_reason: String,
    #[schema(value_type = Option<String>)]
    pub tls_cert: Option<std::path::PathBuf>,
}

fn no_forwarder() -> ApiError {
    ApiError::conflict(
        "forwarding is not running: start wirecap serve with --interface IF --inline ADDR/PREFIX --forward A=B (or [forward] in wirecap.toml)",
    )
}

#[utoipa::path(get, path = "/api/v1/forward", tag = "capture",
    responses((status = 200, body = serde_json::Value, description = "the inline forwarder, or `{\"enabled\": false}`"), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_forward(State(app): State<Shared>) -> Result<Response, ApiError> {
    match app.engine.forwarder() {
        Some(f) => Ok(json_ok(&forward::forward_json(f))),
        None => Ok(json_ok(&json!({"enabled": false}))),
    }
}

/// Changes the capture IP, the pairs or the capture mode of the running forwarder and
/// keeps them in `wirecap.toml`. The mode is recorded with each stream, so it cannot
/// change while a capture runs.
#[utoipa::path(put, path = "/api/v1/forward", tag = "capture",
    request_body(content = serde_json::Value, description = "any of `inline`, `pairs` (`A=B`…), `capture_mode`"),
    responses((status = 200, body = serde_json::Value), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_forward_put(
    State(app): State<Shared>,
    Json(v): Json<Value>,
) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let dir = app.settings.data.clone();
    blocking(move || {
        let f = engine.forwarder().ok_or_else(no_forwarder)?;
        let current = f.settings();
        let c = forward::merge(&current, &v).map_err(ApiError::bad_request)?;
        if c.mode != current.mode && engine.capturing() {
            return Err(ApiError::conflict(
                "a capture is running: stop it before changing the capture mode (each stream records one mode)",
            )
            );
        }
        let pairs: Vec<String> = c.pairs.iter().map(ToString::to_string).collect();
        config::update(&dir, "forwarding changed through PUT /api/v1/forward", |fc| {
            fc.forward.inline = Some(c.inline.to_string());
            fc.forward.pairs = pairs.clone();
            fc.forward.capture_mode = Some(c.mode.as_str().to_owned());
            Ok(())
        })
        .map_err(|e| ApiError::internal(format!("cannot save wirecap.toml: {e}")))?;
        f.reconfigure(c.inline, c.pairs.clone(), c.mode)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        tracing::info!(capture_ip = %c.inline, pairs = %pairs.join(" "), capture_mode = %c.mode, "forwarding changed");
        Ok(json_ok(&forward::forward_json(f)))
    })
    .await
}
