//! What every route module shares: blocking work off the async workers, the response
//! helpers (JSON, text, the manual's JSON), stream names from URLs, JSON bodies.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wirecap_appliance::manual::ApplianceJson;
use wirecap_store::{StreamReader, validate_stored_name};

use crate::error::ApiError;
use crate::state::Shared;

/// Runs blocking work (the store, the file system) off the async workers.
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

pub(crate) fn text(body: String) -> Response {
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

pub(crate) fn appliance_json(status: StatusCode, j: &ApplianceJson) -> Response {
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

/// Opens a stream of the store (after [`stream_name`]).
pub(crate) fn open(app: &Shared, name: &str) -> Result<StreamReader, ApiError> {
    app.engine.store().open_stream(name).map_err(ApiError::from)
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
