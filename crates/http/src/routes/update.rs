//! The update routes: the releases, an upload, activating one. Installing, restarting and
//! rolling back are [`wirecap_appliance::update`]'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use wirecap_appliance::auth::{Identity, Role};
use wirecap_appliance::update::{DEFAULT_MAX_UPLOAD_MB, Releases};

use crate::body::require_json;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::Shared;

/// One upload at a time: each one holds a whole binary on disk.
static UPLOADING: AtomicBool = AtomicBool::new(false);

fn admin(id: Option<&Identity>) -> Result<(), ApiError> {
    match id {
        Some(i) if i.role == Role::Admin => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this needs the admin role",
        )),
    }
}

fn json_resp(status: StatusCode, v: &impl serde::Serialize) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/releases", tag = "update", responses((status = 200, body = serde_json::Value, description = "the releases installed and running"), (status = "default", body = ErrorBody)))]
pub(crate) async fn list(State(app): State<Shared>) -> Result<Response, ApiError> {
    let r = Releases::new(&app.settings.data);
    let v = tokio::task::spawn_blocking(move || r.overview())
        .await
        .map_err(|_| ApiError::internal("internal error; see the server log"))?;
    Ok(json_resp(StatusCode::OK, &v))
}

/// Resets [`UPLOADING`] however the upload ends.
struct UploadSlot;
impl Drop for UploadSlot {
    fn drop(&mut self) {
        UPLOADING.store(false, Ordering::Release);
    }
}

#[utoipa::path(post, path = "/api/v1/releases", tag = "update", request_body(content = Vec<u8>, content_type = "application/gzip", description = "a release archive"), responses((status = 201, body = serde_json::Value, description = "installed"), (status = 200, body = serde_json::Value, description = "already installed"), (status = "default", body = ErrorBody)))]
pub(crate) async fn upload(
    State(app): State<Shared>,
    id: Option<axum::Extension<Identity>>,
    req: Request,
) -> Result<Response, ApiError> {
    admin(id.as_deref())?;
    // Not a type an HTML form can send: a cross-site form cannot post an archive.
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ![
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
    ]
    .iter()
    .any(|t| ct.trim_start().starts_with(t))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the release archive as Content-Type: application/gzip",
        ));
    }
    let limit = app
        .settings
        .update
        .max_upload_mb
        .unwrap_or(DEFAULT_MAX_UPLOAD_MB)
        << 20;
    let announced: Option<u64> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a release archive may be at most {} MiB ([update] max_upload_mb)",
                limit >> 20
            ),
        )
    };
    if announced.is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    if UPLOADING.swap(true, Ordering::AcqRel) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "another upload is in progress",
        ));
    }
    let _slot = UploadSlot;
    let r = Releases::new(&app.settings.data);
    r.ensure_dir().map_err(ApiError::from)?;
    let path = r
        .dir()
        .join(format!(".upload-{}.tar.gz", std::process::id()));
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    let mut file = tokio::io::BufWriter::new(file);
    let mut body = req.into_body().into_data_stream();
    let mut n = 0u64;
    let streamed: Result<(), ApiError> = async {
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("upload cut short: {e}")))?;
            n += chunk.len() as u64;
            if n > limit {
                return Err(too_big());
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| ApiError::internal(format!("writing the upload: {e}")))
    }
    .await;
    drop(file);
    if let Err(e) = streamed {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    if n == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(ApiError::bad_request("empty body: send a release archive"));
    }
    let trusted = app.settings.update.trusted_keys.clone();
    let require = app.settings.update.require_signature;
    let res = tokio::task::spawn_blocking(move || r.install(&path, &trusted, require))
        .await
        .map_err(|_| ApiError::internal("internal error; see the server log"))?;
    match res {
        Ok((v, true)) => Ok(json_resp(StatusCode::CREATED, &v)),
        Ok((v, false)) => Ok(json_resp(StatusCode::OK, &v)),
        Err(e) => Err(ApiError::from(e)),
    }
}

/// The answer to an activation: the server restarts into `restarting`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restarting {
    /// How long the new release has to report healthy before it is rolled back.
    pub health_timeout_secs: u64,
    pub restarting: String,
    pub retry_after_secs: u64,
    /// The stream the restart sealed, if a capture ran.
    pub sealed: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/releases/{version}/activate", tag = "update", params(("version" = String, Path)), responses((status = 202, body = Restarting), (status = "default", body = ErrorBody)))]
pub(crate) async fn activate(
    State(app): State<Shared>,
    id: Option<axum::Extension<Identity>>,
    UrlPath(version): UrlPath<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    admin(id.as_deref())?;
    require_json(&headers)?;
    let timeout = app.settings.update.health_timeout();
    let r = Releases::new(&app.settings.data);
    let target = r.target(&version).map_err(ApiError::from)?;
    // Seal first, so the answer can say what was sealed and the restart loses nothing.
    let engine = app.engine.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let stream = engine
            .capture_info()
            .stored
            .filter(|_| engine.capture_info().active);
        engine.shutdown();
        stream
    })
    .await
    .map_err(|_| ApiError::internal("internal error; see the server log"))?;
    let answer = Restarting {
        health_timeout_secs: timeout.as_secs(),
        restarting: target.version.clone(),
        retry_after_secs: 2,
        sealed,
    };
    tokio::spawn(async move {
        // Let the 202 reach the client before the process image is replaced.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let err = tokio::task::spawn_blocking(move || r.select_and_restart(&target, timeout)).await;
        tracing::error!("restart failed, still running the previous release: {err:?}");
    });
    let mut resp = json_resp(StatusCode::ACCEPTED, &answer);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("2"),
    );
    Ok(resp)
}
