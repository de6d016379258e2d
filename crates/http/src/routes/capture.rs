//! `/api/v1/capture/*`, `/api/v1/interfaces`, `/api/v1/config` and `/api/v1/forward`:
//! starting and stopping a capture, what it listens on and how it is set up.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use wirecap_appliance::{config, forward, json};
use wirecap_store::timefmt::rfc3339;

use crate::body::Json;
use crate::error::ApiError;
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

pub(crate) async fn api_start(
    State(app): State<Shared>,
    Json(StartRequest { name }): Json<StartRequest>,
) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.start(&name))).await?;
    match res {
        Ok(info) => Ok(json_ok(&json!({
            "active": true,
            "name": info.base,
            "stream": info.stored,
            "started": info.started_ns.map(rfc3339),
        }))),
        Err(e) => Err(ApiError::from(e)),
    }
}

pub(crate) async fn api_stop(
    State(app): State<Shared>,
    Json(_): Json<Option<StopRequest>>,
) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let res = blocking(move || Ok(engine.stop())).await?;
    match res {
        Ok(info) => Ok(json_ok(&json!({
            "active": false,
            "name": info.base,
            "stream": info.stored,
        }))),
        Err(e) => Err(ApiError::from(e)),
    }
}

pub(crate) async fn api_interfaces() -> Result<Response, ApiError> {
    let list = blocking(|| {
        wirecap_capture::link::Sysfs::default()
            .list()
            .map_err(|e| ApiError::internal(format!("cannot read interfaces: {e}")))
    })
    .await?;
    let out: Vec<Value> = list.iter().map(json::link_json).collect();
    Ok(json_ok(&Value::Array(out)))
}

pub(crate) async fn api_config(State(app): State<Shared>) -> Response {
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
        "forward": app.engine.forwarder().map(forward::forward_json),
    }))
}

fn no_forwarder() -> ApiError {
    ApiError::conflict(
        "forwarding is not running: start wirecap serve with --interface IF --inline ADDR/PREFIX --forward A=B (or [forward] in wirecap.toml)",
    )
}

pub(crate) async fn api_forward(State(app): State<Shared>) -> Result<Response, ApiError> {
    match app.engine.forwarder() {
        Some(f) => Ok(json_ok(&forward::forward_json(f))),
        None => Ok(json_ok(&json!({"enabled": false}))),
    }
}

/// Changes the capture IP, the pairs or the capture mode of the running forwarder and
/// keeps them in `wirecap.toml`. The mode is recorded with each stream, so it cannot
/// change while a capture runs.
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
