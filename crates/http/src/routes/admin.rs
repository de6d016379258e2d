//! JSON routes that run the appliance itself: users, hostname, system reports.
//!
//! Who may call them is decided by [`crate::access`] before a handler runs (reads for
//! everyone signed in, changes for admins, one's own password for oneself); handlers
//! here only check what the route's rule cannot see (a viewer changing their own role).
//!
//! | route | does |
//! |---|---|
//! | `GET /api/v1/users` | `[{name, role}]` |
//! | `POST /api/v1/users` | `{name, password, role?}` adds a user (role viewer by default) |
//! | `DELETE /api/v1/users/{name}` | removes a user (not the last admin) |
//! | `PATCH /api/v1/users/{name}` | `{password?, current_password?, role?}`; a viewer changes their own password with the current one |
//! | `GET /api/v1/hostname`, `PUT` | `{hostname}`; persisted in `wirecap.toml`, applied to the OS when allowed |
//! | `POST /api/v1/report` | `{recipient?}` starts a system report → `{id, …}` (202) |
//! | `GET /api/v1/report/{id}` | the job: state, steps done/total, file |
//! | `GET /api/v1/reports` | reports in `DIR/upload/` |
//! | `GET /api/v1/reports/{file}` | downloads one |

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::{Shared, blocking_api as blocking, json_no_store as json_response};
use crate::auth::{Identity, Role, UserError};
use crate::error::ApiError;
use crate::report::{self, ReportError};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(add_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::delete(remove_user).patch(change_user),
        )
        .route("/api/v1/hostname", get(get_hostname).put(set_hostname))
        .route("/api/v1/report", axum::routing::post(start_report))
        .route("/api/v1/report/{id}", get(report_job))
        .route("/api/v1/reports", get(list_reports))
        .route("/api/v1/reports/{file}", get(download_report))
}

/// These routes for the OpenAPI document.
pub fn openapi_paths() -> Vec<(&'static str, Value)> {
    let err = json!({"$ref": "#/components/responses/ApiError"});
    let body = |props: Value, required: &[&str]| json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": props, "required": required}}}});
    let name =
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}});
    let role = json!({"type": "string", "enum": ["admin", "viewer"]});
    vec![
        (
            "/api/v1/users",
            json!({
                "get": {"summary": "Users and their roles (never password hashes)", "responses": {"200": {"description": "[{name, role}]"}}},
                "post": {"summary": "Add a user (admin); role viewer unless given", "requestBody": body(json!({"name": {"type": "string"}, "password": {"type": "string", "minLength": 8}, "role": role}), &["name", "password"]),
                         "responses": {"201": {"description": "Added"}, "400": err, "403": err, "409": err}},
            }),
        ),
        (
            "/api/v1/users/{name}",
            json!({
                "delete": {"summary": "Remove a user (admin; not the last admin); their sessions end", "parameters": [name],
                           "responses": {"204": {"description": "Removed"}, "403": err, "404": err, "409": err}},
                "patch": {"summary": "Change a password (admin, or the user themself with current_password) and/or a role (admin; the last admin stays admin); the user's sessions end",
                          "parameters": [name], "requestBody": body(json!({"password": {"type": "string", "minLength": 8}, "current_password": {"type": "string"}, "role": role}), &[]),
                          "responses": {"200": {"description": "{name, role}"}, "400": err, "403": err, "404": err, "409": err}},
            }),
        ),
        (
            "/api/v1/hostname",
            json!({
                "get": {"summary": "The appliance's hostname and whether the OS has it", "responses": {"200": {"description": "{hostname, os_hostname, apply_to_os}"}}},
                "put": {"summary": "Set the hostname (admin; RFC 1123): saved in wirecap.toml, applied to the OS when apply_hostname_to_os = true and the process has CAP_SYS_ADMIN",
                        "requestBody": body(json!({"hostname": {"type": "string"}}), &["hostname"]),
                        "responses": {"200": {"description": "{hostname, os}"}, "400": err, "403": err}},
            }),
        ),
        (
            "/api/v1/report",
            json!({"post": {"summary": "Start a system report (admin): logs, status and counters, config without secrets, streams, interfaces, system; optionally age-encrypted",
                            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "properties": {"recipient": {"type": "string", "description": "age x25519 public key, age1…"}}}}}},
                            "responses": {"202": {"description": "The job: {id, state, steps_done, steps_total}"}, "400": err, "403": err, "409": err}}}),
        ),
        (
            "/api/v1/report/{id}",
            json!({"get": {"summary": "A report job's progress and, when done, its file and download link",
                           "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                           "responses": {"200": {"description": "{id, state: running|done|failed, steps_done, steps_total, step, file, download, error}"}, "404": err}}}),
        ),
        (
            "/api/v1/reports",
            json!({"get": {"summary": "Reports kept in DIR/upload, newest first", "responses": {"200": {"description": "[{file, bytes, modified, download}]"}}}}),
        ),
        (
            "/api/v1/reports/{file}",
            json!({"get": {"summary": "Download a report (.tar.gz or .tar.gz.age)",
                           "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
                           "responses": {"200": {"description": "The archive", "content": {"application/gzip": {}, "application/octet-stream": {}}}, "404": err}}}),
        ),
    ]
}

fn body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ApiError> {
    let v = crate::app::json_body(headers, bytes)?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object").api());
    }
    Ok(v)
}

