//! Browser sessions: the UI logs in once and then rides on a cookie (Basic auth stays for
//! scripts).
//!
//! * `POST /api/v1/session` `{"user", "password"}` checks the password through
//!   [`Authenticator::check`] (so failures slow the address down exactly as with Basic
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
//!   [`IDLE_TIMEOUT`] without a request or [`MAX_AGE`] after login.
//!
//! An unknown or expired session id is refused like missing credentials, without the
//! failure penalty: ids are unguessable, and a browser with a stale cookie must not slow
//! its user's next login down.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::json;

use crate::app::Shared;
use crate::auth::{Credentials, Identity, Refusal, credentials};

/// The session cookie's name (also read by [`crate::auth::credentials`]).
pub const COOKIE: &str = "wirecap_session";
/// The header that must carry the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header the UI sends so that a 401 comes without `WWW-Authenticate: Basic` (which
/// would make the browser pop up its own password dialog).
pub const UI_HEADER: &str = "x-wirecap-ui";
/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after login, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    identity: Identity,
    csrf: String,
    created: Instant,
    last: Instant,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.last) < IDLE_TIMEOUT && now.duration_since(self.created) < MAX_AGE
    }
}

/// The live sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Constant-time comparison of two tokens.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// Opens a session for `identity`: (session id, CSRF token).
    pub fn create(&self, identity: Identity) -> (String, String) {
        let now = Instant::now();
        let (id, csrf) = (token(), token());
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_SESSIONS {
            m.retain(|_, s| s.alive(now));
            if m.len() >= MAX_SESSIONS
                && let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            id.clone(),
            Session {
                identity,
                csrf: csrf.clone(),
                created: now,
                last: now,
            },
        );
        (id, csrf)
    }

    /// The user of a live session (and its CSRF token), marking it used.
    pub fn get(&self, id: &str) -> Option<(Identity, String)> {
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(id) {
            Some(s) if s.alive(now) => {
                s.last = now;
                Some((s.identity.clone(), s.csrf.clone()))
            }
            Some(_) => {
                m.remove(id);
                None
            }
            None => None,
        }
    }

    /// What [`crate::auth::Authenticator::check`] answers for a session cookie.
    pub fn check(&self, id: &str) -> Result<Identity, Refusal> {
        self.get(id).map(|(i, _)| i).ok_or(Refusal::Missing)
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Ends every session of `user` (after a password change or removal).
    pub fn remove_user(&self, user: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.identity.user != user);
    }

    /// Ends every session of `user` but `keep`.
    pub fn remove_user_except(&self, user: &str, keep: Option<&str>) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, s| s.identity.user != user || Some(id.as_str()) == keep);
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Does this request change something? (The manual's capture routes are GETs that do.)
pub fn is_unsafe(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || crate::access::CHANGING_GETS.contains(&path)
}

/// Routes the guard lets through without credentials: the login itself.
pub fn is_public(method: &Method, path: &str) -> bool {
    path == "/api/v1/session" && *method == Method::POST
}

/// For a request authenticated by the session `id`: refuses an unsafe one that lacks the
/// session's CSRF token or comes from another origin. `Err` holds the reason.
pub fn csrf_check(
    sessions: &Sessions,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    if !is_unsafe(method, uri.path()) {
        return Ok(());
    }
    let Some((_, csrf)) = sessions.get(id) else {
        return Err("session expired: sign in again");
    };
    let sent = headers
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if !same(sent, csrf.as_bytes()) {
        return Err("missing or wrong X-CSRF-Token for this session");
    }
    if !same_origin(uri, headers) {
        return Err("request from another origin refused");
    }
    Ok(())
}

/// False when the browser names an `Origin` whose host is not the one it asked: the
/// `Host` header (HTTP/1.1) or the URI's authority (HTTP/2 has no `Host`).
fn same_origin(uri: &Uri, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, h)| h)
        .trim_end_matches('/');
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Does a 401 for this request get `WWW-Authenticate: Basic`? Not for the UI's own calls.
pub fn wants_basic_challenge(headers: &HeaderMap) -> bool {
    headers.get(UI_HEADER).is_none()
}

/// `GET`/`DELETE /api/v1/session` (behind the guard) and `POST` (public).
pub fn routes() -> Router<Shared> {
    Router::new().route("/api/v1/session", get(whoami).post(login).delete(logout))
}

/// The session routes for the OpenAPI document.
pub fn openapi_paths() -> Vec<(&'static str, serde_json::Value)> {
    let err = json!({"$ref": "#/components/responses/ApiError"});
    vec![(
        "/api/v1/session",
        json!({
            "get": {"summary": "The browser session's user, role and CSRF token (cookie wirecap_session)",
                    "responses": {"200": {"description": "Signed in"}, "401": err}},
            "post": {"summary": "Sign in: {user, password} → session cookie (HttpOnly, SameSite=Strict) and CSRF token; no credentials needed",
                     "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                         "properties": {"user": {"type": "string"}, "password": {"type": "string"}}, "required": ["user", "password"]}}}},
                     "responses": {"200": {"description": "Signed in; Set-Cookie"}, "401": err, "403": err, "415": err}},
            "delete": {"summary": "Sign out (X-CSRF-Token required with the cookie)", "responses": {"204": {"description": "Signed out"}}},
        }),
    )]
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        v.to_string(),
    )
        .into_response()
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    match credentials(None, headers.get(header::COOKIE).map(HeaderValue::as_bytes)) {
        Some(Credentials::Session { id }) => Some(id),
        _ => None,
    }
}

