//! The whole application in-process: `wirecap_http::router(state)` over a temporary data
//! directory, driven with `tower::ServiceExt::oneshot` (no listener, no child process).
//! Authentication, the access rule on every route of the route table, the error format of
//! each family, and byte ranges of a download.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use tower::ServiceExt as _;

use wirecap_appliance::auth::{Authenticator, Role, Users};
use wirecap_appliance::config::{FileConfig, ServeArgs, Settings, SourceChoice};
use wirecap_appliance::engine::Engine;
use wirecap_appliance::metrics::Metrics;
use wirecap_appliance::operations::Operations;
use wirecap_http::download::Slots;
use wirecap_http::{AppState, Shared, router, routes};
use wirecap_pcap::{LinkType, Packet};
use wirecap_store::{Store, StreamParams};

const PW: &str = "test-Pa55word";

/// An appliance over a fresh data directory: users `admin` and `viewer` (password [`PW`]),
/// one sealed stream `s_…` of 500 packets, a synthetic source that is not capturing.
struct App {
    _dir: tempfile::TempDir,
    state: Shared,
    stream: String,
}

impl App {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let store = Store::open(&data).unwrap();
        let params = StreamParams {
            link_type: LinkType::ETHERNET,
            snaplen: 65535,
            source: "test".into(),
        };
        let mut w = store
            .create_stream("s", &params, SystemTime::now())
            .unwrap();
        for i in 0..500u32 {
            let frame: Vec<u8> = (0..(60 + i % 200)).map(|j| (i + j) as u8).collect();
            w.append(&Packet {
                ts_sec: 1_700_000_000 + u64::from(i / 10),
                ts_nsec: (i % 10) * 100_000_000,
                orig_len: frame.len() as u32,
                data: &frame,
                interface: 0,
            })
            .unwrap();
        }
        let stream = w.name().to_owned();
        w.seal().unwrap();
        let (mut users, _) = Users::open_or_init(&data, Some(PW)).unwrap();
        users.add("viewer", PW, Role::Viewer).unwrap();
        let source = SourceChoice::Synthetic(100);
        let engine = Arc::new(Engine::new(store, source.clone()).unwrap());
        let file = FileConfig::default();
        let settings = Settings::resolve(
            ServeArgs {
                data: data.clone(),
                http: Some("127.0.0.1:0".into()),
                https: None,
                source: Some(source),
                forward: None,
                capture: Default::default(),
                ..ServeArgs::default()
            },
            file.clone(),
        );
        let ops = Arc::new(Operations::new(&data, &file, &engine));
        let state = Arc::new(AppState {
            engine,
            auth: Authenticator::new(users),
            metrics: Metrics::new(),
            slots: Slots::default(),
            settings,
            ops,
            hostname: std::sync::RwLock::new("test".into()),
            reports: Default::default(),
        });
        Self {
            _dir: dir,
            state,
            stream,
        }
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let r = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = axum::body::to_bytes(r.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// Refused by the guard (credentials, role, CSRF), not answered by the handler. A
    /// handler may answer 401 or 403 itself (`GET /api/v1/session` without a session).
    fn guard_refused(&self) -> bool {
        let t = self.text();
        (self.status == StatusCode::UNAUTHORIZED && t.contains("authentication required"))
            || (self.status == StatusCode::FORBIDDEN
                && (t.contains("needs the admin role") || t.contains("CSRF") || t.contains("csrf")))
    }
    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// A request from `peer` (the failure back-off is per address: each test that sends
/// wrong credentials uses its own).
fn req(method: &Method, path: &str, auth: Option<&str>, peer: u8) -> Request<Body> {
    let mut b = Request::builder().method(method.clone()).uri(path);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    let mut r = b.body(Body::empty()).unwrap();
    r.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, peer)),
        40000,
    )));
    r
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str, stream: &str) -> String {
    pattern
        .replace("{name}", stream)
        .replace("{view}", "minute")
        .replace("{version}", "0.0.0")
        .replace("{id}", "1")
        .replace("{file}", "nosuch.tar.gz")
        .replace("{*path}", "nosuch.js")
}

