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

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use wirecap_appliance::api::Status;
use wirecap_appliance::auth::{Identity, Role};
use wirecap_appliance::{config, hostname, report};

use crate::body::Json;
use crate::error::{ApiError, ErrorBody};
use crate::respond::{blocking, json_no_store as json_response};
use crate::state::Shared;

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    /// `viewer` when not given.
    pub role: Option<Role>,
}

/// `PATCH /api/v1/users/{name}`: a new password and/or role.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserChange {
    pub password: Option<String>,
    /// A viewer changing their own password proves the current one.
    pub current_password: Option<String>,
    /// An admin's to give.
    pub role: Option<Role>,
}

/// `PUT /api/v1/hostname`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HostnameChange {
    pub hostname: String,
}

/// `POST /api/v1/report` (the body may be left out).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReportRequest {
    /// An age recipient (`age1…`) to encrypt the report to.
    pub recipient: Option<String>,
}

/// A user and their role.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Option<Role>,
}

fn users_json(list: Vec<(String, Role)>) -> Vec<User> {
    list.into_iter()
        .map(|(name, role)| User {
            name,
            role: Some(role),
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/users", tag = "admin",
    responses((status = 200, body = Vec<User>), (status = "default", body = ErrorBody)))]
pub(crate) async fn list_users(State(app): State<Shared>) -> Response {
    json_response(StatusCode::OK, &users_json(app.auth.list_users()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = User), (status = "default", body = ErrorBody)))]
pub(crate) async fn add_user(
    State(app): State<Shared>,
    Json(v): Json<NewUser>,
) -> Result<Response, ApiError> {
    let NewUser {
        name,
        password,
        role,
    } = v;
    let role = role.unwrap_or(Role::Viewer);
    let a = app.clone();
    let n = name.clone();
    blocking(move || {
        a.auth
            .change_users(&n, |u| u.add(&n, &password, role))
            .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(user = %name, ?role, "user added");
    Ok(json_response(
        StatusCode::CREATED,
        &User {
            name,
            role: Some(role),
        },
    ))
}

#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "admin", params(("name" = String, Path)),
    responses((status = 204, description = "removed"), (status = "default", body = ErrorBody)))]
pub(crate) async fn remove_user(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let a = app.clone();
    let n = name.clone();
    blocking(move || {
        a.auth
            .change_users(&n, |u| u.remove(&n))
            .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(user = %wirecap_appliance::short(&name), "user removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(patch, path = "/api/v1/users/{name}", tag = "admin", params(("name" = String, Path)),
    request_body = UserChange, responses((status = 200, body = User), (status = "default", body = ErrorBody)))]
pub(crate) async fn change_user(
    State(app): State<Shared>,
    id: Option<axum::Extension<Identity>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Json(v): Json<UserChange>,
) -> Result<Response, ApiError> {
    let UserChange {
        password,
        current_password,
        role,
    } = v;
    if password.is_none() && role.is_none() {
        return Err(ApiError::bad_request(
            "body must hold \"password\" and/or \"role\"",
        ));
    }
    // Before anything is saved: a role change must not land when the password is refused.
    if let Some(p) = &password {
        wirecap_appliance::auth::check_password(p).map_err(ApiError::from)?;
    }
    let me = id.map(|e| e.0);
    let peer = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.0.ip());
    let is_admin = me.as_ref().is_some_and(|m| m.role == Role::Admin);
    // The route lets a user reach their own account; a role is an admin's to give.
    if role.is_some() && !is_admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only an admin changes roles",
        ));
    }
    // A viewer proves the current password: a borrowed browser session alone must not
    // be enough to take the account over. (Admins set any password anyway.)
    if !is_admin && password.is_some() {
        let current = current_password.as_deref().unwrap_or("");
        let creds = wirecap_appliance::auth::Credentials::Basic {
            user: name.clone(),
            password: current.to_owned(),
        };
        // Through `check`, so that guessing here is slowed like any login.
        if app.auth.check(Some(creds), peer).await.is_err() {
            app.metrics.auth_failure();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "give your current password as current_password",
            ));
        }
    }
    // Changing one's own password keeps the session it was done in (not a role change:
    // a session carries its role).
    let keep = match wirecap_appliance::auth::credentials(
        None,
        headers.get(header::COOKIE).map(HeaderValue::as_bytes),
    ) {
        Some(wirecap_appliance::auth::Credentials::Session { id })
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
            .map_err(ApiError::from)
    })
    .await?;
    tracing::info!(user = %wirecap_appliance::short(&name), by = %me.map(|m| m.user).unwrap_or_default(), "user changed");
    Ok(json_response(
        StatusCode::OK,
        &User {
            name,
            role: role_now,
        },
    ))
}

