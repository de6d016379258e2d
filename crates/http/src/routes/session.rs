//! Browser sessions: the UI logs in once and then rides on a cookie (Basic auth stays for
//! scripts).
//!
//! * `POST /api/v1/session` `{"user", "password"}` checks the password through
//!   [`Authenticator::check`](wirecap_appliance::auth::Authenticator::check) (so failures slow the address down exactly as with Basic
//!   auth), then issues a random 256-bit session id in the cookie
//!   `wirecap_session` (`HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when the
//!   browser came over HTTPS) and a random CSRF token in the JSON answer.
//! * Every later request with the cookie is the session's user. Requests that change
//!   something (any method but GET/HEAD/OPTIONS, and the manual's GET routes that start
//!   or stop a capture) must carry the token in `X-CSRF-Token`, and when the browser says
//!   where it comes from (`Origin`) it must be this host: a page of another site can
//!   neither read the token nor send the cookie (SameSite), so it cannot act for the user.
//! * `GET /api/v1/session` tells the UI who it is (and the token again, after a reload);
//!   `DELETE /api/v1/session` logs out.
//! * Sessions live in memory: a restart signs everyone out. They end after
//!   [`IDLE_TIMEOUT`](wirecap_appliance::session::IDLE_TIMEOUT) without a request or [`MAX_AGE`] after login.
//!
//! An unknown or expired session id is refused like missing credentials, without the
//! failure penalty: ids are unguessable, and a browser with a stale cookie must not slow
//! its user's next login down.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wirecap_appliance::auth::{Credentials, Identity, Role, credentials};
use wirecap_appliance::session::{COOKIE, MAX_AGE};

use crate::csrf::same_origin;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::respond::json_no_store;
use crate::state::Shared;

/// `POST /api/v1/session`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
}

/// Who the browser's session is, and the token its changes carry in `X-CSRF-Token`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    pub csrf: String,
    pub hostname: String,
    pub role: Role,
    pub user: String,
}

/// The most a login body may hold.
const MAX_LOGIN_BODY: usize = 8192;

fn refuse(status: StatusCode, why: &str) -> Response {
    ApiError::new(status, why).api().into_response()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    match credentials(None, headers.get(header::COOKIE).map(HeaderValue::as_bytes)) {
        Some(Credentials::Session { id }) => Some(id),
        _ => None,
    }
}

fn me(app: &Shared, identity: &Identity, csrf: &str) -> Response {
    json_no_store(
        StatusCode::OK,
        &SessionInfo {
            csrf: csrf.to_owned(),
            hostname: app.hostname(),
            role: identity.role,
            user: identity.user.clone(),
        },
    )
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session", responses((status = 200, body = SessionInfo), (status = "default", body = ErrorBody)))]
pub(crate) async fn whoami(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match session_id(&headers).and_then(|id| app.auth.sessions.get(&id)) {
        Some((identity, csrf)) => me(&app, &identity, &csrf),
        // Signed in with Basic auth, not a session: nothing to tell the UI.
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "not signed in (this route is for the browser's session)",
        ),
    }
}

#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest, responses((status = 200, body = SessionInfo, description = "signed in; the cookie is set"), (status = "default", body = ErrorBody)))]
pub(crate) async fn login(State(app): State<Shared>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let headers = req.headers().clone();
    // A JSON body cannot come from a cross-site form without a CORS preflight (never
    // granted): no login CSRF.
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same_origin(req.uri(), &headers) {
        return refuse(StatusCode::FORBIDDEN, "login from another origin refused");
    }
    if !ct.trim_start().starts_with("application/json") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send {\"user\", \"password\"} as Content-Type: application/json",
        );
    }
    // Smaller than other bodies: anyone may send this one.
    let body = match axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let LoginRequest { user, password } = match crate::body::parse(&body) {
        Ok(l) => l,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "body must be {\"user\": \"…\", \"password\": \"…\"}",
            );
        }
    };
    let user = user.as_str();
    let creds = Credentials::Basic {
        user: user.to_owned(),
        password,
    };
    let generation = app.auth.generation();
    let identity = match app.auth.check(Some(creds), peer).await {
        Ok(i) => i,
        Err(_) => {
            app.metrics.auth_failure();
            tracing::warn!(%peer, user = %wirecap_appliance::short(user), "wrong credentials at login");
            return refuse(StatusCode::UNAUTHORIZED, "wrong user name or password");
        }
    };
    if let Some(old) = session_id(&headers) {
        app.auth.sessions.remove(&old);
    }
    let (id, csrf) = app.auth.sessions.create(identity.clone());
    // The users changed while the password was checked: the check may have read the old
    // ones. A change bumps the generation before it ends sessions, so one of the two
    // catches a session opened in between.
    if app.auth.generation() != generation {
        app.auth.sessions.remove(&id);
        return refuse(
            StatusCode::CONFLICT,
            "the users changed while signing in: sign in again",
        );
    }
    let https = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        MAX_AGE.as_secs(),
        if https { "; Secure" } else { "" }
    );
    tracing::info!(%peer, user = %identity.user, "signed in");
    let mut r = me(&app, &identity, &csrf);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204, description = "signed out"), (status = "default", body = ErrorBody)))]
pub(crate) async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        app.auth.sessions.remove(&id);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("wirecap_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}
