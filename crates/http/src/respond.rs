//! What every route module shares: blocking work off the async workers, the response
//! helpers (JSON, text, the manual's JSON), stream names from URLs. (JSON bodies are
//! [`crate::body::Json`]'s.)

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
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

/// Compact JSON that browsers and proxies must not cache (the UI's polled answers).
pub(crate) fn json_no_store(status: StatusCode, v: &impl Serialize) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        serde_json::to_string(v).unwrap_or_default(),
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

/// Pretty JSON and a newline (the general API's answers, for people with curl too).
pub(crate) fn json_ok(v: &impl Serialize) -> Response {
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
