//! The JSON API of operations: schedules, retention and pins. Reads are open to every
//! user; writes need the admin role and go through [`config::update`] (atomic,
//! validated as a load would), after which the server applies the file at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use wirecap_appliance::config;
use wirecap_appliance::retention::RetentionConfig;
use wirecap_appliance::schedule::{self, ScheduleConfig};

use crate::body::{Json, serde_field};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::respond::{blocking, json_ok, stream_name};
use crate::state::Shared;

fn invalid(field: &str, why: impl Into<String>) -> ApiError {
    ApiError::field(field, why)
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

// The scheduler's lock is held while a tick starts or stops a capture (sealing takes a
// moment): reads wait for it on a blocking thread, never on the runtime's.

#[utoipa::path(get, path = "/api/v1/schedules", tag = "operations", responses((status = 200, body = serde_json::Value, description = "`{schedules: [...], ticks, error?}`: `ticks` counts the scheduler's passes since start-up, so a client can wait for the next pass instead of sleeping"), (status = "default", body = ErrorBody)))]
pub(crate) async fn list(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    let v = blocking(move || {
        let mut v =
            json!({"schedules": a.ops.scheduler.list(now()), "ticks": a.ops.scheduler.ticks()});
        if let Some(e) = a.ops.file_error().or_else(|| a.ops.scheduler.error()) {
            v["error"] = json!(e);
        }
        Ok(v)
    })
    .await?;
    Ok(json_ok(&v))
}

#[utoipa::path(get, path = "/api/v1/schedules/{name}", tag = "operations", params(("name" = String, Path)), responses((status = 200, body = serde_json::Value, description = "a schedule and its next window"), (status = "default", body = ErrorBody)))]
pub(crate) async fn one(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let a = app.clone();
    blocking(move || {
        a.ops
            .scheduler
            .get(&name, now())
            .map(|v| json_ok(&v))
            .ok_or_else(|| ApiError::not_found(format!("no schedule named {name:?}")))
    })
    .await
}

/// Parses and validates a schedule body against the file's default time zone.
fn schedule_body(mut v: Value, name: Option<&str>) -> Result<ScheduleConfig, ApiError> {
    if let (Some(n), Some(obj)) = (name, v.as_object_mut()) {
        match obj.get("name") {
            None => {
                obj.insert("name".into(), json!(n));
            }
            Some(Value::String(b)) if b == n => {}
            Some(_) => {
                return Err(invalid(
                    "name",
                    format!("the body names another schedule than the URL ({n:?})"),
                ));
            }
        }
    }
    let c: ScheduleConfig =
        serde_json::from_value(v).map_err(|e| invalid(&field_of(&e), e.to_string()))?;
    Ok(c)
}

/// Applies `change` to the file's schedules; a validation error names its field.
async fn write_schedules(
    app: &Shared,
    why: String,
    change: impl FnOnce(&mut Vec<ScheduleConfig>) -> Result<(), (StatusCode, String)> + Send + 'static,
) -> Result<(), ApiError> {
    let a = app.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut refusal = None;
        let dir = a.settings.data.clone();
        let r = config::update(&dir, &why, |c| {
            if let Err(e) = change(&mut c.schedule) {
                let m = e.1.clone();
                refusal = Some(e);
                return Err(m);
            }
            schedule::validate_all(&c.schedule, c.timezone.as_deref())
                .map(|_| ())
                .map_err(|e| {
                    refusal = Some((StatusCode::BAD_REQUEST, format!("{}\u{0}{e}", e.field)));
                    e.to_string()
                })
        });
        a.ops.reload(&a.engine);
        (r, refusal)
    })
    .await
    .map_err(|_| ApiError::internal("internal error"))?;
    match r {
        (Ok(_), _) => Ok(()),
        (Err(_), Some((code, m))) if code == StatusCode::BAD_REQUEST => {
            let (field, why) = m.split_once('\u{0}').unwrap_or(("body", &m));
            Err(invalid(field, why))
        }
        (Err(_), Some((code, m))) => Err(ApiError::new(code, m)),
        (Err(e), None) => Err(ApiError::bad_request(e)),
    }
}

#[utoipa::path(post, path = "/api/v1/schedules", tag = "operations", request_body = serde_json::Value, responses((status = 201, body = serde_json::Value), (status = "default", body = ErrorBody)))]
pub(crate) async fn create(
    State(app): State<Shared>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let c = schedule_body(body, None)?;
    let name = c.name.clone();
    let n = name.clone();
    write_schedules(&app, format!("schedule {name} added"), move |list| {
        if list.iter().any(|s| s.name == n) {
            return Err((
                StatusCode::CONFLICT,
                format!("a schedule named {n:?} exists; PUT /api/v1/schedules/{n} replaces it"),
            ));
        }
        list.push(c);
        Ok(())
    })
    .await?;
    let a = app.clone();
    let v = blocking(move || Ok(a.ops.scheduler.get(&name, now()).unwrap_or(Value::Null))).await?;
    Ok((StatusCode::CREATED, json_ok(&v)).into_response())
}

#[utoipa::path(put, path = "/api/v1/schedules/{name}", tag = "operations", params(("name" = String, Path)), request_body = serde_json::Value, responses((status = 200, body = serde_json::Value), (status = "default", body = ErrorBody)))]
pub(crate) async fn replace(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let c = schedule_body(body, Some(&name))?;
    let n = name.clone();
    write_schedules(&app, format!("schedule {name} changed"), move |list| {
        match list.iter_mut().find(|s| s.name == n) {
            Some(s) => *s = c,
            None => list.push(c),
        }
        Ok(())
    })
    .await?;
    let a = app.clone();
    let v = blocking(move || Ok(a.ops.scheduler.get(&name, now()).unwrap_or(Value::Null))).await?;
    Ok(json_ok(&v))
}

