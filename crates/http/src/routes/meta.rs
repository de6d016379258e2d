//! What the server says about itself: `/metrics` (OpenMetrics text, from the appliance's
//! registry) and `/api/v1/openapi.json` (from [`crate::openapi`]).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::respond::{blocking, json_ok};
use crate::state::Shared;

#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(app): State<Shared>) -> Result<Response, ApiError> {
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
    app.metrics
        .set_archive(app.engine.archive().map(|a| a.status()).as_ref());
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

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, body = serde_json::Value, description = "this document"), (status = "default", body = ErrorBody)))]
pub(crate) async fn openapi() -> Response {
    json_ok(crate::openapi::document())
}
