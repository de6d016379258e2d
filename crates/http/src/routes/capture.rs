//! `/api/v1/capture/*`, `/api/v1/interfaces`, `/api/v1/config` and `/api/v1/forward`:
//! starting and stopping a capture, what it listens on and how it is set up.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use wirecap_appliance::api::Link;
use wirecap_appliance::capture_settings::{CaptureOptions, CaptureSettings, CaptureSettingsState};
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
        forward: app.engine.forwarder().as_deref().map(forward::forward_json),
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

/// The saved `[forward]` of `wirecap.toml` (empty when the file cannot be read).
fn saved_forward(dir: &std::path::Path) -> config::ForwardConfig {
    config::FileConfig::load(dir)
        .map(|c| c.forward)
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/api/v1/forward", tag = "capture",
    responses((status = 200, body = serde_json::Value, description = "the inline forwarder, or `{\"enabled\": false}` with the saved settings"), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_forward(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    blocking(move || {
        Ok(match a.engine.forwarder() {
            Some(f) => json_ok(&forward::forward_json(&f)),
            None => json_ok(&forward::off_json(&saved_forward(&a.settings.data))),
        })
    })
    .await
}

/// Turns forwarding on or off and changes its capture IP, pairs or capture mode, at
/// once and kept in `wirecap.toml`. Turning it on or off seals a running capture and
/// starts it again (it records the forwarder's packets, or the interface's); the mode is
/// recorded with each stream, so it cannot change while a capture runs.
#[utoipa::path(put, path = "/api/v1/forward", tag = "capture",
    request_body(content = serde_json::Value, description = "any of `enabled`, `inline`, `pairs` (`A=B`…), `capture_mode`"),
    responses((status = 200, body = serde_json::Value), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_forward_put(
    State(app): State<Shared>,
    Json(v): Json<Value>,
) -> Result<Response, ApiError> {
    let engine = app.engine.clone();
    let dir = app.settings.data.clone();
    blocking(move || {
        let running = engine.forwarder();
        let current = match &running {
            Some(f) => forward::config_of(&f.settings()),
            None => saved_forward(&dir),
        };
        let (enabled, next) = forward::merge(&current, &v).map_err(ApiError::bad_request)?;
        let on = enabled.unwrap_or(running.is_some());
        let choice = next.saved().map_err(ApiError::bad_request)?.filter(|_| on);
        let restarted = engine.set_forwarding(choice.as_ref())?;
        let why = if on {
            "forwarding set through PUT /api/v1/forward (the Config page)"
        } else {
            "forwarding turned off through PUT /api/v1/forward (the Config page)"
        };
        config::update(&dir, why, |fc| {
            fc.forward = config::ForwardConfig {
                enabled: (!on && next.inline.is_some()).then_some(false),
                ..next.clone()
            };
            Ok(())
        })
        .map_err(|e| ApiError::internal(format!("cannot save wirecap.toml: {e}")))?;
        tracing::info!(
            on,
            capture_ip = next.inline.as_deref().unwrap_or("-"),
            pairs = %next.pairs.join(" "),
            capture_mode = next.capture_mode.as_deref().unwrap_or("inline"),
            "forwarding changed"
        );
        let mut answer = match engine.forwarder() {
            Some(f) => forward::forward_json(&f),
            None => forward::off_json(&next),
        };
        if let Some(r) = restarted.and_then(|i| i.stored) {
            answer["capture_restarted"] = json!(r);
        }
        Ok(json_ok(&answer))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/capture/settings", tag = "capture",
    responses((status = 200, body = CaptureSettingsState), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_capture_settings(State(app): State<Shared>) -> Response {
    json_ok(&app.engine.capture_settings_state())
}

/// What a change of the capture settings did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSettingsAnswer {
    /// For a person.
    pub message: String,
    /// The stream a running capture went on in (it was sealed and started again).
    pub restarted: Option<String>,
    /// What is in force now.
    pub settings: CaptureSettingsState,
}

/// Replaces the capture settings (absent keys: the defaults), keeps them in
/// `[capture]` of `wirecap.toml` and applies them at once: a running interface capture
/// is sealed and started again with them.
#[utoipa::path(put, path = "/api/v1/capture/settings", tag = "capture", request_body = CaptureOptions,
    responses((status = 200, body = CaptureSettingsAnswer), (status = "default", body = ErrorBody)))]
pub(crate) async fn api_capture_settings_put(
    State(app): State<Shared>,
    Json(o): Json<CaptureOptions>,
) -> Result<Response, ApiError> {
    let a = app.clone();
    blocking(move || {
        let checked =
            CaptureSettings::check(&o).map_err(|e| ApiError::field(e.field, e.to_string()))?;
        config::update(
            &a.settings.data,
            "capture settings changed through PUT /api/v1/capture/settings (the Config page)",
            |c| {
                c.capture.set_options(&o);
                Ok(())
            },
        )
        .map_err(|e| ApiError::internal(format!("cannot save wirecap.toml: {e}")))?;
        let restarted = a
            .engine
            .set_capture_settings(checked)?
            .and_then(|i| i.stored);
        let settings = a.engine.capture_settings_state();
        let message = match (&restarted, settings.applies) {
            (Some(r), _) => format!(
                "Applied: the running capture was sealed and continues as {r} with these settings."
            ),
            (None, true) => "Applied: captures start with these settings.".to_owned(),
            (None, false) => format!(
                "Saved: they apply to captures of an interface (now: {}).",
                a.engine.describe_source()
            ),
        };
        tracing::info!(settings = ?o, "capture settings changed");
        Ok(json_ok(&CaptureSettingsAnswer {
            message,
            restarted,
            settings,
        }))
    })
    .await
}