#[utoipa::path(delete, path = "/api/v1/schedules/{name}", tag = "operations", params(("name" = String, Path)), responses((status = 204, description = "removed"), (status = "default", body = ErrorBody)))]
pub(crate) async fn remove(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let n = name.clone();
    write_schedules(&app, format!("schedule {name} removed"), move |list| {
        let before = list.len();
        list.retain(|s| s.name != n);
        if list.len() == before {
            return Err((StatusCode::NOT_FOUND, format!("no schedule named {n:?}")));
        }
        Ok(())
    })
    .await?;
    // The scheduler stops a removed schedule's capture at its next tick; do it now.
    let a = app.clone();
    let _ = tokio::task::spawn_blocking(move || a.ops.scheduler.tick(&a.engine, now())).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn retention_json(app: &Shared) -> Value {
    let p = app.ops.policy();
    let file = config::FileConfig::load(&app.settings.data)
        .map(|f| f.retention)
        .unwrap_or_default();
    json!({
        "config": file,
        "high_watermark": p.high,
        "low_watermark": p.low,
        "segment_bytes": p.segment_in_force(&app.settings.data).0,
        "segment_source": p.segment_in_force(&app.settings.data).1,
        "status": app.ops.retention.status(),
    })
}

#[utoipa::path(get, path = "/api/v1/retention", tag = "operations", responses((status = 200, body = serde_json::Value, description = "the file's settings, the effective policy and the status"), (status = "default", body = ErrorBody)))]
pub(crate) async fn retention(State(app): State<Shared>) -> Result<Response, ApiError> {
    let a = app.clone();
    let v = blocking(move || Ok(retention_json(&a))).await?;
    Ok(json_ok(&v))
}

/// `PUT /api/v1/retention`: the keys given replace those in the file; `null` removes one.
#[utoipa::path(put, path = "/api/v1/retention", tag = "operations", request_body = serde_json::Value, responses((status = 200, body = serde_json::Value), (status = "default", body = ErrorBody)))]
pub(crate) async fn set_retention(
    State(app): State<Shared>,
    Json(v): Json<Value>,
) -> Result<Response, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(
            "body",
            "send an object such as {\"budget\": \"50GB\"}",
        ));
    };
    let a = app.clone();
    let obj = obj.clone();
    let r = tokio::task::spawn_blocking(move || {
        let r = config::update(&a.settings.data, "retention changed", |c| {
            let mut cur = serde_json::to_value(&c.retention).map_err(|e| e.to_string())?;
            for (k, val) in &obj {
                if val.is_null() {
                    cur.as_object_mut().map(|o| o.remove(k));
                } else {
                    cur[k] = val.clone();
                }
            }
            let next: RetentionConfig =
                serde_json::from_value(cur).map_err(|e| format!("{}\u{0}{e}", field_of(&e)))?;
            next.validate().map_err(|e| {
                let field = e
                    .strip_prefix("[retention] ")
                    .and_then(|r| r.split(':').next())
                    .unwrap_or("body")
                    .to_owned();
                format!("{field}\u{0}{e}")
            })?;
            c.retention = next;
            Ok(())
        });
        a.ops.reload(&a.engine);
        (r, retention_json(&a))
    })
    .await
    .map_err(|_| ApiError::internal("internal error"))?;
    match r {
        (Ok(_), v) => Ok(json_ok(&v)),
        (Err(e), _) => {
            let (field, why) = e.split_once('\u{0}').unwrap_or(("body", &e));
            Err(invalid(field, why))
        }
    }
}

/// The field a serde error is about, or the whole body.
fn field_of(e: &serde_json::Error) -> String {
    serde_field(e).unwrap_or_else(|| "body".to_owned())
}

/// `PUT /api/v1/streams/{name}/pin` (an empty body pins).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct PinRequest {
    /// `false` unpins (default `true`).
    pub pinned: Option<bool>,
}

/// A stream's pin.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    pub name: String,
    pub pinned: bool,
}

/// `PUT /api/v1/streams/{name}/pin` with `{"pinned": true|false}` (default true).
#[utoipa::path(put, path = "/api/v1/streams/{name}/pin", tag = "operations", params(("name" = String, Path)), request_body = Option<PinRequest>, responses((status = 200, body = Pinned), (status = "default", body = ErrorBody)))]
pub(crate) async fn pin(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(body): Json<Option<PinRequest>>,
) -> Result<Response, ApiError> {
    let name = stream_name(&name)?;
    let pinned = body.and_then(|b| b.pinned).unwrap_or(true);
    let a = app.clone();
    let n = name.clone();
    blocking(move || Ok(a.engine.store().set_pinned(&n, pinned)?)).await?;
    tracing::info!(stream = %name, pinned, "stream pin changed");
    Ok(json_ok(&Pinned { name, pinned }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_lists_the_operations_routes() {
        let doc = crate::openapi::document();
        for p in [
            "/api/v1/schedules",
            "/api/v1/schedules/{name}",
            "/api/v1/retention",
            "/api/v1/streams/{name}/pin",
        ] {
            assert!(doc["paths"][p].is_object(), "{p}");
        }
        assert!(doc["paths"]["/api/v1/schedules"]["post"].is_object());
    }
}