fn user_error(e: UserError) -> ApiError {
    let status = match &e {
        UserError::InvalidName(_) | UserError::WeakPassword(_) => StatusCode::BAD_REQUEST,
        UserError::Exists(_) | UserError::LastAdmin(_) => StatusCode::CONFLICT,
        UserError::NoSuchUser(_) => StatusCode::NOT_FOUND,
        UserError::Store(inner) => {
            tracing::error!("users: {inner}");
            return ApiError::internal("cannot save the users; see the server log").api();
        }
    };
    ApiError::new(status, e.to_string()).api()
}

fn role_of(v: &Value) -> Result<Option<Role>, ApiError> {
    match v.get("role") {
        None | Some(Value::Null) => Ok(None),
        Some(r) => serde_json::from_value::<Role>(r.clone())
            .map(Some)
            .map_err(|_| ApiError::bad_request("role must be \"admin\" or \"viewer\"").api()),
    }
}

fn users_json(list: Vec<(String, Role)>) -> Value {
    Value::Array(
        list.into_iter()
            .map(|(name, role)| json!({"name": name, "role": role}))
            .collect(),
    )
}

async fn list_users(State(app): State<Shared>) -> Response {
    json_response(StatusCode::OK, &users_json(app.auth.list_users()))
}

async fn add_user(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let v = body(&headers, &bytes)?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(password)) = (field("name"), field("password")) else {
        return Err(
            ApiError::bad_request("body must be {\"name\", \"password\", \"role\"?}").api(),
        );
    };
    let role = role_of(&v)?.unwrap_or(Role::Viewer);
    let a = app.clone();
    let n = name.clone();
    blocking(move || {
        a.auth
            .change_users(&n, |u| u.add(&n, &password, role))
            .map_err(user_error)
    })
    .await?;
    tracing::info!(user = %name, ?role, "user added");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"name": name, "role": role}),
    ))
}

async fn remove_user(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let a = app.clone();
    let n = name.clone();
    blocking(move || {
        a.auth
            .change_users(&n, |u| u.remove(&n))
            .map_err(user_error)
    })
    .await?;
    tracing::info!(user = %crate::query::short(&name), "user removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_user(
    State(app): State<Shared>,
    id: Option<axum::Extension<Identity>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let v = body(&headers, &bytes)?;
    let password = v.get("password").and_then(Value::as_str).map(str::to_owned);
    let role = role_of(&v)?;
    if password.is_none() && role.is_none() {
        return Err(ApiError::bad_request("body must hold \"password\" and/or \"role\"").api());
    }
    // Before anything is saved: a role change must not land when the password is refused.
    if let Some(p) = &password {
        crate::auth::check_password(p).map_err(user_error)?;
    }
    let me = id.map(|e| e.0);
    let peer = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.0.ip());
    let is_admin = me.as_ref().is_some_and(|m| m.role == Role::Admin);
    // The route lets a user reach their own account; a role is an admin's to give.
    if role.is_some() && !is_admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "only an admin changes roles").api());
    }
    // A viewer proves the current password: a borrowed browser session alone must not
    // be enough to take the account over. (Admins set any password anyway.)
    if !is_admin && password.is_some() {
        let current = v
            .get("current_password")
            .and_then(Value::as_str)
            .unwrap_or("");
        let creds = crate::auth::Credentials::Basic {
            user: name.clone(),
            password: current.to_owned(),
        };
        // Through `check`, so that guessing here is slowed like any login.
        if app.auth.check(Some(creds), peer).await.is_err() {
            app.metrics.auth_failure();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "give your current password as current_password",
            )
            .api());
        }
    }
    // Changing one's own password keeps the session it was done in (not a role change:
    // a session carries its role).
    let keep = match crate::auth::credentials(
        None,
        headers.get(header::COOKIE).map(HeaderValue::as_bytes),
    ) {
        Some(crate::auth::Credentials::Session { id })
            if role.is_none() && me.as_ref().is_some_and(|m| m.user == name) =>
        {
            Some(id)
        }
        _ => None,
    };
    let a = app.clone();
    let n = name.clone();
    let role_now = blocking(move || {
        a.auth
            .change_users_keeping(&n, keep.as_deref(), |u| {
                if let Some(r) = role {
                    u.set_role(&n, r)?;
                }
                if let Some(p) = &password {
                    u.set_password(&n, p)?;
                }
                Ok(u.role_of(&n))
            })
            .map_err(user_error)
    })
    .await?;
    tracing::info!(user = %crate::query::short(&name), by = %me.map(|m| m.user).unwrap_or_default(), "user changed");
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": name, "role": role_now}),
    ))
}