/// The appliance's name, the OS's, and whether one is applied to the other.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hostname {
    /// `apply_hostname_to_os` in `wirecap.toml`.
    pub apply_to_os: bool,
    /// Whether this process may rename the OS (CAP_SYS_ADMIN).
    pub can_apply_to_os: bool,
    pub hostname: String,
    /// What a change did to the OS (only in `PUT`'s answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    pub os_hostname: String,
}

fn hostname_json(app: &Shared) -> Hostname {
    Hostname {
        apply_to_os: app.settings.apply_hostname_to_os,
        can_apply_to_os: hostname::can_set_os_hostname(),
        hostname: app.hostname(),
        os: None,
        os_hostname: hostname::os_hostname(),
    }
}

#[utoipa::path(get, path = "/api/v1/hostname", tag = "admin",
    responses((status = 200, body = Hostname), (status = "default", body = ErrorBody)))]
pub(crate) async fn get_hostname(State(app): State<Shared>) -> Response {
    json_response(StatusCode::OK, &hostname_json(&app))
}

#[utoipa::path(put, path = "/api/v1/hostname", tag = "admin", request_body = HostnameChange,
    responses((status = 200, body = Hostname, description = "as GET, and what was done to the OS (`os`)"), (status = "default", body = ErrorBody)))]
pub(crate) async fn set_hostname(
    State(app): State<Shared>,
    Json(v): Json<HostnameChange>,
) -> Result<Response, ApiError> {
    let name = v.hostname.trim().to_owned();
    hostname::validate(&name).map_err(ApiError::bad_request)?;
    let a = app.clone();
    let os = blocking(move || {
        config::set_hostname(&a.settings.data, &name, |n| a.set_hostname(n))
            .map_err(ApiError::internal)
    })
    .await?;
    let mut out = hostname_json(&app);
    out.os = Some(os.to_owned());
    Ok(json_response(StatusCode::OK, &out))
}

#[utoipa::path(post, path = "/api/v1/report", tag = "admin", request_body = Option<ReportRequest>,
    responses((status = 202, body = serde_json::Value, description = "the job"), (status = "default", body = ErrorBody)))]
pub(crate) async fn start_report(
    State(app): State<Shared>,
    v: Option<Json<Option<ReportRequest>>>,
) -> Result<Response, ApiError> {
    let v = v.and_then(|Json(v)| v).unwrap_or_default();
    let recipient = match v.recipient.as_deref() {
        Some(r) if !r.trim().is_empty() => {
            Some(report::parse_recipient(r).map_err(ApiError::from)?)
        }
        _ => None,
    };
    let status = Status::of(
        &app.engine,
        &app.ops,
        app.hostname(),
        wirecap_capture::counters::HISTORY_SECONDS,
    );
    let input = report::Input {
        dir: app.settings.data.clone(),
        hostname: app.hostname(),
        status: Some(Box::new(status)),
        recipient,
        now_ns: wirecap_store::now_ns(),
    };
    let job = app.reports.start(input).map_err(ApiError::from)?;
    Ok(json_response(StatusCode::ACCEPTED, &job.to_json()))
}

#[utoipa::path(get, path = "/api/v1/report/{id}", tag = "admin", params(("id" = u64, Path)),
    responses((status = 200, body = serde_json::Value, description = "the job: state, steps, file"), (status = "default", body = ErrorBody)))]
pub(crate) async fn report_job(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = id
        .parse::<u64>()
        .ok()
        .and_then(|i| app.reports.get(i))
        .ok_or_else(|| {
            ApiError::not_found(format!("no report job {}", wirecap_appliance::short(&id)))
        })?;
    Ok(json_response(StatusCode::OK, &job.to_json()))
}

/// A system report on disk.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportFile {
    pub bytes: u64,
    pub download: String,
    pub file: String,
    pub modified: String,
}

#[utoipa::path(get, path = "/api/v1/reports", tag = "admin",
    responses((status = 200, body = Vec<ReportFile>), (status = "default", body = ErrorBody)))]
pub(crate) async fn list_reports(State(app): State<Shared>) -> Result<Response, ApiError> {
    let dir = app.settings.data.clone();
    let list = blocking(move || Ok(report::list(&dir))).await?;
    Ok(json_response(
        StatusCode::OK,
        &list
            .into_iter()
            .map(|(file, bytes, t)| ReportFile {
                bytes,
                download: format!("/api/v1/reports/{file}"),
                file,
                modified: wirecap_store::timefmt::rfc3339(t),
            })
            .collect::<Vec<_>>(),
    ))
}

#[utoipa::path(get, path = "/api/v1/reports/{file}", tag = "admin", params(("file" = String, Path)),
    responses((status = 200, description = "the archive", content_type = "application/gzip"), (status = "default", body = ErrorBody)))]
pub(crate) async fn download_report(
    State(app): State<Shared>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    if !report::valid_file_name(&file) {
        return Err(ApiError::not_found("no such report"));
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