/// Public without credentials, by the design (the UI's login page, its code, the login).
fn public(method: &Method, pattern: &str) -> bool {
    // `/en.files.html` reads nothing: it sends a browser to the UI's login (issue 14.12).
    matches!(
        pattern,
        "/" | "/index.html" | "/ui/{*path}" | "/en.files.html"
    ) || (*method == Method::POST && pattern == "/api/v1/session")
}

/// What a viewer may do besides reading, by the design: compute (filter check, analysis),
/// sign out, change their own password. System reports are admin-only, reading them too:
/// they hold client addresses and the user list (issue 17.10).
fn viewer_may(method: &Method, pattern: &str) -> bool {
    if *method == Method::GET {
        return !matches!(
            pattern,
            "/sysmaster/capture_start" | "/sysmaster/capture_stop"
        ) && !pattern.starts_with("/api/v1/report")
            && pattern != "/api/v1/tokens"
            && pattern != "/api/v1/alerts";
    }
    matches!(
        (method.as_str(), pattern),
        ("POST", "/api/v1/ui/filter/check")
            | ("POST", "/api/v1/ui/streams/{name}/analysis")
            | ("POST", "/api/v1/ui/streams/{name}/analyses")
            | ("DELETE", "/api/v1/ui/analyses/{id}")
            | ("DELETE", "/api/v1/session")
            | ("POST", "/api/v1/session")
    )
}