fn me(app: &Shared, identity: &Identity, csrf: &str) -> serde_json::Value {
    json!({
        "user": identity.user,
        "role": identity.role,
        "csrf": csrf,
        "hostname": app.hostname(),
    })
}

async fn whoami(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match session_id(&headers).and_then(|id| app.auth.sessions.get(&id)) {
        Some((identity, csrf)) => json(StatusCode::OK, &me(&app, &identity, &csrf)),
        // Signed in with Basic auth, not a session: nothing to tell the UI.
        None => json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "not signed in (this route is for the browser's session)"}),
        ),
    }
}

async fn login(State(app): State<Shared>, req: Request) -> Response {
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
        return json(
            StatusCode::FORBIDDEN,
            &json!({"error": "login from another origin refused"}),
        );
    }
    if !ct.trim_start().starts_with("application/json") {
        return json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &json!({"error": "send {\"user\", \"password\"} as Content-Type: application/json"}),
        );
    }
    let body: Bytes = match axum::body::to_bytes(req.into_body(), 8192).await {
        Ok(b) => b,
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": "body too large"}),
            );
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(user), Some(password)) = (
        v.get("user").and_then(|x| x.as_str()),
        v.get("password").and_then(|x| x.as_str()),
    ) else {
        return json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "body must be {\"user\": \"…\", \"password\": \"…\"}"}),
        );
    };
    let creds = Credentials::Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    };
    let generation = app.auth.generation();
    let identity = match app.auth.check(Some(creds), peer).await {
        Ok(i) => i,
        Err(_) => {
            app.metrics.auth_failure();
            tracing::warn!(%peer, user = %crate::query::short(user), "wrong credentials at login");
            return json(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "wrong user name or password"}),
            );
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
        return json(
            StatusCode::CONFLICT,
            &json!({"error": "the users changed while signing in: sign in again"}),
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
    let mut r = json(StatusCode::OK, &me(&app, &identity, &csrf));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            role: Role::Admin,
        }
    }

    #[test]
    fn sessions_issue_look_up_and_end() {
        let s = Sessions::default();
        let (id, csrf) = s.create(alice());
        assert_eq!(id.len(), 43);
        assert_ne!(id, csrf);
        assert_eq!(s.check(&id), Ok(alice()));
        assert_eq!(s.get(&id).map(|x| x.1), Some(csrf));
        assert_eq!(s.check("nope"), Err(Refusal::Missing));
        s.remove(&id);
        assert_eq!(s.check(&id), Err(Refusal::Missing));
        let (a, _) = s.create(alice());
        s.remove_user("alice");
        assert!(s.get(&a).is_none() && s.is_empty());
        let (a, _) = s.create(alice());
        let (b, _) = s.create(alice());
        s.remove_user_except("alice", Some(&b));
        assert!(s.get(&a).is_none() && s.get(&b).is_some());
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn origin_is_checked_against_the_http2_authority_too() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://10.0.0.1:8443"),
        );
        assert!(same_origin(
            &uri("https://10.0.0.1:8443/api/v1/session"),
            &h
        ));
        assert!(!same_origin(
            &uri("https://10.0.0.2:8443/api/v1/session"),
            &h
        ));
        assert!(!same_origin(&uri("/api/v1/session"), &h), "no host at all");
        h.insert(header::HOST, HeaderValue::from_static("10.0.0.1:8443"));
        assert!(same_origin(&uri("/api/v1/session"), &h));
    }

    #[test]
    fn unsafe_requests_need_the_token_and_this_origin() {
        let s = Sessions::default();
        let (id, csrf) = s.create(alice());
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(
            csrf_check(&s, &id, &Method::GET, &uri("/api/v1/streams"), &h),
            Ok(())
        );
        assert!(csrf_check(&s, &id, &Method::POST, &uri("/api/v1/capture/start"), &h).is_err());
        assert!(csrf_check(&s, &id, &Method::GET, &uri("/sysmaster/capture_start"), &h).is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf).unwrap());
        assert_eq!(
            csrf_check(&s, &id, &Method::POST, &uri("/api/v1/capture/start"), &h),
            Ok(())
        );
        assert_eq!(
            csrf_check(&s, &id, &Method::GET, &uri("/sysmaster/capture_stop"), &h),
            Ok(())
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(csrf_check(&s, &id, &Method::DELETE, &uri("/api/v1/streams/x"), &h).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert_eq!(
            csrf_check(&s, &id, &Method::DELETE, &uri("/api/v1/streams/x"), &h),
            Ok(())
        );
        h.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(csrf_check(&s, &id, &Method::DELETE, &uri("/api/v1/streams/x"), &h).is_err());
    }

    #[test]
    fn only_the_login_is_public() {
        assert!(is_public(&Method::POST, "/api/v1/session"));
        assert!(!is_public(&Method::GET, "/api/v1/session"));
        assert!(!is_public(&Method::DELETE, "/api/v1/session"));
        assert!(!is_public(&Method::POST, "/api/v1/capture/start"));
    }
}