fn hostname_json(app: &Shared) -> Value {
    json!({
        "hostname": app.hostname(),
        "os_hostname": crate::hostname::os_hostname(),
        "apply_to_os": app.settings.apply_hostname_to_os,
        "can_apply_to_os": crate::hostname::can_set_os_hostname(),
    })
}

async fn get_hostname(State(app): State<Shared>) -> Response {
    json_response(StatusCode::OK, &hostname_json(&app))
}

async fn set_hostname(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let v = body(&headers, &bytes)?;
    let name = v
        .get("hostname")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("body must be {\"hostname\": \"…\"}").api())?
        .trim()
        .to_owned();
    crate::hostname::validate(&name).map_err(|e| ApiError::bad_request(e).api())?;
    let a = app.clone();
    let os = blocking(move || {
        set_and_apply(&a.settings.data, &name, Some(&a)).map_err(ApiError::internal)
    })
    .await?;
    let mut out = hostname_json(&app);
    out["os"] = json!(os);
    Ok(json_response(StatusCode::OK, &out))
}

/// Persists `name` in `DIR/wirecap.toml`, shows it (when a server runs) and applies it to
/// the OS when the file allows it and the process may. Answers what happened to the OS.
pub fn set_and_apply(
    dir: &std::path::Path,
    name: &str,
    app: Option<&Shared>,
) -> Result<&'static str, String> {
    let c = crate::config::update(dir, "hostname set by wirecap", |c| {
        c.hostname = Some(name.to_owned());
        Ok(())
    })?;
    if let Some(app) = app {
        app.set_hostname(name);
    }
    let os = crate::hostname::apply_to_os(
        name,
        c.apply_hostname_to_os,
        std::path::Path::new(crate::hostname::ETC_HOSTNAME),
    )?;
    tracing::info!(hostname = %name, ?os, "hostname set");
    Ok(match os {
        crate::hostname::OsApply::Applied => "applied",
        crate::hostname::OsApply::NotAllowed => "not applied: apply_hostname_to_os is off",
        crate::hostname::OsApply::NoCapability => "not applied: no CAP_SYS_ADMIN",
    })
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::Recipient(_) => ApiError::bad_request(e.to_string()).api(),
        ReportError::Busy(_) => ApiError::conflict(e.to_string()).api(),
        other => {
            tracing::error!("report: {other}");
            ApiError::internal("cannot make the report; see the server log").api()
        }
    }
}

async fn start_report(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let v = if bytes.is_empty() {
        json!({})
    } else {
        body(&headers, &bytes)?
    };
    let recipient = match v.get("recipient").and_then(Value::as_str) {
        Some(r) if !r.trim().is_empty() => Some(report::parse_recipient(r).map_err(report_error)?),
        _ => None,
    };
    let status = crate::app::status_json(&app, wirecap_capture::counters::HISTORY_SECONDS);
    let input = report::Input {
        dir: app.settings.data.clone(),
        hostname: app.hostname(),
        status: Some(status),
        recipient,
        now_ns: wirecap_store::now_ns(),
    };
    let job = app.reports.start(input).map_err(report_error)?;
    Ok(json_response(StatusCode::ACCEPTED, &job.to_json()))
}

async fn report_job(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = id
        .parse::<u64>()
        .ok()
        .and_then(|i| app.reports.get(i))
        .ok_or_else(|| {
            ApiError::not_found(format!("no report job {}", crate::query::short(&id))).api()
        })?;
    Ok(json_response(StatusCode::OK, &job.to_json()))
}

async fn list_reports(State(app): State<Shared>) -> Result<Response, ApiError> {
    let dir = app.settings.data.clone();
    let list = blocking(move || Ok(report::list(&dir))).await?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(
            list.into_iter()
                .map(|(file, bytes, t)| {
                    json!({
                        "file": file,
                        "bytes": bytes,
                        "modified": wirecap_store::timefmt::rfc3339(t),
                        "download": format!("/api/v1/reports/{file}"),
                    })
                })
                .collect(),
        ),
    ))
}

async fn download_report(
    State(app): State<Shared>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    if !report::valid_file_name(&file) {
        return Err(ApiError::not_found("no such report").api());
    }
    let path = app.settings.data.join(report::UPLOAD_DIR).join(&file);
    let bytes =
        blocking(move || std::fs::read(&path).map_err(|_| ApiError::not_found("no such report")))
            .await?;
    let ct = if file.ends_with(".age") {
        "application/octet-stream"
    } else {
        "application/gzip"
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    let mut r = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