#[test]
fn the_route_table_is_what_the_router_serves() {
    let table = routes();
    assert!(table.len() >= 60, "{} routes", table.len());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = App::new();
    // A path not in the table is the router's 404, one in it is not.
    let r = rt.block_on(app.send(req(
        &Method::GET,
        "/api/v1/nosuch",
        Some(&basic("admin", PW)),
        1,
    )));
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    for (m, p) in table {
        assert!(
            p.starts_with('/') && !p.contains("//"),
            "{m} {p}: not a path"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_only_the_login_and_the_ui_files_answer() {
    let app = App::new();
    let mut checked = 0;
    for (m, p) in routes() {
        let path = concrete(p, &app.stream);
        let r = app.send(req(m, &path, None, 2)).await;
        if public(m, p) {
            assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{m} {path} is public");
            continue;
        }
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{m} {path}: {}",
            r.text()
        );
        assert!(
            r.text().contains("authentication required"),
            "{m} {path}: {}",
            r.text()
        );
        assert!(
            r.header(header::WWW_AUTHENTICATE).starts_with("Basic "),
            "{m} {path}: no Basic challenge"
        );
        checked += 1;
    }
    assert!(checked >= 55, "only {checked} routes refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_everywhere_and_right_ones_pass() {
    let app = App::new();
    let status = "/api/v1/status";
    for (i, bad) in [
        basic("admin", "wrong-password"),
        basic("nobody", PW),
        basic("admin", ""),
        "Basic !!!notbase64".to_owned(),
        "Bearer abc".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let r = app
            .send(req(&Method::GET, status, Some(bad), 10 + i as u8))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}: {}", r.text());
    }
    let r = app
        .send(req(&Method::GET, status, Some(&basic("admin", PW)), 20))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app
        .send(req(&Method::GET, status, Some(&basic("viewer", PW)), 20))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_may_read_every_route_and_write_none() {
    let app = App::new();
    let viewer = basic("viewer", PW);
    let (mut refused, mut allowed) = (0, 0);
    for (m, p) in routes() {
        if public(m, p) {
            continue;
        }
        let path = concrete(p, &app.stream);
        let r = app.send(req(m, &path, Some(&viewer), 3)).await;
        if viewer_may(m, p) {
            assert!(
                !r.guard_refused(),
                "viewer {m} {path}: {} {}",
                r.status,
                r.text()
            );
            allowed += 1;
        } else {
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "viewer {m} {path}: {}",
                r.text()
            );
            assert!(
                r.text()
                    .contains("viewer is a viewer: this needs the admin role"),
                "viewer {m} {path}: {}",
                r.text()
            );
            refused += 1;
        }
    }
    // Their own password, not another's.
    let r = app
        .send(req(&Method::PATCH, "/api/v1/users/admin", Some(&viewer), 3))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = app
        .send(req(
            &Method::PATCH,
            "/api/v1/users/viewer",
            Some(&viewer),
            3,
        ))
        .await;
    assert!(!r.guard_refused(), "own account: {} {}", r.status, r.text());
    assert!(
        refused >= 15 && allowed >= 30,
        "{refused} refused, {allowed} allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_passes_the_guard_on_every_route() {
    let app = App::new();
    let admin = basic("admin", PW);
    for (m, p) in routes() {
        // Routes that would act for real (start a capture, a report, remove a stream) are
        // covered by the end-to-end tests; here the guard's answer matters.
        if matches!(
            p,
            &"/sysmaster/capture_start" | &"/api/v1/capture/start" | &"/api/v1/report"
        ) || (*m == Method::DELETE && p.starts_with("/api/v1/streams/"))
        {
            continue;
        }
        let path = concrete(p, &app.stream);
        let r = app.send(req(m, &path, Some(&admin), 4)).await;
        assert!(
            !r.guard_refused(),
            "admin {m} {path}: {} {}",
            r.status,
            r.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_signs_in_and_needs_its_csrf_token_to_write() {
    let app = App::new();
    let login = |body: &str| {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 5], 1))));
        r
    };
    let r = app
        .send(login(r#"{"user":"admin","password":"not-it"}"#))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.header(header::SET_COOKIE).is_empty());
    let r = app
        .send(login(&format!(r#"{{"user":"admin","password":"{PW}"}}"#)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let set = r.header(header::SET_COOKIE);
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    let with_cookie = |m: Method, path: &str, token: Option<&str>| {
        let mut r = req(&m, path, None, 6);
        r.headers_mut()
            .insert(header::COOKIE, cookie.parse().unwrap());
        if let Some(t) = token {
            r.headers_mut().insert("x-csrf-token", t.parse().unwrap());
        }
        r
    };
    let r = app
        .send(with_cookie(Method::GET, "/api/v1/session", None))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["user"], "admin");
    // A write without the token, or with another, is refused before the handler runs.
    let path = format!("/api/v1/streams/{}/pin", app.stream);
    for token in [None, Some("0123456789abcdef")] {
        let r = app.send(with_cookie(Method::PUT, &path, token)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{token:?}: {}", r.text());
    }
    let r = app
        .send(with_cookie(Method::GET, "/sysmaster/capture_stop", None))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // With the token the handler answers (no body: its own 4xx, not the guard's).
    let r = app.send(with_cookie(Method::PUT, &path, Some(&csrf))).await;
    assert!(!r.guard_refused(), "{} {}", r.status, r.text());
    // Signing out ends the session.
    let r = app
        .send(with_cookie(Method::DELETE, "/api/v1/session", Some(&csrf)))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = app
        .send(with_cookie(Method::GET, "/api/v1/status", None))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_family_answers_errors_in_its_own_format() {
    let app = App::new();
    let admin = basic("admin", PW);
    // The JSON API: {"error", "status"}.
    for (path, auth, want) in [
        (
            "/api/v1/nosuch",
            Some(admin.as_str()),
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/streams", None, StatusCode::UNAUTHORIZED),
        (
            "/api/v1/streams/no_such_stream_20250101_0000",
            Some(admin.as_str()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = app.send(req(&Method::GET, path, auth, 7)).await;
        assert_eq!(r.status, want, "{path}: {}", r.text());
        assert_eq!(r.header(header::CONTENT_TYPE), "application/json", "{path}");
        let v = r.json();
        assert_eq!(v["status"], want.as_u16(), "{path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {v}"
        );
        assert!(v.get("Status").is_none(), "{path}: {v}");
    }
    // The manual's routes: {"Status": false, "Str": …}.
    for (path, auth, want) in [
        ("/plain/list", None, StatusCode::UNAUTHORIZED),
        ("/sysmaster/status", None, StatusCode::UNAUTHORIZED),
        (
            "/plain/view?StreamName=no_such_stream_20250101_0000",
            Some(admin.as_str()),
            StatusCode::NOT_FOUND,
        ),
        ("/nosuch", Some(admin.as_str()), StatusCode::NOT_FOUND),
    ] {
        let r = app.send(req(&Method::GET, path, auth, 7)).await;
        assert_eq!(r.status, want, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["Status"], false, "{path}: {v}");
        assert!(
            v["Str"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {v}"
        );
        assert!(v.get("status").is_none(), "{path}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_return_the_bytes_asked_for() {
    let app = App::new();
    let admin = basic("admin", PW);
    let path = format!("/api/v1/streams/{}/pcap", app.stream);
    let ranged = |range: &str| {
        let mut r = req(&Method::GET, &path, Some(&admin), 8);
        r.headers_mut()
            .insert(header::RANGE, range.parse().unwrap());
        r
    };
    let full = app.send(req(&Method::GET, &path, Some(&admin), 8)).await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text());
    let len = full.body.len();
    assert!(len > 50_000, "{len} bytes");
    assert_eq!(
        &full.body[..4],
        &[0x4d, 0x3c, 0xb2, 0xa1],
        "a pcap file (ns)"
    );

    let r = app.send(ranged("bytes=100-1099")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text());
    assert_eq!(
        r.header(header::CONTENT_RANGE),
        format!("bytes 100-1099/{len}")
    );
    assert_eq!(r.body, full.body[100..1100]);

    let r = app.send(ranged("bytes=-777")).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text());
    assert_eq!(
        r.header(header::CONTENT_RANGE),
        format!("bytes {}-{}/{len}", len - 777, len - 1)
    );
    assert_eq!(r.body, full.body[len - 777..]);

    let r = app.send(ranged(&format!("bytes={}-", len - 10))).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text());
    assert_eq!(r.body, full.body[len - 10..]);

    for bad in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
    ] {
        let r = app.send(ranged(&bad)).await;
        assert_eq!(
            r.status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{bad}: {}",
            r.text()
        );
        assert_eq!(
            r.header(header::CONTENT_RANGE),
            format!("bytes */{len}"),
            "{bad}"
        );
    }
}

/// Issue 14.5: API tokens, made through the API, are accepted as `Bearer` wherever Basic
/// is, with their role, without a CSRF token but not from another site, until revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_act_with_their_role_until_revoked() {
    let app = App::new();
    let admin = basic("admin", PW);
    let make = |name: &str, role: &str| {
        let mut r = req(&Method::POST, "/api/v1/tokens", Some(&admin), 30);
        *r.body_mut() = Body::from(format!(r#"{{"name":"{name}","role":"{role}"}}"#));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        r
    };
    let r = app.send(make("reader", "viewer")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header(header::CACHE_CONTROL), "no-store");
    let reader = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let r = app.send(make("writer", "admin")).await;
    let writer = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    assert_eq!(
        app.send(make("writer", "admin")).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.send(make("a b", "admin")).await.status,
        StatusCode::BAD_REQUEST
    );

    // The viewer token reads, and is refused writes and the token list.
    let r = app
        .send(req(&Method::GET, "/api/v1/status", Some(&reader), 31))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app
        .send(req(&Method::GET, "/sysmaster/status", Some(&reader), 31))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (m, p) in [
        (Method::GET, "/api/v1/tokens"),
        (Method::POST, "/api/v1/capture/stop"),
    ] {
        let r = app.send(req(&m, p, Some(&reader), 31)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {p}: {}", r.text());
        assert!(
            r.text().contains("token:reader is a viewer"),
            "{}",
            r.text()
        );
    }
    // The admin token writes without a CSRF token (like Basic)...
    let pin = format!("/api/v1/streams/{}/pin", app.stream);
    let r = app.send(req(&Method::PUT, &pin, Some(&writer), 32)).await;
    assert!(!r.guard_refused(), "{} {}", r.status, r.text());
    // ...but not when a browser says another site sent it (like Basic).
    let mut cross = req(&Method::PUT, &pin, Some(&writer), 32);
    cross
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    let r = app.send(cross).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("cross-site"), "{}", r.text());

    // Listed with their last use, never with the secret.
    let r = app
        .send(req(&Method::GET, "/api/v1/tokens", Some(&writer), 33))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["name"], "reader");
    assert_eq!(list[0]["role"], "viewer");
    assert_eq!(list[0]["created_by"], "admin");
    assert!(list[0]["last_used"].is_string(), "{list}");
    assert!(!r.text().contains("wct_"), "{}", r.text());

    // Revoked: refused from the next request on; a second revocation finds nothing.
    let revoke = || req(&Method::DELETE, "/api/v1/tokens/reader", Some(&writer), 33);
    let r = app.send(revoke()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = app
        .send(req(&Method::GET, "/api/v1/status", Some(&reader), 33))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = app.send(revoke()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}
